//! The command agent: `sh -c CMD` in the repository, prompt on stdin, the last non-empty stdout
//! line as the description. Scripted proposers and the test suite's fake agents plug in here.

use std::time::Duration;

use super::{Agent, Outcome, Proposal, Request};
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
            .rfind(|l| !l.is_empty())
            .unwrap_or("")
            .to_string();
        let outcome = match out.end {
            End::Exited(0) => Outcome::Completed,
            End::Exited(_) | End::Signaled(_) => {
                let tail = out.last_lines(1);
                let tail = if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {tail}")
                };
                Outcome::Failed(format!("agent {}{tail}", out.end.describe()))
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
        Proposal {
            description,
            outcome,
            duration: out.duration,
            ..Proposal::ended(Outcome::Completed, out.duration)
        }
    }
}
