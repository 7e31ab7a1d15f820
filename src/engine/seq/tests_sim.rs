//! The simulation of `noise_rules.py` ported: its World and 100-iteration session, SEQ (this
//! machine, both presets) and the strict rule, on four conditions; the figures must match the
//! spec's table within sampling error.

use super::tests::{Rng, baseline, decide, iterate};
use super::{Effort, Next, Params, Role, Seq};
use crate::engine::Direction;

const N_ITER: usize = 100;

/// A condition of the simulation (the keys of `noise_rules.py`'s CONDS).
#[derive(Clone, Copy)]
struct Cond {
    p_real: f64,
    higher: bool,
    scale: f64,
    offset: f64,
    det: bool,
}

const BASE: Cond = Cond {
    p_real: 0.1,
    higher: false,
    scale: 1.0,
    offset: 0.0,
    det: false,
};

/// One session's measurement process (internal units: σ, lower is better).
struct World {
    rng: Rng,
    c: Cond,
    t: u64,
}

impl World {
    fn measure(&mut self, level: f64) -> f64 {
        self.t += 1;
        let v = if self.c.det {
            level
        } else {
            level + self.rng.gauss()
        };
        let sign = if self.c.higher { -1.0 } else { 1.0 };
        self.c.offset + sign * self.c.scale * v
    }
}

#[derive(Clone, Copy)]
enum Rule {
    Seq(Effort),
    Strict,
}

/// Per session: keeps, noise keeps, real keeps, real offered, runs per iteration.
type Outcome = [f64; 5];

fn session(rule: Rule, c: Cond, rng: &mut Rng) -> Outcome {
    let mut w = World {
        rng: Rng::new(rng.next_u64()),
        c,
        t: 0,
    };
    let direction = if c.higher {
        Direction::Higher
    } else {
        Direction::Lower
    };
    let sign = if c.higher { -1.0 } else { 1.0 };
    let mut level = 0.0;
    let mut seq = match rule {
        Rule::Seq(e) => Some(Seq::new(direction, Params::preset(e))),
        Rule::Strict => None,
    };
    let mut strict_r = 0.0;
    match seq.as_mut() {
        Some(s) => {
            baseline(s, || w.measure(0.0));
        }
        None => strict_r = sign * w.measure(0.0),
    }
    let (mut keeps, mut noise, mut real, mut offered) = (0.0, 0.0, 0.0, 0.0);
    for _ in 0..N_ITER {
        let u = rng.random();
        let (d, is_real) = if u < c.p_real {
            (-1.0, true)
        } else {
            (0.0, false)
        };
        offered += f64::from(u8::from(is_real));
        let (cand, ret) = (level + d, level);
        let kept = match seq.as_mut() {
            Some(s) => iterate(s, |role| match role {
                Role::Candidate => w.measure(cand),
                _ => w.measure(ret),
            }),
            None => {
                let x = sign * w.measure(cand);
                let better = x < strict_r;
                if better {
                    strict_r = x;
                }
                better
            }
        };
        if kept {
            keeps += 1.0;
            noise += f64::from(u8::from(!is_real));
            real += f64::from(u8::from(is_real));
            level = cand;
        }
    }
    [keeps, noise, real, offered, w.t as f64 / N_ITER as f64]
}

/// The cell's figures with their standard errors.
struct Figures {
    keeps: f64,
    share: (f64, f64),
    captured: (f64, f64),
    offered: f64,
    runs: (f64, f64),
}

fn cell(rule: Rule, c: Cond, sessions: usize, seed: u64) -> Figures {
    let mut rng = Rng::new(seed);
    let rows: Vec<Outcome> = (0..sessions).map(|_| session(rule, c, &mut rng)).collect();
    let n = sessions as f64;
    let sum = |i: usize| rows.iter().map(|r| r[i]).sum::<f64>();
    // A ratio of sums and its delta-method standard error.
    let ratio = |num: usize, den: usize| {
        let (a, b) = (sum(num), sum(den));
        let r = if b > 0.0 { a / b } else { 0.0 };
        let var = rows
            .iter()
            .map(|x| (x[num] - r * x[den]).powi(2))
            .sum::<f64>()
            / (n - 1.0);
        let se = if b > 0.0 {
            var.sqrt() * n.sqrt() / b
        } else {
            0.0
        };
        (r, se)
    };
    let runs_mean = sum(4) / n;
    let runs_var = rows.iter().map(|r| (r[4] - runs_mean).powi(2)).sum::<f64>() / (n - 1.0);
    Figures {
        keeps: sum(0) / n,
        share: ratio(1, 0),
        captured: ratio(2, 3),
        offered: sum(3) / n,
        runs: (runs_mean, (runs_var / n).sqrt()),
    }
}

