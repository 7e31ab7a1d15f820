//! The debug mode (GUIDE "Debug mode"): scripted findings through the command agent against the
//! off-by-one fixture (tests/fixtures/debug), checked by the engine: confirmed by a failing
//! repro, [UNFOUNDED] when the cited lines are not there, [UNCONFIRMED] when the repro passes,
//! merged when repeated; instrumentation rolled back and kept under a trial ref; `--fix`.

use serde_json::{Value, json};

use crate::support::TestRepo;

const CALC: &str = include_str!("../fixtures/debug/calc.py");
const TEST: &str = include_str!("../fixtures/debug/test_calc.py");

fn fixture() -> TestRepo {
    TestRepo::with_files(&[("calc.py", CALC), ("test_calc.py", TEST)])
}

/// The finding an agent would report about the off-by-one (calc.py lines 7-8).
fn off_by_one(repro: &str) -> Value {
    json!({
        "title": "window_sum drops the last item",
        "severity": "high",
        "locations": [{"path": "calc.py", "start_line": 7, "end_line": 8,
                       "code": "for i in range(k - 1):\n        total += xs[i]"}],
        "evidence": "instrumented loop visits 2 of 3 items",
        "repro": repro,
        "hypothesis": "the loop bound is one short",
        "verdict": "confirmed",
        "root_cause": "range(k - 1) stops before index k - 1",
        "suggested_fix": "use range(k)"
    })
}

/// An agent that saves each prompt and answers iteration N with `answers[N-1]` (a shell
/// snippet run before it, then the finding as its last line).
fn agent(repo: &TestRepo, answers: &[(&str, Value)]) -> String {
    let mut body = format!(
        "cat > \"{}/prompt-$AUTORESEARCH_ITERATION.md\"\ncase \"$AUTORESEARCH_ITERATION\" in\n",
        repo.aux.display()
    );
    for (n, (snippet, finding)) in answers.iter().enumerate() {
        let line = finding.to_string().replace('\'', r"'\''");
        body.push_str(&format!(
            "  {}) {snippet}\n     echo probing; printf '%s\\n' '{line}' ;;\n",
            n + 1
        ));
    }
    body.push_str("  *) echo idle ;;\nesac\n");
    repo.script("debug-agent.sh", &body)
}

