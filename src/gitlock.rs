//! Git's own lock files (`index.lock`, `HEAD.lock`, a ref's `.lock`, ...) that a run killed inside
//! a libgit2 write leaves behind, and which make every later git write fail: finding them
//! ([`Repo::stale_git_locks`]), the remove-or-refuse policy ([`decide`], pure), and the removal.
//! A lock is only removed when it is provably the killed run's; otherwise the run refuses and
//! names the file.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, git_lock_message};
use crate::git::Repo;

/// What is known about one lock file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockFacts {
    /// The path as shown to the user (relative to the work tree root when inside it).
    pub shown: String,
    /// Modification time, seconds since the epoch.
    pub modified: u64,
    /// Live processes that have the file open (a git command writing it right now).
    pub open_by: Vec<u32>,
}

/// What is known about the previous run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreviousRun {
    /// `autoresearch-results/engine/inflight.json` exists: the run was in the middle of an iteration.
    pub interrupted: bool,
    /// Start time (seconds since the epoch) of the previous engine when it died holding the run
    /// lock (a reclaimed lock: it was killed, it did not exit); `None` when it exited.
    pub killed_at_start: Option<u64>,
    /// A process of that run (found by its run token or process group) is still alive.
    pub processes_alive: bool,
}

/// What to do about the lock files found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No lock file is in the way.
    Nothing,
    /// They are the killed run's: remove them.
    Remove,
    /// Refuse to start with this line.
    Refuse(String),
}

/// Decides about the lock files in `locks`. They are removed only when all of this holds: the
/// previous run was killed mid-iteration (in-flight marker and a lock it never released), none of
/// its processes is alive, no process has a lock file open, and none is older than that run.
pub fn decide(locks: &[LockFacts], previous: PreviousRun) -> Decision {
    if locks.is_empty() {
        return Decision::Nothing;
    }
    if let Some(open) = locks.iter().find(|l| !l.open_by.is_empty()) {
        let pids: Vec<String> = open.open_by.iter().map(u32::to_string).collect();
        return Decision::Refuse(format!(
            "git's lock file {} is open in pid {}: a git command is running; wait for it to finish, then run again",
            open.shown,
            pids.join(", ")
        ));
    }
    let ours = match previous.killed_at_start {
        Some(start) if previous.interrupted && !previous.processes_alive => {
            // Seconds granularity on both sides: allow the second the run started in.
            locks.iter().all(|l| l.modified + 1 >= start)
        }
        _ => false,
    };
    if ours {
        return Decision::Remove;
    }
    let shown: Vec<&str> = locks.iter().map(|l| l.shown.as_str()).collect();
    Decision::Refuse(match shown.as_slice() {
        [one] => git_lock_message(one),
        many => format!(
            "git's lock files {} exist: another git command is running, or one was killed; delete them if no git process is running",
            many.join(", ")
        ),
    })
}

/// Returns the `.lock` files under `dir`, at any depth.
fn lock_files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() {
            lock_files_under(&e.path(), out);
        } else if e.file_name().to_string_lossy().ends_with(".lock") {
            out.push(e.path());
        }
    }
}

