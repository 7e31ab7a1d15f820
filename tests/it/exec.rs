//! `exec`, the CI path: JSON lines on stdout (the reference's payloads, exactly typed), exit codes
//! 0/1/2, the JSON error line, environment fallbacks, always-fresh runs (`.prev` generations,
//! read-only lessons, a dirty tree refused) and stdout purity with noisy children.

use serde_json::Value;

use crate::codex::CodexRun;
use crate::mock_responses::*;
use crate::support::*;

const VERIFY: &str = "sh measure.sh";

/// The required fields of exec, their flags and their environment variables.
const REQUIRED: [(&str, &str, &str, &str); 6] = [
    ("goal", "--goal", "AUTORESEARCH_GOAL", "lower the number"),
    ("scope", "--scope", "AUTORESEARCH_SCOPE", "src/**"),
    ("metric", "--metric", "AUTORESEARCH_METRIC", "value"),
    (
        "direction",
        "--direction",
        "AUTORESEARCH_DIRECTION",
        "lower",
    ),
    ("verify", "--verify", "AUTORESEARCH_VERIFY", VERIFY),
    ("iterations", "--iterations", "AUTORESEARCH_ITERATIONS", "2"),
];

/// An agent that keeps, discards, crashes, does nothing, then lowers the value by 2 each turn.
fn mixed_agent(repo: &TestRepo) -> String {
    repo.script(
        "mixed.sh",
        "cat > /dev/null\ncase \"$AUTORESEARCH_ITERATION\" in\n\
         1) echo 7 > src/value.txt; echo 'lower to 7' ;;\n\
         2) echo 9 > src/value.txt; echo 'raise to 9' ;;\n\
         3) echo oops > src/value.txt; echo 'break the metric' ;;\n\
         4) echo 'change nothing' ;;\n\
         *) v=$(cat src/value.txt); echo $((v - 2)) > src/value.txt; echo \"lower to $((v - 2))\" ;;\n\
         esac",
    )
}

/// Checks the stdout of a finished exec against the results log: one row payload per row after
/// the baseline, field by field, then the completion payload whose counts match the log.
/// Returns the completion payload.
#[track_caller]
fn check_against_tsv(repo: &TestRepo, r: &Run) -> Value {
    let lines = r.json_lines();
    let rows = repo.rows();
    assert!(!rows.is_empty() && rows[0][5] == "baseline");
    assert_eq!(
        lines.len(),
        rows.len(),
        "one line per row after the baseline plus the completion line\n{}",
        r.stdout
    );
    let (completion, row_lines) = lines.split_last().unwrap();
    for (v, row) in row_lines.iter().zip(&rows[1..]) {
        assert_exec_row(v);
        assert_eq!(v["iteration"].as_u64().unwrap().to_string(), row[0], "{v}");
        assert_eq!(v["commit"], row[1].as_str(), "{v}");
        assert_eq!(v["metric"].as_f64().unwrap(), tsv_num(&row[2]), "{v}");
        assert_eq!(v["delta"].as_f64().unwrap(), tsv_num(&row[3]), "{v}");
        assert_eq!(v["guard"], row[4].as_str(), "{v}");
        assert_eq!(v["status"], row[5].as_str(), "{v}");
        assert_eq!(v["description"], row[6].as_str(), "{v}");
    }
    assert_exec_completion(completion);
    let count = |s: &str| rows.iter().filter(|r| r[5] == s).count() as u64;
    assert_eq!(completion["keeps"], count("keep"), "{completion}");
    assert_eq!(completion["discards"], count("discard"), "{completion}");
    assert_eq!(completion["crashes"], count("crash"), "{completion}");
    let last: u64 = rows.last().unwrap()[0].parse().unwrap();
    assert_eq!(completion["total_iterations"], last, "{completion}");
    let baseline = tsv_num(&rows[0][2]);
    assert_eq!(completion["baseline"].as_f64().unwrap(), baseline);
    // Lower is better in these runs: the best is the smallest kept metric (the first to reach it).
    let (best_iter, best) = rows
        .iter()
        .filter(|r| r[5] == "baseline" || r[5] == "keep")
        .map(|r| (r[0].parse::<u64>().unwrap(), tsv_num(&r[2])))
        .fold((0, baseline), |acc, x| if x.1 < acc.1 { x } else { acc });
    assert_eq!(completion["best"].as_f64().unwrap(), best, "{completion}");
    assert_eq!(completion["best_iteration"], best_iter, "{completion}");
    assert_eq!(completion["improved"], best < baseline, "{completion}");
    assert_eq!(
        completion["exit_code"], r.code,
        "the payload's exit code is the process's"
    );
    completion.clone()
}

