//! The report's content, decided from what the run left (rows, timing records, the state's end
//! record, lessons, diffstats): pure, no I/O, so every rule here is unit-tested.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::artifacts::timing::IterationTiming;
use crate::engine::Direction;
use crate::engine::row::{Row, Status};

/// Files changed and lines added and removed by a commit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct DiffStat {
    pub files: usize,
    pub insertions: usize,
    pub deletions: usize,
}

/// One kept experiment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Keep {
    pub iteration: u64,
    pub commit: String,
    pub metric: f64,
    pub delta: f64,
    pub description: String,
    /// `None` when the commit cannot be read any more.
    pub diffstat: Option<DiffStat>,
}

/// Rows of one status with one reason tag (`[GUARD]`, `[TIMEOUT]`, ... or none).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReasonGroup {
    pub status: String,
    pub reason: String,
    pub iterations: Vec<u64>,
}

/// A lesson the run added to the lessons file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LessonAdded {
    pub title: String,
    pub outcome: String,
    pub insight: String,
}

/// Returns the `[TAG]` a description starts with, if any.
pub fn tag(description: &str) -> Option<&str> {
    let rest = description.strip_prefix('[')?;
    let end = rest.find(']')?;
    let t = &rest[..end];
    (!t.is_empty() && t.chars().all(|c| c.is_ascii_uppercase() || c == '-'))
        .then(|| &description[..end + 2])
}

/// The reason of a row without a tag, by status.
fn untagged(status: Status) -> &'static str {
    match status {
        Status::Discard => "not better than the retained metric",
        Status::Crash => "agent or verify failed",
        Status::NoOp => "no change",
        _ => "-",
    }
}

/// Groups the failed experiments (discard, crash, no-op, blocked) by status and reason tag, in
/// status order, then by how many rows each has (most first).
pub fn reasons(rows: &[Row]) -> Vec<ReasonGroup> {
    let failed = [
        Status::Discard,
        Status::Crash,
        Status::NoOp,
        Status::Blocked,
    ];
    let mut groups: BTreeMap<(usize, String), Vec<u64>> = BTreeMap::new();
    for r in rows {
        let Some(rank) = failed.iter().position(|s| *s == r.status) else {
            continue;
        };
        let reason =
            tag(&r.description).map_or_else(|| untagged(r.status).to_string(), str::to_string);
        groups.entry((rank, reason)).or_default().push(r.iteration);
    }
    let mut out: Vec<(usize, ReasonGroup)> = groups
        .into_iter()
        .map(|((rank, reason), iterations)| {
            (
                rank,
                ReasonGroup {
                    status: failed[rank].as_str().to_string(),
                    reason,
                    iterations,
                },
            )
        })
        .collect();
    out.sort_by(|(ra, a), (rb, b)| {
        ra.cmp(rb)
            .then(b.iterations.len().cmp(&a.iterations.len()))
            .then(a.reason.cmp(&b.reason))
    });
    out.into_iter().map(|(_, g)| g).collect()
}

/// The best metric so far after each row (baseline and keeps move it), as `(iteration, best)`.
pub fn running_best(rows: &[Row], direction: Direction) -> Vec<(u64, f64)> {
    let mut best: Option<f64> = None;
    rows.iter()
        .filter_map(|r| {
            if matches!(r.status, Status::Baseline | Status::Keep)
                && best
                    .is_none_or(|b| direction.improves(r.metric, b) || r.status == Status::Baseline)
            {
                best = Some(r.metric);
            }
            best.map(|b| (r.iteration, b))
        })
        .collect()
}

/// Reads the lessons a run added: the blocks of the lessons file whose `Iteration` is
/// `<run_tag>#<n>`.
pub fn lessons_added(text: &str, run_tag: &str) -> Vec<LessonAdded> {
    let prefix = format!("{run_tag}#");
    let mut out = Vec::new();
    for block in text.split("\n### ").map(|b| b.trim_start_matches("### ")) {
        let field = |name: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(&format!("- **{name}:** ")))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        if !field("Iteration").starts_with(&prefix) {
            continue;
        }
        let head = block.lines().next().unwrap_or("");
        let title = head.split_once(": ").map_or(head, |(_, t)| t);
        out.push(LessonAdded {
            title: title.to_string(),
            outcome: field("Outcome"),
            insight: field("Insight"),
        });
    }
    out
}

