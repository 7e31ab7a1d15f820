//! The work-tree watch: a verify that changes nothing costs one scan per iteration, and whatever
//! a verify changes (in any directory a scan looks into, however it writes) is still found and
//! undone.

use crate::support::*;

/// Full scans per iteration, from each iteration's summary.
fn scans(repo: &TestRepo, iterations: u64) -> Vec<u64> {
    (1..=iterations)
        .map(|n| {
            let text = repo.read(&format!(
                "autoresearch-results/engine/iter-{n:04}/summary.json"
            ));
            let v: serde_json::Value = serde_json::from_str(&text).expect("summary json");
            v["tree_scans"].as_u64().expect("tree_scans")
        })
        .collect()
}

/// A repository whose verify leaves something behind for certain values of `src/value.txt`.
fn leaky_repo() -> (TestRepo, String) {
    let repo = TestRepo::with_files(&[
        ("src/value.txt", "10\n"),
        ("src/.gitignore", "cache/\n"),
        (".gitignore", "build/\n"),
        ("notes/keep.txt", "unchanged\n"),
    ]);
    // A tracked file inside an ignored directory, and an ignored, empty directory.
    repo.write("build/tracked.txt", "original\n");
    repo.git(&["add", "-f", "build/tracked.txt"]);
    repo.git(&["commit", "-q", "-m", "tracked file in an ignored directory"]);
    std::fs::create_dir_all(repo.root.join("src/cache")).expect("mkdir");
    let verify = repo.script(
        "verify.sh",
        r#"v=$(cat src/value.txt)
case "$v" in
  7) echo junk > src/junk.txt ;;
  5) echo junk > src/new/junk.txt ;;
  4) echo changed >> build/tracked.txt ;;
  3) echo junk > src/cache/junk.txt ;;
  2) python3 -c "
import mmap
with open('notes/keep.txt', 'r+b') as f:
    m = mmap.mmap(f.fileno(), 0)
    m[0:1] = b'U'
    m.close()
" ;;
esac
echo "$v""#,
    );
    (repo, verify)
}

#[test]
fn a_verify_that_writes_is_always_found_and_a_quiet_one_skips_the_second_scan() {
    let (repo, verify) = leaky_repo();
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo 8 > src/value.txt; echo 'quiet verify'"),
            (2, "echo 7 > src/value.txt; echo 'verify writes a new file'"),
            (
                3,
                "mkdir src/new && echo a > src/new/a.txt && echo 5 > src/value.txt; echo 'new directory'",
            ),
            (
                4,
                "echo 4 > src/value.txt; echo 'verify edits a tracked, ignored file'",
            ),
            (
                5,
                "printf '' > src/.gitignore; echo 3 > src/value.txt; echo 'un-ignore src/cache'",
            ),
            (
                6,
                "echo 2 > src/value.txt; echo 'verify writes through mmap'",
            ),
            (7, "echo 1 > src/value.txt; echo 'quiet again'"),
        ],
    );
    // One measurement per trial (strict), so each iteration's scans are easy to count.
    let r = repo.run_loop(
        &verify,
        &agent,
        &["--iterations", "7", "--keep-rule", "strict"],
    );
    r.expect_code(0);
    assert_eq!(
        repo.statuses(),
        [
            "baseline", "keep", "keep", "keep", "keep", "keep", "keep", "keep"
        ]
    );
    assert_eq!(scans(&repo, 7), [1, 2, 2, 2, 2, 2, 1]);
    assert!(!repo.exists("src/junk.txt"));
    assert!(!repo.exists("src/new/junk.txt"));
    assert_eq!(repo.read("src/new/a.txt"), "a\n");
    assert_eq!(repo.read("build/tracked.txt"), "original\n");
    assert!(!repo.exists("src/cache/junk.txt"));
    assert_eq!(repo.read("notes/keep.txt"), "unchanged\n");
    assert_eq!(repo.status(), "", "the tree is clean after the run");
    assert!(
        !r.stderr.contains("scanning the whole work tree"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_watch_can_be_turned_off() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let mut cmd = repo.cmd();
    cmd.env("AUTORESEARCH_NO_WATCH", "1")
        .args(TestRepo::loop_args(
            "sh measure.sh",
            &agent,
            &["--iterations", "2", "--keep-rule", "strict"],
        ));
    let r: Run = cmd.output().expect("run binary").into();
    r.expect_code(0);
    assert_eq!(scans(&repo, 2), [2, 2]);
    assert!(
        r.stderr
            .contains("scanning the whole work tree every time: AUTORESEARCH_NO_WATCH is set"),
        "{}",
        r.stderr
    );
}

/// What verify writes is the measurement's: undone right after it and never committed. A new
/// file is removed (said once per run); a tracked file it edited (as someone editing during the
/// iteration would) is put back with the edited content kept as a blob and named.
#[test]
fn what_a_measurement_writes_is_undone_never_committed_and_nothing_is_lost() {
    let repo = TestRepo::with_files(&[("src/value.txt", "10\n"), ("README", "hello\n")]);
    let verify = repo.script(
        "verify.sh",
        r#"if [ "$(cat src/value.txt)" = 8 ]; then echo 'my edit' >> README; echo note > usernote.txt; fi
cat src/value.txt"#,
    );
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo 9 > src/value.txt; echo 'lower to 9'"),
            (2, "echo 8 > src/value.txt; echo 'lower to 8'"),
        ],
    );
    let r = repo.run_loop(&verify, &agent, &["--iterations", "2", "--run-tag", "t"]);
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep", "keep"]);
    // The tree is back at the kept commit, which holds nothing verify wrote...
    assert_eq!(repo.read("README"), "hello\n");
    assert!(!repo.exists("usernote.txt"));
    assert_eq!(repo.status(), "");
    let kept = repo.git(&["show", "--name-only", "--format=", "HEAD"]);
    assert_eq!(
        kept.trim(),
        "src/value.txt",
        "only the agent's change is committed"
    );
    assert!(
        repo.git(&["for-each-ref", "refs/autoresearch/t/"])
            .lines()
            .all(|l| !l.contains("leftover")),
        "no commit holds what verify wrote"
    );
    // ...and the edit of the tracked file is not lost: its content is kept as a blob.
    let blob = r
        .stderr
        .split("verify changed README (tracked): put back; the changed content is kept as blob ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no blob note:\n{}", r.stderr));
    assert_eq!(repo.git(&["cat-file", "-p", blob]), "hello\nmy edit\n");
    assert!(
        r.stderr.contains(
            "verify wrote usernote.txt: what verify and guard write is the measurement's, never the agent's; removed, never committed (said once)"
        ),
        "{}",
        r.stderr
    );
    let summary: serde_json::Value =
        serde_json::from_str(&repo.read("autoresearch-results/engine/iter-0002/summary.json"))
            .unwrap();
    let notes = summary["notes"].to_string();
    assert!(
        notes.contains(blob) && notes.contains("usernote.txt"),
        "{summary}"
    );
}