#[test]
fn improving_run_exits_0_with_one_line_per_row_and_a_matching_completion() {
    let repo = number_repo(10);
    let agent = mixed_agent(&repo);
    let r = repo.run_owned(&TestRepo::exec_args(VERIFY, &agent, 5, &[]));
    r.expect_code(0);
    // Every kind of row, a bookkeeping row (refine) included, gets its payload line.
    assert_eq!(
        repo.statuses(),
        [
            "baseline", "keep", "discard", "crash", "no-op", "refine", "keep"
        ]
    );
    let completion = check_against_tsv(&repo, &r);
    assert_eq!(completion["improved"], true);
    assert_eq!(completion["total_iterations"], 6);
    // Every keep's commit is a commit on the branch.
    let branch = repo.git(&["log", "--format=%H"]);
    for keep in r.json_lines().iter().filter(|v| v["status"] == "keep") {
        let c = keep["commit"].as_str().unwrap();
        assert!(
            branch.lines().any(|full| full.starts_with(c)),
            "{keep} is not on the branch:\n{branch}"
        );
    }
    // Human lines go to stderr.
    assert!(r.stderr.contains("exec run"), "{}", r.stderr);
    // The run is marked as an exec run and leaves a clean tree.
    assert!(
        repo.read("autoresearch-results/results.tsv")
            .contains("# execution: exec\n")
    );
    assert_eq!(repo.status(), "");
}

/// `exec > out.jsonl` inside the checkout (as CI recipes do): the engine's own output files are
/// neither the user's untracked files nor the agent's change, and lose no line.
#[test]
fn output_redirected_into_the_work_tree_is_kept_whole() {
    let repo = number_repo(10);
    let agent = mixed_agent(&repo);
    // Names with glob and exclude-file syntax in them are taken literally.
    let out = std::fs::File::create(repo.root.join("out {1} *.jsonl")).unwrap();
    // stderr inside the scope: the preflight would otherwise refuse it as an untracked file there.
    let err = std::fs::File::create(repo.root.join("src/err [a].log")).unwrap();
    let status = repo
        .cmd()
        .args(TestRepo::exec_args(VERIFY, &agent, 5, &[]))
        .stdout(out)
        .stderr(err)
        .status()
        .unwrap();
    let r = Run {
        code: status.code().unwrap_or(-1),
        stdout: repo.read("out {1} *.jsonl"),
        stderr: repo.read("src/err [a].log"),
    };
    r.expect_code(0);
    assert_eq!(
        repo.statuses(),
        [
            "baseline", "keep", "discard", "crash", "no-op", "refine", "keep"
        ]
    );
    check_against_tsv(&repo, &r);
    assert!(r.stderr.contains("exec run"), "{}", r.stderr);
    let exclude = repo.read(".git/info/exclude");
    assert!(exclude.contains("\n/out {1} \\*.jsonl\n"), "{exclude}");
    assert!(exclude.contains("\n/src/err \\[a\\].log\n"), "{exclude}");
    assert_eq!(repo.status(), "");
}

