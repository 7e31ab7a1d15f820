//! `--mode debug --fix` and `--mode security --fix`: once the hunt ends normally (diminishing returns, the iteration cap, a
//! budget, a plateau, a stop request), the same command continues with a fix run (GUIDE "Debug
//! mode"): mode fix, run tag `<hunt tag>-fix`, a fresh log (the hunt's is archived, its report
//! stays), the user's guard, scope and agent, and a verify the engine writes that runs every
//! confirmed finding's repro and prints `failing_repros: N` (lower is better; the run stops at
//! 0). Afterwards each finding whose repro passes is linked to the first keep after which it
//! did (`fixed_by` in `findings.json`, "Fixed by" in `findings.md`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Options;
use crate::artifacts::findings as files;
use crate::artifacts::results::ResultsLog;
use crate::config::{Mode, Settings, Source};
use crate::engine::Direction;
use crate::engine::findings::{Store, Validated};
use crate::engine::policy::security;
use crate::engine::row::{Status, one_line};
use crate::error::Result;
use crate::output::{Output, Summary};

/// The metric of the fix run.
pub const METRIC: &str = "failing_repros";

/// What a `--fix` hunt keeps of its options for the fix run after it.
pub(super) struct FixAfter {
    settings: Settings,
    sources: BTreeMap<&'static str, Source>,
    config_file: Option<PathBuf>,
    exec: bool,
    output: Output,
}

impl FixAfter {
    /// The fix run to follow a `--mode debug --fix` hunt; `None` otherwise.
    pub(super) fn of(opts: &Options) -> Option<FixAfter> {
        let s = &opts.settings;
        let hunt = matches!(s.mode, Some(Mode::Debug | Mode::Security));
        (hunt && s.fix == Some(true)).then(|| FixAfter {
            settings: s.clone(),
            sources: opts.sources.clone(),
            config_file: opts.config_file.clone(),
            exec: opts.exec,
            output: opts.output,
        })
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The fix run's verify: each repro run in turn (`repro #<id>: fails|passes`), then the count
/// of failing ones. One line (it is stored in the results log's header).
pub fn verify_script(targets: &[&Validated]) -> String {
    let mut s = String::from("n=0;");
    for v in targets {
        let Some(cmd) = v.finding.repro.as_deref() else {
            continue;
        };
        let cmd = cmd.replace('\n', " ");
        let id = v.id;
        let (fails, passes) = (
            format!("n=$((n+1)); echo 'repro #{id}: fails'"),
            format!("echo 'repro #{id}: passes'"),
        );
        match v
            .finding
            .repro_expect
            .as_deref()
            .filter(|e| !e.trim().is_empty())
        {
            Some(e) => s.push_str(&format!(
                " if ( {cmd} ) 2>&1 | grep -qF -- {}; then {fails}; else {passes}; fi;",
                quote(e.trim())
            )),
            None => s.push_str(&format!(
                " if ( {cmd} ) >/dev/null 2>&1; then {passes}; else {fails}; fi;"
            )),
        }
    }
    s.push_str(&format!(" echo \"{METRIC}: $n\""));
    s
}

/// The fix run's goal: the findings to fix, one line (security adds its rules).
fn goal(store: &Store, targets: &[&Validated], report: &str) -> String {
    let items: Vec<String> = targets
        .iter()
        .map(|v| {
            let f = &v.finding;
            let at = f
                .locations
                .first()
                .map(|l| format!(" at {}:{}-{}", l.path, l.start_line, l.end_line))
                .unwrap_or_default();
            let cause = f
                .root_cause
                .as_deref()
                .map(|c| format!("; root cause: {}", one_line(c)))
                .unwrap_or_default();
            let fix = f
                .suggested_fix
                .as_deref()
                .map(|c| format!("; suggested fix: {}", one_line(c)))
                .unwrap_or_default();
            format!("#{} {}{at}{cause}{fix}", v.id, one_line(&f.title))
        })
        .collect();
    let mut g = format!(
        "fix the confirmed findings of the {} run {} so their repros pass, without weakening any test: {} (report: {report})",
        store.mode,
        store.run_tag,
        items.join(" | ")
    );
    if store.mode == Mode::Security.as_str() {
        g.push(' ');
        g.push_str(security::FIX_RULES);
    }
    g
}

/// The findings a fix run takes on: debug, every confirmed finding with a repro; security, the
/// confirmed critical and high ones with a repro (`security::fix_plan`), the other critical and
/// high ones noted with why.
fn targets<'a>(mode: Mode, store: &'a Store, out: &Output) -> Vec<&'a Validated> {
    if mode == Mode::Security {
        let plan = security::fix_plan(&store.checked());
        for (i, why) in &plan.skipped {
            let v = &store.findings[*i];
            out.note(&format!(
                "--fix: finding #{} ({}) is not fixed by the engine: {why}",
                v.id,
                one_line(&v.finding.title)
            ));
        }
        return plan.targets.iter().map(|i| &store.findings[*i]).collect();
    }
    store
        .confirmed()
        .filter(|v| {
            v.finding
                .repro
                .as_deref()
                .is_some_and(|r| !r.trim().is_empty())
        })
        .collect()
}

