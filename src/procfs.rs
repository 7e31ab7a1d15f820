//! Finding live processes through Linux `/proc`: by an exact environment entry (the run token the
//! engine gives its children) and by an open file (who holds a lock file). Read-only; processes
//! of other users that cannot be inspected are skipped. Also a process's start time, which with
//! its pid names it without ambiguity.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System};

/// Returns the start time of a live, non-zombie process.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let mut sys = System::new().ok()?;
    let p = Pid::from_u32(pid);
    sys.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[p]),
        true,
        ProcessRefreshKind::nothing(),
    );
    let proc_ = sys.process(p)?;
    if matches!(proc_.status(), ProcessStatus::Zombie | ProcessStatus::Dead) {
        return None;
    }
    Some(proc_.start_time())
}

/// Returns the pids of all processes but this one, lowest first.
fn other_pids() -> Vec<u32> {
    let me = std::process::id();
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| p != me)
        .collect();
    pids.sort_unstable();
    pids
}

/// Returns true when the environment of `pid` holds exactly `entry` (`NAME=value`). A zombie has
/// no environment left, so it never matches.
pub fn environ_has(pid: u32, entry: &str) -> bool {
    fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|b| *b == 0).any(|e| e == entry.as_bytes()))
}

/// Returns the live processes (this one excepted) whose environment holds exactly `entry`.
pub fn pids_with_env(entry: &str) -> Vec<u32> {
    other_pids()
        .into_iter()
        .filter(|&p| environ_has(p, entry))
        .collect()
}

/// Returns the processes (this one excepted) that have `path` open, matched by device and inode.
pub fn pids_with_open_file(path: &Path) -> Vec<u32> {
    let Ok(target) = fs::metadata(path) else {
        return Vec::new();
    };
    let same = |m: &fs::Metadata| m.dev() == target.dev() && m.ino() == target.ino();
    other_pids()
        .into_iter()
        .filter(|p| {
            fs::read_dir(format!("/proc/{p}/fd")).is_ok_and(|fds| {
                fds.flatten()
                    .any(|fd| fs::metadata(fd.path()).is_ok_and(|m| same(&m)))
            })
        })
        .collect()
}

/// Returns the command name of a process (`/proc/<pid>/comm`), or `?`.
pub fn comm(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim_end().to_string())
        .unwrap_or_else(|_| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn finds_a_process_by_its_exact_environment_entry_and_by_an_open_file() {
        let dir = tempfile::tempdir().unwrap();
        let held = dir.path().join("held");
        std::fs::write(&held, "").unwrap();
        let entry = format!("PROCFS_TEST_TOKEN=find-{}", std::process::id());
        let (name, value) = entry.split_once('=').unwrap();
        let mut child = Command::new("sh")
            .args(["-c", "exec sleep 30 < \"$1\"", "sh"])
            .arg(&held)
            .env(name, value)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        // Wait for the exec (the shell's environment and redirection are the same either way).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while comm(pid) != "sleep" && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(environ_has(pid, &entry));
        assert_eq!(pids_with_env(&entry), vec![pid]);
        assert!(pids_with_env(&format!("{entry}x")).is_empty(), "exact only");
        assert!(pids_with_env(&entry[..entry.len() - 1]).is_empty());
        assert_eq!(pids_with_open_file(&held), vec![pid]);
        assert_eq!(comm(pid), "sleep");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(pids_with_env(&entry).is_empty());
        assert!(pids_with_open_file(&held).is_empty());
        assert!(pids_with_open_file(&dir.path().join("missing")).is_empty());
    }
}