/// A fixed run tag (as in a CI config) across repeated execs: earlier trial refs move aside to
/// numbered `.prev` names, none overwritten; `run` without `--fresh` refuses before writing.
#[test]
fn repeated_execs_with_one_run_tag_move_earlier_trials_aside() {
    let repo = number_repo(10);
    let agent = mixed_agent(&repo);
    let args = TestRepo::exec_args(VERIFY, &agent, 3, &["--run-tag", "nightly"]);
    let refs =
        |repo: &TestRepo| repo.git(&["for-each-ref", "--format=%(refname)", "refs/autoresearch/"]);
    repo.run_owned(&args).expect_code(0);
    let first = refs(&repo);
    assert!(
        first.contains("refs/autoresearch/nightly/trial-2\n"),
        "{first}"
    );
    let first_target = repo.git(&["rev-parse", "refs/autoresearch/nightly/trial-2"]);
    let r = repo.run_owned(&args);
    r.expect_code(1);
    assert!(
        r.stderr.contains(
            "trial ref(s) of an earlier run tagged nightly to refs/autoresearch/nightly.prev/"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(
        repo.git(&["rev-parse", "refs/autoresearch/nightly.prev/trial-2"]),
        first_target
    );
    repo.run_owned(&args).expect_code(1);
    let all = refs(&repo);
    assert!(
        all.contains("refs/autoresearch/nightly.prev2/trial-2\n"),
        "{all}"
    );
    assert!(
        all.contains("refs/autoresearch/nightly.prev/trial-2\n"),
        "{all}"
    );
    assert!(all.contains("refs/autoresearch/nightly/trial-2\n"), "{all}");

    // Artifacts gone, refs left: `run` with the same tag refuses and writes nothing.
    for f in [RESULTS, EXEC_STATE] {
        std::fs::remove_file(repo.root.join(f)).unwrap();
    }
    std::fs::remove_dir_all(repo.root.join("autoresearch-results")).unwrap();
    let before = repo.snapshot();
    let r = repo.run_loop(
        VERIFY,
        &agent,
        &["--run-tag", "nightly", "--iterations", "1"],
    );
    r.expect_refusal(&["refs/autoresearch/nightly/ already holds trials", "--fresh"]);
    assert_eq!(repo.snapshot(), before);
    assert!(!repo.exists("autoresearch-results"));
}

#[test]
fn non_improving_run_exits_1() {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo 12 > src/value.txt; echo 'raise to 12'"),
            (2, "printf '10\\n\\n' > src/value.txt; echo 'same value'"),
        ],
    );
    let r = repo.run_owned(&TestRepo::exec_args(
        VERIFY,
        &agent,
        3,
        &["--refine-after", "0"],
    ));
    r.expect_code(1);
    let completion = check_against_tsv(&repo, &r);
    assert_eq!(completion["improved"], false);
    assert_eq!(completion["keeps"], 0);
    assert_eq!(completion["best"], completion["baseline"]);
    assert_eq!(repo.statuses(), ["baseline", "discard", "discard", "no-op"]);
    assert_eq!(
        r.stderr_lines().last().map(|l| l.starts_with("{\"error\"")),
        Some(false),
        "no improvement is not an error"
    );
}

#[test]
fn each_missing_required_field_is_a_json_error() {
    let repo = number_repo(10);
    let marker = repo.aux.join("agent-ran");
    let agent = repo.script(
        "agent.sh",
        &format!("cat > /dev/null; touch {}; echo ran", marker.display()),
    );
    let before = repo.snapshot();
    for (field, flag, var, _) in REQUIRED {
        let mut args = vec![
            "exec".to_string(),
            "--agent".into(),
            "command".into(),
            "--agent-cmd".into(),
            agent.clone(),
        ];
        for (_, f, _, v) in REQUIRED {
            if f != flag {
                args.push(f.into());
                args.push(v.into());
            }
        }
        let r = repo.run_owned(&args);
        let error = r.expect_exec_error(&[&format!("missing required field: {field}")]);
        // The message says where the field may come from.
        assert!(error.contains(flag) && error.contains(var), "{error}");
        repo.assert_untouched(&before);
        assert!(!repo.exists("autoresearch-results"));
        assert!(!marker.exists(), "the agent ran");
    }
}

