//! The run loop with I/O (DESIGN §5): the pure step machine in `engine::step` decides each
//! iteration and this module carries its actions out. Submodules, one concern each: `startup`
//! (preflight, new run, resume), `recover` (an iteration a killed process left), `step` (the
//! executor of one iteration and the escalation rows), `measure` (verify and guard runs),
//! `tree` (inspection, restores and what they preserve), `ending` (budgets, the end record,
//! notify).

mod amend;
mod baseline_check;
mod check;
mod checklist;
mod drift;
mod ending;
mod engine_metric;
mod findings;
mod fix_phase;
mod fix_rules;
mod gates;
mod holdout;
mod judge;
mod measure;
mod preflight;
mod recover;
mod ship_step;
mod startup;
mod step;
mod tree;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use git2::Oid;

use crate::agent::Agent;
use crate::artifacts::Paths;
use crate::artifacts::lessons::Lessons;
use crate::artifacts::lock::Lock;
use crate::artifacts::results::ResultsLog;
use crate::artifacts::state::StateFile;
use crate::config::{RunConfig, Settings, Source};
use crate::engine::policy::{self, Policy, Rules, Stop};
use crate::engine::reducer::Replay;
use crate::engine::row::Guard;
use crate::error::{Result, exit};
use crate::git::{KeptFile, Repo};
use crate::output::{Output, Summary};
use crate::scope::PathSet;
use crate::watch::TreeWatch;
use crate::{fsutil, signal};

pub(crate) use baseline_check::run_watching_opens;
pub use check::{Checked, check};
pub use startup::run;

/// What `run` and `exec` hand to the driver.
pub struct Options {
    /// The explicit settings (file, environment, flags), without defaults.
    pub settings: Settings,
    /// Where each explicit setting came from (to place validation errors).
    pub sources: BTreeMap<&'static str, Source>,
    /// The config file that was read, if any (protected from the agent when in the repo).
    pub config_file: Option<std::path::PathBuf>,
    /// `exec`: always fresh, lessons read-only, exec exit codes.
    pub exec: bool,
    pub output: Output,
}

/// What a run is made of before its artifacts are read or created.
struct Setup {
    cfg: RunConfig,
    repo: Repo,
    paths: Paths,
    out: Output,
    exec: bool,
    branch: String,
    lessons: Lessons,
    agent: Box<dyn Agent>,
    scope: PathSet,
    protect: PathSet,
    protected_list: Vec<String>,
    /// The files verify and guard execute (pinned at the baseline).
    evaluators: Vec<crate::protection::EvaluatorFile>,
    lock: Lock,
    env: crate::config::EngineEnv,
    /// The checklist the engine measures (ship mode, `--verify-format checklist`).
    checklist: Option<crate::ship::Spec>,
}

