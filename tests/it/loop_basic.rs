//! The iteration contract with scripted command agents: every status and tag, rework, rollback
//! hygiene, trial refs, and the artifacts' format.

use crate::support::*;

const VERIFY: &str = "sh measure.sh";

#[test]
fn keep_discard_noop_and_scope_in_one_run() {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo 7 > src/value.txt; echo 'lower to 7'"),
            (2, "echo 9 > src/value.txt; echo 'raise to 9'"),
            (3, "echo 'no change'"),
            (
                4,
                "echo 1 > src/value.txt; echo x > notes.txt; echo 'edit outside the scope'",
            ),
            (
                5,
                "printf '7\\n\\n' > src/value.txt; echo 'same as retained'",
            ),
        ],
    );
    let r = repo.run_loop(
        VERIFY,
        &agent,
        &["--iterations", "5", "--refine-after", "10"],
    );
    r.expect_code(0);
    assert_eq!(
        repo.statuses(),
        ["baseline", "keep", "discard", "no-op", "discard", "discard"]
    );
    let rows = repo.rows();
    assert_eq!(rows[1][2], "7");
    assert_eq!(rows[1][3], "-3");
    assert_eq!(rows[2][2], "9");
    assert_eq!(rows[2][3], "+2");
    assert!(
        rows[4][6].starts_with("[SCOPE] notes.txt"),
        "{}",
        rows[4][6]
    );
    assert_eq!(
        rows[4][1], "-",
        "nothing is committed for a scope violation"
    );
    assert_eq!(rows[5][3], "0", "a tie is not an improvement");
    // The branch holds the keep only; rejected trials are preserved under refs/autoresearch.
    assert_eq!(repo.log(), ["experiment: lower to 7", "initial"]);
    assert_eq!(repo.read("src/value.txt"), "7\n");
    assert!(
        !repo.exists("notes.txt"),
        "the agent's file outside the scope is removed"
    );
    assert_eq!(repo.status(), "", "the tree is clean after the run");
    let refs = repo.git(&["for-each-ref", "--format=%(refname)", "refs/autoresearch/"]);
    assert!(refs.contains("/trial-2\n"), "{refs}");
    assert!(refs.contains("/trial-5\n"), "{refs}");
    let state = repo.state();
    assert_eq!(state["state"]["keeps"], 1);
    assert_eq!(state["state"]["discards"], 3);
    assert_eq!(state["state"]["no_ops"], 1);
    assert_eq!(state["state"]["current_metric"], 7);
    assert_eq!(state["state"]["last_commit"], rows[1][1]);
    assert_eq!(state["engine"]["head"], repo.head());
}

#[test]
fn verify_without_a_metric_is_a_crash_and_the_run_goes_on() {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (
                1,
                "echo 'not a number' > src/value.txt; echo 'break the output'",
            ),
            (2, "echo 3 > src/value.txt; echo 'lower to 3'"),
        ],
    );
    let r = repo.run_loop(VERIFY, &agent, &["--iterations", "2"]);
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "crash", "keep"]);
    let crash = &repo.rows()[1];
    assert_eq!(crash[2], "10", "a crash carries the retained metric");
    assert_eq!(crash[3], "0");
    assert!(crash[6].contains("break the output"), "{}", crash[6]);
    assert!(crash[6].contains("not a finite number"), "{}", crash[6]);
    assert_ne!(crash[1], "-", "the crashed trial commit is named");
    let log = std::fs::read_to_string(
        repo.root
            .join("autoresearch-results/engine/iter-0001/verify.log"),
    )
    .unwrap();
    assert!(log.contains("not a number"));
}

