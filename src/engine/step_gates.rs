//! The step machine's multi-metric gates (GUIDE "Multi-metric gates"): the readings of the
//! trial's verify runs, the keep gates checked once the primary metric says keep (after SEQ's
//! verdict under SEQ), and the measured labels in front of the rows.

use super::*;
use crate::engine::gates::{Gates, Reading, with_labels};

/// The gates of an iteration and what the trial's runs read.
#[derive(Clone, Debug, Default)]
pub struct TrialGate {
    /// `None`: no gate configured (nothing is checked).
    gates: Option<Gates>,
    /// The JSON key of the primary metric (set to the row's value in the trial's reading).
    primary_key: String,
    /// The retained result's reading, for the acceptance preference.
    retained: Option<Reading>,
    /// The readings of the trial's candidate runs (cleared by each trial commit).
    readings: Vec<Reading>,
}

impl<'p, C: Copy + std::fmt::Debug> Iteration<'p, C> {
    /// Checks the keep gates on a trial the primary metric would keep; `retained` is the
    /// retained result's reading.
    pub fn with_gates(
        mut self,
        gates: Gates,
        primary_key: &str,
        retained: Option<Reading>,
    ) -> Self {
        self.gate.gates = (!gates.is_empty()).then_some(gates);
        self.gate.primary_key = primary_key.to_string();
        self.gate.retained = retained;
        self
    }

    /// The trial's reading: its runs summarised (medians, majority labels), the primary metric
    /// set to the row's value. `None` before a metrics-json run of the trial.
    pub fn trial_reading(&self) -> Option<Reading> {
        let r = Reading::summarize(&self.gate.readings)?;
        Some(match self.metric {
            Some(v) => r.with_primary(&self.gate.primary_key, v),
            None => r,
        })
    }

    /// A trial commit was made: its runs start over.
    pub(super) fn new_trial_readings(&mut self) {
        self.gate.readings.clear();
    }

    /// A verify run with a reading: kept when it measured the trial (not the retained commit
    /// SEQ re-measures), then judged by its primary metric.
    pub(super) fn on_reading(&mut self, value: f64, reading: Reading) -> Action<C> {
        if !self.judging || self.asked == Role::Candidate {
            self.gate.readings.push(reading);
        }
        self.on_measured(Measured::Metric(value))
    }

    /// The discard of a trial the primary metric keeps but a keep gate refuses, tagged as the
    /// reference tags it; `None` when every gate holds (or none is configured).
    pub(super) fn gate_miss(&mut self) -> Option<Action<C>> {
        let gates = self.gate.gates.as_ref()?;
        let trial = self.trial_reading().unwrap_or_else(|| {
            Reading::default().with_primary(&self.gate.primary_key, self.metric.unwrap_or_default())
        });
        let tag = gates.keep_miss(&trial, self.gate.retained.as_ref())?;
        let desc = self.desc();
        let description = match self.reworks {
            0 => format!("{desc} {tag}"),
            r => format!("{desc} (after {}) {tag}", turns(r)),
        };
        let draft = Draft {
            status: Status::Discard,
            commit: self.trial,
            metric: self.metric,
            guard: self.guard_result,
            description,
        };
        Some(self.roll_back_then(draft))
    }

    /// A row as recorded: a measured row gets the trial's labels in front; a label prefix in
    /// the agent's words is defused (labels come from the measurement only).
    pub(super) fn labelled(&self, mut d: Draft<C>) -> Draft<C> {
        let labels = match (d.metric, self.trial_reading()) {
            (Some(_), Some(r)) => r.labels,
            _ => Vec::new(),
        };
        d.description = with_labels(&d.description, &labels);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Direction;
    use crate::engine::gates::parse_gates;
    use crate::engine::policy::Loop;
    use crate::engine::seq::{Effort, Next, Params, Seq};

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn reading(pairs: &[(&str, f64)], labels: &[&str]) -> Reading {
        Reading {
            metrics: pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            labels: s(labels),
        }
    }

    /// A guardless iteration (lower is better, retained 10) with `gates`, at its trial commit 1;
    /// returns the measurement it asks for.
    fn at_trial(it: &mut Iteration<'static, u32>, desc: &str) -> Action<u32> {
        it.start();
        let said = TurnEnd::Completed {
            description: desc.into(),
        };
        assert_eq!(it.observe(Observation::Turn(said)), Action::Inspect);
        let changed = Found {
            changed: true,
            ..Found::default()
        };
        assert!(matches!(
            it.observe(Observation::Inspected(changed)),
            Action::Commit { .. }
        ));
        it.observe(Observation::Committed(1))
    }

    fn iteration(g: Gates) -> Iteration<'static, u32> {
        Iteration::new(
            &Loop,
            Direction::Lower,
            Directive::Continue,
            10.0,
            1,
            false,
            0,
        )
        .with_gates(g, "score", None)
    }

    fn measured(v: f64, r: Reading) -> Observation<u32> {
        Observation::Measured(Measured::MetricsJson(v, r))
    }

