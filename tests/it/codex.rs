//! End-to-end runs with the real Codex CLI against a scripted mock Responses server on 127.0.0.1.
//! The binary comes from `$CODEX_BIN` or `.tools/codex` (installed by `scripts/test.sh`); with
//! `CI=true` a missing binary fails the suite instead of skipping.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::mock_responses::*;
use crate::support::*;

/// Returns the Codex binary, or `None` (skip) outside CI when it is not installed.
pub fn codex_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CODEX_BIN").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let tools = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/codex/node_modules");
    let found = walk(&tools, 0);
    if found.is_none() {
        assert!(
            std::env::var("CI").map_or(true, |v| v.is_empty() || v == "0" || v == "false"),
            "CI is set but the Codex CLI is missing: run scripts/test.sh (it installs it) or set CODEX_BIN"
        );
        eprintln!("skipping: Codex CLI not installed (run scripts/install-codex.sh)");
    }
    found
}

fn walk(dir: &std::path::Path, depth: usize) -> Option<PathBuf> {
    if depth > 8 {
        return None;
    }
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = walk(&p, depth + 1) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == "codex")
            && p.to_string_lossy().contains("/vendor/")
        {
            return Some(p);
        }
    }
    None
}

/// A repository, a mock server and the flags that point the engine's Codex at it.
pub(crate) struct CodexRun {
    pub(crate) repo: TestRepo,
    pub(crate) server: MockServer,
    pub(crate) bin: PathBuf,
    pub(crate) home: PathBuf,
}

fn patch(path: &str, from: &str, to: &str) -> String {
    format!("*** Begin Patch\n*** Update File: {path}\n@@\n-{from}\n+{to}\n*** End Patch\n")
}

impl CodexRun {
    pub(crate) fn new(script: Vec<MockReply>) -> Option<CodexRun> {
        let bin = codex_bin()?;
        let repo = TestRepo::with_files(&[
            ("src/value.txt", "10\n"),
            ("measure.sh", "cat src/value.txt\n"),
        ]);
        let home = repo.aux.join("codex-home");
        std::fs::create_dir_all(&home).unwrap();
        Some(CodexRun {
            repo,
            server: MockServer::start(script),
            bin,
            home,
        })
    }

    /// Runs `run` with the flags that point the engine's Codex at the mock, plus `extra`.
    pub(crate) fn run(&self, extra: &[&str]) -> Run {
        self.command("run", extra)
    }

    /// Runs `exec` (not `run`) with the same flags as [`CodexRun::run`] plus `extra`.
    pub(crate) fn exec(&self, extra: &[&str]) -> Run {
        self.command("exec", extra)
    }

