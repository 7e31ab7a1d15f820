//! The loop mode: improve the metric in either direction until a stop condition or the cap.

use super::Policy;

/// The loop mode's policy (strict improvement, no goal of its own).
pub struct Loop;

impl Policy for Loop {
    fn template(&self) -> &'static str {
        include_str!("../../../modes/loop.md")
    }
}
