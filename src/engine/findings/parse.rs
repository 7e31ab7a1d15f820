//! Reads the agent's finding out of its last message: the whole message as JSON (Codex with
//! `--output-schema`), else the last fenced ```json block (Claude), else the last line that is
//! a JSON object (a command agent).

use super::Finding;

/// The finding in `text`, or why there is none (one line).
pub fn extract(text: &str) -> Result<Finding, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the agent's last message is empty: no finding".into());
    }
    let mut candidates: Vec<&str> = vec![text];
    if let Some(block) = last_fenced_json(text) {
        candidates.push(block);
    }
    candidates.extend(
        text.lines()
            .rev()
            .map(str::trim)
            .filter(|l| l.starts_with('{')),
    );
    let mut first_error = None;
    for c in candidates {
        if !c.starts_with('{') {
            continue;
        }
        match serde_json::from_str::<Finding>(c) {
            Ok(f) => return Ok(f),
            Err(e) => {
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    Err(match first_error {
        Some(e) => format!("the finding does not parse ({e}); see the finding schema in GUIDE"),
        None => "the agent's last message holds no JSON finding object".into(),
    })
}

/// The body of the last ```json fenced block of `text`.
fn last_fenced_json(text: &str) -> Option<&str> {
    let start = text.rfind("```json")?;
    let body = &text[start + "```json".len()..];
    let end = body.find("```")?;
    Some(body[..end].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: &str = r#"{"title":"t","severity":"high","locations":[],"evidence":"e"}"#;

    #[test]
    fn reads_each_agents_shape() {
        assert_eq!(extract(F).unwrap().title, "t");
        let claude = format!("I found it.\n```json\n{F}\n```\nDone.");
        assert_eq!(extract(&claude).unwrap().title, "t");
        let command = format!("looking\nprobing\n{F}\n");
        assert_eq!(extract(&command).unwrap().title, "t");
    }

    #[test]
    fn says_why_there_is_none() {
        assert!(extract("").unwrap_err().contains("empty"));
        assert!(extract("no json here").unwrap_err().contains("no JSON"));
        let bad = extract(r#"{"title":"t"}"#).unwrap_err();
        assert!(bad.contains("severity"), "{bad}");
    }
}
