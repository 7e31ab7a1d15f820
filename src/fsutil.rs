//! Durable file writes: atomic replace (temp file, fsync, rename, directory fsync), fsynced
//! appends, and the sweep of temporary files a killed run left behind.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};

/// Prefix of the engine's temporary files (renamed over their target when complete). They are
/// created next to their target (a rename is only atomic within one file system); in the work
/// tree, `.git/info/exclude` hides them (see `artifacts::Paths::exclude_entries`).
pub const TMP_PREFIX: &str = ".autoresearch-tmp-";

/// Replaces `path` with `bytes` atomically: a crash leaves either the old or the new content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .tempfile_in(dir)
        .ctx("create a temporary file in", dir)?;
    tmp.write_all(bytes).ctx("write", tmp.path())?;
    tmp.as_file().sync_all().ctx("sync", tmp.path())?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .ctx("replace", path)?;
    sync_dir(dir);
    Ok(())
}

/// Replaces `path` with `bytes` through a rename, without fsync: a crash of this process leaves
/// the old or the new content, a power loss may leave either. For logs and informational updates.
pub fn write_quick(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .tempfile_in(dir)
        .ctx("create a temporary file in", dir)?;
    tmp.write_all(bytes).ctx("write", tmp.path())?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .ctx("replace", path)?;
    Ok(())
}

/// Removes the temporary files ([`TMP_PREFIX`]) that a process killed in the middle of a write
/// left in each of `dirs` (not below them); returns the removed paths. Only regular files with
/// that prefix are touched. Call it while holding the run lock: a live run's temporary file is
/// never stale.
pub fn sweep_temp(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for d in dirs {
        let Ok(entries) = fs::read_dir(d) else {
            continue;
        };
        let mut here: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(TMP_PREFIX))
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .collect();
        here.sort();
        here.retain(|p| fs::remove_file(p).is_ok());
        removed.append(&mut here);
    }
    removed
}

/// Flushes a directory entry to disk (best effort; not every filesystem supports it).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Appends `bytes` to `path` in one write, without waiting for the disk (side records whose
/// last line may be lost in a crash, or that are synced before what depends on them).
pub fn append(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .ctx("open", path)?;
    f.write_all(bytes).ctx("append to", path)
}

/// Fsyncs an existing file's data.
pub fn sync_file(path: &Path) -> Result<()> {
    let f = OpenOptions::new()
        .append(true)
        .open(path)
        .ctx("open", path)?;
    f.sync_data().ctx("sync", path)
}

/// Appends `bytes` to `path` in one write and fsyncs it.
pub fn append_durable(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .ctx("open", path)?;
    f.write_all(bytes).ctx("append to", path)?;
    f.sync_data().ctx("sync", path)?;
    Ok(())
}

/// Creates `dir` and its parents.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).ctx("create directory", dir)
}

/// Returns a cheap fingerprint of a file (length, modification time, inode) to detect foreign
/// writes without reading the file.
pub fn fingerprint(path: &Path) -> Option<(u64, i128, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::symlink_metadata(path).ok()?;
    Some((
        m.len(),
        i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        m.ino(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sweeps where a run's writes put their temporary files.
    fn sweep_run(root: &Path) -> Vec<PathBuf> {
        sweep_temp(
            // The March layout: its files at the root, `.autoresearch/` beside them.
            &crate::artifacts::Paths::with_layout(root, None, crate::config::Layout::March)
                .unwrap()
                .temp_dirs(Some(7)),
        )
    }

    #[test]
    fn sweep_temp_removes_only_stale_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let private = root.join(".autoresearch");
        fs::create_dir_all(private.join(".autoresearch-tmp-dir")).unwrap();
        for f in [
            ".autoresearch-tmp-abc123",
            "autoresearch-state.json",
            "notes-.autoresearch-tmp-x",
            ".autoresearch/.autoresearch-tmp-Q1w2e3",
            ".autoresearch/lock",
        ] {
            fs::write(root.join(f), "x").unwrap();
        }
        std::os::unix::fs::symlink("autoresearch-state.json", root.join(".autoresearch-tmp-ln"))
            .unwrap();
        let removed = sweep_run(root);
        assert_eq!(
            removed,
            vec![
                root.join(".autoresearch-tmp-abc123"),
                private.join(".autoresearch-tmp-Q1w2e3"),
            ]
        );
        for kept in [
            "autoresearch-state.json",
            "notes-.autoresearch-tmp-x",
            ".autoresearch/lock",
            ".autoresearch/.autoresearch-tmp-dir",
        ] {
            assert!(root.join(kept).exists(), "{kept} is kept");
        }
        assert!(fs::symlink_metadata(root.join(".autoresearch-tmp-ln")).is_ok());
        assert!(sweep_run(root).is_empty(), "nothing left to sweep");
        assert!(sweep_run(&root.join("missing")).is_empty());
    }

    /// A kill inside the write of an iteration's prompt or summary leaves the temporary file in
    /// that iteration's log directory.
    #[test]
    fn sweep_temp_looks_into_the_in_flight_iterations_log_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let private = root.join(".autoresearch");
        for d in ["iter-0007", "baseline", "leftovers/3"] {
            fs::create_dir_all(private.join(d)).unwrap();
        }
        for f in [
            "iter-0007/.autoresearch-tmp-p1",
            "iter-0007/prompt.md",
            "leftovers/3/.autoresearch-tmp-user",
        ] {
            fs::write(private.join(f), "x").unwrap();
        }
        assert_eq!(
            sweep_run(root),
            vec![private.join("iter-0007/.autoresearch-tmp-p1")]
        );
        assert!(private.join("iter-0007/prompt.md").exists());
        assert!(
            private.join("leftovers/3/.autoresearch-tmp-user").exists(),
            "a file set aside (two levels down) is not the engine's temporary file"
        );
    }

    #[test]
    fn atomic_writes_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        write_atomic(&p, b"one").unwrap();
        write_quick(&p, b"two").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
        assert!(sweep_run(dir.path()).is_empty());
    }
}
