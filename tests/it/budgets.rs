//! Unattended runs: each budget and the plateau stops with exit 0 and its reason; the `ended`
//! record in `status` and `status --json` (goal, cap, SIGTERM, a crash, cleared by a resume);
//! `--notify` gets its variables and cannot hang the run; the prompt states the last turn.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::support::*;

const VERIFY: &str = "sh measure.sh";

fn status_json(repo: &TestRepo) -> Value {
    let r = repo.run(&["status", "--json"]);
    r.expect_code(0);
    serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

fn status_text(repo: &TestRepo) -> String {
    let r = repo.run(&["status"]);
    r.expect_code(0);
    r.stdout
}

/// Checks the end record in the state, `status` and `status --json`.
#[track_caller]
fn assert_ended(repo: &TestRepo, reason: &str, text: &str, code: u64) -> Value {
    let v = status_json(repo);
    let e = &v["ended"];
    assert_eq!(e["reason"], reason, "{v}");
    assert_eq!(e["exit_code"], code, "{v}");
    assert!(e["at"].as_str().is_some_and(|a| a.ends_with('Z')), "{v}");
    assert!(e["elapsed_secs"].is_u64(), "{v}");
    assert_eq!(repo.state()["engine"]["ended"], *e);
    let out = status_text(repo);
    assert!(
        out.contains(&format!("not running; ended: {text}")),
        "{out}"
    );
    assert!(out.contains(&format!("exit code {code})")), "{out}");
    e.clone()
}

/// An agent that sleeps `secs`, then lowers the value by one.
fn slow_agent(repo: &TestRepo, secs: f64) -> String {
    repo.script(
        "slow.sh",
        &format!(
            "cat > /dev/null\nsleep {secs}\nv=$(cat src/value.txt)\necho $((v - 1)) > src/value.txt\necho lower"
        ),
    )
}

#[test]
fn max_duration_stops_between_iterations() {
    let repo = number_repo(100);
    let agent = slow_agent(&repo, 0.7);
    let t0 = Instant::now();
    let r = repo.run_loop(
        VERIFY,
        &agent,
        &["--max-duration", "2s", "--iterations", "50"],
    );
    r.expect_code(0);
    assert!(t0.elapsed() < Duration::from_secs(20));
    assert!(
        r.stdout.contains("budget spent: --max-duration 2s spent"),
        "{}",
        r.stdout
    );
    let n = repo.rows().len() - 1;
    assert!((1..10).contains(&n), "{n} iterations");
    let e = assert_ended(&repo, "budget", "budget spent (--max-duration)", 0);
    assert_eq!(e["budget"], "max_duration");
    assert!(repo.state()["engine"]["elapsed_ms"].as_u64().unwrap() >= 2000);
    // A resume counts the time already spent: it stops at once.
    let r = repo.run_loop(
        VERIFY,
        &agent,
        &["--max-duration", "2s", "--iterations", "50"],
    );
    r.expect_code(0);
    assert_eq!(repo.rows().len() - 1, n, "no iteration after the budget");
}

#[test]
fn until_stops_at_the_local_time() {
    // Local time is UTC shifted by whole seconds (a POSIX TZ), so the next minute starts ~4 s
    // from now whatever the real clock says.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let offset = (56 + 60 - now % 60) % 60;
    let tz = format!("XXX-0:00:{offset:02}");
    let boundary = now + offset + 4;
    let (h, m) = ((boundary / 3600) % 24, (boundary / 60) % 60);
    let until = format!("{h:02}:{m:02}");
    let repo = number_repo(100);
    let agent = slow_agent(&repo, 0.5);
    let mut args = TestRepo::loop_args(VERIFY, &agent, &["--iterations", "100", "--until"]);
    args.push(until.clone());
    let t0 = Instant::now();
    let r = repo.spawn_env(&args, &[("TZ", &tz)]).finish();
    r.expect_code(0);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(20),
        "{took:?}"
    );
    assert!(
        r.stdout.contains(&format!("--until {until} reached")),
        "{}",
        r.stdout
    );
    let e = assert_ended(&repo, "budget", "budget spent (--until)", 0);
    assert_eq!(e["budget"], "until");
}

#[test]
fn max_tokens_counts_what_the_agent_reports() {
    let repo = number_repo(100);
    let agent = repo.script(
        "tok.sh",
        "cat > /dev/null\nv=$(cat src/value.txt)\necho $((v - 1)) > src/value.txt\necho lower\necho 'tokens: 400'",
    );
    let r = repo.run_loop(
        VERIFY,
        &agent,
        &["--max-tokens", "1000", "--iterations", "50"],
    );
    r.expect_code(0);
    assert_eq!(repo.rows().len() - 1, 3, "400 + 400 + 400 >= 1000");
    // The token line is not the description.
    assert_eq!(repo.rows()[1][6], "lower");
    assert_eq!(repo.state()["engine"]["usage"]["input_tokens"], 1200);
    let e = assert_ended(&repo, "budget", "budget spent (--max-tokens)", 0);
    assert_eq!(e["budget"], "max_tokens");
    assert!(e["detail"].as_str().unwrap().contains("1200 tokens used"));
}

