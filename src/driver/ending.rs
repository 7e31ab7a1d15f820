//! The end of a run, carried out: the budgets fed between iterations (time over all sessions,
//! the `--until` deadline of this session, tokens from the state), the `ended` record written
//! while the lock is still held, and `--notify` started detached (GUIDE §15 "Budgets, plateau
//! and notify").

use std::time::{Duration, SystemTime};

use super::Run;
use crate::artifacts::state::EngineInfo;
use crate::config::RunConfig;
use crate::engine::number::canonical;
use crate::engine::policy::{self, Limits, Spent, Stop};
use crate::error::{Error, Result};
use crate::output::Summary;

/// The budgets of this session and the time the run had spent before it.
pub(super) struct Budgets {
    limits: Limits,
    before: Duration,
}

impl Budgets {
    /// Resolves the limits at the session's start: `--until` is its next occurrence from now.
    pub(super) fn new(cfg: &RunConfig, engine: &EngineInfo) -> Budgets {
        let until = cfg.until.and_then(|(h, m)| {
            crate::localtime::next_local(h, m)
                .ok()
                .map(|at| (at, format!("{h:02}:{m:02}")))
        });
        Budgets {
            limits: Limits {
                max_duration: cfg.max_duration,
                until,
                max_tokens: cfg.max_tokens,
                plateau: cfg.plateau,
            },
            before: Duration::from_millis(engine.elapsed_ms),
        }
    }
}

/// Tokens that count against `--max-tokens`: input (cached included) plus output.
pub(super) fn tokens(engine: &EngineInfo) -> u64 {
    engine.usage.input_tokens + engine.usage.output_tokens
}

impl Run {
    /// Active time of the run: its earlier sessions plus this one.
    pub(super) fn run_elapsed(&self) -> Duration {
        self.budgets.before + self.started.elapsed()
    }

    /// The budget or plateau stop that applies now (between iterations only).
    pub(super) fn budget_check(&self) -> Option<Stop> {
        let spent = Spent {
            elapsed: self.run_elapsed(),
            now: SystemTime::now(),
            tokens: tokens(&self.state.engine),
        };
        policy::budget_stop(&self.budgets.limits, &spent, &self.replay)
    }

    /// Ends the run: its summary, the `ended` record (written before the lock is released),
    /// then `--notify`. An engine error is recorded too and returned as it was.
    pub(super) fn conclude(mut self, result: Result<Stop>) -> Result<Summary> {
        let (ended, outcome) = match result {
            Ok(stop) => {
                let summary = self.finish(&stop);
                let e =
                    crate::ending::record(Some(&stop), None, self.run_elapsed(), summary.exit_code);
                (e, Ok(summary))
            }
            Err(err) => {
                let interrupted = matches!(err, Error::Interrupted(..));
                let msg = err.to_string();
                let e = crate::ending::record(
                    None,
                    Some((&msg, interrupted)),
                    self.run_elapsed(),
                    err.exit_code(),
                );
                (e, Err(err))
            }
        };
        self.state.engine.ended = Some(ended.clone());
        if let Err(e) = self.save_state() {
            self.out
                .note(&format!("could not record how the run ended: {e}"));
        }
        // The morning summary is there when someone looks (and for the notification).
        match crate::report::write_at(&self.repo, &self.paths) {
            Ok(w) => self.out.note(&format!("report: {}", w.markdown.display())),
            Err(e) => self.out.note(&format!("could not write the report: {e}")),
        }
        if let Some(line) = self.findings_line() {
            self.out.note(&line);
        }
        let gate = crate::engine::findings::gate::fail_on_line;
        if let Some(line) = gate(self.cfg.settings.fail_on, &self.checked_findings()) {
            self.out.note(&line);
        }
        if let Some(cmd) = self.cfg.notify.clone() {
            self.notify(&cmd, &ended);
        }
        if let Err(e) = crate::artifacts::context::deactivate(&self.paths) {
            self.out
                .note(&format!("could not mark the run inactive: {e}"));
        }
        outcome
    }

    fn notify(&self, cmd: &str, ended: &crate::ending::Ended) {
        let t = &self.replay.tally;
        let notice = crate::notify::Notice {
            outcome: ended.reason.clone(),
            detail: ended.detail.clone(),
            exit_code: ended.exit_code,
            run_tag: self.run_tag.clone(),
            repo: self.repo.root.clone(),
            report: self.paths.private.join(crate::report::MARKDOWN),
            best: canonical(t.best_metric),
            baseline: canonical(t.baseline_metric),
        };
        let log = self.paths.private.join("notify.log");
        match crate::notify::spawn(cmd, &notice, &log) {
            Ok(()) => self.out.note(&format!(
                "notify: started `{cmd}` (output in {})",
                log.display()
            )),
            Err(e) => self.out.note(&format!("notify: `{cmd}` not run: {e}")),
        }
    }
}
