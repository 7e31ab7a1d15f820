//! Preflight: every refusal exits 2 with one `codex-autoresearch: error: ...` line that names the
//! problem and the way out, and leaves the repository exactly as it was (no results, state or
//! lessons, same HEAD, refs, index, status and file contents; the agent never runs). Untracked
//! files outside the scope are the user's: allowed, never touched, restored if the agent edits them.

use crate::support::*;

const VERIFY: &str = "sh measure.sh";

/// An agent that leaves a marker outside the repository (it must never run on a refusal) and
/// lowers the value.
fn marking_agent(repo: &TestRepo) -> String {
    let marker = repo.aux.join("agent-ran");
    repo.script(
        "agent.sh",
        &format!(
            "cat > /dev/null\ntouch {}\necho 1 > src/value.txt\necho 'lower to 1'",
            marker.display()
        ),
    )
}

/// Runs the loop expecting a refusal naming `needles`, and checks that nothing was touched.
#[track_caller]
fn refuse(repo: &TestRepo, verify: &str, extra: &[&str], needles: &[&str]) -> String {
    let agent = marking_agent(repo);
    let before = repo.snapshot();
    let mut args = vec!["--iterations", "2"];
    args.extend_from_slice(extra);
    let r = repo.run_loop(verify, &agent, &args);
    let line = r.expect_refusal(needles);
    repo.assert_untouched(&before);
    assert!(
        !repo.aux.join("agent-ran").exists(),
        "the agent ran although the run was refused"
    );
    line
}

#[test]
fn not_a_git_repository() {
    let repo = number_repo(10);
    std::fs::remove_dir_all(repo.root.join(".git")).unwrap();
    let line = refuse(
        &repo,
        VERIFY,
        &[],
        &["not inside a git repository", "git init"],
    );
    assert!(line.contains(&repo.root.display().to_string()), "{line}");
    assert!(
        !repo.exists("autoresearch-results"),
        "nothing may be created"
    );
    assert!(!repo.exists(".git"));
}

#[test]
fn repository_without_a_commit() {
    let repo = number_repo(10);
    std::fs::remove_dir_all(repo.root.join(".git")).unwrap();
    repo.git(&["init", "-q", "-b", "main"]);
    refuse(&repo, VERIFY, &[], &["no commit yet", "commit your files"]);
    assert_eq!(repo.git_lossy(&["rev-parse", "-q", "--verify", "HEAD"]), "");
}

#[test]
fn detached_head() {
    let repo = number_repo(10);
    repo.git(&["checkout", "-q", "--detach"]);
    refuse(&repo, VERIFY, &[], &["detached", "check out a branch"]);
}

/// Creates two branches that both change `f.txt` (`main` and `other`).
fn diverged(repo: &TestRepo) {
    repo.git(&["checkout", "-q", "-b", "other"]);
    repo.write("f.txt", "theirs\n");
    repo.git(&["commit", "-qam", "theirs"]);
    repo.git(&["checkout", "-q", "main"]);
    repo.write("f.txt", "ours\n");
    repo.git(&["commit", "-qam", "ours"]);
}

#[test]
fn merge_in_progress() {
    let repo = TestRepo::with_files(&[
        ("src/value.txt", "10\n"),
        ("measure.sh", "cat src/value.txt\n"),
        ("f.txt", "base\n"),
    ]);
    diverged(&repo);
    assert!(!repo.git_ok(&["merge", "-q", "other"]), "a real conflict");
    assert!(repo.exists(".git/MERGE_HEAD"));
    assert!(repo.read("f.txt").contains("<<<<<<<"));
    refuse(
        &repo,
        VERIFY,
        &[],
        &["merge is in progress", "finish or abort it"],
    );
    assert!(
        repo.exists(".git/MERGE_HEAD"),
        "the merge is left as it was"
    );
}

/// Starts a rebase of `other` onto `main` that stops on a conflict.
fn conflicted_rebase(repo: &TestRepo) {
    diverged(repo);
    repo.git(&["checkout", "-q", "other"]);
    assert!(!repo.git_ok(&["rebase", "main"]), "a real conflict");
    assert!(repo.exists(".git/rebase-merge") || repo.exists(".git/rebase-apply"));
}

