//! Start-up: preflight (every refusal before the first write), a new run with its baseline, or
//! the resume of an existing one with its re-measure.

use std::path::Path;

use git2::Oid;

use super::measure::Untouched;
use super::recover::recover;
use super::{Options, Run, Setup, new_run};
use crate::agent::{self, Agent};
use crate::artifacts::Paths;
use crate::artifacts::inflight::Inflight;
use crate::artifacts::lessons::Lessons;
use crate::artifacts::lock::{self, Lock};
use crate::artifacts::results::ResultsLog;
use crate::artifacts::state::{EngineInfo, StateFile};
use crate::config::{self, AgentKind, RunConfig, Settings};
use crate::engine::list_paths;
use crate::engine::number::{canonical, delta, same};
use crate::engine::reducer::Replay;
use crate::engine::row::{Guard, Row, Status, one_line};
use crate::error::{Error, IoContext, Result};
use crate::git::{ChangeKind, Repo};
use crate::output::{Output, StartInfo, Summary};
use crate::process;
use crate::scope::PathSet;
use crate::{fsutil, signal};

/// A run that exists on disk.
pub(super) struct Loaded {
    pub(super) results: ResultsLog,
    pub(super) replay: Replay,
    pub(super) saved: Settings,
    pub(super) state: Option<StateFile>,
    /// The state agrees with the log (else it is older, and its `engine.head` is not trusted).
    pub(super) state_current: bool,
}

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

/// Returns the paths a shell command names that exist in the repository (protected from edits).
pub(super) fn named_paths(command: &str, root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for raw in command.split(|c: char| {
        c.is_whitespace() || matches!(c, ';' | '|' | '&' | '(' | ')' | '<' | '>' | '`')
    }) {
        let token = raw.trim_matches(|c| c == '"' || c == '\'');
        let token = token.rsplit('=').next().unwrap_or(token);
        if token.is_empty()
            || token.starts_with('-')
            || !(token.contains('/') || token.contains('.'))
        {
            continue;
        }
        let p = Path::new(token);
        let rel = if p.is_absolute() {
            match p.strip_prefix(root) {
                Ok(r) => r.to_path_buf(),
                Err(_) => continue,
            }
        } else {
            p.to_path_buf()
        };
        let rel_s = rel
            .to_string_lossy()
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        if rel_s.is_empty() || rel_s == "." || rel_s.split('/').any(|c| c == "..") {
            continue;
        }
        if root.join(&rel_s).exists() && !out.contains(&rel_s) {
            out.push(rel_s);
        }
    }
    out
}

/// Builds the agent for a configuration; a missing agent binary refuses the run.
pub(super) fn make_agent(cfg: &RunConfig) -> Result<Box<dyn Agent>> {
    let missing = |name: &str, flag: &str, env: &str, install: &str| {
        Error::Refused(format!(
            "the {name} CLI was not found; install it ({install}) or point {flag} or ${env} at it"
        ))
    };
    match cfg.agent {
        AgentKind::Command => Ok(Box::new(agent::command::CommandAgent::new(
            cfg.agent_cmd.as_deref().unwrap_or_default(),
            cfg.agent_timeout,
            cfg.agent_idle_timeout,
        ))),
        AgentKind::Codex => {
            let bin = agent::resolve_binary(cfg.codex_bin.as_deref(), "CODEX_BIN", "codex")
                .filter(|b| agent::is_executable(b))
                .ok_or_else(|| {
                    missing(
                        "codex",
                        "--codex-bin",
                        "CODEX_BIN",
                        "`npm install -g @openai/codex`",
                    )
                })?;
            Ok(Box::new(agent::codex::CodexAgent::new(
                bin,
                cfg.sandbox,
                cfg.model.clone(),
                cfg.agent_args.clone(),
                cfg.agent_timeout,
                cfg.agent_idle_timeout,
            )))
        }
        AgentKind::Claude => {
            let bin = agent::resolve_binary(cfg.claude_bin.as_deref(), "CLAUDE_BIN", "claude")
                .filter(|b| agent::is_executable(b))
                .ok_or_else(|| {
                    missing(
                        "claude",
                        "--claude-bin",
                        "CLAUDE_BIN",
                        "`npm install -g @anthropic-ai/claude-code`",
                    )
                })?;
            Ok(Box::new(agent::claude::ClaudeAgent::new(
                bin,
                cfg.sandbox,
                cfg.model.clone(),
                cfg.agent_args.clone(),
                cfg.agent_timeout,
                cfg.agent_idle_timeout,
            )))
        }
    }
}

