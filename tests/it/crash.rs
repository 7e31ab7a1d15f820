//! Crash safety: `kill -9` of the engine mid-agent and mid-verify followed by a clean resume,
//! SIGINT and SIGTERM (exit 130 / 143, process groups killed, `[INTERRUPTED]` rows), the run lock
//! (live holder, dead pid, reused pid), and the hard blockers (broken verify, low disk, HEAD moved).
//!
//! Synchronisation is by marker files the scripted agents and verify commands write; nothing
//! depends on timing beyond generous polling limits.

use nix::sys::signal::Signal;

use crate::support::*;

const TAG: &str = "lower-the-number";

fn trial_ref(n: u32) -> String {
    format!("refs/autoresearch/{TAG}/trial-{n}")
}

/// A number repository with a user's untracked file outside the scope and an ignored file.
fn repo_with_user_files() -> TestRepo {
    let repo = TestRepo::with_files(&[
        ("src/value.txt", "10\n"),
        ("measure.sh", "cat src/value.txt\n"),
        (".gitignore", "build/\n"),
    ]);
    repo.write("notes/mine.md", "my notes\n");
    repo.write("build/cache.bin", "ignored\n");
    repo
}

/// Asserts the tree is at the retained state: only the user's file is untracked, it and the
/// ignored file are intact, and the iteration's new file is gone.
#[track_caller]
fn assert_user_files_intact(repo: &TestRepo) {
    assert_eq!(repo.status(), "?? notes/mine.md\n");
    assert_eq!(repo.read("notes/mine.md"), "my notes\n");
    assert_eq!(repo.read("build/cache.bin"), "ignored\n");
    assert!(
        !repo.exists("src/added.txt"),
        "the trial's new file is gone"
    );
}

#[test]
fn kill_9_during_the_agent_then_resume() {
    let repo = repo_with_user_files();
    let initial = repo.head();
    let marker = repo.aux.join("agent-running");
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (
                1,
                &format!(
                    "echo 5 > src/value.txt; echo new > src/added.txt; mkdir -p src/new/deep; echo n > src/new/deep/file.txt; echo clobbered > notes/mine.md; {}; sleep 60",
                    mark(&marker)
                ),
            ),
            (2, "echo 7 > src/value.txt; echo 'lower to 7'"),
        ],
    );
    let mut first = repo.spawn(&TestRepo::loop_args(
        "sh measure.sh",
        &agent,
        &["--iterations", "2"],
    ));
    first.wait_for(&marker);
    let engine_pid = first.pid();
    let agent_group = pgid_of(read_pid(&marker)).expect("the agent is running");
    assert_ne!(
        agent_group,
        pgid_of(first.pid() as i32).unwrap(),
        "the agent runs in its own process group"
    );
    // The machine dies: the engine and the agent's whole group go at once.
    first.signal(Signal::SIGKILL);
    kill_group(agent_group);
    assert_eq!(first.finish().code, -9);
    assert!(wait_group_gone(agent_group).is_empty());
    assert!(repo.exists("autoresearch-results/engine/inflight.json"));
    assert_eq!(
        repo.read("src/value.txt"),
        "5\n",
        "the unfinished edit is there"
    );
    assert_eq!(repo.read("notes/mine.md"), "clobbered\n");

    let r = repo.run_loop("sh measure.sh", &agent, &["--iterations", "3"]);
    r.expect_code(0);
    assert!(
        r.stderr
            .contains("iteration 1 was interrupted during agent"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains(&format!("reclaimed the lock left by pid {engine_pid} ")),
        "{}",
        r.stderr
    );
    assert_eq!(
        repo.statuses(),
        ["baseline", "crash", "keep", "no-op", "no-op"]
    );
    let rows = repo.rows();
    assert!(rows[1][6].starts_with("[INTERRUPTED]"), "{}", rows[1][6]);
    assert!(rows[1][6].contains(&trial_ref(1)), "{}", rows[1][6]);
    assert_eq!((rows[1][2].as_str(), rows[1][3].as_str()), ("10", "0"));
    // The interrupted work is preserved on top of the retained commit, without the user's file.
    let preserved = repo.git(&["rev-parse", &trial_ref(1)]).trim().to_string();
    assert_eq!(rows[1][1], preserved[..7]);
    assert_eq!(
        repo.git(&["rev-parse", &format!("{preserved}^")]).trim(),
        initial
    );
    assert_eq!(
        repo.git(&["show", &format!("{preserved}:src/value.txt")]),
        "5\n"
    );
    assert_eq!(
        repo.git(&["show", &format!("{preserved}:src/added.txt")]),
        "new\n"
    );
    let files = repo.git(&["ls-tree", "-r", "--name-only", &preserved]);
    assert!(files.contains("src/new/deep/file.txt"), "{files}");
    assert!(!files.contains("notes/"), "{files}");
    // The agent's version of your file is put aside as a blob, not lost and not committed.
    let blob = r
        .stderr
        .split("notes/mine.md (your untracked file) was changed during the iteration; your copy is put back, the changed content is kept as blob ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no blob note:\n{}", r.stderr));
    assert_eq!(repo.git(&["cat-file", "-p", blob]), "clobbered\n");
    assert!(
        !repo.exists("src/new"),
        "new directories are removed with their files"
    );
    // The branch holds the keep of the resumed run only.
    assert_eq!(repo.log(), ["experiment: lower to 7", "initial"]);
    assert_eq!(repo.read("src/value.txt"), "7\n");
    assert_user_files_intact(&repo);
    assert_consistent(&repo);
    let state = repo.state();
    assert_eq!(state["state"]["iteration"], 4);
    assert_eq!(state["state"]["crashes"], 1);
    assert_eq!(state["engine"]["head"], repo.head());
}

