//! Resume: continuing a run from its artifacts (config from the state, numbering, a new
//! `--iterations`), refusing identity changes, `--fresh` archiving, torn-line repair, state
//! rebuilt from the TSV, drift on re-measure, and the reference checker's invariants after a mixed
//! run (checked against an independent replay of the TSV).

use std::fs;

use crate::support::*;

const VERIFY: &str = "sh measure.sh";

#[test]
fn resume_needs_no_flags_continues_numbering_and_takes_a_new_cap() {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo 7 > src/value.txt; echo 'lower to 7'"),
            (2, "echo 9 > src/value.txt; echo 'raise to 9'"),
            (3, "echo 5 > src/value.txt; echo 'lower to 5'"),
        ],
    );
    repo.run_loop(VERIFY, &agent, &["--iterations", "2"])
        .expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep", "discard"]);

    // No goal, scope, metric, direction, verify or agent: all come from the state.
    let r = repo.run(&["run", "--iterations", "4"]);
    r.expect_code(0);
    assert!(
        r.stdout.contains("resuming run lower-the-number"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("iteration cap reached (4/4)"),
        "{}",
        r.stdout
    );
    assert_eq!(
        repo.statuses(),
        ["baseline", "keep", "discard", "keep", "no-op"]
    );
    let rows = repo.rows();
    assert_eq!(
        rows[3][6], "lower to 5",
        "the agent was called for iteration 3"
    );
    assert_eq!(rows[3][3], "-2");
    assert_eq!(
        repo.log(),
        [
            "experiment: lower to 5",
            "experiment: lower to 7",
            "initial"
        ]
    );
    let state = repo.state();
    assert_eq!(state["config"]["goal"], "lower the number");
    assert_eq!(state["config"]["verify"], VERIFY);
    assert_eq!(state["state"]["iteration"], 4);
    assert_consistent(&repo);
}

#[test]
fn changing_the_run_identity_on_resume_is_refused() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    repo.run_loop(VERIFY, &agent, &["--iterations", "1"])
        .expect_code(0);
    let artifacts = [
        "autoresearch-results/results.tsv",
        "autoresearch-results/state.json",
        "autoresearch-results/lessons.md",
    ];
    let before: Vec<String> = artifacts.iter().map(|a| repo.read(a)).collect();
    let head = repo.head();
    for (flag, value) in [
        ("--goal", "raise the number"),
        ("--metric", "size"),
        ("--direction", "higher"),
        ("--verify", "cat src/value.txt"),
    ] {
        let r = repo.run(&["run", flag, value, "--iterations", "3"]);
        r.expect_code(2);
        let lines: Vec<&str> = r.stderr.trim().lines().collect();
        assert_eq!(lines.len(), 1, "{flag}: {}", r.stderr);
        assert!(
            lines[0].contains(flag) && lines[0].contains("--fresh"),
            "{flag}: {}",
            lines[0]
        );
        let after: Vec<String> = artifacts.iter().map(|a| repo.read(a)).collect();
        assert_eq!(after, before, "{flag}: the artifacts are untouched");
        assert_eq!(repo.head(), head);
        assert!(!repo.exists("autoresearch-results/results.prev.tsv"));
    }
    // An empty value is not a change of identity but a bad value.
    let r = repo.run(&["run", "--goal", " ", "--iterations", "3"]);
    assert_eq!(
        r.expect_one_error_line(),
        "codex-autoresearch: error: --goal must not be empty"
    );
    // The same values as before are not a change.
    repo.run_loop(VERIFY, &agent, &["--iterations", "2"])
        .expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep", "keep"]);
}