struct Run {
    cfg: RunConfig,
    repo: Repo,
    paths: Paths,
    out: Output,
    exec: bool,
    results: ResultsLog,
    replay: Replay,
    state: StateFile,
    state_stamp: Option<(u64, i128, u64)>,
    lessons: Lessons,
    agent: Box<dyn Agent>,
    scope: PathSet,
    protect: PathSet,
    protected_list: Vec<String>,
    kept: Vec<KeptFile>,
    branch: String,
    head: Oid,
    run_tag: String,
    started: Instant,
    verify_failures: u32,
    /// The mode's decisions (prompt template, keep rule, goal).
    policy: &'static dyn Policy,
    /// The limits the between-iterations decisions need.
    rules: Rules,
    /// The measurement-writes note was shown (it is shown once per run).
    told_measurement_writes: bool,
    /// The settings last written to `autoresearch-results/engine/settings.json`.
    saved_settings: Option<String>,
    /// Change notification over the work tree (lets a scan that cannot find anything be skipped).
    watch: TreeWatch,
    /// The commit the work tree equalled when the watch was last armed (set after a trial
    /// commit of everything the agent changed; cleared by any restore).
    clean_at: Option<Oid>,
    /// `clean_at` was set by a measurement's restore and no process has run since: the next
    /// restore has nothing to scan for, watch or not.
    no_process_since_clean: bool,
    /// Full work-tree scans made in the current iteration.
    scans: u32,
    /// What the engine noted about the current iteration (kept in its record).
    notes: Vec<String>,
    /// Verify and guard are running on the untouched tree (baseline, re-measure on resume).
    untouched: bool,
    /// What verify and guard touched at the baseline (only while it runs).
    baseline_check: Option<baseline_check::BaselineCheck>,
    /// The tree was restored and the watch armed since: a change seen before the next agent
    /// turn was made by someone else.
    settled: bool,
    /// The `.git` snapshot of the running turn, kept on disk for a recovery after a crash.
    /// Declared before the lock: it removes its file before the lock is released.
    git_dir_on_disk: crate::gitdir::OnDisk,
    _lock: Lock,
    /// The evaluator files and their pins (`drift`).
    pins: drift::Pins,
    /// The engine's own variables, read once at start.
    env: crate::config::EngineEnv,
    /// The keep rule's state between iterations (SEQ, the runs log).
    keep: judge::KeepState,
    /// `--holdout`'s reference and the values of the keep being judged.
    holdout: holdout::HoldoutState,
    /// `--max-duration`, `--until`, `--max-tokens`, `--plateau` and the time spent before.
    budgets: ending::Budgets,
    /// The checklist the engine measures and its latest results (`checklist`).
    checklist: Option<checklist::ChecklistRun>,
    /// The labels of the last measurement of the untouched tree (the baseline row's).
    untouched_labels: Vec<String>,
    /// debug, security: the findings and the turn's answer.
    findings: findings::FindingsRun,
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

fn free_mb(path: &Path) -> Option<u64> {
    let disks = sysinfo::Disks::new_with_refreshed_list().ok()?;
    disks
        .iter()
        .filter(|d| path.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map(|d| d.available_space() / (1024 * 1024))
}

fn new_run(
    setup: Setup,
    results: ResultsLog,
    replay: Replay,
    state: StateFile,
    head: Oid,
    run_tag: String,
) -> Run {
    let Setup {
        cfg,
        repo,
        paths,
        out,
        exec,
        branch,
        lessons,
        agent,
        scope,
        protect,
        protected_list,
        evaluators,
        lock,
        env,
        checklist,
    } = setup;
    let policy = policy::for_mode(cfg.mode);
    let keep = judge::KeepState::new(&cfg, &paths.runs);
    let budgets = ending::Budgets::new(&cfg, &state.engine);
    let rules = Rules {
        metric: cfg.metric.clone(),
        stop_condition: cfg.stop_condition.clone(),
        thresholds: cfg.thresholds,
        iterations: cfg.iterations,
    };
    Run {
        cfg,
        repo,
        paths,
        out,
        exec,
        results,
        replay,
        state,
        state_stamp: None,
        lessons,
        agent,
        scope,
        protect,
        protected_list,
        kept: Vec::new(),
        branch,
        head,
        run_tag,
        started: Instant::now(),
        verify_failures: 0,
        policy,
        rules,
        told_measurement_writes: false,
        saved_settings: None,
        watch: TreeWatch::off(),
        clean_at: None,
        no_process_since_clean: false,
        scans: 0,
        notes: Vec::new(),
        untouched: false,
        baseline_check: None,
        settled: false,
        git_dir_on_disk: crate::gitdir::OnDisk::default(),
        _lock: lock,
        pins: drift::Pins::new(evaluators),
        env,
        keep,
        holdout: holdout::HoldoutState::default(),
        budgets,
        checklist: checklist.map(checklist::ChecklistRun::new),
        untouched_labels: Vec::new(),
        findings: findings::FindingsRun::default(),
    }
}

impl Run {
    fn kept_path_set(&self) -> HashSet<String> {
        self.kept.iter().map(|k| k.path.clone()).collect()
    }

    fn save_state(&mut self) -> Result<()> {
        self.align_gate_state();
        self.state.state = self.replay.tally.clone();
        self.state.engine.version = env!("CARGO_PKG_VERSION").to_string();
        self.state.engine.branch = self.branch.clone();
        self.state.engine.head = self.head.to_string();
        self.state.engine.elapsed_ms = ms(self.run_elapsed());
        let scope = self.cfg.scope.join(",");
        crate::artifacts::context::add_config_keys(&self.paths, &mut self.state.config, &scope);
        self.state.save(&self.paths.state)?;
        self.state_stamp = fsutil::fingerprint(&self.paths.state);
        // A second copy of the current settings, so a lost state file does not lose the flags
        // changed on a resume (the log's `# settings:` line holds the original ones).
        let settings = serde_json::Value::Object(self.state.config.clone()).to_string();
        if self.saved_settings.as_deref() != Some(settings.as_str()) {
            fsutil::write_atomic(&self.paths.settings, settings.as_bytes())?;
            self.saved_settings = Some(settings);
        }
        Ok(())
    }

    /// Checks the hard blockers between iterations.
    fn blocker(&self) -> Result<Option<String>> {
        let min = self.env.min_free_mb;
        if let Some(free) = free_mb(&self.repo.root)
            && free < min
        {
            return Ok(Some(format!(
                "only {free} MB free on the repository's disk (at least {min} MB needed); free some space and run again"
            )));
        }
        self.moved(self.head)
    }

    /// Returns why the branch is no longer where the engine left it (at `expected`), if it moved:
    /// someone else committed, reset or switched branches. The engine then stops without touching
    /// anything.
    fn moved(&self, expected: Oid) -> Result<Option<String>> {
        let branch = self.repo.branch();
        if branch.as_deref() != Some(self.branch.as_str()) {
            return Ok(Some(format!(
                "HEAD moved: the branch changed from {} to {} during the run; stopped without touching anything (check out the run's branch, clean the tree, and run again)",
                self.branch,
                branch.as_deref().unwrap_or("a detached HEAD")
            )));
        }
        let head = self.repo.head()?;
        if head != expected {
            return Ok(Some(format!(
                "HEAD moved from {} to {} during the run (someone else committed or reset); stopped without touching anything (inspect the branch and clean the tree; a run on top of it is re-measured as a drift)",
                Repo::short(expected),
                Repo::short(head)
            )));
        }
        Ok(None)
    }

    fn main_loop(&mut self) -> Result<Stop> {
        self.watch = TreeWatch::start(&self.repo, &self.paths.own_files());
        // The first check between iterations needs a restore made under the watch.
        self.settled = false;
        if let Some(why) = self.watch.take_off_reason() {
            self.out
                .note(&format!("scanning the whole work tree every time: {why}"));
        }
        let stop = loop {
            // A signal first: one that arrived during the last iteration ends the run as
            // interrupted, whatever limit that iteration reached.
            if let Some(sig) = signal::pending() {
                break Stop::Interrupted(sig);
            }
            if crate::launch::control::stop_requested(&self.paths.private) {
                break Stop::Requested;
            }
            // Limits next, so `--iterations N` means N experiments and no row after the last; a
            // pending refine or pivot row is appended on resume (the ladder is recomputed).
            if let Some(stop) = self.gated_stop_check() {
                break stop;
            }
            if let Some(stop) = self.escalate()? {
                break stop;
            }
            if let Some(stop) = self.gated_stop_check() {
                break stop;
            }
            if let Some(stop) = self.budget_check() {
                break stop;
            }
            if let Some(why) = self.blocker()? {
                break Stop::Blocked(why);
            }
            if let Some(why) = self.changed_by_someone_else()? {
                break Stop::Blocked(why);
            }
            match self.rebaseline_if_drifted()? {
                drift::Drift::Stop(stop) => break stop,
                // The drift row is a row: the limits are checked again.
                drift::Drift::Rebaselined => continue,
                drift::Drift::None => {}
            }
            if let Some(stop) = self.iteration()? {
                break stop;
            }
        };
        if !matches!(stop, Stop::Interrupted(_) | Stop::Blocked(_)) {
            self.holdout_end()?;
        }
        if let Some((status, description)) = policy::closing_row(&stop) {
            let n = self.replay.tally.iteration + 1;
            let row = self.experiment_row(n, status, None, None, Guard::NotRun, description);
            self.record(row, None)?;
        }
        Ok(stop)
    }

    fn finish(&self, stop: &Stop) -> Summary {
        if !matches!(stop, Stop::Interrupted(_) | Stop::Blocked(_)) {
            crate::confirm::at_end(&self.repo, &self.paths, &self.cfg, &self.out);
        }
        let t = &self.replay.tally;
        let improved = self
            .cfg
            .direction
            .improves(t.best_metric, t.baseline_metric);
        let (reason, message, code) = match stop {
            Stop::Goal(m) => ("goal_reached", format!("goal reached: {m}."), exit::OK),
            Stop::Cap(cap) => (
                "iteration_cap",
                // The count is of experiments, what the cap counts (GUIDE §7).
                format!(
                    "iteration cap reached ({}/{cap}).",
                    self.replay.ladder.experiments
                ),
                exit::OK,
            ),
            Stop::NeedsHuman(m) => ("needs_human", format!("stopped: {m}."), exit::NEEDS_HUMAN),
            Stop::Blocked(m) => ("blocked", format!("blocked: {m}."), exit::BLOCKED),
            Stop::Budget(_, m) => ("budget", format!("budget spent: {m}."), exit::OK),
            Stop::Plateau(_) => {
                let (_, _, m) = crate::ending::describe_stop(stop);
                ("plateau", format!("plateau: {m}."), exit::OK)
            }
            Stop::Requested => (
                "stopped",
                format!("stopped on request after iteration {}.", t.iteration),
                exit::OK,
            ),
            Stop::Interrupted(sig) => (
                "interrupted",
                format!(
                    "interrupted by {}; the tree is back at the retained commit.",
                    crate::engine::signal_name(*sig)
                ),
                signal::exit_code(*sig),
            ),
        };
        let gate = || {
            let list = self.checked_findings();
            crate::engine::findings::gate::mode_exec_exit(
                self.cfg.mode,
                self.cfg.settings.fail_on,
                &list,
            )
        };
        let code = if self.exec && !matches!(stop, Stop::Blocked(_) | Stop::Interrupted(_)) {
            if let Some(code) = gate() {
                code
            } else if improved {
                exit::OK
            } else {
                exit::NO_IMPROVEMENT
            }
        } else {
            code
        };
        Summary {
            run_tag: self.run_tag.clone(),
            reason: reason.to_string(),
            message,
            exit_code: code,
            baseline: t.baseline_metric,
            best: t.best_metric,
            best_iteration: t.best_iteration,
            retained: t.current_metric,
            iterations: t.iteration,
            keeps: t.keeps,
            discards: t.discards,
            crashes: t.crashes,
            no_ops: t.no_ops,
            improved,
            usage: self.state.engine.usage.clone(),
            duration_ms: ms(self.started.elapsed()),
        }
    }
}
