//! A rework turn's commit: the trial on the branch is replaced by one commit holding the rework
//! too (same parent), so a keep is exactly one commit and every commit the run adds passed the
//! guard; the replaced attempt is kept reachable under the run's trial refs first.

use git2::Oid;

use super::Run;
use super::recover::preserve;
use super::tree::Inspection;
use crate::error::Result;

impl Run {
    /// Keeps `trial` (HEAD) at `refs/autoresearch/<tag>/trial-<n>` (or a numbered variant), then
    /// amends it with what [`Run::inspect`] found; the work tree then equals the new commit.
    /// Killed in between, the branch is still on `trial` (kept already), the rework uncommitted:
    /// recovery keeps both as it keeps any interrupted iteration.
    pub(super) fn amend_trial(
        &mut self,
        n: u64,
        trial: Oid,
        insp: &Inspection,
        message: &str,
    ) -> Result<Oid> {
        let name = preserve(&self.repo, &self.run_tag, n, trial)?;
        let amended = self.repo.amend_paths(&insp.changed, message)?;
        self.notes.push(format!(
            "the rework amended the trial commit {} (kept at {name}) into {}",
            crate::git::Repo::short(trial),
            crate::git::Repo::short(amended)
        ));
        let all_files = insp
            .changed
            .iter()
            .all(|p| !crate::repopath::to_fs(&self.repo.root, p).is_dir());
        self.clean_at = all_files.then_some(amended);
        Ok(amended)
    }
}
