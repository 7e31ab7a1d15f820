//! What a killed engine can leave running, and how the next run ends it: the process group it
//! recorded (`autoresearch-results/engine/child.json`), and every process carrying its run token.

use std::fs::File;
use std::io::Read;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::KILL_GRACE;

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
        let start = crate::procfs::process_start_time(pid).unwrap_or(0);
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

/// A supervised child's process group, as recorded on disk while it runs.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupRecord {
    pub pgid: i32,
    /// Start time of the group leader (seconds since the epoch, from sysinfo).
    pub start_time: u64,
}

/// Returns the pids of live processes in process group `pgid` that started at or after
/// `not_before` (seconds since the epoch); Linux `/proc` only.
pub(super) fn group_members(pgid: i32, not_before: u64) -> Vec<i32> {
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
            && crate::procfs::process_start_time(pid as u32).is_some_and(|t| t >= not_before)
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
