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
    #[error("interrupted by {} {}; nothing was recorded and the tree is unchanged", crate::signal::name(*.0), .1)]
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
    #[error("git: {context}: {}{}", source.message(), git_hint(source))]
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

/// What to do about a failed git operation.
fn git_hint(e: &git2::Error) -> &'static str {
    if e.code() == git2::ErrorCode::Locked || e.message().contains(".lock") {
        "; another git process holds a lock: wait for it, or remove a stale lock file if none runs"
    } else {
        "; check `git status` (and `git fsck` if the repository may be damaged), then run again"
    }
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