#[test]
fn kill_9_during_verify_then_resume() {
    let repo = repo_with_user_files();
    let initial = repo.head();
    let (verify, agent, marker) = verify_hangs_on_the_trial(&repo);
    let mut first = repo.spawn(&TestRepo::loop_args(
        &verify,
        &agent,
        &["--iterations", "2"],
    ));
    first.wait_for(&marker);
    let verify_group = pgid_of(read_pid(&marker)).expect("verify is running");
    // The trial commit exists before verify runs.
    let trial = repo.head();
    assert_ne!(trial, initial);
    assert_eq!(repo.log()[0], "experiment: try 5");
    first.signal(Signal::SIGKILL);
    assert_eq!(first.finish().code, -9);
    // The orphaned verify is left running (it only sleeps): it must not matter to the resume.

    let r = repo.run_loop(&verify, &agent, &["--iterations", "1"]);
    r.expect_code(0);
    assert!(
        r.stderr
            .contains("iteration 1 was interrupted during verify"),
        "{}",
        r.stderr
    );
    // The recovered crash row is no experiment: the one iteration asked for still runs.
    assert_eq!(repo.statuses(), ["baseline", "crash", "keep"]);
    let rows = repo.rows();
    assert!(rows[1][6].starts_with("[INTERRUPTED]"), "{}", rows[1][6]);
    assert_eq!(rows[1][1], trial[..7], "the row names the trial commit");
    assert_eq!(
        repo.git(&["rev-parse", &trial_ref(1)]).trim(),
        trial,
        "the trial commit itself is kept under the trial ref"
    );
    assert_eq!(
        repo.git(&["rev-parse", "HEAD^"]).trim(),
        initial,
        "the branch went back to the retained commit before the keep"
    );
    assert_eq!(repo.read("src/value.txt"), "7\n");
    assert_user_files_intact(&repo);
    assert_consistent(&repo);

    let r = repo.run_loop(&verify, &agent, &["--iterations", "2"]);
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "crash", "keep", "no-op"]);
    assert_eq!(repo.log(), ["experiment: lower to 7", "initial"]);
    assert_user_files_intact(&repo);
    assert_consistent(&repo);
    kill_group(verify_group);
}

