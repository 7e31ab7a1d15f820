//! `--holdout CMD` in the driver (GUIDE §7b): its runs at the start, before each keep and at the
//! end, with logs inside `.git` (outside the work tree the agent works in) and none of the
//! run's variables; the verdicts themselves are `engine::holdout`'s.

use std::path::PathBuf;

use super::Run;
use crate::engine::holdout::{Holdout, Verdict};
use crate::engine::number::canonical;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::process::{self, End};

/// The holdout's state in a run.
#[derive(Default)]
pub(super) struct HoldoutState {
    /// The reference, once the start's runs gave one.
    pub(super) holdout: Option<Holdout>,
    /// The values of the keep being judged (they become the reference if it stands).
    pub(super) pending: Option<Vec<f64>>,
    /// The reference on the untouched tree (the end is judged against it).
    pub(super) start: Option<Holdout>,
}

impl Run {
    /// Where the holdout's logs go: inside `.git`, which the agent's sandbox cannot write and
    /// verify and guard do not read.
    fn holdout_dir(&self) -> PathBuf {
        self.repo
            .repo
            .path()
            .join("autoresearch-holdout")
            .join(&self.run_tag)
    }

    /// Runs the holdout once; its value, or why there is none.
    fn holdout_once(&mut self, label: &str) -> Result<std::result::Result<f64, Verdict>> {
        let Some(cmd) = self.cfg.holdout.clone() else {
            return Ok(Err(Verdict::Failed("no holdout".into())));
        };
        let dir = self.holdout_dir();
        fsutil::ensure_dir(&dir)?;
        let mut spec = self.check_spec(&cmd, dir.join(format!("{label}.log")));
        // None of the run's variables: nothing in its environment names the run's goal either.
        spec.env.clear();
        self.no_process_since_clean = false;
        let out = process::run(&spec)
            .map_err(|e| Error::Blocked(format!("cannot start the holdout (`sh -c`): {e}")))?;
        Ok(match out.end {
            End::Interrupted(sig) => Err(Verdict::Interrupted(sig)),
            End::TimedOut => Err(Verdict::Failed("the holdout timed out".into())),
            _ => self
                .cfg
                .metric_format
                .extract(&out.stdout)
                .map_err(Verdict::Failed),
        })
    }

    /// `n` holdout runs; all their values, or why not. What they wrote is undone once, after.
    fn holdout_runs(
        &mut self,
        n: usize,
        label: &str,
    ) -> Result<std::result::Result<Vec<f64>, Verdict>> {
        let mut values = Vec::new();
        let mut failed = None;
        for k in 1..=n {
            match self.holdout_once(&format!("{label}-{k}"))? {
                Ok(v) => values.push(v),
                Err(why) => {
                    failed = Some(why);
                    break;
                }
            }
        }
        self.restore_measurement_writes("the holdout")?;
        Ok(match failed {
            Some(why) => Err(why),
            None => Ok(values),
        })
    }

    /// The holdout's reference on the untouched tree (a new run, or a resumed one: the holdout
    /// is not stored with the run). Two runs; equal values mean a deterministic holdout,
    /// otherwise three in all. A holdout without a value refuses the start.
    pub(super) fn holdout_start(&mut self, label: &str) -> Result<()> {
        if self.cfg.holdout.is_none() {
            return Ok(());
        }
        let mut values = match self.holdout_runs(2, label)? {
            Ok(v) => v,
            Err(Verdict::Interrupted(sig)) => {
                return Err(Error::Interrupted(sig, "during the holdout"));
            }
            Err(why) => {
                let why = match why {
                    Verdict::Failed(w) => w,
                    _ => String::new(),
                };
                return Err(Error::Refused(format!(
                    "the holdout gives no metric on the untouched tree ({why}); fix --holdout (it prints the metric like verify)"
                )));
            }
        };
        if values[0] != values[1]
            && let Ok(v) = self.holdout_runs(1, &format!("{label}-more"))?
        {
            values.extend(v);
        }
        let h = Holdout::new(self.cfg.direction, &values);
        self.holdout.start = Some(h.clone());
        self.out.note(&format!(
            "holdout: {} on the untouched tree",
            canonical(h.mean())
        ));
        self.holdout.holdout = Some(h);
        Ok(())
    }

    /// The holdout on a trial about to be kept.
    pub(super) fn holdout_verdict(&mut self, n: u64) -> Result<Verdict> {
        let runs = self.holdout.holdout.as_ref().map_or(0, Holdout::runs);
        Ok(match self.holdout_runs(runs, &format!("iter-{n:04}"))? {
            Ok(values) => {
                let v = match &self.holdout.holdout {
                    Some(h) => h.judge(&values),
                    None => Verdict::Failed("no holdout reference".into()),
                };
                self.holdout.pending = Some(values);
                v
            }
            Err(why) => why,
        })
    }

    /// A keep stood: its holdout values are the new reference.
    pub(super) fn holdout_kept(&mut self) {
        if let (Some(h), Some(v)) = (self.holdout.holdout.as_mut(), self.holdout.pending.take()) {
            h.accept(&v);
        }
    }

    /// The end's holdout line: the untouched tree's value against the final retained tree's.
    pub(super) fn holdout_end(&mut self) -> Result<()> {
        let (Some(start), Some(h)) = (self.holdout.start.clone(), self.holdout.holdout.as_ref())
        else {
            return Ok(());
        };
        let runs = h.runs();
        let line = match self.holdout_runs(runs, "end")? {
            Ok(values) => {
                // Judged against the start's runs and noise, not a single value.
                let (start, end, verdict) = match start.judge(&values) {
                    Verdict::Regressed { before, after } => {
                        (before, after, " (worse than at the start)")
                    }
                    Verdict::Fine { before, after } => (before, after, ""),
                    _ => (start.mean(), start.mean(), ""),
                };
                self.state.holdout = Some(serde_json::json!({ "start": start, "end": end }));
                format!(
                    "holdout: {} at the start -> {} at the end{verdict}",
                    canonical(start),
                    canonical(end)
                )
            }
            Err(Verdict::Failed(why)) => format!("holdout: no value at the end ({why})"),
            Err(_) => return Ok(()),
        };
        self.out.note(&line);
        self.save_state()
    }
}
