//! `codex-autoresearch finalize` (issue 13): a branch from the run's start commit holding its
//! keeps, one commit each or squashed, made without touching the user's branch or work tree;
//! refused for an existing name, no run, no keep.

use crate::support::*;

const VERIFY: &str = "sh measure.sh";

/// A finished run with keeps at iterations 1 and 3 and a discard between; returns the repository
/// and its start commit.
fn run_with_two_keeps() -> (TestRepo, String) {
    let repo = TestRepo::with_files(&[
        ("src/value.txt", "10\n"),
        ("src/other.txt", "a\n"),
        ("measure.sh", "cat src/value.txt\n"),
    ]);
    let start = repo.head();
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo 7 > src/value.txt; echo 'lower to 7'"),
            (2, "echo 9 > src/value.txt; echo 'raise to 9'"),
            (
                3,
                "echo 4 > src/value.txt; echo b > src/other.txt; echo 'lower to 4'",
            ),
        ],
    );
    repo.run_loop(VERIFY, &agent, &["--iterations", "3", "--run-tag", "fin"])
        .expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep", "discard", "keep"]);
    (repo, start)
}

/// Asserts that the user's side (HEAD, its branch, the index, the tree and every other ref) is
/// as in `before`, the new branch `created` aside.
#[track_caller]
fn assert_user_side_untouched(repo: &TestRepo, before: &Snapshot, created: &str) {
    let after = repo.snapshot();
    let refs: String = after
        .refs
        .lines()
        .filter(|l| !l.starts_with(&format!("refs/heads/{created} ")))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(refs, before.refs, "only the new branch was added");
    assert_eq!(
        (
            &after.head,
            &after.symbolic_head,
            &after.index,
            &after.status
        ),
        (
            &before.head,
            &before.symbolic_head,
            &before.index,
            &before.status
        )
    );
    assert_eq!(after.files, before.files, "the work tree is untouched");
}

fn tree_of(repo: &TestRepo, rev: &str) -> String {
    repo.git(&["rev-parse", &format!("{rev}^{{tree}}")])
        .trim()
        .to_string()
}

#[test]
fn issue_13_finalize_replays_each_keep_as_its_own_commit_on_a_new_branch() {
    let (repo, start) = run_with_two_keeps();
    let before = repo.snapshot();
    let r = repo.run(&["finalize"]);
    r.expect_code(0);
    let branch = "autoresearch/fin-final";
    assert!(
        r.stdout.contains(&format!("git push -u origin {branch}"))
            && r.stdout
                .contains(&format!("gh pr create --head {branch} --fill\n")),
        "{}",
        r.stdout
    );
    assert_user_side_untouched(&repo, &before, branch);
    let range = format!("{start}..{branch}");
    assert_eq!(
        repo.git(&["log", "--format=%s", &range])
            .lines()
            .collect::<Vec<_>>(),
        ["experiment: lower to 4", "experiment: lower to 7"]
    );
    assert_eq!(
        repo.git(&["rev-parse", &format!("{branch}~2")]).trim(),
        start
    );
    assert_eq!(tree_of(&repo, branch), tree_of(&repo, "HEAD"));
    // The same name again: refused with one line, nothing changed.
    let before = repo.snapshot();
    let again = repo.run(&["finalize"]);
    again.expect_refusal(&[branch, "already exists", "--branch"]);
    assert_eq!(repo.snapshot(), before);
}

#[test]
fn issue_13_finalize_squash_makes_one_commit_listing_the_keeps() {
    let (repo, start) = run_with_two_keeps();
    let before = repo.snapshot();
    let r = repo.run(&["finalize", "--squash", "--branch", "review/sq", "--json"]);
    r.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("one JSON object");
    assert_eq!(v["branch"], "review/sq");
    assert_eq!(v["squash"], true);
    assert_eq!(v["start"], start.as_str());
    assert_eq!(v["push"], "git push -u origin review/sq");
    assert!(
        v["pr"]
            .as_str()
            .unwrap()
            .starts_with("gh pr create --head review/sq")
    );
    let keeps = v["keeps"].as_array().expect("keeps");
    assert_eq!(keeps.len(), 2);
    assert_eq!(keeps[0]["iteration"], 1);
    assert_eq!(keeps[1]["commit"], v["head"]);
    assert_user_side_untouched(&repo, &before, "review/sq");
    // One commit on the start commit, with the run's final tree.
    assert_eq!(repo.git(&["rev-parse", "review/sq^"]).trim(), start);
    assert_eq!(tree_of(&repo, "review/sq"), tree_of(&repo, "HEAD"));
    let message = repo.git(&["log", "-1", "--format=%B", "review/sq"]);
    assert!(
        message.starts_with("autoresearch fin: value 10 -> 4 (2 keeps)"),
        "{message}"
    );
    assert!(
        message.contains("- #1 lower to 7 (value 7, -3)"),
        "{message}"
    );
    assert!(
        message.contains("- #3 lower to 4 (value 4, -3)"),
        "{message}"
    );
    // An existing branch of the user's is refused too, and left as it was.
    repo.git(&["branch", "mine"]);
    let before = repo.snapshot();
    repo.run(&["finalize", "--branch", "mine"])
        .expect_refusal(&["mine", "already exists"]);
    assert_eq!(repo.snapshot(), before);
}

#[test]
fn issue_13_finalize_refuses_without_a_run_or_a_keep() {
    let repo = number_repo(10);
    let before = repo.snapshot();
    repo.run(&["finalize"])
        .expect_refusal(&["no autoresearch run"]);
    assert_eq!(repo.snapshot(), before);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(1, "echo 12 > src/value.txt; echo 'raise to 12'")],
    );
    repo.run_loop(VERIFY, &agent, &["--iterations", "1"])
        .expect_code(0);
    let before = repo.snapshot();
    repo.run(&["finalize"]).expect_refusal(&["no keep"]);
    assert_eq!(repo.snapshot(), before);
}