#[test]
fn sigint_during_the_agent_kills_its_group_and_rolls_back() {
    let repo = repo_with_user_files();
    let initial = repo.head();
    let marker = repo.aux.join("agent-running");
    let grandchild = repo.aux.join("grandchild");
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (
                1,
                &format!(
                    "echo 5 > src/value.txt; echo new > src/added.txt; sleep 60 & echo $! > {}; {}; sleep 60",
                    grandchild.display(),
                    mark(&marker)
                ),
            ),
            (2, "echo 7 > src/value.txt; echo 'lower to 7'"),
        ],
    );
    let mut run = repo.spawn(&TestRepo::loop_args(
        "sh measure.sh",
        &agent,
        &["--iterations", "2"],
    ));
    run.wait_for(&marker);
    let group = pgid_of(read_pid(&marker)).expect("the agent is running");
    let sleeper = read_pid(&grandchild);
    assert_eq!(
        pgid_of(sleeper),
        Some(group),
        "the grandchild is in the group"
    );
    run.signal(Signal::SIGINT);
    let r = run.finish();
    r.expect_code(130);
    assert_eq!(
        wait_group_gone(group),
        Vec::<i32>::new(),
        "no process of the agent survives"
    );
    assert_eq!(repo.statuses(), ["baseline", "crash"]);
    let row = &repo.rows()[1];
    assert!(
        row[6].starts_with("[INTERRUPTED]") && row[6].contains("SIGINT"),
        "{}",
        row[6]
    );
    assert_eq!(repo.head(), initial);
    assert_eq!(repo.read("src/value.txt"), "10\n");
    let preserved = repo.git(&["rev-parse", &trial_ref(1)]).trim().to_string();
    assert_eq!(row[1], preserved[..7]);
    assert_eq!(
        repo.git(&["show", &format!("{preserved}:src/added.txt")]),
        "new\n"
    );
    assert_user_files_intact(&repo);
    assert_consistent(&repo);
    // The record carries the time the interrupted iteration took.
    let summary: serde_json::Value =
        serde_json::from_str(&repo.read("autoresearch-results/engine/iter-0001/summary.json"))
            .unwrap();
    let (total, agent_ms) = (summary["total_ms"].as_u64(), summary["agent_ms"].as_u64());
    assert!(total >= agent_ms && agent_ms > Some(0), "{summary}");
    assert_eq!(summary["status"], "crash");

    // The next run has nothing to recover and simply continues.
    let r = repo.run_loop("sh measure.sh", &agent, &["--iterations", "1"]);
    r.expect_code(0);
    assert!(!r.stderr.contains("interrupted"), "{}", r.stderr);
    assert_eq!(repo.statuses(), ["baseline", "crash", "keep"]);
    assert_consistent(&repo);
}

#[test]
fn sigterm_during_verify_kills_its_group_and_rolls_back() {
    let repo = repo_with_user_files();
    let initial = repo.head();
    let marker = repo.aux.join("verifying");
    let verify = format!(
        "sh {}",
        repo.script(
            "measure.sh",
            &format!(
                "v=$(cat src/value.txt)\nif [ \"$v\" = 5 ]; then sleep 60 & {}; sleep 60; fi\necho $v",
                mark(&marker)
            ),
        )
    );
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(
            1,
            "echo 5 > src/value.txt; echo new > src/added.txt; echo 'try 5'",
        )],
    );
    let mut run = repo.spawn(&TestRepo::loop_args(
        &verify,
        &agent,
        &["--iterations", "2"],
    ));
    run.wait_for(&marker);
    let group = pgid_of(read_pid(&marker)).expect("verify is running");
    let trial = repo.head();
    assert_ne!(trial, initial);
    run.signal(Signal::SIGTERM);
    let r = run.finish();
    r.expect_code(143);
    assert_eq!(
        wait_group_gone(group),
        Vec::<i32>::new(),
        "no process of verify survives"
    );
    assert_eq!(repo.statuses(), ["baseline", "crash"]);
    let row = &repo.rows()[1];
    assert!(
        row[6].starts_with("[INTERRUPTED]") && row[6].contains("SIGTERM"),
        "{}",
        row[6]
    );
    assert_eq!(row[1], trial[..7]);
    assert_eq!(repo.git(&["rev-parse", &trial_ref(1)]).trim(), trial);
    assert_eq!(
        repo.head(),
        initial,
        "the branch is back at the retained commit"
    );
    assert_user_files_intact(&repo);
    assert_consistent(&repo);
}

