//! `codex-autoresearch confirm` and the confirmation at the end of a run: interleaved verify runs
//! of the baseline and the final retained commit in a scratch checkout (the user's tree is never
//! touched) give the total effect with a 95% interval; a leave-one-out ablation says which keeps
//! carry the gain. The statistics are in `engine::effect`; `report` writes and reads the results.

pub mod report;
pub(crate) mod tree;

use std::path::Path;
use std::time::Instant;

use git2::Oid;

use crate::artifacts::Paths;
use crate::artifacts::lock::Lock;
use crate::artifacts::results::ResultsLog;
use crate::config::{RunConfig, Settings};
use crate::engine::effect::{self, Effect};
use crate::engine::row::Status;
use crate::error::{Error, Result};
use crate::git::Repo;
use crate::output::{Output, Style};
use crate::process::{self, Spec};
use crate::signal;
use report::{KeepReport, Report, Side};
use tree::{Ablated, ScratchTree};

/// How a message says to try again (said once per message).
const AGAIN: &str = "run `codex-autoresearch confirm` again";

/// What `confirm` compares: the run's baseline, its final retained commit, and the keeps between.
struct Plan {
    baseline: Oid,
    last: Oid,
    keeps: Vec<Keep>,
}

/// One keep row of the results log, resolved to its commit.
struct Keep {
    iteration: u64,
    commit: Option<Oid>,
    short: String,
    description: String,
}

/// Resolves the commits of the run recorded in `log`.
fn plan(repo: &Repo, log: &ResultsLog) -> Result<Plan> {
    let replay = log.replay()?;
    let rows = log.tail(usize::MAX);
    let resolve = |short: &str| -> Option<Oid> {
        let obj = repo.repo.revparse_single(short).ok()?;
        obj.peel_to_commit().ok().map(|c| c.id())
    };
    let first = rows
        .first()
        .ok_or_else(|| Error::Refused("the results log has no baseline row".into()))?;
    let missing = |what: &str, short: &str| {
        Error::Refused(format!(
            "the {what} commit {short} of the run is not in the repository (was the branch rewritten?); nothing to confirm"
        ))
    };
    let baseline = resolve(&first.commit).ok_or_else(|| missing("baseline", &first.commit))?;
    let last_short = &replay.tally.last_commit;
    let last = resolve(last_short).ok_or_else(|| missing("final retained", last_short))?;
    let keeps = rows
        .iter()
        .filter(|r| r.status == Status::Keep)
        .map(|r| Keep {
            iteration: r.iteration,
            commit: resolve(&r.commit).filter(|c| *c == last || repo.descends_from(last, *c)),
            short: r.commit.clone(),
            description: r.description.clone(),
        })
        .collect();
    Ok(Plan {
        baseline,
        last,
        keeps,
    })
}

/// Why a series of verify runs stopped.
enum Stopped {
    Interrupted(i32),
    Failed(String),
}

/// The values of both sides, or why the series stopped and on which commit.
type Series = std::result::Result<(Vec<f64>, Vec<f64>), (Stopped, Oid)>;

/// Runs verify in the scratch tree, interleaving the sides.
struct Bench<'a> {
    cfg: &'a RunConfig,
    tree: &'a ScratchTree,
    group_record: &'a Path,
    /// Verify runs so far (`AUTORESEARCH_VERIFY_RUN`).
    count: u32,
}

