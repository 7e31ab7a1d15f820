//! What an agent writes inside `.git` (a hook, an exclude entry, a config key) is put back after
//! its turn and discards the iteration as `[PROTECTED] .git/...`, nothing of it committed.

use crate::support::*;

const VERIFY: &str = "sh measure.sh";

/// Runs `turn` as iteration 1 and a plain improvement as iteration 2; returns the repository.
fn run_turn(turn: &str) -> TestRepo {
    let repo = number_repo(10);
    let turn = turn.replace("$AUX", &repo.aux.display().to_string());
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(1, &turn), (2, "echo 8 > src/value.txt; echo 'lower to 8'")],
    );
    repo.run_loop(VERIFY, &agent, &["--iterations", "2"])
        .expect_code(0);
    repo
}

/// Asserts row 1 is a discard tagged `tag` with nothing committed, and row 2 a normal keep.
#[track_caller]
fn assert_protected_then_keep(repo: &TestRepo, tag: &str) {
    let rows = repo.rows();
    assert_eq!(repo.statuses(), ["baseline", "discard", "keep"], "{rows:?}");
    assert_eq!(rows[1][6], tag);
    assert_eq!(rows[1][1], "-", "nothing of the turn is committed");
    assert_eq!(rows[1][2], "10", "the discard carries the retained metric");
    assert_eq!(repo.log(), ["experiment: lower to 8", "initial"]);
    assert_eq!(repo.status(), "", "the tree is clean after the run");
}

#[test]
fn a_hook_added_by_the_agent_is_removed_and_discards_the_turn() {
    let repo = run_turn(
        "printf '#!/bin/sh\\ntouch $AUX/hook-ran\\n' > .git/hooks/pre-commit; chmod +x .git/hooks/pre-commit; echo 9 > src/value.txt; echo 'add a hook'",
    );
    assert_protected_then_keep(&repo, "[PROTECTED] .git/hooks/pre-commit — add a hook");
    assert!(!repo.exists(".git/hooks/pre-commit"), "the hook is gone");
    repo.write("src/value.txt", "7\n");
    repo.git(&["commit", "-qam", "the user's next commit"]);
    assert_eq!(repo.aux_read("hook-ran"), "", "no hook ran on it");
}

#[test]
fn an_exclude_entry_added_by_the_agent_is_removed_with_the_change_it_hid() {
    let repo = run_turn(
        "cp .git/info/exclude $AUX/exclude.before; echo src/value.txt >> .git/info/exclude; echo 1 > src/value.txt; echo 'hide the value'",
    );
    assert_protected_then_keep(&repo, "[PROTECTED] .git/info/exclude — hide the value");
    assert_eq!(
        std::fs::read(repo.root.join(".git/info/exclude")).unwrap(),
        std::fs::read(repo.aux.join("exclude.before")).unwrap(),
        "info/exclude is byte-identical to before the turn"
    );
    // The retained content at the discard was 10; the keep after it wrote 8.
    assert_eq!(
        repo.git(&["show", "HEAD~1:src/value.txt"]),
        "10\n",
        "the hidden edit was not committed"
    );
    assert_eq!(repo.read("src/value.txt"), "8\n");
}

#[test]
fn a_config_key_set_by_the_agent_is_removed_and_discards_the_turn() {
    let repo = run_turn(
        "cp .git/config $AUX/config.before; git config core.hooksPath $AUX/hooks; echo 'move the hooks'",
    );
    assert_protected_then_keep(&repo, "[PROTECTED] .git/config — move the hooks");
    assert_eq!(
        std::fs::read(repo.root.join(".git/config")).unwrap(),
        std::fs::read(repo.aux.join("config.before")).unwrap(),
        "the config is byte-identical to before the turn"
    );
}
