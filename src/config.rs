//! Run settings: one partial [`Settings`] per source (defaults, the resumed run, the config file,
//! the environment, flags), layered in that order, then validated into a [`RunConfig`].
//! The same keys name flags, TOML keys and the `config` object of `autoresearch-state.json`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::engine::Direction;
use crate::engine::metric::MetricFormat;
use crate::engine::reducer::Thresholds;
use crate::engine::stop::{self, StopCondition};
use crate::error::{Error, Result};
use crate::scope::{PathSet, split_patterns};

pub use crate::engine_env::{EngineEnv, engine_env};

/// Declares a string-valued enum with `FromStr`, `Display` and serde as its words.
macro_rules! word_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name { $($variant),+ }
        impl $name {
            /// Every accepted word.
            pub const WORDS: &'static [&'static str] = &[$($word),+];
            /// Returns the word for this value.
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $word),+ } }
        }
        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match s.trim() {
                    $($word => Ok($name::$variant),)+
                    other => Err(format!("`{}` is not one of {}", other, $name::WORDS.join(", "))),
                }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

word_enum!(
    /// The prompt mode.
    Mode { Loop = "loop", Fix = "fix", Debug = "debug", Security = "security", Ship = "ship" }
);
word_enum!(
    /// How verify prints the metric.
    VerifyFormat { Scalar = "scalar", MetricsJson = "metrics-json", Regex = "regex" }
);
word_enum!(
    /// Which coding agent proposes changes.
    AgentKind { Codex = "codex", Claude = "claude", Command = "command" }
);
word_enum!(
    /// How a rejected trial leaves the branch.
    Rollback { Reset = "reset", Revert = "revert" }
);
word_enum!(
    /// What the agent may write.
    Sandbox { WorkspaceWrite = "workspace-write", DangerFullAccess = "danger-full-access" }
);
word_enum!(
    /// Whether agent sessions carry over between iterations.
    Session { Resume = "resume", Fresh = "fresh" }
);

