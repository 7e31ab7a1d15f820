//! `report.md`: the morning summary as markdown, rendered from a [`Report`] (pure text).

use std::fmt::Write as _;

use super::Report;
use crate::engine::number::{canonical, signed};
use crate::engine::row::one_line;

/// A span of time: `12.3s`, `5m07s`, `2h03m`.
pub fn span(secs: f64) -> String {
    let s = secs.max(0.0);
    if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", s as u64 / 60, s as u64 % 60)
    } else {
        format!("{}h{:02}m", s as u64 / 3600, s as u64 % 3600 / 60)
    }
}

/// A phase duration: `850ms` under a second, else as [`span`].
fn ms(v: u64) -> String {
    if v < 1000 {
        format!("{v}ms")
    } else {
        span(v as f64 / 1000.0)
    }
}

/// A markdown table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

/// The change from `a` to `b` as a percentage of `a`, when `a` is not zero.
fn percent(a: f64, b: f64) -> String {
    if a == 0.0 {
        String::new()
    } else {
        format!(", {:+.1}%", (b - a) / a.abs() * 100.0)
    }
}

/// How and when the run ended, in one line.
pub fn ending(r: &Report) -> String {
    if let Some(pid) = r.running {
        return format!("still running (pid {pid}); this report is a snapshot");
    }
    if let Some(e) = &r.ended {
        return crate::ending::status_line(e);
    }
    if let Some((n, phase)) = &r.interrupted {
        return format!(
            "not running; iteration {n} was interrupted during {phase} (the next `run` rolls it back)"
        );
    }
    format!(
        "not running; no end record (last status: {}, last update {})",
        r.last_status,
        r.updated_at.as_deref().unwrap_or("unknown")
    )
}

/// Renders the whole report.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Autoresearch report: {}\n", r.run_tag);
    let _ = writeln!(o, "- goal: {}", one_line(&r.goal));
    let _ = writeln!(o, "- {}", ending(r));
    for link in &r.mode_reports {
        let _ = writeln!(o, "- mode report: [{link}]({link})");
    }
    let _ = writeln!(
        o,
        "- started: {}",
        r.started_at.as_deref().unwrap_or("unknown")
    );
    let _ = writeln!(
        o,
        "- elapsed: {}",
        r.elapsed_secs.map_or("unknown".into(), span)
    );
    let _ = writeln!(
        o,
        "- {} ({} is better): baseline {} -> best {} at iteration {} ({}{}); retained {}",
        r.metric,
        r.direction,
        canonical(r.baseline),
        canonical(r.best),
        r.best_iteration,
        signed(crate::engine::number::delta(r.best, r.baseline)),
        percent(r.baseline, r.best),
        canonical(r.retained)
    );
    let counts: Vec<String> = r.counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let _ = writeln!(
        o,
        "- {} iterations: {}",
        r.iterations,
        if counts.is_empty() {
            "no experiments".into()
        } else {
            counts.join(", ")
        }
    );
    let _ = writeln!(o, "\n![progress](progress.svg)\n");
    keeps(r, &mut o);
    failures(r, &mut o);
    timing(r, &mut o);
    let _ = writeln!(o, "## Lessons added\n");
    if r.lessons.is_empty() {
        let _ = writeln!(o, "none");
    }
    for l in &r.lessons {
        let _ = writeln!(
            o,
            "- [{}] {} ({})",
            l.outcome,
            one_line(&l.title),
            one_line(&l.insight)
        );
    }
    o
}

fn keeps(r: &Report, o: &mut String) {
    let _ = writeln!(o, "## Keeps ({})\n", r.keeps.len());
    if r.keeps.is_empty() {
        let _ = writeln!(o, "none\n");
        return;
    }
    let _ = writeln!(
        o,
        "| # | commit | {} | delta | diffstat | description |",
        cell(&r.metric)
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|");
    for k in &r.keeps {
        let stat = k.diffstat.map_or("-".into(), |d| {
            let files = if d.files == 1 { "file" } else { "files" };
            format!("{} {files}, +{} -{}", d.files, d.insertions, d.deletions)
        });
        let _ = writeln!(
            o,
            "| {} | `{}` | {} | {} | {} | {} |",
            k.iteration,
            k.commit,
            canonical(k.metric),
            signed(k.delta),
            stat,
            cell(&k.description)
        );
    }
    o.push('\n');
}

fn failures(r: &Report, o: &mut String) {
    let _ = writeln!(o, "## Discards and crashes by reason\n");
    if r.reasons.is_empty() {
        let _ = writeln!(o, "none\n");
        return;
    }
    let _ = writeln!(o, "| status | reason | count | iterations |");
    let _ = writeln!(o, "|---|---|---|---|");
    for g in &r.reasons {
        let list: Vec<String> = g.iterations.iter().map(|i| i.to_string()).collect();
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} |",
            g.status,
            cell(&g.reason),
            g.iterations.len(),
            list.join(", ")
        );
    }
    o.push('\n');
}

fn timing(r: &Report, o: &mut String) {
    let _ = writeln!(o, "## Time and tokens\n");
    let u = &r.usage;
    let _ = writeln!(
        o,
        "Tokens over the run: {} in ({} cached), {} out.\n",
        u.input_tokens, u.cached_input_tokens, u.output_tokens
    );
    if r.timings.is_empty() {
        let _ = writeln!(o, "no timing records (the run predates them)\n");
        return;
    }
    let [agent, verify, guard, engine] = super::model::time_split(&r.timings);
    let total = (agent + verify + guard + engine).max(1) as f64;
    let share = |v: u64| format!("{} ({:.0}%)", ms(v), v as f64 / total * 100.0);
    let _ = writeln!(
        o,
        "Time split: agent {}, verify {}, guard {}, engine {}.\n",
        share(agent),
        share(verify),
        share(guard),
        share(engine)
    );
    let _ = writeln!(
        o,
        "| # | started | status | agent | verify | guard | engine | total | tokens in | tokens out |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|");
    for t in &r.timings {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            t.iteration,
            t.started_at,
            t.status,
            ms(t.agent_ms),
            ms(t.verify_ms),
            ms(t.guard_ms),
            ms(t.engine_ms + t.quota_wait_ms),
            ms(t.total_ms),
            t.usage.input_tokens,
            t.usage.output_tokens
        );
    }
    o.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_at_a_glance() {
        assert_eq!(span(12.34), "12.3s");
        assert_eq!(ms(850), "850ms");
        assert_eq!(ms(1500), "1.5s");
        assert_eq!(span(307.0), "5m07s");
        assert_eq!(span(7380.0), "2h03m");
        assert_eq!(percent(10.0, 7.0), ", -30.0%");
        assert_eq!(percent(0.0, 7.0), "");
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
