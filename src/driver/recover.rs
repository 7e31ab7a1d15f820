//! Recovery after a crash: the iteration a killed process left unfinished is preserved under the
//! run's refs, rolled back (`.git` put back from the snapshot the killed turn kept), and recorded
//! as an `[INTERRUPTED]` crash row.

use std::collections::HashSet;
use std::path::Path;

use git2::Oid;

use super::preflight::Loaded;
use crate::artifacts::Paths;
use crate::artifacts::inflight::{self, Inflight};
use crate::config::Rollback;
use crate::engine::list_paths;
use crate::engine::row::{Guard, Row, Status, one_line};
use crate::engine::step::Phase;
use crate::error::{Error, Result};
use crate::git::{ChangeKind, KeptFile, Repo};
use crate::gitdir::{self, GitDirSnapshot};
use crate::output::Output;

/// Keeps `oid` reachable at `refs/autoresearch/<tag>/trial-<n>`, or at `trial-<n>-2`, ... when
/// that name already holds another commit: refs there have no reflog, so overwriting one would
/// lose a trial. Returns the ref name.
pub(super) fn preserve(repo: &Repo, tag: &str, n: u64, oid: Oid) -> Result<String> {
    preserve_as(repo, tag, "trial", n, oid)
}

/// Points `refs/autoresearch/<tag>/<kind>-<n>` (or the first free `-2`, `-3`, ... variant) at
/// `oid`; returns the ref.
pub(super) fn preserve_as(repo: &Repo, tag: &str, kind: &str, n: u64, oid: Oid) -> Result<String> {
    let base = format!("refs/autoresearch/{tag}/{kind}-{n}");
    let mut name = base.clone();
    for k in 2.. {
        match repo.repo.refname_to_id(&name) {
            Ok(existing) if existing == oid => return Ok(name),
            Ok(_) => name = format!("{base}-{k}"),
            Err(_) => break,
        }
    }
    repo.set_ref(&name, oid, "autoresearch: keep a rolled-back trial")?;
    Ok(name)
}

/// Keeps the content of the file at `full` as a loose blob (never committed), when it is a
/// regular file small enough to copy; returns the blob.
pub(super) fn blob_copy(repo: &Repo, full: &Path) -> Option<Oid> {
    std::fs::symlink_metadata(full)
        .is_ok_and(|m| m.is_file() && m.len() <= crate::git::BACKUP_LIMIT)
        .then(|| repo.repo.blob_path(full).ok())
        .flatten()
}

/// For each of your untracked files in `kept` that changed: keeps the changed content as a loose
/// blob (your files are never committed) so that the restore may put your copy back; one too big
/// to copy (or no longer a file) is re-kept as it is instead, its earlier content staying in its
/// backup. Returns the notes to show and whether `kept` changed.
pub(super) fn copy_changed_kept(repo: &Repo, kept: &mut [KeptFile]) -> Result<(Vec<String>, bool)> {
    let mut notes = Vec::new();
    let mut rekept = false;
    for k in kept.iter_mut() {
        if repo.kept_file_intact(k) {
            continue;
        }
        let full = crate::repopath::to_fs(&repo.root, &k.path);
        if std::fs::symlink_metadata(&full).is_err() {
            continue; // removed: nothing to copy; the restore puts it back
        }
        let path = crate::repopath::display(&k.path).into_owned();
        notes.push(match blob_copy(repo, &full) {
            Some(blob) => format!(
                "{path} (your untracked file) was changed during the iteration; your copy is put back, the changed content is kept as blob {blob} (`git cat-file -p {blob}`)"
            ),
            None => {
                let earlier = if k.blob.is_empty() {
                    String::new()
                } else {
                    format!("; its earlier content is blob {}", k.blob)
                };
                *k = repo.keep_file(&k.path.clone())?;
                rekept = true;
                format!(
                    "{path} (your untracked file) was changed during the iteration and is too big to copy: left as it is{earlier}"
                )
            }
        });
    }
    Ok((notes, rekept))
}

/// Splits `paths` into those small enough to commit as a copy (64 MB each, 256 MB in all) and
/// moves the others whole to `aside` (same file system: instant). Returns the small ones and a
/// note about the moved ones, if any.
pub(super) fn set_big_files_aside(
    root: &Path,
    paths: &[String],
    aside: &Path,
) -> (Vec<String>, String) {
    const TOTAL: u64 = 256 * 1024 * 1024;
    let mut total = 0u64;
    let (small, big): (Vec<String>, Vec<String>) = paths.iter().cloned().partition(|p| {
        let len = std::fs::symlink_metadata(crate::repopath::to_fs(root, p))
            .map_or(0, |m| if m.is_file() { m.len() } else { 0 });
        total += len;
        len <= crate::git::BACKUP_LIMIT && total <= TOTAL
    });
    if big.is_empty() {
        return (small, String::new());
    }
    let failed: Vec<String> = big
        .into_iter()
        .filter(|p| {
            let to = crate::repopath::to_fs(aside, p);
            let moved = to
                .parent()
                .is_some_and(|d| std::fs::create_dir_all(d).is_ok())
                && std::fs::rename(crate::repopath::to_fs(root, p), &to).is_ok();
            !moved
        })
        .collect();
    let mut note = format!("; big files moved to {}", aside.display());
    if !failed.is_empty() {
        note.push_str(&format!(" (could not move {}: lost)", list_paths(&failed)));
    }
    (small, note)
}

