//! The executor of one iteration: it carries out the step machine's actions (agent turns with
//! their rate-limit waits, inspection, commits, measurements, rollbacks, rows) and feeds back
//! what happened; plus the escalation rows between iterations.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use git2::Oid;

use super::tree::Inspection;
use super::{Run, ms};
use crate::agent::{Outcome, Request};
use crate::artifacts::inflight::Inflight;
use crate::artifacts::lessons::Lesson;
use crate::artifacts::state::IterationRecord;
use crate::config::Session;
use crate::engine::list_paths;
use crate::engine::number::{canonical, delta};
use crate::engine::policy::{self, Stop};
use crate::engine::reducer::Directive;
use crate::engine::row::{Guard, Row, Status, one_line};
use crate::engine::step::{
    Action, Base, Found, Guarded, Held, Iteration, Judge, Observation, TurnEnd,
};
use crate::error::{Error, Result};
use crate::git::Repo;
use crate::gitdir::{self, GitDirSnapshot};
use crate::prompt::{self, PromptInput};
use crate::{fsutil, signal};

/// Rows shown to the agent.
const PROMPT_ROWS: usize = 10;
/// Lessons shown to the agent.
const PROMPT_LESSONS: usize = 5;

/// The next wait after a rate limit: `backoff`, cut to what is left of the iteration's budget
/// `max` after `waited`; `None` once the budget is spent.
pub(super) fn quota_wait(backoff: Duration, waited: Duration, max: Duration) -> Option<Duration> {
    (waited < max).then(|| backoff.min(max - waited))
}

/// Sleeps up to `d`, waking early for SIGINT/SIGTERM.
pub(super) fn sleep_interruptibly(d: Duration) -> Option<i32> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if let Some(sig) = signal::pending() {
            return Some(sig);
        }
        std::thread::sleep(
            end.saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100)),
        );
    }
    signal::pending()
}

/// What the executor holds while one iteration runs.
pub(super) struct Current {
    n: u64,
    /// The iteration's log directory.
    dir: std::path::PathBuf,
    t0: Instant,
    rec: IterationRecord,
    /// The paths the agent's last turn reported changing.
    reported: Vec<String>,
    /// The last inspection (what to undo or commit).
    insp: Option<Inspection>,
    /// What the agent's turns changed inside `.git` (already put back), for the inspection.
    gitdir: Vec<String>,
}

impl Run {
    /// Appends a row, updates the state (and lessons), and reports it.
    pub(super) fn record(&mut self, row: Row, rec: Option<IterationRecord>) -> Result<()> {
        // The runs a row rests on reach the disk before it (a resume replays them).
        self.keep.runs.sync()?;
        self.results.append(&row)?;
        self.replay
            .apply(&row)
            .map_err(|e| Error::Blocked(format!("internal: {e}")))?;
        if let Some(r) = &rec {
            self.state.engine.record(r.clone());
            let dir = self.paths.iter_dir(row.iteration);
            let mut summary = serde_json::to_value(r).unwrap_or_default();
            if let Some(o) = summary.as_object_mut() {
                o.insert("row".into(), row.to_line().into());
            }
            let _ = fsutil::write_quick(&dir.join("summary.json"), summary.to_string().as_bytes());
        }
        self.save_state()?;
        if !self.exec && matches!(row.status, Status::Keep | Status::Pivot) {
            let context = format!(
                "goal={}; scope={}; metric={}; direction={}",
                self.cfg.goal,
                self.cfg.scope.join(","),
                self.cfg.metric,
                self.cfg.direction
            );
            let outcome = row.status.as_str();
            self.lessons.append(&Lesson {
                title: &row.description,
                strategy: &row.description,
                outcome,
                insight: &if row.status == Status::Keep {
                    format!(
                        "{} {} -> {} ({})",
                        self.cfg.metric,
                        canonical(crate::engine::number::tidy(row.metric - row.delta)),
                        canonical(row.metric),
                        crate::engine::number::signed(row.delta)
                    )
                } else {
                    row.description.clone()
                },
                context,
                iteration: format!("{}#{}", self.run_tag, row.iteration),
            })?;
        }
        self.out.row(&row, rec.as_ref());
        Ok(())
    }

