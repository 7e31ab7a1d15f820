//! The escalation ladder (refine, pivot, search, needs a human), its counters in the state, the
//! directives the agent receives, custom thresholds, pivot lessons, and the stop conditions
//! (`--stop-condition`, fix mode at zero).

use serde_json::Value;

use crate::support::*;

const VERIFY: &str = "sh measure.sh";

/// An agent that records, per iteration, its directive (`directives`: "<n> <directive>" lines)
/// and the state file it was handed (`state-<n>.json`), both outside the repository. It lowers
/// the value by one at the iterations in `improve_at` and raises it by one otherwise.
fn recording_agent(repo: &TestRepo, improve_at: &[u64]) -> String {
    let improve = improve_at
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join("|");
    let improve = if improve.is_empty() {
        "never".to_string()
    } else {
        improve
    };
    repo.script(
        "agent.sh",
        &format!(
            "cat > /dev/null
aux={aux}
echo \"$AUTORESEARCH_ITERATION $AUTORESEARCH_DIRECTIVE\" >> $aux/directives
cp \"$AUTORESEARCH_STATE\" $aux/state-$AUTORESEARCH_ITERATION.json
v=$(cat src/value.txt)
case \"$AUTORESEARCH_ITERATION\" in
  {improve}) echo $((v-1)) > src/value.txt; echo \"lower to $((v-1))\" ;;
  *) echo $((v+1)) > src/value.txt; echo \"raise to $((v+1))\" ;;
esac",
            aux = repo.aux.display()
        ),
    )
}

/// Returns the (iteration, directive) pairs the agent recorded.
fn directives(repo: &TestRepo) -> Vec<(usize, String)> {
    repo.aux_read("directives")
        .lines()
        .map(|l| {
            let (n, d) = l.split_once(' ').expect("n directive");
            (n.parse().expect("iteration"), d.to_string())
        })
        .collect()
}

/// Returns the state file the agent saw at iteration `n`.
fn seen_state(repo: &TestRepo, n: usize) -> Value {
    serde_json::from_str(&repo.aux_read(&format!("state-{n}.json")))
        .unwrap_or_else(|e| panic!("state-{n}.json: {e}"))
}

/// Checks, against the results log alone, that every agent call got the right directive and a
/// state whose counters match the rows before it: consecutive_discards = discard/crash/no-op and
/// refine rows since the last keep (the reference's current rule; pivot and search rows don't
/// count), pivot_count = pivot rows since the last keep.
fn check_directives_and_counters(repo: &TestRepo) {
    let rows = repo.rows();
    let seen = directives(repo);
    let experiments: Vec<usize> = rows
        .iter()
        .skip(1)
        .filter(|r| !matches!(r[5].as_str(), "refine" | "pivot" | "search"))
        .map(|r| r[0].parse().unwrap())
        .collect();
    assert_eq!(
        seen.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        experiments,
        "the agent is called once per experiment row"
    );
    for (n, directive) in &seen {
        let previous = rows[n - 1][5].as_str();
        let expected = match previous {
            "refine" => "refine",
            "pivot" | "search" => "pivot",
            _ => "continue",
        };
        assert_eq!(
            directive, expected,
            "iteration {n} follows a {previous} row"
        );

        let before = &rows[..*n];
        let since_keep = before
            .iter()
            .rposition(|r| r[5] == "keep" || r[5] == "baseline")
            .unwrap();
        let tail = &before[since_keep + 1..];
        let failed = tail
            .iter()
            .filter(|r| matches!(r[5].as_str(), "discard" | "crash" | "no-op" | "refine"))
            .count();
        let pivots = tail.iter().filter(|r| r[5] == "pivot").count();
        let state = seen_state(repo, *n);
        assert_eq!(state["state"]["iteration"], n - 1, "iteration {n}");
        assert_eq!(
            state["state"]["consecutive_discards"], failed,
            "consecutive_discards seen at iteration {n}"
        );
        assert_eq!(
            state["state"]["pivot_count"], pivots,
            "pivot_count seen at iteration {n}"
        );
    }
}

