//! The holdout's verdict (GUIDE §7b): a second measurement the agent never sees, compared before
//! and after each keep; a regression beyond its noise while verify improved tags the keep.

use super::Direction;
use super::seq::Noise;

/// Holdout runs per measurement (one when the holdout proved deterministic at the baseline).
pub const RUNS: usize = 3;

/// The holdout's reference: the values of the retained commit and their noise.
#[derive(Clone, Debug, PartialEq)]
pub struct Holdout {
    direction: Direction,
    reference: Vec<f64>,
    sigma: f64,
    /// Its runs have always agreed (one run is enough).
    deterministic: bool,
}

/// What the holdout said about a keep.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Not worse beyond its noise.
    Fine {
        before: f64,
        after: f64,
    },
    /// Worse beyond its noise.
    Regressed {
        before: f64,
        after: f64,
    },
    /// It gave no value (the reason).
    Failed(String),
    Interrupted(i32),
}

fn mean(v: &[f64]) -> f64 {
    super::number::mean(v.iter().copied())
}

/// σ from successive differences, as SEQ estimates it; 0 for equal values or fewer than two.
fn sigma(v: &[f64]) -> f64 {
    let mut noise = Noise::default();
    for w in v.windows(2) {
        noise.add(w[0], w[1]);
    }
    noise.sigma()
}

impl Holdout {
    /// The reference from the baseline's holdout runs (at least one).
    pub fn new(direction: Direction, baseline: &[f64]) -> Holdout {
        Holdout {
            direction,
            reference: baseline.to_vec(),
            sigma: sigma(baseline),
            deterministic: baseline.len() >= 2 && sigma(baseline) == 0.0,
        }
    }

    /// Runs a measurement takes: one for a deterministic holdout.
    pub fn runs(&self) -> usize {
        if self.deterministic { 1 } else { RUNS }
    }

    /// The reference mean.
    pub fn mean(&self) -> f64 {
        mean(&self.reference)
    }

    /// Compares the runs of a keep with the reference: worse by more than three standard errors
    /// (any amount for a deterministic holdout) is a regression.
    pub fn judge(&self, values: &[f64]) -> Verdict {
        let (before, after) = (self.mean(), mean(values));
        let worse = match self.direction {
            Direction::Lower => after - before,
            Direction::Higher => before - after,
        };
        let se = self.sigma
            * (1.0 / self.reference.len().max(1) as f64 + 1.0 / values.len().max(1) as f64).sqrt();
        if worse > 3.0 * se && worse > 0.0 {
            Verdict::Regressed { before, after }
        } else {
            Verdict::Fine { before, after }
        }
    }

    /// A keep stands: its runs are the new reference (the noise estimate keeps the baseline's
    /// when they are too few to tell).
    pub fn accept(&mut self, values: &[f64]) {
        if values.len() >= 2 {
            self.sigma = sigma(values).max(self.sigma);
            self.deterministic &= self.sigma == 0.0;
        }
        self.reference = values.to_vec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regression_beyond_the_noise_is_flagged_either_direction() {
        let h = Holdout::new(Direction::Higher, &[0.90, 0.91, 0.90]);
        assert!(matches!(
            h.judge(&[0.90, 0.91, 0.905]),
            Verdict::Fine { .. }
        ));
        assert!(matches!(
            h.judge(&[0.80, 0.81, 0.80]),
            Verdict::Regressed { .. }
        ));
        assert!(matches!(h.judge(&[0.99, 0.98, 0.99]), Verdict::Fine { .. }));
        let l = Holdout::new(Direction::Lower, &[10.0, 10.2, 9.9]);
        assert!(matches!(
            l.judge(&[13.0, 13.1, 12.9]),
            Verdict::Regressed { .. }
        ));
        assert!(matches!(l.judge(&[10.1, 9.9, 10.0]), Verdict::Fine { .. }));
    }

    #[test]
    fn a_deterministic_holdout_takes_one_run_and_any_worsening_counts() {
        let mut h = Holdout::new(Direction::Lower, &[4.0, 4.0]);
        assert_eq!(h.runs(), 1);
        assert_eq!(
            h.judge(&[4.0]),
            Verdict::Fine {
                before: 4.0,
                after: 4.0
            }
        );
        assert_eq!(
            h.judge(&[5.0]),
            Verdict::Regressed {
                before: 4.0,
                after: 5.0
            }
        );
        h.accept(&[3.0]);
        assert_eq!(h.mean(), 3.0);
        assert_eq!(h.runs(), 1, "still one run after a keep");
        assert!(matches!(h.judge(&[3.5]), Verdict::Regressed { .. }));
    }
}
