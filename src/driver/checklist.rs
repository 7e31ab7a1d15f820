//! The checklist metric, measured by the engine (see `engine_metric`): every item run on the
//! tree as it is, the results kept per commit so the guard can refuse a keep that breaks an
//! item that passed, the failing items handed to the agent, and the engine's ticked copy and
//! ship's `checklist.md` report written from the retained tree's results.

use std::path::Path;

use git2::Oid;

use super::Run;
use crate::config::{RunConfig, ShipType};
use crate::engine::checklist::{self, Check, ItemResult};
use crate::engine::step::{Guarded, Measured};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::process::End;
use crate::ship::{Kind, Spec};

/// A run's checklist and its latest results.
pub(super) struct ChecklistRun {
    pub(super) spec: Spec,
    /// The results per measured commit: the retained one and the newest trial.
    results: Vec<(Oid, Vec<ItemResult>)>,
}

impl ChecklistRun {
    pub(super) fn new(spec: Spec) -> ChecklistRun {
        ChecklistRun {
            spec,
            results: Vec::new(),
        }
    }

    fn at(&self, commit: Oid) -> Option<&[ItemResult]> {
        self.results
            .iter()
            .find(|(c, _)| *c == commit)
            .map(|(_, r)| r.as_slice())
    }
}

/// A task list's default stop: every task done (unless `--stop-condition` says otherwise).
pub(super) fn settle_stop(cfg: &mut RunConfig, spec: Option<&Spec>) {
    if let (
        Some(Spec {
            kind: Kind::Tasks { tasks, .. },
            ..
        }),
        None,
    ) = (spec, &cfg.stop_condition)
    {
        let text = format!("{} >= {}", cfg.metric, tasks.len());
        if let Ok(cond) = crate::engine::stop::parse(&text, &[cfg.metric.as_str()], cfg.direction) {
            cfg.stop_condition = Some((text, cond));
        }
    }
}

impl Run {
    /// Measures the checklist metric of the tree as it is: ship's readiness in percent, or the
    /// number of tasks whose acceptance command passes.
    pub(super) fn measure_checklist(&mut self, dir: &Path, stem: &str) -> Result<Measured> {
        let Some(cl) = self.checklist.as_ref() else {
            return Err(Error::Blocked("internal: no checklist to measure".into()));
        };
        let items = cl.spec.items.clone();
        let ty = cl.spec.ship_type().unwrap_or(ShipType::Generic);
        let tasks = matches!(cl.spec.kind, Kind::Tasks { .. });
        self.publish_checklist(&[]);
        let head = self.repo.head()?;
        let mut results = Vec::with_capacity(items.len());
        let mut log = String::new();
        for (k, item) in items.iter().enumerate() {
            let (passed, tail) = match &item.check {
                Check::Command(cmd) => {
                    let mut spec =
                        self.check_spec(cmd, dir.join(format!("{stem}.item-{}.log", k + 1)));
                    if let Some(t) = item.timeout {
                        spec.timeout = Some(t);
                    }
                    let out = self.run_check(&spec, "the checklist").map_err(|e| {
                        Error::Blocked(format!("cannot start the checklist item `{cmd}`: {e}"))
                    })?;
                    if let End::Interrupted(sig) = out.end {
                        return Ok(Measured::Interrupted(sig));
                    }
                    let tail = out.last_lines(30);
                    if out.end.success() {
                        (true, tail)
                    } else {
                        (false, format!("{}\n{tail}", out.end.describe()))
                    }
                }
                Check::Engine(c) => {
                    crate::ship::checks::run(&self.repo.repo, &self.repo.root, ty, *c)
                }
            };
            log.push_str(&format!(
                "{} {}: {}\n",
                if passed { "pass" } else { "FAIL" },
                item.name,
                item.shown()
            ));
            results.push(ItemResult {
                name: item.name.clone(),
                passed,
                tail: tail.trim_end().to_string(),
            });
        }
        let metric = if tasks {
            checklist::passing(&results) as f64
        } else {
            checklist::percent(&results)
        };
        log.push_str(&format!("{} = {metric}\n", self.cfg.metric));
        let _ = fsutil::write_quick(&dir.join(format!("{stem}.log")), log.as_bytes());
        self.write_feedback("last checklist", &log);
        let retained = self.head;
        if let Some(cl) = self.checklist.as_mut() {
            cl.results.retain(|(c, _)| *c == retained && *c != head);
            cl.results.push((head, results));
        }
        Ok(Measured::Metric(metric))
    }

