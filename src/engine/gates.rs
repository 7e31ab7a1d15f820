//! Multi-metric gates (GUIDE "Multi-metric gates"): criteria `key op value` on the numbers of
//! verify's metrics-json object and the labels it reports; the keep gates with the reference's
//! tags, the acceptance preference, the goal gate, the trial's summary over several runs, the
//! `[labels: ...]` row prefix, and the reference's stored forms (state, TSV metadata). Pure.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::number::{canonical, in_range};

/// The JSON key of a metrics-json object that carries the measurement's labels.
pub const LABELS_KEY: &str = "labels";

/// A comparison of a criterion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Op {
    const ALL: [(&'static str, Op); 5] = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];

    fn parse(text: &str) -> Option<Op> {
        Op::ALL.iter().find(|(s, _)| *s == text).map(|(_, op)| *op)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        }
    }

    fn holds(self, actual: f64, target: f64) -> bool {
        match self {
            Op::Lt => actual < target,
            Op::Le => actual <= target,
            Op::Gt => actual > target,
            Op::Ge => actual >= target,
            Op::Eq => actual == target,
        }
    }
}

/// One criterion: `key op target` on a number of verify's JSON object.
#[derive(Clone, Debug, PartialEq)]
pub struct Criterion {
    pub key: String,
    pub op: Op,
    pub target: f64,
}

impl fmt::Display for Criterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.key,
            self.op.as_str(),
            canonical(self.target)
        )
    }
}

impl Criterion {
    /// The reference's object form `{metric_key, operator, target}`.
    pub fn to_json(&self) -> Value {
        let target = match super::number::as_json_int(self.target) {
            Some(i) => Value::from(i),
            None => Value::from(self.target),
        };
        serde_json::json!({"metric_key": self.key, "operator": self.op.as_str(), "target": target})
    }

    /// The failure the reference writes: `key op target (actual v)` or `key missing`.
    fn failure(&self, metrics: &BTreeMap<String, f64>) -> Option<String> {
        match metrics.get(&self.key) {
            None => Some(format!("{} missing", self.key)),
            Some(v) if self.op.holds(*v, self.target) => None,
            Some(v) => Some(format!("{self} (actual {})", canonical(*v))),
        }
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => super::number::parse_metric(s),
        _ => None,
    }
    .filter(|f| in_range(*f))
}

fn criterion_from_object(obj: &Map<String, Value>) -> Result<Criterion, String> {
    if obj.contains_key("metric") || obj.contains_key("op") || obj.contains_key("value") {
        return Err("the legacy keys metric/op/value are not accepted; use {\"metric_key\", \"operator\", \"target\"}".into());
    }
    let key = obj
        .get("metric_key")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or("each object needs a non-empty string `metric_key`")?;
    let op = obj
        .get("operator")
        .and_then(Value::as_str)
        .and_then(Op::parse)
        .ok_or("`operator` must be one of < <= > >= ==")?;
    let target = obj
        .get("target")
        .and_then(number)
        .ok_or("`target` must be a finite number")?;
    Ok(Criterion {
        key: key.to_string(),
        op,
        target,
    })
}

fn criteria_from_json(text: &str) -> Result<Vec<Criterion>, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("`{text}` is not valid JSON ({e})"))?;
    let items = match value {
        Value::Array(items) => items,
        obj @ Value::Object(_) => vec![obj],
        _ => {
            return Err(
                "the JSON form is a list of {\"metric_key\", \"operator\", \"target\"} objects"
                    .into(),
            );
        }
    };
    items
        .iter()
        .map(|item| match item {
            Value::Object(obj) => criterion_from_object(obj),
            _ => Err(
                "the JSON form is a list of {\"metric_key\", \"operator\", \"target\"} objects"
                    .into(),
            ),
        })
        .collect()
}

fn criterion_from_text(text: &str) -> Result<Criterion, String> {
    let bad = || format!("`{text}` is not `key op value` (op one of < <= > >= ==)");
    let (at, op_text) = text
        .char_indices()
        .find_map(|(i, _)| {
            ["<=", ">=", "==", "!=", "<", ">", "="]
                .iter()
                .find(|op| text[i..].starts_with(**op))
                .map(|op| (i, *op))
        })
        .ok_or_else(bad)?;
    let op = Op::parse(op_text).ok_or_else(bad)?;
    let key = text[..at].trim();
    let value = text[at + op_text.len()..].trim();
    if key.is_empty() {
        return Err(bad());
    }
    let target = super::number::parse_metric(value)
        .filter(|v| in_range(*v))
        .ok_or_else(|| format!("`{value}` in `{text}` is not a finite number"))?;
    Ok(Criterion {
        key: key.to_string(),
        op,
        target,
    })
}

