//! The command line: clap definitions, conversion of flags to [`Settings`], dispatch, and the
//! mapping of results to exit codes. Flag errors are one line and exit 2.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{
    AgentKind, Dur, HoldoutPolicy, KeepEffort, KeepRule, Layout, Mode, Patterns, Rollback, Sandbox,
    Session, Settings, Severity, ShipType, StringOrList, VerifyFormat,
};
use crate::engine::Direction;
use crate::error::{Error, exit};
use crate::output::{Output, Style};
use crate::scope::split_patterns;

/// Autonomous, metric-driven code improvement: an agent proposes, the engine measures and keeps
/// only improvements that are not noise.
#[derive(Parser, Debug)]
#[command(
    name = "codex-autoresearch",
    version,
    propagate_version = true,
    args_override_self = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the loop in the foreground; resumes the run in the repository if there is one.
    Run(Box<RunArgs>),
    /// Non-interactive CI run: always fresh and bounded, JSON lines on stdout, exit 0/1/2.
    Exec(Box<RunArgs>),
    /// Show the run in a repository: metrics, counts, last rows, whether it is running.
    Status(StatusArgs),
    /// Print the effective configuration and where each value comes from.
    Config(Box<ConfigArgs>),
    /// Install the $codex-autoresearch skill where Codex finds it, or print it.
    Skill(crate::skill::SkillArgs),
    /// Write the run's summary (report.md) and chart (progress.svg); print the report's path.
    Report(crate::report::ReportArgs),
    /// Start a run detached (RUN FLAGS as for `run`); returns once it has passed preflight.
    Launch(Box<RunArgs>),
    /// Print the run log of a launched run; -f follows it until the run ends.
    Logs(LogsArgs),
    /// End the live run (rolled back now, or after its current iteration) and wait for it.
    Stop(StopArgs),
    /// Re-measure the run's result in a scratch checkout: total effect and leave-one-out ablation.
    Confirm(ConfirmArgs),
    /// Propose and validate configurations for a goal; --write / --launch the chosen one.
    Plan(Box<crate::plan::PlanArgs>),
    /// Create a branch from the run's start commit holding its keeps (or one squashed commit).
    Finalize(crate::finalize::FinalizeArgs),
}

/// `logs` flags.
#[derive(Args, Debug)]
pub struct LogsArgs {
    #[command(flatten)]
    pub at: RunAt,
    /// Keep printing new lines until the run ends.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// How many of the last lines to print first.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 20, value_parser = crate::config::whole_number::<usize>)]
    pub lines: usize,
}

/// `stop` flags.
#[derive(Args, Debug)]
pub struct StopArgs {
    #[command(flatten)]
    pub at: RunAt,
    /// Let the current iteration finish and record its row, then end.
    #[arg(long)]
    pub after_iteration: bool,
    /// How long to wait for the end (default 2m, or 2h with --after-iteration).
    #[arg(long, value_name = "DUR")]
    pub timeout: Option<Dur>,
}

/// `confirm` flags.
#[derive(Args, Debug)]
pub struct ConfirmArgs {
    #[command(flatten)]
    pub at: RunAt,
    /// Verify runs per side (default: the run's setting, 10).
    #[arg(long, value_name = "N", value_parser = crate::config::whole_number::<u32>)]
    pub confirm_runs: Option<u32>,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `config`: the RUN FLAGS, plus which command to show the configuration of.
#[derive(Args, Debug, Default)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Show what `exec` would use (always fresh, iterations required) instead of `run`.
    #[arg(long)]
    pub exec: bool,
    /// Validate as `run` would and measure the baseline read-only; at most 10 lines.
    #[arg(long, conflicts_with = "exec")]
    pub check: bool,
}

