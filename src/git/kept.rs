//! The user's untracked files outside the scope: backed up as loose blobs (never committed),
//! checked for changes, and put back.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;

use git2::{ObjectType, Oid};

use std::os::unix::fs::PermissionsExt;

use super::{BACKUP_LIMIT, Repo};
use crate::error::{Error, GitContext, IoContext, Result};
use crate::repopath::to_fs;

/// A backed-up untracked file of the user (outside the scope), restorable from its blob.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeptFile {
    /// In the string form of [`crate::repopath`].
    pub path: String,
    pub blob: String,
    pub len: u64,
    pub mtime_ns: i128,
    pub mode: u32,
}

pub(super) fn mtime_ns(m: &fs::Metadata) -> i128 {
    use std::os::unix::fs::MetadataExt;
    i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec())
}

impl Repo {
    /// Records one of the user's untracked paths and, for a file up to [`BACKUP_LIMIT`], stores a
    /// copy in the object database. Directories (a nested repository) and bigger files are
    /// recorded by size and time only: watched, never deleted, but not restorable.
    pub fn keep_file(&self, path: &str) -> Result<KeptFile> {
        let rel = path.trim_end_matches('/');
        let full = to_fs(&self.root, rel);
        let meta = fs::symlink_metadata(&full).ctx("read", &full)?;
        let backup_failed = |e: git2::Error| {
            Error::Refused(format!(
                "cannot back up your untracked file {rel} ({}); commit it, move it out of the repository, or add it to .gitignore",
                e.message()
            ))
        };
        let (blob, mode) = if meta.is_dir() {
            (String::new(), 0o040000)
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&full).ctx("read link", &full)?;
            (
                self.repo
                    .blob(target.as_os_str().as_encoded_bytes())
                    .map_err(backup_failed)?
                    .to_string(),
                0o120000,
            )
        } else if meta.len() > BACKUP_LIMIT {
            (String::new(), meta.permissions().mode())
        } else {
            (
                self.repo
                    .blob_path(&full)
                    .map_err(backup_failed)?
                    .to_string(),
                meta.permissions().mode(),
            )
        };
        Ok(KeptFile {
            path: rel.to_string(),
            blob,
            len: meta.len(),
            mtime_ns: mtime_ns(&meta),
            mode,
        })
    }

    /// Returns true when a kept file is still exactly as backed up.
    pub fn kept_file_intact(&self, k: &KeptFile) -> bool {
        let full = to_fs(&self.root, &k.path);
        let Ok(meta) = fs::symlink_metadata(&full) else {
            return false;
        };
        if k.mode == 0o040000 {
            return meta.is_dir();
        }
        if k.blob.is_empty() {
            // Not backed up (too big): size and time are all there is to compare.
            return meta.len() == k.len && mtime_ns(&meta) == k.mtime_ns;
        }
        if meta.len() != k.len {
            return false;
        }
        if mtime_ns(&meta) == k.mtime_ns {
            return true;
        }
        if k.mode == 0o120000 {
            return fs::read_link(&full)
                .ok()
                .and_then(|t| {
                    Oid::hash_object(ObjectType::Blob, t.as_os_str().as_encoded_bytes()).ok()
                })
                .is_some_and(|o| o.to_string() == k.blob);
        }
        Oid::hash_file(ObjectType::Blob, &full).is_ok_and(|o| o.to_string() == k.blob)
    }

    /// Writes a kept file back from its backup; returns false when there is none (a directory, a
    /// file over [`BACKUP_LIMIT`]).
    pub fn restore_kept_file(&self, k: &KeptFile) -> Result<bool> {
        if k.blob.is_empty() {
            return Ok(false);
        }
        let full = to_fs(&self.root, &k.path);
        let oid = Oid::from_str(&k.blob).git_ctx("read a backup id")?;
        let blob = self
            .repo
            .find_blob(oid)
            .git_ctx(&format!("find the backup of {}", k.path))?;
        if let Some(dir) = full.parent() {
            fs::create_dir_all(dir).ctx("create", dir)?;
        }
        if let Ok(m) = fs::symlink_metadata(&full)
            && m.is_dir()
        {
            return Err(Error::Blocked(format!(
                "cannot restore {}: a directory now stands in its place",
                k.path
            )));
        }
        let _ = fs::remove_file(&full);
        if k.mode == 0o120000 {
            let target = OsStr::from_bytes(blob.content());
            std::os::unix::fs::symlink(target, &full).ctx("restore", &full)?;
        } else {
            fs::write(&full, blob.content()).ctx("restore", &full)?;
            fs::set_permissions(&full, fs::Permissions::from_mode(k.mode & 0o7777))
                .ctx("restore mode of", &full)?;
        }
        Ok(true)
    }
}
