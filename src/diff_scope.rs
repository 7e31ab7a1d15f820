//! `--diff BASE` (security mode, pull-request review): the files changed on this branch since
//! BASE become the run's scope, as `git diff BASE...HEAD` lists them (from the merge base, so
//! commits that landed on BASE meanwhile are not under review), narrowed by `--scope` when given.

use git2::{Delta, Oid};

use crate::config::RunConfig;
use crate::error::{Error, Result};
use crate::git::Repo;
use crate::scope::PathSet;

/// Resolves `base` to a commit; the error says what to do (CI clones are often shallow).
fn base_commit(repo: &Repo, base: &str) -> Result<Oid> {
    repo.repo
        .revparse_single(base)
        .and_then(|o| o.peel_to_commit())
        .map(|c| c.id())
        .map_err(|_| {
            Error::Usage(format!(
                "--diff {base}: not a commit in this repository; fetch it first (in CI, check out with the full history, e.g. actions/checkout with fetch-depth: 0)"
            ))
        })
}

/// The files that exist at `head` and differ from the merge base of `base` and `head` (added,
/// modified, renamed or copied; a deleted file has nothing left to review), sorted.
pub fn changed_files(repo: &Repo, base: &str, head: Oid) -> Result<Vec<String>> {
    let base_oid = base_commit(repo, base)?;
    let from = repo.repo.merge_base(base_oid, head).unwrap_or(base_oid);
    let tree = |o: Oid| {
        repo.repo
            .find_commit(o)
            .and_then(|c| c.tree())
            .map_err(|e| Error::Refused(format!("--diff {base}: cannot read a tree: {e}")))
    };
    let (old, new) = (tree(from)?, tree(head)?);
    let diff = repo
        .repo
        .diff_tree_to_tree(Some(&old), Some(&new), None)
        .map_err(|e| Error::Refused(format!("--diff {base}: cannot compare trees: {e}")))?;
    let mut out: Vec<String> = diff
        .deltas()
        .filter(|d| d.status() != Delta::Deleted)
        .filter_map(|d| d.new_file().path_bytes().map(crate::repopath::decode))
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// A literal path as a scope pattern (glob characters escaped).
fn literal(path: &str) -> String {
    if path.contains(['*', '?', '[', ']', '{', '}', '\\']) {
        globset::escape(path)
    } else {
        path.to_string()
    }
}

/// The effective scope: the changed files `scope` matches, each as a literal pattern. An empty
/// result is an error naming BASE: there is nothing to review.
pub fn effective_scope(changed: &[String], scope: &[String], base: &str) -> Result<Vec<String>> {
    let set = PathSet::new(scope).map_err(|e| Error::Usage(format!("--scope: {e}")))?;
    let kept: Vec<String> = changed
        .iter()
        .filter(|p| set.matches(p))
        .map(|p| literal(p))
        .collect();
    if kept.is_empty() {
        let within = if scope.iter().any(|s| s.trim() != ".") {
            format!(" within --scope {}", scope.join(","))
        } else {
            String::new()
        };
        return Err(Error::Refused(format!(
            "--diff {base}: no file changed since {base}{within}; nothing to review (check BASE, or run without --diff)"
        )));
    }
    Ok(kept)
}

/// Narrows a run's scope to the files changed since `--diff BASE` (a no-op without it).
pub fn narrow(repo: &Repo, mut cfg: RunConfig) -> Result<RunConfig> {
    let Some(base) = cfg.settings.diff.clone().filter(|b| !b.trim().is_empty()) else {
        return Ok(cfg);
    };
    let changed = changed_files(repo, base.trim(), repo.head()?)?;
    cfg.scope = effective_scope(&changed, &cfg.scope, base.trim())?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn commit(dir: &Path, files: &[(&str, &str)], message: &str) {
        for (p, text) in files {
            let path = dir.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "-m", message]);
    }

    /// main: a.py, lib/b.py, docs/x.md; branch `pr` changes lib/b.py, adds lib/c[1].py and
    /// docs/y.md, deletes a.py; main then gains d.py (not under review).
    fn repo() -> (tempfile::TempDir, Repo) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        git(d, &["init", "-q", "-b", "main"]);
        commit(
            d,
            &[("a.py", "a"), ("lib/b.py", "b"), ("docs/x.md", "x")],
            "base",
        );
        git(d, &["checkout", "-q", "-b", "pr"]);
        commit(
            d,
            &[("lib/b.py", "b2"), ("lib/c[1].py", "c"), ("docs/y.md", "y")],
            "pr",
        );
        git(d, &["rm", "-q", "a.py"]);
        git(d, &["commit", "-q", "-m", "drop a"]);
        git(d, &["checkout", "-q", "main"]);
        commit(d, &[("d.py", "d")], "main moves on");
        git(d, &["checkout", "-q", "pr"]);
        let repo = Repo::discover(d).unwrap();
        (dir, repo)
    }

    #[test]
    fn the_changed_files_since_the_merge_base_are_listed() {
        let (_d, repo) = repo();
        let head = repo.head().unwrap();
        let changed = changed_files(&repo, "main", head).unwrap();
        assert_eq!(changed, ["docs/y.md", "lib/b.py", "lib/c[1].py"]);
        assert!(changed_files(&repo, "pr", head).unwrap().is_empty());
    }

    #[test]
    fn diff_limits_the_scope() {
        let (_d, repo) = repo();
        let head = repo.head().unwrap();
        let changed = changed_files(&repo, "main", head).unwrap();
        let all = effective_scope(&changed, &[".".into()], "main").unwrap();
        assert_eq!(all.len(), 3);
        let lib = effective_scope(&changed, &["lib/".into()], "main").unwrap();
        // The literal pattern of `c[1].py` matches that file only.
        let set = PathSet::new(&lib).unwrap();
        assert!(set.matches("lib/b.py") && set.matches("lib/c[1].py"));
        assert!(!set.matches("lib/c1.py") && !set.matches("docs/y.md") && !set.matches("a.py"));
        assert!(!set.matches("d.py"));
    }

    #[test]
    fn a_bad_base_or_nothing_to_review_is_refused() {
        let (_d, repo) = repo();
        let head = repo.head().unwrap();
        let e = changed_files(&repo, "no-such-branch", head).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--diff no-such-branch: not a commit"),
            "{e}"
        );
        let changed = changed_files(&repo, "main", head).unwrap();
        let e = effective_scope(&changed, &["src/".into()], "main").unwrap_err();
        assert_eq!(
            e.to_string(),
            "--diff main: no file changed since main within --scope src/; nothing to review (check BASE, or run without --diff)"
        );
        assert_eq!(e.exit_code(), crate::error::exit::BLOCKED);
    }
}
