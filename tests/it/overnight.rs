//! The overnight path end to end with the real pinned Codex CLI: `skill install --repo`, then
//! `codex exec '$codex-autoresearch lower the value'` whose scripted model checks the settings
//! with `config --check` and starts the run with one escalated `launch`; Codex exits, the detached run
//! completes its iterations with a second scripted agent, `status` reports the end and `report`
//! writes the summary and the chart. And with approvals bypassed (approval policy `never`), where
//! Codex rejects any escalation request, the skill's fallback: the same launch unescalated.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::codex::codex_bin;
use crate::mock_responses::*;
use crate::support::*;

/// The justification SKILL.md tells Codex to give with the escalated `launch`.
const JUSTIFICATION: &str =
    "Start the codex-autoresearch run in the background; it commits to .git";

/// The run tag `launch` derives from the goal.
const TAG: &str = "lower-the-value";

/// Quotes `s` for a POSIX shell.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Events for an `exec_command` call of `cmd` with extra arguments, then `response.completed`.
fn shell_call(call_id: &str, cmd: &str, extra: Value) -> Vec<Value> {
    let mut args = json!({ "cmd": cmd, "yield_time_ms": 10000 });
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        args[k] = v;
    }
    vec![
        item_done(json!({
            "type": "function_call",
            "call_id": call_id,
            "name": "exec_command",
            "arguments": args.to_string(),
        })),
        completed_event(Some((1000, 20))),
    ]
}

/// The output Codex returned to the model for the tool call `call_id`, from any request.
fn tool_output(requests: &[RecordedRequest], call_id: &str) -> Option<String> {
    requests.iter().flat_map(|r| r.input()).find_map(|item| {
        (item["type"] == "function_call_output" && item["call_id"] == call_id)
            .then(|| item["output"].as_str().unwrap_or_default().to_string())
    })
}

/// The text of every content part of `role` messages in a request's input.
fn texts(r: &RecordedRequest, role: &str) -> Vec<String> {
    r.input()
        .iter()
        .filter(|m| m["role"] == role)
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["text"].as_str().map(str::to_string))
        .collect()
}

/// The `<skill>` block Codex injected on the `$` mention, if any.
fn skill_sent(r: &RecordedRequest) -> Option<String> {
    texts(r, "user")
        .into_iter()
        .find(|t| t.starts_with("<skill>"))
}

/// Everything useful when the flow fails: the model's requests' inputs and the run log.
fn diagnostics(server: &MockServer, repo: &TestRepo, codex: &str) -> String {
    let mut out = format!("--- codex exec\n{codex}\n");
    for (i, r) in server.responses_requests().iter().enumerate() {
        let tail: Vec<String> = r
            .input()
            .iter()
            .rev()
            .take(3)
            .map(Value::to_string)
            .collect();
        out.push_str(&format!(
            "--- request {i}, last input items\n{}\n",
            tail.join("\n")
        ));
    }
    let log = std::fs::read_to_string(repo.root.join("autoresearch-results/engine/run.log"))
        .unwrap_or_else(|e| format!("(no run log: {e})"));
    out.push_str(&format!("--- run.log\n{log}"));
    out
}