/// Parses criteria: each value is `key op value` or the reference's JSON form (a list of
/// `{"metric_key", "operator", "target"}` objects, or one object).
pub fn parse_criteria(values: &[String]) -> Result<Vec<Criterion>, String> {
    let mut out = Vec::new();
    for v in values {
        let t = v.trim();
        if t.is_empty() {
            continue;
        }
        if t.starts_with('[') || t.starts_with('{') {
            out.extend(criteria_from_json(t)?);
        } else {
            out.push(criterion_from_text(t)?);
        }
    }
    Ok(out)
}

fn label_ok(label: &str) -> bool {
    let mut chars = label.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._/-".contains(c))
}

/// Normalises labels as the reference does: split on commas, trimmed, lower-cased, duplicates
/// dropped (order kept); each must match `^[a-z0-9][a-z0-9._/-]*$`.
pub fn normalize_labels<S: AsRef<str>>(raw: &[S]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for piece in raw.iter().flat_map(|r| r.as_ref().split(',')) {
        let label = piece.trim().to_lowercase();
        if label.is_empty() {
            continue;
        }
        if !label_ok(&label) {
            return Err(format!(
                "`{}` is not a label (a letter or digit, then letters, digits, `.`, `_`, `/`, `-`)",
                piece.trim()
            ));
        }
        if !out.contains(&label) {
            out.push(label);
        }
    }
    Ok(out)
}

/// What one verify run (or a trial's runs, summarised) said beyond its primary metric: every
/// number of the JSON object, and its labels.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reading {
    pub metrics: BTreeMap<String, f64>,
    pub labels: Vec<String>,
}

impl Reading {
    /// Reads a metrics-json object: its finite numbers are metrics; `labels` (a list of strings,
    /// or one comma-separated string) are its labels; other values are ignored.
    pub fn from_object(obj: &Map<String, Value>) -> Result<Reading, String> {
        let mut r = Reading::default();
        for (key, value) in obj {
            if key == LABELS_KEY {
                let raw: Vec<String> = match value {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(items) => items
                        .iter()
                        .map(|i| i.as_str().map(str::to_string))
                        .collect::<Option<_>>()
                        .ok_or("`labels` must be a list of strings")?,
                    Value::Null => Vec::new(),
                    _ => return Err("`labels` must be a list of strings".into()),
                };
                r.labels = normalize_labels(&raw).map_err(|e| format!("`labels`: {e}"))?;
            } else if let Value::Number(n) = value
                && let Some(f) = n.as_f64().filter(|f| in_range(*f))
            {
                r.metrics.insert(key.trim().to_string(), f);
            }
        }
        Ok(r)
    }