#[test]
fn a_second_sigint_exits_at_once_and_the_next_run_recovers() {
    let repo = repo_with_user_files();
    let initial = repo.head();
    let marker = repo.aux.join("verifying");
    let got_term = repo.aux.join("got-term");
    // On the trial's value, verify ignores SIGTERM (noting it got one) and never ends, so the
    // engine is still in its grace period when the second SIGINT arrives.
    let verify = format!(
        "sh {}",
        repo.script(
            "measure.sh",
            &format!(
                "v=$(cat src/value.txt)\nif [ \"$v\" = 5 ]; then\n  trap 'touch {}' TERM\n  {}\n  while :; do sleep 0.1; done\nfi\necho $v",
                got_term.display(),
                mark(&marker)
            ),
        )
    );
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(
            1,
            "echo 5 > src/value.txt; echo new > src/added.txt; echo 'try 5'",
        )],
    );
    let mut run = repo.spawn(&TestRepo::loop_args(
        &verify,
        &agent,
        &["--iterations", "1"],
    ));
    run.wait_for(&marker);
    let group = pgid_of(read_pid(&marker)).expect("verify is running");
    let trial = repo.head();
    run.signal(Signal::SIGINT);
    run.wait_for(&got_term);
    run.signal(Signal::SIGINT);
    assert_eq!(run.finish().code, 130);
    assert!(
        repo.exists("autoresearch-results/engine/inflight.json"),
        "the marker is left for the next run"
    );
    assert!(
        wait_group_gone(group).is_empty(),
        "the second signal kills the running group before the engine exits"
    );

    let r = repo.run_loop(&verify, &agent, &["--iterations", "1"]);
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "crash", "no-op"]);
    let row = &repo.rows()[1];
    assert!(
        row[6].starts_with("[INTERRUPTED]") && row[6].contains("during verify"),
        "{}",
        row[6]
    );
    assert_eq!(repo.git(&["rev-parse", &trial_ref(1)]).trim(), trial);
    assert_eq!(repo.head(), initial);
    assert_user_files_intact(&repo);
    assert_consistent(&repo);
}

#[test]
fn kill_9_during_verify_with_rollback_revert() {
    let repo = repo_with_user_files();
    let initial = repo.head();
    let (verify, agent, marker) = verify_hangs_on_the_trial(&repo);
    let extra = ["--iterations", "1", "--rollback", "revert"];
    let mut first = repo.spawn(&TestRepo::loop_args(&verify, &agent, &extra));
    first.wait_for(&marker);
    let verify_group = pgid_of(read_pid(&marker)).expect("verify is running");
    let trial = repo.head();
    first.signal(Signal::SIGKILL);
    assert_eq!(first.finish().code, -9);
    kill_group(verify_group);

    let r = repo.run(&["run", "--iterations", "2"]);
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "crash", "keep", "no-op"]);
    assert!(!r.stderr.contains("HEAD moved"), "{}", r.stderr);
    // History is only added to: the trial, its revert, then the keep.
    assert_eq!(
        repo.log(),
        [
            "experiment: lower to 7",
            "revert: interrupted experiment of iteration 1",
            "experiment: try 5",
            "initial"
        ]
    );
    assert_eq!(repo.git(&["rev-parse", &trial_ref(1)]).trim(), trial);
    assert_eq!(
        repo.git(&["diff", &initial, "HEAD~1"]),
        "",
        "the revert restores the retained tree"
    );
    assert_user_files_intact(&repo);
    assert_consistent(&repo);
}

#[test]
fn sigint_during_the_baseline_exits_130() {
    let repo = number_repo(10);
    let marker = repo.aux.join("measuring");
    let verify = format!(
        "sh {}",
        repo.script(
            "measure.sh",
            &format!("{}; sleep 60; cat src/value.txt", mark(&marker)),
        )
    );
    let agent = scripted_agent(&repo, "agent.sh", &[]);
    let mut run = repo.spawn(&TestRepo::loop_args(
        &verify,
        &agent,
        &["--iterations", "1"],
    ));
    run.wait_for(&marker);
    let group = pgid_of(read_pid(&marker)).expect("verify is running");
    run.signal(Signal::SIGINT);
    let r = run.finish();
    assert!(wait_group_gone(group).is_empty());
    assert!(!repo.exists("autoresearch-results/results.tsv"));
    assert_eq!(repo.status(), "");
    r.expect_code(130);
}

