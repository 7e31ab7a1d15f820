//! The detached run's side of `launch`: it takes the readiness pipe `launch` passed
//! (`AUTORESEARCH_LAUNCH_FD`), and once preflight has passed and the baseline (or the resume's
//! re-measure) starts, moves its stdout and stderr to the run log and says "ready" on the pipe.
//! A run that refuses to start never says it: it exits, and `launch` reports its message and code.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{IoContext, Result};

/// The variable naming the readiness pipe's descriptor (set by `launch` for its child only).
pub const READY_FD_VAR: &str = "AUTORESEARCH_LAUNCH_FD";

static CHANNEL: Mutex<Option<File>> = Mutex::new(None);
static DETACHED: AtomicBool = AtomicBool::new(false);

/// Returns the run log in the private directory `autoresearch-results/engine/`.
pub fn log_path(private: &Path) -> PathBuf {
    private.join("run.log")
}

/// Returns true when this process is a run started by `launch` (it ignores SIGHUP).
pub fn detached() -> bool {
    DETACHED.load(Ordering::SeqCst)
}

/// Takes the readiness pipe `launch` passed, if any. Call before any thread is started.
pub fn adopt() {
    let Some(value) = std::env::var_os(READY_FD_VAR) else {
        return;
    };
    // SAFETY: called at the top of `run`, before the process starts any thread.
    unsafe { std::env::remove_var(READY_FD_VAR) };
    let Some(fd) = value
        .to_str()
        .and_then(|s| s.parse::<i32>().ok())
        .filter(|&fd| fd > 2)
    else {
        return;
    };
    // Only a pipe: a stray variable must not make the run take over an unrelated descriptor.
    let is_pipe = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .is_ok_and(|t| t.to_string_lossy().starts_with("pipe:"));
    if !is_pipe {
        return;
    }
    // SAFETY: the descriptor is open (checked above) and `launch` passed it to this process for
    // this one use; nothing else here refers to it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // No agent, verify or guard may inherit it (`launch` waits for its end).
    let _ = nix::fcntl::fcntl(
        &owned,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    if let Ok(mut c) = CHANNEL.lock() {
        *c = Some(File::from(owned));
    }
    DETACHED.store(true, Ordering::SeqCst);
}

/// The run has passed preflight and starts its baseline (or its re-measure): when it was
/// launched, its stdout and stderr move to the run log (what it printed so far is copied there
/// first) and `launch` is told the tag and the log. Does nothing for a foreground run.
pub fn announce(private: &Path, repo: &Path, run_tag: &str, resumed: bool) -> Result<()> {
    let Some(mut channel) = CHANNEL.lock().ok().and_then(|mut c| c.take()) else {
        return Ok(());
    };
    let path = log_path(private);
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .ctx("open the run log", &path)?;
    let header = format!(
        "==== {} launched run {run_tag} (pid {}){} ====\n",
        crate::artifacts::state::now_utc(),
        std::process::id(),
        if resumed { ", resuming" } else { "" }
    );
    log.write_all(header.as_bytes()).ctx("write", &path)?;
    let _ = std::io::stdout().flush();
    log.write_all(&early_output()).ctx("write", &path)?;
    nix::unistd::dup2_stdout(&log)
        .and_then(|()| nix::unistd::dup2_stderr(&log))
        .map_err(std::io::Error::from)
        .ctx("redirect the output to", &path)?;
    let ready = serde_json::json!({
        "ready": true,
        "run_tag": run_tag,
        "log": path.display().to_string(),
        "repo": repo.display().to_string(),
        "resumed": resumed,
    });
    // `launch` may be gone (killed while it waited): the run goes on regardless.
    let _ = writeln!(channel, "{ready}");
    Ok(())
}

/// What the run wrote before it was ready: `launch` gives it a temporary file as stdout and
/// stderr (a file, so that a `launch` killed meanwhile cannot break the run's writes).
fn early_output() -> Vec<u8> {
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return Vec::new();
    };
    let file = File::from(fd);
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0u64;
    while let Ok(n) = file.read_at(&mut buf, at) {
        if n == 0 || out.len() > 1024 * 1024 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        at += n as u64;
    }
    out
}
