//! Findings of the debug and security modes: what an agent reports (the [`model`]) and the
//! engine's pure decisions about them: reading it from the agent's message ([`parse`]),
//! checking it ([`validate`]), the run's findings and metric ([`store`]), what the next prompt
//! is told ([`prompt`]) and the JSON schema Codex is given ([`schema`]).

pub mod coverage;
pub mod gate;
pub mod model;
pub mod parse;
pub mod prompt;
pub mod schema;
pub mod store;
pub mod validate;

pub use model::{Finding, Location, Stride, Verdict};
pub use store::{Assessed, Outcome, ReproRun, Store, Validated};
