//! Start-up: preflight (every refusal before the first write), a new run with its baseline, or
//! the resume of an existing one with its re-measure.

use git2::Oid;

use super::measure::Untouched;
use std::path::Path;

use super::preflight::{Loaded, Preflight, load_existing, preflight, preflight_tree, tag_taken};
use super::recover::recover;
use super::{Options, Run, Setup, new_run};
use crate::artifacts::inflight::Inflight;
use crate::artifacts::lessons::Lessons;
use crate::artifacts::lock::Lock;
use crate::artifacts::results::ResultsLog;
use crate::artifacts::state::{EngineInfo, StateFile};
use crate::config::{AgentKind, RunConfig};
use crate::engine::list_paths;
use crate::engine::number::{canonical, delta, same};
use crate::engine::reducer::Replay;
use crate::engine::row::{Guard, Row, Status, one_line};
use crate::engine::step::RunTaken;
use crate::error::{Error, IoContext, Result};
use crate::git::Repo;
use crate::output::{StartInfo, Summary};
use crate::process;
use crate::{fsutil, signal};

/// Returns a slug of the goal usable as a run tag.
pub(super) fn derive_tag(goal: &str) -> String {
    let mut slug = String::new();
    for word in goal
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(5)
    {
        if !slug.is_empty() {
            slug.push('-');
        }
        slug.push_str(&word.to_ascii_lowercase());
        if slug.len() >= 40 {
            break;
        }
    }
    slug.truncate(40);
    let slug = slug.trim_matches('-').to_string();
    if slug.is_empty() { "run".into() } else { slug }
}

/// Entry point of `run` and `exec`.
pub fn run(opts: Options) -> Result<Summary> {
    signal::install();
    let exec = opts.exec;
    let fix = super::fix_phase::FixAfter::of(&opts);
    let pre = preflight(opts)?;
    let mut own = take_over(&pre)?;
    let Preflight {
        out,
        repo,
        branch,
        paths,
        cfg,
        scope,
        protect,
        protected_list,
        protection,
        mut agent,
        env,
        checklist,
        ..
    } = pre;
    if let Some(e) = own
        .loaded
        .as_ref()
        .and_then(|old| old.state.as_ref())
        .map(|s| &s.engine)
        && e.session_id.is_some()
    {
        agent.restore_session(e.session_id.clone(), e.session_usage.clone());
    }
    let setup = Setup {
        lessons: Lessons::load(&paths.lessons),
        cfg,
        repo,
        paths,
        out,
        exec,
        branch,
        agent,
        scope,
        protect,
        protected_list,
        evaluators: protection.evaluators,
        lock: own.lock,
        env,
        checklist,
    };
    let mut run = match own.loaded.take() {
        None => start_fresh(setup, &own.user_untracked)?,
        Some(old) => resume(setup, &own.user_untracked, old)?,
    };
    for n in &own.notes {
        run.out.note(n);
    }
    // The run has started (a refused baseline leaves no context): the reference's context.
    if let Err(e) = crate::artifacts::context::write(&run.paths, &run_context(&run.cfg, exec)) {
        run.out
            .note(&format!("could not write the run's context: {e}"));
    }
    let stop = run.main_loop();
    let stop = run.after_loop(stop);
    super::fix_phase::after_hunt(fix, run.conclude(stop))
}

/// What the reference's context and pointer say of this run: active (exec: not, and no session).
fn run_context(
    cfg: &crate::config::RunConfig,
    exec: bool,
) -> crate::artifacts::context::Context<'static> {
    let session = if crate::launch::child::detached() {
        "background"
    } else {
        "foreground"
    };
    crate::artifacts::context::Context {
        active: !exec,
        session_mode: (!exec).then_some(session),
        scope: cfg.scope.join(","),
    }
}

/// What taking over the run's files established.
struct Owned {
    lock: Lock,
    /// The run to resume (none for a fresh start).
    loaded: Option<Loaded>,
    /// Your untracked files outside the scope.
    user_untracked: Vec<String>,
    /// What to say once the run has started.
    notes: Vec<String>,
}

