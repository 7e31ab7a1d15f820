//! One iteration as a pure step machine (GUIDE §5–§7): the driver feeds it what happened (the
//! agent's turn ended, the inspection found paths, verify printed a value, the guard failed, a
//! rollback kept the work somewhere) and it answers with the next action (run the agent with a
//! directive, inspect, commit, measure, run the guard, keep, roll back, record a row, end). No
//! I/O: commits are an opaque type `C` the driver chooses (a git oid there, a number in tests).

use super::Direction;
use super::policy::{Policy, Stop};
use super::seq::{Role, Use};

pub use judge::{Judge, RunTaken};

#[path = "step_gates.rs"]
mod gated;
#[path = "step_judge.rs"]
mod judge;
use super::reducer::Directive;
use super::row::{Guard, Status, one_line};

/// Consecutive verify failures that stop the run as a hard blocker.
pub const VERIFY_BROKEN_AFTER: u32 = 5;

/// Where the iteration is, as the in-flight marker records it (a crash is reported "during" it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The first agent turn, its inspection and the trial commit.
    Agent,
    /// Verify on a trial commit.
    Verify,
    /// The guard on an improved trial.
    Guard,
    /// A rework turn after a failed guard, its inspection and commit.
    Rework,
}

impl Phase {
    /// The word in `autoresearch-results/engine/inflight.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Agent => "agent",
            Phase::Verify => "verify",
            Phase::Guard => "guard",
            Phase::Rework => "rework",
        }
    }

    /// How an interruption row names the phase (`stopped by SIGINT during <this>`).
    pub fn during(self) -> &'static str {
        match self {
            Phase::Agent => "the agent step",
            Phase::Verify => "verify",
            Phase::Guard => "the guard",
            Phase::Rework => "a rework turn",
        }
    }
}

/// How an agent turn ended (after the driver waited out rate limits within the budget).
#[derive(Clone, Debug, PartialEq)]
pub enum TurnEnd {
    Completed {
        description: String,
    },
    /// The agent failed or timed out; `description` is what it said it did, if anything.
    Failed {
        reason: String,
        timed_out: bool,
        description: String,
    },
    Interrupted(i32),
    /// Rate limited until the quota budget was spent; the text says so.
    QuotaSpent(String),
    /// The branch moved under the engine (someone committed, reset or switched branches).
    Moved(String),
}

/// What the inspection after a turn found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Found {
    /// Some path differs from the turn's starting point.
    pub changed: bool,
    /// Paths outside the scope (or the user's untracked files, named so).
    pub scope: Vec<String>,
    /// Protected paths (the engine's files and `.git/...` included).
    pub protected: Vec<String>,
    /// A fix run's rule the changes break (`[SUPPRESSION] ...`, see [`super::fix_rules`]).
    pub rule: Option<String>,
}

impl Found {
    fn nothing(&self) -> bool {
        !self.changed && self.scope.is_empty() && self.protected.is_empty()
    }
}

/// How a verify run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Measured {
    Metric(f64),
    /// A metrics-json run: the primary metric and what else the object said (the gates read it).
    MetricsJson(f64, super::gates::Reading),
    Failed {
        reason: String,
        timed_out: bool,
        tail: String,
    },
    Interrupted(i32),
}

/// How a guard run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Guarded {
    Pass,
    /// `line` is the failure's most telling line (see [`super::reason::failure_line`]).
    Fail {
        reason: String,
        tail: String,
        line: String,
    },
    Interrupted(i32),
}

/// Where a rollback kept the iteration's work.
#[derive(Clone, Debug, PartialEq)]
pub struct Held<C> {
    pub commit: C,
    /// The ref holding it (`refs/autoresearch/<tag>/trial-<n>`), plus any note on moved files.
    pub name: String,
}

