//! GUIDE §5.6: a failing guard on an improved trial, the rework turns and how they end.

use super::*;

const OUT: &str = "test a ... FAILED\ntest b ... ok\n";
const LINE: &str = "test a ... FAILED";

#[test]
fn guide_5_6_a_guard_failure_gets_a_rework_turn_on_the_trial_with_the_guard_output() {
    let mut s = setup().start();
    s.improved("cache parsed configs", 1, 8.0)
        .on(fails(OUT, LINE), rework_turn(1, OUT, 1))
        .at(Phase::Rework, Some(1));
    assert_eq!(s.it.reworks(), 1);
}

#[test]
fn guide_5_6_a_rework_amends_the_trial_is_measured_again_and_kept_when_the_guard_passes() {
    let mut s = setup().start();
    s.improved("cache parsed configs", 1, 8.0)
        .on(fails(OUT, LINE), rework_turn(1, OUT, 1))
        .rework_committed(1, 2)
        .on(metric(7.5), guard("rework-1-guard"))
        .on(passes(), Action::Keep { trial: 2 })
        .records(
            Observation::Restored,
            row(
                Status::Keep,
                Some(2),
                Some(7.5),
                Guard::Pass,
                "cache parsed configs (guard passed after 1 rework turn)",
            ),
            None,
        );
    assert_eq!(s.it.description(), Some("cache parsed configs"));
}

#[test]
fn issue_13_a_rework_amends_the_trial_and_its_summary_becomes_the_description() {
    // The first turn said `var -> const`; the rework made it `let`: the amended commit and the
    // keep's row say what the commit holds, the last turn's summary.
    let mut s = setup().start();
    s.improved("var -> const", 1, 8.0)
        .on(fails(OUT, LINE), rework_turn(1, OUT, 1))
        .on(done("var -> let"), Action::Inspect)
        .on(changed(), amend(1, "experiment: var -> let"))
        .on(Observation::Committed(2), measure("rework-1-verify"))
        .on(metric(7.5), guard("rework-1-guard"))
        .on(passes(), Action::Keep { trial: 2 })
        .records(
            Observation::Restored,
            row(
                Status::Keep,
                Some(2),
                Some(7.5),
                Guard::Pass,
                "var -> let (guard passed after 1 rework turn)",
            ),
            None,
        );
    assert_eq!(s.it.description(), Some("var -> let"));
    // A rework turn that says nothing keeps the description it amends.
    let mut s = setup().start();
    s.improved("var -> const", 1, 8.0)
        .on(fails(OUT, LINE), rework_turn(1, OUT, 1))
        .on(done(""), Action::Inspect)
        .on(changed(), amend(1, "experiment: var -> const"));
}

#[test]
fn guide_5_6_each_rework_turn_has_its_own_stems_and_sees_the_latest_guard_output() {
    setup()
        .start()
        .improved("cache parsed configs", 1, 8.0)
        .on(fails(OUT, LINE), rework_turn(1, OUT, 1))
        .rework_committed(1, 2)
        .on(metric(8.0), guard("rework-1-guard"))
        .on(
            fails("test c ... FAILED", "test c"),
            rework_turn(2, "test c ... FAILED", 2),
        )
        .at(Phase::Rework, Some(2))
        .rework_committed(2, 3)
        .on(metric(9.0), guard("rework-2-guard"))
        .on(passes(), Action::Keep { trial: 3 })
        .records(
            Observation::Restored,
            row(
                Status::Keep,
                Some(3),
                Some(9.0),
                Guard::Pass,
                "cache parsed configs (guard passed after 2 rework turns)",
            ),
            None,
        );
}

#[test]
fn guide_5_6_still_failing_after_the_rework_turns_is_discard_guard() {
    setup()
        .start()
        .improved("cache parsed configs", 1, 8.0)
        .on(fails(OUT, LINE), rework_turn(1, OUT, 1))
        .rework_committed(1, 2)
        .on(metric(8.0), guard("rework-1-guard"))
        .on(fails(OUT, LINE), rework_turn(2, OUT, 2))
        .rework_committed(2, 3)
        .on(metric(7.0), guard("rework-2-guard"))
        .on(fails(OUT, LINE), roll_back(Some(3), false))
        .records(
            kept_as(3),
            row(
                Status::Discard,
                Some(3),
                Some(7.0),
                Guard::Fail,
                "[GUARD] cache parsed configs (exit status 1 after 2 rework turns: test a ... FAILED)",
            ),
            None,
        );
}

#[test]
fn guide_5_6_with_rework_0_a_guard_failure_is_discarded_at_once() {
    setup()
        .rework(0)
        .start()
        .improved("cache parsed configs", 1, 8.0)
        .on(fails(OUT, LINE), roll_back(Some(1), false))
        .records(
            kept_as(1),
            row(
                Status::Discard,
                Some(1),
                Some(8.0),
                Guard::Fail,
                "[GUARD] cache parsed configs (exit status 1: test a ... FAILED)",
            ),
            None,
        );
    // Without a telling line, the reason alone.
    setup()
        .rework(0)
        .start()
        .improved("cache parsed configs", 1, 8.0)
        .on(fails("", ""), roll_back(Some(1), false))
        .records(
            kept_as(1),
            row(
                Status::Discard,
                Some(1),
                Some(8.0),
                Guard::Fail,
                "[GUARD] cache parsed configs (exit status 1)",
            ),
            None,
        );
}

