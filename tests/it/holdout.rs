//! `--holdout` (GUIDE §7b): a second measurement the agent never sees. A keep whose holdout got
//! worse is tagged, or discarded with `--holdout-policy reject`; the command is in no prompt,
//! no agent environment, no state file and no results log, and its logs are inside `.git`.

use crate::support::*;

/// Lowers the value every turn; the second turn also makes the held-out number worse. The
/// agent writes what it was given (its prompt and environment) next to the scripts.
fn agent(repo: &TestRepo) -> String {
    let seen = repo.aux.join("seen.txt");
    repo.script(
        "agent.sh",
        &format!(
            "cat >> {seen}\nenv >> {seen}\nv=$(cat src/value.txt)\necho $((v - 1)) > src/value.txt\nif [ \"$AUTORESEARCH_ITERATION\" = 2 ]; then echo 9 > src/side.txt; fi\necho \"lower to $((v - 1))\"",
            seen = seen.display()
        ),
    )
}

fn holdout_repo() -> TestRepo {
    TestRepo::with_files(&[("src/value.txt", "10\n"), ("src/side.txt", "5\n")])
}

const HOLDOUT: &str = "cat src/side.txt # held-out-check";

#[test]
fn a_holdout_regression_tags_the_keep_and_the_agent_never_sees_the_holdout() {
    let repo = holdout_repo();
    let agent = agent(&repo);
    let r = repo.run_loop(
        "cat src/value.txt",
        &agent,
        &["--iterations", "3", "--holdout", HOLDOUT],
    );
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep", "keep", "keep"]);
    let rows = repo.rows();
    assert_eq!(rows[1][6], "lower to 9");
    assert_eq!(rows[2][6], "[HOLDOUT] (holdout 5 -> 9) lower to 8");
    // The regressed value became the reference: the third keep is not tagged.
    assert_eq!(rows[3][6], "lower to 7");
    assert!(
        r.stderr
            .contains("holdout: 5 at the start -> 9 at the end (worse than at the start)"),
        "{}",
        r.stderr
    );
    assert_eq!(repo.state()["holdout"]["end"].as_f64(), Some(9.0));

    let seen = repo.aux_read("seen.txt");
    assert!(
        seen.contains("lower the number"),
        "the agent got its prompt"
    );
    assert!(
        !seen.contains("held-out-check"),
        "the holdout reached the agent:\n{seen}"
    );
    for f in [
        "autoresearch-results/state.json",
        "autoresearch-results/results.tsv",
        "autoresearch-results/engine/settings.json",
    ] {
        assert!(
            !repo.read(f).contains("held-out-check"),
            "{f} names the holdout"
        );
    }
    let logs = repo.root.join(".git/autoresearch-holdout/lower-the-number");
    assert!(
        logs.join("start-1.log").exists(),
        "holdout logs inside .git"
    );
    assert!(logs.join("iter-0002-1.log").exists());
    assert!(
        !repo
            .read(".git/autoresearch-holdout/lower-the-number/end-1.log")
            .is_empty()
    );
}

#[test]
fn with_reject_a_holdout_regression_is_a_discard() {
    let repo = holdout_repo();
    let agent = agent(&repo);
    repo.run_loop(
        "cat src/value.txt",
        &agent,
        &[
            "--iterations",
            "2",
            "--holdout",
            HOLDOUT,
            "--holdout-policy",
            "reject",
        ],
    )
    .expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep", "discard"]);
    assert_eq!(repo.rows()[2][6], "[HOLDOUT] (holdout 5 -> 9) lower to 8");
    assert_eq!(
        repo.read("src/side.txt"),
        "5\n",
        "the rejected trial was rolled back"
    );
    assert_eq!(repo.read("src/value.txt"), "9\n");
}

#[test]
fn a_holdout_without_a_metric_refuses_the_start() {
    let repo = holdout_repo();
    let agent = agent(&repo);
    let r = repo.run_loop(
        "cat src/value.txt",
        &agent,
        &["--iterations", "1", "--holdout", "echo no number here"],
    );
    r.expect_code(2);
    assert!(
        r.stderr
            .contains("the holdout gives no metric on the untouched tree"),
        "{}",
        r.stderr
    );
    assert!(
        !repo.exists("autoresearch-results/results.tsv"),
        "nothing written"
    );
}
