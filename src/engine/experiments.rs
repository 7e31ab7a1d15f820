//! What `--iterations N` counts (GUIDE §7): experiments, the agent turns that produced a row of
//! their own (keep, discard, crash, no-op). Bookkeeping rows (refine, pivot, search), drift and
//! blocked rows, and the crash rows of interruptions (a signal, a killed engine) are not
//! experiments: they consume no iteration and do not advance the escalation ladder.

use super::row::{Row, Status};

/// How an interruption's crash row starts (`[INTERRUPTED] ... stopped by SIGINT ...`).
pub const INTERRUPTED_TAG: &str = "[INTERRUPTED]";

/// True for the crash row an interruption leaves (a signal, or a killed engine recovered).
pub fn is_interruption(row: &Row) -> bool {
    row.status == Status::Crash && row.description.starts_with(INTERRUPTED_TAG)
}

/// True for a row an agent turn produced on its own: it consumes one of `--iterations`.
pub fn is_experiment(row: &Row) -> bool {
    match row.status {
        Status::Keep | Status::Discard | Status::NoOp => true,
        Status::Crash => !is_interruption(row),
        Status::Baseline
        | Status::Blocked
        | Status::Drift
        | Status::Refine
        | Status::Pivot
        | Status::Search
        // The ship step and its post-ship check are the engine's, not the agent's.
        | Status::Ship => false,
    }
}

/// The `experiments done / N` text of `status` (`N` unset: the count alone).
pub fn progress(done: u64, cap: Option<u64>) -> String {
    match cap {
        Some(n) => format!("{done}/{n}"),
        None => done.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::row::Guard;

    fn row(status: Status, description: &str) -> Row {
        Row {
            iteration: 1,
            commit: "-".into(),
            metric: 1.0,
            delta: 0.0,
            guard: Guard::NotRun,
            status,
            description: description.into(),
        }
    }

    #[test]
    fn issue_13_experiments_are_the_agent_turns_with_a_row_of_their_own() {
        for s in [Status::Keep, Status::Discard, Status::NoOp, Status::Crash] {
            assert!(is_experiment(&row(s, "try")), "{s:?}");
        }
        for s in [
            Status::Baseline,
            Status::Blocked,
            Status::Drift,
            Status::Refine,
            Status::Pivot,
            Status::Search,
        ] {
            assert!(!is_experiment(&row(s, "bookkeeping")), "{s:?}");
        }
    }

    #[test]
    fn issue_13_an_interruption_is_no_experiment() {
        let signal = row(
            Status::Crash,
            "[INTERRUPTED] lower it — stopped by SIGINT during verify; rolled back",
        );
        let killed = row(
            Status::Crash,
            "[INTERRUPTED] iteration 2 stopped during agent when the engine was killed; rolled back",
        );
        let agent_failed = row(Status::Crash, "[TIMEOUT] agent timed out");
        assert!(is_interruption(&signal) && !is_experiment(&signal));
        assert!(is_interruption(&killed) && !is_experiment(&killed));
        assert!(!is_interruption(&agent_failed) && is_experiment(&agent_failed));
        // Only a crash row is an interruption, whatever its text.
        assert!(!is_interruption(&row(Status::Discard, "[INTERRUPTED] x")));
    }

    #[test]
    fn progress_shows_the_cap_when_there_is_one() {
        assert_eq!(progress(2, Some(5)), "2/5");
        assert_eq!(progress(2, None), "2");
    }
}