/// From here on the run owns its artifacts: the lock, the exclude entries, whatever a killed
/// run left (its processes, its unfinished iteration), then the tree check.
fn take_over(pre: &Preflight) -> Result<Owned> {
    let (repo, paths, out) = (&pre.repo, &pre.paths, &pre.out);
    fsutil::ensure_dir(&paths.private)?;
    repo.add_excludes(&paths.exclude_entries())?;
    let (lock, reclaimed) = Lock::acquire(&paths.lock)?;
    let mut notes = Vec::new();
    // Where a killed atomic write leaves its temporary file: beside the artifacts, and in .git
    // (the exclude file, the agent-turn snapshot of .git).
    let in_flight = Inflight::load(&paths.inflight)?
        .and_then(|m| m.ok())
        .map(|m| m.iteration);
    let mut temp_dirs = paths.temp_dirs(in_flight);
    temp_dirs.extend(crate::gitdir::temp_dirs(
        repo.repo.path(),
        repo.repo.commondir(),
    ));
    for t in fsutil::sweep_temp(&temp_dirs) {
        notes.push(format!("removed {} left by a killed write", t.display()));
    }
    if lock.orphans_stopped() > 0 {
        notes.push(format!(
            "stopped {} process(es) of the previous run that held its lock",
            lock.orphans_stopped()
        ));
    }
    let previous_token = reclaimed.as_ref().and_then(|h| h.token.clone());
    let killed_at_start = reclaimed.as_ref().map(|h| h.start_time);
    if let Some(h) = reclaimed {
        notes.push(format!(
            "reclaimed the lock left by pid {} (that run is gone)",
            h.pid
        ));
    }
    // Stand-ins a killed baseline left are no run.
    crate::artifacts::stand_in::remove(paths);
    let mut existing = match (paths.has_run(), pre.fresh) {
        (false, _) => None,
        (true, false) => Some(load_existing(paths, out)?),
        // A fresh start archives the old run whatever its state; unreadable files do not block it
        // (an interrupted iteration is still rolled back, just without a row in the old log).
        (true, true) => match load_existing(paths, out) {
            Ok(l) => Some(l),
            Err(e) => {
                out.note(&format!(
                    "the previous run is unreadable ({e}); archiving it as it is"
                ));
                None
            }
        },
    };
    // A child left running by a killed engine (agent, verify) is stopped before anything else:
    // it could still be writing to the tree.
    if let Some(record) = std::fs::read_to_string(&paths.child)
        .ok()
        .and_then(|t| serde_json::from_str::<process::GroupRecord>(&t).ok())
    {
        let n = process::kill_recorded_group(&record);
        if n > 0 {
            notes.push(format!(
                "stopped {n} process(es) left running by the previous run (process group {})",
                record.pgid
            ));
        }
        let _ = std::fs::remove_file(&paths.child);
    }
    // Its processes that left the group (or were never recorded) carry its run token.
    if let Some(token) = &previous_token {
        let n = process::kill_run_processes(token);
        if n > 0 {
            notes.push(format!(
                "stopped {n} process(es) left running by the previous run (found by its run token)"
            ));
        }
    }
    // A git lock file the killed run left is removed only when nothing else can hold it.
    notes.extend(crate::gitlock::clear_stale_locks(
        repo,
        crate::gitlock::PreviousRun {
            interrupted: paths.inflight.exists(),
            killed_at_start,
            processes_alive: previous_token
                .as_deref()
                .is_some_and(|t| !process::run_processes(t).is_empty()),
        },
    )?);
    // Nothing refuses the run's files any more: a torn last line of the log goes before the
    // recovery appends to it.
    if let Some(l) = existing.as_mut() {
        l.repair(paths, out)?;
    }
    // An interrupted iteration is rolled back before anything else, fresh or not.
    if let Some(marker) = Inflight::load(&paths.inflight)? {
        // An unreadable marker may have been a turn too.
        let turn = marker
            .as_ref()
            .map_or(true, |m| matches!(m.phase.as_str(), "agent" | "rework"));
        recover(repo, paths, existing.as_mut(), marker, out)?;
        if turn {
            notes.extend(super::drift::put_back_after_killed_turn(paths, &repo.root)?);
        }
    }
    // The `.git` snapshot a killed run kept is used up now, or stale (killed between turns).
    crate::gitdir::remove_saved(repo.repo.path())?;
    let loaded = if pre.fresh { None } else { existing.take() };
    // The tree is checked after a recovery; otherwise the first check stands.
    let user_untracked = match &pre.checked {
        Some(u) => u.clone(),
        None => preflight_tree(repo, &pre.scope, &pre.protect, paths)?,
    };
    notes.extend(start_notes(pre));
    Ok(Owned {
        lock,
        loaded,
        user_untracked,
        notes,
    })
}

