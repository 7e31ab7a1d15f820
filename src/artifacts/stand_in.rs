//! Stand-ins for the run's files while the baseline is measured: a results log, state or
//! lessons file, feedback file that does not exist yet, and a prompt (`autoresearch-results/engine/baseline/prompt.md`), get
//! one line, so that a verify or guard that would read them opens something the baseline check
//! sees. A stand-in is no run (`Paths::has_run`), and is
//! removed after the baseline, or at the next start when the engine was killed during it.

use std::path::{Path, PathBuf};

use super::Paths;

/// The content of a stand-in (a file with exactly this text is the engine's and is removed).
const TEXT: &str =
    "codex-autoresearch: stand-in while the baseline is measured (removed after it)\n";

/// The files that may get a stand-in.
fn files(paths: &Paths) -> [PathBuf; 5] {
    [
        paths.results.clone(),
        paths.state.clone(),
        paths.lessons.clone(),
        paths.feedback.clone(),
        paths.private.join("baseline").join("prompt.md"),
    ]
}

/// Whether `path` is a stand-in.
pub fn is(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() == TEXT.len() as u64)
        && std::fs::read(path).is_ok_and(|b| b == TEXT.as_bytes())
}

/// Whether `path` has a stand-in's size: what `status` asks, without opening the file (an open
/// during the baseline would be taken for verify's). A real results log is never that short.
pub fn sized_like(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() == TEXT.len() as u64)
}

/// Creates a stand-in for each root artifact that does not exist; best effort. Written
/// atomically: `status` must never see a half-written one (it would take it for a results log).
pub fn place(paths: &Paths) {
    for f in files(paths) {
        if f.symlink_metadata().is_err() && f.parent().is_some_and(Path::is_dir) {
            let _ = crate::fsutil::write_atomic(&f, TEXT.as_bytes());
        }
    }
}

/// Removes the stand-ins; best effort.
pub fn remove(paths: &Paths) {
    for f in files(paths) {
        if is(&f) {
            let _ = std::fs::remove_file(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stand_ins_fill_only_the_missing_files_are_no_run_and_go_away() {
        let root = tempfile::tempdir().unwrap();
        let paths = Paths::new(root.path(), None).unwrap();
        std::fs::create_dir_all(&paths.dir).unwrap();
        std::fs::write(&paths.lessons, "# my lessons\n").unwrap();
        let prompt = paths.private.join("baseline").join("prompt.md");
        place(&paths);
        assert!(is(&paths.results) && is(&paths.state));
        assert!(!prompt.exists(), "no directory, no stand-in");
        std::fs::create_dir_all(prompt.parent().unwrap()).unwrap();
        place(&paths);
        assert!(is(&prompt));
        assert_eq!(
            std::fs::read_to_string(&paths.lessons).unwrap(),
            "# my lessons\n"
        );
        assert!(!paths.has_run(), "a stand-in is no run");
        remove(&paths);
        assert!(!paths.results.exists() && !paths.state.exists() && !prompt.exists());
        assert!(paths.lessons.exists(), "a real file stays");
    }
}