/// A guard that writes files (a report, a cache) inside the scope: a rework turn does not
/// inherit them (its change is not a `[SCOPE]` discard) and the kept commit does not hold them.
#[test]
fn guard_writes_are_not_the_reworks_and_never_reach_the_kept_commit() {
    let repo = TestRepo::with_files(&[("src/value.txt", "10\n"), ("src/ok.txt", "yes\n")]);
    let verify = repo.script("verify.sh", "cat src/value.txt");
    let guard = repo.script(
        "guard.sh",
        "echo report > src/guard-out.txt; mkdir -p src/__pycache__; echo pyc > src/__pycache__/m.pyc\n[ \"$(cat src/ok.txt)\" = yes ]",
    );
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(
            1,
            r#"if [ "$AUTORESEARCH_DIRECTIVE" = rework ]; then echo yes > src/ok.txt; echo 'fix ok'; else echo 9 > src/value.txt; echo no > src/ok.txt; echo 'lower to 9'; fi"#,
        )],
    );
    let r = repo.run_loop(
        &verify,
        &agent,
        &[
            "--iterations",
            "1",
            "--guard",
            &format!("sh {guard}"),
            "--rework",
            "1",
        ],
    );
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep"], "{}", r.stderr);
    let committed = repo.git(&["log", "--format=", "--name-only", "HEAD"]);
    assert!(
        !committed.contains("guard-out.txt") && !committed.contains("__pycache__"),
        "{committed}"
    );
    assert!(!repo.exists("src/guard-out.txt"));
    assert_eq!(repo.status(), "");
}

