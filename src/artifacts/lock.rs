//! The run lock in `autoresearch-results/engine/lock`: an exclusive `flock` held for the life of the run, plus
//! the holder's identity (pid and process start time, via sysinfo) so a second run can name it,
//! `status` can tell a live holder from a dead one, and a reused pid is never taken for a live run.
//! It also records the run token its children carry (see `process::run_token`). The lock's
//! descriptor is close-on-exec, so no child holds the `flock`; should a process left by a dead
//! run hold it anyway, it is found through `/proc`, ended when it carries that run's token, and
//! named otherwise.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::procfs::process_start_time;

/// Who holds (or last held) the lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    /// Process start time in seconds since the epoch, as sysinfo reports it.
    pub start_time: u64,
    pub started_at: String,
    /// The run token every child of that run carries (absent in locks of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// A held lock; released (and emptied) on drop.
pub struct Lock {
    file: File,
    orphans_stopped: usize,
}

impl Holder {
    /// Returns the identity of this process.
    pub fn me() -> Holder {
        let pid = std::process::id();
        Holder {
            pid,
            start_time: process_start_time(pid).unwrap_or(0),
            started_at: crate::artifacts::state::now_utc(),
            token: Some(crate::process::run_token().to_string()),
        }
    }

    /// Returns true when the recorded process is alive and is the same process (same start time).
    pub fn alive(&self) -> bool {
        process_start_time(self.pid).is_some_and(|t| t == self.start_time)
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// Reads the lock file without taking the lock.
pub fn peek(path: &Path) -> Option<Holder> {
    let mut f = File::open(path).ok()?;
    read_holder(&mut f)
}

/// The holder of the lock at `path` when its process is alive: a live run.
pub fn live(path: &Path) -> Option<Holder> {
    peek(path).filter(Holder::alive)
}

/// Returns the refusal for a lock held by `h`.
pub fn held_message(path: &Path, h: Option<&Holder>) -> Error {
    match h {
        Some(h) => Error::Refused(format!(
            "another run (pid {}, started {}) holds {}; wait for it to finish or stop it",
            h.pid,
            h.started_at,
            path.display()
        )),
        None => Error::Refused(format!(
            "another run holds {}; wait for it to finish or stop it",
            path.display()
        )),
    }
}

/// Returns the refusal for a lock whose recorded run is gone (or was released) while other
/// processes still hold its `flock`: names each holder, and whether it is an orphaned child of
/// the dead run (it carries that run's token).
fn held_by_others(path: &Path, previous: Option<&Holder>, holders: &[u32]) -> Error {
    let token = previous.and_then(|p| p.token.as_deref());
    let dead_run = previous.map_or_else(
        || "the run that took it has ended".to_string(),
        |p| format!("the run that took it (pid {}) is gone", p.pid),
    );
    if holders.is_empty() {
        return Error::Refused(format!(
            "{} is locked, but {dead_run} and no process holding it could be found; find it with `fuser {}`, stop it, then run again",
            path.display(),
            path.display()
        ));
    }
    let names: Vec<String> = holders
        .iter()
        .map(|&pid| {
            let orphan = token.is_some_and(|t| crate::process::has_run_token(pid, t));
            format!(
                "pid {pid} ({}{})",
                crate::procfs::comm(pid),
                if orphan {
                    ", an orphaned child of that run"
                } else {
                    ""
                }
            )
        })
        .collect();
    let pids: Vec<String> = holders.iter().map(u32::to_string).collect();
    Error::Refused(format!(
        "{} holds {} ({dead_run}); stop it (`kill {}`), then run again",
        names.join(", "),
        path.display(),
        pids.join(" ")
    ))
}

/// How long the `flock` of a dead run may stay held before the run refuses: a child that run was
/// starting when it was killed holds the descriptor until its exec closes it (close-on-exec),
/// before it carries the run token; a process that is exiting holds it until it is gone.
const LET_GO: Duration = Duration::from_secs(2);

/// The `flock` is held although its recorded holder is not alive: a process left by a dead run
/// holds the descriptor. When every holder carries the dead run's token, ends that run's
/// processes; then takes the lock once it is let go (within [`LET_GO`]). Returns how many
/// processes were ended.
fn take_from_orphans(file: &File, path: &Path, previous: Option<&Holder>) -> Result<usize> {
    let holders = crate::procfs::pids_with_open_file(path);
    let token = previous.and_then(|p| p.token.as_deref());
    let mut stopped = 0;
    if let Some(t) = token
        && !holders.is_empty()
        && holders
            .iter()
            .all(|&pid| crate::process::has_run_token(pid, t))
    {
        stopped = crate::process::kill_run_processes(t);
    }
    let end = Instant::now() + LET_GO;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(stopped),
            Err(TryLockError::WouldBlock) if Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(_) => break,
        }
    }
    // Another run that started at the same moment may have taken the lock meanwhile and
    // recorded itself: that is a live run, not a leftover to stop.
    let now = File::open(path).ok().and_then(|mut f| read_holder(&mut f));
    if now.as_ref().is_some_and(Holder::alive) {
        return Err(held_message(path, now.as_ref()));
    }
    let holders = crate::procfs::pids_with_open_file(path);
    Err(held_by_others(path, previous, &holders))
}

