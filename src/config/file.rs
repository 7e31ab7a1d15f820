//! `autoresearch.toml` and the gathering of one invocation's explicit settings (file <
//! environment < flags), with the source of every key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

use super::*;

/// The explicit settings of one invocation: the config file, the environment and the flags,
/// layered in that order, with the source of every key.
#[derive(Clone, Debug, Default)]
pub struct Gathered {
    pub settings: Settings,
    pub sources: BTreeMap<&'static str, Source>,
    /// The config file that was read, if any.
    pub file: Option<PathBuf>,
}

/// The default config file name, at the repository root.
pub const CONFIG_FILE: &str = "autoresearch.toml";

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

fn closest_key(key: &str) -> Option<&'static str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                cur.push(
                    (prev[j] + usize::from(ca != *cb))
                        .min(prev[j + 1] + 1)
                        .min(cur[j] + 1),
                );
            }
            prev = cur;
        }
        prev[b.len()]
    }
    Settings::KEYS
        .iter()
        .copied()
        .map(|k| (distance(key, k), k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k)
}

/// Reads a config file into settings; errors name the file, the line and the key.
pub fn read_file(path: &Path) -> Result<(Settings, BTreeMap<&'static str, Source>)> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Usage(format!(
            "cannot read the config file {}: {e}",
            path.display()
        ))
    })?;
    parse_file(&text, path)
}

/// Parses config file `text` (`path` is for messages and relative paths).
pub fn parse_file(text: &str, path: &Path) -> Result<(Settings, BTreeMap<&'static str, Source>)> {
    let name = path.display();
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |s| line_of(text, s.start));
        let src = text.lines().nth(line - 1).unwrap_or("").trim();
        let quoted = if src.is_empty() {
            String::new()
        } else {
            format!(" (in `{src}`)")
        };
        Error::Usage(format!(
            "{name} line {line}: {}{quoted}",
            e.message().trim()
        ))
    })?;
    // The spans of the top-level keys, for line numbers in messages.
    let mut lines: BTreeMap<String, usize> = BTreeMap::new();
    if let Ok(spanned) = toml::de::DeTable::parse(text) {
        for (k, _) in spanned.get_ref() {
            lines.insert(k.get_ref().to_string(), line_of(text, k.span().start));
        }
    }
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut settings = Settings::default();
    let mut sources = BTreeMap::new();
    // `refine-after` and `refine_after` are one key: both in a file is a duplicate.
    let mut seen: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for raw_key in table.keys() {
        let line = lines.get(raw_key).copied().unwrap_or(1);
        if let Some((other, other_line)) =
            seen.insert(raw_key.replace('-', "_"), (raw_key.clone(), line))
        {
            let ((k1, l1), (k2, l2)) = if other_line <= line {
                ((other, other_line), (raw_key.clone(), line))
            } else {
                ((raw_key.clone(), line), (other, other_line))
            };
            return Err(Error::Usage(format!(
                "{name} line {l2}: `{k2}` sets the same setting as `{k1}` on line {l1}; keep one"
            )));
        }
    }
    for (raw_key, value) in table {
        let line = lines.get(&raw_key).copied().unwrap_or(1);
        let key = raw_key.replace('-', "_");
        // `[[ship.check]]`: ship mode's own checks (read again by `ship::load`).
        if key == "ship" {
            crate::ship::ship_table(&value)
                .map_err(|m| Error::Usage(format!("{name} line {line}: `ship`: {m}")))?;
            continue;
        }
        let Some(known) = Settings::KEYS.iter().copied().find(|k| *k == key) else {
            let hint = closest_key(&key)
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            return Err(Error::Usage(format!(
                "{name} line {line}: unknown key `{raw_key}`{hint}"
            )));
        };
        let mut json = serde_json::to_value(&value).unwrap_or(serde_json::Value::Null);
        if matches!(
            known,
            "repo" | "artifacts_dir" | "codex_bin" | "claude_bin" | "checklist"
        ) && let Some(s) = json.as_str()
            && !Path::new(s).is_absolute()
        {
            json = serde_json::Value::String(base.join(s).display().to_string());
        }
        let one: Settings =
            serde_json::from_value(serde_json::json!({ known: json })).map_err(|e| {
                let msg = e.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                Error::Usage(format!("{name} line {line}: `{raw_key}`: {msg}"))
            })?;
        let src = Source::File {
            path: path.to_path_buf(),
            line,
            key: raw_key.clone(),
        };
        for key in settings.overlay(one) {
            sources.insert(key, src.clone());
        }
    }
    // Values that are wrong on their own are the file's error, whatever overrides them later.
    for (key, src) in &sources {
        if *key == "stop_condition" && settings.metric.is_none() {
            continue; // may name a metric set elsewhere; checked once the layers are merged
        }
        if let (Err(m), Source::File { line, key: raw, .. }) =
            (check_value(key, &settings, None), src)
        {
            return Err(Error::Usage(format!("{name} line {line}: `{raw}`: {m}")));
        }
    }
    Ok((settings, sources))
}

/// Layers the config file (`--config FILE`, else `<repo>/autoresearch.toml`), the environment
/// (`AUTORESEARCH_*`) and the flags.
pub fn gather(
    flags: Settings,
    config_flag: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Gathered> {
    let mut g = Gathered::default();
    let file = match config_flag {
        Some(p) => {
            if !p.is_file() {
                return Err(Error::Usage(format!(
                    "--config {}: no such file",
                    p.display()
                )));
            }
            Some(p.to_path_buf())
        }
        None => {
            let start = start_dir(flags.repo.as_deref())?;
            git2::Repository::discover(&start)
                .ok()
                .and_then(|r| r.workdir().map(|w| w.join(CONFIG_FILE)))
                .filter(|p| p.is_file())
        }
    };
    if let Some(path) = &file {
        let (s, src) = read_file(path)?;
        g.settings.overlay(s);
        g.sources.extend(src);
    }
    let (s, src) = Settings::from_env(env)?;
    g.settings.overlay(s);
    g.sources.extend(src);
    for k in g.settings.overlay(flags) {
        g.sources.insert(k, Source::Flag);
    }
    g.file = file;
    Ok(g)
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
