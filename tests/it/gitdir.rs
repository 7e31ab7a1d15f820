//! What an agent writes inside `.git` (a hook, an exclude entry, a config key) is put back after
//! its turn and discards the iteration as `[PROTECTED] .git/...`, nothing of it committed; when
//! the engine is killed during the turn, the next start puts it back.

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

/// Starts a run whose first turn runs `turn` (`$AUX` is the aux directory) and then sleeps,
/// and kills the engine and the agent there, as a power loss would; returns the agent (its
/// second iteration lowers the number to 8).
fn killed_during_a_turn(repo: &TestRepo, turn: &str) -> String {
    use nix::sys::signal::Signal;
    let marker = repo.aux.join("agent-running");
    let turn = format!(
        "{}; {}; sleep 60",
        turn.replace("$AUX", &repo.aux.display().to_string()),
        mark(&marker)
    );
    let agent = scripted_agent(
        repo,
        "agent.sh",
        &[(1, &turn), (2, "echo 8 > src/value.txt; echo 'lower to 8'")],
    );
    let mut first = repo.spawn(&TestRepo::loop_args(VERIFY, &agent, &["--iterations", "2"]));
    first.wait_for(&marker);
    let agent_group = pgid_of(read_pid(&marker)).expect("the agent is running");
    first.signal(Signal::SIGKILL);
    kill_group(agent_group);
    assert_eq!(first.finish().code, -9);
    assert!(wait_group_gone(agent_group).is_empty());
    assert!(
        repo.exists(".git/hooks/pre-commit"),
        "the killed run left the hook"
    );
    assert!(repo.exists(".git/autoresearch-gitdir.json"));
    agent
}

const HOOK: &str = "printf '#!/bin/sh\\ntouch $AUX/hook-ran\\n' > .git/hooks/pre-commit; chmod +x .git/hooks/pre-commit";

#[test]
fn a_hook_written_before_the_engine_is_killed_is_removed_on_the_next_start() {
    let repo = number_repo(10);
    let agent = killed_during_a_turn(
        &repo,
        &format!(
            "cp .git/config $AUX/config.before; {HOOK}; git config core.hooksPath $AUX/hooks; echo 9 > src/value.txt"
        ),
    );
    let r = repo.run_loop(VERIFY, &agent, &["--iterations", "1"]);
    r.expect_code(0);
    assert!(
        r.stderr.contains(
            "put back .git/config, .git/hooks/pre-commit, which the interrupted turn changed"
        ),
        "{}",
        r.stderr
    );
    assert!(!repo.exists(".git/hooks/pre-commit"), "the hook is gone");
    assert_eq!(
        std::fs::read(repo.root.join(".git/config")).unwrap(),
        std::fs::read(repo.aux.join("config.before")).unwrap(),
        "the config is byte-identical to before the turn"
    );
    assert_eq!(repo.statuses(), ["baseline", "crash", "keep"]);
    let row = &repo.rows()[1][6];
    assert!(row.starts_with("[INTERRUPTED] "), "{row}");
    assert!(
        row.ends_with("; put back .git/config, .git/hooks/pre-commit"),
        "{row}"
    );
    assert!(
        !repo.exists(".git/autoresearch-gitdir.json"),
        "a run that ends cleanly leaves no snapshot behind"
    );
    repo.write("src/value.txt", "7\n");
    repo.git(&["commit", "-qam", "the user's next commit"]);
    assert_eq!(repo.aux_read("hook-ran"), "", "no hook ran on it");
    assert_consistent(&repo);
}

#[test]
fn putting_git_back_keeps_the_exclude_entries_of_the_new_run() {
    let repo = number_repo(10);
    let agent = killed_during_a_turn(&repo, HOOK);
    // The next run writes its output into the tree: its start adds an exclude entry for it,
    // which the snapshot of the killed run does not have.
    let log = std::fs::File::create(repo.root.join("run.log")).unwrap();
    let status = repo
        .cmd()
        .args(TestRepo::loop_args(VERIFY, &agent, &["--iterations", "2"]))
        .stdout(log)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let row = &repo.rows()[1][6];
    assert!(
        row.ends_with("; rolled back; put back .git/hooks/pre-commit"),
        "{row}"
    );
    assert!(!repo.exists(".git/hooks/pre-commit"));
    assert!(repo.exists("run.log"), "the run's own output is left alone");
    assert_eq!(repo.status(), "", "run.log stays excluded");
    assert_eq!(repo.log(), ["experiment: lower to 8", "initial"]);
}

#[test]
fn what_verify_writes_in_git_is_left_when_the_engine_is_killed_during_verify() {
    use nix::sys::signal::Signal;
    let repo = number_repo(10);
    let marker = repo.aux.join("verify-running");
    // Verify is yours: on the trial it sets a config key, then hangs until killed.
    let verify = repo.script(
        "verify.sh",
        &format!(
            "if [ \"$(cat src/value.txt)\" = 5 ]; then git config user.name from-verify; {}; sleep 60; fi\ncat src/value.txt\n",
            mark(&marker)
        ),
    );
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(1, "echo 5 > src/value.txt; echo 'try 5'")],
    );
    let mut first = repo.spawn(&TestRepo::loop_args(
        &verify,
        &agent,
        &["--iterations", "2"],
    ));
    first.wait_for(&marker);
    let verify_group = pgid_of(read_pid(&marker)).expect("verify is running");
    first.signal(Signal::SIGKILL);
    kill_group(verify_group);
    assert_eq!(first.finish().code, -9);
    assert!(repo.exists(".git/autoresearch-gitdir.json"));

    let r = repo.run_loop(&verify, &agent, &["--iterations", "1"]);
    r.expect_code(0);
    assert!(!r.stderr.contains("put back"), "{}", r.stderr);
    assert_eq!(repo.git(&["config", "user.name"]), "from-verify\n");
    assert!(repo.rows()[1][6].starts_with("[INTERRUPTED] try 5 — "));
    assert!(!repo.exists(".git/autoresearch-gitdir.json"));
}

#[test]
fn a_snapshot_kept_by_another_engine_process_is_not_applied() {
    let repo = number_repo(10);
    let agent = killed_during_a_turn(&repo, HOOK);
    let file = repo.root.join(".git/autoresearch-gitdir.json");
    let text = std::fs::read_to_string(&file).unwrap();
    let pid = text
        .split("\"pid\":")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    std::fs::write(
        &file,
        text.replacen(&format!("\"pid\":{pid},"), "\"pid\":1,", 1),
    )
    .unwrap();
    let r = repo.run_loop(VERIFY, &agent, &["--iterations", "2"]);
    r.expect_code(0);
    assert!(
        r.stderr.contains("did not put .git back from")
            && r.stderr
                .contains("it was kept by engine process 1, not by the killed one"),
        "{}",
        r.stderr
    );
    assert!(repo.exists(".git/hooks/pre-commit"), "left as it is");
    assert!(!repo.exists(".git/autoresearch-gitdir.json"));
}
