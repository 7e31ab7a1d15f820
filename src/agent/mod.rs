//! The agent boundary: one `propose` call per turn, returning a description, a session id, token
//! usage and an outcome. The engine owns everything else (git, verify, decisions, records).

pub mod claude;
pub mod codex;
pub mod command;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::artifacts::state::Usage;
use crate::engine::reducer::Directive;

/// One agent turn.
pub struct Request<'a> {
    pub iteration: u64,
    pub directive: Directive,
    pub prompt: &'a str,
    /// The repository root (the agent's working directory).
    pub repo: &'a Path,
    /// Where this turn's logs go (`autoresearch-results/engine/iter-0007`).
    pub log_dir: &'a Path,
    /// File stem for this turn's logs: `agent` or `rework-1`.
    pub log_stem: &'a str,
    /// Start a new session instead of continuing the current one (pivot, `--session fresh`).
    pub fresh_session: bool,
    /// Environment for the agent process.
    pub env: &'a [(String, String)],
    /// Where the agent's process group is recorded while it runs (see `process::GroupRecord`).
    pub group_record: &'a Path,
    /// The JSON schema the final message must follow (a findings turn; Codex's `--output-schema`).
    pub output_schema: Option<&'a Path>,
}

impl Request<'_> {
    /// Returns the path of a log file of this turn, e.g. `agent.log`.
    pub fn log(&self, ext: &str) -> PathBuf {
        self.log_dir.join(format!("{}.{ext}", self.log_stem))
    }
}

/// How an agent turn ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The turn completed; the tree holds the proposal.
    Completed,
    /// The agent failed (non-zero exit, model error); the reason is one line.
    Failed(String),
    /// The wall-clock or idle timeout killed it; the reason is one line.
    TimedOut(String),
    /// The engine received SIGINT/SIGTERM during the turn.
    Interrupted(i32),
    /// The model provider refused for quota or rate limits; retry later.
    RateLimited(String),
}

/// What an agent turn produced.
#[derive(Clone, Debug)]
pub struct Proposal {
    /// One-line summary of the change (may be empty).
    pub description: String,
    /// The agent's final message in full (a command agent: its stdout), where a findings turn's
    /// finding is read.
    pub output: String,
    pub session_id: Option<String>,
    /// Tokens used by this turn alone.
    pub usage: Usage,
    pub outcome: Outcome,
    pub duration: Duration,
    /// Something the log should say (e.g. "resume failed; started a fresh session").
    pub notes: Vec<String>,
    /// Files the agent says it changed (cross-checked against the engine's own diff).
    pub reported_paths: Vec<String>,
    /// The session's cumulative usage after this turn (Codex reports running totals).
    pub session_total: Option<Usage>,
}

impl Proposal {
    /// Returns a proposal for a turn that ended with `outcome` and nothing else.
    pub fn ended(outcome: Outcome, duration: Duration) -> Proposal {
        Proposal {
            description: String::new(),
            output: String::new(),
            session_id: None,
            usage: Usage::default(),
            outcome,
            duration,
            notes: Vec::new(),
            reported_paths: Vec::new(),
            session_total: None,
        }
    }
}

/// A coding agent.
pub trait Agent {
    /// Returns the agent's name for logs (`command`, `codex`, `claude`).
    fn name(&self) -> &'static str;

    /// Returns a version line to print at run start, if the agent has one.
    fn version(&self) -> Option<String> {
        None
    }

    /// Continues an earlier session (from the state file) on the next turn; `total` is the
    /// session's cumulative usage so far, when the agent reports running totals.
    fn restore_session(&mut self, _session_id: Option<String>, _total: Option<Usage>) {}

