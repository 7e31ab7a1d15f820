//! `plan`'s one agent turn: given the goal and the repository profile, the agent proposes 1–3
//! candidate configurations, read-only. Codex answers through `--output-schema` (`codex exec
//! --sandbox read-only`), Claude Code in plan mode (`--permission-mode plan`), a command agent
//! with a JSON object on its last stdout line (the prompt on stdin, the schema's path in
//! `AUTORESEARCH_PLAN_SCHEMA`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::candidate::{self, Candidate};
use super::profile::Profile;
use crate::error::{Error, IoContext, Result};
use crate::process::{self, End, Spec};

/// Which agent proposes the candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanAgent {
    Codex,
    Claude,
    Command,
    None,
}

/// How the agent is started.
pub struct AgentSetup {
    pub kind: PlanAgent,
    pub cmd: Option<String>,
    pub codex_bin: Option<PathBuf>,
    pub claude_bin: Option<PathBuf>,
    pub model: Option<String>,
    pub extra: Vec<String>,
    pub timeout: Duration,
}

/// The candidates an agent proposed and how long its turn took.
pub struct Proposed {
    pub candidates: Vec<Candidate>,
    pub took: Duration,
}

/// The prompt of the planning turn.
pub fn prompt(goal: &str, profile: &Profile) -> String {
    let profile = serde_json::to_string_pretty(profile).unwrap_or_default();
    let schema = candidate::schema().to_string();
    format!(
        "You are planning an unattended codex-autoresearch run in this repository. Do not change any file.\n\n\
         Goal: {goal}\n\n\
         Repository profile (computed by the engine):\n{profile}\n\n\
         Propose 1 to 3 candidate configurations, best first. Each one:\n\
         - scope: globs (from the repository root) of the tracked files the agent may change, not the tests or the measurement;\n\
         - metric, direction (lower|higher) and verify: a shell command, run from the root, that prints the metric as a number on its last line (verify_format \"scalar\"), or with verify_format \"regex\" a metric_regex whose first group is the number;\n\
         - mode \"fix\" when the metric is a count to drive to 0 (failing tests, lint errors), else \"loop\";\n\
         - guard: a command that must pass for a change to be kept (e.g. the test suite), or null;\n\
         - verify and guard must not modify tracked files and must not read autoresearch-results/, .codex-autoresearch/ or .git.\n\
         Answer with one JSON object matching this schema, on the last line:\n{schema}\n"
    )
}

fn binary(flag: Option<&Path>, env: &str, name: &str) -> Result<PathBuf> {
    crate::agent::resolve_binary(flag, env, name)
        .filter(|b| crate::agent::is_executable(b))
        .ok_or_else(|| {
            Error::Refused(format!(
                "the {name} CLI was not found; install it, point --{name}-bin or ${env} at it, or plan offline with --agent none"
            ))
        })
}

/// Runs the planning turn in `root`; a turn that gives no candidates is an error naming why.
pub fn propose(a: &AgentSetup, root: &Path, goal: &str, profile: &Profile) -> Result<Proposed> {
    let dir = tempfile::Builder::new()
        .prefix("autoresearch-plan-")
        .tempdir()
        .ctx("create a temporary directory in", &std::env::temp_dir())?;
    let schema = dir.path().join("schema.json");
    let last = dir.path().join("answer.txt");
    std::fs::write(&schema, candidate::schema().to_string()).ctx("write", &schema)?;
    let text = prompt(goal, profile);
    let (mut spec, who) = match a.kind {
        PlanAgent::Codex => {
            let bin = binary(a.codex_bin.as_deref(), "CODEX_BIN", "codex")?;
            let mut argv: Vec<OsString> = vec![bin.into(), "exec".into(), "-C".into()];
            argv.extend([root.into(), "--sandbox".into(), "read-only".into()]);
            argv.extend(["--output-schema".into(), schema.clone().into()]);
            argv.extend(["--output-last-message".into(), last.clone().into()]);
            push_model_and_extra(&mut argv, a, "-m");
            argv.push("-".into());
            (Spec::argv(argv, root), "codex")
        }
        PlanAgent::Claude => {
            let bin = binary(a.claude_bin.as_deref(), "CLAUDE_BIN", "claude")?;
            let mut argv: Vec<OsString> = vec![bin.into(), "-p".into()];
            argv.extend(["--permission-mode".into(), "plan".into()]);
            argv.extend(["--output-format".into(), "text".into()]);
            push_model_and_extra(&mut argv, a, "--model");
            (Spec::argv(argv, root), "claude")
        }
        PlanAgent::Command => {
            let cmd = a.cmd.as_deref().filter(|c| !c.trim().is_empty()).ok_or_else(|| {
                Error::Usage("--agent command needs --agent-cmd CMD (the command that prints the candidates as JSON on its last line)".into())
            })?;
            let mut spec = Spec::shell(cmd, root);
            spec.env
                .push(("AUTORESEARCH_PLAN_SCHEMA".into(), schema.clone().into()));
            (spec, "the agent command")
        }
        PlanAgent::None => {
            return Err(Error::Usage(
                "plan --agent none has no agent turn: its candidates come from the profile".into(),
            ));
        }
    };
    spec.stdin = Some(text.into_bytes());
    spec.timeout = Some(a.timeout);
    let out =
        process::run(&spec).map_err(|e| Error::Blocked(format!("cannot start {who}: {e}")))?;
    if let End::Interrupted(sig) = out.end {
        return Err(Error::Interrupted(sig, "during plan's agent turn"));
    }
    let answer = match a.kind {
        PlanAgent::Codex => std::fs::read_to_string(&last).unwrap_or_default(),
        _ => out.stdout.clone(),
    };
    let failed = |why: String| {
        let tail = out.last_lines(3).replace('\n', " | ");
        Error::Blocked(format!(
            "{who} proposed no usable candidate: {why} ({}{}); try again, or plan offline with --agent none",
            out.end.describe(),
            if tail.is_empty() {
                String::new()
            } else {
                format!("; last output: {tail}")
            }
        ))
    };
    match candidate::parse_answer(&answer) {
        Ok(candidates) => Ok(Proposed {
            candidates,
            took: out.duration,
        }),
        Err(why) => Err(failed(why)),
    }
}

fn push_model_and_extra(argv: &mut Vec<OsString>, a: &AgentSetup, model_flag: &str) {
    if let Some(m) = &a.model {
        argv.push(model_flag.into());
        argv.push(m.into());
    }
    argv.extend(a.extra.iter().map(OsString::from));
}
