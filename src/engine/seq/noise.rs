//! The noise estimate σ̂ from differences between successive runs of one commit (spec: "Values
//! and noise"), and the `noise{sigma,n,mode}` summary the state file keeps.

use serde::{Deserialize, Serialize};

/// σ̂ from |a − b| of successive runs of the same commit. Differences above five robust sigmas
/// (median|Δ| / 0.954) are left out; exactly 0 when every difference is 0. The differences are
/// kept sorted (the estimate depends only on their set).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Noise {
    sorted: Vec<f64>,
}

impl Noise {
    /// Adds the pair (a, b) of successive runs of one commit.
    pub(crate) fn add(&mut self, a: f64, b: f64) {
        let d = (a - b).abs();
        let at = self.sorted.partition_point(|&x| x <= d);
        self.sorted.insert(at, d);
    }

    /// How many differences were added.
    pub(crate) fn len(&self) -> usize {
        self.sorted.len()
    }

    /// σ̂ = √(ΣΔ²/2n) over the kept differences; 0 with none.
    #[allow(clippy::approx_constant)] // 1.41421 as in the reference model, digit for digit
    pub(crate) fn sigma(&self) -> f64 {
        let n = self.sorted.len();
        if n == 0 {
            return 0.0;
        }
        let mid = if n % 2 == 1 {
            self.sorted[n / 2]
        } else {
            0.5 * (self.sorted[n / 2 - 1] + self.sorted[n / 2])
        };
        let rob = mid / 0.95387;
        let kept = if rob > 0.0 {
            &self.sorted[..self.sorted.partition_point(|&x| x <= 5.0 * 1.41421 * rob)]
        } else {
            &self.sorted[..]
        };
        let sum: f64 = kept.iter().map(|x| x * x).sum();
        (sum / (2 * kept.len()) as f64).sqrt()
    }

    /// σ̂ inflated for few differences: σ̂·√(1 + 2/n) (the rule's working σ̂).
    pub(crate) fn cautious(&self) -> f64 {
        let s = self.sigma();
        if s > 0.0 {
            s * (1.0 + 2.0 / self.sorted.len() as f64).sqrt()
        } else {
            s
        }
    }
}

/// How the rule compares values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoiseMode {
    /// σ̂ = 0: one run, strictly better, confirmed by one rerun.
    Exact,
    /// The sequential test.
    Statistical,
}

/// The state file's `noise` object.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoiseState {
    /// σ̂ in metric units (the cautious estimate the rule uses).
    pub sigma: f64,
    /// Differences it rests on.
    pub n: usize,
    pub mode: NoiseMode,
}
