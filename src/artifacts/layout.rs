//! The two file layouts of a run (the reference's current `autoresearch-results/` and its March
//! 2026 names at the repository root), finding a run in either, and moving a March-layout run
//! into the current layout (crash-safe: one rename at a time, the results log last, so a killed
//! move is finished by the next start).

use std::fs;
use std::path::{Path, PathBuf};

use super::Paths;
use crate::config::Layout;
use crate::error::{Error, IoContext, Result};

/// The directory the current layout keeps a run's files in (under the repository root).
pub const RESULTS_DIR: &str = "autoresearch-results";
/// The repository's pointer directory of the current layout.
pub const POINTER_DIR: &str = ".codex-autoresearch";
/// The pointer file in [`POINTER_DIR`].
pub const POINTER_FILE: &str = "pointer.json";

/// The file names of one layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Names {
    pub results: &'static str,
    pub state: &'static str,
    pub lessons: &'static str,
    /// The engine's own directory (lock, logs, iteration directories), in the artifacts dir.
    pub private: &'static str,
    /// The artifacts directory under the repository root when `--artifacts-dir` is not given.
    pub default_dir: Option<&'static str>,
}

/// The reference's current names (May 2026).
pub const CURRENT: Names = Names {
    results: "results.tsv",
    state: "state.json",
    lessons: "lessons.md",
    private: "engine",
    default_dir: Some(RESULTS_DIR),
};

/// The reference's March 2026 names, at the repository root.
pub const MARCH: Names = Names {
    results: "research-results.tsv",
    state: "autoresearch-state.json",
    lessons: "autoresearch-lessons.md",
    private: ".autoresearch",
    default_dir: None,
};

/// Returns the names of `layout`.
pub fn names(layout: Layout) -> &'static Names {
    match layout {
        Layout::Current => &CURRENT,
        Layout::March => &MARCH,
    }
}

/// The layout whose results log is called like `path` (what the reducer's rules follow).
pub fn of_results(path: &Path) -> Layout {
    let march = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("research-results"));
    if march {
        Layout::March
    } else {
        Layout::Current
    }
}

/// `path` as messages show it: relative to the repository root when inside it.
pub fn shown(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The reducer's rules of a layout: the current reference's, or March's.
pub fn rules(layout: Layout) -> crate::engine::reducer::Rules {
    match layout {
        Layout::Current => crate::engine::reducer::Rules::Current,
        Layout::March => crate::engine::reducer::Rules::March,
    }
}

impl Paths {
    /// The paths of the run at `repo_root`: in `layout` when one is asked for (`--layout`), else
    /// in the current layout unless only a March-layout run is there (read as it is; `run`
    /// moves it with [`settle`]).
    pub fn find(
        repo_root: &Path,
        artifacts_dir: Option<&Path>,
        layout: Option<Layout>,
    ) -> Result<Paths> {
        if let Some(l) = layout {
            return Paths::with_layout(repo_root, artifacts_dir, l);
        }
        let current = Paths::with_layout(repo_root, artifacts_dir, Layout::Current)?;
        let march = Paths::with_layout(repo_root, artifacts_dir, Layout::March)?;
        // A March run whose results log has not moved yet (a move a kill interrupted included).
        let pending = march.has_run() && !real(&current.results);
        Ok(if pending { march } else { current })
    }
}

/// Returns the paths a run writes to: `found` itself, unless it is a March-layout run and the
/// current layout is wanted (`wanted` is not `march`), in which case the run is moved first and
/// `notice` gets one line saying so. A move a kill interrupted is finished here.
pub fn settle(found: Paths, wanted: Option<Layout>, notice: impl FnOnce(&str)) -> Result<Paths> {
    if found.layout == Layout::Current || wanted == Some(Layout::March) {
        return Ok(found);
    }
    let target = Paths::with_layout(&found.root, found.given_dir.as_deref(), Layout::Current)?;
    let target = Paths {
        outputs: found.outputs.clone(),
        ..target
    };
    if stand_in_free(&target.results).exists() {
        return Err(Error::Refused(format!(
            "both {} (March layout) and {} exist: move one of them aside, or pass --layout march to keep using the March one",
            found.results.display(),
            target.results.display()
        )));
    }
    migrate(&found, &target)?;
    notice(&format!(
        "moved the run from the March 2026 layout ({}, {}, {}) to {}/ (the reference's current layout; --layout march keeps the old names)",
        MARCH.results,
        MARCH.state,
        MARCH.private,
        target.dir.display()
    ));
    Ok(target)
}

/// Whether `path` exists and is no stand-in.
fn real(path: &Path) -> bool {
    path.exists() && !super::stand_in::is(path)
}

/// The path itself (a placeholder for a stand-in check: a stand-in of the new results log is
/// removed by the start, and is no run).
fn stand_in_free(path: &Path) -> PathBuf {
    if super::stand_in::is(path) {
        let _ = fs::remove_file(path);
    }
    path.to_path_buf()
}

/// One rename of the move, skipped when its source is already gone (a resumed move).
fn step(from: &Path, to: &Path) -> Result<()> {
    if from.symlink_metadata().is_err() {
        return Ok(());
    }
    if to.symlink_metadata().is_ok() {
        return Err(Error::Refused(format!(
            "cannot move {} to {}: it exists; move one of them aside and run again",
            from.display(),
            to.display()
        )));
    }
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).ctx("create", parent)?;
    }
    fs::rename(from, to).ctx("move", from)
}

