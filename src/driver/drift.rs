//! The evaluator's pins: the files verify and guard execute (inside the repository or outside
//! it) are pinned by content hash at the baseline, in `autoresearch-results/engine/evaluators.json` (a copy of
//! each outside file beside it), so a resume keeps them. A change is never compared across: the
//! agent's (seen after its turn) makes the trial `[PROTECTED]` and an outside file is put back
//! (its changed content kept as `evaluators/changed-<n>-<name>`); anyone else's (seen between
//! iterations) is a `drift` row and a re-baseline.

use std::path::{Path, PathBuf};

use git2::{ObjectType, Oid};
use serde::{Deserialize, Serialize};

use super::Run;
use super::measure::Untouched;
use crate::artifacts::Paths;
use crate::engine::list_paths;
use crate::engine::number::{canonical, delta};
use crate::engine::policy::Stop;
use crate::engine::row::{Guard, Row, Status, one_line};
use crate::error::{IoContext, Result};
use crate::fsutil;
use crate::git::Repo;
use crate::protection::EvaluatorFile;

/// One pinned file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Pin {
    /// Absolute path.
    path: PathBuf,
    /// How messages name it.
    shown: String,
    /// Its git blob hash; `None` when it was missing.
    hash: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PinFile {
    version: u32,
    files: Vec<Pin>,
}

/// What the check between iterations did.
pub(super) enum Drift {
    /// No evaluator file changed.
    None,
    /// One did: a `drift` row re-measured the retained commit.
    Rebaselined,
    /// One did and the run cannot go on.
    Stop(Stop),
}

/// The evaluator files of the run and their pins (empty until pinned).
#[derive(Debug, Default)]
pub(super) struct Pins {
    files: Vec<EvaluatorFile>,
    pinned: Vec<Pin>,
}

impl Pins {
    pub(super) fn new(files: Vec<EvaluatorFile>) -> Pins {
        Pins {
            files,
            pinned: Vec::new(),
        }
    }
}

fn hash(path: &Path) -> Option<String> {
    Oid::hash_file(ObjectType::Blob, path)
        .ok()
        .map(|o| o.to_string())
}

fn pins_file(paths: &Paths) -> PathBuf {
    paths.private.join("evaluators.json")
}

/// Where the copy of an outside evaluator with content `hash` is kept.
fn pin_copy(paths: &Paths, hash: &str) -> PathBuf {
    paths.private.join("evaluators").join(hash)
}

