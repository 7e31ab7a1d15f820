//! Supervised child processes: own process group, stdin fed then closed (or null), stdout and
//! stderr drained by threads into capped log files plus a bounded in-memory tail, wall-clock and idle
//! timeouts, SIGINT/SIGTERM of the engine, and a group kill (TERM, grace, KILL) that also reaps
//! grandchildren holding the pipes. Every agent, verify and guard process goes through [`run`],
//! and carries the run token ([`RUN_TOKEN_VAR`]) by which a later run finds what a killed one left.

mod leftover;

pub use leftover::{
    GroupRecord, RUN_TOKEN_VAR, has_run_token, kill_recorded_group, kill_run_processes,
    run_processes, run_token,
};

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;

use crate::caplog::CappedLog;

/// Time a timed-out group gets between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(3);
/// Time the pipes may stay open after the leader exits before the group is killed.
const LEAK_GRACE: Duration = Duration::from_millis(500);
/// How often the supervisor looks at the signal flag and the timeouts.
const TICK: Duration = Duration::from_millis(100);
/// Default bounded tail kept in memory per stream.
pub const DEFAULT_TAIL: usize = 1 << 20;
/// Default size limit of each log file (`AUTORESEARCH_LOG_CAP`).
pub const DEFAULT_LOG_CAP: u64 = 8 << 20;
/// Smallest accepted log cap.
pub const MIN_LOG_CAP: u64 = 1 << 20;

/// The log cap new specs start with; set once per run from `AUTORESEARCH_LOG_CAP`.
static LOG_CAP: AtomicU64 = AtomicU64::new(DEFAULT_LOG_CAP);

/// Sets the log cap of every spec created from now on (at least [`MIN_LOG_CAP`]).
pub fn set_log_cap(bytes: u64) {
    LOG_CAP.store(bytes.max(MIN_LOG_CAP), Ordering::Relaxed);
}

/// What to run and how.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Program and arguments.
    pub argv: Vec<OsString>,
    pub cwd: PathBuf,
    /// Extra environment variables.
    pub env: Vec<(OsString, OsString)>,
    /// Bytes written to stdin before it is closed; `None` gives `/dev/null`.
    pub stdin: Option<Vec<u8>>,
    /// Where stdout goes on disk (the first and last part when longer than `log_cap`).
    pub stdout_log: Option<PathBuf>,
    /// Where stderr goes on disk; the same path as `stdout_log` interleaves both in one file.
    pub stderr_log: Option<PathBuf>,
    /// Wall-clock limit.
    pub timeout: Option<Duration>,
    /// Limit on time without any output.
    pub idle_timeout: Option<Duration>,
    /// With an idle timeout: only a completed stdout line counts as activity (an event stream
    /// whose process keeps logging to stderr is still idle).
    pub idle_on_stdout_lines: bool,
    /// Bytes of each stream kept in memory.
    pub tail_bytes: usize,
    /// Size limit of each log file: past it the middle is cut, replaced by a one-line note.
    pub log_cap: u64,
    /// Where to record the child's process group while it runs (`{"pgid", "start_time"}`), so a
    /// later process can kill the group if this one dies first; removed once the group is gone.
    pub group_record: Option<PathBuf>,
}

impl Spec {
    /// Returns a spec that runs `command` with `sh -c` in `cwd`.
    pub fn shell(command: &str, cwd: &Path) -> Spec {
        Spec {
            argv: vec!["sh".into(), "-c".into(), command.into()],
            cwd: cwd.to_path_buf(),
            env: Vec::new(),
            stdin: None,
            stdout_log: None,
            stderr_log: None,
            timeout: None,
            idle_timeout: None,
            idle_on_stdout_lines: false,
            tail_bytes: DEFAULT_TAIL,
            log_cap: LOG_CAP.load(Ordering::Relaxed),
            group_record: None,
        }
    }

    /// Returns a spec that runs `argv` directly in `cwd`.
    pub fn argv(argv: Vec<OsString>, cwd: &Path) -> Spec {
        Spec {
            argv,
            ..Spec::shell("", cwd)
        }
    }
}

/// How a supervised process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Exited with this status code.
    Exited(i32),
    /// Killed by this signal (not by us).
    Signaled(i32),
    /// The wall-clock timeout expired; the group was killed.
    TimedOut,
    /// No output for the idle timeout; the group was killed.
    IdleTimedOut,
    /// The engine received this signal; the group was killed.
    Interrupted(i32),
}

impl End {
    /// Returns true for a clean exit with status 0.
    pub fn success(self) -> bool {
        self == End::Exited(0)
    }

    /// Returns a short human description, e.g. `exit 1`, `timed out`.
    pub fn describe(self) -> String {
        match self {
            End::Exited(c) => format!("exit {c}"),
            End::Signaled(s) => format!("killed by signal {s}"),
            End::TimedOut => "timed out".to_string(),
            End::IdleTimedOut => "idle timeout (no output)".to_string(),
            End::Interrupted(s) => format!("interrupted by {}", crate::engine::signal_name(s)),
        }
    }
}

