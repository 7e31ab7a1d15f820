//! Agent prompts: the mode template (`modes/<mode>.md`) filled with the run's goal, metric,
//! scope, directive, recent rows, lessons and feedback. Templates and protocol docs are embedded.

use crate::engine::number::canonical;
use crate::engine::reducer::Directive;
use crate::engine::row::{HEADER, Row};

/// The escalation protocol (holds the directive texts).
pub const ESCALATION: &str = include_str!("../references/escalation.md");
/// The loop rules.
pub const LOOP_RULES: &str = include_str!("../references/loop-rules.md");
/// The lessons protocol.
pub const LESSONS: &str = include_str!("../references/lessons.md");

/// Everything a prompt needs.
pub struct PromptInput<'a> {
    /// The mode's template (its policy's, `modes/<mode>.md`).
    pub template: &'a str,
    pub goal: &'a str,
    pub metric: &'a str,
    pub direction: crate::engine::Direction,
    pub retained: f64,
    pub baseline: f64,
    pub best: f64,
    pub verify: &'a str,
    pub guard: Option<&'a str>,
    pub scope: &'a [String],
    pub protected: &'a [String],
    pub directive: Directive,
    /// After a `search` row: look for outside ideas first.
    pub search: bool,
    pub results: &'a [Row],
    pub lessons: &'a str,
    /// Output to show the agent (failing guard output for rework, a verify failure).
    pub feedback: Option<(&'a str, &'a str)>,
    /// The last experiment row of the log (what became of the agent's previous turn).
    pub previous: Option<&'a Row>,
}

/// The "Last turn" section: whether the previous turn was kept or rolled back and why, so an
/// agent that continues its session does not build on an edit the engine undid. Empty before
/// the first experiment.
pub fn previous_outcome(row: Option<&Row>) -> String {
    use crate::engine::row::Status;
    let Some(r) = row else {
        return String::new();
    };
    let what = if r.description.trim().is_empty() {
        "(no description)".to_string()
    } else {
        r.description.trim().to_string()
    };
    let text = match r.status {
        Status::Keep => format!(
            "Iteration {} was kept ({} -> {}): {what}. It is in the tree; build on it.",
            r.iteration,
            canonical(r.metric - r.delta),
            canonical(r.metric)
        ),
        status => format!(
            "Iteration {} was rolled back ({status}): {what}. The tree is back at the retained \
             commit: that edit is gone, do not build on it.",
            r.iteration
        ),
    };
    format!("## Last turn\n{text}\n\n")
}

/// Returns the last experiment row (keep, discard, crash, no-op) of `rows`, if any.
pub fn last_experiment(rows: &[Row]) -> Option<&Row> {
    use crate::engine::row::Status;
    rows.iter().rev().find(|r| {
        matches!(
            r.status,
            Status::Keep | Status::Discard | Status::Crash | Status::NoOp
        )
    })
}

/// Returns the text of `## Directive: <word>` in the escalation protocol.
pub fn directive_text(d: Directive) -> String {
    let heading = format!("## Directive: {}", d.as_str());
    let Some(start) = ESCALATION.find(&heading) else {
        return String::new();
    };
    let body = &ESCALATION[start + heading.len()..];
    let end = body.find("\n## ").unwrap_or(body.len());
    body[..end].trim().to_string()
}