#[test]
fn agent_failure_is_a_crash() {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(
            1,
            "echo 2 > src/value.txt; echo 'model error: boom'; exit 3",
        )],
    );
    repo.run_loop(VERIFY, &agent, &["--iterations", "1"])
        .expect_code(0);
    let row = &repo.rows()[1];
    assert_eq!(row[5], "crash");
    assert!(
        row[6].contains("exit 3") && row[6].contains("model error: boom"),
        "{}",
        row[6]
    );
    assert_eq!(
        repo.read("src/value.txt"),
        "10\n",
        "the failed turn's edit is rolled back"
    );
    // Its partial work is preserved for inspection.
    let preserved = repo.git(&["show", &format!("{}:src/value.txt", row[1])]);
    assert_eq!(preserved, "2\n");
}

#[test]
fn agent_timeouts_are_tagged_and_kill_the_group() {
    let repo = number_repo(10);
    let marker = repo.aux.join("child-alive");
    let body = format!(
        "cat > /dev/null\necho 1 > src/value.txt\n(sleep 30; touch {}) &\nsleep 30\n",
        marker.display()
    );
    let agent = repo.script("slow.sh", &body);
    let r = repo.run_loop(
        VERIFY,
        &agent,
        &["--iterations", "1", "--agent-timeout", "1s"],
    );
    r.expect_code(0);
    let row = &repo.rows()[1];
    assert_eq!(row[5], "crash");
    assert!(row[6].starts_with("[TIMEOUT]"), "{}", row[6]);
    assert_eq!(repo.read("src/value.txt"), "10\n");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let ps = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ps -eo args | grep -c '[s]leep 30; touch {}'",
            marker.display()
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ps.stdout).trim(),
        "0",
        "no process of the agent survives"
    );
}

#[test]
fn idle_agent_is_killed() {
    let repo = number_repo(10);
    let agent = repo.script("idle.sh", "cat > /dev/null; echo thinking; sleep 30");
    repo.run_loop(
        VERIFY,
        &agent,
        &["--iterations", "1", "--agent-idle-timeout", "500ms"],
    )
    .expect_code(0);
    let row = &repo.rows()[1];
    assert!(
        row[6].starts_with("[TIMEOUT]") && row[6].contains("printed nothing"),
        "{}",
        row[6]
    );
}

#[test]
fn verify_timeout_with_a_grandchild_holding_the_pipe() {
    let repo = TestRepo::with_files(&[
        ("src/value.txt", "10\n"),
        // Once the value drops below 10, verify hangs with a background child holding stdout.
        (
            "measure.sh",
            "v=$(cat src/value.txt)\nif [ \"$v\" -lt 10 ]; then sleep 60 & sleep 60; fi\necho $v\n",
        ),
    ]);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(1, "echo 5 > src/value.txt; echo 'lower to 5'")],
    );
    let t = std::time::Instant::now();
    repo.run_loop(
        VERIFY,
        &agent,
        &["--iterations", "1", "--verify-timeout", "1s"],
    )
    .expect_code(0);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        t.elapsed()
    );
    let row = &repo.rows()[1];
    assert_eq!(row[5], "crash");
    assert!(
        row[6].starts_with("[TIMEOUT]") && row[6].contains("verify timed out after 1s"),
        "{}",
        row[6]
    );
    assert_eq!(repo.read("src/value.txt"), "10\n");
}

