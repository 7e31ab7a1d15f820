//! The command line: validation errors (exit 2, exactly one stderr line naming the flag, nothing
//! created), duration syntax, help, and the two output styles (`--json` lines and human lines).

use serde_json::Value;

use crate::support::*;

const VERIFY: &str = "sh measure.sh";

/// The required flags of `run`, as (flag, value) pairs.
const REQUIRED: [(&str, &str); 5] = [
    ("--goal", "lower the number"),
    ("--scope", "src/**"),
    ("--metric", "value"),
    ("--direction", "lower"),
    ("--verify", VERIFY),
];

/// A complete, valid `run` command line (no `--iterations`) with an agent that must never run,
/// plus `extra`.
fn valid_args(repo: &TestRepo, extra: &[&str]) -> Vec<String> {
    let marker = repo.aux.join("agent-ran");
    let agent = repo.script(
        "agent.sh",
        &format!("cat > /dev/null; touch {}; echo ran", marker.display()),
    );
    let mut args = TestRepo::loop_args(VERIFY, &agent, &[]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Replaces the value of `flag` in `args`.
fn set(mut args: Vec<String>, flag: &str, value: &str) -> Vec<String> {
    let i = args.iter().position(|a| a == flag).expect("flag present");
    args[i + 1] = value.to_string();
    args
}

/// Runs `args`, expects a validation error naming `flag`, and checks nothing was created.
#[track_caller]
fn rejects(repo: &TestRepo, args: &[String], needles: &[&str]) -> String {
    let before = repo.snapshot();
    let r = repo.run_owned(args);
    let line = r.expect_one_error_line();
    assert!(line.contains("error"), "not an error line: {line}");
    assert!(!line.contains("multiple times"), "a test bug: {line}");
    for n in needles {
        assert!(line.contains(n), "`{n}` missing from: {line}");
    }
    assert!(r.stdout.is_empty(), "stdout: {}", r.stdout);
    repo.assert_untouched(&before);
    assert!(
        !repo.exists("autoresearch-results"),
        "a flag error created files"
    );
    assert!(!repo.aux.join("agent-ran").exists(), "the agent ran");
    line
}

#[test]
fn each_missing_required_flag_is_named() {
    let repo = number_repo(10);
    for (flag, _) in REQUIRED {
        // Drop the flag and its value.
        let mut without = valid_args(&repo, &[]);
        let i = without
            .iter()
            .position(|a| a == flag)
            .expect("flag present");
        without.drain(i..i + 2);
        let line = rejects(&repo, &without, &[flag]);
        assert!(line.contains("missing"), "{line}");
    }
}

#[test]
fn bad_values_name_their_flag() {
    let repo = number_repo(10);
    let cases: &[(&[&str], &[&str])] = &[
        (&["--verify-timeout", "5x"], &["--verify-timeout", "5x"]),
        (&["--agent-timeout", "10"], &["--agent-timeout", "'10'"]),
        (
            &["--agent-idle-timeout", "soon"],
            &["--agent-idle-timeout", "soon"],
        ),
        (&["--iterations", "abc"], &["--iterations", "abc"]),
        (
            &["--iterations", "-1"],
            &["--iterations", "`-1` is negative"],
        ),
        (&["--rework", "-2"], &["--rework", "`-2` is negative"]),
        (&["--rework", "99999999999"], &["--rework", "too large"]),
        (&["--iterations", "0"], &["--iterations must be at least 1"]),
        (
            &["--verify-format", "regex"],
            &["--verify-format regex needs --metric-regex"],
        ),
        (
            &[
                "--verify-format",
                "regex",
                "--metric-regex",
                "score: [0-9]+",
            ],
            &["--metric-regex", "capture group"],
        ),
        (&["--verify-format", "yaml"], &["--verify-format", "yaml"]),
        (&["--mode", "plan"], &["--mode", "plan"]),
        (&["--bogus"], &["--bogus"]),
        (
            &["--stop-condition", "when it feels fast"],
            &["--stop-condition", "when it feels fast"],
        ),
        (&["--run-tag", "bad tag"], &["--run-tag", "bad tag"]),
        (&["--run-tag", "../escape"], &["--run-tag", "../escape"]),
    ];
    for (extra, needles) in cases {
        let args = valid_args(&repo, extra);
        rejects(&repo, &args, needles);
    }
    let args = set(valid_args(&repo, &[]), "--direction", "down");
    rejects(&repo, &args, &["--direction", "down"]);
    // Fix mode drives an error count to zero; a higher-is-better metric contradicts it.
    let args = set(
        valid_args(&repo, &["--mode", "fix"]),
        "--direction",
        "higher",
    );
    rejects(&repo, &args, &["--mode fix", "--direction lower"]);
}

#[test]
fn command_agent_needs_its_command() {
    let repo = number_repo(10);
    let mut args = valid_args(&repo, &[]);
    let i = args.iter().position(|a| a == "--agent-cmd").unwrap();
    args.drain(i..i + 2);
    rejects(&repo, &args, &["--agent-cmd"]);
}

#[test]
fn durations_accept_seconds_minutes_and_hours() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let r = repo.run_loop(
        VERIFY,
        &agent,
        &[
            "--iterations",
            "1",
            "--verify-timeout",
            "90s",
            "--agent-timeout",
            "2h",
            "--agent-idle-timeout",
            "10m",
        ],
    );
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep"]);
    let config = &repo.state()["config"];
    assert_eq!(config["verify_timeout"], "90s");
    assert_eq!(config["agent_timeout"], "2h");
    assert_eq!(config["agent_idle_timeout"], "10m");
}

#[test]
fn help_exits_zero() {
    let repo = number_repo(10);
    let r = repo.run(&["--help"]);
    r.expect_code(0);
    assert!(
        r.stdout.contains("run") && r.stdout.contains("status"),
        "{}",
        r.stdout
    );
    let r = repo.run(&["run", "--help"]);
    r.expect_code(0);
    for flag in [
        "--goal",
        "--scope",
        "--metric",
        "--direction",
        "--verify",
        "--guard",
        "--iterations",
        "--stop-condition",
        "--agent-cmd",
        "--verify-timeout",
        "--refine-after",
        "--pivot-after",
        "--max-pivots",
        "--run-tag",
        "--json",
    ] {
        assert!(r.stdout.contains(flag), "{flag} missing from run --help");
    }
    assert!(!repo.exists("autoresearch-results"));
}

/// A repository whose verify is noisy on both streams, and an agent that is noisy too; the
/// iterations give keep, discard, no-op, crash, refine (meta) and keep.
fn noisy_setup() -> (TestRepo, String) {
    let repo = TestRepo::with_files(&[
        ("src/value.txt", "10\n"),
        (
            "measure.sh",
            "i=0; while [ $i -lt 40 ]; do echo \"verify chatter $i\"; echo \"verify warning $i\" >&2; i=$((i+1)); done\ncat src/value.txt\n",
        ),
    ]);
    let noise = "i=0; while [ $i -lt 60 ]; do echo \"agent chatter $i\"; echo \"agent warning $i\" >&2; i=$((i+1)); done;";
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (
                1,
                &format!("{noise} echo 9 > src/value.txt; echo 'lower to 9'"),
            ),
            (
                2,
                &format!("{noise} echo 12 > src/value.txt; echo 'raise to 12'"),
            ),
            (3, &format!("{noise} echo 'change nothing'")),
            (
                4,
                &format!("{noise} echo 1 > src/value.txt; echo 'give up'; exit 1"),
            ),
            (
                6,
                &format!("{noise} echo 7 > src/value.txt; echo 'lower to 7'"),
            ),
        ],
    );
    (repo, agent)
}