/// `got` is within 4 standard errors of the spec's `want` (its own error from 2000 sessions
/// included), plus the table's rounding.
fn near(what: &str, got: (f64, f64), sessions: usize, want: f64, rounding: f64) {
    let spec_se = got.1 * (sessions as f64 / 2000.0).sqrt();
    let tol = 4.0 * got.1.hypot(spec_se) + rounding;
    assert!(
        (got.0 - want).abs() <= tol,
        "{what}: measured {:.4} ± {:.4}, the spec says {want} (tolerance {tol:.4})",
        got.0,
        got.1
    );
}

fn report(name: &str, f: &Figures) {
    eprintln!(
        "{name}: keeps/100 {:.1}, noise {:.1}% (±{:.1}), captured {:.2}/{:.1} = {:.3} (±{:.3}), runs/iter {:.2} (±{:.2})",
        f.keeps,
        100.0 * f.share.0,
        100.0 * f.share.1,
        f.captured.0 * f.offered,
        f.offered,
        f.captured.0,
        f.captured.1,
        f.runs.0,
        f.runs.1
    );
}

/// Checks one rule on base-like conditions against (noise share, captured/offered, runs/iter).
fn check(name: &str, rule: Rule, c: Cond, sessions: usize, want: (f64, f64, f64, f64)) {
    let seed = 7 + sessions as u64 + if c.higher { 1000 } else { 0 };
    let f = cell(rule, c, sessions, seed);
    report(name, &f);
    near(
        &format!("{name} noise share"),
        f.share,
        sessions,
        want.0,
        0.0005,
    );
    near(
        &format!("{name} captured"),
        f.captured,
        sessions,
        want.1,
        0.006,
    );
    near(
        &format!("{name} runs/iter"),
        f.runs,
        sessions,
        want.2,
        want.3,
    );
}

