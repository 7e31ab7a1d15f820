//! How an iteration ends other than by a decision: the agent fails (GUIDE §13), the run is
//! interrupted (§12), the quota is spent (§13), the branch moves or verify keeps failing (§5).

use super::*;

const OUT: &str = "test a ... FAILED\n";

fn interrupted(sig: i32) -> Obs {
    Observation::Turn(TurnEnd::Interrupted(sig))
}

/// The `[INTERRUPTED]` crash row whose commit is the held snapshot `c`.
fn interruption(c: u32, description: &str) -> Draft<u32> {
    row(
        Status::Crash,
        Some(c),
        None,
        Guard::NotRun,
        &format!("{description}; its work is kept at {TRIAL_REF}"),
    )
}

// §13: the agent fails or times out.

#[test]
fn guide_13_an_agent_failure_is_a_crash_keeping_the_unfinished_work() {
    let failed = Observation::Turn(TurnEnd::Failed {
        reason: "exit status 1: error: cannot parse\n".into(),
        timed_out: false,
        description: "split the parser".into(),
    });
    setup().start().on(failed, roll_back(None, true)).records(
        kept_as(5),
        interruption(5, "split the parser — exit status 1: error: cannot parse"),
        None,
    );
}

#[test]
fn guide_6_timeout_tag_when_the_agent_runs_out_of_time() {
    let timed_out = Observation::Turn(TurnEnd::Failed {
        reason: "no output for 10m".into(),
        timed_out: true,
        description: String::new(),
    });
    // Nothing to keep: no commit, and the row does not say where.
    setup()
        .start()
        .on(timed_out, roll_back(None, true))
        .records(
            Observation::RolledBack(None),
            row(
                Status::Crash,
                None,
                None,
                Guard::NotRun,
                "[TIMEOUT] no output for 10m",
            ),
            None,
        );
}

// §12: an interruption at every phase rolls back keeping the unfinished work, writes an
// `[INTERRUPTED]` crash row whose commit is the held snapshot, and stops the run.

#[test]
fn guide_12_interrupted_during_the_agent_step() {
    setup()
        .start()
        .on(interrupted(2), roll_back(None, true))
        .at(Phase::Agent, None)
        .records(
            kept_as(7),
            interruption(
                7,
                "[INTERRUPTED] stopped by SIGINT during the agent step; rolled back",
            ),
            Some(Stop::Interrupted(2)),
        );
}

#[test]
fn guide_12_interrupted_during_verify() {
    setup()
        .start()
        .trial("inline the hot loop", 1)
        .on(
            Observation::Measured(Measured::Interrupted(15)),
            roll_back(Some(1), true),
        )
        .records(
            kept_as(7),
            interruption(
                7,
                "[INTERRUPTED] inline the hot loop — stopped by SIGTERM during verify; rolled back",
            ),
            Some(Stop::Interrupted(15)),
        );
}

#[test]
fn guide_12_interrupted_during_the_guard() {
    setup()
        .start()
        .improved("inline the hot loop", 1, 8.0)
        .on(
            Observation::Guarded(Guarded::Interrupted(2)),
            roll_back(Some(1), true),
        )
        .records(
            kept_as(7),
            interruption(
                7,
                "[INTERRUPTED] inline the hot loop — stopped by SIGINT during the guard; rolled back",
            ),
            Some(Stop::Interrupted(2)),
        );
}

#[test]
fn guide_12_interrupted_during_a_rework_turn() {
    setup()
        .start()
        .improved("inline the hot loop", 1, 8.0)
        .on(fails(OUT, "test a"), rework_turn(1, OUT, 1))
        .on(interrupted(15), roll_back(Some(1), true))
        .records(
            kept_as(7),
            interruption(
                7,
                "[INTERRUPTED] inline the hot loop — stopped by SIGTERM during a rework turn; rolled back",
            ),
            Some(Stop::Interrupted(15)),
        );
}

#[test]
fn guide_12_interrupted_during_a_rework_verify_holds_the_rework_commit() {
    setup()
        .start()
        .improved("inline the hot loop", 1, 8.0)
        .on(fails(OUT, "test a"), rework_turn(1, OUT, 1))
        .rework_committed(1, 2)
        .on(
            Observation::Measured(Measured::Interrupted(2)),
            roll_back(Some(2), true),
        )
        .records(
            kept_as(7),
            interruption(
                7,
                "[INTERRUPTED] inline the hot loop — stopped by SIGINT during verify; rolled back",
            ),
            Some(Stop::Interrupted(2)),
        );
}