/// What the run says about its set-up when it starts: the agent's version, a scope that
/// matches nothing, the evaluator files verify and guard execute.
fn start_notes(pre: &Preflight) -> Vec<String> {
    let (cfg, scope, prot) = (&pre.cfg, &pre.scope, &pre.protection);
    let mut notes = Vec::new();
    if cfg.agent != AgentKind::Command {
        notes.push(match pre.agent.version() {
            Some(v) => format!("agent: {v}"),
            None => format!("agent: {} (its --version did not answer)", pre.agent.name()),
        });
    }
    if !pre.repo.any_tracked(|p| scope.matches(p)) {
        notes.push(format!(
            "--scope {} matches no tracked file: the agent can only add files there (check the patterns)",
            cfg.scope.join(",")
        ));
    }
    if !prot.evaluators.is_empty() {
        let shown: Vec<String> = prot.evaluators.iter().map(|f| f.shown()).collect();
        notes.push(format!(
            "evaluator (run by verify/guard; protected from the agent, pinned at the baseline): {}",
            list_paths(&shown)
        ));
    }
    if !prot.editable.is_empty() {
        notes.push(format!(
            "{} is run by verify/guard but listed in --scope: the agent may change it",
            list_paths(&prot.editable)
        ));
    }
    notes
}

pub(super) fn settings_meta(cfg: &RunConfig, run_tag: &str, exec: bool) -> Vec<(String, String)> {
    let mut meta = vec![
        ("metric_direction".to_string(), cfg.direction.to_string()),
        ("mode".to_string(), cfg.mode.to_string()),
        ("run_tag".to_string(), run_tag.to_string()),
        ("parallel".to_string(), "serial".to_string()),
        ("web_search".to_string(), "disabled".to_string()),
        ("goal".to_string(), cfg.goal.clone()),
        ("scope".to_string(), cfg.scope.join(",")),
        ("metric".to_string(), cfg.metric.clone()),
        ("verify".to_string(), cfg.verify.clone()),
        // The reference spells it `metrics_json`.
        (
            "verify_format".to_string(),
            cfg.verify_format.to_string().replace('-', "_"),
        ),
    ];
    if let Some(g) = &cfg.guard {
        meta.push(("guard".into(), g.clone()));
    }
    meta.extend(cfg.gates.meta_entries());
    meta.push(("agent".into(), cfg.agent.to_string()));
    if exec {
        meta.push(("execution".into(), "exec".into()));
    }
    meta.push(("started_at".into(), crate::artifacts::state::now_utc()));
    meta.push((
        "settings".into(),
        serde_json::Value::Object(cfg.settings.to_saved()).to_string(),
    ));
    meta
}

