//! What `status` shows of a run's multi-metric gates (GUIDE "Multi-metric gates"): the gates
//! configured, the retained result's numbers and labels, and what a met goal still waits for.

use serde_json::{Value, json};

use crate::artifacts::state::StateFile;
use crate::engine::gates::{Criterion, Gates, from_stored_config};

fn gates_of(state: Option<&StateFile>) -> Option<(Gates, &StateFile)> {
    let s = state?;
    let g = from_stored_config(&s.config);
    (!g.is_empty()).then_some((g, s))
}

fn list(c: &[Criterion]) -> String {
    c.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `gates` object of `status --json`: `null` for a run without gates.
pub fn json(state: Option<&StateFile>) -> Value {
    let Some((g, s)) = gates_of(state) else {
        return Value::Null;
    };
    let t = &s.state;
    let retained = t.gates.retained(&t.current_labels);
    json!({
        "acceptance_criteria": g.acceptance.iter().map(Criterion::to_json).collect::<Vec<_>>(),
        "required_keep_criteria": g.keep.iter().map(Criterion::to_json).collect::<Vec<_>>(),
        "required_keep_labels": g.keep_labels,
        "required_stop_labels": g.stop_labels,
        "retained_metrics": serde_json::to_value(&t.gates).ok().and_then(|v| v.get("current_metrics").cloned()),
        "retained_labels": t.current_labels,
        "acceptance_met": t.gates.current_acceptance,
        "goal_waits_for": g.goal_gap(retained.as_ref(), &t.current_labels),
    })
}

/// The `gates:` lines of `status` (none for a run without gates).
pub fn lines(state: Option<&StateFile>) -> Vec<String> {
    let Some((g, s)) = gates_of(state) else {
        return Vec::new();
    };
    let t = &s.state;
    let mut parts = Vec::new();
    if !g.keep.is_empty() {
        parts.push(format!("keep needs {}", list(&g.keep)));
    }
    if !g.keep_labels.is_empty() {
        parts.push(format!("keep needs labels {}", g.keep_labels.join(", ")));
    }
    if !g.acceptance.is_empty() {
        parts.push(format!("acceptance {}", list(&g.acceptance)));
    }
    if !g.stop_labels.is_empty() {
        parts.push(format!("stop needs labels {}", g.stop_labels.join(", ")));
    }
    let mut out = vec![format!("gates: {}", parts.join("; "))];
    let labels = match t.current_labels.is_empty() {
        true => "none".to_string(),
        false => t.current_labels.join(", "),
    };
    let retained = t.gates.retained(&t.current_labels);
    let waits = match g.goal_gap(retained.as_ref(), &t.current_labels) {
        Some(gap) => format!("; the goal waits for: {gap}"),
        None => String::new(),
    };
    out.push(format!("retained labels: {labels}{waits}"));
    out
}
