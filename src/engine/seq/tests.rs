//! Tests of the SEQ machine: the test driver and RNG the other test files share, exact mode,
//! both directions, keeps with fresh retained runs and rebase runs, level steps, reworks.

use super::*;
use crate::engine::Direction;

/// splitmix64 with Box–Muller normals: deterministic noise for the tests.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(super) fn random(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal.
    pub(super) fn gauss(&mut self) -> f64 {
        let u1 = 1.0 - self.random();
        let u2 = self.random();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// The driver's baseline loop; returns the runs made.
pub(super) fn baseline(seq: &mut Seq, mut run: impl FnMut() -> f64) -> usize {
    let mut n = 0;
    while seq.next() == Next::Run(Role::Baseline) {
        n += 1;
        assert!(n < 100, "the baseline does not end");
        let v = run();
        seq.observe(Role::Baseline, v);
    }
    n
}

/// The driver's iteration loop with a passing guard: the decision and every step before it.
pub(super) fn decide(seq: &mut Seq, mut run: impl FnMut(Role) -> f64) -> (Next, Vec<Next>) {
    seq.begin();
    let mut trace = Vec::new();
    loop {
        assert!(trace.len() < 10_000, "no decision: {trace:?}");
        let next = seq.next();
        match next {
            Next::Run(role) => {
                assert_ne!(role, Role::Baseline, "a baseline run inside an iteration");
                let v = run(role);
                seq.observe(role, v);
            }
            Next::Guard => seq.guard_passed(),
            Next::Keep | Next::Discard(_) => return (next, trace),
            Next::Idle => panic!("idle inside an iteration"),
        }
        trace.push(next);
    }
}

/// `decide`, true on a keep.
pub(super) fn iterate(seq: &mut Seq, run: impl FnMut(Role) -> f64) -> bool {
    decide(seq, run).0 == Next::Keep
}

pub(super) const C: Next = Next::Run(Role::Candidate);
pub(super) const R: Next = Next::Run(Role::Retained);

/// A machine after a noisy baseline at `level` (σ = 1).
pub(super) fn noisy(direction: Direction, params: Params, level: f64, rng: &mut Rng) -> Seq {
    let mut seq = Seq::new(direction, params);
    baseline(&mut seq, || level + rng.gauss());
    seq
}

fn default() -> Params {
    Params::preset(Effort::Default)
}

#[test]
fn a_deterministic_metric_is_compared_exactly_in_both_directions() {
    for (direction, better, worse) in [
        (Direction::Lower, 9.0, 11.0),
        (Direction::Higher, 11.0, 9.0),
    ] {
        let mut seq = Seq::new(direction, default());
        assert_eq!(baseline(&mut seq, || 10.0), 2, "two equal runs are enough");
        assert_eq!(seq.next(), Next::Idle);
        assert_eq!(seq.noise().mode, NoiseMode::Exact);

        let (d, trace) = decide(&mut seq, |_| better);
        assert_eq!((d, trace), (Next::Keep, vec![C, C, Next::Guard]));
        assert_eq!(seq.evidence().tag(), "[seq exact n=2]");
        assert_eq!(seq.evidence().retained_mean, Some(10.0), "the delta's base");
        assert_eq!(seq.evidence().mean, better);
        assert_eq!(seq.reference_mean(), Some(better));

        let (d, trace) = decide(&mut seq, |_| better);
        assert_eq!(
            (d, trace),
            (Next::Discard(Why::Worse), vec![C]),
            "equal is no gain"
        );
        let (d, _) = decide(&mut seq, |_| worse);
        assert_eq!(d, Next::Discard(Why::Worse));
        assert_eq!(seq.reference_mean(), Some(better));
    }
}

#[test]
fn an_exact_rerun_that_differs_switches_to_the_statistical_test() {
    let mut seq = Seq::new(Direction::Lower, default());
    baseline(&mut seq, || 10.0);
    let mut cand = [9.0, 9.5].into_iter();
    let (d, trace) = decide(&mut seq, |role| match role {
        Role::Candidate => cand.next().unwrap(),
        _ => 10.0,
    });
    assert_eq!(d, Next::Discard(Why::Unstable));
    assert_eq!(
        trace,
        vec![C, C, R, R, R, R],
        "4 retained runs after the differing rerun"
    );
    assert_eq!(seq.noise().mode, NoiseMode::Statistical);
    assert!(seq.noise().sigma > 0.0);
    assert_eq!(seq.reference_len(), 6);

    let (_, trace) = decide(&mut seq, |_| 10.0);
    assert_eq!(trace[0], C);
    let e = seq.evidence();
    assert!(!e.exact && e.llr.is_some(), "{e:?}");
}

#[test]
fn both_directions_make_the_same_decisions() {
    let mut rng = Rng::new(5);
    // higher-better sees −x: the same numbers in its own orientation
    let start = |direction, sign: f64| {
        let mut s = Seq::new(direction, default());
        let mut r = Rng::new(99);
        baseline(&mut s, || sign * r.gauss());
        s
    };
    let (mut lower, mut higher) = (start(Direction::Lower, 1.0), start(Direction::Higher, -1.0));
    let mut level = 0.0;
    let mut keeps = 0;
    for _ in 0..60 {
        let gain = if rng.random() < 0.3 { -2.0 } else { 0.0 };
        let seed = rng.next_u64();
        let (mut a, mut b) = (Rng::new(seed), Rng::new(seed));
        let (dl, tl) = decide(&mut lower, |role| {
            level + if role == Role::Candidate { gain } else { 0.0 } + a.gauss()
        });
        let (dh, th) = decide(&mut higher, |role| {
            -(level + if role == Role::Candidate { gain } else { 0.0 } + b.gauss())
        });
        assert_eq!((dl, &tl), (dh, &th));
        assert_eq!(lower.evidence().mean, -higher.evidence().mean);
        assert_eq!(lower.evidence().llr, higher.evidence().llr);
        if dl == Next::Keep {
            keeps += 1;
            level += gain;
        }
    }
    assert!(keeps > 3, "some real gains kept: {keeps}");
}

#[test]
fn a_keep_needs_fresh_retained_runs_then_takes_rebase_runs() {
    for seed in 1..20 {
        let mut rng = Rng::new(seed);
        let mut seq = noisy(Direction::Lower, default(), 100.0, &mut rng);
        let (d, trace) = decide(&mut seq, |role| match role {
            Role::Candidate => 95.0 + rng.gauss(),
            _ => 100.0 + rng.gauss(),
        });
        assert_eq!(d, Next::Keep, "seed {seed}: a 5σ gain is kept");
        let guard = trace.iter().position(|&n| n == Next::Guard).unwrap();
        let fresh = trace[..guard].iter().filter(|&&n| n == R).count();
        assert!(
            fresh >= 2,
            "seed {seed}: {fresh} fresh retained runs: {trace:?}"
        );
        assert_eq!(
            &trace[guard + 1..],
            &[C, C, C],
            "3 rebase runs after the guard"
        );
        let e = seq.evidence();
        assert!((e.mean - 95.0).abs() < 1.5, "{e:?}");
        assert!(e.tag().starts_with("[seq n="), "{}", e.tag());
        assert_eq!(seq.reference_mean(), Some(e.mean));
        let cands = trace[..guard].iter().filter(|&&n| n == C).count();
        assert!(seq.reference_len() <= cands + 3);
    }
}

#[test]
fn a_faster_machine_is_not_taken_for_a_gain() {
    // After some history at 100, every run, retained or candidate, gets 6σ faster: the
    // candidate is no better than the retained; the older reference runs must be dropped.
    let mut kept = 0;
    for seed in 1..40 {
        let mut rng = Rng::new(seed);
        let mut seq = noisy(Direction::Lower, default(), 100.0, &mut rng);
        for _ in 0..12 {
            kept += usize::from(iterate(&mut seq, |_| 100.0 + rng.gauss()));
        }
        let (d, _) = decide(&mut seq, |_| 94.0 + rng.gauss());
        kept += usize::from(d == Next::Keep);
        let m = seq.reference_mean().unwrap();
        eprintln!(
            "seed {seed}: {d:?}, reference {m:.2} of {}",
            seq.reference_len()
        );
        assert!((m - 94.0).abs() < 2.0, "seed {seed}: reference mean {m}");
    }
    eprintln!("kept {kept}");
    assert!(
        kept <= 4,
        "{kept} keeps of a candidate equal to the retained"
    );
}

#[test]
fn a_load_step_in_the_retained_runs_does_not_pass_for_a_gain() {
    // The trial's runs come first, at the old level; then the machine gets slower (a build
    // starts next to it) just as the retained runs owed before a keep are taken. Compared with
    // the slow retained runs, the trial looks faster: it must be measured again at the new level.
    let mut kept = 0;
    for seed in 1..60 {
        let mut rng = Rng::new(seed);
        let mut seq = noisy(Direction::Lower, default(), 40.0, &mut rng);
        for _ in 0..6 {
            iterate(&mut seq, |_| 40.0 + rng.gauss());
        }
        let mut retained_runs = 0;
        let (d, _) = decide(&mut seq, |role| {
            if role == Role::Retained {
                retained_runs += 1;
            }
            // From the first retained run of this iteration on, everything runs 4σ slower
            // (less than the outlier cut of 5σ).
            let slow = if retained_runs >= 1 { 4.0 } else { 0.0 };
            // The trial is a hair faster (0.5σ, below what SEQ looks for).
            let trial = if role == Role::Candidate { -0.5 } else { 0.0 };
            40.0 + slow + trial + rng.gauss()
        });
        kept += usize::from(d == Next::Keep);
    }
    // Without the trial's stale runs dropped at the step: 15 of 59.
    assert!(
        kept <= 7,
        "{kept} of 59 keeps of a 0.5σ change across a load step"
    );
}

#[test]
fn a_rework_restarts_the_candidate_and_keeps_this_iterations_retained_runs() {
    let mut rng = Rng::new(3);
    let mut seq = noisy(Direction::Lower, default(), 100.0, &mut rng);
    seq.begin();
    let mut fresh = 0;
    while seq.next() != Next::Guard {
        let role = match seq.next() {
            Next::Run(role) => role,
            other => panic!("{other:?} before the guard"),
        };
        fresh += usize::from(role == Role::Retained);
        let v = if role == Role::Candidate { 95.0 } else { 100.0 } + rng.gauss();
        seq.observe(role, v);
    }
    assert!(fresh >= 2);
    let n_ref = seq.reference_len();
    seq.begin(); // the guard failed; the agent's rework is a new commit
    assert_eq!(seq.next(), C);
    assert_eq!(seq.evidence().n_candidate, 0);
    assert_eq!(seq.reference_len(), n_ref);
    let mut retained_after = 0;
    loop {
        match seq.next() {
            Next::Run(role) => {
                retained_after += usize::from(role == Role::Retained);
                let v = if role == Role::Candidate { 95.0 } else { 100.0 } + rng.gauss();
                seq.observe(role, v);
            }
            Next::Guard => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(retained_after, 0, "the fresh retained runs still count");
    seq.guard_passed();
    for _ in 0..3 {
        assert_eq!(seq.next(), C);
        seq.observe(Role::Candidate, 95.0 + rng.gauss());
    }
    assert_eq!(seq.next(), Next::Keep);
}

#[test]
fn abandon_takes_back_an_unrecorded_keep_and_keeps_retained_runs() {
    let mut rng = Rng::new(4);
    let mut seq = noisy(Direction::Lower, default(), 100.0, &mut rng);
    seq.begin();
    while let Next::Run(role) = seq.next() {
        let v = if role == Role::Candidate { 90.0 } else { 100.0 } + rng.gauss();
        seq.observe(role, v);
    }
    assert_eq!(seq.next(), Next::Guard);
    let before = seq.reference_mean();
    seq.guard_passed();
    for _ in 0..3 {
        seq.observe(Role::Candidate, 90.0 + rng.gauss());
    }
    assert_eq!(seq.next(), Next::Keep);
    assert!(seq.reference_mean().unwrap() < 92.0);
    seq.abandon(); // killed before the row was written
    assert_eq!(seq.reference_mean(), before);
    assert_eq!(seq.next(), Next::Idle);

    let mut params = default();
    params.every = 1; // every iteration opens with a retained run
    let mut seq = noisy(Direction::Lower, params, 100.0, &mut rng);
    let n = seq.reference_len();
    seq.begin();
    assert_eq!(seq.next(), R);
    seq.observe(Role::Retained, 100.0);
    seq.abandon();
    assert_eq!(seq.reference_len(), n + 1, "the retained run stays");
    assert_eq!(seq.next(), Next::Idle);
    seq.abandon();
    assert_eq!(seq.reference_len(), n + 1, "abandon twice changes nothing");
}

#[test]
fn the_baseline_comes_first_and_an_early_begin_waits_for_it() {
    let mut seq = Seq::new(Direction::Lower, default());
    assert_eq!(seq.next(), Next::Run(Role::Baseline));
    assert!(!seq.baseline_done());
    assert_eq!(seq.reference_mean(), None);
    let mut values = [10.0, 11.0, 10.0, 11.0, 10.0].into_iter();
    seq.observe(Role::Baseline, values.next().unwrap());
    seq.begin();
    let mut n = 1;
    while seq.next() == Next::Run(Role::Baseline) {
        seq.observe(Role::Baseline, values.next().unwrap());
        n += 1;
    }
    assert_eq!(n, 5, "five runs when the first two differ");
    assert!(seq.baseline_done());
    assert_eq!(seq.next(), C, "the iteration opened by the early begin");

    let mut params = default();
    params.baseline_runs = 7;
    let mut seq = Seq::new(Direction::Higher, params);
    let mut rng = Rng::new(1);
    assert_eq!(baseline(&mut seq, || rng.gauss()), 7);
    assert_eq!(seq.next(), Next::Idle);
}
