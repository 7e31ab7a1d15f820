//! The fix mode: drive a failure count down; reaching 0 is the goal.

use super::Policy;
use crate::engine::Direction;

/// The fix mode's policy: like loop, and the run ends once the retained metric is 0.
pub struct Fix;

impl Policy for Fix {
    fn template(&self) -> &'static str {
        include_str!("../../../modes/fix.md")
    }

    fn check(&self, direction: Direction) -> Result<(), String> {
        match direction {
            Direction::Lower => Ok(()),
            Direction::Higher => {
                Err("--mode fix drives an error count down to zero; use --direction lower".into())
            }
        }
    }

    fn goal_reached(&self, metric: &str, retained: f64) -> Option<String> {
        (retained == 0.0).then(|| format!("{metric} reached 0"))
    }
}
