//! The step machine under a findings policy (debug, security): a turn that changes nothing is
//! measured all the same, and a keep (a new finding) rolls its trial back instead of keeping it.

use super::*;
use crate::engine::policy::Debug;

#[test]
fn a_findings_turn_that_changes_nothing_is_measured_and_a_new_finding_rolls_back() {
    let mut s = setup().policy(&Debug).higher().no_guard().start();
    s.on(done("looked"), Action::Inspect)
        .on(nothing(), measure("verify"))
        .on(
            metric(11.0),
            Action::RollBack {
                trial: None,
                unfinished: false,
            },
        )
        .records(
            Observation::RolledBack(None),
            Draft {
                status: Status::Keep,
                commit: None,
                metric: Some(11.0),
                guard: Guard::NotRun,
                description: "looked".into(),
            },
            None,
        );
}

#[test]
fn a_new_finding_with_instrumentation_keeps_its_trial_only_under_a_ref() {
    let mut s = setup().policy(&Debug).higher().no_guard().start();
    s.trial("probe the loop", 7)
        .on(
            metric(11.0),
            Action::RollBack {
                trial: Some(7),
                unfinished: false,
            },
        )
        .records(
            Observation::RolledBack(Some(Held {
                commit: 7,
                name: TRIAL_REF.into(),
            })),
            Draft {
                status: Status::Keep,
                commit: Some(7),
                metric: Some(11.0),
                guard: Guard::NotRun,
                description: "probe the loop".into(),
            },
            None,
        );
    assert_eq!(s.count(|a| matches!(a, Action::Keep { .. })), 0);
}
