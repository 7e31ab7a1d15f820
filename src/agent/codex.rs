//! The Codex agent: `codex exec --json` with the prompt on stdin, the JSONL event stream parsed
//! tolerantly, one thread per strategy (resumed for rework and later iterations, fresh after a
//! pivot or when resume fails), token usage from the thread's running totals.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::{Agent, Proposal, Request, first_line};
use crate::artifacts::state::Usage;
use crate::config::Sandbox;
use crate::process;

/// What a `codex exec --json` stream said.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stream {
    pub thread_id: Option<String>,
    pub turn_started: bool,
    pub turn_completed: bool,
    /// `turn.failed` message.
    pub failure: Option<String>,
    /// `error` events (often retry notices; fatal only when the turn fails).
    pub errors: Vec<String>,
    /// Text of the last `agent_message` item.
    pub final_message: Option<String>,
    /// Running total of the thread after this turn.
    pub usage_total: Option<Usage>,
    /// Paths from `file_change` items.
    pub files: Vec<String>,
    /// Lines that were not JSON objects.
    pub garbage_lines: usize,
}

impl Stream {
    /// What went wrong: the turn's failure, else the last error event, else the CLI's stderr.
    pub fn error_message(&self, stderr: &str) -> String {
        self.failure
            .clone()
            .or_else(|| self.errors.last().cloned())
            .unwrap_or_else(|| super::stderr_reason(stderr))
    }
}

fn usage_of(v: &Value) -> Usage {
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input_tokens: n("input_tokens"),
        cached_input_tokens: n("cached_input_tokens"),
        output_tokens: n("output_tokens"),
        reasoning_output_tokens: n("reasoning_output_tokens"),
        cost_usd: None,
    }
}

