//! A read-only `.git` (Codex's `workspace-write` sandbox) or work tree is refused before anything
//! is written, with the advice to run outside the sandbox: once with the real Codex sandbox
//! (`codex sandbox -P :workspace`), once with `chmod a-w` (run as an unprivileged user when the
//! tests run as root, since root writes through permission bits).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::codex::codex_bin;
use crate::support::*;

const ADVICE: &str = "run from outside Codex's sandbox (approve the escalation) or in a terminal";
/// `nobody`, for running the engine unprivileged when the tests run as root.
const NOBODY: u32 = 65534;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown_all(path: &Path, id: u32) {
    let ok = Command::new("chown")
        .arg("-R")
        .arg(format!("{id}:{id}"))
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "chown -R {id} {}", path.display());
}

fn run_args() -> Vec<String> {
    TestRepo::loop_args("sh measure.sh", "echo idle", &["--iterations", "1"])
}

#[test]
fn a_read_only_git_dir_or_work_tree_is_refused_before_any_write() {
    // The owner of /proc/self is this process's effective user.
    let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    for target in [".git", ""] {
        let repo = number_repo(10);
        let before = repo.snapshot();
        let dir = repo.root.join(target);
        let mut cmd = repo.cmd();
        if root {
            chown_all(&repo.root, NOBODY);
            chown_all(&repo.aux, NOBODY);
            cmd.uid(NOBODY).gid(NOBODY);
        }
        chmod(&dir, 0o555);
        let r: Run = cmd.args(run_args()).output().unwrap().into();
        chmod(&dir, 0o755);
        if root {
            chown_all(&repo.root, 0);
            chown_all(&repo.aux, 0);
        }
        let shown = dir.display().to_string();
        let shown = shown.trim_end_matches('/');
        let line = r.expect_refusal(&[&format!("{shown} is not writable"), ADVICE]);
        assert!(line.contains("Permission denied"), "{line}");
        repo.assert_untouched(&before);
        assert!(
            !repo.exists("autoresearch-results"),
            "{target}: autoresearch-results was created"
        );
    }
}

#[test]
fn inside_the_real_codex_sandbox_the_run_says_to_approve_the_escalation() {
    let Some(bin) = codex_bin() else { return };
    let repo = number_repo(10);
    let before = repo.snapshot();
    let codex_home = repo.aux.join("codex-home");
    std::fs::create_dir_all(&codex_home).unwrap();
    let mut cmd = Command::new(&bin);
    hermetic(&mut cmd, &repo.aux);
    let r: Run = cmd
        .args(["sandbox", "-P", ":workspace", "-C"])
        .arg(&repo.root)
        .arg("--")
        .arg(BIN)
        .args(run_args())
        .current_dir(&repo.root)
        .env("CODEX_HOME", &codex_home)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
        .into();
    // Codex prints a warning of its own about helper binaries under a temporary CODEX_HOME.
    let ours: Vec<&str> = r
        .stderr_lines()
        .into_iter()
        .filter(|l| l.starts_with("codex-autoresearch:"))
        .collect();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(ours.len(), 1, "{}", r.stderr);
    let git = format!(
        "{}/.git is not writable (Read-only file system)",
        repo.root.display()
    );
    assert!(ours[0].contains(&git), "{}", ours[0]);
    assert!(ours[0].ends_with(ADVICE), "{}", ours[0]);
    repo.assert_untouched(&before);
    assert!(!repo.exists("autoresearch-results"));
}
