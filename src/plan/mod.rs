//! `codex-autoresearch plan`: from a sentence to a launch-ready, validated configuration. The
//! repository profile (`profile`, no agent), 1–3 candidates from one read-only agent turn
//! (`agent`) or from the profile alone (`offline`), the mechanical validation of each
//! (`validate`), then at most ~15 lines or one JSON object; `--write` writes the first valid
//! candidate to `autoresearch.toml` (`write`), `--launch` runs it, `--launch-detached` launches
//! it. Nothing else in the user's repository is written.

pub mod agent;
pub mod candidate;
pub mod offline;
pub mod profile;
pub mod validate;
pub mod write;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};

use crate::config::{CONFIG_FILE, Dur, Settings};
use crate::engine::number::{canonical, significant};
use crate::error::{Error, Result, exit};
use crate::output::{Output, Style, say};
use agent::{AgentSetup, PlanAgent};
use candidate::Candidate;
use profile::Profile;
use validate::Validation;

/// What an agent turn is taken to cost without a timed one (`--agent none`).
const AGENT_TURN: Duration = Duration::from_secs(120);

/// `plan` flags.
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// What to achieve, in words.
    #[arg(long, value_name = "TEXT")]
    pub goal: String,
    /// Who proposes candidates: codex, claude, command, or none (from the profile alone).
    #[arg(long, value_name = "AGENT", value_enum, default_value = "codex")]
    pub agent: PlanAgent,
    /// The command agent: prompt on stdin, a JSON object on its last stdout line.
    #[arg(long, value_name = "CMD")]
    pub agent_cmd: Option<String>,
    /// Path of the codex binary (default: $CODEX_BIN, then `codex` on PATH).
    #[arg(long, value_name = "PATH")]
    pub codex_bin: Option<PathBuf>,
    /// Path of the claude binary (default: $CLAUDE_BIN, then `claude` on PATH).
    #[arg(long, value_name = "PATH")]
    pub claude_bin: Option<PathBuf>,
    /// Model for the agent.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Extra argument passed to the agent CLI (repeatable).
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    pub agent_arg: Vec<String>,
    /// Wall-clock limit of the planning turn.
    #[arg(long, value_name = "DUR", default_value = "10m")]
    pub agent_timeout: Dur,
    /// Verify runs per candidate on the untouched tree.
    #[arg(long, value_name = "K", default_value_t = 3, value_parser = crate::config::whole_number::<u32>)]
    pub runs: u32,
    /// Verify (and guard) timeout, e.g. 90s, 10m.
    #[arg(long, value_name = "DUR")]
    pub verify_timeout: Option<Dur>,
    /// Written with the chosen candidate: stop after N iterations.
    #[arg(long, value_name = "N", value_parser = crate::config::whole_number::<u64>)]
    pub iterations: Option<u64>,
    /// Write the chosen candidate to autoresearch.toml.
    #[arg(long)]
    pub write: bool,
    /// Replace an autoresearch.toml that holds other settings.
    #[arg(long)]
    pub force: bool,
    /// Write, then run the chosen candidate in the foreground.
    #[arg(long, conflicts_with = "launch_detached")]
    pub launch: bool,
    /// Write, then start the chosen candidate detached (as `launch`).
    #[arg(long)]
    pub launch_detached: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Repository to plan for (default: the git root of the current directory).
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
}

/// A candidate with what validating it found.
struct Checked {
    c: Candidate,
    v: Validation,
}

/// `plan`: returns the exit code (0 with a valid candidate, 2 without; a launch's own code).
pub fn command(args: PlanArgs) -> Result<u8> {
    crate::signal::install();
    let start = crate::config::start_dir(
        args.repo
            .as_ref()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
            .as_deref(),
    )?;
    let repo = crate::git::Repo::discover(&start)?;
    let root = repo.root.clone();
    let head = crate::git::Repo::short(repo.head()?);
    let profile = Profile::of_repo(&repo.repo, &root);
    let (candidates, agent_turn) = match args.agent {
        PlanAgent::None => (offline::candidates(&args.goal, &profile), AGENT_TURN),
        _ => {
            let p = agent::propose(&setup(&args), &root, &args.goal, &profile)?;
            (p.candidates, p.took)
        }
    };
    if candidates.is_empty() {
        return Err(Error::Refused(
            "the profile suggests nothing to measure (no tests, checkers or benchmarks found); describe the metric to an agent: --agent codex, or --agent command".into(),
        ));
    }
    let s = validate::Setup {
        root: &root,
        config_file: root.join(CONFIG_FILE),
        runs: args.runs,
        verify_timeout: args.verify_timeout.map(|d| d.0),
        agent_turn,
    };
    let mut checked = Vec::new();
    for c in candidates {
        let v = validate::validate(&c, &s)?;
        checked.push(Checked { c, v });
    }
    let chosen = checked.iter().position(|k| k.v.reasons.is_empty());
    let wants_file = args.write || args.launch || args.launch_detached;
    let mut written = None;
    if let (true, Some(i)) = (wants_file, chosen) {
        let extra = write::Extra {
            agent: match args.agent {
                PlanAgent::Codex => Some("codex"),
                PlanAgent::Claude => Some("claude"),
                _ => None,
            },
            model: args.model.clone(),
            iterations: args.iterations,
        };
        let k = &checked[i];
        write::write(&s.config_file, &k.c, &k.v, &extra, &head, args.force)?;
        written = Some(s.config_file.clone());
    }
    print(&args, &profile, &checked, chosen, written.as_deref());
    let Some(_) = chosen else {
        return Ok(exit::BLOCKED);
    };
    if args.launch {
        return launch_foreground(&root);
    }
    if args.launch_detached {
        let run_args = vec!["run".into(), "--repo".into(), root.clone().into_os_string()];
        let settings = Settings {
            repo: Some(root),
            ..Settings::default()
        };
        return crate::launch::launch(&settings, run_args, false);
    }
    Ok(exit::OK)
}

