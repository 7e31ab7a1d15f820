//! Preflight: every refusal comes before the first write (a live run, a bad configuration, a
//! taken run tag, a missing agent, a dirty tree), so a refused run leaves the repository exactly
//! as it was. Also reads an existing run's files.

use std::path::Path;

use super::Options;
use crate::agent::{self, Agent};
use crate::artifacts::Paths;
use crate::artifacts::lock;
use crate::artifacts::results::ResultsLog;
use crate::artifacts::state::StateFile;
use crate::config::{self, AgentKind, RunConfig, Settings};
use crate::engine::list_paths;
use crate::engine::reducer::Replay;
use crate::error::{Error, Result};
use crate::git::{ChangeKind, Repo};
use crate::output::Output;
use crate::scope::PathSet;

/// Everything the preflight established, before the first write.
pub(super) struct Preflight {
    pub(super) out: Output,
    pub(super) repo: Repo,
    pub(super) branch: String,
    pub(super) paths: Paths,
    /// `--fresh` or exec: the previous run is archived.
    pub(super) fresh: bool,
    pub(super) cfg: RunConfig,
    pub(super) scope: PathSet,
    pub(super) protect: PathSet,
    pub(super) protected_list: Vec<String>,
    /// The evaluator files verify and guard execute (protected and pinned), and those left
    /// editable.
    pub(super) protection: crate::protection::Protection,
    /// Your untracked files outside the scope, when the tree could be checked now (not after an
    /// interrupted iteration, which is rolled back first).
    pub(super) checked: Option<Vec<String>>,
    pub(super) agent: Box<dyn Agent>,
    /// The engine's own variables (`AUTORESEARCH_MIN_FREE_MB`, ...), read strictly once.
    pub(super) env: config::EngineEnv,
    /// The checklist the engine measures (ship mode, `--verify-format checklist`).
    pub(super) checklist: Option<crate::ship::Spec>,
}

/// Checks everything that may refuse the run, writing nothing (but moving a March-layout run
/// into the current layout, `artifacts::layout::settle`).
pub(super) fn preflight(opts: Options) -> Result<Preflight> {
    preflight_where(opts, true)
}

