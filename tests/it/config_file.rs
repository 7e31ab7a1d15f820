//! `autoresearch.toml` (or `--config FILE`): every RUN FLAG has a key, precedence file < env <
//! flag, errors that name the file, the line and the key; `codex-autoresearch config` and its
//! sources; the config file protected from the agent.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

use crate::support::*;

const VERIFY: &str = "sh measure.sh";

/// Writes `lines` as a TOML file and returns, per key as written, its 1-based line.
fn write_toml(path: &Path, lines: &[String]) -> Vec<(String, usize)> {
    std::fs::write(path, lines.join("\n") + "\n").expect("write config");
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let (k, _) = l.split_once(" = ")?;
            Some((k.trim().to_string(), i + 1))
        })
        .collect()
}

/// Runs `config --json` with `args` and `env`; returns the exit code and the parsed object.
fn config_json(repo: &TestRepo, args: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let mut all = vec!["config".to_string(), "--json".to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    let r = repo.run_env(&all, env);
    let v: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("config --json: {e}\n{}\n{}", r.stdout, r.stderr));
    (r.code, v)
}

/// The long flags of `run --help` as TOML keys (snake_case), without `--config` and `--help`.
fn run_flag_keys(repo: &TestRepo) -> BTreeSet<String> {
    let help = repo.run(&["run", "--help"]).expect_code(0).stdout.clone();
    help.lines()
        .filter_map(|l| l.trim_start().strip_prefix("--"))
        .map(|l| l.split([' ', '=']).next().unwrap_or("").replace('-', "_"))
        // `--no-confirm` is the flag of the key `confirm`.
        .map(|k| {
            if k == "no_confirm" {
                "confirm".into()
            } else {
                k
            }
        })
        .filter(|k| !["config", "help", "version"].contains(&k.as_str()))
        .collect()
}

