//! Tests of [`super::Repo`] with file names that are not UTF-8: seen by scans, committed,
//! deleted, restored and backed up by their exact bytes.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use git2::{Oid, Repository, Signature};

use super::{ChangeKind, Repo};
use crate::repopath::decode;

const CAFE: &[u8] = b"src/caf\xe9.txt";
const DEEP: &[u8] = b"src/d\xff/n\xfe.txt";

fn file(root: &Path, rel: &[u8]) -> PathBuf {
    root.join(OsStr::from_bytes(rel))
}

fn write(root: &Path, rel: &[u8], content: &str) {
    let p = file(root, rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

/// A repository with `src/a.txt` committed.
fn repo() -> (tempfile::TempDir, Repo, Oid) {
    let dir = tempfile::tempdir().unwrap();
    let r = Repository::init(dir.path()).unwrap();
    let repo = Repo {
        repo: r,
        root: dir.path().canonicalize().unwrap(),
    };
    write(&repo.root, b"src/a.txt", "a\n");
    let mut index = repo.repo.index().unwrap();
    index.add_path(Path::new("src/a.txt")).unwrap();
    index.write().unwrap();
    let base = {
        let tree = repo.repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = Signature::now("t", "t@t").unwrap();
        repo.repo
            .commit(Some("HEAD"), &sig, &sig, "base", &tree, &[])
            .unwrap()
    };
    (dir, repo, base)
}

/// The tracked paths as `git ls-files -z` lists them (bytes).
fn ls_files(root: &Path) -> Vec<Vec<u8>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-z"])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn scan_sees_a_name_that_is_not_utf8() {
    let (_dir, repo, _) = repo();
    write(&repo.root, CAFE, "new\n");
    let scan = repo.scan().unwrap();
    assert_eq!(scan.len(), 1, "{scan:?}");
    assert_eq!(scan[0].path, decode(CAFE));
    assert_eq!(scan[0].kind, ChangeKind::Untracked);
    assert_eq!(repo.scan_refresh().unwrap(), scan);
}

#[test]
fn commit_paths_commits_it_by_its_bytes() {
    let (_dir, repo, base) = repo();
    write(&repo.root, CAFE, "new\n");
    write(&repo.root, DEEP, "deep\n");
    let changed: Vec<String> = repo.scan().unwrap().into_iter().map(|c| c.path).collect();
    let trial = repo.commit_paths(&changed, "trial").unwrap();
    let files = ls_files(&repo.root);
    assert!(files.contains(&CAFE.to_vec()), "{files:?}");
    assert!(files.contains(&DEEP.to_vec()), "{files:?}");
    assert!(
        repo.scan().unwrap().is_empty(),
        "the tree equals the commit"
    );
    let mut diff = repo.diff_paths(base, trial).unwrap();
    diff.sort();
    let mut want = vec![decode(CAFE), decode(DEEP)];
    want.sort();
    assert_eq!(diff, want);
    assert!(repo.is_tracked(&decode(CAFE)));
    assert!(repo.any_tracked(|p| p == decode(DEEP)));
    assert!(repo.tree_has_dir(trial, &decode(b"src/d\xff")));
}

#[test]
fn snapshot_holds_it_without_touching_the_index() {
    let (_dir, repo, _) = repo();
    write(&repo.root, CAFE, "new\n");
    let changed: Vec<String> = repo.scan().unwrap().into_iter().map(|c| c.path).collect();
    let snap = repo.snapshot(&changed, "snapshot").unwrap();
    let tree = repo.repo.find_commit(snap).unwrap().tree().unwrap();
    assert!(tree.get_path(Path::new(OsStr::from_bytes(CAFE))).is_ok());
    assert!(!repo.is_tracked(&decode(CAFE)));
}

#[test]
fn delete_created_deletes_it_and_its_directory() {
    let (_dir, repo, base) = repo();
    write(&repo.root, CAFE, "new\n");
    write(&repo.root, DEEP, "deep\n");
    let created: Vec<String> = repo.scan().unwrap().into_iter().map(|c| c.path).collect();
    assert_eq!(created.len(), 2);
    let failed = repo.delete_created(&created, base);
    assert!(failed.is_empty(), "{failed:?}");
    assert!(!file(&repo.root, CAFE).exists());
    assert!(
        !file(&repo.root, b"src/d\xff").exists(),
        "the emptied directory is pruned"
    );
    assert!(repo.scan().unwrap().is_empty());
}

#[test]
fn reset_paths_restores_it() {
    let (_dir, repo, _) = repo();
    // The retained commit tracks a name that is not UTF-8; the trial edits it and adds another.
    write(&repo.root, CAFE, "kept\n");
    let base = repo.commit_paths(&[decode(CAFE)], "base").unwrap();
    write(&repo.root, CAFE, "changed\n");
    write(&repo.root, DEEP, "deep\n");
    let changed: Vec<String> = repo.scan().unwrap().into_iter().map(|c| c.path).collect();
    let trial = repo.commit_paths(&changed, "trial").unwrap();
    let paths = repo.diff_paths(base, trial).unwrap();
    assert_eq!(paths.len(), 2, "{paths:?}");
    repo.reset_paths(base, &paths).unwrap();
    assert_eq!(repo.head().unwrap(), base);
    assert_eq!(
        fs::read_to_string(file(&repo.root, CAFE)).unwrap(),
        "kept\n"
    );
    assert!(!file(&repo.root, b"src/d\xff").exists());
    assert!(repo.scan().unwrap().is_empty());
    // A deleted one comes back too.
    fs::remove_file(file(&repo.root, CAFE)).unwrap();
    let gone: Vec<String> = repo.scan().unwrap().into_iter().map(|c| c.path).collect();
    assert_eq!(gone, vec![decode(CAFE)]);
    repo.reset_paths(base, &gone).unwrap();
    assert_eq!(
        fs::read_to_string(file(&repo.root, CAFE)).unwrap(),
        "kept\n"
    );
    assert!(repo.scan().unwrap().is_empty());
}

#[test]
fn a_kept_user_file_is_backed_up_and_restored() {
    let (_dir, repo, _) = repo();
    write(&repo.root, b"notes/m\xe9mo.md", "mine\n");
    let path = repo.scan().unwrap().remove(0).path;
    let kept = repo.keep_file(&path).unwrap();
    assert!(!kept.blob.is_empty());
    // It survives kept-files.json (JSON) unchanged.
    let json = serde_json::to_string(&kept).unwrap();
    assert_eq!(
        serde_json::from_str::<super::KeptFile>(&json).unwrap(),
        kept
    );
    assert!(repo.kept_file_intact(&kept));
    fs::remove_file(file(&repo.root, b"notes/m\xe9mo.md")).unwrap();
    assert!(!repo.kept_file_intact(&kept));
    assert!(repo.restore_kept_file(&kept).unwrap());
    assert_eq!(
        fs::read_to_string(file(&repo.root, b"notes/m\xe9mo.md")).unwrap(),
        "mine\n"
    );
}
