//! Whether the engine can write where a run must (the git directories and the work tree), probed
//! before the first write: Codex's `workspace-write` sandbox keeps `.git` read-only, and a run
//! started there would fail at its first commit, or earlier at `.git/info/exclude`.

use std::io::ErrorKind;
use std::path::Path;

use crate::error::{Error, Result};
use crate::fsutil::TMP_PREFIX;
use crate::git::Repo;

/// The advice for a directory the engine cannot write (Codex's sandbox is the usual cause).
pub const ADVICE: &str =
    "run from outside Codex's sandbox (approve the escalation) or in a terminal";

/// Refuses the run when the git directory, the common git directory (a linked worktree) or the
/// work tree root cannot be written. Each probe creates an empty temporary file and removes it at
/// once (one a killed probe leaves is swept with the engine's other temporary files).
pub fn check(repo: &Repo) -> Result<()> {
    let dirs = [repo.repo.path(), repo.repo.commondir(), repo.root.as_path()];
    for (i, dir) in dirs.iter().enumerate() {
        if dirs[..i].iter().any(|d| d == dir) {
            continue;
        }
        probe(dir)?;
    }
    Ok(())
}

/// Creates and removes a temporary file in `dir`; a read-only or forbidden directory refuses.
pub fn probe(dir: &Path) -> Result<()> {
    match tempfile::Builder::new().prefix(TMP_PREFIX).tempfile_in(dir) {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::ReadOnlyFilesystem | ErrorKind::PermissionDenied
            ) =>
        {
            let dir = dir.display().to_string();
            let dir = dir.trim_end_matches('/');
            Err(Error::Refused(format!(
                "{dir} is not writable ({}), and the engine must write there: {ADVICE}",
                reason(&e)
            )))
        }
        Err(e) => Err(Error::io("create a temporary file in", dir, e)),
    }
}

/// The OS's reason without the `(os error N)` suffix.
fn reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_directory_passes_and_keeps_nothing() {
        let d = tempfile::tempdir().unwrap();
        probe(d.path()).unwrap();
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_missing_directory_is_an_io_error_not_the_sandbox_advice() {
        let d = tempfile::tempdir().unwrap();
        let e = probe(&d.path().join("gone")).unwrap_err().to_string();
        assert!(!e.contains(ADVICE), "{e}");
        assert!(e.contains("create a temporary file in"), "{e}");
    }
}