/// What the driver observed after carrying out the last action.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation<C> {
    Turn(TurnEnd),
    Inspected(Found),
    Committed(C),
    Measured(Measured),
    Guarded(Guarded),
    /// What the holdout said about a keep.
    HeldOut(super::holdout::Verdict),
    RolledBack(Option<Held<C>>),
    /// The tree was restored (after [`Action::Undo`] or [`Action::Keep`]).
    Restored,
    Recorded,
}

/// Where an agent turn starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base<C> {
    /// The retained commit (a first turn).
    Retained,
    /// The trial commit (a rework turn).
    Trial(C),
}

/// A row to record; the driver fills in the iteration, the delta and the commit's short form.
#[derive(Clone, Debug, PartialEq)]
pub struct Draft<C> {
    pub status: Status,
    pub commit: Option<C>,
    /// `None`: the retained metric (with delta 0).
    pub metric: Option<f64>,
    pub guard: Guard,
    pub description: String,
}

/// The next thing the driver must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action<C> {
    /// Run the agent; `stem` names its logs; `feedback` is the failing guard's output.
    Turn {
        directive: Directive,
        stem: String,
        feedback: Option<String>,
        base: Base<C>,
    },
    /// List what the turn changed.
    Inspect,
    /// Undo the uncommitted changes just inspected (nothing was committed).
    Undo,
    /// Commit everything the inspection found as the trial.
    Commit { message: String },
    /// A rework turn's changes: replace `trial` on the branch by one commit with the same parent
    /// holding them too (`trial` stays reachable under the run's refs), so a keep is one commit.
    Amend { trial: C, message: String },
    /// Run verify on the trial; `stem` names its log.
    Measure { stem: String },
    /// Run verify on the retained commit (the tree set to it, then back to the trial).
    MeasureRetained { stem: String },
    /// Run the guard on the trial.
    Guard { stem: String },
    /// Run the holdout on a trial about to be kept (GUIDE §7b).
    Holdout { stem: String },
    /// Make the trial the retained commit.
    Keep { trial: C },
    /// Roll back to the retained commit, keeping the trial (and, with `unfinished`, the
    /// uncommitted work as the latest of it) under the run's refs.
    RollBack { trial: Option<C>, unfinished: bool },
    /// Append the row (and the iteration's record) and clear the in-flight marker.
    Record(Draft<C>),
    /// The iteration is over: clear the marker; `Some` ends the run.
    End(Option<Stop>),
}

/// What to do once the pending action has been carried out.
#[derive(Clone, Debug)]
enum Then<C> {
    Nothing,
    /// Record this row.
    Record(Draft<C>),
    /// Record a row whose commit is where the rollback kept the work.
    RecordHeld {
        status: Status,
        head: String,
    },
    /// End the iteration (after a rollback that records nothing).
    End(Option<Stop>),
}

/// The decisions of one iteration.
pub struct Iteration<'p, C> {
    policy: &'p dyn Policy,
    direction: Direction,
    directive: Directive,
    judge: Judge,
    /// SEQ: a candidate is being judged (`begin` called, no keep yet).
    judging: bool,
    /// The role of the measurement asked for last.
    asked: Role,
    /// Runs consumed since the driver last took them.
    taken: Vec<RunTaken>,
    /// Verify runs of each commit this iteration (they name the logs).
    candidate_runs: u32,
    retained_runs: u32,
    guard_result: Guard,
    /// `--holdout`: `Some(reject)` when there is one (`reject`: a regression discards).
    holdout: Option<bool>,
    /// The holdout ran on this keep.
    held_out: bool,
    /// The trial was kept (SEQ's keep is final).
    kept: bool,
    /// Decimal places of the verify values seen (a mean is shown with one more).
    decimals: usize,
    rework_limit: u32,
    has_guard: bool,
    phase: Phase,
    description: Option<String>,
    /// What the last rework turn said it did; the description once its change is committed.
    reworded: Option<String>,
    trial: Option<C>,
    metric: Option<f64>,
    reworks: u32,
    /// The last guard failure: its reason and output (what a rework turn is shown).
    failing: Option<(String, String, String)>,
    verify_failures: u32,
    then: Then<C>,
    stop_after_record: Option<Stop>,
    over: bool,
    /// The multi-metric gates and the trial's readings.
    gate: gated::TrialGate,
}