#[test]
fn every_run_flag_has_a_key_in_either_spelling() {
    let repo = number_repo(10);
    let root = repo.root.display().to_string();
    let file = repo.root.join("autoresearch.toml");
    let file_s = file.display().to_string();
    // (key as written, TOML value, value `config --json` shows). Two files, because some keys
    // contradict each other (an agent command only with the command agent, a regex only with
    // the regex format); together they name every key, alternating `-` and `_`.
    let codex: Vec<(&str, &str, Value)> = vec![
        ("repo", "\".\"", Value::Null),
        ("artifacts-dir", "\"out\"", json!(format!("{root}/out"))),
        ("mode", "\"fix\"", json!("fix")),
        ("goal", "\"fewer failures\"", json!("fewer failures")),
        ("scope", "[\"src/**\", \"lib/**\"]", json!("src/**,lib/**")),
        ("metric", "\"failures\"", json!("failures")),
        ("direction", "\"lower\"", json!("lower")),
        ("verify", "\"sh measure.sh\"", json!("sh measure.sh")),
        ("verify-format", "\"metrics-json\"", json!("metrics-json")),
        ("primary_metric_key", "\"failures\"", json!("failures")),
        ("repeat", "3", json!(3)),
        ("guard", "\"true\"", json!("true")),
        ("iterations", "4", json!(4)),
        (
            "stop-condition",
            "\"failures <= 2\"",
            json!("failures <= 2"),
        ),
        ("agent", "\"codex\"", json!("codex")),
        (
            "codex_bin",
            "\"tools/codex\"",
            json!(format!("{root}/tools/codex")),
        ),
        ("claude-bin", "\"/opt/claude\"", json!("/opt/claude")),
        (
            "sandbox",
            "\"danger-full-access\"",
            json!("danger-full-access"),
        ),
        ("model", "\"gpt-5.5\"", json!("gpt-5.5")),
        (
            "agent_arg",
            "[\"-c\", \"model_reasoning_effort=low\"]",
            json!(["-c", "model_reasoning_effort=low"]),
        ),
        ("session", "\"fresh\"", json!("fresh")),
        ("verify_timeout", "\"90s\"", json!("90s")),
        ("agent-timeout", "\"20m\"", json!("20m")),
        ("agent_idle_timeout", "\"5m\"", json!("5m")),
        ("max-quota-wait", "\"2h\"", json!("2h")),
        ("rework", "1", json!(1)),
        ("refine-after", "4", json!(4)),
        ("pivot_after", "6", json!(6)),
        ("max-pivots", "2", json!(2)),
        ("rollback", "\"revert\"", json!("revert")),
        (
            "protect",
            "[\"docs/**\", \"README.md\"]",
            json!("docs/**,README.md"),
        ),
        ("keep-rule", "\"strict\"", json!("strict")),
        ("keep_effort", "\"thorough\"", json!("thorough")),
        ("min-effect", "\"2%\"", json!("2%")),
        ("max_runs", "12", json!(12)),
        ("baseline-runs", "3", json!(3)),
        ("holdout", "\"sh holdout.sh\"", json!("sh holdout.sh")),
        ("holdout_policy", "\"reject\"", json!("reject")),
        ("confirm", "false", json!(false)),
        ("confirm-runs", "6", json!(6)),
        ("max_duration", "\"8h\"", json!("8h")),
        ("until", "\"07:00\"", json!("07:00")),
        ("max-tokens", "500000", json!(500000)),
        ("plateau", "20", json!(20)),
        ("notify", "\"sh notify.sh\"", json!("sh notify.sh")),
        ("run-tag", "\"nightly\"", json!("nightly")),
        ("layout", "\"march\"", json!("march")),
        (
            "acceptance_criteria",
            "\"failures <= 1\"",
            json!(["failures <= 1"]),
        ),
        (
            "required-keep-criteria",
            "[\"failures <= 3\"]",
            json!(["failures <= 3"]),
        ),
        ("required_keep_label", "\"clean\"", json!(["clean"])),
        ("required-stop-label", "[\"done\"]", json!(["done"])),
        ("fresh", "true", json!(true)),
        ("json", "true", json!(true)),
    ];
    let command: Vec<(&str, &str, Value)> = vec![
        ("goal", "\"fewer failures\"", json!("fewer failures")),
        ("scope", "\"src/**\"", json!("src/**")),
        ("metric", "\"failures\"", json!("failures")),
        ("direction", "\"lower\"", json!("lower")),
        ("verify", "\"sh measure.sh\"", json!("sh measure.sh")),
        ("agent", "\"command\"", json!("command")),
        (
            "agent-cmd",
            "\"./agent.sh --fast\"",
            json!("./agent.sh --fast"),
        ),
        ("verify_format", "\"regex\"", json!("regex")),
        (
            "metric-regex",
            "'failures: ([0-9]+)'",
            json!("failures: ([0-9]+)"),
        ),
    ];
    let ship: Vec<(&str, &str, Value)> = vec![
        ("goal", "\"release\"", json!("release")),
        ("scope", "\"src/**\"", json!("src/**")),
        ("mode", "\"ship\"", json!("ship")),
        ("ship-type", "\"generic\"", json!("generic")),
        ("ship_cmd", "\"sh ship.sh\"", json!("sh ship.sh")),
        ("approve-ship", "true", json!(true)),
        ("dry_run", "true", json!(true)),
        ("post-ship", "\"sh smoke.sh\"", json!("sh smoke.sh")),
    ];
    let security: Vec<(&str, &str, Value)> = vec![
        ("goal", "\"audit\"", json!("audit")),
        ("scope", "\"src/**\"", json!("src/**")),
        ("mode", "\"security\"", json!("security")),
        ("focus", "\"uploads\"", json!("uploads")),
        ("diff", "\"HEAD\"", json!("HEAD")),
        ("fail-on", "\"high\"", json!("high")),
        ("fix", "true", json!(true)),
    ];
    let debug: Vec<(&str, &str, Value)> = vec![
        ("scope", "\"src/**\"", json!("src/**")),
        ("mode", "\"debug\"", json!("debug")),
        ("symptom", "\"wrong totals\"", json!("wrong totals")),
        ("repro", "\"sh repro.sh\"", json!("sh repro.sh")),
    ];
    let checklist: Vec<(&str, &str, Value)> = vec![
        ("goal", "\"tasks\"", json!("tasks")),
        ("scope", "\"src/**\"", json!("src/**")),
        ("verify-format", "\"checklist\"", json!("checklist")),
        (
            "checklist",
            "\"TASKS.md\"",
            json!(format!("{root}/TASKS.md")),
        ),
    ];
    let mut covered = BTreeSet::new();
    for keys in [&codex, &command, &ship, &security, &debug, &checklist] {
        let lines: Vec<String> = std::iter::once("# written by the test".to_string())
            .chain(keys.iter().map(|(k, v, _)| format!("{k} = {v}")))
            .collect();
        let at = write_toml(&file, &lines);
        let (code, v) = config_json(&repo, &[], &[]);
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["valid"], true, "{v}");
        assert_eq!(v["file"], file_s.as_str());
        for ((written, _, expected), (_, line)) in keys.iter().zip(&at) {
            let key = written.replace('-', "_");
            let entry = &v["settings"][&key];
            assert_eq!(entry["source"], "file", "{key}: {entry}");
            assert_eq!(entry["file"], file_s.as_str(), "{key}: {entry}");
            assert_eq!(entry["line"], *line, "{key}: {entry}");
            if key == "repo" {
                let p = Path::new(entry["value"].as_str().unwrap()).canonicalize();
                assert_eq!(p.unwrap(), repo.root, "relative to the file: {entry}");
            } else {
                assert_eq!(&entry["value"], expected, "{key}");
            }
            covered.insert(key);
        }
    }
    let flags = run_flag_keys(&repo);
    assert!(flags.len() >= 30, "{flags:?}");
    assert_eq!(covered, flags, "every RUN FLAG is a key (and no more)");
    let (_, v) = config_json(&repo, &[], &[]);
    let shown: BTreeSet<String> = v["settings"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(shown, flags, "`config` shows every key");
}

