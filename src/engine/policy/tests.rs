//! Unit tests of the mode policies and the decisions between iterations (GUIDE §7): a [`Run`]
//! appends rows to a replayed log and takes the between-iterations steps the driver takes.

use super::*;
use crate::engine::reducer::Directive;
use crate::engine::row::{Guard, Row};
use crate::engine::stop;

const DEFAULTS: Thresholds = Thresholds {
    refine_after: 3,
    pivot_after: 5,
    max_pivots: 3,
};

const EXHAUSTED: &str = "3 pivots without a keep; a human is needed (change the goal or scope with --fresh, or raise --max-pivots)";

fn rules(stop_condition: Option<&str>, iterations: Option<u64>) -> Rules {
    Rules {
        metric: "failures".into(),
        stop_condition: stop_condition.map(|text| {
            let cond = stop::parse(text, &["failures"], Direction::Lower).expect(text);
            (text.to_string(), cond)
        }),
        thresholds: DEFAULTS,
        iterations,
    }
}

fn row(iteration: u64, status: Status, metric: f64, description: &str) -> Row {
    Row {
        iteration,
        commit: if status == Status::Keep {
            "c0ffee1"
        } else {
            "-"
        }
        .into(),
        metric,
        delta: 0.0,
        guard: Guard::NotRun,
        status,
        description: description.into(),
    }
}

/// A run's log, replayed as the driver keeps it.
struct Run {
    rules: Rules,
    replay: Replay,
    /// The statuses of the rows after the baseline, in order.
    written: Vec<Status>,
}

impl Run {
    fn new(baseline: f64, rules: Rules) -> Run {
        let replay = Replay::start(
            &row(0, Status::Baseline, baseline, "baseline"),
            Direction::Lower,
        )
        .expect("a baseline row");
        Run {
            rules,
            replay,
            written: Vec::new(),
        }
    }

    /// Appends the next row.
    fn append(&mut self, status: Status, metric: f64, description: &str) -> &mut Self {
        let n = self.replay.tally.iteration + 1;
        self.replay
            .apply(&row(n, status, metric, description))
            .expect("rows in order");
        self.written.push(status);
        self
    }

    /// Appends an experiment row `times` times (the retained metric for a failure).
    fn experiments(&mut self, status: Status, times: usize) -> &mut Self {
        for _ in 0..times {
            let v = match status {
                Status::Keep => self.replay.tally.current_metric - 1.0,
                _ => self.replay.tally.current_metric,
            };
            self.append(status, v, "an experiment");
        }
        self
    }

    /// Appends the bookkeeping rows the ladder asks for, as the driver does after a row; returns
    /// the stop when a pivot exhausted the pivots.
    fn escalate(&mut self) -> Option<Stop> {
        while let Some(e) = next_escalation(&self.rules, &self.replay) {
            let retained = self.replay.tally.current_metric;
            assert_eq!(e.drop_session, e.status == Status::Pivot, "{e:?}");
            self.append(e.status, retained, &e.description);
            if e.status == Status::Pivot
                && let Some(stop) = after_pivot(&Loop, &self.rules, &self.replay)
            {
                return Some(stop);
            }
        }
        None
    }

    /// Between iterations, as the driver: stop check, escalation rows, stop check.
    fn between(&mut self) -> Option<Stop> {
        stop_check(&Loop, &self.rules, &self.replay)
            .or_else(|| self.escalate())
            .or_else(|| stop_check(&Loop, &self.rules, &self.replay))
    }
}

// Modes.

#[test]
fn guide_7_fix_mode_stops_when_the_retained_metric_is_0() {
    assert_eq!(
        Fix.goal_reached("failures", 0.0),
        Some("failures reached 0".to_string())
    );
    assert_eq!(Fix.goal_reached("failures", 1.0), None);
    let run = Run::new(0.0, rules(None, None));
    assert_eq!(
        stop_check(&Fix, &run.rules, &run.replay),
        Some(Stop::Goal("failures reached 0".into()))
    );
    assert_eq!(stop_check(&Loop, &run.rules, &run.replay), None);
}

