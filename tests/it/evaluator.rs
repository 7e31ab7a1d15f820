//! The evaluator, not the data it measures, is protected: files verify only reads stay the
//! agent's to change; the script, Makefile or program verify executes is protected and pinned;
//! a change to it by someone else between iterations is a `drift` row and a re-baseline; a
//! protection that leaves nothing to edit refuses the run and makes `config` invalid.

use std::fs;

use serde_json::Value;

use crate::support::*;

/// `--iterations N` plus a scope other than `src/**`.
fn loop_with_scope(repo: &TestRepo, verify: &str, agent: &str, scope: &str, n: &str) -> Run {
    let mut args = TestRepo::loop_args(verify, agent, &["--iterations", n]);
    let at = args.iter().position(|a| a == "--scope").unwrap() + 1;
    args[at] = scope.to_string();
    repo.run_owned(&args)
}

#[test]
fn a_directory_verify_only_reads_is_the_agents_to_change() {
    let repo = TestRepo::with_files(&[
        ("src/a.txt", "TODO one\n"),
        ("src/b.txt", "TODO two\n"),
        ("src/c.txt", "done\n"),
    ]);
    let agent = scripted_agent(&repo, "agent.sh", &[(1, "rm src/b.txt; echo 'drop b'")]);
    repo.run_loop("grep -rc TODO src/ | wc -l", &agent, &["--iterations", "1"])
        .expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep"], "{:?}", repo.rows());
    assert_eq!(repo.rows()[1][2], "2");
    assert!(!repo.exists("src/b.txt"));
}

#[test]
fn a_file_cat_reads_and_scope_lists_is_editable() {
    let repo = TestRepo::with_files(&[("counter.txt", "9\n")]);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(1, "echo 4 > counter.txt; echo lower")],
    );
    loop_with_scope(&repo, "cat counter.txt", &agent, "counter.txt", "1").expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep"], "{:?}", repo.rows());
    assert_eq!(repo.read("counter.txt"), "4\n");
}

#[test]
fn the_script_python_runs_is_protected_but_its_input_is_not() {
    let repo = TestRepo::with_files(&[
        (
            "bench.py",
            "import sys\nprint(open(sys.argv[1]).read().split('=')[1].strip())\n",
        ),
        ("src/data.py", "VALUE = 9\n"),
    ]);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo 'print(0)' > bench.py; echo 'game the benchmark'"),
            (2, "echo 'VALUE = 5' > src/data.py; echo 'lower the value'"),
        ],
    );
    let r = loop_with_scope(
        &repo,
        "python3 bench.py src/data.py",
        &agent,
        "**/*.py",
        "2",
    );
    r.expect_code(0);
    let rows = repo.rows();
    assert_eq!(repo.statuses(), ["baseline", "discard", "keep"], "{rows:?}");
    assert!(
        rows[1][6].starts_with("[PROTECTED] bench.py"),
        "{}",
        rows[1][6]
    );
    assert_eq!(rows[2][2], "5");
    assert!(repo.read("bench.py").starts_with("import sys"));
    assert!(r.stderr.contains("evaluator"), "{}", r.stderr);
}

#[test]
fn make_protects_its_makefile() {
    let repo = TestRepo::with_files(&[
        ("Makefile", "bench:\n\t@cat src/value.txt\n"),
        ("src/value.txt", "9\n"),
    ]);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (
                1,
                "printf 'bench:\\n\\t@echo 0\\n' > Makefile; echo 'shortcut'",
            ),
            (2, "echo 3 > src/value.txt; echo 'lower'"),
        ],
    );
    loop_with_scope(&repo, "make -s bench", &agent, "**", "2").expect_code(0);
    let rows = repo.rows();
    assert_eq!(repo.statuses(), ["baseline", "discard", "keep"], "{rows:?}");
    assert!(
        rows[1][6].starts_with("[PROTECTED] Makefile"),
        "{}",
        rows[1][6]
    );
    assert_eq!(rows[2][2], "3");
}

#[test]
fn an_outside_evaluator_the_agent_changes_is_protected_and_put_back() {
    let repo = number_repo(9);
    let bench = repo.script("bench.sh", "cat src/value.txt");
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, &format!("echo 'echo 0' >> {bench}; echo 'game it'")),
            (2, "echo 4 > src/value.txt; echo lower"),
        ],
    );
    let r = repo.run_loop(&bench, &agent, &["--iterations", "2"]);
    r.expect_code(0);
    let rows = repo.rows();
    assert_eq!(repo.statuses(), ["baseline", "discard", "keep"], "{rows:?}");
    // The changed content is kept, and the note says where.
    let kept = "autoresearch-results/engine/evaluators/changed-1-bench.sh";
    assert_eq!(repo.read(kept), "#!/bin/sh\ncat src/value.txt\necho 0\n");
    assert!(
        r.stderr.contains("its changed content is kept in") && r.stderr.contains(kept),
        "{}",
        r.stderr
    );
    assert!(
        rows[1][6].starts_with(&format!("[PROTECTED] {bench}")),
        "{}",
        rows[1][6]
    );
    assert_eq!(rows[2][2], "4", "measured with the evaluator put back");
    let prompt = repo.read("autoresearch-results/engine/iter-0001/prompt.md");
    let never = prompt
        .lines()
        .find(|l| l.starts_with("Never change:"))
        .unwrap_or_default();
    assert!(
        never.contains(&bench),
        "the prompt names it protected:\n{prompt}"
    );
    assert_eq!(
        fs::read_to_string(&bench).unwrap(),
        "#!/bin/sh\ncat src/value.txt\n"
    );
    let meta = fs::metadata(&bench).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(meta.permissions().mode() & 0o111, 0o111, "still executable");
}