/// The new run's tag: the explicit `--run-tag` (its earlier trial refs, returned, are moved
/// aside with `--fresh` and for exec, else refused), or a slug of the goal not taken yet.
fn choose_run_tag(
    cfg: &RunConfig,
    repo: &Repo,
    paths: &crate::artifacts::Paths,
    fresh: bool,
) -> Result<(String, Option<String>)> {
    // Trial refs of an earlier run with the same explicit tag: moved aside (with `--fresh`, and
    // for exec) before the baseline.
    let mut taken_refs = None;
    let run_tag = match &cfg.run_tag {
        Some(tag) => {
            let prefix = format!("refs/autoresearch/{tag}/");
            if repo.has_refs_under(&prefix) {
                if !fresh {
                    return Err(tag_taken(tag));
                }
                taken_refs = Some(prefix);
            }
            tag.clone()
        }
        None => {
            let base = derive_tag(&cfg.goal);
            let mut tag = base.clone();
            let mut k = 2;
            while repo.has_refs_under(&format!("refs/autoresearch/{tag}/"))
                || super::findings::report_taken(paths, cfg.mode, &tag)
            {
                tag = format!("{base}-{k}");
                k += 1;
            }
            tag
        }
    };
    Ok((run_tag, taken_refs))
}

pub(super) fn start_fresh(setup: Setup, user_untracked: &[String]) -> Result<Run> {
    let (cfg, repo) = (&setup.cfg, &setup.repo);
    let fresh = setup.exec || cfg.settings.fresh == Some(true);
    let (run_tag, taken_refs) = choose_run_tag(cfg, repo, &setup.paths, fresh)?;
    let head = repo.head()?;
    let placeholder = Row {
        iteration: 0,
        commit: Repo::short(head),
        metric: 0.0,
        delta: 0.0,
        guard: Guard::NotRun,
        status: Status::Baseline,
        description: String::new(),
    };
    let replay = Replay::start(&placeholder, cfg.direction)
        .map_err(|e| Error::Blocked(e.to_string()))?
        .with_rules(crate::artifacts::layout::rules(setup.paths.layout));
    let state = StateFile {
        version: 1,
        run_tag: run_tag.clone(),
        mode: cfg.mode.to_string(),
        config: cfg.settings.to_saved(),
        state: replay.tally.clone(),
        engine: EngineInfo::default(),
        noise: None,
        holdout: None,
        updated_at: String::new(),
    };
    // A results log is needed for the Run value; it is only created on disk after the baseline.
    let results = ResultsLog::unborn(&setup.paths.results);
    let mut run = new_run(setup, results, replay, state, head, run_tag);
    run.keep_user_files(user_untracked)?;
    // Before the baseline, whose leftovers (if any) belong to this run's refs.
    if let Some(prefix) = taken_refs {
        // The first free `<tag>.prev`, `<tag>.prev2`, ...: none overwritten.
        let tag = &run.run_tag;
        let archive = (1..)
            .map(|k| match k {
                1 => format!("refs/autoresearch/{tag}.prev/"),
                k => format!("refs/autoresearch/{tag}.prev{k}/"),
            })
            .find(|candidate| !run.repo.has_refs_under(candidate))
            .unwrap_or_default();
        let n = run.repo.move_refs(&prefix, &archive)?;
        run.out.note(&format!(
            "moved {n} trial ref(s) of an earlier run tagged {tag} to {archive}"
        ));
    }

    // Baseline: verify and guard on the untouched tree. Their logs wait in `baseline/` (and stay
    // there when the baseline fails): an earlier run is archived only once this one can start.
    let dir = run.paths.private.join("baseline");
    fsutil::ensure_dir(&dir)?;
    run.pin_evaluators()?;
    crate::launch::child::announce(&run.paths.private, &run.repo.root, &run.run_tag, false)?;
    run.keep.next_role = crate::engine::seq::Role::Baseline;
    let (first, guard) = run.checked_baseline(&dir)?;
    let (metric, runs) = run.baseline_more(&dir, first)?;
    run.holdout_start("start")?;
    let baseline = Row {
        iteration: 0,
        commit: Repo::short(head),
        metric,
        delta: 0.0,
        guard,
        status: Status::Baseline,
        description: crate::engine::gates::with_labels(
            &format!(
                "baseline: {} = {}{}",
                run.cfg.metric,
                canonical(metric),
                run.noise_note()
            ),
            &run.untouched_labels,
        ),
    };
    run.begin_log(&baseline, &dir)?;
    run.log_runs(0, None, runs)?;
    run.save_state()?;
    run.out.started(&StartInfo {
        run_tag: &run.run_tag,
        mode: run.cfg.mode.as_str(),
        repo: &run.repo.root.display().to_string(),
        resumed: false,
        iteration: 0,
        metric: &run.cfg.metric,
        direction: run.cfg.direction.as_str(),
        baseline: metric,
        retained: metric,
        agent: run.agent.name(),
    });
    Ok(run)
}

