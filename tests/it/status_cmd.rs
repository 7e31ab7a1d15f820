//! `codex-autoresearch status [--json]`: no run, a finished run (cross-checked with the results
//! log), a run in progress (pid and in-flight iteration), and outside a repository.

use std::collections::BTreeMap;
use std::process::{Child, Stdio};

use serde_json::Value;

use crate::support::*;

const VERIFY: &str = "sh measure.sh";

fn status_json(repo: &TestRepo) -> Value {
    let r = repo.run(&["status", "--json"]);
    r.expect_code(0);
    let lines = r.stdout_lines();
    assert_eq!(lines.len(), 1, "one JSON object:\n{}", r.stdout);
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

#[test]
fn no_run_says_so() {
    let repo = number_repo(10);
    let before = repo.snapshot();
    let r = repo.run(&["status"]);
    r.expect_code(0);
    assert!(r.stdout.contains("no autoresearch run"), "{}", r.stdout);
    let v = status_json(&repo);
    assert!(v["run"].is_null(), "{v}");
    assert_eq!(v["running"], false);
    // The same keys as with a run.
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["inflight", "live", "pid", "repo", "run", "running"],
        "{v}"
    );
    repo.assert_untouched(&before);
    assert!(
        !repo.exists("autoresearch-results"),
        "status writes nothing"
    );
}

#[test]
fn outside_a_repository_exits_2() {
    let repo = number_repo(10);
    std::fs::remove_dir_all(repo.root.join(".git")).unwrap();
    for args in [&["status"][..], &["status", "--json"][..]] {
        let r = repo.run(args);
        let line = r.expect_refusal(&["not inside a git repository"]);
        assert!(r.stdout.is_empty(), "{line}: {}", r.stdout);
    }
}

/// Runs six iterations: keep, discard, no-op, crash, keep, discard.
fn finished_run() -> TestRepo {
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo 8 > src/value.txt; echo 'lower to 8'"),
            (2, "echo 9 > src/value.txt; echo 'raise to 9'"),
            (3, "echo 'nothing'"),
            (4, "echo 'boom'; exit 4"),
            (5, "echo 6 > src/value.txt; echo 'lower to 6'"),
            (6, "echo 7 > src/value.txt; echo 'raise to 7'"),
        ],
    );
    repo.run_loop(
        VERIFY,
        &agent,
        &[
            "--iterations",
            "6",
            "--refine-after",
            "0",
            "--run-tag",
            "st-1",
        ],
    )
    .expect_code(0);
    assert_eq!(
        repo.statuses(),
        [
            "baseline", "keep", "discard", "no-op", "crash", "keep", "discard"
        ]
    );
    repo
}

#[test]
fn after_a_run_human() {
    let repo = finished_run();
    let before = repo.snapshot();
    let r = repo.run(&["status"]);
    r.expect_code(0);
    let out = &r.stdout;
    assert!(out.contains("run st-1 (loop)"), "{out}");
    assert!(
        out.contains("baseline 10, best 6 (#5), retained 6"),
        "{out}"
    );
    assert!(
        out.contains("iteration 6: 2 keep, 2 discard, 1 crash, 1 no-op"),
        "{out}"
    );
    assert!(out.contains("not running"), "{out}");
    let rows = repo.rows();
    let shown: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("last rows"))
        .skip(1)
        .collect();
    assert_eq!(shown.len(), 5, "the last 5 rows:\n{out}");
    for (line, row) in shown.iter().zip(&rows[2..]) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[0], row[0], "{line}");
        assert_eq!(fields[1], row[1], "{line}");
        assert_eq!(fields[2], row[2], "{line}");
        assert!(line.contains(&row[5]) && line.contains(&row[6]), "{line}");
    }
    assert_eq!(repo.snapshot(), before, "status changes nothing");
}

