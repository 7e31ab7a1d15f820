//! The command agent: `sh -c CMD` in the repository, prompt on stdin, the last non-empty stdout
//! line as the description (a `tokens: N` line is the turn's token count instead), the last
//! meaningful stderr line as the reason of a failure. Scripted proposers and the test suite's
//! fake agents plug in here.

use std::time::Duration;

use super::{Agent, Outcome, Proposal, Request};
use crate::engine::reason::last_meaningful_line;
use crate::process::{self, End, Spec};

/// Runs a shell command as the agent.
pub struct CommandAgent {
    cmd: String,
    timeout: Duration,
    idle_timeout: Duration,
}

impl CommandAgent {
    /// Returns an agent running `cmd` with the given timeouts.
    pub fn new(cmd: &str, timeout: Duration, idle_timeout: Duration) -> CommandAgent {
        CommandAgent {
            cmd: cmd.to_string(),
            timeout,
            idle_timeout,
        }
    }
}

impl Agent for CommandAgent {
    fn name(&self) -> &'static str {
        "command"
    }

    fn propose(&mut self, req: &Request<'_>) -> Proposal {
        let mut spec = Spec::shell(&self.cmd, req.repo);
        spec.stdin = Some(req.prompt.as_bytes().to_vec());
        spec.env = req.env.iter().map(|(k, v)| (k.into(), v.into())).collect();
        let log = req.log("log");
        spec.stdout_log = Some(log.clone());
        spec.stderr_log = Some(log);
        spec.timeout = Some(self.timeout);
        spec.idle_timeout = Some(self.idle_timeout);
        spec.group_record = Some(req.group_record.to_path_buf());
        let out = match process::run(&spec) {
            Ok(o) => o,
            Err(e) => {
                return Proposal::ended(
                    Outcome::Failed(format!("could not start the agent command: {e}")),
                    Duration::ZERO,
                );
            }
        };
        let description = out
            .stdout
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty() && reported_tokens(l).is_none())
            .unwrap_or("")
            .to_string();
        // `tokens: N` on stdout: what the command's own model used this turn (the last one counts).
        let tokens = out.stdout.lines().rev().find_map(reported_tokens);
        let outcome = match out.end {
            End::Exited(0) => Outcome::Completed,
            End::Exited(_) | End::Signaled(_) => {
                // Why it failed is on stderr, if anywhere; stdout may end in a progress bar.
                let why = last_meaningful_line(&out.stderr)
                    .or_else(|| last_meaningful_line(&out.stdout))
                    .map(|l| format!(": {l}"))
                    .unwrap_or_default();
                Outcome::Failed(format!("agent {}{why}", out.end.describe()))
            }
            End::TimedOut => Outcome::TimedOut(format!(
                "agent timed out after {}",
                crate::duration::format(self.timeout)
            )),
            End::IdleTimedOut => Outcome::TimedOut(format!(
                "agent printed nothing for {}",
                crate::duration::format(self.idle_timeout)
            )),
            End::Interrupted(sig) => Outcome::Interrupted(sig),
        };
        let usage = crate::artifacts::state::Usage {
            input_tokens: tokens.unwrap_or(0),
            ..Default::default()
        };
        Proposal {
            description,
            output: out.stdout.clone(),
            usage,
            outcome,
            duration: out.duration,
            ..Proposal::ended(Outcome::Completed, out.duration)
        }
    }
}

/// Reads a `tokens: N` line (the tokens a command agent reports for its turn).
fn reported_tokens(line: &str) -> Option<u64> {
    line.trim().strip_prefix("tokens:")?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::reducer::Directive;

    fn failure_of(cmd: &str) -> Outcome {
        let dir = tempfile::tempdir().unwrap();
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
        let secs = Duration::from_secs(30);
        CommandAgent::new(cmd, secs, secs).propose(&req).outcome
    }

    #[test]
    fn a_crash_reason_is_the_last_meaningful_stderr_line() {
        let cmd = "echo working; echo 'Error: API key rejected' >&2; echo '....' >&2; \
                   printf '[####    ] 45%%\\n'; exit 3";
        assert_eq!(
            failure_of(cmd),
            Outcome::Failed("agent exit 3: Error: API key rejected".into())
        );
        // Nothing on stderr: the last stdout line with words, not the progress after it.
        assert_eq!(
            failure_of("echo 'fetching model'; printf '10%%\\r55%%\\n'; exit 1"),
            Outcome::Failed("agent exit 1: fetching model".into())
        );
        assert_eq!(
            failure_of("echo ...; exit 2"),
            Outcome::Failed("agent exit 2".into())
        );
    }
}