/// Where the resumed run's branch should be (the state's record when it is as new as the log,
/// else the last retained commit the log names), and whether HEAD moved forward from there
/// (a commit with the same tree, a revert or an empty one, is no move); a HEAD elsewhere refuses.
fn where_resumed(repo: &Repo, branch: &str, head_now: Oid, old: &Loaded) -> Result<(Oid, bool)> {
    let recorded_head = old
        .state
        .as_ref()
        .filter(|_| old.state_current)
        .and_then(|s| Oid::from_str(&s.engine.head).ok());
    let expected = match recorded_head {
        Some(o) => o,
        None => repo
            .repo
            .revparse_single(&old.replay.tally.last_commit)
            .and_then(|o| o.peel_to_commit())
            .map(|c| c.id())
            .unwrap_or(head_now),
    };
    if let Some(was) = old
        .state
        .as_ref()
        .map(|s| s.engine.branch.as_str())
        .filter(|b| !b.is_empty() && *b != branch)
    {
        return Err(Error::Refused(format!(
            "this run commits on {was}, but {branch} is checked out; check out {was} or use --fresh"
        )));
    }
    if head_now != expected && !repo.descends_from(head_now, expected) {
        return Err(Error::Refused(format!(
            "HEAD ({}) is not a descendant of the run's retained commit {}; check out the run's commit or use --fresh",
            Repo::short(head_now),
            Repo::short(expected)
        )));
    }
    Ok((
        expected,
        head_now != expected && !repo.same_tree(head_now, expected),
    ))
}