fn sessions() -> usize {
    std::env::var("SEQ_SIM_SESSIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400)
}

#[test]
fn simulation_base_matches_the_spec() {
    let n = sessions();
    check(
        "SEQ default, base",
        Rule::Seq(Effort::Default),
        BASE,
        n,
        (0.040, 3.4 / 9.9, 2.94, 0.005),
    );
    check(
        "SEQ thorough, base",
        Rule::Seq(Effort::Thorough),
        BASE,
        n,
        (0.042, 8.1 / 10.0, 8.67, 0.005),
    );
    check(
        "strict, base",
        Rule::Strict,
        BASE,
        n,
        (0.71, 2.0 / 9.9, 1.01, 0.005),
    );
}

#[test]
fn simulation_higher_better_scaled_matches_the_spec() {
    let c = Cond {
        higher: true,
        scale: 37.0,
        offset: 1000.0,
        ..BASE
    };
    let n = sessions();
    check(
        "SEQ default, higher x37 +1000",
        Rule::Seq(Effort::Default),
        c,
        n,
        (0.043, 3.4 / 9.9, 3.0, 0.05),
    );
    check(
        "SEQ thorough, higher x37 +1000",
        Rule::Seq(Effort::Thorough),
        c,
        n,
        (0.043, 8.2 / 10.0, 8.7, 0.05),
    );
    check(
        "strict, higher x37 +1000",
        Rule::Strict,
        c,
        n,
        (0.70, 2.0 / 9.9, 1.01, 0.005),
    );
}

#[test]
fn simulation_deterministic_keeps_every_real_gain_and_no_noise() {
    let c = Cond { det: true, ..BASE };
    for (name, rule, runs) in [
        (
            "SEQ default, deterministic",
            Rule::Seq(Effort::Default),
            1.12,
        ),
        (
            "SEQ thorough, deterministic",
            Rule::Seq(Effort::Thorough),
            1.12,
        ),
        ("strict, deterministic", Rule::Strict, 1.01),
    ] {
        let f = cell(rule, c, sessions(), 11);
        report(name, &f);
        assert_eq!(
            f.share.0, 0.0,
            "{name}: a noise keep on a deterministic metric"
        );
        assert_eq!(f.captured.0, 1.0, "{name}: a real gain missed");
        near(
            &format!("{name} runs/iter"),
            f.runs,
            sessions(),
            runs,
            0.005,
        );
    }
}

#[test]
fn simulation_without_real_gains_rarely_keeps() {
    let c = Cond {
        p_real: 0.0,
        ..BASE
    };
    for (name, rule, want) in [
        (
            "SEQ default, no real gains",
            Rule::Seq(Effort::Default),
            0.2,
        ),
        (
            "SEQ thorough, no real gains",
            Rule::Seq(Effort::Thorough),
            0.4,
        ),
        ("strict, no real gains", Rule::Strict, 4.1),
    ] {
        let n = sessions();
        let mut rng = Rng::new(13);
        let keeps: Vec<f64> = (0..n).map(|_| session(rule, c, &mut rng)[0]).collect();
        let m = keeps.iter().sum::<f64>() / n as f64;
        let var = keeps.iter().map(|k| (k - m).powi(2)).sum::<f64>() / (n as f64 - 1.0);
        eprintln!("{name}: keeps/100 {m:.2}");
        near(
            &format!("{name} keeps/100"),
            (m, (var / n as f64).sqrt()),
            n,
            want,
            0.05,
        );
    }
}

/// Dumps sessions for the differential check against `noise_rules.py` (`SEQ_DUMP=path`, then
/// `model_check.py` beside this file).
#[test]
#[ignore]
fn dump_sessions_for_the_python_model() {
    use std::fmt::Write as _;
    let Ok(path) = std::env::var("SEQ_DUMP") else {
        eprintln!("set SEQ_DUMP=path to write the sessions");
        return;
    };
    let mut out = String::new();
    let mut rng = Rng::new(77);
    for s in 0..300u64 {
        let effort = if s % 2 == 0 {
            Effort::Default
        } else {
            Effort::Thorough
        };
        let higher = s % 3 == 0;
        let det = s % 7 == 0 || s % 11 == 0;
        let flaky = s % 11 == 0;
        let sign = if higher { -1.0 } else { 1.0 };
        let step = if s % 5 == 0 {
            -6.0
        } else if s % 5 == 1 {
            3.0
        } else {
            0.0
        };
        let p_out = if s % 4 == 0 { 0.05 } else { 0.0 };
        let direction = if higher {
            Direction::Higher
        } else {
            Direction::Lower
        };
        let mut seq = Seq::new(direction, Params::preset(effort));
        let mut t = 0u64;
        let meas = |level: f64, rng: &mut Rng, t: &mut u64| {
            *t += 1;
            let mut v = level;
            if det {
                v = (v * 4.0).round() / 4.0;
                if flaky && rng.random() < 0.1 {
                    v += 0.25;
                }
            } else {
                v += rng.gauss();
                if *t >= 40 {
                    v += step;
                }
                if rng.random() < p_out {
                    v += 3.0 + 57.0 * rng.random();
                }
            }
            sign * v
        };
        let mut base = Vec::new();
        baseline(&mut seq, || {
            let v = meas(0.0, &mut rng, &mut t);
            base.push(v);
            v
        });
        let _ = writeln!(
            out,
            "S {} {} {:?}",
            effort.as_str(),
            if higher { "higher" } else { "lower" },
            base
        );
        let mut level = 0.0;
        for _ in 0..60 {
            let d = if rng.random() < 0.2 { -1.0 } else { 0.0 };
            let (mut rs, mut cs) = (Vec::new(), Vec::new());
            let (dec, _) = decide(&mut seq, |role| {
                let v = meas(
                    if role == Role::Candidate {
                        level + d
                    } else {
                        level
                    },
                    &mut rng,
                    &mut t,
                );
                if role == Role::Candidate {
                    cs.push(v)
                } else {
                    rs.push(v)
                }
                v
            });
            let kept = dec == Next::Keep;
            if kept {
                level += d;
            }
            let _ = writeln!(out, "I {} {:?} {:?}", kept, rs, cs);
        }
    }
    std::fs::write(path, out).unwrap();
}

/// The same checks at 1000 sessions per cell (or `SEQ_SIM_SESSIONS`): run with
/// `cargo test --release -- --ignored simulation_heavy --nocapture`.
#[test]
#[ignore]
fn simulation_heavy() {
    let n = sessions().max(1000);
    let hb = Cond {
        higher: true,
        scale: 37.0,
        offset: 1000.0,
        ..BASE
    };
    check(
        "SEQ default, base",
        Rule::Seq(Effort::Default),
        BASE,
        n,
        (0.040, 3.4 / 9.9, 2.94, 0.005),
    );
    check(
        "SEQ thorough, base",
        Rule::Seq(Effort::Thorough),
        BASE,
        n,
        (0.042, 8.1 / 10.0, 8.67, 0.005),
    );
    check(
        "strict, base",
        Rule::Strict,
        BASE,
        n,
        (0.71, 2.0 / 9.9, 1.01, 0.005),
    );
    check(
        "SEQ default, higher x37 +1000",
        Rule::Seq(Effort::Default),
        hb,
        n,
        (0.043, 3.4 / 9.9, 3.0, 0.05),
    );
    check(
        "SEQ thorough, higher x37 +1000",
        Rule::Seq(Effort::Thorough),
        hb,
        n,
        (0.043, 8.2 / 10.0, 8.7, 0.05),
    );
}