/// Parses a TSV number column.
fn tsv_num(s: &str) -> f64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s}"))
}

#[test]
fn json_lines_mirror_the_results_log() {
    let (repo, agent) = noisy_setup();
    let r = repo.run_loop(VERIFY, &agent, &["--iterations", "5", "--json"]);
    r.expect_code(0);
    assert_eq!(
        repo.statuses(),
        [
            "baseline", "keep", "discard", "no-op", "crash", "refine", "keep"
        ]
    );
    assert!(
        !r.stdout.contains("chatter"),
        "child output leaked to stdout"
    );
    let events: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let rows = repo.rows();
    assert_eq!(
        events.len(),
        rows.len() + 1,
        "run_started + one per row after the baseline + run_finished:\n{}",
        r.stdout
    );
    let first = &events[0];
    assert_eq!(first["type"], "run_started");
    assert_eq!(first["run_tag"], "lower-the-number");
    assert_eq!(first["mode"], "loop");
    assert_eq!(first["baseline"], 10);
    for (ev, row) in events[1..events.len() - 1].iter().zip(&rows[1..]) {
        assert_eq!(ev["type"], "iteration", "{ev}");
        assert_eq!(
            ev["iteration"].as_u64(),
            Some(row[0].parse().unwrap()),
            "{ev}"
        );
        assert_eq!(ev["commit"], row[1].as_str(), "{ev}");
        assert_eq!(ev["metric"].as_f64(), Some(tsv_num(&row[2])), "{ev}");
        assert_eq!(ev["delta"].as_f64(), Some(tsv_num(&row[3])), "{ev}");
        assert_eq!(ev["guard"], row[4].as_str(), "{ev}");
        assert_eq!(ev["status"], row[5].as_str(), "{ev}");
        assert_eq!(ev["description"], row[6].as_str(), "{ev}");
        if !matches!(row[5].as_str(), "refine" | "pivot" | "search") {
            for key in ["agent_ms", "verify_ms", "guard_ms", "duration_ms"] {
                assert!(ev[key].is_u64(), "{key} missing in {ev}");
            }
        }
    }
    let last = events.last().unwrap();
    assert_eq!(last["type"], "run_finished");
    assert_eq!(last["baseline"], 10);
    assert_eq!(last["best"], 7);
    assert_eq!(last["best_iteration"], 6);
    assert_eq!(last["retained"], 7);
    assert_eq!(last["total_iterations"], 6);
    assert_eq!(last["keeps"], 2);
    assert_eq!(last["discards"], 1);
    assert_eq!(last["crashes"], 1);
    assert_eq!(last["no_ops"], 1);
    assert_eq!(last["exit_code"], 0);
    assert_eq!(last["reason"], "iteration_cap");
    assert_eq!(last["improved"], true);
    assert!(last["duration_ms"].is_u64());
}