    /// Runs one turn.
    fn propose(&mut self, req: &Request<'_>) -> Proposal;
}

/// Resolves an agent binary: the flag, else the environment variable, else `name` on PATH.
pub fn resolve_binary(flag: Option<&Path>, env_var: &str, name: &str) -> Option<PathBuf> {
    if let Some(p) = flag {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os(env_var).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

/// Returns true for an existing executable file.
pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Returns true when an error message means a usage quota, a rate limit or an overloaded provider
/// (wait and retry later).
pub fn is_rate_limit(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("429")
        || m.contains("rate limit")
        || m.contains("rate_limit")
        || m.contains("usage limit")
        || m.contains("too many requests")
        || m.contains("quota")
        // The provider is overloaded (Codex's text for HTTP 5xx): wait, it is not the experiment.
        || m.contains("high demand")
}

/// Returns the first non-empty line of `text`, trimmed.
pub fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .trim_matches('*')
        .trim()
        .to_string()
}

/// Returns the line of an agent's stderr that says what went wrong: the first `Error...` line,
/// else the first line that is not a warning or Codex's note about reading stdin.
pub fn stderr_reason(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let pick = lines
        .iter()
        .find(|l| l.to_ascii_lowercase().starts_with("error"))
        .or_else(|| {
            lines.iter().find(|l| {
                let low = l.to_ascii_lowercase();
                !low.starts_with("warning") && !low.starts_with("reading additional input")
            })
        })
        .or(lines.first());
    pick.map(|l| first_line(l)).unwrap_or_default()
}

/// Runs `bin --version` and returns its first line.
pub fn version_of(bin: &Path) -> Option<String> {
    let mut spec = crate::process::Spec::argv(vec![bin.into(), "--version".into()], Path::new("/"));
    spec.timeout = Some(Duration::from_secs(30));
    let out = crate::process::run(&spec).ok()?;
    out.end
        .success()
        .then(|| first_line(&out.stdout))
        .filter(|l| !l.is_empty())
}

/// Runs a turn that continues `session` when there is one (`run(Some(id), "")`); when the CLI
/// exits without `started` the resumed session (rollout gone, id unknown), a note (`what`, e.g.
/// "Codex thread", and why) goes to `notes` and a fresh session runs (`run(None, "-fresh")`).
/// Returns the last run, its stream, the time of both runs, and whether it fell back.
pub fn run_resuming<S>(
    session: Option<&str>,
    what: &str,
    notes: &mut Vec<String>,
    mut run: impl FnMut(Option<&str>, &str) -> (crate::process::Outcome, S),
    started: impl Fn(&S) -> bool,
    reason: impl Fn(&S, &crate::process::Outcome) -> String,
) -> (crate::process::Outcome, S, Duration, bool) {
    let (out, stream) = run(session, "");
    let mut duration = out.duration;
    match session {
        Some(id) if !started(&stream) && matches!(out.end, crate::process::End::Exited(_)) => {
            notes.push(format!(
                "could not resume {what} {id} ({}); started a fresh one",
                first_line(&reason(&stream, &out))
            ));
            let (out, stream) = run(None, "-fresh");
            duration += out.duration;
            (out, stream, duration, true)
        }
        _ => (out, stream, duration, false),
    }
}

/// Runs an agent CLI that streams JSON events on stdout: `bin args` in the repository with the
/// prompt on stdin, the timeouts and group record of `req`, events saved to
/// `<stem><suffix>.jsonl` and stderr to `<stem><suffix>.stderr.log`. Returns how it ended and
/// the event text as logged (not the bounded in-memory tail): all of it, or its head and tail
/// around the cut note when the stream outgrew the log cap (the cut may split a character, so
/// the text is read lossily).
pub fn run_event_stream(
    bin: &Path,
    args: Vec<std::ffi::OsString>,
    req: &Request<'_>,
    suffix: &str,
    timeout: Duration,
    idle_timeout: Duration,
) -> (crate::process::Outcome, String) {
    use crate::process::{self, End, Spec};
    let mut spec = Spec::argv(
        std::iter::once(bin.as_os_str().to_os_string())
            .chain(args)
            .collect(),
        req.repo,
    );
    spec.stdin = Some(req.prompt.as_bytes().to_vec());
    spec.env = req.env.iter().map(|(k, v)| (k.into(), v.into())).collect();
    let events = req.log_dir.join(format!("{}{suffix}.jsonl", req.log_stem));
    spec.stdout_log = Some(events.clone());
    spec.stderr_log = Some(
        req.log_dir
            .join(format!("{}{suffix}.stderr.log", req.log_stem)),
    );
    spec.timeout = Some(timeout);
    spec.idle_timeout = Some(idle_timeout);
    spec.idle_on_stdout_lines = true;
    spec.group_record = Some(req.group_record.to_path_buf());
    spec.tail_bytes = 64 * 1024;
    match process::run(&spec) {
        Ok(out) => {
            let text = std::fs::read(&events)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|_| out.stdout.clone());
            (out, text)
        }
        Err(e) => (
            process::Outcome {
                end: End::Exited(127),
                duration: Duration::ZERO,
                stdout: String::new(),
                stderr: format!("could not start {}: {e}", bin.display()),
                truncated: false,
            },
            String::new(),
        ),
    }
}

/// Maps how an agent CLI ended to the turn's outcome: interrupted, timed out (wall or idle),
/// completed when `succeeded`, else failed or rate limited according to `message` (the error
/// the CLI reported, possibly empty).
pub fn outcome_of(
    name: &str,
    end: crate::process::End,
    succeeded: bool,
    message: &str,
    timeout: Duration,
    idle_timeout: Duration,
) -> Outcome {
    use crate::process::End;
    match end {
        End::Interrupted(sig) => Outcome::Interrupted(sig),
        End::TimedOut => Outcome::TimedOut(format!(
            "{name} timed out after {}",
            crate::duration::format(timeout)
        )),
        End::IdleTimedOut => Outcome::TimedOut(format!(
            "{name} sent no event for {}",
            crate::duration::format(idle_timeout)
        )),
        End::Exited(0) if succeeded => Outcome::Completed,
        end => {
            let reason = if message.is_empty() {
                format!("{name} {} without completing its turn", end.describe())
            } else {
                format!("{name} failed: {}", first_line(message))
            };
            if is_rate_limit(message) {
                Outcome::RateLimited(reason)
            } else {
                Outcome::Failed(reason)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_text_survives_a_log_cut_inside_a_character() {
        let dir = tempfile::tempdir().unwrap();
        // With the default 8 MiB cap the head is 4 MiB (4194304 = 1 mod 3): a first line whose
        // length is a multiple of 3, then `é\n` lines (3 bytes), puts the cut inside an `é`.
        let mut first = r#"{"type":"thread.started","thread_id":"t-1"}"#.to_string();
        while !(first.len() + 1).is_multiple_of(3) {
            first.push(' ');
        }
        let script = format!("printf '%s\\n' '{first}'; yes é | head -c 9000000");
        let req = Request {
            iteration: 1,
            directive: Directive::Continue,
            prompt: "",
            repo: dir.path(),
            log_dir: dir.path(),
            log_stem: "agent",
            fresh_session: false,
            env: &[],
            group_record: &dir.path().join("child.json"),
            output_schema: None,
        };
        let (out, text) = run_event_stream(
            Path::new("sh"),
            vec!["-c".into(), script.into()],
            &req,
            "",
            Duration::from_secs(60),
            Duration::from_secs(60),
        );
        assert!(out.end.success(), "{:?}", out.end);
        assert!(
            text.starts_with(&first),
            "{}",
            text.chars().take(200).collect::<String>()
        );
        assert!(text.contains("bytes cut by codex-autoresearch"));
        assert!(text.len() < 9 << 20);
        assert_eq!(codex::parse_stream(&text).thread_id.as_deref(), Some("t-1"));
    }

    #[test]
    fn stderr_reason_skips_warnings() {
        let err = "WARNING: proceeding, even though we could not create PATH aliases\nReading additional input from stdin...\nError: thread/resume failed: no rollout found\n";
        assert_eq!(
            stderr_reason(err),
            "Error: thread/resume failed: no rollout found"
        );
        assert_eq!(stderr_reason("WARNING: x\nboom\n"), "boom");
        assert_eq!(stderr_reason("WARNING: only\n"), "WARNING: only");
        assert_eq!(stderr_reason(""), "");
    }
}
