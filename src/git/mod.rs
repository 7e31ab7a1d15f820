//! Git through git2: preflight facts, working-tree scans, trial commits, hard resets, preserved
//! trial refs, blob backups of the user's untracked files, and `.git/info/exclude` entries.
//! Nothing here decides policy; the driver does.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use git2::build::CheckoutBuilder;
use git2::{
    ObjectType, Oid, Repository, RepositoryState, ResetType, Signature, Status, StatusOptions,
};

use crate::error::{Error, GitContext, IoContext, Result};
use crate::repopath::{self, as_path, to_fs};

/// Largest untracked file of the user that is backed up before a run (bigger ones are watched by
/// size and time only).
pub const BACKUP_LIMIT: u64 = 64 * 1024 * 1024;

/// Fallback commit identity when the repository has none configured.
pub const FALLBACK_NAME: &str = "codex-autoresearch";
/// Fallback commit e-mail.
pub const FALLBACK_EMAIL: &str = "autoresearch@localhost";

/// An open repository with a working tree.
pub struct Repo {
    pub repo: Repository,
    /// The working tree root.
    pub root: PathBuf,
}

/// How a path differs from HEAD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// Not tracked and not ignored.
    Untracked,
    /// Tracked and changed in the working tree only.
    Modified,
    /// Tracked and staged in the index.
    Staged,
    /// In conflict.
    Conflicted,
}

/// One changed path, repo-relative with `/` separators, in the lossless string form of
/// [`crate::repopath`] (a name that is not UTF-8 is carried, not skipped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

mod kept;

pub use kept::KeptFile;

impl Repo {
    /// Opens the repository containing `dir`.
    pub fn discover(dir: &Path) -> Result<Repo> {
        let repo = Repository::discover(dir).map_err(|_| {
            Error::Refused(format!(
                "{} is not inside a git repository; run `git init` and commit, or pass --repo",
                dir.display()
            ))
        })?;
        let root = repo
            .workdir()
            .ok_or_else(|| {
                Error::Refused(format!(
                    "{} is a bare repository; a working tree is needed",
                    dir.display()
                ))
            })?
            .to_path_buf();
        let root = root.canonicalize().ctx("resolve", &root)?;
        Ok(Repo { repo, root })
    }

    /// Checks the repository can host a run; returns the current branch's full ref name.
    pub fn check_startable(&self) -> Result<String> {
        let head = match self.repo.head() {
            Ok(h) => h,
            Err(e) if e.code() == git2::ErrorCode::UnbornBranch => {
                return Err(Error::Refused(
                    "the repository has no commit yet; commit your files first (the baseline needs a commit)".into(),
                ));
            }
            Err(e) => return Err(Error::git("read HEAD", e)),
        };
        let state = self.repo.state();
        if state != RepositoryState::Clean {
            let what = match state {
                RepositoryState::Merge => "a merge",
                RepositoryState::Rebase
                | RepositoryState::RebaseInteractive
                | RepositoryState::RebaseMerge => "a rebase",
                RepositoryState::CherryPick | RepositoryState::CherryPickSequence => {
                    "a cherry-pick"
                }
                RepositoryState::Revert | RepositoryState::RevertSequence => "a revert",
                RepositoryState::Bisect => "a bisect",
                _ => "another git operation",
            };
            return Err(Error::Refused(format!(
                "{what} is in progress; finish or abort it before starting a run"
            )));
        }
        if self.repo.head_detached().git_ctx("read HEAD")? {
            return Err(Error::Refused(
                "HEAD is detached; check out a branch first (trial commits go on a branch)".into(),
            ));
        }
        head.name()
            .map(str::to_string)
            .map_err(|_| Error::Refused("the current branch name is not valid UTF-8".into()))
    }

    /// Returns the commit HEAD points at.
    pub fn head(&self) -> Result<Oid> {
        let head = self.repo.head().git_ctx("read HEAD")?;
        head.peel_to_commit()
            .map(|c| c.id())
            .git_ctx("read HEAD commit")
    }

    /// Returns the full name of the branch HEAD points at, if any.
    pub fn branch(&self) -> Option<String> {
        let head = self.repo.head().ok()?;
        if self.repo.head_detached().unwrap_or(true) {
            return None;
        }
        head.name().ok().map(str::to_string)
    }

