//! Tests of the SEQ machine's single rules: outliers, `--min-effect`, the cap, stale runs, the
//! scheduled retained run, the tag, parsing and the effort choice.

use std::time::Duration;

use super::tests::{C, R, Rng, baseline, decide, iterate, noisy};
use super::*;
use crate::engine::Direction;

fn default() -> Params {
    Params::preset(Effort::Default)
}

/// A machine whose baseline is 10, 11, 10, 11, 10: every difference 1, σ̂ = √0.5·√1.5 ≈ 0.866,
/// reference mean 10.4.
fn jittered(params: Params) -> Seq {
    let mut seq = Seq::new(Direction::Lower, params);
    let mut v = [10.0, 11.0, 10.0, 11.0, 10.0].into_iter();
    assert_eq!(baseline(&mut seq, || v.next().unwrap()), 5);
    seq
}

#[test]
fn outliers_are_left_out() {
    let mut params = default();
    params.every = 1;
    let mut seq = jittered(params);
    let n = seq.reference_len();
    seq.begin();
    assert_eq!(seq.next(), R, "the scheduled retained run");
    assert_eq!(seq.observe(Role::Retained, 1e6), Use::Outlier);
    assert_eq!(seq.reference_len(), n);
    assert_eq!(seq.next(), C);
    assert_eq!(seq.observe(Role::Candidate, 10.2), Use::Ok);
    let n_c = seq.evidence().n_candidate;
    while seq.next() != C {
        seq.observe(Role::Retained, 10.5);
    }
    assert_eq!(seq.observe(Role::Candidate, 1e6), Use::Outlier);
    assert_eq!(
        seq.evidence().n_candidate,
        n_c,
        "the outlier is not counted"
    );
    seq.abandon();

    // a first candidate run far worse than the reference ends the iteration
    let (d, trace) = decide(&mut seq, |_| 1e6);
    assert_eq!((d, trace), (Next::Discard(Why::Outlier), vec![R, C]));
    let e = seq.evidence();
    assert_eq!((e.n_candidate, e.mean), (1, 1e6));
}

#[test]
fn an_llr_between_the_bounds_goes_on_until_the_cap() {
    let mut params = default();
    params.cap = 1;
    let mut seq = jittered(params);
    // d = 1.2·σ̂; a candidate d/2 better than the reference mean gives LLR 0
    let s = seq.noise().sigma;
    let (d, trace) = decide(&mut seq, |_| 10.4 - 0.6 * s);
    assert_eq!((d, trace), (Next::Discard(Why::Cap), vec![C]));
    let e = seq.evidence();
    assert!(e.llr.unwrap().abs() < 1e-9, "{e:?}");
    assert_eq!(e.tag(), "[seq n=1+5R llr=0.0 σ=0.87]");
    assert_eq!(format!("{:.4}", e.mean), format!("{:.4}", 10.4 - 0.6 * s));
    assert_eq!(
        e.retained_mean.map(|m| format!("{m:.4}")),
        Some("10.4000".into())
    );
}

#[test]
fn every_iteration_ends_even_when_every_run_is_an_outlier() {
    let mut seq = jittered(default());
    let s = seq.noise().sigma;
    let mut first = true;
    let (d, trace) = decide(&mut seq, |role| match role {
        Role::Candidate if first => {
            first = false;
            10.4 - 0.6 * s // LLR 0: undecided
        }
        _ => 1e9,
    });
    assert_eq!(d, Next::Discard(Why::Cap));
    assert!(trace.len() <= 8 * 32, "{} runs", trace.len());

    let mut rng = Rng::new(8);
    let mut seq = noisy(Direction::Higher, default(), 5.0, &mut rng);
    for _ in 0..200 {
        let (_, trace) = decide(&mut seq, |_| 5.0 + rng.gauss());
        assert!(trace.len() <= 8 * 32 + 6);
    }
}

#[test]
fn min_effect_absolute_and_percent() {
    let gain = |min: Option<MinEffect>, seed: u64| {
        let mut params = default();
        params.min_effect = min;
        let mut rng = Rng::new(seed);
        let mut seq = noisy(Direction::Lower, params, 100.0, &mut rng);
        iterate(&mut seq, |role| {
            (if role == Role::Candidate { 97.0 } else { 100.0 }) + rng.gauss()
        })
    };
    for seed in 1..6 {
        assert!(gain(None, seed), "seed {seed}: a 3σ gain is kept");
        assert!(gain(Some(MinEffect::Absolute(1.0)), seed), "seed {seed}");
        assert!(gain(Some(MinEffect::Percent(1.0)), seed), "seed {seed}");
        assert!(!gain(Some(MinEffect::Absolute(10.0)), seed), "seed {seed}");
        assert!(!gain(Some(MinEffect::Percent(10.0)), seed), "seed {seed}");
    }

    // A clear gain between half the minimum effect and the minimum effect can pass the test (it
    // looks for `d` = the minimum effect); the floor discards it as small.
    let mut small = 0;
    for seed in 1..12 {
        let mut params = default();
        params.min_effect = Some(MinEffect::Absolute(3.0));
        let mut rng = Rng::new(seed);
        let mut seq = noisy(Direction::Lower, params, 100.0, &mut rng);
        let (d, _) = decide(&mut seq, |role| {
            (if role == Role::Candidate { 97.8 } else { 100.0 }) + 0.3 * rng.gauss()
        });
        assert_ne!(d, Next::Keep, "seed {seed}: a 2.2 gain under a 3 floor");
        small += usize::from(d == Next::Discard(Why::Small));
    }
    assert!(small >= 5, "the floor decided {small} of 11");

    // exact mode: strictly better, and by the minimum effect when one is given
    for (min, better, kept) in [
        (None, 99.0, true),
        (Some(MinEffect::Absolute(2.0)), 99.0, false),
        (Some(MinEffect::Absolute(2.0)), 98.0, true),
        (Some(MinEffect::Percent(1.5)), 99.0, false),
        (Some(MinEffect::Percent(1.5)), 98.0, true),
    ] {
        let mut params = default();
        params.min_effect = min;
        let mut seq = Seq::new(Direction::Lower, params);
        baseline(&mut seq, || 100.0);
        assert_eq!(iterate(&mut seq, |_| better), kept, "{min:?} {better}");
    }
}

