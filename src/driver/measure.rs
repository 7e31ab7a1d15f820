//! Verify and guard runs: their environment, logs and timeouts, the metric read from verify's
//! output, and the measurement of the untouched tree (baseline, re-measure on resume).

use std::path::Path;

use super::Run;
use crate::engine::number::median;
use crate::engine::reducer::Directive;
use crate::engine::row::Guard;
use crate::engine::step::{Guarded, Measured};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::process::{End, Spec};
use crate::verify::Read;

/// Why verify and guard on an untouched tree (the baseline, the resume re-measure) refuse a start.
pub(super) enum Untouched {
    NoMetric { reason: String, tail: String },
    GuardFails { reason: String, tail: String },
    Interrupted(i32),
}

impl Run {
    pub(super) fn child_env(&self, iteration: u64, directive: Directive) -> Vec<(String, String)> {
        vec![
            ("AUTORESEARCH_ITERATION".into(), iteration.to_string()),
            ("AUTORESEARCH_MODE".into(), self.cfg.mode.to_string()),
            (
                "AUTORESEARCH_DIRECTIVE".into(),
                directive.as_str().to_string(),
            ),
            ("AUTORESEARCH_GOAL".into(), self.cfg.goal.clone()),
            ("AUTORESEARCH_METRIC".into(), self.cfg.metric.clone()),
            (
                "AUTORESEARCH_DIRECTION".into(),
                self.cfg.direction.to_string(),
            ),
            (
                "AUTORESEARCH_RESULTS".into(),
                self.paths.results.display().to_string(),
            ),
            (
                "AUTORESEARCH_STATE".into(),
                self.paths.state.display().to_string(),
            ),
            (
                "AUTORESEARCH_FEEDBACK".into(),
                self.paths.feedback.display().to_string(),
            ),
            ("AUTORESEARCH_RUN_TAG".into(), self.run_tag.clone()),
        ]
    }

    pub(super) fn write_feedback(&self, title: &str, text: &str) {
        let body = format!("# {title}\n{text}\n");
        let _ = fsutil::write_quick(&self.paths.feedback, body.as_bytes());
    }

    /// Runs verify and guard on the tree as it is (no agent change) and restores it afterwards;
    /// returns the metric and the guard column, or why the run cannot start.
    pub(super) fn measure_untouched(
        &mut self,
        dir: &Path,
        prefix: &str,
    ) -> Result<std::result::Result<(f64, Guard), Untouched>> {
        self.untouched = true;
        let measured = self.measure_untouched_inner(dir, prefix);
        self.untouched = false;
        measured
    }

    pub(super) fn measure_untouched_inner(
        &mut self,
        dir: &Path,
        prefix: &str,
    ) -> Result<std::result::Result<(f64, Guard), Untouched>> {
        const WHO: &str = "the measurement of the untouched tree";
        // Like in an iteration: what verify wrote is undone before the guard runs.
        let measured = self.measure(dir, &format!("{prefix}verify"))?;
        let edited = self.restore_measurement_writes(WHO)?;
        self.note_edits("verify", edited);
        let metric = match measured {
            Measured::Metric(v) => v,
            Measured::MetricsJson(v, r) => self.untouched_reading(v, r),
            Measured::Failed { reason, tail, .. } => {
                return Ok(Err(Untouched::NoMetric { reason, tail }));
            }
            Measured::Interrupted(sig) => return Ok(Err(Untouched::Interrupted(sig))),
        };
        let guarded = self.run_guard(dir, &format!("{prefix}guard"))?;
        let edited = self.restore_measurement_writes(WHO)?;
        self.note_edits("the guard", edited);
        let guard = match guarded {
            None => Guard::NotRun,
            Some(Guarded::Pass) => Guard::Pass,
            Some(Guarded::Fail { reason, tail, .. }) => {
                return Ok(Err(Untouched::GuardFails { reason, tail }));
            }
            Some(Guarded::Interrupted(sig)) => return Ok(Err(Untouched::Interrupted(sig))),
        };
        Ok(Ok((metric, guard)))
    }