#[test]
fn guard_failure_gets_rework_turns_then_keeps() {
    let repo = TestRepo::with_files(&[
        ("src/value.txt", "10\n"),
        ("src/ok.txt", "yes\n"),
        ("measure.sh", "cat src/value.txt\n"),
        (
            "guard.sh",
            "grep -q yes src/ok.txt || { echo 'guard: ok.txt must say yes'; exit 1; }\n",
        ),
    ]);
    // Iteration 1 improves but breaks the guard; the rework turn repairs it.
    let agent = repo.script(
        "agent.sh",
        "cat > /dev/null\nif [ \"$AUTORESEARCH_DIRECTIVE\" = rework ]; then\n  grep -q 'ok.txt must say yes' \"$AUTORESEARCH_FEEDBACK\" || exit 9\n  echo yes > src/ok.txt; echo 'repair ok.txt'\nelse\n  echo 4 > src/value.txt; echo no > src/ok.txt; echo 'lower to 4'\nfi",
    );
    repo.run_loop(
        VERIFY,
        &agent,
        &["--iterations", "1", "--guard", "sh guard.sh"],
    )
    .expect_code(0);
    let row = &repo.rows()[1];
    assert_eq!(
        (row[5].as_str(), row[4].as_str(), row[2].as_str()),
        ("keep", "pass", "4")
    );
    // The rework amends the trial: one commit, described by the last turn.
    assert!(
        row[6].starts_with("repair ok.txt (guard passed after 1 rework turn)"),
        "{}",
        row[6]
    );
    assert_eq!(repo.log(), ["experiment: repair ok.txt", "initial"]);
    assert!(
        repo.root
            .join("autoresearch-results/engine/iter-0001/rework-1.prompt.md")
            .exists()
    );
    let prompt = std::fs::read_to_string(
        repo.root
            .join("autoresearch-results/engine/iter-0001/rework-1.prompt.md"),
    )
    .unwrap();
    assert!(
        prompt.contains("ok.txt must say yes"),
        "the rework prompt carries the guard output"
    );
}

#[test]
fn guard_failure_after_all_rework_turns_is_a_guard_discard() {
    let repo = TestRepo::with_files(&[
        ("src/value.txt", "10\n"),
        ("measure.sh", "cat src/value.txt\n"),
        ("guard.sh", "echo 'tests failed: 3'; exit 1\n"),
    ]);
    let agent = repo.script(
        "agent.sh",
        "cat > /dev/null\nif [ \"$AUTORESEARCH_DIRECTIVE\" = rework ]; then echo 'try again'; else echo 4 > src/value.txt; echo 'lower to 4'; fi",
    );
    // The guard fails at baseline too: refused before any change.
    let r = repo.run_loop(
        VERIFY,
        &agent,
        &["--iterations", "1", "--guard", "sh guard.sh"],
    );
    r.expect_code(2);
    assert!(
        r.stderr.contains("the guard fails on the untouched tree"),
        "{}",
        r.stderr
    );
    assert!(!repo.exists("autoresearch-results/results.tsv"));

    repo.write(
        "guard.sh",
        "v=$(cat src/value.txt); [ \"$v\" -ge 10 ] || { echo 'tests failed: 3'; exit 1; }\n",
    );
    repo.git(&["commit", "-qam", "guard passes at 10"]);
    repo.run_loop(
        VERIFY,
        &agent,
        &[
            "--iterations",
            "1",
            "--guard",
            "sh guard.sh",
            "--rework",
            "2",
        ],
    )
    .expect_code(0);
    let row = &repo.rows()[1];
    assert_eq!(
        (row[5].as_str(), row[4].as_str(), row[2].as_str()),
        ("discard", "fail", "4")
    );
    assert!(
        row[6].starts_with("[GUARD] lower to 4")
            && row[6].contains("after 2 rework turns")
            && row[6].contains("tests failed: 3"),
        "{}",
        row[6]
    );
    assert_eq!(repo.read("src/value.txt"), "10\n");
}

#[test]
fn protected_paths_are_discarded() {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (
                1,
                "echo 'echo 0' > measure.sh; echo 1 > src/value.txt; echo 'game the metric'",
            ),
            (2, "echo 1 > src/secret.txt; echo 'touch a protected glob'"),
            (
                3,
                "echo junk >> autoresearch-results/results.tsv; echo 5 > src/value.txt; echo 'forge the log'",
            ),
        ],
    );
    repo.run_loop(
        VERIFY,
        &agent,
        &["--iterations", "3", "--protect", "src/secret.txt"],
    )
    .expect_code(0);
    let rows = repo.rows();
    assert!(
        rows[1][6].starts_with("[PROTECTED] measure.sh"),
        "{}",
        rows[1][6]
    );
    assert!(
        rows[2][6].starts_with("[PROTECTED] src/secret.txt"),
        "{}",
        rows[2][6]
    );
    assert!(
        rows[3][6].starts_with("[PROTECTED]")
            && rows[3][6].contains("autoresearch-results/results.tsv"),
        "{}",
        rows[3][6]
    );
    assert!(
        !repo
            .read("autoresearch-results/results.tsv")
            .contains("junk"),
        "the forged line is gone"
    );
    assert_eq!(repo.read("measure.sh"), "cat src/value.txt\n");
    assert_eq!(
        repo.statuses(),
        ["baseline", "discard", "discard", "discard"]
    );
}