/// The result of a supervised run.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub end: End,
    pub duration: Duration,
    /// The last bytes of stdout (lossy UTF-8).
    pub stdout: String,
    /// The last bytes of stderr (lossy UTF-8).
    pub stderr: String,
    /// True when the stream held more than the in-memory tail.
    pub truncated: bool,
}

impl Outcome {
    /// Returns the last `n` non-empty lines of stdout and stderr, for logs and descriptions.
    pub fn last_lines(&self, n: usize) -> String {
        let mut lines: Vec<&str> = self
            .stdout
            .lines()
            .chain(self.stderr.lines())
            .filter(|l| !l.trim().is_empty())
            .collect();
        let start = lines.len().saturating_sub(n);
        lines.drain(..start);
        lines.join("\n")
    }
}

#[derive(Default)]
struct Tail {
    buf: Vec<u8>,
    cap: usize,
    truncated: bool,
}

impl Tail {
    fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        if self.buf.len() > self.cap.saturating_mul(2).max(8192) {
            let cut = self.buf.len() - self.cap;
            self.buf.drain(..cut);
            self.truncated = true;
        }
    }

    fn text(&self) -> String {
        let start = self.buf.len().saturating_sub(self.cap);
        String::from_utf8_lossy(&self.buf[start..]).into_owned()
    }
}

type SharedLog = Arc<Mutex<CappedLog>>;

/// What output counts as activity for the idle timeout.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Counts {
    Any,
    Lines,
    Nothing,
}

fn spawn_reader(
    mut stream: impl Read + Send + 'static,
    (log, tail): (Option<SharedLog>, Arc<Mutex<Tail>>),
    (activity, counts): (Arc<AtomicU64>, Counts),
    start: Instant,
    done: mpsc::Sender<()>,
) {
    thread::spawn(move || {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    if counts == Counts::Any
                        || (counts == Counts::Lines && chunk[..n].contains(&b'\n'))
                    {
                        activity.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
                    }
                    if let Some(log) = &log
                        && let Ok(mut f) = log.lock()
                    {
                        f.write(&chunk[..n]);
                    }
                    if let Ok(mut t) = tail.lock() {
                        t.push(&chunk[..n]);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let _ = done.send(());
    });
}

fn open_log(path: &Path, cap: u64) -> std::io::Result<SharedLog> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    Ok(Arc::new(Mutex::new(CappedLog::create(path, cap)?)))
}

/// Writes the kept tail of a log (idempotent; a shared log is finished once).
fn finish_log(log: Option<&SharedLog>) {
    if let Some(log) = log
        && let Ok(mut l) = log.lock()
    {
        l.finish();
    }
}

fn signal_group(pgid: i32, sig: Signal) {
    // ESRCH (group already gone) is the normal case after a clean exit.
    let _ = killpg(Pid::from_raw(pgid), sig);
}

/// A started child and what reads its output.
struct Started {
    child: std::process::Child,
    pgid: i32,
    start: Instant,
    logs: [Option<SharedLog>; 2],
    out_tail: Arc<Mutex<Tail>>,
    err_tail: Arc<Mutex<Tail>>,
    /// When output last counted as activity (ms since `start`).
    activity: Arc<AtomicU64>,
    /// One message per output stream that reached its end.
    done_rx: mpsc::Receiver<()>,
    /// A message once the leader exited (not reaped).
    exit_rx: mpsc::Receiver<()>,
}

/// Opens the logs (a shared one when stdout and stderr go to the same file).
fn open_logs(spec: &Spec) -> std::io::Result<[Option<SharedLog>; 2]> {
    let cap = spec.log_cap;
    let stdout_log = spec
        .stdout_log
        .as_deref()
        .map(|p| open_log(p, cap))
        .transpose()?;
    let stderr_log = match (&spec.stderr_log, &spec.stdout_log, &stdout_log) {
        (Some(e), Some(o), Some(shared)) if e == o => Some(Arc::clone(shared)),
        (Some(e), _, _) => Some(open_log(e, cap)?),
        (None, _, _) => None,
    };
    Ok([stdout_log, stderr_log])
}