/// The RUN FLAGS (GUIDE.md documents each one).
#[derive(Args, Debug, Default)]
// `--iterations -1` is a bad value of --iterations, not an unknown argument `-1`.
#[command(allow_negative_numbers = true)]
pub struct RunArgs {
    /// Read settings from this TOML file instead of <repo>/autoresearch.toml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Repository to work in (default: the git root of the current directory).
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Directory for the results, state, lessons and autoresearch-results/engine/ (default: the repo root).
    #[arg(long, value_name = "DIR")]
    pub artifacts_dir: Option<PathBuf>,
    /// Mode: loop, fix, debug, security or ship.
    #[arg(long, value_name = "MODE")]
    pub mode: Option<Mode>,
    /// What to achieve, in words.
    #[arg(long, value_name = "TEXT")]
    pub goal: Option<String>,
    /// Files the agent may change (glob; repeatable or comma separated).
    #[arg(long, value_name = "GLOB")]
    pub scope: Vec<String>,
    /// Name of the metric.
    #[arg(long, value_name = "NAME")]
    pub metric: Option<String>,
    /// Which way is better: lower or higher.
    #[arg(long, value_name = "lower|higher")]
    pub direction: Option<Direction>,
    /// Shell command that prints the metric.
    #[arg(long, value_name = "CMD")]
    pub verify: Option<String>,
    /// How verify prints the metric: scalar, metrics-json or regex.
    #[arg(long, value_name = "FORMAT")]
    pub verify_format: Option<VerifyFormat>,
    /// The metric's key in the JSON object (metrics-json; default: the metric name).
    #[arg(long, value_name = "KEY")]
    pub primary_metric_key: Option<String>,
    /// Regex whose first capture group is the metric (regex format; last match wins).
    #[arg(long, value_name = "RE")]
    pub metric_regex: Option<String>,
    /// Run verify N times and use the median.
    #[arg(long, value_name = "N", value_parser = crate::config::whole_number::<u32>)]
    pub repeat: Option<u32>,
    /// Shell command that must exit 0 for a keep.
    #[arg(long, value_name = "CMD")]
    pub guard: Option<String>,
    /// Stop after N iterations (every results row counts).
    #[arg(long, value_name = "N", value_parser = crate::config::whole_number::<u64>)]
    pub iterations: Option<u64>,
    /// Stop when the retained metric meets it, e.g. "metric <= 0.5", "below 10".
    #[arg(long, value_name = "TEXT")]
    pub stop_condition: Option<String>,
    /// The coding agent: codex, claude or command.
    #[arg(long, value_name = "AGENT")]
    pub agent: Option<AgentKind>,
    /// The command agent's shell command (prompt on stdin; last stdout line = description).
    #[arg(long, value_name = "CMD")]
    pub agent_cmd: Option<String>,
    /// Verify (and guard) timeout, e.g. 90s, 10m, 2h.
    #[arg(long, value_name = "DUR")]
    pub verify_timeout: Option<Dur>,
    /// Wall-clock limit of one agent turn.
    #[arg(long, value_name = "DUR")]
    pub agent_timeout: Option<Dur>,
    /// Limit on an agent turn without output.
    #[arg(long, value_name = "DUR")]
    pub agent_idle_timeout: Option<Dur>,
    /// Guard-failure rework turns before discarding.
    #[arg(long, value_name = "N", value_parser = crate::config::whole_number::<u32>)]
    pub rework: Option<u32>,
    /// Failed experiments in a row before a refine (0 disables).
    #[arg(long, value_name = "N", value_parser = crate::config::whole_number::<u64>)]
    pub refine_after: Option<u64>,
    /// Failed experiments in a row before a pivot (0 disables).
    #[arg(long, value_name = "N", value_parser = crate::config::whole_number::<u64>)]
    pub pivot_after: Option<u64>,
    /// Pivots without a keep before stopping for a human (0 disables).
    #[arg(long, value_name = "N", value_parser = crate::config::whole_number::<u64>)]
    pub max_pivots: Option<u64>,
    /// How rejected trials leave the branch: reset or revert.
    #[arg(long, value_name = "POLICY")]
    pub rollback: Option<Rollback>,
    /// Extra paths the agent must not change (glob; repeatable or comma separated).
    #[arg(long, value_name = "GLOB")]
    pub protect: Vec<String>,
    /// Keep rule: seq (noise-aware, repeats verify as needed) or strict (one sample each).
    #[arg(long, value_name = "RULE")]
    pub keep_rule: Option<KeepRule>,
    /// SEQ effort: default, thorough (more runs, more real gains found) or auto.
    #[arg(long, value_name = "EFFORT")]
    pub keep_effort: Option<KeepEffort>,
    /// Smallest change worth keeping: a number in the metric's units or a percentage (2%).
    #[arg(long, value_name = "X|X%")]
    pub min_effect: Option<String>,
    /// Verify runs of one trial before SEQ discards it as undecided.
    #[arg(long, value_name = "N", value_parser = crate::config::whole_number::<u32>)]
    pub max_runs: Option<u32>,
    /// Verify runs of the baseline when it is noisy (at least 2).
    #[arg(long, value_name = "K", value_parser = crate::config::whole_number::<u32>)]
    pub baseline_runs: Option<u32>,
    /// A second measurement the agent never sees, run at the baseline, after keeps, at the end.
    #[arg(long, value_name = "CMD")]
    pub holdout: Option<String>,
    /// What a keep whose holdout regressed becomes: tag or reject.
    #[arg(long, value_name = "POLICY")]
    pub holdout_policy: Option<HoldoutPolicy>,
    /// Do not confirm the result at the end of the run.
    #[arg(long)]
    pub no_confirm: bool,
    /// Verify runs per side when confirming the result.
    #[arg(long, value_name = "N", value_parser = crate::config::whole_number::<u32>)]
    pub confirm_runs: Option<u32>,
    /// Stop after this much active time (over all sessions), e.g. 8h.
    #[arg(long, value_name = "DUR")]
    pub max_duration: Option<Dur>,
    /// Stop at the next occurrence of this local time, e.g. 07:00.
    #[arg(long, value_name = "HH:MM")]
    pub until: Option<String>,
    /// Stop once the agent has used this many tokens.
    #[arg(long, value_name = "N", value_parser = crate::config::whole_number::<u64>)]
    pub max_tokens: Option<u64>,
    /// Stop after N experiments in a row without a keep.
    #[arg(long, value_name = "N", value_parser = crate::config::whole_number::<u64>)]
    pub plateau: Option<u64>,
    /// Shell command run when the run ends, needs a human or is blocked.
    #[arg(long, value_name = "CMD")]
    pub notify: Option<String>,
    /// Ship mode: the kind of project (auto, rust-crate, python-package, npm-package, generic).
    #[arg(long, value_name = "TYPE")]
    pub ship_type: Option<ShipType>,
    /// Ship mode: the command that ships (default: the type's own).
    #[arg(long, value_name = "CMD")]
    pub ship_cmd: Option<String>,
    /// Ship mode: consent to run the ship command once the checklist passes.
    #[arg(long)]
    pub approve_ship: bool,
    /// Ship mode: run the ship command's dry-run form instead of shipping.
    #[arg(long)]
    pub dry_run: bool,
    /// Ship mode: command run after a successful ship (e.g. a smoke test).
    #[arg(long, value_name = "CMD")]
    pub post_ship: Option<String>,
    /// Task list whose passing items are the metric (with --verify-format checklist).
    #[arg(long, value_name = "FILE")]
    pub checklist: Option<PathBuf>,
    /// Debug mode: the symptom to explain.
    #[arg(long, value_name = "TEXT")]
    pub symptom: Option<String>,
    /// Debug mode: a command that shows the symptom (fails while the bug is there).
    #[arg(long, value_name = "CMD")]
    pub repro: Option<String>,
    /// Debug and security modes: fix the confirmed findings after the hunt.
    #[arg(long)]
    pub fix: bool,
    /// Security mode: what to concentrate on.
    #[arg(long, value_name = "TEXT")]
    pub focus: Option<String>,
    /// Security mode: only code changed since this commit is in scope.
    #[arg(long, value_name = "BASE")]
    pub diff: Option<String>,
    /// Security mode with exec: exit 1 when a validated finding at or above this severity exists.
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<Severity>,
    /// File layout: current (autoresearch-results/) or march (the March 2026 names).
    #[arg(long, value_name = "LAYOUT")]
    pub layout: Option<Layout>,
    /// A condition on verify's metrics the final result should meet (repeatable).
    #[arg(long, value_name = "KEY OP VALUE")]
    pub acceptance_criteria: Vec<String>,
    /// A condition on verify's metrics every keep must meet (repeatable).
    #[arg(long, value_name = "KEY OP VALUE")]
    pub required_keep_criteria: Vec<String>,
    /// A label verify must report for a keep (repeatable).
    #[arg(long, value_name = "LABEL")]
    pub required_keep_label: Vec<String>,
    /// A label verify must report before the run stops as goal reached (repeatable).
    #[arg(long, value_name = "LABEL")]
    pub required_stop_label: Vec<String>,
    /// Name of the run (default: derived from the goal).
    #[arg(long, value_name = "TAG")]
    pub run_tag: Option<String>,
    /// Archive existing artifacts (*.prev) and start over.
    #[arg(long)]
    pub fresh: bool,
    /// JSON lines on stdout instead of human lines.
    #[arg(long)]
    pub json: bool,
    /// Path of the codex binary (default: $CODEX_BIN, then `codex` on PATH).
    #[arg(long, value_name = "PATH")]
    pub codex_bin: Option<PathBuf>,
    /// Path of the claude binary (default: $CLAUDE_BIN, then `claude` on PATH).
    #[arg(long, value_name = "PATH")]
    pub claude_bin: Option<PathBuf>,
    /// What the agent may write: workspace-write or danger-full-access.
    #[arg(long, value_name = "MODE")]
    pub sandbox: Option<Sandbox>,
    /// Model for the agent.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Extra argument passed to the agent CLI (repeatable).
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    pub agent_arg: Vec<String>,
    /// Agent sessions: resume (one per strategy) or fresh (new every iteration).
    #[arg(long, value_name = "POLICY")]
    pub session: Option<Session>,
    /// Total time to wait out agent quota or rate limits before stopping.
    #[arg(long, value_name = "DUR")]
    pub max_quota_wait: Option<Dur>,
}