/// Moves the engine's directory: whole when the target does not exist, else entry by entry (a
/// killed move, or a directory the start created), then removes the emptied old one.
fn move_private(from: &Path, to: &Path) -> Result<()> {
    if !from.is_dir() {
        return Ok(());
    }
    if to.symlink_metadata().is_err() {
        return step(from, to);
    }
    for e in fs::read_dir(from).ctx("read", from)?.flatten() {
        step(&e.path(), &to.join(e.file_name()))?;
    }
    fs::remove_dir(from).ctx("remove", from)
}

/// The archived generations of `stem.ext` in `dir` (`stem.prev.ext`, `stem.prev2.ext`, ...),
/// with the name each gets under `new_stem`.
fn generations(dir: &Path, old: &str, new: &str) -> Vec<(PathBuf, PathBuf)> {
    let (ostem, oext) = old.rsplit_once('.').unwrap_or((old, ""));
    let (nstem, next) = new.rsplit_once('.').unwrap_or((new, ""));
    let prefix = format!("{ostem}.prev");
    let suffix = format!(".{oext}");
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let generation = name.strip_prefix(&prefix)?.strip_suffix(&suffix)?;
            generation.bytes().all(|b| b.is_ascii_digit()).then(|| {
                (
                    e.path(),
                    dir.join(format!("{nstem}.prev{generation}.{next}")),
                )
            })
        })
        .collect()
}

/// Moves every file of `from` (March) to `to` (current): the engine's directory, the lessons,
/// the archives, the state, and last the results log, whose presence marks a move not yet done.
fn migrate(from: &Paths, to: &Paths) -> Result<()> {
    fs::create_dir_all(&to.dir).ctx("create", &to.dir)?;
    move_private(&from.private, &to.private)?;
    step(&from.lessons, &to.lessons)?;
    for (old, new) in [
        (MARCH.results, CURRENT.results),
        (MARCH.state, CURRENT.state),
    ] {
        for (a, b) in generations(&from.dir, old, new) {
            let b = to.dir.join(b.file_name().unwrap_or_default());
            step(&a, &b)?;
        }
    }
    step(&from.state, &to.state)?;
    recount(&from.results, &to.state)?;
    step(&from.results, &to.results)
}

