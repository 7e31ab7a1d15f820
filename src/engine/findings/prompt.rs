//! What a findings turn's prompt is told about the run so far: the findings, the hypotheses
//! already tried with their verdicts (so none is tested twice), and the new leads to follow
//! first.

use super::store::{Outcome, Store};
use crate::engine::row::one_line;

/// Entries shown per list (the newest).
const SHOWN: usize = 20;

/// The prompt's `{{findings}}` section.
pub fn history(store: &Store) -> String {
    let mut s = String::new();
    let leads: Vec<_> = store
        .tried
        .iter()
        .filter(|t| t.outcome == Outcome::NewLead)
        .collect();
    if !leads.is_empty() {
        s.push_str("## New leads to follow first\n");
        for t in leads.iter().rev().take(SHOWN).rev() {
            s.push_str(&format!(
                "- iteration {}: {} — {}\n",
                t.iteration,
                one_line(t.hypothesis.as_deref().unwrap_or(&t.title)),
                one_line(&t.note)
            ));
        }
        s.push('\n');
    }
    s.push_str("## Findings so far\n");
    if store.findings.is_empty() {
        s.push_str("(none yet)\n");
    }
    for v in store.findings.iter().rev().take(SHOWN).rev() {
        let at = v
            .finding
            .locations
            .iter()
            .map(|l| format!("{}:{}-{}", l.path, l.start_line, l.end_line))
            .collect::<Vec<_>>()
            .join(", ");
        s.push_str(&format!(
            "- #{} {} {}: {} ({at})\n",
            v.id,
            v.status.word(),
            v.finding.severity.as_str(),
            one_line(&v.finding.title)
        ));
    }
    s.push_str("\n## Hypotheses already tested (do not test them again)\n");
    if store.tried.is_empty() {
        s.push_str("(none yet)\n");
    }
    for t in store.tried.iter().rev().take(SHOWN).rev() {
        let what = t.hypothesis.as_deref().unwrap_or(&t.title);
        let what = if what.trim().is_empty() {
            "(no finding)"
        } else {
            what
        };
        s.push_str(&format!(
            "- iteration {} {} {}{}\n",
            t.iteration,
            t.outcome.tag(),
            one_line(what),
            match one_line(&t.note) {
                n if n.is_empty() => String::new(),
                n => format!(" — {n}"),
            }
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::store::Assessed;
    use super::*;
    use crate::config::Mode;

    #[test]
    fn leads_come_first_and_every_tried_hypothesis_is_listed() {
        let f: super::super::Finding = serde_json::from_str(
            r#"{"title":"t","severity":"low","hypothesis":"cache is stale","verdict":"new_lead"}"#,
        )
        .unwrap();
        let lead = Assessed {
            finding: Some(f.clone()),
            ..Assessed::nothing(Outcome::NewLead, "the cache key omits the user".into())
        };
        let mut g = f;
        g.hypothesis = Some("clock skew".into());
        let gone = Assessed {
            finding: Some(g),
            ..Assessed::nothing(Outcome::Disproven, String::new())
        };
        let s = Store::new(Mode::Debug, "t", None)
            .with(1, &lead, None)
            .with(2, &gone, None);
        let h = history(&s);
        let lead_at = h.find("New leads").unwrap();
        assert!(lead_at < h.find("already tested").unwrap());
        assert!(h.contains("iteration 1: cache is stale — the cache key omits the user"));
        assert!(h.contains("iteration 2 [DISPROVEN] clock skew"));
    }
}