#[test]
fn a_second_run_is_refused_while_the_first_holds_the_lock() {
    let repo = number_repo(10);
    let marker = repo.aux.join("agent-running");
    let go = repo.aux.join("go");
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(
            1,
            &format!(
                "echo 5 > src/value.txt; {}; while [ ! -f {} ]; do sleep 0.05; done; echo 'lower to 5'",
                mark(&marker),
                go.display()
            ),
        )],
    );
    let args = TestRepo::loop_args("sh measure.sh", &agent, &["--iterations", "1"]);
    let mut first = repo.spawn(&args);
    first.wait_for(&marker);
    let before = repo.read("autoresearch-results/results.tsv");

    let second = repo.run_owned(&args);
    second.expect_code(2);
    let lines: Vec<&str> = second.stderr.trim().lines().collect();
    assert_eq!(lines.len(), 1, "{}", second.stderr);
    assert!(
        lines[0].contains(&format!("pid {}", first.pid())),
        "{}",
        lines[0]
    );
    // --fresh is refused too, before it archives anything.
    let mut fresh = args.clone();
    fresh.push("--fresh".into());
    let third = repo.run_owned(&fresh);
    third.expect_code(2);
    assert!(
        third.stderr.contains(&format!("pid {}", first.pid())),
        "{}",
        third.stderr
    );
    assert!(!repo.exists("autoresearch-results/results.prev.tsv"));
    assert_eq!(
        repo.read("autoresearch-results/results.tsv"),
        before,
        "the refused runs wrote nothing"
    );

    std::fs::write(&go, "").unwrap();
    first.finish().expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep"]);
    assert_consistent(&repo);
}

/// Returns the pid of a process that has exited.
fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

fn write_lock(repo: &TestRepo, pid: u32, start_time: u64) {
    repo.write(
        "autoresearch-results/engine/lock",
        &format!(
            "{{\"pid\":{pid},\"start_time\":{start_time},\"started_at\":\"2026-03-01T00:00:00Z\"}}"
        ),
    );
}

#[test]
fn a_stale_lock_of_a_dead_process_is_reclaimed() {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(1, "echo 5 > src/value.txt; echo 'lower to 5'")],
    );
    let dead = dead_pid();
    write_lock(&repo, dead, 1_700_000_000);
    let r = repo.run_loop("sh measure.sh", &agent, &["--iterations", "1"]);
    r.expect_code(0);
    assert!(
        r.stderr
            .contains(&format!("reclaimed the lock left by pid {dead}")),
        "{}",
        r.stderr
    );
    assert_eq!(repo.statuses(), ["baseline", "keep"]);
    assert_eq!(
        repo.read("autoresearch-results/engine/lock"),
        "",
        "the lock is released at the end"
    );
}

#[test]
fn a_lock_naming_a_reused_pid_is_reclaimed() {
    let repo = number_repo(10);
    let agent = scripted_agent(&repo, "agent.sh", &[]);
    // pid 1 is alive, but it is not the process that wrote the lock (start time differs).
    write_lock(&repo, 1, 1);
    let r = repo.run_loop("sh measure.sh", &agent, &["--iterations", "1"]);
    r.expect_code(0);
    assert!(
        r.stderr.contains("reclaimed the lock left by pid 1 "),
        "{}",
        r.stderr
    );
    // Same with this (live) test process.
    let me = std::process::id();
    write_lock(&repo, me, 1);
    let r = repo.run_loop("sh measure.sh", &agent, &["--iterations", "2"]);
    r.expect_code(0);
    assert!(
        r.stderr
            .contains(&format!("reclaimed the lock left by pid {me} ")),
        "{}",
        r.stderr
    );
    assert_eq!(repo.statuses(), ["baseline", "no-op", "no-op"]);
}

#[test]
fn verify_failing_five_times_in_a_row_is_a_hard_blocker() {
    let repo = number_repo(10);
    let agent = repo.script(
        "agent.sh",
        "cat > /dev/null\necho \"broken $AUTORESEARCH_ITERATION\" > src/value.txt\necho 'break it'",
    );
    let r = repo.run_loop("sh measure.sh", &agent, &["--iterations", "20"]);
    r.expect_code(2);
    assert_eq!(
        repo.statuses(),
        [
            "baseline", "crash", "crash", "crash", "refine", "crash", "crash", "blocked"
        ]
    );
    let last = repo.rows().pop().unwrap();
    assert!(
        last[6].contains("verify failed 5 times in a row"),
        "{}",
        last[6]
    );
    assert!(r.stdout.contains("blocked"), "{}", r.stdout);
    assert_eq!(repo.read("src/value.txt"), "10\n");
    assert_eq!(repo.status(), "");
    assert_consistent(&repo);
}

