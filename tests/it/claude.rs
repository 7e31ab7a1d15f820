//! The Claude Code agent against a fake `claude` executable that replays recorded-format
//! stream-json and makes real file edits. Each invocation N runs the step script `step-N` (or
//! the last one) from the fake's directory; argv, prompt and stdin are recorded.

use std::path::PathBuf;

use serde_json::Value;

use crate::support::*;

const FAKE: &str = r#"#!/bin/sh
[ "$1" = "--version" ] && { echo "9.9.9 (Fake Claude Code)"; exit 0; }
dir="$FAKE_CLAUDE_DIR"
n=$(cat "$dir/count" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$dir/count"
printf '%s\n' "$@" > "$dir/args-$n"
cat > "$dir/prompt-$n"
resume=""; prev=""
for a in "$@"; do [ "$prev" = "--resume" ] && resume="$a"; prev="$a"; done
if [ -n "$resume" ] && [ -f "$dir/forget-sessions" ]; then
  echo "Error: No conversation found with session ID: $resume" >&2; exit 1
fi
SID=${resume:-sess-$n}
echo '{"type":"system","subtype":"init","session_id":"'$SID'","tools":["Edit","Bash"],"model":"fake-model"}'
step="$dir/step-$n"
[ -f "$step" ] || step=$(ls "$dir"/step-* | sort -t- -k2 -n | tail -1)
SID=$SID . "$step"
"#;

struct Fake {
    repo: TestRepo,
    dir: PathBuf,
    bin: String,
}

/// Returns a step that edits with `shell`, reports an Edit of `reported`, and ends with `result`.
fn step(shell: &str, reported: &str, result: &str, cost: f64) -> String {
    format!(
        "{shell}\nprintf '%s\\n' '{{\"type\":\"assistant\",\"message\":{{\"role\":\"assistant\",\"content\":[{{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"Edit\",\"input\":{{\"file_path\":\"'\"$PWD\"'/{reported}\"}}}}]}},\"session_id\":\"'$SID'\"}}'\nprintf '%s\\n' '{{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"{result}\",\"session_id\":\"'$SID'\",\"total_cost_usd\":{cost},\"usage\":{{\"input_tokens\":100,\"cache_read_input_tokens\":50,\"cache_creation_input_tokens\":0,\"output_tokens\":20}}}}'\n"
    )
}

impl Fake {
    fn new(steps: &[String]) -> Fake {
        let repo = TestRepo::with_files(&[
            ("src/value.txt", "10\n"),
            ("measure.sh", "cat src/value.txt\n"),
        ]);
        let dir = repo.aux.join("fake-claude");
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in steps.iter().enumerate() {
            std::fs::write(dir.join(format!("step-{}", i + 1)), s).unwrap();
        }
        let bin = repo.script("claude", FAKE);
        Fake { repo, dir, bin }
    }

    fn run(&self, extra: &[&str]) -> Run {
        let mut cmd = self.repo.cmd();
        cmd.env("FAKE_CLAUDE_DIR", &self.dir)
            .env("AUTORESEARCH_QUOTA_BACKOFF", "1s");
        cmd.args([
            "run",
            "--goal",
            "lower the number",
            "--scope",
            "src/**",
            "--metric",
            "value",
            "--direction",
            "lower",
            "--verify",
            "sh measure.sh",
            "--agent",
            "claude",
            "--claude-bin",
            &self.bin,
        ]);
        cmd.args(extra);
        cmd.output().expect("run").into()
    }

    fn args(&self, n: u32) -> Vec<String> {
        std::fs::read_to_string(self.dir.join(format!("args-{n}")))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

#[test]
fn keep_with_session_usage_and_cost() {
    let f = Fake::new(&[
        step(
            "echo 7 > src/value.txt",
            "src/value.txt",
            "Lower the value to 7.\\nBecause smaller.",
            0.25,
        ),
        step(
            "echo 9 > src/value.txt",
            "src/value.txt",
            "Raise to 9.",
            0.5,
        ),
    ]);
    f.run(&["--iterations", "2", "--json"]).expect_code(0);
    assert_eq!(f.repo.statuses(), ["baseline", "keep", "discard"]);
    assert_eq!(f.repo.rows()[1][6], "Lower the value to 7.");
    let first = f.args(1);
    assert_eq!(
        &first[..4],
        ["-p", "--output-format", "stream-json", "--verbose"]
    );
    assert!(
        first
            .windows(2)
            .any(|w| w == ["--permission-mode", "acceptEdits"])
    );
    assert!(!first.contains(&"--resume".to_string()));
    assert!(
        f.args(2).windows(2).any(|w| w == ["--resume", "sess-1"]),
        "the same strategy resumes the session"
    );
    let prompt = std::fs::read_to_string(f.dir.join("prompt-1")).unwrap();
    assert!(
        prompt.contains("lower the number"),
        "the prompt arrives on stdin"
    );
    let status: Value =
        serde_json::from_str(&f.repo.run(&["status", "--json"]).expect_code(0).stdout).unwrap();
    assert_eq!(status["run"]["tokens"]["input_tokens"], 300);
    assert_eq!(status["run"]["tokens"]["output_tokens"], 40);
    assert!((status["run"]["tokens"]["cost_usd"].as_f64().unwrap() - 0.75).abs() < 1e-9);
    assert_eq!(status["run"]["session_id"], "sess-1");
}

#[test]
fn danger_full_access_maps_to_bypass_permissions() {
    let f = Fake::new(&[step(
        "echo 7 > src/value.txt",
        "src/value.txt",
        "Lower.",
        0.0,
    )]);
    let r = f.run(&[
        "--iterations",
        "1",
        "--sandbox",
        "danger-full-access",
        "--model",
        "opus",
    ]);
    r.expect_code(0);
    assert!(
        r.stderr.contains("agent: 9.9.9 (Fake Claude Code)"),
        "{}",
        r.stderr
    );
    let a = f.args(1);
    assert!(
        a.windows(2)
            .any(|w| w == ["--permission-mode", "bypassPermissions"])
    );
    assert!(a.windows(2).any(|w| w == ["--model", "opus"]));
}

/// Claude shares the watchdogs: a session that stops sending events (stderr chatter does not
/// count) is killed by the idle timeout, its whole group with it, and the turn is a `[TIMEOUT]`
/// crash; the run goes on.
#[test]
fn a_silent_claude_is_killed_by_the_idle_timeout() {
    let hang = "(while :; do echo working >&2; sleep 0.2; done) &\necho $! > \"$FAKE_CLAUDE_DIR/child-pid\"\nwait\n".to_string();
    let f = Fake::new(&[
        hang,
        step(
            "echo 6 > src/value.txt",
            "src/value.txt",
            "Lower to 6.",
            0.01,
        ),
    ]);
    let r = f.run(&[
        "--iterations",
        "2",
        "--agent-idle-timeout",
        "1s",
        "--agent-timeout",
        "20s",
    ]);
    r.expect_code(0);
    assert_eq!(f.repo.statuses(), ["baseline", "crash", "keep"]);
    let row = &f.repo.rows()[1];
    assert!(row[6].starts_with("[TIMEOUT]"), "{}", row[6]);
    assert!(row[6].contains("claude sent no event for 1s"), "{}", row[6]);
    let pid = read_pid(&f.dir.join("child-pid"));
    let alive = proc_state(pid).is_some_and(|st| !matches!(st, 'Z' | 'X'));
    assert!(!alive, "the fake's child {pid} outlived its turn");
}

#[test]
fn error_results_are_crashes_and_rate_limits_wait() {
    let error = "echo '{\"type\":\"result\",\"subtype\":\"error_during_execution\",\"is_error\":true,\"result\":\"Tool crashed badly\",\"session_id\":\"'$SID'\"}'\nexit 1\n".to_string();
    let limited = "echo '{\"type\":\"result\",\"subtype\":\"error_during_execution\",\"is_error\":true,\"result\":\"API Error: 429 rate_limit_error\",\"session_id\":\"'$SID'\"}'\nexit 1\n".to_string();
    let f = Fake::new(&[
        error,
        limited,
        step(
            "echo 3 > src/value.txt",
            "src/value.txt",
            "Lower to 3.",
            0.0,
        ),
    ]);
    let r = f.run(&["--iterations", "2"]);
    r.expect_code(0);
    assert_eq!(f.repo.statuses(), ["baseline", "crash", "keep"]);
    assert!(
        f.repo.rows()[1][6].contains("Tool crashed badly"),
        "{}",
        f.repo.rows()[1][6]
    );
    assert!(r.stderr.contains("usage or rate limit"), "{}", r.stderr);
}

#[test]
fn a_pivot_or_a_lost_session_starts_fresh() {
    let f = Fake::new(&[
        step(
            "echo 12 > src/value.txt",
            "src/value.txt",
            "Raise to 12.",
            0.0,
        ),
        step(
            "echo 13 > src/value.txt",
            "src/value.txt",
            "Raise to 13.",
            0.0,
        ),
    ]);
    f.run(&[
        "--iterations",
        "2",
        "--refine-after",
        "0",
        "--pivot-after",
        "1",
        "--max-pivots",
        "5",
    ])
    .expect_code(0);
    assert_eq!(
        f.repo.statuses(),
        ["baseline", "discard", "pivot", "discard"]
    );
    assert!(
        !f.args(2).contains(&"--resume".to_string()),
        "after a pivot the session is new"
    );

    // The next run resumes the stored session; the fake has forgotten it.
    std::fs::write(f.dir.join("forget-sessions"), "").unwrap();
    let r = f.run(&["--iterations", "4", "--pivot-after", "5"]);
    r.expect_code(0);
    assert!(
        r.stderr.contains("could not resume Claude session sess-2"),
        "{}",
        r.stderr
    );
    assert!(
        !f.args(4).contains(&"--resume".to_string()),
        "fell back to a fresh session"
    );
}

#[test]
fn reported_edits_are_cross_checked_against_the_diff() {
    let f = Fake::new(&[step(
        "echo 7 > src/value.txt",
        "src/other.txt",
        "Lower to 7.",
        0.0,
    )]);
    let r = f.run(&["--iterations", "1"]);
    r.expect_code(0);
    assert!(
        r.stderr
            .contains("reported changes the diff does not show (src/other.txt)"),
        "{}",
        r.stderr
    );
    assert_eq!(
        f.repo.statuses(),
        ["baseline", "keep"],
        "the engine's diff decides"
    );
}

#[test]
fn missing_claude_binary_refuses_with_install_hint() {
    let repo = number_repo(10);
    let r = repo.run(&[
        "run",
        "--goal",
        "g",
        "--scope",
        "src/**",
        "--metric",
        "m",
        "--direction",
        "lower",
        "--verify",
        "sh measure.sh",
        "--agent",
        "claude",
        "--claude-bin",
        "/nonexistent/claude",
    ]);
    r.expect_code(2);
    assert!(
        r.stderr.contains("claude CLI was not found") && r.stderr.contains("npm install"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1);
}

#[test]
fn a_rate_limit_during_a_rework_turn_keeps_the_trial() {
    let limited = "printf '%s\\n' '{\"type\":\"result\",\"subtype\":\"error_during_execution\",\"is_error\":true,\"result\":\"API Error: 429 rate_limit_error\",\"session_id\":\"'$SID'\"}'\nexit 1\n".to_string();
    let f = Fake::new(&[
        step(
            "echo 4 > src/value.txt; echo oops > src/broken.txt",
            "src/value.txt",
            "Lower to 4.",
            0.0,
        ),
        limited,
        step(
            "rm src/broken.txt",
            "src/broken.txt",
            "Remove the stray file.",
            0.0,
        ),
    ]);
    let r = f.run(&["--iterations", "1", "--guard", "test ! -e src/broken.txt"]);
    r.expect_code(0);
    assert!(r.stderr.contains("usage or rate limit"), "{}", r.stderr);
    let row = &f.repo.rows()[1];
    assert_eq!(
        (row[5].as_str(), row[4].as_str(), row[2].as_str()),
        ("keep", "pass", "4"),
        "{row:?}"
    );
    assert_eq!(
        f.repo.read("src/value.txt"),
        "4\n",
        "the trial survived the wait"
    );
    assert!(!f.repo.exists("src/broken.txt"));
    // The rework amended the trial: one commit, described by the last turn.
    assert_eq!(
        f.repo.log(),
        ["experiment: Remove the stray file.", "initial"]
    );
    assert_eq!(
        f.repo.state()["engine"]["head"],
        f.repo.head(),
        "the keep is the branch head"
    );
    assert!(
        f.args(3).windows(2).any(|w| w == ["--resume", "sess-1"]),
        "the retry resumes the session"
    );
}

#[test]
fn session_fresh_starts_every_iteration_anew_but_rework_continues_it() {
    let f = Fake::new(&[
        step(
            "echo 4 > src/value.txt; echo oops > src/broken.txt",
            "src/value.txt",
            "Lower to 4.",
            0.0,
        ),
        step(
            "rm src/broken.txt",
            "src/broken.txt",
            "Remove the stray file.",
            0.0,
        ),
        step(
            "echo 3 > src/value.txt",
            "src/value.txt",
            "Lower to 3.",
            0.0,
        ),
    ]);
    f.run(&[
        "--iterations",
        "2",
        "--session",
        "fresh",
        "--guard",
        "test ! -e src/broken.txt",
    ])
    .expect_code(0);
    assert_eq!(f.repo.statuses(), ["baseline", "keep", "keep"]);
    assert!(!f.args(1).contains(&"--resume".to_string()));
    assert!(
        f.args(2).windows(2).any(|w| w == ["--resume", "sess-1"]),
        "the rework turn continues the session"
    );
    assert!(
        !f.args(3).contains(&"--resume".to_string()),
        "the next iteration starts a new session"
    );
}

#[test]
fn a_trial_ref_is_never_overwritten_when_an_iteration_number_comes_again() {
    let limited = "printf '%s\\n' '{\"type\":\"result\",\"subtype\":\"error_during_execution\",\"is_error\":true,\"result\":\"API Error: 429 rate_limit_error\",\"session_id\":\"'$SID'\"}'\nexit 1\n".to_string();
    let f = Fake::new(&[
        step(
            "echo 4 > src/value.txt; echo oops > src/broken.txt",
            "src/value.txt",
            "Lower to 4.",
            0.0,
        ),
        limited,
    ]);
    // The rework turn keeps hitting the limit: the run stops for a human with no row for iteration 1.
    let r = f.run(&[
        "--iterations",
        "3",
        "--guard",
        "test ! -e src/broken.txt",
        "--max-quota-wait",
        "1s",
    ]);
    r.expect_code(3);
    assert_eq!(f.repo.statuses(), ["baseline"]);
    let tag_ref = f.repo.git(&[
        "for-each-ref",
        "--format=%(refname) %(objectname)",
        "refs/autoresearch/",
    ]);
    let (first_ref, first_oid) = tag_ref.trim().split_once(' ').expect("the trial is kept");
    assert!(first_ref.ends_with("/trial-1"), "{tag_ref}");

    // Iteration 1 runs again (worse this time); its trial goes next to the first one.
    std::fs::write(
        f.dir.join("step-3"),
        step(
            "echo 12 > src/value.txt",
            "src/value.txt",
            "Raise to 12.",
            0.0,
        ),
    )
    .unwrap();
    std::fs::write(f.dir.join("count"), "2").unwrap();
    f.run(&["--iterations", "1"]).expect_code(0);
    assert_eq!(f.repo.statuses(), ["baseline", "discard"]);
    assert_eq!(
        f.repo.git(&["rev-parse", first_ref]).trim(),
        first_oid,
        "the first trial is untouched"
    );
    let second = format!("{first_ref}-2");
    assert!(
        f.repo
            .git(&["rev-parse", &second])
            .trim()
            .starts_with(&f.repo.rows()[1][1])
    );
}