fn timeout_tag(timed_out: bool) -> &'static str {
    if timed_out { "[TIMEOUT] " } else { "" }
}

fn turns(k: u32) -> String {
    match k {
        1 => "1 rework turn".into(),
        k => format!("{k} rework turns"),
    }
}

/// The description of a discard for scope or protection violations, if any.
fn violation(found: &Found, desc: &str) -> Option<String> {
    let (tag, paths) = if !found.protected.is_empty() {
        ("[PROTECTED]", &found.protected)
    } else if !found.scope.is_empty() {
        ("[SCOPE]", &found.scope)
    } else {
        let rule = found.rule.as_deref()?;
        return Some(format!("{rule} — {desc} ({})", super::fix_rules::FEEDBACK));
    };
    Some(format!("{tag} {} — {desc}", super::list_paths(paths)))
}

impl<'p, C: Copy + std::fmt::Debug> Iteration<'p, C> {
    /// Starts an iteration: `retained` is the metric to beat, `verify_failures` the consecutive
    /// verify failures before it.
    pub fn new(
        policy: &'p dyn Policy,
        direction: Direction,
        directive: Directive,
        retained: f64,
        rework_limit: u32,
        has_guard: bool,
        verify_failures: u32,
    ) -> Self {
        Iteration {
            policy,
            direction,
            directive,
            judge: Judge::Strict { retained },
            judging: false,
            asked: Role::Candidate,
            taken: Vec::new(),
            candidate_runs: 0,
            retained_runs: 0,
            guard_result: Guard::NotRun,
            holdout: None,
            held_out: false,
            kept: false,
            decimals: 0,
            rework_limit,
            has_guard,
            phase: Phase::Agent,
            description: None,
            reworded: None,
            trial: None,
            metric: None,
            reworks: 0,
            failing: None,
            verify_failures,
            then: Then::Nothing,
            stop_after_record: None,
            over: false,
            gate: Default::default(),
        }
    }

    /// The first action: the agent's turn from the retained commit.
    pub fn start(&mut self) -> Action<C> {
        Action::Turn {
            directive: self.directive,
            stem: "agent".into(),
            feedback: None,
            base: Base::Retained,
        }
    }

    /// The phase the marker records.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The trial commit on the branch, if one was made.
    pub fn trial(&self) -> Option<C> {
        self.trial
    }

    /// The experiment's description, once the agent gave it.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// Rework turns taken so far.
    pub fn reworks(&self) -> u32 {
        self.reworks
    }

    /// Consecutive verify failures, this iteration included.
    pub fn verify_failures(&self) -> u32 {
        self.verify_failures
    }

    /// True once [`Action::End`] was returned.
    pub fn is_over(&self) -> bool {
        self.over
    }

    fn desc(&self) -> String {
        self.description
            .clone()
            .unwrap_or_else(|| "(no description)".into())
    }

    /// Feeds one observation; returns the next action.
    pub fn observe(&mut self, obs: Observation<C>) -> Action<C> {
        match obs {
            Observation::Turn(end) => self.on_turn(end),
            Observation::Inspected(found) => self.on_inspected(found),
            Observation::Committed(c) => {
                self.trial = Some(c);
                self.new_trial_readings();
                self.phase = Phase::Verify;
                self.candidate_runs = 0;
                if let Judge::Seq(seq) = &mut self.judge {
                    seq.begin();
                    self.judging = true;
                    return self.seq_next();
                }
                self.measure_candidate()
            }
            Observation::Measured(m) => self.on_measured(m),
            Observation::Guarded(g) => self.on_guarded(g),
            Observation::HeldOut(v) => self.on_held_out(v),
            Observation::RolledBack(held) => self.after(held),
            Observation::Restored => self.after(None),
            Observation::Recorded => {
                let stop = self.stop_after_record.take();
                self.end(stop)
            }
        }
    }