/// Runs the real `codex exec '$codex-autoresearch lower the value'` in `repo` against `server`
/// with the approval `mode` flag, the binary's directory first on PATH (also in `~/.profile`: the
/// shell tool runs a login shell, whose /etc/profile resets PATH); returns whether it succeeded
/// and its output. Panics after 90 s.
fn outer_codex(bin: &Path, repo: &TestRepo, server: &MockServer, mode: &str) -> (bool, String) {
    let codex_home = repo.aux.join("codex-home");
    std::fs::create_dir_all(&codex_home).unwrap();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::fs::write(
        repo.aux.join(".profile"),
        format!("PATH=\"{}:$PATH\"\n", bin_dir.display()),
    )
    .unwrap();
    let mut cmd = Command::new(bin);
    hermetic(&mut cmd, &repo.aux);
    cmd.env("PATH", path)
        .args(["exec", "--json", "--ephemeral"])
        .arg(mode)
        .arg("-C")
        .arg(&repo.root)
        .args(["-m", MOCK_MODEL])
        .args(codex_args(&server.base_url()))
        .arg("$codex-autoresearch lower the value")
        .env("CODEX_HOME", &codex_home)
        .env(MOCK_API_KEY_ENV, "dummy")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn codex");
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "codex exec did not finish in 90 s\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A repository with the skill installed, and the RUN FLAGS (shell-quoted) of a run of
/// `iterations` whose command agent lowers the value by one per turn after a second.
fn setup(iterations: u32) -> (TestRepo, String) {
    let repo = number_repo(10);
    repo.run(&["skill", "install", "--repo"]).expect_code(0);
    // The second agent, the one the run drives: slow enough that the run outlives the outer Codex.
    let agent = repo.script(
        "lower.sh",
        "cat > /dev/null\nsleep 1\nv=$(cat src/value.txt)\necho $((v - 1)) > src/value.txt\necho \"lower to $((v - 1))\"",
    );
    let iterations = iterations.to_string();
    let flags = [
        "--goal",
        "lower the value",
        "--scope",
        "src/**",
        "--metric",
        "value",
        "--direction",
        "lower",
        "--verify",
        "sh measure.sh",
        "--agent",
        "command",
        "--agent-cmd",
        &agent,
        "--keep-rule",
        "strict",
        "--iterations",
        &iterations,
    ]
    .map(sh_quote)
    .join(" ");
    (repo, flags)
}

/// The automatic reviewer's answer (`--approve-for-me`): it stands in for the user approving
/// the escalation once.
const APPROVE: &str = r#"{"risk_level":"low","user_authorization":"high","outcome":"allow","rationale":"the user asked for this run"}"#;

/// True when `r` is Codex's automatic approval review (its answer follows a JSON schema with an
/// `outcome`).
fn is_review(r: &RecordedRequest) -> bool {
    r.body["text"]["format"]["schema"]["properties"]["outcome"].is_object()
}

/// Polls `status --json` until the run has ended (no process runs it and an end is recorded).
fn wait_ended(repo: &TestRepo, context: &dyn Fn() -> String) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = repo.run(&["status", "--json"]);
        let v: Value = serde_json::from_str(r.stdout.trim()).unwrap_or(Value::Null);
        if r.code == 0 && v["running"] == false && v["ended"].is_object() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "the detached run did not end in 60 s; last status:\n{}\n{}",
            r.stdout,
            context()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `codex exec --approve-for-me`: the `workspace-write` sandbox (so `config` runs where `.git` is
/// read-only) and escalation requests go to Codex's automatic reviewer, a model request to the
/// same scripted server, whose "allow" stands in for the user's one approval.
#[test]
fn overnight_from_codex_skill_launch_detached_status_and_report() {
    let Some(bin) = codex_bin() else { return };
    let (repo, flags) = setup(4);
    let escalate =
        json!({"sandbox_permissions": "require_escalated", "justification": JUSTIFICATION});
    let server = MockServer::start(vec![
        MockReply::Sse(shell_call(
            "call_config",
            &format!("codex-autoresearch config --check {flags}"),
            json!({}),
        )),
        MockReply::Sse(shell_call(
            "call_launch",
            &format!("codex-autoresearch launch {flags}"),
            escalate,
        )),
        MockReply::Sse(reply_message(APPROVE, Some((500, 10)))),
        MockReply::Sse(reply_message(
            &format!("Launched run {TAG}; follow it with `codex-autoresearch status`."),
            Some((1000, 20)),
        )),
    ]);
    let (ok, codex) = outer_codex(&bin, &repo, &server, "--approve-for-me");
    let why = || diagnostics(&server, &repo, &codex);
    assert!(ok, "codex exec failed\n{}", why());
    let requests = server.responses_requests();

    // The skill reached the model on the `$` mention.
    let first = requests
        .first()
        .unwrap_or_else(|| panic!("no model request\n{}", why()));
    let skill_md =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("SKILL.md")).unwrap();
    let skill = skill_sent(first).unwrap_or_else(|| panic!("no skill sent\n{}", why()));
    assert!(
        skill.contains(skill_md.trim_end()),
        "the skill sent is not SKILL.md: {skill}"
    );
    // `config --check` ran in the workspace-write sandbox, validated the settings and measured
    // the baseline; the read-only `.git` there is a note for the launch, not a refusal.
    let config = tool_output(&requests, "call_config")
        .unwrap_or_else(|| panic!("no output of the config call\n{}", why()));
    assert!(
        config.contains("Process exited with code 0")
            && config.contains("ok: lower the value")
            && config.contains("verify: ")
            && config.contains("launch: codex-autoresearch launch "),
        "config --check did not validate the settings: {config}\n{}",
        why()
    );
    // The escalation went to review (standing in for the user), was approved, and launch ran.
    assert!(
        requests
            .iter()
            .any(|r| is_review(r) && r.body.to_string().contains(JUSTIFICATION)),
        "the escalated launch was not reviewed with SKILL.md's justification\n{}",
        why()
    );
    let launched = tool_output(&requests, "call_launch")
        .unwrap_or_else(|| panic!("no output of the launch call\n{}", why()));
    let log = repo.root.join("autoresearch-results/engine/run.log");
    let expected = format!("launched run {TAG} (pid ");
    assert!(
        launched.contains("Process exited with code 0")
            && launched.contains(&expected)
            && launched.contains(&format!("detached; log: {}", log.display())),
        "launch did not report the tag, pid and log: {launched}\n{}",
        why()
    );
    let pid: u32 = launched
        .split(&expected)
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in: {launched}"));

    // The outer Codex has exited; the detached run is still going.
    let live = repo.run(&["status", "--json"]);
    let live: Value = serde_json::from_str(live.stdout.trim()).unwrap_or(Value::Null);
    assert_eq!(
        (live["running"].clone(), live["pid"].clone()),
        (json!(true), json!(pid)),
        "the run did not outlive the outer Codex: {live}\n{}",
        why()
    );
    let ended = wait_ended(&repo, &why);
    assert_eq!(ended["ended"]["reason"], "iterations", "{ended}\n{}", why());
    assert_eq!(ended["ended"]["exit_code"], 0, "{ended}\n{}", why());
    assert_eq!(ended["run"]["iteration"], 4, "{ended}\n{}", why());
    assert_eq!(ended["run"]["counts"]["keep"], 4, "{ended}\n{}", why());
    assert_eq!(ended["run"]["best"], 6.0, "{ended}\n{}", why());

    // The morning: the report, the chart, the log, the kept commits on a clean branch.
    let r = repo.run(&["report", "--json"]);
    r.expect_code(0);
    let report: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    for key in ["report", "svg"] {
        let p = report[key].as_str().unwrap();
        let len = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "{key} {p} is missing or empty");
    }
    assert_eq!(
        (report["iterations"].clone(), report["keeps"].clone()),
        (json!(4), json!(4)),
        "{report}"
    );
    let said = repo.run(&["status"]);
    assert!(
        said.stdout.contains("iteration cap reached"),
        "status does not say how the run ended: {}",
        said.stdout
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("finished: iteration cap reached (4/4)"),
        "{text}"
    );
    assert_eq!(repo.read("src/value.txt"), "6\n");
    assert_eq!(repo.log().len(), 5, "{:?}", repo.log());
    assert_eq!(repo.git(&["branch", "--show-current"]).trim(), "main");
    // Clean: nothing tracked changed, and the skill `skill install --repo` wrote is excluded.
    assert_eq!(repo.status(), "", "the tree is not clean");
}