/// Keeps what iteration `n` produced: its trial commit and its uncommitted changes (the user's
/// kept files excluded) committed on top of HEAD without moving the branch, big files moved
/// aside. Returns the commit and ref that hold the latest of it, and the note on moved files.
pub(super) fn preserve_work(
    repo: &Repo,
    paths: &Paths,
    tag: &str,
    n: u64,
    trial: Option<Oid>,
    message: &str,
    kept: &HashSet<String>,
) -> Result<(Option<(Oid, String)>, String)> {
    let mut held = None;
    if let Some(t) = trial {
        held = Some((t, preserve(repo, tag, n, t)?));
    }
    let changes: Vec<String> = repo
        .scan_refresh()?
        .into_iter()
        .map(|c| c.path)
        .filter(|p| !kept.contains(p))
        .collect();
    let aside = paths.private.join("leftovers").join(n.to_string());
    let (small, moved) = set_big_files_aside(&repo.root, &changes, &aside);
    if !small.is_empty() {
        let s = repo.snapshot(&small, message)?;
        held = Some((s, preserve(repo, tag, n, s)?));
    }
    Ok((held, moved))
}

/// Reads the marker and checks the branch is where the interrupted iteration left it (on the
/// same branch, at or after its start commit); returns the marker, that commit and HEAD.
fn check_marker(
    repo: &Repo,
    paths: &Paths,
    marker: std::result::Result<Inflight, String>,
) -> Result<(Inflight, Oid, Oid)> {
    let marker = marker.map_err(|e| {
        Error::Refused(format!(
            "{} is unreadable ({e}); check the working tree by hand, then delete that file",
            paths.inflight.display()
        ))
    })?;
    let start = Oid::from_str(&marker.start_commit).map_err(|_| {
        Error::Refused(format!(
            "{} names no valid commit; delete it after checking the tree",
            paths.inflight.display()
        ))
    })?;
    if repo.branch().as_deref() != Some(marker.branch.as_str()) {
        return Err(Error::Refused(format!(
            "iteration {} was interrupted on {}, but HEAD is now elsewhere; check out that branch and run again",
            marker.iteration, marker.branch
        )));
    }
    let head = repo.head()?;
    if !repo.descends_from(head, start) {
        return Err(Error::Refused(format!(
            "iteration {} was interrupted at commit {}, but HEAD moved to {} since; reset the branch to {} (or delete {}) and run again",
            marker.iteration,
            Repo::short(start),
            Repo::short(head),
            Repo::short(start),
            paths.inflight.display()
        )));
    }
    Ok((marker, start, head))
}

/// Puts back what the turn of the killed engine changed inside `.git`, from the snapshot that
/// turn kept on disk (only when the marker shows a turn ran, and the snapshot is of this git
/// directory and was taken by that engine); returns the paths put back.
fn put_back_git_dir(
    repo: &Repo,
    paths: &Paths,
    marker: &Inflight,
    out: &Output,
) -> Result<Vec<String>> {
    if ![Phase::Agent, Phase::Rework]
        .iter()
        .any(|p| p.as_str() == marker.phase)
    {
        // Killed during verify or the guard: the turn's changes were put back when it ended.
        return Ok(Vec::new());
    }
    let file = gitdir::saved_path(repo.repo.path());
    let snap = match GitDirSnapshot::load(&file, repo.repo.path()) {
        Ok(Some(s)) if s.taken_by() == marker.pid => s,
        Ok(None) => return Ok(Vec::new()),
        Ok(Some(s)) => {
            out.note(&format!(
                "did not put .git back from {}: it was kept by engine process {}, not by the killed one ({})",
                file.display(),
                s.taken_by(),
                marker.pid
            ));
            return Ok(Vec::new());
        }
        Err(why) => {
            out.note(&format!(
                "did not put .git back from {}: {why}",
                file.display()
            ));
            return Ok(Vec::new());
        }
    };
    let exclude = repo.repo.commondir().join("info/exclude");
    let before = std::fs::read(&exclude).ok();
    let mut put_back = snap.restore()?;
    // This run's own exclude entries, added at its start, go back in before any scan needs them;
    // the file is not named when that leaves it as it was.
    repo.add_excludes(&paths.exclude_entries())?;
    if std::fs::read(&exclude).ok() == before {
        put_back.retain(|p| p != ".git/info/exclude");
    }
    if !put_back.is_empty() {
        out.note(&format!(
            "put back {}, which the interrupted turn changed",
            list_paths(&put_back)
        ));
    }
    Ok(put_back)
}

