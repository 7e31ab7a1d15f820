//! The baseline's check of what verify and guard touch: a command that opens the engine's own
//! files (results log, state, lessons, `.autoresearch/`: prompts, logs) or changes tracked files
//! is refused before the run starts, with the fix. Opens are seen with inotify (`IN_OPEN`,
//! `IN_ACCESS`) only while the command runs; the engine's own opens in that window (the command's
//! log, its process-group record, temporary files) are left out, and so is listing a directory.
//! Files that do not exist yet get a stand-in for the baseline (`artifacts::stand_in`), so that a
//! command reading them has something to open.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use super::Run;
use crate::artifacts::{Paths, stand_in};
use crate::engine::list_paths;
use crate::engine::row::Guard;
use crate::error::{Error, Result};
use crate::process::{self, Outcome, Spec};

/// How deep below `.autoresearch/` directories are watched, and how many at most.
const PRIVATE_DEPTH: usize = 2;
const MAX_WATCHES: usize = 1000;

/// What the baseline saw verify and guard do.
pub(super) struct BaselineCheck {
    watch: Option<OpenWatch>,
    /// The engine's files each command opened (`verify`, `guard`), as shown.
    opened: Vec<(&'static str, BTreeSet<String>)>,
    /// The tracked files each command changed (already put back).
    edited: Vec<(&'static str, Vec<String>)>,
}

/// An inotify watch for opens of the engine's files.
struct OpenWatch {
    inotify: Inotify,
    /// The directory of each watch, and whether every name in it counts (else only artifacts).
    dirs: HashMap<WatchDescriptor, (PathBuf, bool)>,
    /// The files the engine itself opens in the current window.
    ignore: HashSet<PathBuf>,
    /// The run's paths (which names in the artifacts directory are the run's).
    paths: Paths,
}

impl OpenWatch {
    fn start(paths: &Paths, git_dir: &Path) -> Option<OpenWatch> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
        let mask = AddWatchFlags::IN_OPEN
            | AddWatchFlags::IN_ACCESS
            | AddWatchFlags::IN_ONLYDIR
            | AddWatchFlags::IN_DONT_FOLLOW;
        let mut dirs = HashMap::new();
        if let Ok(wd) = inotify.add_watch(&paths.dir, mask) {
            dirs.insert(wd, (paths.dir.clone(), false));
        }
        let mut todo = vec![(paths.private.clone(), 0)];
        while let Some((dir, depth)) = todo.pop() {
            if dirs.len() >= MAX_WATCHES {
                break;
            }
            let Ok(wd) = inotify.add_watch(&dir, mask) else {
                continue;
            };
            dirs.insert(wd, (dir.clone(), true));
            if depth < PRIVATE_DEPTH
                && let Ok(entries) = std::fs::read_dir(&dir)
            {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        todo.push((e.path(), depth + 1));
                    }
                }
            }
        }
        // git's reflogs grow with every trial commit the run makes: a verify reading them
        // (a recursive grep without --exclude-dir=.git) measures the run itself.
        let logs = git_dir.join("logs");
        for dir in [
            logs.clone(),
            logs.join("refs"),
            logs.join("refs").join("heads"),
        ] {
            if let Ok(wd) = inotify.add_watch(&dir, mask) {
                dirs.insert(wd, (dir, true));
            }
        }
        Some(OpenWatch {
            inotify,
            dirs,
            ignore: HashSet::new(),
            paths: paths.clone(),
        })
    }

    /// Reads the pending events; returns the engine's files opened (those that count).
    fn drain(&self) -> Vec<PathBuf> {
        let mut seen = Vec::new();
        while let Ok(events) = self.inotify.read_events() {
            if events.is_empty() {
                break;
            }
            for e in events {
                let (Some((dir, all)), Some(name)) = (self.dirs.get(&e.wd), &e.name) else {
                    continue;
                };
                // Listing a directory is no read of the engine's files (test runners and linters
                // list every directory they walk).
                if e.mask.contains(AddWatchFlags::IN_ISDIR) {
                    continue;
                }
                let text = name.to_string_lossy();
                if text.starts_with(crate::fsutil::TMP_PREFIX)
                    || (!all && !self.paths.is_artifact_name(&text))
                {
                    continue;
                }
                let path = dir.join(name);
                if !self.ignore.contains(&path) {
                    seen.push(path);
                }
            }
        }
        seen
    }
}

