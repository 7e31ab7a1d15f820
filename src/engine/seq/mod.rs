//! The SEQ keep rule's vocabulary: roles, run uses, presets, parameters, decisions, evidence and
//! the effort choice. The state machine itself is in `machine.rs`, the noise estimate in
//! `noise.rs`, the rebuild from `runs.tsv` in `replay.rs`. Pure: no I/O.
//!
//! The reference model is `noise_rules.py` (class `Seq`) beside the spec; the machine makes the
//! same decisions given the same values.

mod machine;
mod noise;
mod replay;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_replay;
#[cfg(test)]
mod tests_rules;
#[cfg(test)]
mod tests_sim;

pub use machine::Seq;
pub(crate) use noise::Noise;
pub use noise::{NoiseMode, NoiseState};
pub use replay::{RunRecord, replay};

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Which commit a verify run measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A run of iteration 0, before any candidate.
    Baseline,
    /// A run of the retained commit inside an iteration.
    Retained,
    /// A run of the iteration's trial commit (including the rebase runs after the guard).
    Candidate,
    /// The retained commit re-measured on resume to see verify still works: recorded, never
    /// given to the rule (the replayed reference goes on).
    Check,
}

impl Role {
    /// `baseline`, `retained`, `candidate` or `check` (the `role` column of `runs.tsv`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Baseline => "baseline",
            Role::Retained => "retained",
            Role::Candidate => "candidate",
            Role::Check => "check",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "baseline" => Ok(Role::Baseline),
            "retained" => Ok(Role::Retained),
            "candidate" => Ok(Role::Candidate),
            "check" => Ok(Role::Check),
            other => Err(format!(
                "`{other}` is not a run role (use baseline, retained, candidate or check)"
            )),
        }
    }
}

/// What the rule did with one run, at the moment it was observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// It entered the statistics.
    Ok,
    /// Left out: far worse than its peers (more than 5σ̂).
    Outlier,
    /// Left out: the rule did not ask for it (it came after the iteration was decided, or for
    /// the other commit than the one asked for).
    Stale,
}

impl Use {
    /// `ok`, `outlier` or `stale` (the `use` column of `runs.tsv`).
    pub fn as_str(self) -> &'static str {
        match self {
            Use::Ok => "ok",
            Use::Outlier => "outlier",
            Use::Stale => "stale",
        }
    }
}

impl FromStr for Use {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "ok" => Ok(Use::Ok),
            "outlier" => Ok(Use::Outlier),
            "stale" => Ok(Use::Stale),
            other => Err(format!(
                "`{other}` is not a run use (use ok, outlier or stale)"
            )),
        }
    }
}

/// The two presets of the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effort {
    /// ≤5% noise keeps at ≤3 runs per iteration, capturing about a third of real gains.
    Default,
    /// ≤5% noise keeps and about 8 of 10 real gains captured, at about 8.7 runs per iteration.
    Thorough,
}

impl Effort {
    /// `default` or `thorough`.
    pub fn as_str(self) -> &'static str {
        match self {
            Effort::Default => "default",
            Effort::Thorough => "thorough",
        }
    }
}

impl FromStr for Effort {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "default" => Ok(Effort::Default),
            "thorough" => Ok(Effort::Thorough),
            other => Err(format!(
                "`{other}` is not a keep effort (use default or thorough)"
            )),
        }
    }
}

/// The smallest improvement worth keeping: in metric units, or a percentage of |retained mean|.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MinEffect {
    Absolute(f64),
    Percent(f64),
}

impl MinEffect {
    /// The effect in metric units against a retained mean.
    pub fn resolve(self, retained_mean: f64) -> f64 {
        match self {
            MinEffect::Absolute(x) => x,
            MinEffect::Percent(p) => p / 100.0 * retained_mean.abs(),
        }
    }
}

impl fmt::Display for MinEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MinEffect::Absolute(x) => write!(f, "{x}"),
            MinEffect::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl FromStr for MinEffect {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let (num, percent) = match t.strip_suffix('%') {
            Some(n) => (n.trim(), true),
            None => (t, false),
        };
        let bad = || {
            format!(
                "`{t}` is not a minimum effect (use a number ≥ 0 such as 0.5, or a percentage such as 2%)"
            )
        };
        let x: f64 = num.parse().map_err(|_| bad())?;
        if !x.is_finite() || x < 0.0 {
            return Err(bad());
        }
        Ok(if percent {
            MinEffect::Percent(x)
        } else {
            MinEffect::Absolute(x)
        })
    }
}

