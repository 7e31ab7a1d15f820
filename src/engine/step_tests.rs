//! Unit tests of the step machine, one scenario per rule of GUIDE §5–§7: a [`Script`] feeds the
//! observations a driver would make and checks every action the machine answers. Reworks are in
//! `step_tests_rework.rs`; interruptions, blockers and agent failures in `step_tests_ends.rs`.

use super::*;
use crate::engine::Direction;
use crate::engine::policy::{Fix, Loop, Stop};
use crate::engine::reducer::Directive;
use crate::engine::row::{Guard, Status};

#[path = "step_tests_ends.rs"]
mod ends;
#[path = "step_tests_findings.rs"]
mod findings;
#[path = "step_tests_rework.rs"]
mod rework;
#[path = "step_tests_seq.rs"]
mod seq;

type Obs = Observation<u32>;
type Act = Action<u32>;

/// Where rollbacks keep the work in these scenarios.
const TRIAL_REF: &str = "refs/autoresearch/t/trial-1";

/// The run's settings an iteration starts from (defaults: lower is better, retained 10, a guard,
/// `--rework 2`, directive `continue`, no verify failures before).
#[derive(Clone, Copy)]
struct Setup {
    policy: &'static dyn Policy,
    direction: Direction,
    directive: Directive,
    retained: f64,
    rework: u32,
    guard: bool,
    verify_failures: u32,
}

fn setup() -> Setup {
    Setup {
        policy: &Loop,
        direction: Direction::Lower,
        directive: Directive::Continue,
        retained: 10.0,
        rework: 2,
        guard: true,
        verify_failures: 0,
    }
}

impl Setup {
    fn higher(self) -> Setup {
        Setup {
            direction: Direction::Higher,
            ..self
        }
    }
    fn no_guard(self) -> Setup {
        Setup {
            guard: false,
            ..self
        }
    }
    fn rework(self, rework: u32) -> Setup {
        Setup { rework, ..self }
    }
    fn directive(self, directive: Directive) -> Setup {
        Setup { directive, ..self }
    }
    fn failures_before(self, verify_failures: u32) -> Setup {
        Setup {
            verify_failures,
            ..self
        }
    }
    fn policy(self, policy: &'static dyn Policy) -> Setup {
        Setup { policy, ..self }
    }

    /// Starts the iteration; its first action must be the agent's turn.
    fn start(self) -> Script {
        let mut it = Iteration::new(
            self.policy,
            self.direction,
            self.directive,
            self.retained,
            self.rework,
            self.guard,
            self.verify_failures,
        );
        let first = it.start();
        assert_eq!(first, agent(self.directive), "the first action");
        Script {
            it,
            log: vec![first],
            desc: String::new(),
        }
    }
}

/// One iteration driven observation by observation, with every answer checked.
struct Script {
    it: Iteration<'static, u32>,
    /// Every action the machine answered, the first turn included.
    log: Vec<Act>,
    /// The experiment's description once [`Script::trial`] gave it.
    desc: String,
}

impl Script {
    /// Feeds `obs` and checks that the machine answers `want`.
    fn on(&mut self, obs: Obs, want: Act) -> &mut Self {
        assert!(!self.it.is_over(), "{obs:?} fed after the iteration ended");
        let got = self.it.observe(obs.clone());
        assert_eq!(got, want, "the answer to {obs:?} (step {})", self.log.len());
        self.log.push(got);
        self
    }

    /// Checks what the in-flight marker would record now.
    fn at(&mut self, phase: Phase, trial: Option<u32>) -> &mut Self {
        assert_eq!(
            (self.it.phase(), self.it.trial()),
            (phase, trial),
            "the marker after step {}",
            self.log.len() - 1
        );
        self
    }

    /// The agent's turn `desc` changes files in the scope, committed as trial `c`; the machine
    /// then asks for verify.
    fn trial(&mut self, desc: &str, c: u32) -> &mut Self {
        self.desc = desc.to_string();
        self.on(done(desc), Action::Inspect)
            .at(Phase::Agent, None)
            .on(changed(), commit(&format!("experiment: {desc}")))
            .at(Phase::Agent, None)
            .on(Observation::Committed(c), measure("verify"))
            .at(Phase::Verify, Some(c))
    }

    /// [`Script::trial`], measured `v`, an improvement: the machine asks for the guard.
    fn improved(&mut self, desc: &str, c: u32, v: f64) -> &mut Self {
        self.trial(desc, c)
            .on(metric(v), guard("guard"))
            .at(Phase::Guard, Some(c))
    }