/// Keeps the changed content of `path` at `autoresearch-results/engine/evaluators/changed-<n>-<name>` (the
/// next free `n`) before it is put back; returns where, or `None` when it is gone.
fn keep_changed(paths: &Paths, path: &Path) -> Result<Option<PathBuf>> {
    if !path.is_file() {
        return Ok(None);
    }
    let dir = paths.private.join("evaluators");
    fsutil::ensure_dir(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kept = (1u32..)
        .map(|n| dir.join(format!("changed-{n}-{name}")))
        .find(|p| !p.exists())
        .unwrap_or_else(|| dir.join(format!("changed-{name}")));
    std::fs::copy(path, &kept).ctx("keep the changed content of", path)?;
    Ok(Some(kept))
}

/// Puts back each evaluator file outside the repository that differs from its pin, from its
/// copy, keeping the changed content first; returns their names, each with where that is.
fn put_back_outside(paths: &Paths, root: &Path, pins: &[Pin]) -> Result<Vec<PutBack>> {
    let mut changed = Vec::new();
    for p in pins {
        if p.path.starts_with(root) || hash(&p.path) == p.hash {
            continue;
        }
        let mut kept = None;
        if let Some(copy) = p.hash.as_ref().map(|h| pin_copy(paths, h))
            && copy.exists()
        {
            kept = keep_changed(paths, &p.path)?;
            std::fs::copy(&copy, &p.path).ctx("put back", &p.path)?;
        }
        changed.push(PutBack {
            shown: p.shown.clone(),
            kept,
        });
    }
    Ok(changed)
}

/// An evaluator file put back, and where its changed content is kept.
struct PutBack {
    shown: String,
    kept: Option<PathBuf>,
}

impl PutBack {
    /// `; its changed content is kept in PATH`, or nothing.
    fn kept_clause(&self) -> String {
        self.kept
            .as_ref()
            .map(|k| format!("; its changed content is kept in {}", k.display()))
            .unwrap_or_default()
    }
}

/// After an agent turn the engine did not survive (the start recovers it): the evaluator files
/// outside the repository that differ from their pins were changed while the agent ran; they are
/// put back rather than taken for a drift. Returns what to say.
pub(super) fn put_back_after_killed_turn(paths: &Paths, root: &Path) -> Result<Vec<String>> {
    let Some(stored) = std::fs::read(pins_file(paths))
        .ok()
        .and_then(|b| serde_json::from_slice::<PinFile>(&b).ok())
    else {
        return Ok(Vec::new());
    };
    let put_back = put_back_outside(paths, root, &stored.files)?;
    Ok(put_back
        .iter()
        .map(|p| {
            format!(
                "put back the evaluator {}, which changed during the interrupted turn{}",
                p.shown,
                p.kept_clause()
            )
        })
        .collect())
}

impl Run {
    fn pins_file(&self) -> PathBuf {
        pins_file(&self.paths)
    }

    fn pin_copy(&self, hash: &str) -> PathBuf {
        pin_copy(&self.paths, hash)
    }

    /// Pins the evaluator files as they are now, and keeps a copy of each one outside the
    /// repository (to put it back if the agent changes it).
    pub(super) fn pin_evaluators(&mut self) -> Result<()> {
        let mut pinned = Vec::new();
        for f in &self.pins.files {
            let h = hash(&f.path);
            if let (Some(h), None) = (&h, &f.in_repo) {
                let copy = self.pin_copy(h);
                if !copy.exists() {
                    fsutil::ensure_dir(copy.parent().unwrap_or(&self.paths.private))?;
                    std::fs::copy(&f.path, &copy).ctx("keep a copy of", &f.path)?;
                }
            }
            pinned.push(Pin {
                path: f.path.clone(),
                shown: f.shown(),
                hash: h,
            });
        }
        let body = serde_json::to_vec_pretty(&PinFile {
            version: 1,
            files: pinned.clone(),
        })
        .unwrap_or_default();
        fsutil::write_atomic(&self.pins_file(), &body)?;
        self.pins.pinned = pinned;
        Ok(())
    }

    /// On resume: the pins the run recorded (the current evaluator files are pinned when it
    /// recorded none, or other files: a changed verify is refused before this).
    pub(super) fn load_pins(&mut self) -> Result<()> {
        let stored = std::fs::read(self.pins_file())
            .ok()
            .and_then(|b| serde_json::from_slice::<PinFile>(&b).ok());
        match stored {
            Some(p)
                if p.files.len() == self.pins.files.len()
                    && p.files
                        .iter()
                        .zip(&self.pins.files)
                        .all(|(a, b)| a.path == b.path) =>
            {
                self.pins.pinned = p.files;
                Ok(())
            }
            _ => self.pin_evaluators(),
        }
    }

    /// The pinned files whose content differs from their pin.
    pub(super) fn drifted_evaluators(&self) -> Vec<String> {
        self.pins
            .pinned
            .iter()
            .filter(|p| hash(&p.path) != p.hash)
            .map(|p| p.shown.clone())
            .collect()
    }

    /// After an agent turn: the evaluator files outside the repository it changed, put back
    /// from their copies (those inside are protected paths, seen by the inspection).
    pub(super) fn evaluators_changed_by_turn(&mut self) -> Result<Vec<String>> {
        let put_back = put_back_outside(&self.paths, &self.repo.root, &self.pins.pinned)?;
        let changed: Vec<String> = put_back.iter().map(|p| p.shown.clone()).collect();
        if !changed.is_empty() {
            let kept: String = put_back.iter().map(PutBack::kept_clause).collect();
            let note = format!(
                "the turn changed the evaluator {}; put back (verify and guard run it){kept}",
                list_paths(&changed)
            );
            self.out.note(&note);
            self.notes.push(note);
        }
        Ok(changed)
    }

    /// Between iterations: when an evaluator file changed since it was pinned (someone else
    /// changed it), re-baselines. Returns a stop when the run cannot go on.
    pub(super) fn rebaseline_if_drifted(&mut self) -> Result<Drift> {
        let changed = self.drifted_evaluators();
        if changed.is_empty() {
            return Ok(Drift::None);
        }
        let why = format!(
            "the evaluator {} changed between iterations",
            list_paths(&changed)
        );
        Ok(match self.rebaseline(&why)? {
            Some(stop) => Drift::Stop(stop),
            None => Drift::Rebaselined,
        })
    }

    /// Re-measures the retained commit as the new reference: a `drift` row (bookkeeping, not a
    /// discard) with `why`, and new pins. Later trials are compared with the new value.
    pub(super) fn rebaseline(&mut self, why: &str) -> Result<Option<Stop>> {
        let n = self.replay.tally.iteration + 1;
        let dir = self.paths.iter_dir(n);
        fsutil::ensure_dir(&dir)?;
        // Pinned first: a change made while verify runs is seen at the next check.
        self.pin_evaluators()?;
        let metric = match self.measure_untouched(&dir, "drift-")? {
            Ok((m, _)) => m,
            Err(Untouched::NoMetric { reason, .. }) => {
                return Ok(Some(Stop::Blocked(format!(
                    "{why}, and verify no longer gives a metric on the retained tree ({reason}); fix the evaluator, then run again"
                ))));
            }
            Err(Untouched::GuardFails { reason, tail }) => {
                return Ok(Some(Stop::Blocked(format!(
                    "{why}, and the guard now fails on the retained tree ({reason}: {}); fix it, then run again",
                    one_line(&tail)
                ))));
            }
            Err(Untouched::Interrupted(sig)) => return Ok(Some(Stop::Interrupted(sig))),
        };
        // SEQ's reference rests on the old evaluator: a new one from fresh baseline runs.
        let metric = if self.keep.seq.is_some() {
            match self.resume_keep_rule(&dir, n, metric, true) {
                Ok(mean) => mean,
                Err(crate::error::Error::Refused(m)) => {
                    return Ok(Some(Stop::Blocked(format!("{why}, and {m}"))));
                }
                Err(e) => return Err(e),
            }
        } else {
            metric
        };
        let retained = self.replay.tally.current_metric;
        let row = Row {
            iteration: n,
            commit: Repo::short(self.head),
            metric,
            delta: delta(metric, retained),
            guard: Guard::NotRun,
            status: Status::Drift,
            description: format!(
                "{why}: re-measured the retained commit {} -> {} (the new reference)",
                canonical(retained),
                canonical(metric)
            ),
        };
        self.record(row, None)?;
        Ok(None)
    }
}
