//! The one reducer: replays results rows into the run state (the reference's version-1 `state`
//! keys plus the engine's escalation counters). Pure; the TSV is the source of truth.

use serde::{Deserialize, Serialize};

use super::Direction;
use super::row::{Row, Status};

/// The reference's `state` object, rebuilt from the TSV by [`Tally::apply`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub iteration: u64,
    #[serde(serialize_with = "ser_num")]
    pub baseline_metric: f64,
    #[serde(serialize_with = "ser_num")]
    pub best_metric: f64,
    pub best_iteration: u64,
    #[serde(serialize_with = "ser_num")]
    pub current_metric: f64,
    pub last_commit: String,
    pub last_trial_commit: String,
    #[serde(serialize_with = "ser_num")]
    pub last_trial_metric: f64,
    pub keeps: u64,
    pub discards: u64,
    pub crashes: u64,
    pub no_ops: u64,
    pub blocked: u64,
    pub consecutive_discards: u64,
    pub pivot_count: u64,
    pub last_status: String,
    #[serde(default)]
    pub current_labels: Vec<String>,
    #[serde(default)]
    pub last_trial_labels: Vec<String>,
    /// Metrics-json numbers and gate verdicts (not in the TSV: the driver keeps them).
    #[serde(flatten)]
    pub gates: super::gates::GateState,
}

/// Serializes a metric as a JSON integer when it is integral (as the reference does).
pub fn ser_num<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    match super::number::as_json_int(*v) {
        Some(i) => s.serialize_i64(i),
        None => s.serialize_f64(*v),
    }
}

/// The escalation counters the engine derives from the same rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ladder {
    /// Failed experiments (discard, crash, no-op) since the last keep or pivot; an
    /// interruption's crash row is not one.
    pub since_reset: u64,
    /// Experiments so far (what `--iterations` counts, see [`super::experiments`]).
    pub experiments: u64,
    /// A refine row was written since the last keep or pivot.
    pub refined: bool,
    /// Rows per status, in [`Status::ALL`] order.
    pub counts: [u64; 11],
    /// The status of the last row other than `drift` and `blocked`.
    pub last_strategic: Option<Status>,
    /// Failed experiments (discard, crash, no-op) since the last keep or drift, bookkeeping rows
    /// left out whatever the rules (`--plateau`).
    pub failures_since_keep: u64,
}

/// Which of the reference's replay rules apply: the current ones (May 2026: a `refine` row
/// counts toward `consecutive_discards`) or March 2026's (a `refine` row changes no counter).
/// The run's file layout decides (`artifacts::layout::rules`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rules {
    #[default]
    Current,
    March,
}

/// The replayed run: reference state plus escalation counters.
#[derive(Clone, Debug, PartialEq)]
pub struct Replay {
    pub tally: Tally,
    pub ladder: Ladder,
    pub direction: Direction,
    pub rules: Rules,
}

/// Why a sequence of rows cannot be replayed.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ReplayError {
    #[error("the first row must be iteration 0 with status baseline")]
    NoBaseline,
    #[error("row {found} is out of order (expected iteration {expected})")]
    OutOfOrder { expected: u64, found: u64 },
    #[error("row {0} has status baseline, which only row 0 may have")]
    LateBaseline(u64),
}

/// Which bookkeeping row the ladder asks for next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escalation {
    Refine,
    Pivot,
    Search,
}

/// The instruction the next agent call gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Directive {
    Continue,
    Refine,
    Pivot,
    Rework,
}

impl Directive {
    /// Returns the directive word used in prompts and the environment.
    pub fn as_str(self) -> &'static str {
        match self {
            Directive::Continue => "continue",
            Directive::Refine => "refine",
            Directive::Pivot => "pivot",
            Directive::Rework => "rework",
        }
    }
}

/// The escalation thresholds (`--refine-after`, `--pivot-after`, `--max-pivots`); 0 disables a level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    pub refine_after: u64,
    pub pivot_after: u64,
    pub max_pivots: u64,
}