/// Starts the child in its own process group with the run token, records the group, feeds
/// stdin from a thread, and starts the readers and the exit watcher.
fn start(spec: &Spec) -> std::io::Result<Started> {
    let (program, args) = spec
        .argv
        .split_first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"))?;
    let logs = open_logs(spec)?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(&spec.cwd)
        .process_group(0)
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.env(RUN_TOKEN_VAR, run_token());
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    let pgid = child.id() as i32;
    crate::signal::set_child_group(pgid);
    if let Some(path) = &spec.group_record {
        let record = GroupRecord {
            pgid,
            start_time: crate::procfs::process_start_time(child.id()).unwrap_or(0),
        };
        // No fsync: the record only matters when this process dies and the machine does not.
        let _ = crate::fsutil::write_quick(
            path,
            serde_json::to_string(&record)
                .unwrap_or_default()
                .as_bytes(),
        );
    }
    if let (Some(input), Some(mut stdin)) = (spec.stdin.clone(), child.stdin.take()) {
        // A separate thread: a child that never reads stdin must not block the supervisor.
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let activity = Arc::new(AtomicU64::new(0));
    let out_tail = Arc::new(Mutex::new(Tail {
        cap: spec.tail_bytes,
        ..Tail::default()
    }));
    let err_tail = Arc::new(Mutex::new(Tail {
        cap: spec.tail_bytes.min(256 * 1024),
        ..Tail::default()
    }));
    let (done_tx, done_rx) = mpsc::channel();
    let (out_counts, err_counts) = if spec.idle_on_stdout_lines {
        (Counts::Lines, Counts::Nothing)
    } else {
        (Counts::Any, Counts::Any)
    };
    if let Some(out) = child.stdout.take() {
        let reader = (logs[0].clone(), Arc::clone(&out_tail));
        spawn_reader(
            out,
            reader,
            (Arc::clone(&activity), out_counts),
            start,
            done_tx.clone(),
        );
    }
    if let Some(err) = child.stderr.take() {
        let reader = (logs[1].clone(), Arc::clone(&err_tail));
        spawn_reader(
            err,
            reader,
            (Arc::clone(&activity), err_counts),
            start,
            done_tx.clone(),
        );
    }
    drop(done_tx);
    // Wait for the leader without reaping it: while it is a zombie its pid, and so the group id,
    // cannot be reused, which makes the group kills below safe.
    let (exit_tx, exit_rx) = mpsc::channel();
    thread::spawn(move || {
        while let Err(nix::errno::Errno::EINTR) = waitid(
            Id::Pid(Pid::from_raw(pgid)),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
        ) {}
        let _ = exit_tx.send(());
    });
    Ok(Started {
        child,
        pgid,
        start,
        logs,
        out_tail,
        err_tail,
        activity,
        done_rx,
        exit_rx,
    })
}

/// Waits for the leader to exit; returns why it must be stopped instead (a timeout, a signal).
fn supervise(spec: &Spec, c: &Started) -> Option<End> {
    loop {
        let now = c.start.elapsed();
        let mut wait = TICK;
        if let Some(limit) = spec.timeout {
            if now >= limit {
                return Some(End::TimedOut);
            }
            wait = wait.min(limit - now);
        }
        if let Some(idle) = spec.idle_timeout {
            let last = Duration::from_millis(c.activity.load(Ordering::Relaxed));
            let quiet = now.saturating_sub(last);
            if quiet >= idle {
                return Some(End::IdleTimedOut);
            }
            wait = wait.min(idle - quiet);
        }
        if let Some(sig) = crate::signal::pending() {
            return Some(End::Interrupted(sig));
        }
        match c.exit_rx.recv_timeout(wait.max(Duration::from_millis(1))) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return None,
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

/// Stops the group (TERM, grace, KILL) when it must be stopped, then lets the pipes drain a
/// moment and kills whatever is left of the group (a grandchild holding the pipes open must not
/// hang the loop); a descendant that left the group and still holds a pipe is abandoned.
fn reap_group(c: &Started, stop: bool) {
    if stop {
        signal_group(c.pgid, Signal::SIGTERM);
        if c.exit_rx.recv_timeout(KILL_GRACE).is_err() {
            signal_group(c.pgid, Signal::SIGKILL);
            let _ = c.exit_rx.recv_timeout(Duration::from_secs(30));
        }
    }
    let deadline = Instant::now() + LEAK_GRACE;
    let mut open_streams = 2;
    while open_streams > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.done_rx.recv_timeout(left) {
            Ok(()) => open_streams -= 1,
            Err(_) => break,
        }
    }
    signal_group(c.pgid, Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(2);
    while open_streams > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.done_rx.recv_timeout(left) {
            Ok(()) => open_streams -= 1,
            Err(_) => break,
        }
    }
}

/// Runs `spec` under supervision and returns how it ended.
///
/// Returns `Err` only when the process could not be started (or a log file could not be created).
pub fn run(spec: &Spec) -> std::io::Result<Outcome> {
    let mut c = start(spec)?;
    let reason = supervise(spec, &c);
    reap_group(&c, reason.is_some());
    // Abandoned readers write nothing more; the logs are complete here.
    c.logs.iter().for_each(|l| finish_log(l.as_ref()));
    let status = c.child.wait()?;
    crate::signal::set_child_group(0);
    if let Some(path) = &spec.group_record {
        let _ = std::fs::remove_file(path);
    }
    let duration = c.start.elapsed();
    let end = reason.unwrap_or_else(|| match (status.code(), status.signal()) {
        (Some(code), _) => End::Exited(code),
        (None, Some(s)) => End::Signaled(s),
        (None, None) => End::Exited(-1),
    });
    let tail = |t: &Arc<Mutex<Tail>>, what: &str| {
        t.lock()
            .map(|t| (t.text(), t.truncated))
            .map_err(|_| std::io::Error::other(format!("{what} tail poisoned")))
    };
    let (stdout, truncated_out) = tail(&c.out_tail, "stdout")?;
    let (stderr, truncated_err) = tail(&c.err_tail, "stderr")?;
    Ok(Outcome {
        end,
        duration,
        stdout,
        stderr,
        truncated: truncated_out || truncated_err,
    })
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