    /// The checklist's part of the guard: a trial that breaks an item the retained tree passes
    /// fails it. `None` when there is no checklist, or (a task list) nothing broke and the
    /// guard command decides.
    pub(super) fn checklist_guard(&self) -> Option<Guarded> {
        let cl = self.checklist.as_ref()?;
        let ship = matches!(cl.spec.kind, Kind::Ship(_));
        let head = self.repo.head().ok()?;
        let broke = match (cl.at(self.head), cl.at(head)) {
            (Some(retained), Some(trial)) if head != self.head => {
                checklist::regressions(retained, trial)
            }
            _ => Vec::new(),
        };
        if broke.is_empty() {
            // Ship's guard is one of its items: it is not run twice.
            return ship.then_some(Guarded::Pass);
        }
        let trial = cl.at(head).unwrap_or_default();
        Some(Guarded::Fail {
            reason: format!(
                "checklist items that passed now fail: {}",
                crate::engine::list_paths(&broke)
            ),
            tail: checklist::failing_output(&cl.spec.items, trial, &broke),
            line: broke.join(", "),
        })
    }

    /// What the prompt shows of the checklist on the retained tree: the failing items with their
    /// output (ship), or the next failing task (a task list).
    pub(super) fn checklist_feedback(&self) -> Option<(String, String)> {
        let cl = self.checklist.as_ref()?;
        let results = cl.at(self.head)?;
        match &cl.spec.kind {
            Kind::Ship(_) => Some((
                "Failing checklist items (fix one this turn)".into(),
                checklist::failing_output(&cl.spec.items, results, &[]),
            ))
            .filter(|(_, t)| !t.is_empty()),
            Kind::Tasks { tasks, .. } => {
                let k = results.iter().position(|r| !r.passed)?;
                let done = checklist::passing(results);
                Some((
                    format!("Next task ({done}/{} done)", tasks.len()),
                    format!(
                        "{}\naccept: {}\n(it counts as done when this command passes; ticking its box does nothing)\n\nIts output now:\n{}",
                        tasks[k].title, tasks[k].accept, results[k].tail
                    ),
                ))
            }
        }
    }

    /// Writes the engine's copy of the checklist (boxes from the retained tree's results) and,
    /// in ship mode, the `checklist.md` report with `extra` lines (the ship step's outcome).
    pub(super) fn publish_checklist(&self, extra: &[String]) {
        let Some(cl) = self.checklist.as_ref() else {
            return;
        };
        let Some(results) = cl.at(self.head) else {
            return;
        };
        let text = match &cl.spec.kind {
            Kind::Tasks { text, tasks } => {
                let done: Vec<bool> = results.iter().map(|r| r.passed).collect();
                checklist::tick(text, tasks, &done)
            }
            Kind::Ship(ty) => {
                let title = format!("Ship readiness ({ty}): {}", self.run_tag);
                let md = checklist::report(&title, &cl.spec.items, results, extra);
                let dir = self.paths.mode_dir("ship", &self.run_tag);
                if fsutil::ensure_dir(&dir).is_ok() {
                    let _ = fsutil::write_atomic(&dir.join("checklist.md"), md.as_bytes());
                }
                md
            }
        };
        let _ = fsutil::write_atomic(&crate::ship::copy_path(&self.paths), text.as_bytes());
    }
}