    /// Returns the abbreviated (7 character) commit id.
    pub fn short(oid: Oid) -> String {
        oid.to_string()[..7].to_string()
    }

    /// Lists every path that differs from HEAD: tracked changes (staged or not) and untracked,
    /// non-ignored files (submodules excluded). Read-only: the preflight uses this.
    pub fn scan(&self) -> Result<Vec<Change>> {
        self.scan_with(false)
    }

    /// Like [`Repo::scan`], and writes refreshed file stat data back to the index, as `git status`
    /// does. Without that, every file whose timestamp no longer matches the index (after a
    /// formatter, a build, `cp -a`) is hashed again on every scan, forever.
    pub fn scan_refresh(&self) -> Result<Vec<Change>> {
        self.scan_with(true)
    }

    fn scan_with(&self, refresh: bool) -> Result<Vec<Change>> {
        let mut opts = StatusOptions::new();
        opts.update_index(refresh)
            .include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(false)
            .exclude_submodules(true)
            .renames_head_to_index(false)
            .renames_index_to_workdir(false);
        let statuses = self
            .repo
            .statuses(Some(&mut opts))
            .git_ctx("scan the working tree")?;
        let mut out = Vec::with_capacity(statuses.len());
        for entry in statuses.iter() {
            let path = repopath::decode(entry.path_bytes());
            let s = entry.status();
            let kind = if s.contains(Status::CONFLICTED) {
                ChangeKind::Conflicted
            } else if s.intersects(
                Status::INDEX_NEW
                    | Status::INDEX_MODIFIED
                    | Status::INDEX_DELETED
                    | Status::INDEX_RENAMED
                    | Status::INDEX_TYPECHANGE,
            ) {
                ChangeKind::Staged
            } else if s.contains(Status::WT_NEW) {
                ChangeKind::Untracked
            } else if s.intersects(
                Status::WT_MODIFIED
                    | Status::WT_DELETED
                    | Status::WT_TYPECHANGE
                    | Status::WT_RENAMED,
            ) {
                ChangeKind::Modified
            } else {
                continue;
            };
            // An untracked directory (a nested repository) is reported with a trailing slash.
            out.push(Change {
                path: path.trim_end_matches('/').to_string(),
                kind,
            });
        }
        Ok(out)
    }