impl BaselineCheck {
    /// Shows `path` as the run names it: relative to the repository, `.autoresearch/` whole.
    fn shown(paths: &Paths, root: &Path, path: &Path) -> String {
        let path = if path.starts_with(&paths.private) {
            paths.private.as_path()
        } else {
            path
        };
        let mut s = path
            .strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string();
        if path == paths.private {
            s.push('/');
        }
        s
    }

    /// The refusal, if verify or the guard touched what they must not.
    fn verdict(self, paths: &Paths) -> Result<()> {
        if let Some((who, files)) = self.opened.into_iter().next() {
            let files: Vec<String> = files.into_iter().collect();
            let inside = paths.rel_in_repo.is_some();
            let artifacts = if inside {
                "or keep them outside the repository with --artifacts-dir DIR"
            } else {
                "or point --artifacts-dir elsewhere"
            };
            let excludes = grep_excludes(paths);
            return Err(Error::Refused(format!(
                "{who} opened the engine's own files at the baseline ({}): its result would change as the run writes them; exclude them from the command (e.g. `grep {excludes}`: git's reflogs grow with every trial commit; or `git grep`, which reads only tracked files), {artifacts}",
                list_paths(&files)
            )));
        }
        if let Some((who, files)) = self.edited.into_iter().next() {
            return Err(Error::Refused(format!(
                "{who} changed tracked files at the baseline ({}; put back; their changed content is named above): verify and guard must not change the tree they measure; run fixers in check mode (`ruff check --no-fix`, `ruff format --check`, `eslint` without --fix, `prettier --check`, `cargo fmt --check`)",
                list_paths(&files)
            )));
        }
        Ok(())
    }
}

/// The private files the commands that watch a run read (`status`, `logs -f`, `stop`, a
/// `tail -f`): an open of them during the baseline is not taken for verify's (a verify that
/// reads `.autoresearch/` still opens the prompt and feedback stand-ins). `status` tells the
/// results log's stand-in by its size, without opening it.
fn watched_by_people(paths: &Paths) -> Vec<PathBuf> {
    vec![
        paths.lock.clone(),
        paths.inflight.clone(),
        paths.settings.clone(),
        crate::launch::child::log_path(&paths.private),
        crate::launch::control::request_path(&paths.private),
    ]
}

impl Run {
    /// The baseline with its check: stand-ins for missing root artifacts while it runs, then a
    /// refusal if verify or guard opened the engine's files or changed tracked files.
    pub(super) fn checked_baseline(&mut self, dir: &Path) -> Result<(f64, Guard)> {
        stand_in::place(&self.paths);
        self.baseline_check = Some(BaselineCheck {
            watch: OpenWatch::start(&self.paths, self.repo.repo.path()),
            opened: Vec::new(),
            edited: Vec::new(),
        });
        let measured = self.baseline(dir);
        let check = self.baseline_check.take();
        stand_in::remove(&self.paths);
        if let (Some(c), false) = (check, matches!(measured, Err(Error::Interrupted(..)))) {
            c.verdict(&self.paths)?;
        }
        measured
    }

    /// Runs verify or the guard (`who`); at the baseline, notes the engine's files it opened
    /// (not the private ones `status`, `logs -f` or `stop` read while a launched run starts).
    pub(super) fn run_check(&mut self, spec: &Spec, who: &'static str) -> std::io::Result<Outcome> {
        let Some(w) = self.baseline_check.as_mut().and_then(|c| c.watch.as_mut()) else {
            return process::run(spec);
        };
        w.drain();
        w.ignore = [&spec.stdout_log, &spec.stderr_log, &spec.group_record]
            .into_iter()
            .flatten()
            .cloned()
            .chain(watched_by_people(&self.paths))
            .collect();
        let out = process::run(spec);
        let opened = w.drain();
        if !opened.is_empty() {
            let shown: BTreeSet<String> = opened
                .iter()
                .map(|p| BaselineCheck::shown(&self.paths, &self.repo.root, p))
                .collect();
            if let Some(c) = self.baseline_check.as_mut() {
                c.opened.push((who, shown));
            }
        }
        out
    }

