//! `security.sarif`: the validated findings of a security run as a SARIF 2.1.0 log, so GitHub
//! code scanning and other SARIF viewers show them (GUIDE "Security mode"). One rule per CWE,
//! one result per finding with its locations (repository-relative URIs, start and end lines)
//! and a level from its severity.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::config::Severity;
use crate::engine::findings::Finding;
use crate::engine::findings::coverage::Checked;
use crate::engine::findings::gate::rank;
use crate::error::Result;

/// File name of the SARIF log, in the security report directory.
pub const FILE: &str = "security.sarif";

/// The schema URI written in the log (`$schema`).
pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The rule id of a finding that names no usable CWE.
pub const NO_CWE: &str = "CWE-unknown";

/// The SARIF level of a severity: critical and high are errors, medium a warning, the rest notes.
pub fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's `security-severity` (a CVSS-like score as text) for a severity.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

/// The canonical `CWE-<n>` of what a finding wrote (`CWE-89`, `cwe89`, `89`), if it is one.
pub fn cwe_id(text: &str) -> Option<String> {
    let t = text.trim();
    let digits = t
        .strip_prefix("CWE")
        .or_else(|| t.strip_prefix("cwe"))
        .map(|r| r.trim_start_matches(['-', ':', ' ']))
        .unwrap_or(t);
    let n: u32 = digits.parse().ok().filter(|n| *n > 0)?;
    Some(format!("CWE-{n}"))
}

/// A repository-relative path as a URI reference: `/`-separated, other reserved bytes escaped.
pub fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.trim_start_matches("./").bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn rule_of(f: &Finding) -> String {
    f.cwe
        .as_deref()
        .and_then(cwe_id)
        .unwrap_or_else(|| NO_CWE.into())
}

fn rule(id: &str, worst: Severity, titles: &[&str]) -> Value {
    let (help, tags) = match id.strip_prefix("CWE-").and_then(|n| n.parse::<u32>().ok()) {
        Some(n) => (
            Some(format!("https://cwe.mitre.org/data/definitions/{n}.html")),
            vec!["security".to_string(), format!("external/cwe/cwe-{n}")],
        ),
        None => (None, vec!["security".to_string()]),
    };
    let mut r = json!({
        "id": id,
        "name": id.replace('-', ""),
        "shortDescription": { "text": titles.first().copied().unwrap_or(id) },
        "defaultConfiguration": { "level": level(worst) },
        "properties": { "tags": tags, "security-severity": security_severity(worst) },
    });
    if let Some(h) = help {
        r["helpUri"] = json!(h);
    }
    r
}

fn message(f: &Finding) -> String {
    let mut parts = vec![f.title.trim().to_string()];
    for (label, v) in [
        ("Scenario", &f.scenario),
        ("Impact", &f.impact),
        ("Mitigation", &f.mitigation),
    ] {
        if let Some(t) = v.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            parts.push(format!("{label}: {t}"));
        }
    }
    parts.join("\n")
}

fn result(f: &Finding, confirmed: bool, rule_id: &str, rule_index: usize) -> Value {
    let locations: Vec<Value> = f
        .locations
        .iter()
        .map(|l| {
            json!({ "physicalLocation": {
                "artifactLocation": { "uri": uri(&l.path), "uriBaseId": "%SRCROOT%" },
                "region": {
                    "startLine": l.start_line.max(1),
                    "endLine": l.end_line.max(l.start_line).max(1),
                    "snippet": { "text": l.code },
                },
            }})
        })
        .collect();
    let mut props = serde_json::Map::new();
    props.insert("severity".into(), json!(f.severity.as_str()));
    props.insert("confirmed".into(), json!(confirmed));
    if let Some(s) = f.stride {
        props.insert("stride".into(), json!(s));
    }
    for (k, v) in [
        ("owasp", &f.owasp),
        ("likelihood", &f.likelihood),
        ("confidence", &f.confidence),
        ("repro", &f.repro),
    ] {
        if let Some(v) = v {
            props.insert(k.into(), json!(v));
        }
    }
    json!({
        "ruleId": rule_id,
        "ruleIndex": rule_index,
        "level": level(f.severity),
        "message": { "text": message(f) },
        "locations": locations,
        "properties": props,
    })
}

/// The SARIF 2.1.0 log of `findings` (validated only; the flag says confirmed).
pub fn log(findings: &[Checked]) -> Value {
    // Rules in id order, each with its most severe finding's severity and title.
    let mut rules: BTreeMap<String, (Severity, Vec<&str>)> = BTreeMap::new();
    for (f, _) in findings {
        let e = rules.entry(rule_of(f)).or_insert((f.severity, Vec::new()));
        if rank(f.severity) > rank(e.0) {
            e.0 = f.severity;
        }
        e.1.push(f.title.trim());
    }
    let index: BTreeMap<&str, usize> = rules
        .keys()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|(f, confirmed)| {
            let id = rule_of(f);
            let i = index[id.as_str()];
            result(f, *confirmed, &id, i)
        })
        .collect();
    let rules: Vec<Value> = rules
        .iter()
        .map(|(id, (worst, titles))| rule(id, *worst, titles))
        .collect();
    json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": env!("CARGO_PKG_NAME"),
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    })
}

/// Writes [`log`] to `path` (atomically).
pub fn write(path: &Path, findings: &[Checked]) -> Result<()> {
    let mut text = serde_json::to_string_pretty(&log(findings)).unwrap_or_default();
    text.push('\n');
    crate::fsutil::write_atomic(path, text.as_bytes())
}

#[cfg(test)]
#[path = "sarif_tests.rs"]
mod tests;