pub(super) fn resume(setup: Setup, user_untracked: &[String], old: Loaded) -> Result<Run> {
    let (cfg, repo, branch) = (&setup.cfg, &setup.repo, &setup.branch);
    let head_now = repo.head()?;
    let run_tag = old
        .state
        .as_ref()
        .map(|s| s.run_tag.clone())
        .filter(|t| !t.is_empty())
        .or_else(|| old.results.meta("run_tag").map(str::to_string))
        .unwrap_or_else(|| derive_tag(&cfg.goal));
    if let Some(tag) = &cfg.run_tag
        && *tag != run_tag
    {
        return Err(Error::Usage(format!(
            "--run-tag {tag} differs from the run being resumed ({run_tag}); use --fresh to start a new run"
        )));
    }
    let (expected, moved) = where_resumed(repo, branch, head_now, &old)?;
    let mut state = old.state.clone().unwrap_or(StateFile {
        version: 1,
        run_tag: run_tag.clone(),
        mode: cfg.mode.to_string(),
        config: cfg.settings.to_saved(),
        state: old.replay.tally.clone(),
        engine: EngineInfo::default(),
        noise: None,
        holdout: None,
        updated_at: String::new(),
    });
    state.config = cfg.settings.to_saved();
    state.mode = cfg.mode.to_string();
    state.run_tag = run_tag.clone();
    // A resumed run has not ended (yet).
    state.engine.ended = None;
    let mut run = new_run(setup, old.results, old.replay, state, head_now, run_tag);
    // The readings the TSV does not hold (metrics-json numbers) come from the state.
    run.replay.tally.gates = run.state.state.gates.clone();
    run.keep_user_files(user_untracked)?;

    // The keep rule's runs first: the re-measure below is one of them.
    let (log, records) = crate::artifacts::runs::RunsLog::open(&run.paths.runs)?;
    run.keep.count = log.next_run() - 1;
    run.keep.runs = log;
    let replayed = run.replay_keep_rule(records);
    run.keep.next_role = crate::engine::seq::Role::Retained;
    // Re-measure the retained tree: the metric must still be there and the guard must still pass.
    let n = run.replay.tally.iteration + 1;
    let dir = run.paths.iter_dir(n);
    fsutil::ensure_dir(&dir)?;
    crate::launch::child::announce(&run.paths.private, &run.repo.root, &run.run_tag, true)?;
    run.load_pins()?;
    let drifted = run.drifted_evaluators();
    let metric = run.remeasure_on_resume(&dir)?;
    let seq = run.keep.seq.is_some();
    // Exact mode has no retained runs to notice a change by itself: a deterministic metric that
    // measures differently now is a drift, re-baselined.
    let exact_changed = seq
        && run.keep.seq.as_ref().is_some_and(|s| {
            s.noise().mode == crate::engine::seq::NoiseMode::Exact
                && s.reference_mean().is_some_and(|r| !same(r, metric))
        });
    let metric = if seq {
        run.resume_keep_rule(
            &dir,
            n,
            metric,
            moved || !replayed || exact_changed || !drifted.is_empty(),
        )?
    } else {
        metric
    };
    run.holdout_start(&format!("resume-{n:04}"))?;
    // Saved only now: a refused resume leaves the stored configuration (and pins) as they were.
    run.pin_evaluators()?;
    run.save_state()?;
    let retained = run.replay.tally.current_metric;
    run.out.started(&StartInfo {
        run_tag: &run.run_tag,
        mode: run.cfg.mode.as_str(),
        repo: &run.repo.root.display().to_string(),
        resumed: true,
        iteration: run.replay.tally.iteration,
        metric: &run.cfg.metric,
        direction: run.cfg.direction.as_str(),
        baseline: run.replay.tally.baseline_metric,
        retained,
        agent: run.agent.name(),
    });
    // Under SEQ a retained value that measures differently is noise or a level shift the rule
    // tracks itself; only a moved HEAD, a changed evaluator or a changed deterministic metric
    // (re-baselined above) is a drift.
    if moved || exact_changed || !drifted.is_empty() || (!seq && !same(metric, retained)) {
        let why = if !drifted.is_empty() {
            format!(
                "the evaluator {} changed between runs",
                list_paths(&drifted)
            )
        } else if moved {
            format!(
                "HEAD moved from {} to {} between runs",
                Repo::short(expected),
                Repo::short(head_now)
            )
        } else {
            "the environment changed".to_string()
        };
        run.drift_on_resume(n, metric, &why)?;
    }
    Ok(run)
}

impl Run {
    /// The resume's check of the retained tree: verify still gives a metric (returned) and the
    /// guard still passes, or the resume is refused.
    fn remeasure_on_resume(&mut self, dir: &Path) -> Result<f64> {
        Ok(match self.measure_untouched(dir, "resume-")? {
            Ok((m, _)) => m,
            Err(Untouched::NoMetric { reason, .. }) => {
                return Err(Error::Refused(format!(
                    "verify no longer gives a metric on the retained tree ({reason}); fix the environment, or use --fresh"
                )));
            }
            Err(Untouched::GuardFails { reason, tail }) => {
                return Err(Error::Refused(format!(
                    "the guard fails on the retained tree ({reason}: {}); fix it before resuming",
                    one_line(&tail)
                )));
            }
            Err(Untouched::Interrupted(sig)) => {
                return Err(Error::Interrupted(sig, "while re-measuring"));
            }
        })
    }

