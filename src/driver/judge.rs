//! The keep rule's side of the driver (GUIDE §7a): SEQ's state between iterations, the runs log
//! (`autoresearch-results/engine/runs.tsv`), the baseline's extra runs, the replay on resume, verify on the
//! retained commit in the middle of an iteration, and the choice of `--keep-effort auto`.

use std::path::Path;
use std::time::Duration;

use git2::Oid;

use super::Run;
use super::measure::Untouched;
use crate::artifacts::runs::RunsLog;
use crate::config::{KeepEffort, KeepRule, RunConfig, parse_min_effect};
use crate::engine::number::median_duration;
use crate::engine::row::Status;
use crate::engine::seq::{self, Effort, MinEffect, Next, Params, Role, RunRecord, Seq};
use crate::engine::step::{Measured, RunTaken};
use crate::error::Result;
use crate::git::Repo;

/// A measurement's mean and its runs, each with its number in the runs log.
type Numbered = (f64, Vec<(u64, RunTaken)>);

/// SEQ's state between iterations and the runs log.
pub(super) struct KeepState {
    /// `None` with `--keep-rule strict`, and while an iteration holds it.
    pub(super) seq: Option<Seq>,
    pub(super) runs: RunsLog,
    /// The preset in use; `None` while `auto` has not decided yet.
    pub(super) effort: Option<Effort>,
    /// How long verify runs took (for `auto`).
    verify_times: Vec<Duration>,
    /// What the next verify run is, for its environment (`AUTORESEARCH_VERIFY_ROLE`).
    pub(super) next_role: Role,
    /// Verify runs numbered so far (`AUTORESEARCH_VERIFY_RUN`, the runs log's `run`).
    pub(super) count: u64,
}

/// The SEQ parameters of a run for a preset.
pub(super) fn params(cfg: &RunConfig, effort: Effort) -> Params {
    let mut p = Params::preset(effort);
    p.cap = cfg.max_runs;
    p.baseline_runs = cfg.baseline_runs;
    p.min_effect = cfg
        .min_effect
        .as_deref()
        .and_then(|t| parse_min_effect(t).ok())
        .map(|(v, pct)| {
            if pct {
                MinEffect::Percent(v)
            } else {
                MinEffect::Absolute(v)
            }
        });
    p
}

/// The preset a run starts with: the one asked for, or (for `auto`) none yet.
pub(super) fn fixed_effort(cfg: &RunConfig) -> Option<Effort> {
    match cfg.keep_effort {
        KeepEffort::Default => Some(Effort::Default),
        KeepEffort::Thorough => Some(Effort::Thorough),
        KeepEffort::Auto => None,
    }
}

impl KeepState {
    /// The keep rule of a new run (nothing on disk yet).
    pub(super) fn new(cfg: &RunConfig, paths_runs: &Path) -> KeepState {
        let effort = fixed_effort(cfg);
        KeepState {
            seq: (cfg.keep_rule == KeepRule::Seq).then(|| {
                Seq::new(
                    cfg.direction,
                    params(cfg, effort.unwrap_or(Effort::Default)),
                )
            }),
            runs: RunsLog::new(paths_runs),
            effort,
            verify_times: Vec::new(),
            next_role: Role::Baseline,
            count: 0,
        }
    }
}

impl KeepState {
    /// Numbers the next verify run.
    pub(super) fn number_run(&mut self) -> u64 {
        self.count += 1;
        self.count
    }
}

impl Run {
    /// Notes how long a verify run took (what `auto` compares an agent turn with).
    pub(super) fn verify_took(&mut self, d: Duration) {
        if self.keep.effort.is_none() {
            self.keep.verify_times.push(d);
        }
    }