impl Replay {
    /// Starts a replay from the baseline row.
    pub fn start(baseline: &Row, direction: Direction) -> Result<Replay, ReplayError> {
        if baseline.iteration != 0 || baseline.status != Status::Baseline {
            return Err(ReplayError::NoBaseline);
        }
        let mut ladder = Ladder::default();
        ladder.counts[0] = 1;
        Ok(Replay {
            tally: Tally {
                iteration: 0,
                baseline_metric: baseline.metric,
                best_metric: baseline.metric,
                best_iteration: 0,
                current_metric: baseline.metric,
                last_commit: baseline.commit.clone(),
                last_trial_commit: baseline.commit.clone(),
                last_trial_metric: baseline.metric,
                keeps: 0,
                discards: 0,
                crashes: 0,
                no_ops: 0,
                blocked: 0,
                consecutive_discards: 0,
                pivot_count: 0,
                last_status: Status::Baseline.to_string(),
                current_labels: super::gates::labels_of(&baseline.description),
                last_trial_labels: super::gates::labels_of(&baseline.description),
                gates: Default::default(),
            },
            ladder,
            direction,
            rules: Rules::default(),
        })
    }

    /// The same replay under `rules` (set before any row after the baseline is applied).
    pub fn with_rules(mut self, rules: Rules) -> Replay {
        self.rules = rules;
        self
    }

    /// Replays a whole log (baseline first).
    pub fn from_rows(rows: &[Row], direction: Direction) -> Result<Replay, ReplayError> {
        Replay::from_rows_with(rows, direction, Rules::default())
    }

    /// Replays a whole log under `rules`.
    pub fn from_rows_with(
        rows: &[Row],
        direction: Direction,
        rules: Rules,
    ) -> Result<Replay, ReplayError> {
        let (first, rest) = rows.split_first().ok_or(ReplayError::NoBaseline)?;
        let mut replay = Replay::start(first, direction)?.with_rules(rules);
        for row in rest {
            replay.apply(row)?;
        }
        Ok(replay)
    }

    /// Applies one row after the baseline.
    pub fn apply(&mut self, row: &Row) -> Result<(), ReplayError> {
        let expected = self.tally.iteration + 1;
        if row.iteration != expected {
            return Err(ReplayError::OutOfOrder {
                expected,
                found: row.iteration,
            });
        }
        let t = &mut self.tally;
        let l = &mut self.ladder;
        t.iteration = row.iteration;
        t.last_status = row.status.to_string();
        t.last_trial_commit = row.commit.clone();
        t.last_trial_metric = row.metric;
        t.last_trial_labels = super::gates::labels_of(&row.description);
        if let Some(i) = Status::ALL.iter().position(|s| *s == row.status) {
            l.counts[i] += 1;
        }
        if super::experiments::is_experiment(row) {
            l.experiments += 1;
        }
        match row.status {
            Status::Baseline => return Err(ReplayError::LateBaseline(row.iteration)),
            Status::Keep => {
                t.keeps += 1;
                t.current_metric = row.metric;
                t.current_labels = t.last_trial_labels.clone();
                t.last_commit = row.commit.clone();
                t.consecutive_discards = 0;
                t.pivot_count = 0;
                if self.direction.improves(row.metric, t.best_metric) {
                    t.best_metric = row.metric;
                    t.best_iteration = row.iteration;
                }
                l.since_reset = 0;
                l.refined = false;
                l.failures_since_keep = 0;
            }
            Status::Discard | Status::Crash | Status::NoOp => {
                match row.status {
                    Status::Discard => t.discards += 1,
                    Status::Crash => t.crashes += 1,
                    _ => t.no_ops += 1,
                }
                t.consecutive_discards += 1;
                if !super::experiments::is_interruption(row) {
                    l.since_reset += 1;
                    l.failures_since_keep += 1;
                }
            }
            Status::Blocked => t.blocked += 1,
            Status::Drift => {
                t.current_metric = row.metric;
                if row.commit != "-" {
                    t.last_commit = row.commit.clone();
                }
                t.consecutive_discards = 0;
                if !t.last_trial_labels.is_empty() {
                    t.current_labels = t.last_trial_labels.clone();
                }
                l.failures_since_keep = 0;
                if self.direction.improves(row.metric, t.best_metric) {
                    t.best_metric = row.metric;
                    t.best_iteration = row.iteration;
                }
            }
            Status::Refine => {
                l.refined = true;
                if self.rules == Rules::Current {
                    t.consecutive_discards += 1;
                }
            }
            Status::Pivot => {
                t.pivot_count += 1;
                l.since_reset = 0;
                l.refined = false;
            }
            Status::Search | Status::Ship => {}
        }
        if !matches!(row.status, Status::Drift | Status::Blocked) {
            self.ladder.last_strategic = Some(row.status);
        }
        Ok(())
    }