    pub(super) fn experiment_row(
        &self,
        n: u64,
        status: Status,
        commit: Option<Oid>,
        metric: Option<f64>,
        guard: Guard,
        description: String,
    ) -> Row {
        let retained = self.replay.tally.current_metric;
        let metric = metric.unwrap_or(retained);
        Row {
            iteration: n,
            commit: commit.map_or("-".into(), Repo::short),
            metric,
            delta: delta(metric, retained),
            guard,
            status,
            description,
        }
    }

    pub(super) fn prompt_text(
        &self,
        directive: Directive,
        feedback: Option<(&str, &str)>,
    ) -> String {
        let lessons = self.lessons.recent(PROMPT_LESSONS, &self.cfg.goal);
        let own = self.checklist_feedback();
        let feedback = feedback.or(own.as_ref().map(|(t, b)| (t.as_str(), b.as_str())));
        let template = self.turn_template();
        prompt::render(&PromptInput {
            template: &template,
            goal: &self.cfg.goal,
            metric: &self.cfg.metric,
            direction: self.cfg.direction,
            retained: self.replay.tally.current_metric,
            baseline: self.replay.tally.baseline_metric,
            best: self.replay.tally.best_metric,
            verify: &self.cfg.verify,
            guard: self.cfg.guard.as_deref(),
            scope: &self.cfg.scope,
            protected: &self.protected_list,
            directive,
            search: self.replay.ladder.last_strategic == Some(Status::Search),
            results: self.results.tail(PROMPT_ROWS),
            lessons: &lessons,
            feedback,
            previous: prompt::last_experiment(self.results.tail(PROMPT_ROWS)),
        })
    }

    /// Runs one iteration: the step machine decides, this carries its actions out. Returns a
    /// stop when the run must end now.
    pub(super) fn iteration(&mut self) -> Result<Option<Stop>> {
        let n = self.replay.tally.iteration + 1;
        self.scans = 0;
        self.notes.clear();
        let mut it = Current {
            n,
            dir: self.paths.iter_dir(n),
            t0: Instant::now(),
            rec: IterationRecord {
                iteration: n,
                ..IterationRecord::default()
            },
            reported: Vec::new(),
            insp: None,
            gitdir: Vec::new(),
        };
        fsutil::ensure_dir(&it.dir)?;
        let mut m = Iteration::new(
            self.policy,
            self.cfg.direction,
            self.replay.next_directive(),
            self.replay.tally.current_metric,
            self.cfg.rework,
            // A hunt's guard waits for the fixes.
            (self.cfg.guard.is_some() || self.checklist.is_some()) && !self.hunting(),
            self.verify_failures,
        );
        if let Some(seq) = self.keep.seq.take() {
            m = m.with_seq(seq);
        }
        m = self.gate_iteration(m);
        if self.holdout.holdout.is_some() {
            m = m.with_holdout(self.cfg.holdout_policy == crate::config::HoldoutPolicy::Reject);
        }
        let mut marker = Inflight {
            version: 1,
            iteration: n,
            run_tag: self.run_tag.clone(),
            branch: self.branch.clone(),
            start_commit: self.head.to_string(),
            phase: m.phase().as_str().into(),
            trial_commit: None,
            description: None,
            started_at: crate::artifacts::state::now_utc(),
            phase_started_at: Some(crate::artifacts::state::now_utc()),
            pid: std::process::id(),
        };
        marker.save(&self.paths.inflight)?;
        let mut action = m.start();
        loop {
            if let Action::End(stop) = action {
                self.verify_failures = m.verify_failures();
                if let Judge::Seq(seq) = m.take_judge() {
                    self.keep.seq = Some(*seq);
                }
                Inflight::clear(&self.paths.inflight)?;
                return Ok(stop);
            }
            if !matches!(action, Action::Record(_)) {
                self.follow(&mut marker, &m)?;
            } else {
                it.rec.rework_turns = m.reworks();
                if let Action::Record(d) = &action {
                    self.gates_on_record(&m, d.status, d.metric.is_some());
                }
            }
            let turn = matches!(action, Action::Turn { .. });
            let t = Instant::now();
            let obs = self.execute(&mut it, action)?;
            if turn && let Some(p) = self.choose_effort(t.elapsed()) {
                m.tune(p);
            }
            action = m.observe(obs);
            // At most one run per observation: the one just measured.
            let runs: Vec<_> = m
                .take_runs()
                .into_iter()
                .map(|r| (self.keep.count, r))
                .collect();
            if !runs.is_empty() {
                self.log_runs(n, m.trial(), runs)?;
                self.state.noise = m.noise().or(self.state.noise);
            }
        }
    }

