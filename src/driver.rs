//! The run loop with I/O. It executes the iteration contract (DESIGN §5): preflight, baseline or
//! resume, then propose -> inspect -> trial commit -> verify -> guard (-> rework) -> decide ->
//! roll back or keep -> record -> escalate -> stop check, with an in-flight marker that makes a
//! crash at any point recoverable. Decisions come from the pure `engine`; this module does I/O.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use git2::Oid;

use crate::agent::{self, Agent, Outcome, Proposal, Request};
use crate::artifacts::Paths;
use crate::artifacts::inflight::{self, Inflight};
use crate::artifacts::lessons::{Lesson, Lessons};
use crate::artifacts::lock::{self, Lock};
use crate::artifacts::results::ResultsLog;
use crate::artifacts::state::{EngineInfo, IterationRecord, StateFile};
use crate::config::{self, AgentKind, Mode, Rollback, RunConfig, Session, Settings, Source};
use crate::engine::number::{canonical, delta, median, same};
use crate::engine::reducer::{Directive, Escalation, Replay};
use crate::engine::row::{Guard, Row, Status, one_line};
use crate::error::{Error, IoContext, Result, exit};
use crate::git::{ChangeKind, KeptFile, Repo};
use crate::output::{Output, StartInfo, Summary};
use crate::process::{self, End, Spec};
use crate::prompt::{self, PromptInput};
use crate::scope::PathSet;
use crate::watch::TreeWatch;
use crate::{fsutil, signal};

/// Consecutive verify failures that stop the run as a hard blocker.
const VERIFY_BROKEN_AFTER: u32 = 5;
/// Rows shown to the agent.
const PROMPT_ROWS: usize = 10;
/// Lessons shown to the agent.
const PROMPT_LESSONS: usize = 5;

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

/// Why a run stopped.
#[derive(Clone, Debug, PartialEq)]
enum Stop {
    Goal(String),
    Cap(u64),
    NeedsHuman(String),
    Blocked(String),
    Interrupted(i32),
}

/// A measured verify run.
enum Measure {
    Metric(f64),
    Failed {
        reason: String,
        timed_out: bool,
        tail: String,
    },
    Interrupted(i32),
}

/// A guard run.
enum GuardRun {
    Pass,
    Fail { reason: String, tail: String },
    Interrupted(i32),
}

/// Why verify and guard on an untouched tree (the baseline, the resume re-measure) refuse a start.
enum Untouched {
    NoMetric { reason: String, tail: String },
    GuardFails { reason: String, tail: String },
    Interrupted(i32),
}

/// What changed in the working tree during a turn.
#[derive(Default)]
struct Inspection {
    /// Paths to commit (tracked changes and new files).
    changed: Vec<String>,
    scope: Vec<String>,
    protected: Vec<String>,
    /// The scan it came from (changes against HEAD, your untracked files included).
    scan: Vec<crate::git::Change>,
}

/// How a copy of work a restore undoes is named.
#[derive(Clone, Copy)]
enum Keep {
    /// What the iteration did not commit: `leftover-<n>`.
    Leftovers,
    /// An interrupted or failed turn's unfinished work: `trial-<n>`, like a trial.
    Unfinished,
}

/// An agent turn's result, or a reason to stop first.
enum Turn {
    Done(Box<Proposal>),
    Stop(Stop),
}

/// A run that exists on disk.
struct Loaded {
    results: ResultsLog,
    replay: Replay,
    saved: Settings,
    state: Option<StateFile>,
    /// The state agrees with the log (else it is older, and its `engine.head` is not trusted).
    state_current: bool,
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
    /// The settings last written to `.autoresearch/settings.json`.
    saved_settings: Option<String>,
    /// Change notification over the work tree (lets a scan that cannot find anything be skipped).
    watch: TreeWatch,
    /// The commit the work tree equalled when the watch was last armed (set after a trial
    /// commit of everything the agent changed; cleared by any restore).
    clean_at: Option<Oid>,
    /// Full work-tree scans made in the current iteration.
    scans: u32,
    /// What the engine noted about the current iteration (kept in its record).
    notes: Vec<String>,
    /// Verify and guard are running on the untouched tree (baseline, re-measure on resume).
    untouched: bool,
    /// The tree was restored and the watch armed since: a change seen before the next agent
    /// turn was made by someone else.
    settled: bool,
    /// When the current iteration started.
    iteration_started: Instant,
    _lock: Lock,
}

