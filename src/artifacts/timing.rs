//! `autoresearch-results/engine/iterations.jsonl`: one JSON line per recorded iteration with its start time,
//! phase durations and tokens (the side record the report's time axis comes from; the results
//! TSV keeps its schema). Appended only; unreadable lines are skipped on reading.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::Paths;
use super::state::{IterationRecord, Usage};
use crate::error::Result;
use crate::fsutil;

/// File name of the timing records, in `autoresearch-results/engine/`.
pub const FILE: &str = "iterations.jsonl";

/// When one iteration started and where its time and tokens went.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IterationTiming {
    pub iteration: u64,
    /// UTC start time, `YYYY-MM-DDTHH:MM:SSZ`.
    pub started_at: String,
    /// Start time in milliseconds since the Unix epoch (for the time axis).
    pub started_ms: u64,
    /// The row's status (`keep`, `discard`, `crash`, ...).
    pub status: String,
    pub agent_ms: u64,
    pub verify_ms: u64,
    pub guard_ms: u64,
    /// Waiting out the agent's usage or rate limits.
    #[serde(default)]
    pub quota_wait_ms: u64,
    /// The rest: inspection, commits, rollbacks, bookkeeping.
    pub engine_ms: u64,
    pub total_ms: u64,
    #[serde(default)]
    pub rework_turns: u32,
    #[serde(default)]
    pub usage: Usage,
}

impl IterationTiming {
    /// Builds the record of an iteration from its engine record, recorded at `now` (the start is
    /// `now` less the iteration's total time).
    pub fn from_record(rec: &IterationRecord, now: SystemTime) -> IterationTiming {
        let start = now
            .checked_sub(Duration::from_millis(rec.total_ms))
            .unwrap_or(now);
        let started_ms = start
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let spent = rec.agent_ms + rec.verify_ms + rec.guard_ms + rec.quota_wait_ms;
        IterationTiming {
            iteration: rec.iteration,
            started_at: humantime::format_rfc3339_seconds(start).to_string(),
            started_ms,
            status: rec.status.clone(),
            agent_ms: rec.agent_ms,
            verify_ms: rec.verify_ms,
            guard_ms: rec.guard_ms,
            quota_wait_ms: rec.quota_wait_ms,
            engine_ms: rec.total_ms.saturating_sub(spent),
            total_ms: rec.total_ms,
            rework_turns: rec.rework_turns,
            usage: rec.usage.clone(),
        }
    }
}

/// Returns the path of the timing records of the run at `paths`.
pub fn path(paths: &Paths) -> PathBuf {
    paths.private.join(FILE)
}

/// Appends one record (one write; a side record: the last one may be lost in a crash, and the
/// report says "no timing record" for that iteration).
pub fn append(paths: &Paths, t: &IterationTiming) -> Result<()> {
    let mut line = serde_json::to_string(t).unwrap_or_default();
    line.push('\n');
    fsutil::append(&path(paths), line.as_bytes())
}

/// Reads the records, later ones winning for the same iteration, in iteration order; a missing
/// file is no records, and a line that does not parse (a torn write) is skipped.
pub fn load(paths: &Paths) -> Vec<IterationTiming> {
    let text = std::fs::read_to_string(path(paths)).unwrap_or_default();
    let mut by_iter = std::collections::BTreeMap::new();
    for line in text.lines() {
        if let Ok(t) = serde_json::from_str::<IterationTiming>(line) {
            by_iter.insert(t.iteration, t);
        }
    }
    by_iter.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_is_the_record_time_less_the_total_and_engine_time_is_the_rest() {
        let rec = IterationRecord {
            iteration: 4,
            status: "keep".into(),
            agent_ms: 5_000,
            verify_ms: 2_000,
            guard_ms: 1_000,
            quota_wait_ms: 500,
            total_ms: 9_000,
            ..IterationRecord::default()
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(86_400);
        let t = IterationTiming::from_record(&rec, now);
        assert_eq!(t.started_ms, 86_400_000 - 9_000);
        assert_eq!(t.started_at, "1970-01-01T23:59:51Z");
        assert_eq!(t.engine_ms, 500);
    }

    #[test]
    fn append_then_load_skips_torn_lines_and_keeps_the_last_of_an_iteration() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path(), None).unwrap();
        std::fs::create_dir_all(&paths.private).unwrap();
        assert!(load(&paths).is_empty(), "no file is no records");
        for (i, status) in [(2, "discard"), (1, "keep"), (2, "crash")] {
            let t = IterationTiming {
                iteration: i,
                status: status.into(),
                ..IterationTiming::default()
            };
            append(&paths, &t).unwrap();
        }
        fsutil::append_durable(&path(&paths), b"{\"iteration\": 3, \"torn").unwrap();
        let back = load(&paths);
        let got: Vec<(u64, &str)> = back
            .iter()
            .map(|t| (t.iteration, t.status.as_str()))
            .collect();
        assert_eq!(got, [(1, "keep"), (2, "crash")]);
    }
}
