//! The work tree: what a turn changed (inspection), the trial commit, and every restore, with
//! the copies that make a restore lose nothing (leftover refs, your untracked files' blobs).

use std::path::Path;

use git2::Oid;

use super::Run;
use super::recover::{blob_copy, copy_changed_kept, preserve, preserve_as, set_big_files_aside};
use crate::artifacts::inflight;
use crate::artifacts::lessons::Lessons;
use crate::config::Rollback;
use crate::engine::list_paths;
use crate::error::Result;
use crate::fsutil;
use crate::git::ChangeKind;

/// What changed in the working tree during a turn.
#[derive(Default)]
pub(super) struct Inspection {
    /// Paths to commit (tracked changes and new files).
    pub(super) changed: Vec<String>,
    pub(super) scope: Vec<String>,
    pub(super) protected: Vec<String>,
    /// The scan it came from (changes against HEAD, your untracked files included).
    pub(super) scan: Vec<crate::git::Change>,
}

/// How a copy of work a restore undoes is named.
#[derive(Clone, Copy)]
pub(super) enum Keep {
    /// What the iteration did not commit: `leftover-<n>`.
    Leftovers,
    /// An interrupted or failed turn's unfinished work: `trial-<n>`, like a trial.
    Unfinished,
}

impl Run {
    /// Backs up the user's untracked files outside the scope, so the agent cannot lose them.
    pub(super) fn keep_user_files(&mut self, user_untracked: &[String]) -> Result<()> {
        let mut kept = Vec::with_capacity(user_untracked.len());
        for p in user_untracked {
            kept.push(self.repo.keep_file(p)?);
        }
        inflight::save_kept(&self.paths.kept, &kept)?;
        let watched: Vec<String> = kept
            .iter()
            .filter(|k| k.blob.is_empty())
            .map(|k| k.path.clone())
            .collect();
        if !watched.is_empty() {
            self.out.note(&format!(
                "not backed up (directories, or files over 64 MB), only watched: {}",
                list_paths(&watched)
            ));
        }
        self.kept = kept;
        Ok(())
    }

    /// Returns how a path is shown in rows: relative to the repository when inside it.
    pub(super) fn shown(&self, p: &Path) -> String {
        p.strip_prefix(&self.repo.root)
            .unwrap_or(p)
            .display()
            .to_string()
    }

    /// Restores the engine's own files if something wrote to them (git does not see them: they
    /// are excluded) and returns the ones it restored. Run right after an agent turn, which
    /// [`Run::settle_artifacts`] starts from a known state, so only writes made during the turn
    /// count against the agent.
    pub(super) fn restore_artifacts(&mut self) -> Result<Vec<String>> {
        let mut touched = Vec::new();
        if self.results.tampered() {
            self.results.restore()?;
            touched.push(self.shown(&self.paths.results));
        }
        if fsutil::fingerprint(&self.paths.state) != self.state_stamp {
            self.save_state()?;
            touched.push(self.shown(&self.paths.state));
        }
        if self.lessons.tampered() {
            self.lessons.restore()?;
            touched.push(self.shown(&self.paths.lessons));
        }
        Ok(touched)
    }

    /// Before an agent turn: a results log or state written by someone else is restored (they are
    /// the engine's), lessons edited by hand are taken as they are.
    pub(super) fn settle_artifacts(&mut self) -> Result<()> {
        if self.lessons.tampered() {
            self.lessons = Lessons::load(&self.paths.lessons);
        }
        for name in self.restore_artifacts()? {
            self.out.note(&format!(
                "{name} was changed outside the engine; restored it"
            ));
        }
        Ok(())
    }

    /// Commits everything [`Run::inspect`] found as the trial; the work tree then equals it.
    pub(super) fn commit_trial(&mut self, insp: &Inspection, message: &str) -> Result<Oid> {
        let trial = self.repo.commit_paths(&insp.changed, message)?;
        // A directory (a nested repository) is not committed: the tree then differs from it.
        let all_files = insp
            .changed
            .iter()
            .all(|p| !crate::repopath::to_fs(&self.repo.root, p).is_dir());
        self.clean_at = all_files.then_some(trial);
        Ok(trial)
    }

