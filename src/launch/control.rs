//! `stop` (SIGTERM now, or a request file the loop honours between iterations) and `logs`
//! (the tail of the run log, optionally followed until the run ends). Both find the run through
//! its lock; neither takes it.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::artifacts::Paths;
use crate::artifacts::locate;
use crate::artifacts::lock::{self, Holder};
use crate::error::{Error, IoContext, Result, exit};
use crate::output::say;

/// The request file of `stop --after-iteration`, in `autoresearch-results/engine/`.
pub fn request_path(private: &Path) -> PathBuf {
    private.join("stop-request.json")
}

/// A request to end the run after its current iteration, addressed to one process.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    pid: u32,
    start_time: u64,
    requested_at: String,
}

/// Called by the loop between iterations: true when a `stop --after-iteration` addressed to
/// this process is pending (it is used up). A request for another process (a run that has
/// ended) is stale and removed.
pub fn stop_requested(private: &Path) -> bool {
    let path = request_path(private);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return false;
    };
    let me = Holder::me();
    let mine = serde_json::from_str::<Request>(&text)
        .is_ok_and(|r| r.pid == me.pid && r.start_time == me.start_time);
    let _ = std::fs::remove_file(&path);
    mine
}

/// Returns the live holder of the run lock, if a run is live.
fn live(paths: &Paths) -> Option<Holder> {
    lock::live(&paths.lock)
}

/// True once the run `h` has ended: its process is gone (it releases the lock before it prints
/// its last line, so the lock alone does not say it).
fn ended(h: &Holder) -> bool {
    !h.alive()
}

/// What `stop` was asked to do.
pub struct StopArgs<'a> {
    pub repo: Option<&'a Path>,
    pub artifacts_dir: Option<&'a Path>,
    pub after_iteration: bool,
    pub timeout: Option<Duration>,
}

/// The default wait of `stop`: a rollback takes seconds; an iteration may take an agent turn.
fn default_timeout(after_iteration: bool) -> Duration {
    Duration::from_secs(if after_iteration { 2 * 3600 } else { 120 })
}

/// `stop`: ends the live run (now, with a rollback, or after its current iteration) and waits
/// until it has ended. Returns the exit code: 0 ended (or nothing was running), 1 still running
/// when the wait ran out.
pub fn stop(a: &StopArgs<'_>) -> Result<u8> {
    let (repo, paths) = locate(a.repo, a.artifacts_dir)?;
    let Some(h) = live(&paths) else {
        say(&format!(
            "no run is live in {}; nothing to stop",
            repo.root.display()
        ));
        return Ok(exit::OK);
    };
    let tag = super::live::run_tag(&paths).unwrap_or_else(|| "(in its baseline)".into());
    let timeout = a.timeout.unwrap_or(default_timeout(a.after_iteration));
    if a.after_iteration {
        let req = Request {
            pid: h.pid,
            start_time: h.start_time,
            requested_at: crate::artifacts::state::now_utc(),
        };
        let path = request_path(&paths.private);
        let text = serde_json::to_string(&req).unwrap_or_default();
        crate::fsutil::write_atomic(&path, text.as_bytes())?;
        say(&format!(
            "asked run {tag} (pid {}) to stop after its current iteration; waiting up to {}",
            h.pid,
            humantime::format_duration(timeout)
        ));
    } else {
        let pid = i32::try_from(h.pid).unwrap_or(i32::MAX);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .map_err(|e| {
            Error::Refused(format!(
                "cannot signal run {tag} (pid {}): {e}; stop it as the user who started it",
                h.pid
            ))
        })?;
        say(&format!(
            "stopping run {tag} (pid {}): its iteration is rolled back and recorded; waiting up to {}",
            h.pid,
            humantime::format_duration(timeout)
        ));
    }
    let t0 = Instant::now();
    while !ended(&h) {
        if t0.elapsed() >= timeout {
            let left = if a.after_iteration {
                "; the request stays: it stops after this iteration (`codex-autoresearch stop` ends it now)"
            } else {
                "; `kill -9` it only as a last resort (the next `run` repairs what it leaves)"
            };
            eprintln!(
                "codex-autoresearch: error: run {tag} (pid {}) is still running after {}{left}",
                h.pid,
                humantime::format_duration(timeout)
            );
            return Ok(STILL_RUNNING);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let last = crate::artifacts::results::ResultsLog::read(&paths.results)
        .ok()
        .and_then(|(log, _)| log.tail(1).first().map(|r| r.to_line().replace('\t', "  ")));
    say(&format!(
        "run {tag} ended ({:.1}s after the request){}",
        t0.elapsed().as_secs_f64(),
        last.map(|l| format!("; last row: {l}")).unwrap_or_default()
    ));
    Ok(exit::OK)
}

/// `stop`'s exit code when the run is still running after the wait.
pub const STILL_RUNNING: u8 = 1;

/// Returns the last `n` lines of `text` (a final line without newline counts).
pub fn last_lines(text: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &text[text.len()..];
    }
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return &text[i + 1..];
            }
        }
    }
    text
}

