//! The SEQ state machine: verify values in, the next run or decision out. It follows
//! `noise_rules.py`'s `Seq` step for step; the driver's guard sits between "LLR ≥ hi" and the
//! keep, and the keep's rebase runs come after the guard.
//!
//! Internally values are y = x (lower is better) or −x (higher is better); the clock counts
//! every observed run (the age of reference runs is measured on it).

use std::collections::VecDeque;

use super::noise::{Noise, NoiseMode, NoiseState};
use super::{Evidence, Next, Params, Role, Use, Why};
use crate::engine::Direction;
use crate::engine::number::{mean, median};

/// Where the machine is.
#[derive(Clone, Debug, PartialEq)]
enum Phase {
    /// Iteration 0; `open` when `begin()` came before the baseline was complete.
    Baseline { open: bool },
    /// No iteration open.
    Idle,
    /// `begin()` was called and nothing observed yet: the iteration's start (σ̂, stale runs, the
    /// scheduled run) is applied with the first run, so an iteration without runs changes nothing.
    Starting,
    /// The sequential test: the next run follows from the counts.
    Measure,
    /// Waiting for the guard.
    Guard,
    /// After the guard: `left` rebase runs of the candidate to go.
    Rebase { left: u32 },
    /// Exact mode: the one candidate run.
    ExactFirst,
    /// Exact mode: the confirming rerun of a better `first`.
    ExactConfirm { first: f64 },
    /// Exact mode: the rerun differed; `left` retained runs to go, then discard.
    ExactSwitch { left: u32 },
    /// The iteration is decided (Keep or Discard).
    Done(Next),
}

/// State of the open (or last) iteration.
#[derive(Clone, Debug, Default, PartialEq)]
struct Iter {
    exact: bool,
    /// σ̂ at the start, y units.
    s: f64,
    /// The effect looked for, y units.
    d: f64,
    /// Clock at the start: reference runs after it are fresh.
    t0: u64,
    /// Candidate runs used.
    cs: Vec<f64>,
    /// The clock of each of `cs` (statistical mode): a level step drops the ones before it.
    cs_at: Vec<u64>,
    /// Every run of this iteration (the termination guard).
    runs: u32,
    owe: bool,
    scheduled: bool,
    /// A first candidate run far worse than the reference (it decided the discard).
    rejected: Option<f64>,
    llr: Option<f64>,
    n_retained: Option<usize>,
    /// The reference value of the last comparison, y units.
    ref_mean: Option<f64>,
    /// The new reference being built after the guard, its last run and median cutoff point.
    rebase: Vec<(u64, f64)>,
    rebase_last: f64,
    rebase_ref: f64,
    /// Exact mode: the clock of the confirming rerun.
    exact_t: u64,
    /// Mean of the kept runs, y units.
    kept_mean: Option<f64>,
}

/// What a keep replaced, so that `abandon()` can take an unrecorded keep back.
#[derive(Clone, Debug, PartialEq)]
struct Undo {
    reference: VecDeque<(u64, f64)>,
    last_r: Option<f64>,
    since_r: u32,
}

/// The SEQ keep rule (see the module doc and the spec).
#[derive(Clone, Debug, PartialEq)]
pub struct Seq {
    sign: f64,
    params: Params,
    noise: Noise,
    clock: u64,
    since_r: u32,
    /// The retained commit's accepted runs: (clock, y).
    reference: VecDeque<(u64, f64)>,
    /// The last run of the retained commit (its successor forms a noise difference).
    last_r: Option<f64>,
    baseline: Vec<(u64, f64)>,
    phase: Phase,
    it: Iter,
    undo: Option<Undo>,
}

