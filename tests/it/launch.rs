//! Unattended runs: `launch` returns at once and the detached run completes; it survives its
//! launcher's death and SIGHUP; a second launch and a refused start are reported like `run`'s;
//! `stop` now and `stop --after-iteration`; `logs -f`; `status` of a live run.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

const VERIFY: &str = "sh measure.sh";

/// The `launch` arguments of a run with the usual flags plus `extra`.
fn launch_args(agent: &str, extra: &[&str]) -> Vec<String> {
    let mut args = TestRepo::loop_args(VERIFY, agent, &["--keep-rule", "strict"]);
    args[0] = "launch".into();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Launches with `--json`; returns (tag, pid, log) and how long `launch` took.
fn launch(repo: &TestRepo, agent: &str, extra: &[&str]) -> (String, i32, String, Duration) {
    let mut args = launch_args(agent, extra);
    args.push("--json".into());
    let t0 = Instant::now();
    let r = repo.run_owned(&args);
    let took = t0.elapsed();
    r.expect_code(0);
    let v: Value =
        serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    (
        v["tag"].as_str().unwrap().to_string(),
        v["pid"].as_i64().unwrap() as i32,
        v["log"].as_str().unwrap().to_string(),
        took,
    )
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

fn wait_gone(pid: i32) {
    wait_for("the run to end", || !alive(pid));
}

fn status_json(repo: &TestRepo) -> Value {
    let r = repo.run(&["status", "--json"]);
    r.expect_code(0);
    serde_json::from_str(r.stdout.trim()).unwrap()
}

/// An agent that lowers the value by one every turn after sleeping `secs`.
fn slow_agent(repo: &TestRepo, secs: &str) -> String {
    repo.script(
        "slow.sh",
        &format!(
            "cat > /dev/null\nsleep {secs}\nv=$(cat src/value.txt)\necho $((v - 1)) > src/value.txt\necho \"lower to $((v - 1))\""
        ),
    )
}

#[test]
fn launch_returns_at_once_and_the_run_completes() {
    let repo = number_repo(10);
    let agent = slow_agent(&repo, "0.3");
    let (tag, pid, log, took) = launch(&repo, &agent, &["--iterations", "3"]);
    assert!(took < Duration::from_secs(3), "launch took {took:?}");
    assert_eq!(tag, "lower-the-number");
    assert_eq!(
        log,
        repo.root
            .join("autoresearch-results/engine/run.log")
            .display()
            .to_string()
    );
    assert!(alive(pid), "the run goes on after launch returned");
    wait_gone(pid);
    assert_eq!(repo.statuses(), ["baseline", "keep", "keep", "keep"]);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("launched run lower-the-number"), "{text}");
    assert!(
        text.contains("finished: iteration cap reached (3/3)"),
        "{text}"
    );
    assert!(repo.status().is_empty(), "{}", repo.status());
    assert_eq!(
        repo.state()["config"]["session_mode"],
        "background",
        "a launched run is recorded as detached"
    );
}

#[test]
fn the_run_survives_its_launchers_death_and_sighup() {
    let repo = number_repo(10);
    let agent = slow_agent(&repo, "0.5");
    let args: Vec<String> = launch_args(&agent, &["--iterations", "4", "--json"])
        .iter()
        .map(|a| format!("'{a}'"))
        .collect();
    // The launching shell waits after launch returns; then its whole group is killed.
    let script = format!("{BIN} {}; echo done; sleep 60", args.join(" "));
    let mut sh_cmd = std::process::Command::new("sh");
    hermetic(&mut sh_cmd, &repo.aux);
    sh_cmd
        .arg("-c")
        .arg(&script)
        .current_dir(&repo.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut sh_cmd, 0);
    let mut shell = sh_cmd.spawn().unwrap();
    let mut lines = BufReader::new(shell.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let v: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    let pid = v["pid"].as_i64().unwrap() as i32;
    let group = nix::unistd::Pid::from_raw(shell.id() as i32);
    nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGHUP).unwrap();
    nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL).unwrap();
    shell.wait().unwrap();
    let run = nix::unistd::Pid::from_raw(pid);
    nix::sys::signal::kill(run, nix::sys::signal::Signal::SIGHUP).unwrap();
    assert!(alive(pid), "SIGHUP does not end a launched run");
    wait_gone(pid);
    assert_eq!(
        repo.statuses(),
        ["baseline", "keep", "keep", "keep", "keep"]
    );
    let log = repo.read("autoresearch-results/engine/run.log");
    assert!(
        log.contains("finished: iteration cap reached (4/4)"),
        "{log}"
    );
}

#[test]
fn a_second_launch_is_refused_naming_the_live_run() {
    let repo = number_repo(10);
    let agent = slow_agent(&repo, "5");
    let (tag, pid, _, _) = launch(&repo, &agent, &["--iterations", "20"]);
    let r = repo.run_owned(&launch_args(&agent, &[]));
    r.expect_refusal(&["already live", &tag, &format!("pid {pid}")]);
    repo.run(&["stop"]).expect_code(0);
    assert!(!alive(pid));
}

