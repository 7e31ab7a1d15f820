//! `codex-autoresearch report`: writes the run's morning summary (`report.md`) and its chart
//! (`progress.svg`) into `autoresearch-results/engine/` beside the results and prints where. Reads the run
//! without the lock (a live run gets a snapshot); writes nothing else.

pub mod chart;
pub mod markdown;
pub mod model;
pub mod sarif;

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::artifacts::Paths;
use crate::artifacts::inflight::Inflight;
use crate::artifacts::lock;
use crate::artifacts::results::ResultsLog;
use crate::artifacts::state::{StateFile, Usage};
use crate::artifacts::timing::{self, IterationTiming};
use crate::ending::Ended;
use crate::engine::Direction;
use crate::engine::row::{Row, Status};
use crate::error::{Error, Result};
use crate::git::Repo;
use crate::output::num;
use model::{DiffStat, Keep, LessonAdded, ReasonGroup};

/// File name of the report, in `autoresearch-results/engine/`.
pub const MARKDOWN: &str = "report.md";
/// File name of the chart, in `autoresearch-results/engine/`.
pub const SVG: &str = "progress.svg";

/// Everything the report says.
pub struct Report {
    pub run_tag: String,
    pub goal: String,
    pub metric: String,
    pub direction: Direction,
    pub started_at: Option<String>,
    pub updated_at: Option<String>,
    pub ended: Option<Ended>,
    /// The pid of the live run, if one holds the lock.
    pub running: Option<u32>,
    /// An iteration left in flight by a run that is gone: `(iteration, phase)`.
    pub interrupted: Option<(u64, String)>,
    pub last_status: String,
    pub elapsed_secs: Option<f64>,
    pub baseline: f64,
    pub best: f64,
    pub best_iteration: u64,
    pub retained: f64,
    pub iterations: u64,
    /// Rows per status (baseline left out), in status order, zero counts left out.
    pub counts: Vec<(String, u64)>,
    pub keeps: Vec<Keep>,
    pub reasons: Vec<ReasonGroup>,
    pub timings: Vec<IterationTiming>,
    pub usage: Usage,
    pub lessons: Vec<LessonAdded>,
    /// Every main row of the results log (for the chart).
    pub rows: Vec<Row>,
    /// The mode reports of this run (debug, security, ship), as links relative to the report.
    pub mode_reports: Vec<String>,
}

/// Where the report went.
pub struct Written {
    pub markdown: PathBuf,
    pub svg: PathBuf,
    pub report: Report,
}

/// Reads the diffstat of the commit a row names, against its first parent.
fn diffstat(repo: &Repo, commit: &str) -> Option<DiffStat> {
    let c = repo
        .repo
        .revparse_single(commit)
        .ok()?
        .peel_to_commit()
        .ok()?;
    let tree = c.tree().ok()?;
    let parent = c.parent(0).ok().and_then(|p| p.tree().ok());
    let diff = repo
        .repo
        .diff_tree_to_tree(parent.as_ref(), Some(&tree), None)
        .ok()?;
    let s = diff.stats().ok()?;
    Some(DiffStat {
        files: s.files_changed(),
        insertions: s.insertions(),
        deletions: s.deletions(),
    })
}

/// Gathers the report of the run at `paths` in `repo`.
pub fn gather(repo: &Repo, paths: &Paths) -> Result<Report> {
    if !paths.results.exists() {
        return Err(Error::Refused(format!(
            "no autoresearch run in {} (no {}); start one with `codex-autoresearch run`, or pass --artifacts-dir where its results are",
            paths.dir.display(),
            paths
                .results
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
        )));
    }
    let (log, _) = ResultsLog::read(&paths.results)?;
    let replay = log.replay()?;
    let state = StateFile::load(&paths.state).ok();
    let usage: Usage = state
        .as_ref()
        .map(|s| s.engine.usage.clone())
        .unwrap_or_default();
    let meta = |k: &str| log.meta(k).unwrap_or_default().to_string();
    let ended: Option<Ended> = state.as_ref().and_then(|s| s.engine.ended.clone());
    // An end record means the run is over, even while its process (writing this report at its
    // end) still holds the lock.
    let running = lock::live(&paths.lock)
        .filter(|_| ended.is_none())
        .map(|h| h.pid);
    let interrupted = Inflight::load(&paths.inflight)
        .ok()
        .flatten()
        .and_then(|r| r.ok())
        .map(|m| (m.iteration, m.phase));
    let started_at = log.meta("started_at").map(str::to_string);
    let updated_at = state
        .as_ref()
        .map(|s| s.updated_at.clone())
        .filter(|s| !s.is_empty());
    let until = if running.is_some() {
        Some(crate::artifacts::state::now_utc())
    } else {
        ended.as_ref().map(|e| e.at.clone()).or(updated_at.clone())
    };
    let elapsed_secs = ended
        .as_ref()
        .map(|e| e.elapsed_secs as f64)
        .filter(|_| running.is_none())
        .or_else(|| model::seconds_between(started_at.as_deref()?, until.as_deref()?));
    let keeps = log
        .rows
        .iter()
        .filter(|r| r.status == Status::Keep)
        .map(|r| Keep {
            iteration: r.iteration,
            commit: r.commit.clone(),
            metric: r.metric,
            delta: r.delta,
            description: r.description.clone(),
            diffstat: diffstat(repo, &r.commit),
        })
        .collect();
    let lessons_text = std::fs::read_to_string(&paths.lessons).unwrap_or_default();
    let mode_reports = mode_reports(paths, &meta("run_tag"));
    let t = &replay.tally;
    Ok(Report {
        run_tag: meta("run_tag"),
        goal: meta("goal"),
        metric: meta("metric"),
        direction: replay.direction,
        started_at,
        updated_at,
        ended,
        running,
        interrupted,
        last_status: t.last_status.clone(),
        elapsed_secs,
        baseline: t.baseline_metric,
        best: t.best_metric,
        best_iteration: t.best_iteration,
        retained: t.current_metric,
        iterations: t.iteration,
        counts: Status::ALL
            .iter()
            .skip(1)
            .map(|s| (s.as_str().to_string(), replay.count(*s)))
            .filter(|(_, n)| *n > 0)
            .collect(),
        keeps,
        reasons: model::reasons(&log.rows),
        timings: timing::load(paths),
        usage,
        lessons: model::lessons_added(&lessons_text, &meta("run_tag")),
        rows: log.rows,
        mode_reports,
    })
}