/// Checks the meta rows: commit `-`, the retained metric, delta 0, guard `-`, their tag.
fn check_meta_rows(repo: &TestRepo) {
    let rows = repo.rows();
    let mut retained = rows[0][2].clone();
    for r in &rows[1..] {
        let tag = match r[5].as_str() {
            "keep" => {
                retained = r[2].clone();
                continue;
            }
            "refine" => "[REFINE]",
            "pivot" => "[PIVOT]",
            "search" => "[SEARCH]",
            _ => continue,
        };
        assert_eq!(r[1], "-", "{r:?}");
        assert_eq!(r[2], retained, "{r:?}");
        assert_eq!(r[3], "0", "{r:?}");
        assert_eq!(r[4], "-", "{r:?}");
        assert!(r[6].starts_with(tag), "{r:?}");
    }
}

#[test]
fn the_whole_ladder_ends_with_a_human_needed() {
    let repo = number_repo(10);
    let agent = recording_agent(&repo, &[]);
    let r = repo.run_loop(VERIFY, &agent, &[]);
    r.expect_code(3);
    let d = "discard";
    assert_eq!(
        repo.statuses(),
        [
            "baseline", d, d, d, "refine", d, d, "pivot", d, d, d, "refine", d, d, "pivot",
            "search", d, d, d, "refine", d, d, "pivot"
        ]
    );
    check_meta_rows(&repo);
    check_directives_and_counters(&repo);
    let last = r.stdout_lines().last().unwrap().to_string();
    assert!(
        last.starts_with("finished: stopped: 3 pivots without a keep") && last.contains("human"),
        "{last}"
    );
    let state = repo.state();
    // 15 discards and 3 refine rows: the reference's current rule counts refine rows.
    assert_eq!(state["state"]["consecutive_discards"], 18);
    assert_eq!(state["state"]["pivot_count"], 3);
    assert_eq!(state["state"]["discards"], 15);
    assert_eq!(state["state"]["current_metric"], 10);
    assert_eq!(state["state"]["last_status"], "pivot");
    // Each pivot leaves a lesson.
    let lessons = repo.read("autoresearch-results/lessons.md");
    assert_eq!(
        lessons.matches("- **Outcome:** pivot").count(),
        3,
        "{lessons}"
    );
    assert_eq!(lessons.matches("### L-").count(), 3, "{lessons}");
    assert!(lessons.contains("[PIVOT]"), "{lessons}");
    assert_eq!(repo.read("src/value.txt"), "10\n");
    assert_eq!(repo.log(), ["initial"]);
    assert_eq!(repo.status(), "");
}

#[test]
fn a_keep_after_a_refine_resets_the_ladder() {
    let repo = number_repo(10);
    let agent = recording_agent(&repo, &[5]);
    // Ten rows: eight experiments and two refine rows (which consume no iteration).
    repo.run_loop(VERIFY, &agent, &["--iterations", "8"])
        .expect_code(0);
    let d = "discard";
    assert_eq!(
        repo.statuses(),
        ["baseline", d, d, d, "refine", "keep", d, d, d, "refine", d]
    );
    check_meta_rows(&repo);
    check_directives_and_counters(&repo);
    let at_5 = seen_state(&repo, 5);
    assert_eq!(
        at_5["state"]["consecutive_discards"], 4,
        "3 discards and a refine"
    );
    let at_6 = seen_state(&repo, 6);
    assert_eq!(at_6["state"]["consecutive_discards"], 0);
    assert_eq!(at_6["state"]["pivot_count"], 0);
    let state = repo.state();
    assert_eq!(
        state["state"]["consecutive_discards"], 5,
        "4 discards and a refine"
    );
    assert_eq!(state["state"]["current_metric"], 9);
    // A keep leaves a lesson too; no pivot happened.
    let lessons = repo.read("autoresearch-results/lessons.md");
    assert_eq!(lessons.matches("- **Outcome:** keep").count(), 1);
    assert_eq!(lessons.matches("- **Outcome:** pivot").count(), 0);
}

