//! The checklist a run measures, read before the run starts: ship mode's readiness items (the
//! detected type's plus `[[ship.check]]` from the config file) or the task list of
//! `--verify-format checklist --checklist FILE`; and the engine's ticked copy `status` reads.

pub mod checks;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::artifacts::Paths;
use crate::config::{Mode, RunConfig, ShipType, VerifyFormat};
use crate::engine::checklist::{self, Item, Task};
use crate::engine::readiness;
use crate::error::{Error, Result};

/// What a checklist is made of.
#[derive(Clone, Debug)]
pub enum Kind {
    /// Ship mode's readiness checklist for the (detected) type.
    Ship(ShipType),
    /// A task list: its text as the run started (the engine's copy) and its tasks.
    Tasks { text: String, tasks: Vec<Task> },
}

/// The checklist of a run.
#[derive(Clone, Debug)]
pub struct Spec {
    pub kind: Kind,
    pub items: Vec<Item>,
}

impl Spec {
    /// The commands its items run (their files are evaluator files, protected from the agent).
    pub fn commands(&self) -> Vec<&str> {
        self.items
            .iter()
            .filter_map(|i| match &i.check {
                checklist::Check::Command(c) => Some(c.as_str()),
                checklist::Check::Engine(_) => None,
            })
            .collect()
    }

    /// The ship type (ship mode only).
    pub fn ship_type(&self) -> Option<ShipType> {
        match self.kind {
            Kind::Ship(t) => Some(t),
            Kind::Tasks { .. } => None,
        }
    }
}

/// The engine's copy of the checklist, with its boxes ticked from the last measurement of the
/// retained tree (what `status` counts).
pub fn copy_path(paths: &Paths) -> PathBuf {
    paths.private.join("checklist-copy.md")
}

/// Ticked boxes and all boxes of the engine's copy, if the run has one.
pub fn progress(paths: &Paths) -> Option<(usize, usize)> {
    let text = std::fs::read_to_string(copy_path(paths)).ok()?;
    Some(checklist::progress(&text)).filter(|(_, all)| *all > 0)
}

/// One `[[ship.check]]` entry of `autoresearch.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckEntry {
    name: String,
    cmd: String,
    timeout: Option<String>,
}

/// The `[ship]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShipTable {
    #[serde(default)]
    check: Vec<CheckEntry>,
}

/// Reads the `[ship]` table of a config file (`check` entries with `name`, `cmd`, optional
/// `timeout`); the error is a phrase for the config file's message.
pub fn ship_table(value: &toml::Value) -> std::result::Result<Vec<Item>, String> {
    let table: ShipTable = value
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| e.message().trim().to_string())?;
    let mut items = Vec::new();
    for (k, c) in table.check.into_iter().enumerate() {
        if c.name.trim().is_empty() || c.cmd.trim().is_empty() {
            return Err(format!(
                "[[ship.check]] entry {} needs a non-empty `name` and `cmd`",
                k + 1
            ));
        }
        let timeout = match c.timeout.as_deref() {
            Some(t) => Some(
                crate::duration::parse(t)
                    .map_err(|e| format!("[[ship.check]] `{}`: timeout {e}", c.name))?,
            ),
            None => None,
        }
        .filter(|d: &Duration| !d.is_zero());
        let mut item = Item::command(c.name.trim(), c.cmd.trim());
        item.timeout = timeout;
        items.push(item);
    }
    Ok(items)
}

/// The `[[ship.check]]` items of the config file, if one was read.
fn custom_checks(config_file: Option<&Path>) -> Result<Vec<Item>> {
    let Some(path) = config_file else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| Error::Usage(format!("{}: {}", path.display(), e.message().trim())))?;
    match table.get("ship") {
        None => Ok(Vec::new()),
        Some(v) => ship_table(v).map_err(|m| Error::Usage(format!("{}: {m}", path.display()))),
    }
}

/// The run's checklist (none when verify measures): ship's readiness items, or the task list
/// (on a resume, the engine's copy from the run's start: edits to your file, or the agent's,
/// do not change what is measured).
pub fn load(
    cfg: &RunConfig,
    root: &Path,
    paths: &Paths,
    config_file: Option<&Path>,
    resume: bool,
) -> Result<Option<Spec>> {
    let s = &cfg.settings;
    if cfg.mode == Mode::Ship {
        let ty = match s.ship_type.unwrap_or(ShipType::Auto) {
            ShipType::Auto => readiness::detect(|n| root.join(n).is_file()),
            t => t,
        };
        let custom = custom_checks(config_file)?;
        let items = readiness::items(ty, cfg.guard.as_deref(), &custom);
        return Ok(Some(Spec {
            kind: Kind::Ship(ty),
            items,
        }));
    }
    if cfg.verify_format != VerifyFormat::Checklist {
        return Ok(None);
    }
    let Some(file) = s.checklist.as_deref() else {
        return Err(Error::Usage(
            "--verify-format checklist needs --checklist FILE (a markdown task list)".into(),
        ));
    };
    let copy = copy_path(paths);
    let (text, from) = match std::fs::read_to_string(&copy) {
        Ok(t) if resume => (t, copy.as_path()),
        _ => {
            let file = if file.is_absolute() {
                file.to_path_buf()
            } else {
                root.join(file)
            };
            let t = std::fs::read_to_string(&file).map_err(|e| {
                Error::Usage(format!(
                    "--checklist {}: cannot read it: {e}",
                    file.display()
                ))
            })?;
            return tasks_spec(t, &file);
        }
    };
    tasks_spec(text, from)
}

fn tasks_spec(text: String, from: &Path) -> Result<Option<Spec>> {
    let tasks = checklist::parse_tasks(&text)
        .map_err(|e| Error::Usage(format!("--checklist {}: {e}", from.display())))?;
    let items = checklist::task_items(&tasks);
    Ok(Some(Spec {
        kind: Kind::Tasks { text, tasks },
        items,
    }))
}
