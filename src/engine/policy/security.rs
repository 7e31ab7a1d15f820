//! The security mode's policy (its template, keep and stop rules); the engine measures its metric.

use super::Policy;

/// The security mode's policy.
pub struct Security;

impl Policy for Security {
    fn template(&self) -> &'static str {
        include_str!("../../../modes/security.md")
    }
}