    /// Reads the last non-empty line of verify's stdout as a metrics-json object.
    pub fn from_stdout(stdout: &str) -> Result<Reading, String> {
        let line = stdout
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or("");
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(obj)) => Reading::from_object(&obj),
            _ => Err("the last stdout line is not a JSON object".into()),
        }
    }

    /// Several runs of one commit as one reading: each metric the median of the runs that all
    /// report it, each label one that more than half the runs report (GUIDE: a gate reads the
    /// median, like `--repeat`). `None` for no runs.
    pub fn summarize(runs: &[Reading]) -> Option<Reading> {
        let first = runs.first()?;
        if runs.len() == 1 {
            return Some(first.clone());
        }
        let mut out = Reading::default();
        for key in first.metrics.keys() {
            let mut values: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.metrics.get(key))
                .copied()
                .collect();
            if values.len() == runs.len() {
                out.metrics.insert(key.clone(), median(&mut values));
            }
        }
        for label in runs.iter().flat_map(|r| r.labels.iter()) {
            let n = runs.iter().filter(|r| r.labels.contains(label)).count();
            if 2 * n > runs.len() && !out.labels.contains(label) {
                out.labels.push(label.clone());
            }
        }
        Some(out)
    }

    /// Sets the primary metric to the row's value (a mean under SEQ), so criteria on it read
    /// what the row shows.
    pub fn with_primary(mut self, key: &str, value: f64) -> Reading {
        self.metrics.insert(key.to_string(), value);
        self
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The configured gates (`--acceptance-criteria`, `--required-keep-criteria`,
/// `--required-keep-label`, `--required-stop-label`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Gates {
    pub acceptance: Vec<Criterion>,
    pub keep: Vec<Criterion>,
    pub keep_labels: Vec<String>,
    pub stop_labels: Vec<String>,
}

/// Parses the four settings into gates; the error names the flag.
pub fn parse_gates(
    acceptance: &[String],
    keep: &[String],
    keep_labels: &[String],
    stop_labels: &[String],
) -> Result<Gates, String> {
    let at = |flag: &'static str| move |e: String| format!("{flag}: {e}");
    Ok(Gates {
        acceptance: parse_criteria(acceptance).map_err(at("--acceptance-criteria"))?,
        keep: parse_criteria(keep).map_err(at("--required-keep-criteria"))?,
        keep_labels: normalize_labels(keep_labels).map_err(at("--required-keep-label"))?,
        stop_labels: normalize_labels(stop_labels).map_err(at("--required-stop-label"))?,
    })
}

fn failures(criteria: &[Criterion], r: &Reading) -> Vec<String> {
    criteria
        .iter()
        .filter_map(|c| c.failure(&r.metrics))
        .collect()
}

fn missing(required: &[String], labels: &[String]) -> Vec<String> {
    required
        .iter()
        .filter(|l| !labels.contains(l))
        .cloned()
        .collect()
}

/// The reference's `[ACCEPTANCE preference]` suffix.
pub const ACCEPTANCE_PREFERENCE: &str =
    "[ACCEPTANCE preference] retained result already satisfies final acceptance.";

impl Gates {
    /// No gate is configured.
    pub fn is_empty(&self) -> bool {
        self.acceptance.is_empty()
            && self.keep.is_empty()
            && self.keep_labels.is_empty()
            && self.stop_labels.is_empty()
    }

    /// True when the acceptance criteria are configured and `r` meets them all.
    pub fn accepts(&self, r: Option<&Reading>) -> bool {
        !self.acceptance.is_empty() && r.is_some_and(|r| failures(&self.acceptance, r).is_empty())
    }

    /// True when `r` meets every required keep criterion.
    pub fn keep_satisfied(&self, r: &Reading) -> bool {
        failures(&self.keep, r).is_empty()
    }

    /// Why an improving trial may not be kept, as the suffix its discard row gets; the
    /// reference's order, the first miss wins: required keep labels, required keep criteria,
    /// then the acceptance preference (the retained result meets acceptance, the trial not).
    pub fn keep_miss(&self, trial: &Reading, retained: Option<&Reading>) -> Option<String> {
        let labels = missing(&self.keep_labels, &trial.labels);
        if !labels.is_empty() {
            return Some(format!(
                "[KEEP-GATE miss] missing required keep labels: {}",
                labels.join(", ")
            ));
        }
        let fails = failures(&self.keep, trial);
        if !fails.is_empty() {
            return Some(format!("[KEEP-CRITERIA miss] {}", fails.join("; ")));
        }
        if self.accepts(retained) && !self.accepts(Some(trial)) {
            return Some(ACCEPTANCE_PREFERENCE.to_string());
        }
        None
    }

    /// What still keeps a met goal from stopping the run, said for people: acceptance criteria
    /// the retained result misses, required stop labels it lacks. `None`: every gate holds.
    pub fn goal_gap(&self, retained: Option<&Reading>, labels: &[String]) -> Option<String> {
        let mut gaps = Vec::new();
        if !self.acceptance.is_empty() {
            match retained {
                None => gaps.push(
                    "acceptance criteria not measured on the retained result yet".to_string(),
                ),
                Some(r) => {
                    let f = failures(&self.acceptance, r);
                    if !f.is_empty() {
                        gaps.push(format!("acceptance criteria not met: {}", f.join("; ")));
                    }
                }
            }
        }
        let m = missing(&self.stop_labels, labels);
        if !m.is_empty() {
            gaps.push(format!("missing required stop labels: {}", m.join(", ")));
        }
        (!gaps.is_empty()).then(|| gaps.join("; "))
    }

    /// The keys the run's state `config` gets, in the reference's forms (criteria as
    /// `{metric_key, operator, target}` objects, labels as normalised lists); only those set.
    pub fn config_entries(&self) -> Vec<(&'static str, Value)> {
        let crit = |c: &[Criterion]| Value::Array(c.iter().map(Criterion::to_json).collect());
        let mut out = Vec::new();
        if !self.acceptance.is_empty() {
            out.push(("acceptance_criteria", crit(&self.acceptance)));
        }
        if !self.keep.is_empty() {
            out.push(("required_keep_criteria", crit(&self.keep)));
        }
        if !self.stop_labels.is_empty() {
            out.push((
                "required_stop_labels",
                Value::from(self.stop_labels.clone()),
            ));
        }
        if !self.keep_labels.is_empty() {
            out.push((
                "required_keep_labels",
                Value::from(self.keep_labels.clone()),
            ));
        }
        out
    }

    /// The results log's metadata lines, in the reference's order and forms: labels joined by
    /// `, `, criteria as compact JSON with sorted keys; only those set.
    pub fn meta_entries(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if !self.stop_labels.is_empty() {
            out.push(("required_stop_labels".into(), self.stop_labels.join(", ")));
        }
        if !self.keep_labels.is_empty() {
            out.push(("required_keep_labels".into(), self.keep_labels.join(", ")));
        }
        for (key, c) in [
            ("acceptance_criteria_json", &self.acceptance),
            ("required_keep_criteria_json", &self.keep),
        ] {
            if !c.is_empty() {
                // `Value` maps are sorted: the keys come out as the reference sorts them.
                let v = Value::Array(c.iter().map(Criterion::to_json).collect());
                out.push((key.into(), v.to_string()));
            }
        }
        out
    }
}

/// The settings keys of the gates and the reference's keys they are stored under.
const STORED: [(&str, &str); 4] = [
    ("acceptance_criteria", "acceptance_criteria"),
    ("required_keep_criteria", "required_keep_criteria"),
    ("required_keep_label", "required_keep_labels"),
    ("required_stop_label", "required_stop_labels"),
];

/// Rewrites saved settings into the reference's config forms (criteria objects, plural label
/// lists); a value that does not parse is left as it is (validation refuses it first).
pub fn to_reference_config(map: &mut Map<String, Value>) {
    let strings = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    let get = |k: &str| strings(map.get(k));
    let Ok(g) = parse_gates(
        &get("acceptance_criteria"),
        &get("required_keep_criteria"),
        &get("required_keep_label"),
        &get("required_stop_label"),
    ) else {
        return;
    };
    for (ours, _) in STORED {
        map.remove(ours);
    }
    for (key, value) in g.config_entries() {
        map.insert(key.to_string(), value);
    }
    // The reference's word for the format its acceptance code reads.
    if map.get("verify_format").and_then(Value::as_str) == Some("metrics-json") {
        map.insert("verify_format".into(), "metrics_json".into());
    }
}

/// The inverse of [`to_reference_config`] on a stored config: criteria objects become
/// `key op value` strings, the plural label lists the settings' keys.
pub fn from_reference_config(value: &mut Value) {
    let Some(map) = value.as_object_mut() else {
        return;
    };
    if map.get("verify_format").and_then(Value::as_str) == Some("metrics_json") {
        map.insert("verify_format".into(), "metrics-json".into());
    }
    for (ours, theirs) in STORED {
        let Some(v) = map.remove(theirs) else {
            continue;
        };
        let items = match v {
            Value::Array(items) => items,
            other => vec![other],
        };
        let strings: Vec<Value> = items
            .iter()
            .map(|i| match i {
                Value::Object(o) => match criterion_from_object(o) {
                    Ok(c) => Value::from(c.to_string()),
                    Err(_) => Value::from(i.to_string()),
                },
                Value::String(s) => Value::from(s.clone()),
                other => Value::from(other.to_string()),
            })
            .collect();
        map.insert(ours.to_string(), Value::Array(strings));
    }
}

/// The gates a stored run configuration holds (the reference's forms or ours); a part that
/// does not parse is left out.
pub fn from_stored_config(config: &Map<String, Value>) -> Gates {
    let mut v = Value::Object(config.clone());
    from_reference_config(&mut v);
    let list = |k: &str| -> Vec<String> {
        match v.get(k) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    };
    Gates {
        acceptance: parse_criteria(&list("acceptance_criteria")).unwrap_or_default(),
        keep: parse_criteria(&list("required_keep_criteria")).unwrap_or_default(),
        keep_labels: normalize_labels(&list("required_keep_label")).unwrap_or_default(),
        stop_labels: normalize_labels(&list("required_stop_label")).unwrap_or_default(),
    }
}

/// The reference's optional `state` keys of a metrics-json run: the retained (`current_*`) and
/// the latest trial's (`last_trial_*`) numbers and gate verdicts. Not in the TSV: kept in the
/// state from one iteration to the next.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GateState {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_map"
    )]
    pub current_metrics: Option<BTreeMap<String, f64>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_map"
    )]
    pub last_trial_metrics: Option<BTreeMap<String, f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_acceptance: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_trial_acceptance: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_required_keep_satisfied: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_trial_required_keep_satisfied: Option<bool>,
}

