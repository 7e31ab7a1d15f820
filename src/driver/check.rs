//! What `config --check` takes from the run's preflight: every refusal a `run` makes before its
//! first write (the same code), and what the check then needs (the configuration, the SEQ
//! parameters, the files a clean checkout of HEAD lacks). Writes nothing.

use git2::{Oid, Status, StatusOptions};

use super::{Options, judge, preflight};
use crate::config::{KeepRule, RunConfig};
use crate::engine::seq::{Effort, Params};
use crate::error::{GitContext, Result};
use crate::git::Repo;
use crate::protection::Protection;

/// A configuration the run's preflight accepts.
pub struct Checked {
    pub repo: Repo,
    pub cfg: RunConfig,
    /// The commit the run would measure at its baseline (the tree is clean).
    pub head: Oid,
    pub protection: Protection,
    /// Tracked files the agent may change (in the scope, not protected).
    pub editable: usize,
    /// SEQ's parameters for the baseline (`None` under `--keep-rule strict`).
    pub seq: Option<Params>,
    /// Why the engine could not write where a run must (Codex's sandbox keeps `.git` read-only):
    /// `launch` then has to run elsewhere.
    pub read_only: Option<String>,
    /// The checklist the engine measures (ship mode, `--verify-format checklist`).
    pub checklist: Option<crate::ship::Spec>,
    /// What a clean checkout of HEAD lacks: untracked files and ignored entries of the work tree.
    pub untracked: Vec<String>,
}

/// Runs the run's preflight (all but the probe of a writable `.git`, which is reported instead)
/// and gathers what the check measures with.
pub fn check(opts: Options) -> Result<Checked> {
    let p = preflight::preflight_where(opts, false)?;
    let read_only = crate::writable::check(&p.repo).err().map(|e| e.to_string());
    let head = p
        .repo
        .repo
        .head()
        .and_then(|h| h.peel_to_commit())
        .map(|c| c.id())
        .git_ctx("read the HEAD commit")?;
    let index = p.repo.repo.index().git_ctx("read the index")?;
    let editable = index
        .iter()
        .map(|e| crate::repopath::decode(&e.path))
        .filter(|f| p.scope.matches(f) && !p.protect.matches(f))
        .count();
    let mut untracked = p.checked.clone().unwrap_or_default();
    untracked.extend(ignored(&p.repo, &p.paths.artifact_set()));
    let seq = (p.cfg.keep_rule == KeepRule::Seq).then(|| {
        judge::params(
            &p.cfg,
            judge::fixed_effort(&p.cfg).unwrap_or(Effort::Default),
        )
    });
    Ok(Checked {
        checklist: p.checklist,
        head,
        editable,
        seq,
        read_only,
        untracked,
        protection: p.protection,
        cfg: p.cfg,
        repo: p.repo,
    })
}

/// The ignored entries of the work tree (a directory once), without the engine's artifacts.
fn ignored(repo: &Repo, artifacts: &crate::scope::PathSet) -> Vec<String> {
    let mut opts = StatusOptions::new();
    opts.include_ignored(true)
        .recurse_ignored_dirs(false)
        .include_untracked(false)
        .exclude_submodules(true);
    let Ok(statuses) = repo.repo.statuses(Some(&mut opts)) else {
        return Vec::new();
    };
    statuses
        .iter()
        .filter(|e| e.status().contains(Status::IGNORED))
        .map(|e| crate::repopath::decode(e.path_bytes()))
        .filter(|p| !artifacts.matches(p) && !artifacts.matches(p.trim_end_matches('/')))
        .collect()
}
