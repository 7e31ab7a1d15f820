//! `plan --write`: the chosen candidate as `autoresearch.toml`, under a comment header saying
//! when and how it was validated. An existing file with other settings is replaced only with
//! `--force` (one whose settings are the same is rewritten: only its header changes).

use std::path::Path;

use super::candidate::Candidate;
use super::validate::Validation;
use crate::engine::number::{canonical, significant};
use crate::error::{Error, Result};

/// Run settings `plan` adds to the candidate's own.
#[derive(Default)]
pub struct Extra {
    /// `agent = "codex"` / `"claude"` when the plan was made with one.
    pub agent: Option<&'static str>,
    pub model: Option<String>,
    pub iterations: Option<u64>,
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The settings lines of the file (no comments).
pub fn settings_text(c: &Candidate, extra: &Extra) -> String {
    let mut lines = vec![
        format!("goal = {}", quoted(&c.goal)),
        format!("mode = {}", quoted(&c.mode)),
        format!(
            "scope = [{}]",
            c.scope
                .iter()
                .map(|s| quoted(s))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!("metric = {}", quoted(&c.metric)),
        format!("direction = {}", quoted(&c.direction)),
        format!("verify = {}", quoted(&c.verify)),
    ];
    let mut opt = |key: &str, v: Option<&str>| {
        if let Some(v) = v.filter(|v| !v.trim().is_empty()) {
            lines.push(format!("{key} = {}", quoted(v)));
        }
    };
    opt("verify-format", c.verify_format.as_deref());
    opt("metric-regex", c.metric_regex.as_deref());
    opt("guard", c.guard.as_deref());
    opt("agent", extra.agent);
    opt("model", extra.model.as_deref());
    if let Some(n) = extra.iterations {
        lines.push(format!("iterations = {n}"));
    }
    lines.join("\n") + "\n"
}

/// The comment header: when, on which commit, and what the validation measured.
fn header(v: &Validation, head: &str, runs: usize) -> String {
    let now = jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC");
    let mut how = format!(
        "verify ran {runs} time{} on a clean checkout of {head}",
        if runs == 1 { "" } else { "s" }
    );
    if let (Some(b), Some(n)) = (v.baseline, v.noise) {
        let spread = if n.deterministic {
            "deterministic".to_string()
        } else {
            format!("noise σ={}", significant(n.sigma, 2))
        };
        how.push_str(&format!(": baseline {}, {spread}", canonical(b)));
    }
    if let Some(s) = v.seconds_per_verify {
        how.push_str(&format!(", {} s per verify", significant(s, 2)));
    }
    let guard = match v.guard_passed {
        Some(true) => "; the guard passed",
        _ => "",
    };
    format!(
        "# Written by `codex-autoresearch plan` on {now}.\n\
         # Validated: {how}{guard}; verify and guard read none of the engine's files and changed no\n\
         # tracked file; {} tracked files editable in the scope.\n",
        v.editable.unwrap_or(0)
    )
}

/// The settings of an existing config file, comments and blank lines left out.
fn settings_of(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes `path`; refuses to replace a file with other settings without `force`.
pub fn write(
    path: &Path,
    c: &Candidate,
    v: &Validation,
    extra: &Extra,
    head: &str,
    force: bool,
) -> Result<()> {
    let body = settings_text(c, extra);
    if let Ok(old) = std::fs::read_to_string(path)
        && !force
        && settings_of(&old) != settings_of(&body)
    {
        return Err(Error::Refused(format!(
            "{} exists with other settings; pass --force to replace it, or move it aside",
            path.display()
        )));
    }
    let text = format!("{}{body}", header(v, head, v.values.len()));
    crate::fsutil::write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_file;

    fn candidate() -> Candidate {
        Candidate {
            goal: "fix \"the\" tests".into(),
            mode: "fix".into(),
            scope: vec!["src/**".into(), "lib.py".into()],
            metric: "failures".into(),
            direction: "lower".into(),
            verify: r"python3 -m pytest -q | grep -c 'x\y'".into(),
            guard: None,
            verify_format: Some("regex".into()),
            metric_regex: Some(r"(\d+) failed".into()),
        }
    }

    #[test]
    fn the_file_reads_back_as_the_candidates_settings() {
        let c = candidate();
        let extra = Extra {
            agent: Some("codex"),
            model: None,
            iterations: Some(5),
        };
        let text = header(&Validation::default(), "abc1234", 3) + &settings_text(&c, &extra);
        assert!(text.starts_with("# Written by `codex-autoresearch plan` on "));
        let (s, _) = parse_file(&text, Path::new("autoresearch.toml")).unwrap();
        assert_eq!(s, {
            let mut want = c.settings().unwrap();
            want.agent = Some(crate::config::AgentKind::Codex);
            want.iterations = Some(5);
            want
        });
    }

    #[test]
    fn other_settings_are_kept_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("autoresearch.toml");
        let c = candidate();
        let v = Validation::default();
        write(&path, &c, &v, &Extra::default(), "abc", false).unwrap();
        // The same settings again: only the header is rewritten.
        write(&path, &c, &v, &Extra::default(), "def", false).unwrap();
        let mut other = c.clone();
        other.metric = "errors".into();
        let e = write(&path, &other, &v, &Extra::default(), "abc", false).unwrap_err();
        assert!(e.to_string().contains("--force"), "{e}");
        write(&path, &other, &v, &Extra::default(), "abc", true).unwrap();
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("\"errors\"")
        );
    }
}
