//! Validation: merged settings become a [`RunConfig`], or an error that names the flag.

use std::path::PathBuf;
use std::time::Duration;

use crate::engine::Direction;
use crate::engine::metric::MetricFormat;
use crate::engine::reducer::Thresholds;
use crate::engine::stop::{self, StopCondition};
use crate::error::{Error, Result};
use crate::scope::PathSet;

use super::*;

/// A validated run configuration.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub mode: Mode,
    pub goal: String,
    pub scope: Vec<String>,
    pub metric: String,
    pub direction: Direction,
    pub verify: String,
    pub verify_format: VerifyFormat,
    /// The JSON key of the metric (metrics-json), defaulting to the metric name.
    pub primary_metric_key: String,
    pub metric_regex: Option<String>,
    /// How verify's output is read (built once: the regex is compiled here).
    pub metric_format: MetricFormat,
    pub repeat: u32,
    pub guard: Option<String>,
    pub iterations: Option<u64>,
    pub stop_condition: Option<(String, StopCondition)>,
    pub agent: AgentKind,
    pub agent_cmd: Option<String>,
    pub codex_bin: Option<PathBuf>,
    pub claude_bin: Option<PathBuf>,
    pub sandbox: Sandbox,
    pub model: Option<String>,
    pub agent_args: Vec<String>,
    pub session: Session,
    pub verify_timeout: Duration,
    pub agent_timeout: Duration,
    pub agent_idle_timeout: Duration,
    pub max_quota_wait: Duration,
    pub rework: u32,
    pub thresholds: Thresholds,
    pub rollback: Rollback,
    pub protect: Vec<String>,
    pub keep_rule: KeepRule,
    pub keep_effort: KeepEffort,
    /// `--min-effect`: the smallest change worth keeping, as written (`0.5` or `2%`).
    pub min_effect: Option<String>,
    /// `--max-runs`: candidate verify runs per trial before SEQ gives up on it.
    pub max_runs: u32,
    pub baseline_runs: u32,
    pub holdout: Option<String>,
    pub holdout_policy: HoldoutPolicy,
    /// Confirm the result at the end of a run with a keep (`--no-confirm` turns it off).
    pub confirm: bool,
    pub confirm_runs: u32,
    pub max_duration: Option<Duration>,
    /// `--until HH:MM`: stop at the next occurrence of this local time.
    pub until: Option<(u8, u8)>,
    pub max_tokens: Option<u64>,
    pub plateau: Option<u64>,
    pub notify: Option<String>,
    pub run_tag: Option<String>,
    /// `--acceptance-criteria`, `--required-keep-criteria`, `--required-keep-label`,
    /// `--required-stop-label` (GUIDE "Multi-metric gates").
    pub gates: crate::engine::gates::Gates,
    /// The merged settings this was built from (stored with the run).
    pub settings: Settings,
}

/// Returns the error for a required setting that no source gave.
pub fn missing(key: &str) -> Error {
    let env = ENV_VARS
        .iter()
        .find(|(_, k)| *k == key)
        .map(|(v, _)| format!(", {v}"))
        .unwrap_or_default();
    Error::Usage(format!(
        "missing required field: {key} (set {}{env} or `{key}` in {CONFIG_FILE})",
        flag(key)
    ))
}

fn required<T: Clone>(v: &Option<T>, key: &str) -> Result<T> {
    v.clone().ok_or_else(|| missing(key))
}

/// The metric the engine measures itself in a mode or verify format that needs no verify
/// command: its default name and direction (ship's readiness, a checklist's passing tasks, the
/// validated findings of debug and security). `None`: verify measures.
pub fn engine_metric(mode: Mode, format: VerifyFormat) -> Option<(&'static str, Direction)> {
    match (mode, format) {
        (Mode::Ship, _) => Some(("readiness", Direction::Higher)),
        (Mode::Debug, _) => Some(("confirmed_findings", Direction::Higher)),
        (Mode::Security, _) => Some(("security_score", Direction::Higher)),
        (_, VerifyFormat::Checklist) => Some(("tasks_done", Direction::Higher)),
        _ => None,
    }
}

