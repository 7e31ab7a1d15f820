//! codex-autoresearch: an engine for autonomous, metric-driven code improvement.
//!
//! ```text
//! baseline -> [ propose (agent) -> inspect -> trial commit -> verify -> guard (-> rework)
//!              -> keep | roll back -> record -> escalate -> stop check ] * N
//! ```
//!
//! Ownership: `engine` holds the pure rules (reducer, decisions, escalation, stop grammar, metric
//! parsing); `driver` runs the loop and is the only module that sequences I/O; `git`, `process`
//! and `artifacts` are the I/O primitives; `agent` is the boundary to coding agents; `cli`,
//! `config`, `output` and `status` face the user. The results TSV is the source of truth: the
//! state file is always a replay of it.

pub mod agent;
pub mod artifacts;
pub mod cli;
pub mod config;
pub mod driver;
pub mod duration;
pub mod engine;
pub mod error;
pub mod fsutil;
pub mod git;
pub mod gitdir;
pub mod output;
pub mod process;
pub mod prompt;
pub mod scope;
pub mod signal;
pub mod status;
pub mod watch;
