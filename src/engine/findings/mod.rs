//! Findings of the debug and security modes: what an agent reports (the [`model`]) and the
//! engine's pure decisions about them.

pub mod coverage;
pub mod gate;
pub mod model;

pub use model::{Finding, Location, Stride, Verdict};
