//! The reference's `context.json` (version 2, in the results directory) and the repository's
//! `.codex-autoresearch/pointer.json` (version 2): where the run's files are and whether a run is
//! active, for the reference's helpers and hooks. Written at the start (active, exec: not) and
//! at the end (not active) of a run in the current layout; the March layout has neither.

use std::path::Path;

use serde_json::{Value, json};

use super::Paths;
use crate::error::Result;
use crate::fsutil;

/// File name of the context, in the results directory.
pub const FILE: &str = "context.json";
/// The version of the context and pointer formats.
pub const VERSION: u64 = 2;

/// An absolute path as text.
fn abs(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
        .to_string_lossy()
        .into_owned()
}

/// What the context and pointer say of a run.
pub struct Context<'a> {
    pub active: bool,
    /// `foreground`, `background`, or none (exec).
    pub session_mode: Option<&'a str>,
    /// The run's scope, comma-joined.
    pub scope: String,
}

/// The reference's config keys of where the run is (`workspace_root`, `artifact_root`,
/// `primary_repo`, `repos`, `verify_cwd`), added to the state's `config` in the current layout.
pub fn add_config_keys(paths: &Paths, config: &mut serde_json::Map<String, Value>, scope: &str) {
    if paths.layout != crate::config::Layout::Current {
        return;
    }
    let root = abs(&paths.root);
    config.insert("workspace_root".into(), root.clone().into());
    config.insert("artifact_root".into(), abs(&paths.dir).into());
    config.insert("primary_repo".into(), root.clone().into());
    config.insert(
        "repos".into(),
        json!([{ "path": root, "scope": scope, "role": "primary" }]),
    );
    config.insert("verify_cwd".into(), "workspace_root".into());
}

/// Writes the context and the pointer of the run at `paths` (nothing in the March layout).
pub fn write(paths: &Paths, c: &Context<'_>) -> Result<()> {
    let (Some(context), Some(pointer)) = (&paths.context, &paths.pointer) else {
        return Ok(());
    };
    let now = super::state::now_utc();
    let root = abs(&paths.root);
    let dir = abs(&paths.dir);
    let value = json!({
        "version": VERSION,
        "active": c.active,
        "session_mode": c.session_mode,
        "workspace_root": root,
        "artifact_root": dir,
        "primary_repo": root,
        "repo_targets": [{ "path": root, "scope": c.scope, "role": "primary" }],
        "verify_cwd": "workspace_root",
        "results_path": abs(&paths.results),
        "state_path": abs(&paths.dir.join(super::layout::CURRENT.state)),
        "launch_path": Value::Null,
        "runtime_path": Value::Null,
        "log_path": Value::Null,
        "updated_at": now,
    });
    write_json(context, &value)?;
    let value = json!({
        "version": VERSION,
        "active": c.active,
        "workspace_root": root,
        "artifact_root": dir,
        "primary_repo": root,
        "updated_at": now,
    });
    write_json(pointer, &value)
}

/// Marks the run at `paths` inactive in its context and pointer, if it has them.
pub fn deactivate(paths: &Paths) -> Result<()> {
    for path in [&paths.context, &paths.pointer].into_iter().flatten() {
        let Some(mut value) = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        else {
            continue;
        };
        if let Some(map) = value.as_object_mut() {
            map.insert("active".into(), false.into());
            map.insert("updated_at".into(), super::state::now_utc().into());
        }
        write_json(path, &value)?;
    }
    Ok(())
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    if let Some(parent) = path.parent() {
        fsutil::ensure_dir(parent)?;
    }
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| crate::error::Error::Blocked(format!("encode {}: {e}", path.display())))?;
    text.push('\n');
    fsutil::write_atomic(path, text.as_bytes())
}