/// Reads the run in `paths`, rebuilding the state from the TSV when they disagree.
pub(super) fn load_existing(paths: &Paths, out: &Output) -> Result<Loaded> {
    if !paths.results.exists() {
        return Err(Error::Refused(format!(
            "{} exists but {} does not; restore the results file, or start over with --fresh",
            paths.state.display(),
            paths.results.display()
        )));
    }
    let (results, repair) = ResultsLog::open(&paths.results)?;
    if repair.torn_bytes > 0 {
        out.note(&format!(
            "repaired {}: cut an incomplete last line ({} bytes) left by a crash",
            paths.results.display(),
            repair.torn_bytes
        ));
    }
    let direction: crate::engine::Direction = results
        .meta("metric_direction")
        .ok_or_else(|| {
            Error::Refused(format!(
                "{} has no `# metric_direction:` line; use --fresh",
                paths.results.display()
            ))
        })?
        .parse()
        .map_err(|e: String| Error::Refused(format!("{}: {e}", paths.results.display())))?;
    let replay = Replay::from_rows(&results.rows, direction).map_err(|e| {
        Error::Refused(format!(
            "{}: {e}; fix the file or start over with --fresh",
            paths.results.display()
        ))
    })?;
    let mut state_current = false;
    let state = if paths.state.exists() {
        match StateFile::load(&paths.state) {
            Ok(s) => {
                let diff = crate::engine::reducer::mismatches(&s.state, &replay.tally);
                state_current = diff.is_empty();
                if !diff.is_empty() {
                    out.note(&format!(
                        "{} disagreed with the results log ({}); rebuilt it from the log",
                        paths.state.display(),
                        diff.join("; ")
                    ));
                }
                Some(s)
            }
            Err(why) => {
                out.note(&format!(
                    "{} is unusable ({why}); rebuilding it from the results log",
                    paths.state.display()
                ));
                None
            }
        }
    } else {
        out.note(&format!(
            "{} is missing; rebuilding it from the results log",
            paths.state.display()
        ));
        None
    };
    let saved = paths.stored_settings(state.as_ref(), results.meta("settings"))?;
    Ok(Loaded {
        results,
        replay,
        saved,
        state,
        state_current,
    })
}

