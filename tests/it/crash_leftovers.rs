//! What a `kill -9` can leave behind besides an unfinished iteration: a temporary file of an
//! atomic write next to the artifacts, an agent recorded nowhere (killed between its spawn and
//! the write of `autoresearch-results/engine/child.json`), and git's own lock files.

use crate::support::*;

/// The usual loop arguments with `--scope .` (everything is in scope, so any stray untracked
/// file at the root would be taken for the agent's).
fn whole_tree_args(agent: &str, iterations: &str) -> Vec<String> {
    let mut args = TestRepo::loop_args("sh measure.sh", agent, &["--iterations", iterations]);
    let scope = args.iter().position(|a| a == "--scope").expect("--scope") + 1;
    args[scope] = ".".into();
    args
}

/// A run of one iteration, then the temporary file a kill -9 inside the state's atomic write
/// leaves beside the state (in `autoresearch-results/`).
fn run_with_planted_temp() -> (TestRepo, String) {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    repo.run_owned(&whole_tree_args(&agent, "1")).expect_code(0);
    repo.write(
        "autoresearch-results/.autoresearch-tmp-abc123",
        "{\"half\": \"a state",
    );
    (repo, agent)
}

#[test]
fn a_temporary_file_left_by_a_killed_write_is_not_taken_for_a_user_file() {
    let (repo, agent) = run_with_planted_temp();
    let r = repo.run_owned(&whole_tree_args(&agent, "2"));
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep", "keep"]);
    assert!(
        !repo
            .read("autoresearch-results/engine/kept-files.json")
            .contains("autoresearch-tmp"),
        "not adopted as an untracked file of the user"
    );
    assert_eq!(repo.status(), "", "hidden by .git/info/exclude");
    assert_consistent(&repo);

    // The March layout writes beside its files at the repository root, where the scope `.`
    // covers it: still the engine's.
    let repo = number_repo(10);
    let mut args = whole_tree_args(&agent, "1");
    args.extend(["--layout".to_string(), "march".to_string()]);
    repo.run_owned(&args).expect_code(0);
    repo.write(".autoresearch-tmp-abc123", "{\"half\": \"a state");
    let n = args.iter().position(|a| a == "--iterations").unwrap() + 1;
    args[n] = "2".into();
    repo.run_owned(&args).expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep", "keep"]);
    assert!(
        !repo
            .read(".autoresearch/kept-files.json")
            .contains("autoresearch-tmp")
    );
    assert_eq!(repo.status(), "");
    assert_consistent(&repo);
}

#[test]
fn a_temporary_file_left_by_a_killed_write_is_swept_at_the_next_start() {
    let (repo, agent) = run_with_planted_temp();
    repo.write(
        "autoresearch-results/engine/.autoresearch-tmp-x1y2z3",
        "partial marker",
    );
    // Killed inside the write of iteration 2's prompt (found by the kill -9 stress test): its
    // marker is there, and the temporary file in its log directory.
    let head = repo.git(&["rev-parse", "HEAD"]);
    let tag = repo.state()["run_tag"].as_str().unwrap().to_string();
    repo.write(
        "autoresearch-results/engine/inflight.json",
        &serde_json::json!({
            "version": 1, "iteration": 2, "run_tag": tag, "branch": "refs/heads/main",
            "start_commit": head.trim(), "phase": "agent", "started_at": "2026-01-01T00:00:00Z",
            "pid": 1,
        })
        .to_string(),
    );
    repo.write(
        "autoresearch-results/engine/iter-0002/.autoresearch-tmp-p4r5s6",
        "",
    );
    // Killed inside the rewrite of .git/info/exclude, or of the agent-turn snapshot of .git.
    repo.write(".git/info/.autoresearch-tmp-e7x8c9", "/partial");
    repo.write(".git/.autoresearch-tmp-g1d2r3", "{");
    let r = repo.run_owned(&whole_tree_args(&agent, "1"));
    r.expect_code(0);
    assert!(
        !repo.exists("autoresearch-results/.autoresearch-tmp-abc123"),
        "{}",
        r.stderr
    );
    assert!(!repo.exists("autoresearch-results/engine/.autoresearch-tmp-x1y2z3"));
    assert!(!repo.exists("autoresearch-results/engine/iter-0002/.autoresearch-tmp-p4r5s6"));
    assert!(!repo.exists(".git/info/.autoresearch-tmp-e7x8c9"));
    assert!(!repo.exists(".git/.autoresearch-tmp-g1d2r3"));
    assert_eq!(repo.statuses(), ["baseline", "keep", "crash"]);
}

/// Starts a run whose agent proposes 5, then (in iteration 1) runs `rest` in the background and
/// sleeps; returns the run once the agent is running, and the marker it wrote.
fn run_with_lingering_agent(repo: &TestRepo, rest: &str) -> (Running, std::path::PathBuf) {
    let marker = repo.aux.join("agent-running");
    let agent = scripted_agent(
        repo,
        "agent.sh",
        &[(
            1,
            &format!(
                "echo 5 > src/value.txt; {}; ({rest}) & sleep 60",
                mark(&marker)
            ),
        )],
    );
    let mut first = repo.spawn(&TestRepo::loop_args(
        "sh measure.sh",
        &agent,
        &["--iterations", "1"],
    ));
    first.wait_for(&marker);
    (first, marker)
}