#[test]
fn thresholds_are_configurable() {
    let repo = number_repo(10);
    let agent = recording_agent(&repo, &[]);
    let r = repo.run_loop(
        VERIFY,
        &agent,
        &[
            "--refine-after",
            "1",
            "--pivot-after",
            "2",
            "--max-pivots",
            "1",
        ],
    );
    r.expect_code(3);
    assert_eq!(
        repo.statuses(),
        ["baseline", "discard", "refine", "discard", "pivot"]
    );
    check_meta_rows(&repo);
    check_directives_and_counters(&repo);
    assert!(r.stdout.contains("1 pivots without a keep"), "{}", r.stdout);
    assert_eq!(repo.state()["config"]["refine_after"], 1);
    let lessons = repo.read("autoresearch-results/lessons.md");
    assert_eq!(lessons.matches("- **Outcome:** pivot").count(), 1);
}

#[test]
fn a_keep_after_a_pivot_resets_the_pivot_count() {
    let repo = number_repo(10);
    let agent = recording_agent(&repo, &[5]);
    let r = repo.run_loop(
        VERIFY,
        &agent,
        &["--refine-after", "1", "--pivot-after", "2"],
    );
    r.expect_code(3);
    let d = "discard";
    // Without the reset, the third pivot (row 13) would already stop the run.
    assert_eq!(
        repo.statuses(),
        [
            "baseline", d, "refine", d, "pivot", "keep", d, "refine", d, "pivot", d, "refine", d,
            "pivot", "search", d, "refine", d, "pivot"
        ]
    );
    check_meta_rows(&repo);
    check_directives_and_counters(&repo);
    let at_5 = seen_state(&repo, 5);
    assert_eq!(at_5["state"]["pivot_count"], 1);
    assert_eq!(
        at_5["state"]["consecutive_discards"], 3,
        "2 discards and a refine"
    );
    let at_6 = seen_state(&repo, 6);
    assert_eq!(at_6["state"]["pivot_count"], 0);
    assert_eq!(at_6["state"]["consecutive_discards"], 0);
    assert_eq!(repo.state()["state"]["pivot_count"], 3);
    assert_eq!(repo.read("src/value.txt"), "9\n");
}

// ---- Stop conditions ----

#[test]
fn stop_condition_stops_once_the_retained_metric_meets_it() {
    let repo = TestRepo::with_files(&[
        ("src/value.txt", "10\n"),
        ("src/ok.txt", "yes\n"),
        ("measure.sh", "cat src/value.txt\n"),
        ("guard.sh", "grep -q yes src/ok.txt\n"),
    ]);
    // Iteration 1 measures 4 but fails the guard: a discarded trial must not meet the condition.
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (
                1,
                "echo 4 > src/value.txt; echo no > src/ok.txt; echo 'lower to 4, break ok'",
            ),
            (2, "echo 6 > src/value.txt; echo 'lower to 6'"),
            (3, "echo 5 > src/value.txt; echo 'lower to 5'"),
            (4, "echo 1 > src/value.txt; echo 'one more'"),
        ],
    );
    let r = repo.run_loop(
        VERIFY,
        &agent,
        &[
            "--iterations",
            "10",
            "--guard",
            "sh guard.sh",
            "--rework",
            "0",
            "--stop-condition",
            "metric <= 5",
        ],
    );
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "discard", "keep", "keep"]);
    assert_eq!(repo.rows()[1][2], "4");
    let last = r.stdout_lines().last().unwrap().to_string();
    assert!(
        last.contains("goal reached: stop condition `metric <= 5` met (value = 5)"),
        "{last}"
    );
    assert_eq!(repo.read("src/value.txt"), "5\n");
}

#[test]
fn stop_condition_words() {
    // `below 10` is strict: 10 does not stop the run, 9 does.
    let repo = number_repo(12);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let r = repo.run_loop(
        VERIFY,
        &agent,
        &["--iterations", "10", "--stop-condition", "below 10"],
    );
    r.expect_code(0);
    let metrics: Vec<String> = repo.rows().iter().map(|r| r[2].clone()).collect();
    assert_eq!(metrics, ["12", "11", "10", "9"]);
    assert!(
        r.stdout.contains("stop condition `below 10` met"),
        "{}",
        r.stdout
    );

    let repo = number_repo(3);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let r = repo.run_loop(
        VERIFY,
        &agent,
        &["--iterations", "10", "--stop-condition", "reaches zero"],
    );
    r.expect_code(0);
    let metrics: Vec<String> = repo.rows().iter().map(|r| r[2].clone()).collect();
    assert_eq!(metrics, ["3", "2", "1", "0"]);
    assert!(
        r.stdout
            .contains("stop condition `reaches zero` met (value = 0)"),
        "{}",
        r.stdout
    );
}

