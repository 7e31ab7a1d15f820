//! `plan`: candidates from the profile alone on the Rust, Python and Node fixtures
//! (tests/fixtures/plan/) validated with their real toolchains; candidates a command agent
//! proposes rejected with their reasons; `--write` then `run`; the real Codex CLI answering
//! through `--output-schema` from the scripted model server.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::codex::codex_bin;
use crate::mock_responses::*;
use crate::support::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every file of a fixture directory, relative to it.
fn fixture_files(dir: &Path, prefix: &str, out: &mut Vec<(String, String)>) {
    for e in std::fs::read_dir(dir).expect("fixture dir").flatten() {
        let name = format!("{prefix}{}", e.file_name().to_string_lossy());
        if e.path().is_dir() {
            fixture_files(&e.path(), &format!("{name}/"), out);
        } else {
            out.push((name, std::fs::read_to_string(e.path()).expect("fixture")));
        }
    }
}

/// A repository holding the fixture `name` (committed).
fn fixture_repo(name: &str) -> TestRepo {
    let mut files = Vec::new();
    fixture_files(
        &PathBuf::from(ROOT).join("tests/fixtures/plan").join(name),
        "",
        &mut files,
    );
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    TestRepo::with_files(&refs)
}

/// Whether `program --version` runs (a toolchain is there).
fn has(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs the binary in `repo` with the toolchains' homes the hermetic environment drops.
fn plan(repo: &TestRepo, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = repo.cmd();
    let home = std::env::var("HOME").unwrap_or_default();
    for (var, default) in [("RUSTUP_HOME", ".rustup"), ("CARGO_HOME", ".cargo")] {
        let v = std::env::var(var).unwrap_or_else(|_| format!("{home}/{default}"));
        cmd.env(var, v);
    }
    cmd.envs(env.iter().copied());
    cmd.args(args).output().expect("run plan").into()
}

fn json_of(r: &Run) -> Value {
    serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "plan --json prints one object ({e})\n--- stdout\n{}\n--- stderr\n{}",
            r.stdout, r.stderr
        )
    })
}

#[test]
fn offline_candidates_are_valid_and_their_verify_really_runs_on_each_fixture() {
    for (name, tool) in [("rust", "cargo"), ("python", "python3"), ("node", "node")] {
        if !has(tool) {
            eprintln!("skipping the {name} fixture: {tool} is not installed");
            continue;
        }
        let repo = fixture_repo(name);
        let before = repo.snapshot();
        let args = ["plan", "--goal", "fix the failing tests", "--agent", "none"];
        let r = plan(&repo, &[&args[..], &["--json"]].concat(), &[]);
        r.expect_code(0);
        let v = json_of(&r);
        assert_eq!(v["chosen"], 0, "{name}: {v}");
        let c = &v["candidates"][0];
        assert_eq!(c["valid"], true, "{name}: {c}");
        assert_eq!(c["mode"], "fix", "{name}");
        assert_eq!(c["metric"], "failures", "{name}");
        // The fixture has one failing test: verify ran three times and counted it each time.
        assert_eq!(c["values"], json!([1.0, 1.0, 1.0]), "{name}: {c}");
        assert_eq!(c["baseline"], 1.0, "{name}");
        assert_eq!(c["noise"]["deterministic"], true, "{name}");
        assert!(c["seconds_per_verify"].as_f64().unwrap() > 0.0, "{name}");
        assert!(c["iterations_per_hour"].as_f64().unwrap() > 0.0, "{name}");
        assert!(c["editable"].as_u64().unwrap() >= 1, "{name}");
        assert!(
            v["profile"]["tests"].as_array().unwrap().len() == 1,
            "{name}"
        );
        // Read-only: nothing in the repository changed, no autoresearch.toml.
        repo.assert_untouched(&before);
        assert!(!repo.exists("autoresearch.toml"));
        // For people: at most 15 lines, the chosen candidate named.
        let r = plan(&repo, &args, &[]);
        r.expect_code(0);
        assert!(r.stdout.lines().count() <= 15, "{}", r.stdout);
        assert!(
            r.stdout.contains("(chosen) fix failures lower"),
            "{}",
            r.stdout
        );
    }
}

