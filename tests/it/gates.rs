//! Multi-metric gates (GUIDE "Multi-metric gates"): verify prints a metrics-json object whose
//! other numbers and `labels` the keep gates and the stop gate read; misses are discards tagged
//! as the reference tags them; the gates are stored in the reference's forms.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::*;

const VERIFY: &str = "sh measure.sh";

/// A repository whose verify prints `{"value": V, "failures": F, "labels": [L]}` from
/// `src/value.txt`, `src/failures.txt` and `src/labels.txt` (a JSON list's inside).
fn gated_repo() -> TestRepo {
    TestRepo::with_files(&[
        ("src/value.txt", "10\n"),
        ("src/failures.txt", "0\n"),
        ("src/labels.txt", "\n"),
        (
            "measure.sh",
            "echo 'measuring'\nprintf '{\"value\": %s, \"failures\": %s, \"labels\": [%s]}\\n' \"$(cat src/value.txt)\" \"$(cat src/failures.txt)\" \"$(cat src/labels.txt)\"\n",
        ),
    ])
}

/// An agent step: writes value, failures and labels, then says `desc`.
fn step(value: u32, failures: u32, labels: &str, desc: &str) -> String {
    format!(
        "echo {value} > src/value.txt; echo {failures} > src/failures.txt; echo '{labels}' > src/labels.txt; echo '{desc}'"
    )
}

fn args(extra: &[&str]) -> Vec<String> {
    let mut a = vec!["--verify-format", "metrics-json"];
    a.extend_from_slice(extra);
    a.iter().map(|s| s.to_string()).collect()
}

/// The results log wherever the layout puts it (its metadata lines are checked).
fn results_text(root: &Path) -> String {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if p.is_dir() {
                walk(&p, out);
            } else if p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.ends_with("results.tsv") && !n.contains(".prev")
            }) {
                out.push(p);
            }
        }
    }
    let mut found = Vec::new();
    walk(root, &mut found);
    assert_eq!(found.len(), 1, "{found:?}");
    std::fs::read_to_string(&found[0]).unwrap()
}

#[test]
fn an_improvement_missing_a_keep_criterion_is_discarded_with_the_tag() {
    let repo = gated_repo();
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, &step(7, 2, "", "lower to 7 skipping checks")),
            (2, &step(8, 0, "", "lower to 8")),
        ],
    );
    let extra = args(&[
        "--required-keep-criteria",
        "failures == 0",
        "--iterations",
        "2",
    ]);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    repo.run_loop(VERIFY, &agent, &extra).expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "discard", "keep"]);
    let rows = repo.rows();
    assert_eq!(rows[1][2], "7", "the row shows the trial's metric");
    assert_eq!(
        rows[1][6],
        "lower to 7 skipping checks [KEEP-CRITERIA miss] failures == 0 (actual 2)"
    );
    assert_eq!(rows[2][6], "lower to 8");
    assert_eq!(repo.read("src/value.txt"), "8\n");
    let state = repo.state();
    // The reference's forms: criteria objects in the config, numbers maps in the state.
    assert_eq!(
        state["config"]["required_keep_criteria"],
        json!([{"metric_key": "failures", "operator": "==", "target": 0}])
    );
    assert_eq!(
        state["state"]["current_metrics"],
        json!({"failures": 0, "value": 8})
    );
    assert_eq!(
        state["state"]["last_trial_metrics"],
        json!({"failures": 0, "value": 8})
    );
    assert_eq!(state["state"]["current_required_keep_satisfied"], true);
    assert_eq!(
        state["config"]["verify_format"], "metrics_json",
        "the reference's word"
    );
    let text = results_text(&repo.root);
    assert!(
        text.contains(
            "# required_keep_criteria_json: [{\"metric_key\":\"failures\",\"operator\":\"==\",\"target\":0}]\n"
        ),
        "{text}"
    );
    assert!(text.contains("# verify_format: metrics_json\n"), "{text}");
    // A resume reads the gates back from the stored configuration.
    let r = repo.run(&["run", "--iterations", "3"]);
    r.expect_code(0);
    assert_eq!(repo.statuses().len(), 4);
    let status = repo.run(&["status"]);
    assert!(
        status.stdout.contains("gates: keep needs failures == 0"),
        "{}",
        status.stdout
    );
}

