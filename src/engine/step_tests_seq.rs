//! The step machine with SEQ as its judge (GUIDE §7a) and with a holdout (§7b): which commit it
//! asks to measure, when the guard runs, the verdict's row, the runs it hands over, and what a
//! holdout regression or an interruption leaves in the rule's reference.

use super::*;
use crate::engine::holdout;
use crate::engine::seq::{Effort, Next, Params, Role, Seq, Use};

/// A machine whose baseline measured `values`.
fn seq_after(direction: Direction, values: &[f64]) -> Seq {
    let mut s = Seq::new(direction, Params::preset(Effort::Default));
    for v in values {
        assert_eq!(s.next(), Next::Run(Role::Baseline));
        s.observe(Role::Baseline, *v);
    }
    assert_eq!(s.next(), Next::Idle, "the baseline is done");
    s
}

fn start_with(seq: Seq, holdout: Option<bool>) -> Iteration<'static, u32> {
    let mut it = Iteration::new(
        &Loop,
        Direction::Lower,
        Directive::Continue,
        10.0,
        1,
        true,
        0,
    )
    .with_seq(seq);
    if let Some(reject) = holdout {
        it = it.with_holdout(reject);
    }
    assert_eq!(it.start(), agent(Directive::Continue));
    it
}

/// The agent's turn made trial 7; returns the first measurement asked for.
fn to_trial(it: &mut Iteration<'static, u32>) -> Act {
    assert_eq!(it.observe(done("try it")), Action::Inspect);
    assert_eq!(it.observe(changed()), commit("experiment: try it"));
    it.observe(Observation::Committed(7))
}

/// Answers every measurement (`cand` for the trial, `ret` for the retained commit, each called
/// with the run's index) and the guard (`guard`) until the machine asks for something else.
fn answer(
    it: &mut Iteration<'static, u32>,
    mut act: Act,
    cand: impl Fn(usize) -> f64,
    ret: impl Fn(usize) -> f64,
    guard: Guarded,
) -> (Act, Vec<Act>) {
    let mut asked = Vec::new();
    let (mut c, mut r) = (0, 0);
    loop {
        let obs = match &act {
            Action::Measure { .. } => {
                c += 1;
                metric(cand(c))
            }
            Action::MeasureRetained { .. } => {
                r += 1;
                metric(ret(r))
            }
            Action::Guard { .. } => Observation::Guarded(guard.clone()),
            _ => return (act, asked),
        };
        asked.push(act.clone());
        assert!(asked.len() < 200, "SEQ decides within its cap");
        act = it.observe(obs);
    }
}

#[test]
fn a_deterministic_metric_keeps_after_one_identical_rerun_without_a_suffix() {
    let mut it = start_with(seq_after(Direction::Lower, &[10.0, 10.0]), None);
    let first = to_trial(&mut it);
    assert_eq!(first, measure("verify"));
    let (act, asked) = answer(&mut it, first, |_| 8.0, |_| 10.0, Guarded::Pass);
    assert_eq!(
        asked,
        [measure("verify"), measure("verify-2"), guard("guard")],
        "one run, one rerun, then the guard"
    );
    assert_eq!(act, Action::Keep { trial: 7 });
    let row = match it.observe(Observation::Restored) {
        Action::Record(d) => d,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (row.status, row.metric, row.guard, row.description.as_str()),
        (Status::Keep, Some(8.0), Guard::Pass, "try it")
    );
    let runs = it.take_runs();
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter()
            .all(|r| r.role == Role::Candidate && r.used == Use::Ok)
    );
}

#[test]
fn a_noisy_real_gain_is_kept_after_fresh_retained_runs_with_the_evidence() {
    let base = [10.0, 10.3, 9.8, 10.1, 9.9];
    let mut it = start_with(seq_after(Direction::Lower, &base), None);
    let first = to_trial(&mut it);
    let wobble = |k: usize| [0.1, -0.15, 0.05, -0.05, 0.12, -0.1][k % 6];
    let (act, asked) = answer(
        &mut it,
        first,
        |k| 7.0 + wobble(k),
        |k| 10.0 + wobble(k + 3),
        Guarded::Pass,
    );
    assert_eq!(act, Action::Keep { trial: 7 });
    let retained = asked
        .iter()
        .filter(|a| matches!(a, Action::MeasureRetained { .. }))
        .count();
    assert!(
        retained >= 2,
        "fresh retained runs before a keep: {asked:?}"
    );
    let guard_at = asked.iter().position(|a| matches!(a, Action::Guard { .. }));
    let guard_at = guard_at.expect("the guard ran");
    assert!(
        asked[guard_at + 1..]
            .iter()
            .all(|a| matches!(a, Action::Measure { .. })),
        "after the guard only the trial's rebase runs: {asked:?}"
    );
    let Action::Record(row) = it.observe(Observation::Restored) else {
        panic!("a keep records its row");
    };
    assert!(
        row.description.starts_with("try it [seq n="),
        "{}",
        row.description
    );
    assert!(row.description.contains("R llr="), "{}", row.description);
    let m = row.metric.unwrap();
    assert!((6.8..7.2).contains(&m), "the mean SEQ used: {m}");
    assert_eq!(it.observe(Observation::Recorded), Action::End(None));
    let Judge::Seq(seq) = it.take_judge() else {
        panic!("the judge comes back")
    };
    let now = seq.reference_mean().unwrap();
    assert!(
        (6.8..7.2).contains(&now),
        "the trial is the new reference: {now}"
    );
}

