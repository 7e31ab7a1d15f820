//! The driver's side of the multi-metric gates (GUIDE "Multi-metric gates"): the retained and
//! trial readings kept in the state (`current_metrics`, `last_trial_metrics`, ...), the gated
//! stop check, and the gates handed to each iteration.

use git2::Oid;

use super::Run;
use crate::engine::gates::Reading;
use crate::engine::goal::{self, GoalGates};
use crate::engine::policy::Stop;
use crate::engine::row::Status;
use crate::engine::step::Iteration;

impl Run {
    /// The retained result's reading: the stored numbers with the TSV's retained labels.
    pub(super) fn retained_reading(&self) -> Option<Reading> {
        let t = &self.replay.tally;
        t.gates.retained(&t.current_labels)
    }

    /// The stop before the next iteration: GUIDE §7's order, the goal gated on every
    /// configured gate holding on the retained result.
    pub(super) fn gated_stop_check(&self) -> Option<Stop> {
        let retained = self.retained_reading();
        let g = GoalGates {
            gates: &self.cfg.gates,
            retained: retained.as_ref(),
        };
        goal::stop_check(self.policy, &self.rules, &self.replay, &g)
    }

    /// Hands the gates to an iteration (nothing when none is configured).
    pub(super) fn gate_iteration<'p>(&self, m: Iteration<'p, Oid>) -> Iteration<'p, Oid> {
        if self.cfg.gates.is_empty() {
            return m;
        }
        m.with_gates(
            self.cfg.gates.clone(),
            &self.cfg.primary_metric_key,
            self.retained_reading(),
        )
    }

    /// A row is about to be recorded: a measured trial's reading becomes `last_trial_*`, and
    /// the retained one on a keep (the labels follow from the row itself).
    pub(super) fn gates_on_record(
        &mut self,
        m: &Iteration<'_, Oid>,
        status: Status,
        measured: bool,
    ) {
        let Some(r) = m.trial_reading().filter(|_| measured) else {
            self.replay.tally.gates.unmeasured();
            return;
        };
        let kept = status == Status::Keep;
        self.replay.tally.gates.trial(&self.cfg.gates, &r, kept);
    }

    /// Before the state is written: the stored numbers' primary is the state's metric (a SEQ
    /// mean, the baseline's mean, a drift's value), as the reference requires.
    pub(super) fn align_gate_state(&mut self) {
        let t = &mut self.replay.tally;
        let (current, last) = (t.current_metric, t.last_trial_metric);
        t.gates.align(&self.cfg.primary_metric_key, current, last);
    }

    /// A measurement of the untouched tree (the baseline, the re-measure on resume, a drift):
    /// its reading is the retained one; its labels go on the baseline row. Returns `value`.
    pub(super) fn untouched_reading(&mut self, value: f64, r: Reading) -> f64 {
        let r = r.with_primary(&self.cfg.primary_metric_key, value);
        self.untouched_labels = r.labels.clone();
        self.replay.tally.gates.retain(&self.cfg.gates, &r);
        value
    }
}