    /// The `drift` row of a resume: the retained tree re-measured as `metric` because of `why`.
    fn drift_on_resume(&mut self, n: u64, metric: f64, why: &str) -> Result<()> {
        let retained = self.replay.tally.current_metric;
        let row = Row {
            iteration: n,
            commit: Repo::short(self.repo.head()?),
            metric,
            delta: delta(metric, retained),
            guard: Guard::NotRun,
            status: Status::Drift,
            description: format!(
                "re-measured on resume: {} -> {} ({why})",
                canonical(retained),
                canonical(metric)
            ),
        };
        self.record(row, None)
    }

    /// Verify and guard on the untouched tree; a missing metric or a failing guard refuses the
    /// run. Their logs wait in `dir`.
    pub(super) fn baseline(&mut self, dir: &Path) -> Result<(f64, Guard)> {
        Ok(match self.measure_untouched(dir, "")? {
            Ok(m) => m,
            Err(Untouched::NoMetric { reason, tail }) => {
                let last = if tail.is_empty() {
                    String::new()
                } else {
                    format!(" (last output: {})", one_line(&tail))
                };
                let log = crate::artifacts::layout::shown(&self.repo.root, &dir.join("verify.log"));
                return Err(Error::Refused(format!(
                    "the baseline verify gives no metric ({reason}); fix --verify before starting (its output: {log}){last}"
                )));
            }
            Err(Untouched::GuardFails { reason, tail }) => {
                return Err(Error::Refused(format!(
                    "the guard fails on the untouched tree ({reason}: {}); a guard must pass before any change — fix it, or measure that check in --verify instead",
                    one_line(&tail)
                )));
            }
            Err(Untouched::Interrupted(sig)) => {
                return Err(Error::Interrupted(sig, "during the baseline"));
            }
        })
    }

    /// The baseline's extra runs under SEQ; a verify that stops giving a metric refuses the run
    /// like the first one.
    fn baseline_more(&mut self, dir: &Path, first: f64) -> Result<(f64, Vec<(u64, RunTaken)>)> {
        match self.baseline_runs(dir, first)? {
            Ok(r) => Ok(r),
            Err(Untouched::NoMetric { reason, .. }) => Err(Error::Refused(format!(
                "a repeated baseline verify gives no metric ({reason}); verify must give a metric every time (its output: {}/)",
                crate::artifacts::layout::shown(&self.repo.root, dir)
            ))),
            Err(Untouched::Interrupted(sig)) => Err(Error::Interrupted(sig, "during the baseline")),
            Err(Untouched::GuardFails { .. }) => unreachable!("the extra runs are verify only"),
        }
    }

    /// Archives an earlier run (only now that this one can start), moves the baseline's logs
    /// to `iter-0000`, and creates the results log with its metadata and the baseline row.
    fn begin_log(&mut self, baseline: &Row, dir: &Path) -> Result<()> {
        if self.paths.has_run() || self.paths.iter_dir(0).exists() {
            let moved = self.paths.archive()?;
            if !moved.is_empty() {
                let names: Vec<String> = moved.iter().map(|p| p.display().to_string()).collect();
                self.out
                    .note(&format!("archived the previous run: {}", names.join(", ")));
            }
        }
        let iter0 = self.paths.iter_dir(0);
        std::fs::rename(dir, &iter0).ctx("move the baseline logs to", &iter0)?;
        let meta = settings_meta(&self.cfg, &self.run_tag, self.exec);
        self.results = ResultsLog::create(&self.paths.results, &meta, baseline)?;
        // The baseline's reading (metrics-json) stays the retained one.
        let gates = std::mem::take(&mut self.replay.tally.gates);
        self.replay = Replay::start(baseline, self.cfg.direction)
            .map_err(|e| Error::Blocked(e.to_string()))?
            .with_rules(crate::artifacts::layout::rules(self.paths.layout));
        self.replay.tally.gates = gates;
        self.save_state()?;
        Ok(())
    }
}