#[test]
fn a_run_with_no_flags_takes_everything_from_the_file() {
    let repo = TestRepo::with_files(&[
        ("src/value.txt", "10\n"),
        ("measure.sh", "echo \"value: $(cat src/value.txt)\"\n"),
    ]);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo 7 > src/value.txt; echo 'lower to 7'"),
            (2, "echo 9 > src/value.txt; echo 'raise to 9'"),
            (3, "echo 5 > src/value.txt; echo 'lower to 5'"),
        ],
    );
    let marker = repo.aux.join("guard-ran");
    let guard = format!("touch {}", marker.display());
    let lines: Vec<String> = [
        "# CI settings".to_string(),
        "goal = \"lower the number\"".into(),
        "scope = [\"src/**\"]".into(),
        "metric = \"value\"".into(),
        "direction = \"lower\"".into(),
        "verify = \"sh measure.sh\"".into(),
        "verify-format = \"regex\"".into(),
        "metric_regex = 'value: ([0-9]+)'".into(),
        "repeat = 2".into(),
        format!("guard = \"{guard}\""),
        "iterations = 3".into(),
        "stop-condition = \"value <= 0\"".into(),
        "agent = \"command\"".into(),
        format!("agent-cmd = \"{agent}\""),
        "verify_timeout = \"90s\"".into(),
        "agent-timeout = \"5m\"".into(),
        "agent_idle_timeout = \"4m\"".into(),
        "max-quota-wait = \"2m\"".into(),
        "rework = 1".into(),
        "refine-after = 7".into(),
        "pivot_after = 8".into(),
        "max-pivots = 2".into(),
        "rollback = \"revert\"".into(),
        "protect = [\"docs/**\", \"README.md\"]".into(),
        "run_tag = \"from-file\"".into(),
        "session = \"fresh\"".into(),
        "mode = \"loop\"".into(),
        "json = true".into(),
    ]
    .to_vec();
    write_toml(&repo.root.join("autoresearch.toml"), &lines);
    let r = repo.run(&["run"]);
    r.expect_code(0);
    // json = true: JSON lines on stdout.
    let events = r.json_lines();
    assert_eq!(events.first().unwrap()["type"], "run_started");
    assert_eq!(events.last().unwrap()["type"], "run_finished");
    assert_eq!(events.last().unwrap()["run_tag"], "from-file");
    assert_eq!(repo.statuses(), ["baseline", "keep", "discard", "keep"]);
    let rows = repo.rows();
    assert_eq!(rows[1][4], "pass", "the guard from the file ran");
    assert!(marker.exists());
    assert!(
        repo.read("autoresearch-results/results.tsv")
            .contains("# run_tag: from-file\n")
    );
    // repeat = 2; rollback = revert; the trial ref uses the run tag.
    assert!(repo.exists("autoresearch-results/engine/iter-0001/verify-2.log"));
    assert!(
        repo.log()
            .iter()
            .any(|s| s.starts_with("revert: experiment of iteration 2")),
        "{:?}",
        repo.log()
    );
    let refs = repo.git(&["for-each-ref", "--format=%(refname)"]);
    assert!(
        refs.contains("refs/autoresearch/from-file/trial-2"),
        "{refs}"
    );
    let config = &repo.state()["config"];
    for (k, v) in [
        ("goal", json!("lower the number")),
        ("scope", json!("src/**")),
        ("metric", json!("value")),
        ("direction", json!("lower")),
        ("verify", json!("sh measure.sh")),
        ("verify_format", json!("regex")),
        ("metric_regex", json!("value: ([0-9]+)")),
        ("repeat", json!(2)),
        ("guard", json!(guard)),
        ("iterations", json!(3)),
        ("stop_condition", json!("value <= 0")),
        ("agent", json!("command")),
        ("agent_cmd", json!(agent)),
        ("verify_timeout", json!("90s")),
        ("agent_timeout", json!("5m")),
        ("agent_idle_timeout", json!("4m")),
        ("max_quota_wait", json!("2m")),
        ("rework", json!(1)),
        ("refine_after", json!(7)),
        ("pivot_after", json!(8)),
        ("max_pivots", json!(2)),
        ("rollback", json!("revert")),
        ("protect", json!("docs/**,README.md")),
        ("run_tag", json!("from-file")),
        ("session", json!("fresh")),
        ("mode", json!("loop")),
    ] {
        assert_eq!(config[k], v, "state config `{k}`: {config}");
    }
    assert_eq!(repo.read("src/value.txt"), "5\n");
}