#[test]
fn fresh_archives_every_generation_and_keeps_lessons() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    repo.run_loop(VERIFY, &agent, &["--iterations", "1"])
        .expect_code(0);
    let results1 = repo.read("autoresearch-results/results.tsv");
    let state1 = repo.read("autoresearch-results/state.json");
    assert!(
        repo.read("autoresearch-results/lessons.md")
            .contains("### L-1:")
    );

    // --fresh also allows a new goal.
    let mut args = TestRepo::loop_args(VERIFY, &agent, &["--iterations", "1", "--fresh"]);
    args[2] = "lower the number again".into();
    let r = repo.run_owned(&args);
    r.expect_code(0);
    assert!(
        r.stderr.contains("archived the previous run"),
        "{}",
        r.stderr
    );
    assert_eq!(repo.read("autoresearch-results/results.prev.tsv"), results1);
    assert_eq!(repo.read("autoresearch-results/state.prev.json"), state1);
    assert!(repo.exists("autoresearch-results/engine/prev1/iter-0001"));
    let rows = repo.rows();
    assert_eq!(rows[0][2], "9", "the new baseline is the retained tree");
    assert_eq!(repo.statuses(), ["baseline", "keep"]);
    assert_eq!(repo.state()["config"]["goal"], "lower the number again");
    let results2 = repo.read("autoresearch-results/results.tsv");
    let state2 = repo.read("autoresearch-results/state.json");

    let r = repo.run_owned(&args);
    r.expect_code(0);
    assert_eq!(
        repo.read("autoresearch-results/results.prev.tsv"),
        results1,
        "not overwritten"
    );
    assert_eq!(
        repo.read("autoresearch-results/state.prev.json"),
        state1,
        "not overwritten"
    );
    assert_eq!(
        repo.read("autoresearch-results/results.prev2.tsv"),
        results2
    );
    assert_eq!(repo.read("autoresearch-results/state.prev2.json"), state2);
    assert!(repo.exists("autoresearch-results/engine/prev2/iter-0001"));
    assert_eq!(repo.rows()[0][2], "8");

    let lessons = repo.read("autoresearch-results/lessons.md");
    for n in 1..=3 {
        assert!(lessons.contains(&format!("### L-{n}:")), "{lessons}");
    }
    assert_eq!(repo.status(), "", "archives are excluded from git");
    assert_consistent(&repo);
}

#[test]
fn a_torn_last_line_is_repaired_on_resume() {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(1, "echo 7 > src/value.txt; echo seven")],
    );
    repo.run_loop(VERIFY, &agent, &["--iterations", "1"])
        .expect_code(0);
    let torn = "2\tabc1234\t5\t-2\t-\tdisc";
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(repo.root.join("autoresearch-results/results.tsv"))
        .unwrap();
    std::io::Write::write_all(&mut f, torn.as_bytes()).unwrap();
    drop(f);

    let r = repo.run(&["run", "--iterations", "3"]);
    r.expect_code(0);
    assert!(
        r.stderr.contains("repaired") && r.stderr.contains(&format!("({} bytes)", torn.len())),
        "{}",
        r.stderr
    );
    assert!(
        !repo
            .read("autoresearch-results/results.tsv")
            .contains("abc1234")
    );
    assert_eq!(repo.statuses(), ["baseline", "keep", "no-op", "no-op"]);
    assert_consistent(&repo);
}

#[test]
fn a_garbage_results_log_is_refused_and_left_byte_identical() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    repo.run_loop(VERIFY, &agent, &["--iterations", "1"])
        .expect_code(0);
    // Bytes that are no results log, with no trailing newline (so a "torn last line" too).
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .filter(|b| *b != b'\n')
        .collect();
    fs::write(repo.root.join("autoresearch-results/results.tsv"), &garbage).unwrap();
    let head = repo.head();

    let r = repo.run(&["run", "--iterations", "3"]);
    r.expect_refusal(&["autoresearch-results/results.tsv", "--fresh"]);
    assert_eq!(repo.read_bytes("autoresearch-results/results.tsv"), garbage);
    assert_eq!(repo.head(), head);
}

