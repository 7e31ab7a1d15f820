//! How the step machine judges a measured trial (GUIDE §7a): the strict one-sample rule, or
//! SEQ asking for more runs of either commit, the guard, and its verdict; the runs it consumed,
//! for the runs log; and the holdout's word on a keep (GUIDE §7b).

use super::*;
use crate::engine::holdout;
use crate::engine::number::canonical;
use crate::engine::seq::{Next, Role, Seq, Use, Why};

/// How a measured trial is judged: one sample against the retained value, or SEQ (it asks for
/// more runs of either commit until it can decide; GUIDE §7a).
#[derive(Clone, Debug)]
pub enum Judge {
    Strict { retained: f64 },
    Seq(Box<Seq>),
}

/// One verify run the machine consumed, for the runs log.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunTaken {
    pub role: Role,
    pub value: f64,
    pub used: Use,
}

impl<'p, C: Copy + std::fmt::Debug> Iteration<'p, C> {
    /// Judges the trial with SEQ instead of one sample against the retained value.
    pub fn with_seq(mut self, seq: Seq) -> Self {
        self.judge = Judge::Seq(Box::new(seq));
        self
    }

    /// Runs the holdout before each keep; with `reject` a regression discards the trial.
    pub fn with_holdout(mut self, reject: bool) -> Self {
        self.holdout = Some(reject);
        self
    }

    /// The holdout's verdict on the keep being made.
    pub(super) fn on_held_out(&mut self, v: holdout::Verdict) -> Action<C> {
        let guard = self.guard_result;
        match v {
            holdout::Verdict::Interrupted(sig) => self.abandon(sig),
            holdout::Verdict::Fine { .. } => self.keep_now(guard, ""),
            holdout::Verdict::Failed(why) => {
                let tag = format!("[HOLDOUT] (the holdout gave no value: {}) ", one_line(&why));
                self.keep_now(guard, &tag)
            }
            holdout::Verdict::Regressed { before, after } => {
                let tag = format!(
                    "[HOLDOUT] (holdout {} -> {}) ",
                    canonical(before),
                    canonical(after)
                );
                if self.holdout != Some(true) {
                    return self.keep_now(guard, &tag);
                }
                let draft = Draft {
                    status: Status::Discard,
                    commit: self.trial,
                    metric: self.metric,
                    guard,
                    description: format!("{tag}{}", self.desc()),
                };
                self.roll_back_then(draft)
            }
        }
    }

    /// The description's evidence suffix (` [seq n=7+9R llr=4.8 σ=0.012]`); none under the
    /// strict rule, and none in exact mode, where a keep is one run and an identical rerun.
    pub(super) fn evidence_tag(&self) -> String {
        match &self.judge {
            Judge::Seq(seq) if !seq.evidence().exact => format!(" {}", seq.evidence().tag()),
            _ => String::new(),
        }
    }

    /// Sets SEQ's parameters (`--keep-effort auto` decides after the first agent turn, before
    /// any trial is judged).
    pub fn tune(&mut self, params: crate::engine::seq::Params) {
        if let Judge::Seq(seq) = &mut self.judge {
            seq.set_params(params);
        }
    }

    /// Hands the judge back once the iteration is over (SEQ carries its reference over).
    pub fn take_judge(&mut self) -> Judge {
        std::mem::replace(&mut self.judge, Judge::Strict { retained: 0.0 })
    }

    /// The verify runs consumed since the last call, for the runs log.
    pub fn take_runs(&mut self) -> Vec<RunTaken> {
        std::mem::take(&mut self.taken)
    }

    /// SEQ's noise estimate now (for the state file), `None` under the strict rule.
    pub fn noise(&self) -> Option<crate::engine::seq::NoiseState> {
        match &self.judge {
            Judge::Seq(seq) => Some(seq.noise()),
            Judge::Strict { .. } => None,
        }
    }

    /// A mean of this iteration's runs as the row shows it.
    pub(super) fn shown(&self, mean: f64) -> f64 {
        crate::engine::number::mean_shown(mean, self.decimals)
    }

    /// The role of the measurement asked for last.
    pub fn asked(&self) -> Role {
        self.asked
    }

    pub(super) fn measure_candidate(&mut self) -> Action<C> {
        self.asked = Role::Candidate;
        self.candidate_runs += 1;
        let stem = match self.candidate_runs {
            1 => self.stem("verify"),
            k => self.stem(&format!("verify-{k}")),
        };
        Action::Measure { stem }
    }

    /// SEQ's next step: another run of either commit, the guard, or its verdict.
    pub(super) fn seq_next(&mut self) -> Action<C> {
        let Judge::Seq(seq) = &mut self.judge else {
            unreachable!("only SEQ asks again");
        };
        match seq.next() {
            Next::Run(Role::Candidate) => self.measure_candidate(),
            Next::Run(_) => {
                self.asked = Role::Retained;
                self.retained_runs += 1;
                Action::MeasureRetained {
                    stem: self.stem(&format!("retained-{}", self.retained_runs)),
                }
            }
            Next::Guard if self.has_guard && self.guard_result != Guard::Pass => {
                self.phase = Phase::Guard;
                Action::Guard {
                    stem: self.stem("guard"),
                }
            }
            Next::Guard => {
                seq.guard_passed();
                self.seq_next()
            }
            Next::Keep => {
                let ev = seq.evidence();
                self.metric = Some(self.shown(ev.mean));
                if let Some(miss) = self.gate_miss() {
                    return miss;
                }
                let guard = self.guard_result;
                self.keep(guard)
            }
            Next::Discard(why) => {
                let small = why == Why::Small;
                self.discard_judged(small)
            }
            // Idle never comes inside an iteration; were it to, nothing is kept.
            Next::Idle => self.discard_judged(false),
        }
    }

    /// The row of a trial SEQ discarded (`small`: clearly better, by less than `--min-effect`).
    fn discard_judged(&mut self, small: bool) -> Action<C> {
        let Judge::Seq(seq) = &self.judge else {
            unreachable!("only SEQ discards this way");
        };
        let ev = seq.evidence();
        let desc = self.desc();
        let desc = if small {
            format!("{desc} (better by less than --min-effect)")
        } else {
            desc
        };
        let tag = self.evidence_tag();
        let description = match self.reworks {
            0 => format!("{desc}{tag}"),
            r => format!("{desc} (rework {r} lost the improvement){tag}"),
        };
        let draft = Draft {
            status: Status::Discard,
            commit: self.trial,
            metric: (ev.n_candidate > 0).then(|| self.shown(ev.mean)),
            guard: Guard::NotRun,
            description,
        };
        self.roll_back_then(draft)
    }
}