fn setup(a: &PlanArgs) -> AgentSetup {
    let abs = |p: &Option<PathBuf>| {
        p.as_ref()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
    };
    AgentSetup {
        kind: a.agent,
        cmd: a.agent_cmd.clone(),
        codex_bin: abs(&a.codex_bin),
        claude_bin: abs(&a.claude_bin),
        model: a.model.clone(),
        extra: a.agent_arg.clone(),
        timeout: a.agent_timeout.0,
    }
}

/// `run` on the written file, in the foreground.
fn launch_foreground(root: &std::path::Path) -> Result<u8> {
    let flags = Settings {
        repo: Some(root.to_path_buf()),
        ..Settings::default()
    };
    let g = crate::config::gather(flags, None, |k| std::env::var(k).ok())?;
    let out = Output {
        style: Style::Human,
    };
    let summary = crate::driver::run(crate::driver::Options {
        settings: g.settings,
        sources: g.sources,
        config_file: g.file,
        exec: false,
        output: out,
    })?;
    out.finished(&summary);
    Ok(summary.exit_code)
}

/// One candidate as JSON.
fn candidate_json(k: &Checked) -> Value {
    let mut o = serde_json::to_value(&k.c).unwrap_or_default();
    let v = serde_json::to_value(&k.v).unwrap_or_default();
    if let (Some(o), Some(v)) = (o.as_object_mut(), v.as_object()) {
        for (key, val) in v {
            o.insert(key.clone(), val.clone());
        }
        o.insert("valid".into(), json!(k.v.reasons.is_empty()));
    }
    o
}

fn print(
    args: &PlanArgs,
    profile: &Profile,
    checked: &[Checked],
    chosen: Option<usize>,
    written: Option<&std::path::Path>,
) {
    if args.json {
        let o = json!({
            "goal": args.goal,
            "profile": profile,
            "candidates": checked.iter().map(candidate_json).collect::<Vec<_>>(),
            "chosen": chosen,
            "written": written.map(|p| p.display().to_string()),
        });
        say(&o.to_string());
        return;
    }
    for l in human_lines(args, profile, checked, chosen, written) {
        say(&l);
    }
}

/// At most ~15 lines: the profile, two lines per valid candidate, one per invalid one, and
/// what to do next.
fn human_lines(
    args: &PlanArgs,
    profile: &Profile,
    checked: &[Checked],
    chosen: Option<usize>,
    written: Option<&std::path::Path>,
) -> Vec<String> {
    let mut lines = vec![
        format!("goal: {}", args.goal),
        format!("profile: {}", profile.summary()),
    ];
    for (i, k) in checked.iter().enumerate() {
        let (c, v) = (&k.c, &k.v);
        let mark = if Some(i) == chosen { " (chosen)" } else { "" };
        let what = format!("{} {} {}", c.mode, c.metric, c.direction);
        if !v.reasons.is_empty() {
            lines.push(format!(
                "{}. invalid: {what} — {}",
                i + 1,
                v.reasons.join("; ")
            ));
            continue;
        }
        let spread = match v.noise {
            Some(n) if n.deterministic => "deterministic".to_string(),
            Some(n) => format!("noise σ={}", significant(n.sigma, 2)),
            None => String::new(),
        };
        lines.push(format!(
            "{}.{mark} {what}: verify `{}` → {} ({spread}, {} s per verify)",
            i + 1,
            short(&c.verify),
            v.baseline.map(canonical).unwrap_or_default(),
            v.seconds_per_verify
                .map(|s| significant(s, 2))
                .unwrap_or_default()
        ));
        let stop = if c.mode == "fix" {
            "stop: at 0"
        } else {
            "stop: none (add --iterations N)"
        };
        let stop = match args.iterations {
            Some(n) if c.mode == "fix" => format!("{stop} or after {n} iterations"),
            Some(n) => format!("stop: after {n} iterations"),
            None => stop.to_string(),
        };
        lines.push(format!(
            "   scope {} ({} editable); guard: {}; keep effort {}; ~{} iterations/hour; {stop}",
            c.scope.join(","),
            files(v.editable.unwrap_or(0)),
            c.guard.as_deref().map_or("none".into(), short),
            v.keep_effort.as_deref().unwrap_or("default"),
            v.iterations_per_hour.map(canonical).unwrap_or_default(),
        ));
    }
    lines.push(match (chosen, written) {
        (None, _) => "no candidate passed validation: nothing written or launched".into(),
        (Some(_), Some(p)) => format!(
            "wrote {}; start with `codex-autoresearch run` or `codex-autoresearch launch`",
            p.display()
        ),
        (Some(_), None) => "write it with --write, or run it with --launch".into(),
    });
    lines
}

fn files(n: usize) -> String {
    format!("{n} file{}", if n == 1 { "" } else { "s" })
}

/// A command as a line shows it: one line, at most 60 characters.
fn short(cmd: &str) -> String {
    let one = cmd.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= 60 {
        return one;
    }
    format!("{}…", one.chars().take(59).collect::<String>())
}
