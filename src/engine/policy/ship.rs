//! The ship mode's policy: its template, higher readiness only, and its goal (every checklist
//! item passes); the engine measures its metric (`driver::checklist`), the ship step follows
//! the goal (`driver::ship_step`).

use super::Policy;
use crate::engine::Direction;

/// The ship mode's policy.
pub struct Ship;

impl Policy for Ship {
    fn template(&self) -> &'static str {
        include_str!("../../../modes/ship.md")
    }

    fn check(&self, direction: Direction) -> Result<(), String> {
        match direction {
            Direction::Higher => Ok(()),
            Direction::Lower => Err(
                "--mode ship measures readiness, where higher is better: drop --direction lower"
                    .into(),
            ),
        }
    }

    fn goal_reached(&self, _metric: &str, retained: f64) -> Option<String> {
        (retained >= 100.0).then(|| "readiness 100%: every checklist item passes".to_string())
    }
}