    /// `--keep-effort auto`: once an agent turn was timed, picks the preset for the rest of the
    /// run and says which and why (the choice is kept in the state for a resume).
    pub(super) fn choose_effort(&mut self, turn: Duration) -> Option<Params> {
        if self.keep.effort.is_some() || self.cfg.keep_rule != KeepRule::Seq {
            return None;
        }
        let verify = median_duration(&self.keep.verify_times)?;
        let (effort, why) = seq::choose_effort(verify, turn);
        self.keep.effort = Some(effort);
        self.state.engine.keep_effort = Some(effort.as_str().to_string());
        self.out
            .note(&format!("keep effort: {} ({why})", effort.as_str()));
        Some(params(&self.cfg, effort))
    }

    /// The baseline under SEQ: after the first measurement, more verify runs of the untouched
    /// tree while the rule asks for them (2 in all for a deterministic metric, `--baseline-runs`
    /// for a noisy one). Returns the metric the baseline row shows (their mean) and the runs.
    pub(super) fn baseline_runs(
        &mut self,
        dir: &Path,
        first: f64,
    ) -> Result<std::result::Result<Numbered, Untouched>> {
        let role = self.keep.next_role;
        let number = self.keep.count;
        let Some(seq) = self.keep.seq.as_mut() else {
            return Ok(Ok((
                first,
                vec![(number, taken(role, first, seq::Use::Ok))],
            )));
        };
        let used = seq.observe(Role::Baseline, first);
        let mut runs = vec![(number, taken(Role::Baseline, first, used))];
        let mut k = 1;
        while self
            .keep
            .seq
            .as_mut()
            .is_some_and(|s| s.next() == Next::Run(Role::Baseline))
        {
            k += 1;
            self.keep.next_role = Role::Baseline;
            // Verify sees the iteration of the untouched tree, as in the first run.
            self.untouched = true;
            let measured = self.measure(dir, &format!("verify-{k}"));
            self.untouched = false;
            let measured = measured?;
            self.restore_measurement_writes("the measurement of the untouched tree")?;
            let v = match measured {
                Measured::Metric(v) | Measured::MetricsJson(v, _) => v,
                Measured::Failed { reason, tail, .. } => {
                    return Ok(Err(Untouched::NoMetric { reason, tail }));
                }
                Measured::Interrupted(sig) => return Ok(Err(Untouched::Interrupted(sig))),
            };
            let seq = self.keep.seq.as_mut().expect("checked above");
            let used = seq.observe(Role::Baseline, v);
            runs.push((self.keep.count, taken(Role::Baseline, v, used)));
        }
        let mean = self
            .keep
            .seq
            .as_ref()
            .and_then(Seq::reference_mean)
            .map_or(first, |m| {
                let places = runs
                    .iter()
                    .map(|(_, r)| crate::engine::number::fraction_digits(r.value))
                    .max()
                    .unwrap_or(0);
                crate::engine::number::mean_shown(m, places)
            });
        Ok(Ok((mean, runs)))
    }

    /// The baseline row's note on the noise (` [seq baseline n=5 σ=0.012]`), empty under strict.
    pub(super) fn noise_note(&self) -> String {
        match &self.keep.seq {
            Some(seq) => {
                let n = seq.noise();
                match n.mode {
                    seq::NoiseMode::Exact => " [seq baseline exact]".to_string(),
                    seq::NoiseMode::Statistical => format!(
                        " [seq baseline σ={} n={}]",
                        crate::engine::number::significant(n.sigma, 2),
                        n.n + 1
                    ),
                }
            }
            None => String::new(),
        }
    }

    /// Appends runs of iteration `n` to the runs log (`trial`: the candidate's commit).
    pub(super) fn log_runs(
        &mut self,
        n: u64,
        trial: Option<Oid>,
        runs: Vec<(u64, RunTaken)>,
    ) -> Result<()> {
        for (number, r) in runs {
            let commit = match (r.role, trial) {
                (Role::Candidate, Some(t)) => t,
                _ => self.head,
            };
            self.keep
                .runs
                .append(number, n, &Repo::short(commit), r.role, r.value, r.used)?;
        }
        if let Some(seq) = &self.keep.seq {
            self.state.noise = Some(seq.noise());
        }
        Ok(())
    }