#[test]
fn bad_flags_are_json_errors() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let before = repo.snapshot();
    let r = repo.run(&["exec", "--bogus"]);
    r.expect_exec_error(&["--bogus"]);
    let cases: &[(&[&str], &str)] = &[
        (&["--bogus"], "--bogus"),
        (&["--iterations", "ten"], "ten"),
        (&["--direction", "down"], "down"),
        (&["--verify-timeout", "5x"], "5x"),
        (&["--iterations", "0"], "--iterations"),
    ];
    for (extra, needle) in cases {
        let mut args = TestRepo::exec_args(VERIFY, &agent, 2, &[]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let r = repo.run_owned(&args);
        r.expect_exec_error(&[needle]);
    }
    // A bad value from the environment names its variable.
    let mut args = TestRepo::exec_args(VERIFY, &agent, 2, &[]);
    let at = args.iter().position(|a| a == "--direction").unwrap();
    args.drain(at..at + 2);
    for (var, value) in [
        ("AUTORESEARCH_DIRECTION", "down"),
        ("AUTORESEARCH_ITERATIONS", "ten"),
    ] {
        // (The --iterations flag would win over the variable; a bad variable is still an error.)
        let r = repo.run_env(&args, &[(var, value)]);
        r.expect_exec_error(&[&format!("{var}: `{value}`")]);
    }
    repo.assert_untouched(&before);
    assert!(!repo.exists("autoresearch-results"));
}

#[test]
fn environment_supplies_the_required_fields_and_flags_override_it() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let marker = repo.aux.join("guard-ran");
    let guard = format!("touch {}; true", marker.display());
    let env: Vec<(&str, &str)> = vec![
        ("AUTORESEARCH_GOAL", "lower the number from env"),
        ("AUTORESEARCH_SCOPE", "src/**,lib/**"),
        ("AUTORESEARCH_METRIC", "value"),
        ("AUTORESEARCH_DIRECTION", "lower"),
        ("AUTORESEARCH_VERIFY", VERIFY),
        ("AUTORESEARCH_ITERATIONS", "3"),
        ("AUTORESEARCH_GUARD", &guard),
    ];
    let agent_only: Vec<String> = ["exec", "--agent", "command", "--agent-cmd", &agent]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let r = repo.run_env(&agent_only, &env);
    r.expect_code(0);
    let completion = check_against_tsv(&repo, &r);
    assert_eq!(completion["total_iterations"], 3);
    assert!(marker.exists(), "the guard from AUTORESEARCH_GUARD ran");
    assert_eq!(repo.rows()[1][4], "pass");
    let config = &repo.state()["config"];
    assert_eq!(config["goal"], "lower the number from env");
    assert_eq!(config["scope"], "src/**,lib/**");
    assert_eq!(config["guard"], guard.as_str());
    assert_eq!(config["iterations"], 3);

    // A flag wins over its variable.
    let mut args = agent_only.clone();
    args.extend(
        [
            "--iterations",
            "1",
            "--goal",
            "lower the number from a flag",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let r = repo.run_env(&args, &env);
    r.expect_code(0);
    assert_eq!(check_against_tsv(&repo, &r)["total_iterations"], 1);
    assert_eq!(
        repo.state()["config"]["goal"],
        "lower the number from a flag"
    );

    // A bad value in a variable is a JSON error naming the variable.
    let mut bad = env.clone();
    bad.retain(|(k, _)| *k != "AUTORESEARCH_ITERATIONS");
    bad.push(("AUTORESEARCH_ITERATIONS", "many"));
    repo.run_env(&agent_only, &bad)
        .expect_exec_error(&["AUTORESEARCH_ITERATIONS"]);
    // Without AUTORESEARCH_ITERATIONS (or the flag) exec refuses: it is always bounded.
    bad.retain(|(k, _)| *k != "AUTORESEARCH_ITERATIONS");
    repo.run_env(&agent_only, &bad)
        .expect_exec_error(&["missing required field: iterations"]);
}

#[test]
fn a_dirty_tree_is_refused_and_left_exactly_as_it_was() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    // A modified tracked file inside the scope, and one outside it.
    repo.write("src/value.txt", "3\n");
    repo.write("measure.sh", "cat src/value.txt # edited\n");
    let before = repo.snapshot();
    let status = repo.status();
    let r = repo.run_owned(&TestRepo::exec_args(VERIFY, &agent, 2, &[]));
    r.expect_exec_error(&["uncommitted changes", "src/value.txt"]);
    assert_eq!(repo.read("src/value.txt"), "3\n");
    assert_eq!(repo.read("measure.sh"), "cat src/value.txt # edited\n");
    assert_eq!(repo.status(), status);
    repo.assert_untouched(&before);
    assert!(!repo.exists("autoresearch-results"), "no artifacts");

    // A staged change is refused the same way; the index is untouched.
    repo.git(&["checkout", "--", "measure.sh"]);
    repo.git(&["add", "src/value.txt"]);
    let before = repo.snapshot();
    let r = repo.run_owned(&TestRepo::exec_args(VERIFY, &agent, 2, &[]));
    r.expect_exec_error(&["uncommitted changes"]);
    repo.assert_untouched(&before);
}