impl Repo {
    /// Returns the git lock files a run's writes can leave: `index.lock`, `HEAD.lock`,
    /// `ORIG_HEAD.lock`, the current branch's ref lock, `packed-refs.lock`, `config.lock` and
    /// any under `refs/autoresearch/`. Only files that exist.
    /// With `run_refs`, the locks under `refs/autoresearch/` are looked for too (a walk over
    /// every trial ref: only worth it after an interrupted iteration, the only time the engine
    /// writes refs there).
    pub fn stale_git_locks(&self, run_refs: bool) -> Vec<PathBuf> {
        let git = self.repo.path();
        let common = self.repo.commondir();
        let mut candidates = vec![
            git.join("index.lock"),
            git.join("HEAD.lock"),
            git.join("ORIG_HEAD.lock"),
            common.join("packed-refs.lock"),
            common.join("config.lock"),
        ];
        if let Some(branch) = self.branch() {
            candidates.push(common.join(format!("{branch}.lock")));
        }
        if run_refs {
            lock_files_under(&common.join("refs/autoresearch"), &mut candidates);
        }
        let mut found: Vec<PathBuf> = candidates
            .into_iter()
            .filter(|p| fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
            .collect();
        found.sort();
        found.dedup();
        found
    }

    /// Returns `path` as shown to the user: relative to the work tree root when inside it.
    fn shown(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// Returns what the policy needs to know about each of `locks`.
    pub fn lock_facts(&self, locks: &[PathBuf]) -> Vec<LockFacts> {
        use std::os::unix::fs::MetadataExt;
        locks
            .iter()
            .map(|p| LockFacts {
                shown: self.shown(p),
                modified: fs::symlink_metadata(p)
                    .map(|m| m.mtime().max(0) as u64)
                    .unwrap_or(0),
                open_by: crate::procfs::pids_with_open_file(p),
            })
            .collect()
    }

    /// Removes `locks`; returns a note for each removed one.
    pub fn remove_stale_locks(&self, locks: &[PathBuf]) -> Result<Vec<String>> {
        let mut notes = Vec::new();
        for p in locks {
            match fs::remove_file(p) {
                Ok(()) => notes.push(format!("removed {} left by the killed run", self.shown(p))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove the stale git lock", p, e)),
            }
        }
        Ok(notes)
    }
}

/// Applies the policy at run start: finds the lock files, removes them when they are the killed
/// run's (returning the notes to show), or refuses naming them.
pub fn clear_stale_locks(repo: &Repo, previous: PreviousRun) -> Result<Vec<String>> {
    let locks = repo.stale_git_locks(previous.interrupted);
    match decide(&repo.lock_facts(&locks), previous) {
        Decision::Nothing => Ok(Vec::new()),
        Decision::Remove => repo.remove_stale_locks(&locks),
        Decision::Refuse(line) => Err(Error::Refused(line)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(shown: &str, modified: u64) -> LockFacts {
        LockFacts {
            shown: shown.into(),
            modified,
            open_by: Vec::new(),
        }
    }

    const KILLED: PreviousRun = PreviousRun {
        interrupted: true,
        killed_at_start: Some(1000),
        processes_alive: false,
    };

    #[test]
    fn the_locks_of_a_killed_interrupted_run_are_removed() {
        assert_eq!(decide(&[], KILLED), Decision::Nothing);
        let locks = [lock(".git/index.lock", 1000), lock(".git/HEAD.lock", 1200)];
        assert_eq!(decide(&locks, KILLED), Decision::Remove);
        // Written in the second the run started.
        assert_eq!(
            decide(&[lock(".git/index.lock", 999)], KILLED),
            Decision::Remove
        );
    }

    #[test]
    fn anything_short_of_proof_refuses_naming_the_file() {
        let one = [lock(".git/index.lock", 1100)];
        let refusal = Decision::Refuse(
            "git's lock file .git/index.lock exists: another git command is running, or one was killed; delete it if no git process is running".into(),
        );
        for previous in [
            PreviousRun {
                interrupted: false,
                ..KILLED
            },
            PreviousRun {
                killed_at_start: None,
                ..KILLED
            },
            PreviousRun {
                processes_alive: true,
                ..KILLED
            },
        ] {
            assert_eq!(decide(&one, previous), refusal, "{previous:?}");
        }
        // Older than the killed run: not its lock.
        assert_eq!(decide(&[lock(".git/index.lock", 900)], KILLED), refusal);
        let two = [
            lock(".git/index.lock", 100),
            lock(".git/refs/heads/main.lock", 100),
        ];
        match decide(&two, KILLED) {
            Decision::Refuse(line) => assert!(
                line.starts_with(
                    "git's lock files .git/index.lock, .git/refs/heads/main.lock exist:"
                ),
                "{line}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_lock_open_in_a_live_process_is_never_removed() {
        let mut open = lock(".git/index.lock", 1100);
        open.open_by = vec![4242];
        match decide(&[open], KILLED) {
            Decision::Refuse(line) => assert!(
                line.contains(".git/index.lock is open in pid 4242"),
                "{line}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn finds_and_removes_the_lock_files_a_run_can_leave() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let r = git2::Repository::init(&root).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        let tree = r.treebuilder(None).unwrap().write().unwrap();
        let tree = r.find_tree(tree).unwrap();
        r.commit(Some("HEAD"), &sig, &sig, "base", &tree, &[])
            .unwrap();
        drop(tree);
        let repo = Repo { repo: r, root };
        assert!(repo.stale_git_locks(true).is_empty());
        let branch = repo.branch().unwrap();
        let git = repo.root.join(".git");
        fs::create_dir_all(git.join("refs/autoresearch/tag")).unwrap();
        for f in [
            "index.lock".to_string(),
            format!("{branch}.lock"),
            "refs/autoresearch/tag/trial-3.lock".into(),
            "refs/heads/other.lock".into(),
        ] {
            fs::write(git.join(f), "").unwrap();
        }
        assert_eq!(
            repo.stale_git_locks(false).len(),
            2,
            "the trial refs are walked only after an interrupted iteration"
        );
        let locks = repo.stale_git_locks(true);
        let shown: Vec<String> = locks.iter().map(|p| repo.shown(p)).collect();
        assert_eq!(
            shown,
            [
                ".git/index.lock".to_string(),
                ".git/refs/autoresearch/tag/trial-3.lock".into(),
                format!(".git/{branch}.lock"),
            ],
            "another branch's lock is not the run's"
        );
        let facts = repo.lock_facts(&locks);
        assert!(facts.iter().all(|f| f.open_by.is_empty() && f.modified > 0));
        let notes = repo.remove_stale_locks(&locks).unwrap();
        assert_eq!(notes[0], "removed .git/index.lock left by the killed run");
        assert!(repo.stale_git_locks(true).is_empty());
        assert!(git.join("refs/heads/other.lock").exists());
        // The whole policy: nothing to do now; a refusal for a lock without proof.
        let exited = PreviousRun {
            killed_at_start: None,
            ..KILLED
        };
        assert_eq!(
            clear_stale_locks(&repo, exited).unwrap(),
            Vec::<String>::new()
        );
        fs::write(git.join("index.lock"), "").unwrap();
        let e = clear_stale_locks(&repo, exited).unwrap_err().to_string();
        assert!(
            e.starts_with("git's lock file .git/index.lock exists"),
            "{e}"
        );
        assert!(git.join("index.lock").exists());
    }
}