    fn end(&mut self, stop: Option<Stop>) -> Action<C> {
        self.over = true;
        if std::mem::take(&mut self.judging)
            && !self.kept
            && let Judge::Seq(seq) = &mut self.judge
        {
            seq.abandon();
        }
        Action::End(stop)
    }

    fn stem(&self, what: &str) -> String {
        match self.reworks {
            0 => what.to_string(),
            r => format!("rework-{r}-{what}"),
        }
    }

    /// Carries out what was waiting for the last rollback or restore.
    fn after(&mut self, held: Option<Held<C>>) -> Action<C> {
        match std::mem::replace(&mut self.then, Then::Nothing) {
            Then::Nothing => self.end(None),
            Then::End(stop) => self.end(stop),
            Then::Record(d) => Action::Record(self.labelled(d)),
            Then::RecordHeld { status, head } => {
                let where_ = held
                    .as_ref()
                    .map(|h| format!("; its work is kept at {}", h.name))
                    .unwrap_or_default();
                Action::Record(self.labelled(Draft {
                    status,
                    commit: held.map(|h| h.commit),
                    metric: None,
                    guard: Guard::NotRun,
                    description: format!("{head}{where_}"),
                }))
            }
        }
    }

    /// Rolls back (the trial kept), then records `draft`.
    fn roll_back_then(&mut self, draft: Draft<C>) -> Action<C> {
        self.then = Then::Record(draft);
        Action::RollBack {
            trial: self.trial,
            unfinished: false,
        }
    }

    /// An interruption: the unfinished work is kept, a crash row says where, the run stops.
    fn abandon(&mut self, sig: i32) -> Action<C> {
        let what = match &self.description {
            Some(d) => format!("{d} — "),
            None => String::new(),
        };
        self.then = Then::RecordHeld {
            status: Status::Crash,
            head: format!(
                "[INTERRUPTED] {what}stopped by {} during {}; rolled back",
                super::signal_name(sig),
                self.phase.during()
            ),
        };
        self.stop_after_record = Some(Stop::Interrupted(sig));
        Action::RollBack {
            trial: self.trial,
            unfinished: true,
        }
    }

    fn on_turn(&mut self, end: TurnEnd) -> Action<C> {
        let rework = self.reworks > 0;
        match end {
            TurnEnd::Moved(why) => self.end(Some(Stop::Blocked(why))),
            TurnEnd::Interrupted(sig) => self.abandon(sig),
            TurnEnd::QuotaSpent(why) => {
                self.then = Then::End(Some(Stop::NeedsHuman(why)));
                Action::RollBack {
                    trial: self.trial,
                    unfinished: false,
                }
            }
            TurnEnd::Failed {
                reason,
                timed_out,
                description,
            } if !rework => {
                let said = one_line(&description);
                let what = if said.is_empty() {
                    String::new()
                } else {
                    format!("{said} — ")
                };
                self.then = Then::RecordHeld {
                    status: Status::Crash,
                    head: format!("{}{what}{}", timeout_tag(timed_out), one_line(&reason)),
                };
                Action::RollBack {
                    trial: None,
                    unfinished: true,
                }
            }
            TurnEnd::Failed {
                reason, timed_out, ..
            } => {
                let draft = Draft {
                    status: Status::Discard,
                    commit: self.trial,
                    metric: self.metric,
                    guard: Guard::Fail,
                    description: format!(
                        "[GUARD] {}{} (rework turn {} failed: {})",
                        timeout_tag(timed_out),
                        self.desc(),
                        self.reworks,
                        one_line(&reason)
                    ),
                };
                self.roll_back_then(draft)
            }
            TurnEnd::Completed { description } => {
                let d = one_line(&description);
                if rework {
                    self.reworded = (!d.is_empty()).then_some(d);
                } else {
                    self.description = Some(if d.is_empty() {
                        "(no description)".into()
                    } else {
                        d
                    });
                }
                Action::Inspect
            }
        }
    }