impl Lock {
    /// Takes the lock. Returns the previous holder when a stale lock was reclaimed.
    pub fn acquire(path: &Path) -> Result<(Lock, Option<Holder>)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .ctx("open the lock", path)?;
        let previous = read_holder(&mut file);
        let mut orphans_stopped = 0;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) if previous.as_ref().is_some_and(Holder::alive) => {
                return Err(held_message(path, previous.as_ref()));
            }
            Err(TryLockError::WouldBlock) => {
                orphans_stopped = take_from_orphans(&file, path, previous.as_ref())?;
            }
            Err(TryLockError::Error(_)) => {
                // No flock on this filesystem: fall back to the recorded identity alone.
                if previous.as_ref().is_some_and(Holder::alive) {
                    return Err(held_message(path, previous.as_ref()));
                }
            }
        }
        // Holding the flock, a recorded live holder can only be a process that does not use it
        // (or a copied lock file). Trust identity over the file system and refuse.
        let me = Holder::me();
        if let Some(p) = &previous
            && p.pid != me.pid
            && p.alive()
        {
            return Err(held_message(path, previous.as_ref()));
        }
        let text = serde_json::to_string(&me).unwrap_or_default();
        file.set_len(0).ctx("write the lock", path)?;
        file.seek(SeekFrom::Start(0)).ctx("write the lock", path)?;
        file.write_all(text.as_bytes())
            .ctx("write the lock", path)?;
        file.sync_data().ctx("write the lock", path)?;
        let reclaimed = previous.filter(|p| p.pid != me.pid || p.start_time != me.start_time);
        Ok((
            Lock {
                file,
                orphans_stopped,
            },
            reclaimed,
        ))
    }

    /// Returns how many processes of a dead run were ended because they held this lock.
    pub fn orphans_stopped(&self) -> usize {
        self.orphans_stopped
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_in_another_handle_is_refused_then_released() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let (lock, reclaimed) = Lock::acquire(&p).unwrap();
        assert!(reclaimed.is_none());
        let holder = peek(&p).unwrap();
        assert_eq!(holder.pid, std::process::id());
        assert!(holder.alive());
        let e = Lock::acquire(&p).err().expect("refused").to_string();
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(lock);
        assert!(peek(&p).is_none(), "released lock is emptied");
        assert!(Lock::acquire(&p).is_ok());
    }

    #[test]
    fn stale_and_reused_pids_are_reclaimed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        // A pid that is not running.
        let dead = Holder {
            pid: 4_000_000,
            start_time: 1,
            started_at: "then".into(),
            token: None,
        };
        std::fs::write(&p, serde_json::to_string(&dead).unwrap()).unwrap();
        let (lock, reclaimed) = Lock::acquire(&p).unwrap();
        assert_eq!(reclaimed, Some(dead));
        drop(lock);
        // A live pid (pid 1) with a different start time: a reused pid, not a run.
        let reused = Holder {
            pid: 1,
            start_time: 12345,
            started_at: "then".into(),
            token: Some("old".into()),
        };
        assert!(!reused.alive());
        std::fs::write(&p, serde_json::to_string(&reused).unwrap()).unwrap();
        let (_lock, reclaimed) = Lock::acquire(&p).unwrap();
        assert_eq!(reclaimed, Some(reused));
    }

    /// Starts `sleep` holding the `flock` of `path` through an inherited descriptor (as a child
    /// that kept the lock's descriptor would), with run token `token`.
    fn inherited_holder(path: &Path, token: &str) -> std::process::Child {
        holder_for(path, token, "60")
    }

    /// [`inherited_holder`] that lets go after `seconds`.
    fn holder_for(path: &Path, token: &str, seconds: &str) -> std::process::Child {
        use std::os::fd::{AsRawFd, BorrowedFd};
        use std::os::unix::process::CommandExt;
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .unwrap();
        f.try_lock().unwrap();
        let fd = f.as_raw_fd();
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg(seconds)
            .env(crate::process::RUN_TOKEN_VAR, token)
            .stdout(std::process::Stdio::null());
        // SAFETY: only fcntl, which is async-signal-safe, runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                use nix::fcntl::{FcntlArg, FdFlag, fcntl};
                fcntl(
                    BorrowedFd::borrow_raw(fd),
                    FcntlArg::F_SETFD(FdFlag::empty()),
                )
                .map(|_| ())
                .map_err(std::io::Error::from)
            });
        }
        let child = cmd.spawn().unwrap();
        drop(f);
        child
    }

    #[test]
    fn an_orphan_of_a_dead_run_holding_the_flock_is_ended_and_the_lock_taken() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let token = format!("lock-test-{}", std::process::id());
        let mut orphan = inherited_holder(&p, &token);
        let dead = Holder {
            pid: 4_000_000,
            start_time: 1,
            started_at: "then".into(),
            token: Some(token.clone()),
        };
        std::fs::write(&p, serde_json::to_string(&dead).unwrap()).unwrap();
        let (lock, reclaimed) = Lock::acquire(&p).unwrap();
        assert_eq!(reclaimed, Some(dead));
        assert_eq!(lock.orphans_stopped(), 1);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(orphan.wait().unwrap().signal(), Some(15));
        let mine = peek(&p).unwrap();
        assert_eq!(mine.token.as_deref(), Some(crate::process::run_token()));
    }

    /// A run killed while it was starting a child leaves the child holding the lock's descriptor
    /// until its exec closes it (close-on-exec), without the run token yet; a process that is
    /// exiting holds it until it is gone. Such a holder is waited for, not reported as a live one
    /// (found by the kill -9 stress test: the next run refused, naming no holder).
    #[test]
    fn a_holder_that_lets_go_soon_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let mut holder = holder_for(&p, "not-the-dead-run", "0.3");
        let dead = Holder {
            pid: 4_000_000,
            start_time: 1,
            started_at: "then".into(),
            token: Some(format!("lock-test-{}-soon", std::process::id())),
        };
        std::fs::write(&p, serde_json::to_string(&dead).unwrap()).unwrap();
        let (lock, reclaimed) = Lock::acquire(&p).expect("taken once the holder let go");
        assert_eq!(reclaimed, Some(dead));
        assert_eq!(lock.orphans_stopped(), 0, "nothing was killed");
        assert!(holder.wait().unwrap().success(), "it ended on its own");
    }

    /// Two runs starting together: the other one takes the flock and records itself while this
    /// one waits for a dead holder to let go. It is named as a live run, never as a process
    /// to kill.
    #[test]
    fn a_run_that_took_the_lock_meanwhile_is_named_as_a_live_run() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let mut holder = inherited_holder(&p, "the-other-run");
        let dead = Holder {
            pid: 4_000_000,
            start_time: 1,
            started_at: "then".into(),
            token: None,
        };
        std::fs::write(&p, serde_json::to_string(&dead).unwrap()).unwrap();
        let path = p.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let me = Holder::me();
            std::fs::write(&path, serde_json::to_string(&me).unwrap()).unwrap();
        });
        let e = Lock::acquire(&p).err().expect("refused").to_string();
        writer.join().unwrap();
        assert!(
            e.contains(&format!("another run (pid {}", std::process::id())),
            "{e}"
        );
        assert!(!e.contains("kill"), "{e}");
        let _ = holder.kill();
        let _ = holder.wait();
    }

    #[test]
    fn a_foreign_holder_of_the_flock_is_named_not_killed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let mut holder = inherited_holder(&p, "some-other-run");
        let dead = Holder {
            pid: 4_000_000,
            start_time: 1,
            started_at: "then".into(),
            token: Some(format!("lock-test-{}-foreign", std::process::id())),
        };
        std::fs::write(&p, serde_json::to_string(&dead).unwrap()).unwrap();
        let e = Lock::acquire(&p).err().expect("refused").to_string();
        let pid = holder.id();
        assert!(
            e.contains(&format!("pid {pid} (sleep) holds"))
                && e.contains("(pid 4000000) is gone")
                && e.contains(&format!("`kill {pid}`")),
            "{e}"
        );
        assert!(!e.contains("orphaned"), "{e}");
        assert_eq!(holder.try_wait().unwrap(), None, "not signalled");
        // A record without a token (written by an older version) ends nothing either.
        let untokened = Holder {
            token: None,
            ..dead
        };
        std::fs::write(&p, serde_json::to_string(&untokened).unwrap()).unwrap();
        assert!(Lock::acquire(&p).is_err());
        holder.kill().unwrap();
        holder.wait().unwrap();
        assert!(Lock::acquire(&p).is_ok());
    }
}
