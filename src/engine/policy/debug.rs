//! The debug mode's policy (its template, keep and stop rules); the engine measures its metric.

use super::Policy;

/// The debug mode's policy.
pub struct Debug;

impl Policy for Debug {
    fn template(&self) -> &'static str {
        include_str!("../../../modes/debug.md")
    }
}