/// Which run a command reads: `--repo DIR` and `--artifacts-dir DIR`.
#[derive(Args, Debug)]
pub struct RunAt {
    /// Repository (default: the git root of the current directory).
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Where the artifacts are, if not at the repo root.
    #[arg(long, value_name = "DIR")]
    pub artifacts_dir: Option<PathBuf>,
}

impl RunAt {
    /// The two paths made absolute against the current directory.
    pub fn absolute(&self) -> (Option<PathBuf>, Option<PathBuf>) {
        (absolute(&self.repo), absolute(&self.artifacts_dir))
    }
}

/// `status` flags.
#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub at: RunAt,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Also list the archived runs (`results.prev*.tsv`) with their dates and outcomes.
    #[arg(long)]
    pub all: bool,
}

/// Returns `p` made absolute against the current directory (flag paths are relative to it).
fn absolute(p: &Option<PathBuf>) -> Option<PathBuf> {
    p.as_ref()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
}

impl RunArgs {
    /// Returns the settings given as flags.
    pub fn to_settings(&self) -> Settings {
        Settings {
            repo: absolute(&self.repo),
            artifacts_dir: absolute(&self.artifacts_dir),
            mode: self.mode,
            goal: self.goal.clone(),
            scope: (!self.scope.is_empty()).then(|| Patterns(split_patterns(&self.scope))),
            metric: self.metric.clone(),
            direction: self.direction,
            verify: self.verify.clone(),
            verify_format: self.verify_format,
            primary_metric_key: self.primary_metric_key.clone(),
            metric_regex: self.metric_regex.clone(),
            repeat: self.repeat,
            guard: self.guard.clone(),
            iterations: self.iterations,
            stop_condition: self.stop_condition.clone(),
            agent: self.agent,
            agent_cmd: self.agent_cmd.clone(),
            codex_bin: absolute(&self.codex_bin),
            claude_bin: absolute(&self.claude_bin),
            sandbox: self.sandbox,
            model: self.model.clone(),
            agent_arg: (!self.agent_arg.is_empty()).then(|| StringOrList(self.agent_arg.clone())),
            session: self.session,
            verify_timeout: self.verify_timeout,
            agent_timeout: self.agent_timeout,
            agent_idle_timeout: self.agent_idle_timeout,
            max_quota_wait: self.max_quota_wait,
            rework: self.rework,
            refine_after: self.refine_after,
            pivot_after: self.pivot_after,
            max_pivots: self.max_pivots,
            rollback: self.rollback,
            protect: (!self.protect.is_empty()).then(|| Patterns(split_patterns(&self.protect))),
            keep_rule: self.keep_rule,
            keep_effort: self.keep_effort,
            min_effect: self.min_effect.clone(),
            max_runs: self.max_runs,
            baseline_runs: self.baseline_runs,
            holdout: self.holdout.clone(),
            holdout_policy: self.holdout_policy,
            confirm: self.no_confirm.then_some(false),
            confirm_runs: self.confirm_runs,
            max_duration: self.max_duration,
            until: self.until.clone(),
            max_tokens: self.max_tokens,
            plateau: self.plateau,
            notify: self.notify.clone(),
            ship_type: self.ship_type,
            ship_cmd: self.ship_cmd.clone(),
            approve_ship: self.approve_ship.then_some(true),
            dry_run: self.dry_run.then_some(true),
            post_ship: self.post_ship.clone(),
            checklist: absolute(&self.checklist),
            symptom: self.symptom.clone(),
            repro: self.repro.clone(),
            fix: self.fix.then_some(true),
            focus: self.focus.clone(),
            diff: self.diff.clone(),
            fail_on: self.fail_on,
            layout: self.layout,
            acceptance_criteria: list(&self.acceptance_criteria),
            required_keep_criteria: list(&self.required_keep_criteria),
            required_keep_label: list(&self.required_keep_label),
            required_stop_label: list(&self.required_stop_label),
            run_tag: self.run_tag.clone(),
            fresh: self.fresh.then_some(true),
            json: self.json.then_some(true),
        }
    }
}

