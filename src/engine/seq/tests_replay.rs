//! Resume: replaying `runs.tsv` and the outcomes rebuilds exactly the live machine, cut at any
//! iteration boundary or inside an iteration (a killed iteration is abandoned).

use super::tests::Rng;
use super::*;
use crate::engine::Direction;

/// A point where the driver could have been killed, with the live machine there.
struct Cut {
    records: usize,
    outcomes: usize,
    live: Seq,
}

/// A driver with a recording of every call: random guard failures, reworks, crashes.
struct Live {
    seq: Seq,
    rng: Rng,
    records: Vec<RunRecord>,
    outcomes: Vec<(u64, bool)>,
    cuts: Vec<Cut>,
    run: u64,
    det: bool,
}

impl Live {
    /// One verify value of a commit at `level` (σ = 1, or a flaky integer metric).
    fn value(&mut self, level: f64) -> f64 {
        if self.det {
            level + if self.rng.random() < 0.05 { 1.0 } else { 0.0 }
        } else {
            level + self.rng.gauss()
        }
    }

    fn observe(&mut self, iteration: u64, commit: &str, role: Role, value: f64) {
        self.run += 1;
        let used = self.seq.observe(role, value);
        self.records.push(RunRecord {
            iteration,
            run: self.run,
            commit: commit.to_string(),
            role,
            value,
            used,
        });
        self.cut_killed();
    }

    /// The driver killed here: the iteration was never recorded.
    fn cut_killed(&mut self) {
        let mut live = self.seq.clone();
        live.abandon();
        self.cuts.push(Cut {
            records: self.records.len(),
            outcomes: self.outcomes.len(),
            live,
        });
    }

    /// The iteration's row is written.
    fn outcome(&mut self, iteration: u64, kept: bool) {
        self.outcomes.push((iteration, kept));
        self.cuts.push(Cut {
            records: self.records.len(),
            outcomes: self.outcomes.len(),
            live: self.seq.clone(),
        });
    }

    /// One iteration; returns the new retained level.
    fn iteration(&mut self, i: u64, level: f64, sign: f64) -> f64 {
        self.seq.begin();
        if self.rng.random() < 0.05 {
            self.seq.abandon(); // the agent failed: nothing measured
            self.outcome(i, false);
            return level;
        }
        let mut commit = format!("c{i}");
        let mut cand = level - if self.rng.random() < 0.25 { 2.0 } else { 0.0 };
        loop {
            match self.seq.next() {
                Next::Run(role) => {
                    if self.rng.random() < 0.01 {
                        self.seq.abandon(); // verify crashed
                        self.outcome(i, false);
                        return level;
                    }
                    let at = if role == Role::Candidate { cand } else { level };
                    let v = sign * self.value(at);
                    self.observe(i, &commit, role, v);
                }
                Next::Guard if self.rng.random() < 0.25 => {
                    if self.rng.random() < 0.5 {
                        self.seq.abandon();
                        self.outcome(i, false);
                        return level;
                    }
                    commit.push('r'); // a rework: a new commit
                    cand = level - if self.rng.random() < 0.5 { 2.0 } else { 0.0 };
                    self.seq.begin();
                    self.cut_killed();
                }
                Next::Guard => {
                    self.seq.guard_passed();
                    self.cut_killed();
                }
                Next::Keep => {
                    self.outcome(i, true);
                    return cand;
                }
                Next::Discard(_) => {
                    self.outcome(i, false);
                    return level;
                }
                Next::Idle => panic!("idle inside an iteration"),
            }
        }
    }
}