    /// Verify on the retained commit in the middle of an iteration: the tree (and the branch)
    /// go to the retained commit, verify runs, and they come back to the trial.
    pub(super) fn measure_retained(&mut self, dir: &Path, stem: &str) -> Result<Measured> {
        let trial = self.repo.head()?;
        self.restore_tree_to(self.head)?;
        self.keep.next_role = Role::Retained;
        let measured = self.measure(dir, stem);
        self.restore_measurement_writes("verify")?;
        self.restore_tree_to(trial)?;
        measured
    }

    /// Rebuilds SEQ on resume from the runs log and the results log's outcomes; `None` when
    /// there are no runs to replay (a run from before the runs log, or a strict one), and the
    /// caller re-baselines.
    pub(super) fn replay_keep_rule(&mut self, records: Vec<RunRecord>) -> bool {
        if self.cfg.keep_rule != KeepRule::Seq {
            self.keep.seq = None;
            return true;
        }
        if let Some(word) = &self.state.engine.keep_effort {
            self.keep.effort = match word.as_str() {
                "thorough" => Some(Effort::Thorough),
                "default" => Some(Effort::Default),
                _ => None,
            };
        }
        if let Some(e) = fixed_effort(&self.cfg) {
            self.keep.effort = Some(e);
        }
        if !records.iter().any(|r| r.role == Role::Baseline) {
            return false;
        }
        let outcomes: Vec<(u64, bool)> = self
            .results
            .rows
            .iter()
            .filter(|r| r.iteration > 0)
            .map(|r| (r.iteration, r.status == Status::Keep))
            .collect();
        let p = params(&self.cfg, self.keep.effort.unwrap_or(Effort::Default));
        self.keep.seq = Some(seq::replay(self.cfg.direction, p, &records, &outcomes));
        true
    }
}

impl Run {
    /// SEQ on resume, after the check of the retained tree (`first`, verify's value there):
    /// with `rebaseline` (HEAD moved, or no runs to replay) a new reference from fresh baseline
    /// runs of the retained tree, logged as iteration `n`'s; else the check is logged as a run
    /// the rule does not use (the replayed reference goes on). Returns the metric to report.
    pub(super) fn resume_keep_rule(
        &mut self,
        dir: &Path,
        n: u64,
        first: f64,
        rebaseline: bool,
    ) -> Result<f64> {
        if !rebaseline {
            self.keep.next_role = Role::Retained;
            let head = Repo::short(self.head);
            let number = self.keep.count;
            self.keep
                .runs
                .append(number, n, &head, Role::Check, first, seq::Use::Stale)?;
            return Ok(first);
        }
        let effort = self.keep.effort.unwrap_or(Effort::Default);
        self.keep.seq = Some(Seq::new(self.cfg.direction, params(&self.cfg, effort)));
        match self.baseline_runs(dir, first)? {
            Ok((mean, runs)) => {
                self.log_runs(n, None, runs)?;
                self.out.note(&format!(
                    "keep rule: a new reference from the retained tree ({}{})",
                    crate::engine::number::canonical(mean),
                    self.noise_note()
                ));
                Ok(mean)
            }
            Err(Untouched::NoMetric { reason, .. }) => Err(crate::error::Error::Refused(format!(
                "verify no longer gives a metric on the retained tree ({reason}); fix the environment, or use --fresh"
            ))),
            Err(Untouched::Interrupted(sig)) => {
                Err(crate::error::Error::Interrupted(sig, "while re-measuring"))
            }
            Err(Untouched::GuardFails { .. }) => unreachable!("the extra runs are verify only"),
        }
    }
}

fn taken(role: Role, value: f64, used: seq::Use) -> RunTaken {
    RunTaken { role, value, used }
}
