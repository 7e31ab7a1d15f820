//! Test harness: an independent replay of the results rows (the reference's semantics) and
//! the check that a run's files agree with it.

#![allow(dead_code)]

use serde_json::Value;

use super::*;

/// An independent replay of the results rows with the reference's current (May 2026) semantics;
/// returns the 16 `state` keys.
pub fn replay_rows(rows: &[Vec<String>], direction: &str) -> serde_json::Map<String, Value> {
    replay_rows_with(rows, direction, false)
}

/// [`replay_rows`] with the March 2026 semantics when `march` (a `refine` row changes no
/// counter; the current rules count it toward `consecutive_discards`).
pub fn replay_rows_with(
    rows: &[Vec<String>],
    direction: &str,
    march: bool,
) -> serde_json::Map<String, Value> {
    let better = |a: f64, b: f64| if direction == "lower" { a < b } else { a > b };
    let num = |s: &str| -> f64 {
        s.parse()
            .unwrap_or_else(|_| panic!("metric {s:?} is not numeric"))
    };
    let base = &rows[0];
    assert_eq!(base[0], "0", "row 0 is the baseline");
    assert_eq!(base[5], "baseline");
    let (mut iteration, mut best_iteration) = (0u64, 0u64);
    let baseline = num(&base[2]);
    let (mut best, mut current, mut last_trial_metric) = (baseline, baseline, baseline);
    let (mut last_commit, mut last_trial_commit) = (base[1].clone(), base[1].clone());
    let (mut keeps, mut discards, mut crashes, mut no_ops, mut blocked) = (0u64, 0, 0, 0, 0);
    let (mut consecutive, mut pivots) = (0u64, 0u64);
    let mut last_status = "baseline".to_string();
    for r in &rows[1..] {
        let i: u64 = r[0].parse().expect("iteration number");
        assert_eq!(i, iteration + 1, "iterations are contiguous");
        iteration = i;
        let metric = num(&r[2]);
        last_status = r[5].clone();
        last_trial_commit = r[1].clone();
        last_trial_metric = metric;
        match r[5].as_str() {
            "keep" => {
                keeps += 1;
                current = metric;
                last_commit = r[1].clone();
                consecutive = 0;
                pivots = 0;
                if better(metric, best) {
                    best = metric;
                    best_iteration = i;
                }
            }
            "discard" | "crash" | "no-op" => {
                match r[5].as_str() {
                    "discard" => discards += 1,
                    "crash" => crashes += 1,
                    _ => no_ops += 1,
                }
                consecutive += 1;
            }
            "blocked" => blocked += 1,
            "drift" => {
                current = metric;
                if r[1] != "-" {
                    last_commit = r[1].clone();
                }
                consecutive = 0;
                if better(metric, best) {
                    best = metric;
                    best_iteration = i;
                }
            }
            "pivot" => pivots += 1,
            "refine" if !march => consecutive += 1,
            "refine" | "search" => {}
            other => panic!("unknown status {other:?}"),
        }
    }
    let mut m = serde_json::Map::new();
    m.insert("iteration".into(), iteration.into());
    m.insert("baseline_metric".into(), baseline.into());
    m.insert("best_metric".into(), best.into());
    m.insert("best_iteration".into(), best_iteration.into());
    m.insert("current_metric".into(), current.into());
    m.insert("last_commit".into(), last_commit.into());
    m.insert("last_trial_commit".into(), last_trial_commit.into());
    m.insert("last_trial_metric".into(), last_trial_metric.into());
    m.insert("keeps".into(), keeps.into());
    m.insert("discards".into(), discards.into());
    m.insert("crashes".into(), crashes.into());
    m.insert("no_ops".into(), no_ops.into());
    m.insert("blocked".into(), blocked.into());
    m.insert("consecutive_discards".into(), consecutive.into());
    m.insert("pivot_count".into(), pivots.into());
    m.insert("last_status".into(), last_status.into());
    m
}

/// Asserts what the reference's resume checker checks: the direction line first, the exact
/// header, contiguous numeric rows from 0, the state's required keys and config fields, and every
/// state key equal to an independent replay of the TSV. Also: no in-flight marker is left.
#[track_caller]
pub fn assert_consistent(repo: &TestRepo) {
    let text = repo.read(repo.results_file());
    assert!(text.ends_with('\n'), "the results log ends with a newline");
    let lines: Vec<&str> = text.lines().collect();
    let direction = lines[0]
        .strip_prefix("# metric_direction: ")
        .unwrap_or_else(|| panic!("first line is not the direction: {:?}", lines[0]));
    assert!(direction == "lower" || direction == "higher", "{direction}");
    let header = lines
        .iter()
        .position(|l| !l.starts_with('#'))
        .expect("a header");
    assert_eq!(
        lines[header],
        "iteration\tcommit\tmetric\tdelta\tguard\tstatus\tdescription"
    );
    assert!(
        lines[header + 1..]
            .iter()
            .all(|l| !l.starts_with('#') && l.split('\t').count() == 7),
        "every row has 7 columns and no comment follows the header:\n{text}"
    );
    let rows = repo.rows();
    let replayed = replay_rows_with(&rows, direction, repo.is_march());

    let state = repo.state();
    assert!(
        state["version"].is_number(),
        "version: {}",
        state["version"]
    );
    for key in ["goal", "scope", "metric", "verify"] {
        let v = state["config"][key].as_str().unwrap_or_default();
        assert!(
            !v.trim().is_empty(),
            "config.{key} must be a non-empty string"
        );
    }
    assert_eq!(state["config"]["direction"], direction);
    let s = state["state"].as_object().expect("state object");
    for (key, want) in &replayed {
        let got = s
            .get(key)
            .unwrap_or_else(|| panic!("state.{key} is missing"));
        match want {
            Value::Number(n) if key.ends_with("_metric") => {
                let (w, g) = (n.as_f64().unwrap(), got.as_f64().expect("numeric"));
                assert!(
                    (w - g).abs() <= 0.001,
                    "state.{key} = {g}, replay = {w}\n{text}"
                );
            }
            _ => assert_eq!(got, want, "state.{key} differs from the replay\n{text}"),
        }
    }
    assert!(
        !repo.exists(&format!("{ENGINE}/inflight.json"))
            && !repo.exists(".autoresearch/inflight.json"),
        "no in-flight marker is left"
    );
}