    /// Returns the spec of a verify or guard run: `sh -c` in the repository with the run's
    /// environment, the log at `log`, `--verify-timeout`, and the group recorded.
    pub(super) fn check_spec(&self, command: &str, log: std::path::PathBuf) -> Spec {
        let mut spec = Spec::shell(command, &self.repo.root);
        spec.stdout_log = Some(log.clone());
        spec.stderr_log = Some(log);
        spec.timeout = Some(self.cfg.verify_timeout);
        spec.group_record = Some(self.paths.child.clone());
        // The untouched tree is the one the last row measured (0: the baseline); a trial is
        // the next iteration's.
        let n = self.replay.tally.iteration + u64::from(!self.untouched);
        spec.env = self
            .child_env(n, Directive::Continue)
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        spec
    }

    /// Runs verify (`--repeat` times) and reads the metric.
    pub(super) fn measure(&mut self, dir: &Path, stem: &str) -> Result<Measured> {
        self.no_process_since_clean = false;
        if let Some(measured) = self.measure_by_engine(dir, stem)? {
            return Ok(measured);
        }
        let mut values = Vec::new();
        let mut readings = Vec::new();
        // One number per measurement (its `--repeat` runs share it).
        let run = self.keep.number_run();
        for k in 1..=self.cfg.repeat {
            let log = if self.cfg.repeat == 1 {
                dir.join(format!("{stem}.log"))
            } else {
                dir.join(format!("{stem}-{k}.log"))
            };
            let mut spec = self.check_spec(&self.cfg.verify, log);
            // A seeded benchmark can vary its seed per run and show its real noise.
            spec.env
                .push(("AUTORESEARCH_VERIFY_RUN".into(), run.to_string().into()));
            spec.env.push((
                "AUTORESEARCH_VERIFY_ROLE".into(),
                self.keep.next_role.as_str().into(),
            ));
            if self.cfg.repeat > 1 {
                spec.env
                    .push(("AUTORESEARCH_VERIFY_REPEAT".into(), k.to_string().into()));
            }
            let t = std::time::Instant::now();
            let out = self
                .run_check(&spec, "verify")
                .map_err(|e| Error::Blocked(format!("cannot start verify (`sh -c`): {e}")))?;
            self.verify_took(t.elapsed());
            self.write_feedback("last verify output", &out.last_lines(40));
            match crate::verify::read(&self.cfg, &out) {
                Read::Metric(v) => {
                    values.push(v);
                    readings.extend(crate::verify::reading(&self.cfg, &out).and_then(|r| r.ok()));
                }
                Read::Interrupted(sig) => return Ok(Measured::Interrupted(sig)),
                Read::Failed { reason, timed_out } => {
                    return Ok(Measured::Failed {
                        reason,
                        timed_out,
                        tail: out.last_lines(5),
                    });
                }
            }
        }
        let v = median(&values);
        Ok(match crate::engine::gates::Reading::summarize(&readings) {
            Some(r) => Measured::MetricsJson(v, r),
            None => Measured::Metric(v),
        })
    }

    /// Runs the guard, if there is one.
    pub(super) fn run_guard(&mut self, dir: &Path, stem: &str) -> Result<Option<Guarded>> {
        // A checklist's items that passed must still pass (ship: its only guard).
        if let Some(g) = self.checklist_guard() {
            return Ok(Some(g));
        }
        let Some(guard) = self.cfg.guard.clone() else {
            return Ok(None);
        };
        self.no_process_since_clean = false;
        let spec = self.check_spec(&guard, dir.join(format!("{stem}.log")));
        let out = self
            .run_check(&spec, "the guard")
            .map_err(|e| Error::Blocked(format!("cannot start the guard (`sh -c`): {e}")))?;
        self.write_feedback("last guard output", &out.last_lines(60));
        Ok(Some(match out.end {
            End::Exited(0) => Guarded::Pass,
            End::Interrupted(sig) => Guarded::Interrupted(sig),
            other => {
                let tail = out.last_lines(60);
                Guarded::Fail {
                    reason: format!("guard {}", other.describe()),
                    line: crate::engine::reason::failure_line(&tail).unwrap_or_default(),
                    tail,
                }
            }
        }))
    }
}
