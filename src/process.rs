//! Supervised child processes: own process group, stdin fed then closed (or null), stdout and
//! stderr drained by threads into capped log files plus a bounded in-memory tail, wall-clock and idle
//! timeouts, SIGINT/SIGTERM of the engine, and a group kill (TERM, grace, KILL) that also reaps
//! grandchildren holding the pipes. Every agent, verify and guard process goes through [`run`],
//! and carries the run token ([`RUN_TOKEN_VAR`]) by which a later run finds what a killed one left.

use std::ffi::OsString;
use std::fs::File;
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

/// The environment variable that carries this engine's run token to every child.
pub const RUN_TOKEN_VAR: &str = "AUTORESEARCH_RUN_TOKEN";

/// Returns this process's run token: `<pid>-<start time>-<random>`, the same for its whole life.
/// Every child started by [`run`] gets it in [`RUN_TOKEN_VAR`] (and passes it on to its own
/// children); the run lock records it, so that the next run can find every process a killed
/// engine left, even one that was never recorded or that left its process group.
pub fn run_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        let pid = std::process::id();
        let start = crate::artifacts::lock::process_start_time(pid).unwrap_or(0);
        let mut random = [0u8; 8];
        let read = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut random));
        let random = match read {
            Ok(()) => u64::from_le_bytes(random),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        };
        format!("{pid}-{start}-{random:016x}")
    })
}

/// Returns the live processes (this one excepted) that carry run token `token`.
pub fn run_processes(token: &str) -> Vec<u32> {
    crate::procfs::pids_with_env(&format!("{RUN_TOKEN_VAR}={token}"))
}

/// Returns true when process `pid` carries run token `token`.
pub fn has_run_token(pid: u32, token: &str) -> bool {
    crate::procfs::environ_has(pid, &format!("{RUN_TOKEN_VAR}={token}"))
}

/// Ends every process (this one excepted) that carries run token `token`: the children of a
/// killed engine and their descendants (TERM, grace, KILL). Only an exact match of the token is
/// signalled. Returns how many processes were found.
pub fn kill_run_processes(token: &str) -> usize {
    let found = run_processes(token);
    if found.is_empty() {
        return 0;
    }
    let signal_all = |pids: &[u32], sig: Signal| {
        for pid in pids {
            let _ = nix::sys::signal::kill(Pid::from_raw(*pid as i32), sig);
        }
    };
    let wait_gone = |grace: Duration| {
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && !run_processes(token).is_empty() {
            thread::sleep(Duration::from_millis(50));
        }
    };
    signal_all(&found, Signal::SIGTERM);
    wait_gone(KILL_GRACE);
    signal_all(&run_processes(token), Signal::SIGKILL);
    // SIGKILL is delivered asynchronously: wait a moment so callers may rely on "none left".
    wait_gone(Duration::from_secs(2));
    found.len()
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
            End::Interrupted(s) => format!("interrupted by {}", crate::signal::name(s)),
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
    log: Option<SharedLog>,
    tail: Arc<Mutex<Tail>>,
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

/// A supervised child's process group, as recorded on disk while it runs.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupRecord {
    pub pgid: i32,
    /// Start time of the group leader (seconds since the epoch, from sysinfo).
    pub start_time: u64,
}

