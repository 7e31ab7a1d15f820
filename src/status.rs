//! `codex-autoresearch status`: what the run in a repository is doing or did, read without the
//! lock (never writes anything).

use std::path::Path;

use serde_json::{Value, json};

use crate::artifacts::Paths;
use crate::artifacts::inflight::Inflight;
use crate::artifacts::lock;
use crate::artifacts::results::ResultsLog;
use crate::artifacts::state::StateFile;
use crate::engine::number::canonical;
use crate::engine::reducer::Replay;
use crate::engine::row::Status;
use crate::error::Result;
use crate::git::Repo;
use crate::output::num;

/// Prints a line on stdout; a closed stdout (`status | head`) is not an error.
macro_rules! say {
    ($($t:tt)*) => {
        crate::output::say(&format!($($t)*))
    };
}

/// What `status` shows of a run: its log and replay, the state, the marker, the lock holder.
struct View {
    log: ResultsLog,
    replay: Replay,
    state: Option<StateFile>,
    inflight: Option<Inflight>,
    holder: Option<lock::Holder>,
    root: String,
    /// The stored confirmation: its line and its JSON summary.
    confirm: Option<(String, Value)>,
    /// A checklist run's ticked items and all items (the engine's copy).
    checklist: Option<(usize, usize)>,
    /// debug, security: the findings by severity (its line and JSON).
    findings: Option<(String, Value)>,
}

impl View {
    fn meta(&self, key: &str) -> String {
        self.log.meta(key).unwrap_or_default().to_string()
    }

    /// The live run's phase, elapsed time and end estimate (none when no run is live).
    fn live(&self) -> Option<crate::launch::live::Live> {
        let holder = self.holder.as_ref()?;
        let state = self.state.as_ref();
        let inputs = crate::launch::live::Inputs {
            holder,
            inflight: self.inflight.as_ref(),
            recent: state.map(|s| s.engine.recent.as_slice()).unwrap_or(&[]),
            cap: crate::launch::live::cap(state),
            recorded: Some(self.replay.tally.iteration),
            experiments: self.replay.ladder.experiments,
            deadline: crate::launch::live::deadline(state, holder, std::time::SystemTime::now()),
        };
        Some(crate::launch::live::Live::read(
            &inputs,
            std::time::SystemTime::now(),
        ))
    }

    /// The last five rows, oldest first.
    fn last_rows(&self) -> &[crate::engine::row::Row] {
        self.log.tail(5)
    }
}

/// Prints the status (never writes anything); an unreadable log is an error naming the file.
pub fn status(
    repo: Option<&Path>,
    artifacts_dir: Option<&Path>,
    json_out: bool,
    all: bool,
) -> Result<()> {
    let (repo, paths) = crate::artifacts::locate(repo, artifacts_dir)?;
    let archived = all.then(|| crate::artifacts::archived::list(&paths));
    let archived_json = archived
        .as_ref()
        .map(|a| Value::Array(a.iter().map(|r| r.to_json()).collect()));
    let holder = lock::live(&paths.lock);
    let root = repo.root.display().to_string();
    if !paths.results.exists() || crate::artifacts::stand_in::sized_like(&paths.results) {
        // A live run without a log is measuring its baseline.
        let now = std::time::SystemTime::now();
        let live = holder.as_ref().map(|h| {
            crate::launch::live::Live::read(
                &crate::launch::live::Inputs {
                    holder: h,
                    inflight: None,
                    recent: &[],
                    cap: None,
                    recorded: None,
                    experiments: 0,
                    deadline: None,
                },
                now,
            )
        });
        if json_out {
            let mut v = json!({"run": Value::Null, "repo": root, "running": holder.is_some(), "pid": holder.map(|h| h.pid), "inflight": Value::Null, "live": live.map(|l| l.to_json(now))});
            if let Some(a) = archived_json {
                v["archived"] = a;
            }
            say!("{v}");
        } else if let (Some(h), Some(l)) = (&holder, live) {
            say!("a run is starting in {root}: pid {}", h.pid);
            for line in l.lines(now) {
                say!("{line}");
            }
        } else {
            say!("no autoresearch run in {root} (start one with `codex-autoresearch run`)");
        }
        if !json_out {
            print_archived(archived.as_deref());
        }
        return Ok(());
    }
    // A torn last line (a crash mid-write) is left out here; the next `run` repairs it.
    let (log, _) = ResultsLog::read(&paths.results)?;
    let replay = log.replay()?;
    let confirm = crate::confirm::report::status_line(&paths, &replay.tally.last_commit);
    let findings = crate::artifacts::findings::status_of(
        &paths,
        log.meta("mode").unwrap_or_default(),
        log.meta("run_tag").unwrap_or_default(),
    );
    let view = View {
        log,
        replay,
        state: StateFile::load(&paths.state).ok(),
        inflight: Inflight::load(&paths.inflight)
            .ok()
            .flatten()
            .and_then(|r| r.ok()),
        holder,
        root,
        confirm,
        checklist: crate::ship::progress(&paths),
        findings,
    };
    if json_out {
        let mut v = as_json(&view);
        if let Some(a) = archived_json {
            v["archived"] = a;
        }
        say!("{v}");
    } else {
        print_text(&view);
        print_archived(archived.as_deref());
    }
    Ok(())
}

