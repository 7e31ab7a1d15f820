//! The scratch checkout `confirm` measures in: a throwaway git repository in the system's temp
//! directory that borrows the user's objects (an `alternates` entry), with a detached HEAD. The
//! user's repository gains no worktree entry, ref, index change or object. The checkout holds an
//! exclusive `flock` on a lock file inside it for its whole life: it is removed on drop, and one
//! a killed confirm left behind (its lock free) is swept by the next one. Pids say nothing here:
//! confirms in other pid namespaces (containers, sandboxes) share the temp directory.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use git2::build::CheckoutBuilder;
use git2::{Oid, Repository, Signature};
use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, GitContext, IoContext, Result};
use crate::git::{FALLBACK_EMAIL, Repo};

/// Prefix of the scratch directories (`autoresearch-confirm-<pid>-XXXXXX`).
pub const PREFIX: &str = "autoresearch-confirm-";
/// The lock file inside a scratch directory (in its `.git`, out of reach of the checkouts).
pub const LOCK_FILE: &str = ".git/autoresearch-confirm.lock";

/// A scratch checkout; removed when dropped.
pub struct ScratchTree {
    repo: Repository,
    root: PathBuf,
    /// Held until the directory is removed: while it is, no sweep removes the directory.
    _lock: Flock<File>,
}

/// Why a keep cannot be taken out of the final tree.
pub enum Ablated {
    /// The final commit without the keep's changes (a commit of the scratch repository).
    Commit(Oid),
    /// Reverting it does not apply cleanly, or changes nothing: the reason.
    Skipped(String),
}

impl ScratchTree {
    /// Creates the scratch repository for `user` (first removing those killed confirms left).
    /// It is set up under a hidden name, locked, then renamed to its `PREFIX` name: a sweep never
    /// sees it without its lock held.
    pub fn create(user: &Repo) -> Result<ScratchTree> {
        let tmp = std::env::temp_dir();
        sweep_stale(&tmp);
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{PREFIX}{}-", std::process::id()))
            .tempdir_in(&tmp)
            .ctx("create a scratch directory in", &tmp)?;
        Repository::init(staging.path()).git_ctx("create the scratch repository for confirm")?;
        let lock = hold_lock(staging.path())?;
        let objects = user.repo.commondir().join("objects");
        let alternates = staging.path().join(".git/objects/info/alternates");
        fs::write(&alternates, format!("{}\n", objects.display())).ctx("write", &alternates)?;
        let name = staging
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| n.trim_start_matches('.').to_string())
            .unwrap_or_default();
        let root = tmp.join(name);
        fs::rename(staging.path(), &root).ctx("rename the scratch directory", staging.path())?;
        // Renamed: nothing is left for the TempDir to remove.
        let _ = staging.keep();
        // Opened again so the alternates are read.
        match Repository::open(&root) {
            Ok(repo) => Ok(ScratchTree {
                repo,
                root,
                _lock: lock,
            }),
            Err(e) => {
                let _ = fs::remove_dir_all(&root);
                Err(e).git_ctx("open the scratch repository")
            }
        }
    }

    /// The directory verify runs in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The error when the checkout is gone while confirm still measures in it (something else
    /// removed it), else `None`.
    pub fn vanished(&self) -> Option<Error> {
        (!self.root.join(LOCK_FILE).exists()).then(|| {
            Error::Blocked(format!(
                "confirm: the scratch checkout {} vanished while confirm was measuring in it (something else removed it); {}",
                self.root.display(),
                super::AGAIN
            ))
        })
    }

    /// Makes the work tree exactly `commit`'s tree (untracked byproducts of the last run are
    /// removed; ignored files such as build caches stay).
    pub fn checkout(&self, commit: Oid) -> Result<()> {
        let c = self
            .repo
            .find_commit(commit)
            .git_ctx("read a commit to confirm")?;
        let mut opts = CheckoutBuilder::new();
        opts.force().remove_untracked(true);
        self.repo
            .checkout_tree(c.as_object(), Some(&mut opts))
            .git_ctx("check out a commit in the scratch tree")?;
        self.repo
            .set_head_detached(commit)
            .git_ctx("move the scratch tree's HEAD")?;
        Ok(())
    }

    /// Builds `final_commit` without the changes of `keep` (a revert on top of it).
    pub fn without(&self, keep: Oid, final_commit: Oid) -> Result<Ablated> {
        let keep_c = self.repo.find_commit(keep).git_ctx("read a kept commit")?;
        let fin = self
            .repo
            .find_commit(final_commit)
            .git_ctx("read the final commit")?;
        if keep_c.parent_count() != 1 {
            return Ok(Ablated::Skipped("it is not a single-parent commit".into()));
        }
        let mut index = self
            .repo
            .revert_commit(&keep_c, &fin, 0, None)
            .git_ctx("revert a kept commit in the scratch repository")?;
        if index.has_conflicts() {
            return Ok(Ablated::Skipped(
                "reverting it does not apply cleanly to the final tree (later keeps changed the same lines)".into(),
            ));
        }
        let tree_id = index
            .write_tree_to(&self.repo)
            .git_ctx("write the ablated tree")?;
        if tree_id == fin.tree_id() {
            return Ok(Ablated::Skipped(
                "reverting it leaves the final tree unchanged (a later change undid it)".into(),
            ));
        }
        let tree = self
            .repo
            .find_tree(tree_id)
            .git_ctx("read the ablated tree")?;
        let sig = Signature::now("codex-autoresearch", FALLBACK_EMAIL)
            .git_ctx("make a signature for the ablated commit")?;
        let msg = format!("confirm: final without {}", Repo::short(keep));
        let oid = self
            .repo
            .commit(None, &sig, &sig, &msg, &tree, &[&fin])
            .git_ctx("commit the ablated tree in the scratch repository")?;
        Ok(Ablated::Commit(oid))
    }
}

impl Drop for ScratchTree {
    fn drop(&mut self) {
        // Removed while the lock is held (the lock field is dropped after this).
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// Creates the lock file in `dir` and takes its lock.
fn hold_lock(dir: &Path) -> Result<Flock<File>> {
    let path = dir.join(LOCK_FILE);
    let file = File::create(&path).ctx("create", &path)?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock)
        .map_err(|(_, errno)| std::io::Error::from(errno))
        .ctx("lock", &path)
}

/// Removes the scratch directories of confirms that are gone (killed by a second signal or
/// SIGKILL before their drop ran): those whose lock this process can take. One whose lock is
/// held belongs to a live confirm, wherever it runs; one without a lock file is left alone.
pub(super) fn sweep_stale(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let ours = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(PREFIX));
        if !ours || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = e.path();
        let Ok(file) = File::open(path.join(LOCK_FILE)) else {
            continue;
        };
        if let Ok(held) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            let _ = fs::remove_dir_all(&path);
            drop(held);
        }
    }
}