fn rebase_repo() -> TestRepo {
    TestRepo::with_files(&[
        ("src/value.txt", "10\n"),
        ("measure.sh", "cat src/value.txt\n"),
        ("f.txt", "base\n"),
    ])
}

#[test]
fn rebase_in_progress_is_refused_without_touching_it() {
    let repo = rebase_repo();
    conflicted_rebase(&repo);
    refuse(&repo, VERIFY, &[], &[]);
    assert!(repo.exists(".git/rebase-merge") || repo.exists(".git/rebase-apply"));
}

#[test]

fn rebase_in_progress_message_names_the_rebase() {
    let repo = rebase_repo();
    conflicted_rebase(&repo);
    refuse(
        &repo,
        VERIFY,
        &[],
        &["rebase is in progress", "finish or abort it"],
    );
}

#[test]
fn modified_tracked_files_are_listed() {
    let repo = TestRepo::with_files(&[
        ("src/value.txt", "10\n"),
        ("measure.sh", "cat src/value.txt\n"),
        ("README.md", "readme\n"),
    ]);
    repo.write("src/value.txt", "11\n");
    repo.write("README.md", "edited\n");
    refuse(
        &repo,
        VERIFY,
        &[],
        &[
            "uncommitted changes to tracked files",
            "src/value.txt",
            "README.md",
            "commit or stash",
        ],
    );
    assert_eq!(
        repo.read("src/value.txt"),
        "11\n",
        "the user's edit is kept"
    );
}

#[test]
fn staged_files_are_listed() {
    let repo = number_repo(10);
    repo.write("src/value.txt", "9\n");
    repo.write("docs/new.md", "new\n");
    repo.git(&["add", "src/value.txt", "docs/new.md"]);
    let line = refuse(
        &repo,
        VERIFY,
        &[],
        &["src/value.txt", "docs/new.md", "commit or stash"],
    );
    assert!(line.contains("uncommitted changes"), "{line}");
}

#[test]
fn untracked_file_inside_the_scope_is_listed() {
    let repo = TestRepo::with_files(&[
        ("src/value.txt", "10\n"),
        ("measure.sh", "cat src/value.txt\n"),
        (".gitignore", "src/*.tmp\n"),
    ]);
    repo.write("src/scratch.txt", "mine\n");
    repo.write("src/cache.tmp", "ignored, so allowed\n");
    repo.write("notes.md", "outside the scope, so allowed\n");
    let line = refuse(
        &repo,
        VERIFY,
        &[],
        &["untracked files inside the scope", "src/scratch.txt"],
    );
    assert!(
        !line.contains("cache.tmp") && !line.contains("notes.md"),
        "only the offending path is listed: {line}"
    );
}

#[test]
fn untracked_file_outside_the_scope_is_allowed_and_never_touched() {
    let repo = number_repo(10);
    repo.write("notes/mine.md", "my notes\n");
    repo.write("notes/other.md", "untouched\n");
    let mtime = || {
        std::fs::metadata(repo.root.join("notes/other.md"))
            .unwrap()
            .modified()
            .unwrap()
    };
    let other_mtime = mtime();
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (
                1,
                "echo overwritten > notes/mine.md; echo 3 > src/value.txt; echo 'rewrite the notes'",
            ),
            (2, "echo 4 > src/value.txt; echo 'lower to 4'"),
        ],
    );
    repo.run_loop(VERIFY, &agent, &["--iterations", "2"])
        .expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "discard", "keep"]);
    let rows = repo.rows();
    assert!(
        rows[1][6].starts_with("[SCOPE] notes/mine.md (your untracked file)"),
        "{}",
        rows[1][6]
    );
    assert_eq!(
        rows[1][1], "-",
        "nothing is committed for a scope violation"
    );
    assert_eq!(repo.read("notes/mine.md"), "my notes\n", "content restored");
    assert_eq!(repo.read("notes/other.md"), "untouched\n");
    assert_eq!(
        mtime(),
        other_mtime,
        "a file the agent left alone is not rewritten"
    );
    assert_eq!(repo.read("src/value.txt"), "4\n");
    assert_eq!(repo.status(), "?? notes/mine.md\n?? notes/other.md\n");
    let committed = repo.git(&["log", "--all", "--format=", "--name-only"]);
    assert!(
        !committed.contains("notes/"),
        "the user's files are never committed:\n{committed}"
    );
}