/// A resumed run's repository and run tag (never stored as settings: the repository is where the
/// run is, the tag the one it was given or chose), shown by `config` with the source `resumed
/// run` unless given explicitly.
fn resumed_identity(
    paths: &Paths,
    merged: &mut crate::config::Settings,
    sources: &mut std::collections::BTreeMap<&'static str, crate::config::Source>,
) {
    use crate::config::Source;
    if merged.repo.is_none() {
        merged.repo = Some(paths.root.clone());
        sources.insert("repo", Source::Resumed);
    }
    let explicit = sources
        .get("run_tag")
        .is_some_and(|s| !matches!(s, Source::Default | Source::Resumed));
    let stored = StateFile::load(&paths.state)
        .ok()
        .map(|s| s.run_tag)
        .filter(|t| !t.is_empty())
        .or_else(|| {
            ResultsLog::read(&paths.results)
                .ok()
                .and_then(|(l, _)| l.meta("run_tag").map(str::to_string))
        });
    if !explicit && let Some(tag) = stored {
        merged.run_tag = Some(tag);
        sources.insert("run_tag", Source::Resumed);
    }
}

/// The archived runs of `status --all`, oldest first.
fn print_archived(archived: Option<&[crate::artifacts::archived::Archived]>) {
    match archived {
        None => {}
        Some([]) => say!("archived runs: none"),
        Some(list) => {
            say!("archived runs ({}):", list.len());
            for a in list {
                say!("  {}", a.line());
            }
        }
    }
}

/// The `status --json` payload.
fn as_json(v: &View) -> Value {
    let t = &v.replay.tally;
    let counts: serde_json::Map<String, Value> = Status::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), json!(v.replay.count(*s))))
        .collect();
    let state = v.state.as_ref();
    json!({
        "repo": v.root,
        "run": {
            "run_tag": v.meta("run_tag"),
            "mode": v.meta("mode"),
            "goal": v.meta("goal"),
            "metric": v.meta("metric"),
            "direction": v.replay.direction.as_str(),
            "iteration": t.iteration,
            "experiments": v.replay.ladder.experiments,
            "iterations_cap": crate::launch::live::cap(state),
            "baseline": num(t.baseline_metric),
            "best": num(t.best_metric),
            "best_iteration": t.best_iteration,
            "retained": num(t.current_metric),
            "last_status": t.last_status,
            "pivot_count": t.pivot_count,
            "consecutive_discards": t.consecutive_discards,
            "counts": counts,
            "last_rows": v.last_rows().iter().map(|r| json!({
                "iteration": r.iteration, "commit": r.commit, "metric": num(r.metric), "delta": num(r.delta),
                "guard": r.guard.as_str(), "status": r.status.as_str(), "description": r.description,
            })).collect::<Vec<_>>(),
            "tokens": state.map(|s| s.engine.usage.clone()).unwrap_or_default(),
            "session_id": state.and_then(|s| s.engine.session_id.clone()),
            "recent": state.map(|s| s.engine.recent.clone()).unwrap_or_default(),
            "confirm": v.confirm.as_ref().map(|c| c.1.clone()),
            "keep_rule": keep_rule_json(v),
            "checklist": v.checklist.map(|(done, total)| json!({"done": done, "total": total})),
            "gates": crate::status_gates::json(state),
            "findings": v.findings.as_ref().map(|f| f.1.clone()),
        },
        "running": v.holder.is_some(),
        "pid": v.holder.as_ref().map(|h| h.pid),
        "inflight": v.inflight.as_ref().map(|m| json!({"iteration": m.iteration, "phase": m.phase})),
        "ended": ended_json(v),
        "live": v.live().map(|l| l.to_json(std::time::SystemTime::now())),
    })
}

/// The keep rule of the run and what it measured of the noise (`null` for a run without them).
fn keep_rule_json(v: &View) -> Value {
    let state = v.state.as_ref();
    let rule = state.and_then(|s| s.config.get("keep_rule").cloned());
    match state.and_then(|s| s.noise.as_ref()) {
        Some(n) => json!({
            "rule": rule.unwrap_or_else(|| json!("seq")),
            "effort": state.and_then(effort_of),
            "noise": n,
        }),
        None => {
            json!({ "rule": rule.unwrap_or_else(|| json!("strict")), "effort": Value::Null, "noise": Value::Null })
        }
    }
}