/// A command agent that prints `candidates` as its answer (after some chatter).
fn answering_agent(repo: &TestRepo, candidates: Value) -> String {
    let answer = json!({ "candidates": candidates }).to_string();
    let file = repo.aux.join("answer.json");
    std::fs::write(&file, answer).unwrap();
    repo.script(
        "planner.sh",
        &format!(
            "cat > /dev/null\necho 'looking at the repository'\ncat '{}'",
            file.display()
        ),
    )
}

fn candidate(verify: &str, scope: &[&str]) -> Value {
    json!({"goal": "fix it", "mode": "fix", "scope": scope, "metric": "failures",
           "direction": "lower", "verify": verify, "guard": null})
}

#[test]
fn bad_candidates_are_rejected_with_their_reasons_and_never_written() {
    let repo = fixture_repo("python");
    repo.write("count.sh", "echo 2\n");
    repo.git(&["add", "count.sh"]);
    repo.git(&["commit", "-q", "-m", "count"]);
    // Not listed verbatim: the evaluator count.sh is protected, so the scope has nothing left.
    let agent = answering_agent(
        &repo,
        json!([
            candidate("echo no number here", &["calc.py"]),
            // The results log under either layout's name.
            candidate(
                "cat research-results.tsv autoresearch-results/results.tsv > /dev/null 2>&1; echo 3",
                &["calc.py"],
            ),
            candidate("sh count.sh", &["*.sh"]),
        ]),
    );
    let before = repo.snapshot();
    let r = plan(
        &repo,
        &[
            "plan",
            "--goal",
            "fix it",
            "--agent",
            "command",
            "--agent-cmd",
            &agent,
            "--json",
            "--write",
        ],
        &[],
    );
    r.expect_code(2);
    let v = json_of(&r);
    assert_eq!(v["chosen"], Value::Null);
    assert_eq!(v["written"], Value::Null);
    let reasons = |i: usize| v["candidates"][i]["reasons"].to_string();
    assert_eq!(v["candidates"][0]["valid"], false);
    assert!(
        reasons(0).contains("verify gives no metric"),
        "{}",
        reasons(0)
    );
    assert!(
        reasons(1).contains("verify opened the engine's own files (")
            && reasons(1).contains("results.tsv"),
        "{}",
        reasons(1)
    );
    // Once, though each of the K verify runs opened them.
    assert_eq!(
        v["candidates"][1]["reasons"].as_array().unwrap().len(),
        1,
        "{}",
        reasons(1)
    );
    assert!(
        reasons(2).contains("every tracked file in --scope *.sh is protected (count.sh)"),
        "{}",
        reasons(2)
    );
    repo.assert_untouched(&before);
    assert!(!repo.exists("autoresearch.toml"));
    // For people: each one with its reason, and nothing written.
    let r = plan(
        &repo,
        &[
            "plan",
            "--goal",
            "fix it",
            "--agent",
            "command",
            "--agent-cmd",
            &agent,
        ],
        &[],
    );
    r.expect_code(2);
    assert_eq!(r.stdout.matches("invalid:").count(), 3, "{}", r.stdout);
    assert!(
        r.stdout.contains("nothing written or launched"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_verify_that_edits_a_count_already_zero_and_a_failing_guard_are_rejected() {
    let repo = fixture_repo("python");
    let mut guarded = candidate("echo 2", &["calc.py"]);
    guarded["guard"] = json!("python3 -m unittest -q");
    let agent = answering_agent(
        &repo,
        json!([
            candidate("echo '# x' >> calc.py; echo 2", &["calc.py"]),
            candidate("echo 0", &["calc.py"]),
            guarded,
        ]),
    );
    let before = repo.snapshot();
    let r = plan(
        &repo,
        &[
            "plan",
            "--goal",
            "fix it",
            "--agent",
            "command",
            "--agent-cmd",
            &agent,
            "--json",
        ],
        &[],
    );
    r.expect_code(2);
    let v = json_of(&r);
    let reasons = |i: usize| v["candidates"][i]["reasons"].to_string();
    assert!(
        reasons(0).contains("verify changed tracked files (calc.py)"),
        "{}",
        reasons(0)
    );
    assert!(
        reasons(1).contains("already 0: nothing to fix"),
        "{}",
        reasons(1)
    );
    assert!(
        reasons(2).contains("the guard fails on the untouched tree"),
        "{}",
        reasons(2)
    );
    assert_eq!(v["candidates"][2]["guard_passed"], false);
    // Measured in the scratch checkout: the user's calc.py is untouched.
    repo.assert_untouched(&before);
}

#[test]
fn a_written_plan_runs_without_run_flags() {
    let repo = fixture_repo("python");
    let r = plan(
        &repo,
        &[
            "plan",
            "--goal",
            "fix the failing tests",
            "--agent",
            "none",
            "--write",
            "--iterations",
            "2",
        ],
        &[],
    );
    r.expect_code(0);
    let toml = repo.read("autoresearch.toml");
    assert!(
        toml.starts_with("# Written by `codex-autoresearch plan` on "),
        "{toml}"
    );
    assert!(
        toml.contains("verify ran 3 times on a clean checkout of"),
        "{toml}"
    );
    // The same plan again rewrites it; other settings need --force.
    repo.write(
        "autoresearch.toml",
        &toml.replace("iterations = 2", "iterations = 9"),
    );
    let again = [
        "plan",
        "--goal",
        "fix the failing tests",
        "--agent",
        "none",
        "--write",
    ];
    let r = plan(&repo, &[&again[..], &["--iterations", "2"]].concat(), &[]);
    r.expect_code(2);
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    plan(
        &repo,
        &[&again[..], &["--iterations", "2", "--force"]].concat(),
        &[],
    )
    .expect_code(0);
    // The agent is the user's choice; everything else comes from the file.
    let fixer = repo.script("fixer.sh", "sed -i 's/a - b/a + b/' calc.py\necho fix add");
    let r = repo.run(&["run", "--agent", "command", "--agent-cmd", &fixer]);
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep"], "{}", r.stderr);
    assert!(repo.read("calc.py").contains("a + b"));
}

#[test]
fn codex_proposes_candidates_through_the_output_schema() {
    let Some(bin) = codex_bin() else {
        return;
    };
    let repo = fixture_repo("python");
    let verify = "python3 -m unittest 2>&1 | awk '/^(FAIL|ERROR): / { n++ } END { print n + 0 }'";
    let answer = json!({"candidates": [{
        "goal": "fix the failing tests", "mode": "fix", "scope": ["calc.py"],
        "metric": "failures", "direction": "lower", "verify": verify, "guard": null,
        "verify_format": null, "metric_regex": null,
    }]});
    let server = MockServer::start(vec![MockReply::Sse(reply_message(
        &answer.to_string(),
        Some((100, 10)),
    ))]);
    let home = repo.aux.join("codex-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut args: Vec<String> = [
        "plan",
        "--goal",
        "fix the failing tests",
        "--agent",
        "codex",
        "--json",
        "--model",
        MOCK_MODEL,
        "--codex-bin",
    ]
    .map(String::from)
    .to_vec();
    args.push(bin.display().to_string());
    for a in codex_args(&server.base_url()) {
        args.push("--agent-arg".into());
        args.push(a);
    }
    let home_s = home.display().to_string();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = plan(
        &repo,
        &refs,
        &[("CODEX_HOME", home_s.as_str()), (MOCK_API_KEY_ENV, "dummy")],
    );
    r.expect_code(0);
    let v = json_of(&r);
    assert_eq!(v["candidates"][0]["verify"], verify);
    assert_eq!(v["candidates"][0]["valid"], true, "{v}");
    assert_eq!(v["candidates"][0]["baseline"], 1.0);
    // The request asked for the schema's JSON, with the goal and the profile in the prompt.
    let reqs = server.responses_requests();
    let body = reqs[0].body.to_string();
    assert!(body.contains("json_schema"), "{body}");
    assert!(body.contains("candidates"), "{body}");
    assert!(body.contains("fix the failing tests"), "{body}");
}

/// Points Codex at the mock server through `CODEX_HOME/config.toml` (what `--agent-arg -c ...`
/// does for one command), so that the run `plan --launch` starts uses it too.
fn mock_codex_home(repo: &TestRepo, server: &MockServer) -> PathBuf {
    let home = repo.aux.join("codex-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut config = String::new();
    for pair in codex_args(&server.base_url()).chunks(2) {
        if pair[0] == "-c" {
            let (key, value) = pair[1].split_once('=').unwrap();
            config.push_str(&format!("{key} = {value}\n"));
        }
    }
    config.push_str("[features]\nunbounded_connection_retries = false\n");
    std::fs::write(home.join("config.toml"), config).unwrap();
    home
}

/// `plan --agent codex <flag> --iterations 3` on the Python fixture, Codex answering from the
/// mock: the plan, then (in the run) a patch that fixes the bug. `None`: no Codex CLI.
fn plan_and_launch(flag: &str) -> Option<(TestRepo, Run, MockServer)> {
    let bin = codex_bin()?;
    let repo = fixture_repo("python");
    let verify = "python3 -m unittest 2>&1 | awk '/^(FAIL|ERROR): / { n++ } END { print n + 0 }'";
    let answer = json!({"candidates": [{
        "goal": "fix the failing tests", "mode": "fix", "scope": ["calc.py"],
        "metric": "failures", "direction": "lower", "verify": verify, "guard": null,
        "verify_format": null, "metric_regex": null,
    }]});
    let fix = "*** Begin Patch\n*** Update File: calc.py\n@@\n-    return a - b\n+    return a + b\n*** End Patch\n";
    let server = MockServer::start(vec![
        MockReply::Sse(reply_message(&answer.to_string(), Some((100, 10)))),
        MockReply::Sse(reply_patch("p1", fix)),
        MockReply::Sse(reply_message(
            "Add instead of subtracting.",
            Some((100, 10)),
        )),
    ]);
    let home = mock_codex_home(&repo, &server);
    let (home_s, bin_s) = (home.display().to_string(), bin.display().to_string());
    let r = plan(
        &repo,
        &[
            "plan",
            "--goal",
            "fix the failing tests",
            "--agent",
            "codex",
            "--model",
            MOCK_MODEL,
            flag,
            "--iterations",
            "3",
        ],
        &[
            ("CODEX_HOME", home_s.as_str()),
            (MOCK_API_KEY_ENV, "dummy"),
            ("CODEX_BIN", bin_s.as_str()),
        ],
    );
    Some((repo, r, server))
}

#[test]
fn launch_writes_the_plan_and_runs_it_with_the_planning_agent() {
    let Some((repo, r, _server)) = plan_and_launch("--launch") else {
        return;
    };
    r.expect_code(0);
    assert!(
        r.stdout.contains("1. (chosen) fix failures lower"),
        "{}",
        r.stdout
    );
    let toml = repo.read("autoresearch.toml");
    assert!(
        toml.contains("agent = \"codex\"") && toml.contains("iterations = 3"),
        "{toml}"
    );
    // The run took the plan: its baseline counted the failing test, Codex's fix was kept, and
    // the count reached 0 (fix mode's goal).
    assert_eq!(repo.statuses(), ["baseline", "keep"], "{}", r.stderr);
    assert!(repo.read("calc.py").contains("a + b"));
}

#[test]
fn launch_detached_starts_the_plan_as_launch_does() {
    let Some((repo, r, _server)) = plan_and_launch("--launch-detached") else {
        return;
    };
    r.expect_code(0);
    assert!(
        r.stdout.contains("launched run "),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    wait_for("the detached run to end", || {
        let s = repo.run(&["status", "--json"]);
        let v: Value = serde_json::from_str(s.stdout.trim()).unwrap_or(Value::Null);
        v["running"] == false && v["ended"].is_object()
    });
    assert_eq!(repo.statuses(), ["baseline", "keep"]);
}
