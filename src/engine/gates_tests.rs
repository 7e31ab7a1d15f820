//! Tests of the multi-metric gates: criteria, labels, readings and the reference's forms.

use super::*;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn reading(pairs: &[(&str, f64)], labels: &[&str]) -> Reading {
    Reading {
        metrics: pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        labels: s(labels),
    }
}

#[test]
fn criteria_parse_in_both_forms_and_refuse_the_rest() {
    let c = parse_criteria(&s(&["coverage >= 80", "failures==0", " p95 < 1.5 "])).unwrap();
    assert_eq!(c.len(), 3);
    assert_eq!(c[0].to_string(), "coverage >= 80");
    assert_eq!((c[1].key.as_str(), c[1].op), ("failures", Op::Eq));
    assert_eq!(c[2].to_string(), "p95 < 1.5");
    let j = parse_criteria(&s(&[
        r#"[{"metric_key":"coverage","operator":">=","target":80},{"metric_key":"f","operator":"<","target":"2"}]"#,
    ]))
    .unwrap();
    assert_eq!(j[0], c[0]);
    assert_eq!(j[1].to_string(), "f < 2");
    for bad in [
        "coverage != 3",
        "coverage = 3",
        ">= 3",
        "coverage >= lots",
        "coverage",
    ] {
        assert!(parse_criteria(&s(&[bad])).is_err(), "{bad}");
    }
    let legacy = parse_criteria(&s(&[r#"[{"metric":"a","op":"<","value":1}]"#])).unwrap_err();
    assert!(legacy.contains("legacy"), "{legacy}");
    assert!(parse_criteria(&s(&[r#"[{"metric_key":"a","operator":"!=","target":1}]"#])).is_err());
}

#[test]
fn parse_errors_name_the_flag() {
    let e = parse_gates(&[], &s(&["x ~ 3"]), &[], &[]).unwrap_err();
    assert!(e.starts_with("--required-keep-criteria: "), "{e}");
    let e = parse_gates(&[], &[], &[], &s(&["Not A Label"])).unwrap_err();
    assert!(e.starts_with("--required-stop-label: "), "{e}");
}

#[test]
fn labels_normalise_like_the_reference() {
    assert_eq!(
        normalize_labels(&["Root-Cause, production-path", "root-cause"]).unwrap(),
        s(&["root-cause", "production-path"])
    );
    assert!(normalize_labels(&["-x"]).is_err());
    assert!(normalize_labels(&["a b"]).is_err());
}

#[test]
fn a_reading_takes_numbers_and_labels_from_the_json() {
    let r = Reading::from_stdout("log line\n{\"score\": 3, \"cov\": 81.5, \"labels\": [\"Fast\", \"safe\"], \"note\": \"x\"}\n").unwrap();
    assert_eq!(
        r,
        reading(&[("score", 3.0), ("cov", 81.5)], &["fast", "safe"])
    );
    let one = Reading::from_stdout(r#"{"score": 1, "labels": "a, b"}"#).unwrap();
    assert_eq!(one.labels, s(&["a", "b"]));
    assert!(Reading::from_stdout(r#"{"labels": [1]}"#).is_err());
    assert!(Reading::from_stdout(r#"{"labels": ["no good"]}"#).is_err());
    assert!(Reading::from_stdout("3").is_err());
}

#[test]
fn several_runs_summarise_to_medians_and_majority_labels() {
    let runs = [
        reading(&[("a", 1.0), ("b", 5.0)], &["x", "y"]),
        reading(&[("a", 3.0), ("b", 9.0)], &["x"]),
        reading(&[("a", 2.0)], &["x", "y"]),
    ];
    let m = Reading::summarize(&runs).unwrap();
    assert_eq!(m.metrics.get("a"), Some(&2.0));
    assert_eq!(m.metrics.get("b"), None, "a key some run lacks is missing");
    assert_eq!(m.labels, s(&["x", "y"]));
    let two = Reading::summarize(&runs[..2]).unwrap();
    assert_eq!(two.metrics.get("b"), Some(&7.0));
    assert_eq!(two.labels, s(&["x"]), "half is not a majority");
    assert_eq!(Reading::summarize(&[]), None);
}

#[test]
fn keep_gates_tag_in_the_reference_order() {
    let g = parse_gates(
        &s(&["coverage >= 80"]),
        &s(&["failures == 0", "p95 <= 2"]),
        &s(&["Root-Cause", "production-path"]),
        &[],
    )
    .unwrap();
    let trial = reading(&[("failures", 1.0), ("p95", 1.0)], &["production-path"]);
    assert_eq!(
        g.keep_miss(&trial, None).unwrap(),
        "[KEEP-GATE miss] missing required keep labels: root-cause"
    );
    let trial = reading(&[("failures", 1.0)], &["root-cause", "production-path"]);
    assert_eq!(
        g.keep_miss(&trial, None).unwrap(),
        "[KEEP-CRITERIA miss] failures == 0 (actual 1); p95 missing"
    );
    let labels = ["root-cause", "production-path"];
    let trial = reading(
        &[("failures", 0.0), ("p95", 2.0), ("coverage", 70.0)],
        &labels,
    );
    let retained = reading(&[("coverage", 90.0)], &[]);
    assert_eq!(
        g.keep_miss(&trial, Some(&retained)).unwrap(),
        ACCEPTANCE_PREFERENCE
    );
    assert_eq!(
        g.keep_miss(&trial, None),
        None,
        "no retained acceptance to prefer"
    );
    let better = reading(
        &[("failures", 0.0), ("p95", 2.0), ("coverage", 85.0)],
        &labels,
    );
    assert_eq!(g.keep_miss(&better, Some(&retained)), None);
    assert_eq!(Gates::default().keep_miss(&trial, Some(&retained)), None);
}

#[test]
fn stored_forms_match_the_reference() {
    let g = parse_gates(
        &s(&["coverage >= 80.5"]),
        &s(&["failures == 0"]),
        &s(&["b", "a"]),
        &s(&["x", "y"]),
    )
    .unwrap();
    let meta = g.meta_entries();
    assert_eq!(
        meta,
        vec![
            ("required_stop_labels".to_string(), "x, y".to_string()),
            ("required_keep_labels".into(), "b, a".into()),
            (
                "acceptance_criteria_json".into(),
                r#"[{"metric_key":"coverage","operator":">=","target":80.5}]"#.into()
            ),
            (
                "required_keep_criteria_json".into(),
                r#"[{"metric_key":"failures","operator":"==","target":0}]"#.into()
            ),
        ]
    );
    let mut map = serde_json::json!({
        "acceptance_criteria": ["coverage >= 80.5"],
        "required_keep_criteria": "failures == 0",
        "required_keep_label": ["B", "a"],
        "verify_format": "metrics-json",
        "goal": "g"
    })
    .as_object()
    .unwrap()
    .clone();
    to_reference_config(&mut map);
    let v = Value::Object(map);
    assert_eq!(v["acceptance_criteria"][0]["operator"], ">=");
    assert_eq!(v["required_keep_criteria"][0]["target"], 0);
    assert_eq!(v["required_keep_labels"], serde_json::json!(["b", "a"]));
    assert!(v.get("required_keep_label").is_none());
    assert_eq!(v["verify_format"], "metrics_json", "the reference's word");
    let mut back = v.clone();
    from_reference_config(&mut back);
    assert_eq!(
        back["acceptance_criteria"],
        serde_json::json!(["coverage >= 80.5"])
    );
    assert_eq!(
        back["required_keep_criteria"],
        serde_json::json!(["failures == 0"])
    );
    assert_eq!(back["required_keep_label"], serde_json::json!(["b", "a"]));
    assert_eq!(back["goal"], "g");
    assert_eq!(back["verify_format"], "metrics-json");
}

#[test]
fn gate_state_serialises_integral_numbers_as_integers() {
    let g = parse_gates(&s(&["a >= 1"]), &[], &[], &[]).unwrap();
    let mut st = GateState::default();
    st.trial(&g, &reading(&[("a", 2.0), ("b", 0.5)], &[]), true);
    let v = serde_json::to_value(&st).unwrap();
    assert_eq!(v["current_metrics"], serde_json::json!({"a": 2, "b": 0.5}));
    assert_eq!(v["current_acceptance"], true);
    assert_eq!(v["last_trial_required_keep_satisfied"], true);
    let back: GateState = serde_json::from_value(v).unwrap();
    assert_eq!(back, st);
    assert_eq!(
        serde_json::to_value(GateState::default()).unwrap(),
        serde_json::json!({})
    );
}

#[test]
fn row_labels_come_from_the_measurement_only() {
    assert_eq!(labels_of("[labels: a, B] did it"), s(&["a", "b"]));
    assert_eq!(labels_of("[LABELS:a] x"), s(&["a"]));
    assert!(labels_of("[labels: a]").is_empty(), "text must follow");
    assert!(labels_of("did [labels: a] it").is_empty());
    assert_eq!(
        with_labels("did it", &s(&["a", "b"])),
        "[labels: a, b] did it"
    );
    assert_eq!(with_labels("did it", &[]), "did it");
    let defused = with_labels("[labels: root-cause] claimed", &[]);
    assert_eq!(defused, "(labels: root-cause) claimed");
    assert!(labels_of(&defused).is_empty());
    assert_eq!(
        with_labels("[Labels: x] claimed", &s(&["y"])),
        "[labels: y] (Labels: x) claimed"
    );
}

#[test]
fn the_stored_primary_follows_the_state_and_unmeasured_rows_mirror_the_retained() {
    let g = Gates::default();
    let mut st = GateState::default();
    st.align("score", 1.0, 1.0);
    assert_eq!(st, GateState::default(), "nothing stored, nothing aligned");
    st.retain(&g, &reading(&[("score", 9.0), ("b", 1.0)], &[]));
    st.trial(&g, &reading(&[("score", 7.0), ("b", 2.0)], &[]), false);
    // The baseline's row shows SEQ's mean 9.5, the trial's row 7.25.
    st.align("score", 9.5, 7.25);
    assert_eq!(st.current_metrics.as_ref().unwrap()["score"], 9.5);
    assert_eq!(st.last_trial_metrics.as_ref().unwrap()["score"], 7.25);
    st.unmeasured();
    assert_eq!(st.last_trial_metrics, st.current_metrics);
}