/// The SEQ preset in use: the one `auto` chose, or the one asked for; `None` while `auto` has
/// not chosen.
fn effort_of(state: &StateFile) -> Option<String> {
    state.engine.keep_effort.clone().or_else(|| {
        state
            .config
            .get("keep_effort")
            .and_then(|v| v.as_str())
            .filter(|e| *e != "auto")
            .map(str::to_string)
    })
}

/// The keep rule's line of `status` (SEQ only): the preset and the noise it measured.
fn keep_rule_text(v: &View) -> Option<String> {
    let state = v.state.as_ref()?;
    let n = state.noise.as_ref()?;
    let effort = effort_of(state).unwrap_or_else(|| "auto, not chosen yet".into());
    Some(match n.mode {
        crate::engine::seq::NoiseMode::Exact => {
            format!("keep rule: seq ({effort}), exact: the metric measured the same every time")
        }
        crate::engine::seq::NoiseMode::Statistical => format!(
            "keep rule: seq ({effort}), noise σ={} from {} differences between runs",
            crate::engine::number::significant(n.sigma, 2),
            n.n
        ),
    })
}

/// The `ended` object of `status --json`: the record of an ended run, `{"reason": "crashed"}`
/// for a run whose process is gone without one, `null` while it runs.
fn ended_json(v: &View) -> Value {
    if v.holder.is_some() {
        return Value::Null;
    }
    match v.state.as_ref().and_then(|s| s.engine.ended.as_ref()) {
        Some(e) => json!(e),
        None => json!({
            "reason": "crashed",
            "detail": crate::ending::CRASHED,
            "elapsed_secs": v.state.as_ref().map(|s| s.engine.elapsed_ms / 1000),
        }),
    }
}

/// The line of a run no process holds: how it ended, or that it crashed.
fn ended_text(state: Option<&StateFile>, inflight: Option<&Inflight>) -> String {
    match (state.and_then(|s| s.engine.ended.as_ref()), inflight) {
        (Some(e), _) => format!("not running; {}", crate::ending::status_line(e)),
        (None, Some(m)) => format!(
            "not running; crashed during iteration {} ({}): the next `run` rolls it back and resumes",
            m.iteration, m.phase
        ),
        (None, None) => format!("not running; {}", crate::ending::CRASHED),
    }
}

/// The human `status` text.
fn print_text(v: &View) {
    let t = &v.replay.tally;
    say!(
        "run {} ({}) in {}",
        v.meta("run_tag"),
        v.meta("mode"),
        v.root
    );
    say!("goal: {}", v.meta("goal"));
    say!(
        "metric {} ({} is better): baseline {}, best {} (#{}), retained {}",
        v.meta("metric"),
        v.replay.direction.as_str(),
        canonical(t.baseline_metric),
        canonical(t.best_metric),
        t.best_iteration,
        canonical(t.current_metric)
    );
    if let Some(line) = keep_rule_text(v) {
        say!("{line}");
    }
    if let Some((done, total)) = v.checklist {
        say!("checklist: {done}/{total} done");
    }
    for line in crate::status_gates::lines(v.state.as_ref()) {
        say!("{line}");
    }
    let summary: Vec<String> = Status::ALL
        .iter()
        .skip(1)
        .filter(|s| v.replay.count(**s) > 0)
        .map(|s| format!("{} {}", v.replay.count(*s), s.as_str()))
        .collect();
    say!(
        "iteration {}: {}",
        t.iteration,
        if summary.is_empty() {
            "no experiments yet".into()
        } else {
            summary.join(", ")
        }
    );
    say!(
        "experiments: {}",
        crate::engine::experiments::progress(
            v.replay.ladder.experiments,
            crate::launch::live::cap(v.state.as_ref())
        )
    );
    match (&v.holder, &v.inflight) {
        (Some(h), Some(m)) => say!(
            "running: pid {} (iteration {}, {})",
            h.pid,
            m.iteration,
            m.phase
        ),
        (Some(h), None) => say!("running: pid {}", h.pid),
        (None, inflight) => say!("{}", ended_text(v.state.as_ref(), inflight.as_ref())),
    }
    for line in v
        .live()
        .map(|l| l.lines(std::time::SystemTime::now()))
        .unwrap_or_default()
    {
        say!("{line}");
    }
    let usage = v
        .state
        .as_ref()
        .map(|s| s.engine.usage.clone())
        .unwrap_or_default();
    if !usage.is_empty() {
        say!(
            "tokens: {} in ({} cached), {} out",
            usage.input_tokens,
            usage.cached_input_tokens,
            usage.output_tokens
        );
    }
    if let Some((line, _)) = &v.confirm {
        say!("{line}");
    }
    if let Some((line, _)) = &v.findings {
        say!("{line}");
    }
    say!("last rows:");
    for r in v.last_rows() {
        say!("  {}", r.to_line().replace('\t', "  "));
    }
}

