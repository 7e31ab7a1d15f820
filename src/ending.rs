//! How a run ended: the `ended` record of `autoresearch-results/state.json` (reason word, detail, time,
//! elapsed, exit code), written by the run as it ends, cleared by a resume, and read by
//! `status` (which calls a run that died without one `crashed`). Pure apart from the types.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::policy::Stop;

/// The `ended` object of the state file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ended {
    /// `goal_reached`, `iterations`, `budget`, `plateau`, `needs_human`, `blocked`, `stopped`
    /// (`crashed` is never written: `status` infers it).
    pub reason: String,
    /// One line: what was reached, or why a human is needed or the run is blocked.
    pub detail: String,
    /// For `budget`: which one (`max_duration`, `until`, `max_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
    /// When the run ended, UTC (`YYYY-MM-DDTHH:MM:SSZ`).
    pub at: String,
    /// Active time of the run over all its sessions, in seconds.
    pub elapsed_secs: u64,
    /// The exit code of the command that ran it.
    pub exit_code: u8,
}

/// Returns the reason word, the budget (if one), and the detail of a stop.
pub fn describe_stop(stop: &Stop) -> (&'static str, Option<&'static str>, String) {
    match stop {
        Stop::Goal(m) => ("goal_reached", None, m.clone()),
        Stop::Cap(cap) => (
            "iterations",
            None,
            format!("{cap} experiments done (--iterations {cap})"),
        ),
        Stop::Budget(b, m) => ("budget", Some(b.as_str()), m.clone()),
        Stop::Plateau(n) => (
            "plateau",
            None,
            format!("{n} experiments in a row without a keep (--plateau {n})"),
        ),
        Stop::NeedsHuman(m) => ("needs_human", None, m.clone()),
        Stop::Blocked(m) => ("blocked", None, m.clone()),
        Stop::Requested => (
            "stopped",
            None,
            "stopped on request (`stop --after-iteration`) between iterations".to_string(),
        ),
        Stop::Interrupted(sig) => (
            "stopped",
            None,
            format!(
                "interrupted by {}; the unfinished iteration was rolled back",
                crate::engine::signal_name(*sig)
            ),
        ),
    }
}

/// The record of a run that ended with `stop` (or, with `None`, an engine error `detail`).
pub fn record(
    stop: Option<&Stop>,
    error: Option<(&str, bool)>,
    elapsed: Duration,
    exit_code: u8,
) -> Ended {
    let (reason, budget, detail) = match (stop, error) {
        (Some(s), _) => describe_stop(s),
        (None, Some((msg, true))) => ("stopped", None, msg.to_string()),
        (None, Some((msg, false))) => ("blocked", None, msg.to_string()),
        (None, None) => ("blocked", None, String::new()),
    };
    Ended {
        reason: reason.to_string(),
        detail,
        budget: budget.map(str::to_string),
        at: crate::artifacts::state::now_utc(),
        elapsed_secs: elapsed.as_secs(),
        exit_code,
    }
}

/// The words `status` prints for a reason.
pub fn reason_text(e: &Ended) -> String {
    match e.reason.as_str() {
        "goal_reached" => "goal reached".into(),
        "iterations" => "iteration cap reached".into(),
        "budget" => format!(
            "budget spent ({})",
            e.budget
                .as_deref()
                .map(|b| format!("--{}", b.replace('_', "-")))
                .unwrap_or_else(|| "budget".into())
        ),
        "plateau" => "plateau (no keep for too long)".into(),
        "needs_human" => "needs a human".into(),
        "blocked" => "blocked".into(),
        "stopped" => "stopped".into(),
        other => other.to_string(),
    }
}

/// The `status` line of an ended run: `ended: budget spent (--max-duration): ... at ... after
/// 2h05m, exit code 0`.
pub fn status_line(e: &Ended) -> String {
    format!(
        "ended: {}: {} (at {}, after {}, exit code {})",
        reason_text(e),
        e.detail,
        e.at,
        elapsed_text(e.elapsed_secs),
        e.exit_code
    )
}

/// Formats whole seconds as `45s`, `12m03s` or `8h02m`.
pub fn elapsed_text(secs: u64) -> String {
    if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

/// What `status` says when no process holds the run and no end record exists.
pub const CRASHED: &str = "crashed: the run's process is gone and left no end record (killed, or the machine stopped); `codex-autoresearch run` resumes it";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::policy::Budget;

    #[test]
    fn every_stop_has_its_reason_word() {
        let words: Vec<&str> = [
            Stop::Goal("g".into()),
            Stop::Cap(3),
            Stop::Budget(Budget::Until, "--until 07:00 reached".into()),
            Stop::Plateau(4),
            Stop::NeedsHuman("h".into()),
            Stop::Blocked("b".into()),
            Stop::Interrupted(15),
        ]
        .iter()
        .map(|s| describe_stop(s).0)
        .collect();
        assert_eq!(
            words,
            [
                "goal_reached",
                "iterations",
                "budget",
                "plateau",
                "needs_human",
                "blocked",
                "stopped"
            ]
        );
        let e = record(
            Some(&Stop::Budget(
                Budget::MaxTokens,
                "--max-tokens 5 spent".into(),
            )),
            None,
            Duration::from_secs(3725),
            0,
        );
        assert_eq!(e.budget.as_deref(), Some("max_tokens"));
        let line = status_line(&e);
        assert!(
            line.starts_with("ended: budget spent (--max-tokens): --max-tokens 5 spent (at "),
            "{line}"
        );
        assert!(line.ends_with(", after 1h02m, exit code 0)"), "{line}");
        let e = record(
            None,
            Some(("interrupted by SIGTERM", true)),
            Duration::ZERO,
            143,
        );
        assert_eq!(e.reason, "stopped");
        assert_eq!(elapsed_text(65), "1m05s");
    }
}
