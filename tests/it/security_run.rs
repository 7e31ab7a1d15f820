//! Security mode end to end (GUIDE "Security mode"): the webapp fixture's scripted findings
//! through the command agent and the real Codex CLI, checked by the engine (confirmed,
//! [UNFOUNDED], [UNCONFIRMED], merged duplicates, "examined, clean" turns), the coverage score,
//! `coverage.md` and `security.sarif` from the run, `status`, `exec --fail-on` exit codes,
//! `--diff` in a run, and `--fix` driving the SQL injection's repro to passing (a fix that adds a
//! suppression or deletes a repro discarded; exec's exit gating the findings left unfixed).

use serde_json::Value;

use crate::support::{TestRepo, tsv_num};

const APP: &str = include_str!("../fixtures/security/webapp/app.py");
const SQLI_REPRO: &str = include_str!("../fixtures/security/webapp/repro/sqli.py");
const TRAVERSAL_REPRO: &str = include_str!("../fixtures/security/webapp/repro/traversal.py");
const INDEX: &str = include_str!("../fixtures/security/webapp/static/index.html");

/// The scripted agent outputs of the fixture (one JSON object each).
fn scripted(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/security/webapp/findings/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).unwrap().trim().to_string()
}

fn webapp() -> TestRepo {
    TestRepo::with_files(&[
        ("app.py", APP),
        ("repro/sqli.py", SQLI_REPRO),
        ("repro/traversal.py", TRAVERSAL_REPRO),
        ("static/index.html", INDEX),
    ])
}

/// An agent that saves each prompt and answers iteration N with the fixture output
/// `answers[N-1]` on its last line; in the fix run that follows `--fix`, it parameterises the
/// query (the SQL injection's fix).
fn agent(repo: &TestRepo, answers: &[&str]) -> String {
    fixing_agent(repo, answers, &[])
}

/// [`agent`], whose fix run's turn N first runs `turns[N-1]` (shell; `$FIX` parameterises the
/// query) and stops there; later turns parameterise the query.
fn fixing_agent(repo: &TestRepo, answers: &[&str], turns: &[&str]) -> String {
    let fix = repo.aux.join("fix.py");
    std::fs::write(
        &fix,
        "s = open('app.py').read()\n\
         s = s.replace(\"\\\"SELECT name, email FROM users WHERE name = '\\\" + name + \\\"'\\\"\", \"'SELECT name, email FROM users WHERE name = ?'\")\n\
         s = s.replace('db.execute(query).fetchall()', 'db.execute(query, (name,)).fetchall()')\n\
         open('app.py', 'w').write(s)\n",
    )
    .unwrap();
    let mut fix_turns = String::new();
    for (n, t) in turns.iter().enumerate() {
        fix_turns.push_str(&format!("    {}) {t}; exit 0 ;;\n", n + 1));
    }
    let mut body = format!(
        "if [ \"$AUTORESEARCH_MODE\" = fix ]; then\n  FIX=\"python3 {fix}\"\n  cat > \"{aux}/fix-prompt.md\"\n  cp \"{aux}/fix-prompt.md\" \"{aux}/fix-prompt-$AUTORESEARCH_ITERATION.md\"\n  case \"$AUTORESEARCH_ITERATION\" in\n{fix_turns}  esac\n  python3 {fix}; echo 'parameterised the query'; exit 0\nfi\n\
         cat > \"{aux}/prompt-$AUTORESEARCH_ITERATION.md\"\ncase \"$AUTORESEARCH_ITERATION\" in\n",
        aux = repo.aux.display(),
        fix = fix.display()
    );
    for (n, name) in answers.iter().enumerate() {
        let line = scripted(name).replace('\'', r"'\''");
        body.push_str(&format!(
            "  {}) echo probing; printf '%s\\n' '{line}' ;;\n",
            n + 1
        ));
    }
    body.push_str("  *) echo idle ;;\nesac\n");
    repo.script("security-agent.sh", &body)
}