/// `codex-autoresearch config`: prints the effective settings of a `run` (or, with `exec`, of an
/// `exec`) here and the source of each; returns exit code 0, or 2 when the result would not start
/// (after printing it).
pub fn config(g: crate::config::Gathered, json_out: bool, exec: bool) -> Result<u8> {
    use crate::config::{RunConfig, Settings, Source};

    let start = crate::config::start_dir(g.settings.repo.as_deref())?;
    let repo = Repo::discover(&start).ok();
    // exec never resumes: the stored run's settings do not apply to it.
    let fresh = exec || g.settings.fresh == Some(true);
    let found = repo
        .as_ref()
        .and_then(|r| {
            Paths::find(
                &r.root,
                g.settings.artifacts_dir.as_deref(),
                g.settings.layout,
            )
            .ok()
        })
        .filter(|p| !fresh && p.has_run());
    let saved = found.as_ref().and_then(|p| p.peek_saved());
    // A resumed run refuses a changed goal, metric, direction or verify: so does this.
    let identity = saved
        .as_ref()
        .and_then(|s| crate::config::check_identity(s, &g.settings).err())
        .map(|e| crate::config::locate(e, &g.sources).to_string());
    let (mut merged, mut sources) =
        crate::config::layered_sources(saved.as_ref(), &g.settings, &g.sources);
    if saved.is_some()
        && let Some(p) = &found
    {
        resumed_identity(p, &mut merged, &mut sources);
    }
    let values = serde_json::to_value(&merged).unwrap_or_default();
    let exec_needs = (exec && merged.iterations.is_none())
        .then(|| crate::config::missing("iterations").to_string());
    let problem = identity.or(exec_needs).or_else(|| {
        match RunConfig::from_settings(merged) {
            Err(e) => Some(crate::config::locate(e, &sources).to_string()),
            // A run refuses a scope that protection leaves nothing to edit in: so does this.
            Ok(cfg) => repo.as_ref().and_then(|r| {
                let (dir, layout) = (cfg.settings.artifacts_dir.as_deref(), cfg.settings.layout);
                let paths = Paths::find(&r.root, dir, layout).ok()?;
                let p = crate::protection::protection(&cfg, &r.root, &paths, g.file.as_deref());
                crate::protection::check_editable(r, &cfg.scope, &p.list)
                    .err()
                    .map(|e| e.to_string())
            }),
        }
    });
    if json_out {
        let settings: serde_json::Map<String, Value> = Settings::KEYS
            .iter()
            .map(|k| {
                let mut entry = json!({ "value": values.get(*k).cloned().unwrap_or(Value::Null) });
                match sources.get(k) {
                    Some(Source::File { path, line, .. }) => {
                        entry["source"] = json!("file");
                        entry["file"] = json!(path.display().to_string());
                        entry["line"] = json!(line);
                    }
                    Some(Source::Env(var)) => {
                        entry["source"] = json!("environment");
                        entry["variable"] = json!(var);
                    }
                    Some(Source::Flag) => entry["source"] = json!("flag"),
                    Some(Source::Resumed) => entry["source"] = json!("resumed"),
                    Some(Source::Default) => entry["source"] = json!("default"),
                    None => entry["source"] = Value::Null,
                }
                ((*k).to_string(), entry)
            })
            .collect();
        say!(
            "{}",
            json!({
                "command": if exec { "exec" } else { "run" },
                "repo": repo.as_ref().map(|r| r.root.display().to_string()),
                "file": g.file.as_ref().map(|f| f.display().to_string()),
                "settings": settings,
                "valid": problem.is_none(),
                "error": problem,
            })
        );
    } else {
        say!("settings of: {}", if exec { "exec" } else { "run" });
        match &g.file {
            Some(f) => say!("config file: {}", f.display()),
            None => say!("config file: none (no autoresearch.toml at the repository root)"),
        }
        for k in Settings::KEYS {
            let value = match values.get(*k) {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => "-".to_string(),
            };
            let source = sources
                .get(k)
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unset".into());
            say!("{k:<20} {value:<40} {source}");
        }
        if let Some(p) = &problem {
            eprintln!("codex-autoresearch: error: {p}");
        }
    }
    Ok(if problem.is_some() {
        crate::error::exit::BLOCKED
    } else {
        0
    })
}