#[test]
fn no_effect_is_discarded_with_the_evidence_and_the_reference_stays() {
    let base = [10.0, 10.3, 9.8, 10.1, 9.9];
    let mut it = start_with(seq_after(Direction::Lower, &base), None);
    let first = to_trial(&mut it);
    let wobble = |k: usize| [0.1, -0.15, 0.05, -0.05, 0.12, -0.1][k % 6];
    let (act, asked) = answer(
        &mut it,
        first,
        |k| 10.0 + wobble(k),
        |k| 10.0 + wobble(k + 2),
        Guarded::Pass,
    );
    assert!(!asked.iter().any(|a| matches!(a, Action::Guard { .. })));
    assert_eq!(
        act,
        Action::RollBack {
            trial: Some(7),
            unfinished: false
        }
    );
    let Action::Record(row) = it.observe(kept_as(7)) else {
        panic!("a discard records its row");
    };
    assert_eq!(row.status, Status::Discard);
    assert!(
        row.description.starts_with("try it [seq n="),
        "{}",
        row.description
    );
    it.observe(Observation::Recorded);
    let Judge::Seq(seq) = it.take_judge() else {
        panic!()
    };
    assert!((9.8..10.3).contains(&seq.reference_mean().unwrap()));
}

#[test]
fn a_holdout_regression_tags_the_keep_or_with_reject_discards_and_takes_it_back() {
    let regressed = holdout::Verdict::Regressed {
        before: 0.9,
        after: 0.8,
    };
    for reject in [false, true] {
        let mut it = start_with(seq_after(Direction::Lower, &[10.0, 10.0]), Some(reject));
        let first = to_trial(&mut it);
        let (act, _) = answer(&mut it, first, |_| 8.0, |_| 10.0, Guarded::Pass);
        assert_eq!(
            act,
            Action::Holdout {
                stem: "holdout".into()
            }
        );
        let next = it.observe(Observation::HeldOut(regressed.clone()));
        let row = if reject {
            assert_eq!(
                next,
                Action::RollBack {
                    trial: Some(7),
                    unfinished: false
                }
            );
            match it.observe(kept_as(7)) {
                Action::Record(d) => d,
                other => panic!("{other:?}"),
            }
        } else {
            assert_eq!(next, Action::Keep { trial: 7 });
            match it.observe(Observation::Restored) {
                Action::Record(d) => d,
                other => panic!("{other:?}"),
            }
        };
        let want = if reject {
            Status::Discard
        } else {
            Status::Keep
        };
        assert_eq!(row.status, want);
        assert_eq!(row.description, "[HOLDOUT] (holdout 0.9 -> 0.8) try it");
        it.observe(Observation::Recorded);
        let Judge::Seq(seq) = it.take_judge() else {
            panic!()
        };
        let reference = if reject { 10.0 } else { 8.0 };
        assert_eq!(seq.reference_mean(), Some(reference), "reject: {reject}");
    }
}

#[test]
fn a_guard_failure_reworks_and_the_new_commit_is_measured_afresh() {
    let mut it = start_with(seq_after(Direction::Lower, &[10.0, 10.0]), None);
    let first = to_trial(&mut it);
    let fail = Guarded::Fail {
        reason: "exit status 1".into(),
        tail: "E  boom".into(),
        line: "E  boom".into(),
    };
    let (act, _) = answer(&mut it, first, |_| 8.0, |_| 10.0, fail);
    assert_eq!(act, rework_turn(1, "E  boom", 7));
    assert_eq!(it.observe(done("fixed")), Action::Inspect);
    it.observe(changed());
    let again = it.observe(Observation::Committed(8));
    assert_eq!(again, measure("rework-1-verify"));
    let (act, _) = answer(&mut it, again, |_| 8.0, |_| 10.0, Guarded::Pass);
    assert_eq!(act, Action::Keep { trial: 8 });
}

#[test]
fn an_interruption_while_measuring_the_retained_commit_rolls_back_unfinished() {
    let base = [10.0, 10.3, 9.8, 10.1, 9.9];
    let mut it = start_with(seq_after(Direction::Lower, &base), None);
    let mut act = to_trial(&mut it);
    while !matches!(act, Action::MeasureRetained { .. }) {
        act = it.observe(metric(9.0));
        assert!(
            matches!(act, Action::Measure { .. } | Action::MeasureRetained { .. }),
            "{act:?}"
        );
    }
    assert_eq!(it.phase(), Phase::Verify);
    let act = it.observe(Observation::Measured(Measured::Interrupted(2)));
    assert_eq!(
        act,
        Action::RollBack {
            trial: Some(7),
            unfinished: true
        }
    );
}