/// The report files of the run's mode directories that exist, relative to the report's
/// directory (`paths.private`).
fn mode_reports(paths: &Paths, tag: &str) -> Vec<String> {
    const MAIN: [(&str, &str); 3] = [
        ("debug", "findings.md"),
        ("security", "findings.md"),
        ("ship", "checklist.md"),
    ];
    MAIN.iter()
        .map(|(mode, file)| paths.mode_dir(mode, tag).join(file))
        .filter(|f| f.is_file())
        .map(|f| {
            if let Ok(rel) = f.strip_prefix(&paths.private) {
                rel.display().to_string()
            } else if let Ok(rel) = f.strip_prefix(&paths.dir) {
                format!("../{}", rel.display())
            } else {
                f.display().to_string()
            }
        })
        .collect()
}

/// Writes `report.md` and `progress.svg` for the run in the repository at `repo` (default: the
/// git root of the current directory).
pub fn write(repo: Option<&Path>, artifacts_dir: Option<&Path>) -> Result<Written> {
    let (repo, paths) = crate::artifacts::locate(repo, artifacts_dir)?;
    write_at(&repo, &paths)
}

/// [`write`] for a run whose repository and paths are known (the run's own end).
pub fn write_at(repo: &Repo, paths: &Paths) -> Result<Written> {
    let report = gather(repo, paths)?;
    let best = model::running_best(&report.rows, report.direction);
    let title = format!("{}: {} per iteration", report.run_tag, report.metric);
    let svg = chart::render(&chart::ChartInput {
        title: &title,
        metric: &report.metric,
        direction: report.direction,
        rows: &report.rows,
        best: &best,
    })
    .map_err(Error::Blocked)?;
    crate::fsutil::ensure_dir(&paths.private)?;
    let markdown = paths.private.join(MARKDOWN);
    let svg_path = paths.private.join(SVG);
    crate::fsutil::write_atomic(&svg_path, svg.as_bytes())?;
    crate::fsutil::write_atomic(&markdown, markdown::render(&report).as_bytes())?;
    Ok(Written {
        markdown,
        svg: svg_path,
        report,
    })
}

/// The `report --json` payload.
pub fn as_json(w: &Written) -> serde_json::Value {
    let r = &w.report;
    json!({
        "report": w.markdown.display().to_string(),
        "svg": w.svg.display().to_string(),
        "run_tag": r.run_tag,
        "running": r.running.is_some(),
        "ended": r.ended,
        "ending": markdown::ending(r),
        "started_at": r.started_at,
        "elapsed_secs": r.elapsed_secs,
        "iterations": r.iterations,
        "baseline": num(r.baseline),
        "best": num(r.best),
        "best_iteration": r.best_iteration,
        "keeps": r.keeps.len(),
        "timing_records": r.timings.len(),
    })
}

/// The `report` command: writes the files and prints the report's path (or the JSON object).
pub fn report(repo: Option<&Path>, artifacts_dir: Option<&Path>, json_out: bool) -> Result<()> {
    use std::io::Write as _;
    let w = write(repo, artifacts_dir)?;
    let line = if json_out {
        as_json(&w).to_string()
    } else {
        w.markdown.display().to_string()
    };
    // A closed stdout (`report | head -0`) is not an error: the files are written.
    let _ = writeln!(std::io::stdout().lock(), "{line}");
    Ok(())
}

/// `report` flags.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub at: crate::cli::RunAt,
    /// Print one JSON object instead of the report's path.
    #[arg(long)]
    pub json: bool,
}