    fn command(&self, subcommand: &str, extra: &[&str]) -> Run {
        let mut args: Vec<String> = [
            subcommand,
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
            "codex",
            "--model",
            MOCK_MODEL,
            "--agent-timeout",
            "120s",
            "--agent-idle-timeout",
            "60s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push("--codex-bin".into());
        args.push(self.bin.display().to_string());
        for a in codex_args(&self.server.base_url()) {
            args.push("--agent-arg".into());
            args.push(a);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut cmd = self.repo.cmd();
        cmd.env("CODEX_HOME", &self.home)
            .env(MOCK_API_KEY_ENV, "dummy")
            .env("AUTORESEARCH_QUOTA_BACKOFF", "1s");
        cmd.args(&args).output().expect("run the binary").into()
    }

    pub(crate) fn summary(&self, n: u32) -> Value {
        let p = self.repo.root.join(format!(
            "autoresearch-results/engine/iter-{n:04}/summary.json"
        ));
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    /// Pids of live processes whose environment carries this test's CODEX_HOME.
    pub(crate) fn codex_processes(&self) -> Vec<String> {
        let needle = format!("CODEX_HOME={}", self.home.display());
        let mut pids = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !name.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            if let Ok(env) = std::fs::read(e.path().join("environ"))
                && env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes())
            {
                let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
                if !stat.contains(") Z ") {
                    pids.push(name);
                }
            }
        }
        pids
    }
}

#[test]
fn keep_discard_and_scope_with_real_codex() {
    let Some(t) = CodexRun::new(vec![
        MockReply::Sse(reply_patch("p1", &patch("src/value.txt", "10", "7"))),
        MockReply::Sse(reply_message(
            "Lower the value to 7.\n\nIt is smaller.",
            Some((100, 10)),
        )),
        MockReply::Sse(reply_patch("p2", &patch("src/value.txt", "7", "9"))),
        MockReply::Sse(reply_message("Raise the value to 9.", Some((120, 12)))),
        MockReply::Sse(reply_patch(
            "p3",
            "*** Begin Patch\n*** Update File: src/value.txt\n@@\n-7\n+1\n*** Add File: notes.txt\n+outside\n*** End Patch\n",
        )),
        MockReply::Sse(reply_message("Lower to 1 and take notes.", Some((140, 14)))),
    ]) else {
        return;
    };
    let r = t.run(&["--iterations", "3", "--refine-after", "0"]);
    r.expect_code(0);
    assert!(
        r.stderr.contains("agent: codex-cli"),
        "the Codex version is printed: {}",
        r.stderr
    );
    let rows = t.repo.rows();
    assert_eq!(
        t.repo.statuses(),
        ["baseline", "keep", "discard", "discard"]
    );
    assert_eq!(
        rows[1][6], "Lower the value to 7.",
        "first line of the final agent message"
    );
    assert_eq!((rows[1][2].as_str(), rows[2][2].as_str()), ("7", "9"));
    assert!(
        rows[3][6].starts_with("[SCOPE] notes.txt"),
        "{}",
        rows[3][6]
    );
    assert_eq!(t.repo.read("src/value.txt"), "7\n");
    assert!(!t.repo.exists("notes.txt"));
    assert_eq!(t.repo.status(), "");
    // Raw events and the prompt are kept per iteration; the thread id is recorded.
    let events = std::fs::read_to_string(
        t.repo
            .root
            .join("autoresearch-results/engine/iter-0001/agent.jsonl"),
    )
    .unwrap();
    assert!(events.contains("\"thread.started\""));
    assert!(
        t.repo
            .exists("autoresearch-results/engine/iter-0001/prompt.md")
    );
    let thread = t.summary(1)["session_id"].as_str().unwrap().to_string();
    assert!(events.contains(&thread));
    // One thread per strategy: later iterations resume it.
    assert_eq!(t.summary(2)["session_id"], thread.as_str());
    let reqs = t.server.responses_requests();
    assert_eq!(reqs.len(), 6);
    assert!(
        reqs.iter()
            .all(|r| r.header("session-id") == Some(thread.as_str())
                || r.header("thread-id") == Some(thread.as_str()))
    );
    assert_eq!(t.repo.state()["engine"]["session_id"], thread.as_str());
}

#[test]
fn guard_failure_reworks_in_the_resumed_thread() {
    let Some(t) = CodexRun::new(vec![
        // Turn 1: lower the value but break src/ok.txt (the guard checks it).
        MockReply::Sse(reply_patch(
            "p1",
            "*** Begin Patch\n*** Update File: src/value.txt\n@@\n-10\n+4\n*** Add File: src/broken.txt\n+oops\n*** End Patch\n",
        )),
        MockReply::Sse(reply_message("Lower to 4.", Some((100, 10)))),
        // Rework turn: remove the file that breaks the guard.
        MockReply::Sse(reply_shell("s1", "rm src/broken.txt")),
        MockReply::Sse(reply_message("Remove the stray file.", Some((300, 20)))),
    ]) else {
        return;
    };
    let r = t.run(&["--iterations", "1", "--guard", "test ! -e src/broken.txt"]);
    r.expect_code(0);
    let row = &t.repo.rows()[1];
    assert_eq!(
        (row[5].as_str(), row[4].as_str(), row[2].as_str()),
        ("keep", "pass", "4")
    );
    assert!(row[6].contains("after 1 rework turn"), "{}", row[6]);
    assert!(!t.repo.exists("src/broken.txt"));
    let reqs = t.server.responses_requests();
    assert_eq!(reqs.len(), 4);
    let first = reqs[0]
        .header("thread-id")
        .or(reqs[0].header("session-id"))
        .unwrap()
        .to_string();
    let rework = reqs[2]
        .header("thread-id")
        .or(reqs[2].header("session-id"))
        .unwrap()
        .to_string();
    assert_eq!(first, rework, "the rework turn resumes the same thread");
    // The resumed request carries the earlier history: the patch call's output and the first
    // turn's answer, before the rework prompt.
    let input = reqs[2].body["input"].as_array().expect("input items");
    let at = |pred: &dyn Fn(&serde_json::Value) -> bool| input.iter().position(pred);
    let patch_output = at(&|i| i["type"] == "custom_tool_call_output" && i["call_id"] == "p1");
    let answer = at(&|i| {
        i["role"] == "assistant" && i["content"][0]["text"].as_str() == Some("Lower to 4.")
    });
    let rework = at(&|i| i["role"] == "user" && i.to_string().contains("Directive: rework"));
    assert!(
        patch_output.is_some() && answer.is_some() && rework.is_some(),
        "history missing: {patch_output:?} {answer:?} {rework:?}"
    );
    assert!(patch_output < answer && answer < rework);
    // The resumed turn runs in the requested sandbox.
    assert!(
        reqs[2]
            .body
            .to_string()
            .contains("`sandbox_mode` is `workspace-write`"),
        "sandbox of the resumed turn"
    );
    assert!(
        t.repo
            .exists("autoresearch-results/engine/iter-0001/rework-1.jsonl")
    );
}

/// Codex's `file_change` items are checked against the engine's own diff, which decides: a
/// file the agent created and removed again is reported, not committed.
#[test]
fn reported_file_changes_are_cross_checked_against_the_diff() {
    let Some(t) = CodexRun::new(vec![
        MockReply::Sse(reply_patch(
            "p1",
            "*** Begin Patch\n*** Update File: src/value.txt\n@@\n-10\n+6\n*** Add File: src/scratch.txt\n+tmp\n*** End Patch\n",
        )),
        MockReply::Sse(reply_shell("s1", "rm src/scratch.txt")),
        MockReply::Sse(reply_message("Lower to 6.", None)),
    ]) else {
        return;
    };
    let r = t.run(&["--iterations", "1"]);
    r.expect_code(0);
    assert_eq!(t.repo.statuses(), ["baseline", "keep"]);
    let note = "the agent reported changes the diff does not show (src/scratch.txt)";
    assert!(r.stderr.contains(note), "{}", r.stderr);
    assert!(t.summary(1)["notes"].to_string().contains(note));
    let files = t.repo.git(&["show", "--name-only", "--format=", "HEAD"]);
    assert_eq!(files.trim(), "src/value.txt");
}

#[test]
fn model_failure_is_a_crash_and_the_run_goes_on() {
    let Some(t) = CodexRun::new(vec![
        MockReply::Sse(reply_failed("the model refused the prompt")),
        MockReply::Sse(reply_patch("p1", &patch("src/value.txt", "10", "6"))),
        MockReply::Sse(reply_message("Lower to 6.", None)),
    ]) else {
        return;
    };
    t.run(&["--iterations", "2"]).expect_code(0);
    let rows = t.repo.rows();
    assert_eq!(t.repo.statuses(), ["baseline", "crash", "keep"]);
    assert!(
        rows[1][6].contains("the model refused the prompt"),
        "{}",
        rows[1][6]
    );
}

#[test]
fn a_model_that_never_answers_is_killed_by_the_idle_timeout() {
    let Some(t) = CodexRun::new(vec![MockReply::Hang]) else {
        return;
    };
    let r = t.run(&["--iterations", "1", "--agent-idle-timeout", "3s"]);
    r.expect_code(0);
    let row = &t.repo.rows()[1];
    assert_eq!(row[5], "crash");
    assert!(
        row[6].starts_with("[TIMEOUT]") && row[6].contains("no event"),
        "{}",
        row[6]
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        t.codex_processes(),
        Vec::<String>::new(),
        "no Codex process outlives its iteration"
    );
}

#[test]
fn a_pivot_starts_a_new_thread() {
    let Some(t) = CodexRun::new(vec![
        MockReply::Sse(reply_patch("p1", &patch("src/value.txt", "10", "12"))),
        MockReply::Sse(reply_message("Raise to 12.", None)),
        MockReply::Sse(reply_patch("p2", &patch("src/value.txt", "10", "13"))),
        MockReply::Sse(reply_message("Raise to 13.", None)),
    ]) else {
        return;
    };
    // Every turn makes things worse: discard, pivot, discard.
    t.run(&[
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
        t.repo.statuses(),
        ["baseline", "discard", "pivot", "discard"]
    );
    let before = t.summary(1)["session_id"].as_str().unwrap().to_string();
    let after = t.summary(3)["session_id"].as_str().unwrap().to_string();
    assert_ne!(before, after, "a pivot starts a fresh thread");
    let prompt = std::fs::read_to_string(
        t.repo
            .root
            .join("autoresearch-results/engine/iter-0003/prompt.md"),
    )
    .unwrap();
    assert!(prompt.contains("## Directive: pivot"));
}

#[test]
fn rate_limits_wait_and_retry_instead_of_crashing() {
    let Some(t) = CodexRun::new(vec![
        MockReply::Status(
            429,
            serde_json::json!({"error": {"message": "Rate limit reached", "type": "rate_limit_exceeded"}}),
        ),
        MockReply::Sse(reply_patch("p1", &patch("src/value.txt", "10", "5"))),
        MockReply::Sse(reply_message("Lower to 5.", None)),
    ]) else {
        return;
    };
    let r = t.run(&["--iterations", "1"]);
    r.expect_code(0);
    assert_eq!(t.repo.statuses(), ["baseline", "keep"]);
    assert!(
        r.stderr.contains("usage or rate limit") && r.stderr.contains("waiting"),
        "{}",
        r.stderr
    );
    let summary = t.summary(1);
    assert!(
        summary["quota_wait_ms"].as_u64().unwrap() >= 1000,
        "{summary}"
    );
    assert!(
        summary["notes"][0]
            .as_str()
            .unwrap()
            .starts_with("agent: the agent hit a usage or rate limit"),
        "{summary}"
    );
}

#[test]
fn rate_limit_budget_spent_needs_a_human() {
    let Some(t) = CodexRun::new(vec![MockReply::Status(
        429,
        serde_json::json!({"error": {"message": "Rate limit reached", "type": "rate_limit_exceeded"}}),
    )]) else {
        return;
    };
    let r = t.run(&["--iterations", "3", "--max-quota-wait", "2s"]);
    r.expect_code(3);
    assert_eq!(
        t.repo.statuses(),
        ["baseline"],
        "waiting out a quota is not an experiment"
    );
    assert!(r.stdout.contains("max-quota-wait"), "{}", r.stdout);
}

#[test]
fn token_totals_match_the_mock_usage() {
    let Some(t) = CodexRun::new(vec![
        MockReply::Sse(reply_patch("p1", &patch("src/value.txt", "10", "8"))),
        MockReply::Sse(reply_message("Lower to 8.", Some((1000, 50)))),
        MockReply::Sse(reply_patch("p2", &patch("src/value.txt", "8", "6"))),
        MockReply::Sse(reply_message("Lower to 6.", Some((1500, 70)))),
    ]) else {
        return;
    };
    t.run(&["--iterations", "2", "--json"]).expect_code(0);
    let status: Value =
        serde_json::from_str(&t.repo.run(&["status", "--json"]).expect_code(0).stdout).unwrap();
    let tokens = &status["run"]["tokens"];
    assert_eq!(tokens["input_tokens"], 2500, "{status}");
    assert_eq!(tokens["output_tokens"], 120, "{status}");
    assert_eq!(t.summary(1)["usage"]["input_tokens"], 1000);
    assert_eq!(
        t.summary(2)["usage"]["input_tokens"],
        1500,
        "per-iteration usage is the difference of running totals"
    );
}

#[test]
fn a_lost_thread_falls_back_to_a_fresh_one_and_session_fresh_never_resumes() {
    let Some(t) = CodexRun::new(vec![
        MockReply::Sse(reply_patch("p1", &patch("src/value.txt", "10", "8"))),
        MockReply::Sse(reply_message("Lower to 8.", None)),
        MockReply::Sse(reply_patch("p2", &patch("src/value.txt", "8", "6"))),
        MockReply::Sse(reply_message("Lower to 6.", None)),
        MockReply::Sse(reply_patch("p3", &patch("src/value.txt", "6", "4"))),
        MockReply::Sse(reply_message("Lower to 4.", None)),
    ]) else {
        return;
    };
    // The user's Codex config is respected and never rewritten.
    let config = "# user config\n[features]\n";
    std::fs::write(t.home.join("config.toml"), config).unwrap();
    t.run(&["--iterations", "1"]).expect_code(0);
    let first = t.summary(1)["session_id"].as_str().unwrap().to_string();
    // Codex forgets its sessions (rollouts deleted): resuming fails, a fresh thread takes over.
    std::fs::remove_dir_all(t.home.join("sessions")).unwrap();
    let r = t.run(&["--iterations", "2"]);
    r.expect_code(0);
    assert!(
        r.stderr
            .contains(&format!("could not resume Codex thread {first}")),
        "{}",
        r.stderr
    );
    assert_eq!(t.repo.statuses(), ["baseline", "keep", "keep"]);
    // The iteration's record keeps the note, with the reason from Codex.
    let notes = t.summary(2)["notes"].to_string();
    assert!(
        notes.contains(&format!("agent: could not resume Codex thread {first} ("))
            && notes.to_lowercase().contains("error"),
        "{notes}"
    );
    let second = t.summary(2)["session_id"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    // --session fresh: a new thread every iteration, never `exec resume`.
    t.run(&["--iterations", "3", "--session", "fresh"])
        .expect_code(0);
    let third = t.summary(3)["session_id"].as_str().unwrap().to_string();
    assert_ne!(second, third);
    assert!(
        !t.repo
            .exists("autoresearch-results/engine/iter-0003/agent-fresh.jsonl"),
        "no failed resume attempt first"
    );
    assert_eq!(
        std::fs::read_to_string(t.home.join("config.toml")).unwrap(),
        config
    );
}

#[test]
fn wall_timeout_kills_codex_and_json_events_carry_tokens() {
    let Some(t) = CodexRun::new(vec![
        MockReply::Sse(reply_patch("p1", &patch("src/value.txt", "10", "8"))),
        MockReply::Sse(reply_message("Lower to 8.", Some((400, 30)))),
        MockReply::Hang,
    ]) else {
        return;
    };
    let r = t.run(&["--iterations", "2", "--agent-timeout", "4s", "--json"]);
    r.expect_code(0);
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let iterations: Vec<&Value> = lines.iter().filter(|v| v["type"] == "iteration").collect();
    assert_eq!(iterations[0]["tokens"]["input_tokens"], 400);
    assert!(iterations[0]["session_id"].is_string());
    assert_eq!(iterations[1]["status"], "crash");
    assert!(
        iterations[1]["description"]
            .as_str()
            .unwrap()
            .contains("[TIMEOUT] codex timed out after 4s")
    );
    let finished = lines.last().unwrap();
    assert_eq!(finished["type"], "run_finished");
    assert_eq!(finished["tokens"]["input_tokens"], 400);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(t.codex_processes(), Vec::<String>::new());
}

#[test]
fn missing_codex_and_sandbox_arguments_are_refused() {
    let repo = number_repo(10);
    let base = [
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
    ];
    // Default agent is codex; PATH has none and no CODEX_BIN.
    let mut cmd = repo.cmd();
    cmd.env("PATH", "/usr/bin:/bin").args(base);
    let r: Run = cmd.output().unwrap().into();
    r.expect_code(2);
    assert!(
        r.stderr.contains("codex CLI was not found")
            && r.stderr.contains("npm install -g @openai/codex"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1);
    assert!(!repo.exists("autoresearch-results/results.tsv"));
    for (bad, why) in [
        (
            "--sandbox=danger-full-access",
            "the sandbox is set by --sandbox",
        ),
        (
            "--dangerously-bypass-approvals-and-sandbox",
            "the sandbox is set by --sandbox",
        ),
        ("-s", "the sandbox is set by --sandbox"),
        ("-sdanger-full-access", "the sandbox is set by --sandbox"),
        ("--approve-for-me", "the sandbox is set by --sandbox"),
        (
            "sandbox_mode=\"danger-full-access\"",
            "the sandbox is set by --sandbox",
        ),
        (
            "sandbox_workspace_write.writable_roots=[\"/etc\"]",
            "the sandbox is set by --sandbox",
        ),
        (
            "--config=sandbox_permissions=[\"disk-full-read-access\"]",
            "the sandbox is set by --sandbox",
        ),
        ("-C", "the engine sets this itself"),
        ("--cd=/tmp", "the engine sets this itself"),
        ("--worktree", "the engine sets this itself"),
    ] {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(["--agent-arg", "-c", "--agent-arg", bad]);
        let r = repo.run(&args);
        r.expect_code(2);
        assert!(r.stderr.contains(why), "{bad}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    }
    assert!(!repo.exists("autoresearch-results/results.tsv"));
}
