//! The integration suite: the binary against temporary git repositories. One module per area.

#[path = "../support/mock_responses.rs"]
mod mock_responses;
mod support;

mod budgets;
mod checklist;
mod claude;
mod cli;
mod codex;
mod config_check;
mod config_file;
mod confirm;
mod crash;
mod crash_leftovers;
mod debug_mode;
mod docs;
mod escalation;
mod evaluator;
mod exec;
mod finalize;
mod gates;
mod gitdir;
mod history;
mod holdout;
mod launch;
mod layout;
mod loop_basic;
mod measure_checks;
mod nonutf8;
mod overnight;
mod plan;
mod preflight;
mod readonly_git;
mod recipes;
mod report;
mod resume;
mod security;
mod security_run;
mod seq_keep;
mod ship;
mod skill;
mod status_cmd;
mod stress;
mod watch;