#[test]
fn exec_reads_the_config_file_too() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let lines: Vec<String> = vec![
        "goal = \"lower the number\"".into(),
        "scope = \"src/**\"".into(),
        "metric = \"value\"".into(),
        "direction = \"lower\"".into(),
        format!("verify = \"{VERIFY}\""),
        "iterations = 2".into(),
        "agent = \"command\"".into(),
        format!("agent_cmd = \"{agent}\""),
        "json = true".into(),
    ];
    write_toml(&repo.root.join("autoresearch.toml"), &lines);
    let r = repo.run(&["exec"]);
    r.expect_code(0);
    let lines = r.json_lines();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert!(
        lines.iter().all(|v| v.get("type").is_none()),
        "exec keeps its payloads whatever `json` says"
    );
    assert_eq!(lines[2]["status"], "completed");
    assert_eq!(lines[2]["total_iterations"], 2);
    // Without `iterations` anywhere exec refuses (always bounded), naming the file as a place.
    let lines: Vec<String> = std::fs::read_to_string(repo.root.join("autoresearch.toml"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("iterations"))
        .map(str::to_string)
        .collect();
    write_toml(&repo.root.join("autoresearch.toml"), &lines);
    let error = repo
        .run(&["exec"])
        .expect_exec_error(&["missing required field: iterations"]);
    assert!(error.contains("autoresearch.toml"), "{error}");
}

#[test]
fn config_flag_reads_another_file_instead_of_the_repo_one() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    // The repo-root file is broken: reading it would fail.
    repo.write("autoresearch.toml", "bogus_key = 1\n");
    repo.run(&["config"]).expect_refusal(&["bogus_key"]);
    let other = repo.aux.join("ci.toml");
    let lines: Vec<String> = vec![
        "goal = \"lower the number\"".into(),
        "scope = \"src/**\"".into(),
        "metric = \"value\"".into(),
        "direction = \"lower\"".into(),
        format!("verify = \"{VERIFY}\""),
        "iterations = 1".into(),
        "agent = \"command\"".into(),
        format!("agent-cmd = \"{agent}\""),
        "run-tag = \"other-file\"".into(),
    ];
    write_toml(&other, &lines);
    let other_s = other.display().to_string();
    let (code, v) = config_json(&repo, &["--config", &other_s], &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["file"], other_s.as_str());
    assert_eq!(v["settings"]["run_tag"]["file"], other_s.as_str());
    assert_eq!(v["settings"]["run_tag"]["line"], 9);
    repo.run(&["run", "--config", &other_s]).expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep"]);
    assert_eq!(repo.state()["run_tag"], "other-file");
    let r = repo.run(&["exec", "--config", &other_s]);
    r.expect_code(0);
    assert_eq!(r.json_lines().len(), 2);

    // A relative --config is relative to the current directory.
    std::fs::create_dir_all(repo.root.join("ci")).unwrap();
    std::fs::copy(&other, repo.root.join("ci/exec.toml")).unwrap();
    let mut cmd = repo.cmd();
    cmd.current_dir(repo.root.join("ci"))
        .args(["config", "--json", "--config", "exec.toml"]);
    let r: Run = cmd.output().unwrap().into();
    r.expect_code(0);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v["file"],
        repo.root.join("ci/exec.toml").display().to_string()
    );
}