#[test]
fn guide_7_loop_mode_has_no_goal_of_its_own() {
    assert_eq!(Loop.goal_reached("failures", 0.0), None);
    assert_eq!(Loop.goal_reached("failures", -1.0), None);
}

#[test]
fn guide_3_modes_map_to_their_policies() {
    assert!(for_mode(Mode::Fix).goal_reached("m", 0.0).is_some());
    assert!(for_mode(Mode::Loop).goal_reached("m", 0.0).is_none());
    assert_eq!(for_mode(Mode::Fix).template(), Fix.template());
    assert_eq!(for_mode(Mode::Loop).template(), Loop.template());
    assert_ne!(Fix.template(), Loop.template());
}

#[test]
fn guide_7_keep_rule_every_mode_keeps_strict_improvements_only() {
    for p in [&Loop as &dyn Policy, &Fix] {
        assert!(p.improves(Direction::Lower, 9.0, 10.0));
        assert!(!p.improves(Direction::Lower, 10.0, 10.0));
        assert!(p.improves(Direction::Higher, 11.0, 10.0));
        assert!(!p.improves(Direction::Higher, 10.0, 10.0));
    }
}

// Stop checks, in GUIDE §7's order.

/// A run whose retained metric is 0 with its pivots exhausted at iteration 3 (every stop
/// applies at once).
fn everything_applies(stop_condition: Option<&str>, iterations: Option<u64>) -> Run {
    let mut run = Run::new(0.0, rules(stop_condition, iterations));
    run.experiments(Status::Pivot, 3);
    run
}

#[test]
fn guide_7_stop_check_1_the_stop_condition_comes_first() {
    let run = everything_applies(Some("failures reaches zero"), Some(3));
    assert_eq!(
        stop_check(&Fix, &run.rules, &run.replay),
        Some(Stop::Goal(
            "stop condition `failures reaches zero` met (failures = 0)".into()
        ))
    );
}

#[test]
fn guide_7_stop_check_1_then_the_mode_goal() {
    let run = everything_applies(Some("below -1"), Some(3));
    assert_eq!(
        stop_check(&Fix, &run.rules, &run.replay),
        Some(Stop::Goal("failures reached 0".into()))
    );
}

#[test]
fn guide_7_stop_check_2_pivots_exhausted_before_the_cap() {
    let run = everything_applies(None, Some(3));
    assert_eq!(
        stop_check(&Loop, &run.rules, &run.replay),
        Some(Stop::NeedsHuman(EXHAUSTED.into()))
    );
}

#[test]
fn guide_7_stop_check_3_the_cap_counts_experiments_after_the_baseline() {
    let mut run = Run::new(10.0, rules(None, Some(2)));
    run.experiments(Status::Keep, 1);
    assert_eq!(stop_check(&Loop, &run.rules, &run.replay), None);
    run.experiments(Status::Discard, 1);
    assert_eq!(
        stop_check(&Loop, &run.rules, &run.replay),
        Some(Stop::Cap(2))
    );
}

#[test]
fn guide_7_the_stop_condition_is_met_by_the_retained_metric_not_the_best() {
    let mut run = Run::new(5.0, rules(Some("failures reaches zero"), None));
    run.append(Status::Keep, 0.0, "fixed all")
        .append(Status::Drift, 2.0, "re-measured on resume");
    assert_eq!(run.replay.tally.best_metric, 0.0);
    assert_eq!(stop_check(&Loop, &run.rules, &run.replay), None);
    run.append(Status::Keep, 0.0, "fixed them again");
    assert!(matches!(
        stop_check(&Loop, &run.rules, &run.replay),
        Some(Stop::Goal(_))
    ));
}

// Escalation.