/// The mode-specific flags, each refused outside its modes with one line naming the flag:
/// `--focus`, `--diff`, `--fail-on` (security), `--symptom`, `--repro` (debug), `--fix` (debug
/// and security). Every such check lives here.
pub fn check_mode_flags(s: &Settings) -> Result<()> {
    let mode = s.mode.unwrap_or(Mode::Loop);
    let text = |v: &Option<String>| v.as_deref().is_some_and(|t| !t.trim().is_empty());
    let flags: [(&str, bool, &[Mode]); 6] = [
        ("focus", text(&s.focus), &[Mode::Security]),
        ("diff", text(&s.diff), &[Mode::Security]),
        ("fail_on", s.fail_on.is_some(), &[Mode::Security]),
        ("symptom", text(&s.symptom), &[Mode::Debug]),
        ("repro", text(&s.repro), &[Mode::Debug]),
        ("fix", s.fix == Some(true), &[Mode::Debug, Mode::Security]),
    ];
    for (key, set, modes) in flags {
        if set && !modes.contains(&mode) {
            let names: Vec<String> = modes.iter().map(|m| format!("--mode {m}")).collect();
            return Err(Error::Usage(format!(
                "{} only applies with {} (not --mode {mode})",
                flag(key),
                names.join(" or ")
            )));
        }
    }
    if s.checklist.is_some()
        && mode != Mode::Ship
        && s.verify_format != Some(VerifyFormat::Checklist)
    {
        return Err(Error::Usage(
            "--checklist only applies with --verify-format checklist (add it to make the task list the metric)".into(),
        ));
    }
    Ok(())
}

/// `--diff BASE` without `--scope`: the whole repository, narrowed to the changed files at
/// start (src/diff_scope.rs).
fn diff_default_scope(mut s: Settings) -> Settings {
    if s.scope.is_none() && s.diff.as_deref().is_some_and(|b| !b.trim().is_empty()) {
        s.scope = Some(Patterns(vec![".".into()]));
    }
    s
}

/// Agent arguments that would change the sandbox; `--sandbox` owns that.
const SANDBOX_ARGS: &[&str] = &[
    "-s",
    "--sandbox",
    "--dangerously-bypass-approvals-and-sandbox",
    "--yolo",
    "--full-auto",
    "--permission-mode",
    "--dangerously-skip-permissions",
    "--add-dir",
    "--approve-for-me",
];

/// Agent arguments the engine sets itself: the working root, where the session runs, the output.
const ENGINE_ARGS: &[&str] = &["-C", "--cd", "--worktree", "--json", "--output-format"];

/// Why an `--agent-arg` is refused, if it is.
fn agent_arg_problem(a: &str) -> Option<String> {
    let name = a.split('=').next().unwrap_or(a);
    // `-s<mode>` (a value stuck to the short flag) and any config key about the sandbox
    // (`-c sandbox_mode=..`, `sandbox_workspace_write.writable_roots=..`, `sandbox_permissions`).
    let sticky_s = a.starts_with("-s") && !a.starts_with("--");
    if SANDBOX_ARGS.contains(&name) || sticky_s || a.to_ascii_lowercase().contains("sandbox") {
        return Some(format!(
            "`{a}`: the sandbox is set by --sandbox (workspace-write or danger-full-access)"
        ));
    }
    if ENGINE_ARGS.contains(&name) || (a.starts_with("-C") && !a.starts_with("--")) {
        return Some(format!(
            "`{a}`: the engine sets this itself (the agent works in the repository, with JSON output)"
        ));
    }
    None
}

/// Returns true for a valid run tag (usable as one git ref component).
pub fn valid_run_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 64
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !tag.starts_with(['.', '-'])
        && !tag.contains("..")
        && !tag.ends_with(".lock")
        && !tag.ends_with('.')
}

