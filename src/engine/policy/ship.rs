//! The ship mode's policy (its template, keep and stop rules); the engine measures its metric.

use super::Policy;

/// The ship mode's policy.
pub struct Ship;

impl Policy for Ship {
    fn template(&self) -> &'static str {
        include_str!("../../../modes/ship.md")
    }
}