#[test]
fn rollback_keeps_user_files_and_removes_only_new_ones() {
    let repo = TestRepo::with_files(&[
        ("src/value.txt", "10\n"),
        ("measure.sh", "cat src/value.txt\n"),
        (".gitignore", "build/\n*.log\n"),
    ]);
    repo.write("notes/mine.md", "my notes\n"); // untracked, outside the scope
    repo.write("build/cache.bin", "ignored\n"); // ignored
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (
                1,
                "echo 12 > src/value.txt; mkdir -p src/new/deep; echo n > src/new/deep/file.txt; echo y > build/out.bin; echo 'worse, with new files'",
            ),
            (
                2,
                "echo overwritten > notes/mine.md; echo 3 > src/value.txt; echo 'clobber a user file'",
            ),
            (
                3,
                "rm notes/mine.md; echo 3 > src/value.txt; echo 'delete a user file'",
            ),
        ],
    );
    repo.run_loop(VERIFY, &agent, &["--iterations", "3"])
        .expect_code(0);
    assert_eq!(
        repo.statuses(),
        ["baseline", "discard", "discard", "discard"]
    );
    let rows = repo.rows();
    assert!(
        rows[2][6].contains("[SCOPE] notes/mine.md (your untracked file)"),
        "{}",
        rows[2][6]
    );
    assert!(
        rows[3][6].contains("[SCOPE] notes/mine.md (your untracked file)"),
        "{}",
        rows[3][6]
    );
    assert!(
        !repo.exists("src/new"),
        "new files and the directories they needed are gone"
    );
    assert_eq!(
        repo.read("notes/mine.md"),
        "my notes\n",
        "the user's untracked file is restored"
    );
    assert_eq!(
        repo.read("build/cache.bin"),
        "ignored\n",
        "ignored files are never touched"
    );
    assert!(
        repo.exists("build/out.bin"),
        "ignored files the agent made are not deleted either"
    );
    assert_eq!(repo.status(), "?? notes/mine.md\n");
}

#[test]
fn artifacts_are_excluded_and_survive_rollback() {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(1, "echo 11 > src/value.txt; echo worse")],
    );
    repo.run_loop(VERIFY, &agent, &["--iterations", "1"])
        .expect_code(0);
    let exclude = std::fs::read_to_string(repo.root.join(".git/info/exclude")).unwrap();
    // The reference's current layout: the results directory and the pointer, each hidden whole.
    for entry in ["/autoresearch-results/", "/.codex-autoresearch/"] {
        assert!(
            exclude.lines().any(|l| l == entry),
            "{entry} missing from exclude:\n{exclude}"
        );
    }
    assert_eq!(repo.status(), "");
    assert!(
        repo.exists("autoresearch-results/results.tsv")
            && repo.exists("autoresearch-results/state.json")
    );
    assert!(repo.exists("autoresearch-results/engine/iter-0001/prompt.md"));
    assert!(repo.exists("autoresearch-results/engine/iter-0001/agent.log"));
    assert!(repo.exists("autoresearch-results/engine/iter-0001/verify.log"));
}