/// [`check_value`] for the keep rule's and the unattended run's limits.
fn check_limit(key: &str, s: &Settings) -> std::result::Result<(), String> {
    let positive = |v: Option<Dur>| match v {
        Some(d) if d.0.is_zero() => Err("must be longer than 0s".to_string()),
        _ => Ok(()),
    };
    match key {
        "max_runs" if s.max_runs == Some(0) => Err("must be at least 1".into()),
        "confirm_runs" if s.confirm_runs.is_some_and(|n| n < 2) => Err("must be at least 2".into()),
        "baseline_runs" if s.baseline_runs.is_some_and(|n| n < 2) => {
            Err("must be at least 2 (two runs tell a deterministic metric from a noisy one)".into())
        }
        "max_tokens" if s.max_tokens == Some(0) => Err("must be at least 1".into()),
        "plateau" if s.plateau == Some(0) => Err("must be at least 1".into()),
        "max_duration" => positive(s.max_duration),
        "min_effect" => match s.min_effect.as_deref() {
            Some(t) => parse_min_effect(t).map(|_| ()),
            None => Ok(()),
        },
        "until" => match s.until.as_deref() {
            Some(t) => parse_clock(t).map(|_| ()),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// How verify's output is read (the regex compiled once).
fn metric_format(format: VerifyFormat, key: &str, regex: Option<&str>) -> Result<MetricFormat> {
    Ok(match format {
        VerifyFormat::Scalar => MetricFormat::Scalar,
        VerifyFormat::MetricsJson => MetricFormat::MetricsJson {
            key: key.to_string(),
        },
        // The engine measures a checklist itself (src/driver/engine_metric.rs); no output is read.
        VerifyFormat::Checklist => MetricFormat::Scalar,
        VerifyFormat::Regex => MetricFormat::Regex(
            regex::Regex::new(regex.unwrap_or(""))
                .map_err(|e| Error::Usage(format!("--metric-regex: {e}")))?,
        ),
    })
}

/// Checks one setting on its own (what can be judged without the other layers); returns the
/// problem as a phrase that follows the key's name, e.g. "must be at least 1".
///
/// `names` are the metric names a stop condition may use; `None` means take them from `s`.
pub fn check_value(
    key: &str,
    s: &Settings,
    names: Option<&[&str]>,
) -> std::result::Result<(), String> {
    let non_empty = |v: &Option<String>| match v {
        Some(t) if t.trim().is_empty() => Err("must not be empty".to_string()),
        _ => Ok(()),
    };
    let positive = |v: Option<Dur>| match v {
        Some(d) if d.0.is_zero() => Err("must be longer than 0s".to_string()),
        _ => Ok(()),
    };
    match key {
        "goal" | "verify" => non_empty(if key == "goal" { &s.goal } else { &s.verify }),
        "metric" => {
            non_empty(&s.metric)?;
            match &s.metric {
                Some(m) if m.contains(['\n', '\r']) => Err("must be one line".into()),
                _ => Ok(()),
            }
        }
        "scope" | "protect" => {
            let p = if key == "scope" { &s.scope } else { &s.protect };
            match p {
                Some(p) if key == "scope" && p.0.is_empty() => {
                    Err("must name at least one path or glob".into())
                }
                Some(p) => PathSet::new(&p.0).map(|_| ()),
                None => Ok(()),
            }
        }
        "metric_regex" => match s.metric_regex.as_deref().filter(|r| !r.is_empty()) {
            Some(re) => {
                let compiled = regex::Regex::new(re).map_err(|e| {
                    e.to_string()
                        .lines()
                        .last()
                        .unwrap_or("invalid regex")
                        .trim()
                        .to_string()
                })?;
                if compiled.captures_len() < 2 {
                    return Err(
                        "needs a capture group around the number, e.g. `score: ([0-9.]+)`".into(),
                    );
                }
                Ok(())
            }
            None => Ok(()),
        },
        "repeat" if s.repeat == Some(0) => Err("must be at least 1".into()),
        "max_runs" | "confirm_runs" | "baseline_runs" | "max_tokens" | "plateau"
        | "max_duration" | "min_effect" | "until" => check_limit(key, s),
        "holdout" | "notify" => non_empty(if key == "holdout" {
            &s.holdout
        } else {
            &s.notify
        }),
        "iterations" if s.iterations == Some(0) => Err("must be at least 1".into()),
        "verify_timeout" => positive(s.verify_timeout),
        "agent_timeout" => positive(s.agent_timeout),
        "agent_idle_timeout" => positive(s.agent_idle_timeout),
        "run_tag" => match s.run_tag.as_deref() {
            Some(tag) if !tag.is_empty() && !valid_run_tag(tag) => Err(format!(
                "`{tag}`: use letters, digits, `-`, `_` and `.` (it names refs/autoresearch/<tag>/)"
            )),
            _ => Ok(()),
        },
        "agent_arg" => {
            match s
                .agent_arg
                .iter()
                .flat_map(|a| a.0.iter())
                .find_map(|a| agent_arg_problem(a))
            {
                Some(why) => Err(why),
                None => Ok(()),
            }
        }
        "stop_condition" => {
            let Some(text) = s
                .stop_condition
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
            else {
                return Ok(());
            };
            let own: Vec<&str> = [s.metric.as_deref(), s.primary_metric_key.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            let names = names.unwrap_or(&own);
            let direction = s.direction.unwrap_or(Direction::Lower);
            stop::parse(text, names, direction).map(|_| ())
        }
        _ => Ok(()),
    }
}

/// Parses `--min-effect`: a positive number in the metric's units, or a percentage of the
/// retained value (`2%`); returns the number and whether it is a percentage.
pub fn parse_min_effect(text: &str) -> std::result::Result<(f64, bool), String> {
    let t = text.trim();
    let (num, pct) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), true),
        None => (t, false),
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok((v, pct)),
        _ => Err(format!(
            "`{text}` is not a non-negative number or percentage (e.g. 0.5 or 2%)"
        )),
    }
}

/// Parses `--until`: a local time of day `HH:MM` (24-hour clock).
pub fn parse_clock(text: &str) -> std::result::Result<(u8, u8), String> {
    let bad = || format!("`{text}` is not a time of day as HH:MM (e.g. 07:00)");
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    let h: u8 = h.parse().map_err(|_| bad())?;
    let m: u8 = m.parse().map_err(|_| bad())?;
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok((h, m))
}

/// Checks the agent settings agree with the agent kind; returns the command agent's command.
fn check_agent(s: &Settings, agent: AgentKind) -> Result<Option<String>> {
    let agent_cmd = s.agent_cmd.clone().filter(|c| !c.trim().is_empty());
    match (agent, &agent_cmd) {
        (AgentKind::Command, None) => {
            return Err(Error::Usage("--agent command needs --agent-cmd CMD".into()));
        }
        (AgentKind::Codex | AgentKind::Claude, Some(_)) => {
            return Err(Error::Usage(format!(
                "--agent-cmd only applies with --agent command (not --agent {agent})"
            )));
        }
        _ => {}
    }
    if agent == AgentKind::Command {
        let set = [
            ("model", s.model.is_some()),
            (
                "agent_arg",
                s.agent_arg.as_ref().is_some_and(|a| !a.0.is_empty()),
            ),
            ("codex_bin", s.codex_bin.is_some()),
            ("claude_bin", s.claude_bin.is_some()),
        ];
        if let Some((key, _)) = set.iter().find(|(_, on)| *on) {
            return Err(Error::Usage(format!(
                "{} only applies with --agent codex or claude",
                flag(key)
            )));
        }
    }
    Ok(agent_cmd)
}

/// The multi-metric gates; they read verify's JSON object, so they need metrics-json.
fn gates(s: &Settings, format: VerifyFormat) -> Result<crate::engine::gates::Gates> {
    let list = |v: &Option<StringOrList>| v.as_ref().map(|l| l.0.clone()).unwrap_or_default();
    let g = crate::engine::gates::parse_gates(
        &list(&s.acceptance_criteria),
        &list(&s.required_keep_criteria),
        &list(&s.required_keep_label),
        &list(&s.required_stop_label),
    )
    .map_err(Error::Usage)?;
    if !g.is_empty() && format != VerifyFormat::MetricsJson {
        let key = [
            ("acceptance_criteria", !g.acceptance.is_empty()),
            ("required_keep_criteria", !g.keep.is_empty()),
            ("required_keep_label", !g.keep_labels.is_empty()),
            ("required_stop_label", !g.stop_labels.is_empty()),
        ]
        .iter()
        .find(|(_, on)| *on)
        .map_or("acceptance_criteria", |(k, _)| *k);
        return Err(Error::Usage(format!(
            "{} needs --verify-format metrics-json (gates read the numbers and labels of verify's JSON object)",
            flag(key)
        )));
    }
    Ok(g)
}

/// The goal: `--goal`, or in debug mode one made of `--symptom` (which debug needs).
fn goal(mode: Mode, s: &Settings) -> Result<String> {
    Ok(match (mode, &s.symptom, &s.goal) {
        (Mode::Debug, None, _) => {
            return Err(Error::Usage(
                "--mode debug needs --symptom TEXT: the failure to explain (e.g. --symptom \"totals are one item short\")".into(),
            ));
        }
        (Mode::Debug, Some(symptom), None) => format!("find the cause of: {}", symptom.trim()),
        _ => required(&s.goal, "goal")?.trim().to_string(),
    })
}

/// The metric's name, direction and verify command: required, unless the engine measures the
/// metric itself (then defaults, and an empty verify; see src/driver/engine_metric.rs).
fn measured(mode: Mode, format: VerifyFormat, s: &Settings) -> Result<(String, Direction, String)> {
    let (metric, direction, verify) = match engine_metric(mode, format) {
        Some((name, direction)) => (
            s.metric.clone().unwrap_or_else(|| name.to_string()),
            s.direction.unwrap_or(direction),
            s.verify.clone().unwrap_or_default(),
        ),
        None => (
            required(&s.metric, "metric")?,
            required(&s.direction, "direction")?,
            required(&s.verify, "verify")?,
        ),
    };
    Ok((
        metric.trim().to_string(),
        direction,
        verify.trim().to_string(),
    ))
}

/// The flags that only apply with one verify format.
fn check_format_flags(format: VerifyFormat, has_regex: bool, s: &Settings) -> Result<()> {
    match (format, has_regex) {
        (VerifyFormat::Regex, false) => {
            return Err(Error::Usage(
                "--verify-format regex needs --metric-regex".into(),
            ));
        }
        (VerifyFormat::Regex, true) | (_, false) => {}
        (_, true) => {
            return Err(Error::Usage(
                "--metric-regex only applies with --verify-format regex".into(),
            ));
        }
    }
    if s.primary_metric_key.is_some() && format != VerifyFormat::MetricsJson {
        return Err(Error::Usage(
            "--primary-metric-key only applies with --verify-format metrics-json".into(),
        ));
    }
    Ok(())
}

impl RunConfig {
    /// Validates merged settings. Errors name the flag.
    pub fn from_settings(s: Settings) -> Result<RunConfig> {
        for key in Settings::KEYS {
            check_value(key, &s, None).map_err(|m| Error::Usage(format!("{} {m}", flag(key))))?;
        }
        check_mode_flags(&s)?;
        let s = diff_default_scope(s);
        let d = Settings::defaults();
        // Every default is written once, in `Settings::defaults`; an unset setting takes it.
        macro_rules! or_default {
            ($f:ident) => {
                s.$f.clone().or(d.$f).expect("Settings::defaults sets it")
            };
        }
        let mode = or_default!(mode);
        let goal = goal(mode, &s)?;
        let scope = required(&s.scope, "scope")?.0;
        let verify_format = or_default!(verify_format);
        let (metric, direction, verify) = measured(mode, verify_format, &s)?;
        let metric_regex = s.metric_regex.clone().filter(|r| !r.is_empty());
        check_format_flags(verify_format, metric_regex.is_some(), &s)?;
        let primary_metric_key = s
            .primary_metric_key
            .clone()
            .unwrap_or_else(|| metric.clone());
        let stop_condition = match s
            .stop_condition
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            None => None,
            Some(text) => {
                let names = [metric.as_str(), primary_metric_key.as_str()];
                let cond = stop::parse(text, &names, direction)
                    .map_err(|e| Error::Usage(format!("--stop-condition: {e}")))?;
                Some((text.to_string(), cond))
            }
        };
        crate::engine::policy::for_mode(mode)
            .check(direction)
            .map_err(Error::Usage)?;
        let agent = or_default!(agent);
        let agent_cmd = check_agent(&s, agent)?;
        let metric_format =
            metric_format(verify_format, &primary_metric_key, metric_regex.as_deref())?;
        let gates = gates(&s, verify_format)?;
        Ok(RunConfig {
            mode,
            goal,
            scope,
            metric,
            direction,
            verify,
            verify_format,
            primary_metric_key,
            metric_regex,
            metric_format,
            repeat: or_default!(repeat),
            guard: s.guard.clone().filter(|g| !g.trim().is_empty()),
            iterations: s.iterations,
            stop_condition,
            agent,
            agent_cmd,
            codex_bin: s.codex_bin.clone(),
            claude_bin: s.claude_bin.clone(),
            sandbox: or_default!(sandbox),
            model: s.model.clone().filter(|m| !m.is_empty()),
            agent_args: s.agent_arg.clone().map(|a| a.0).unwrap_or_default(),
            session: or_default!(session),
            verify_timeout: or_default!(verify_timeout).0,
            agent_timeout: or_default!(agent_timeout).0,
            agent_idle_timeout: or_default!(agent_idle_timeout).0,
            max_quota_wait: or_default!(max_quota_wait).0,
            rework: or_default!(rework),
            thresholds: Thresholds {
                refine_after: or_default!(refine_after),
                pivot_after: or_default!(pivot_after),
                max_pivots: or_default!(max_pivots),
            },
            rollback: or_default!(rollback),
            protect: s.protect.clone().map(|p| p.0).unwrap_or_default(),
            // Findings are counted, not sampled: one measurement decides.
            keep_rule: match mode {
                Mode::Debug | Mode::Security => KeepRule::Strict,
                _ => or_default!(keep_rule),
            },
            keep_effort: or_default!(keep_effort),
            min_effect: s.min_effect.clone().filter(|m| !m.trim().is_empty()),
            max_runs: or_default!(max_runs),
            baseline_runs: or_default!(baseline_runs),
            holdout: s.holdout.clone().filter(|h| !h.trim().is_empty()),
            holdout_policy: or_default!(holdout_policy),
            // Nothing to re-measure: the findings are checked when found.
            confirm: or_default!(confirm) && !matches!(mode, Mode::Debug | Mode::Security),
            confirm_runs: or_default!(confirm_runs),
            max_duration: s.max_duration.map(|d| d.0),
            until: match s.until.as_deref() {
                Some(t) => Some(parse_clock(t).map_err(|e| Error::Usage(format!("--until {e}")))?),
                None => None,
            },
            max_tokens: s.max_tokens,
            plateau: s.plateau,
            notify: s.notify.clone().filter(|n| !n.trim().is_empty()),
            run_tag: s.run_tag.clone().filter(|t| !t.is_empty()),
            gates,
            settings: s,
        })
    }
}
