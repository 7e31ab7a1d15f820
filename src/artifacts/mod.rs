//! Where the run's files live (`autoresearch-results/`: `results.tsv`, `state.json`,
//! `lessons.md`, `context.json`, `engine/`; or the March names with `--layout march`, see
//! `layout`), their exclude entries, and `--fresh` archiving.

pub mod archived;
pub mod context;
pub mod findings;
pub mod inflight;
pub mod layout;
pub mod lessons;
pub mod lock;
pub mod results;
pub mod runs;
pub mod stand_in;
pub mod state;
pub mod timing;

use std::fs;
use std::path::{Path, PathBuf};

use crate::config::Layout;
use crate::error::{Error, IoContext, Result};

/// File name of the results log (current layout; `Paths::results` is the one to use).
pub const RESULTS: &str = layout::CURRENT.results;
/// File name of the state snapshot (current layout).
pub const STATE: &str = layout::CURRENT.state;
/// File name of the lessons file (current layout).
pub const LESSONS: &str = layout::CURRENT.lessons;
/// Name of the engine's private directory (current layout).
pub const PRIVATE: &str = layout::CURRENT.private;
/// The files of the engine's directory that belong to one run (archived with it).
const RUN_PRIVATE: [&str; 10] = [
    FEEDBACK,
    SETTINGS,
    KEPT,
    RUNS,
    timing::FILE,
    crate::report::MARKDOWN,
    crate::report::SVG,
    CONFIRM_MD,
    CONFIRM_JSON,
    EXEC_STATE,
];
/// The state of an exec run in the current layout, in the engine's directory: the reference
/// leaves no `state.json` after exec.
const EXEC_STATE: &str = "state.exec.json";
/// The mode report directories (`Paths::mode_dir`), in the artifacts directory.
const MODE_DIRS: [&str; 3] = ["debug", "security", "ship"];
const FEEDBACK: &str = "feedback.txt";
const SETTINGS: &str = "settings.json";
const KEPT: &str = "kept-files.json";
/// Every verify run of the run (`artifacts::runs`).
pub const RUNS: &str = "runs.tsv";
const CONFIRM_MD: &str = "confirm.md";
const CONFIRM_JSON: &str = "confirm.json";

/// The name of an archived generation of `file` (`research-results.tsv` -> `research-results.prev.tsv`,
/// `.prev2`, ...).
fn archived(file: &str, generation: u32) -> String {
    let (stem, ext) = file.rsplit_once('.').unwrap_or((file, ""));
    match generation {
        1 => format!("{stem}.prev.{ext}"),
        g => format!("{stem}.prev{g}.{ext}"),
    }
}

/// The pattern matching every archived generation of `file` (`research-results.prev*.tsv`).
fn archived_pattern(file: &str) -> String {
    let (stem, ext) = file.rsplit_once('.').unwrap_or((file, ""));
    format!("{stem}.prev*.{ext}")
}