#[test]
fn results_file_format() {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(
            1,
            "echo 7.50 > src/value.txt; printf 'tab\\there \"quoted\" ✓\\n'",
        )],
    );
    repo.run_loop(VERIFY, &agent, &["--iterations", "1"])
        .expect_code(0);
    let text = repo.read("autoresearch-results/results.tsv");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "# metric_direction: lower");
    assert_eq!(lines[1], "# mode: loop");
    assert!(lines[2].starts_with("# run_tag: lower-the-number"));
    assert_eq!(lines[3], "# parallel: serial");
    assert_eq!(lines[4], "# web_search: disabled");
    let header = lines.iter().position(|l| !l.starts_with('#')).unwrap();
    assert_eq!(
        lines[header],
        "iteration\tcommit\tmetric\tdelta\tguard\tstatus\tdescription"
    );
    let row: Vec<&str> = lines[header + 2].split('\t').collect();
    assert_eq!(row.len(), 7);
    assert_eq!(row[2], "7.5", "canonical number");
    assert_eq!(row[3], "-2.5");
    assert_eq!(row[6], "tab here \"quoted\" ✓");
    assert!(text.ends_with('\n'));
}

#[test]
fn agent_gets_the_prompt_and_environment() {
    let repo = number_repo(10);
    let seen = repo.aux.join("seen");
    let agent = repo.script(
        "agent.sh",
        &format!(
            "cat > {0}.prompt\nenv | grep ^AUTORESEARCH_ | sort > {0}.env\necho 'looked around'",
            seen.display()
        ),
    );
    repo.run_loop(VERIFY, &agent, &["--iterations", "1"])
        .expect_code(0);
    let prompt = std::fs::read_to_string(format!("{}.prompt", seen.display())).unwrap();
    assert!(prompt.contains("lower the number"));
    assert!(prompt.contains("## Directive: continue"));
    assert!(prompt.contains("`src/**`"));
    let env = std::fs::read_to_string(format!("{}.env", seen.display())).unwrap();
    for var in [
        "AUTORESEARCH_ITERATION=1",
        "AUTORESEARCH_MODE=loop",
        "AUTORESEARCH_DIRECTIVE=continue",
        "AUTORESEARCH_GOAL=lower the number",
        "AUTORESEARCH_METRIC=value",
        "AUTORESEARCH_DIRECTION=lower",
        "AUTORESEARCH_RESULTS=",
        "AUTORESEARCH_STATE=",
        "AUTORESEARCH_FEEDBACK=",
    ] {
        assert!(env.contains(var), "{var} missing in:\n{env}");
    }
}

#[test]
fn repeat_uses_the_median() {
    let repo = TestRepo::with_files(&[
        ("src/value.txt", "10\n"),
        (
            "measure.sh",
            "n=$(cat .count 2>/dev/null || echo 0); n=$((n+1)); echo $n > .count; case $n in 1) echo 100;; 2) echo 10;; *) echo 12;; esac\n",
        ),
        (".gitignore", ".count\n"),
    ]);
    let agent = scripted_agent(&repo, "agent.sh", &[]);
    let r = repo.run_loop(VERIFY, &agent, &["--iterations", "1", "--repeat", "3"]);
    r.expect_code(0);
    assert_eq!(repo.rows()[0][2], "12", "median of 100, 10, 12");
}

#[test]
fn metrics_json_and_regex_formats() {
    let repo = TestRepo::with_files(&[
        ("src/value.txt", "10\n"),
        (
            "measure.sh",
            "echo starting; printf '{\"ms\": %s, \"ok\": true}\\n' $(cat src/value.txt)\n",
        ),
    ]);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(1, "echo 6 > src/value.txt; echo six")],
    );
    repo.run_loop(
        VERIFY,
        &agent,
        &[
            "--iterations",
            "1",
            "--verify-format",
            "metrics-json",
            "--primary-metric-key",
            "ms",
        ],
    )
    .expect_code(0);
    assert_eq!(repo.rows()[1][2], "6");

    let repo = TestRepo::with_files(&[
        ("src/value.txt", "10\n"),
        (
            "measure.sh",
            "echo \"score: $(cat src/value.txt) points\"; echo done\n",
        ),
    ]);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(1, "echo 4 > src/value.txt; echo four")],
    );
    repo.run_loop(
        VERIFY,
        &agent,
        &[
            "--iterations",
            "1",
            "--verify-format",
            "regex",
            "--metric-regex",
            "score: ([0-9.]+)",
        ],
    )
    .expect_code(0);
    assert_eq!(repo.rows()[1][2], "4");
}