#[test]
fn a_dirty_tree_does_not_archive_an_earlier_run() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    repo.run_owned(&TestRepo::exec_args(VERIFY, &agent, 1, &[]))
        .expect_code(0);
    let tsv = repo.read_bytes("autoresearch-results/results.tsv");
    let state = repo.read_bytes(EXEC_STATE);
    repo.write("src/value.txt", "1\n");
    let r = repo.run_owned(&TestRepo::exec_args(VERIFY, &agent, 1, &[]));
    r.expect_exec_error(&["uncommitted changes"]);
    assert_eq!(repo.read_bytes("autoresearch-results/results.tsv"), tsv);
    assert_eq!(repo.read_bytes(EXEC_STATE), state);
    assert!(!repo.exists("autoresearch-results/results.prev.tsv"));
    assert!(!repo.exists("autoresearch-results/state.prev.json"));
    assert!(!repo.exists("autoresearch-results/engine/prev1"));
    assert_eq!(repo.read("src/value.txt"), "1\n");
}

#[test]
fn every_exec_starts_fresh_and_archives_without_overwriting() {
    let repo = number_repo(10);
    let lessons = "# Lessons\n\n### L-1: halving the value beats decrementing\n\
                   - **Strategy:** halve it\n- **Outcome:** keep\n\
                   - **Insight:** value 8 -> 4\n\
                   - **Context:** goal=lower the number; scope=src/**; metric=value; direction=lower\n\
                   - **Iteration:** old#3\n";
    repo.write("autoresearch-results/lessons.md", lessons);
    let lessons_bytes = repo.read_bytes("autoresearch-results/lessons.md");
    // Keeps (which `run` would turn into lessons) and a discard.
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (
                1,
                "v=$(cat src/value.txt); echo $((v - 1)) > src/value.txt; echo 'lower by one'",
            ),
            (2, "echo 99 > src/value.txt; echo 'raise to 99'"),
        ],
    );
    let first = repo.run_owned(&TestRepo::exec_args(VERIFY, &agent, 2, &[]));
    first.expect_code(0);
    check_against_tsv(&repo, &first);
    assert_eq!(repo.statuses(), ["baseline", "keep", "discard"]);
    let tsv1 = repo.read_bytes("autoresearch-results/results.tsv");
    let state1 = repo.read_bytes(EXEC_STATE);
    // Lessons are read (the prompt carries them) but never written.
    let prompt = std::fs::read_to_string(
        repo.root
            .join("autoresearch-results/engine/iter-0001/prompt.md"),
    )
    .expect("prompt of iteration 1");
    assert!(
        prompt.contains("halving the value beats decrementing"),
        "the lessons reach the prompt:\n{prompt}"
    );
    assert_eq!(
        repo.read_bytes("autoresearch-results/lessons.md"),
        lessons_bytes
    );

    // The second exec (a different goal: no resume, no identity check) archives the first.
    let mut args = TestRepo::exec_args(VERIFY, &agent, 1, &[]);
    args[2] = "lower the number again".into();
    let second = repo.run_owned(&args);
    second.expect_code(0);
    assert!(repo.exists("autoresearch-results/results.prev.tsv"));
    assert_eq!(
        repo.read_bytes("autoresearch-results/results.prev.tsv"),
        tsv1
    );
    assert_eq!(
        repo.read_bytes("autoresearch-results/engine/prev1/state.exec.json"),
        state1
    );
    assert!(repo.exists("autoresearch-results/engine/prev1/iter-0001"));
    let rows = repo.rows();
    assert_eq!(rows[0][0], "0", "a fresh log starts at iteration 0");
    assert_eq!(
        (rows[0][5].as_str(), rows[0][2].as_str()),
        ("baseline", "9")
    );
    assert_eq!(repo.statuses(), ["baseline", "keep"]);
    assert_eq!(repo.state()["state"]["iteration"], 1);
    assert_eq!(repo.state()["config"]["goal"], "lower the number again");
    assert_eq!(second.json_lines()[0]["iteration"], 1);
    check_against_tsv(&repo, &second);
    let tsv2 = repo.read_bytes("autoresearch-results/results.tsv");
    let state2 = repo.read_bytes(EXEC_STATE);

    // The third makes a second generation; the first is not overwritten.
    let third = repo.run_owned(&TestRepo::exec_args(VERIFY, &agent, 1, &[]));
    third.expect_code(0);
    assert_eq!(
        repo.read_bytes("autoresearch-results/results.prev.tsv"),
        tsv1
    );
    assert_eq!(
        repo.read_bytes("autoresearch-results/engine/prev1/state.exec.json"),
        state1
    );
    assert_eq!(
        repo.read_bytes("autoresearch-results/results.prev2.tsv"),
        tsv2
    );
    assert_eq!(
        repo.read_bytes("autoresearch-results/engine/prev2/state.exec.json"),
        state2
    );
    assert!(repo.exists("autoresearch-results/engine/prev2/iter-0001"));
    assert_eq!(repo.rows()[0][2], "8");
    assert_eq!(
        repo.read_bytes("autoresearch-results/lessons.md"),
        lessons_bytes
    );
    assert_eq!(repo.status(), "", "archives are excluded from git");
}