impl Seq {
    /// A machine at the start of the baseline.
    pub fn new(direction: Direction, params: Params) -> Seq {
        Seq {
            sign: match direction {
                Direction::Lower => 1.0,
                Direction::Higher => -1.0,
            },
            params,
            noise: Noise::default(),
            clock: 0,
            since_r: 0,
            reference: VecDeque::new(),
            last_r: None,
            baseline: Vec::new(),
            phase: Phase::Baseline { open: false },
            it: Iter::default(),
            undo: None,
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Changes the parameters (`--keep-effort auto` decides once an agent turn was timed,
    /// before any trial is judged).
    pub fn set_params(&mut self, params: Params) {
        self.params = params;
    }

    /// Whether the baseline is established (the driver's baseline loop is over).
    pub fn baseline_done(&self) -> bool {
        !matches!(self.phase, Phase::Baseline { .. })
    }

    /// The next run or decision. Baseline: `Run(Baseline)` until it is established, then `Idle`.
    /// In an iteration: `Run(Retained)`, `Run(Candidate)`, `Guard`, then `Keep` or `Discard`
    /// (repeated until the next `begin()`). Calling it changes nothing.
    #[allow(clippy::should_implement_trait)] // the driver's word; this is no iterator
    pub fn next(&mut self) -> Next {
        match &self.phase {
            Phase::Baseline { .. } => Next::Run(Role::Baseline),
            Phase::Idle => Next::Idle,
            Phase::Starting => {
                let mut probe = self.clone();
                probe.start();
                probe.next()
            }
            Phase::Measure => self.choose(),
            Phase::Guard => Next::Guard,
            Phase::Rebase { .. } | Phase::ExactFirst | Phase::ExactConfirm { .. } => {
                Next::Run(Role::Candidate)
            }
            Phase::ExactSwitch { .. } => Next::Run(Role::Retained),
            Phase::Done(next) => *next,
        }
    }

    /// A new candidate. With no iteration open it opens one (a keep just recorded becomes final).
    /// With one open (after `Guard`, or mid-test) it is a rework: the new commit's runs start
    /// from zero, the retained runs of this iteration stay fresh. During an incomplete baseline,
    /// the iteration opens when the baseline is done.
    pub fn begin(&mut self) {
        match self.phase {
            Phase::Baseline { .. } => self.phase = Phase::Baseline { open: true },
            Phase::Idle | Phase::Done(_) => {
                self.undo = None;
                self.phase = Phase::Starting;
            }
            Phase::Starting => {}
            Phase::Measure | Phase::Guard | Phase::Rebase { .. } if !self.it.exact => {
                self.it.cs.clear();
                self.it.cs_at.clear();
                self.it.owe = false;
                self.it.rejected = None;
                self.it.llr = None;
                self.it.n_retained = None;
                self.it.rebase.clear();
                self.it.ref_mean = None;
                self.phase = Phase::Measure;
                self.settle();
            }
            _ => {
                self.it.cs.clear();
                self.it.cs_at.clear();
                self.phase = Phase::ExactFirst;
            }
        }
    }

    /// The guard passed: the next runs are the rebase runs of the candidate, then `Keep`.
    /// Ignored unless the machine asked for the guard.
    pub fn guard_passed(&mut self) {
        if self.phase != Phase::Guard {
            return;
        }
        if self.it.exact {
            let c = *self.it.cs.last().unwrap_or(&0.0);
            let exact_t = self.it.exact_t;
            self.keep(VecDeque::from([(exact_t, c)]), c, c);
            return;
        }
        let cs = &self.it.cs;
        let n = cs.len() as u64;
        self.it.rebase = cs
            .iter()
            .enumerate()
            .map(|(i, &v)| (self.clock + 1 + i as u64 - n, v))
            .collect();
        self.it.rebase_last = *cs.last().unwrap_or(&0.0);
        self.it.rebase_ref = median(cs);
        self.phase = Phase::Rebase {
            left: self.params.rebase,
        };
        if self.params.rebase == 0 {
            self.finish_rebase();
        }
    }

    /// The iteration ended without a recorded keep (guard failed, crash, interrupted). The
    /// reference stays as it is, with the retained runs already observed; an unrecorded keep is
    /// taken back. Nothing changes when the iteration was already discarded. The iteration's
    /// evidence is cleared: read it before.
    pub fn abandon(&mut self) {
        match self.phase {
            Phase::Baseline { .. } => self.phase = Phase::Baseline { open: false },
            Phase::Done(Next::Keep) => {
                if let Some(u) = self.undo.take() {
                    self.reference = u.reference;
                    self.last_r = u.last_r;
                    self.since_r = u.since_r;
                }
                self.it = Iter::default();
                self.phase = Phase::Idle;
            }
            Phase::Done(_) | Phase::Idle => {}
            _ => {
                self.it = Iter::default();
                self.phase = Phase::Idle;
            }
        }
    }

    /// One verify value of `role`, in metric units.
    pub fn observe(&mut self, role: Role, value: f64) -> Use {
        let y = self.sign * value;
        if self.phase == Phase::Starting {
            self.start();
        }
        self.clock += 1;
        let retained = role != Role::Candidate;
        if !matches!(
            self.phase,
            Phase::Baseline { .. } | Phase::Idle | Phase::Done(_)
        ) {
            self.it.runs += 1;
        }
        let used = match (self.phase.clone(), retained) {
            (Phase::Baseline { open }, true) => self.baseline_run(y, open),
            (Phase::Measure, true) => self.measure_retained(y),
            (Phase::Measure, false) => self.measure_candidate(y),
            (Phase::Rebase { left }, false) => self.rebase_run(y, left),
            (Phase::ExactFirst, false) => self.exact_first(y),
            (Phase::ExactConfirm { first }, false) => self.exact_confirm(first, y),
            (Phase::ExactSwitch { left }, true) => self.exact_switch(y, left),
            _ => Use::Stale,
        };
        if self.phase == Phase::Measure {
            self.settle();
        }
        used
    }

    /// The numbers behind the current (or last) decision.
    pub fn evidence(&self) -> Evidence {
        let it = &self.it;
        let y = if let Some(k) = it.kept_mean {
            k
        } else if !it.cs.is_empty() {
            mean(it.cs.iter().copied())
        } else {
            it.rejected.unwrap_or(f64::NAN)
        };
        let n_candidate = if it.cs.is_empty() && it.rejected.is_some() {
            1
        } else {
            it.cs.len()
        };
        Evidence {
            n_candidate,
            n_retained: it.n_retained.unwrap_or(self.reference.len()),
            llr: it.llr,
            sigma: match self.phase {
                Phase::Baseline { .. } | Phase::Idle => self.noise.cautious(),
                _ => it.s,
            },
            mean: self.sign * y,
            exact: it.exact,
            retained_mean: it.ref_mean.map(|m| self.sign * m),
        }
    }

    /// σ̂, the differences it rests on, and the mode, for the state file.
    pub fn noise(&self) -> NoiseState {
        let sigma = self.noise.cautious();
        NoiseState {
            sigma,
            n: self.noise.len(),
            mode: if sigma > 0.0 {
                NoiseMode::Statistical
            } else {
                NoiseMode::Exact
            },
        }
    }

    /// The mean of the reference runs, metric units (None before the baseline is done).
    pub fn reference_mean(&self) -> Option<f64> {
        if self.reference.is_empty() || !self.baseline_done() {
            return None;
        }
        Some(self.sign * mean(self.reference.iter().map(|&(_, v)| v)))
    }

    /// Reference runs in use.
    pub fn reference_len(&self) -> usize {
        self.reference.len()
    }

    // ------------------------------------------------------------------ baseline

    /// A baseline run: 2 runs; if they differ, `baseline_runs` in all, then drop runs more than
    /// 5σ̂ worse than the median.
    fn baseline_run(&mut self, y: f64, open: bool) -> Use {
        if let Some(&(_, prev)) = self.baseline.last() {
            self.noise.add(prev, y);
        }
        self.baseline.push((self.clock, y));
        let n = self.baseline.len();
        let want = self.params.baseline_runs.max(2) as usize;
        let equal = n == 2 && self.baseline[0].1 == self.baseline[1].1;
        if !(equal || n >= want) {
            return Use::Ok;
        }
        let vals: Vec<f64> = self.baseline.iter().map(|&(_, v)| v).collect();
        let (m, s) = (median(&vals), self.noise.sigma());
        let cut = self.params.outlier * s;
        self.reference = self
            .baseline
            .iter()
            .filter(|&&(_, v)| v - m <= cut)
            .copied()
            .collect();
        self.last_r = Some(y);
        self.phase = if open { Phase::Starting } else { Phase::Idle };
        if y - m > cut { Use::Outlier } else { Use::Ok }
    }

    // ------------------------------------------------------------------ the sequential test

    /// The iteration's start: σ̂ (0 means exact mode), stale runs, d, the scheduled run.
    fn start(&mut self) {
        let s = self.noise.cautious();
        self.it = Iter {
            s,
            t0: self.clock,
            ..Iter::default()
        };
        if s == 0.0 {
            self.it.exact = true;
            self.phase = Phase::ExactFirst;
            return;
        }
        let age = self.params.age;
        while let Some(&(t, _)) = self.reference.front() {
            if self.clock - t <= age {
                break;
            }
            self.reference.pop_front();
        }
        let floor = self.min_effect();
        self.it.d = (self.params.detect * s).max(floor);
        self.since_r += 1;
        if self.since_r >= self.params.every {
            self.it.scheduled = true;
            self.since_r = 0;
        }
        self.phase = Phase::Measure;
        self.settle();
    }

    /// `--min-effect` in y units against the current reference (0 without one).
    fn min_effect(&self) -> f64 {
        let m = mean(self.reference.iter().map(|&(_, v)| v));
        self.params.min_effect.map_or(0.0, |e| e.resolve(m).abs())
    }

    /// The run the test asks for next (phase Measure).
    fn choose(&self) -> Next {
        let n_r = self.reference.len();
        let n_c = self.it.cs.len();
        let want_r = (self.params.ratio * n_c as f64).min(self.params.window as f64);
        if self.it.scheduled || n_r == 0 || self.it.owe || (n_r as f64) < want_r {
            Next::Run(Role::Retained)
        } else if n_c >= self.params.cap as usize {
            Next::Discard(Why::Cap)
        } else {
            Next::Run(Role::Candidate)
        }
    }

    /// Makes a cap discard final, and ends an iteration that cannot settle (every run an
    /// outlier) after 8 × cap runs, which the reference model would loop on forever.
    fn settle(&mut self) {
        let stuck = self.it.runs >= 8 * self.params.cap.max(1);
        if self.choose() == Next::Discard(Why::Cap) || stuck {
            self.phase = Phase::Done(Next::Discard(Why::Cap));
        }
    }

    fn measure_retained(&mut self, y: f64) -> Use {
        self.it.owe = false;
        self.it.scheduled = false;
        let used = self.add_retained(y, self.it.s);
        if !self.it.cs.is_empty() {
            self.judge();
        }
        used
    }

    /// A retained run: a noise difference, the outlier filter, the window, the level-step check.
    fn add_retained(&mut self, x: f64, s: f64) -> Use {
        if let Some(last) = self.last_r {
            self.noise.add(last, x);
        }
        self.last_r = Some(x);
        let mut vals: Vec<f64> = self.reference.iter().map(|&(_, v)| v).collect();
        if !vals.is_empty() {
            let centre = if vals.len() >= 3 {
                median(&vals)
            } else {
                mean(vals.iter().copied())
            };
            if x - centre > self.params.outlier * s {
                return Use::Outlier;
            }
        }
        self.reference.push_back((self.clock, x));
        while self.reference.len() > self.params.window {
            self.reference.pop_front();
        }
        vals.push(x);
        for m in [2usize, 4, 8] {
            if vals.len() < m + 3 {
                break;
            }
            let (old, new) = vals.split_at(vals.len() - m);
            let se = s * (1.0 / m as f64 + 1.0 / old.len() as f64).sqrt();
            let shift = mean(new.iter().copied()) - mean(old.iter().copied());
            if shift.abs() > self.params.step_z * se {
                let drop = self.reference.len().saturating_sub(m);
                self.reference.drain(..drop);
                if let Some(&(t, _)) = self.reference.front() {
                    self.drop_candidates_before(t);
                }
                break;
            }
        }
        Use::Ok
    }

    fn measure_candidate(&mut self, y: f64) -> Use {
        let s = self.it.s;
        if let Some(&last) = self.it.cs.last() {
            self.noise.add(last, y);
            if y - median(&self.it.cs) > self.params.outlier * s {
                return Use::Outlier;
            }
        } else if !self.reference.is_empty() {
            let m = mean(self.reference.iter().map(|&(_, v)| v));
            if y - m > self.params.outlier * s {
                self.it.ref_mean = Some(m);
                self.it.rejected = Some(y);
                self.it.n_retained = Some(self.reference.len());
                self.phase = Phase::Done(Next::Discard(Why::Outlier));
                return Use::Ok;
            }
        }
        self.it.cs.push(y);
        self.it.cs_at.push(self.clock);
        self.judge();
        Use::Ok
    }

    /// After a level step at clock `t`, the trial's runs from before it are stale too: compared
    /// with runs of the new level they would pass a step of the machine for a gain (or hide one).
    fn drop_candidates_before(&mut self, t: u64) {
        if !matches!(self.phase, Phase::Measure) {
            return;
        }
        let it = &mut self.it;
        if it.cs_at.len() != it.cs.len() {
            it.cs.clear();
            it.cs_at.clear();
            return;
        }
        let keep: Vec<bool> = it.cs_at.iter().map(|&at| at >= t).collect();
        let mut k = keep.iter();
        it.cs.retain(|_| *k.next().unwrap_or(&false));
        it.cs_at.retain(|&at| at >= t);
    }

    /// The LLR after a run: discard, owe fresh retained runs, drop older runs after a level
    /// step, ask for the guard, or go on.
    fn judge(&mut self) {
        let vals: Vec<(u64, f64)> = self.reference.iter().copied().collect();
        if vals.is_empty() || self.it.cs.is_empty() {
            return;
        }
        let (s, d) = (self.it.s, self.it.d);
        let (n_r, n_c) = (vals.len() as f64, self.it.cs.len() as f64);
        let ref_mean = mean(vals.iter().map(|&(_, v)| v));
        self.it.ref_mean = Some(ref_mean);
        let gain = ref_mean - mean(self.it.cs.iter().copied());
        let llr = (d * gain - d * d / 2.0) / (s * s * (1.0 / n_r + 1.0 / n_c));
        self.it.llr = Some(llr);
        self.it.n_retained = Some(vals.len());
        if llr <= self.params.lo {
            self.phase = Phase::Done(Next::Discard(Why::Llr));
            return;
        }
        if llr < self.params.hi {
            return;
        }
        let t0 = self.it.t0;
        let fresh: Vec<f64> = vals.iter().filter(|p| p.0 > t0).map(|p| p.1).collect();
        let old: Vec<f64> = vals.iter().filter(|p| p.0 <= t0).map(|p| p.1).collect();
        if fresh.len() < self.params.fresh as usize {
            self.it.owe = true;
            return;
        }
        if !old.is_empty() {
            let se = s * (1.0 / fresh.len() as f64 + 1.0 / old.len() as f64).sqrt();
            if (mean(fresh.iter().copied()) - mean(old.iter().copied())).abs() > 3.0 * se {
                self.reference.retain(|p| p.0 > t0);
                if let Some(&(t, _)) = self.reference.front() {
                    self.drop_candidates_before(t);
                }
                return;
            }
        }
        // The test looks for a gain of at least `--min-effect`, but a clear smaller one can
        // still pass it: the floor is a floor.
        if gain < self.min_effect() {
            self.phase = Phase::Done(Next::Discard(Why::Small));
            return;
        }
        self.phase = Phase::Guard;
    }

    fn rebase_run(&mut self, y: f64, left: u32) -> Use {
        self.noise.add(self.it.rebase_last, y);
        self.it.rebase_last = y;
        let used = if y - self.it.rebase_ref <= self.params.outlier * self.it.s {
            self.it.rebase.push((self.clock, y));
            Use::Ok
        } else {
            Use::Outlier
        };
        self.phase = Phase::Rebase { left: left - 1 };
        if left <= 1 {
            self.finish_rebase();
        }
        used
    }

    /// The keep: the candidate's runs plus its rebase runs become the reference.
    fn finish_rebase(&mut self) {
        let runs = std::mem::take(&mut self.it.rebase);
        let m = mean(runs.iter().map(|&(_, v)| v));
        let skip = runs.len().saturating_sub(self.params.window);
        let reference: VecDeque<(u64, f64)> = runs.into_iter().skip(skip).collect();
        let last = self.it.rebase_last;
        self.keep(reference, last, m);
        self.since_r = 0;
    }

    /// Swaps in the new reference, keeping what it replaced for `abandon()`.
    fn keep(&mut self, reference: VecDeque<(u64, f64)>, last: f64, kept_mean: f64) {
        self.undo = Some(Undo {
            reference: std::mem::replace(&mut self.reference, reference),
            last_r: self.last_r.replace(last),
            since_r: self.since_r,
        });
        self.it.kept_mean = Some(kept_mean);
        self.phase = Phase::Done(Next::Keep);
    }

    // ------------------------------------------------------------------ exact mode

    /// The one candidate run: better than the last reference value (by `--min-effect` when
    /// given) asks for a confirming rerun; otherwise discard.
    fn exact_first(&mut self, y: f64) -> Use {
        self.it.cs.push(y);
        let retained = self.reference.back().map(|p| p.1).or(self.last_r);
        let floor = self
            .params
            .min_effect
            .map_or(0.0, |e| e.resolve(retained.unwrap_or(0.0)).abs());
        self.it.ref_mean = retained;
        match retained {
            Some(r) if r - y > 0.0 && r - y >= floor => {
                self.phase = Phase::ExactConfirm { first: y };
            }
            _ => self.phase = Phase::Done(Next::Discard(Why::Worse)),
        }
        Use::Ok
    }

    /// The rerun: equal asks for the guard; different switches to the statistical test.
    fn exact_confirm(&mut self, first: f64, y: f64) -> Use {
        self.noise.add(first, y);
        self.it.cs.push(y);
        if y == first {
            self.it.exact_t = self.clock;
            self.phase = Phase::Guard;
            return Use::Ok;
        }
        let left = self.params.baseline_runs.max(2) - 1;
        self.phase = Phase::ExactSwitch { left };
        Use::Ok
    }

    /// A retained run after a differing rerun (no filter, as in the reference model).
    fn exact_switch(&mut self, y: f64, left: u32) -> Use {
        if let Some(last) = self.last_r {
            self.noise.add(last, y);
        }
        self.last_r = Some(y);
        self.reference.push_back((self.clock, y));
        self.phase = if left <= 1 {
            Phase::Done(Next::Discard(Why::Unstable))
        } else {
            Phase::ExactSwitch { left: left - 1 }
        };
        Use::Ok
    }
}
