//! Typed errors and the exit-code contract (one place maps every error to its code).

use std::path::Path;

/// Exit codes of `run` and `exec`, documented in GUIDE.md.
pub mod exit {
    /// Finished: goal reached, iteration cap, or stopped cleanly; `exec`: improved.
    pub const OK: u8 = 0;
    /// `exec` only: the run finished without improving on the baseline.
    pub const NO_IMPROVEMENT: u8 = 1;
    /// Bad flags or configuration, could not start, or a hard blocker stopped the run.
    pub const BLOCKED: u8 = 2;
    /// Stopped because a human is needed (pivots exhausted, quota wait spent).
    pub const NEEDS_HUMAN: u8 = 3;
    /// Interrupted by SIGINT after a clean rollback.
    pub const SIGINT: u8 = 130;
    /// Interrupted by SIGTERM after a clean rollback.
    pub const SIGTERM: u8 = 143;
    /// Interrupted by SIGHUP (the terminal went away) after a clean rollback.
    pub const SIGHUP: u8 = 129;
}

/// Everything that stops a command with an error line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad flag, config key or value (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The run refuses to start: preflight, lock, artifacts (exit 2).
    #[error("{0}")]
    Refused(String),
    /// A hard blocker stopped a running loop (exit 2).
    #[error("{0}")]
    Blocked(String),
    /// SIGINT or SIGTERM arrived before the run recorded anything (exit 130 or 143).
    #[error("interrupted by {} {}; nothing was recorded and the tree is unchanged", crate::engine::signal_name(*.0), .1)]
    Interrupted(i32, &'static str),
    /// A file operation failed.
    #[error("{action} {path}: {source}{}", io_hint(source))]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A git operation failed.
    #[error("git: {context}: {}", git_reason(source))]
    Git {
        context: String,
        #[source]
        source: git2::Error,
    },
}

/// What to do about a failed file operation, by its kind.
fn io_hint(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::PermissionDenied => "; check the file's permissions and owner, then run again",
        K::StorageFull => "; free some disk space, then run again",
        K::ReadOnlyFilesystem => "; the file system is read-only: remount it or work elsewhere",
        K::NotFound => "; something removed it during the run: check the tree, then run again",
        _ => "; fix that, then run again (an unfinished iteration is rolled back)",
    }
}

/// Returns the line for a git lock file that is in the way (`.git/index.lock`, a ref's `.lock`).
pub fn git_lock_message(lock: &str) -> String {
    format!(
        "git's lock file {lock} exists: another git command is running, or one was killed; delete it if no git process is running"
    )
}

/// Returns the lock file a failed git operation names, if a lock file is what failed it.
/// libgit2 names the file for a ref (`failed to lock file '<path>.lock' for writing`), not for
/// the index (`the index is locked`).
fn git_lock_file(e: &git2::Error) -> Option<String> {
    let msg = e.message();
    let quoted = msg
        .split('\'')
        .skip(1)
        .step_by(2)
        .find(|p| p.ends_with(".lock"));
    if let Some(p) = quoted {
        return Some(p.to_string());
    }
    (e.code() == git2::ErrorCode::Locked || msg.contains("locked")).then(|| {
        if msg.contains("index") {
            ".git/index.lock"
        } else {
            "a .lock file under .git"
        }
        .to_string()
    })
}

/// Says why a git operation failed and what to do: libgit2's message (without the empty
/// reason some of them end in) and advice, or for a lock file in the way, which file.
fn git_reason(e: &git2::Error) -> String {
    if let Some(lock) = git_lock_file(e) {
        return git_lock_message(&lock);
    }
    let msg = e.message().trim_end().trim_end_matches(':').trim_end();
    format!(
        "{msg}; check `git status` (and `git fsck` if the repository may be damaged), then run again"
    )
}

impl Error {
    /// Returns the process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Interrupted(sig, _) => crate::signal::exit_code(*sig),
            Error::Usage(_)
            | Error::Refused(_)
            | Error::Blocked(_)
            | Error::Io { .. }
            | Error::Git { .. } => exit::BLOCKED,
        }
    }

    /// Returns an I/O error that names the action and path.
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            action,
            path: path.display().to_string(),
            source,
        }
    }

    /// Returns a git error with context.
    pub fn git(context: impl Into<String>, source: git2::Error) -> Error {
        Error::Git {
            context: context.into(),
            source,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds path context to `std::io::Result`.
pub trait IoContext<T> {
    /// Maps an I/O error to [`Error::Io`] naming `action` and `path`.
    fn ctx(self, action: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, action: &'static str, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(action, path, e))
    }
}

/// Adds context to `git2` results.
pub trait GitContext<T> {
    /// Maps a git2 error to [`Error::Git`] with `context`.
    fn git_ctx(self, context: &str) -> Result<T>;
}

impl<T> GitContext<T> for std::result::Result<T, git2::Error> {
    fn git_ctx(self, context: &str) -> Result<T> {
        self.map_err(|e| Error::git(context, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::{ErrorClass, ErrorCode};

    #[test]
    fn a_git_lock_in_the_way_is_named_with_what_to_do() {
        let refs = git2::Error::new(
            ErrorCode::Locked,
            ErrorClass::Os,
            "failed to lock file '/r/.git/refs/heads/main.lock' for writing: ",
        );
        assert_eq!(
            Error::git("commit", refs).to_string(),
            "git: commit: git's lock file /r/.git/refs/heads/main.lock exists: another git command is running, or one was killed; delete it if no git process is running"
        );
        let index = git2::Error::new(
            ErrorCode::Locked,
            ErrorClass::Index,
            "the index is locked; this might be due to a concurrent or crashed process",
        );
        let e = Error::git("write the index", index).to_string();
        assert!(e.contains("git's lock file .git/index.lock exists"), "{e}");
        assert_eq!(e.lines().count(), 1);
    }

    #[test]
    fn another_git_failure_keeps_its_reason_without_a_dangling_colon() {
        let e = git2::Error::new(
            ErrorCode::GenericError,
            ErrorClass::Os,
            "failed to read object: ",
        );
        assert_eq!(
            Error::git("read a tree", e).to_string(),
            "git: read a tree: failed to read object; check `git status` (and `git fsck` if the repository may be damaged), then run again"
        );
    }
}