    /// At the baseline, notes the tracked files `who` changed (put back already).
    pub(super) fn note_edits(&mut self, who: &'static str, edited: Vec<String>) {
        if let Some(c) = self.baseline_check.as_mut()
            && !edited.is_empty()
        {
            c.edited.push((who, edited));
        }
    }
}

/// Runs `spec` while watching the engine's files of `paths` (in a repository whose root is
/// `root` and git directory `git_dir`): its outcome and the files it opened, as the run names
/// them. For `plan`, which measures candidates in a scratch checkout holding stand-ins.
pub(crate) fn run_watching_opens(
    paths: &Paths,
    root: &Path,
    git_dir: &Path,
    spec: &Spec,
) -> (std::io::Result<Outcome>, Vec<String>) {
    let Some(mut w) = OpenWatch::start(paths, git_dir) else {
        return (process::run(spec), Vec::new());
    };
    w.ignore = [&spec.stdout_log, &spec.stderr_log, &spec.group_record]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let out = process::run(spec);
    let opened: BTreeSet<String> = w
        .drain()
        .iter()
        .map(|p| BaselineCheck::shown(paths, root, p))
        .collect();
    (out, opened.into_iter().collect())
}

/// The `grep` options that leave out the engine's files (and `.git`).
fn grep_excludes(paths: &Paths) -> String {
    use crate::config::Layout;
    match (paths.layout, &paths.given_dir) {
        (Layout::March, _) => "--exclude-dir=.autoresearch --exclude-dir=.git --exclude='research-results*' --exclude='autoresearch-*'".into(),
        (Layout::Current, None) => {
            "--exclude-dir=autoresearch-results --exclude-dir=.codex-autoresearch --exclude-dir=.git".into()
        }
        (Layout::Current, Some(_)) => {
            let dir = paths.dir.file_name().unwrap_or_default().to_string_lossy();
            format!("--exclude-dir={dir} --exclude-dir=.codex-autoresearch --exclude-dir=.git")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Layout;

    #[test]
    fn the_engines_files_beside_the_repository_files() {
        let root = Path::new("/r");
        let march = Paths::with_layout(root, None, Layout::March).unwrap();
        for name in [
            "research-results.tsv",
            "autoresearch-state.json",
            "autoresearch-lessons.md",
            "research-results.prev.tsv",
            "autoresearch-state.prev3.json",
        ] {
            assert!(march.is_artifact_name(name), "{name}");
        }
        for name in [
            "README.md",
            "results.tsv",
            "autoresearch.toml",
            ".autoresearch",
        ] {
            assert!(!march.is_artifact_name(name), "{name}");
        }
        // `--artifacts-dir` in the current layout: only the run's own names there.
        let out = Paths::new(root, Some(Path::new("out"))).unwrap();
        for name in [
            "results.tsv",
            "state.json",
            "lessons.md",
            "context.json",
            "results.prev2.tsv",
        ] {
            assert!(out.is_artifact_name(name), "{name}");
        }
        for name in ["README.md", "research-results.tsv", "notes.json"] {
            assert!(!out.is_artifact_name(name), "{name}");
        }
        // `autoresearch-results/` is the run's whole.
        assert!(Paths::new(root, None).unwrap().is_artifact_name("anything"));
    }

    #[test]
    fn the_private_directory_is_shown_whole() {
        let root = Path::new("/r");
        let paths = Paths::new(root, None).unwrap();
        let shown = |p: &str| BaselineCheck::shown(&paths, root, Path::new(p));
        assert_eq!(
            shown("/r/autoresearch-results/engine/iter-0001/prompt.md"),
            "autoresearch-results/engine/"
        );
        assert_eq!(
            shown("/r/autoresearch-results/results.tsv"),
            "autoresearch-results/results.tsv"
        );
        let march = Paths::with_layout(root, None, Layout::March).unwrap();
        assert_eq!(
            BaselineCheck::shown(&march, root, Path::new("/r/.autoresearch/lock")),
            ".autoresearch/"
        );
        let outside = Paths::new(root, Some(Path::new("/elsewhere"))).unwrap();
        assert_eq!(
            BaselineCheck::shown(&outside, root, Path::new("/elsewhere/engine/lock")),
            "/elsewhere/engine/"
        );
    }
}
