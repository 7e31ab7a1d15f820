//! The statistics of `confirm`: sample summaries, the Welch t-interval of a difference of means
//! signed so that positive is better, Student's t quantiles, and the verdict on one keep of a
//! leave-one-out ablation. Pure.

use serde::Serialize;

use super::Direction;

/// The confidence level of every interval `confirm` reports.
pub const LEVEL: f64 = 0.95;

/// Mean, sample standard deviation and size of one side's verify values.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n - 1 in the denominator); 0 for fewer than two values.
    pub sd: f64,
}

impl Sample {
    /// Summarizes `values` (an empty slice gives n = 0 and zeros).
    pub fn of(values: &[f64]) -> Sample {
        let n = values.len();
        if n == 0 {
            return Sample {
                n,
                mean: 0.0,
                sd: 0.0,
            };
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let sd = if n < 2 {
            0.0
        } else {
            let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
            (ss / (n - 1) as f64).sqrt()
        };
        Sample { n, mean, sd }
    }
}

/// An effect with its 95% interval, in the metric's units, positive = better.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Effect {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    /// Welch–Satterthwaite degrees of freedom (absent when both sides are exact).
    pub df: Option<f64>,
}

impl Effect {
    /// Returns true when the interval contains 0 (the effect may be nothing).
    pub fn covers_zero(&self) -> bool {
        self.low <= 0.0 && 0.0 <= self.high
    }
}

/// The effect of `treated` over `control`, signed so that positive is better in `direction`,
/// with the Welch t-interval; exact (zero width) when neither side varies. `None` when a side has
/// fewer than two values and the sides vary (no interval can be given).
pub fn welch(control: &[f64], treated: &[f64], direction: Direction) -> Option<Effect> {
    let (c, t) = (Sample::of(control), Sample::of(treated));
    if c.n == 0 || t.n == 0 {
        return None;
    }
    let sign = match direction {
        Direction::Lower => -1.0,
        Direction::Higher => 1.0,
    };
    let estimate = sign * (t.mean - c.mean);
    let (vc, vt) = (c.sd * c.sd / c.n as f64, t.sd * t.sd / t.n as f64);
    let se2 = vc + vt;
    if se2 == 0.0 {
        if c.n < 2 && t.n < 2 {
            return None;
        }
        return Some(Effect {
            estimate,
            low: estimate,
            high: estimate,
            df: None,
        });
    }
    if c.n < 2 || t.n < 2 {
        return None;
    }
    let mut den = 0.0;
    if vc > 0.0 {
        den += vc * vc / (c.n - 1) as f64;
    }
    if vt > 0.0 {
        den += vt * vt / (t.n - 1) as f64;
    }
    let df = se2 * se2 / den;
    let half = t_quantile(0.5 + LEVEL / 2.0, df) * se2.sqrt();
    Some(Effect {
        estimate,
        low: estimate - half,
        high: estimate + half,
        df: Some(df),
    })
}

/// What a keep turned out to be in the leave-one-out ablation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Removing it makes the final tree worse beyond the noise: it carries part of the gain.
    Carries,
    /// Its contribution's interval contains 0, or is smaller than the smallest effect worth
    /// keeping: the final tree does as well without it.
    DeadWeight,
    /// Removing it makes the final tree better beyond the noise.
    Harmful,
}

impl Verdict {
    /// Returns the word used in `confirm.md` and the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Carries => "carries",
            Verdict::DeadWeight => "dead_weight",
            Verdict::Harmful => "harmful",
        }
    }
}

/// Judges a keep by its contribution (the final tree against the final tree without it);
/// `min_effect` is the smallest contribution worth having, in the metric's units (0: any).
pub fn verdict(contribution: &Effect, min_effect: f64) -> Verdict {
    if contribution.covers_zero() || contribution.estimate.abs() < min_effect {
        Verdict::DeadWeight
    } else if contribution.low > 0.0 {
        Verdict::Carries
    } else {
        Verdict::Harmful
    }
}