/// A repeatable flag's values as a setting (unset when none were given).
fn list(values: &[String]) -> Option<StringOrList> {
    (!values.is_empty()).then(|| StringOrList(values.to_vec()))
}

/// The exit of a command that prints for people: its code, or its error as one line.
fn human(r: Result<u8, Error>) -> ExitCode {
    match r {
        Ok(code) => ExitCode::from(code),
        Err(e) => fail(
            &Output {
                style: Style::Human,
            },
            &e,
        ),
    }
}

fn fail(out: &Output, e: &Error) -> ExitCode {
    out.note(&format!("error: {e}"));
    if out.style == Style::Exec {
        exec_error(&e.to_string(), e.exit_code());
    }
    ExitCode::from(e.exit_code())
}

/// Writes exec's machine-readable error as the last stderr line.
fn exec_error(message: &str, code: u8) {
    eprintln!(
        "{}",
        serde_json::json!({ "error": message, "exit_code": code })
    );
}

fn env_var(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// Gathers the explicit settings of a `run`, `exec` or `config` invocation.
fn gather(args: &RunArgs, exec: bool) -> Result<crate::config::Gathered, Error> {
    let mut flags = args.to_settings();
    if exec {
        flags.json = None;
    }
    let g = crate::config::gather(flags, absolute(&args.config).as_deref(), env_var)?;
    if exec && g.settings.iterations.is_none() {
        return Err(crate::config::missing("iterations"));
    }
    Ok(g)
}

fn run_command(args: &RunArgs, exec: bool) -> ExitCode {
    if !exec {
        crate::launch::child::adopt();
    }
    let style = if exec {
        Style::Exec
    } else if args.json {
        Style::Json
    } else {
        Style::Human
    };
    let out = Output { style };
    let gathered = match gather(args, exec) {
        Ok(g) => g,
        Err(e) => return fail(&out, &e),
    };
    let out = if !exec && gathered.settings.json == Some(true) {
        Output { style: Style::Json }
    } else {
        out
    };
    let opts = crate::driver::Options {
        settings: gathered.settings,
        sources: gathered.sources,
        config_file: gathered.file,
        exec,
        output: out,
    };
    match crate::driver::run(opts) {
        Ok(summary) => {
            let completed =
                summary.exit_code == exit::OK || summary.exit_code == exit::NO_IMPROVEMENT;
            if exec && !completed {
                // Blocked or interrupted: no completion line; stdout keeps the rows recorded.
                out.note(&summary.message);
                exec_error(&summary.message, summary.exit_code);
            } else {
                out.finished(&summary);
            }
            ExitCode::from(summary.exit_code)
        }
        Err(e) => fail(&out, &e),
    }
}

/// `launch`: the run's own flags go to a detached `run`; `--json` is launch's.
fn launch_command(args: &RunArgs) -> ExitCode {
    let out = Output {
        style: Style::Human,
    };
    // Flags and settings are checked by the run itself (same words, same exit code); these are
    // read only to find a live run.
    let settings = gather(args, false)
        .map(|g| g.settings)
        .unwrap_or_else(|_| args.to_settings());
    let child_args = crate::launch::run_args(std::env::args_os());
    match crate::launch::launch(&settings, child_args, args.json) {
        Ok(code) => ExitCode::from(code),
        Err(e) => fail(&out, &e),
    }
}

/// Parses the command line and runs the command; returns the process exit code.
/// The exit of a command line clap refused: help and version print and exit 0 (help for a
/// missing subcommand exits 2); anything else is one error line, exit 2 (for `exec`, with its
/// JSON error line too).
fn parse_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                exit::BLOCKED
            } else {
                exit::OK
            },
        );
    }
    let rendered = e.render().to_string();
    let first = rendered
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("error: invalid arguments");
    eprintln!("codex-autoresearch: {first}");
    if std::env::args().nth(1).as_deref() == Some("exec") {
        exec_error(first.trim_start_matches("error: "), exit::BLOCKED);
    }
    ExitCode::from(exit::BLOCKED)
}