fn security_args(cmd: &str, agent: &str, iterations: usize, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        cmd,
        "--mode",
        "security",
        "--goal",
        "audit the web handler",
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

fn read_json(repo: &TestRepo, name: &str) -> Value {
    let text = std::fs::read_to_string(repo.find_artifact(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn sarif_errors(doc: &Value) -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sarif/sarif-2.1.0.json"
    );
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = jsonschema::validator_for(&schema).expect("compile the SARIF schema");
    v.iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

#[test]
fn scripted_findings_are_checked_scored_and_reported() {
    let repo = webapp();
    let a = agent(
        &repo,
        &[
            "sqli",
            "sqli",
            "unfounded",
            "repro-passes",
            "clean",
            "traversal",
        ],
    );
    repo.run_owned(&security_args("run", &a, 6, &["--scope", "**"]))
        .expect_code(0);
    assert_eq!(
        repo.statuses(),
        [
            "baseline", "keep", "discard", "discard", "discard", "discard", "keep"
        ]
    );
    let rows = repo.rows();
    let desc = |n: usize| rows[n][6].clone();
    assert!(
        desc(1).starts_with("[CONFIRMED] high: SQL injection in find_user"),
        "{}",
        desc(1)
    );
    assert!(desc(2).starts_with("[DUPLICATE]") && desc(2).contains("same as finding #1"));
    assert!(
        desc(3).starts_with("[UNFOUNDED] high: SQL injection in delete_user (app.py:90-91)"),
        "{}",
        desc(3)
    );
    assert!(
        desc(4).starts_with("[UNCONFIRMED] high: Injection through the e-mail column")
            && desc(4).contains("the repro passed (exit 0)"),
        "{}",
        desc(4)
    );
    assert!(
        desc(5).starts_with("[NO FINDING]")
            && desc(5).contains(
                "examined, clean: Denial of Service / A05:2021 / request size limits in handle"
            ),
        "{}",
        desc(5)
    );
    // By hand: after `sqli` alone, STRIDE {Information Disclosure} and OWASP {A03}:
    // (1/6) * 35 + (1/10) * 35 + 1 * 2 = 5.833 + 3.5 + 2 = 11.33; the duplicate, the unfounded
    // finding, the unconfirmed one (same categories, not confirmed) and the clean turn leave it;
    // `traversal` adds A01 and a confirmed finding: 5.833 + 7 + 4 = 16.83.
    let metrics: Vec<f64> = rows.iter().map(|r| tsv_num(&r[2])).collect();
    assert_eq!(metrics, [0.0, 11.33, 11.33, 11.33, 11.33, 11.33, 16.83]);
    assert_eq!(repo.state()["state"]["current_metric"], 16.83);

    let f = read_json(&repo, "findings.json");
    let all = f["findings"].as_array().unwrap();
    assert_eq!(all.len(), 3, "{f}");
    assert_eq!(all[0]["also_in"], serde_json::json!([2]));
    assert_eq!(all[1]["status"], "unconfirmed");
    assert_eq!(all[2]["status"], "confirmed");
    assert_eq!(f["examined"][0]["owasp"], "A05:2021");

    let coverage = std::fs::read_to_string(repo.find_artifact("coverage.md")).unwrap();
    assert!(coverage.contains("Score 16.83 = (1/6 STRIDE) * 35 + (2/10 OWASP) * 35"));
    assert!(
        coverage.contains("| Denial of Service | examined, clean |"),
        "{coverage}"
    );
    assert!(coverage.contains("| Information Disclosure | finding |"));
    // The report names the STRIDE category as the agent and coverage.md do.
    let md = std::fs::read_to_string(repo.find_artifact("findings.md")).unwrap();
    assert!(
        md.contains("- **STRIDE:** Information Disclosure\n"),
        "{md}"
    );

    // The SARIF log of the run validates and names the planted lines.
    let sarif = read_json(&repo, "security.sarif");
    let problems = sarif_errors(&sarif);
    assert!(problems.is_empty(), "{problems:#?}\n{sarif:#}");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let at: Vec<(String, String, u64, u64)> = results
        .iter()
        .map(|r| {
            let region = &r["locations"][0]["physicalLocation"];
            (
                r["ruleId"].as_str().unwrap().to_string(),
                region["artifactLocation"]["uri"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                region["region"]["startLine"].as_u64().unwrap(),
                region["region"]["endLine"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        at,
        [
            ("CWE-89".into(), "app.py".into(), 18, 19),
            ("CWE-943".into(), "app.py".into(), 18, 19),
            ("CWE-22".into(), "app.py".into(), 23, 24),
        ]
    );
    assert_eq!(results[0]["level"], "error");

    // The prompt names the lens and what is left to examine, and leaves no placeholder.
    let prompt = repo.aux_read("prompt-6.md");
    assert!(!prompt.contains("{{"), "a placeholder is left: {prompt}");
    assert!(
        prompt.contains("## This turn's lens: external attacker"),
        "{prompt}"
    );
    assert!(
        prompt.contains(
            "Not examined yet: STRIDE: Spoofing, Tampering, Repudiation, Elevation of Privilege;"
        ),
        "{prompt}"
    );
    assert!(prompt.contains("- #1 confirmed high: SQL injection in find_user"));

    // status: counts by severity and the score.
    let status = repo.run(&["status"]);
    assert!(
        status.stdout.contains(
            "findings: 3 validated (2 confirmed): 3 high; coverage score 16.83 (1/6 STRIDE, 2/10 OWASP)"
        ),
        "{}",
        status.stdout
    );
    let json: Value = serde_json::from_str(&repo.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(json["run"]["findings"]["by_severity"]["high"], 3);
    assert_eq!(json["run"]["findings"]["score"], 16.83);
}

#[test]
fn exec_fail_on_exits_1_at_or_above_the_threshold_and_0_below() {
    let repo = webapp();
    let a = agent(&repo, &["sqli"]);
    let high = repo.run_owned(&security_args(
        "exec",
        &a,
        1,
        &["--scope", "**", "--fail-on", "high"],
    ));
    high.expect_code(1);
    // The exit is explained in one line: which findings failed the gate.
    assert!(
        high.stderr
            .lines()
            .any(|l| l.contains("--fail-on high: 1 validated finding(s) at or above high: ")),
        "{}",
        high.stderr
    );
    let critical = repo.run_owned(&security_args(
        "exec",
        &a,
        1,
        &["--scope", "**", "--fail-on", "critical"],
    ));
    critical.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep"]);
}

#[test]
fn a_hunt_whose_turns_all_crash_still_writes_the_reports_its_last_line_names() {
    let repo = webapp();
    let a = repo.script("crash.sh", "exit 3");
    let r = repo.run_owned(&security_args("exec", &a, 1, &["--scope", "**"]));
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "crash"]);
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("findings: 0 validated"));
    let named = line
        .and_then(|l| l.split("report: ").nth(1))
        .unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(std::path::Path::new(named.trim()).is_file(), "{named}");
    // CI uploads the SARIF whatever happened: an empty log, valid against the schema.
    let sarif = read_json(&repo, "security.sarif");
    assert!(sarif_errors(&sarif).is_empty(), "{sarif:#}");
    assert_eq!(sarif["runs"][0]["results"], serde_json::json!([]));
}

#[test]
fn diff_limits_the_scope_of_a_run() {
    let repo = webapp();
    repo.git(&["checkout", "-q", "-b", "pr"]);
    repo.write("app.py", &format!("{APP}\n# reviewed\n"));
    repo.git(&["commit", "-q", "-am", "pr"]);
    let a = agent(&repo, &["sqli"]);
    repo.run_owned(&security_args("run", &a, 1, &["--diff", "main"]))
        .expect_code(0);
    let prompt = repo.aux_read("prompt-1.md");
    assert!(prompt.contains("In scope: `app.py`\n"), "{prompt}");
    assert!(
        prompt.contains("Pull-request review: only the files changed since `main`"),
        "{prompt}"
    );
    assert_eq!(repo.statuses(), ["baseline", "keep"]);
}

#[test]
fn security_fix_drives_the_confirmed_high_findings_repro_to_passing() {
    let repo = webapp();
    let a = agent(&repo, &["sqli", "repro-passes"]);
    let r = repo.run_owned(&security_args("run", &a, 2, &["--scope", "**", "--fix"]));
    r.expect_code(0);
    assert!(
        r.stdout.contains("goal reached: failing_repros reached 0"),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    // The unconfirmed high finding is noted, not fixed.
    assert!(
        r.stderr.contains("finding #2 (Injection through the e-mail column) is not fixed by the engine: its repro passes"),
        "{}",
        r.stderr
    );
    let rows = repo.rows();
    assert_eq!(repo.statuses(), ["baseline", "keep"]);
    assert_eq!(tsv_num(&rows[0][2]), 1.0);
    assert_eq!(tsv_num(&rows[1][2]), 0.0);
    assert_eq!(repo.state()["mode"], "fix");
    assert!(repo.read("app.py").contains("db.execute(query, (name,))"));
    // The fix run's goal carries the security rules.
    let goal = repo.aux_read("fix-prompt.md");
    assert!(goal.contains("never add a suppression"), "{goal}");
    let f = read_json(&repo, "findings.json");
    assert!(
        f["findings"][0]["fixed_by"]
            .as_str()
            .unwrap()
            .starts_with(&rows[1][1])
    );
    assert!(f["findings"][1].get("fixed_by").is_none());
}

#[test]
fn a_fix_that_adds_a_suppression_or_deletes_a_repro_is_discarded_and_the_clean_fix_kept() {
    let repo = webapp();
    // Both cheats also fix the injection: without the rules, the first would be kept.
    let a = fixing_agent(
        &repo,
        &["sqli"],
        &[
            "$FIX; sed -i 's/fetchall()$/fetchall()  # nosec B608/' app.py; echo 'fixed, scanner quiet'",
            "$FIX; rm repro/traversal.py; echo 'fixed, repros tidied'",
        ],
    );
    let r = repo.run_owned(&security_args("run", &a, 3, &["--scope", "**", "--fix"]));
    r.expect_code(0);
    assert_eq!(
        repo.statuses(),
        ["baseline", "discard", "discard", "keep"],
        "{}",
        r.stderr
    );
    let rows = repo.rows();
    assert!(
        rows[1][6].starts_with(
            "[SUPPRESSION] `nosec` added in app.py: return db.execute(query, (name,)).fetchall() # nosec B608 — fixed, scanner quiet"
        ),
        "{}",
        rows[1][6]
    );
    assert!(
        rows[2][6].starts_with(
            "[WEAKENS TESTS] deleted the test file repro/traversal.py — fixed, repros tidied"
        ),
        "{}",
        rows[2][6]
    );
    assert_eq!(tsv_num(&rows[3][2]), 0.0);
    // The agent is told why (the next turn's prompt carries the discard).
    let next = repo.aux_read("fix-prompt-2.md");
    assert!(
        next.contains("[SUPPRESSION] `nosec` added in app.py"),
        "{next}"
    );
    assert!(!repo.read("app.py").contains("nosec"));
    assert!(repo.read("repro/traversal.py").contains("import"));
    let f = read_json(&repo, "findings.json");
    assert!(
        f["findings"][0]["fixed_by"]
            .as_str()
            .unwrap()
            .starts_with(&rows[3][1])
    );
}

#[test]
fn exec_fix_fail_on_gates_the_findings_the_fix_run_left_unfixed() {
    let exec = |answers: &[&str], turns: &[&str], fail_on: &str| {
        let repo = webapp();
        let a = fixing_agent(&repo, answers, turns);
        let n = answers.len();
        let r = repo.run_owned(&security_args(
            "exec",
            &a,
            n,
            &["--scope", "**", "--fix", "--fail-on", fail_on],
        ));
        assert_eq!(repo.state()["mode"], "fix", "{}", r.stderr);
        (r.code, r.stderr)
    };
    // The high finding fixed: nothing at or above high is left.
    let (code, err) = exec(&["sqli"], &[], "high");
    assert_eq!(code, 0, "{err}");
    // Fixed, but the unconfirmed high finding (not a target) is left: 1, though the fix run
    // reached its goal.
    let (code, err) = exec(&["sqli", "repro-passes"], &[], "high");
    assert_eq!(code, 1, "{err}");
    // Not fixed: 1 at high; 0 at critical, though the fix run improved nothing.
    let idle = ["echo 'looked, changed nothing'"];
    let (code, err) = exec(&["sqli"], &idle, "high");
    assert_eq!(code, 1, "{err}");
    let (code, err) = exec(&["sqli"], &idle, "critical");
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_security_finding_through_the_real_codex_cli_and_its_output_schema_is_confirmed() {
    use crate::mock_responses::*;
    let Some(bin) = crate::codex::codex_bin() else {
        return;
    };
    let repo = webapp();
    let mut answer: Value = serde_json::from_str(&scripted("sqli")).unwrap();
    answer["repro_expect"] = Value::Null;
    answer["examined"] = Value::Null;
    answer["clean"] = Value::Null;
    let server = MockServer::start(vec![MockReply::Sse(reply_message(
        &answer.to_string(),
        Some((50, 5)),
    ))]);
    let home = repo.aux.join("codex-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut args: Vec<String> = [
        "run",
        "--mode",
        "security",
        "--goal",
        "audit the web handler",
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
    assert!(
        rows[1][6].starts_with("[CONFIRMED] high: SQL injection in find_user"),
        "{}",
        rows[1][6]
    );
    assert_eq!(tsv_num(&rows[1][2]), 11.33);
    assert_eq!(
        read_json(&repo, "findings.json")["findings"][0]["status"],
        "confirmed"
    );
    // Codex was given the security schema: the threat classification and the clean turn.
    let reqs = server.responses_requests();
    let format = &reqs[0].body["text"]["format"];
    assert_eq!(format["type"], "json_schema", "{}", reqs[0].body);
    let props = &format["schema"]["properties"];
    assert!(
        props["cwe"].is_object() && props["stride"].is_object() && props["examined"].is_object(),
        "{format}"
    );
    assert!(props.get("verdict").is_none(), "{format}");
}