#[test]
fn a_refused_start_is_reported_like_runs() {
    let repo = number_repo(10);
    repo.write("measure.sh", "echo 3\n");
    let before = repo.snapshot();
    let mut run_args = TestRepo::loop_args(VERIFY, "true", &[]);
    let by_run = repo.run_owned(&run_args);
    run_args[0] = "launch".into();
    let by_launch = repo.run_owned(&run_args);
    by_run.expect_code(2);
    by_launch.expect_code(2);
    assert_eq!(by_launch.stderr, by_run.stderr);
    assert!(
        by_launch.stderr.contains("uncommitted changes"),
        "{}",
        by_launch.stderr
    );
    assert!(by_launch.stdout.is_empty(), "{}", by_launch.stdout);
    repo.assert_untouched(&before);
    assert!(
        !repo.exists("autoresearch-results"),
        "a refused launch writes nothing"
    );
    // A bad flag too: the same line and code.
    let by_run = repo.run(&["run", "--iterations", "0"]);
    let by_launch = repo.run(&["launch", "--iterations", "0"]);
    assert_eq!(
        (by_launch.code, &by_launch.stderr),
        (by_run.code, &by_run.stderr)
    );
}

#[test]
fn stop_rolls_back_now_and_waits() {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo 9 > src/value.txt; echo 'lower to 9'"),
            (2, "echo 1 > src/value.txt; sleep 60; echo never"),
        ],
    );
    let (_, pid, _, _) = launch(&repo, &agent, &["--iterations", "5"]);
    wait_for("iteration 2's agent", || {
        status_json(&repo)["inflight"]["iteration"] == 2
    });
    let t0 = Instant::now();
    let r = repo.run(&["stop"]);
    r.expect_code(0);
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    assert!(!alive(pid), "stop returns once the run has ended");
    assert!(r.stdout.contains("s after the request)"), "{}", r.stdout);
    let rows = repo.rows();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[2][5], "crash");
    assert!(rows[2][6].starts_with("[INTERRUPTED]"), "{:?}", rows[2]);
    assert_eq!(repo.read("src/value.txt"), "9\n", "rolled back");
    // Nothing left to stop.
    let r = repo.run(&["stop"]);
    r.expect_code(0);
    assert!(r.stdout.contains("nothing to stop"), "{}", r.stdout);
}

#[test]
fn stop_after_iteration_lets_the_iteration_finish() {
    let repo = number_repo(10);
    let agent = slow_agent(&repo, "1.5");
    let (_, pid, log, _) = launch(&repo, &agent, &["--iterations", "10"]);
    wait_for("iteration 1's agent", || {
        status_json(&repo)["inflight"]["phase"] == "agent"
    });
    let r = repo.run(&["stop", "--after-iteration"]);
    r.expect_code(0);
    assert!(!alive(pid));
    assert_eq!(
        repo.statuses(),
        ["baseline", "keep"],
        "the iteration was recorded, no more"
    );
    let text = std::fs::read_to_string(log).unwrap();
    assert!(
        text.contains("stopped on request after iteration 1"),
        "{text}"
    );
    assert!(
        !repo.exists("autoresearch-results/engine/stop-request.json"),
        "used up"
    );
}

#[test]
fn logs_follow_new_lines_until_the_run_ends() {
    let repo = number_repo(10);
    let agent = slow_agent(&repo, "0.4");
    let (_, pid, _, _) = launch(&repo, &agent, &["--iterations", "4"]);
    let mut cmd = repo.cmd();
    let mut follower = cmd
        .args(["logs", "-f", "-n", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines: Vec<String> = BufReader::new(follower.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .collect();
    assert!(
        follower.wait().unwrap().success(),
        "logs -f ends with the run"
    );
    assert!(!alive(pid));
    assert!(lines.iter().any(|l| l.starts_with("#4 ")), "{lines:?}");
    assert!(lines.last().unwrap().starts_with("finished:"), "{lines:?}");
    let r = repo.run(&["logs", "-n", "1"]);
    r.expect_code(0);
    assert_eq!(r.stdout_lines().len(), 1, "{}", r.stdout);
    assert!(r.stdout.starts_with("finished:"), "{}", r.stdout);
}

#[test]
fn status_shows_the_phase_of_a_live_run_and_its_end_estimate() {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo 9 > src/value.txt; echo 'lower to 9'"),
            (2, "sleep 60; echo never"),
        ],
    );
    let (_, pid, _, _) = launch(&repo, &agent, &["--iterations", "5"]);
    wait_for("iteration 2's agent", || {
        status_json(&repo)["inflight"]["iteration"] == 2
    });
    let v = status_json(&repo);
    let live = &v["live"];
    assert_eq!(live["phase"], "agent", "{v}");
    assert_eq!(live["iteration"], 2);
    assert!(live["phase_seconds"].as_u64().is_some(), "{v}");
    assert!(live["elapsed_seconds"].as_u64().is_some(), "{v}");
    assert_eq!(live["iterations_left"], 4, "{v}");
    assert!(live["end_estimate"].is_string(), "{v}");
    let r = repo.run(&["status"]);
    assert!(r.stdout.contains("phase: agent for "), "{}", r.stdout);
    assert!(r.stdout.contains("end estimate: "), "{}", r.stdout);
    repo.run(&["stop"]).expect_code(0);
    assert!(!alive(pid));
    assert!(status_json(&repo)["live"].is_null());
}