#[test]
fn plateau_stops_after_n_experiments_without_a_keep() {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[(1, "echo 9 > src/value.txt; echo lower")],
    );
    let r = repo.run_loop(VERIFY, &agent, &["--plateau", "4", "--iterations", "50"]);
    r.expect_code(0);
    let experiments: Vec<String> = repo
        .statuses()
        .into_iter()
        .filter(|s| s != "refine" && s != "pivot" && s != "search")
        .collect();
    assert_eq!(
        experiments,
        ["baseline", "keep", "no-op", "no-op", "no-op", "no-op"]
    );
    assert!(
        r.stdout
            .contains("plateau: 4 experiments in a row without a keep"),
        "{}",
        r.stdout
    );
    assert_ended(&repo, "plateau", "plateau", 0);
}

#[test]
fn goal_and_cap_are_recorded() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    repo.run_loop(
        VERIFY,
        &agent,
        &["--stop-condition", "metric <= 8", "--iterations", "9"],
    )
    .expect_code(0);
    assert_ended(&repo, "goal_reached", "goal reached: stop condition", 0);

    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    repo.run_loop(VERIFY, &agent, &["--iterations", "2"])
        .expect_code(0);
    let e = assert_ended(
        &repo,
        "iterations",
        "iteration cap reached: 2 experiments done (--iterations 2)",
        0,
    );
    assert!(e["budget"].is_null());
}

/// An agent that marks its start, then waits long enough to be interrupted.
fn waiting_agent(repo: &TestRepo) -> (String, std::path::PathBuf) {
    let marker = repo.aux.join("agent.pid");
    let agent = repo.script(
        "wait.sh",
        &format!("cat > /dev/null\n{}\nsleep 30\necho late", mark(&marker)),
    );
    (agent, marker)
}

#[test]
fn sigterm_is_recorded_as_stopped() {
    let repo = number_repo(10);
    let (agent, marker) = waiting_agent(&repo);
    let mut running = repo.spawn(&TestRepo::loop_args(VERIFY, &agent, &["--iterations", "5"]));
    running.wait_for(&marker);
    running.signal(nix::sys::signal::Signal::SIGTERM);
    running.finish().expect_code(143);
    assert_ended(
        &repo,
        "stopped",
        "stopped: interrupted by SIGTERM; the unfinished iteration was rolled back",
        143,
    );
}

#[test]
fn a_killed_run_is_crashed_and_a_resume_clears_the_old_end() {
    let repo = number_repo(10);
    let quick = stepping_agent(&repo, "agent.sh", -1);
    repo.run_loop(VERIFY, &quick, &["--iterations", "1"])
        .expect_code(0);
    assert_ended(&repo, "iterations", "iteration cap reached", 0);
    // Resumed, then killed -9 during the agent's turn: no end record, the old one is gone.
    let (agent, marker) = waiting_agent(&repo);
    let mut running = repo.spawn(&TestRepo::loop_args(VERIFY, &agent, &["--iterations", "5"]));
    running.wait_for(&marker);
    let agent_pid = read_pid(&marker);
    running.signal(nix::sys::signal::Signal::SIGKILL);
    running.finish();
    if let Some(pgid) = pgid_of(agent_pid) {
        kill_group(pgid);
    }
    let v = status_json(&repo);
    assert_eq!(v["ended"]["reason"], "crashed", "{v}");
    assert!(repo.state()["engine"]["ended"].is_null());
    let out = status_text(&repo);
    assert!(
        out.contains("not running; crashed during iteration 2 (agent)"),
        "{out}"
    );
    // The next run recovers, and a state with no marker and no record also reads as crashed.
    repo.run_loop(VERIFY, &quick, &["--iterations", "3"])
        .expect_code(0);
    assert_ended(&repo, "iterations", "iteration cap reached", 0);
}