    /// Lists what the agent changed and which changes break the scope or protection.
    /// `gitdir`: what the agent's turns changed inside `.git` (put back already): protected.
    pub(super) fn inspect(&mut self, gitdir: Vec<String>) -> Result<Inspection> {
        let mut insp = Inspection::default();
        let touched = self.restore_artifacts()?;
        let kept = self.kept_path_set();
        self.clean_at = None;
        self.watch.arm(&self.repo);
        if let Some(why) = self.watch.take_off_reason() {
            self.out.note(&format!(
                "scanning the whole work tree every time from now on: {why}"
            ));
        }
        self.scans += 1;
        insp.scan = self.repo.scan_refresh()?;
        for c in &insp.scan {
            if kept.contains(&c.path) {
                continue;
            }
            if self.protect.matches(&c.path) {
                insp.protected.push(c.path.clone());
            } else if !self.scope.matches(&c.path) {
                insp.scope.push(c.path.clone());
            }
            insp.changed.push(c.path.clone());
        }
        for k in &self.kept {
            if !self.repo.kept_file_intact(k) {
                if self.protect.matches(&k.path) {
                    insp.protected.push(k.path.clone());
                } else {
                    insp.scope.push(format!("{} (your untracked file)", k.path));
                }
            }
        }
        for t in touched {
            insp.protected.push(t);
        }
        insp.protected.extend(gitdir);
        Ok(insp)
    }

    /// Restores the tree to the retained commit: the branch, the index and the tracked files that
    /// differ (from the trial commits or edited since) are reset, files created since are deleted,
    /// the user's untracked files are restored if the agent changed them.
    pub(super) fn restore_tree(&mut self) -> Result<()> {
        self.restore_tree_to(self.head)
    }

    /// [`Run::restore_tree`] towards `target` instead of the retained commit (a rework turn
    /// starts from its trial commit).
    pub(super) fn restore_tree_to(&mut self, target: Oid) -> Result<()> {
        self.restore_tree_with(target, true)
    }

    /// [`Run::restore_tree_to`]; with `keep_leftovers`, whatever differs from HEAD (what verify
    /// or guard left, an edit made during the iteration, a rejected change) is first committed
    /// under `refs/autoresearch/<tag>/leftover-<n>` and named on the console: nothing is
    /// removed without a copy.
    pub(super) fn restore_tree_with(&mut self, target: Oid, keep_leftovers: bool) -> Result<()> {
        self.restore_tree_known(target, keep_leftovers, None)
    }

    /// [`Run::restore_tree_with`], given the changes against HEAD when they were just scanned.
    pub(super) fn restore_tree_known(
        &mut self,
        target: Oid,
        keep_leftovers: bool,
        known: Option<Vec<crate::git::Change>>,
    ) -> Result<()> {
        let kept = self.kept_path_set();
        let head = self.repo.head()?;
        let changes = match known {
            Some(c) => c,
            None => self.changes_since_clean(head)?,
        };
        if keep_leftovers {
            let left: Vec<String> = changes
                .iter()
                .filter(|c| !kept.contains(&c.path))
                .map(|c| c.path.clone())
                .collect();
            if !left.is_empty() {
                self.keep_leftovers(&left, Keep::Leftovers)?;
            }
            self.copy_changed_kept_files()?;
        }
        let mut paths: Vec<String> = changes
            .iter()
            .filter(|c| c.kind != ChangeKind::Untracked)
            .map(|c| c.path.clone())
            .collect();
        if head != target {
            paths.extend(self.repo.diff_paths(target, head)?);
            paths.sort_unstable();
            paths.dedup();
        }
        if head != target || !paths.is_empty() {
            self.repo.reset_paths(target, &paths)?;
        }
        let created: Vec<String> = changes
            .into_iter()
            .filter(|c| c.kind == ChangeKind::Untracked && !kept.contains(&c.path))
            .map(|c| c.path)
            .collect();
        let failed = self.repo.delete_created(&created, target);
        if !failed.is_empty() {
            self.out.note(&format!(
                "could not remove {} (left in place)",
                list_paths(&failed)
            ));
        }
        let mut changed = false;
        for i in 0..self.kept.len() {
            let k = &self.kept[i];
            if self.repo.kept_file_intact(k) || self.repo.restore_kept_file(k)? {
                continue;
            }
            // No backup (a directory, a big file): report it once and watch its new state.
            self.out.note(&format!(
                "{} (your untracked file) was changed and cannot be restored: it was not backed up",
                k.path
            ));
            let path = k.path.clone();
            self.kept[i] = self.repo.keep_file(&path)?;
            changed = true;
        }
        if changed {
            inflight::save_kept(&self.paths.kept, &self.kept)?;
        }
        // From here until the next agent turn the engine does not touch the tree.
        self.watch.arm(&self.repo);
        self.settled = true;
        Ok(())
    }