fn debug_args(agent: &str, iterations: usize, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "run",
        "--mode",
        "debug",
        "--symptom",
        "mean() is too small",
        "--scope",
        "**",
        "--agent",
        "command",
        "--agent-cmd",
        agent,
        "--refine-after",
        "0",
        "--pivot-after",
        "0",
        "--iterations",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push(iterations.to_string());
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn findings(repo: &TestRepo) -> Value {
    let text = std::fs::read_to_string(repo.find_artifact("findings.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_finding_whose_repro_fails_is_confirmed_and_its_instrumentation_kept_under_a_trial_ref() {
    let repo = fixture();
    let a = agent(
        &repo,
        &[(
            // Instrumentation, and a change that hides the bug in the trial: the repro runs on
            // the retained tree, where the bug is.
            "sed -i -e 's/^    total = 0$/    total = 0; print(\"probe\")/' -e 's/range(k - 1)/range(k)/' calc.py;",
            off_by_one("python3 test_calc.py"),
        )],
    );
    repo.run_owned(&debug_args(&a, 1, &[])).expect_code(0);
    let rows = repo.rows();
    assert_eq!(repo.statuses(), ["baseline", "keep"]);
    assert_eq!(crate::support::tsv_num(&rows[0][2]), 0.0);
    assert_eq!(crate::support::tsv_num(&rows[1][2]), 1.0);
    let tag = repo.state()["run_tag"].as_str().unwrap().to_string();
    let trial_ref = format!("refs/autoresearch/{tag}/trial-1");
    assert!(
        rows[1][6].starts_with("[CONFIRMED] high: window_sum drops the last item (calc.py:7-8)")
            && rows[1][6].ends_with(&format!("evidence kept at {trial_ref}")),
        "{}",
        rows[1][6]
    );
    // The instrumentation is rolled back, and kept as evidence.
    assert_eq!(repo.read("calc.py"), CALC);
    assert!(repo.status().is_empty(), "{}", repo.status());
    let kept = repo.git(&["show", &format!("{trial_ref}:calc.py")]);
    assert!(kept.contains("print(\"probe\")"), "{kept}");
    assert!(kept.contains("range(k):"), "{kept}");
    let f = findings(&repo);
    assert_eq!(f["findings"][0]["status"], "confirmed");
    assert_eq!(f["findings"][0]["trial_ref"], trial_ref.as_str());
    assert_eq!(f["findings"][0]["repro_run"]["failed"], true);
    assert_eq!(f["findings"][0]["repro_run"]["exit"], 1);
    let md = std::fs::read_to_string(repo.find_artifact("findings.md")).unwrap();
    assert!(
        md.contains("## #1 window_sum drops the last item — high (confirmed)"),
        "{md}"
    );
    assert!(
        md.contains("`python3 test_calc.py` fails on the retained tree (exit 1)"),
        "{md}"
    );
    // The morning report links the findings report (relative to itself).
    let report = repo.find_artifact("report.md");
    let text = std::fs::read_to_string(&report).unwrap();
    let link = text
        .lines()
        .find_map(|l| l.strip_prefix("- mode report: ["))
        .and_then(|l| l.split(']').next())
        .unwrap_or_else(|| panic!("no mode report line in {text}"));
    assert!(report.parent().unwrap().join(link).is_file(), "{link}");
}

#[test]
fn unfounded_unconfirmed_duplicate_and_disproven_turns_are_discarded_and_fed_back() {
    let repo = fixture();
    let mut unfounded = off_by_one("python3 test_calc.py");
    unfounded["title"] = "made-up lines".into();
    unfounded["locations"][0]["start_line"] = 40.into();
    unfounded["locations"][0]["end_line"] = 41.into();
    let mut passing = off_by_one("python3 -c 'import calc'");
    passing["title"] = "mean divides by zero".into();
    passing["locations"] = json!([{"path": "calc.py", "start_line": 14, "end_line": 14,
        "code": "return window_sum(xs, len(xs)) / len(xs)"}]);
    let mut disproven = off_by_one("true");
    disproven["hypothesis"] = "the input list is mutated".into();
    disproven["verdict"] = "disproven".into();
    let a = agent(
        &repo,
        &[
            (":", off_by_one("python3 test_calc.py")),
            (":", off_by_one("python3 test_calc.py")),
            (":", unfounded),
            (":", passing),
            (":", disproven),
            (":", json!({"title": "t"})),
        ],
    );
    repo.run_owned(&debug_args(&a, 6, &[])).expect_code(0);
    assert_eq!(
        repo.statuses(),
        [
            "baseline", "keep", "discard", "discard", "discard", "discard", "discard"
        ]
    );
    let rows = repo.rows();
    let desc = |n: usize| rows[n][6].clone();
    assert!(desc(2).starts_with("[DUPLICATE]") && desc(2).contains("same as finding #1"));
    assert!(
        desc(3).starts_with("[UNFOUNDED] high: made-up lines (calc.py:40-41)")
            && desc(3).contains("does not exist (calc.py has 14 lines)"),
        "{}",
        desc(3)
    );
    assert!(
        desc(4).starts_with("[UNCONFIRMED] high: mean divides by zero")
            && desc(4).contains("the repro passed (exit 0)"),
        "{}",
        desc(4)
    );
    assert!(desc(5).starts_with("[DISPROVEN] high: the input list is mutated"));
    assert!(desc(6).starts_with("[NO FINDING]") && desc(6).contains("severity"));
    // The metric counts confirmed findings only.
    assert!(
        rows[2..]
            .iter()
            .all(|r| crate::support::tsv_num(&r[2]) == 1.0)
    );
    let f = findings(&repo);
    let all = f["findings"].as_array().unwrap();
    assert_eq!(all.len(), 2, "{f}");
    assert_eq!(all[0]["also_in"], json!([2]));
    assert_eq!(all[1]["status"], "unconfirmed");
    let eliminated = std::fs::read_to_string(repo.find_artifact("eliminated.md")).unwrap();
    assert!(eliminated.contains("iteration 5 [DISPROVEN] the input list is mutated"));
    // The last prompt tells the agent what was tried, so none is tested twice.
    let prompt = repo.aux_read("prompt-6.md");
    assert!(prompt.contains("Symptom\nmean() is too small"), "{prompt}");
    assert!(!prompt.contains("{{"), "a placeholder is left: {prompt}");
    assert!(prompt.contains("- #1 confirmed high: window_sum drops the last item (calc.py:7-8)"));
    assert!(prompt.contains("iteration 5 [DISPROVEN] the input list is mutated"));
    assert!(prompt.contains("iteration 3 [UNFOUNDED]"));
    // status counts the findings by severity.
    let status = repo.run(&["status"]);
    assert!(
        status
            .stdout
            .contains("findings: 2 validated (1 confirmed): 2 high"),
        "{}",
        status.stdout
    );
    let json: Value = serde_json::from_str(&repo.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(json["run"]["findings"]["by_severity"]["high"], 2);
}

#[test]
fn a_finding_citing_an_absolute_or_dot_slash_path_in_the_repository_counts() {
    let repo = fixture();
    let mut absolute = off_by_one("python3 test_calc.py");
    absolute["locations"][0]["path"] = repo.root.join("calc.py").display().to_string().into();
    let mut dotted = off_by_one("python3 test_calc.py");
    dotted["locations"][0]["path"] = "./calc.py".into();
    let a = agent(&repo, &[(":", absolute), (":", dotted)]);
    repo.run_owned(&debug_args(&a, 2, &[])).expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep", "discard"]);
    let rows = repo.rows();
    assert!(
        rows[1][6].starts_with("[CONFIRMED] high: window_sum drops the last item (calc.py:7-8)"),
        "{}",
        rows[1][6]
    );
    assert!(rows[2][6].starts_with("[DUPLICATE]"), "{}", rows[2][6]);
    // Stored relative, as the SARIF and the reports name it.
    assert_eq!(
        findings(&repo)["findings"][0]["finding"]["locations"][0]["path"],
        "calc.py"
    );
}

#[test]
fn debug_needs_a_symptom() {
    let repo = fixture();
    let r = repo.run(&[
        "run",
        "--mode",
        "debug",
        "--scope",
        "**",
        "--agent",
        "command",
        "--agent-cmd",
        "true",
    ]);
    r.expect_code(2);
    assert!(
        r.stderr.contains("--mode debug needs --symptom TEXT"),
        "{}",
        r.stderr
    );
}

#[test]
fn debug_fix_continues_with_a_fix_run_that_drives_the_failing_repros_to_zero() {
    let repo = fixture();
    // The hunt (mode debug) confirms the off-by-one; the fix run (mode fix) corrects it.
    let body = format!(
        "cat > /dev/null\nif [ \"$AUTORESEARCH_MODE\" = fix ]; then\n  sed -i 's/range(k - 1)/range(k)/' calc.py; echo 'use range(k)'; exit 0\nfi\nprintf '%s\\n' '{}'\n",
        off_by_one("python3 test_calc.py")
            .to_string()
            .replace('\'', r"'\''")
    );
    let a = repo.script("fixing-agent.sh", &body);
    let r = repo.run_owned(&debug_args(
        &a,
        1,
        &["--fix", "--guard", "python3 -c 'import calc'"],
    ));
    r.expect_code(0);
    assert!(
        r.stdout.contains("goal reached: failing_repros reached 0"),
        "{}",
        r.stdout
    );
    // The log is the fix run's (the hunt's is archived): failing repros 1 -> 0.
    let rows = repo.rows();
    assert_eq!(repo.statuses(), ["baseline", "keep"]);
    assert_eq!(crate::support::tsv_num(&rows[0][2]), 1.0);
    assert_eq!(crate::support::tsv_num(&rows[1][2]), 0.0);
    assert_eq!(rows[1][4], "pass", "the user's guard runs in the fix run");
    assert_eq!(repo.state()["mode"], "fix");
    assert!(repo.read("calc.py").contains("range(k):"));
    // The finding is linked to the commit that fixed it.
    let f = findings(&repo);
    let fixed = f["findings"][0]["fixed_by"].as_str().unwrap().to_string();
    assert!(fixed.starts_with(&rows[1][1]), "{fixed} vs {}", rows[1][1]);
    let md = std::fs::read_to_string(repo.find_artifact("findings.md")).unwrap();
    assert!(md.contains(&format!("**Fixed by:** {fixed}")), "{md}");
}

#[test]
fn a_finding_through_the_real_codex_cli_and_its_output_schema_is_confirmed() {
    use crate::mock_responses::*;
    let Some(bin) = crate::codex::codex_bin() else {
        return;
    };
    let repo = fixture();
    let answer = off_by_one("python3 test_calc.py").to_string();
    let server = MockServer::start(vec![MockReply::Sse(reply_message(&answer, Some((50, 5))))]);
    let home = repo.aux.join("codex-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut args: Vec<String> = [
        "run",
        "--mode",
        "debug",
        "--symptom",
        "mean() is too small",
        "--scope",
        "**",
        "--agent",
        "codex",
        "--model",
        MOCK_MODEL,
        "--iterations",
        "1",
        "--agent-timeout",
        "120s",
        "--agent-idle-timeout",
        "60s",
        "--codex-bin",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(bin.display().to_string());
    for a in codex_args(&server.base_url()) {
        args.push("--agent-arg".into());
        args.push(a);
    }
    let mut cmd = repo.cmd();
    cmd.env("CODEX_HOME", &home).env(MOCK_API_KEY_ENV, "dummy");
    let r: crate::support::Run = cmd.args(&args).output().unwrap().into();
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep"]);
    let rows = repo.rows();
    assert!(rows[1][6].starts_with("[CONFIRMED] high: window_sum drops the last item"));
    assert_eq!(findings(&repo)["findings"][0]["status"], "confirmed");
    // Codex was given the finding schema: the model request asks for that JSON shape.
    let reqs = server.responses_requests();
    let format = &reqs[0].body["text"]["format"];
    assert_eq!(format["type"], "json_schema", "{}", reqs[0].body);
    let props = &format["schema"]["properties"];
    assert!(
        props["verdict"].is_object() && props["locations"].is_object(),
        "{format}"
    );
}