    /// Returns the bookkeeping row the ladder asks for now, if any.
    ///
    /// Idempotent: after the row is applied the same call returns `None` (or the next level), so a
    /// resume that stopped between an experiment row and its meta row catches up correctly.
    pub fn pending_escalation(&self, th: Thresholds) -> Option<Escalation> {
        // Drift and blocked rows (a resume's re-measure) do not break the ladder.
        if self.ladder.last_strategic == Some(Status::Pivot)
            && self.tally.pivot_count == 2
            && (th.max_pivots == 0 || self.tally.pivot_count < th.max_pivots)
        {
            return Some(Escalation::Search);
        }
        if th.pivot_after > 0 && self.ladder.since_reset >= th.pivot_after {
            return Some(Escalation::Pivot);
        }
        if th.refine_after > 0
            && self.ladder.since_reset >= th.refine_after
            && !self.ladder.refined
            && (th.pivot_after == 0 || th.refine_after < th.pivot_after)
        {
            return Some(Escalation::Refine);
        }
        None
    }

    /// Returns true when the pivots without a keep reached `--max-pivots` (a human is needed).
    pub fn pivots_exhausted(&self, th: Thresholds) -> bool {
        th.max_pivots > 0 && self.tally.pivot_count >= th.max_pivots
    }

    /// Returns the directive for the next agent call, from the last row that is neither a
    /// `drift` nor a `blocked` row (those say nothing about the strategy).
    pub fn next_directive(&self) -> Directive {
        match self.ladder.last_strategic {
            Some(Status::Refine) => Directive::Refine,
            Some(Status::Pivot | Status::Search) => Directive::Pivot,
            _ => Directive::Continue,
        }
    }

    /// Returns how many rows carry `status`.
    pub fn count(&self, status: Status) -> u64 {
        Status::ALL
            .iter()
            .position(|s| *s == status)
            .map_or(0, |i| self.ladder.counts[i])
    }
}