/// A log with a torn last line whose run is refused for another reason (here: its settings are
/// lost) is refused before anything is repaired: every byte stays.
#[test]
fn a_torn_log_of_a_refused_run_is_not_repaired() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    repo.run_loop(VERIFY, &agent, &["--iterations", "1"])
        .expect_code(0);
    repo.write("autoresearch-results/state.json", "{ broken");
    fs::remove_file(repo.root.join("autoresearch-results/engine/settings.json")).unwrap();
    let log: String = repo
        .read("autoresearch-results/results.tsv")
        .lines()
        .filter(|l| !l.starts_with("# settings:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let torn = format!("{log}2\tabc\t8\t-1\t-\tdisc");
    repo.write("autoresearch-results/results.tsv", &torn);

    let r = repo.run(&["run", "--iterations", "3"]);
    r.expect_refusal(&["settings", "--fresh"]);
    assert_eq!(repo.read("autoresearch-results/results.tsv"), torn);
}

#[test]
fn a_state_that_disagrees_with_the_log_is_rebuilt() {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo 7 > src/value.txt; echo seven"),
            (2, "echo 8 > src/value.txt; echo eight"),
        ],
    );
    repo.run_loop(VERIFY, &agent, &["--iterations", "2"])
        .expect_code(0);
    let mut state = repo.state();
    state["state"]["iteration"] = 9.into();
    state["state"]["keeps"] = 5.into();
    state["state"]["consecutive_discards"] = 7.into();
    state["state"]["best_metric"] = 1.into();
    repo.write("autoresearch-results/state.json", &state.to_string());

    let r = repo.run(&["run", "--iterations", "3"]);
    r.expect_code(0);
    assert!(
        r.stderr.contains("disagreed with the results log") && r.stderr.contains("keeps"),
        "{}",
        r.stderr
    );
    assert_eq!(repo.statuses(), ["baseline", "keep", "discard", "no-op"]);
    let s = repo.state();
    assert_eq!(s["state"]["keeps"], 1);
    assert_eq!(s["state"]["best_metric"], 7);
    assert_consistent(&repo);
}

#[test]
fn a_missing_or_corrupt_state_is_rebuilt_from_the_log_settings() {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo 7 > src/value.txt; echo seven"),
            (3, "echo 6 > src/value.txt; echo six"),
        ],
    );
    repo.run_loop(VERIFY, &agent, &["--iterations", "1"])
        .expect_code(0);
    let config = |iterations: u64| {
        let mut c = repo.state()["config"].clone();
        c["iterations"] = iterations.into();
        c
    };
    let config = config(2);

    fs::remove_file(repo.root.join("autoresearch-results/state.json")).unwrap();
    let r = repo.run(&["run", "--iterations", "2"]);
    r.expect_code(0);
    assert!(
        r.stderr
            .contains("is missing; rebuilding it from the results log"),
        "{}",
        r.stderr
    );
    assert_eq!(repo.statuses(), ["baseline", "keep", "no-op"]);
    assert_eq!(
        repo.state()["config"],
        config,
        "the configuration came from `# settings:` (plus the new cap)"
    );
    assert_consistent(&repo);

    repo.write(
        "autoresearch-results/state.json",
        "{\"version\": 1, \"state\": {",
    );
    let r = repo.run(&["run", "--iterations", "3"]);
    r.expect_code(0);
    assert!(
        r.stderr.contains("is unusable") && r.stderr.contains("rebuilding it from the results log"),
        "{}",
        r.stderr
    );
    assert_eq!(repo.statuses(), ["baseline", "keep", "no-op", "keep"]);
    assert_eq!(repo.read("src/value.txt"), "6\n");
    let mut want = config;
    want["iterations"] = 3.into();
    assert_eq!(repo.state()["config"], want);
    assert_consistent(&repo);
}

/// A verify script outside the repository that adds the number in `<aux>/offset` (if any) to the
/// value, so the environment can change the metric of an unchanged tree.
fn offset_verify(repo: &TestRepo) -> String {
    let offset = repo.aux.join("offset");
    format!(
        "sh {}",
        repo.script(
            "measure.sh",
            &format!(
                "v=$(cat src/value.txt)\nif [ -f {0} ]; then v=$((v + $(cat {0}))); fi\necho $v",
                offset.display()
            ),
        )
    )
}

