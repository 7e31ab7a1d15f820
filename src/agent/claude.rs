//! The Claude Code agent: `claude -p --output-format stream-json --verbose`, prompt on stdin,
//! session id from the `system`/`init` event, description from the final `result`, usage and
//! `total_cost_usd` recorded; `--resume <id>` within a strategy, a fresh session after a pivot.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::{Agent, Proposal, Request, first_line};
use crate::artifacts::state::Usage;
use crate::config::Sandbox;
use crate::process;

/// What a Claude stream-json run said.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stream {
    pub session_id: Option<String>,
    pub initialized: bool,
    /// The final `result` event: (is_error, subtype, text).
    pub result: Option<(bool, String, String)>,
    pub usage: Usage,
    pub files: Vec<String>,
}

/// Parses Claude Code's stream-json output; unknown events are ignored.
pub fn parse_stream(text: &str) -> Stream {
    let mut s = Stream::default();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line.trim()) else {
            continue;
        };
        let get_str = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        match v.get("type").and_then(Value::as_str).unwrap_or("") {
            "system" if v.get("subtype").and_then(Value::as_str) == Some("init") => {
                s.initialized = true;
                s.session_id = get_str("session_id").or(s.session_id);
            }
            "assistant" => {
                let content = v.pointer("/message/content").and_then(Value::as_array);
                for block in content.into_iter().flatten() {
                    if block.get("type").and_then(Value::as_str) == Some("tool_use") {
                        let name = block.get("name").and_then(Value::as_str).unwrap_or("");
                        if matches!(name, "Edit" | "Write" | "MultiEdit" | "NotebookEdit")
                            && let Some(p) =
                                block.pointer("/input/file_path").and_then(Value::as_str)
                            && !s.files.iter().any(|f| f == p)
                        {
                            s.files.push(p.to_string());
                        }
                    }
                }
            }
            "result" => {
                let is_error = v.get("is_error").and_then(Value::as_bool).unwrap_or(false);
                let subtype = get_str("subtype").unwrap_or_default();
                let text = get_str("result").unwrap_or_default();
                s.result = Some((is_error, subtype, text));
                s.session_id = get_str("session_id").or(s.session_id);
                if let Some(u) = v.get("usage") {
                    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
                    s.usage.input_tokens = n("input_tokens")
                        + n("cache_creation_input_tokens")
                        + n("cache_read_input_tokens");
                    s.usage.cached_input_tokens = n("cache_read_input_tokens");
                    s.usage.output_tokens = n("output_tokens");
                }
                s.usage.cost_usd = v.get("total_cost_usd").and_then(Value::as_f64);
            }
            _ => {}
        }
    }
    s
}

/// Runs Claude Code headless.
pub struct ClaudeAgent {
    bin: PathBuf,
    sandbox: Sandbox,
    model: Option<String>,
    extra: Vec<String>,
    timeout: Duration,
    idle_timeout: Duration,
    current: Option<String>,
}

impl ClaudeAgent {
    /// Returns an agent running `bin`.
    pub fn new(
        bin: PathBuf,
        sandbox: Sandbox,
        model: Option<String>,
        extra: Vec<String>,
        timeout: Duration,
        idle_timeout: Duration,
    ) -> ClaudeAgent {
        ClaudeAgent {
            bin,
            sandbox,
            model,
            extra,
            timeout,
            idle_timeout,
            current: None,
        }
    }