    /// Rework turn `r` (just asked for) changes files in the scope, committed as `c`; the machine
    /// then asks for verify.
    /// It restates the experiment's description; the commit amends the trial.
    fn rework_committed(&mut self, r: u32, c: u32) -> &mut Self {
        let desc = self.desc.clone();
        let trial = self.it.trial().expect("a rework follows a trial");
        self.on(done(&desc), Action::Inspect)
            .on(changed(), amend(trial, &format!("experiment: {desc}")))
            .on(
                Observation::Committed(c),
                measure(&format!("rework-{r}-verify")),
            )
            .at(Phase::Verify, Some(c))
    }

    /// The rollback, then the row: the machine asks to record `row`, then ends with `stop`.
    fn records(&mut self, rollback: Obs, row: Draft<u32>, stop: Option<Stop>) -> &mut Self {
        self.on(rollback, Action::Record(row))
            .on(Observation::Recorded, Action::End(stop));
        assert!(self.it.is_over());
        self
    }

    /// How many actions match `what`.
    fn count(&self, what: impl Fn(&Act) -> bool) -> usize {
        self.log.iter().filter(|a| what(a)).count()
    }
}

// Observations.

fn done(desc: &str) -> Obs {
    Observation::Turn(TurnEnd::Completed {
        description: desc.into(),
    })
}

fn changed() -> Obs {
    Observation::Inspected(Found {
        changed: true,
        ..Found::default()
    })
}

fn nothing() -> Obs {
    Observation::Inspected(Found::default())
}

fn found(scope: &[&str], protected: &[&str]) -> Obs {
    Observation::Inspected(Found {
        changed: true,
        scope: scope.iter().map(|s| s.to_string()).collect(),
        protected: protected.iter().map(|s| s.to_string()).collect(),
        ..Found::default()
    })
}

fn metric(v: f64) -> Obs {
    Observation::Measured(Measured::Metric(v))
}

fn no_metric(reason: &str, tail: &str, timed_out: bool) -> Obs {
    Observation::Measured(Measured::Failed {
        reason: reason.into(),
        timed_out,
        tail: tail.into(),
    })
}

fn passes() -> Obs {
    Observation::Guarded(Guarded::Pass)
}

fn fails(tail: &str, line: &str) -> Obs {
    Observation::Guarded(Guarded::Fail {
        reason: "exit status 1".into(),
        tail: tail.into(),
        line: line.into(),
    })
}

/// The rollback kept the work (the trial, or a snapshot of the unfinished work) as `c`.
fn kept_as(c: u32) -> Obs {
    Observation::RolledBack(Some(Held {
        commit: c,
        name: TRIAL_REF.into(),
    }))
}

// Actions.

fn agent(directive: Directive) -> Act {
    Action::Turn {
        directive,
        stem: "agent".into(),
        feedback: None,
        base: Base::Retained,
    }
}

fn rework_turn(r: u32, guard_output: &str, trial: u32) -> Act {
    Action::Turn {
        directive: Directive::Rework,
        stem: format!("rework-{r}"),
        feedback: Some(guard_output.into()),
        base: Base::Trial(trial),
    }
}

fn commit(message: &str) -> Act {
    Action::Commit {
        message: message.into(),
    }
}

fn amend(trial: u32, message: &str) -> Act {
    Action::Amend {
        trial,
        message: message.into(),
    }
}

fn measure(stem: &str) -> Act {
    Action::Measure { stem: stem.into() }
}

fn guard(stem: &str) -> Act {
    Action::Guard { stem: stem.into() }
}

fn roll_back(trial: Option<u32>, unfinished: bool) -> Act {
    Action::RollBack { trial, unfinished }
}

fn row(
    status: Status,
    commit: Option<u32>,
    metric: Option<f64>,
    guard: Guard,
    description: &str,
) -> Draft<u32> {
    Draft {
        status,
        commit,
        metric,
        guard,
        description: description.into(),
    }
}

// §5.2 Propose.

#[test]
fn guide_5_2_the_turn_starts_from_the_retained_commit_with_the_due_directive() {
    for d in [Directive::Continue, Directive::Refine, Directive::Pivot] {
        // `start` itself checks the first action: directive d, stem `agent`, no feedback.
        let s = setup().directive(d).start();
        assert_eq!((s.it.phase(), s.it.trial()), (Phase::Agent, None));
        assert_eq!(s.it.description(), None);
        assert_eq!(s.it.reworks(), 0);
    }
}

// §5.3 Inspect.

#[test]
fn guide_5_3_nothing_changed_is_a_no_op() {
    // Nothing committed, the tree restored, a no-op row with no commit and the retained metric.
    setup()
        .start()
        .on(done("tidy imports"), Action::Inspect)
        .on(nothing(), Action::Undo)
        .records(
            Observation::Restored,
            row(Status::NoOp, None, None, Guard::NotRun, "tidy imports"),
            None,
        );
}