#[test]
fn after_a_run_json_matches_the_log() {
    let repo = finished_run();
    let v = status_json(&repo);
    let rows = repo.rows();
    assert_eq!(v["running"], false);
    assert!(v["pid"].is_null());
    assert!(v["inflight"].is_null());
    let run = &v["run"];
    assert_eq!(run["run_tag"], "st-1");
    assert_eq!(run["mode"], "loop");
    assert_eq!(run["metric"], "value");
    assert_eq!(run["direction"], "lower");
    assert_eq!(run["iteration"], 6);
    assert_eq!(run["baseline"], 10);
    assert_eq!(run["best"], 6);
    assert_eq!(run["best_iteration"], 5);
    assert_eq!(run["retained"], 6);
    assert_eq!(run["last_status"], "discard");
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for r in &rows {
        *counts.entry(r[5].clone()).or_default() += 1;
    }
    for status in [
        "baseline", "keep", "discard", "crash", "no-op", "blocked", "refine", "pivot", "search",
        "drift",
    ] {
        assert_eq!(
            run["counts"][status].as_u64(),
            Some(counts.get(status).copied().unwrap_or(0)),
            "count of {status}: {}",
            run["counts"]
        );
    }
    let last = run["last_rows"].as_array().expect("last_rows");
    assert_eq!(last.len(), 5);
    for (j, row) in last.iter().zip(&rows[2..]) {
        assert_eq!(j["iteration"].as_u64(), Some(row[0].parse().unwrap()));
        assert_eq!(j["commit"], row[1].as_str());
        assert_eq!(j["metric"].as_f64(), Some(row[2].parse().unwrap()));
        assert_eq!(j["delta"].as_f64(), Some(row[3].parse().unwrap()));
        assert_eq!(j["guard"], row[4].as_str());
        assert_eq!(j["status"], row[5].as_str());
        assert_eq!(j["description"], row[6].as_str());
    }
}

/// Kills the child if the test fails before it is waited for.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn while_running_reports_the_pid_and_the_iteration_in_flight() {
    let repo = number_repo(10);
    let started = repo.aux.join("agent-started");
    let release = repo.aux.join("release");
    // Iteration 2 signals that it runs, then waits (bounded) for the test to release it.
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo 8 > src/value.txt; echo 'lower to 8'"),
            (
                2,
                &format!(
                    "touch {s}; i=0; while [ ! -f {r} ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done; echo 7 > src/value.txt; echo 'lower to 7'",
                    s = started.display(),
                    r = release.display()
                ),
            ),
        ],
    );
    let args = TestRepo::loop_args(VERIFY, &agent, &["--iterations", "2"]);
    let child = repo
        .cmd()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let mut running = Running(Some(child));
    wait_for("the agent of iteration 2", || started.exists());

    let v = status_json(&repo);
    assert_eq!(v["running"], true, "{v}");
    assert_eq!(v["pid"].as_u64(), Some(u64::from(pid)), "{v}");
    assert_eq!(v["inflight"]["iteration"], 2, "{v}");
    assert_eq!(v["inflight"]["phase"], "agent", "{v}");
    assert_eq!(v["run"]["iteration"], 1, "{v}");
    assert_eq!(v["run"]["retained"], 8, "{v}");
    let r = repo.run(&["status"]);
    r.expect_code(0);
    assert!(
        r.stdout
            .contains(&format!("running: pid {pid} (iteration 2, agent)")),
        "{}",
        r.stdout
    );

    std::fs::write(&release, "").unwrap();
    let out = running.0.take().unwrap().wait_with_output().unwrap();
    let run: Run = out.into();
    run.expect_code(0);
    let v = status_json(&repo);
    assert_eq!(v["running"], false, "{v}");
    assert!(v["pid"].is_null(), "{v}");
    assert!(v["inflight"].is_null(), "{v}");
    assert_eq!(v["run"]["iteration"], 2);
    assert_eq!(v["run"]["retained"], 7);
    let r = repo.run(&["status"]);
    assert!(r.stdout.contains("not running"), "{}", r.stdout);
}

#[test]
fn a_closed_stdout_is_not_a_crash() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    repo.run_loop("sh measure.sh", &agent, &["--iterations", "3"])
        .expect_code(0);
    for args in [&["status"][..], &["status", "--json"], &["config"]] {
        // A pipe whose reader is gone: every write gets EPIPE, as with `status | head`.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = repo
            .cmd()
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}