/// How much of a long run log `logs` reads to find its last lines.
const TAIL_WINDOW: u64 = 4 * 1024 * 1024;

/// `logs`: prints the last `lines` lines of the run log; with `follow`, then prints new lines
/// as they come until the run ends (or the user interrupts).
pub fn logs(
    repo: Option<&Path>,
    artifacts_dir: Option<&Path>,
    lines: usize,
    follow: bool,
) -> Result<()> {
    let (_, paths) = locate(repo, artifacts_dir)?;
    let path = super::child::log_path(&paths.private);
    let mut file = std::fs::File::open(&path).map_err(|_| {
        Error::Refused(format!(
            "no run log at {}: only runs started with `codex-autoresearch launch` write one (a foreground `run` prints to its terminal)",
            path.display()
        ))
    })?;
    let holder = live(&paths);
    let len = file.metadata().ctx("read", &path)?.len();
    let from = len.saturating_sub(TAIL_WINDOW);
    file.seek(SeekFrom::Start(from)).ctx("read", &path)?;
    let mut text = Vec::new();
    file.read_to_end(&mut text).ctx("read", &path)?;
    let mut out = std::io::stdout().lock();
    if out.write_all(last_lines(&text, lines)).is_err() {
        return Ok(());
    }
    let _ = out.flush();
    let (Some(h), true) = (holder, follow) else {
        return Ok(());
    };
    let mut pos = from + text.len() as u64;
    loop {
        // Read once more after the end, so the run's last lines are printed.
        let done = ended(&h);
        let now = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if now < pos {
            pos = 0; // replaced or truncated: start over
        }
        if now > pos {
            file.seek(SeekFrom::Start(pos)).ctx("read", &path)?;
            let mut fresh = Vec::new();
            file.read_to_end(&mut fresh).ctx("read", &path)?;
            pos += fresh.len() as u64;
            if out.write_all(&fresh).and_then(|()| out.flush()).is_err() {
                return Ok(());
            }
        }
        if done {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_counts_from_the_end() {
        assert_eq!(last_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(last_lines(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(last_lines(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(last_lines(b"a\nb\n", 0), b"");
        assert_eq!(last_lines(b"", 3), b"");
    }

    #[test]
    fn a_request_for_another_process_is_stale_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = request_path(dir.path());
        let other = Request {
            pid: std::process::id(),
            start_time: 1,
            requested_at: "then".into(),
        };
        std::fs::write(&path, serde_json::to_string(&other).unwrap()).unwrap();
        assert!(!stop_requested(dir.path()));
        assert!(!path.exists());
        let me = Holder::me();
        let mine = Request {
            pid: me.pid,
            start_time: me.start_time,
            requested_at: "now".into(),
        };
        std::fs::write(&path, serde_json::to_string(&mine).unwrap()).unwrap();
        assert!(stop_requested(dir.path()));
        assert!(!path.exists(), "used up");
        assert!(!stop_requested(dir.path()));
    }
}