#[test]
fn low_disk_space_is_a_hard_blocker() {
    let repo = number_repo(10);
    let ran = repo.aux.join("agent-ran");
    let agent = repo.script(
        "agent.sh",
        &format!("cat > /dev/null\ntouch {}\necho idle", ran.display()),
    );
    let args = TestRepo::loop_args("sh measure.sh", &agent, &["--iterations", "1"]);
    let r: Run = repo
        .cmd()
        .args(&args)
        .env("AUTORESEARCH_MIN_FREE_MB", "999999999")
        .output()
        .expect("run binary")
        .into();
    r.expect_code(2);
    assert_eq!(repo.statuses(), ["baseline", "blocked"]);
    let row = &repo.rows()[1];
    assert!(
        row[6].contains("MB free") && row[6].contains("at least 999999999 MB"),
        "{}",
        row[6]
    );
    assert!(!ran.exists(), "no agent runs when the disk is full");
    assert_consistent(&repo);

    // With space again, the run resumes.
    let r = repo.run(&["run", "--iterations", "2"]);
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "blocked", "no-op", "no-op"]);
    assert!(ran.exists());
    assert_consistent(&repo);
}

#[test]
fn a_branch_switch_mid_run_is_a_hard_blocker() {
    let repo = number_repo(10);
    let initial = repo.head();
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(1, "git checkout -q -b elsewhere; echo 'switch branches'")],
    );
    let r = repo.run_loop("sh measure.sh", &agent, &["--iterations", "3"]);
    r.expect_code(2);
    let rows = repo.rows();
    let last = rows.last().unwrap();
    assert_eq!(last[5], "blocked");
    assert!(last[6].contains("HEAD moved"), "{}", last[6]);
    assert_eq!(
        repo.git(&["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        "elsewhere",
        "the engine does not switch back"
    );
    assert_eq!(repo.git(&["rev-parse", "main"]).trim(), initial);
    assert_consistent(&repo);
}

#[test]
fn a_commit_by_someone_else_mid_run_is_a_hard_blocker_and_is_kept() {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(
            1,
            "git commit -q --allow-empty -m 'user commit'; echo 'commit behind the engine'",
        )],
    );
    let r = repo.run_loop("sh measure.sh", &agent, &["--iterations", "3"]);
    assert_eq!(
        repo.log()[0],
        "user commit",
        "the user's commit stays on the branch\n{}",
        r.stderr
    );
    r.expect_code(2);
    let rows = repo.rows();
    let last = rows.last().unwrap();
    assert_eq!(last[5], "blocked", "{rows:?}");
    assert!(last[6].contains("HEAD moved"), "{}", last[6]);
    assert_consistent(&repo);
}

#[test]
fn an_agent_left_running_by_a_killed_engine_is_stopped_before_recovery() {
    let repo = number_repo(10);
    let marker = repo.aux.join("agent-running");
    let late = repo.aux.join("late-edit");
    // The agent keeps editing for a while: if it outlived the engine, it would write after the
    // next run's rollback.
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(
            1,
            &format!(
                "echo 5 > src/value.txt; {}; (sleep 3; echo 1 > src/value.txt; touch {}) & sleep 60",
                mark(&marker),
                late.display()
            ),
        )],
    );
    let mut first = repo.spawn(&TestRepo::loop_args(
        "sh measure.sh",
        &agent,
        &["--iterations", "1"],
    ));
    first.wait_for(&marker);
    let agent_group = pgid_of(read_pid(&marker)).expect("the agent is running");
    // Only the engine dies (an OOM kill): the agent's group lives on.
    first.signal(Signal::SIGKILL);
    assert_eq!(first.finish().code, -9);
    assert!(
        !group_members(agent_group).is_empty(),
        "the orphaned agent is still running"
    );
    assert!(repo.exists("autoresearch-results/engine/child.json"));

    let r = repo.run_loop("sh measure.sh", &agent, &["--iterations", "2"]);
    r.expect_code(0);
    assert!(
        r.stderr.contains("stopped") && r.stderr.contains("left running by the previous run"),
        "{}",
        r.stderr
    );
    assert!(
        group_members(agent_group).is_empty(),
        "the orphaned group is gone"
    );
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert!(
        !late.exists(),
        "the orphan never got to write after the recovery"
    );
    assert_eq!(repo.read("src/value.txt"), "10\n");
    assert!(
        repo.rows()[1][6].starts_with("[INTERRUPTED]"),
        "{:?}",
        repo.rows()[1]
    );
    assert_eq!(repo.status(), "");
    assert!(!repo.exists("autoresearch-results/engine/child.json"));
    assert_consistent(&repo);
}