/// The rule's parameters (names as in the spec and `noise_rules.py`).
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// LLR at or below which the candidate is discarded.
    pub lo: f64,
    /// LLR at or above which the candidate is kept (after fresh retained runs and the guard).
    pub hi: f64,
    /// The effect the test looks for, in σ̂.
    pub detect: f64,
    /// One scheduled retained run every `every` iterations.
    pub every: u32,
    /// Fresh candidate runs after a keep that join the new reference.
    pub rebase: u32,
    /// Reference runs older than this many verify runs are dropped.
    pub age: u64,
    /// Candidate runs at which an undecided iteration is discarded (`--max-runs`).
    pub cap: u32,
    /// At most this many reference runs.
    pub window: usize,
    /// Baseline runs when the first two differ (`--baseline-runs`; at least 2).
    pub baseline_runs: u32,
    /// `--min-effect`: the smallest gain worth keeping.
    pub min_effect: Option<MinEffect>,
    /// The retained is run while it has fewer than `ratio` × candidate runs.
    pub ratio: f64,
    /// Retained runs from the current iteration needed before a keep.
    pub fresh: u32,
    /// Outlier cutoff in σ̂ (worse side only).
    pub outlier: f64,
    /// Level-step cutoff in standard errors for the newest 2/4/8 retained runs.
    pub step_z: f64,
}

impl Params {
    /// The preset of `effort`; cap 32, 5 baseline runs, no minimum effect.
    pub fn preset(effort: Effort) -> Params {
        let base = Params {
            lo: -0.45,
            hi: 4.6,
            detect: 1.2,
            every: 4,
            rebase: 3,
            age: 150,
            cap: 32,
            window: 64,
            baseline_runs: 5,
            min_effect: None,
            ratio: 1.5,
            fresh: 2,
            outlier: 5.0,
            step_z: 3.5,
        };
        match effort {
            Effort::Default => base,
            Effort::Thorough => Params {
                lo: -1.45,
                hi: 4.4,
                detect: 0.85,
                every: 3,
                rebase: 6,
                age: 100,
                ..base
            },
        }
    }
}

/// Why an iteration was discarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// Exact mode: not better than the retained value (or not by `--min-effect`).
    Worse,
    /// The first candidate run was more than 5σ̂ worse than the reference.
    Outlier,
    /// The evidence says no gain of the size looked for (LLR ≤ lo).
    Llr,
    /// `cap` candidate runs without a decision.
    Cap,
    /// Exact mode: the confirming rerun differed; the metric is noisy from now on.
    Unstable,
    /// Clearly better, but by less than `--min-effect`.
    Small,
}

impl Why {
    /// A short tag: `worse`, `outlier`, `llr`, `cap`, `unstable`, `small`.
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Worse => "worse",
            Why::Outlier => "outlier",
            Why::Llr => "llr",
            Why::Cap => "cap",
            Why::Unstable => "unstable",
            Why::Small => "small",
        }
    }
}

/// What the driver does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Run verify once on the commit of this role and `observe` the value.
    Run(Role),
    /// Run the guard; then `guard_passed()`, a rework (`begin()`), or `abandon()`.
    Guard,
    /// Keep the candidate (its rebase runs are in): record the row.
    Keep,
    /// Discard the candidate: record the row.
    Discard(Why),
    /// The baseline is established and no iteration is open: call `begin()`.
    Idle,
}

/// The numbers behind a decision, for the row's `metric` and description suffix.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evidence {
    /// Candidate runs used (exact mode: runs made).
    pub n_candidate: usize,
    /// Reference runs the last LLR used (or the reference size before any).
    pub n_retained: usize,
    /// The last LLR; None in exact mode or before a candidate run.
    pub llr: Option<f64>,
    /// σ̂ of this iteration, metric units (0 in exact mode).
    pub sigma: f64,
    /// Metric units: the mean of the candidate's used runs (plus the rebase runs on a keep);
    /// NaN when the iteration has no candidate run.
    pub mean: f64,
    /// Whether the iteration ran in exact mode.
    pub exact: bool,
    /// Metric units: the retained value the candidate was last compared with (the reference
    /// mean; exact mode: the last reference value), for the row's `delta`. None before that.
    pub retained_mean: Option<f64>,
}

impl Evidence {
    /// The description suffix: `[seq n=7+9R llr=4.8 σ=0.012]`, or `[seq exact n=2]`.
    pub fn tag(&self) -> String {
        if self.exact {
            return format!("[seq exact n={}]", self.n_candidate);
        }
        let llr = self.llr.map_or("-".to_string(), |l| format!("{l:.1}"));
        format!(
            "[seq n={}+{}R llr={llr} σ={}]",
            self.n_candidate,
            self.n_retained,
            two_digits(self.sigma)
        )
    }
}

/// `x` with two significant digits (integers keep all their digits).
fn two_digits(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let digits = (1 - x.abs().log10().floor() as i64).max(0) as usize;
    format!("{x:.digits$}")
}

/// Thorough when nine verify runs cost less than one agent turn (measuring is cheap next to
/// proposing); returns the effort and a one-line reason.
pub fn choose_effort(verify_median: Duration, agent_median: Duration) -> (Effort, String) {
    let nine = verify_median * 9;
    let show = crate::duration::human;
    if nine < agent_median {
        let why = format!(
            "9 verify runs ≈ {} cost less than one agent turn ≈ {}",
            show(nine),
            show(agent_median)
        );
        (Effort::Thorough, why)
    } else {
        let why = format!(
            "9 verify runs ≈ {} cost at least one agent turn ≈ {}",
            show(nine),
            show(agent_median)
        );
        (Effort::Default, why)
    }
}