    /// Brings the in-flight marker up to the machine's phase and trial (and the description,
    /// carried along: a new description alone is not worth a write, each of which creates a
    /// file; it reaches the marker with the trial commit).
    fn follow(&self, marker: &mut Inflight, m: &Iteration<'_, Oid>) -> Result<()> {
        let phase = m.phase().as_str();
        let trial = m.trial().map(|t| t.to_string());
        if marker.phase != phase || marker.trial_commit != trial {
            if marker.phase != phase {
                marker.phase_started_at = Some(crate::artifacts::state::now_utc());
            }
            marker.phase = phase.into();
            marker.trial_commit = trial;
            marker.description = m.description().map(str::to_string);
            marker.update(&self.paths.inflight)?;
        }
        Ok(())
    }

    /// Carries out one action of the machine and returns what happened.
    pub(super) fn execute(
        &mut self,
        it: &mut Current,
        action: Action<Oid>,
    ) -> Result<Observation<Oid>> {
        Ok(match action {
            Action::Turn {
                directive,
                stem,
                feedback,
                base,
            } => {
                let base = match base {
                    Base::Retained => self.head,
                    Base::Trial(t) => t,
                };
                let feedback = feedback.as_deref().map(|f| ("Failing guard output", f));
                Observation::Turn(self.turn(it, directive, feedback, &stem, base)?)
            }
            Action::Inspect => {
                let insp = self.inspect(std::mem::take(&mut it.gitdir))?;
                self.cross_check(it.n, &it.reported, &insp);
                let mut found = Found {
                    changed: !insp.changed.is_empty(),
                    scope: insp.scope.clone(),
                    protected: insp.protected.clone(),
                    rule: self.broken_fix_rule(&insp),
                };
                found.protected.extend(self.evaluators_changed_by_turn()?);
                it.insp = Some(insp);
                Observation::Inspected(found)
            }
            Action::Undo => {
                // Nothing was committed: the scan just made tells what to undo.
                let scan = it.insp.take().map(|i| i.scan);
                self.restore_tree_known(self.head, true, scan)?;
                Observation::Restored
            }
            Action::Commit { message } => {
                let insp = it.insp.take().unwrap_or_default();
                Observation::Committed(self.commit_trial(&insp, &message)?)
            }
            Action::Amend { trial, message } => {
                let insp = it.insp.take().unwrap_or_default();
                Observation::Committed(self.amend_trial(it.n, trial, &insp, &message)?)
            }
            Action::Measure { stem } => {
                let t = Instant::now();
                self.keep.next_role = crate::engine::seq::Role::Candidate;
                let measured = self.measure(&it.dir, &stem)?;
                it.rec.verify_ms += ms(t.elapsed());
                self.restore_measurement_writes("verify")?;
                Observation::Measured(measured)
            }
            Action::MeasureRetained { stem } => {
                let t = Instant::now();
                let measured = self.measure_retained(&it.dir, &stem)?;
                it.rec.verify_ms += ms(t.elapsed());
                Observation::Measured(measured)
            }
            Action::Guard { stem } => {
                let t = Instant::now();
                let guarded = self.run_guard(&it.dir, &stem)?;
                it.rec.guard_ms += ms(t.elapsed());
                self.restore_measurement_writes("the guard")?;
                Observation::Guarded(guarded.unwrap_or(Guarded::Pass))
            }
            Action::Holdout { stem: _ } => {
                let t = Instant::now();
                let verdict = self.holdout_verdict(it.n)?;
                it.rec.guard_ms += ms(t.elapsed());
                Observation::HeldOut(verdict)
            }
            Action::Keep { trial } => {
                self.holdout_kept();
                self.head = trial;
                self.restore_tree()?;
                Observation::Restored
            }
            Action::RollBack { trial, unfinished } => Observation::RolledBack(
                self.roll_back(it.n, trial, unfinished)?
                    .map(|(commit, name)| Held { commit, name }),
            ),
            Action::Record(mut d) => {
                self.record_finding(it.n, &mut d)?;
                let row =
                    self.experiment_row(it.n, d.status, d.commit, d.metric, d.guard, d.description);
                let rec = std::mem::take(&mut it.rec);
                self.close(row, rec, it.t0)?;
                Observation::Recorded
            }
            Action::End(_) => unreachable!("the iteration loop ends on End"),
        })
    }