fn ser_map<S: serde::Serializer>(
    m: &Option<BTreeMap<String, f64>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let Some(m) = m else {
        return s.serialize_none();
    };
    let mut out = s.serialize_map(Some(m.len()))?;
    for (k, v) in m {
        match super::number::as_json_int(*v) {
            Some(i) => out.serialize_entry(k, &i)?,
            None => out.serialize_entry(k, v)?,
        }
    }
    out.end()
}

impl GateState {
    /// The retained result as a reading (its labels are the TSV's).
    pub fn retained(&self, labels: &[String]) -> Option<Reading> {
        self.current_metrics.as_ref().map(|m| Reading {
            metrics: m.clone(),
            labels: labels.to_vec(),
        })
    }

    /// Records a trial's reading; `kept` makes it the retained one.
    pub fn trial(&mut self, gates: &Gates, r: &Reading, kept: bool) {
        self.last_trial_metrics = Some(r.metrics.clone());
        self.last_trial_acceptance = Some(gates.accepts(Some(r)));
        self.last_trial_required_keep_satisfied = Some(gates.keep_satisfied(r));
        if kept {
            self.retain(gates, r);
        }
    }

    /// A row without a measurement of its own: the latest trial's numbers are the retained ones
    /// (as the reference records a crash, a no-op or a bookkeeping row).
    pub fn unmeasured(&mut self) {
        self.last_trial_metrics = self.current_metrics.clone();
        self.last_trial_acceptance = self.current_acceptance;
        self.last_trial_required_keep_satisfied = self.current_required_keep_satisfied;
    }