/// The `p` quantile of Student's t distribution with `df` (> 0, possibly fractional) degrees of
/// freedom, by bisection on the exact distribution function (accurate to about 1e-9).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    let valid = p > 0.0 && p < 1.0 && df > 0.0;
    if !valid {
        return f64::NAN;
    }
    if p < 0.5 {
        return -t_quantile(1.0 - p, df);
    }
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    while t_cdf(hi, df) < p && hi < 1e12 {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-12 * hi.max(1.0) {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// Student's t distribution function.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    let x = df / (df + t * t);
    let tail = 0.5 * inc_beta(df / 2.0, 0.5, x);
    if t >= 0.0 { 1.0 - tail } else { tail }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; relative error about 1e-15).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized incomplete beta function I_x(a, b).
fn inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

/// The continued fraction of the incomplete beta function (modified Lentz).
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        for aa in [
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ] {
            d = 1.0 + aa * d;
            if d.abs() < TINY {
                d = TINY;
            }
            c = 1.0 + aa / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn t_quantiles_match_the_table_to_three_digits() {
        // Two-sided 95% critical values of Student's t.
        for (df, want) in [
            (1.0, 12.706),
            (2.0, 4.303),
            (3.0, 3.182),
            (5.0, 2.571),
            (9.0, 2.262),
            (10.0, 2.228),
            (18.0, 2.101),
            (30.0, 2.042),
            (120.0, 1.980),
            (1e6, 1.960),
        ] {
            let got = t_quantile(0.975, df);
            assert!(close(got, want, 0.0015), "df {df}: {got} vs {want}");
        }
        assert!(close(t_quantile(0.95, 10.0), 1.812, 0.0015));
        assert!(close(t_quantile(0.025, 10.0), -2.228, 0.0015));
    }

    #[test]
    fn fractional_degrees_of_freedom_lie_between_their_neighbours() {
        let (a, b, c) = (
            t_quantile(0.975, 4.0),
            t_quantile(0.975, 4.5),
            t_quantile(0.975, 5.0),
        );
        assert!(a > b && b > c, "{a} {b} {c}");
        // df = 1 is the Cauchy distribution: its quantile is tan(pi (p - 1/2)).
        let cauchy = (std::f64::consts::PI * 0.475).tan();
        assert!(close(t_quantile(0.975, 1.0), cauchy, 1e-6));
    }

    #[test]
    fn samples_have_mean_and_sample_sd() {
        let s = Sample::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.n, 4);
        assert!(close(s.mean, 2.5, 1e-12));
        assert!(close(s.sd, (5.0_f64 / 3.0).sqrt(), 1e-12));
        assert_eq!(Sample::of(&[7.0]).sd, 0.0);
    }

    #[test]
    fn welch_matches_a_hand_computed_interval() {
        // control mean 10 (sd 1, n 4), treated mean 8 (sd 1, n 4); lower is better.
        let control = [9.0, 10.0, 11.0, 10.0];
        let treated = [7.0, 8.0, 9.0, 8.0];
        let e = welch(&control, &treated, Direction::Lower).unwrap();
        assert!(close(e.estimate, 2.0, 1e-12));
        let sd = Sample::of(&control).sd;
        let se = (2.0 * sd * sd / 4.0).sqrt();
        let df = e.df.unwrap();
        assert!(
            close(df, 6.0, 1e-9),
            "equal variances and sizes: df = 2n - 2"
        );
        assert!(close(e.high - e.estimate, 2.447 * se, 0.002));
        assert!(!e.covers_zero());
    }

    #[test]
    fn the_sign_says_better_in_either_direction() {
        let lo = [1.0, 1.1, 0.9];
        let hi = [2.0, 2.1, 1.9];
        assert!(welch(&lo, &hi, Direction::Higher).unwrap().estimate > 0.0);
        assert!(welch(&lo, &hi, Direction::Lower).unwrap().estimate < 0.0);
        assert!(welch(&hi, &lo, Direction::Lower).unwrap().estimate > 0.0);
    }

    #[test]
    fn a_deterministic_metric_gives_an_exact_zero_width_interval() {
        let e = welch(&[5.0; 3], &[3.0; 3], Direction::Lower).unwrap();
        assert_eq!((e.estimate, e.low, e.high, e.df), (2.0, 2.0, 2.0, None));
        let same = welch(&[5.0; 3], &[5.0; 3], Direction::Lower).unwrap();
        assert!(same.covers_zero());
        assert_eq!(same.high - same.low, 0.0);
    }

    #[test]
    fn one_noisy_side_takes_the_other_sides_degrees_of_freedom() {
        let e = welch(&[5.0; 4], &[3.0, 4.0, 5.0], Direction::Lower).unwrap();
        assert!(close(e.df.unwrap(), 2.0, 1e-9));
        assert!(welch(&[5.0], &[3.0, 4.0], Direction::Lower).is_none());
        assert!(welch(&[], &[3.0, 4.0], Direction::Lower).is_none());
    }

    #[test]
    fn verdicts_follow_the_interval_and_the_smallest_effect() {
        let e = |estimate: f64, low: f64, high: f64| Effect {
            estimate,
            low,
            high,
            df: Some(9.0),
        };
        assert_eq!(verdict(&e(1.0, 0.5, 1.5), 0.0), Verdict::Carries);
        assert_eq!(verdict(&e(0.2, -0.3, 0.7), 0.0), Verdict::DeadWeight);
        assert_eq!(verdict(&e(-1.0, -1.5, -0.5), 0.0), Verdict::Harmful);
        assert_eq!(verdict(&e(0.0, 0.0, 0.0), 0.0), Verdict::DeadWeight);
        // Significant but below the smallest effect worth keeping.
        assert_eq!(verdict(&e(0.1, 0.05, 0.15), 0.5), Verdict::DeadWeight);
    }
}