    /// The row the iteration records after its rollback or keep.
    fn row_after(it: &mut Iteration<'static, u32>, obs: Observation<u32>) -> Draft<u32> {
        match it.observe(obs) {
            Action::Record(d) => d,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_improvement_missing_a_keep_criterion_is_a_tagged_discard_with_its_labels() {
        let g = parse_gates(&[], &s(&["failures == 0"]), &[], &[]).unwrap();
        let mut it = iteration(g);
        at_trial(&mut it, "cache the parser");
        let bad = reading(&[("score", 8.0), ("failures", 2.0)], &["fast"]);
        assert_eq!(
            it.observe(measured(8.0, bad)),
            Action::RollBack {
                trial: Some(1),
                unfinished: false
            }
        );
        let d = row_after(&mut it, Observation::RolledBack(None));
        assert_eq!(d.status, Status::Discard);
        assert_eq!(d.metric, Some(8.0));
        assert_eq!(
            d.description,
            "[labels: fast] cache the parser [KEEP-CRITERIA miss] failures == 0 (actual 2)"
        );
    }

    #[test]
    fn an_improvement_passing_every_gate_is_kept_with_its_labels() {
        let g = parse_gates(&[], &s(&["failures == 0"]), &s(&["fast"]), &[]).unwrap();
        let mut it = iteration(g);
        at_trial(&mut it, "cache the parser");
        let good = reading(&[("score", 8.0), ("failures", 0.0)], &["fast"]);
        assert_eq!(it.observe(measured(8.0, good)), Action::Keep { trial: 1 });
        let d = row_after(&mut it, Observation::Restored);
        assert_eq!(
            (d.status, d.description.as_str()),
            (Status::Keep, "[labels: fast] cache the parser")
        );
        assert_eq!(
            it.trial_reading().unwrap().metrics.get("failures"),
            Some(&0.0)
        );
    }

    #[test]
    fn labels_claimed_in_the_description_do_not_pass_the_keep_label_gate() {
        let g = parse_gates(&[], &[], &s(&["root-cause"]), &[]).unwrap();
        let mut it = iteration(g);
        at_trial(&mut it, "[labels: root-cause] fixed it");
        let r = reading(&[("score", 8.0)], &[]);
        assert!(matches!(
            it.observe(measured(8.0, r)),
            Action::RollBack { .. }
        ));
        let d = row_after(&mut it, Observation::RolledBack(None));
        assert_eq!(
            d.description,
            "(labels: root-cause) fixed it [KEEP-GATE miss] missing required keep labels: root-cause"
        );
    }

    #[test]
    fn a_worse_trial_is_a_plain_discard_whatever_the_gates() {
        let g = parse_gates(&[], &s(&["failures == 0"]), &[], &[]).unwrap();
        let mut it = iteration(g);
        at_trial(&mut it, "slower");
        let r = reading(&[("score", 12.0), ("failures", 3.0)], &[]);
        assert!(matches!(
            it.observe(measured(12.0, r)),
            Action::RollBack { .. }
        ));
        let d = row_after(&mut it, Observation::RolledBack(None));
        assert_eq!(d.description, "slower");
    }

    #[test]
    fn under_seq_the_gate_reads_the_median_of_the_trials_runs_after_its_keep_verdict() {
        // Baseline 10, 10: exact mode; the trial's runs say 8 each (a keep after one rerun),
        // with failures 0 then 1: the median 0.5 misses `failures == 0`.
        let mut seq = Seq::new(Direction::Lower, Params::preset(Effort::Default));
        for v in [10.0, 10.0] {
            assert_eq!(seq.next(), Next::Run(Role::Baseline));
            seq.observe(Role::Baseline, v);
        }
        let g = parse_gates(&[], &s(&["failures == 0"]), &[], &[]).unwrap();
        let mut it = iteration(g).with_seq(seq);
        let mut act = at_trial(&mut it, "try");
        let mut k = 0;
        let (mut ret_readings, mut cand) = (0, 0);
        while let Action::Measure { .. } | Action::MeasureRetained { .. } = act {
            k += 1;
            assert!(k < 50);
            act = if matches!(act, Action::Measure { .. }) {
                cand += 1;
                let f = if cand == 1 { 0.0 } else { 1.0 };
                it.observe(measured(
                    8.0,
                    reading(&[("score", 8.0), ("failures", f)], &[]),
                ))
            } else {
                // The retained commit's runs never count for the trial's gate.
                ret_readings += 1;
                it.observe(measured(10.0, reading(&[("failures", 0.0)], &[])))
            };
        }
        assert!(cand >= 2, "SEQ reran the trial ({cand}, {ret_readings})");
        assert!(matches!(act, Action::RollBack { .. }), "{act:?}");
        let d = row_after(&mut it, Observation::RolledBack(None));
        assert!(
            d.description
                .ends_with("[KEEP-CRITERIA miss] failures == 0 (actual 0.5)"),
            "{}",
            d.description
        );
    }
}
