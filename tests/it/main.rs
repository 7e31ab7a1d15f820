//! The integration suite: the binary against temporary git repositories. One module per area.

mod support;

mod cli;
mod crash;
mod escalation;
mod loop_basic;
mod preflight;
mod resume;
mod status_cmd;