fn list_paths(paths: &[String]) -> String {
    const SHOW: usize = 8;
    let mut s = paths
        .iter()
        .take(SHOW)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > SHOW {
        s.push_str(&format!(" and {} more", paths.len() - SHOW));
    }
    s
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// Returns a slug of the goal usable as a run tag.
fn derive_tag(goal: &str) -> String {
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
fn named_paths(command: &str, root: &Path) -> Vec<String> {
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

fn free_mb(path: &Path) -> Option<u64> {
    let disks = sysinfo::Disks::new_with_refreshed_list().ok()?;
    disks
        .iter()
        .filter(|d| path.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map(|d| d.available_space() / (1024 * 1024))
}

fn min_free_mb() -> u64 {
    std::env::var("AUTORESEARCH_MIN_FREE_MB")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(500)
}

fn quota_backoff() -> Duration {
    std::env::var("AUTORESEARCH_QUOTA_BACKOFF")
        .ok()
        .and_then(|v| crate::duration::parse(&v).ok())
        .unwrap_or(Duration::from_secs(30))
}

/// The next wait after a rate limit: `backoff`, cut to what is left of the iteration's budget
/// `max` after `waited`; `None` once the budget is spent.
fn quota_wait(backoff: Duration, waited: Duration, max: Duration) -> Option<Duration> {
    (waited < max).then(|| backoff.min(max - waited))
}

/// Sleeps up to `d`, waking early for SIGINT/SIGTERM.
fn sleep_interruptibly(d: Duration) -> Option<i32> {
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

/// Builds the agent for a configuration; a missing agent binary refuses the run.
fn make_agent(cfg: &RunConfig) -> Result<Box<dyn Agent>> {
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

fn layered(saved: Option<&Settings>, explicit: &Settings) -> Settings {
    let mut merged = Settings::defaults();
    if let Some(s) = saved {
        merged.overlay(s.clone());
    }
    merged.overlay(explicit.clone());
    merged
}

/// Reads the run in `paths`, rebuilding the state from the TSV when they disagree.
fn load_existing(paths: &Paths, out: &Output) -> Result<Loaded> {
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
    let cfg = RunConfig::from_settings(layered(saved.as_ref(), &opts.settings))
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
fn preflight_tree(
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

/// Keeps `oid` reachable at `refs/autoresearch/<tag>/trial-<n>`, or at `trial-<n>-2`, ... when
/// that name already holds another commit: refs there have no reflog, so overwriting one would
/// lose a trial. Returns the ref name.
fn preserve(repo: &Repo, tag: &str, n: u64, oid: Oid) -> Result<String> {
    preserve_as(repo, tag, "trial", n, oid)
}

/// Points `refs/autoresearch/<tag>/<kind>-<n>` (or the first free `-2`, `-3`, ... variant) at
/// `oid`; returns the ref.
fn preserve_as(repo: &Repo, tag: &str, kind: &str, n: u64, oid: Oid) -> Result<String> {
    let base = format!("refs/autoresearch/{tag}/{kind}-{n}");
    let mut name = base.clone();
    for k in 2.. {
        match repo.repo.refname_to_id(&name) {
            Ok(existing) if existing == oid => return Ok(name),
            Ok(_) => name = format!("{base}-{k}"),
            Err(_) => break,
        }
    }
    repo.set_ref(&name, oid, "autoresearch: keep a rolled-back trial")?;
    Ok(name)
}

/// Keeps what iteration `n` produced: its trial commit and, with `snapshot`, its uncommitted
/// changes (the user's kept files excluded) committed on top of HEAD without moving the branch.
/// Returns the commit and ref that hold the latest of it.
/// For each of your untracked files in `kept` that changed: keeps the changed content as a loose
/// blob (your files are never committed) so that the restore may put your copy back; one too big
/// to copy (or no longer a file) is re-kept as it is instead, its earlier content staying in its
/// backup. Returns the notes to show and whether `kept` changed.
fn copy_changed_kept(repo: &Repo, kept: &mut [KeptFile]) -> Result<(Vec<String>, bool)> {
    let mut notes = Vec::new();
    let mut rekept = false;
    for k in kept.iter_mut() {
        if repo.kept_file_intact(k) {
            continue;
        }
        let path = k.path.clone();
        let full = repo.root.join(&path);
        let Ok(meta) = std::fs::symlink_metadata(&full) else {
            continue; // removed: nothing to copy; the restore puts it back
        };
        let copy = (meta.is_file() && meta.len() <= crate::git::BACKUP_LIMIT)
            .then(|| repo.repo.blob_path(&full).ok())
            .flatten();
        notes.push(match copy {
            Some(blob) => format!(
                "{path} (your untracked file) was changed during the iteration; your copy is put back, the changed content is kept as blob {blob} (`git cat-file -p {blob}`)"
            ),
            None => {
                let earlier = if k.blob.is_empty() {
                    String::new()
                } else {
                    format!("; its earlier content is blob {}", k.blob)
                };
                *k = repo.keep_file(&path)?;
                rekept = true;
                format!(
                    "{path} (your untracked file) was changed during the iteration and is too big to copy: left as it is{earlier}"
                )
            }
        });
    }
    Ok((notes, rekept))
}

/// Splits `paths` into those small enough to commit as a copy (64 MB each, 256 MB in all) and
/// moves the others whole to `aside` (same file system: instant). Returns the small ones and a
/// note about the moved ones, if any.
fn set_big_files_aside(root: &Path, paths: &[String], aside: &Path) -> (Vec<String>, String) {
    const TOTAL: u64 = 256 * 1024 * 1024;
    let mut total = 0u64;
    let (small, big): (Vec<String>, Vec<String>) = paths.iter().cloned().partition(|p| {
        let len = std::fs::symlink_metadata(root.join(p))
            .map_or(0, |m| if m.is_file() { m.len() } else { 0 });
        total += len;
        len <= crate::git::BACKUP_LIMIT && total <= TOTAL
    });
    if big.is_empty() {
        return (small, String::new());
    }
    let failed: Vec<String> = big
        .into_iter()
        .filter(|p| {
            let to = aside.join(p);
            let moved = to
                .parent()
                .is_some_and(|d| std::fs::create_dir_all(d).is_ok())
                && std::fs::rename(root.join(p), &to).is_ok();
            !moved
        })
        .collect();
    let mut note = format!("; big files moved to {}", aside.display());
    if !failed.is_empty() {
        note.push_str(&format!(" (could not move {}: lost)", list_paths(&failed)));
    }
    (small, note)
}

fn preserve_work(
    repo: &Repo,
    paths: &Paths,
    tag: &str,
    n: u64,
    trial: Option<Oid>,
    message: &str,
    kept: &HashSet<String>,
) -> Result<(Option<(Oid, String)>, String)> {
    let mut held = None;
    if let Some(t) = trial {
        held = Some((t, preserve(repo, tag, n, t)?));
    }
    let changes: Vec<String> = repo
        .scan_refresh()?
        .into_iter()
        .map(|c| c.path)
        .filter(|p| !kept.contains(p))
        .collect();
    let aside = paths.private.join("leftovers").join(n.to_string());
    let (small, moved) = set_big_files_aside(&repo.root, &changes, &aside);
    if !small.is_empty() {
        let s = repo.snapshot(&small, message)?;
        held = Some((s, preserve(repo, tag, n, s)?));
    }
    Ok((held, moved))
}

/// Rolls back an iteration that a previous process left unfinished and records it.
fn recover(
    repo: &Repo,
    paths: &Paths,
    loaded: Option<&mut Loaded>,
    marker: std::result::Result<Inflight, String>,
    out: &Output,
) -> Result<()> {
    let marker = marker.map_err(|e| {
        Error::Refused(format!(
            "{} is unreadable ({e}); check the working tree by hand, then delete that file",
            paths.inflight.display()
        ))
    })?;
    let start = Oid::from_str(&marker.start_commit).map_err(|_| {
        Error::Refused(format!(
            "{} names no valid commit; delete it after checking the tree",
            paths.inflight.display()
        ))
    })?;
    if repo.branch().as_deref() != Some(marker.branch.as_str()) {
        return Err(Error::Refused(format!(
            "iteration {} was interrupted on {}, but HEAD is now elsewhere; check out that branch and run again",
            marker.iteration, marker.branch
        )));
    }
    let head = repo.head()?;
    if !repo.descends_from(head, start) {
        return Err(Error::Refused(format!(
            "iteration {} was interrupted at commit {}, but HEAD moved to {} since; reset the branch to {} (or delete {}) and run again",
            marker.iteration,
            Repo::short(start),
            Repo::short(head),
            Repo::short(start),
            paths.inflight.display()
        )));
    }
    let mut kept = inflight::load_kept(&paths.kept);
    let recorded = loaded
        .as_ref()
        .is_some_and(|l| l.replay.tally.iteration >= marker.iteration);
    let rollback = loaded
        .as_ref()
        .and_then(|l| l.saved.rollback)
        .unwrap_or(Rollback::Reset);
    if recorded {
        // The row was written; only the marker removal was lost. A recorded keep left HEAD on
        // its commit; anything else was already rolled back before the row was written.
        Inflight::clear(&paths.inflight)?;
        return Ok(());
    }
    // Preserve everything the iteration produced (the trial: on the branch, or already rolled
    // back and named in the marker; and what it left uncommitted), then restore the retained commit.
    let trial = if head != start {
        Some(head)
    } else {
        marker
            .trial_commit
            .as_deref()
            .and_then(|t| Oid::from_str(t).ok())
            .filter(|t| repo.repo.find_commit(*t).is_ok())
    };
    let kept_paths: HashSet<String> = kept.iter().map(|k| k.path.clone()).collect();
    let message = format!("experiment (interrupted): iteration {}", marker.iteration);
    let (held, moved) = preserve_work(
        repo,
        paths,
        &marker.run_tag,
        marker.iteration,
        trial,
        &message,
        &kept_paths,
    )?;
    // Your untracked files: a changed one's content is copied before your copy is put back.
    let (notes, rekept) = copy_changed_kept(repo, &mut kept)?;
    for note in notes {
        out.note(&note);
    }
    if rekept {
        inflight::save_kept(&paths.kept, &kept)?;
    }
    let new_head = if rollback == Rollback::Revert && head != start {
        repo.commit_tree_of(
            start,
            &format!(
                "revert: interrupted experiment of iteration {}",
                marker.iteration
            ),
        )?
    } else {
        repo.reset_hard(start)?;
        start
    };
    let created: Vec<String> = repo
        .scan_refresh()?
        .into_iter()
        .filter(|c| c.kind == ChangeKind::Untracked && !kept_paths.contains(&c.path))
        .map(|c| c.path)
        .collect();
    repo.delete_created(&created, new_head);
    for k in &kept {
        if !repo.kept_file_intact(k) && !repo.restore_kept_file(k)? {
            out.note(&format!(
                "{} (your untracked file) was changed and cannot be restored: it was not backed up",
                k.path
            ));
        }
    }
    let where_ = match &held {
        Some((_, name)) => format!("; its work is kept at {name}{moved}"),
        None => moved.clone(),
    };
    out.note(&format!(
        "iteration {} was interrupted during {} (the previous process was killed); rolled it back{where_}",
        marker.iteration, marker.phase
    ));
    if let Some(l) = loaded {
        let retained = l.replay.tally.current_metric;
        let row = Row {
            iteration: l.replay.tally.iteration + 1,
            commit: held.as_ref().map_or("-".into(), |(o, _)| Repo::short(*o)),
            metric: retained,
            delta: 0.0,
            guard: Guard::NotRun,
            status: Status::Crash,
            description: format!(
                "[INTERRUPTED] iteration {} stopped during {} when the engine was killed; rolled back{where_}",
                marker.iteration, marker.phase
            ),
        };
        l.results.append(&row)?;
        l.replay
            .apply(&row)
            .map_err(|e| Error::Blocked(e.to_string()))?;
        if let Some(s) = l.state.as_mut() {
            s.state = l.replay.tally.clone();
            s.engine.head = new_head.to_string();
            s.save(&paths.state)?;
            l.state_current = true;
        }
    }
    Inflight::clear(&paths.inflight)
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
    lock: Lock,
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
        lock,
    } = setup;
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
        saved_settings: None,
        watch: TreeWatch::off(),
        clean_at: None,
        scans: 0,
        notes: Vec::new(),
        untouched: false,
        settled: false,
        iteration_started: Instant::now(),
        _lock: lock,
    }
}

fn settings_meta(cfg: &RunConfig, run_tag: &str, exec: bool) -> Vec<(String, String)> {
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
fn tag_taken(tag: &str) -> Error {
    Error::Refused(format!(
        "refs/autoresearch/{tag}/ already holds trials of an earlier run; choose another --run-tag, or use --fresh to move them aside (to the first free refs/autoresearch/{tag}.prevN/)"
    ))
}

fn start_fresh(setup: Setup, user_untracked: &[String]) -> Result<Run> {
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

fn resume(setup: Setup, user_untracked: &[String], old: Loaded) -> Result<Run> {
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

impl Run {
    fn kept_path_set(&self) -> HashSet<String> {
        self.kept.iter().map(|k| k.path.clone()).collect()
    }

    /// Backs up the user's untracked files outside the scope, so the agent cannot lose them.
    fn keep_user_files(&mut self, user_untracked: &[String]) -> Result<()> {
        let mut kept = Vec::with_capacity(user_untracked.len());
        for p in user_untracked {
            kept.push(self.repo.keep_file(p)?);
        }
        inflight::save_kept(&self.paths.kept, &kept)?;
        let watched: Vec<String> = kept
            .iter()
            .filter(|k| k.blob.is_empty())
            .map(|k| k.path.clone())
            .collect();
        if !watched.is_empty() {
            self.out.note(&format!(
                "not backed up (directories, or files over 64 MB), only watched: {}",
                list_paths(&watched)
            ));
        }
        self.kept = kept;
        Ok(())
    }

    fn save_state(&mut self) -> Result<()> {
        self.state.state = self.replay.tally.clone();
        self.state.engine.version = env!("CARGO_PKG_VERSION").to_string();
        self.state.engine.branch = self.branch.clone();
        self.state.engine.head = self.head.to_string();
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

    fn child_env(&self, iteration: u64, directive: Directive) -> Vec<(String, String)> {
        vec![
            ("AUTORESEARCH_ITERATION".into(), iteration.to_string()),
            ("AUTORESEARCH_MODE".into(), self.cfg.mode.to_string()),
            (
                "AUTORESEARCH_DIRECTIVE".into(),
                directive.as_str().to_string(),
            ),
            ("AUTORESEARCH_GOAL".into(), self.cfg.goal.clone()),
            ("AUTORESEARCH_METRIC".into(), self.cfg.metric.clone()),
            (
                "AUTORESEARCH_DIRECTION".into(),
                self.cfg.direction.to_string(),
            ),
            (
                "AUTORESEARCH_RESULTS".into(),
                self.paths.results.display().to_string(),
            ),
            (
                "AUTORESEARCH_STATE".into(),
                self.paths.state.display().to_string(),
            ),
            (
                "AUTORESEARCH_FEEDBACK".into(),
                self.paths.feedback.display().to_string(),
            ),
            ("AUTORESEARCH_RUN_TAG".into(), self.run_tag.clone()),
        ]
    }

    fn write_feedback(&self, title: &str, text: &str) {
        let body = format!("# {title}\n{text}\n");
        let _ = fsutil::write_quick(&self.paths.feedback, body.as_bytes());
    }

    /// Runs verify and guard on the tree as it is (no agent change) and restores it afterwards;
    /// returns the metric and the guard column, or why the run cannot start.
    fn measure_untouched(
        &mut self,
        dir: &Path,
        prefix: &str,
    ) -> Result<std::result::Result<(f64, Guard), Untouched>> {
        self.untouched = true;
        let measured = self.measure_untouched_inner(dir, prefix);
        self.untouched = false;
        measured
    }

    fn measure_untouched_inner(
        &mut self,
        dir: &Path,
        prefix: &str,
    ) -> Result<std::result::Result<(f64, Guard), Untouched>> {
        let metric = match self.measure(dir, &format!("{prefix}verify"))? {
            Measure::Metric(v) => v,
            Measure::Failed { reason, tail, .. } => {
                self.restore_tree()?;
                return Ok(Err(Untouched::NoMetric { reason, tail }));
            }
            Measure::Interrupted(sig) => {
                self.restore_tree()?;
                return Ok(Err(Untouched::Interrupted(sig)));
            }
        };
        let guard = match self.run_guard(dir, &format!("{prefix}guard"))? {
            None => Guard::NotRun,
            Some(GuardRun::Pass) => Guard::Pass,
            Some(GuardRun::Fail { reason, tail }) => {
                self.restore_tree()?;
                return Ok(Err(Untouched::GuardFails { reason, tail }));
            }
            Some(GuardRun::Interrupted(sig)) => {
                self.restore_tree()?;
                return Ok(Err(Untouched::Interrupted(sig)));
            }
        };
        self.restore_tree()?;
        Ok(Ok((metric, guard)))
    }

    /// Returns the spec of a verify or guard run: `sh -c` in the repository with the run's
    /// environment, the log at `log`, `--verify-timeout`, and the group recorded.
    fn check_spec(&self, command: &str, log: std::path::PathBuf) -> Spec {
        let mut spec = Spec::shell(command, &self.repo.root);
        spec.stdout_log = Some(log.clone());
        spec.stderr_log = Some(log);
        spec.timeout = Some(self.cfg.verify_timeout);
        spec.group_record = Some(self.paths.child.clone());
        spec.env = self
            .child_env(self.replay.tally.iteration + 1, Directive::Continue)
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        spec
    }

    /// Runs verify (`--repeat` times) and reads the metric.
    fn measure(&mut self, dir: &Path, stem: &str) -> Result<Measure> {
        let mut values = Vec::new();
        for k in 1..=self.cfg.repeat {
            let log = if self.cfg.repeat == 1 {
                dir.join(format!("{stem}.log"))
            } else {
                dir.join(format!("{stem}-{k}.log"))
            };
            let spec = self.check_spec(&self.cfg.verify, log);
            let out = process::run(&spec)
                .map_err(|e| Error::Blocked(format!("cannot start verify (`sh -c`): {e}")))?;
            self.write_feedback("last verify output", &out.last_lines(40));
            let extracted = match out.end {
                End::Interrupted(sig) => return Ok(Measure::Interrupted(sig)),
                End::TimedOut => {
                    return Ok(Measure::Failed {
                        reason: format!(
                            "verify timed out after {}",
                            crate::duration::format(self.cfg.verify_timeout)
                        ),
                        timed_out: true,
                        tail: out.last_lines(5),
                    });
                }
                _ => self.cfg.metric_format.extract(&out.stdout),
            };
            match extracted {
                Ok(v) => values.push(v),
                Err(why) => {
                    let reason = match out.end {
                        End::Exited(0) => why,
                        other => format!("{why}; verify {}", other.describe()),
                    };
                    return Ok(Measure::Failed {
                        reason,
                        timed_out: false,
                        tail: out.last_lines(5),
                    });
                }
            }
        }
        Ok(Measure::Metric(median(&values)))
    }

    /// Runs the guard, if there is one.
    fn run_guard(&mut self, dir: &Path, stem: &str) -> Result<Option<GuardRun>> {
        let Some(guard) = self.cfg.guard.clone() else {
            return Ok(None);
        };
        let spec = self.check_spec(&guard, dir.join(format!("{stem}.log")));
        let out = process::run(&spec)
            .map_err(|e| Error::Blocked(format!("cannot start the guard (`sh -c`): {e}")))?;
        self.write_feedback("last guard output", &out.last_lines(60));
        Ok(Some(match out.end {
            End::Exited(0) => GuardRun::Pass,
            End::Interrupted(sig) => GuardRun::Interrupted(sig),
            other => GuardRun::Fail {
                reason: format!("guard {}", other.describe()),
                tail: out.last_lines(60),
            },
        }))
    }

    /// Returns how a path is shown in rows: relative to the repository when inside it.
    fn shown(&self, p: &Path) -> String {
        p.strip_prefix(&self.repo.root)
            .unwrap_or(p)
            .display()
            .to_string()
    }

    /// Restores the engine's own files if something wrote to them (git does not see them: they
    /// are excluded) and returns the ones it restored. Run right after an agent turn, which
    /// [`Run::settle_artifacts`] starts from a known state, so only writes made during the turn
    /// count against the agent.
    fn restore_artifacts(&mut self) -> Result<Vec<String>> {
        let mut touched = Vec::new();
        if self.results.tampered() {
            self.results.restore()?;
            touched.push(self.shown(&self.paths.results));
        }
        if fsutil::fingerprint(&self.paths.state) != self.state_stamp {
            self.save_state()?;
            touched.push(self.shown(&self.paths.state));
        }
        if self.lessons.tampered() {
            self.lessons.restore()?;
            touched.push(self.shown(&self.paths.lessons));
        }
        Ok(touched)
    }

    /// Before an agent turn: a results log or state written by someone else is restored (they are
    /// the engine's), lessons edited by hand are taken as they are.
    fn settle_artifacts(&mut self) -> Result<()> {
        if self.lessons.tampered() {
            self.lessons = Lessons::load(&self.paths.lessons);
        }
        for name in self.restore_artifacts()? {
            self.out.note(&format!(
                "{name} was changed outside the engine; restored it"
            ));
        }
        Ok(())
    }

    /// Commits everything [`Run::inspect`] found as the trial; the work tree then equals it.
    fn commit_trial(&mut self, insp: &Inspection, message: &str) -> Result<Oid> {
        let trial = self.repo.commit_paths(&insp.changed, message)?;
        // A directory (a nested repository) is not committed: the tree then differs from it.
        let all_files = insp
            .changed
            .iter()
            .all(|p| !self.repo.root.join(p).is_dir());
        self.clean_at = all_files.then_some(trial);
        Ok(trial)
    }

    /// Lists what the agent changed and which changes break the scope or protection.
    fn inspect(&mut self) -> Result<Inspection> {
        let mut insp = Inspection::default();
        let touched = self.restore_artifacts()?;
        let kept = self.kept_path_set();
        self.clean_at = None;
        self.watch.arm(&self.repo);
        if let Some(why) = self.watch.take_off_reason() {
            self.out.note(&format!(
                "scanning the whole work tree every time from now on: {why}"
            ));
        }
        self.scans += 1;
        insp.scan = self.repo.scan_refresh()?;
        for c in &insp.scan {
            if kept.contains(&c.path) {
                continue;
            }
            if self.protect.matches(&c.path) {
                insp.protected.push(c.path.clone());
            } else if !self.scope.matches(&c.path) {
                insp.scope.push(c.path.clone());
            }
            insp.changed.push(c.path.clone());
        }
        for k in &self.kept {
            if !self.repo.kept_file_intact(k) {
                if self.protect.matches(&k.path) {
                    insp.protected.push(k.path.clone());
                } else {
                    insp.scope.push(format!("{} (your untracked file)", k.path));
                }
            }
        }
        for t in touched {
            insp.protected.push(t);
        }
        Ok(insp)
    }

    /// Restores the tree to the retained commit: the branch, the index and the tracked files that
    /// differ (from the trial commits or edited since) are reset, files created since are deleted,
    /// the user's untracked files are restored if the agent changed them.
    fn restore_tree(&mut self) -> Result<()> {
        self.restore_tree_to(self.head)
    }

    /// [`Run::restore_tree`] towards `target` instead of the retained commit (a rework turn
    /// starts from its trial commit).
    fn restore_tree_to(&mut self, target: Oid) -> Result<()> {
        self.restore_tree_with(target, true)
    }

    /// [`Run::restore_tree_to`]; with `keep_leftovers`, whatever differs from HEAD (what verify
    /// or guard left, an edit made during the iteration, a rejected change) is first committed
    /// under `refs/autoresearch/<tag>/leftover-<n>` and named on the console: nothing is
    /// removed without a copy.
    fn restore_tree_with(&mut self, target: Oid, keep_leftovers: bool) -> Result<()> {
        self.restore_tree_known(target, keep_leftovers, None)
    }

    /// [`Run::restore_tree_with`], given the changes against HEAD when they were just scanned.
    fn restore_tree_known(
        &mut self,
        target: Oid,
        keep_leftovers: bool,
        known: Option<Vec<crate::git::Change>>,
    ) -> Result<()> {
        let kept = self.kept_path_set();
        let head = self.repo.head()?;
        let changes = match known {
            Some(c) => c,
            None => self.changes_since_clean(head)?,
        };
        if keep_leftovers {
            let left: Vec<String> = changes
                .iter()
                .filter(|c| !kept.contains(&c.path))
                .map(|c| c.path.clone())
                .collect();
            if !left.is_empty() {
                self.keep_leftovers(&left, Keep::Leftovers)?;
            }
            self.copy_changed_kept_files()?;
        }
        let mut paths: Vec<String> = changes
            .iter()
            .filter(|c| c.kind != ChangeKind::Untracked)
            .map(|c| c.path.clone())
            .collect();
        if head != target {
            paths.extend(self.repo.diff_paths(target, head)?);
            paths.sort_unstable();
            paths.dedup();
        }
        if head != target || !paths.is_empty() {
            self.repo.reset_paths(target, &paths)?;
        }
        let created: Vec<String> = changes
            .into_iter()
            .filter(|c| c.kind == ChangeKind::Untracked && !kept.contains(&c.path))
            .map(|c| c.path)
            .collect();
        let failed = self.repo.delete_created(&created, target);
        if !failed.is_empty() {
            self.out.note(&format!(
                "could not remove {} (left in place)",
                list_paths(&failed)
            ));
        }
        let mut changed = false;
        for i in 0..self.kept.len() {
            let k = &self.kept[i];
            if self.repo.kept_file_intact(k) || self.repo.restore_kept_file(k)? {
                continue;
            }
            // No backup (a directory, a big file): report it once and watch its new state.
            self.out.note(&format!(
                "{} (your untracked file) was changed and cannot be restored: it was not backed up",
                k.path
            ));
            let path = k.path.clone();
            self.kept[i] = self.repo.keep_file(&path)?;
            changed = true;
        }
        if changed {
            inflight::save_kept(&self.paths.kept, &self.kept)?;
        }
        // From here until the next agent turn the engine does not touch the tree.
        self.watch.arm(&self.repo);
        self.settled = true;
        Ok(())
    }

    /// Between iterations nobody but the user (or another program) changes the tree. Edits to
    /// your untracked files and new untracked files outside the scope are adopted as yours;
    /// anything else stops the run (a hard blocker) without touching it.
    fn changed_by_someone_else(&mut self) -> Result<Option<String>> {
        if !self.settled || !self.watch.active() || self.watch.quiet() {
            return Ok(None);
        }
        self.settled = false;
        // Armed before the scan: an edit made while it runs is seen at the next check.
        self.watch.arm(&self.repo);
        let kept = self.kept_path_set();
        let mut foreign = Vec::new();
        let mut adopted = false;
        for c in self.repo.scan_refresh()? {
            if kept.contains(&c.path) {
                continue;
            }
            if c.kind == ChangeKind::Untracked
                && !self.scope.matches(&c.path)
                && !self.protect.matches(&c.path)
            {
                self.kept.push(self.repo.keep_file(&c.path)?);
                self.out.note(&format!(
                    "{} appeared outside the scope between iterations: treated as your untracked file",
                    c.path
                ));
                adopted = true;
            } else {
                foreign.push(c.path);
            }
        }
        let mut i = 0;
        while i < self.kept.len() {
            if self.repo.kept_file_intact(&self.kept[i]) {
                i += 1;
                continue;
            }
            let path = self.kept[i].path.clone();
            adopted = true;
            if self.repo.root.join(&path).symlink_metadata().is_err() {
                // You removed it: nothing left to watch.
                self.kept.remove(i);
                continue;
            }
            self.kept[i] = self.repo.keep_file(&path)?;
            i += 1;
        }
        if adopted {
            inflight::save_kept(&self.paths.kept, &self.kept)?;
        }
        self.settled = true;
        if foreign.is_empty() {
            return Ok(None);
        }
        Ok(Some(format!(
            "the work tree changed between iterations ({}): someone else is editing it; stopped without touching it (commit or undo those changes, then run again to continue)",
            list_paths(&foreign)
        )))
    }

    /// Before a restore puts your untracked files back: the changed content of each one that
    /// changed is kept as a loose blob (your files are never committed) and named; one too big
    /// to copy (or no longer a file) is left as it is and watched in its new state instead, its
    /// earlier content staying in its backup.
    fn copy_changed_kept_files(&mut self) -> Result<()> {
        let (notes, rekept) = copy_changed_kept(&self.repo, &mut self.kept)?;
        for note in notes {
            self.out.note(&note);
            self.notes.push(note);
        }
        if rekept {
            inflight::save_kept(&self.paths.kept, &self.kept)?;
        }
        Ok(())
    }

    /// What differs from `head` (HEAD): nothing when the tree equalled it when the watch was
    /// armed and no event arrived since, else a scan.
    fn changes_since_clean(&mut self, head: Oid) -> Result<Vec<crate::git::Change>> {
        if self.clean_at.take() == Some(head) && self.watch.quiet() {
            return Ok(Vec::new());
        }
        self.scans += 1;
        self.repo.scan_refresh()
    }

    /// Copies what a restore is about to undo, now (before a forced checkout); returns the
    /// changes against HEAD it found and the commit and ref holding the copy, if any.
    #[allow(clippy::type_complexity)]
    fn copy_leftovers_now(
        &mut self,
        keep: Keep,
    ) -> Result<(Vec<crate::git::Change>, Option<(Oid, String)>)> {
        let head = self.repo.head()?;
        let kept = self.kept_path_set();
        let changes = self.changes_since_clean(head)?;
        let left: Vec<String> = changes
            .iter()
            .map(|c| c.path.clone())
            .filter(|p| !kept.contains(p))
            .collect();
        let held = if left.is_empty() {
            None
        } else {
            self.keep_leftovers(&left, keep)?
        };
        self.copy_changed_kept_files()?;
        Ok((changes, held))
    }

    /// Commits `paths` as they are (files up to the backup limit, 256 MB in all) on top of HEAD,
    /// without moving the branch, under `refs/autoresearch/<tag>/leftover-<n>` (or `trial-<n>`
    /// for unfinished work); moves bigger ones to `.autoresearch/leftovers/<n>/`; says so, and
    /// returns the commit and ref.
    fn keep_leftovers(&mut self, paths: &[String], keep: Keep) -> Result<Option<(Oid, String)>> {
        let (n, label) = if self.untouched {
            (0, "the measurement of the untouched tree".to_string())
        } else {
            let n = self.replay.tally.iteration + 1;
            (n, format!("iteration {n}"))
        };
        let aside = self.paths.private.join("leftovers").join(n.to_string());
        let (small, moved) = set_big_files_aside(&self.repo.root, paths, &aside);
        let (kind, message, what) = match keep {
            Keep::Leftovers => (
                "leftover",
                format!("leftovers: iteration {n}"),
                "changes the iteration did not commit were undone",
            ),
            Keep::Unfinished => (
                "trial",
                format!("experiment (unfinished): iteration {n}"),
                "the unfinished work was rolled back",
            ),
        };
        let mut where_ = String::new();
        let mut held = None;
        if !small.is_empty() {
            let oid = self.repo.snapshot(&small, &message)?;
            let name = preserve_as(&self.repo, &self.run_tag, kind, n, oid)?;
            where_ = format!("; kept at {name}");
            held = Some((oid, name));
        }
        where_.push_str(&moved);
        let note = format!("{what} ({}){where_}", list_paths(paths));
        self.out.note(&format!("{label}: {note}"));
        self.notes.push(note);
        Ok(held)
    }

    /// Rolls back iteration `n`: keeps its work under `refs/autoresearch/<tag>/` (the trial and,
    /// with `snapshot`, what it left uncommitted), then resets (or reverts) to the retained
    /// commit. Returns the commit and ref that hold the work.
    fn roll_back(
        &mut self,
        n: u64,
        trial: Option<Oid>,
        snapshot: bool,
    ) -> Result<Option<(Oid, String)>> {
        let mut held = match trial {
            Some(t) => Some((t, preserve(&self.repo, &self.run_tag, n, t)?)),
            None => None,
        };
        let head = self.repo.head()?;
        // What the restore undoes is copied first (the revert commit's checkout is forced); with
        // `snapshot` the copy is the unfinished work, the latest of what the iteration made.
        let keep = if snapshot {
            Keep::Unfinished
        } else {
            Keep::Leftovers
        };
        let (changes, copy) = self.copy_leftovers_now(keep)?;
        if snapshot && copy.is_some() {
            held = copy;
        }
        let mut known = Some(changes);
        if self.cfg.rollback == Rollback::Revert && head != self.head {
            let msg = format!("revert: experiment of iteration {n} was not kept");
            self.head = self.repo.commit_tree_of(self.head, &msg)?;
            known = None; // the checkout changed the tree
        }
        self.restore_tree_known(self.head, false, known)?;
        Ok(held)
    }

    /// Appends a row, updates the state (and lessons), and reports it.
    fn record(&mut self, row: Row, rec: Option<IterationRecord>) -> Result<()> {
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
                        canonical(row.metric - row.delta),
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

    fn experiment_row(
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

    fn prompt_text(&self, directive: Directive, feedback: Option<(&str, &str)>) -> String {
        let lessons = self.lessons.recent(PROMPT_LESSONS, &self.cfg.goal);
        prompt::render(&PromptInput {
            mode: self.cfg.mode,
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
        })
    }

    /// Runs one agent turn, waiting out quota and rate limits.
    fn turn(
        &mut self,
        n: u64,
        directive: Directive,
        feedback: Option<(&str, &str)>,
        stem: &str,
        base: Oid,
        rec: &mut IterationRecord,
    ) -> Result<Turn> {
        let dir = self.paths.iter_dir(n);
        // A new agent session after a pivot, or every iteration with `--session fresh`; rework
        // turns always continue the iteration's session.
        let fresh = directive == Directive::Pivot
            || (directive != Directive::Rework && self.cfg.session == Session::Fresh);
        let mut backoff = quota_backoff();
        loop {
            self.settle_artifacts()?;
            let prompt = self.prompt_text(directive, feedback);
            let prompt_file = if stem == "agent" {
                dir.join("prompt.md")
            } else {
                dir.join(format!("{stem}.prompt.md"))
            };
            let _ = fsutil::write_quick(&prompt_file, prompt.as_bytes());
            let env = self.child_env(n, directive);
            let p = self.agent.propose(&Request {
                iteration: n,
                directive,
                prompt: &prompt,
                repo: &self.repo.root,
                log_dir: &dir,
                log_stem: stem,
                fresh_session: fresh,
                env: &env,
                group_record: &self.paths.child,
            });
            rec.agent_ms += ms(p.duration);
            rec.usage.add(&p.usage);
            rec.session_id = p.session_id.clone();
            self.state.engine.session_id = p.session_id.clone();
            self.state.engine.session_usage = p.session_total.clone();
            for note in &p.notes {
                self.out.note(&format!("iteration {n}: {note}"));
                rec.notes.push(format!("{stem}: {note}"));
            }
            if let Outcome::RateLimited(msg) = &p.outcome {
                let waited = Duration::from_millis(rec.quota_wait_ms);
                let Some(wait) = quota_wait(backoff, waited, self.cfg.max_quota_wait) else {
                    if self.moved(base)?.is_none() {
                        self.restore_tree_to(base)?;
                    }
                    return Ok(Turn::Stop(Stop::NeedsHuman(format!(
                        "the agent keeps hitting a usage or rate limit ({}) and --max-quota-wait {} is spent",
                        one_line(msg),
                        crate::duration::format(self.cfg.max_quota_wait)
                    ))));
                };
                let note = format!(
                    "the agent hit a usage or rate limit ({}); waiting {} before retrying",
                    one_line(msg),
                    crate::duration::human(wait)
                );
                self.out.note(&format!("iteration {n}: {note}"));
                rec.notes.push(format!("{stem}: {note}"));
                // Undo the partial turn back to where it started (a rework turn: its trial).
                if let Some(why) = self.moved(base)? {
                    return Ok(Turn::Stop(Stop::Blocked(why)));
                }
                self.restore_tree_to(base)?;
                if let Some(sig) = sleep_interruptibly(wait) {
                    return Ok(Turn::Stop(Stop::Interrupted(sig)));
                }
                rec.quota_wait_ms += ms(wait);
                backoff = backoff.saturating_mul(2);
                continue;
            }
            return Ok(Turn::Done(Box::new(p)));
        }
    }

    /// Records an interrupted iteration and returns the stop.
    fn abandon(
        &mut self,
        n: u64,
        phase: &str,
        sig: i32,
        trial: Option<Oid>,
        rec: IterationRecord,
    ) -> Result<Stop> {
        let held = self.roll_back(n, trial, true)?;
        let where_ = held
            .as_ref()
            .map(|(_, r)| format!("; its work is kept at {r}"))
            .unwrap_or_default();
        let row = self.experiment_row(
            n,
            Status::Crash,
            held.map(|(o, _)| o),
            None,
            Guard::NotRun,
            format!(
                "[INTERRUPTED] stopped by {} during {phase}; rolled back{where_}",
                signal::name(sig)
            ),
        );
        let t0 = self.iteration_started;
        self.close(row, rec, t0)?;
        Ok(Stop::Interrupted(sig))
    }

    fn close(&mut self, row: Row, mut rec: IterationRecord, t0: Instant) -> Result<Option<Stop>> {
        rec.status = row.status.as_str().to_string();
        rec.total_ms = ms(t0.elapsed());
        rec.tree_scans = self.scans;
        rec.notes.append(&mut self.notes);
        self.record(row, Some(rec))?;
        Inflight::clear(&self.paths.inflight)?;
        Ok(None)
    }

    /// Runs one iteration; returns a stop when the run must end now.
    fn iteration(&mut self) -> Result<Option<Stop>> {
        let n = self.replay.tally.iteration + 1;
        let t0 = Instant::now();
        self.iteration_started = t0;
        self.scans = 0;
        self.notes.clear();
        let dir = self.paths.iter_dir(n);
        fsutil::ensure_dir(&dir)?;
        let directive = self.replay.next_directive();
        let mut marker = Inflight {
            version: 1,
            iteration: n,
            run_tag: self.run_tag.clone(),
            branch: self.branch.clone(),
            start_commit: self.head.to_string(),
            phase: "agent".into(),
            trial_commit: None,
            started_at: crate::artifacts::state::now_utc(),
            pid: std::process::id(),
        };
        marker.save(&self.paths.inflight)?;
        let mut rec = IterationRecord {
            iteration: n,
            ..IterationRecord::default()
        };

        let head = self.head;
        let p = match self.turn(n, directive, None, "agent", head, &mut rec)? {
            Turn::Done(p) => p,
            Turn::Stop(Stop::Interrupted(sig)) => {
                return self.abandon(n, "the agent step", sig, None, rec).map(Some);
            }
            Turn::Stop(stop) => {
                Inflight::clear(&self.paths.inflight)?;
                return Ok(Some(stop));
            }
        };
        // Someone (or the agent) committed, reset or switched branches: stop before any rollback.
        if let Some(why) = self.moved(self.head)? {
            Inflight::clear(&self.paths.inflight)?;
            return Ok(Some(Stop::Blocked(why)));
        }
        let desc = {
            let d = one_line(&p.description);
            if d.is_empty() {
                "(no description)".to_string()
            } else {
                d
            }
        };
        match &p.outcome {
            Outcome::Completed => {}
            Outcome::Interrupted(sig) => {
                return self.abandon(n, "the agent step", *sig, None, rec).map(Some);
            }
            Outcome::Failed(reason) | Outcome::TimedOut(reason) | Outcome::RateLimited(reason) => {
                let timed_out = matches!(p.outcome, Outcome::TimedOut(_));
                let preserved = self.roll_back(n, None, true)?.map(|(o, _)| o);
                let tag = if timed_out { "[TIMEOUT] " } else { "" };
                let row = self.experiment_row(
                    n,
                    Status::Crash,
                    preserved,
                    None,
                    Guard::NotRun,
                    format!("{tag}{}", one_line(reason)),
                );
                return self.close(row, rec, t0);
            }
        }

        let insp = self.inspect()?;
        self.cross_check(n, &p, &insp);
        if let Some(row) = self.rejection(n, &insp, &desc) {
            // Nothing was committed: the scan just made tells what to undo.
            self.restore_tree_known(self.head, true, Some(insp.scan))?;
            return self.close(row, rec, t0);
        }
        let mut trial = self.commit_trial(&insp, &format!("experiment: {desc}"))?;
        marker.phase = "verify".into();
        marker.trial_commit = Some(trial.to_string());
        marker.update(&self.paths.inflight)?;

        let t = Instant::now();
        let measured = self.measure(&dir, "verify")?;
        rec.verify_ms += ms(t.elapsed());
        let mut metric = match self.after_verify(n, measured, trial, &desc, &mut rec, t0)? {
            Ok(v) => v,
            Err(stop) => return Ok(stop),
        };
        let retained = self.replay.tally.current_metric;
        if !self.cfg.direction.improves(metric, retained) {
            self.roll_back(n, Some(trial), false)?;
            let row = self.experiment_row(
                n,
                Status::Discard,
                Some(trial),
                Some(metric),
                Guard::NotRun,
                desc,
            );
            return self.close(row, rec, t0);
        }

        // Improved: the guard decides, with rework turns when it fails.
        let mut reworks = 0u32;
        // A rework turn that changed nothing leaves the guard's verdict as it was.
        let mut unchanged: Option<(String, String)> = None;
        loop {
            if self.cfg.guard.is_some() {
                marker.phase = "guard".into();
                marker.update(&self.paths.inflight)?;
            }
            let t = Instant::now();
            let g = if let Some((reason, tail)) = unchanged.take() {
                Some(GuardRun::Fail { reason, tail })
            } else {
                self.run_guard(
                    &dir,
                    if reworks == 0 {
                        "guard".to_string()
                    } else {
                        format!("rework-{reworks}-guard")
                    }
                    .as_str(),
                )?
            };
            rec.guard_ms += ms(t.elapsed());
            let (reason, tail) = match g {
                None | Some(GuardRun::Pass) => {
                    let guard = if g.is_some() {
                        Guard::Pass
                    } else {
                        Guard::NotRun
                    };
                    self.head = trial;
                    self.restore_tree()?;
                    let note = match reworks {
                        0 => String::new(),
                        1 => " (guard passed after 1 rework turn)".into(),
                        r => format!(" (guard passed after {r} rework turns)"),
                    };
                    rec.rework_turns = reworks;
                    let row = self.experiment_row(
                        n,
                        Status::Keep,
                        Some(trial),
                        Some(metric),
                        guard,
                        format!("{desc}{note}"),
                    );
                    return self.close(row, rec, t0);
                }
                Some(GuardRun::Interrupted(sig)) => {
                    return self
                        .abandon(n, "the guard", sig, Some(trial), rec)
                        .map(Some);
                }
                Some(GuardRun::Fail { reason, tail }) => (reason, tail),
            };
            if reworks >= self.cfg.rework {
                self.roll_back(n, Some(trial), false)?;
                let after = match reworks {
                    0 => String::new(),
                    1 => " after 1 rework turn".into(),
                    r => format!(" after {r} rework turns"),
                };
                let last = tail
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .to_string();
                let row = self.experiment_row(
                    n,
                    Status::Discard,
                    Some(trial),
                    Some(metric),
                    Guard::Fail,
                    match one_line(&last) {
                        l if l.is_empty() => format!("[GUARD] {desc} ({reason}{after})"),
                        l => format!("[GUARD] {desc} ({reason}{after}: {l})"),
                    },
                );
                rec.rework_turns = reworks;
                return self.close(row, rec, t0);
            }
            reworks += 1;
            marker.phase = "rework".into();
            marker.update(&self.paths.inflight)?;
            let stem = format!("rework-{reworks}");
            let turn = self.turn(
                n,
                Directive::Rework,
                Some(("Failing guard output", tail.as_str())),
                &stem,
                trial,
                &mut rec,
            )?;
            let p = match turn {
                Turn::Done(p) => p,
                Turn::Stop(Stop::Interrupted(sig)) => {
                    return self
                        .abandon(n, "a rework turn", sig, Some(trial), rec)
                        .map(Some);
                }
                Turn::Stop(stop) => {
                    // Quota spent: drop the trial. Blocked (the branch moved): touch nothing.
                    if !matches!(stop, Stop::Blocked(_)) {
                        self.roll_back(n, Some(trial), false)?;
                    }
                    Inflight::clear(&self.paths.inflight)?;
                    return Ok(Some(stop));
                }
            };
            if let Some(why) = self.moved(trial)? {
                Inflight::clear(&self.paths.inflight)?;
                return Ok(Some(Stop::Blocked(why)));
            }
            match &p.outcome {
                Outcome::Completed => {}
                Outcome::Interrupted(sig) => {
                    return self
                        .abandon(n, "a rework turn", *sig, Some(trial), rec)
                        .map(Some);
                }
                Outcome::Failed(why) | Outcome::TimedOut(why) | Outcome::RateLimited(why) => {
                    self.roll_back(n, Some(trial), false)?;
                    rec.rework_turns = reworks;
                    let tag = if matches!(p.outcome, Outcome::TimedOut(_)) {
                        "[TIMEOUT] "
                    } else {
                        ""
                    };
                    let row = self.experiment_row(
                        n,
                        Status::Discard,
                        Some(trial),
                        Some(metric),
                        Guard::Fail,
                        format!(
                            "[GUARD] {tag}{desc} (rework turn {reworks} failed: {})",
                            one_line(why)
                        ),
                    );
                    return self.close(row, rec, t0);
                }
            }
            let insp = self.inspect()?;
            self.cross_check(n, &p, &insp);
            if insp.changed.is_empty() && insp.scope.is_empty() && insp.protected.is_empty() {
                unchanged = Some((reason, tail)); // the guard would fail the same way
                continue;
            }
            if let Some(mut row) = self.rejection(n, &insp, &desc) {
                // On top of the trial: roll it back like any rejected trial (--rollback honoured).
                row.commit = Repo::short(trial);
                self.roll_back(n, Some(trial), false)?;
                rec.rework_turns = reworks;
                return self.close(row, rec, t0);
            }
            trial = self.commit_trial(&insp, &format!("experiment: {desc} (rework {reworks})"))?;
            marker.phase = "verify".into();
            marker.trial_commit = Some(trial.to_string());
            marker.update(&self.paths.inflight)?;
            let t = Instant::now();
            let measured = self.measure(&dir, &format!("rework-{reworks}-verify"))?;
            rec.verify_ms += ms(t.elapsed());
            metric = match self.after_verify(n, measured, trial, &desc, &mut rec, t0)? {
                Ok(v) => v,
                Err(stop) => return Ok(stop),
            };
            if !self.cfg.direction.improves(metric, retained) {
                self.roll_back(n, Some(trial), false)?;
                rec.rework_turns = reworks;
                let row = self.experiment_row(
                    n,
                    Status::Discard,
                    Some(trial),
                    Some(metric),
                    Guard::NotRun,
                    format!("{desc} (rework {reworks} lost the improvement)"),
                );
                return self.close(row, rec, t0);
            }
        }
    }

    /// Handles a verify result: the metric, or the closing of a crashed or interrupted trial.
    fn after_verify(
        &mut self,
        n: u64,
        measured: Measure,
        trial: Oid,
        desc: &str,
        rec: &mut IterationRecord,
        t0: Instant,
    ) -> Result<std::result::Result<f64, Option<Stop>>> {
        match measured {
            Measure::Metric(v) => {
                self.verify_failures = 0;
                Ok(Ok(v))
            }
            Measure::Interrupted(sig) => Ok(Err(Some(self.abandon(
                n,
                "verify",
                sig,
                Some(trial),
                rec.clone(),
            )?))),
            Measure::Failed {
                reason,
                timed_out,
                tail,
            } => {
                self.verify_failures += 1;
                self.roll_back(n, Some(trial), false)?;
                let tag = if timed_out { "[TIMEOUT] " } else { "" };
                let last = one_line(&tail);
                let last = if last.is_empty() {
                    String::new()
                } else {
                    format!(" | {last}")
                };
                let row = self.experiment_row(
                    n,
                    Status::Crash,
                    Some(trial),
                    None,
                    Guard::NotRun,
                    format!("{tag}{desc} — {reason}{last}"),
                );
                self.close(row, rec.clone(), t0)?;
                if self.verify_failures >= VERIFY_BROKEN_AFTER {
                    return Ok(Err(Some(Stop::Blocked(format!(
                        "verify failed {VERIFY_BROKEN_AFTER} times in a row (last: {reason}); fix the verify command or the environment"
                    )))));
                }
                Ok(Err(None))
            }
        }
    }

    /// Returns the discard row for scope or protection violations, or the no-op row when nothing
    /// changed; `None` when the change may be committed. The caller restores the tree.
    fn rejection(&self, n: u64, insp: &Inspection, desc: &str) -> Option<Row> {
        if insp.changed.is_empty() && insp.scope.is_empty() && insp.protected.is_empty() {
            return Some(self.experiment_row(
                n,
                Status::NoOp,
                None,
                None,
                Guard::NotRun,
                desc.to_string(),
            ));
        }
        let (tag, paths) = if !insp.protected.is_empty() {
            ("[PROTECTED]", &insp.protected)
        } else if !insp.scope.is_empty() {
            ("[SCOPE]", &insp.scope)
        } else {
            return None;
        };
        Some(self.experiment_row(
            n,
            Status::Discard,
            None,
            None,
            Guard::NotRun,
            format!("{tag} {} — {desc}", list_paths(paths)),
        ))
    }

    /// Notes paths the agent reported changing that the engine's diff does not show.
    fn cross_check(&mut self, n: u64, p: &Proposal, insp: &Inspection) {
        let changed: HashSet<&str> = insp.changed.iter().map(String::as_str).collect();
        let root = self.repo.root.to_string_lossy().to_string();
        let unseen: Vec<String> = p
            .reported_paths
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
    fn escalate(&mut self) -> Result<Option<Stop>> {
        while let Some(e) = self.replay.pending_escalation(self.cfg.thresholds) {
            // `--iterations N` caps bookkeeping rows too; the ladder catches up on resume.
            if self
                .cfg
                .iterations
                .is_some_and(|cap| self.replay.tally.iteration >= cap)
            {
                break;
            }
            let n = self.replay.tally.iteration + 1;
            let k = self.replay.ladder.since_reset;
            let (status, description) = match e {
                Escalation::Refine => (
                    Status::Refine,
                    format!(
                        "[REFINE] {k} failed experiments in a row; next turn refines the strategy"
                    ),
                ),
                Escalation::Pivot => (
                    Status::Pivot,
                    format!(
                        "[PIVOT] {k} failed experiments since the last keep or pivot; abandoning the strategy (pivot {})",
                        self.replay.tally.pivot_count + 1
                    ),
                ),
                Escalation::Search => (
                    Status::Search,
                    "[SEARCH] two pivots without a keep; next turn looks for outside ideas"
                        .to_string(),
                ),
            };
            let row = self.experiment_row(n, status, None, None, Guard::NotRun, description);
            self.record(row, None)?;
            if e == Escalation::Pivot {
                self.state.engine.session_id = None;
                self.state.engine.session_usage = None;
                if self.replay.pivots_exhausted(self.cfg.thresholds) {
                    return Ok(Some(Stop::NeedsHuman(format!(
                        "{} pivots without a keep; a human is needed (change the goal or scope with --fresh, or raise --max-pivots)",
                        self.replay.tally.pivot_count
                    ))));
                }
            }
        }
        Ok(None)
    }

    /// Returns the stop that applies now, if any.
    fn stop_check(&self) -> Option<Stop> {
        let t = &self.replay.tally;
        if let Some((text, cond)) = &self.cfg.stop_condition
            && cond.satisfied(t.current_metric)
        {
            return Some(Stop::Goal(format!(
                "stop condition `{text}` met ({} = {})",
                self.cfg.metric,
                canonical(t.current_metric)
            )));
        }
        if self.cfg.mode == Mode::Fix && t.current_metric == 0.0 {
            return Some(Stop::Goal(format!("{} reached 0", self.cfg.metric)));
        }
        if self.replay.pivots_exhausted(self.cfg.thresholds) {
            return Some(Stop::NeedsHuman(format!(
                "{} pivots without a keep; a human is needed (change the goal or scope with --fresh, or raise --max-pivots)",
                t.pivot_count
            )));
        }
        if let Some(cap) = self.cfg.iterations
            && t.iteration >= cap
        {
            return Some(Stop::Cap(cap));
        }
        None
    }

    /// Checks the hard blockers between iterations.
    fn blocker(&self) -> Result<Option<String>> {
        let min = min_free_mb();
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
            // Limits first, so `--iterations N` means at most N rows; a pending refine or pivot
            // row is appended on resume (the ladder is recomputed from the log).
            if let Some(stop) = self.stop_check() {
                break stop;
            }
            if let Some(stop) = self.escalate()? {
                break stop;
            }
            if let Some(stop) = self.stop_check() {
                break stop;
            }
            if let Some(sig) = signal::pending() {
                break Stop::Interrupted(sig);
            }
            if let Some(why) = self.blocker()? {
                break Stop::Blocked(why);
            }
            if let Some(why) = self.changed_by_someone_else()? {
                break Stop::Blocked(why);
            }
            if let Some(stop) = self.iteration()? {
                break stop;
            }
        };
        // A hard blocker leaves a `blocked` row, wherever it was found.
        if let Stop::Blocked(why) = &stop {
            let n = self.replay.tally.iteration + 1;
            let row =
                self.experiment_row(n, Status::Blocked, None, None, Guard::NotRun, why.clone());
            self.record(row, None)?;
        }
        Ok(stop)
    }

    fn finish(self, stop: Stop) -> Summary {
        let t = &self.replay.tally;
        let improved = self
            .cfg
            .direction
            .improves(t.best_metric, t.baseline_metric);
        let (reason, message, code) = match &stop {
            Stop::Goal(m) => ("goal_reached", format!("goal reached: {m}."), exit::OK),
            Stop::Cap(cap) => (
                "iteration_cap",
                format!("iteration cap reached ({}/{cap}).", t.iteration),
                exit::OK,
            ),
            Stop::NeedsHuman(m) => ("needs_human", format!("stopped: {m}."), exit::NEEDS_HUMAN),
            Stop::Blocked(m) => ("blocked", format!("blocked: {m}."), exit::BLOCKED),
            Stop::Interrupted(sig) => (
                "interrupted",
                format!(
                    "interrupted by {}; the tree is back at the retained commit.",
                    signal::name(*sig)
                ),
                signal::exit_code(*sig),
            ),
        };
        let code = if self.exec && !matches!(stop, Stop::Blocked(_) | Stop::Interrupted(_)) {
            if improved {
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

#[cfg(test)]
mod tests {
    use super::quota_wait;
    use std::time::Duration;

    #[test]
    fn quota_waits_double_from_the_first_and_stop_at_the_budget() {
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
