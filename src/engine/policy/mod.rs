//! A mode is a policy over the same step machine: its prompt template, its keep decision and its
//! stop rule. This module also holds the decisions taken between iterations (stop checks, the
//! escalation rows), pure and shared by every mode (GUIDE §7).

mod budget;
mod debug;
mod fix;
mod loop_mode;
pub mod security;
mod ship;

use super::Direction;
use super::number::canonical;
use super::reducer::{Escalation, Replay, Thresholds};
use super::row::Status;
use super::stop::StopCondition;
use crate::config::Mode;

pub use budget::{Budget, Limits, Spent, budget_stop};
pub use debug::Debug;
pub use fix::Fix;
pub use loop_mode::Loop;
pub use security::Security;
pub use ship::Ship;

/// Why a run stopped.
#[derive(Clone, Debug, PartialEq)]
pub enum Stop {
    Goal(String),
    Cap(u64),
    NeedsHuman(String),
    Blocked(String),
    Interrupted(i32),
    /// A budget of an unattended run was spent (`--max-duration`, `--until`, `--max-tokens`).
    Budget(Budget, String),
    /// `--plateau N`: N experiments in a row without a keep.
    Plateau(u64),
    /// `stop --after-iteration`: ended on request between iterations.
    Requested,
}

/// What distinguishes one mode from another.
pub trait Policy {
    /// The mode's prompt template (`modes/<mode>.md`).
    fn template(&self) -> &'static str;

    /// Refuses settings the mode cannot work with (the message names the flag to change).
    fn check(&self, _direction: Direction) -> Result<(), String> {
        Ok(())
    }

    /// Returns true when a measured `trial` may be kept over the `retained` metric.
    fn improves(&self, direction: Direction, trial: f64, retained: f64) -> bool {
        direction.improves(trial, retained)
    }

    /// The mode's own goal, checked before every iteration: `Some(why)` ends the run.
    fn goal_reached(&self, _metric: &str, _retained: f64) -> Option<String> {
        None
    }

    /// The mode's turns end with a finding the engine checks (debug, security): a turn that
    /// changes nothing is still measured, its trial is evidence (always rolled back, kept under
    /// the run's refs) and the guard waits for fixes.
    fn reports_findings(&self) -> bool {
        false
    }

    /// The stop once the pivots are exhausted: a human is needed, unless the mode ends there.
    fn exhausted(&self, pivots: u64) -> Stop {
        exhausted(pivots)
    }
}

/// Returns the policy of a mode.
pub fn for_mode(mode: Mode) -> &'static dyn Policy {
    match mode {
        Mode::Fix => &Fix,
        Mode::Ship => &Ship,
        Mode::Debug => &Debug,
        Mode::Security => &Security,
        Mode::Loop => &Loop,
    }
}

/// The run's limits, as the between-iterations decisions need them.
#[derive(Clone, Debug)]
pub struct Rules {
    pub metric: String,
    pub stop_condition: Option<(String, StopCondition)>,
    pub thresholds: Thresholds,
    pub iterations: Option<u64>,
}

fn exhausted(pivots: u64) -> Stop {
    Stop::NeedsHuman(format!(
        "{pivots} pivots without a keep; a human is needed (change the goal or scope with --fresh, or raise --max-pivots)"
    ))
}

/// The stop that applies before the next iteration, if any, in GUIDE §7's order: goal (the stop
/// condition, then the mode's own), pivots exhausted, the iteration cap (`--iterations N`: N
/// experiments, bookkeeping rows and interruptions not counted).
pub fn stop_check(policy: &dyn Policy, rules: &Rules, replay: &Replay) -> Option<Stop> {
    let t = &replay.tally;
    if let Some((text, cond)) = &rules.stop_condition
        && cond.satisfied(t.current_metric)
    {
        return Some(Stop::Goal(format!(
            "stop condition `{text}` met ({} = {})",
            rules.metric,
            canonical(t.current_metric)
        )));
    }
    if let Some(why) = policy.goal_reached(&rules.metric, t.current_metric) {
        return Some(Stop::Goal(why));
    }
    if replay.pivots_exhausted(rules.thresholds) {
        return Some(policy.exhausted(t.pivot_count));
    }
    if let Some(cap) = rules.iterations
        && replay.ladder.experiments >= cap
    {
        return Some(Stop::Cap(cap));
    }
    None
}

/// A bookkeeping row the ladder asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Escalate {
    pub status: Status,
    pub description: String,
    /// A pivot drops the agent's session.
    pub drop_session: bool,
}

/// The next bookkeeping row, if the ladder asks for one and the iteration cap leaves room for
/// another experiment (a capped run ends on its last experiment; the ladder catches up on resume).
pub fn next_escalation(rules: &Rules, replay: &Replay) -> Option<Escalate> {
    let e = replay.pending_escalation(rules.thresholds)?;
    if rules
        .iterations
        .is_some_and(|cap| replay.ladder.experiments >= cap)
    {
        return None;
    }
    let k = replay.ladder.since_reset;
    let (status, description) = match e {
        Escalation::Refine => (
            Status::Refine,
            format!("[REFINE] {k} failed experiments in a row; next turn refines the strategy"),
        ),
        Escalation::Pivot => (
            Status::Pivot,
            format!(
                "[PIVOT] {k} failed experiments since the last keep or pivot; abandoning the strategy (pivot {})",
                replay.tally.pivot_count + 1
            ),
        ),
        Escalation::Search => (
            Status::Search,
            "[SEARCH] two pivots without a keep; next turn looks for outside ideas".to_string(),
        ),
    };
    Some(Escalate {
        status,
        description,
        drop_session: e == Escalation::Pivot,
    })
}

/// The row a stop leaves, if any: a hard blocker (a moved branch, someone editing between
/// iterations, a full disk, verify failing five times in a row) leaves a `blocked` row wherever
/// it was found; the other stops leave none.
pub fn closing_row(stop: &Stop) -> Option<(Status, String)> {
    match stop {
        Stop::Blocked(why) => Some((Status::Blocked, why.clone())),
        Stop::Goal(_)
        | Stop::Cap(_)
        | Stop::NeedsHuman(_)
        | Stop::Interrupted(_)
        | Stop::Budget(..)
        | Stop::Plateau(_)
        | Stop::Requested => None,
    }
}

/// After a pivot row: the stop when the pivots are exhausted.
pub fn after_pivot(policy: &dyn Policy, rules: &Rules, replay: &Replay) -> Option<Stop> {
    replay
        .pivots_exhausted(rules.thresholds)
        .then(|| policy.exhausted(replay.tally.pivot_count))
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
