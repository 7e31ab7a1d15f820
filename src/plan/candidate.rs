//! A candidate configuration of `plan` (`{"goal", "mode", "scope", "metric", "direction",
//! "verify", "guard"}`, optionally `verify_format` and `metric_regex`), the JSON Schema an agent
//! answers with, and the reading of an agent's answer (the last JSON object it printed).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::{Mode, Patterns, Settings, VerifyFormat};
use crate::engine::Direction;

/// At most this many candidates are validated.
pub const MAX_CANDIDATES: usize = 3;

/// One proposed configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub goal: String,
    pub mode: String,
    #[serde(deserialize_with = "one_or_many")]
    pub scope: Vec<String>,
    pub metric: String,
    pub direction: String,
    pub verify: String,
    #[serde(default)]
    pub guard: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_regex: Option<String>,
}

/// A scope given as one string (`"src/**,Cargo.toml"`, as `--scope` takes it) or as a list: a
/// command agent's string scope refused every candidate of its answer.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scope {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Scope::deserialize(d)? {
        Scope::One(s) => vec![s],
        Scope::Many(v) => v,
    })
}

/// The agent's answer.
#[derive(Debug, Deserialize)]
struct Answer {
    candidates: Vec<Candidate>,
}

impl Candidate {
    /// The run settings this candidate stands for; a value that does not parse is the reason.
    pub fn settings(&self) -> Result<Settings, String> {
        let mode: Mode = self.mode.parse().map_err(|e| format!("mode: {e}"))?;
        let direction: Direction = self
            .direction
            .parse()
            .map_err(|e| format!("direction: {e}"))?;
        let verify_format = self
            .verify_format
            .as_deref()
            .filter(|f| !f.is_empty())
            .map(|f| f.parse::<VerifyFormat>())
            .transpose()
            .map_err(|e| format!("verify_format: {e}"))?;
        Ok(Settings {
            mode: Some(mode),
            goal: Some(self.goal.clone()),
            scope: Some(Patterns(crate::scope::split_patterns(&self.scope))),
            metric: Some(self.metric.clone()),
            direction: Some(direction),
            verify: Some(self.verify.clone()),
            guard: self.guard.clone().filter(|g| !g.trim().is_empty()),
            verify_format,
            metric_regex: self.metric_regex.clone().filter(|r| !r.is_empty()),
            ..Settings::default()
        })
    }
}

/// The JSON Schema of the answer (Codex's `--output-schema`: strict, every key required, so
/// the optional ones are nullable).
pub fn schema() -> Value {
    let s = json!({"type": "string"});
    let opt = json!({"type": ["string", "null"]});
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["candidates"],
        "properties": {
            "candidates": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_CANDIDATES,
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["goal", "mode", "scope", "metric", "direction", "verify", "guard",
                                 "verify_format", "metric_regex"],
                    "properties": {
                        "goal": s,
                        "mode": {"type": "string", "enum": ["loop", "fix"]},
                        "scope": {"type": "array", "items": s, "minItems": 1},
                        "metric": s,
                        "direction": {"type": "string", "enum": ["lower", "higher"]},
                        "verify": s,
                        "guard": opt,
                        "verify_format": opt,
                        "metric_regex": opt,
                    }
                }
            }
        }
    })
}

/// Reads the candidates from an agent's final text: the whole text as JSON, else its last line
/// that is a JSON object. At most [`MAX_CANDIDATES`] are kept.
pub fn parse_answer(text: &str) -> Result<Vec<Candidate>, String> {
    let whole = serde_json::from_str::<Answer>(text.trim());
    let answer = match whole {
        Ok(a) => a,
        Err(_) => {
            let line = text
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| l.starts_with('{'))
                .ok_or("its answer holds no JSON object (expected {\"candidates\": [...]} on the last line)")?;
            serde_json::from_str::<Answer>(line).map_err(|e| {
                format!("its JSON answer does not read as {{\"candidates\": [...]}}: {e}")
            })?
        }
    };
    if answer.candidates.is_empty() {
        return Err("it proposed no candidate".into());
    }
    let mut c = answer.candidates;
    c.truncate(MAX_CANDIDATES);
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"{"candidates":[{"goal":"g","mode":"fix","scope":["src/**"],"metric":"failures","direction":"lower","verify":"cargo test","guard":null}]}"#;

    #[test]
    fn the_last_json_line_is_the_answer() {
        let text = format!("thinking...\n{{not json\n{ONE}\n");
        let c = parse_answer(&text).unwrap();
        assert_eq!(c[0].metric, "failures");
        assert_eq!(c[0].guard, None);
        assert_eq!(parse_answer(ONE).unwrap().len(), 1);
    }

    #[test]
    fn answers_without_candidates_are_refused_with_the_reason() {
        assert!(
            parse_answer("no json here")
                .unwrap_err()
                .contains("no JSON object")
        );
        assert!(
            parse_answer(r#"{"candidates": []}"#)
                .unwrap_err()
                .contains("no candidate")
        );
        assert!(
            parse_answer(r#"{"x": 1}"#)
                .unwrap_err()
                .contains("does not read")
        );
    }

    #[test]
    fn at_most_three_are_kept_and_settings_read_the_words() {
        let many = format!(
            r#"{{"candidates":[{0},{0},{0},{0}]}}"#,
            &ONE[15..ONE.len() - 2]
        );
        let c = parse_answer(&many).unwrap();
        assert_eq!(c.len(), MAX_CANDIDATES);
        let s = c[0].settings().unwrap();
        assert_eq!(s.mode, Some(Mode::Fix));
        assert_eq!(s.direction, Some(Direction::Lower));
        let mut bad = c[0].clone();
        bad.direction = "down".into();
        assert!(bad.settings().unwrap_err().starts_with("direction:"));
    }

    #[test]
    fn a_scope_may_be_one_string() {
        let text = ONE.replace(r#"["src/**"]"#, r#""src/**,Cargo.toml""#);
        let c = parse_answer(&text).unwrap();
        let s = c[0].settings().unwrap();
        assert_eq!(s.scope.unwrap().0, vec!["src/**", "Cargo.toml"]);
    }

    #[test]
    fn the_schema_requires_every_key() {
        let s = schema();
        let item = &s["properties"]["candidates"]["items"];
        assert_eq!(item["required"].as_array().unwrap().len(), 9);
    }
}