fn session(direction: Direction, effort: Effort, det: bool, seed: u64) -> (Live, Params) {
    let params = Params::preset(effort);
    let mut live = Live {
        seq: Seq::new(direction, params.clone()),
        rng: Rng::new(seed),
        records: Vec::new(),
        outcomes: Vec::new(),
        cuts: Vec::new(),
        run: 0,
        det,
    };
    let sign = if direction == Direction::Higher {
        -1.0
    } else {
        1.0
    };
    let start = if det { 50.0 } else { 100.0 };
    while live.seq.next() == Next::Run(Role::Baseline) {
        let v = sign * live.value(start);
        live.observe(0, "base", Role::Baseline, v);
    }
    let mut level = start;
    for i in 1..=60 {
        level = live.iteration(i, level, sign);
    }
    (live, params)
}

#[test]
fn replaying_any_prefix_rebuilds_the_live_machine() {
    let mut checked = 0;
    let mut decisions = std::collections::BTreeSet::new();
    for (k, (direction, effort, det)) in [
        (Direction::Lower, Effort::Default, false),
        (Direction::Higher, Effort::Thorough, false),
        (Direction::Lower, Effort::Thorough, true),
        (Direction::Higher, Effort::Default, true),
    ]
    .into_iter()
    .enumerate()
    {
        let (mut live, params) = session(direction, effort, det, 40 + k as u64);
        assert!(live.outcomes.iter().any(|o| o.1), "some keeps");
        for cut in &mut live.cuts {
            let mut back = replay(
                direction,
                params.clone(),
                &live.records[..cut.records],
                &live.outcomes[..cut.outcomes],
            );
            assert_eq!(
                back, cut.live,
                "cut after {} runs, {} rows ({direction}, {effort:?}, det {det})",
                cut.records, cut.outcomes
            );
            let next = back.next();
            assert_eq!(next, cut.live.next());
            decisions.insert(format!("{next:?}"));
            assert_eq!(back.noise(), cut.live.noise());
            checked += 1;
        }
        // the resumed machine goes on exactly like the live one
        let mut a = replay(direction, params.clone(), &live.records, &live.outcomes);
        let b = &mut live.seq;
        for _ in 0..3 {
            a.begin();
            b.begin();
            for v in [1.0, 2.0, 1.5, 0.5, 3.0, 2.5] {
                assert_eq!(a.next(), b.next());
                let role = match a.next() {
                    Next::Run(r) => r,
                    _ => break,
                };
                assert_eq!(a.observe(role, v * 1e-3), b.observe(role, v * 1e-3));
            }
            a.abandon();
            b.abandon();
            assert_eq!(&a, b);
        }
    }
    assert!(checked > 1000, "{checked} cuts");
    assert!(decisions.len() >= 3, "{decisions:?}");
}

#[test]
fn replay_uses_the_records_not_their_use_column() {
    let (live, params) = session(Direction::Lower, Effort::Default, false, 9);
    let mut records = live.records.clone();
    for r in &mut records {
        r.used = Use::Stale;
    }
    let back = replay(Direction::Lower, params, &records, &live.outcomes);
    assert_eq!(back, live.seq);
}

#[test]
fn a_killed_keep_is_not_a_keep_after_resume() {
    // The rebase runs are in runs.tsv but the keep row is not: the retained is unchanged.
    let (live, params) = session(Direction::Lower, Effort::Default, false, 11);
    let (i, _) = *live.outcomes.iter().find(|o| o.1).unwrap();
    let pos = live.outcomes.iter().position(|o| o.0 == i).unwrap();
    let upto = live.records.iter().rposition(|r| r.iteration <= i).unwrap() + 1;
    let killed = replay(
        Direction::Lower,
        params.clone(),
        &live.records[..upto],
        &live.outcomes[..pos],
    );
    let mut kept = replay(
        Direction::Lower,
        params.clone(),
        &live.records[..upto],
        &live.outcomes[..=pos],
    );
    let before = replay(
        Direction::Lower,
        params,
        &live.records[..upto],
        &[&live.outcomes[..pos], &[(i, false)]].concat(),
    );
    assert_eq!(kept.next(), Next::Keep);
    assert_ne!(killed.reference_mean(), kept.reference_mean());
    assert_eq!(killed.reference_mean(), before.reference_mean());
}