#[test]
fn guide_7_with_the_defaults_a_run_that_never_improves_writes_the_ladder_and_needs_a_human() {
    use Status::*;
    let mut run = Run::new(10.0, rules(None, None));
    let mut directives = Vec::new();
    let stop = loop {
        assert_eq!(stop_check(&Loop, &run.rules, &run.replay), None);
        if let Some(stop) = run.escalate() {
            break stop;
        }
        assert_eq!(stop_check(&Loop, &run.rules, &run.replay), None);
        directives.push(run.replay.next_directive());
        run.experiments(Discard, 1);
    };
    assert_eq!(
        run.written,
        [
            Discard, Discard, Discard, Refine, Discard, Discard, Pivot, //
            Discard, Discard, Discard, Refine, Discard, Discard, Pivot, Search, //
            Discard, Discard, Discard, Refine, Discard, Discard, Pivot,
        ]
    );
    assert_eq!(stop, Stop::NeedsHuman(EXHAUSTED.into()));
    // 15 failures and 3 refine rows (the reference's current rules count refine rows).
    assert_eq!(run.replay.tally.consecutive_discards, 18);
    // Only the turn right after a refine refines; the one after a pivot (and its search) pivots.
    use Directive::{Continue as C, Pivot as P, Refine as R};
    assert_eq!(directives, [C, C, C, R, C, P, C, C, R, C, P, C, C, R, C]);
}

#[test]
fn guide_7_the_ladder_rows_say_what_they_count() {
    let mut run = Run::new(10.0, rules(None, None));
    run.experiments(Status::Discard, 3);
    let refine = next_escalation(&run.rules, &run.replay).expect("a refine row");
    assert_eq!(
        refine,
        Escalate {
            status: Status::Refine,
            description: "[REFINE] 3 failed experiments in a row; next turn refines the strategy"
                .into(),
            drop_session: false,
        }
    );
    run.escalate();
    // Crashes and no-ops are failed experiments too.
    run.experiments(Status::Crash, 1)
        .experiments(Status::NoOp, 1);
    let pivot = next_escalation(&run.rules, &run.replay).expect("a pivot row");
    assert_eq!(
        pivot,
        Escalate {
            status: Status::Pivot,
            description: "[PIVOT] 5 failed experiments since the last keep or pivot; abandoning the strategy (pivot 1)".into(),
            drop_session: true,
        }
    );
    run.escalate();
    run.experiments(Status::Discard, 5);
    run.escalate();
    assert_eq!(run.written.last(), Some(&Status::Search));
    let search = run.written.len() - 1;
    assert_eq!(run.written[search - 1], Status::Pivot);
}

#[test]
fn guide_7_the_search_row_follows_the_second_pivot_only() {
    let mut run = Run::new(10.0, rules(None, None));
    run.experiments(Status::Discard, 5);
    assert_eq!(run.escalate(), None);
    assert!(!run.written.contains(&Status::Search));
    run.experiments(Status::Discard, 5);
    assert_eq!(run.escalate(), None);
    assert_eq!(run.written.last(), Some(&Status::Search));
    let search = next_escalation(&run.rules, &run.replay);
    assert_eq!(search, None, "one search row");
}

#[test]
fn guide_7_after_a_pivot_the_run_stops_only_at_max_pivots() {
    let mut run = Run::new(10.0, rules(None, None));
    for pivots in 1..=3 {
        run.append(Status::Pivot, 10.0, "pivot");
        let stop = after_pivot(&Loop, &run.rules, &run.replay);
        assert_eq!(stop.is_some(), pivots == 3, "after pivot {pivots}");
    }
    // `--max-pivots 0` never stops.
    run.rules.thresholds.max_pivots = 0;
    assert_eq!(after_pivot(&Loop, &run.rules, &run.replay), None);
}

#[test]
fn guide_7_a_keep_resets_k_and_the_pivot_count() {
    let mut run = Run::new(10.0, rules(None, None));
    run.experiments(Status::Discard, 5);
    run.escalate();
    run.experiments(Status::Discard, 4);
    assert_eq!(run.escalate(), None, "k = 4 after a pivot and a refine");
    run.experiments(Status::Keep, 1);
    assert_eq!(next_escalation(&run.rules, &run.replay), None);
    assert_eq!(run.replay.tally.pivot_count, 0);
    run.experiments(Status::Discard, 2);
    assert_eq!(next_escalation(&run.rules, &run.replay), None);
    run.experiments(Status::Discard, 1);
    assert_eq!(
        next_escalation(&run.rules, &run.replay).map(|e| e.status),
        Some(Status::Refine)
    );
}