/// `codex exec --dangerously-bypass-approvals-and-sandbox` (approval policy `never`, no sandbox):
/// Codex rejects an escalation request, says so in the permissions it gives the model, and
/// SKILL.md tells the model to launch without it; the unescalated launch runs the whole run.
#[test]
fn overnight_with_approvals_bypassed_falls_back_to_an_unescalated_launch() {
    let Some(bin) = codex_bin() else { return };
    let (repo, flags) = setup(1);
    let launch = format!("codex-autoresearch launch {flags}");
    let escalate =
        json!({"sandbox_permissions": "require_escalated", "justification": JUSTIFICATION});
    let server = MockServer::start(vec![
        // What SKILL.md alone would have the model do, to show why the fallback is needed.
        MockReply::Sse(shell_call("call_escalated", &launch, escalate)),
        MockReply::Sse(shell_call("call_launch", &launch, json!({}))),
        MockReply::Sse(reply_message(&format!("Launched run {TAG}."), None)),
    ]);
    let (ok, codex) = outer_codex(
        &bin,
        &repo,
        &server,
        "--dangerously-bypass-approvals-and-sandbox",
    );
    let why = || diagnostics(&server, &repo, &codex);
    assert!(ok, "codex exec failed\n{}", why());
    let requests = server.responses_requests();
    let first = requests
        .first()
        .unwrap_or_else(|| panic!("no model request\n{}", why()));
    let permissions = texts(first, "developer").join("\n");
    for told in [
        "Approval policy is currently never",
        "`sandbox_mode` is `danger-full-access`",
    ] {
        assert!(permissions.contains(told), "{told} not in: {permissions}");
    }
    let skill = skill_sent(first).unwrap_or_else(|| panic!("no skill sent\n{}", why()));
    for fallback in [
        "the approval policy is `never`",
        "`danger-full-access`",
        "without those two\nparameters",
    ] {
        assert!(skill.contains(fallback), "SKILL.md lacks {fallback:?}");
    }
    let rejected = tool_output(&requests, "call_escalated").unwrap_or_default();
    assert!(
        rejected.contains("cannot ask for escalated permissions if the approval policy is Never"),
        "the escalation was not rejected: {rejected}"
    );
    let launched = tool_output(&requests, "call_launch").unwrap_or_default();
    assert!(
        launched.contains("Process exited with code 0")
            && launched.contains(&format!("launched run {TAG} (pid ")),
        "the plain launch failed: {launched}\n{}",
        why()
    );
    let ended = wait_ended(&repo, &why);
    assert_eq!(ended["ended"]["reason"], "iterations", "{ended}\n{}", why());
    assert_eq!(repo.statuses(), ["baseline", "keep"], "{}", why());
}