#[test]
fn artifacts_dir_inside_and_outside_the_repository() {
    // Inside the repository: the files move there, are excluded, and the run resumes from there.
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo 7 > src/value.txt; echo 'lower to 7'"),
            (2, "echo 6 > src/value.txt; echo 'lower to 6'"),
        ],
    );
    repo.run_loop(
        VERIFY,
        &agent,
        &["--iterations", "1", "--artifacts-dir", "runs/a"],
    )
    .expect_code(0);
    assert!(
        repo.exists("runs/a/results.tsv")
            && repo.exists("runs/a/engine/iter-0001/prompt.md")
            && repo.exists("runs/a/context.json")
    );
    assert!(!repo.exists("autoresearch-results/results.tsv"));
    assert_eq!(repo.status(), "", "the artifacts directory is excluded");
    let exclude = std::fs::read_to_string(repo.root.join(".git/info/exclude")).unwrap();
    assert!(
        exclude.lines().any(|l| l == "/runs/a/results.tsv")
            && exclude.lines().any(|l| l == "/runs/a/engine/"),
        "{exclude}"
    );
    let status = repo.run(&["status", "--artifacts-dir", "runs/a"]);
    assert!(
        status.expect_code(0).stdout.contains("iteration 1"),
        "{}",
        status.stdout
    );
    repo.run_loop(
        VERIFY,
        &agent,
        &["--iterations", "2", "--artifacts-dir", "runs/a"],
    )
    .expect_code(0);
    assert_eq!(repo.log()[0], "experiment: lower to 6");
    let rows: Vec<String> = repo
        .read("runs/a/results.tsv")
        .lines()
        .filter(|l| l.starts_with(char::is_numeric))
        .map(str::to_string)
        .collect();
    assert_eq!(rows.len(), 3, "{rows:?}");

    // Outside the repository: nothing is written into the repository but the reference's
    // pointer to them (hidden).
    let repo = number_repo(10);
    let outside = repo.aux.join("artifacts");
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(1, "echo 7 > src/value.txt; echo 'lower to 7'")],
    );
    repo.run_loop(
        VERIFY,
        &agent,
        &[
            "--iterations",
            "1",
            "--artifacts-dir",
            outside.to_str().unwrap(),
        ],
    )
    .expect_code(0);
    assert!(outside.join("results.tsv").exists() && outside.join("engine/lock").exists());
    assert_eq!(repo.status(), "");
    assert!(!repo.exists("autoresearch-results"));
    let pointer: serde_json::Value = serde_json::from_str(&repo.read(POINTER)).unwrap();
    assert_eq!(
        pointer["artifact_root"],
        outside.canonicalize().unwrap().to_str().unwrap()
    );
    let exclude = std::fs::read_to_string(repo.root.join(".git/info/exclude")).unwrap_or_default();
    assert!(!exclude.contains("results"), "{exclude}");
    assert_eq!(repo.log()[0], "experiment: lower to 7");
}

#[test]
fn a_write_to_the_lessons_file_costs_one_iteration_not_the_run() {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (
                1,
                "echo 8 > src/value.txt; echo 'forged lesson' >> autoresearch-results/lessons.md; echo 'lower to 8 and forge a lesson'",
            ),
            (2, "echo 7 > src/value.txt; echo 'lower to 7'"),
            (3, "echo 6 > src/value.txt; echo 'lower to 6'"),
        ],
    );
    repo.run_loop(VERIFY, &agent, &["--iterations", "3"])
        .expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "discard", "keep", "keep"]);
    let rows = repo.rows();
    assert!(
        rows[1][6].starts_with("[PROTECTED] autoresearch-results/lessons.md"),
        "{}",
        rows[1][6]
    );
    let lessons = repo.read("autoresearch-results/lessons.md");
    assert!(
        !lessons.contains("forged"),
        "the forged line is gone:\n{lessons}"
    );
    assert!(lessons.contains("### L-2: lower to 6"), "{lessons}");
}