#[test]
fn guide_7_a_capped_run_writes_no_escalation_rows_and_catches_up_on_resume() {
    let mut run = Run::new(10.0, rules(None, Some(3)));
    run.experiments(Status::Discard, 3);
    assert_eq!(run.between(), Some(Stop::Cap(3)));
    assert_eq!(next_escalation(&run.rules, &run.replay), None);
    assert_eq!(run.written.len(), 3, "never more than N rows");
    // Resumed with a higher cap: the pending refine row is written first.
    run.rules.iterations = Some(10);
    assert_eq!(run.between(), None);
    assert_eq!(run.written.last(), Some(&Status::Refine));
}

#[test]
fn issue_13_escalation_rows_do_not_consume_the_cap() {
    // `--iterations 4`: three discards, a refine row, then the fourth experiment ends the run.
    let mut run = Run::new(10.0, rules(None, Some(4)));
    run.experiments(Status::Discard, 3);
    assert_eq!(run.between(), None);
    assert_eq!(run.written.last(), Some(&Status::Refine));
    run.experiments(Status::Discard, 1);
    assert_eq!(run.between(), Some(Stop::Cap(4)));
    assert_eq!(run.written.len(), 5, "4 experiments and a refine row");
    assert_eq!(run.replay.ladder.experiments, 4);
    // Drift and blocked rows are no experiments either.
    let mut run = Run::new(10.0, rules(None, Some(1)));
    run.append(Status::Drift, 9.0, "re-measured")
        .append(Status::Blocked, 9.0, "HEAD moved");
    assert_eq!(stop_check(&Loop, &run.rules, &run.replay), None);
}

#[test]
fn issue_13_an_interruption_consumes_no_iteration_and_does_not_climb_the_ladder() {
    let mut run = Run::new(10.0, rules(None, Some(3)));
    run.experiments(Status::Discard, 2);
    run.append(
        Status::Crash,
        10.0,
        "[INTERRUPTED] try — stopped by SIGINT during verify; rolled back",
    );
    // Not the third failure: no refine row, and room for one more experiment.
    assert_eq!(run.replay.ladder.since_reset, 2);
    assert_eq!(run.between(), None);
    assert_eq!(run.written.last(), Some(&Status::Crash));
    // An agent's own crash is an experiment and a failure.
    run.append(Status::Crash, 10.0, "agent exited with status 1");
    assert_eq!(run.between(), Some(Stop::Cap(3)));
}

#[test]
fn guide_7_with_max_pivots_2_the_second_pivot_stops_before_any_search_row() {
    let mut run = Run::new(10.0, rules(None, None));
    run.rules.thresholds.max_pivots = 2;
    run.experiments(Status::Discard, 5);
    assert_eq!(run.escalate(), None);
    run.experiments(Status::Discard, 5);
    assert_eq!(
        run.escalate(),
        Some(Stop::NeedsHuman(
            "2 pivots without a keep; a human is needed (change the goal or scope with --fresh, or raise --max-pivots)".into()
        ))
    );
    assert_eq!(run.written.last(), Some(&Status::Pivot));
    assert!(!run.written.contains(&Status::Search));
}

#[test]
fn guide_5_a_hard_blocker_leaves_a_blocked_row_and_other_stops_none() {
    assert_eq!(
        closing_row(&Stop::Blocked("HEAD moved".into())),
        Some((Status::Blocked, "HEAD moved".to_string()))
    );
    for stop in [
        Stop::Goal("met".into()),
        Stop::Cap(3),
        Stop::NeedsHuman("pivots".into()),
        Stop::Interrupted(2),
    ] {
        assert_eq!(closing_row(&stop), None, "{stop:?}");
    }
}
