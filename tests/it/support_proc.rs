//! Test harness: background runs of the binary, signals and process inspection (crash, resume
//! and launch tests).

#![allow(dead_code)]

use std::fs;
use std::path::Path;

use super::*;

/// How long a test waits for a marker file or for a process to end before failing.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// A run of the binary in the background; stdout and stderr go to files in the aux directory.
pub struct Running {
    pub child: std::process::Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Running {
    /// Returns the engine's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn collect(&self, code: i32) -> Run {
        Run {
            code,
            stdout: fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: fs::read_to_string(&self.stderr).unwrap_or_default(),
        }
    }

    /// Waits until `path` exists; panics (after killing the run) if the run ends first or the
    /// file does not appear within [`PATIENCE`].
    #[track_caller]
    pub fn wait_for(&mut self, path: &Path) {
        let end = std::time::Instant::now() + PATIENCE;
        loop {
            if path.exists() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let r = self.collect(status.code().unwrap_or(-1));
                panic!(
                    "the run ended (exit {}) before {} appeared\n--- stdout\n{}\n--- stderr\n{}",
                    r.code,
                    path.display(),
                    r.stdout,
                    r.stderr
                );
            }
            if std::time::Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let r = self.collect(-1);
                panic!(
                    "{} did not appear within {PATIENCE:?}\n--- stdout\n{}\n--- stderr\n{}",
                    path.display(),
                    r.stdout,
                    r.stderr
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Sends `sig` to the engine process only (not to its children's groups).
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), sig)
            .expect("signal the engine");
    }

    /// Waits for the run to end (killing it after [`PATIENCE`] twice over) and returns its output;
    /// a run killed by a signal has code `-signal`.
    pub fn finish(mut self) -> Run {
        use std::os::unix::process::ExitStatusExt;
        let end = std::time::Instant::now() + PATIENCE * 2;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let code = status
                    .code()
                    .unwrap_or_else(|| -status.signal().unwrap_or(0));
                return self.collect(code);
            }
            if std::time::Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let r = self.collect(-1);
                panic!(
                    "the run did not end in time\n--- stdout\n{}\n--- stderr\n{}",
                    r.stdout, r.stderr
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl TestRepo {
    /// Starts the binary with `args` in the background.
    pub fn spawn<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Running {
        self.spawn_env(args, &[])
    }

    /// Starts the binary with `args` and extra environment variables in the background.
    pub fn spawn_env<S: AsRef<std::ffi::OsStr>>(
        &self,
        args: &[S],
        env: &[(&str, &str)],
    ) -> Running {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let k = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let stdout = self.aux.join(format!("spawn-{k}.stdout"));
        let stderr = self.aux.join(format!("spawn-{k}.stderr"));
        let mut cmd = self.cmd();
        for (key, value) in env {
            cmd.env(key, value);
        }
        let child = cmd
            .args(args)
            .stdout(fs::File::create(&stdout).expect("stdout file"))
            .stderr(fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("spawn binary");
        Running {
            child,
            stdout,
            stderr,
        }
    }
}

/// Returns a shell snippet that writes the shell's pid to `path` atomically (a marker the test
/// waits for; the pid identifies the process group to inspect or kill).
pub fn mark(path: &Path) -> String {
    format!("echo $$ > {0}.tmp && mv {0}.tmp {0}", path.display())
}

/// Reads a pid written by [`mark`].
pub fn read_pid(path: &Path) -> i32 {
    fs::read_to_string(path)
        .expect("marker")
        .trim()
        .parse()
        .expect("pid in marker")
}

/// Returns (state, process group) of a process from `/proc`, or `None` when it is gone.
fn proc_stat(pid: i32) -> Option<(char, i32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let pgrp = fields.nth(1)?.parse().ok()?;
    Some((state, pgrp))
}

/// Returns the state letter of a process (`Z` for a zombie), if it exists.
pub fn proc_state(pid: i32) -> Option<char> {
    proc_stat(pid).map(|(s, _)| s)
}

/// Returns the process group of a live process.
pub fn pgid_of(pid: i32) -> Option<i32> {
    proc_stat(pid).map(|(_, g)| g)
}

/// Returns the live (not zombie) processes of a process group.
pub fn group_members(pgid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Some((state, g)) = proc_stat(pid)
            && g == pgid
            && !matches!(state, 'Z' | 'X')
        {
            out.push(pid);
        }
    }
    out
}

/// Waits up to [`PATIENCE`] for a process group to be empty; returns the survivors otherwise.
pub fn wait_group_gone(pgid: i32) -> Vec<i32> {
    let end = std::time::Instant::now() + PATIENCE;
    loop {
        let left = group_members(pgid);
        if left.is_empty() || std::time::Instant::now() > end {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Kills a whole process group (SIGKILL), ignoring errors (it may be gone already).
pub fn kill_group(pgid: i32) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pgid),
        nix::sys::signal::Signal::SIGKILL,
    );
}