    /// Runs one agent turn from `base`, waiting out quota and rate limits within
    /// `--max-quota-wait`; reports how it ended (a branch moved under it included).
    pub(super) fn turn(
        &mut self,
        it: &mut Current,
        directive: Directive,
        feedback: Option<(&str, &str)>,
        stem: &str,
        base: Oid,
    ) -> Result<TurnEnd> {
        let n = it.n;
        // A new agent session after a pivot, or every iteration with `--session fresh`; rework
        // turns always continue the iteration's session.
        let fresh = directive == Directive::Pivot
            || (directive != Directive::Rework && self.cfg.session == Session::Fresh);
        let mut backoff = self.env.quota_backoff;
        let output_schema = self.finding_schema()?;
        // A process runs: the tree may change, watch or not.
        self.no_process_since_clean = false;
        loop {
            self.settle_artifacts()?;
            let prompt = self.prompt_text(directive, feedback);
            let prompt = self.findings_prompt(prompt)?;
            let prompt_file = if stem == "agent" {
                it.dir.join("prompt.md")
            } else {
                it.dir.join(format!("{stem}.prompt.md"))
            };
            let _ = fsutil::write_quick(&prompt_file, prompt.as_bytes());
            let env = self.child_env(n, directive);
            let git_dir = gitdir::snapshot(self.repo.repo.path())?;
            // On disk too, for the next start to put `.git` back if the engine is killed now.
            self.git_dir_on_disk.before_turn(&git_dir)?;
            let p = self.agent.propose(&Request {
                iteration: n,
                directive,
                prompt: &prompt,
                repo: &self.repo.root,
                log_dir: &it.dir,
                log_stem: stem,
                fresh_session: fresh,
                env: &env,
                group_record: &self.paths.child,
                output_schema: output_schema.as_deref(),
            });
            self.findings.output = p.output.clone();
            self.put_back_git_dir(it, stem, &git_dir)?;
            let rec = &mut it.rec;
            rec.agent_ms += ms(p.duration);
            rec.usage.add(&p.usage);
            rec.session_id = p.session_id.clone();
            self.state.engine.session_id = p.session_id.clone();
            self.state.engine.session_usage = p.session_total.clone();
            for note in &p.notes {
                self.out.note(&format!("iteration {n}: {note}"));
                rec.notes.push(format!("{stem}: {note}"));
            }
            // Someone (or the agent) committed, reset or switched branches: stop before any
            // rollback.
            if let Some(why) = self.moved(base)? {
                return Ok(TurnEnd::Moved(why));
            }
            if let Outcome::RateLimited(msg) = &p.outcome {
                let waited = Duration::from_millis(rec.quota_wait_ms);
                let Some(wait) = quota_wait(backoff, waited, self.cfg.max_quota_wait) else {
                    return Ok(TurnEnd::QuotaSpent(format!(
                        "the agent keeps hitting a usage or rate limit ({}) and --max-quota-wait {} is spent",
                        one_line(msg),
                        crate::duration::format(self.cfg.max_quota_wait)
                    )));
                };
                let note = format!(
                    "the agent hit a usage or rate limit ({}); waiting {} before retrying",
                    one_line(msg),
                    crate::duration::human(wait)
                );
                self.out.note(&format!("iteration {n}: {note}"));
                rec.notes.push(format!("{stem}: {note}"));
                // Undo the partial turn back to where it started (a rework turn: its trial).
                self.restore_tree_to(base)?;
                if let Some(sig) = sleep_interruptibly(wait) {
                    return Ok(TurnEnd::Interrupted(sig));
                }
                it.rec.quota_wait_ms += ms(wait);
                backoff = backoff.saturating_mul(2);
                continue;
            }
            it.reported = p.reported_paths.clone();
            let mut description = p.description.clone();
            // A findings turn answers in JSON: its commit (the instrumentation) is named by the
            // finding's title, not by the JSON.
            if self.policy.reports_findings()
                && let Ok(f) = crate::engine::findings::parse::extract(&p.output)
            {
                description = f.title;
            }
            return Ok(match p.outcome {
                Outcome::Completed => TurnEnd::Completed { description },
                Outcome::Interrupted(sig) => TurnEnd::Interrupted(sig),
                Outcome::Failed(reason) | Outcome::RateLimited(reason) => TurnEnd::Failed {
                    reason,
                    timed_out: false,
                    description,
                },
                Outcome::TimedOut(reason) => TurnEnd::Failed {
                    reason,
                    timed_out: true,
                    description,
                },
            });
        }
    }