    /// Between iterations nobody but the user (or another program) changes the tree. Edits to
    /// your untracked files and new untracked files outside the scope are adopted as yours;
    /// anything else stops the run (a hard blocker) without touching it.
    pub(super) fn changed_by_someone_else(&mut self) -> Result<Option<String>> {
        if !self.settled || !self.watch.active() || self.watch.quiet() {
            return Ok(None);
        }
        self.settled = false;
        // Armed before the scan: an edit made while it runs is seen at the next check.
        self.watch.arm(&self.repo);
        let kept = self.kept_path_set();
        let mut foreign = Vec::new();
        let mut adopted = false;
        for c in self.repo.scan_refresh()? {
            if kept.contains(&c.path) {
                continue;
            }
            if c.kind == ChangeKind::Untracked
                && !self.scope.matches(&c.path)
                && !self.protect.matches(&c.path)
            {
                self.kept.push(self.repo.keep_file(&c.path)?);
                self.out.note(&format!(
                    "{} appeared outside the scope between iterations: treated as your untracked file",
                    c.path
                ));
                adopted = true;
            } else {
                foreign.push(c.path);
            }
        }
        let mut i = 0;
        while i < self.kept.len() {
            if self.repo.kept_file_intact(&self.kept[i]) {
                i += 1;
                continue;
            }
            let path = self.kept[i].path.clone();
            adopted = true;
            if crate::repopath::to_fs(&self.repo.root, &path)
                .symlink_metadata()
                .is_err()
            {
                // You removed it: nothing left to watch.
                self.kept.remove(i);
                continue;
            }
            self.kept[i] = self.repo.keep_file(&path)?;
            i += 1;
        }
        if adopted {
            inflight::save_kept(&self.paths.kept, &self.kept)?;
        }
        self.settled = true;
        if foreign.is_empty() {
            return Ok(None);
        }
        Ok(Some(format!(
            "the work tree changed between iterations ({}): someone else is editing it; stopped without touching it (commit or undo those changes, then run again to continue)",
            list_paths(&foreign)
        )))
    }

    /// Before a restore puts your untracked files back: the changed content of each one that
    /// changed is kept as a loose blob (your files are never committed) and named; one too big
    /// to copy (or no longer a file) is left as it is and watched in its new state instead, its
    /// earlier content staying in its backup.
    pub(super) fn copy_changed_kept_files(&mut self) -> Result<()> {
        let (notes, rekept) = copy_changed_kept(&self.repo, &mut self.kept)?;
        for note in notes {
            self.out.note(&note);
            self.notes.push(note);
        }
        if rekept {
            inflight::save_kept(&self.paths.kept, &self.kept)?;
        }
        Ok(())
    }

    /// What differs from `head` (HEAD): nothing when the tree equalled it when the watch was
    /// armed and no event arrived since, else a scan.
    pub(super) fn changes_since_clean(&mut self, head: Oid) -> Result<Vec<crate::git::Change>> {
        let no_process = std::mem::take(&mut self.no_process_since_clean);
        if self.clean_at.take() == Some(head) && (no_process || self.watch.quiet()) {
            return Ok(Vec::new());
        }
        self.scans += 1;
        self.repo.scan_refresh()
    }

    /// Copies what a restore is about to undo, now (before a forced checkout); returns the
    /// changes against HEAD it found and the commit and ref holding the copy, if any.
    #[allow(clippy::type_complexity)]
    pub(super) fn copy_leftovers_now(
        &mut self,
        keep: Keep,
    ) -> Result<(Vec<crate::git::Change>, Option<(Oid, String)>)> {
        let head = self.repo.head()?;
        let kept = self.kept_path_set();
        let changes = self.changes_since_clean(head)?;
        let left: Vec<String> = changes
            .iter()
            .map(|c| c.path.clone())
            .filter(|p| !kept.contains(p))
            .collect();
        let held = if left.is_empty() {
            None
        } else {
            self.keep_leftovers(&left, keep)?
        };
        self.copy_changed_kept_files()?;
        Ok((changes, held))
    }

