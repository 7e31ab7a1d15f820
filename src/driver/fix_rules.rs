//! A fix run's trial against the rules of `--fix` (GUIDE "Debug mode", "Security mode"): reads
//! the text each changed file had at HEAD and has now, and asks [`crate::engine::fix_rules`].

use super::Run;
use super::tree::Inspection;
use crate::config::Mode;
use crate::engine::fix_rules::{FileChange, broken_rule};

/// Larger files are not read (a fix does not hide a suppression in a 4 MB file unnoticed by
/// review; reading it would slow every inspection).
const READ_LIMIT: u64 = 4 * 1024 * 1024;

impl Run {
    /// `--mode fix` (the fix run after `--fix` included): the rule the inspected changes break,
    /// if any; `None` in the other modes.
    pub(super) fn broken_fix_rule(&self, insp: &Inspection) -> Option<String> {
        if self.cfg.mode != Mode::Fix {
            return None;
        }
        let head = self
            .repo
            .head()
            .ok()
            .and_then(|h| self.repo.repo.find_commit(h).ok())
            .and_then(|c| c.tree().ok());
        let mut texts: Vec<(&str, Option<String>, Option<String>)> = Vec::new();
        for p in &insp.changed {
            let old = head.as_ref().and_then(|t| {
                let entry = t.get_path(&crate::repopath::as_path(p)).ok()?;
                let blob = self.repo.repo.find_blob(entry.id()).ok()?;
                if blob.size() as u64 > READ_LIMIT {
                    return None;
                }
                String::from_utf8(blob.content().to_vec()).ok()
            });
            let fs = crate::repopath::to_fs(&self.repo.root, p);
            let new = match std::fs::metadata(&fs) {
                Ok(m) if m.is_file() && m.len() <= READ_LIMIT => std::fs::read_to_string(&fs).ok(),
                _ => None,
            };
            // A file there but unreadable as text (binary, too large) is not judged.
            if new.is_none() && fs.exists() {
                continue;
            }
            texts.push((p, old, new));
        }
        let changes: Vec<FileChange> = texts
            .iter()
            .map(|(path, old, new)| FileChange {
                path,
                old: old.as_deref(),
                new: new.as_deref(),
            })
            .collect();
        broken_rule(&changes)
    }
}