#[test]
fn json_meta_rows_carry_durations_too() {
    let (repo, agent) = noisy_setup();
    let r = repo.run_loop(VERIFY, &agent, &["--iterations", "5", "--json"]);
    r.expect_code(0);
    for line in r.stdout.lines() {
        let ev: Value = serde_json::from_str(line).unwrap();
        if ev["type"] == "iteration" {
            for key in ["agent_ms", "verify_ms", "guard_ms", "duration_ms"] {
                assert!(ev[key].is_u64(), "{key} missing in {ev}");
            }
        }
    }
}

#[test]
fn human_lines_one_per_row_and_a_summary() {
    let (repo, agent) = noisy_setup();
    // Without the confirmation at the end, whose line has a test of its own (confirm.rs).
    let r = repo.run_loop(VERIFY, &agent, &["--iterations", "5", "--no-confirm"]);
    r.expect_code(0);
    assert!(
        !r.stdout.contains("chatter"),
        "child output leaked to stdout"
    );
    let lines = r.stdout_lines();
    let rows = repo.rows();
    assert_eq!(
        lines.len(),
        rows.len() + 1,
        "a start line, one line per row after the baseline, a summary:\n{}",
        r.stdout
    );
    assert!(
        lines[0].starts_with("starting run lower-the-number"),
        "{}",
        lines[0]
    );
    for (line, row) in lines[1..lines.len() - 1].iter().zip(&rows[1..]) {
        assert!(line.starts_with(&format!("#{} ", row[0])), "{line}");
        assert!(line.contains(&format!(" {} ", row[5])), "{line}");
        assert!(line.contains(&row[2]), "{line}");
        assert!(line.ends_with(&row[6]), "{line} / {}", row[6]);
    }
    let last = lines.last().unwrap();
    assert!(last.starts_with("finished: "), "{last}");
    assert!(last.contains("iteration cap reached"), "{last}");
    assert!(last.contains("baseline 10 -> best 7"), "{last}");
    assert!(
        last.contains("6 iterations: 2 keep, 1 discard, 1 crash, 1 no-op"),
        "{last}"
    );
}