    /// Commits `paths` as they are (files up to the backup limit, 256 MB in all) on top of HEAD,
    /// without moving the branch, under `refs/autoresearch/<tag>/leftover-<n>` (or `trial-<n>`
    /// for unfinished work); moves bigger ones to `autoresearch-results/engine/leftovers/<n>/`; says so, and
    /// returns the commit and ref.
    pub(super) fn keep_leftovers(
        &mut self,
        paths: &[String],
        keep: Keep,
    ) -> Result<Option<(Oid, String)>> {
        let (n, label) = if self.untouched {
            (0, "the measurement of the untouched tree".to_string())
        } else {
            let n = self.replay.tally.iteration + 1;
            (n, format!("iteration {n}"))
        };
        let aside = self.paths.private.join("leftovers").join(n.to_string());
        let (small, moved) = set_big_files_aside(&self.repo.root, paths, &aside);
        let (kind, message, what) = match keep {
            Keep::Leftovers => (
                "leftover",
                format!("leftovers: iteration {n}"),
                "changes the iteration did not commit were undone",
            ),
            Keep::Unfinished => (
                "trial",
                format!("experiment (unfinished): iteration {n}"),
                "the unfinished work was rolled back",
            ),
        };
        let mut where_ = String::new();
        let mut held = None;
        if !small.is_empty() {
            let oid = self.repo.snapshot(&small, &message)?;
            let name = preserve_as(&self.repo, &self.run_tag, kind, n, oid)?;
            where_ = format!("; kept at {name}");
            held = Some((oid, name));
        }
        where_.push_str(&moved);
        let note = format!("{what} ({}){where_}", list_paths(paths));
        self.out.note(&format!("{label}: {note}"));
        self.notes.push(note);
        Ok(held)
    }

    /// After verify or the guard: whatever they wrote (a `__pycache__`, a coverage file, an edit
    /// to a tracked file) is the measurement's, never the agent's. It is undone right away, so the
    /// guard and a rework turn start from the trial, and it is never committed: new files are
    /// removed (said once per run); a tracked file they changed is put back with its changed
    /// content kept as a loose blob and named (an edit someone made meanwhile looks the same);
    /// your untracked files are put back the same way. Returns the tracked files it put back.
    pub(super) fn restore_measurement_writes(&mut self, who: &str) -> Result<Vec<String>> {
        let head = self.repo.head()?;
        let kept = self.kept_path_set();
        let changes = self.changes_since_clean(head)?;
        let (mut created, mut edited) = (Vec::new(), Vec::new());
        for c in changes.iter().filter(|c| !kept.contains(&c.path)) {
            if c.kind == ChangeKind::Untracked {
                created.push(c.path.clone());
                continue;
            }
            edited.push(c.path.clone());
            let full = crate::repopath::to_fs(&self.repo.root, &c.path);
            let path = crate::repopath::display(&c.path);
            let note = match blob_copy(&self.repo, &full) {
                Some(blob) => format!(
                    "{who} changed {path} (tracked): put back; the changed content is kept as blob {blob} (`git cat-file -p {blob}`)"
                ),
                None => format!("{who} changed {path} (tracked): put back"),
            };
            self.out.note(&note);
            self.notes.push(note);
        }
        let kept_changed = self.kept.iter().any(|k| !self.repo.kept_file_intact(k));
        if !changes.is_empty() || kept_changed {
            self.copy_changed_kept_files()?;
            self.restore_tree_known(head, false, Some(changes))?;
        }
        if !created.is_empty() {
            let note = format!(
                "{who} wrote {}: what verify and guard write is the measurement's, never the agent's; removed, never committed",
                list_paths(&created)
            );
            if !self.told_measurement_writes {
                self.out.note(&format!("{note} (said once)"));
                self.told_measurement_writes = true;
            }
            self.notes.push(note);
        }
        // The tree equals HEAD again; until the next process runs, even without the watch.
        self.clean_at = Some(head);
        self.no_process_since_clean = true;
        Ok(edited)
    }

    /// Rolls back iteration `n`: keeps its work under `refs/autoresearch/<tag>/` (the trial and,
    /// with `snapshot`, what it left uncommitted), then resets (or reverts) to the retained
    /// commit. Returns the commit and ref that hold the work.
    pub(super) fn roll_back(
        &mut self,
        n: u64,
        trial: Option<Oid>,
        snapshot: bool,
    ) -> Result<Option<(Oid, String)>> {
        let mut held = match trial {
            Some(t) => Some((t, preserve(&self.repo, &self.run_tag, n, t)?)),
            None => None,
        };
        let head = self.repo.head()?;
        // What the restore undoes is copied first (the revert commit's checkout is forced); with
        // `snapshot` the copy is the unfinished work, the latest of what the iteration made.
        let keep = if snapshot {
            Keep::Unfinished
        } else {
            Keep::Leftovers
        };
        let (changes, copy) = self.copy_leftovers_now(keep)?;
        if snapshot && copy.is_some() {
            held = copy;
        }
        let mut known = Some(changes);
        if self.cfg.rollback == Rollback::Revert && head != self.head {
            let msg = format!("revert: experiment of iteration {n} was not kept");
            self.head = self.repo.commit_tree_of(self.head, &msg)?;
            known = None; // the checkout changed the tree
        }
        self.restore_tree_known(self.head, false, known)?;
        Ok(held)
    }
}