/// After the hunt: the fix run, when the hunt ended normally with confirmed findings that have
/// a repro; else the hunt's own result.
pub(super) fn after_hunt(fix: Option<FixAfter>, hunt: Result<Summary>) -> Result<Summary> {
    let (Some(fix), Ok(summary)) = (fix, &hunt) else {
        return hunt;
    };
    let normal = [
        "goal_reached",
        "iteration_cap",
        "budget",
        "plateau",
        "stopped",
    ];
    if !normal.contains(&summary.reason.as_str()) {
        return hunt;
    }
    let s = &fix.settings;
    let (_, paths) = crate::artifacts::locate(s.repo.as_deref(), s.artifacts_dir.as_deref())?;
    let mode = s.mode.unwrap_or(Mode::Debug);
    let dir = paths.mode_dir(mode.as_str(), &summary.run_tag);
    let Some(store) = files::load(&dir)? else {
        return hunt;
    };
    let targets = targets(mode, &store, &fix.output);
    if targets.is_empty() {
        fix.output.note(match mode {
            Mode::Security => {
                "--fix: no confirmed critical or high finding has a repro; nothing to fix"
            }
            _ => "--fix: no confirmed finding has a repro; nothing to fix",
        });
        return hunt;
    }
    let tag = format!("{}-fix", summary.run_tag);
    let report = dir.join("findings.md").display().to_string();
    let mut settings = fix.settings.clone();
    settings.mode = Some(Mode::Fix);
    settings.metric = Some(METRIC.into());
    settings.direction = Some(Direction::Lower);
    settings.verify = Some(verify_script(&targets));
    settings.verify_format = None;
    settings.metric_regex = None;
    settings.goal = Some(goal(&store, &targets, &report));
    settings.fresh = Some(true);
    settings.run_tag = Some(tag.clone());
    // The hunt's own flags do not apply to a fix run.
    settings.fix = None;
    settings.symptom = None;
    settings.repro = None;
    settings.fail_on = None;
    settings.focus = None;
    settings.diff = None;
    fix.output.note(&format!(
        "--fix: the hunt confirmed {} finding(s) with a repro; fixing them in run {tag}",
        targets.len()
    ));
    let fixed = super::startup::run(Options {
        settings,
        sources: fix.sources,
        config_file: fix.config_file,
        exec: fix.exec,
        output: fix.output,
    });
    link_fixes(&paths, &dir, &tag, &fix.output);
    let gate = fix.settings.fail_on;
    fixed.map(|summary| gate_unfixed(fix.exec, mode, gate, &dir, summary))
}

/// `exec`: a fix run that completed exits as the hunt's mode decides over the findings it left
/// unfixed (security: `--fail-on` over those without `fixed_by`); otherwise with its own code.
fn gate_unfixed(
    exec: bool,
    mode: Mode,
    fail_on: Option<crate::config::Severity>,
    dir: &std::path::Path,
    mut summary: Summary,
) -> Summary {
    use crate::error::exit;
    let completed = matches!(summary.exit_code, exit::OK | exit::NO_IMPROVEMENT);
    if !exec || !completed {
        return summary;
    }
    let Ok(Some(store)) = files::load(dir) else {
        return summary;
    };
    let unfixed: Vec<_> = store
        .checked()
        .into_iter()
        .zip(&store.findings)
        .filter(|(_, v)| v.fixed_by.is_none())
        .map(|(c, _)| c)
        .collect();
    if let Some(code) = crate::engine::findings::gate::mode_exec_exit(mode, fail_on, &unfixed) {
        summary.exit_code = code;
    }
    summary
}

/// Records, for each finding, the fix run's first keep after which its repro passed.
fn link_fixes(paths: &crate::artifacts::Paths, dir: &std::path::Path, tag: &str, out: &Output) {
    let (Ok(Some(mut store)), Ok((log, _))) = (files::load(dir), ResultsLog::read(&paths.results))
    else {
        return;
    };
    for row in log
        .tail(usize::MAX)
        .iter()
        .filter(|r| r.status == Status::Keep)
    {
        let text = ["verify.log", "verify-1.log"]
            .iter()
            .find_map(|f| std::fs::read_to_string(paths.iter_dir(row.iteration).join(f)).ok())
            .unwrap_or_default();
        for v in store.findings.iter_mut().filter(|v| v.fixed_by.is_none()) {
            if text.contains(&format!("repro #{}: passes", v.id)) {
                v.fixed_by = Some(format!(
                    "{} (iteration {} of run {tag})",
                    row.commit, row.iteration
                ));
                out.note(&format!("finding #{} fixed by {}", v.id, row.commit));
            }
        }
    }
    if let Err(e) = files::save(dir, &store) {
        out.note(&format!(
            "could not record the fixes in {}: {e}",
            dir.display()
        ));
    }
}