#[test]
fn a_missing_keep_label_discards_and_labels_come_from_the_measurement() {
    let repo = gated_repo();
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            // The agent claims the label; verify does not report it.
            (1, &step(7, 0, "\"fast\"", "[labels: reviewed] lower to 7")),
            (2, &step(6, 0, "\"Reviewed\", \"fast\"", "lower to 6")),
        ],
    );
    let extra = args(&["--required-keep-label", "reviewed", "--iterations", "2"]);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    repo.run_loop(VERIFY, &agent, &extra).expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "discard", "keep"]);
    let rows = repo.rows();
    assert_eq!(
        rows[1][6],
        "[labels: fast] (labels: reviewed) lower to 7 [KEEP-GATE miss] missing required keep labels: reviewed"
    );
    assert_eq!(rows[2][6], "[labels: reviewed, fast] lower to 6");
    let state = repo.state();
    assert_eq!(
        state["state"]["current_labels"],
        json!(["reviewed", "fast"])
    );
    assert_eq!(
        state["state"]["last_trial_labels"],
        json!(["reviewed", "fast"])
    );
    assert_eq!(state["config"]["required_keep_labels"], json!(["reviewed"]));
    assert!(results_text(&repo.root).contains("# required_keep_labels: reviewed\n"));
}

#[test]
fn the_stop_condition_waits_for_the_stop_label() {
    let repo = gated_repo();
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, &step(7, 0, "", "lower to 7")),
            (2, &step(6, 0, "\"shipped\"", "lower to 6")),
            (3, &step(5, 0, "\"shipped\"", "lower to 5")),
        ],
    );
    let extra = args(&[
        "--stop-condition",
        "value <= 7",
        "--required-stop-label",
        "shipped",
        "--acceptance-criteria",
        "failures <= 0",
        "--iterations",
        "5",
    ]);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let r = repo.run_loop(VERIFY, &agent, &extra);
    r.expect_code(0);
    // Met at 7 without the label: the run goes on; stops at 6, labelled.
    assert_eq!(repo.statuses(), ["baseline", "keep", "keep"]);
    let state = repo.state();
    assert_eq!(state["state"]["current_acceptance"], true);
    assert_eq!(state["config"]["required_stop_labels"], json!(["shipped"]));
    let ended = state["engine"]["ended"].to_string();
    assert!(
        ended.contains("value <= 7") && ended.contains("acceptance"),
        "{ended}"
    );
    let status = repo.run(&["status", "--json"]);
    let v: Value = serde_json::from_str(&status.stdout).unwrap();
    let g = &v["run"]["gates"];
    assert_eq!(g["required_stop_labels"], json!(["shipped"]));
    assert_eq!(g["retained_labels"], json!(["shipped"]));
    assert_eq!(g["goal_waits_for"], Value::Null);
}

#[test]
fn gate_flags_are_checked_before_anything_runs() {
    let repo = gated_repo();
    let agent = scripted_agent(&repo, "agent.sh", &[]);
    let r = repo.run_loop(
        VERIFY,
        &agent,
        &[
            "--verify-format",
            "metrics-json",
            "--required-keep-criteria",
            "failures ~ 0",
        ],
    );
    r.expect_code(2);
    let line = r.expect_one_error_line();
    assert!(
        line.contains("--required-keep-criteria: `failures ~ 0`"),
        "{line}"
    );
    let r = repo.run_loop(VERIFY, &agent, &["--required-stop-label", "shipped"]);
    r.expect_code(2);
    let line = r.expect_one_error_line();
    assert!(
        line.contains("--required-stop-label needs --verify-format metrics-json"),
        "{line}"
    );
    assert_eq!(repo.status(), "", "nothing ran");
}

#[test]
fn exec_reports_a_gated_discard_in_its_row_line() {
    let repo = gated_repo();
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, &step(7, 1, "", "lower to 7")),
            (2, &step(8, 0, "", "lower to 8")),
        ],
    );
    let mut a = TestRepo::exec_args(VERIFY, &agent, 2, &[]);
    a.extend(args(&[
        "--required-keep-criteria",
        r#"[{"metric_key":"failures","operator":"<","target":1}]"#,
    ]));
    let r = repo.run_owned(&a);
    r.expect_code(0);
    let lines = r.json_lines();
    assert_eq!(lines[0]["status"], "discard", "{}", r.stdout);
    assert_eq!(
        lines[0]["description"],
        "lower to 7 [KEEP-CRITERIA miss] failures < 1 (actual 1)"
    );
    assert_eq!(lines[1]["status"], "keep");
}
