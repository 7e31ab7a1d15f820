//! The JSON schema of a finding, as Codex's `--output-schema` takes it (every property listed
//! as required, optional ones nullable, as strict structured output wants).

use serde_json::{Value, json};

use crate::config::Mode;

fn text() -> Value {
    json!({"type": "string"})
}

fn maybe_text() -> Value {
    json!({"type": ["string", "null"]})
}

fn object(props: serde_json::Map<String, Value>) -> Value {
    let required: Vec<Value> = props.keys().map(|k| Value::String(k.clone())).collect();
    json!({
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": false,
    })
}

/// The schema of a finding in `mode` (debug adds the hypothesis and verdict, security the
/// threat classification).
pub fn finding(mode: Mode) -> Value {
    let mut loc = serde_json::Map::new();
    loc.insert("path".into(), text());
    loc.insert("start_line".into(), json!({"type": "integer"}));
    loc.insert("end_line".into(), json!({"type": "integer"}));
    loc.insert("code".into(), text());
    let mut p = serde_json::Map::new();
    p.insert("title".into(), text());
    p.insert(
        "severity".into(),
        json!({"type": "string", "enum": crate::config::Severity::WORDS}),
    );
    p.insert(
        "locations".into(),
        json!({"type": "array", "items": object(loc)}),
    );
    p.insert("evidence".into(), text());
    p.insert("repro".into(), maybe_text());
    p.insert("repro_expect".into(), maybe_text());
    match mode {
        Mode::Security => {
            let stride: Vec<Value> = super::Stride::ALL
                .iter()
                .map(|s| serde_json::to_value(s).unwrap_or_default())
                .collect();
            let mut nullable = stride.clone();
            nullable.push(Value::Null);
            p.insert("stride".into(), json!({"type": "string", "enum": stride}));
            for k in ["owasp", "cwe", "scenario", "impact", "mitigation"] {
                p.insert(k.into(), text());
            }
            for k in ["likelihood", "confidence"] {
                p.insert(k.into(), maybe_text());
            }
            // A turn without a finding says what it examined (`clean: true`; the finding's
            // fields are then ignored); a finding leaves both null.
            let mut ex = serde_json::Map::new();
            ex.insert(
                "stride".into(),
                json!({"type": ["string", "null"], "enum": nullable}),
            );
            ex.insert("owasp".into(), maybe_text());
            ex.insert("vector".into(), maybe_text());
            let mut examined = object(ex);
            examined["type"] = json!(["object", "null"]);
            p.insert("examined".into(), examined);
            p.insert("clean".into(), json!({"type": ["boolean", "null"]}));
        }
        _ => {
            p.insert("hypothesis".into(), text());
            p.insert(
                "verdict".into(),
                json!({"type": "string", "enum": ["confirmed", "disproven", "inconclusive", "new_lead"]}),
            );
            p.insert("root_cause".into(), maybe_text());
            p.insert("suggested_fix".into(), maybe_text());
        }
    }
    object(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_property_is_required_and_a_full_answer_reads_as_a_finding() {
        for mode in [Mode::Debug, Mode::Security] {
            let s = finding(mode);
            let props = s["properties"].as_object().unwrap();
            assert_eq!(s["required"].as_array().unwrap().len(), props.len());
            assert_eq!(s["additionalProperties"], false);
        }
        let ex = &finding(Mode::Security)["properties"]["examined"];
        assert_eq!(ex["required"].as_array().unwrap().len(), 3);
        assert_eq!(ex["type"], json!(["object", "null"]));
        let answer = json!({"title": "t", "severity": "low", "locations": [], "evidence": "e",
            "repro": null, "repro_expect": null, "hypothesis": "h", "verdict": "disproven",
            "root_cause": null, "suggested_fix": null});
        let f: super::super::Finding = serde_json::from_value(answer).unwrap();
        assert_eq!(f.repro, None);
        assert_eq!(f.verdict, Some(super::super::Verdict::Disproven));
    }

    #[test]
    fn a_strict_security_answer_is_a_finding_or_a_clean_turn() {
        use super::super::coverage::parse_clean_turn;
        let mut answer = json!({"title": "", "severity": "info", "locations": [],
            "evidence": "", "repro": null, "repro_expect": null, "stride": "Tampering",
            "owasp": "A03:2021", "cwe": "", "scenario": "", "impact": "", "mitigation": "",
            "likelihood": null, "confidence": null,
            "examined": {"stride": "Tampering", "owasp": "A03:2021", "vector": "the query"},
            "clean": true});
        let e = parse_clean_turn(&answer.to_string()).unwrap();
        assert_eq!(e.vector.as_deref(), Some("the query"));
        answer["examined"] = Value::Null;
        answer["clean"] = Value::Null;
        assert_eq!(parse_clean_turn(&answer.to_string()), None);
        let f: super::super::Finding = serde_json::from_value(answer).unwrap();
        assert_eq!(f.stride, Some(super::super::Stride::Tampering));
    }
}