#[test]
fn notify_gets_the_outcome_and_cannot_hang_the_run() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let env_file = repo.aux.join("notify.env");
    let notify = format!(
        "env | grep ^AUTORESEARCH_ | sort > {}.tmp && mv {0}.tmp {0}",
        env_file.display()
    );
    repo.run_loop(
        VERIFY,
        &agent,
        &["--iterations", "2", "--run-tag", "nt", "--notify", &notify],
    )
    .expect_code(0);
    wait_for("the notify command", || env_file.exists());
    let vars = std::fs::read_to_string(&env_file).unwrap();
    let root = repo.root.canonicalize().unwrap();
    for want in [
        "AUTORESEARCH_OUTCOME=iterations".to_string(),
        "AUTORESEARCH_EXIT_CODE=0".to_string(),
        "AUTORESEARCH_RUN_TAG=nt".to_string(),
        "AUTORESEARCH_BASELINE=10".to_string(),
        "AUTORESEARCH_BEST=8".to_string(),
        "AUTORESEARCH_DETAIL=2 experiments done (--iterations 2)".to_string(),
        format!("AUTORESEARCH_REPO={}", root.display()),
        format!(
            "AUTORESEARCH_REPORT={}",
            root.join("autoresearch-results/engine/report.md").display()
        ),
    ] {
        assert!(vars.lines().any(|l| l == want), "{want} in:\n{vars}");
    }
    // The report the variable names was written before the notification.
    assert!(
        repo.read("autoresearch-results/engine/report.md")
            .contains("iteration cap")
    );

    // A notify that never ends: the run returns at once; the timeout kills the command.
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let pid_file = repo.aux.join("notify.pid");
    let notify = format!("{}; sleep 1000", mark(&pid_file));
    let t0 = Instant::now();
    let args = TestRepo::loop_args(VERIFY, &agent, &["--iterations", "1", "--notify", &notify]);
    let r = repo.run_env(&args, &[("AUTORESEARCH_NOTIFY_TIMEOUT", "2s")]);
    r.expect_code(0);
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    wait_for("the notify command to start", || pid_file.exists());
    let pid = read_pid(&pid_file);
    wait_for(
        "the notify command to be killed",
        || !matches!(proc_state(pid), Some(s) if s != 'Z'),
    );
    let log = repo.read("autoresearch-results/engine/notify.log");
    assert!(log.contains("notify: timed out"), "{log}");
}

#[test]
fn the_prompt_states_the_last_turn_and_not_the_lessons_header() {
    let repo = number_repo(10);
    repo.write(
        "autoresearch-results/lessons.md",
        "# Lessons for people\n\nThis header is meant for humans reading the file.\n\n",
    );
    let prompts = repo.aux.join("prompts");
    std::fs::create_dir_all(&prompts).unwrap();
    let agent = repo.script(
        "agent.sh",
        &format!(
            "cat > {}/$AUTORESEARCH_ITERATION\ncase $AUTORESEARCH_ITERATION in\n  1) echo 9 > src/value.txt; echo lower to 9 ;;\n  2) echo 11 > src/value.txt; echo raise to 11 ;;\n  *) echo idle ;;\nesac",
            prompts.display()
        ),
    );
    repo.run_loop(VERIFY, &agent, &["--iterations", "3"])
        .expect_code(0);
    let p2 = std::fs::read_to_string(prompts.join("2")).unwrap();
    assert!(
        p2.contains("## Last turn\nIteration 1 was kept (10 -> 9): lower to 9. It is in the tree; build on it."),
        "{p2}"
    );
    let p3 = std::fs::read_to_string(prompts.join("3")).unwrap();
    assert!(
        p3.contains("Iteration 2 was rolled back (discard): raise to 11. The tree is back at the retained commit"),
        "{p3}"
    );
    for p in [&p2, &p3] {
        assert!(
            !p.contains("meant for humans") && !p.contains("Lessons for people"),
            "{p}"
        );
    }
}

#[test]
fn max_tokens_counts_what_codex_reports() {
    use crate::codex::CodexRun;
    use crate::mock_responses::*;
    let patch = |from: &str, to: &str| {
        format!(
            "*** Begin Patch\n*** Update File: src/value.txt\n@@\n-{from}\n+{to}\n*** End Patch\n"
        )
    };
    let Some(t) = CodexRun::new(vec![
        MockReply::Sse(reply_patch("p1", &patch("10", "9"))),
        MockReply::Sse(reply_message("Lower to 9.", Some((1000, 50)))),
        MockReply::Sse(reply_patch("p2", &patch("9", "8"))),
        MockReply::Sse(reply_message("Lower to 8.", Some((1000, 50)))),
        MockReply::Sse(reply_patch("p3", &patch("8", "7"))),
        MockReply::Sse(reply_message("Lower to 7.", Some((1000, 50)))),
    ]) else {
        return;
    };
    let r = t.run(&["--iterations", "3", "--max-tokens", "1500"]);
    r.expect_code(0);
    // 1050 tokens after the first turn, 2100 (plus the patch turns' usage) after the second.
    assert_eq!(
        t.repo.statuses(),
        ["baseline", "keep", "keep"],
        "{}",
        r.stdout
    );
    let e = assert_ended(&t.repo, "budget", "budget spent (--max-tokens)", 0);
    assert_eq!(e["budget"], "max_tokens");
}