#[test]
fn precedence_is_file_then_environment_then_flag() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let file = repo.root.join("autoresearch.toml");
    let file_s = file.display().to_string();
    let lines: Vec<String> = vec![
        "goal = \"lower the number\"".into(),
        "scope = \"src/**\"".into(),
        "metric = \"file-metric\"".into(),
        "direction = \"lower\"".into(),
        "verify = \"sh file.sh\"".into(),
        "iterations = 5".into(),
        "agent = \"command\"".into(),
        format!("agent-cmd = \"{agent}\""),
        "refine-after = 7".into(),
    ];
    write_toml(&file, &lines);
    let env = [
        ("AUTORESEARCH_METRIC", "value"),
        ("AUTORESEARCH_VERIFY", "sh env.sh"),
        ("AUTORESEARCH_ITERATIONS", "3"),
        ("AUTORESEARCH_GUARD", "true"),
    ];
    let (code, v) = config_json(&repo, &["--verify", VERIFY, "--rework", "4"], &env);
    assert_eq!(code, 0, "{v}");
    let s = &v["settings"];
    let expect_file = |k: &str, line: usize, value: Value| {
        assert_eq!(s[k]["source"], "file", "{k}: {}", s[k]);
        assert_eq!(s[k]["file"], file_s.as_str(), "{k}");
        assert_eq!(s[k]["line"], line, "{k}");
        assert_eq!(s[k]["value"], value, "{k}");
    };
    expect_file("goal", 1, json!("lower the number"));
    expect_file("direction", 4, json!("lower"));
    expect_file("refine_after", 9, json!(7));
    for (k, var, value) in [
        ("metric", "AUTORESEARCH_METRIC", json!("value")),
        ("iterations", "AUTORESEARCH_ITERATIONS", json!(3)),
        ("guard", "AUTORESEARCH_GUARD", json!("true")),
    ] {
        assert_eq!(s[k]["source"], "environment", "{k}: {}", s[k]);
        assert_eq!(s[k]["variable"], var, "{k}");
        assert_eq!(s[k]["value"], value, "{k}");
    }
    for (k, value) in [("verify", json!(VERIFY)), ("rework", json!(4))] {
        assert_eq!(s[k]["source"], "flag", "{k}: {}", s[k]);
        assert_eq!(s[k]["value"], value, "{k}");
    }
    for (k, value) in [
        ("pivot_after", json!(5)),
        ("verify_timeout", json!("10m")),
        ("mode", json!("loop")),
    ] {
        assert_eq!(s[k]["source"], "default", "{k}: {}", s[k]);
        assert_eq!(s[k]["value"], value, "{k}");
    }

    // The same layering drives a run: the variable beats the file (3 iterations, not 5)...
    let run = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["run".to_string(), "--verify".into(), VERIFY.into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        repo.run_env(&args, env)
    };
    run(&[], &env[..1]).expect_code(0);
    assert_eq!(repo.rows().len(), 6, "file: 5 iterations");
    run(&["--fresh"], &env).expect_code(0);
    assert_eq!(repo.rows().len(), 4, "environment: 3 iterations");
    assert_eq!(repo.state()["config"]["guard"], "true");
    // ...and the flag beats both.
    run(&["--fresh", "--iterations", "1"], &env).expect_code(0);
    assert_eq!(repo.rows().len(), 2, "flag: 1 iteration");
    assert_eq!(repo.state()["config"]["refine_after"], 7);
    assert_eq!(repo.state()["config"]["metric"], "value");
}

/// A configuration that is valid except for `extra` (key lines appended after line 7).
fn base_lines(agent: &str) -> Vec<String> {
    vec![
        "goal = \"lower the number\"".into(),
        "scope = \"src/**\"".into(),
        "metric = \"value\"".into(),
        "direction = \"lower\"".into(),
        format!("verify = \"{VERIFY}\""),
        "agent = \"command\"".into(),
        format!("agent-cmd = \"{agent}\""),
    ]
}

/// Checks that `text` as the repo-root file makes `run`, `exec` and `config` fail with exit 2,
/// one error naming the file, `line N` and every needle, and that nothing is created.
#[track_caller]
fn rejects_file(repo: &TestRepo, text: &str, line: usize, needles: &[&str]) {
    let file = repo.root.join("autoresearch.toml");
    std::fs::write(&file, text).unwrap();
    let file_s = file.display().to_string();
    let at = format!("line {line}");
    let before = repo.snapshot();
    let r = repo.run(&["run", "--iterations", "1"]);
    let l = r.expect_one_error_line();
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    for n in [file_s.as_str(), at.as_str()].iter().chain(needles) {
        assert!(l.contains(n), "`{n}` missing from: {l}\n(file:\n{text})");
    }
    let e = repo
        .run(&["exec", "--iterations", "1"])
        .expect_exec_error(&[&file_s, &at]);
    for n in needles {
        assert!(e.contains(n), "exec: `{n}` missing from: {e}");
    }
    let r = repo.run(&["config"]);
    let l = r.expect_one_error_line();
    assert!(l.contains(&file_s) && l.contains(&at), "config: {l}");
    repo.assert_untouched(&before);
    assert!(!repo.exists("autoresearch-results"));
}