#[test]
fn exec_writes_no_lessons_file_where_run_would() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    repo.run_owned(&TestRepo::exec_args(VERIFY, &agent, 2, &[]))
        .expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep", "keep"]);
    assert!(
        !repo.exists("autoresearch-results/lessons.md"),
        "exec never writes lessons"
    );
    // The same keeps under `run` do write lessons (so the check above means something).
    repo.run_owned(&TestRepo::loop_args(
        VERIFY,
        &agent,
        &["--iterations", "1", "--fresh"],
    ))
    .expect_code(0);
    assert!(repo.exists("autoresearch-results/lessons.md"));
}

#[test]
fn stdout_is_only_json_with_a_noisy_agent_verify_and_guard() {
    let repo = number_repo(10);
    // Each child floods both streams, including lines that look like exec payloads, broken
    // JSON, control characters and a line without a newline at the end.
    let noise = "i=0; while [ $i -lt 300 ]; do \
                 echo \"NOISE out $i\"; echo \"NOISE err $i\" >&2; i=$((i + 1)); done; \
                 echo '{\"status\": \"completed\", \"exit_code\": 0}'; \
                 echo '{\"error\": \"fake\", \"exit_code\": 2}' >&2; \
                 echo '{not json'; printf '\\033[31mNOISE red\\033[0m\\n'; \
                 printf '\\t\\r\\n' >&2; printf 'NOISE tail' >&2";
    let agent = repo.script(
        "noisy-agent.sh",
        &format!(
            "cat > /dev/null\n{noise}\necho\nv=$(cat src/value.txt)\n\
             if [ \"$AUTORESEARCH_ITERATION\" = 2 ]; then echo 50 > src/value.txt; \
             else echo $((v - 1)) > src/value.txt; fi\n\
             echo '{{\"status\": \"completed\"}} \"quoted\" \\\\ back\\\\slash\tand tab'"
        ),
    );
    let verify = repo.script(
        "noisy-verify.sh",
        &format!("{noise}\necho\ncat src/value.txt"),
    );
    let guard = repo.script("noisy-guard.sh", &format!("{noise}\necho\ntrue"));
    let r = repo.run_owned(&TestRepo::exec_args(
        &verify,
        &agent,
        3,
        &["--guard", &guard],
    ));
    r.expect_code(0);
    assert!(
        !r.stdout.contains("NOISE"),
        "child output leaked:\n{}",
        r.stdout
    );
    assert!(r.stdout.ends_with('\n'));
    // Every line is one JSON object (json_lines panics otherwise) and they match the log.
    check_against_tsv(&repo, &r);
    assert_eq!(repo.statuses(), ["baseline", "keep", "discard", "keep"]);
    let lines = r.json_lines();
    assert_eq!(
        lines[0]["description"], "{\"status\": \"completed\"} \"quoted\" \\ back\\slash and tab",
        "the description survives as one JSON string"
    );
    assert_eq!(
        lines.iter().filter(|v| v["status"] == "completed").count(),
        1
    );
}