#[test]
fn sighup_is_an_interruption_like_sigterm() {
    let repo = number_repo(10);
    let marker = repo.aux.join("agent-running");
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(
            1,
            &format!("echo 5 > src/value.txt; {}; sleep 60", mark(&marker)),
        )],
    );
    let mut run = repo.spawn(&TestRepo::loop_args(
        "sh measure.sh",
        &agent,
        &["--iterations", "2"],
    ));
    run.wait_for(&marker);
    let group = pgid_of(read_pid(&marker)).expect("the agent is running");
    run.signal(Signal::SIGHUP);
    let r = run.finish();
    r.expect_code(129);
    assert!(wait_group_gone(group).is_empty());
    let row = &repo.rows()[1];
    assert!(
        row[6].starts_with("[INTERRUPTED]") && row[6].contains("SIGHUP"),
        "{}",
        row[6]
    );
    assert_eq!(repo.read("src/value.txt"), "10\n");
    assert_eq!(repo.status(), "");
}

#[test]
fn a_crash_after_the_rollback_records_the_trial_commit() {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(1, "echo 7 > src/value.txt; echo 'lower to 7'")],
    );
    repo.run_loop("sh measure.sh", &agent, &["--iterations", "1"])
        .expect_code(0);
    let start = repo.head();
    // Iteration 2 as a killed engine leaves it after its rollback: the trial is kept under its
    // ref, the branch is back at the retained commit, the marker (with the trial) is still there.
    repo.write("src/value.txt", "9\n");
    repo.git(&["commit", "-qam", "experiment: raise to 9"]);
    let trial = repo.head();
    let tag = repo.state()["run_tag"].as_str().unwrap().to_string();
    repo.git(&[
        "update-ref",
        &format!("refs/autoresearch/{tag}/trial-2"),
        &trial,
    ]);
    repo.git(&["reset", "-q", "--hard", &start]);
    let marker = serde_json::json!({
        "version": 1, "iteration": 2, "run_tag": tag, "branch": "refs/heads/main", "start_commit": start,
        "phase": "verify", "trial_commit": trial, "started_at": "2026-01-01T00:00:00Z", "pid": 1
    });
    repo.write(
        "autoresearch-results/engine/inflight.json",
        &marker.to_string(),
    );

    let r = repo.run_loop("sh measure.sh", &agent, &["--iterations", "2"]);
    r.expect_code(0);
    let row = &repo.rows()[2];
    assert_eq!(row[5], "crash");
    assert_eq!(row[1], &trial[..7], "the row names the trial, not `-`");
    assert!(
        row[6].contains(&format!("refs/autoresearch/{tag}/trial-2")),
        "{}",
        row[6]
    );
    assert_eq!(
        repo.git(&["rev-parse", &format!("refs/autoresearch/{tag}/trial-2")])
            .trim(),
        trial
    );
    assert_eq!(repo.head(), start);
    assert_consistent(&repo);
}

/// A verify that hangs (after touching the returned marker) on the trial's value 5 only, so the
/// retained tree measures normally, and an agent whose iteration 1 proposes 5 and adds a file.
fn verify_hangs_on_the_trial(repo: &TestRepo) -> (String, String, std::path::PathBuf) {
    let marker = repo.aux.join("verifying");
    let verify = format!(
        "sh {}",
        repo.script(
            "measure.sh",
            &format!(
                "v=$(cat src/value.txt)\nif [ \"$v\" = 5 ]; then {}; sleep 60; fi\necho $v",
                mark(&marker)
            ),
        )
    );
    let agent = scripted_agent(
        repo,
        "agent.sh",
        &[
            (
                1,
                "echo 5 > src/value.txt; echo new > src/added.txt; echo 'try 5'",
            ),
            (2, "echo 7 > src/value.txt; echo 'lower to 7'"),
        ],
    );
    (verify, agent, marker)
}