#[test]
fn an_evaluator_changed_between_iterations_is_a_drift_row_and_a_new_reference() {
    let repo = number_repo(9);
    // The verify program, outside the repository.
    let bench = repo.script("bench.sh", "cat src/value.txt");
    // Someone else changes it: the guard, on its second run (iteration 1), adds 10 to what it
    // prints. The check before iteration 2 sees it.
    let count = repo.aux.join("guard-runs");
    let guard = repo.script(
        "guard.sh",
        &format!(
            "n=$(($(cat {c} 2>/dev/null || echo 0) + 1)); echo $n > {c}\nif [ $n = 2 ]; then printf '#!/bin/sh\\necho $(( $(cat src/value.txt) + 10 ))\\n' > {b}; fi",
            c = count.display(),
            b = bench
        ),
    );
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo 8 > src/value.txt; echo 'to 8'"),
            (3, "echo 7 > src/value.txt; echo 'to 7'"),
        ],
    );
    repo.run_loop(&bench, &agent, &["--iterations", "2", "--guard", &guard])
        .expect_code(0);
    let rows = repo.rows();
    assert_eq!(
        repo.statuses(),
        ["baseline", "keep", "drift", "keep"],
        "{rows:?}"
    );
    let drift = &rows[2];
    assert_eq!((drift[2].as_str(), drift[3].as_str()), ("18", "+10"));
    assert!(
        drift[6].contains(&bench) && drift[6].contains("changed between iterations"),
        "{}",
        drift[6]
    );
    // Compared with the new reference (18), not the old one (8): 17 is a keep.
    assert_eq!(rows[3][2], "17");
    let state = repo.state();
    assert_eq!(state["state"]["discards"], 0, "a drift is no discard");
    assert_consistent(&repo);
}

#[test]
fn a_changed_evaluator_on_resume_is_named_in_the_drift_row() {
    let repo = number_repo(9);
    let bench = repo.script("bench.sh", "cat src/value.txt");
    let agent = scripted_agent(&repo, "agent.sh", &[]);
    repo.run_loop(&bench, &agent, &["--iterations", "1"])
        .expect_code(0);
    // Same output, different program: still a new reference, named.
    fs::write(&bench, "#!/bin/sh\n# faster now\ncat src/value.txt\n").unwrap();
    repo.run_loop(&bench, &agent, &["--iterations", "1"])
        .expect_code(0);
    let rows = repo.rows();
    assert_eq!(repo.statuses(), ["baseline", "no-op", "drift"], "{rows:?}");
    assert!(
        rows[2][6].contains(&bench) && rows[2][6].contains("changed between runs"),
        "{}",
        rows[2][6]
    );
}

#[test]
fn a_scope_protection_leaves_nothing_to_edit_in_is_refused_and_config_is_invalid() {
    let repo = TestRepo::with_files(&[("bench.sh", "echo 3\n"), ("notes.txt", "n\n")]);
    let agent = scripted_agent(&repo, "agent.sh", &[]);
    let before = repo.snapshot();
    let r = loop_with_scope(&repo, "sh bench.sh", &agent, "*.sh", "1");
    r.expect_code(2);
    r.expect_refusal(&["bench.sh", "--scope", "protected"]);
    repo.assert_untouched(&before);

    let config = |scope: &str| {
        let r = repo.run(&[
            "config",
            "--json",
            "--goal",
            "g",
            "--scope",
            scope,
            "--metric",
            "m",
            "--direction",
            "lower",
            "--verify",
            "sh bench.sh",
        ]);
        let v: Value = serde_json::from_str(&r.stdout).expect("config --json");
        (r.code, v)
    };
    let (code, v) = config("*.sh");
    assert_eq!(code, 2);
    assert_eq!(v["valid"], false);
    assert!(v["error"].as_str().unwrap().contains("bench.sh"), "{v}");
    // Listed verbatim, the evaluator is editable: valid.
    let (code, v) = config("bench.sh");
    assert_eq!((code, &v["valid"]), (0, &Value::Bool(true)), "{v}");
}

#[test]
fn an_outside_evaluator_changed_in_a_turn_the_engine_did_not_survive_is_put_back() {
    use nix::sys::signal::Signal;
    let repo = number_repo(9);
    let bench = repo.script("bench.sh", "cat src/value.txt");
    let marker = repo.aux.join("agent-started");
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(
            1,
            &format!("echo 'echo 0' >> {bench}; {}; sleep 60", mark(&marker)),
        )],
    );
    let mut first = repo.spawn(&TestRepo::loop_args(&bench, &agent, &["--iterations", "2"]));
    first.wait_for(&marker);
    let agent_group = pgid_of(read_pid(&marker)).expect("the agent is running");
    first.signal(Signal::SIGKILL);
    kill_group(agent_group);
    assert_eq!(first.finish().code, -9);
    assert!(fs::read_to_string(&bench).unwrap().contains("echo 0"));

    let r = repo.run_loop(&bench, &agent, &["--iterations", "1"]);
    r.expect_code(0);
    assert!(
        r.stderr
            .contains(&format!("put back the evaluator {bench}")),
        "{}",
        r.stderr
    );
    assert!(
        repo.read("autoresearch-results/engine/evaluators/changed-1-bench.sh")
            .contains("echo 0"),
        "the interrupted turn's change is kept"
    );
    assert_eq!(
        fs::read_to_string(&bench).unwrap(),
        "#!/bin/sh\ncat src/value.txt\n"
    );
    assert_eq!(
        repo.statuses(),
        ["baseline", "crash", "no-op"],
        "{:?}",
        repo.rows()
    );
}