    /// Puts back what the agent's turn changed inside `.git` (hooks, config, info/) and notes
    /// it; the paths make the inspection a `[PROTECTED]` discard.
    pub(super) fn put_back_git_dir(
        &mut self,
        it: &mut Current,
        stem: &str,
        snapshot: &GitDirSnapshot,
    ) -> Result<()> {
        let put_back = snapshot.restore()?;
        self.git_dir_on_disk.after_turn();
        if put_back.is_empty() {
            return Ok(());
        }
        let note = format!(
            "the turn changed {}; put back (git's hooks, config and info/ are not the agent's)",
            list_paths(&put_back)
        );
        self.out.note(&format!("iteration {}: {note}", it.n));
        it.rec.notes.push(format!("{stem}: {note}"));
        for p in put_back {
            if !it.gitdir.contains(&p) {
                it.gitdir.push(p);
            }
        }
        Ok(())
    }

    /// Records the iteration's row with its record and clears the in-flight marker.
    pub(super) fn close(&mut self, row: Row, mut rec: IterationRecord, t0: Instant) -> Result<()> {
        rec.status = row.status.as_str().to_string();
        rec.total_ms = ms(t0.elapsed());
        rec.tree_scans = self.scans;
        rec.notes.append(&mut self.notes);
        // The report's time axis; a side record, so a failed write does not stop the run.
        let timing =
            crate::artifacts::timing::IterationTiming::from_record(&rec, SystemTime::now());
        let _ = crate::artifacts::timing::append(&self.paths, &timing);
        self.record(row, Some(rec))?;
        Inflight::clear(&self.paths.inflight)
    }

    /// Notes paths the agent reported changing that the engine's diff does not show.
    pub(super) fn cross_check(&mut self, n: u64, reported: &[String], insp: &Inspection) {
        let changed: HashSet<&str> = insp.changed.iter().map(String::as_str).collect();
        let root = self.repo.root.to_string_lossy().to_string();
        let unseen: Vec<String> = reported
            .iter()
            .map(|r| {
                r.strip_prefix(&root)
                    .unwrap_or(r)
                    .trim_start_matches('/')
                    .to_string()
            })
            .filter(|r| {
                !changed.contains(r.as_str())
                    && !insp.scope.iter().any(|s| s.starts_with(r.as_str()))
            })
            .collect();
        if !unseen.is_empty() {
            let note = format!(
                "the agent reported changes the diff does not show ({}); the engine's diff decides",
                list_paths(&unseen)
            );
            self.out.note(&format!("iteration {n}: {note}"));
            self.notes.push(note);
        }
    }

    /// Appends the bookkeeping rows the ladder asks for; returns a stop when pivots are exhausted.
    pub(super) fn escalate(&mut self) -> Result<Option<Stop>> {
        while let Some(e) = policy::next_escalation(&self.rules, &self.replay) {
            let n = self.replay.tally.iteration + 1;
            let row = self.experiment_row(n, e.status, None, None, Guard::NotRun, e.description);
            self.record(row, None)?;
            if e.drop_session {
                self.state.engine.session_id = None;
                self.state.engine.session_usage = None;
                if let Some(stop) = policy::after_pivot(self.policy, &self.rules, &self.replay) {
                    return Ok(Some(stop));
                }
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::quota_wait;
    use std::time::Duration;

    #[test]
    pub(super) fn quota_waits_double_from_the_first_and_stop_at_the_budget() {
        let max = Duration::from_secs(3600);
        let mut backoff = Duration::from_secs(30);
        let mut waited = Duration::ZERO;
        let mut waits = Vec::new();
        while let Some(w) = quota_wait(backoff, waited, max) {
            waits.push(w.as_secs());
            waited += w;
            backoff = backoff.saturating_mul(2);
        }
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1710]);
        assert_eq!(waited, max);
        assert_eq!(
            quota_wait(backoff, Duration::from_secs(10), Duration::from_secs(5)),
            None
        );
    }
}