/// Parses a `codex exec --json` stream; unknown event types and fields are ignored.
pub fn parse_stream(text: &str) -> Stream {
    let mut s = Stream::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            s.garbage_lines += 1;
            continue;
        };
        let str_at = |path: &[&str]| {
            let mut cur = &v;
            for p in path {
                cur = cur.get(*p)?;
            }
            cur.as_str().map(str::to_string)
        };
        match v.get("type").and_then(Value::as_str).unwrap_or("") {
            "thread.started" => s.thread_id = str_at(&["thread_id"]).or(s.thread_id),
            "turn.started" => s.turn_started = true,
            "turn.completed" => {
                s.turn_completed = true;
                if let Some(u) = v.get("usage") {
                    s.usage_total = Some(usage_of(u));
                }
            }
            "turn.failed" => {
                s.failure =
                    Some(str_at(&["error", "message"]).unwrap_or_else(|| "turn failed".into()));
            }
            "error" => {
                if let Some(m) = str_at(&["message"]) {
                    s.errors.push(m);
                }
            }
            "item.completed" | "item.started" | "item.updated" => {
                let Some(item) = v.get("item") else { continue };
                match item.get("type").and_then(Value::as_str) {
                    Some("agent_message") if v["type"] == "item.completed" => {
                        if let Some(t) = item.get("text").and_then(Value::as_str) {
                            s.final_message = Some(t.to_string());
                        }
                    }
                    Some("file_change") => {
                        for c in item
                            .get("changes")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                        {
                            if let Some(p) = c.get("path").and_then(Value::as_str)
                                && !s.files.iter().any(|f| f == p)
                            {
                                s.files.push(p.to_string());
                            }
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    s
}

/// Subtracts an earlier running total from a later one.
fn diff(total: &Usage, before: Option<&Usage>) -> Usage {
    let Some(b) = before else {
        return total.clone();
    };
    Usage {
        input_tokens: total.input_tokens.saturating_sub(b.input_tokens),
        cached_input_tokens: total
            .cached_input_tokens
            .saturating_sub(b.cached_input_tokens),
        output_tokens: total.output_tokens.saturating_sub(b.output_tokens),
        reasoning_output_tokens: total
            .reasoning_output_tokens
            .saturating_sub(b.reasoning_output_tokens),
        cost_usd: None,
    }
}

/// Runs the real Codex CLI.
pub struct CodexAgent {
    bin: PathBuf,
    sandbox: Sandbox,
    model: Option<String>,
    extra: Vec<String>,
    timeout: Duration,
    idle_timeout: Duration,
    thread: Option<String>,
    thread_total: Option<Usage>,
}

impl CodexAgent {
    /// Returns an agent running `bin`.
    pub fn new(
        bin: PathBuf,
        sandbox: Sandbox,
        model: Option<String>,
        extra: Vec<String>,
        timeout: Duration,
        idle_timeout: Duration,
    ) -> CodexAgent {
        CodexAgent {
            bin,
            sandbox,
            model,
            extra,
            timeout,
            idle_timeout,
            thread: None,
            thread_total: None,
        }
    }

    /// Returns the command line for a turn (fresh thread, or resuming `thread`).
    ///
    /// Resuming puts the exec-level options first: `exec --json -C <repo> -c
    /// sandbox_mode="workspace-write" ... resume <id> -`. `exec resume` itself rejects `-C` and
    /// `-s`, and does not inherit the sandbox or the working root from the session (verified
    /// with Codex 0.169), so the sandbox is given as a config override.
    pub fn args(
        &self,
        repo: &Path,
        thread: Option<&str>,
        output_schema: Option<&Path>,
    ) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["exec".into(), "--json".into(), "-C".into(), repo.into()];
        match self.sandbox {
            Sandbox::WorkspaceWrite if thread.is_some() => {
                a.push("-c".into());
                a.push("sandbox_mode=\"workspace-write\"".into());
            }
            Sandbox::WorkspaceWrite => {
                a.push("-s".into());
                a.push("workspace-write".into());
            }
            Sandbox::DangerFullAccess => {
                a.push("--dangerously-bypass-approvals-and-sandbox".into())
            }
        }
        if let Some(m) = &self.model {
            a.push("-m".into());
            a.push(m.into());
        }
        for e in &self.extra {
            a.push(e.into());
        }
        if let Some(schema) = output_schema {
            a.push("--output-schema".into());
            a.push(schema.into());
        }
        if let Some(id) = thread {
            a.push("resume".into());
            a.push(id.into());
        }
        a.push("-".into());
        a
    }

    fn run_once(
        &self,
        req: &Request<'_>,
        thread: Option<&str>,
        suffix: &str,
    ) -> (process::Outcome, Stream) {
        let args = self.args(req.repo, thread, req.output_schema);
        let (out, text) = super::run_event_stream(
            &self.bin,
            args,
            req,
            suffix,
            self.timeout,
            self.idle_timeout,
        );
        (out, parse_stream(&text))
    }
}

impl Agent for CodexAgent {
    fn name(&self) -> &'static str {
        "codex"
    }

    fn version(&self) -> Option<String> {
        super::version_of(&self.bin)
    }

    fn restore_session(&mut self, session_id: Option<String>, total: Option<Usage>) {
        self.thread = session_id;
        self.thread_total = total;
    }

    fn propose(&mut self, req: &Request<'_>) -> Proposal {
        if req.fresh_session {
            self.thread = None;
            self.thread_total = None;
        }
        let mut notes = Vec::new();
        let resuming = self.thread.clone();
        let (out, stream, duration, fell_back) = super::run_resuming(
            resuming.as_deref(),
            "Codex thread",
            &mut notes,
            |thread, suffix| self.run_once(req, thread, suffix),
            |s| s.turn_started,
            |s, out| s.error_message(&out.stderr),
        );
        if fell_back {
            self.thread = None;
            self.thread_total = None;
        }
        if stream.thread_id.is_some() && stream.thread_id != self.thread {
            // A new thread: its running total starts from zero.
            self.thread_total = None;
        }
        let usage = stream
            .usage_total
            .as_ref()
            .map(|t| diff(t, self.thread_total.as_ref()))
            .unwrap_or_default();
        if let Some(t) = &stream.usage_total {
            self.thread_total = Some(t.clone());
        }
        if stream.thread_id.is_some() {
            self.thread = stream.thread_id.clone();
        }
        let message = stream.error_message(&out.stderr);
        let succeeded = stream.turn_completed && stream.failure.is_none();
        let outcome = super::outcome_of(
            "codex",
            out.end,
            succeeded,
            &message,
            self.timeout,
            self.idle_timeout,
        );
        Proposal {
            description: stream
                .final_message
                .as_deref()
                .map(first_line)
                .unwrap_or_default(),
            output: stream.final_message.clone().unwrap_or_default(),
            session_id: self.thread.clone(),
            usage,
            outcome,
            duration,
            notes,
            reported_paths: stream.files,
            session_total: self.thread_total.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::is_rate_limit;

    const OK: &str = r#"{"type":"thread.started","thread_id":"0199a213-81c0-7800-8aa1-bbab2a035a53"}
{"type":"turn.started"}
{"type":"item.started","item":{"id":"item_0","type":"command_execution","command":"bash -lc ls","aggregated_output":"","exit_code":null,"status":"in_progress"}}
{"type":"item.completed","item":{"id":"item_0","type":"command_execution","command":"bash -lc ls","aggregated_output":"a.txt\n","exit_code":0,"status":"completed"}}
{"type":"item.started","item":{"id":"item_1","type":"file_change","changes":[{"path":"/repo/a.txt","kind":"update"}],"status":"in_progress"}}
{"type":"item.completed","item":{"id":"item_1","type":"file_change","changes":[{"path":"/repo/a.txt","kind":"update"},{"path":"/repo/b.txt","kind":"add"}],"status":"completed"}}
{"type":"some.future.event","payload":{"x":1}}
{"type":"item.completed","item":{"id":"item_2","type":"agent_message","text":"Cache the parsed config.\n\nDetails follow."}}
{"type":"turn.completed","usage":{"input_tokens":200,"cached_input_tokens":40,"cache_write_input_tokens":0,"output_tokens":7,"reasoning_output_tokens":5}}
"#;

    #[test]
    fn parses_a_completed_turn_and_ignores_unknown_events() {
        let s = parse_stream(OK);
        assert_eq!(
            s.thread_id.as_deref(),
            Some("0199a213-81c0-7800-8aa1-bbab2a035a53")
        );
        assert!(s.turn_started && s.turn_completed);
        assert_eq!(s.failure, None);
        assert_eq!(
            first_line(s.final_message.as_deref().unwrap()),
            "Cache the parsed config."
        );
        assert_eq!(s.files, ["/repo/a.txt", "/repo/b.txt"]);
        let u = s.usage_total.unwrap();
        assert_eq!(
            (
                u.input_tokens,
                u.cached_input_tokens,
                u.output_tokens,
                u.reasoning_output_tokens
            ),
            (200, 40, 7, 5)
        );
    }

    #[test]
    fn parses_failures_and_errors() {
        let text = "{\"type\":\"thread.started\",\"thread_id\":\"t\"}\n{\"type\":\"turn.started\"}\n{\"type\":\"error\",\"message\":\"Reconnecting... 1/5\"}\nnot json at all\n{\"type\":\"turn.failed\",\"error\":{\"message\":\"exceeded retry limit, last status: 429 Too Many Requests\"}}\n";
        let s = parse_stream(text);
        assert!(!s.turn_completed);
        assert_eq!(s.errors, ["Reconnecting... 1/5"]);
        assert_eq!(s.garbage_lines, 1);
        let f = s.failure.unwrap();
        assert!(is_rate_limit(&f));
        assert!(!is_rate_limit("invalid prompt"));
    }

    /// Streams recorded from the real Codex CLI 0.169.0 against the scripted mock server.
    fn recorded(name: &str) -> Stream {
        let text = match name {
            "patch" => include_str!("../../tests/fixtures/codex/patch.jsonl"),
            "failed" => include_str!("../../tests/fixtures/codex/failed.jsonl"),
            "429" => include_str!("../../tests/fixtures/codex/rate-limit-429.jsonl"),
            "usage" => include_str!("../../tests/fixtures/codex/usage-limit.jsonl"),
            "quota" => include_str!("../../tests/fixtures/codex/quota.jsonl"),
            "busy" => include_str!("../../tests/fixtures/codex/server-busy-500.jsonl"),
            "two" => include_str!("../../tests/fixtures/codex/two-requests.jsonl"),
            "resume-1" => include_str!("../../tests/fixtures/codex/resume-1.jsonl"),
            "resume-2" => include_str!("../../tests/fixtures/codex/resume-2.jsonl"),
            _ => include_str!("../../tests/fixtures/codex/resume-3.jsonl"),
        };
        parse_stream(text)
    }

    #[test]
    fn unknown_events_and_fields_in_a_recorded_stream_change_nothing() {
        let text = include_str!("../../tests/fixtures/codex/patch.jsonl");
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        // A future event type, a future item type, and extra fields on a known event.
        lines.insert(
            1,
            r#"{"type":"session.configured","model":"x","sandbox":{"mode":"w"}}"#.into(),
        );
        lines.insert(
            3,
            r#"{"type":"item.completed","item":{"id":"i9","type":"plan_update","steps":[1,2]}}"#
                .into(),
        );
        let last = lines.len() - 1;
        lines[last] = lines[last].replacen('{', r#"{"future_field":{"nested":[true]},"#, 1);
        let widened = parse_stream(&lines.join("\n"));
        assert_eq!(widened, parse_stream(text));
        assert!(widened.turn_completed && widened.garbage_lines == 0);
    }

    #[test]
    fn recorded_success_streams() {
        let s = recorded("patch");
        assert!(s.turn_completed && s.failure.is_none());
        assert_eq!(s.files, ["/repo/a.txt", "/repo/b.txt"]);
        assert_eq!(s.final_message.as_deref(), Some("Patched."));
        assert_eq!(s.usage_total, Some(Usage::default()));
        let two = recorded("two");
        assert_eq!(
            two.usage_total.map(|u| (u.input_tokens, u.output_tokens)),
            Some((300, 15))
        );
    }

    #[test]
    fn recorded_failures_are_classified() {
        let failed = recorded("failed");
        assert_eq!(
            failed.failure.as_deref(),
            Some("The prompt was rejected by the mock.")
        );
        assert!(!is_rate_limit(failed.failure.as_deref().unwrap()));
        for name in ["429", "usage", "quota", "busy"] {
            let s = recorded(name);
            assert!(s.turn_started && !s.turn_completed, "{name}");
            assert!(
                is_rate_limit(s.failure.as_deref().unwrap()),
                "{name}: {:?}",
                s.failure
            );
        }
    }

    #[test]
    fn recorded_resumes_keep_the_thread_and_running_totals() {
        let runs: Vec<Stream> = ["resume-1", "resume-2", "resume-3"]
            .iter()
            .map(|n| recorded(n))
            .collect();
        assert!(
            runs.iter()
                .all(|r| r.thread_id == runs[0].thread_id && r.turn_completed)
        );
        let totals: Vec<Usage> = runs
            .iter()
            .map(|r| r.usage_total.clone().unwrap())
            .collect();
        assert_eq!(diff(&totals[1], Some(&totals[0])).input_tokens, 350);
        assert_eq!(diff(&totals[2], Some(&totals[1])).output_tokens, 30);
        assert_eq!(runs[1].final_message.as_deref(), Some("Second turn done."));
    }

    #[test]
    fn usage_is_the_difference_of_running_totals() {
        let before = Usage {
            input_tokens: 200,
            output_tokens: 7,
            ..Usage::default()
        };
        let after = Usage {
            input_tokens: 450,
            output_tokens: 19,
            ..Usage::default()
        };
        let d = diff(&after, Some(&before));
        assert_eq!((d.input_tokens, d.output_tokens), (250, 12));
        assert_eq!(diff(&after, None).input_tokens, 450);
    }

    #[test]
    fn command_lines() {
        let a = CodexAgent::new(
            "codex".into(),
            Sandbox::WorkspaceWrite,
            Some("gpt-5.5".into()),
            vec!["-c".into(), "x=1".into()],
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        let fresh: Vec<String> = a
            .args(Path::new("/r"), None, None)
            .iter()
            .map(|s| s.to_string_lossy().into())
            .collect();
        assert_eq!(
            fresh,
            [
                "exec",
                "--json",
                "-C",
                "/r",
                "-s",
                "workspace-write",
                "-m",
                "gpt-5.5",
                "-c",
                "x=1",
                "-"
            ]
        );
        let resume: Vec<String> = a
            .args(Path::new("/r"), Some("t1"), None)
            .iter()
            .map(|s| s.to_string_lossy().into())
            .collect();
        assert_eq!(
            resume,
            [
                "exec",
                "--json",
                "-C",
                "/r",
                "-c",
                "sandbox_mode=\"workspace-write\"",
                "-m",
                "gpt-5.5",
                "-c",
                "x=1",
                "resume",
                "t1",
                "-"
            ]
        );
        let b = CodexAgent::new(
            "codex".into(),
            Sandbox::DangerFullAccess,
            None,
            vec![],
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        let full: Vec<String> = b
            .args(Path::new("/r"), None, None)
            .iter()
            .map(|s| s.to_string_lossy().into())
            .collect();
        assert_eq!(
            full,
            [
                "exec",
                "--json",
                "-C",
                "/r",
                "--dangerously-bypass-approvals-and-sandbox",
                "-"
            ]
        );
    }
}