/// [`preflight`]; `probe_writable: false` leaves out the probe of a writable `.git` (for
/// `config --check`, which runs in Codex's sandbox and says so instead of refusing).
pub(super) fn preflight_where(opts: Options, probe_writable: bool) -> Result<Preflight> {
    let out = opts.output;
    // The engine's own variables first: a bad one refuses the run before anything is read.
    let env = config::engine_env()?;
    crate::process::set_log_cap(env.log_cap);
    let start_dir = config::start_dir(opts.settings.repo.as_deref())?;
    let repo = Repo::discover(&start_dir)?;
    let branch = repo.check_startable()?;
    let layout = opts.settings.layout;
    let mut paths = Paths::find(&repo.root, opts.settings.artifacts_dir.as_deref(), layout)?
        .with_outputs(&repo.root);
    // Output redirected into a tracked file is a change to that file: the preflight refuses it.
    paths.outputs.retain(|o| !repo.is_tracked(o));
    let fresh = opts.exec || opts.settings.fresh == Some(true);
    if let Some(h) = lock::peek(&paths.lock).filter(|h| h.pid != std::process::id() && h.alive()) {
        return Err(lock::held_message(&paths.lock, Some(&h)));
    }
    // Codex's sandbox keeps .git read-only: say so before anything is written.
    if probe_writable {
        crate::writable::check(&repo)?;
        // A run in the March layout moves to the current one (unless --layout march).
        paths = crate::artifacts::layout::settle(paths, layout, |n| out.note(n))?;
    }
    if opts.exec {
        paths = paths.for_exec();
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
    let mut cfg = crate::diff_scope::narrow(&repo, cfg)?;
    let checklist = crate::ship::load(
        &cfg,
        &repo.root,
        &paths,
        opts.config_file.as_deref(),
        !fresh && paths.has_run(),
    )?;
    super::checklist::settle_stop(&mut cfg, checklist.as_ref());
    let scope = PathSet::new(&cfg.scope).map_err(|e| Error::Usage(format!("--scope: {e}")))?;
    let mut protection =
        crate::protection::protection(&cfg, &repo.root, &paths, opts.config_file.as_deref());
    if let Some(c) = &checklist {
        crate::protection::add_evaluators(&mut protection, &cfg, &repo.root, &c.commands());
    }
    crate::protection::check_editable(&repo, &cfg.scope, &protection.list)?;
    let mut protected_list = protection.list.clone();
    let protect =
        PathSet::new(&protected_list).map_err(|e| Error::Usage(format!("--protect: {e}")))?;
    // The prompt names the evaluator files outside the repository too.
    protected_list.extend(
        protection
            .evaluators
            .iter()
            .filter(|f| f.in_repo.is_none())
            .map(|f| f.shown()),
    );
    let checked = if paths.inflight.exists() {
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
    let agent = make_agent(&cfg)?;
    Ok(Preflight {
        out,
        repo,
        branch,
        paths,
        fresh,
        cfg,
        scope,
        protect,
        protected_list,
        protection,
        checked,
        agent,
        env,
        checklist,
    })
}

/// A run that exists on disk.
pub(super) struct Loaded {
    pub(super) results: ResultsLog,
    pub(super) replay: Replay,
    pub(super) saved: Settings,
    pub(super) state: Option<StateFile>,
    /// The state agrees with the log (else it is older, and its `engine.head` is not trusted).
    pub(super) state_current: bool,
    /// Bytes of an incomplete last line of the log, left out (cut by [`Loaded::repair`]).
    pub(super) torn_bytes: usize,
}

impl Loaded {
    /// Cuts the incomplete last line a crash left in the results log, if any, and says so. Only
    /// once nothing refuses the run any more.
    pub(super) fn repair(&mut self, paths: &Paths, out: &Output) -> Result<()> {
        if std::mem::take(&mut self.torn_bytes) > 0 {
            let cut = self.results.cut_torn()?;
            out.note(&format!(
                "repaired {}: cut an incomplete last line ({cut} bytes) left by a crash",
                paths.results.display()
            ));
        }
        Ok(())
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
    // Nothing is written here: a torn last line is cut off by [`Loaded::repair`] once every
    // refusal has passed, so a refused log keeps every byte.
    let (results, repair) = ResultsLog::read(&paths.results)?;
    let replay = results.replay()?;
    // Said only once the run is readable as a whole: a refusal is the one line printed.
    let mut notes = Vec::new();
    let mut state_current = false;
    let state = if paths.state.exists() {
        match StateFile::load(&paths.state) {
            Ok(s) => {
                let diff = crate::engine::reducer::mismatches(&s.state, &replay.tally);
                state_current = diff.is_empty();
                if !diff.is_empty() {
                    notes.push(format!(
                        "{} disagreed with the results log ({}); rebuilt it from the log",
                        paths.state.display(),
                        diff.join("; ")
                    ));
                }
                Some(s)
            }
            Err(why) => {
                notes.push(format!(
                    "{} is unusable ({why}); rebuilding it from the results log",
                    paths.state.display()
                ));
                None
            }
        }
    } else {
        notes.push(format!(
            "{} is missing; rebuilding it from the results log",
            paths.state.display()
        ));
        None
    };
    let saved = paths.stored_settings(state.as_ref(), results.meta("settings"))?;
    for n in notes {
        out.note(&n);
    }
    Ok(Loaded {
        results,
        replay,
        saved,
        state,
        state_current,
        torn_bytes: repair.torn_bytes,
    })
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

/// Finds an agent CLI: `--<name>-bin`, else `$<ENV>`, else `<name>` on the PATH; a missing one
/// refuses the run with how to install it.
fn agent_binary(
    configured: Option<&Path>,
    name: &str,
    env: &str,
    install: &str,
) -> Result<std::path::PathBuf> {
    agent::resolve_binary(configured, env, name)
        .filter(|b| agent::is_executable(b))
        .ok_or_else(|| {
            Error::Refused(format!(
                "the {name} CLI was not found; install it ({install}) or point --{name}-bin or ${env} at it"
            ))
        })
}

/// Builds the agent for a configuration; a missing agent binary refuses the run.
pub(super) fn make_agent(cfg: &RunConfig) -> Result<Box<dyn Agent>> {
    let settings = || {
        (
            cfg.sandbox,
            cfg.model.clone(),
            cfg.agent_args.clone(),
            cfg.agent_timeout,
            cfg.agent_idle_timeout,
        )
    };
    Ok(match cfg.agent {
        AgentKind::Command => Box::new(agent::command::CommandAgent::new(
            cfg.agent_cmd.as_deref().unwrap_or_default(),
            cfg.agent_timeout,
            cfg.agent_idle_timeout,
        )),
        AgentKind::Codex => {
            let install = "`npm install -g @openai/codex`";
            let bin = agent_binary(cfg.codex_bin.as_deref(), "codex", "CODEX_BIN", install)?;
            let (sandbox, model, args, timeout, idle) = settings();
            Box::new(agent::codex::CodexAgent::new(
                bin, sandbox, model, args, timeout, idle,
            ))
        }
        AgentKind::Claude => {
            let install = "`npm install -g @anthropic-ai/claude-code`";
            let bin = agent_binary(cfg.claude_bin.as_deref(), "claude", "CLAUDE_BIN", install)?;
            let (sandbox, model, args, timeout, idle) = settings();
            Box::new(agent::claude::ClaudeAgent::new(
                bin, sandbox, model, args, timeout, idle,
            ))
        }
    })
}

/// The refusal for an explicit run tag whose refs an earlier run holds (without `--fresh`).
pub(super) fn tag_taken(tag: &str) -> Error {
    Error::Refused(format!(
        "refs/autoresearch/{tag}/ already holds trials of an earlier run; choose another --run-tag, or use --fresh to move them aside (to the first free refs/autoresearch/{tag}.prevN/)"
    ))
}