impl Serialize for Direction {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Direction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A duration written as text (`90s`, `10m`, `2h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl FromStr for Dur {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        crate::duration::parse(s).map(Dur)
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::duration::format(self.0))
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Path patterns (`--scope`, `--protect`): a comma-separated string or a list; written as a
/// comma-joined string (the form the reference keeps in its state).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Patterns(pub Vec<String>);

impl Serialize for Patterns {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.join(","))
    }
}

impl<'de> Deserialize<'de> for Patterns {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Patterns(split_patterns(&StringOrList::deserialize(d)?.0)))
    }
}

/// A list of strings that may also be written as one string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StringOrList(pub Vec<String>);

impl<'de> Deserialize<'de> for StringOrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            One(String),
            Many(Vec<String>),
        }
        match Either::deserialize(d)
            .map_err(|_| serde::de::Error::custom("expected a string or a list of strings"))?
        {
            Either::One(s) => Ok(StringOrList(vec![s])),
            Either::Many(v) => Ok(StringOrList(v)),
        }
    }
}

/// Where a setting came from, for `config` and for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    /// The configuration stored in `autoresearch-state.json` of the run being resumed.
    Resumed,
    /// `autoresearch.toml` or `--config FILE`: the line of the key and the key as written.
    File {
        path: PathBuf,
        line: usize,
        key: String,
    },
    /// An environment variable.
    Env(String),
    Flag,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::Resumed => f.write_str("resumed run"),
            Source::File { path, line, .. } => write!(f, "file {}:{line}", path.display()),
            Source::Env(var) => write!(f, "environment {var}"),
            Source::Flag => f.write_str("flag"),
        }
    }
}

macro_rules! settings {
    ($( $(#[$m:meta])* $field:ident : $ty:ty ),* $(,)?) => {
        /// Every run setting, each optional; one value of this per source.
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        pub struct Settings {
            $( $(#[$m])* #[serde(default, skip_serializing_if = "Option::is_none")] pub $field: Option<$ty>, )*
        }

        impl Settings {
            /// Every key, in snake_case (flags and TOML keys also accept `-`).
            pub const KEYS: &'static [&'static str] = &[$( stringify!($field) ),*];

            /// Lays `over` on top of `self`; returns the keys it set (callers record their source).
            pub fn overlay(&mut self, over: Settings) -> Vec<&'static str> {
                let mut set = Vec::new();
                $( if over.$field.is_some() {
                    self.$field = over.$field;
                    set.push(stringify!($field));
                } )*
                set
            }

            /// Returns the keys that are set.
            pub fn set_keys(&self) -> Vec<&'static str> {
                let mut v = Vec::new();
                $( if self.$field.is_some() { v.push(stringify!($field)); } )*
                v
            }
        }
    };
}

settings! {
    repo: PathBuf,
    artifacts_dir: PathBuf,
    mode: Mode,
    goal: String,
    scope: Patterns,
    metric: String,
    direction: Direction,
    verify: String,
    verify_format: VerifyFormat,
    primary_metric_key: String,
    metric_regex: String,
    repeat: u32,
    guard: String,
    iterations: u64,
    stop_condition: String,
    agent: AgentKind,
    agent_cmd: String,
    codex_bin: PathBuf,
    claude_bin: PathBuf,
    sandbox: Sandbox,
    model: String,
    agent_arg: StringOrList,
    session: Session,
    verify_timeout: Dur,
    agent_timeout: Dur,
    agent_idle_timeout: Dur,
    max_quota_wait: Dur,
    rework: u32,
    refine_after: u64,
    pivot_after: u64,
    max_pivots: u64,
    rollback: Rollback,
    protect: Patterns,
    run_tag: String,
    fresh: bool,
    json: bool,
}

/// Parses a count: a whole number (0 or more; a flag may ask for more).
pub fn whole_number<T: TryFrom<u64>>(text: &str) -> Result<T, String> {
    let t = text.trim();
    match t.parse::<u64>() {
        Ok(n) => T::try_from(n).map_err(|_| format!("`{text}` is too large")),
        Err(_) if t.starts_with('-') && t[1..].bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("`{text}` is negative"))
        }
        Err(_) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("`{text}` is too large"))
        }
        Err(_) => Err(format!("`{text}` is not a whole number")),
    }
}

/// Keys that define what a run measures; a resumed run refuses to change them.
pub const IDENTITY_KEYS: &[&str] = &[
    "goal",
    "metric",
    "direction",
    "verify",
    "verify_format",
    "primary_metric_key",
    "metric_regex",
];

/// Keys that belong to the machine, not the run: never stored in the state file.
const LOCAL_KEYS: &[&str] = &[
    "repo",
    "artifacts_dir",
    "codex_bin",
    "claude_bin",
    "fresh",
    "json",
];

/// Environment variables read as the lowest explicit source.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("AUTORESEARCH_GOAL", "goal"),
    ("AUTORESEARCH_SCOPE", "scope"),
    ("AUTORESEARCH_METRIC", "metric"),
    ("AUTORESEARCH_DIRECTION", "direction"),
    ("AUTORESEARCH_VERIFY", "verify"),
    ("AUTORESEARCH_ITERATIONS", "iterations"),
    ("AUTORESEARCH_GUARD", "guard"),
];

impl Settings {
    /// Returns the built-in defaults.
    pub fn defaults() -> Settings {
        Settings {
            mode: Some(Mode::Loop),
            verify_format: Some(VerifyFormat::Scalar),
            repeat: Some(1),
            agent: Some(AgentKind::Codex),
            sandbox: Some(Sandbox::WorkspaceWrite),
            session: Some(Session::Resume),
            verify_timeout: Some(Dur(Duration::from_secs(600))),
            agent_timeout: Some(Dur(Duration::from_secs(1800))),
            agent_idle_timeout: Some(Dur(Duration::from_secs(600))),
            max_quota_wait: Some(Dur(Duration::from_secs(3600))),
            rework: Some(2),
            refine_after: Some(3),
            pivot_after: Some(5),
            max_pivots: Some(3),
            rollback: Some(Rollback::Reset),
            fresh: Some(false),
            json: Some(false),
            ..Settings::default()
        }
    }

    /// Reads the environment fallbacks (`AUTORESEARCH_GOAL`, ...) through `get`.
    pub fn from_env(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<(Settings, BTreeMap<&'static str, Source>)> {
        let mut map = serde_json::Map::new();
        let mut sources = BTreeMap::new();
        for (var, key) in ENV_VARS {
            if let Some(v) = get(var).filter(|v| !v.trim().is_empty()) {
                let value = if *key == "iterations" {
                    let n: u64 =
                        whole_number(&v).map_err(|e| Error::Usage(format!("{var}: {e}")))?;
                    serde_json::Value::from(n)
                } else {
                    serde_json::Value::from(v)
                };
                // Alone first, so a bad value names its variable.
                serde_json::from_value::<Settings>(serde_json::json!({ *key: value.clone() }))
                    .map_err(|e| {
                        let msg = e.to_string();
                        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                        Error::Usage(format!("{var}: {msg}"))
                    })?;
                map.insert((*key).to_string(), value);
                sources.insert(*key, Source::Env((*var).to_string()));
            }
        }
        let s: Settings = serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|e| Error::Usage(format!("environment: {e}")))?;
        for (var, key) in ENV_VARS {
            if sources.contains_key(key) {
                check_value(key, &s, Some(&[])).map_err(|m| Error::Usage(format!("{var}: {m}")))?;
            }
        }
        Ok((s, sources))
    }

    /// Returns the settings stored with a run (machine-local keys removed), plus the
    /// reference-compatible keys the resume checker expects.
    pub fn to_saved(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut map = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        for k in LOCAL_KEYS {
            map.remove(*k);
        }
        if let Some(r) = &self.rollback {
            map.insert("rollback_policy".into(), r.as_str().into());
        }
        map.insert("parallel_mode".into(), "serial".into());
        map.insert("web_search".into(), "disabled".into());
        map.insert("session_mode".into(), "foreground".into());
        map
    }

    /// Reads settings stored with a run; unknown keys (the reference's) are ignored.
    pub fn from_saved(value: &serde_json::Value) -> Result<Settings> {
        let mut s: Settings = serde_json::from_value(value.clone()).map_err(|e| {
            Error::Refused(format!(
                "the stored run configuration is unreadable ({e}); start over with --fresh"
            ))
        })?;
        for k in LOCAL_KEYS {
            match *k {
                "repo" => s.repo = None,
                "artifacts_dir" => s.artifacts_dir = None,
                "codex_bin" => s.codex_bin = None,
                "claude_bin" => s.claude_bin = None,
                "fresh" => s.fresh = None,
                _ => s.json = None,
            }
        }
        Ok(s)
    }
}

/// Layers the settings of a run: the defaults, then the settings a resumed run saved, then the
/// explicit ones (file < environment < flags, already merged by [`gather`]).
pub fn layered(saved: Option<&Settings>, explicit: &Settings) -> Settings {
    layered_sources(saved, explicit, &BTreeMap::new()).0
}

/// [`layered`], with where each setting came from: `Default`, `Resumed`, or the explicit
/// source given in `sources`.
pub fn layered_sources(
    saved: Option<&Settings>,
    explicit: &Settings,
    sources: &BTreeMap<&'static str, Source>,
) -> (Settings, BTreeMap<&'static str, Source>) {
    let mut merged = Settings::defaults();
    let mut from: BTreeMap<&'static str, Source> = merged
        .set_keys()
        .into_iter()
        .map(|k| (k, Source::Default))
        .collect();
    if let Some(s) = saved {
        for k in merged.overlay(s.clone()) {
            from.insert(k, Source::Resumed);
        }
    }
    merged.overlay(explicit.clone());
    from.extend(sources.iter().map(|(k, v)| (*k, v.clone())));
    (merged, from)
}

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
    pub run_tag: Option<String>,
    /// The merged settings this was built from (stored with the run).
    pub settings: Settings,
}

fn flag(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
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
        "mode" => match s.mode {
            Some(m) if !matches!(m, Mode::Loop | Mode::Fix) => {
                Err(format!("{m} is not available yet (available: loop, fix)"))
            }
            _ => Ok(()),
        },
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

impl RunConfig {
    /// Validates merged settings. Errors name the flag.
    pub fn from_settings(s: Settings) -> Result<RunConfig> {
        for key in Settings::KEYS {
            check_value(key, &s, None).map_err(|m| Error::Usage(format!("{} {m}", flag(key))))?;
        }
        let d = Settings::defaults();
        // Every default is written once, in `Settings::defaults`; an unset setting takes it.
        macro_rules! or_default {
            ($f:ident) => {
                s.$f.clone().or(d.$f).expect("Settings::defaults sets it")
            };
        }
        let mode = or_default!(mode);
        let goal = required(&s.goal, "goal")?.trim().to_string();
        let scope = required(&s.scope, "scope")?.0;
        let metric = required(&s.metric, "metric")?.trim().to_string();
        let direction = required(&s.direction, "direction")?;
        let verify = required(&s.verify, "verify")?.trim().to_string();
        let verify_format = or_default!(verify_format);
        let metric_regex = s.metric_regex.clone().filter(|r| !r.is_empty());
        match (verify_format, &metric_regex) {
            (VerifyFormat::Regex, None) => {
                return Err(Error::Usage(
                    "--verify-format regex needs --metric-regex".into(),
                ));
            }
            (VerifyFormat::Regex, Some(_)) | (_, None) => {}
            (_, Some(_)) => {
                return Err(Error::Usage(
                    "--metric-regex only applies with --verify-format regex".into(),
                ));
            }
        }
        if s.primary_metric_key.is_some() && verify_format != VerifyFormat::MetricsJson {
            return Err(Error::Usage(
                "--primary-metric-key only applies with --verify-format metrics-json".into(),
            ));
        }
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
        let metric_format = match verify_format {
            VerifyFormat::Scalar => MetricFormat::Scalar,
            VerifyFormat::MetricsJson => MetricFormat::MetricsJson {
                key: primary_metric_key.clone(),
            },
            VerifyFormat::Regex => MetricFormat::Regex(
                regex::Regex::new(metric_regex.as_deref().unwrap_or(""))
                    .map_err(|e| Error::Usage(format!("--metric-regex: {e}")))?,
            ),
        };
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
            run_tag: s.run_tag.clone().filter(|t| !t.is_empty()),
            settings: s,
        })
    }
}

/// Returns a validation error with the place its setting came from: a config file line or an
/// environment variable (flags already name themselves).
pub fn locate(err: Error, sources: &BTreeMap<&'static str, Source>) -> Error {
    let (Error::Usage(msg) | Error::Refused(msg)) = &err else {
        return err;
    };
    let key = msg
        .split(|c: char| c.is_whitespace() || c == ':' || c == ',' || c == '(' || c == ')')
        .find_map(|w| w.strip_prefix("--"))
        .map(|f| f.replace('-', "_"));
    match key.as_deref().and_then(|k| sources.get(k)) {
        Some(Source::File { path, line, key }) => {
            Error::Usage(format!("{} line {line}: `{key}`: {msg}", path.display()))
        }
        Some(Source::Env(var)) => Error::Usage(format!("{msg} (from {var})")),
        _ => err,
    }
}

/// Refuses changes to what a resumed run measures; returns the key that changed.
pub fn check_identity(saved: &Settings, explicit: &Settings) -> Result<()> {
    let a = serde_json::to_value(saved).unwrap_or_default();
    let b = serde_json::to_value(explicit).unwrap_or_default();
    for key in IDENTITY_KEYS {
        // An unset primary key means the metric's name: compare what the run actually reads.
        let old = a.get(*key).or_else(|| match *key {
            "primary_metric_key" => a.get("metric"),
            _ => None,
        });
        let (Some(old), Some(new)) = (old, b.get(*key)) else {
            continue;
        };
        let norm = |v: &serde_json::Value| {
            v.as_str()
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|| v.to_string())
        };
        if norm(new).is_empty() {
            return Err(Error::Usage(format!("{} must not be empty", flag(key))));
        }
        if norm(old) != norm(new) {
            return Err(Error::Refused(format!(
                "{} differs from the run being resumed ({} vs {}); use --fresh to start a new run (the old one is archived)",
                flag(key),
                norm(new),
                norm(old)
            )));
        }
    }
    Ok(())
}

/// Returns the directory a run starts from: `--repo`, else the current directory.
pub fn start_dir(repo: Option<&Path>) -> Result<PathBuf> {
    match repo {
        Some(p) => Ok(p.to_path_buf()),
        None => std::env::current_dir()
            .map_err(|e| Error::Refused(format!("cannot read the current directory: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Settings {
        Settings {
            goal: Some("fewer failures".into()),
            scope: Some(Patterns(vec!["src/**".into()])),
            metric: Some("failures".into()),
            direction: Some(Direction::Lower),
            verify: Some("./count.sh".into()),
            agent: Some(AgentKind::Command),
            agent_cmd: Some("./agent.sh".into()),
            ..Settings::default()
        }
    }

    fn err(s: Settings) -> String {
        RunConfig::from_settings(s).unwrap_err().to_string()
    }

    #[test]
    fn defaults_apply() {
        let c = RunConfig::from_settings(base()).unwrap();
        assert_eq!(c.verify_timeout, Duration::from_secs(600));
        assert_eq!(
            c.thresholds,
            Thresholds {
                refine_after: 3,
                pivot_after: 5,
                max_pivots: 3
            }
        );
        assert_eq!(c.rework, 2);
        assert_eq!(c.primary_metric_key, "failures");
    }

    #[test]
    fn missing_required_fields_name_the_flag() {
        for key in ["goal", "scope", "metric", "direction", "verify"] {
            let mut s = base();
            match key {
                "goal" => s.goal = None,
                "scope" => s.scope = None,
                "metric" => s.metric = None,
                "direction" => s.direction = None,
                _ => s.verify = None,
            }
            assert!(
                err(s).contains(&format!("missing required field: {key} (set --{key}")),
                "{key}"
            );
        }
    }

    #[test]
    fn contradictions_are_errors() {
        let mut s = base();
        s.verify_format = Some(VerifyFormat::Regex);
        assert!(err(s).contains("--metric-regex"));
        let mut s = base();
        s.metric_regex = Some("x(\\d)".into());
        assert!(err(s).contains("only applies with --verify-format regex"));
        let mut s = base();
        s.agent_cmd = None;
        assert!(err(s).contains("--agent-cmd"));
        let mut s = base();
        s.mode = Some(Mode::Fix);
        s.direction = Some(Direction::Higher);
        assert!(err(s).contains("--direction lower"));
        let mut s = base();
        s.mode = Some(Mode::Debug);
        assert!(err(s).contains("not available yet"));
        let mut s = base();
        s.stop_condition = Some("when happy".into());
        assert!(err(s).contains("--stop-condition"));
        let mut s = base();
        s.run_tag = Some("bad tag".into());
        assert!(err(s).contains("--run-tag"));
        let mut s = base();
        s.model = Some("gpt".into());
        assert!(err(s).contains("--model only applies"));
        let mut s = base();
        s.agent = Some(AgentKind::Codex);
        s.agent_cmd = None;
        s.agent_arg = Some(StringOrList(vec!["--sandbox=danger-full-access".into()]));
        assert!(err(s).contains("the sandbox is set by --sandbox"));
        let mut s = base();
        s.verify_timeout = Some(Dur(Duration::ZERO));
        assert!(err(s).contains("--verify-timeout must be longer"));
    }

    #[test]
    fn saved_settings_round_trip_without_local_keys() {
        let mut s = base();
        s.repo = Some("/somewhere".into());
        s.verify_timeout = Some(Dur(Duration::from_secs(90)));
        let saved = serde_json::Value::Object(s.to_saved());
        assert_eq!(saved["scope"], "src/**");
        assert_eq!(saved["verify_timeout"], "90s");
        assert!(saved.get("repo").is_none());
        let back = Settings::from_saved(&saved).unwrap();
        assert_eq!(back.verify_timeout, s.verify_timeout);
        assert_eq!(back.scope, s.scope);
        assert_eq!(back.repo, None);
    }

    #[test]
    fn identity_changes_are_refused() {
        let saved = base();
        let mut explicit = Settings {
            goal: Some("fewer failures ".into()),
            ..Settings::default()
        };
        assert!(check_identity(&saved, &explicit).is_ok());
        explicit.direction = Some(Direction::Higher);
        let e = check_identity(&saved, &explicit).unwrap_err().to_string();
        assert!(e.contains("--direction") && e.contains("--fresh"));
    }

    #[test]
    fn env_fallbacks() {
        let (s, src) = Settings::from_env(|k| match k {
            "AUTORESEARCH_GOAL" => Some("g".into()),
            "AUTORESEARCH_ITERATIONS" => Some("4".into()),
            "AUTORESEARCH_SCOPE" => Some("a/**,b".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.goal.as_deref(), Some("g"));
        assert_eq!(s.iterations, Some(4));
        assert_eq!(s.scope, Some(Patterns(vec!["a/**".into(), "b".into()])));
        assert_eq!(
            src.get("goal"),
            Some(&Source::Env("AUTORESEARCH_GOAL".into()))
        );
        assert!(
            Settings::from_env(|k| (k == "AUTORESEARCH_ITERATIONS").then(|| "x".into())).is_err()
        );
    }

    #[test]
    fn an_unset_primary_key_is_the_metric_name_for_identity() {
        let saved = Settings {
            metric: Some("latency".into()),
            ..Settings::default()
        };
        let same = Settings {
            primary_metric_key: Some("latency".into()),
            ..Settings::default()
        };
        assert!(check_identity(&saved, &same).is_ok());
        let other = Settings {
            primary_metric_key: Some("throughput".into()),
            ..Settings::default()
        };
        let e = check_identity(&saved, &other).unwrap_err().to_string();
        assert!(e.contains("--primary-metric-key differs"), "{e}");
    }

    #[test]
    fn run_tags() {
        assert!(valid_run_tag("fewer-bugs_2.1"));
        for bad in ["", "-x", ".x", "a..b", "a/b", "x.lock", "with space"] {
            assert!(!valid_run_tag(bad), "{bad}");
        }
    }
}

/// The explicit settings of one invocation: the config file, the environment and the flags,
/// layered in that order, with the source of every key.
#[derive(Clone, Debug, Default)]
pub struct Gathered {
    pub settings: Settings,
    pub sources: BTreeMap<&'static str, Source>,
    /// The config file that was read, if any.
    pub file: Option<PathBuf>,
}

/// The default config file name, at the repository root.
pub const CONFIG_FILE: &str = "autoresearch.toml";

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

fn closest_key(key: &str) -> Option<&'static str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                cur.push(
                    (prev[j] + usize::from(ca != *cb))
                        .min(prev[j + 1] + 1)
                        .min(cur[j] + 1),
                );
            }
            prev = cur;
        }
        prev[b.len()]
    }
    Settings::KEYS
        .iter()
        .copied()
        .map(|k| (distance(key, k), k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k)
}

/// Reads a config file into settings; errors name the file, the line and the key.
pub fn read_file(path: &Path) -> Result<(Settings, BTreeMap<&'static str, Source>)> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Usage(format!(
            "cannot read the config file {}: {e}",
            path.display()
        ))
    })?;
    parse_file(&text, path)
}

/// Parses config file `text` (`path` is for messages and relative paths).
pub fn parse_file(text: &str, path: &Path) -> Result<(Settings, BTreeMap<&'static str, Source>)> {
    let name = path.display();
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |s| line_of(text, s.start));
        let src = text.lines().nth(line - 1).unwrap_or("").trim();
        let quoted = if src.is_empty() {
            String::new()
        } else {
            format!(" (in `{src}`)")
        };
        Error::Usage(format!(
            "{name} line {line}: {}{quoted}",
            e.message().trim()
        ))
    })?;
    // The spans of the top-level keys, for line numbers in messages.
    let mut lines: BTreeMap<String, usize> = BTreeMap::new();
    if let Ok(spanned) = toml::de::DeTable::parse(text) {
        for (k, _) in spanned.get_ref() {
            lines.insert(k.get_ref().to_string(), line_of(text, k.span().start));
        }
    }
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut settings = Settings::default();
    let mut sources = BTreeMap::new();
    // `refine-after` and `refine_after` are one key: both in a file is a duplicate.
    let mut seen: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for raw_key in table.keys() {
        let line = lines.get(raw_key).copied().unwrap_or(1);
        if let Some((other, other_line)) =
            seen.insert(raw_key.replace('-', "_"), (raw_key.clone(), line))
        {
            let ((k1, l1), (k2, l2)) = if other_line <= line {
                ((other, other_line), (raw_key.clone(), line))
            } else {
                ((raw_key.clone(), line), (other, other_line))
            };
            return Err(Error::Usage(format!(
                "{name} line {l2}: `{k2}` sets the same setting as `{k1}` on line {l1}; keep one"
            )));
        }
    }
    for (raw_key, value) in table {
        let line = lines.get(&raw_key).copied().unwrap_or(1);
        let key = raw_key.replace('-', "_");
        let Some(known) = Settings::KEYS.iter().copied().find(|k| *k == key) else {
            let hint = closest_key(&key)
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            return Err(Error::Usage(format!(
                "{name} line {line}: unknown key `{raw_key}`{hint}"
            )));
        };
        let mut json = serde_json::to_value(&value).unwrap_or(serde_json::Value::Null);
        if matches!(known, "repo" | "artifacts_dir" | "codex_bin" | "claude_bin")
            && let Some(s) = json.as_str()
            && !Path::new(s).is_absolute()
        {
            json = serde_json::Value::String(base.join(s).display().to_string());
        }
        let one: Settings =
            serde_json::from_value(serde_json::json!({ known: json })).map_err(|e| {
                let msg = e.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                Error::Usage(format!("{name} line {line}: `{raw_key}`: {msg}"))
            })?;
        let src = Source::File {
            path: path.to_path_buf(),
            line,
            key: raw_key.clone(),
        };
        for key in settings.overlay(one) {
            sources.insert(key, src.clone());
        }
    }
    // Values that are wrong on their own are the file's error, whatever overrides them later.
    for (key, src) in &sources {
        if *key == "stop_condition" && settings.metric.is_none() {
            continue; // may name a metric set elsewhere; checked once the layers are merged
        }
        if let (Err(m), Source::File { line, key: raw, .. }) =
            (check_value(key, &settings, None), src)
        {
            return Err(Error::Usage(format!("{name} line {line}: `{raw}`: {m}")));
        }
    }
    Ok((settings, sources))
}

/// Layers the config file (`--config FILE`, else `<repo>/autoresearch.toml`), the environment
/// (`AUTORESEARCH_*`) and the flags.
pub fn gather(
    flags: Settings,
    config_flag: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Gathered> {
    let mut g = Gathered::default();
    let file = match config_flag {
        Some(p) => {
            if !p.is_file() {
                return Err(Error::Usage(format!(
                    "--config {}: no such file",
                    p.display()
                )));
            }
            Some(p.to_path_buf())
        }
        None => {
            let start = start_dir(flags.repo.as_deref())?;
            git2::Repository::discover(&start)
                .ok()
                .and_then(|r| r.workdir().map(|w| w.join(CONFIG_FILE)))
                .filter(|p| p.is_file())
        }
    };
    if let Some(path) = &file {
        let (s, src) = read_file(path)?;
        g.settings.overlay(s);
        g.sources.extend(src);
    }
    let (s, src) = Settings::from_env(env)?;
    g.settings.overlay(s);
    g.sources.extend(src);
    for k in g.settings.overlay(flags) {
        g.sources.insert(k, Source::Flag);
    }
    g.file = file;
    Ok(g)
}

#[cfg(test)]
mod file_tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings> {
        parse_file(text, Path::new("/repo/autoresearch.toml")).map(|(s, _)| s)
    }

    #[test]
    fn every_key_with_dashes_or_underscores() {
        let s = parse(
            "goal = \"fewer bugs\"\nscope = [\"src/**\", \"tests/**\"]\nverify-timeout = \"90s\"\nmax_pivots = 4\nfresh = true\nagent-arg = [\"-c\", \"x=1\"]\nartifacts-dir = \"out\"\ndirection = \"higher\"\n",
        )
        .unwrap();
        assert_eq!(s.goal.as_deref(), Some("fewer bugs"));
        assert_eq!(
            s.scope,
            Some(Patterns(vec!["src/**".into(), "tests/**".into()]))
        );
        assert_eq!(s.verify_timeout, Some(Dur(Duration::from_secs(90))));
        assert_eq!(s.max_pivots, Some(4));
        assert_eq!(s.fresh, Some(true));
        assert_eq!(
            s.agent_arg,
            Some(StringOrList(vec!["-c".into(), "x=1".into()]))
        );
        assert_eq!(
            s.artifacts_dir,
            Some(PathBuf::from("/repo/out")),
            "relative to the file"
        );
        assert_eq!(s.direction, Some(Direction::Higher));
    }

    #[test]
    fn errors_name_the_key_and_the_line() {
        let e = parse("goal = \"x\"\n\nverfy = \"make\"\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/repo/autoresearch.toml line 3: unknown key `verfy` (did you mean `verify`?)"
        );
        let e = parse("goal = \"x\"\niterations = \"ten\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/repo/autoresearch.toml line 2: `iterations`: invalid type"),
            "{e}"
        );
        let e = parse("verify_timeout = \"5x\"\n").unwrap_err().to_string();
        assert!(
            e.contains("line 1: `verify_timeout`: `5x` is not a duration"),
            "{e}"
        );
        let e = parse("direction = \"down\"\n").unwrap_err().to_string();
        assert!(e.contains("line 1: `direction`"), "{e}");
        let e = parse("goal = \n").unwrap_err().to_string();
        assert!(e.starts_with("/repo/autoresearch.toml line 1:"), "{e}");
        let e = parse("[run]\ngoal = \"x\"\n").unwrap_err().to_string();
        assert!(e.contains("line 1: unknown key `run`"), "{e}");
        let e = parse("fresh = \"yes\"\n").unwrap_err().to_string();
        assert!(e.contains("`fresh`: invalid type"), "{e}");
    }

    #[test]
    fn precedence_is_file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("custom.toml");
        std::fs::write(
            &file,
            "goal = \"from file\"\nmetric = \"file-metric\"\nverify = \"file verify\"\n",
        )
        .unwrap();
        let flags = Settings {
            verify: Some("flag verify".into()),
            ..Settings::default()
        };
        let g = gather(flags, Some(&file), |k| match k {
            "AUTORESEARCH_METRIC" => Some("env-metric".into()),
            "AUTORESEARCH_VERIFY" => Some("env verify".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(g.settings.goal.as_deref(), Some("from file"));
        assert_eq!(g.settings.metric.as_deref(), Some("env-metric"));
        assert_eq!(g.settings.verify.as_deref(), Some("flag verify"));
        assert_eq!(
            g.sources["goal"],
            Source::File {
                path: file.clone(),
                line: 1,
                key: "goal".into()
            }
        );
        assert_eq!(
            g.sources["metric"],
            Source::Env("AUTORESEARCH_METRIC".into())
        );
        assert_eq!(g.sources["verify"], Source::Flag);
        assert!(
            gather(
                Settings::default(),
                Some(Path::new("/nonexistent.toml")),
                |_| None
            )
            .is_err()
        );
    }
}