#[test]
fn a_changed_measurement_on_resume_is_a_drift_row() {
    let repo = number_repo(10);
    let verify = offset_verify(&repo);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo 7 > src/value.txt; echo seven"),
            (2, "echo 9 > src/value.txt; echo nine"),
        ],
    );
    repo.run_loop(&verify, &agent, &["--iterations", "2"])
        .expect_code(0);
    assert_eq!(repo.state()["state"]["consecutive_discards"], 1);

    // Same tree, same verify: no drift.
    repo.run(&["run", "--iterations", "2"]).expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep", "discard"]);

    fs::write(repo.aux.join("offset"), "1\n").unwrap();
    let r = repo.run(&["run", "--iterations", "2"]);
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep", "discard", "drift"]);
    let drift = &repo.rows()[3];
    assert_eq!((drift[2].as_str(), drift[3].as_str()), ("8", "+1"));
    assert_eq!(drift[1], repo.head()[..7]);
    assert!(drift[6].contains("7 -> 8"), "{}", drift[6]);
    let s = repo.state();
    assert_eq!(s["state"]["current_metric"], 8);
    assert_eq!(s["state"]["best_metric"], 7);
    assert_eq!(s["state"]["consecutive_discards"], 0);
    assert_eq!(s["state"]["last_status"], "drift");
    assert_consistent(&repo);

    // Later decisions compare with the re-measured metric.
    let r = repo.run(&["run", "--iterations", "3"]);
    r.expect_code(0);
    assert_eq!(
        repo.statuses(),
        ["baseline", "keep", "discard", "drift", "no-op"]
    );
    assert_eq!(repo.rows()[4][2], "8");
    assert_consistent(&repo);
}

#[test]
fn a_mixed_run_satisfies_the_resume_checker_invariants() {
    let repo = number_repo(10);
    let verify = offset_verify(&repo);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo 7 > src/value.txt; echo 'lower to 7'"),
            (2, "echo 9 > src/value.txt; echo 'raise to 9'"),
            (3, "echo x > src/value.txt; echo 'break verify'"),
            // 4: no-op, then a refine row (5)
            (6, "echo 6 > src/value.txt; echo 'lower to 6'"),
            (7, "echo 8 > src/value.txt; echo 'raise to 8'"),
            (9, "echo 11 > src/value.txt; echo 'raise to 11'"),
            // 8, 11, 12: no-ops; 10: refine; 13: pivot
            (16, "echo 5 > src/value.txt; echo 'lower to 5'"),
        ],
    );
    // Ten experiments: the cap ends the run on the last, before the pivot row it calls for.
    repo.run_loop(&verify, &agent, &["--iterations", "10"])
        .expect_code(0);
    assert_eq!(
        repo.statuses(),
        [
            "baseline", "keep", "discard", "crash", "no-op", "refine", "keep", "discard", "no-op",
            "discard", "refine", "no-op", "no-op"
        ]
    );
    assert_consistent(&repo);
    let s = repo.state()["state"].clone();
    // 5 failures and the refine row (the reference's current rule); the pivot row is written on
    // resume.
    assert_eq!(s["consecutive_discards"], 6, "meta rows do not reset it");
    assert_eq!(s["pivot_count"], 0, "the pivot row is written on resume");
    assert_eq!(
        (s["keeps"].clone(), s["discards"].clone()),
        (2.into(), 3.into())
    );
    assert_eq!(
        (s["crashes"].clone(), s["no_ops"].clone()),
        (1.into(), 4.into())
    );
    assert_eq!(s["best_iteration"], 6);
    assert_eq!(s["last_trial_commit"], "-");

    // Resume in a changed environment (drift), the pivot row, then a keep after it.
    fs::write(repo.aux.join("offset"), "2\n").unwrap();
    repo.run(&["run", "--iterations", "12"]).expect_code(0);
    assert_eq!(repo.statuses()[13..], ["drift", "pivot", "no-op", "keep"]);
    assert_consistent(&repo);
    let s = repo.state()["state"].clone();
    assert_eq!(s["current_metric"], 7, "5 plus the offset");
    assert_eq!(
        s["best_metric"], 6,
        "the drift (8) was no improvement; 7 is not better than 6"
    );
    assert_eq!(s["consecutive_discards"], 0);
    assert_eq!(s["pivot_count"], 0, "a keep resets the pivots");
    assert_eq!(s["last_commit"], repo.head()[..7]);
}