/// Escapes a literal path for a root-anchored `.git/info/exclude` entry: gitignore's glob
/// characters and a trailing space get a backslash (`#` and `!` only matter at the start, and
/// entries start with `/`).
fn escape_exclude(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let n = path.chars().count();
    for (i, c) in path.chars().enumerate() {
        if "\\*?[]".contains(c) || (c == ' ' && i + 1 == n) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Escapes a literal path for a [`crate::scope::PathSet`] pattern: a path without glob
/// characters is taken literally; each glob character is wrapped in a class of its own.
pub(crate) fn escape_glob(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if "*?[]{}".contains(c) {
            out.push('[');
            out.push(c);
            out.push(']');
        } else {
            out.push(c);
        }
    }
    out
}

/// The repository a command works on (`--repo`, else the git root of the current directory)
/// and its run's artifact paths (`--artifacts-dir`, else the repository root).
pub fn locate(
    repo: Option<&Path>,
    artifacts_dir: Option<&Path>,
) -> Result<(crate::git::Repo, Paths)> {
    let start = crate::config::start_dir(repo)?;
    let repo = crate::git::Repo::discover(&start)?;
    let paths = Paths::find(&repo.root, artifacts_dir, None)?;
    Ok((repo, paths))
}

/// The paths of one run's artifacts.
#[derive(Clone, Debug)]
pub struct Paths {
    /// Which names the files have.
    pub layout: Layout,
    /// The repository root.
    pub root: PathBuf,
    /// `--artifacts-dir` as given.
    pub given_dir: Option<PathBuf>,
    /// The directory holding the artifacts (`autoresearch-results/` by default; the repository
    /// root in the March layout).
    pub dir: PathBuf,
    pub results: PathBuf,
    pub state: PathBuf,
    pub lessons: PathBuf,
    /// `context.json` (current layout only).
    pub context: Option<PathBuf>,
    /// The repository's `.codex-autoresearch/pointer.json` (current layout only).
    pub pointer: Option<PathBuf>,
    /// `engine/` (`.autoresearch/` in the March layout): lock, in-flight marker, logs.
    pub private: PathBuf,
    pub lock: PathBuf,
    pub inflight: PathBuf,
    pub feedback: PathBuf,
    /// The running child's process group (`process::GroupRecord`), while one runs.
    pub child: PathBuf,
    /// A copy of the run's current settings (a fallback when the state file is lost).
    pub settings: PathBuf,
    /// The user's untracked files outside the scope and their backups (`git::KeptFile`).
    pub kept: PathBuf,
    /// Every verify run (`artifacts::runs`).
    pub runs: PathBuf,
    /// `confirm`'s results: the table (`confirm.md`) and the figures (`confirm.json`).
    pub confirm_md: PathBuf,
    pub confirm_json: PathBuf,
    /// Where the mode reports live (`<mode>/<YYMMDD>-<HHMM>-<tag>/`, see [`Paths::mode_dir`]).
    pub reports: PathBuf,
    /// The artifacts directory relative to the repository root, if it is inside it.
    pub rel_in_repo: Option<String>,
    /// The engine's own stdout and stderr when they are files inside the work tree
    /// (`exec > out.jsonl`), relative to the root: hidden and protected like the artifacts.
    pub outputs: Vec<String>,
}

impl Paths {
    /// Returns the artifact paths (current layout) for a repository root and an optional
    /// `--artifacts-dir`.
    pub fn new(repo_root: &Path, artifacts_dir: Option<&Path>) -> Result<Paths> {
        Paths::with_layout(repo_root, artifacts_dir, Layout::Current)
    }

    /// Returns the artifact paths of `layout`.
    pub fn with_layout(
        repo_root: &Path,
        artifacts_dir: Option<&Path>,
        layout: Layout,
    ) -> Result<Paths> {
        let names = layout::names(layout);
        let dir = match artifacts_dir {
            None => match names.default_dir {
                Some(d) => repo_root.join(d),
                None => repo_root.to_path_buf(),
            },
            Some(d) => {
                let d = if d.is_absolute() {
                    d.to_path_buf()
                } else {
                    repo_root.join(d)
                };
                // Resolved without creating it: nothing is written before the run may start.
                d.canonicalize()
                    .unwrap_or_else(|_| std::path::absolute(&d).unwrap_or(d))
            }
        };
        let rel_in_repo = dir
            .strip_prefix(repo_root)
            .ok()
            .map(|p| p.to_string_lossy().replace('\\', "/"));
        if rel_in_repo
            .as_deref()
            .is_some_and(|r| r == ".git" || r.starts_with(".git/"))
        {
            return Err(Error::Usage(
                "--artifacts-dir may not be inside .git".into(),
            ));
        }
        let private = dir.join(names.private);
        let current = layout == Layout::Current;
        let exec_state = private.join(EXEC_STATE);
        let state = dir.join(names.state);
        Ok(Paths {
            layout,
            root: repo_root.to_path_buf(),
            given_dir: artifacts_dir.map(Path::to_path_buf),
            results: dir.join(names.results),
            // An exec run's state is in the engine's directory (`Paths::for_exec`).
            state: if current && !state.exists() && exec_state.exists() {
                exec_state
            } else {
                state
            },
            lessons: dir.join(names.lessons),
            context: current.then(|| dir.join(context::FILE)),
            pointer: current.then(|| {
                repo_root
                    .join(layout::POINTER_DIR)
                    .join(layout::POINTER_FILE)
            }),
            lock: private.join("lock"),
            inflight: private.join("inflight.json"),
            feedback: private.join(FEEDBACK),
            child: private.join("child.json"),
            settings: private.join(SETTINGS),
            kept: private.join(KEPT),
            runs: private.join(RUNS),
            confirm_md: private.join(CONFIRM_MD),
            confirm_json: private.join(CONFIRM_JSON),
            reports: if current {
                dir.clone()
            } else {
                private.clone()
            },
            private,
            dir,
            rel_in_repo,
            outputs: Vec::new(),
        })
    }

    /// The report directory of a mode (`debug`, `security`, `ship`) for the run `tag`:
    /// `<reports>/<mode>/<YYMMDD>-<HHMM>-<tag>/`, the one already there if the run has one (a
    /// resumed run keeps writing where it started), else named after the local time now.
    /// Not created here.
    pub fn mode_dir(&self, mode: &str, tag: &str) -> PathBuf {
        let root = self.reports.join(mode);
        let suffix = format!("-{tag}");
        let existing = fs::read_dir(&root).ok().and_then(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.len() == 11 + suffix.len() && n.ends_with(&suffix))
                .max()
        });
        let name = existing.unwrap_or_else(|| format!("{}{suffix}", crate::localtime::stamp_now()));
        root.join(name)
    }

    /// Notes the files this process writes its stdout and stderr to, if they are inside the work
    /// tree at `repo_root` (a run would otherwise take them for the user's untracked files, or the
    /// agent's, and restore them under the shell's open file).
    pub fn with_outputs(mut self, repo_root: &Path) -> Paths {
        let root = fs::canonicalize(repo_root).unwrap_or_else(|_| repo_root.to_path_buf());
        for fd in [1, 2] {
            let link = PathBuf::from(format!("/proc/self/fd/{fd}"));
            if !fs::metadata(&link).is_ok_and(|m| m.is_file()) {
                continue;
            }
            let Ok(target) = fs::read_link(&link) else {
                continue;
            };
            let Ok(rel) = target.strip_prefix(&root) else {
                continue;
            };
            let rel = rel.to_string_lossy().replace('\\', "/");
            if rel.is_empty() || rel == ".git" || rel.starts_with(".git/") {
                continue;
            }
            if !self.outputs.contains(&rel) {
                self.outputs.push(rel);
            }
        }
        self
    }

    /// Returns the per-iteration log directory, e.g. `.autoresearch/iter-0007`.
    pub fn iter_dir(&self, iteration: u64) -> PathBuf {
        self.private.join(format!("iter-{iteration:04}"))
    }

    /// Returns the `.git/info/exclude` entries (root-anchored) that hide the artifacts, or none
    /// when the artifacts live outside the repository.
    pub fn exclude_entries(&self) -> Vec<String> {
        let mut entries: Vec<String> = self
            .outputs
            .iter()
            .map(|o| format!("/{}", escape_exclude(o)))
            .collect();
        if self.pointer.is_some() {
            entries.push(format!("/{}/", layout::POINTER_DIR));
        }
        let Some(rel) = &self.rel_in_repo else {
            return entries;
        };
        if self.whole_dir() {
            entries.push(format!("/{rel}/"));
            return entries;
        }
        let prefix = if rel.is_empty() {
            "/".to_string()
        } else {
            format!("/{rel}/")
        };
        let names = layout::names(self.layout);
        entries.extend(self.top().iter().map(|name| format!("{prefix}{name}")));
        entries.extend(
            [names.results, names.state].map(|f| format!("{prefix}{}", archived_pattern(f))),
        );
        entries.push(format!("{prefix}{}/", names.private));
        if self.layout == Layout::Current {
            entries.extend(MODE_DIRS.iter().map(|m| format!("{prefix}{m}/")));
        }
        entries.push(format!("{prefix}{}*", crate::fsutil::TMP_PREFIX));
        entries
    }

    /// Returns the set of artifact paths inside the repository (what the exclude entries hide).
    pub fn artifact_set(&self) -> crate::scope::PathSet {
        let mut patterns: Vec<String> = self.outputs.iter().map(|o| escape_glob(o)).collect();
        let artifacts = Paths {
            outputs: Vec::new(),
            ..self.clone()
        };
        patterns.extend(
            artifacts
                .exclude_entries()
                .iter()
                .map(|e| e.trim_start_matches('/').trim_end_matches('/').to_string()),
        );
        crate::scope::PathSet::new(&patterns).unwrap_or_else(|_| crate::scope::PathSet::empty())
    }

    /// Whether the artifacts directory is the current layout's own `autoresearch-results/` in
    /// the repository: then everything in it is the run's (hidden and protected whole).
    fn whole_dir(&self) -> bool {
        self.layout == Layout::Current && self.rel_in_repo.as_deref() == layout::CURRENT.default_dir
    }

    /// The run's files beside each other in the artifacts directory (the lessons carry over).
    fn top(&self) -> Vec<&'static str> {
        let names = layout::names(self.layout);
        let mut top = vec![names.results, names.state, names.lessons];
        if self.context.is_some() {
            top.push(context::FILE);
        }
        top
    }

    /// Whether `name`, in the artifacts directory, is one of the run's files (an archive
    /// included).
    pub fn is_artifact_name(&self, name: &str) -> bool {
        let names = layout::names(self.layout);
        let stem = |f: &str| format!("{}.prev", f.rsplit_once('.').map_or(f, |(s, _)| s));
        self.whole_dir()
            || self.top().contains(&name)
            || name.starts_with(&stem(names.results))
            || name.starts_with(&stem(names.state))
    }

    /// Returns `name` (an artifact) relative to the repository root, when the artifacts live
    /// inside it.
    fn in_repo(&self, name: &str) -> Option<String> {
        self.rel_in_repo.as_ref().map(|rel| {
            if rel.is_empty() {
                name.to_string()
            } else {
                format!("{rel}/{name}")
            }
        })
    }

    /// Returns the files the engine writes in the work tree during a run, relative to the root:
    /// the results log, the state, the lessons (when the artifacts live inside the tree) and
    /// the output files.
    pub fn own_files(&self) -> Vec<String> {
        let mut list = self.outputs.clone();
        list.extend(self.top().iter().filter_map(|name| self.in_repo(name)));
        if self.pointer.is_some() {
            list.push(format!("{}/{}", layout::POINTER_DIR, layout::POINTER_FILE));
        }
        list
    }

    /// Returns the artifact paths relative to the repository root (for the protected set).
    pub fn protected_in_repo(&self) -> Vec<String> {
        let mut list: Vec<String> = self.outputs.iter().map(|o| escape_glob(o)).collect();
        if self.pointer.is_some() {
            list.push(layout::POINTER_DIR.to_string());
        }
        if self.whole_dir() {
            list.extend(self.rel_in_repo.clone());
            return list;
        }
        let private = layout::names(self.layout).private;
        list.extend(
            self.top()
                .into_iter()
                .chain([private])
                .filter_map(|name| self.in_repo(name)),
        );
        list
    }

    /// Returns the directories where the run's atomic writes put their temporary files: the
    /// artifacts directory, `.autoresearch/`, and the log directory of the iteration that was in
    /// flight (`in_flight`, from the marker), where prompts and summaries are written; other
    /// iterations' directories were complete before their marker went away (and reading every
    /// one would cost a long run's start dearly). Not `leftovers/<n>/`: your files set aside.
    pub fn temp_dirs(&self, in_flight: Option<u64>) -> Vec<PathBuf> {
        let mut dirs = vec![self.dir.clone(), self.private.clone()];
        dirs.extend(in_flight.map(|n| self.iter_dir(n)));
        dirs.extend(
            self.pointer
                .as_ref()
                .and_then(|p| p.parent())
                .map(Path::to_path_buf),
        );
        dirs
    }

    /// The paths of an exec run: its state in the engine's directory in the current layout (the
    /// reference leaves no `state.json` after exec).
    pub fn for_exec(mut self) -> Paths {
        if self.layout == Layout::Current {
            self.state = self.private.join(EXEC_STATE);
        }
        self
    }

    /// Returns true when a run's results or state exist here.
    pub fn has_run(&self) -> bool {
        [&self.results, &self.state]
            .iter()
            .any(|f| f.exists() && !stand_in::is(f))
    }

    /// Returns the settings stored with the run here, read-only; `None` when there is no run
    /// (no results log) or no readable copy of them.
    pub fn peek_saved(&self) -> Option<crate::config::Settings> {
        let (log, _) = results::ResultsLog::read(&self.results).ok()?;
        let state = state::StateFile::load(&self.state).ok();
        self.stored_settings(state.as_ref(), log.meta("settings"))
            .ok()
    }

    /// Returns the run's stored settings: from the state, else `.autoresearch/settings.json`, else
    /// the results log's `# settings:` line (the original ones).
    pub fn stored_settings(
        &self,
        state: Option<&state::StateFile>,
        meta_line: Option<&str>,
    ) -> Result<crate::config::Settings> {
        use crate::config::Settings;
        if let Some(s) = state
            && let Ok(set) = Settings::from_saved(&serde_json::Value::Object(s.config.clone()))
        {
            return Ok(set);
        }
        if let Some(set) = fs::read_to_string(&self.settings)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| Settings::from_saved(&v).ok())
        {
            return Ok(set);
        }
        let text = meta_line.ok_or_else(|| {
            Error::Refused(format!(
                "cannot recover the run configuration (no usable state and no `# settings:` line in {}); use --fresh",
                self.results.display()
            ))
        })?;
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            Error::Refused(format!(
                "{}: unreadable `# settings:` line ({e}); use --fresh",
                self.results.display()
            ))
        })?;
        Settings::from_saved(&value)
    }

    /// Moves the results, state and iteration logs aside as the next free `.prev` generation
    /// (`research-results.prev.tsv`, then `.prev2`, `.prev3`, ...; none is ever overwritten).
    /// Lessons stay: they carry over between runs. Returns the new paths.
    pub fn archive(&self) -> Result<Vec<PathBuf>> {
        let names = layout::names(self.layout);
        let (results_name, state_name) = (names.results, names.state);
        let mut generation = 1u32;
        while [results_name, state_name]
            .iter()
            .any(|f| self.dir.join(archived(f, generation)).exists())
            || self.private.join(format!("prev{generation}")).exists()
        {
            generation += 1;
        }
        let mut moved = Vec::new();
        // The loop state by its name (an exec run's is in the engine's directory, moved below).
        for name in [results_name, state_name] {
            let (from, to) = (
                self.dir.join(name),
                self.dir.join(archived(name, generation)),
            );
            if from.exists() {
                fs::rename(&from, &to).ctx("archive", &from)?;
                moved.push(to);
            }
        }
        if let Ok(entries) = fs::read_dir(&self.private) {
            let target = self.private.join(format!("prev{generation}"));
            for e in entries.flatten() {
                let n = e.file_name().to_string_lossy().to_string();
                if n.starts_with("iter-") || RUN_PRIVATE.contains(&n.as_str()) {
                    fs::create_dir_all(&target).ctx("create", &target)?;
                    fs::rename(e.path(), target.join(&n)).ctx("archive", &e.path())?;
                }
            }
            if target.exists() {
                moved.push(target);
            }
        }
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_files_are_excluded_and_count_as_artifacts() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path().canonicalize().unwrap();
        let at_root = Paths::with_layout(&root, None, Layout::March).unwrap();
        assert!(
            at_root
                .exclude_entries()
                .contains(&"/.autoresearch-tmp-*".to_string()),
            "{:?}",
            at_root.exclude_entries()
        );
        let set = at_root.artifact_set();
        assert!(set.matches(".autoresearch-tmp-abc123"));
        assert!(set.matches(".autoresearch/.autoresearch-tmp-x"));
        assert!(
            !set.matches("src/.autoresearch-tmp-abc123"),
            "only beside the artifacts"
        );
        assert!(!set.matches("autoresearch-tmp-abc123"));

        let sub = Paths::new(&root, Some(Path::new("out"))).unwrap();
        assert!(
            sub.exclude_entries()
                .contains(&"/out/.autoresearch-tmp-*".to_string())
        );
        assert!(sub.artifact_set().matches("out/.autoresearch-tmp-abc123"));
        assert!(!sub.artifact_set().matches(".autoresearch-tmp-abc123"));

        let outside = Paths::new(&root, Some(Path::new("/nonexistent/elsewhere"))).unwrap();
        assert_eq!(
            outside.exclude_entries(),
            ["/.codex-autoresearch/"],
            "the pointer only"
        );
        let outside = Paths::with_layout(&root, Some(Path::new("/x")), Layout::March).unwrap();
        assert!(outside.exclude_entries().is_empty());
    }

    /// Reference rule (anchor §1.1): `autoresearch-results/` and `.codex-autoresearch/` are in
    /// `.git/info/exclude`; everything under them is the run's (owned-artifact rule §1.11), and
    /// nothing else is.
    #[test]
    fn the_current_layout_hides_the_results_directory_and_the_pointer_whole() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path().canonicalize().unwrap();
        let paths = Paths::new(&root, None).unwrap();
        assert_eq!(paths.results, root.join("autoresearch-results/results.tsv"));
        assert_eq!(paths.state, root.join("autoresearch-results/state.json"));
        assert_eq!(paths.lessons, root.join("autoresearch-results/lessons.md"));
        assert_eq!(
            paths.context.as_deref(),
            Some(root.join("autoresearch-results/context.json").as_path())
        );
        assert_eq!(
            paths.pointer.as_deref(),
            Some(root.join(".codex-autoresearch/pointer.json").as_path())
        );
        assert_eq!(
            paths.reports, paths.dir,
            "mode reports in autoresearch-results/<mode>/"
        );
        assert_eq!(
            paths.exclude_entries(),
            ["/.codex-autoresearch/", "/autoresearch-results/"]
        );
        let set = paths.artifact_set();
        for owned in [
            "autoresearch-results/results.tsv",
            "autoresearch-results/engine/iter-0001/prompt.md",
            "autoresearch-results/security/260101-0000-x/findings.md",
            ".codex-autoresearch/pointer.json",
        ] {
            assert!(set.matches(owned), "{owned}");
        }
        for theirs in [
            "results.tsv",
            "src/state.json",
            "docs/autoresearch-results.md",
        ] {
            assert!(!set.matches(theirs), "{theirs}");
        }
        assert_eq!(
            paths.protected_in_repo(),
            [".codex-autoresearch", "autoresearch-results"]
        );
        let exec = paths.clone().for_exec();
        assert_eq!(
            exec.state,
            root.join("autoresearch-results/engine/state.exec.json")
        );
    }

    #[test]
    fn temp_dirs_are_the_artifacts_and_the_in_flight_iteration() {
        let root = tempfile::tempdir().unwrap();
        let paths = Paths::new(root.path(), None).unwrap();
        assert_eq!(
            paths.temp_dirs(Some(7)),
            vec![
                paths.dir.clone(),
                paths.private.clone(),
                paths.private.join("iter-0007"),
                root.path().join(".codex-autoresearch"),
            ]
        );
        assert_eq!(paths.temp_dirs(None).len(), 3);
    }
}
