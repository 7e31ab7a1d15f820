//! Durable file writes: atomic replace (temp file, fsync, rename, directory fsync) and fsynced appends.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, Result};

/// Prefix of the engine's temporary files (renamed over their target when complete).
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

/// Flushes a directory entry to disk (best effort; not every filesystem supports it).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
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