/// An edit made between two iterations (nobody but the user writes then) stops the run as a
/// hard blocker and is left exactly as it is; a new file outside the scope is adopted as the
/// user's instead.
#[test]
fn an_edit_between_iterations_stops_the_run_untouched() {
    use nix::sys::signal::Signal;
    // The edit must land after iteration 1 is recorded and before iteration 2 starts: the test
    // freezes the engine at that point (and tries again in the rare case it was too late).
    for attempt in 1..=10 {
        let repo = TestRepo::with_files(&[("src/value.txt", "10\n"), ("README", "hello\n")]);
        repo.write("scratch.txt", "my untracked file\n");
        let started = repo.aux.join("agent-2-started");
        let agent = scripted_agent(
            &repo,
            "agent.sh",
            &[
                (1, "echo 9 > src/value.txt; echo 'lower to 9'"),
                (
                    2,
                    &format!(
                        "touch {}; echo 8 > src/value.txt; echo 'lower to 8'",
                        started.display()
                    ),
                ),
            ],
        );
        let verify = repo.script("verify.sh", "cat src/value.txt");
        let run = repo.spawn(&TestRepo::loop_args(
            &verify,
            &agent,
            &["--iterations", "3"],
        ));
        let summary = repo
            .root
            .join("autoresearch-results/engine/iter-0001/summary.json");
        let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !summary.exists() && std::time::Instant::now() < end {
            std::hint::spin_loop();
        }
        run.signal(Signal::SIGSTOP);
        if started.exists()
            || repo
                .root
                .join("autoresearch-results/engine/iter-0002")
                .exists()
        {
            run.signal(Signal::SIGCONT);
            run.finish();
            eprintln!("attempt {attempt}: iteration 2 had started; trying again");
            continue;
        }
        repo.write("README", "hello\nmy edit\n");
        repo.write("notes.txt", "mine\n");
        std::fs::remove_file(repo.root.join("scratch.txt")).unwrap();
        run.signal(Signal::SIGCONT);
        let r = run.finish();
        r.expect_code(2);
        assert!(!started.exists(), "the agent ran after the edit");
        assert_eq!(repo.statuses(), ["baseline", "keep", "blocked"]);
        let row = &repo.rows()[2];
        assert!(
            row[6].starts_with("the work tree changed between iterations (README)"),
            "{}",
            row[6]
        );
        assert_eq!(repo.read("README"), "hello\nmy edit\n");
        assert_eq!(repo.read("notes.txt"), "mine\n");
        assert!(
            r.stderr.contains("notes.txt appeared outside the scope"),
            "{}",
            r.stderr
        );
        return;
    }
    panic!("the engine was never caught between iterations");
}

/// `--rollback revert` checks the retained tree out by force: what the restore would undo is
/// copied before that, too. And when an agent turn fails, your changed untracked file is put
/// back with its changed content kept as a blob.
#[test]
fn nothing_is_lost_with_revert_or_a_failed_turn() {
    let repo = TestRepo::with_files(&[("src/value.txt", "10\n"), ("README", "hello\n")]);
    repo.write("notes/mine.md", "my notes\n");
    let verify = repo.script(
        "verify.sh",
        r#"[ "$(cat src/value.txt)" = 11 ] && echo 'my edit' >> README
cat src/value.txt"#,
    );
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo 11 > src/value.txt; echo 'raise to 11'"),
            (
                2,
                "echo changed > notes/mine.md; echo 9 > src/value.txt; exit 3",
            ),
        ],
    );
    let r = repo.run_loop(
        &verify,
        &agent,
        &[
            "--iterations",
            "2",
            "--run-tag",
            "t",
            "--rollback",
            "revert",
        ],
    );
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "discard", "crash"]);
    assert_eq!(repo.read("README"), "hello\n");
    let edited = r
        .stderr
        .split("verify changed README (tracked): put back; the changed content is kept as blob ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no blob note:\n{}", r.stderr));
    assert_eq!(repo.git(&["cat-file", "-p", edited]), "hello\nmy edit\n");
    assert_eq!(
        repo.read("notes/mine.md"),
        "my notes\n",
        "your copy is put back"
    );
    let blob = r
        .stderr
        .split("your copy is put back, the changed content is kept as blob ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no blob note:\n{}", r.stderr));
    assert_eq!(repo.git(&["cat-file", "-p", blob]), "changed\n");
    let committed = repo.git(&["log", "--all", "--format=", "--name-only"]);
    assert!(
        !committed.contains("notes/"),
        "never committed:\n{committed}"
    );
}

/// The baseline too: the guard runs on the untouched tree, without what verify wrote.
#[test]
fn the_baseline_guard_does_not_see_what_verify_wrote() {
    let repo = TestRepo::with_files(&[("src/value.txt", "10\n")]);
    let verify = repo.script("verify.sh", "echo junk > src/junk.txt\ncat src/value.txt");
    let guard = repo.script("guard.sh", "[ ! -e src/junk.txt ]");
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(1, "echo 9 > src/value.txt; echo nine")],
    );
    let r = repo.run_loop(
        &verify,
        &agent,
        &["--iterations", "1", "--guard", &format!("sh {guard}")],
    );
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep"], "{}", r.stderr);
    assert!(!repo.exists("src/junk.txt"));
}
