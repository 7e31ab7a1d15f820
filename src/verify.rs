//! What one verify run said: its metric, or why it gave none. One reading for the run, for
//! `config --check` and for `confirm`: the metric decides, not the exit status; fix mode reads
//! a count a passing verify no longer prints as 0; a timeout and a signal are said as such.

use crate::config::{Mode, RunConfig};
use crate::process::{End, Outcome};

/// How a verify run ended, read.
#[derive(Clone, Debug, PartialEq)]
pub enum Read {
    Metric(f64),
    /// No metric: why (naming a non-zero exit), and whether it ran out of time.
    Failed {
        reason: String,
        timed_out: bool,
    },
    /// The engine got this signal while it ran.
    Interrupted(i32),
}

/// Reads the metric from a finished verify run with the run's settings.
pub fn read(cfg: &RunConfig, out: &Outcome) -> Read {
    let failed = |reason: String, timed_out| Read::Failed { reason, timed_out };
    match out.end {
        End::Interrupted(sig) => Read::Interrupted(sig),
        End::TimedOut => failed(
            format!(
                "verify timed out after {}",
                crate::duration::format(cfg.verify_timeout)
            ),
            true,
        ),
        end => {
            let fix = cfg.mode == Mode::Fix && end.success();
            match cfg.metric_format.read(&out.stdout, &cfg.metric, fix) {
                // The gates' part of a metrics-json object (its labels) must read too.
                Ok(v) => match reading(cfg, out) {
                    Some(Err(why)) => failed(why, false),
                    _ => Read::Metric(v),
                },
                Err(why) if end.success() => failed(why, false),
                Err(why) => failed(format!("{why}; verify {}", end.describe()), false),
            }
        }
    }
}

/// The secondary metrics and labels of a metrics-json verify run (GUIDE "Multi-metric gates");
/// `None` in the other formats.
pub fn reading(
    cfg: &RunConfig,
    out: &Outcome,
) -> Option<Result<crate::engine::gates::Reading, String>> {
    (cfg.verify_format == crate::config::VerifyFormat::MetricsJson)
        .then(|| crate::engine::gates::Reading::from_stdout(&out.stdout))
}