#[test]
fn fresh_starts_over_even_when_the_old_artifacts_are_unreadable() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    repo.run_loop(VERIFY, &agent, &["--iterations", "1"])
        .expect_code(0);
    repo.write("autoresearch-results/results.tsv", "not a results log\n");
    let r = repo.run(&["run", "--iterations", "2"]);
    r.expect_code(2);
    assert!(r.stderr.contains("--fresh"), "{}", r.stderr);

    // The advice works: the unreadable files are archived as they are and a new run starts.
    let r = repo.run_loop(VERIFY, &agent, &["--iterations", "1", "--fresh"]);
    r.expect_code(0);
    assert_eq!(
        repo.read("autoresearch-results/results.prev.tsv"),
        "not a results log\n"
    );
    assert_eq!(repo.statuses(), ["baseline", "keep"]);
    assert_consistent(&repo);

    // Same for a state without its results log.
    fs::remove_file(repo.root.join("autoresearch-results/results.tsv")).unwrap();
    let r = repo.run(&["run", "--iterations", "2"]);
    r.expect_code(2);
    assert!(r.stderr.contains("--fresh"), "{}", r.stderr);
    let r = repo.run_loop(VERIFY, &agent, &["--iterations", "1", "--fresh"]);
    r.expect_code(0);
    assert!(repo.exists("autoresearch-results/state.prev2.json"));
    assert_consistent(&repo);
}

#[test]
fn a_drift_row_on_resume_keeps_the_pending_directive() {
    let repo = number_repo(10);
    let verify = offset_verify(&repo);
    let seen = repo.aux.join("directives");
    let agent = repo.script(
        "agent.sh",
        &format!(
            "cat > /dev/null\necho \"$AUTORESEARCH_ITERATION $AUTORESEARCH_DIRECTIVE\" >> {}\necho idle",
            seen.display()
        ),
    );
    // Three no-ops; the cap stops the run on the last, the refine row still due.
    repo.run_loop(&verify, &agent, &["--iterations", "3"])
        .expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "no-op", "no-op", "no-op"]);
    fs::write(repo.aux.join("offset"), "1\n").unwrap();
    repo.run(&["run", "--iterations", "4"]).expect_code(0);
    assert_eq!(
        repo.statuses(),
        [
            "baseline", "no-op", "no-op", "no-op", "drift", "refine", "no-op"
        ]
    );
    let directives = fs::read_to_string(&seen).unwrap();
    assert_eq!(
        directives.lines().last(),
        Some("6 refine"),
        "the drift row is bookkeeping; the refine is still due\n{directives}"
    );
}

#[test]
fn a_stale_state_from_before_the_last_keep_is_rebuilt_without_drift() {
    // As if the engine died between appending a keep row and saving the state.
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo 7 > src/value.txt; echo seven"),
            (2, "echo 6 > src/value.txt; echo six"),
        ],
    );
    repo.run_loop(VERIFY, &agent, &["--iterations", "1"])
        .expect_code(0);
    let old_state = repo.read("autoresearch-results/state.json");
    repo.run(&["run", "--iterations", "2"]).expect_code(0);
    repo.write("autoresearch-results/state.json", &old_state);

    let r = repo.run(&["run", "--iterations", "3"]);
    r.expect_code(0);
    assert!(
        r.stderr.contains("disagreed with the results log"),
        "{}",
        r.stderr
    );
    assert_eq!(
        repo.statuses(),
        ["baseline", "keep", "keep", "no-op"],
        "{}",
        r.stdout
    );
    assert_eq!(repo.state()["engine"]["head"], repo.head());
    assert_consistent(&repo);
}

