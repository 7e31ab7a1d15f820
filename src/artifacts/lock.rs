//! The run lock in `.autoresearch/lock`: an exclusive `flock` held for the life of the run, plus
//! the holder's identity (pid and process start time, via sysinfo) so a second run can name it,
//! `status` can tell a live holder from a dead one, and a reused pid is never taken for a live run.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System};

use crate::error::{Error, IoContext, Result};

/// Who holds (or last held) the lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    /// Process start time in seconds since the epoch, as sysinfo reports it.
    pub start_time: u64,
    pub started_at: String,
}

/// A held lock; released (and emptied) on drop.
pub struct Lock {
    file: File,
}

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

impl Holder {
    /// Returns the identity of this process.
    pub fn me() -> Holder {
        let pid = std::process::id();
        Holder {
            pid,
            start_time: process_start_time(pid).unwrap_or(0),
            started_at: crate::artifacts::state::now_utc(),
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
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(held_message(path, previous.as_ref())),
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
        Ok((Lock { file }, reclaimed))
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
        };
        assert!(!reused.alive());
        std::fs::write(&p, serde_json::to_string(&reused).unwrap()).unwrap();
        let (_lock, reclaimed) = Lock::acquire(&p).unwrap();
        assert_eq!(reclaimed, Some(reused));
    }
}
