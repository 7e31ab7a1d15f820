//! Tests of the SARIF writer: the output validates against the vendored SARIF 2.1.0 schema and
//! names the right rules, files, lines and levels.

use super::*;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/security/webapp/findings"
);

fn scripted(name: &str) -> Finding {
    let text = std::fs::read_to_string(format!("{FIXTURE}/{name}.json")).expect("fixture");
    serde_json::from_str(&text).expect("finding")
}

fn validator() -> jsonschema::Validator {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sarif/sarif-2.1.0.json"
    );
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema")).expect("schema json");
    jsonschema::validator_for(&schema).expect("compile the SARIF schema")
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn webapp_findings() -> Vec<Checked> {
    let mut low = scripted("sqli");
    low.severity = Severity::Low;
    low.cwe = Some("cwe89".into());
    low.title = "The same query, through another route".into();
    let mut odd = scripted("traversal");
    odd.cwe = None;
    odd.severity = Severity::Medium;
    odd.locations[0].path = "static dir/ä.py".into();
    vec![
        (scripted("sqli"), true),
        (scripted("traversal"), false),
        (low, true),
        (odd, false),
    ]
}

#[test]
fn the_output_validates_against_the_sarif_2_1_0_schema() {
    let v = validator();
    let log = log(&webapp_findings());
    let problems = errors(&v, &log);
    assert!(problems.is_empty(), "{problems:#?}\n{log:#}");
    assert!(errors(&v, &super::log(&[])).is_empty());
    // The validator does catch a broken log (so the test can fail).
    let mut broken = log.clone();
    broken["runs"][0]["results"][0]["level"] = json!("severe");
    assert!(!errors(&v, &broken).is_empty());
    let mut broken = log;
    broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
        json!(0);
    assert!(!errors(&v, &broken).is_empty());
}

#[test]
fn results_name_the_right_rules_files_lines_and_levels() {
    let log = log(&webapp_findings());
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "codex-autoresearch");
    assert_eq!(run["tool"]["driver"]["version"], env!("CARGO_PKG_VERSION"));
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["CWE-22", "CWE-89", NO_CWE]);
    let r = &run["tool"]["driver"]["rules"];
    assert_eq!(
        r[1]["helpUri"],
        "https://cwe.mitre.org/data/definitions/89.html"
    );
    // The rule takes its most severe finding's level.
    assert_eq!(r[1]["defaultConfiguration"]["level"], "error");
    assert_eq!(r[1]["properties"]["security-severity"], "8.0");
    let results = run["results"].as_array().unwrap();
    let loc = |i: usize| &results[i]["locations"][0]["physicalLocation"];
    assert_eq!(results[0]["ruleId"], "CWE-89");
    assert_eq!(results[0]["ruleIndex"], 1);
    assert_eq!(results[0]["level"], "error");
    assert_eq!(loc(0)["artifactLocation"]["uri"], "app.py");
    assert_eq!(loc(0)["region"]["startLine"], 18);
    assert_eq!(loc(0)["region"]["endLine"], 19);
    assert_eq!(results[0]["properties"]["confirmed"], true);
    assert_eq!(results[0]["properties"]["owasp"], "A03:2021");
    assert_eq!(results[1]["ruleId"], "CWE-22");
    assert_eq!(loc(1)["region"]["startLine"], 23);
    assert_eq!(results[1]["properties"]["confirmed"], false);
    assert_eq!(results[2]["ruleId"], "CWE-89");
    assert_eq!(results[2]["level"], "note");
    assert_eq!(results[3]["ruleId"], NO_CWE);
    assert_eq!(results[3]["level"], "warning");
    assert_eq!(loc(3)["artifactLocation"]["uri"], "static%20dir/%C3%A4.py");
    let text = results[0]["message"]["text"].as_str().unwrap();
    assert!(text.starts_with("SQL injection in find_user"), "{text}");
    assert!(
        text.contains("Mitigation: Use a parameterised query"),
        "{text}"
    );
}

#[test]
fn levels_and_cwe_ids() {
    assert_eq!(level(Severity::Critical), "error");
    assert_eq!(level(Severity::High), "error");
    assert_eq!(level(Severity::Medium), "warning");
    assert_eq!(level(Severity::Low), "note");
    assert_eq!(level(Severity::Info), "note");
    for t in ["CWE-89", "cwe-89", "CWE89", "89", " CWE: 89 "] {
        assert_eq!(cwe_id(t).as_deref(), Some("CWE-89"), "{t}");
    }
    for t in ["", "CWE-", "CWE-x", "SQLi", "CWE-0"] {
        assert_eq!(cwe_id(t), None, "{t}");
    }
}

#[test]
fn write_puts_the_log_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE);
    write(&path, &webapp_findings()[..1]).unwrap();
    let back: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(back["version"], "2.1.0");
    assert_eq!(back["runs"][0]["results"].as_array().unwrap().len(), 1);
}