/// Rolls back an iteration that a previous process left unfinished and records it.
pub(super) fn recover(
    repo: &Repo,
    paths: &Paths,
    loaded: Option<&mut Loaded>,
    marker: std::result::Result<Inflight, String>,
    out: &Output,
) -> Result<()> {
    // `.git` first: whatever the branch checks below decide, a hook the turn wrote goes.
    let git_dir = match &marker {
        Ok(m) => put_back_git_dir(repo, paths, m, out)?,
        Err(_) => Vec::new(),
    };
    let (marker, start, head) = check_marker(repo, paths, marker)?;
    let mut kept = inflight::load_kept(&paths.kept);
    let recorded = loaded
        .as_ref()
        .is_some_and(|l| l.replay.tally.iteration >= marker.iteration);
    let rollback = loaded
        .as_ref()
        .and_then(|l| l.saved.rollback)
        .unwrap_or(Rollback::Reset);
    if recorded {
        // The row was written; only the marker removal was lost. A recorded keep left HEAD on
        // its commit; anything else was already rolled back before the row was written.
        Inflight::clear(&paths.inflight)?;
        return Ok(());
    }
    // Preserve everything the iteration produced (the trial: on the branch, or already rolled
    // back and named in the marker; and what it left uncommitted), then restore the retained commit.
    let trial = if head != start {
        Some(head)
    } else {
        marker
            .trial_commit
            .as_deref()
            .and_then(|t| Oid::from_str(t).ok())
            .filter(|t| repo.repo.find_commit(*t).is_ok())
    };
    let kept_paths: HashSet<String> = kept.iter().map(|k| k.path.clone()).collect();
    let message = format!("experiment (interrupted): iteration {}", marker.iteration);
    let (held, moved) = preserve_work(
        repo,
        paths,
        &marker.run_tag,
        marker.iteration,
        trial,
        &message,
        &kept_paths,
    )?;
    // Your untracked files: a changed one's content is copied before your copy is put back.
    let (notes, rekept) = copy_changed_kept(repo, &mut kept)?;
    for note in notes {
        out.note(&note);
    }
    if rekept {
        inflight::save_kept(&paths.kept, &kept)?;
    }
    let new_head = if rollback == Rollback::Revert && head != start {
        repo.commit_tree_of(
            start,
            &format!(
                "revert: interrupted experiment of iteration {}",
                marker.iteration
            ),
        )?
    } else {
        repo.reset_hard(start)?;
        start
    };
    let created: Vec<String> = repo
        .scan_refresh()?
        .into_iter()
        .filter(|c| c.kind == ChangeKind::Untracked && !kept_paths.contains(&c.path))
        .map(|c| c.path)
        .collect();
    repo.delete_created(&created, new_head);
    for k in &kept {
        if !repo.kept_file_intact(k) && !repo.restore_kept_file(k)? {
            out.note(&format!(
                "{} (your untracked file) was changed and cannot be restored: it was not backed up",
                k.path
            ));
        }
    }
    let where_ = match &held {
        Some((_, name)) => format!("; its work is kept at {name}{moved}"),
        None => moved.clone(),
    };
    out.note(&format!(
        "iteration {} was interrupted during {} (the previous process was killed); rolled it back{where_}",
        marker.iteration, marker.phase
    ));
    if let Some(l) = loaded {
        let commit = held.as_ref().map(|(o, _)| *o);
        let mut what = where_;
        if !git_dir.is_empty() {
            what.push_str(&format!("; put back {}", list_paths(&git_dir)));
        }
        record_interrupted(l, paths, &marker, commit, &what, new_head)?;
    }
    Inflight::clear(&paths.inflight)
}

/// Appends the `[INTERRUPTED]` crash row of a recovered iteration (with the experiment's
/// description when the marker has it) and brings the state up to date.
fn record_interrupted(
    l: &mut Loaded,
    paths: &Paths,
    marker: &Inflight,
    commit: Option<Oid>,
    where_: &str,
    new_head: Oid,
) -> Result<()> {
    let what = match marker.description.as_deref().map(one_line) {
        Some(d) if !d.is_empty() => format!("{d} — "),
        _ => String::new(),
    };
    let row = Row {
        iteration: l.replay.tally.iteration + 1,
        commit: commit.map_or("-".into(), Repo::short),
        metric: l.replay.tally.current_metric,
        delta: 0.0,
        guard: Guard::NotRun,
        status: Status::Crash,
        description: format!(
            "[INTERRUPTED] {what}iteration {} stopped during {} when the engine was killed; rolled back{where_}",
            marker.iteration, marker.phase
        ),
    };
    l.results.append(&row)?;
    l.replay
        .apply(&row)
        .map_err(|e| Error::Blocked(e.to_string()))?;
    if let Some(s) = l.state.as_mut() {
        s.state = l.replay.tally.clone();
        s.engine.head = new_head.to_string();
        s.save(&paths.state)?;
        l.state_current = true;
    }
    Ok(())
}