/// A git operation that fails mid-run (here: a stale `index.lock` when the trial is committed)
/// stops the run with advice; the next run recovers the unfinished iteration and goes on.
#[test]
fn a_git_failure_mid_run_says_what_to_do_and_is_recovered() {
    let repo = number_repo(10);
    let lock = repo.root.join(".git/index.lock");
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (
                1,
                &format!(
                    "touch {}; echo 8 > src/value.txt; echo 'lower to 8'",
                    lock.display()
                ),
            ),
            (2, "echo 7 > src/value.txt; echo 'lower to 7'"),
        ],
    );
    let r = repo.run_loop("sh measure.sh", &agent, &["--iterations", "2"]);
    r.expect_code(2);
    assert!(
        r.stderr.contains(
            "git's lock file .git/index.lock exists: another git command is running, or one was killed; delete it if no git process is running"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(repo.read("src/value.txt"), "8\n", "nothing was thrown away");
    std::fs::remove_file(&lock).unwrap();
    let r = repo.run_loop("sh measure.sh", &agent, &["--iterations", "1"]);
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "crash", "keep"]);
    assert_eq!(repo.read("src/value.txt"), "7\n");
    assert_consistent(&repo);
}

/// SEQ measures the retained commit in the middle of an iteration by moving the branch and the
/// tree to it: `kill -9` right then leaves the branch on the retained commit with the trial only
/// in the marker. The next run records the interruption, keeps the trial under its ref, and
/// resumes with the runs it had (the killed iteration's runs are not taken as a keep).
#[test]
fn kill_9_while_seq_measures_the_retained_commit_then_resume() {
    let repo = repo_with_user_files();
    let initial = repo.head();
    let marker = repo.aux.join("retained-verify");
    // A noisy metric (value plus a tenth per run) so that SEQ asks for retained runs; the first
    // retained run of iteration 1 hangs.
    let verify = repo.script(
        "verify.sh",
        &format!(
            "if [ \"$AUTORESEARCH_VERIFY_ROLE\" = retained ] && [ \"$AUTORESEARCH_ITERATION\" = 1 ] && [ ! -e {m} ]; then {}; sleep 60; fi\necho \"$(cat src/value.txt).$((AUTORESEARCH_VERIFY_RUN % 7))\"",
            mark(&marker),
            m = marker.display()
        ),
    );
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo 5 > src/value.txt; echo 'try 5'"),
            (2, "echo 7 > src/value.txt; echo 'lower to 7'"),
        ],
    );
    let args = [
        "--iterations",
        "2",
        "--keep-effort",
        "default",
        "--no-confirm",
    ];
    let mut first = repo.spawn(&TestRepo::loop_args(&verify, &agent, &args));
    first.wait_for(&marker);
    let verify_group = pgid_of(read_pid(&marker)).expect("verify is running");
    assert_eq!(repo.head(), initial, "the branch is on the retained commit");
    assert_eq!(repo.read("src/value.txt"), "10\n", "and so is the tree");
    let trial = repo.git(&["rev-parse", "--verify", "-q", "HEAD@{1}"]);
    first.signal(Signal::SIGKILL);
    assert_eq!(first.finish().code, -9);
    kill_group(verify_group);

    let r = repo.run_loop(&verify, &agent, &args);
    r.expect_code(0);
    assert!(
        r.stderr
            .contains("iteration 1 was interrupted during verify"),
        "{}",
        r.stderr
    );
    let statuses = repo.statuses();
    assert_eq!(statuses[..2], ["baseline", "crash"], "{statuses:?}");
    let rows = repo.rows();
    assert!(
        rows[1][6].starts_with("[INTERRUPTED] try 5"),
        "{}",
        rows[1][6]
    );
    let kept = repo.git(&["rev-parse", &trial_ref(1)]);
    assert_eq!(kept.trim(), trial.trim(), "the trial is kept under its ref");
    assert_eq!(
        repo.read("src/value.txt").trim_end(),
        "7",
        "iteration 2 kept 7"
    );
    assert_eq!(statuses[2], "keep");
    assert_user_files_intact(&repo);
    assert_consistent(&repo);
    // The killed iteration's runs stay in the log; the resumed run went on from them.
    let runs = repo.read("autoresearch-results/engine/runs.tsv");
    assert!(runs.lines().any(|l| l.starts_with("1\t")), "{runs}");
    assert!(runs.lines().any(|l| l.contains("\tcheck\t")), "{runs}");
}