/// Returns the pids of live processes in process group `pgid` that started at or after
/// `not_before` (seconds since the epoch); Linux `/proc` only.
fn group_members(pgid: i32, not_before: u64) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp ...`: comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(pgid)
            && fields.first() != Some(&"Z")
            && crate::artifacts::lock::process_start_time(pid as u32)
                .is_some_and(|t| t >= not_before)
        {
            out.push(pid);
        }
    }
    out
}

/// Kills what is left of a recorded process group whose supervisor died (TERM, grace, KILL).
/// Only processes of that group started no earlier than its leader are touched, so a reused
/// group id is never signalled. Returns how many processes were found.
pub fn kill_recorded_group(record: &GroupRecord) -> usize {
    let members = group_members(record.pgid, record.start_time);
    if members.is_empty() {
        return 0;
    }
    for pid in &members {
        let _ = nix::sys::signal::kill(Pid::from_raw(*pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + KILL_GRACE;
    while Instant::now() < deadline && !group_members(record.pgid, record.start_time).is_empty() {
        thread::sleep(Duration::from_millis(50));
    }
    for pid in group_members(record.pgid, record.start_time) {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    members.len()
}

/// Runs `spec` under supervision and returns how it ended.
///
/// Returns `Err` only when the process could not be started (or a log file could not be created).
pub fn run(spec: &Spec) -> std::io::Result<Outcome> {
    let (program, args) = spec
        .argv
        .split_first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"))?;
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
    let logs = [stdout_log.clone(), stderr_log.clone()];

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
            start_time: crate::artifacts::lock::process_start_time(child.id()).unwrap_or(0),
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
    if let Some(out) = child.stdout.take() {
        spawn_reader(
            out,
            stdout_log,
            Arc::clone(&out_tail),
            (
                Arc::clone(&activity),
                if spec.idle_on_stdout_lines {
                    Counts::Lines
                } else {
                    Counts::Any
                },
            ),
            start,
            done_tx.clone(),
        );
    }
    if let Some(err) = child.stderr.take() {
        spawn_reader(
            err,
            stderr_log,
            Arc::clone(&err_tail),
            (
                Arc::clone(&activity),
                if spec.idle_on_stdout_lines {
                    Counts::Nothing
                } else {
                    Counts::Any
                },
            ),
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

    let mut reason = None;
    loop {
        let now = start.elapsed();
        let mut wait = TICK;
        if let Some(limit) = spec.timeout {
            if now >= limit {
                reason = Some(End::TimedOut);
                break;
            }
            wait = wait.min(limit - now);
        }
        if let Some(idle) = spec.idle_timeout {
            let quiet = now.saturating_sub(Duration::from_millis(activity.load(Ordering::Relaxed)));
            if quiet >= idle {
                reason = Some(End::IdleTimedOut);
                break;
            }
            wait = wait.min(idle - quiet);
        }
        if let Some(sig) = crate::signal::pending() {
            reason = Some(End::Interrupted(sig));
            break;
        }
        match exit_rx.recv_timeout(wait.max(Duration::from_millis(1))) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
    }

    if reason.is_some() {
        signal_group(pgid, Signal::SIGTERM);
        if exit_rx.recv_timeout(KILL_GRACE).is_err() {
            signal_group(pgid, Signal::SIGKILL);
            let _ = exit_rx.recv_timeout(Duration::from_secs(30));
        }
    }

    // The leader is gone. Give the pipes a moment to drain, then kill whatever is left of the
    // group (a grandchild holding the pipes open must not hang the loop).
    let deadline = Instant::now() + LEAK_GRACE;
    let mut open_streams = 2;
    while open_streams > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        match done_rx.recv_timeout(left) {
            Ok(()) => open_streams -= 1,
            Err(_) => break,
        }
    }
    signal_group(pgid, Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(2);
    while open_streams > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        match done_rx.recv_timeout(left) {
            Ok(()) => open_streams -= 1,
            // A descendant that left our group still holds a pipe: abandon its reader thread.
            Err(_) => break,
        }
    }

    // Abandoned readers write nothing more; the logs are complete here.
    logs.iter().for_each(|l| finish_log(l.as_ref()));

    let status = child.wait()?;
    crate::signal::set_child_group(0);
    if let Some(path) = &spec.group_record {
        let _ = std::fs::remove_file(path);
    }
    let duration = start.elapsed();
    let end = reason.unwrap_or_else(|| match (status.code(), status.signal()) {
        (Some(c), _) => End::Exited(c),
        (None, Some(s)) => End::Signaled(s),
        (None, None) => End::Exited(-1),
    });
    let (stdout, truncated_out) = {
        let t = out_tail
            .lock()
            .map_err(|_| std::io::Error::other("stdout tail poisoned"))?;
        (t.text(), t.truncated)
    };
    let (stderr, truncated_err) = {
        let t = err_tail
            .lock()
            .map_err(|_| std::io::Error::other("stderr tail poisoned"))?;
        (t.text(), t.truncated)
    };
    Ok(Outcome {
        end,
        duration,
        stdout,
        stderr,
        truncated: truncated_out || truncated_err,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(cmd: &str) -> Spec {
        Spec::shell(cmd, Path::new("/tmp"))
    }

    #[test]
    fn captures_exit_code_and_streams() {
        let o = run(&sh("echo out; echo err >&2; exit 3")).unwrap();
        assert_eq!(o.end, End::Exited(3));
        assert_eq!(o.stdout, "out\n");
        assert_eq!(o.stderr, "err\n");
    }

    #[test]
    fn feeds_stdin_then_closes_it() {
        let mut s = sh("cat; echo done");
        s.stdin = Some(b"hello\n".to_vec());
        let o = run(&s).unwrap();
        assert_eq!(o.stdout, "hello\ndone\n");
    }

    #[test]
    fn stdin_is_null_by_default() {
        let o = run(&sh("cat; echo eof")).unwrap();
        assert_eq!(o.stdout, "eof\n");
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let mut s = sh("sleep 30 & sleep 30; echo never");
        s.timeout = Some(Duration::from_millis(300));
        let o = run(&s).unwrap();
        assert_eq!(o.end, End::TimedOut);
        assert!(o.duration < Duration::from_secs(20), "{:?}", o.duration);
    }

    #[test]
    fn term_ignoring_child_gets_killed() {
        let mut s = sh("trap '' TERM; while :; do sleep 0.1; done");
        s.timeout = Some(Duration::from_millis(200));
        let o = run(&s).unwrap();
        assert_eq!(o.end, End::TimedOut);
    }

    #[test]
    fn grandchild_holding_the_pipe_cannot_hang() {
        // The shell exits at once; its background child keeps stdout open for 60 s.
        let o = run(&sh("sleep 60 & echo 7")).unwrap();
        assert_eq!(o.end, End::Exited(0));
        assert_eq!(o.stdout, "7\n");
        assert!(o.duration < Duration::from_secs(20), "{:?}", o.duration);
    }

    #[test]
    fn idle_timeout_fires_without_output() {
        let mut s = sh("echo start; sleep 30");
        s.idle_timeout = Some(Duration::from_millis(300));
        let o = run(&s).unwrap();
        assert_eq!(o.end, End::IdleTimedOut);
        assert_eq!(o.stdout, "start\n");
    }

    #[test]
    fn an_event_stream_is_idle_while_only_stderr_or_a_partial_line_moves() {
        // Half a line on stdout, then stderr chatter: no new event line, so idle.
        let mut s = sh("printf '{\"type\":'; while :; do echo log >&2; printf x; sleep 0.1; done");
        s.idle_timeout = Some(Duration::from_millis(400));
        // Counting stderr or partial lines would run into the wall-clock limit instead.
        s.timeout = Some(Duration::from_secs(10));
        s.idle_on_stdout_lines = true;
        let o = run(&s).unwrap();
        assert_eq!(o.end, End::IdleTimedOut);
        // Whole lines keep it alive.
        let mut s = sh("for i in 1 2 3 4 5 6; do echo '{}'; sleep 0.1; done");
        s.idle_timeout = Some(Duration::from_millis(1500));
        s.idle_on_stdout_lines = true;
        assert_eq!(run(&s).unwrap().end, End::Exited(0));
    }

    #[test]
    fn output_keeps_the_idle_timer_alive() {
        let mut s = sh("for i in 1 2 3 4 5 6; do echo $i; sleep 0.1; done");
        s.idle_timeout = Some(Duration::from_millis(1500));
        let o = run(&s).unwrap();
        assert_eq!(o.end, End::Exited(0));
    }

    #[test]
    fn tail_is_bounded_but_log_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out.log");
        let mut s = sh("i=0; while [ $i -lt 20000 ]; do echo line-$i; i=$((i+1)); done");
        s.tail_bytes = 1024;
        s.stdout_log = Some(log.clone());
        s.stderr_log = Some(log.clone());
        let o = run(&s).unwrap();
        assert!(o.truncated);
        assert!(o.stdout.len() <= 1024);
        assert!(o.stdout.ends_with("line-19999\n"));
        let full = std::fs::read_to_string(&log).unwrap();
        assert_eq!(full.lines().count(), 20000);
    }

    #[test]
    fn a_flood_of_output_leaves_capped_logs_with_head_note_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (out_log, err_log) = (dir.path().join("out.log"), dir.path().join("err.log"));
        // About 50 MB on stdout and 20 MB on stderr.
        let mut s = sh("seq 1 6500000; seq 1 2800000 >&2");
        s.log_cap = 8 << 20;
        s.stdout_log = Some(out_log.clone());
        s.stderr_log = Some(err_log.clone());
        let o = run(&s).unwrap();
        assert_eq!(o.end, End::Exited(0));
        assert!(o.stdout.len() <= DEFAULT_TAIL && o.stderr.len() <= 256 * 1024);
        for (log, last) in [(out_log, 6_500_000u64), (err_log, 2_800_000)] {
            let text = std::fs::read_to_string(&log).unwrap();
            assert!(text.len() as u64 <= (8 << 20) + 200, "{}", text.len());
            let (head, rest) = text.split_once("[... ").expect("a cut note");
            let (note, tail) = rest.split_once('\n').unwrap();
            assert!(
                note.ends_with(" bytes cut by codex-autoresearch: logs are capped at 8 MiB (AUTORESEARCH_LOG_CAP) ...]"),
                "{note}"
            );
            let numbers =
                |t: &str| -> Vec<u64> { t.lines().filter_map(|l| l.parse().ok()).collect() };
            let (head, tail) = (numbers(head), numbers(tail));
            assert_eq!(head[..3], [1, 2, 3]);
            // The head's last line may be cut short; the lines before it are all there.
            assert!(head[..head.len() - 1].windows(2).all(|w| w[1] == w[0] + 1));
            assert_eq!(tail.last(), Some(&last));
            assert!(tail.windows(2).all(|w| w[1] == w[0] + 1));
            assert!(tail.len() > 100_000, "about 4 MiB of tail: {}", tail.len());
        }
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let s = Spec::argv(vec!["/nonexistent/prog".into()], Path::new("/tmp"));
        assert!(run(&s).is_err());
    }

    #[test]
    fn an_orphaned_group_is_killed_from_its_record() {
        // A group whose supervisor "died": started detached here, then killed from the record.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 60 & sleep 60"])
            .process_group(0)
            .stdout(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let record = GroupRecord {
            pgid: child.id() as i32,
            start_time: crate::artifacts::lock::process_start_time(child.id()).unwrap(),
        };
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            kill_recorded_group(&record) >= 2,
            "the leader and its background child"
        );
        let _ = child.wait();
        assert!(group_members(record.pgid, record.start_time).is_empty());
        // A record whose processes started later than anything in the group touches nothing.
        let later = GroupRecord {
            start_time: u64::MAX,
            ..record
        };
        assert_eq!(kill_recorded_group(&later), 0);
    }

    #[test]
    fn every_child_carries_the_run_token_and_no_descriptor_of_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let lock_path = dir.path().join("lock");
        let (_lock, _) = crate::artifacts::lock::Lock::acquire(&lock_path).unwrap();
        let o = run(&sh(
            "echo \"$AUTORESEARCH_RUN_TOKEN\"; for f in /proc/$$/fd/*; do readlink \"$f\"; done",
        ))
        .unwrap();
        let mut lines = o.stdout.lines();
        assert_eq!(lines.next(), Some(run_token()));
        assert!(run_token().starts_with(&format!("{}-", std::process::id())));
        assert!(
            !o.stdout.contains(&*lock_path.to_string_lossy()),
            "the lock's descriptor is close-on-exec: {}",
            o.stdout
        );
    }

    #[test]
    fn the_processes_of_a_dead_run_are_found_by_token_and_ended() {
        let token = format!("test-{}-orphans", std::process::id());
        // An orphan that ignores SIGTERM, and one that left the process group; a process with a
        // token that merely starts with ours is not touched.
        let spawn = |script: &str, token: &str| {
            Command::new("sh")
                .args(["-c", script])
                .env(RUN_TOKEN_VAR, token)
                .process_group(0)
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        };
        let mut stubborn = spawn("trap '' TERM; while :; do sleep 0.05; done", &token);
        let mut plain = spawn("exec sleep 60", &token);
        let mut other = spawn("exec sleep 60", &format!("{token}-2"));
        let mut found = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && found.len() < 2 {
            thread::sleep(Duration::from_millis(20));
            found = run_processes(&token);
        }
        assert!(found.contains(&stubborn.id()) && found.contains(&plain.id()));
        assert!(!found.contains(&other.id()));
        assert!(has_run_token(plain.id(), &token));
        assert!(kill_run_processes(&token) >= 2);
        assert!(run_processes(&token).is_empty());
        assert_eq!(stubborn.wait().unwrap().signal(), Some(9));
        assert_eq!(plain.wait().unwrap().signal(), Some(15));
        assert_eq!(
            other.try_wait().unwrap(),
            None,
            "another token is left alone"
        );
        assert_eq!(kill_run_processes(&token), 0);
        other.kill().unwrap();
        other.wait().unwrap();
    }

    #[test]
    fn signal_exit_is_reported() {
        let o = run(&sh("kill -9 $$")).unwrap();
        assert_eq!(o.end, End::Signaled(9));
    }
}
