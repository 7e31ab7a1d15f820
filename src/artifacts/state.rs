//! `autoresearch-results/state.json`: version 1 with the reference's keys (`run_tag`, `mode`, `config`,
//! `state`, `updated_at`) plus the engine's own `engine` object. Written atomically, keys sorted.
//! It is a cache of the TSV replay: on disagreement the TSV wins.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::engine::reducer::Tally;
use crate::error::{Error, Result};
use crate::fsutil;

/// Token usage, summed or per iteration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub cached_input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub reasoning_output_tokens: u64,
    /// Reported cost in US dollars (Claude reports it; Codex does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

impl Usage {
    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.cached_input_tokens += other.cached_input_tokens;
        self.output_tokens += other.output_tokens;
        self.reasoning_output_tokens += other.reasoning_output_tokens;
        if let Some(c) = other.cost_usd {
            self.cost_usd = Some(self.cost_usd.unwrap_or(0.0) + c);
        }
    }

    /// Returns true when nothing was counted.
    pub fn is_empty(&self) -> bool {
        *self == Usage::default()
    }
}

/// What the engine remembers about one iteration beyond its TSV row.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IterationRecord {
    pub iteration: u64,
    pub status: String,
    pub agent_ms: u64,
    pub verify_ms: u64,
    pub guard_ms: u64,
    pub total_ms: u64,
    #[serde(default)]
    pub rework_turns: u32,
    /// Full work-tree scans the engine made (one after each agent turn, one more when verify or
    /// guard may have changed the tree).
    #[serde(default)]
    pub tree_scans: u32,
    /// Time spent waiting out the agent's usage or rate limits (`--max-quota-wait` is the
    /// budget per iteration).
    #[serde(default)]
    pub quota_wait_ms: u64,
    /// What the engine noted about the iteration (a session that could not be resumed, a
    /// rate-limit wait).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default)]
    pub usage: Usage,
}

/// How many iteration records the state keeps (older ones live in `autoresearch-results/engine/iter-*/`).
pub const RECENT: usize = 20;

/// The engine's own keys, under `engine`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineInfo {
    /// Version of the binary that last wrote the state.
    pub version: String,
    /// The branch the run commits on.
    pub branch: String,
    /// Full id of the commit the branch must be at between iterations.
    pub head: String,
    /// The agent session being continued (Codex thread id, Claude session id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The session's running token total (Codex reports cumulative usage per thread).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_usage: Option<Usage>,
    /// Tokens over the whole run.
    #[serde(default)]
    pub usage: Usage,
    /// The SEQ preset `--keep-effort auto` chose (kept for a resume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_effort: Option<String>,
    /// Time spent, in milliseconds, over the whole run.
    #[serde(default)]
    pub agent_ms: u64,
    #[serde(default)]
    pub verify_ms: u64,
    #[serde(default)]
    pub guard_ms: u64,
    /// Active time of the run over all its sessions, in milliseconds (`--max-duration`).
    #[serde(default)]
    pub elapsed_ms: u64,
    /// How the run ended (`null` while it runs or after a crash; cleared by a resume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<crate::ending::Ended>,
    /// The last [`RECENT`] iterations.
    #[serde(default)]
    pub recent: Vec<IterationRecord>,
}

impl EngineInfo {
    /// Adds an iteration's record to the totals and the recent window.
    pub fn record(&mut self, rec: IterationRecord) {
        self.usage.add(&rec.usage);
        self.agent_ms += rec.agent_ms;
        self.verify_ms += rec.verify_ms;
        self.guard_ms += rec.guard_ms;
        self.recent.push(rec);
        if self.recent.len() > RECENT {
            let cut = self.recent.len() - RECENT;
            self.recent.drain(..cut);
        }
    }
}

/// The whole state file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    pub version: u32,
    pub run_tag: String,
    pub mode: String,
    pub config: serde_json::Map<String, serde_json::Value>,
    pub state: Tally,
    #[serde(default)]
    pub engine: EngineInfo,
    /// The keep rule's noise estimate (SEQ), for people and for `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<crate::engine::seq::NoiseState>,
    /// `--holdout` at the start and at the end of the run (`{"start": x, "end": y}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout: Option<serde_json::Value>,
    #[serde(default)]
    pub updated_at: String,
}

/// Returns the current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn now_utc() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

impl StateFile {
    /// Writes the state atomically (pretty, keys sorted, trailing newline).
    pub fn save(&mut self, path: &Path) -> Result<()> {
        self.updated_at = now_utc();
        // Through `Value`, whose maps are sorted, so the file has sorted keys like the reference's.
        let value = serde_json::to_value(&*self)
            .map_err(|e| Error::Blocked(format!("encode state: {e}")))?;
        let mut text = serde_json::to_string_pretty(&value)
            .map_err(|e| Error::Blocked(format!("encode state: {e}")))?;
        text.push('\n');
        fsutil::write_atomic(path, text.as_bytes())
    }

    /// Reads the state; `Err` carries a one-line reason.
    pub fn load(path: &Path) -> std::result::Result<StateFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
        let s: StateFile = serde_json::from_str(&text)
            .map_err(|e| format!("it is not a valid state file: {e}"))?;
        if s.version != 1 {
            return Err(format!(
                "version {} is not supported (expected 1)",
                s.version
            ));
        }
        Ok(s)
    }
}