#[test]
fn reference_runs_older_than_age_are_dropped() {
    let mut params = default();
    params.every = 100;
    params.age = 3;
    let mut seq = jittered(params.clone());
    seq.begin();
    assert_eq!(seq.next(), C);
    seq.observe(Role::Candidate, 10.4);
    assert_eq!(
        seq.reference_len(),
        4,
        "the first baseline run is 4 runs old"
    );

    params.age = 150;
    let mut seq = jittered(params);
    seq.begin();
    seq.observe(Role::Candidate, 10.4);
    assert_eq!(seq.reference_len(), 5);
}

#[test]
fn the_retained_is_run_every_fourth_iteration() {
    let mut rng = Rng::new(2);
    let mut seq = noisy(Direction::Lower, default(), 100.0, &mut rng);
    let mut firsts = Vec::new();
    for _ in 0..8 {
        let (d, trace) = decide(&mut seq, |role| {
            (if role == Role::Candidate {
                104.0
            } else {
                100.0
            }) + rng.gauss()
        });
        assert_ne!(d, Next::Keep);
        firsts.push(trace[0]);
    }
    assert_eq!(firsts, [C, C, C, R, C, C, C, R]);

    let mut params = Params::preset(Effort::Thorough);
    params.every = 1;
    let mut seq = noisy(Direction::Lower, params, 100.0, &mut rng);
    for _ in 0..3 {
        let (_, trace) = decide(&mut seq, |_| 104.0 + rng.gauss());
        assert_eq!(trace[0], R);
    }
}

#[test]
fn the_noise_state_serializes_for_the_state_file() {
    let mut seq = Seq::new(Direction::Lower, default());
    baseline(&mut seq, || 3.0);
    let json = serde_json::to_string(&seq.noise()).unwrap();
    assert_eq!(json, r#"{"sigma":0.0,"n":1,"mode":"exact"}"#);
    let seq = jittered(default());
    let state = seq.noise();
    assert_eq!((state.n, state.mode), (4, NoiseMode::Statistical));
    assert!((state.sigma - 0.5f64.sqrt() * 1.5f64.sqrt()).abs() < 1e-3);
    let back: NoiseState = serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
    assert_eq!(back, state);
}

#[test]
fn words_parse_and_print() {
    for role in [Role::Baseline, Role::Retained, Role::Candidate] {
        assert_eq!(role.as_str().parse::<Role>(), Ok(role));
    }
    for used in [Use::Ok, Use::Outlier, Use::Stale] {
        assert_eq!(used.as_str().parse::<Use>(), Ok(used));
    }
    assert!("retain".parse::<Role>().is_err());
    assert_eq!("Thorough".parse::<Effort>(), Ok(Effort::Thorough));
    assert!("fast".parse::<Effort>().is_err());
    assert_eq!("0.5".parse::<MinEffect>(), Ok(MinEffect::Absolute(0.5)));
    assert_eq!(" 2 % ".parse::<MinEffect>(), Ok(MinEffect::Percent(2.0)));
    for bad in ["-1", "abc", "nan", "inf", "%", ""] {
        let e = bad.parse::<MinEffect>().unwrap_err();
        assert!(e.contains("not a minimum effect"), "{e}");
    }
    assert_eq!(MinEffect::Percent(2.0).resolve(-50.0), 1.0);
    assert_eq!(MinEffect::Absolute(0.3).resolve(-50.0), 0.3);
    assert_eq!(Why::Llr.as_str(), "llr");
    let e = Evidence {
        n_candidate: 7,
        n_retained: 9,
        llr: Some(4.83),
        sigma: 0.01234,
        mean: 1.0,
        exact: false,
        retained_mean: None,
    };
    assert_eq!(e.tag(), "[seq n=7+9R llr=4.8 σ=0.012]");
    let big = Evidence {
        sigma: 37.4,
        llr: None,
        ..e
    };
    assert_eq!(big.tag(), "[seq n=7+9R llr=- σ=37]");
}

#[test]
fn thorough_when_nine_verify_runs_cost_less_than_an_agent_turn() {
    let (effort, why) = choose_effort(Duration::from_secs(1), Duration::from_secs(10));
    assert_eq!(effort, Effort::Thorough);
    assert_eq!(
        why,
        "9 verify runs ≈ 9.0s cost less than one agent turn ≈ 10.0s"
    );
    let (effort, why) = choose_effort(Duration::from_millis(1500), Duration::from_secs(10));
    assert_eq!(effort, Effort::Default);
    assert!(
        why.starts_with("9 verify runs ≈ 13.5s cost at least"),
        "{why}"
    );
}