/// Rewrites the moved state's counters under the current rules (a `refine` row now counts
/// toward `consecutive_discards`), from the log not moved yet, so that the resume finds them
/// agreeing with the log. Atomic, and repeated by a move resumed after a kill; a log or state
/// that cannot be read is left for the resume to report.
fn recount(results: &Path, state: &Path) -> Result<()> {
    let Ok((log, _)) = super::results::ResultsLog::read(results) else {
        return Ok(());
    };
    let Some(direction) = log
        .meta("metric_direction")
        .and_then(|d| d.parse::<crate::engine::Direction>().ok())
    else {
        return Ok(());
    };
    let rules = crate::engine::reducer::Rules::Current;
    let (Ok(replay), Ok(mut file)) = (
        crate::engine::reducer::Replay::from_rows_with(&log.rows, direction, rules),
        super::state::StateFile::load(state),
    ) else {
        return Ok(());
    };
    if file.state.consecutive_discards == replay.tally.consecutive_discards {
        return Ok(());
    }
    file.state.consecutive_discards = replay.tally.consecutive_discards;
    file.save(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn march_run(root: &Path) {
        for (f, text) in [
            ("research-results.tsv", "rows\n"),
            ("autoresearch-state.json", "{}\n"),
            ("autoresearch-lessons.md", "lessons\n"),
            ("research-results.prev.tsv", "old rows\n"),
            ("autoresearch-state.prev2.json", "{\"old\":1}\n"),
            (".autoresearch/runs.tsv", "runs\n"),
            (".autoresearch/iter-0001/prompt.md", "prompt\n"),
        ] {
            let p = root.join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
    }

    fn moved(root: &Path) {
        let dir = root.join(RESULTS_DIR);
        for (f, text) in [
            ("results.tsv", "rows\n"),
            ("state.json", "{}\n"),
            ("lessons.md", "lessons\n"),
            ("results.prev.tsv", "old rows\n"),
            ("state.prev2.json", "{\"old\":1}\n"),
            ("engine/runs.tsv", "runs\n"),
            ("engine/iter-0001/prompt.md", "prompt\n"),
        ] {
            assert_eq!(fs::read_to_string(dir.join(f)).unwrap(), text, "{f}");
        }
        for f in [
            "research-results.tsv",
            "autoresearch-state.json",
            "autoresearch-lessons.md",
            "research-results.prev.tsv",
            ".autoresearch",
        ] {
            assert!(!root.join(f).exists(), "{f} is gone");
        }
    }

    #[test]
    fn a_march_run_is_found_and_moved_once_with_one_notice() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        march_run(root);
        let found = Paths::find(root, None, None).unwrap();
        assert_eq!(found.layout, Layout::March);
        assert_eq!(found.results, root.join("research-results.tsv"));
        let mut notices = Vec::new();
        let paths = settle(found, None, |n| notices.push(n.to_string())).unwrap();
        assert_eq!(paths.layout, Layout::Current);
        assert_eq!(notices.len(), 1, "{notices:?}");
        moved(root);
        let again = Paths::find(root, None, None).unwrap();
        assert_eq!(again.layout, Layout::Current);
        let mut more = Vec::new();
        settle(again, None, |n| more.push(n.to_string())).unwrap();
        assert!(more.is_empty(), "nothing more to move");
    }

    #[test]
    fn layout_march_keeps_the_march_names() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        march_run(root);
        let found = Paths::find(root, None, Some(Layout::March)).unwrap();
        let paths = settle(found, Some(Layout::March), |_| panic!("no move")).unwrap();
        assert_eq!(paths.state, root.join("autoresearch-state.json"));
        assert!(root.join("research-results.tsv").exists());
        assert!(!root.join(RESULTS_DIR).exists());
    }

    /// A kill at any point of the move leaves a state the next start finishes: every prefix of
    /// the renames is replayed by running the move again.
    #[test]
    fn a_move_killed_after_any_rename_is_finished_by_the_next_start() {
        for done in 0..7 {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path();
            march_run(root);
            let from = Paths::with_layout(root, None, Layout::March).unwrap();
            let to = Paths::with_layout(root, None, Layout::Current).unwrap();
            fs::create_dir_all(&to.dir).unwrap();
            // The renames in their order, the first `done` of them made before the "kill".
            let mut renames = vec![(from.private.clone(), to.private.clone())];
            renames.push((from.lessons.clone(), to.lessons.clone()));
            renames.push((
                root.join("research-results.prev.tsv"),
                to.dir.join("results.prev.tsv"),
            ));
            renames.push((
                root.join("autoresearch-state.prev2.json"),
                to.dir.join("state.prev2.json"),
            ));
            renames.push((from.state.clone(), to.state.clone()));
            renames.push((from.results.clone(), to.results.clone()));
            for (a, b) in renames.iter().take(done) {
                fs::rename(a, b).unwrap();
            }
            let found = Paths::find(root, None, None).unwrap();
            let paths = settle(found, None, |_| {}).unwrap();
            assert_eq!(paths.layout, Layout::Current, "after {done} renames");
            moved(root);
        }
    }

    #[test]
    fn both_layouts_holding_a_results_log_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        march_run(root);
        fs::create_dir_all(root.join(RESULTS_DIR)).unwrap();
        fs::write(root.join(RESULTS_DIR).join("results.tsv"), "x\n").unwrap();
        let march = Paths::with_layout(root, None, Layout::March).unwrap();
        let err = settle(march, None, |_| {}).unwrap_err().to_string();
        assert!(err.contains("--layout march"), "{err}");
        assert!(root.join("research-results.tsv").exists(), "nothing moved");
    }
}
