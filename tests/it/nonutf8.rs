//! File names that are not UTF-8: committed when kept, removed when rolled back, protected when
//! they are the user's, and shown as `\xNN` in rows and messages.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;

use crate::support::*;

const VERIFY: &str = "sh measure.sh";

/// Runs git and returns its raw stdout.
fn git_bytes(repo: &TestRepo, args: &[&str]) -> Vec<u8> {
    let mut cmd = Command::new("git");
    hermetic(&mut cmd, &repo.aux);
    let o = cmd.args(args).current_dir(&repo.root).output().unwrap();
    assert!(o.status.success(), "git {args:?}");
    o.stdout
}

/// The files of `rev`'s tree, by their bytes.
fn tree_files(repo: &TestRepo, rev: &str) -> Vec<Vec<u8>> {
    git_bytes(repo, &["ls-tree", "-r", "-z", "--name-only", rev])
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn exists(repo: &TestRepo, rel: &[u8]) -> bool {
    repo.root
        .join(OsStr::from_bytes(rel))
        .symlink_metadata()
        .is_ok()
}

/// Console output shows bytes as `\xNN`, never the private-use characters that carry them.
#[track_caller]
fn assert_no_escape_chars(r: &Run) {
    let escaped = |c: char| ('\u{10FE80}'..='\u{10FEFF}').contains(&c);
    assert!(!r.stdout.chars().any(escaped), "{}", r.stdout);
    assert!(!r.stderr.chars().any(escaped), "{}", r.stderr);
}

#[test]
fn a_new_file_named_in_latin1_is_committed_with_the_keep() {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(
            1,
            "echo 7 > src/value.txt; printf new > \"src/caf$(printf '\\351').txt\"; echo 'lower, with a new file'",
        )],
    );
    repo.run_loop(VERIFY, &agent, &["--iterations", "1"])
        .expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep"]);
    let files = tree_files(&repo, "HEAD");
    assert!(
        files.contains(&b"src/caf\xe9.txt".to_vec()),
        "the kept commit holds the file: {files:?}"
    );
    assert_eq!(repo.status(), "", "the tree is clean after the run");
}

#[test]
fn a_worse_or_out_of_scope_file_named_in_latin1_is_rolled_back() {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (
                1,
                "echo 12 > src/value.txt; d=\"src/d$(printf '\\377')\"; mkdir -p \"$d\"; printf new > \"$d/caf$(printf '\\351').txt\"; echo worse",
            ),
            (
                2,
                "echo 3 > src/value.txt; mkdir -p notes; printf x > \"notes/caf$(printf '\\351').txt\"; echo 'outside the scope'",
            ),
        ],
    );
    let r = repo.run_loop(VERIFY, &agent, &["--iterations", "2"]);
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "discard", "discard"]);
    let rows = repo.rows();
    assert!(
        rows[2][6].starts_with("[SCOPE] notes/caf\\xe9.txt"),
        "the row shows the byte: {}",
        rows[2][6]
    );
    assert!(
        r.stdout.contains("[SCOPE] notes/caf\\xe9.txt"),
        "{}",
        r.stdout
    );
    assert_no_escape_chars(&r);
    assert!(
        !exists(&repo, b"src/d\xff"),
        "the new file and directory are gone"
    );
    assert!(!exists(&repo, b"notes/caf\xe9.txt"));
    assert_eq!(repo.status(), "", "the tree is clean after the run");
    assert_eq!(repo.read("src/value.txt"), "10\n");
    // The rolled-back trial keeps the file.
    let refs = repo.git(&["for-each-ref", "--format=%(refname)", "refs/autoresearch/"]);
    let trial = refs
        .lines()
        .find(|r| r.ends_with("/trial-1"))
        .unwrap_or_else(|| panic!("{refs}"));
    assert!(tree_files(&repo, trial).contains(&b"src/d\xff/caf\xe9.txt".to_vec()));
}

#[test]
fn a_users_untracked_file_named_in_latin1_is_kept_and_restored() {
    let repo = number_repo(10);
    std::fs::create_dir_all(repo.root.join("notes")).unwrap();
    std::fs::write(
        repo.root.join(OsStr::from_bytes(b"notes/m\xe9mo.md")),
        "my notes\n",
    )
    .unwrap();
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (
                1,
                "rm notes/m*; echo 3 > src/value.txt; echo 'delete a user file'",
            ),
            (
                2,
                "for f in notes/m*; do echo changed > \"$f\"; done; echo 3 > src/value.txt; echo 'clobber a user file'",
            ),
            (3, "echo 5 > src/value.txt; echo 'lower to 5'"),
        ],
    );
    let r = repo.run_loop(VERIFY, &agent, &["--iterations", "3"]);
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "discard", "discard", "keep"]);
    let rows = repo.rows();
    for row in &rows[1..3] {
        assert!(
            row[6].contains("[SCOPE] notes/m\\xe9mo.md (your untracked file)"),
            "{}",
            row[6]
        );
    }
    assert!(
        r.stderr.contains(
            "notes/m\\xe9mo.md (your untracked file) was changed during the iteration; your copy is put back, the changed content is kept as blob"
        ),
        "the changed content is copied first: {}",
        r.stderr
    );
    assert_no_escape_chars(&r);
    assert_eq!(
        std::fs::read(repo.root.join(OsStr::from_bytes(b"notes/m\xe9mo.md"))).unwrap(),
        b"my notes\n",
        "the user's file is restored"
    );
    assert!(
        !tree_files(&repo, "HEAD")
            .iter()
            .any(|f| f.starts_with(b"notes/")),
        "the user's file is never committed"
    );
    assert_eq!(
        git_bytes(
            &repo,
            &["status", "--porcelain", "-z", "--untracked-files=all"]
        ),
        b"?? notes/m\xe9mo.md\0"
    );
}

#[test]
fn an_untracked_file_named_in_latin1_inside_the_scope_refuses_the_run() {
    let repo = number_repo(10);
    std::fs::write(repo.root.join(OsStr::from_bytes(b"src/caf\xe9.txt")), "x\n").unwrap();
    let agent = scripted_agent(&repo, "agent.sh", &[(1, "echo 3 > src/value.txt; echo x")]);
    let r = repo.run_loop(VERIFY, &agent, &["--iterations", "1"]);
    r.expect_refusal(&["untracked files inside the scope", "src/caf\\xe9.txt"]);
}
