//! The integration suite: the binary against temporary git repositories. One module per area.

#[path = "../support/mock_responses.rs"]
mod mock_responses;
mod support;

mod budgets;
mod claude;
mod cli;
mod codex;
mod config_check;
mod config_file;
mod confirm;
mod crash;
mod crash_leftovers;
mod docs;
mod escalation;
mod evaluator;
mod exec;
mod finalize;
mod gitdir;
mod history;
mod holdout;
mod launch;
mod loop_basic;
mod measure_checks;
mod nonutf8;
mod overnight;
mod preflight;
mod readonly_git;
mod recipes;
mod report;
mod resume;
mod seq_keep;
mod skill;
mod status_cmd;
mod stress;
mod watch;
