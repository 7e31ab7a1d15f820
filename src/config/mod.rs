//! Run settings: one partial [`Settings`] per source (defaults, the resumed run, the config file,
//! the environment, flags), layered in that order, then validated into a [`RunConfig`].
//! The same keys name flags, TOML keys and the `config` object of `autoresearch-results/state.json`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::engine::Direction;
use crate::error::{Error, Result};
use crate::scope::split_patterns;

pub use crate::engine_env::{EngineEnv, engine_env};
pub use file::{CONFIG_FILE, Gathered, gather, parse_file, read_file};
pub use validate::{
    RunConfig, check_value, engine_metric, missing, parse_clock, parse_min_effect, valid_run_tag,
};

mod file;
mod validate;

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
    VerifyFormat {
        Scalar = "scalar",
        MetricsJson = "metrics-json",
        Regex = "regex",
        Checklist = "checklist",
    }
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
word_enum!(
    /// How a measured trial is judged: the noise-aware sequential test, or one sample each.
    KeepRule { Seq = "seq", Strict = "strict" }
);
word_enum!(
    /// How many verify runs SEQ may spend for a surer keep (`auto`: chosen from measured costs).
    KeepEffort { Default = "default", Thorough = "thorough", Auto = "auto" }
);
word_enum!(
    /// What kind of project ship mode readies (`auto`: detected from the repository).
    ShipType {
        Auto = "auto",
        RustCrate = "rust-crate",
        PythonPackage = "python-package",
        NpmPackage = "npm-package",
        Generic = "generic",
    }
);
word_enum!(
    /// A finding's severity, most severe first (`--fail-on`).
    Severity { Critical = "critical", High = "high", Medium = "medium", Low = "low", Info = "info" }
);
word_enum!(
    /// Which file layout a run writes: the reference's current one (`autoresearch-results/`) or
    /// its March 2026 names at the repository root.
    Layout { Current = "current", March = "march" }
);
word_enum!(
    /// What a keep whose holdout regressed becomes: tagged, or discarded.
    HoldoutPolicy { Tag = "tag", Reject = "reject" }
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
    /// The configuration stored in `autoresearch-results/state.json` of the run being resumed.
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
    keep_rule: KeepRule,
    keep_effort: KeepEffort,
    min_effect: String,
    max_runs: u32,
    baseline_runs: u32,
    holdout: String,
    holdout_policy: HoldoutPolicy,
    confirm: bool,
    confirm_runs: u32,
    max_duration: Dur,
    until: String,
    max_tokens: u64,
    plateau: u64,
    notify: String,
    ship_type: ShipType,
    ship_cmd: String,
    approve_ship: bool,
    dry_run: bool,
    post_ship: String,
    checklist: PathBuf,
    symptom: String,
    repro: String,
    fix: bool,
    focus: String,
    diff: String,
    fail_on: Severity,
    layout: Layout,
    acceptance_criteria: StringOrList,
    required_keep_criteria: StringOrList,
    required_keep_label: StringOrList,
    required_stop_label: StringOrList,
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
    // The holdout is never stored where the agent could read it (GUIDE §7b).
    "holdout",
    // Consent to ship is given to one launch, never inherited by a resume.
    "approve_ship",
    "dry_run",
    "layout",
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
            keep_rule: Some(KeepRule::Seq),
            keep_effort: Some(KeepEffort::Auto),
            max_runs: Some(32),
            baseline_runs: Some(5),
            holdout_policy: Some(HoldoutPolicy::Tag),
            confirm: Some(true),
            confirm_runs: Some(10),
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
        // The reference's word for a run detached from whoever started it (`launch`).
        let mode = if crate::launch::child::detached() {
            "background"
        } else {
            "foreground"
        };
        map.insert("session_mode".into(), mode.into());
        crate::engine::gates::to_reference_config(&mut map);
        map
    }

    /// Reads settings stored with a run; unknown keys (the reference's) are ignored.
    pub fn from_saved(value: &serde_json::Value) -> Result<Settings> {
        let mut value = value.clone();
        crate::engine::gates::from_reference_config(&mut value);
        let mut s: Settings = serde_json::from_value(value).map_err(|e| {
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
                "holdout" => s.holdout = None,
                "approve_ship" => s.approve_ship = None,
                "dry_run" => s.dry_run = None,
                "layout" => s.layout = None,
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

/// The flag of a settings key (`agent_cmd` -> `--agent-cmd`).
fn flag(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
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
#[path = "tests.rs"]
mod tests;