#[test]
fn file_errors_name_the_file_the_line_and_the_key() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let base = base_lines(&agent).join("\n") + "\n";
    let cases: &[(&str, usize, &[&str])] = &[
        (
            "verfy = \"make\"\n",
            8,
            &["unknown key `verfy`", "did you mean `verify`"],
        ),
        (
            "refine_aftr = 2\n",
            8,
            &["`refine_aftr`", "did you mean `refine_after`"],
        ),
        ("iterations = \"ten\"\n", 8, &["`iterations`", "ten"]),
        ("iterations = 1.5\n", 8, &["`iterations`"]),
        ("verify-timeout = \"5x\"\n", 8, &["`verify-timeout`", "5x"]),
        ("fresh = \"yes\"\n", 8, &["`fresh`"]),
        ("rollback = \"undo\"\n", 8, &["`rollback`", "undo"]),
        ("\n\n[run]\ngoal = \"x\"\n", 10, &["`run`"]),
    ];
    for (tail, line, needles) in cases {
        rejects_file(&repo, &format!("{base}{tail}"), *line, needles);
    }
    // Keys of the base itself, with bad values.
    for (text, line, needles) in [
        (
            "goal = \"x\"\ndirection = \"down\"\n",
            2,
            &["`direction`", "down"][..],
        ),
        ("goal = \"x\"\n\nscope = 3\n", 3, &["`scope`"][..]),
        ("agent = \"gpt\"\n", 1, &["`agent`", "gpt"][..]),
        ("agent-arg = 7\n", 1, &["`agent-arg`"][..]),
        (
            "refine_after = 4\nrefine-after = 9\n",
            2,
            &["`refine-after` sets the same setting as `refine_after` on line 1"][..],
        ),
        (
            "refine-after = 4\ngoal = \"x\"\nrefine_after = 9\n",
            3,
            &["`refine_after` sets the same setting as `refine-after` on line 1"][..],
        ),
    ] {
        rejects_file(&repo, text, line, needles);
    }
}

#[test]
fn toml_syntax_errors_name_the_file_and_the_line() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let base = base_lines(&agent).join("\n") + "\n";
    for (tail, line) in [
        ("iterations = \n", 8),
        ("goal = \"unterminated\n", 8),
        ("goal = \"again\"\n", 8),
        ("\nprotect = [\"docs/**\"\n", 9),
    ] {
        rejects_file(&repo, &format!("{base}{tail}"), line, &[]);
    }
}

#[test]
fn bad_values_checked_after_merging_name_the_file_and_the_line() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let base = base_lines(&agent).join("\n") + "\n";
    for (tail, key) in [
        ("stop_condition = \"when happy\"\n", "stop_condition"),
        ("stop-condition = \"when happy\"\n", "stop-condition"),
        ("iterations = 0\n", "iterations"),
        ("run_tag = \"bad tag\"\n", "run_tag"),
        ("repeat = 0\n", "repeat"),
        ("agent-timeout = \"0s\"\n", "agent-timeout"),
        ("mode = \"debug\"\n", "mode"),
    ] {
        rejects_file(&repo, &format!("{base}{tail}"), 8, &[&format!("`{key}`")]);
    }
}

#[test]
fn a_missing_config_flag_file_is_an_error() {
    let repo = number_repo(10);
    let missing = repo.aux.join("nope.toml");
    let m = missing.display().to_string();
    let before = repo.snapshot();
    for cmd in ["run", "config"] {
        repo.run(&[cmd, "--config", &m]).expect_refusal(&[&m]);
    }
    repo.run(&["exec", "--config", &m])
        .expect_exec_error(&[&m, "--config"]);
    repo.assert_untouched(&before);
}

