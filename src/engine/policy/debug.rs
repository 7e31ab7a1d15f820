//! The debug mode's policy: each turn tests one hypothesis about the symptom and reports a
//! finding the engine checks; the metric (confirmed findings) is the engine's, and running out
//! of new leads (the pivots exhausted) is the normal end, not a call for help.

use super::{Policy, Stop};

/// The debug mode's policy.
pub struct Debug;

impl Policy for Debug {
    fn template(&self) -> &'static str {
        include_str!("../../../modes/debug.md")
    }

    fn reports_findings(&self) -> bool {
        true
    }

    fn exhausted(&self, pivots: u64) -> Stop {
        diminishing_returns(pivots)
    }
}

/// The end of a findings hunt once `pivots` pivots found nothing new.
pub fn diminishing_returns(pivots: u64) -> Stop {
    Stop::Goal(format!(
        "diminishing returns: {pivots} pivots without a new finding"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_ends_on_diminishing_returns_never_on_a_metric() {
        assert!(Debug.reports_findings());
        assert_eq!(Debug.goal_reached("confirmed_findings", 0.0), None);
        assert!(matches!(Debug.exhausted(3), Stop::Goal(m) if m.contains("diminishing returns")));
    }
}