pub fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == crate::notify::HELPER) {
        return crate::notify::helper(&args[2..]);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return parse_error(&e),
    };
    match cli.command {
        Command::Run(args) => run_command(&args, false),
        Command::Exec(args) => run_command(&args, true),
        Command::Status(args) => human(
            crate::status::status(
                args.at.repo.as_deref(),
                args.at.artifacts_dir.as_deref(),
                args.json,
                args.all,
            )
            .map(|()| 0),
        ),
        Command::Report(args) => {
            let (repo, dir) = args.at.absolute();
            human(crate::report::report(repo.as_deref(), dir.as_deref(), args.json).map(|()| 0))
        }
        Command::Launch(args) => launch_command(&args),
        Command::Logs(a) => {
            let (repo, dir) = a.at.absolute();
            human(
                crate::launch::control::logs(repo.as_deref(), dir.as_deref(), a.lines, a.follow)
                    .map(|()| 0),
            )
        }
        Command::Stop(a) => {
            let (repo, dir) = a.at.absolute();
            human(crate::launch::control::stop(
                &crate::launch::control::StopArgs {
                    repo: repo.as_deref(),
                    artifacts_dir: dir.as_deref(),
                    after_iteration: a.after_iteration,
                    timeout: a.timeout.map(|d| d.0),
                },
            ))
        }
        Command::Confirm(args) => human(crate::confirm::command(
            args.at.absolute().0.as_deref(),
            args.at.absolute().1.as_deref(),
            args.confirm_runs,
            args.json,
        )),
        Command::Finalize(args) => human(crate::finalize::command(&args)),
        Command::Config(args) => {
            let out = Output {
                style: Style::Human,
            };
            let ConfigArgs {
                mut run,
                exec,
                check,
            } = *args;
            let json = run.json;
            run.json = false;
            if check {
                let launch = crate::check::launch_line(std::env::args_os());
                return match crate::check::command(gather(&run, false), json, launch) {
                    Ok(code) => ExitCode::from(code),
                    Err(e) => fail(&out, &e),
                };
            }
            // A missing --iterations for exec is reported with the table, not instead of it.
            match gather(&run, false).and_then(|g| crate::status::config(g, json, exec)) {
                Ok(code) => ExitCode::from(code),
                Err(e) => fail(&out, &e),
            }
        }
        Command::Plan(args) => human(crate::plan::command(*args)),
        Command::Skill(args) => {
            let out = Output {
                style: Style::Human,
            };
            match crate::skill::command(args, &out) {
                Ok(code) => ExitCode::from(code),
                Err(e) => fail(&out, &e),
            }
        }
    }
}