#[test]
fn a_hard_blocker_mid_run_exits_2_with_the_json_error_last() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let before_head = repo.head();
    let r = repo.run_env(
        &TestRepo::exec_args(VERIFY, &agent, 3, &[]),
        &[("AUTORESEARCH_MIN_FREE_MB", "999999999")],
    );
    r.expect_code(2);
    let error = r.exec_error_line(&["MB free"]);
    assert!(error.contains("999999999"), "{error}");
    // The baseline was measured, then the first between-iteration check blocked the run.
    assert_eq!(repo.statuses(), ["baseline", "blocked"]);
    assert_eq!(repo.head(), before_head);
    assert_eq!(repo.status(), "");
    // stdout: JSON lines only, and exactly the rows recorded (here the `blocked` row, commit
    // `-`); no completion payload, which belongs to exits 0 and 1.
    let lines = r.json_lines();
    assert_eq!(lines.len(), 1, "{}", r.stdout);
    assert_exec_row(&lines[0]);
    assert_eq!(lines[0]["status"], "blocked", "{}", lines[0]);
    assert_eq!(lines[0]["commit"], "-", "{}", lines[0]);
    assert_eq!(lines[0]["iteration"], 1, "{}", lines[0]);
    assert!(
        lines.iter().all(|v| v["status"] != "completed"),
        "a blocked run is not `completed`:\n{}",
        r.stdout
    );
}

#[test]
fn a_baseline_without_a_metric_cannot_start() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let r = repo.run_owned(&TestRepo::exec_args(
        "echo 'no number here'",
        &agent,
        2,
        &[],
    ));
    r.expect_exec_error(&["baseline"]);
    assert!(!repo.exists("autoresearch-results/results.tsv"));
    assert_eq!(repo.status(), "");
}

fn patch(path: &str, from: &str, to: &str) -> String {
    format!("*** Begin Patch\n*** Update File: {path}\n@@\n-{from}\n+{to}\n*** End Patch\n")
}

#[test]
fn exec_with_the_real_codex_keeps_then_discards() {
    let Some(t) = CodexRun::new(vec![
        MockReply::Sse(reply_patch("p1", &patch("src/value.txt", "10", "7"))),
        MockReply::Sse(reply_message("Lower the value to 7.", Some((100, 10)))),
        MockReply::Sse(reply_patch("p2", &patch("src/value.txt", "7", "9"))),
        MockReply::Sse(reply_message("Raise the value to 9.", Some((120, 12)))),
    ]) else {
        return;
    };
    let r = t.exec(&["--iterations", "2"]);
    r.expect_code(0);
    assert_eq!(t.repo.statuses(), ["baseline", "keep", "discard"]);
    let completion = check_against_tsv(&t.repo, &r);
    assert_eq!(completion["keeps"], 1);
    assert_eq!(completion["discards"], 1);
    assert_eq!(completion["best"], 7);
    assert_eq!(completion["improved"], true);
    let lines = r.json_lines();
    assert_eq!(lines[0]["description"], "Lower the value to 7.");
    assert_eq!(lines[0]["tokens"]["input_tokens"], 100, "{}", lines[0]);
    assert!(r.stderr.contains("agent: codex-cli"), "{}", r.stderr);
    assert_eq!(t.repo.read("src/value.txt"), "7\n");
    assert_eq!(t.repo.status(), "");
    assert_eq!(t.server.responses_requests().len(), 4);
}