    fn on_inspected(&mut self, found: Found) -> Action<C> {
        let desc = self.desc();
        if self.reworks == 0 {
            let draft = |status, description| Draft {
                status,
                commit: None,
                metric: None,
                guard: Guard::NotRun,
                description,
            };
            if found.nothing() && self.policy.reports_findings() {
                // An investigation that changed nothing still reports a finding: measure it.
                self.phase = Phase::Verify;
                return self.measure_candidate();
            }
            if found.nothing() {
                self.then = Then::Record(draft(Status::NoOp, desc));
                return Action::Undo;
            }
            if let Some(d) = violation(&found, &desc) {
                self.then = Then::Record(draft(Status::Discard, d));
                return Action::Undo;
            }
            return Action::Commit {
                message: format!("experiment: {desc}"),
            };
        }
        if found.nothing() {
            // The rework changed nothing: the guard would fail the same way.
            let (reason, tail, line) = self.failing.take().unwrap_or_default();
            return self.on_guard_fail(reason, tail, line);
        }
        if let Some(d) = violation(&found, &desc) {
            let draft = Draft {
                status: Status::Discard,
                commit: self.trial,
                metric: None,
                guard: Guard::NotRun,
                description: d,
            };
            return self.roll_back_then(draft);
        }
        // The amended commit is the experiment as it now stands: the last turn describes it.
        if let Some(d) = self.reworded.take() {
            self.description = Some(d);
        }
        Action::Amend {
            trial: self.trial.expect("a rework turn follows a trial commit"),
            message: format!("experiment: {}", self.desc()),
        }
    }

    fn on_measured(&mut self, m: Measured) -> Action<C> {
        let desc = self.desc();
        match m {
            Measured::MetricsJson(v, reading) => self.on_reading(v, reading),
            Measured::Interrupted(sig) => self.abandon(sig),
            Measured::Failed {
                reason,
                timed_out,
                tail,
            } => {
                self.verify_failures += 1;
                let last = match one_line(&tail) {
                    l if l.is_empty() => String::new(),
                    l => format!(" | {l}"),
                };
                if self.verify_failures >= VERIFY_BROKEN_AFTER {
                    self.stop_after_record = Some(Stop::Blocked(format!(
                        "verify failed {VERIFY_BROKEN_AFTER} times in a row (last: {reason}); fix the verify command or the environment"
                    )));
                }
                let draft = Draft {
                    status: Status::Crash,
                    commit: self.trial,
                    metric: None,
                    guard: Guard::NotRun,
                    description: format!("{}{desc} — {reason}{last}", timeout_tag(timed_out)),
                };
                self.roll_back_then(draft)
            }
            Measured::Metric(v) if self.judging => {
                self.verify_failures = 0;
                self.decimals = self.decimals.max(crate::engine::number::fraction_digits(v));
                let role = self.asked;
                let Judge::Seq(seq) = &mut self.judge else {
                    unreachable!("judging is SEQ's");
                };
                let used = seq.observe(role, v);
                let ev = seq.evidence();
                if ev.n_candidate > 0 && ev.mean.is_finite() {
                    // The trial's value so far: what a guard failure's row shows.
                    self.metric = Some(self.shown(ev.mean));
                }
                self.taken.push(RunTaken {
                    role,
                    value: v,
                    used,
                });
                self.seq_next()
            }
            Measured::Metric(v) => {
                self.verify_failures = 0;
                self.metric = Some(v);
                self.taken.push(RunTaken {
                    role: Role::Candidate,
                    value: v,
                    used: Use::Ok,
                });
                let retained = match &self.judge {
                    Judge::Strict { retained } => *retained,
                    Judge::Seq(_) => unreachable!("SEQ judges while judging"),
                };
                if !self.policy.improves(self.direction, v, retained) {
                    let description = match self.reworks {
                        0 => desc,
                        r => format!("{desc} (rework {r} lost the improvement)"),
                    };
                    let draft = Draft {
                        status: Status::Discard,
                        commit: self.trial,
                        metric: Some(v),
                        guard: Guard::NotRun,
                        description,
                    };
                    return self.roll_back_then(draft);
                }
                if let Some(miss) = self.gate_miss() {
                    return miss;
                }
                if self.has_guard {
                    self.phase = Phase::Guard;
                    return Action::Guard {
                        stem: self.stem("guard"),
                    };
                }
                self.keep(Guard::NotRun)
            }
        }
    }