    /// Returns the command line for a turn.
    pub fn args(&self, resume: Option<&str>) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![
            "-p".into(),
            "--output-format".into(),
            "stream-json".into(),
            "--verbose".into(),
        ];
        a.push("--permission-mode".into());
        a.push(match self.sandbox {
            Sandbox::WorkspaceWrite => "acceptEdits".into(),
            Sandbox::DangerFullAccess => "bypassPermissions".into(),
        });
        if let Some(id) = resume {
            a.push("--resume".into());
            a.push(id.into());
        }
        if let Some(m) = &self.model {
            a.push("--model".into());
            a.push(m.into());
        }
        for e in &self.extra {
            a.push(e.into());
        }
        a
    }

    fn run_once(
        &self,
        req: &Request<'_>,
        resume: Option<&str>,
        suffix: &str,
    ) -> (process::Outcome, Stream) {
        let args = self.args(resume);
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

impl Agent for ClaudeAgent {
    fn name(&self) -> &'static str {
        "claude"
    }

    fn version(&self) -> Option<String> {
        super::version_of(&self.bin)
    }

    fn restore_session(&mut self, session_id: Option<String>, _total: Option<Usage>) {
        self.current = session_id;
    }

    fn propose(&mut self, req: &Request<'_>) -> Proposal {
        if req.fresh_session {
            self.current = None;
        }
        let mut notes = Vec::new();
        let resuming = self.current.clone();
        let (out, stream, duration, fell_back) = super::run_resuming(
            resuming.as_deref(),
            "Claude session",
            &mut notes,
            |session, suffix| self.run_once(req, session, suffix),
            |s| s.initialized,
            |_, out| super::stderr_reason(&out.stderr),
        );
        if fell_back {
            self.current = None; // dead: not offered again even if the fresh turn fails early
        }
        if stream.session_id.is_some() {
            self.current = stream.session_id.clone();
        }
        let succeeded = matches!(&stream.result, Some((false, subtype, _)) if subtype == "success");
        let message = match &stream.result {
            Some((_, subtype, text)) if !text.trim().is_empty() => {
                format!("{subtype}: {}", first_line(text))
            }
            Some((_, subtype, _)) => subtype.clone(),
            None => super::stderr_reason(&out.stderr),
        };
        let outcome = super::outcome_of(
            "claude",
            out.end,
            succeeded,
            &message,
            self.timeout,
            self.idle_timeout,
        );
        let description = match &stream.result {
            Some((false, _, text)) => first_line(text),
            _ => String::new(),
        };
        Proposal {
            description,
            output: match &stream.result {
                Some((false, _, text)) => text.clone(),
                _ => String::new(),
            },
            session_id: self.current.clone(),
            usage: stream.usage.clone(),
            outcome,
            duration,
            notes,
            reported_paths: stream.files,
            session_total: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::is_rate_limit;

    const STREAM: &str = r#"{"type":"system","subtype":"init","session_id":"5f0c-11","tools":["Edit","Bash"],"model":"claude-x"}
{"type":"assistant","message":{"role":"assistant","content":[{"type":"text","text":"Editing."},{"type":"tool_use","id":"tu1","name":"Edit","input":{"file_path":"/repo/src/a.rs","old_string":"a","new_string":"b"}}]},"session_id":"5f0c-11"}
{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"tu1","content":"ok"}]},"session_id":"5f0c-11"}
{"type":"stream_event","event":{"whatever":true}}
{"type":"result","subtype":"success","is_error":false,"duration_ms":1200,"num_turns":2,"result":"Inline the hot loop.\nMore text.","session_id":"5f0c-11","total_cost_usd":0.0123,"usage":{"input_tokens":10,"cache_creation_input_tokens":5,"cache_read_input_tokens":100,"output_tokens":42}}
"#;

    #[test]
    fn parses_a_successful_run() {
        let s = parse_stream(STREAM);
        assert!(s.initialized);
        assert_eq!(s.session_id.as_deref(), Some("5f0c-11"));
        assert_eq!(s.files, ["/repo/src/a.rs"]);
        let (is_error, subtype, text) = s.result.clone().unwrap();
        assert!(!is_error && subtype == "success");
        assert_eq!(first_line(&text), "Inline the hot loop.");
        assert_eq!(
            (
                s.usage.input_tokens,
                s.usage.cached_input_tokens,
                s.usage.output_tokens
            ),
            (115, 100, 42)
        );
        assert_eq!(s.usage.cost_usd, Some(0.0123));
    }

    #[test]
    fn parses_an_error_result() {
        let s = parse_stream(
            "{\"type\":\"result\",\"subtype\":\"error_during_execution\",\"is_error\":true,\"result\":\"API Error: 429 rate_limit_error\",\"session_id\":\"x\"}\n",
        );
        let (is_error, subtype, text) = s.result.unwrap();
        assert!(is_error);
        assert_eq!(subtype, "error_during_execution");
        assert!(is_rate_limit(&text));
    }

    #[test]
    fn command_lines() {
        let a = ClaudeAgent::new(
            "claude".into(),
            Sandbox::WorkspaceWrite,
            Some("opus".into()),
            vec![],
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        let args: Vec<String> = a
            .args(Some("s1"))
            .iter()
            .map(|s| s.to_string_lossy().into())
            .collect();
        assert_eq!(
            args,
            [
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "--permission-mode",
                "acceptEdits",
                "--resume",
                "s1",
                "--model",
                "opus"
            ]
        );
        let b = ClaudeAgent::new(
            "claude".into(),
            Sandbox::DangerFullAccess,
            None,
            vec![],
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        let args: Vec<String> = b
            .args(None)
            .iter()
            .map(|s| s.to_string_lossy().into())
            .collect();
        assert!(args.contains(&"bypassPermissions".to_string()));
    }
}
