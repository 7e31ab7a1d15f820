//! Everything the user sees: one human line per row and a summary (`run`), JSON lines (`--json`),
//! or the reference-compatible exec payloads (`exec`). Diagnostics always go to stderr.

use std::io::Write;

use serde_json::{Value, json};

use crate::artifacts::state::{IterationRecord, Usage};
use crate::engine::number::{canonical, signed};
use crate::engine::row::Row;

/// How stdout is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Human,
    Json,
    Exec,
}

/// The console of one command.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    pub style: Style,
}

/// Returns a metric as a JSON number: an integer when integral, else a float.
pub fn num(v: f64) -> Value {
    match crate::engine::number::as_json_int(v) {
        Some(i) => json!(i),
        None => json!(v),
    }
}

fn usage_json(u: &Usage) -> Value {
    serde_json::to_value(u).unwrap_or(Value::Null)
}

/// What a run reports when it starts.
pub struct StartInfo<'a> {
    pub run_tag: &'a str,
    pub mode: &'a str,
    pub repo: &'a str,
    pub resumed: bool,
    pub iteration: u64,
    pub metric: &'a str,
    pub direction: &'a str,
    pub baseline: f64,
    pub retained: f64,
    pub agent: &'a str,
}

/// What a run reports when it ends.
#[derive(Clone, Debug)]
pub struct Summary {
    pub run_tag: String,
    /// Machine word: `goal_reached`, `iteration_cap`, `budget`, `plateau`, `needs_human`, `blocked`,
    /// `interrupted`.
    pub reason: String,
    /// One human sentence.
    pub message: String,
    pub exit_code: u8,
    pub baseline: f64,
    pub best: f64,
    pub best_iteration: u64,
    pub retained: f64,
    pub iterations: u64,
    pub keeps: u64,
    pub discards: u64,
    pub crashes: u64,
    pub no_ops: u64,
    pub improved: bool,
    pub usage: Usage,
    pub duration_ms: u64,
}

/// Prints one line on stdout; a closed stdout (a pipe to `head`) is no error.
pub fn say(line: &str) {
    out_line(line);
}

fn out_line(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (a pipe to `head`) must not kill the run.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

impl Output {
    /// Prints a diagnostic line on stderr; a file name that is not UTF-8 shows as `\xNN`.
    pub fn note(&self, msg: &str) {
        let msg = crate::repopath::display(msg);
        let _ = writeln!(std::io::stderr().lock(), "codex-autoresearch: {msg}");
    }

    /// Announces the run.
    pub fn started(&self, s: &StartInfo<'_>) {
        match self.style {
            Style::Human => out_line(&format!(
                "{} run {} ({}, agent {}) in {}: {} {}, baseline {}, retained {}{}",
                if s.resumed { "resuming" } else { "starting" },
                s.run_tag,
                s.mode,
                s.agent,
                s.repo,
                s.metric,
                if s.direction == "lower" {
                    "(lower is better)"
                } else {
                    "(higher is better)"
                },
                canonical(s.baseline),
                canonical(s.retained),
                if s.resumed {
                    format!(", from iteration {}", s.iteration)
                } else {
                    String::new()
                },
            )),
            Style::Json => out_line(
                &json!({
                    "type": "run_started",
                    "run_tag": s.run_tag,
                    "mode": s.mode,
                    "repo": s.repo,
                    "resumed": s.resumed,
                    "iteration": s.iteration,
                    "metric": s.metric,
                    "direction": s.direction,
                    "baseline": num(s.baseline),
                    "retained": num(s.retained),
                    "agent": s.agent,
                })
                .to_string(),
            ),
            Style::Exec => self.note(&format!(
                "exec run {} ({}): baseline {} {}",
                s.run_tag,
                s.mode,
                s.metric,
                canonical(s.baseline)
            )),
        }
    }

    /// Reports one recorded row.
    pub fn row(&self, row: &Row, rec: Option<&IterationRecord>) {
        let fields = || {
            let mut v = json!({
                "iteration": row.iteration,
                "commit": row.commit,
                "metric": num(row.metric),
                "delta": num(row.delta),
                "guard": row.guard.as_str(),
                "status": row.status.as_str(),
                "description": crate::engine::row::one_line(&row.description),
            });
            // Bookkeeping rows (refine, pivot, search, drift, blocked) have no record: zeros.
            let empty = IterationRecord::default();
            let r = rec.unwrap_or(&empty);
            if let Some(obj) = v.as_object_mut() {
                obj.insert("agent_ms".into(), json!(r.agent_ms));
                obj.insert("verify_ms".into(), json!(r.verify_ms));
                obj.insert("guard_ms".into(), json!(r.guard_ms));
                obj.insert("duration_ms".into(), json!(r.total_ms));
                obj.insert("rework_turns".into(), json!(r.rework_turns));
                obj.insert("tokens".into(), usage_json(&r.usage));
                if let Some(s) = &r.session_id {
                    obj.insert("session_id".into(), json!(s));
                }
            }
            v
        };
        match self.style {
            Style::Human => {
                let took = rec
                    .map(|r| crate::duration::human(std::time::Duration::from_millis(r.total_ms)))
                    .unwrap_or_default();
                out_line(&format!(
                    "#{:<4} {:<8} {:>10} {:>8}  guard {:<4} {:>7}  {}",
                    row.iteration,
                    row.status.as_str(),
                    canonical(row.metric),
                    format!("({})", signed(row.delta)),
                    row.guard.as_str(),
                    took,
                    row.description
                ));
            }
            Style::Json => {
                let mut v = fields();
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("type".into(), json!("iteration"));
                }
                out_line(&v.to_string());
            }
            Style::Exec => out_line(&fields().to_string()),
        }
    }

    /// Reports the end of the run.
    pub fn finished(&self, s: &Summary) {
        let counts = json!({
            "baseline": num(s.baseline),
            "best": num(s.best),
            "best_iteration": s.best_iteration,
            "retained": num(s.retained),
            "total_iterations": s.iterations,
            "keeps": s.keeps,
            "discards": s.discards,
            "crashes": s.crashes,
            "no_ops": s.no_ops,
            "improved": s.improved,
            "exit_code": s.exit_code,
            "reason": s.reason,
            "message": s.message,
            "run_tag": s.run_tag,
            "tokens": usage_json(&s.usage),
            "duration_ms": s.duration_ms,
        });
        match self.style {
            Style::Human => {
                let tokens = if s.usage.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; tokens in {} / out {}",
                        s.usage.input_tokens, s.usage.output_tokens
                    )
                };
                out_line(&format!(
                    "finished: {} baseline {} -> best {} (#{}), retained {}; {} iterations: {} keep, {} discard, {} crash, {} no-op{}",
                    s.message,
                    canonical(s.baseline),
                    canonical(s.best),
                    s.best_iteration,
                    canonical(s.retained),
                    s.iterations,
                    s.keeps,
                    s.discards,
                    s.crashes,
                    s.no_ops,
                    tokens
                ));
            }
            Style::Json => {
                let mut v = counts;
                if let Some(o) = v.as_object_mut() {
                    o.insert("type".into(), json!("run_finished"));
                }
                out_line(&v.to_string());
            }
            Style::Exec => {
                let mut v = counts;
                if let Some(o) = v.as_object_mut() {
                    o.insert("status".into(), json!("completed"));
                }
                out_line(&v.to_string());
            }
        }
    }
}