    fn keep(&mut self, guard: Guard) -> Action<C> {
        if self.holdout.is_some() && !self.held_out {
            self.held_out = true;
            self.guard_result = guard;
            return Action::Holdout {
                stem: self.stem("holdout"),
            };
        }
        self.keep_now(guard, "")
    }

    /// The keep's row (`tag` leads the description) and the keep itself.
    fn keep_now(&mut self, guard: Guard, tag: &str) -> Action<C> {
        let note = match self.reworks {
            0 => String::new(),
            r => format!(" (guard passed after {})", turns(r)),
        };
        let evidence = self.evidence_tag();
        if self.policy.reports_findings() {
            // A new finding: the trial was evidence, rolled back and kept under the run's refs.
            return self.roll_back_then(Draft {
                status: Status::Keep,
                commit: self.trial,
                metric: self.metric,
                guard,
                description: format!("{tag}{}{note}{evidence}", self.desc()),
            });
        }
        let trial = self.trial.expect("a keep follows a trial commit");
        self.kept = true;
        self.then = Then::Record(Draft {
            status: Status::Keep,
            commit: Some(trial),
            metric: self.metric,
            guard,
            description: format!("{tag}{}{note}{evidence}", self.desc()),
        });
        Action::Keep { trial }
    }

    fn on_guarded(&mut self, g: Guarded) -> Action<C> {
        match g {
            Guarded::Pass if self.judging => {
                self.guard_result = Guard::Pass;
                if let Judge::Seq(seq) = &mut self.judge {
                    seq.guard_passed();
                }
                self.phase = Phase::Verify;
                self.seq_next()
            }
            Guarded::Pass => self.keep(Guard::Pass),
            Guarded::Interrupted(sig) => self.abandon(sig),
            Guarded::Fail { reason, tail, line } => self.on_guard_fail(reason, tail, line),
        }
    }

    fn on_guard_fail(&mut self, reason: String, tail: String, line: String) -> Action<C> {
        self.phase = Phase::Guard;
        if self.reworks >= self.rework_limit {
            let after = match self.reworks {
                0 => String::new(),
                r => format!(" after {}", turns(r)),
            };
            let desc = self.desc();
            let line = one_line(&line);
            let draft = Draft {
                status: Status::Discard,
                commit: self.trial,
                metric: self.metric,
                guard: Guard::Fail,
                description: if line.is_empty() {
                    format!("[GUARD] {desc} ({reason}{after})")
                } else {
                    format!("[GUARD] {desc} ({reason}{after}: {line})")
                },
            };
            return self.roll_back_then(draft);
        }
        self.reworks += 1;
        self.phase = Phase::Rework;
        let trial = self.trial.expect("a guard runs on a trial commit");
        let feedback = Some(tail.clone());
        self.failing = Some((reason, tail, line));
        Action::Turn {
            directive: Directive::Rework,
            stem: format!("rework-{}", self.reworks),
            feedback,
            base: Base::Trial(trial),
        }
    }
}

#[cfg(test)]
#[path = "step_tests.rs"]
mod tests;