/// Returns the paragraph of `doc` that starts with `start`, on one line.
fn paragraph(doc: &str, start: &str) -> String {
    let Some(at) = doc.find(start) else {
        return String::new();
    };
    let body = &doc[at..];
    let end = body.find("\n\n").unwrap_or(body.len());
    body[..end].split_whitespace().collect::<Vec<_>>().join(" ")
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".into()
    } else {
        items
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Renders the prompt for one agent turn.
pub fn render(p: &PromptInput<'_>) -> String {
    let template = p.template;
    let results = if p.results.is_empty() {
        "(none yet)".to_string()
    } else {
        let mut s = String::from(HEADER);
        for r in p.results {
            s.push('\n');
            s.push_str(&r.to_line());
        }
        format!("```\n{s}\n```")
    };
    let lessons = if p.lessons.trim().is_empty() {
        "(none yet)".to_string()
    } else {
        format!(
            "{}\n\n{}",
            paragraph(LESSONS, "How the agent should use them:"),
            p.lessons.trim()
        )
    };
    let guard = match p.guard {
        Some(g) => format!("A keep also needs the guard to pass: `{g}`\n"),
        None => String::new(),
    };
    let feedback = match p.feedback {
        Some((title, text)) if !text.trim().is_empty() => {
            let fence = fence_for(text);
            format!("\n## {title}\n{fence}\n{}\n{fence}\n", text.trim_end())
        }
        _ => String::new(),
    };
    let mut directive_text = directive_text(p.directive);
    if p.search {
        directive_text.push_str(
            "\nTwo strategies have been abandoned. Before choosing the next one, look for outside ideas \
             (documentation, known techniques, prior art) and treat them as hypotheses to test.",
        );
    }
    let retained = canonical(p.retained);
    let baseline = canonical(p.baseline);
    let best = canonical(p.best);
    let scope = list(p.scope);
    let protected = list(p.protected);
    let never = paragraph(LOOP_RULES, "What the agent must never do:");
    let previous = previous_outcome(p.previous);
    fill(template, |name| {
        Some(match name {
            "goal" => p.goal.trim(),
            "metric" => p.metric,
            "direction" => p.direction.as_str(),
            "retained" => &retained,
            "baseline" => &baseline,
            "best" => &best,
            "verify" => p.verify.trim(),
            "guard" => &guard,
            "scope" => &scope,
            "protected" => &protected,
            "directive" => p.directive.as_str(),
            "directive_text" => &directive_text,
            "results" => &results,
            "lessons" => &lessons,
            "feedback" => &feedback,
            "never" => &never,
            "previous" => &previous,
            _ => return None,
        })
    })
}

/// Replaces each `{{name}}` of `template` in one pass, so text put in (a goal, results rows,
/// guard output) is never scanned for placeholders itself. Unknown names stay as they are.
fn fill<'a>(template: &str, value: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after
            .find("}}")
            .and_then(|end| Some((end, value(&after[..end])?)))
        {
            Some((end, v)) => {
                out.push_str(v);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A code fence longer than any run of backticks in `text`, so fenced output that holds its own
/// fences (ship's failing items, each in a fence) stays one block.
fn fence_for(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;
    use crate::engine::Direction;

    fn input<'a>(d: Directive, feedback: Option<(&'a str, &'a str)>) -> PromptInput<'a> {
        PromptInput {
            template: crate::engine::policy::for_mode(Mode::Loop).template(),
            goal: "make the parser faster",
            metric: "ms",
            direction: Direction::Lower,
            retained: 12.5,
            baseline: 20.0,
            best: 12.5,
            verify: "./bench.sh",
            guard: Some("cargo test"),
            scope: &[],
            protected: &[],
            directive: d,
            search: false,
            results: &[],
            lessons: "",
            feedback,
            previous: None,
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        for mode in [Mode::Loop, Mode::Fix] {
            for d in [
                Directive::Continue,
                Directive::Refine,
                Directive::Pivot,
                Directive::Rework,
            ] {
                let mut i = input(d, Some(("Failing guard output", "test x failed")));
                i.template = crate::engine::policy::for_mode(mode).template();
                let text = render(&i);
                assert!(!text.contains("{{"), "{mode:?} {d:?}:\n{text}");
                assert!(text.contains(&format!("## Directive: {}", d.as_str())));
                assert!(!directive_text(d).is_empty());
            }
        }
    }

    #[test]
    fn placeholders_in_the_users_text_stay_as_written() {
        let mut i = input(
            Directive::Rework,
            Some(("Failing guard output", "expected {{never}} got {{goal}}")),
        );
        i.goal = "render {{feedback}} literally";
        let text = render(&i);
        assert!(text.contains("render {{feedback}} literally"), "{text}");
        assert!(text.contains("expected {{never}} got {{goal}}"), "{text}");
    }

    #[test]
    fn feedback_holding_fences_stays_one_block() {
        let items = "### build (`cargo build`)\n```\nerror: x\n```\n### fmt (`cargo fmt`)\n```\ndiff\n```\n";
        let text = render(&input(
            Directive::Continue,
            Some(("Failing checklist items (fix one this turn)", items)),
        ));
        let section = text
            .split("## Failing checklist items (fix one this turn)\n")
            .nth(1)
            .unwrap();
        assert!(section.starts_with("````\n### build"), "{section}");
        assert!(section.contains("diff\n```\n````\n"), "{section}");
        assert_eq!(fence_for("plain"), "```");
    }

    #[test]
    fn prompt_carries_the_essentials() {
        let text = render(&input(
            Directive::Rework,
            Some(("Failing guard output", "assertion failed: x")),
        ));
        assert!(text.contains("make the parser faster"));
        assert!(text.contains("Retained value 12.5 (baseline 20, best 12.5)"));
        assert!(text.contains("`cargo test`"));
        assert!(text.contains("assertion failed: x"));
        assert!(text.contains("Do not commit"));
        assert!(text.contains("one-line summary"));
    }

    #[test]
    fn the_protocol_references_reach_the_prompt() {
        let text = render(&input(Directive::Continue, None));
        assert!(text.contains("- What the agent must never do: commit or reset,"));
        assert!(
            !text.contains("How the agent should use them"),
            "no lessons, no advice"
        );
        let mut i = input(Directive::Continue, None);
        i.lessons = "### L-1: inline the hot loop";
        let text = render(&i);
        assert!(text.contains("How the agent should use them: prefer directions"));
        assert!(text.contains("### L-1: inline the hot loop"));
    }

    #[test]
    fn the_prompt_states_the_previous_outcome() {
        let rows: Vec<Row> = [
            "0\tabc0000\t20\t0\t-\tbaseline\tbaseline",
            "1\tabc0001\t18\t-2\tpass\tkeep\tcache the lookup table",
            "2\t-\t19\t1\tpass\tdiscard\tunroll the tokenizer loop",
            "3\t-\t18\t0\t-\trefine\t[REFINE] 3 failed experiments in a row",
        ]
        .iter()
        .map(|l| Row::parse_line(l).expect(l))
        .collect();
        let mut i = input(Directive::Continue, None);
        assert!(
            !render(&i).contains("## Last turn"),
            "nothing before a turn"
        );
        i.previous = last_experiment(&rows);
        let text = render(&i);
        assert!(
            text.contains("## Last turn\nIteration 2 was rolled back (discard): unroll the tokenizer loop. The tree is back at the retained commit: that edit is gone, do not build on it."),
            "{text}"
        );
        i.previous = last_experiment(&rows[..2]);
        let text = render(&i);
        assert!(
            text.contains("Iteration 1 was kept (20 -> 18): cache the lookup table. It is in the tree; build on it."),
            "{text}"
        );
    }

    /// Ten results rows and five lessons of a realistic size.
    fn busy_prompt() -> String {
        let rows: Vec<Row> = (1..=10)
            .map(|n| {
                Row::parse_line(&format!(
                    "{n}\tabc{n:04}\t{}.5\t-0.25\t-\tdiscard\tinline the tokenizer's hot loop and cache the lookup table",
                    20 - n
                ))
                .expect("row")
            })
            .collect();
        // As `Lessons::recent` gives them: one line each.
        let lesson = "- [keep] cache the keyword lookup table (the lookup dominated the profile)\n";
        let lessons = lesson.repeat(5);
        let mut i = input(Directive::Continue, None);
        i.results = &rows;
        i.lessons = &lessons;
        render(&i)
    }

    #[test]
    fn prompt_stays_short() {
        // GUIDE.md quotes these sizes; a bound that only the template moves.
        let first = render(&input(Directive::Continue, None)).len();
        let busy = busy_prompt().len();
        assert!(first < 1500, "first prompt grew to {first} bytes");
        assert!(
            busy < 3300,
            "prompt with ten rows and five lessons grew to {busy} bytes"
        );
        eprintln!("prompt sizes: first {first} bytes, busy {busy} bytes");
    }
}