#[test]
fn guide_12_interrupted_with_nothing_to_keep_names_no_commit() {
    setup()
        .start()
        .on(interrupted(1), roll_back(None, true))
        .records(
            Observation::RolledBack(None),
            row(
                Status::Crash,
                None,
                None,
                Guard::NotRun,
                "[INTERRUPTED] stopped by SIGHUP during the agent step; rolled back",
            ),
            Some(Stop::Interrupted(1)),
        );
}

// §13: the quota is spent; no row, the run stops for a human.

const QUOTA: &str = "usage limit reached and --max-quota-wait 1h is spent";

#[test]
fn guide_13_quota_spent_in_the_agent_step_rolls_back_and_needs_a_human() {
    let mut s = setup().start();
    s.on(
        Observation::Turn(TurnEnd::QuotaSpent(QUOTA.into())),
        roll_back(None, false),
    )
    .on(
        Observation::RolledBack(None),
        Action::End(Some(Stop::NeedsHuman(QUOTA.into()))),
    );
    assert!(s.it.is_over());
    assert_eq!(s.count(|a| matches!(a, Action::Record(_))), 0);
}

#[test]
fn guide_13_quota_spent_in_a_rework_turn_rolls_back_the_trial_and_needs_a_human() {
    let mut s = setup().start();
    s.improved("inline the hot loop", 1, 8.0)
        .on(fails(OUT, "test a"), rework_turn(1, OUT, 1))
        .on(
            Observation::Turn(TurnEnd::QuotaSpent(QUOTA.into())),
            roll_back(Some(1), false),
        )
        .on(
            kept_as(1),
            Action::End(Some(Stop::NeedsHuman(QUOTA.into()))),
        );
    assert_eq!(s.count(|a| matches!(a, Action::Record(_))), 0);
}

// §5: hard blockers.

const MOVED: &str = "branch main moved from abc1234 to def5678";

#[test]
fn guide_5_a_moved_branch_is_a_hard_blocker_that_touches_nothing() {
    let moved = || Observation::Turn(TurnEnd::Moved(MOVED.into()));
    let blocked = || Action::End(Some(Stop::Blocked(MOVED.into())));
    let mut first = setup().start();
    first.on(moved(), blocked());
    let mut rework = setup().start();
    rework
        .improved("inline the hot loop", 1, 8.0)
        .on(fails(OUT, "test a"), rework_turn(1, OUT, 1))
        .on(moved(), blocked());
    for s in [first, rework] {
        assert!(s.it.is_over());
        let touched = s.count(|a| {
            matches!(
                a,
                Action::RollBack { .. } | Action::Undo | Action::Keep { .. } | Action::Record(_)
            )
        });
        assert_eq!(touched, 0, "{:?}", s.log);
    }
}

fn verify_crash() -> Obs {
    no_metric("exit status 1 without a metric", "", false)
}

fn crash_row() -> Draft<u32> {
    row(
        Status::Crash,
        Some(1),
        None,
        Guard::NotRun,
        "inline the hot loop — exit status 1 without a metric",
    )
}

#[test]
fn guide_5_verify_failing_five_times_in_a_row_blocks_after_the_fifth_crash_row() {
    let mut fourth = setup().failures_before(3).start();
    fourth
        .trial("inline the hot loop", 1)
        .on(verify_crash(), roll_back(Some(1), false))
        .records(kept_as(1), crash_row(), None);
    assert_eq!(fourth.it.verify_failures(), 4);

    let mut fifth = setup().failures_before(4).start();
    fifth
        .trial("inline the hot loop", 1)
        .on(verify_crash(), roll_back(Some(1), false))
        .records(
            kept_as(1),
            crash_row(),
            Some(Stop::Blocked(
                "verify failed 5 times in a row (last: exit status 1 without a metric); fix the verify command or the environment".into(),
            )),
        );
    assert_eq!(fifth.it.verify_failures(), 5);
}

#[test]
fn guide_5_a_metric_resets_the_verify_failure_count() {
    // Even a metric that is no improvement.
    let mut s = setup().failures_before(4).start();
    s.trial("inline the hot loop", 1)
        .on(metric(11.0), roll_back(Some(1), false))
        .records(
            kept_as(1),
            row(
                Status::Discard,
                Some(1),
                Some(11.0),
                Guard::NotRun,
                "inline the hot loop",
            ),
            None,
        );
    assert_eq!(s.it.verify_failures(), 0);
}

#[test]
fn guide_5_agent_failures_and_interruptions_do_not_count_as_verify_failures() {
    let mut s = setup().failures_before(4).start();
    s.on(interrupted(2), roll_back(None, true));
    assert_eq!(s.it.verify_failures(), 4);
}