#[test]
fn resuming_on_another_branch_is_refused() {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(1, "echo 7 > src/value.txt; echo 'lower to 7'")],
    );
    repo.run_loop("sh measure.sh", &agent, &["--iterations", "1"])
        .expect_code(0);
    repo.git(&["checkout", "-q", "-b", "other"]);
    let before = repo.read("autoresearch-results/results.tsv");
    let r = repo.run_loop("sh measure.sh", &agent, &["--iterations", "2"]);
    r.expect_code(2);
    assert!(
        r.stderr
            .contains("this run commits on refs/heads/main, but refs/heads/other is checked out"),
        "{}",
        r.stderr
    );
    assert_eq!(
        repo.read("autoresearch-results/results.tsv"),
        before,
        "nothing recorded"
    );
    assert_eq!(
        repo.git(&["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        "other"
    );
}

#[test]
fn a_refused_fresh_start_keeps_the_old_run_and_a_fresh_one_inherits_nothing() {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(1, "echo 7 > src/value.txt; echo 'lower to 7'")],
    );
    repo.run_loop("sh measure.sh", &agent, &["--iterations", "1"])
        .expect_code(0);
    let results = repo.read("autoresearch-results/results.tsv");
    let state = repo.read("autoresearch-results/state.json");

    // A fresh start whose baseline fails is refused before the old run is touched.
    let r = repo.run(&[
        "run",
        "--fresh",
        "--goal",
        "another goal",
        "--scope",
        "src/**",
        "--metric",
        "m",
        "--direction",
        "lower",
        "--verify",
        "echo no-number",
        "--agent",
        "command",
        "--agent-cmd",
        &agent,
    ]);
    r.expect_code(2);
    assert!(
        r.stderr.contains("baseline verify gives no metric")
            && r.stderr
                .contains("autoresearch-results/engine/baseline/verify.log"),
        "{}",
        r.stderr
    );
    assert_eq!(repo.read("autoresearch-results/results.tsv"), results);
    assert_eq!(repo.read("autoresearch-results/state.json"), state);
    assert!(!repo.exists("autoresearch-results/results.prev.tsv"));
    // ... and the old run still resumes.
    repo.run(&["run", "--iterations", "2"]).expect_code(0);
    assert_eq!(repo.statuses().len(), 3);

    // A successful fresh start archives everything of the old run, its settings included.
    repo.run_loop("sh measure.sh", &agent, &["--iterations", "1", "--fresh"])
        .expect_code(0);
    assert!(
        repo.exists("autoresearch-results/results.prev.tsv")
            && repo.exists("autoresearch-results/engine/prev1/settings.json")
    );
    std::fs::remove_file(repo.root.join("autoresearch-results/results.tsv")).unwrap();
    std::fs::remove_file(repo.root.join("autoresearch-results/state.json")).unwrap();
    let r = repo.run(&["run", "--iterations", "1"]);
    r.expect_code(2);
    assert!(
        r.stderr.contains("missing required field: goal"),
        "nothing is inherited: {}",
        r.stderr
    );
}

#[test]
fn a_refused_resume_leaves_the_stored_configuration_alone() {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(1, "echo 7 > src/value.txt; echo 'lower to 7'")],
    );
    repo.run_loop(VERIFY, &agent, &["--iterations", "1"])
        .expect_code(0);
    let state = repo.read("autoresearch-results/state.json");
    // A new guard that fails on the retained tree refuses the resume...
    let r = repo.run(&["run", "--iterations", "3", "--guard", "false"]);
    r.expect_code(2);
    assert!(
        r.stderr.contains("the guard fails on the retained tree"),
        "{}",
        r.stderr
    );
    // ... and is not remembered: the next plain resume runs without it.
    assert_eq!(repo.read("autoresearch-results/state.json"), state);
    repo.run(&["run", "--iterations", "2"]).expect_code(0);
    assert!(repo.state()["config"].get("guard").is_none());
}