/// Compares a stored state with the replayed one; returns the mismatching keys.
pub fn mismatches(stored: &Tally, replayed: &Tally) -> Vec<String> {
    let mut out = Vec::new();
    let mut int = |name: &str, a: u64, b: u64| {
        if a != b {
            out.push(format!("{name}: state {a}, results {b}"));
        }
    };
    int("iteration", stored.iteration, replayed.iteration);
    int(
        "best_iteration",
        stored.best_iteration,
        replayed.best_iteration,
    );
    int("keeps", stored.keeps, replayed.keeps);
    int("discards", stored.discards, replayed.discards);
    int("crashes", stored.crashes, replayed.crashes);
    int("no_ops", stored.no_ops, replayed.no_ops);
    int("blocked", stored.blocked, replayed.blocked);
    int(
        "consecutive_discards",
        stored.consecutive_discards,
        replayed.consecutive_discards,
    );
    int("pivot_count", stored.pivot_count, replayed.pivot_count);
    let mut num = |name: &str, a: f64, b: f64| {
        if (a - b).abs() > 0.001 {
            out.push(format!("{name}: state {a}, results {b}"));
        }
    };
    num(
        "baseline_metric",
        stored.baseline_metric,
        replayed.baseline_metric,
    );
    num("best_metric", stored.best_metric, replayed.best_metric);
    num(
        "current_metric",
        stored.current_metric,
        replayed.current_metric,
    );
    num(
        "last_trial_metric",
        stored.last_trial_metric,
        replayed.last_trial_metric,
    );
    let mut text = |name: &str, a: &str, b: &str| {
        if a != b {
            out.push(format!("{name}: state {a:?}, results {b:?}"));
        }
    };
    text("last_commit", &stored.last_commit, &replayed.last_commit);
    text(
        "last_trial_commit",
        &stored.last_trial_commit,
        &replayed.last_trial_commit,
    );
    text("last_status", &stored.last_status, &replayed.last_status);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::row::Guard;

    fn r(iteration: u64, status: Status, metric: f64, commit: &str) -> Row {
        Row {
            iteration,
            commit: commit.into(),
            metric,
            delta: 0.0,
            guard: Guard::NotRun,
            status,
            description: "d".into(),
        }
    }

    const TH: Thresholds = Thresholds {
        refine_after: 3,
        pivot_after: 5,
        max_pivots: 3,
    };

    #[test]
    fn keep_discard_and_counters() {
        let rows = vec![
            r(0, Status::Baseline, 10.0, "a1"),
            r(1, Status::Discard, 12.0, "b1"),
            r(2, Status::Keep, 8.0, "c1"),
            r(3, Status::Crash, 8.0, "d1"),
            r(4, Status::NoOp, 8.0, "-"),
        ];
        let rp = Replay::from_rows(&rows, Direction::Lower).expect("replay");
        let t = &rp.tally;
        assert_eq!(t.iteration, 4);
        assert_eq!((t.keeps, t.discards, t.crashes, t.no_ops), (1, 1, 1, 1));
        assert_eq!(t.current_metric, 8.0);
        assert_eq!((t.best_metric, t.best_iteration), (8.0, 2));
        assert_eq!(t.last_commit, "c1");
        assert_eq!(t.last_trial_commit, "-");
        assert_eq!(t.consecutive_discards, 2);
        assert_eq!(t.last_status, "no-op");
        assert_eq!(rp.count(Status::Keep), 1);
    }

    #[test]
    fn meta_rows_follow_the_march_reducer() {
        let rows = vec![
            r(0, Status::Baseline, 10.0, "a"),
            r(1, Status::Discard, 11.0, "b"),
            r(2, Status::Discard, 11.0, "c"),
            r(3, Status::Discard, 11.0, "d"),
            r(4, Status::Refine, 10.0, "-"),
            r(5, Status::Pivot, 10.0, "-"),
            r(6, Status::Search, 10.0, "-"),
            r(7, Status::Blocked, 10.0, "-"),
        ];
        let rp = Replay::from_rows_with(&rows, Direction::Lower, Rules::March).expect("replay");
        // refine, pivot and search leave consecutive_discards alone; pivot counts; blocked counts.
        assert_eq!(rp.tally.consecutive_discards, 3);
        assert_eq!(rp.tally.pivot_count, 1);
        assert_eq!(rp.tally.blocked, 1);
        assert_eq!(rp.ladder.since_reset, 0, "a pivot resets the ladder");
    }

    /// Reference rule (May 2026 `log_summary`, anchor §1.4 and scenario 14): a `refine` row counts
    /// toward `consecutive_discards`: discard, discard, refine gives 3. The rest as in March.
    #[test]
    fn refine_counts_toward_consecutive_discards_under_the_current_rules() {
        let rows = vec![
            r(0, Status::Baseline, 10.0, "a"),
            r(1, Status::Discard, 11.0, "b"),
            r(2, Status::Discard, 11.0, "c"),
            r(3, Status::Refine, 10.0, "-"),
        ];
        let rp = Replay::from_rows(&rows, Direction::Lower).expect("replay");
        assert_eq!(rp.rules, Rules::Current);
        assert_eq!(rp.tally.consecutive_discards, 3);
        assert_eq!(rp.tally.last_status, "refine");
        let march = Replay::from_rows_with(&rows, Direction::Lower, Rules::March).unwrap();
        assert_eq!(march.tally.consecutive_discards, 2);
        assert_eq!(march.ladder, rp.ladder, "the escalation ladder is the same");
        let mut more = rows.clone();
        more.extend([r(4, Status::Pivot, 10.0, "-"), r(5, Status::Keep, 9.0, "e")]);
        let rp = Replay::from_rows(&more, Direction::Lower).unwrap();
        assert_eq!(rp.tally.consecutive_discards, 0, "a keep resets it");
    }

    #[test]
    fn drift_moves_the_retained_metric_even_when_worse() {
        let rows = vec![
            r(0, Status::Baseline, 10.0, "a"),
            r(1, Status::Keep, 5.0, "b"),
            r(2, Status::Drift, 7.0, "c"),
            r(3, Status::Keep, 6.0, "d"),
        ];
        let rp = Replay::from_rows(&rows, Direction::Lower).expect("replay");
        assert_eq!(rp.tally.current_metric, 6.0);
        assert_eq!((rp.tally.best_metric, rp.tally.best_iteration), (5.0, 1));
    }

    #[test]
    fn rejects_gaps_and_missing_baseline() {
        let gap = vec![
            r(0, Status::Baseline, 1.0, "a"),
            r(2, Status::Keep, 0.0, "b"),
        ];
        assert_eq!(
            Replay::from_rows(&gap, Direction::Lower),
            Err(ReplayError::OutOfOrder {
                expected: 1,
                found: 2
            })
        );
        let none = vec![r(0, Status::Keep, 1.0, "a")];
        assert_eq!(
            Replay::from_rows(&none, Direction::Lower),
            Err(ReplayError::NoBaseline)
        );
        assert_eq!(
            Replay::from_rows(&[], Direction::Lower),
            Err(ReplayError::NoBaseline)
        );
    }

    /// Drives the ladder the way the driver does: append the experiment row, then any meta rows.
    fn run_ladder(outcomes: &[Status]) -> (Vec<Status>, Replay) {
        let mut rp = Replay::start(&r(0, Status::Baseline, 10.0, "a"), Direction::Lower).unwrap();
        let mut log = Vec::new();
        for st in outcomes {
            let n = rp.tally.iteration + 1;
            let metric = if *st == Status::Keep {
                rp.tally.current_metric - 1.0
            } else {
                10.0
            };
            rp.apply(&r(n, *st, metric, "x")).unwrap();
            log.push(*st);
            while let Some(e) = rp.pending_escalation(TH) {
                let st = match e {
                    Escalation::Refine => Status::Refine,
                    Escalation::Pivot => Status::Pivot,
                    Escalation::Search => Status::Search,
                };
                let n = rp.tally.iteration + 1;
                rp.apply(&r(n, st, 10.0, "-")).unwrap();
                log.push(st);
                if rp.pivots_exhausted(TH) {
                    return (log, rp);
                }
            }
        }
        (log, rp)
    }

    #[test]
    fn the_whole_ladder_ends_in_needs_human() {
        use Status::*;
        let (log, rp) = run_ladder(&[Discard; 15]);
        let expected = vec![
            Discard, Discard, Discard, Refine, Discard, Discard, Pivot, // pivot 1
            Discard, Discard, Discard, Refine, Discard, Discard, Pivot, Search, // pivot 2
            Discard, Discard, Discard, Refine, Discard, Discard, Pivot, // pivot 3 -> stop
        ];
        assert_eq!(log, expected);
        assert!(rp.pivots_exhausted(TH));
        assert_eq!(rp.tally.pivot_count, 3);
        // 15 failures and 3 refine rows (the current rules count them; pivots reset nothing).
        assert_eq!(rp.tally.consecutive_discards, 18);
    }

    #[test]
    fn a_keep_resets_the_ladder() {
        use Status::*;
        let (log, rp) = run_ladder(&[
            Discard, Discard, Discard, Discard, Crash, NoOp, Keep, Discard,
        ]);
        assert_eq!(
            log,
            vec![
                Discard, Discard, Discard, Refine, Discard, Crash, Pivot, NoOp, Keep, Discard
            ]
        );
        assert_eq!(rp.tally.pivot_count, 0);
        assert_eq!(rp.ladder.since_reset, 1);
        assert_eq!(rp.next_directive(), Directive::Continue);
    }

    #[test]
    fn directives_follow_the_last_meta_row() {
        let mut rp = Replay::start(&r(0, Status::Baseline, 1.0, "a"), Direction::Lower).unwrap();
        assert_eq!(rp.next_directive(), Directive::Continue);
        rp.apply(&r(1, Status::Refine, 1.0, "-")).unwrap();
        assert_eq!(rp.next_directive(), Directive::Refine);
        rp.apply(&r(2, Status::Pivot, 1.0, "-")).unwrap();
        assert_eq!(rp.next_directive(), Directive::Pivot);
        rp.apply(&r(3, Status::Search, 1.0, "-")).unwrap();
        assert_eq!(rp.next_directive(), Directive::Pivot);
        // A drift or blocked row (a resume, a blocker) does not cancel a due directive.
        rp.apply(&r(4, Status::Drift, 1.5, "x")).unwrap();
        rp.apply(&r(5, Status::Blocked, 1.5, "-")).unwrap();
        assert_eq!(rp.next_directive(), Directive::Pivot);
        rp.apply(&r(6, Status::Discard, 2.0, "y")).unwrap();
        assert_eq!(rp.next_directive(), Directive::Continue);
    }

    #[test]
    fn a_drift_between_the_second_pivot_and_its_search_row_keeps_the_search() {
        let th = Thresholds {
            refine_after: 3,
            pivot_after: 5,
            max_pivots: 3,
        };
        let mut rp = Replay::start(&r(0, Status::Baseline, 1.0, "a"), Direction::Lower).unwrap();
        rp.apply(&r(1, Status::Pivot, 1.0, "-")).unwrap();
        rp.apply(&r(2, Status::Pivot, 1.0, "-")).unwrap();
        assert_eq!(rp.pending_escalation(th), Some(Escalation::Search));
        // The run stopped here; the resume's re-measure found a drift.
        rp.apply(&r(3, Status::Drift, 1.5, "x")).unwrap();
        assert_eq!(rp.pending_escalation(th), Some(Escalation::Search));
        rp.apply(&r(4, Status::Search, 1.5, "-")).unwrap();
        assert_eq!(rp.pending_escalation(th), None);
    }

    #[test]
    fn zero_disables_a_level() {
        let th = Thresholds {
            refine_after: 0,
            pivot_after: 0,
            max_pivots: 0,
        };
        let mut rp = Replay::start(&r(0, Status::Baseline, 1.0, "a"), Direction::Lower).unwrap();
        for n in 1..=20 {
            rp.apply(&r(n, Status::Discard, 2.0, "x")).unwrap();
            assert_eq!(rp.pending_escalation(th), None);
        }
        assert!(!rp.pivots_exhausted(th));
    }

    #[test]
    fn mismatches_name_the_keys() {
        let rows = vec![
            r(0, Status::Baseline, 10.0, "a"),
            r(1, Status::Keep, 9.0, "b"),
        ];
        let rp = Replay::from_rows(&rows, Direction::Lower).unwrap();
        let mut stored = rp.tally.clone();
        assert!(mismatches(&stored, &rp.tally).is_empty());
        stored.keeps = 5;
        stored.current_metric = 9.0005; // inside the 0.001 tolerance
        let m = mismatches(&stored, &rp.tally);
        assert_eq!(m.len(), 1);
        assert!(m[0].starts_with("keeps"));
    }

    #[test]
    fn integral_metrics_serialize_as_integers() {
        let rows = vec![
            r(0, Status::Baseline, 10.0, "a"),
            r(1, Status::Keep, 9.5, "b"),
        ];
        let rp = Replay::from_rows(&rows, Direction::Lower).unwrap();
        let v = serde_json::to_value(&rp.tally).unwrap();
        assert_eq!(v["baseline_metric"], serde_json::json!(10));
        assert_eq!(v["current_metric"], serde_json::json!(9.5));
    }
}
