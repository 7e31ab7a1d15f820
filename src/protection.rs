//! What the agent may not change: `--protect`, the evaluator files verify and guard execute
//! (found by `engine::evaluator`, kept when they exist), the engine's files and the config
//! file; a path listed verbatim in `--scope` stays editable. Also the check that protection
//! leaves the scope something to edit.

use std::path::{Component, Path, PathBuf};

use crate::artifacts::{Paths, escape_glob};
use crate::config::RunConfig;
use crate::engine::evaluator::evaluators;
use crate::engine::list_paths;
use crate::error::{Error, Result};
use crate::git::Repo;
use crate::scope::PathSet;

/// A file verify or guard executes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvaluatorFile {
    /// Where it is (absolute, lexically normalized).
    pub path: PathBuf,
    /// Its path relative to the repository root, when it is inside the work tree.
    pub in_repo: Option<String>,
}

impl EvaluatorFile {
    /// How rows and messages name it: repository-relative inside, absolute outside.
    pub fn shown(&self) -> String {
        self.in_repo
            .clone()
            .unwrap_or_else(|| self.path.display().to_string())
    }
}

/// The protection of a run.
#[derive(Clone, Debug, Default)]
pub struct Protection {
    /// Every protected pattern (`--protect`, evaluator files, engine files, config file).
    pub list: Vec<String>,
    /// The evaluator files that are protected and pinned (not those left editable).
    pub evaluators: Vec<EvaluatorFile>,
    /// Evaluator files in the repository left editable: `--scope` lists them verbatim.
    pub editable: Vec<String>,
}

/// Lexically normalizes `path` (`.` dropped, `..` pops), joined to `root` when relative; `~/`
/// is the home directory.
fn resolve(candidate: &str, root: &Path) -> PathBuf {
    let p = match candidate.strip_prefix("~/") {
        Some(rest) => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(rest),
            None => root.join(candidate),
        },
        None => root.join(candidate),
    };
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// The files `commands` execute that exist, inside the repository or outside it.
pub fn evaluator_files(commands: &[&str], root: &Path) -> Vec<EvaluatorFile> {
    let mut out: Vec<EvaluatorFile> = Vec::new();
    for command in commands {
        for e in evaluators(command) {
            let Some(path) = e
                .candidates
                .iter()
                .map(|c| resolve(c, root))
                .find(|p| p.is_file())
            else {
                continue;
            };
            let in_repo = path
                .strip_prefix(root)
                .ok()
                .map(|r| r.to_string_lossy().into_owned())
                .filter(|r| !r.is_empty() && r != ".git" && !r.starts_with(".git/"));
            if path.starts_with(root.join(".git")) {
                continue;
            }
            let f = EvaluatorFile { path, in_repo };
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    out
}

/// The run's protection: `--protect`, the evaluator files (but those `--scope` lists
/// verbatim), the engine's files in the repository, and the config file that was read.
pub fn protection(
    cfg: &RunConfig,
    root: &Path,
    paths: &Paths,
    config_file: Option<&Path>,
) -> Protection {
    let mut commands = vec![cfg.verify.as_str()];
    commands.extend(cfg.guard.as_deref());
    let mut p = Protection {
        list: cfg.protect.clone(),
        ..Protection::default()
    };
    add_evaluators(&mut p, cfg, root, &commands);
    p.list.extend(paths.protected_in_repo());
    if let Some(rel) = config_file.and_then(|f| f.strip_prefix(root).ok()) {
        p.list.push(rel.to_string_lossy().into_owned());
    }
    p
}

/// Adds the files `commands` execute to the protection (those `--scope` lists verbatim stay
/// editable): verify's and guard's, and a checklist's items.
pub fn add_evaluators(p: &mut Protection, cfg: &RunConfig, root: &Path, commands: &[&str]) {
    for f in evaluator_files(commands, root) {
        if p.evaluators.contains(&f) || f.in_repo.as_ref().is_some_and(|r| p.editable.contains(r)) {
            continue;
        }
        match &f.in_repo {
            Some(rel) if cfg.scope.iter().any(|s| s.trim_start_matches("./") == rel) => {
                p.editable.push(rel.clone());
            }
            Some(rel) => {
                let pattern = escape_glob(rel);
                if !p.list.contains(&pattern) {
                    p.list.push(pattern);
                }
                p.evaluators.push(f);
            }
            None => p.evaluators.push(f),
        }
    }
}

/// Refuses a scope whose tracked files are all protected (the agent could change nothing),
/// naming them. A scope that matches no tracked file is not refused (the agent may add files).
pub fn check_editable(repo: &Repo, scope: &[String], protected: &[String]) -> Result<()> {
    let (Ok(scope_set), Ok(protect)) = (PathSet::new(scope), PathSet::new(protected)) else {
        return Ok(());
    };
    let Ok(index) = repo.repo.index() else {
        return Ok(());
    };
    let mut blocked = Vec::new();
    for e in index.iter() {
        let p = crate::repopath::decode(&e.path);
        if scope_set.matches(&p) {
            if !protect.matches(&p) {
                return Ok(());
            }
            blocked.push(p);
        }
    }
    if blocked.is_empty() {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "every tracked file in --scope {} is protected ({}): the agent could change nothing; widen --scope, drop those paths from --protect, or list a file verify runs verbatim in --scope to let the agent edit it",
        scope.join(","),
        list_paths(&blocked)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_resolve_inside_and_outside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("Makefile"), "x:\n").unwrap();
        std::fs::create_dir(root.join("b")).unwrap();
        std::fs::write(root.join("b/run.sh"), "").unwrap();
        let outside = tempfile::tempdir().unwrap();
        let ext = outside.path().canonicalize().unwrap().join("run.sh");
        std::fs::write(&ext, "").unwrap();
        let cmd = format!(
            "make -s x && cd b && ./run.sh && {} && python3 gone.py",
            ext.display()
        );
        let files = evaluator_files(&[&cmd, "grep -rc TODO b/"], &root);
        let shown: Vec<String> = files.iter().map(EvaluatorFile::shown).collect();
        assert_eq!(shown, ["Makefile", "b/run.sh", &ext.display().to_string()]);
        assert_eq!(files[2].in_repo, None);
    }

    #[test]
    fn normalizing_pops_parent_directories() {
        let root = Path::new("/r/repo");
        assert_eq!(resolve("./a/../b.sh", root), Path::new("/r/repo/b.sh"));
        assert_eq!(resolve("../x.sh", root), Path::new("/r/x.sh"));
        assert_eq!(resolve("/opt/b/run.sh", root), Path::new("/opt/b/run.sh"));
    }
}
