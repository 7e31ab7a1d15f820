//! codex-autoresearch: an engine for autonomous, metric-driven code improvement.
//!
//! ```text
//! baseline -> [ propose (agent) -> inspect -> trial commit -> verify -> guard (-> rework)
//!              -> keep | roll back -> record -> escalate -> stop check ] * N
//! ```
//!
//! Ownership: `engine` decides and does no I/O: the iteration's step machine (`engine::step`:
//! observations in, actions out), the mode policies (`engine::policy`: template, keep rule, goal,
//! stop checks, escalation), the reducer, metric parsing. `driver` executes: it is the only
//! module that sequences I/O (`driver::startup`, `preflight`, `recover`, `step` — the executor —,
//! `measure`, `tree`); `git`, `process` and `artifacts` are the I/O primitives; `agent` is the
//! boundary to coding agents; `cli`, `config`, `output` and `status` face the user. The results
//! TSV is the source of truth: the state file is always a replay of it.

pub mod agent;
pub mod artifacts;
pub mod caplog;
pub mod check;
mod check_engine;
pub mod cli;
pub mod config;
pub mod confirm;
pub mod diff_scope;
pub mod driver;
pub mod duration;
pub mod ending;
pub mod engine;
pub mod engine_env;
pub mod error;
pub mod finalize;
pub mod fsutil;
pub mod git;
pub mod gitdir;
pub mod gitlock;
pub mod launch;
pub mod localtime;
pub mod notify;
pub mod output;
pub mod plan;
pub mod process;
pub mod procfs;
pub mod prompt;
pub mod protection;
pub mod repopath;
pub mod report;
pub mod scope;
pub mod ship;
pub mod signal;
pub mod skill;
pub mod status;
pub mod status_gates;
pub mod verify;
pub mod watch;
pub mod writable;