    fn signature(&self) -> Signature<'static> {
        self.repo
            .signature()
            .map(|s| s.to_owned())
            .or_else(|_| Signature::now(FALLBACK_NAME, FALLBACK_EMAIL))
            .unwrap_or_else(|_| {
                // `now` only fails on an invalid name; ours is valid, so this is unreachable in
                // practice. Fall back to the epoch rather than panic.
                let t = git2::Time::new(0, 0);
                Signature::new(FALLBACK_NAME, FALLBACK_EMAIL, &t).expect("static identity is valid")
            })
    }

    /// Commits exactly `paths` (as found in the working tree) on top of HEAD; returns the commit.
    pub fn commit_paths(&self, paths: &[String], message: &str) -> Result<Oid> {
        let mut index = self.repo.index().git_ctx("open the index")?;
        let tree = self.stage(&mut index, paths)?;
        index.write().git_ctx("write the index")?;
        self.commit_on_head(tree, message, Some("HEAD"))
    }

    /// Replaces the commit at HEAD by one with the same parents and author holding `paths` as
    /// found in the working tree too, and `message`; moves the branch to it (the replaced commit
    /// is left as it is: keep it reachable first). Returns the new commit.
    pub fn amend_paths(&self, paths: &[String], message: &str) -> Result<Oid> {
        let mut index = self.repo.index().git_ctx("open the index")?;
        let tree = self.stage(&mut index, paths)?;
        index.write().git_ctx("write the index")?;
        let tree = self.repo.find_tree(tree).git_ctx("read the new tree")?;
        let head = self
            .repo
            .head()
            .and_then(|h| h.peel_to_commit())
            .git_ctx("read HEAD")?;
        let sig = self.signature();
        head.amend(
            Some("HEAD"),
            None,
            Some(&sig),
            None,
            Some(message),
            Some(&tree),
        )
        .git_ctx("amend the trial commit")
    }

    /// Commits `paths` as found in the working tree on top of HEAD without moving any branch or
    /// touching the on-disk index; returns the commit (used to preserve unfinished work).
    pub fn snapshot(&self, paths: &[String], message: &str) -> Result<Oid> {
        let mut index = self.repo.index().git_ctx("open the index")?;
        let tree = self.stage(&mut index, paths);
        // Drop the in-memory changes: the on-disk index stays as it was.
        index.read(true).git_ctx("reload the index")?;
        self.commit_on_head(tree?, message, None)
    }

    /// Puts `paths` into `index` as they are in the working tree (deleted files are removed;
    /// directories, such as nested repositories, are skipped) and returns the written tree.
    fn stage(&self, index: &mut git2::Index, paths: &[String]) -> Result<Oid> {
        for p in paths {
            let rel = as_path(p);
            match fs::symlink_metadata(self.root.join(&rel)) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => index.add_path(&rel).git_ctx(&format!("stage {p}"))?,
                Err(_) => {
                    if index.get_path(&rel, 0).is_some() {
                        index
                            .remove_path(&rel)
                            .git_ctx(&format!("stage the deletion of {p}"))?;
                    }
                }
            }
        }
        index.write_tree().git_ctx("write the tree")
    }

    /// Commits `tree` with HEAD as parent, updating `update_ref` (or no ref at all).
    fn commit_on_head(&self, tree: Oid, message: &str, update_ref: Option<&str>) -> Result<Oid> {
        let tree = self.repo.find_tree(tree).git_ctx("read the new tree")?;
        let parent = self
            .repo
            .head()
            .and_then(|h| h.peel_to_commit())
            .git_ctx("read HEAD")?;
        let sig = self.signature();
        self.repo
            .commit(update_ref, &sig, &sig, message, &tree, &[&parent])
            .git_ctx("commit")
    }

    /// Commits the tree of `tree_from` on top of HEAD and checks it out (`--rollback revert`).
    pub fn commit_tree_of(&self, tree_from: Oid, message: &str) -> Result<Oid> {
        let tree = self
            .repo
            .find_commit(tree_from)
            .map(|c| c.tree_id())
            .git_ctx("read the retained tree")?;
        let oid = self.commit_on_head(tree, message, Some("HEAD"))?;
        self.reset_hard(oid)?;
        Ok(oid)
    }

    /// Returns the paths whose content differs between the trees of two commits.
    pub fn diff_paths(&self, a: Oid, b: Oid) -> Result<Vec<String>> {
        let tree = |o: Oid| {
            self.repo
                .find_commit(o)
                .and_then(|c| c.tree())
                .git_ctx("read a tree")
        };
        let (ta, tb) = (tree(a)?, tree(b)?);
        let diff = self
            .repo
            .diff_tree_to_tree(Some(&ta), Some(&tb), None)
            .git_ctx("compare trees")?;
        // Without renames a delta's old and new path are the same; a set keeps it linear.
        let mut out = std::collections::BTreeSet::new();
        for d in diff.deltas() {
            for f in [d.old_file(), d.new_file()] {
                if let Some(p) = f.path_bytes() {
                    out.insert(repopath::decode(p));
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Moves the branch to `oid` and makes the index and working tree match it at `paths` (the
    /// paths known to differ), touching nothing else: libgit2's checkout would stat every file of
    /// a large tree on every rollback. Unusual cases (a directory where a file belongs, a
    /// submodule) fall back to a full hard reset.
    pub fn reset_paths(&self, oid: Oid, paths: &[String]) -> Result<()> {
        let commit = self
            .repo
            .find_commit(oid)
            .git_ctx("find the retained commit")?;
        let tree = commit.tree().git_ctx("read the retained tree")?;
        // Moves the branch only; index and files are set path by path below.
        self.repo
            .reset(commit.as_object(), ResetType::Soft, None)
            .git_ctx("reset to the retained commit")?;
        if paths.is_empty() {
            return Ok(());
        }
        let mut index = self.repo.index().git_ctx("open the index")?;
        let mut removed = Vec::new();
        for p in paths {
            match self.reset_one(&mut index, &tree, p)? {
                Some(true) => removed.push(p.as_str()),
                Some(false) => {}
                None => {
                    drop(index);
                    return self.reset_hard(oid);
                }
            }
        }
        index.write().git_ctx("write the index")?;
        self.prune_dirs(&removed, oid);
        Ok(())
    }

    /// Makes one path of the index and working tree match `tree`. Returns `Some(true)` when the
    /// path was removed, `Some(false)` when it was written, `None` when it cannot be done file by
    /// file.
    fn reset_one(
        &self,
        index: &mut git2::Index,
        tree: &git2::Tree<'_>,
        p: &str,
    ) -> Result<Option<bool>> {
        let rel = as_path(p);
        let rel = rel.as_ref();
        let full = self.root.join(rel);
        let current = fs::symlink_metadata(&full).ok();
        if current.as_ref().is_some_and(|m| m.is_dir()) {
            return Ok(None);
        }
        let entry = match tree.get_path(rel) {
            Ok(e) => Some(e),
            Err(e) if e.code() == git2::ErrorCode::NotFound => None,
            Err(e) => return Err(Error::git(format!("read {p} in the retained tree"), e)),
        };
        let Some(entry) = entry else {
            if current.is_some() {
                fs::remove_file(&full).ctx("remove", &full)?;
            }
            if index.get_path(rel, 0).is_some() {
                index.remove_path(rel).git_ctx(&format!("unstage {p}"))?;
            }
            return Ok(Some(true));
        };
        if entry.kind() != Some(ObjectType::Blob) {
            return Ok(None);
        }
        let blob = self
            .repo
            .find_blob(entry.id())
            .git_ctx(&format!("read {p}"))?;
        if current.is_some() {
            fs::remove_file(&full).ctx("remove", &full)?;
        }
        if let Some(dir) = full.parent() {
            if fs::symlink_metadata(dir).is_ok_and(|m| !m.is_dir()) {
                return Ok(None);
            }
            fs::create_dir_all(dir).ctx("create", dir)?;
        }
        if entry.filemode() == 0o120000 {
            let target = OsStr::from_bytes(blob.content());
            std::os::unix::fs::symlink(target, &full).ctx("restore", &full)?;
        } else {
            fs::write(&full, blob.content()).ctx("restore", &full)?;
            if entry.filemode() == 0o100755 {
                let mut perm = fs::metadata(&full).ctx("read", &full)?.permissions();
                // Executable wherever readable, as git checks executables out.
                perm.set_mode(perm.mode() | ((perm.mode() & 0o444) >> 2));
                fs::set_permissions(&full, perm).ctx("restore mode of", &full)?;
            }
        }
        index.add_path(rel).git_ctx(&format!("stage {p}"))?;
        Ok(Some(false))
    }

    /// Resets the branch, index and tracked files to `oid`. Untracked files are not touched.
    pub fn reset_hard(&self, oid: Oid) -> Result<()> {
        let obj = self
            .repo
            .find_object(oid, None)
            .git_ctx("find the retained commit")?;
        let mut co = CheckoutBuilder::new();
        co.force();
        self.repo
            .reset(&obj, ResetType::Hard, Some(&mut co))
            .git_ctx("reset to the retained commit")
    }

    /// Points `name` at `oid` (overwriting), with a reflog message.
    pub fn set_ref(&self, name: &str, oid: Oid, why: &str) -> Result<()> {
        self.repo
            .reference(name, oid, true, why)
            .map(|_| ())
            .git_ctx(&format!("write {name}"))
    }

    /// Returns true when any reference starts with `prefix`.
    pub fn has_refs_under(&self, prefix: &str) -> bool {
        self.repo
            .references_glob(&format!("{prefix}*"))
            .map(|mut it| it.next().is_some())
            .unwrap_or(false)
    }

    /// Moves every reference under `from` (a prefix ending in `/`) to the same name under `to`;
    /// returns how many moved. Nothing is deleted before its copy exists.
    pub fn move_refs(&self, from: &str, to: &str) -> Result<usize> {
        let mut moved = Vec::new();
        for r in self
            .repo
            .references_glob(&format!("{from}*"))
            .git_ctx("list references")?
        {
            let r = r.git_ctx("read a reference")?;
            let (Ok(name), Some(target)) = (r.name(), r.target()) else {
                continue;
            };
            moved.push((name.to_string(), target));
        }
        for (name, target) in &moved {
            let new = format!("{to}{}", &name[from.len()..]);
            self.repo
                .reference(
                    &new,
                    *target,
                    false,
                    "codex-autoresearch: archive an earlier run",
                )
                .git_ctx(&format!("write {new}"))?;
            self.repo
                .find_reference(name)
                .and_then(|mut r| r.delete())
                .git_ctx(&format!("delete {name}"))?;
        }
        Ok(moved.len())
    }

    /// Returns true when `descendant` is `ancestor` or has it in its history.
    pub fn descends_from(&self, descendant: Oid, ancestor: Oid) -> bool {
        descendant == ancestor
            || self
                .repo
                .graph_descendant_of(descendant, ancestor)
                .unwrap_or(false)
    }

    /// Returns true when two commits have the same tree.
    pub fn same_tree(&self, a: Oid, b: Oid) -> bool {
        let tree = |o: Oid| self.repo.find_commit(o).map(|c| c.tree_id()).ok();
        tree(a).is_some() && tree(a) == tree(b)
    }

    /// Returns true when the tree of `commit` has a directory at `path`.
    pub fn tree_has_dir(&self, commit: Oid, path: &str) -> bool {
        let Ok(tree) = self.repo.find_commit(commit).and_then(|c| c.tree()) else {
            return false;
        };
        tree.get_path(&as_path(path))
            .map(|e| e.kind() == Some(ObjectType::Tree))
            .unwrap_or(false)
    }

    /// Whether any tracked path satisfies `pred`.
    pub fn any_tracked(&self, pred: impl Fn(&str) -> bool) -> bool {
        let Ok(index) = self.repo.index() else {
            return true;
        };
        index.iter().any(|e| pred(&repopath::decode(&e.path)))
    }

    /// Whether `path` is in the index (tracked).
    pub fn is_tracked(&self, path: &str) -> bool {
        self.repo
            .index()
            .is_ok_and(|index| index.get_path(&as_path(path), 0).is_some())
    }

    /// Appends missing `entries` to the repository's `info/exclude`.
    pub fn add_excludes(&self, entries: &[String]) -> Result<()> {
        let info = self.repo.commondir().join("info");
        fs::create_dir_all(&info).ctx("create", &info)?;
        let path = info.join("exclude");
        let current = fs::read_to_string(&path).unwrap_or_default();
        let have: std::collections::HashSet<&str> = current.lines().map(str::trim).collect();
        let missing: Vec<&String> = entries
            .iter()
            .filter(|e| !have.contains(e.as_str()))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut text = current.clone();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        if !current.contains("# codex-autoresearch") {
            text.push_str("# codex-autoresearch artifacts\n");
        }
        for e in missing {
            text.push_str(e);
            text.push('\n');
        }
        crate::fsutil::write_atomic(&path, text.as_bytes())
    }

    /// Deletes files (never directories) created during an iteration, then prunes directories
    /// they leave empty unless the retained commit has them. Returns paths it could not delete.
    pub fn delete_created(&self, paths: &[String], retained: Oid) -> Vec<String> {
        let mut failed = Vec::new();
        let mut removed = Vec::new();
        for p in paths {
            let full = to_fs(&self.root, p);
            match fs::symlink_metadata(&full) {
                Ok(m) if m.is_dir() => failed.push(p.clone()),
                Ok(_) if fs::remove_file(&full).is_err() => failed.push(p.clone()),
                _ => removed.push(p.as_str()),
            }
        }
        self.prune_dirs(&removed, retained);
        failed
    }

    /// Removes the directories that held `removed` files and are now empty, unless the
    /// retained commit has them. Deepest first; `remove_dir` only removes empty ones.
    fn prune_dirs(&self, removed: &[&str], retained: Oid) {
        let mut dirs = std::collections::BTreeSet::new();
        for p in removed {
            let rel = as_path(p);
            let mut parent = rel.parent();
            while let Some(d) = parent.filter(|d| !d.as_os_str().is_empty()) {
                dirs.insert(d.to_path_buf());
                parent = d.parent();
            }
        }
        let mut dirs: Vec<PathBuf> = dirs.into_iter().collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in dirs {
            let rel = repopath::decode(d.as_os_str().as_encoded_bytes());
            if !self.tree_has_dir(retained, &rel) {
                let _ = fs::remove_dir(self.root.join(&d));
            }
        }
    }
}

#[cfg(test)]
#[path = "nonutf8_tests.rs"]
mod nonutf8_tests;

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository with a few kinds of entries committed, and a "trial" commit on top that
    /// changes each of them.
    fn fixture() -> (tempfile::TempDir, Repo, Oid) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let r = Repository::init(root).unwrap();
        let mut cfg = r.config().unwrap();
        cfg.set_str("user.name", "t").unwrap();
        cfg.set_str("user.email", "t@t").unwrap();
        fs::create_dir_all(root.join("src/keep")).unwrap();
        fs::write(root.join("src/a.txt"), "a\n").unwrap();
        fs::write(root.join("src/gone.txt"), "gone\n").unwrap();
        fs::write(root.join("src/keep/k.txt"), "k\n").unwrap();
        fs::write(root.join("run.sh"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("a.txt", root.join("src/link")).unwrap();
        let repo = Repo {
            repo: r,
            root: root.canonicalize().unwrap(),
        };
        let all: Vec<String> = [
            "src/a.txt",
            "src/gone.txt",
            "src/keep/k.txt",
            "run.sh",
            "src/link",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut index = repo.repo.index().unwrap();
        let tree = repo.stage(&mut index, &all).unwrap();
        index.write().unwrap();
        let sig = Signature::now("t", "t@t").unwrap();
        let base = {
            let tree = repo.repo.find_tree(tree).unwrap();
            repo.repo
                .commit(Some("HEAD"), &sig, &sig, "base", &tree, &[])
                .unwrap()
        };
        (dir, repo, base)
    }

    #[test]
    fn reset_paths_restores_exactly_the_changed_paths() {
        let (_dir, repo, base) = fixture();
        let root = repo.root.clone();
        // The trial: edit, delete, add in a new directory, drop the executable bit, retarget the link.
        fs::write(root.join("src/a.txt"), "changed\n").unwrap();
        fs::remove_file(root.join("src/gone.txt")).unwrap();
        fs::create_dir_all(root.join("src/new/deep")).unwrap();
        fs::write(root.join("src/new/deep/n.txt"), "n\n").unwrap();
        fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::remove_file(root.join("src/link")).unwrap();
        std::os::unix::fs::symlink("keep/k.txt", root.join("src/link")).unwrap();
        let changed: Vec<String> = repo.scan().unwrap().into_iter().map(|c| c.path).collect();
        let trial = repo.commit_paths(&changed, "trial").unwrap();
        let paths = repo.diff_paths(base, trial).unwrap();
        assert_eq!(paths.len(), 5, "{paths:?}");

        repo.reset_paths(base, &paths).unwrap();
        assert_eq!(repo.head().unwrap(), base);
        assert_eq!(fs::read_to_string(root.join("src/a.txt")).unwrap(), "a\n");
        assert_eq!(
            fs::read_to_string(root.join("src/gone.txt")).unwrap(),
            "gone\n"
        );
        assert!(
            !root.join("src/new").exists(),
            "the added file and its directories are gone"
        );
        assert!(root.join("src/keep/k.txt").exists());
        assert_eq!(
            fs::metadata(root.join("run.sh"))
                .unwrap()
                .permissions()
                .mode()
                & 0o111,
            0o111
        );
        assert_eq!(
            fs::read_link(root.join("src/link")).unwrap(),
            Path::new("a.txt")
        );
        assert!(
            repo.scan().unwrap().is_empty(),
            "index and tree match the retained commit"
        );
    }

    #[test]
    fn reset_paths_falls_back_when_a_directory_stands_in_the_way() {
        let (_dir, repo, base) = fixture();
        let root = repo.root.clone();
        fs::remove_file(root.join("src/a.txt")).unwrap();
        fs::create_dir_all(root.join("src/a.txt")).unwrap();
        fs::write(root.join("src/a.txt/inner"), "x\n").unwrap();
        let changed: Vec<String> = repo.scan().unwrap().into_iter().map(|c| c.path).collect();
        let trial = repo.commit_paths(&changed, "trial").unwrap();
        let paths = repo.diff_paths(base, trial).unwrap();
        repo.reset_paths(base, &paths).unwrap();
        assert_eq!(fs::read_to_string(root.join("src/a.txt")).unwrap(), "a\n");
        assert!(repo.scan().unwrap().is_empty());
    }

    #[test]
    fn an_empty_path_list_only_moves_the_branch() {
        let (_dir, repo, base) = fixture();
        let tree = repo.repo.find_commit(base).unwrap().tree_id();
        let empty = repo.commit_on_head(tree, "empty", Some("HEAD")).unwrap();
        assert!(repo.same_tree(base, empty));
        repo.reset_paths(base, &[]).unwrap();
        assert_eq!(repo.head().unwrap(), base);
        assert!(repo.scan().unwrap().is_empty());
    }
}