#[test]
fn a_rework_turn_that_changes_nothing_does_not_rerun_the_guard() {
    let repo = TestRepo::with_files(&[
        ("src/value.txt", "10\n"),
        ("measure.sh", "cat src/value.txt\n"),
        (".gitignore", "guard-runs\n"),
    ]);
    let counter = repo.aux.join("guard-runs");
    let guard = repo.script(
        "guard.sh",
        &format!("echo run >> {}\nv=$(cat src/value.txt); [ \"$v\" -ge 10 ] || {{ echo 'too low'; exit 1; }}", counter.display()),
    );
    let agent = repo.script(
        "agent.sh",
        "cat > /dev/null\nif [ \"$AUTORESEARCH_DIRECTIVE\" = rework ]; then echo 'nothing to do'; else echo 4 > src/value.txt; echo 'lower to 4'; fi",
    );
    repo.run_loop(
        VERIFY,
        &agent,
        &["--iterations", "1", "--guard", &guard, "--rework", "2"],
    )
    .expect_code(0);
    assert!(
        repo.rows()[1][6].starts_with("[GUARD]"),
        "{:?}",
        repo.rows()[1]
    );
    let runs = std::fs::read_to_string(&counter).unwrap().lines().count();
    assert_eq!(
        runs, 2,
        "once on the baseline, once on the trial; not again for unchanged reworks"
    );
}

#[test]
fn a_guard_that_times_out_is_a_guard_failure() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    // Passes on the untouched tree, hangs on the change.
    let guard = repo.script(
        "guard.sh",
        "[ \"$(cat src/value.txt)\" = 10 ] || exec sleep 30",
    );
    let r = repo.run_loop(
        VERIFY,
        &agent,
        &[
            "--iterations",
            "1",
            "--guard",
            &guard,
            "--verify-timeout",
            "1s",
            "--rework",
            "0",
        ],
    );
    r.expect_code(0);
    let row = &repo.rows()[1];
    assert_eq!((row[5].as_str(), row[4].as_str()), ("discard", "fail"));
    // No output to quote: no empty `: ` before the parenthesis closes.
    assert_eq!(row[6], "[GUARD] set value to 9 (guard timed out)");
}

#[test]
fn a_scope_that_matches_no_tracked_file_is_pointed_out() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let mut args = TestRepo::loop_args(VERIFY, &agent, &["--iterations", "1"]);
    let at = args.iter().position(|a| a == "src/**").unwrap();
    args[at] = "sources/**".into();
    let r = repo.run_owned(&args);
    r.expect_code(0);
    assert!(
        r.stderr
            .contains("--scope sources/** matches no tracked file"),
        "{}",
        r.stderr
    );
    let r = repo.run_loop(VERIFY, &agent, &["--iterations", "1", "--fresh"]);
    r.expect_code(0);
    assert!(
        !r.stderr.contains("matches no tracked file"),
        "{}",
        r.stderr
    );
}