#[test]
fn stop_condition_met_at_baseline_runs_no_iteration() {
    let repo = number_repo(3);
    let marker = repo.aux.join("agent-ran");
    let agent = repo.script(
        "agent.sh",
        &format!(
            "cat > /dev/null; touch {}; echo 1 > src/value.txt; echo one",
            marker.display()
        ),
    );
    let r = repo.run_loop(
        VERIFY,
        &agent,
        &["--iterations", "5", "--stop-condition", "metric <= 5"],
    );
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline"]);
    assert!(!marker.exists(), "the agent must not run");
    assert!(r.stdout.contains("goal reached"), "{}", r.stdout);
    assert_eq!(repo.state()["state"]["iteration"], 0);
}

#[test]
fn fix_mode_stops_at_zero_and_loop_mode_does_not() {
    let repo = number_repo(3);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let r = repo.run_loop(VERIFY, &agent, &["--iterations", "10", "--mode", "fix"]);
    r.expect_code(0);
    let metrics: Vec<String> = repo.rows().iter().map(|r| r[2].clone()).collect();
    assert_eq!(metrics, ["3", "2", "1", "0"]);
    assert!(r.stdout.contains("goal reached"), "{}", r.stdout);
    assert!(
        repo.read("autoresearch-results/results.tsv")
            .contains("# mode: fix\n"),
        "the log records the mode"
    );

    let repo = number_repo(2);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let r = repo.run_loop(VERIFY, &agent, &["--iterations", "4"]);
    r.expect_code(0);
    let metrics: Vec<String> = repo.rows().iter().map(|r| r[2].clone()).collect();
    assert_eq!(metrics, ["2", "1", "0", "-1", "-2"]);
    assert!(r.stdout.contains("iteration cap reached"), "{}", r.stdout);
}

#[test]
fn the_iteration_cap_counts_experiments_and_no_bookkeeping_row_follows_the_last() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", 1);
    // Every experiment is worse: discard, pivot, discard, pivot, search, discard, ...
    let flags = |cap: &str| {
        [
            "--iterations",
            cap,
            "--refine-after",
            "0",
            "--pivot-after",
            "1",
            "--max-pivots",
            "9",
            "--fresh",
        ]
        .map(str::to_string)
        .to_vec()
    };
    for cap in 1..=3u64 {
        let f = flags(&cap.to_string());
        let f: Vec<&str> = f.iter().map(String::as_str).collect();
        let r = repo.run_loop("sh measure.sh", &agent, &f);
        r.expect_code(0);
        let statuses = repo.statuses();
        let experiments = statuses.iter().filter(|s| *s == "discard").count() as u64;
        assert_eq!(experiments, cap, "cap {cap}: {statuses:?}");
        assert_eq!(statuses.last().map(String::as_str), Some("discard"));
        assert!(
            r.stdout
                .contains(&format!("iteration cap reached ({cap}/{cap})")),
            "{}",
            r.stdout
        );
    }
    assert_eq!(
        repo.statuses(),
        [
            "baseline", "discard", "pivot", "discard", "pivot", "search", "discard"
        ]
    );
    // The ladder catches up on resume: nothing was lost by stopping at the cap.
    let f = flags("2");
    let f: Vec<&str> = f.iter().map(String::as_str).collect();
    repo.run_loop("sh measure.sh", &agent, &f).expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "discard", "pivot", "discard"]);
    repo.run(&["run", "--iterations", "3"]).expect_code(0);
    assert_eq!(
        repo.statuses(),
        [
            "baseline", "discard", "pivot", "discard", "pivot", "search", "discard"
        ]
    );
}