#[test]
fn guide_5_3_a_protected_path_is_discarded_uncommitted() {
    let s = setup()
        .start()
        .on(done("reset the results"), Action::Inspect)
        .on(
            found(&[], &["autoresearch-results/results.tsv"]),
            Action::Undo,
        )
        .records(
            Observation::Restored,
            row(
                Status::Discard,
                None,
                None,
                Guard::NotRun,
                "[PROTECTED] autoresearch-results/results.tsv — reset the results",
            ),
            None,
        )
        .count(|a| matches!(a, Action::Commit { .. }));
    assert_eq!(s, 0, "nothing is committed");
}

#[test]
fn guide_5_3_protected_wins_over_scope() {
    setup()
        .start()
        .on(done("tweak the bench"), Action::Inspect)
        .on(
            found(&["docs/notes.md"], &["bench.sh", ".git/config"]),
            Action::Undo,
        )
        .records(
            Observation::Restored,
            row(
                Status::Discard,
                None,
                None,
                Guard::NotRun,
                "[PROTECTED] bench.sh, .git/config — tweak the bench",
            ),
            None,
        );
}

#[test]
fn guide_5_3_a_path_outside_the_scope_is_discarded_uncommitted() {
    setup()
        .start()
        .on(done("bump the dependency"), Action::Inspect)
        .on(found(&["Cargo.toml", "Cargo.lock"], &[]), Action::Undo)
        .records(
            Observation::Restored,
            row(
                Status::Discard,
                None,
                None,
                Guard::NotRun,
                "[SCOPE] Cargo.toml, Cargo.lock — bump the dependency",
            ),
            None,
        );
}

#[test]
fn guide_5_3_your_untracked_file_changed_or_deleted_is_a_scope_discard() {
    // A deleted untracked file of yours is no change to the tree, and still a violation.
    let yours = Observation::Inspected(Found {
        changed: false,
        scope: vec!["notes.txt (your untracked file)".into()],
        protected: vec![],
        ..Found::default()
    });
    setup()
        .start()
        .on(done("clean up"), Action::Inspect)
        .on(yours, Action::Undo)
        .records(
            Observation::Restored,
            row(
                Status::Discard,
                None,
                None,
                Guard::NotRun,
                "[SCOPE] notes.txt (your untracked file) — clean up",
            ),
            None,
        );
}

#[test]
fn guide_5_3_many_paths_are_named_up_to_eight() {
    let paths: Vec<String> = (1..=10).map(|i| format!("vendor/f{i}.c")).collect();
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    setup()
        .start()
        .on(done("vendor it"), Action::Inspect)
        .on(found(&refs, &[]), Action::Undo)
        .records(
            Observation::Restored,
            row(
                Status::Discard,
                None,
                None,
                Guard::NotRun,
                &format!("[SCOPE] {} and 2 more — vendor it", paths[..8].join(", ")),
            ),
            None,
        );
}

// §5.4 Trial commit.

#[test]
fn guide_5_4_the_trial_commit_message_is_experiment_description() {
    let mut s = setup().start();
    s.trial("inline the hot loop", 1);
    assert_eq!(s.it.description(), Some("inline the hot loop"));
}

#[test]
fn guide_5_4_the_description_is_one_line_or_no_description() {
    setup()
        .start()
        .on(done("  \n "), Action::Inspect)
        .on(changed(), commit("experiment: (no description)"));
    setup()
        .start()
        .on(done("faster\tparser\n  with a cache"), Action::Inspect)
        .on(changed(), commit("experiment: faster parser with a cache"));
}

// §5.5 Verify.

#[test]
fn guide_5_5_verify_without_a_metric_is_a_crash_and_the_trial_is_rolled_back() {
    setup()
        .start()
        .trial("inline the hot loop", 1)
        .on(
            no_metric("exit status 2 without a metric", "boom\nerror: x\n", false),
            roll_back(Some(1), false),
        )
        .records(
            kept_as(1),
            row(
                Status::Crash,
                Some(1),
                None,
                Guard::NotRun,
                "inline the hot loop — exit status 2 without a metric | boom error: x",
            ),
            None,
        );
}

#[test]
fn guide_5_5_a_crash_without_output_has_no_last_output() {
    setup()
        .start()
        .trial("inline the hot loop", 1)
        .on(
            no_metric("no output", " \n", false),
            roll_back(Some(1), false),
        )
        .records(
            kept_as(1),
            row(
                Status::Crash,
                Some(1),
                None,
                Guard::NotRun,
                "inline the hot loop — no output",
            ),
            None,
        );
}