/// A rework turn that breaks the scope is rolled back like any rejected trial: with
/// `--rollback revert` the trial stays in the branch history under a revert commit.
#[test]
fn a_rework_outside_the_scope_is_rolled_back_by_the_chosen_policy() {
    let repo = number_repo(10);
    let guard = repo.script("guard.sh", "[ ! -e src/broken.txt ]");
    let agent = repo.script(
        "agent.sh",
        "cat > /dev/null\nif [ \"$AUTORESEARCH_DIRECTIVE\" = rework ]; then echo x > notes.txt; echo 'fix outside'; else echo 8 > src/value.txt; echo oops > src/broken.txt; echo 'lower to 8'; fi",
    );
    let r = repo.run_loop(
        VERIFY,
        &agent,
        &[
            "--iterations",
            "1",
            "--guard",
            &guard,
            "--rework",
            "1",
            "--rollback",
            "revert",
        ],
    );
    r.expect_code(0);
    let row = &repo.rows()[1];
    assert_eq!(row[5], "discard");
    assert!(row[6].starts_with("[SCOPE] notes.txt"), "{}", row[6]);
    assert_eq!(
        repo.log(),
        [
            "revert: experiment of iteration 1 was not kept",
            "experiment: lower to 8",
            "initial"
        ]
    );
    assert_eq!(repo.read("src/value.txt"), "10\n");
    assert!(!repo.exists("notes.txt") && !repo.exists("src/broken.txt"));
    assert_eq!(repo.status(), "");
    // The rejected rework change is kept, not lost.
    assert!(
        repo.git(&["for-each-ref", "refs/autoresearch/"])
            .contains("leftover-1")
    );
}

/// The baseline's verify and guard see `AUTORESEARCH_ITERATION=0`; the first trial's see 1.
/// Each verify run also sees its role and its number in `runs.tsv`: SEQ measures a
/// deterministic baseline twice, and confirms a better trial with one identical rerun.
#[test]
fn the_baseline_measures_as_iteration_zero() {
    let repo = number_repo(10);
    let seen = repo.aux.join("seen");
    let verify = repo.script(
        "verify.sh",
        &format!(
            "echo \"verify $AUTORESEARCH_ITERATION $AUTORESEARCH_VERIFY_ROLE $AUTORESEARCH_VERIFY_RUN\" >> {0}\ncat src/value.txt",
            seen.display()
        ),
    );
    let guard = repo.script(
        "guard.sh",
        &format!(
            "echo \"guard $AUTORESEARCH_ITERATION\" >> {}",
            seen.display()
        ),
    );
    let agent = stepping_agent(&repo, "agent.sh", -1);
    repo.run_loop(
        &verify,
        &agent,
        // The confirmation at the end would run verify again (with its own role, tested in
        // confirm.rs).
        &[
            "--iterations",
            "1",
            "--guard",
            &format!("sh {guard}"),
            "--no-confirm",
        ],
    )
    .expect_code(0);
    let seen = std::fs::read_to_string(seen).unwrap();
    assert_eq!(
        seen,
        "verify 0 baseline 1\nguard 0\nverify 0 baseline 2\nverify 1 candidate 3\nverify 1 candidate 4\nguard 1\n"
    );
    let runs = repo.read("autoresearch-results/engine/runs.tsv");
    let roles: Vec<&str> = runs
        .lines()
        .skip(1)
        .map(|l| l.split('\t').nth(3).unwrap())
        .collect();
    assert_eq!(
        roles,
        ["baseline", "baseline", "candidate", "candidate"],
        "{runs}"
    );
}

/// A SIGINT that arrives while the last iteration's verify finishes normally still ends the run
/// as interrupted (130): the signal is checked before the iteration cap.
#[test]
fn sigint_during_the_last_iterations_verify_exits_130() {
    let repo = number_repo(10);
    // verify signals the engine (its parent) and ends at once, with a metric.
    let verify = repo.script(
        "verify.sh",
        r#"if [ "$AUTORESEARCH_ITERATION" = 1 ]; then
  p=$PPID
  while [ "$p" -gt 1 ] && ! grep -q '^codex-autor' /proc/$p/comm; do p=$(cut -d' ' -f4 /proc/$p/stat); done
  kill -INT "$p"
fi
cat src/value.txt"#,
    );
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let r = repo.run_loop(&verify, &agent, &["--iterations", "1"]);
    r.expect_code(130);
    assert!(
        r.stdout.contains("interrupted by SIGINT") || r.stderr.contains("interrupted by SIGINT"),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(repo.status(), "");
}
