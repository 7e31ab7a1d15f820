//! `autoresearch-results/engine/inflight.json`: written before the agent runs and removed after the row is
//! recorded, so a run killed at any moment can roll its unfinished trial back on the next start.
//! The user's untracked files outside the scope are backed up alongside (`kept-files.json`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{IoContext, Result};
use crate::fsutil;
use crate::git::KeptFile;

/// The marker of an iteration in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inflight {
    pub version: u32,
    pub iteration: u64,
    pub run_tag: String,
    /// Full ref name of the branch.
    pub branch: String,
    /// Full id of the retained commit the iteration started from.
    pub start_commit: String,
    /// `agent`, `verify`, `guard` or `rework`.
    pub phase: String,
    /// The latest trial commit, once made.
    #[serde(default)]
    pub trial_commit: Option<String>,
    /// The experiment's description, once the agent gave it (kept in an `[INTERRUPTED]` row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub started_at: String,
    /// When the current phase began (absent in markers of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase_started_at: Option<String>,
    pub pid: u32,
}

impl Inflight {
    /// Writes the marker atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        fsutil::write_atomic(path, text.as_bytes())
    }

    /// Rewrites the marker after a phase change, without fsync: recovery relies only on what
    /// the first, durable [`Inflight::save`] recorded (iteration, branch, start commit, run tag).
    pub fn update(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        fsutil::write_quick(path, text.as_bytes())
    }

    /// Reads the marker if there is one. A marker that cannot be read is reported, not ignored.
    pub fn load(path: &Path) -> Result<Option<std::result::Result<Inflight, String>>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(serde_json::from_str(&text).map_err(|e| e.to_string()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).ctx("read", path),
        }
    }

    /// Removes the marker.
    pub fn clear(path: &Path) -> Result<()> {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).ctx("remove", path),
        }
    }
}

/// Saves the list of backed-up user files.
pub fn save_kept(path: &Path, kept: &[KeptFile]) -> Result<()> {
    let text = serde_json::to_string(kept).unwrap_or_else(|_| "[]".into());
    fsutil::write_atomic(path, text.as_bytes())
}

/// Loads the list of backed-up user files (empty when absent or unreadable).
pub fn load_kept(path: &Path) -> Vec<KeptFile> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}