/// Entry point of `run` and `exec`.
pub fn run(opts: Options) -> Result<Summary> {
    signal::install();
    let out = opts.output;
    let start_dir = config::start_dir(opts.settings.repo.as_deref())?;
    let repo = Repo::discover(&start_dir)?;
    let branch = repo.check_startable()?;
    let mut paths =
        Paths::new(&repo.root, opts.settings.artifacts_dir.as_deref())?.with_outputs(&repo.root);
    // Output redirected into a tracked file is a change to that file: the preflight refuses it.
    paths.outputs.retain(|o| !repo.is_tracked(o));
    let fresh = opts.exec || opts.settings.fresh == Some(true);

    // Every refusal comes before the first write: a live run, a bad configuration, a missing
    // agent, a dirty tree. A refused run leaves the repository exactly as it was.
    if let Some(h) = lock::peek(&paths.lock).filter(|h| h.pid != std::process::id() && h.alive()) {
        return Err(lock::held_message(&paths.lock, Some(&h)));
    }
    let saved = match (fresh, paths.has_run()) {
        (false, true) => match paths.peek_saved() {
            Some(s) => Some(s),
            // Say precisely what is wrong with the run's files (reading them reports it).
            None => Some(load_existing(&paths, &out)?.saved),
        },
        _ => None,
    };
    if let Some(s) = &saved {
        config::check_identity(s, &opts.settings).map_err(|e| config::locate(e, &opts.sources))?;
    }
    let cfg = RunConfig::from_settings(config::layered(saved.as_ref(), &opts.settings))
        .map_err(|e| config::locate(e, &opts.sources))?;
    let scope = PathSet::new(&cfg.scope).map_err(|e| Error::Usage(format!("--scope: {e}")))?;
    let mut protected_list: Vec<String> = cfg.protect.clone();
    let mut named = named_paths(&cfg.verify, &repo.root);
    if let Some(g) = &cfg.guard {
        for p in named_paths(g, &repo.root) {
            if !named.contains(&p) {
                named.push(p);
            }
        }
    }
    for n in &named {
        if !protected_list.contains(n) {
            protected_list.push(n.clone());
        }
    }
    protected_list.extend(paths.protected_in_repo());
    if let Some(rel) = opts
        .config_file
        .as_deref()
        .and_then(|f| f.strip_prefix(&repo.root).ok())
    {
        protected_list.push(rel.to_string_lossy().into_owned());
    }
    let protect =
        PathSet::new(&protected_list).map_err(|e| Error::Usage(format!("--protect: {e}")))?;
    let interrupted = paths.inflight.exists();
    let checked = if interrupted {
        None
    } else {
        Some(preflight_tree(&repo, &scope, &protect, &paths)?)
    };
    if let Some(tag) = &cfg.run_tag
        && !fresh
        && !paths.has_run()
        && repo.has_refs_under(&format!("refs/autoresearch/{tag}/"))
    {
        return Err(tag_taken(tag));
    }
    let mut agent = make_agent(&cfg)?;

    // From here on the run owns its artifacts.
    fsutil::ensure_dir(&paths.private)?;
    repo.add_excludes(&paths.exclude_entries())?;
    let (lock, reclaimed) = Lock::acquire(&paths.lock)?;
    let mut notes = Vec::new();
    if let Some(h) = reclaimed {
        notes.push(format!(
            "reclaimed the lock left by pid {} (that run is gone)",
            h.pid
        ));
    }
    let mut existing = match (paths.has_run(), fresh) {
        (false, _) => None,
        (true, false) => Some(load_existing(&paths, &out)?),
        // A fresh start archives the old run whatever its state; unreadable files do not block it
        // (an interrupted iteration is still rolled back, just without a row in the old log).
        (true, true) => match load_existing(&paths, &out) {
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
    // An interrupted iteration is rolled back before anything else, fresh or not.
    if let Some(marker) = Inflight::load(&paths.inflight)? {
        recover(&repo, &paths, existing.as_mut(), marker, &out)?;
    }
    let loaded = if fresh { None } else { existing.take() };
    // The tree is checked after a recovery; otherwise the first check stands.
    let user_untracked = match checked {
        Some(u) => u,
        None => preflight_tree(&repo, &scope, &protect, &paths)?,
    };

    if cfg.agent != AgentKind::Command {
        notes.push(match agent.version() {
            Some(v) => format!("agent: {v}"),
            None => format!("agent: {} (its --version did not answer)", agent.name()),
        });
    }
    if !repo.any_tracked(|p| scope.matches(p)) {
        notes.push(format!(
            "--scope {} matches no tracked file: the agent can only add files there (check the patterns)",
            cfg.scope.join(",")
        ));
    }
    if !named.is_empty() {
        notes.push(format!(
            "protected from the agent (named by verify/guard): {}",
            list_paths(&named)
        ));
        let inside: Vec<String> = named.iter().filter(|p| scope.matches(p)).cloned().collect();
        if !inside.is_empty() {
            notes.push(format!(
                "warning: {} is inside --scope but named by verify/guard, so the agent may not change it (measure through a script to let it)",
                list_paths(&inside)
            ));
        }
    }

    if let Some(e) = loaded
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
        exec: opts.exec,
        branch,
        agent,
        scope,
        protect,
        protected_list,
        lock,
    };
    let mut run = match loaded {
        None => start_fresh(setup, &user_untracked)?,
        Some(old) => resume(setup, &user_untracked, old)?,
    };
    for n in &notes {
        run.out.note(n);
    }
    let stop = run.main_loop()?;
    Ok(run.finish(stop))
}

/// Checks the working tree; returns the user's untracked files outside the scope.
pub(super) fn preflight_tree(
    repo: &Repo,
    scope: &PathSet,
    protect: &PathSet,
    paths: &Paths,
) -> Result<Vec<String>> {
    // The artifacts are excluded once the run starts; before that they may show up untracked.
    let artifacts = paths.artifact_set();
    let changes: Vec<_> = repo
        .scan()?
        .into_iter()
        .filter(|c| !artifacts.matches(&c.path))
        .collect();
    let tracked: Vec<String> = changes
        .iter()
        .filter(|c| c.kind != ChangeKind::Untracked)
        .map(|c| c.path.clone())
        .collect();
    if !tracked.is_empty() {
        return Err(Error::Refused(format!(
            "uncommitted changes to tracked files: {}; commit or stash them first (the engine never touches your work)",
            list_paths(&tracked)
        )));
    }
    let (inside, outside): (Vec<String>, Vec<String>) = changes
        .into_iter()
        .filter(|c| c.kind == ChangeKind::Untracked)
        .map(|c| c.path)
        // A protected untracked file (an uncommitted autoresearch.toml, a verify script) is the
        // user's even inside the scope: kept and restored, never taken for the agent's work.
        .partition(|p| scope.matches(p) && !protect.matches(p));
    if !inside.is_empty() {
        return Err(Error::Refused(format!(
            "untracked files inside the scope: {}; commit, move or ignore them first (new files there are taken as the agent's)",
            list_paths(&inside)
        )));
    }
    Ok(outside)
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
        ("verify_format".to_string(), cfg.verify_format.to_string()),
    ];
    if let Some(g) = &cfg.guard {
        meta.push(("guard".into(), g.clone()));
    }
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

/// The refusal for an explicit run tag whose refs an earlier run holds (without `--fresh`).
pub(super) fn tag_taken(tag: &str) -> Error {
    Error::Refused(format!(
        "refs/autoresearch/{tag}/ already holds trials of an earlier run; choose another --run-tag, or use --fresh to move them aside (to the first free refs/autoresearch/{tag}.prevN/)"
    ))
}

pub(super) fn start_fresh(setup: Setup, user_untracked: &[String]) -> Result<Run> {
    let (cfg, repo) = (&setup.cfg, &setup.repo);
    let fresh = setup.exec || cfg.settings.fresh == Some(true);
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
            while repo.has_refs_under(&format!("refs/autoresearch/{tag}/")) {
                tag = format!("{base}-{k}");
                k += 1;
            }
            tag
        }
    };
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
    let replay =
        Replay::start(&placeholder, cfg.direction).map_err(|e| Error::Blocked(e.to_string()))?;
    let state = StateFile {
        version: 1,
        run_tag: run_tag.clone(),
        mode: cfg.mode.to_string(),
        config: cfg.settings.to_saved(),
        state: replay.tally.clone(),
        engine: EngineInfo::default(),
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
    let (metric, guard) = match run.measure_untouched(&dir, "")? {
        Ok(m) => m,
        Err(Untouched::NoMetric { reason, tail }) => {
            let last = if tail.is_empty() {
                String::new()
            } else {
                format!(" (last output: {})", one_line(&tail))
            };
            return Err(Error::Refused(format!(
                "the baseline verify gives no metric ({reason}); fix --verify before starting (its output: .autoresearch/baseline/verify.log){last}"
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
    };
    let baseline = Row {
        iteration: 0,
        commit: Repo::short(head),
        metric,
        delta: 0.0,
        guard,
        status: Status::Baseline,
        description: format!("baseline: {} = {}", run.cfg.metric, canonical(metric)),
    };
    if run.paths.has_run() || run.paths.iter_dir(0).exists() {
        let moved = run.paths.archive()?;
        if !moved.is_empty() {
            let names: Vec<String> = moved.iter().map(|p| p.display().to_string()).collect();
            run.out
                .note(&format!("archived the previous run: {}", names.join(", ")));
        }
    }
    let iter0 = run.paths.iter_dir(0);
    std::fs::rename(&dir, &iter0).ctx("move the baseline logs to", &iter0)?;
    let meta = settings_meta(&run.cfg, &run.run_tag, run.exec);
    run.results = ResultsLog::create(&run.paths.results, &meta, &baseline)?;
    run.replay =
        Replay::start(&baseline, run.cfg.direction).map_err(|e| Error::Blocked(e.to_string()))?;
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
    // Where the branch should be: the state's record when it is as new as the log, else the last
    // retained commit the log names.
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
        .filter(|b| !b.is_empty() && b != branch)
    {
        return Err(Error::Refused(format!(
            "this run commits on {was}, but {branch} is checked out; check out {was} or use --fresh"
        )));
    }
    // A different commit with the same tree (a revert, an empty commit) is no move.
    let moved = head_now != expected && !repo.same_tree(head_now, expected);
    if head_now != expected && !repo.descends_from(head_now, expected) {
        return Err(Error::Refused(format!(
            "HEAD ({}) is not a descendant of the run's retained commit {}; check out the run's commit or use --fresh",
            Repo::short(head_now),
            Repo::short(expected)
        )));
    }
    let mut state = old.state.clone().unwrap_or(StateFile {
        version: 1,
        run_tag: run_tag.clone(),
        mode: cfg.mode.to_string(),
        config: cfg.settings.to_saved(),
        state: old.replay.tally.clone(),
        engine: EngineInfo::default(),
        updated_at: String::new(),
    });
    state.config = cfg.settings.to_saved();
    state.mode = cfg.mode.to_string();
    state.run_tag = run_tag.clone();
    let mut run = new_run(setup, old.results, old.replay, state, head_now, run_tag);
    run.keep_user_files(user_untracked)?;

    // Re-measure the retained tree: the metric must still be there and the guard must still pass.
    let n = run.replay.tally.iteration + 1;
    let dir = run.paths.iter_dir(n);
    fsutil::ensure_dir(&dir)?;
    let metric = match run.measure_untouched(&dir, "resume-")? {
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
    };
    // Saved only now: a refused resume leaves the stored configuration as it was.
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
    if moved || !same(metric, retained) {
        let why = if moved {
            format!(
                "HEAD moved from {} to {} between runs",
                Repo::short(expected),
                Repo::short(head_now)
            )
        } else {
            "the environment changed".to_string()
        };
        let row = Row {
            iteration: n,
            commit: Repo::short(head_now),
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
        run.record(row, None)?;
    }
    Ok(run)
}