impl Bench<'_> {
    /// One verify run of `commit`; a failure because the scratch checkout vanished says so.
    fn once(&mut self, commit: Oid) -> Result<std::result::Result<f64, Stopped>> {
        let r = self.run_once(commit);
        match r {
            Err(_) | Ok(Err(Stopped::Failed(_))) => match self.tree.vanished() {
                Some(e) => Err(e),
                None => r,
            },
            _ => r,
        }
    }

    fn run_once(&mut self, commit: Oid) -> Result<std::result::Result<f64, Stopped>> {
        if let Some(sig) = signal::pending() {
            return Ok(Err(Stopped::Interrupted(sig)));
        }
        self.tree.checkout(commit)?;
        self.count += 1;
        let mut spec = Spec::shell(&self.cfg.verify, self.tree.root());
        spec.timeout = Some(self.cfg.verify_timeout);
        spec.group_record = Some(self.group_record.to_path_buf());
        spec.env = [
            ("AUTORESEARCH_VERIFY_ROLE", "confirm".to_string()),
            ("AUTORESEARCH_VERIFY_RUN", self.count.to_string()),
            ("AUTORESEARCH_METRIC", self.cfg.metric.clone()),
            ("AUTORESEARCH_DIRECTION", self.cfg.direction.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
        let out = process::run(&spec)
            .map_err(|e| Error::Blocked(format!("cannot start verify (`sh -c`): {e}")))?;
        // As in the run: the metric decides, not verify's exit status.
        let why = match crate::verify::read(self.cfg, &out) {
            crate::verify::Read::Metric(v) => return Ok(Ok(v)),
            crate::verify::Read::Interrupted(sig) => return Ok(Err(Stopped::Interrupted(sig))),
            crate::verify::Read::Failed { reason, .. } => reason,
        };
        let tail = out.last_lines(3).replace('\n', " | ");
        Ok(Err(Stopped::Failed(format!("{why} (last output: {tail})"))))
    }

    /// `runs` verify runs of each commit, in the order a, b, a, b, ...
    fn interleaved(&mut self, a: Oid, b: Oid) -> Result<Series> {
        let (mut va, mut vb) = (Vec::new(), Vec::new());
        for _ in 0..self.cfg.confirm_runs {
            for (commit, values) in [(a, &mut va), (b, &mut vb)] {
                match self.once(commit)? {
                    Ok(v) => values.push(v),
                    Err(s) => return Ok(Err((s, commit))),
                }
            }
        }
        Ok(Ok((va, vb)))
    }
}

/// The smallest contribution worth having, in the metric's units (`--min-effect`, a percentage
/// taken of the baseline's mean).
fn min_effect(cfg: &RunConfig, baseline_mean: f64) -> f64 {
    match cfg
        .min_effect
        .as_deref()
        .and_then(|m| crate::config::parse_min_effect(m).ok())
    {
        Some((v, true)) => v / 100.0 * baseline_mean.abs(),
        Some((v, false)) => v,
        None => 0.0,
    }
}

/// Measures the run recorded at `paths` and returns the report (nothing is written).
/// `progress` receives a line as each phase starts.
fn measure(repo: &Repo, paths: &Paths, cfg: &RunConfig, progress: &dyn Fn(&str)) -> Result<Report> {
    let started = Instant::now();
    let (log, _) = ResultsLog::read(&paths.results)?;
    let plan = plan(repo, &log)?;
    if plan.keeps.is_empty() {
        return Err(Error::Refused(
            "the run has no keep: there is no result to confirm".into(),
        ));
    }
    let scratch = ScratchTree::create(repo)?;
    let mut bench = Bench {
        cfg,
        tree: &scratch,
        group_record: &paths.child,
        count: 0,
    };
    let n = cfg.confirm_runs;
    progress(&format!(
        "confirm: baseline {} against final {}, {n} verify runs each",
        Repo::short(plan.baseline),
        Repo::short(plan.last)
    ));
    let stopped = |s: Stopped, commit: Oid| match s {
        Stopped::Interrupted(sig) => Error::Interrupted(sig, "during confirm"),
        Stopped::Failed(why) => Error::Blocked(format!(
            "confirm: verify failed on commit {}: {why}; fix verify and {AGAIN}",
            Repo::short(commit)
        )),
    };
    let (vb, vf) = bench
        .interleaved(plan.baseline, plan.last)?
        .map_err(|(s, c)| stopped(s, c))?;
    let effect = effect::welch(&vb, &vf, cfg.direction)
        .ok_or_else(|| Error::Blocked("confirm: too few verify runs for an interval".into()))?;
    let floor = min_effect(cfg, effect::Sample::of(&vb).mean);
    let mut keeps = Vec::new();
    for k in &plan.keeps {
        keeps.push(ablate(&mut bench, &scratch, &plan, k, floor, progress)?);
    }
    Ok(Report::new(
        cfg,
        log.meta("run_tag").unwrap_or_default(),
        Side::new(plan.baseline, vb),
        Side::new(plan.last, vf),
        effect,
        keeps,
        floor,
        started.elapsed(),
    ))
}

/// Measures the final tree without keep `k` against the final tree.
fn ablate(
    bench: &mut Bench<'_>,
    scratch: &ScratchTree,
    plan: &Plan,
    k: &Keep,
    floor: f64,
    progress: &dyn Fn(&str),
) -> Result<KeepReport> {
    let mut rep = KeepReport::new(k.iteration, &k.short, &k.description);
    let Some(commit) = k.commit else {
        rep.note = Some(format!(
            "its commit {} cannot be found in the final commit's history",
            k.short
        ));
        return Ok(rep);
    };
    let without = match scratch.without(commit, plan.last)? {
        Ablated::Commit(c) => c,
        Ablated::Skipped(why) => {
            rep.note = Some(why);
            return Ok(rep);
        }
    };
    progress(&format!(
        "confirm: final without keep #{} ({})",
        k.iteration, k.short
    ));
    match bench.interleaved(without, plan.last)? {
        Ok((vw, vf)) => {
            let contribution: Option<Effect> = effect::welch(&vw, &vf, bench.cfg.direction);
            rep.verdict = contribution.as_ref().map(|c| effect::verdict(c, floor));
            rep.contribution = contribution;
            rep.without = Some(Side::new(without, vw));
            rep.last = Some(Side::new(plan.last, vf));
        }
        Err((Stopped::Interrupted(sig), _)) => {
            return Err(Error::Interrupted(sig, "during confirm"));
        }
        Err((Stopped::Failed(why), c)) => {
            let side = if c == without {
                "without it"
            } else {
                "on the final tree"
            };
            rep.note = Some(format!("verify failed {side}: {why}"));
        }
    }
    Ok(rep)
}

/// Prints the one-line result: on stdout for a human, as a diagnostic beside JSON.
fn say(out: &Output, line: &str) {
    if out.style == Style::Human {
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    } else {
        out.note(line);
    }
}

/// The confirmation at the end of a run: runs when the run has a keep and `--no-confirm` was not
/// given, writes `confirm.md` and `confirm.json`, prints one line. A failure is reported as a
/// note and never changes the run's outcome. The caller skips it for a run ended by a signal.
pub fn at_end(repo: &Repo, paths: &Paths, cfg: &RunConfig, out: &Output) {
    // A metric the engine measures itself (an empty verify) has nothing to re-run.
    if !cfg.confirm || cfg.verify.trim().is_empty() || signal::pending().is_some() {
        return;
    }
    let has_keep = ResultsLog::read(&paths.results)
        .ok()
        .is_some_and(|(log, _)| {
            log.tail(usize::MAX)
                .iter()
                .any(|r| r.status == Status::Keep)
        });
    if !has_keep {
        return;
    }
    // Progress on stderr: the confirmation can take as long as many iterations' verify runs.
    let progress = |line: &str| out.note(&format!("{line} (--no-confirm skips this)"));
    match measure(repo, paths, cfg, &progress).and_then(|r| r.write(paths).map(|()| r)) {
        Ok(r) => say(out, &r.line(paths)),
        Err(e) => {
            let msg = e.to_string();
            let retry = if msg.contains(AGAIN) {
                String::new()
            } else {
                " (run `codex-autoresearch confirm` to try again)".to_string()
            };
            out.note(&format!(
                "{}; the run's result stands{retry}",
                msg.trim_start_matches("confirm: ")
            ))
        }
    }
}

/// `codex-autoresearch confirm`: confirms the run recorded in the repository; returns the exit
/// code (0) or the error.
pub fn command(
    repo_dir: Option<&Path>,
    artifacts_dir: Option<&Path>,
    confirm_runs: Option<u32>,
    json: bool,
) -> Result<u8> {
    signal::install();
    let (repo, paths) = crate::artifacts::locate(repo_dir, artifacts_dir)?;
    if !paths.results.exists() {
        return Err(Error::Refused(format!(
            "no autoresearch run in {} (no {}); confirm works on a finished run's results",
            repo.root.display(),
            paths.results.display()
        )));
    }
    // Holding the run's lock: no run starts beside the measurement, and none is running now.
    let (_lock, _) = Lock::acquire(&paths.lock)?;
    let saved = paths.peek_saved().ok_or_else(|| {
        Error::Refused(format!(
            "cannot read the run's settings from {} or its state; nothing to confirm",
            paths.results.display()
        ))
    })?;
    let explicit = Settings {
        confirm_runs,
        ..Settings::default()
    };
    let (merged, _) = crate::config::layered_sources(Some(&saved), &explicit, &Default::default());
    let cfg = RunConfig::from_settings(merged)?;
    let out = Output {
        style: Style::Human,
    };
    let progress = |line: &str| out.note(line);
    let report = measure(&repo, &paths, &cfg, &progress)?;
    report.write(&paths)?;
    if json {
        say(
            &Output {
                style: Style::Human,
            },
            &report.to_json().to_string(),
        );
    } else {
        say(&out, &report.line(&paths));
        for l in report.keep_lines() {
            say(&out, &l);
        }
    }
    Ok(0)
}
