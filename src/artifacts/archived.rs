//! The runs `--fresh` and exec moved aside (`results.prev*.tsv`, `state.prev*.json`, and the
//! engine's `prev<N>/`), read back for `status --all`: their tag, when they started and ended,
//! and how they ended. Read-only.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::results::ResultsLog;
use super::state::StateFile;
use super::{Paths, layout};

/// One archived run.
#[derive(Clone, Debug, PartialEq)]
pub struct Archived {
    /// `prev`, `prev2`, ...
    pub generation: String,
    pub results: PathBuf,
    pub run_tag: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    /// The end record's status line, or why there is none.
    pub outcome: String,
    /// The reason word (`goal_reached`, `iterations`, ...; `unknown` without a state).
    pub reason: String,
    pub iterations: Option<u64>,
}

/// The generation number of `name` if it is an archive of `file` (`results.prev3.tsv` -> 3).
fn generation_of(name: &str, file: &str) -> Option<u32> {
    let (stem, ext) = file.rsplit_once('.')?;
    let g = name
        .strip_prefix(&format!("{stem}.prev"))?
        .strip_suffix(&format!(".{ext}"))?;
    if g.is_empty() {
        Some(1)
    } else {
        g.parse().ok().filter(|n| *n >= 2)
    }
}

/// The archived state of generation `g`: `state.prev<g>.json`, else an exec run's, in the
/// engine's `prev<g>/`.
fn state_of(paths: &Paths, g: u32) -> Option<StateFile> {
    let names = layout::names(paths.layout);
    let suffix = if g == 1 { String::new() } else { g.to_string() };
    let (stem, ext) = names.state.rsplit_once('.')?;
    let beside = paths.dir.join(format!("{stem}.prev{suffix}.{ext}"));
    let exec = paths
        .private
        .join(format!("prev{g}"))
        .join("state.exec.json");
    [beside, exec].iter().find_map(|p| StateFile::load(p).ok())
}

/// Returns the archived runs at `paths`, oldest first.
pub fn list(paths: &Paths) -> Vec<Archived> {
    let results_name = layout::names(paths.layout).results;
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir(&paths.dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            generation_of(&name, results_name).map(|g| (g, e.path()))
        })
        .collect();
    found.sort();
    found
        .into_iter()
        .map(|(g, results)| describe(paths, g, &results))
        .collect()
}

fn describe(paths: &Paths, g: u32, results: &Path) -> Archived {
    let log = ResultsLog::read(results).ok().map(|(l, _)| l);
    let state = state_of(paths, g);
    let ended = state.as_ref().and_then(|s| s.engine.ended.clone());
    let meta = |k: &str| log.as_ref().and_then(|l| l.meta(k)).map(str::to_string);
    Archived {
        generation: if g == 1 {
            "prev".into()
        } else {
            format!("prev{g}")
        },
        results: results.to_path_buf(),
        run_tag: meta("run_tag").or_else(|| state.as_ref().map(|s| s.run_tag.clone())),
        started_at: meta("started_at"),
        ended_at: ended.as_ref().map(|e| e.at.clone()),
        outcome: match (&ended, &state) {
            (Some(e), _) => crate::ending::status_line(e),
            (None, Some(_)) => {
                "crashed: it left no end record (killed, or the machine stopped)".into()
            }
            (None, None) => "unknown (no archived state)".into(),
        },
        reason: match (&ended, &state) {
            (Some(e), _) => e.reason.clone(),
            (None, Some(_)) => "crashed".into(),
            (None, None) => "unknown".into(),
        },
        iterations: log
            .as_ref()
            .and_then(|l| l.replay().ok())
            .map(|r| r.tally.iteration),
    }
}

impl Archived {
    /// One line of `status --all`.
    pub fn line(&self) -> String {
        let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
        let iterations = self
            .iterations
            .map_or_else(|| "unreadable log".into(), |n| format!("{n} iterations"));
        format!(
            "{}: run {} started {}, {iterations}; {}",
            self.generation,
            or(&self.run_tag),
            or(&self.started_at),
            self.outcome
        )
    }

    /// Its object in `status --json --all`.
    pub fn to_json(&self) -> Value {
        json!({
            "generation": self.generation,
            "results": self.results.display().to_string(),
            "run_tag": self.run_tag,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "reason": self.reason,
            "outcome": self.outcome,
            "iterations": self.iterations,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_are_read_from_the_archive_names() {
        assert_eq!(generation_of("results.prev.tsv", "results.tsv"), Some(1));
        assert_eq!(generation_of("results.prev12.tsv", "results.tsv"), Some(12));
        assert_eq!(generation_of("results.prev1.tsv", "results.tsv"), None);
        assert_eq!(generation_of("results.tsv", "results.tsv"), None);
        assert_eq!(generation_of("results.prevx.tsv", "results.tsv"), None);
        assert_eq!(
            generation_of(
                "autoresearch-results/results.prev2.tsv",
                "autoresearch-results/results.tsv"
            ),
            Some(2)
        );
    }
}