#[test]
fn config_lists_every_key_with_its_value_and_source() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let file = repo.root.join("autoresearch.toml");
    write_toml(&file, &base_lines(&agent));
    let r = repo.run_env(
        &["config".to_string(), "--iterations".into(), "4".into()],
        &[("AUTORESEARCH_GUARD", "true")],
    );
    r.expect_code(0);
    assert_eq!(r.stderr, "");
    let out = &r.stdout;
    assert!(
        out.contains(&format!("config file: {}", file.display())),
        "{out}"
    );
    let line_of = |key: &str| -> &str {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no line for `{key}`:\n{out}"))
    };
    for key in run_flag_keys(&repo) {
        line_of(&key);
    }
    let goal = line_of("goal");
    assert!(goal.contains("lower the number"), "{goal}");
    assert!(
        goal.ends_with(&format!("file {}:1", file.display())),
        "{goal}"
    );
    assert!(line_of("agent_cmd").contains(&agent));
    let guard = line_of("guard");
    assert!(guard.ends_with("environment AUTORESEARCH_GUARD"), "{guard}");
    let iterations = line_of("iterations");
    assert!(
        iterations.contains(" 4 ") && iterations.ends_with("flag"),
        "{iterations}"
    );
    let timeout = line_of("verify_timeout");
    assert!(
        timeout.contains("10m") && timeout.ends_with("default"),
        "{timeout}"
    );
    let model = line_of("model");
    assert!(model.contains(" - ") && model.ends_with("unset"), "{model}");
    assert!(
        !repo.exists("autoresearch-results"),
        "config writes nothing"
    );
    assert!(!repo.exists("autoresearch-results/results.tsv"));
}

#[test]
fn config_with_an_invalid_result_prints_the_table_and_exits_2() {
    let repo = number_repo(10);
    let r = repo.run(&["config", "--metric", "value"]);
    r.expect_code(2);
    for key in run_flag_keys(&repo) {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.split_whitespace().next() == Some(&key)),
            "`{key}` missing:\n{}",
            r.stdout
        );
    }
    let l = r.expect_one_error_line();
    assert!(l.contains("missing required field: goal"), "{l}");
    let (code, v) = config_json(&repo, &["--metric", "value"], &[]);
    assert_eq!(code, 2);
    assert_eq!(v["valid"], false);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("missing required field: goal"),
        "{v}"
    );
    assert_eq!(v["settings"]["metric"]["source"], "flag");
    assert_eq!(v["file"], Value::Null);
    assert!(!repo.exists("autoresearch-results"));
}

#[test]
fn config_shows_resumed_values_of_an_existing_run() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    repo.run_owned(&TestRepo::loop_args(
        VERIFY,
        &agent,
        &["--iterations", "1", "--refine-after", "6"],
    ))
    .expect_code(0);
    repo.write("autoresearch.toml", "pivot-after = 9\n");
    let (code, v) = config_json(&repo, &["--iterations", "3"], &[]);
    assert_eq!(code, 0, "{v}");
    let s = &v["settings"];
    for (k, value) in [
        ("goal", json!("lower the number")),
        ("metric", json!("value")),
        ("verify", json!(VERIFY)),
        ("agent_cmd", json!(agent)),
        ("refine_after", json!(6)),
    ] {
        assert_eq!(s[k]["source"], "resumed", "{k}: {}", s[k]);
        assert_eq!(s[k]["value"], value, "{k}");
    }
    assert_eq!(
        s["pivot_after"]["source"], "file",
        "the file beats the stored run"
    );
    assert_eq!(s["pivot_after"]["value"], 9);
    assert_eq!(s["iterations"]["source"], "flag");
    assert_eq!(s["iterations"]["value"], 3);
    let human = repo.run(&["config"]).expect_code(0).stdout.clone();
    let goal = human
        .lines()
        .find(|l| l.starts_with("goal "))
        .expect("goal line");
    assert!(goal.ends_with("resumed run"), "{goal}");
    // --fresh ignores the stored run: no goal anywhere, so the result is invalid.
    let (code, v) = config_json(&repo, &["--fresh"], &[]);
    assert_eq!(code, 2);
    assert_ne!(v["settings"]["goal"]["source"], "resumed");
    // A changed goal is refused on resume, and so by config.
    let (code, v) = config_json(&repo, &["--goal", "something else"], &[]);
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["valid"], false);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("--goal differs from the run being resumed"),
        "{v}"
    );
    // exec never resumes: --exec shows no stored values, and what exec itself would say.
    let (code, v) = config_json(&repo, &["--exec", "--iterations", "2"], &[]);
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["command"], "exec");
    assert_ne!(v["settings"]["goal"]["source"], "resumed");
    let r = repo.run(&["config", "--exec"]);
    assert!(
        r.expect_one_error_line()
            .contains("missing required field: iterations"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains("settings of: exec"),
        "the table is printed too"
    );
    let (code, v) = config_json(&repo, &["--exec"], &[]);
    assert_eq!(code, 2, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("missing required field: iterations"),
        "{v}"
    );
    let mut all: Vec<String> = ["config", "--json", "--exec"].map(String::from).to_vec();
    all.extend(
        TestRepo::exec_args(VERIFY, &agent, 2, &[])
            .into_iter()
            .skip(1),
    );
    let r = repo.run_env(&all, &[]);
    r.expect_code(0);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        (v["valid"].clone(), v["settings"]["goal"]["source"].clone()),
        (json!(true), json!("flag"))
    );
}

