//! Metrics the engine measures itself instead of running verify: a checklist's passing items
//! (ship mode, `--verify-format checklist`) and the validated findings (debug, security).

use std::path::Path;

use super::Run;
use crate::config::{Mode, VerifyFormat};
use crate::engine::step::Measured;
use crate::error::Result;

/// Who measures a run's metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MetricSource {
    /// The verify command's output.
    Verify,
    /// The readiness checklist (ship) or the task list (`--verify-format checklist`).
    Checklist,
    /// The validated findings (debug, security).
    Findings,
}

impl MetricSource {
    pub(super) fn of(mode: Mode, format: VerifyFormat) -> MetricSource {
        match (mode, format) {
            (Mode::Debug | Mode::Security, _) => MetricSource::Findings,
            (Mode::Ship, _) | (_, VerifyFormat::Checklist) => MetricSource::Checklist,
            _ => MetricSource::Verify,
        }
    }
}

impl Run {
    /// Measures the metric when the engine does it itself; `None` when verify measures.
    pub(super) fn measure_by_engine(&mut self, dir: &Path, stem: &str) -> Result<Option<Measured>> {
        match MetricSource::of(self.cfg.mode, self.cfg.verify_format) {
            MetricSource::Verify => Ok(None),
            MetricSource::Checklist => self.measure_checklist(dir, stem).map(Some),
            MetricSource::Findings => self.measure_findings(dir, stem).map(Some),
        }
    }
}