/// Sums of the timing records: (agent, verify, guard, engine + quota wait) in milliseconds.
pub fn time_split(timings: &[IterationTiming]) -> [u64; 4] {
    timings.iter().fold([0; 4], |mut acc, t| {
        acc[0] += t.agent_ms;
        acc[1] += t.verify_ms;
        acc[2] += t.guard_ms;
        acc[3] += t.engine_ms + t.quota_wait_ms;
        acc
    })
}

/// Seconds between two RFC 3339 times, when both parse and the second is later.
pub fn seconds_between(from: &str, to: &str) -> Option<f64> {
    let a = humantime::parse_rfc3339_weak(from).ok()?;
    let b = humantime::parse_rfc3339_weak(to).ok()?;
    b.duration_since(a).ok().map(|d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::row::Guard;

    fn row(i: u64, metric: f64, status: Status, description: &str) -> Row {
        Row {
            iteration: i,
            commit: "-".into(),
            metric,
            delta: 0.0,
            guard: Guard::NotRun,
            status,
            description: description.into(),
        }
    }

    #[test]
    fn tags_are_a_leading_bracketed_upper_case_word() {
        assert_eq!(tag("[GUARD] faster (tests failed)"), Some("[GUARD]"));
        assert_eq!(tag("[TIMEOUT] no output for 10m"), Some("[TIMEOUT]"));
        assert_eq!(tag("[x] lower case"), None);
        assert_eq!(tag("plain"), None);
        assert_eq!(tag("[] empty"), None);
    }

    #[test]
    fn failed_rows_are_grouped_by_status_and_tag_most_first() {
        let rows = [
            row(0, 10.0, Status::Baseline, "b"),
            row(1, 9.0, Status::Keep, "k"),
            row(2, 9.0, Status::Discard, "[GUARD] a (fail)"),
            row(3, 12.0, Status::Discard, "worse"),
            row(4, 9.0, Status::Crash, "[TIMEOUT] slow"),
            row(5, 9.0, Status::Discard, "[GUARD] b (fail)"),
            row(6, 9.0, Status::Refine, "[REFINE] x"),
            row(7, 9.0, Status::Crash, "exit 3"),
        ];
        let got: Vec<(String, String, Vec<u64>)> = reasons(&rows)
            .into_iter()
            .map(|g| (g.status, g.reason, g.iterations))
            .collect();
        assert_eq!(
            got,
            [
                ("discard".into(), "[GUARD]".into(), vec![2, 5]),
                (
                    "discard".into(),
                    "not better than the retained metric".into(),
                    vec![3]
                ),
                ("crash".into(), "[TIMEOUT]".into(), vec![4]),
                ("crash".into(), "agent or verify failed".into(), vec![7]),
            ]
        );
    }

    #[test]
    fn the_running_best_moves_only_on_keeps_in_the_direction() {
        let rows = [
            row(0, 10.0, Status::Baseline, "b"),
            row(1, 12.0, Status::Discard, "worse"),
            row(2, 7.0, Status::Keep, "k"),
            row(3, 7.0, Status::Crash, "c"),
            row(4, 5.0, Status::Keep, "k2"),
        ];
        assert_eq!(
            running_best(&rows, Direction::Lower),
            [(0, 10.0), (1, 10.0), (2, 7.0), (3, 7.0), (4, 5.0)]
        );
        let up = [
            row(0, 1.0, Status::Baseline, "b"),
            row(1, 3.0, Status::Keep, "k"),
        ];
        assert_eq!(running_best(&up, Direction::Higher), [(0, 1.0), (1, 3.0)]);
    }

    #[test]
    fn only_this_runs_lessons_are_listed() {
        let text = "# Lessons\n\n### L-1: old idea\n- **Outcome:** keep\n- **Insight:** a\n- **Iteration:** other#3\n\n### L-2: cache it\n- **Strategy:** cache it\n- **Outcome:** keep\n- **Insight:** value 10 -> 7 (-3)\n- **Iteration:** tag#2\n\n";
        let got = lessons_added(text, "tag");
        assert_eq!(
            got,
            [LessonAdded {
                title: "cache it".into(),
                outcome: "keep".into(),
                insight: "value 10 -> 7 (-3)".into()
            }]
        );
        assert!(
            lessons_added(text, "ta").is_empty(),
            "the tag must match whole"
        );
    }

    #[test]
    fn seconds_between_two_stamps() {
        assert_eq!(
            seconds_between("2026-01-01T06:00:00Z", "2026-01-01T07:00:30Z"),
            Some(3630.0)
        );
    }
}