#[test]
fn baseline_verify_without_a_metric_refuses() {
    let repo = number_repo(10);
    let line = refuse(
        &repo,
        "echo building; echo done",
        &[],
        &["baseline verify gives no metric", "`done`", "--verify"],
    );
    assert!(line.contains("fix --verify"), "{line}");
}

#[test]
fn guard_failing_on_the_untouched_tree_refuses() {
    let repo = number_repo(10);
    refuse(
        &repo,
        "echo 10",
        &["--guard", "echo 'tests failed: 3'; exit 1"],
        &["guard fails on the untouched tree", "tests failed: 3"],
    );
}

#[test]
fn tree_refusals_create_no_engine_files() {
    let repo = number_repo(10);
    let exclude = repo.read(".git/info/exclude");
    repo.write("src/value.txt", "11\n");
    refuse(&repo, VERIFY, &[], &["src/value.txt"]);
    assert!(
        !repo.exists("autoresearch-results"),
        "autoresearch-results/engine/ was created"
    );
    assert_eq!(repo.read(".git/info/exclude"), exclude);
}

#[test]
fn baseline_refusal_is_the_only_stderr_line() {
    let repo = TestRepo::with_files(&[
        ("src/value.txt", "10\n"),
        ("measure.sh", "echo 'no number here'\n"),
    ]);
    refuse(&repo, VERIFY, &[], &["baseline verify gives no metric"]);
}

#[test]
fn a_nested_repository_and_a_big_file_outside_the_scope_are_the_users() {
    let repo = number_repo(10);
    // A nested repository (untracked, not ignored) and a sparse 65 MB file, both outside the scope.
    let nested = repo.root.join("vendor/lib");
    std::fs::create_dir_all(&nested).unwrap();
    let mut git = std::process::Command::new("git");
    hermetic(&mut git, &repo.aux);
    assert!(
        git.args(["init", "-q"])
            .current_dir(&nested)
            .status()
            .unwrap()
            .success()
    );
    std::fs::write(nested.join("code.c"), "int x;\n").unwrap();
    let big = repo.root.join("data.bin");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(65 * 1024 * 1024)
        .unwrap();
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (
                1,
                "echo tail >> data.bin; echo 8 > src/value.txt; echo 'touch the big file'",
            ),
            (2, "echo 7 > src/value.txt; echo 'lower to 7'"),
        ],
    );
    let r = repo.run_loop(
        "sh measure.sh",
        &agent,
        &["--iterations", "2", "--refine-after", "0"],
    );
    r.expect_code(0);
    assert!(
        r.stderr
            .contains("not backed up (directories, or files over 64 MB), only watched"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("data.bin (your untracked file) was changed during the iteration and is too big to copy: left as it is"),
        "{}",
        r.stderr
    );
    assert_eq!(
        repo.statuses(),
        ["baseline", "discard", "keep"],
        "reported once, then watched anew"
    );
    assert!(
        repo.rows()[1][6].contains("[SCOPE] data.bin (your untracked file)"),
        "{}",
        repo.rows()[1][6]
    );
    assert!(
        nested.join("code.c").exists() && nested.join(".git").exists(),
        "the nested repository is untouched"
    );
    assert_eq!(
        std::fs::metadata(&big).unwrap().len(),
        65 * 1024 * 1024 + 5,
        "the user's big file is not deleted"
    );
}

#[test]
fn a_bad_engine_variable_is_refused_before_anything_is_written() {
    for (var, value) in [
        ("AUTORESEARCH_MIN_FREE_MB", "lots"),
        ("AUTORESEARCH_QUOTA_BACKOFF", "xyz"),
        ("AUTORESEARCH_LOG_CAP", "huge"),
    ] {
        let repo = number_repo(10);
        let agent = marking_agent(&repo);
        let before = repo.snapshot();
        let args = TestRepo::loop_args(VERIFY, &agent, &["--iterations", "2"]);
        let r = repo.run_env(&args, &[(var, value)]);
        r.expect_refusal(&[&format!("{var}={value}"), "unset it"]);
        repo.assert_untouched(&before);
        assert!(
            !repo.exists("autoresearch-results"),
            "{var}: nothing may be created"
        );
        assert!(!repo.aux.join("agent-ran").exists(), "{var}: the agent ran");
    }
}