/// The engine was killed between starting the agent and recording its process group: the agent
/// and the processes it started are found by the run token in their environment.
#[test]
fn an_agent_recorded_nowhere_is_found_by_its_run_token_and_stopped() {
    let repo = number_repo(10);
    let late = repo.aux.join("late-edit");
    // The background child also leaves the agent's process group: only the token finds it.
    let (first, marker) = run_with_lingering_agent(
        &repo,
        &format!(
            "setsid sh -c 'sleep 3; echo 1 > src/value.txt; touch {}'",
            late.display()
        ),
    );
    let agent_pid = read_pid(&marker);
    first.signal(nix::sys::signal::Signal::SIGKILL);
    assert_eq!(first.finish().code, -9);
    // As if the kill came before the engine wrote the record.
    std::fs::remove_file(repo.root.join("autoresearch-results/engine/child.json")).unwrap();
    assert!(proc_state(agent_pid).is_some(), "the orphaned agent runs");

    let agent = repo.script(
        "agent2.sh",
        "cat > /dev/null; echo 7 > src/value.txt; echo 'lower to 7'",
    );
    let r = repo.run_loop("sh measure.sh", &agent, &["--iterations", "1"]);
    r.expect_code(0);
    assert!(
        r.stderr.contains("left running by the previous run"),
        "{}",
        r.stderr
    );
    assert!(proc_state(agent_pid).is_none_or(|s| s == 'Z'));
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert!(
        !late.exists(),
        "the escaped child never wrote after the recovery"
    );
    assert_eq!(repo.statuses(), ["baseline", "crash", "keep"]);
    assert_eq!(repo.read("src/value.txt"), "7\n");
    assert_consistent(&repo);
}

/// A process left by a killed engine holds the run lock's `flock` (a descriptor it inherited):
/// the next run finds it by the run token, ends it, takes the lock, recovers and goes on.
#[test]
fn an_orphan_holding_the_run_lock_is_ended_and_the_lock_taken() {
    let repo = number_repo(10);
    let holding = repo.aux.join("holding");
    let lock = repo.root.join("autoresearch-results/engine/lock");
    let (first, _) = run_with_lingering_agent(
        &repo,
        &format!(
            "exec 9<{}; while ! flock -n 9; do sleep 0.05; done; {}; sleep 60",
            lock.display(),
            mark(&holding)
        ),
    );
    first.signal(nix::sys::signal::Signal::SIGKILL);
    assert_eq!(first.finish().code, -9);
    wait_for("the orphan to take the flock", || holding.exists());
    let holder = read_pid(&holding);

    let agent = repo.script(
        "agent2.sh",
        "cat > /dev/null; echo 7 > src/value.txt; echo 'lower to 7'",
    );
    let r = repo.run_loop("sh measure.sh", &agent, &["--iterations", "1"]);
    r.expect_code(0);
    assert!(
        proc_state(holder).is_none_or(|s| s == 'Z'),
        "the orphan is gone"
    );
    assert_eq!(repo.statuses(), ["baseline", "crash", "keep"]);
    assert_eq!(repo.read("src/value.txt"), "7\n");
    assert_consistent(&repo);
}

/// The engine was killed inside a libgit2 write: `.git/index.lock` is left, and the in-flight
/// marker and the unreleased run lock prove it was the killed run's. The next run removes it,
/// says so, recovers and goes on.
#[test]
fn a_git_lock_left_by_the_killed_run_is_removed_with_a_note() {
    let repo = number_repo(10);
    let (first, _) = run_with_lingering_agent(&repo, "true");
    first.signal(nix::sys::signal::Signal::SIGKILL);
    assert_eq!(first.finish().code, -9);
    assert!(repo.exists("autoresearch-results/engine/inflight.json"));
    repo.write(".git/index.lock", "");

    let agent = repo.script(
        "agent2.sh",
        "cat > /dev/null; echo 7 > src/value.txt; echo 'lower to 7'",
    );
    let r = repo.run_loop("sh measure.sh", &agent, &["--iterations", "1"]);
    r.expect_code(0);
    assert!(
        r.stderr
            .contains("removed .git/index.lock left by the killed run"),
        "{}",
        r.stderr
    );
    assert!(!repo.exists(".git/index.lock"));
    assert_eq!(repo.statuses(), ["baseline", "crash", "keep"]);
    assert_consistent(&repo);
}

/// A git lock file with nothing to prove it is the engine's (no unfinished iteration): the run
/// stops with one line naming the file to delete, and leaves it alone.
#[test]
fn a_git_lock_of_unknown_origin_is_named_not_removed() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    repo.run_loop("sh measure.sh", &agent, &["--iterations", "1"])
        .expect_code(0);
    repo.write(".git/refs/heads/main.lock", "");
    let r = repo.run_loop("sh measure.sh", &agent, &["--iterations", "2"]);
    r.expect_code(2);
    let errors: Vec<&str> = r.stderr.lines().filter(|l| l.contains("error:")).collect();
    assert_eq!(errors.len(), 1, "{}", r.stderr);
    assert!(
        errors[0].contains(
            ".git/refs/heads/main.lock exists: another git command is running, or one was killed; delete it if no git process is running"
        ) && errors[0].contains("git's lock file "),
        "{}",
        r.stderr
    );
    assert!(repo.exists(".git/refs/heads/main.lock"));
}