#[test]
fn the_config_file_is_protected_from_the_agent() {
    let repo = number_repo(10);
    let agent = repo.script(
        "agent.sh",
        "cat > /dev/null\necho 'iterations = 99' >> autoresearch.toml\necho 5 > src/value.txt\necho 'tune the config'",
    );
    let mut lines = base_lines(&agent);
    lines.push("iterations = 1".into());
    write_toml(&repo.root.join("autoresearch.toml"), &lines);
    repo.git(&["add", "autoresearch.toml"]);
    repo.git(&["commit", "-q", "-m", "add the config"]);
    let before = repo.read_bytes("autoresearch.toml");
    repo.run(&["run"]).expect_code(0);
    let rows = repo.rows();
    assert_eq!(rows[1][5], "discard");
    assert!(
        rows[1][6].starts_with("[PROTECTED] autoresearch.toml"),
        "{}",
        rows[1][6]
    );
    assert_eq!(repo.read_bytes("autoresearch.toml"), before);
    assert_eq!(repo.read("src/value.txt"), "10\n");
    assert_eq!(repo.status(), "");

    // A --config file inside the repository is protected the same way.
    let agent = repo.script(
        "agent2.sh",
        "cat > /dev/null\necho '# mine' >> ci/exec.toml\necho 5 > src/value.txt\necho 'tune ci'",
    );
    let mut lines = base_lines(&agent);
    lines.push("iterations = 1".into());
    std::fs::create_dir_all(repo.root.join("ci")).unwrap();
    write_toml(&repo.root.join("ci/exec.toml"), &lines);
    repo.git(&["add", "ci/exec.toml"]);
    repo.git(&["commit", "-q", "-m", "ci config"]);
    let r = repo.run(&["exec", "--config", "ci/exec.toml"]);
    r.expect_code(1);
    let lines = r.json_lines();
    assert!(
        lines[0]["description"]
            .as_str()
            .unwrap()
            .starts_with("[PROTECTED] ci/exec.toml"),
        "{}",
        lines[0]
    );
    assert_eq!(repo.status(), "");
}

#[test]
fn an_untracked_config_file_is_protected_too() {
    let repo = number_repo(10);
    let agent = repo.script(
        "agent.sh",
        "cat > /dev/null\necho 'iterations = 99' >> autoresearch.toml\necho 5 > src/value.txt\necho 'tune the config'",
    );
    let mut lines = base_lines(&agent);
    lines.push("iterations = 1".into());
    write_toml(&repo.root.join("autoresearch.toml"), &lines);
    let before = repo.read_bytes("autoresearch.toml");
    repo.run(&["run"]).expect_code(0);
    let row = &repo.rows()[1];
    assert_eq!(row[5], "discard");
    assert!(
        row[6].starts_with("[PROTECTED] autoresearch.toml"),
        "{}",
        row[6]
    );
    assert_eq!(repo.read_bytes("autoresearch.toml"), before);
}

#[test]
fn an_untracked_config_file_inside_the_scope_does_not_block_the_run() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let mut lines = base_lines(&agent);
    lines[1] = "scope = \"**\"".into();
    lines.push("iterations = 1".into());
    write_toml(&repo.root.join("autoresearch.toml"), &lines);
    repo.run(&["run"]).expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep"]);
    assert!(repo.exists("autoresearch.toml"));
}

#[test]
fn config_places_a_cross_key_problem_at_its_file_line() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let file = repo.root.join("autoresearch.toml");
    let mut lines = base_lines(&agent);
    lines.push("verify-format = \"regex\"".into());
    write_toml(&file, &lines);
    let r = repo.run(&["config"]);
    r.expect_code(2);
    let line = format!("line {}", lines.len());
    assert!(
        r.stderr.contains(&file.display().to_string())
            && r.stderr.contains(&line)
            && r.stderr.contains("`verify-format`"),
        "{}",
        r.stderr
    );
}