#[test]
fn guide_6_timeout_tag_when_verify_runs_out_of_time() {
    setup()
        .start()
        .trial("inline the hot loop", 1)
        .on(
            no_metric("timed out after 5m", "running 3 tests", true),
            roll_back(Some(1), false),
        )
        .records(
            kept_as(1),
            row(
                Status::Crash,
                Some(1),
                None,
                Guard::NotRun,
                "[TIMEOUT] inline the hot loop — timed out after 5m | running 3 tests",
            ),
            None,
        );
}

// §5.6 Guard (only when improved) and §5.7 Decide / §7 keep rule.

#[test]
fn guide_5_6_the_guard_runs_only_when_the_metric_improved() {
    let mut s = setup().start();
    s.trial("inline the hot loop", 1)
        .on(metric(12.0), roll_back(Some(1), false))
        .records(
            kept_as(1),
            row(
                Status::Discard,
                Some(1),
                Some(12.0),
                Guard::NotRun,
                "inline the hot loop",
            ),
            None,
        );
    assert_eq!(s.count(|a| matches!(a, Action::Guard { .. })), 0);
}

#[test]
fn guide_5_7_a_passing_guard_keeps_with_guard_pass() {
    setup()
        .start()
        .improved("inline the hot loop", 1, 8.0)
        .on(passes(), Action::Keep { trial: 1 })
        .records(
            Observation::Restored,
            row(
                Status::Keep,
                Some(1),
                Some(8.0),
                Guard::Pass,
                "inline the hot loop",
            ),
            None,
        );
}

#[test]
fn guide_5_7_without_a_guard_an_improvement_is_kept_with_guard_not_run() {
    setup()
        .no_guard()
        .start()
        .trial("inline the hot loop", 1)
        .on(metric(8.0), Action::Keep { trial: 1 })
        .at(Phase::Verify, Some(1))
        .records(
            Observation::Restored,
            row(
                Status::Keep,
                Some(1),
                Some(8.0),
                Guard::NotRun,
                "inline the hot loop",
            ),
            None,
        );
}

/// Runs a guardless iteration measuring `v` against the retained 10; returns true when kept.
fn kept(setup: Setup, v: f64) -> bool {
    let mut s = setup.no_guard().start();
    s.trial("try", 1);
    match s.it.observe(metric(v)) {
        Action::Keep { trial: 1 } => true,
        Action::RollBack {
            trial: Some(1),
            unfinished: false,
        } => false,
        other => panic!("{other:?} after metric {v}"),
    }
}

#[test]
fn guide_7_keep_rule_lower_is_strictly_less_and_ties_are_not_improvements() {
    assert!(kept(setup(), 9.999));
    assert!(!kept(setup(), 10.0), "a tie is not an improvement");
    assert!(!kept(setup(), 10.001));
}

#[test]
fn guide_7_keep_rule_higher_is_strictly_greater_and_ties_are_not_improvements() {
    assert!(kept(setup().higher(), 10.001));
    assert!(!kept(setup().higher(), 10.0), "a tie is not an improvement");
    assert!(!kept(setup().higher(), 9.999));
}

#[test]
fn guide_7_fix_mode_decides_with_the_same_keep_rule() {
    assert!(kept(setup().policy(&Fix), 9.0));
    assert!(!kept(setup().policy(&Fix), 10.0));
}

// The marker (§5.1, §12): phase and trial at each step.

#[test]
fn guide_5_1_the_marker_follows_agent_verify_guard_rework() {
    setup()
        .start()
        .at(Phase::Agent, None)
        .improved("inline the hot loop", 1, 8.0) // checks agent, verify(1), guard(1)
        .on(fails("FAILED a", "FAILED a"), rework_turn(1, "FAILED a", 1))
        .at(Phase::Rework, Some(1))
        .on(done("fix a"), Action::Inspect)
        .at(Phase::Rework, Some(1))
        .on(changed(), amend(1, "experiment: fix a"))
        .at(Phase::Rework, Some(1))
        .on(Observation::Committed(2), measure("rework-1-verify"))
        .at(Phase::Verify, Some(2))
        .on(metric(8.5), guard("rework-1-guard"))
        .at(Phase::Guard, Some(2));
}

#[test]
fn phase_names_for_the_marker_and_the_interruption_row() {
    let names: Vec<_> = [Phase::Agent, Phase::Verify, Phase::Guard, Phase::Rework]
        .into_iter()
        .map(|p| (p.as_str(), p.during()))
        .collect();
    assert_eq!(
        names,
        [
            ("agent", "the agent step"),
            ("verify", "verify"),
            ("guard", "the guard"),
            ("rework", "a rework turn"),
        ]
    );
    assert_eq!(
        [
            crate::engine::signal_name(2),
            crate::engine::signal_name(15),
            crate::engine::signal_name(1)
        ],
        ["SIGINT", "SIGTERM", "SIGHUP"]
    );
}