    /// Sets the primary key of the stored numbers to the state's metrics (`current_metric`,
    /// `last_trial_metric`): the reference refuses a map whose primary differs from them.
    pub fn align(&mut self, key: &str, current: f64, last_trial: f64) {
        if let Some(m) = &mut self.current_metrics {
            m.insert(key.to_string(), current);
        }
        if let Some(m) = &mut self.last_trial_metrics {
            m.insert(key.to_string(), last_trial);
        }
    }

    /// Makes `r` the retained reading (the baseline, a keep, a drift).
    pub fn retain(&mut self, gates: &Gates, r: &Reading) {
        self.current_metrics = Some(r.metrics.clone());
        self.current_acceptance = Some(gates.accepts(Some(r)));
        self.current_required_keep_satisfied = Some(gates.keep_satisfied(r));
    }
}

/// The labels a row's description carries in its `[labels: a, b] ` prefix (the reference's
/// form, matched case-insensitively); none when it has no valid prefix.
pub fn labels_of(description: &str) -> Vec<String> {
    let Some((inside, rest)) = split_prefix(description) else {
        return Vec::new();
    };
    if rest.trim().is_empty() {
        return Vec::new();
    }
    normalize_labels(&[inside]).unwrap_or_default()
}

/// A row's description without its `[labels: a, b] ` prefix (the measurement's, not the change's
/// words); unchanged when it has none.
pub fn without_labels(description: &str) -> &str {
    match split_prefix(description) {
        Some((_, rest)) if !rest.trim().is_empty() => rest.trim_start(),
        _ => description,
    }
}

fn split_prefix(description: &str) -> Option<(&str, &str)> {
    let t = description.trim_start();
    let head = t.get(..8)?;
    if !head.eq_ignore_ascii_case("[labels:") {
        return None;
    }
    let close = t.find(']')?;
    Some((&t[8..close], &t[close + 1..]))
}

/// A row's description with the measured labels in front (`[labels: a, b] rest`). A label
/// prefix already there (the agent's words) is defused to `(labels: ...)`: labels come from
/// the measurement only.
pub fn with_labels(description: &str, labels: &[String]) -> String {
    let text = match split_prefix(description) {
        Some(_) => {
            let t = description.trim_start();
            format!("({}", &t[1..]).replacen(']', ")", 1)
        }
        None => description.to_string(),
    };
    if labels.is_empty() {
        text
    } else {
        format!("[labels: {}] {text}", labels.join(", "))
    }
}

#[cfg(test)]
#[path = "gates_tests.rs"]
mod tests;
