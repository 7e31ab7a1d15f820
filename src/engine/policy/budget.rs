//! The unattended-run limits checked between iterations (GUIDE §15 "Budgets, plateau and
//! notify"): `--max-duration`, `--until`, `--max-tokens` and `--plateau`. Pure: the driver feeds
//! what was spent and the current time; nothing here reads a clock.

use std::time::{Duration, SystemTime};

use super::Stop;
use crate::engine::reducer::Replay;

/// Which budget ended a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    MaxDuration,
    Until,
    MaxTokens,
}

impl Budget {
    /// The setting's key, as `ended.detail` and the notify variables name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Budget::MaxDuration => "max_duration",
            Budget::Until => "until",
            Budget::MaxTokens => "max_tokens",
        }
    }
}

/// The budgets of a run; `until` is the deadline already resolved to an instant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Limits {
    pub max_duration: Option<Duration>,
    /// The deadline of `--until` and the time of day as written (`07:00`).
    pub until: Option<(SystemTime, String)>,
    pub max_tokens: Option<u64>,
    pub plateau: Option<u64>,
}

/// What the run has spent so far, over all its sessions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spent {
    /// Active time of the run (earlier sessions plus this one).
    pub elapsed: Duration,
    /// The current time (the `--until` check).
    pub now: SystemTime,
    /// Tokens the agent used (input plus output).
    pub tokens: u64,
}

/// The budget or plateau stop that applies now, if any, in this order: duration, clock,
/// tokens, plateau. Checked between iterations only.
pub fn budget_stop(limits: &Limits, spent: &Spent, replay: &Replay) -> Option<Stop> {
    let human = |d: Duration| crate::duration::human(d);
    if let Some(max) = limits.max_duration
        && spent.elapsed >= max
    {
        return Some(Stop::Budget(
            Budget::MaxDuration,
            format!(
                "--max-duration {} spent ({} elapsed)",
                crate::duration::format(max),
                human(spent.elapsed)
            ),
        ));
    }
    if let Some((deadline, text)) = &limits.until
        && spent.now >= *deadline
    {
        return Some(Stop::Budget(
            Budget::Until,
            format!("--until {text} reached"),
        ));
    }
    if let Some(max) = limits.max_tokens
        && spent.tokens >= max
    {
        return Some(Stop::Budget(
            Budget::MaxTokens,
            format!("--max-tokens {max} spent ({} tokens used)", spent.tokens),
        ));
    }
    // Experiments only: the current rules count refine rows in `consecutive_discards`.
    let since_keep = replay.ladder.failures_since_keep;
    if let Some(n) = limits.plateau
        && since_keep >= n
    {
        return Some(Stop::Plateau(n));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Direction;
    use crate::engine::row::{Guard, Row, Status};

    fn replay(statuses: &[Status]) -> Replay {
        let base = Row {
            iteration: 0,
            commit: "c0ffee0".into(),
            metric: 10.0,
            delta: 0.0,
            guard: Guard::NotRun,
            status: Status::Baseline,
            description: "baseline".into(),
        };
        let mut r = Replay::start(&base, Direction::Lower).unwrap();
        for (i, s) in statuses.iter().enumerate() {
            let row = Row {
                iteration: i as u64 + 1,
                status: *s,
                description: format!("try {}", i + 1),
                metric: if *s == Status::Keep { 9.0 } else { 11.0 },
                ..base.clone()
            };
            r.apply(&row).unwrap();
        }
        r
    }

    fn spent(elapsed_s: u64, now_s: u64, tokens: u64) -> Spent {
        Spent {
            elapsed: Duration::from_secs(elapsed_s),
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(now_s),
            tokens,
        }
    }

    fn which(stop: Option<Stop>) -> Option<Budget> {
        match stop {
            Some(Stop::Budget(b, _)) => Some(b),
            _ => None,
        }
    }

    #[test]
    fn no_limits_never_stop() {
        let r = replay(&[Status::Discard; 30]);
        assert_eq!(
            budget_stop(&Limits::default(), &spent(1 << 30, 1 << 30, 1 << 40), &r),
            None
        );
    }

    #[test]
    fn max_duration_stops_once_spent() {
        let l = Limits {
            max_duration: Some(Duration::from_secs(3600)),
            ..Limits::default()
        };
        let r = replay(&[]);
        assert_eq!(budget_stop(&l, &spent(3599, 0, 0), &r), None);
        let stop = budget_stop(&l, &spent(3600, 0, 0), &r);
        assert_eq!(
            stop,
            Some(Stop::Budget(
                Budget::MaxDuration,
                "--max-duration 1h spent (60m00s elapsed)".into()
            ))
        );
    }

    #[test]
    fn until_stops_at_the_deadline_of_the_injected_clock() {
        let deadline = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let l = Limits {
            until: Some((deadline, "07:00".into())),
            ..Limits::default()
        };
        let r = replay(&[]);
        assert_eq!(budget_stop(&l, &spent(0, 999, 0), &r), None);
        assert_eq!(
            budget_stop(&l, &spent(0, 1000, 0), &r),
            Some(Stop::Budget(Budget::Until, "--until 07:00 reached".into()))
        );
    }

    #[test]
    fn max_tokens_stops_once_used() {
        let l = Limits {
            max_tokens: Some(500),
            ..Limits::default()
        };
        let r = replay(&[]);
        assert_eq!(budget_stop(&l, &spent(0, 0, 499), &r), None);
        assert_eq!(
            which(budget_stop(&l, &spent(0, 0, 500), &r)),
            Some(Budget::MaxTokens)
        );
    }

    #[test]
    fn plateau_counts_experiments_since_the_last_keep() {
        let l = Limits {
            plateau: Some(3),
            ..Limits::default()
        };
        let s = spent(0, 0, 0);
        use Status::*;
        assert_eq!(budget_stop(&l, &s, &replay(&[Discard, Crash])), None);
        assert_eq!(
            budget_stop(&l, &s, &replay(&[Discard, Crash, NoOp])),
            Some(Stop::Plateau(3))
        );
        // A keep restarts the count; bookkeeping rows are not experiments (though the current
        // rules count a refine row toward `consecutive_discards`).
        let refined = replay(&[Discard, Discard, Refine]);
        assert_eq!(refined.tally.consecutive_discards, 3);
        assert_eq!(budget_stop(&l, &s, &refined), None);
        assert_eq!(
            budget_stop(&l, &s, &replay(&[Discard, Discard, Keep, Discard, Refine])),
            None
        );
        assert_eq!(
            budget_stop(
                &l,
                &s,
                &replay(&[Keep, Discard, Refine, Discard, Pivot, Discard])
            ),
            Some(Stop::Plateau(3))
        );
    }

    #[test]
    fn the_first_budget_in_order_is_named() {
        let l = Limits {
            max_duration: Some(Duration::from_secs(10)),
            until: Some((SystemTime::UNIX_EPOCH, "00:00".into())),
            max_tokens: Some(1),
            plateau: Some(1),
        };
        let r = replay(&[Status::Discard]);
        assert_eq!(
            which(budget_stop(&l, &spent(10, 5, 5), &r)),
            Some(Budget::MaxDuration)
        );
        assert_eq!(
            which(budget_stop(&l, &spent(9, 5, 5), &r)),
            Some(Budget::Until)
        );
    }
}