#[test]
fn guide_5_6_a_rework_that_changes_nothing_is_the_same_guard_failure_without_running_it() {
    let mut s = setup().start();
    s.improved("cache parsed configs", 1, 8.0)
        .on(fails(OUT, LINE), rework_turn(1, OUT, 1))
        .on(done("nothing to do"), Action::Inspect)
        // The guard would fail the same way: the next rework turn, with the same output.
        .on(nothing(), rework_turn(2, OUT, 1))
        .on(done("still nothing"), Action::Inspect)
        .on(nothing(), roll_back(Some(1), false))
        .records(
            kept_as(1),
            row(
                Status::Discard,
                Some(1),
                Some(8.0),
                Guard::Fail,
                "[GUARD] cache parsed configs (exit status 1 after 2 rework turns: test a ... FAILED)",
            ),
            None,
        );
    assert_eq!(
        s.count(|a| matches!(a, Action::Guard { .. })),
        1,
        "{:?}",
        s.log
    );
    assert_eq!(s.count(|a| matches!(a, Action::Commit { .. })), 1);
}

#[test]
fn guide_5_6_one_rework_turn_is_named_in_the_singular() {
    setup()
        .rework(1)
        .start()
        .improved("cache parsed configs", 1, 8.0)
        .on(fails(OUT, LINE), rework_turn(1, OUT, 1))
        .on(done("nothing to do"), Action::Inspect)
        .on(nothing(), roll_back(Some(1), false))
        .records(
            kept_as(1),
            row(
                Status::Discard,
                Some(1),
                Some(8.0),
                Guard::Fail,
                "[GUARD] cache parsed configs (exit status 1 after 1 rework turn: test a ... FAILED)",
            ),
            None,
        );
}

#[test]
fn guide_5_6_a_rework_that_loses_the_improvement_is_discarded() {
    // Ties with the retained metric are not improvements, after a rework too.
    setup()
        .start()
        .improved("cache parsed configs", 1, 8.0)
        .on(fails(OUT, LINE), rework_turn(1, OUT, 1))
        .rework_committed(1, 2)
        .on(metric(10.0), roll_back(Some(2), false))
        .records(
            kept_as(2),
            row(
                Status::Discard,
                Some(2),
                Some(10.0),
                Guard::NotRun,
                "cache parsed configs (rework 1 lost the improvement)",
            ),
            None,
        );
}

#[test]
fn guide_6_guard_tag_when_a_rework_turn_fails() {
    let failed = |timed_out| {
        Observation::Turn(TurnEnd::Failed {
            reason: "exit status 2: gave up".into(),
            timed_out,
            description: "could not fix it".into(),
        })
    };
    for (timed_out, description) in [
        (
            false,
            "[GUARD] cache parsed configs (rework turn 1 failed: exit status 2: gave up)",
        ),
        (
            true,
            "[GUARD] [TIMEOUT] cache parsed configs (rework turn 1 failed: exit status 2: gave up)",
        ),
    ] {
        setup()
            .start()
            .improved("cache parsed configs", 1, 8.0)
            .on(fails(OUT, LINE), rework_turn(1, OUT, 1))
            .on(failed(timed_out), roll_back(Some(1), false))
            .records(
                kept_as(1),
                row(
                    Status::Discard,
                    Some(1),
                    Some(8.0),
                    Guard::Fail,
                    description,
                ),
                None,
            );
    }
}

#[test]
fn guide_5_6_a_rework_outside_the_scope_is_discarded_with_the_trial_commit() {
    for (found_, description) in [
        (
            found(&["Cargo.toml"], &[]),
            "[SCOPE] Cargo.toml — cache parsed configs",
        ),
        (
            found(&["Cargo.toml"], &["tests/guard.sh"]),
            "[PROTECTED] tests/guard.sh — cache parsed configs",
        ),
    ] {
        setup()
            .start()
            .improved("cache parsed configs", 1, 8.0)
            .on(fails(OUT, LINE), rework_turn(1, OUT, 1))
            .on(done("skip the failing test"), Action::Inspect)
            .on(found_, roll_back(Some(1), false))
            .records(
                kept_as(1),
                row(Status::Discard, Some(1), None, Guard::NotRun, description),
                None,
            );
    }
}

#[test]
fn guide_5_5_a_rework_whose_verify_gives_no_metric_is_a_crash_of_the_rework_commit() {
    setup()
        .start()
        .improved("cache parsed configs", 1, 8.0)
        .on(fails(OUT, LINE), rework_turn(1, OUT, 1))
        .rework_committed(1, 2)
        .on(
            no_metric("exit status 1 without a metric", "panic", false),
            roll_back(Some(2), false),
        )
        .records(
            kept_as(2),
            row(
                Status::Crash,
                Some(2),
                None,
                Guard::NotRun,
                "cache parsed configs — exit status 1 without a metric | panic",
            ),
            None,
        );
}
