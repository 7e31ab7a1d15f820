//! The scratch checkout `confirm` measures in: a throwaway git repository in the system's temp
//! directory that borrows the user's objects (an `alternates` entry), with a detached HEAD. The
//! user's repository gains no worktree entry, ref, index change or object; the directory is
//! removed on drop, and one a killed confirm left behind is swept by the next one.

use std::fs;
use std::path::{Path, PathBuf};

use git2::build::CheckoutBuilder;
use git2::{Oid, Repository, Signature};

use crate::error::{GitContext, IoContext, Result};
use crate::git::{FALLBACK_EMAIL, Repo};

/// Prefix of the scratch directories (`autoresearch-confirm-<pid>-XXXXXX`).
pub const PREFIX: &str = "autoresearch-confirm-";

/// A scratch checkout; removed when dropped.
pub struct ScratchTree {
    repo: Repository,
    dir: tempfile::TempDir,
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
    pub fn create(user: &Repo) -> Result<ScratchTree> {
        let tmp = std::env::temp_dir();
        sweep_stale(&tmp);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{}-", std::process::id()))
            .tempdir_in(&tmp)
            .ctx("create a scratch directory in", &tmp)?;
        let root = dir.path().to_path_buf();
        Repository::init(&root).git_ctx("create the scratch repository for confirm")?;
        let objects = user.repo.commondir().join("objects");
        let alternates = root.join(".git/objects/info/alternates");
        fs::write(&alternates, format!("{}\n", objects.display())).ctx("write", &alternates)?;
        // Opened again so the alternates are read.
        let repo = Repository::open(&root).git_ctx("open the scratch repository")?;
        Ok(ScratchTree { repo, dir })
    }

    /// The directory verify runs in.
    pub fn root(&self) -> &Path {
        self.dir.path()
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

/// Removes the scratch directories of confirms whose process is gone (killed by a second
/// signal or SIGKILL before their drop ran).
fn sweep_stale(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let path: PathBuf = e.path();
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(&path);
        }
    }
}
