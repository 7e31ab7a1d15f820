//! `--notify CMD`: the command run once when a run ends (whatever the reason, a human needed and
//! blocked included). It runs detached from the run: the engine starts a helper (this binary,
//! `__notify`) in its own process group with stdin from /dev/null and does not wait for it; the
//! helper runs `sh -c CMD` under the process module with a timeout, output in
//! `autoresearch-results/engine/notify.log`, and kills the command's group when the timeout expires.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

/// How long the notify command may run before its process group is killed (default of
/// `AUTORESEARCH_NOTIFY_TIMEOUT`).
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The notify timeout: `AUTORESEARCH_NOTIFY_TIMEOUT` (e.g. `30s`) when valid, else [`TIMEOUT`].
pub fn timeout() -> Duration {
    std::env::var("AUTORESEARCH_NOTIFY_TIMEOUT")
        .ok()
        .and_then(|v| crate::duration::parse(&v).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(TIMEOUT)
}

/// The hidden subcommand that runs the notify command.
pub const HELPER: &str = "__notify";

/// What the notify command is told (as `AUTORESEARCH_*` environment variables).
pub struct Notice {
    pub outcome: String,
    pub detail: String,
    pub exit_code: u8,
    pub run_tag: String,
    pub repo: PathBuf,
    pub report: PathBuf,
    pub best: String,
    pub baseline: String,
}

impl Notice {
    /// The environment variables of the notify command.
    pub fn vars(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("AUTORESEARCH_OUTCOME", self.outcome.clone().into()),
            ("AUTORESEARCH_DETAIL", self.detail.clone().into()),
            ("AUTORESEARCH_EXIT_CODE", self.exit_code.to_string().into()),
            ("AUTORESEARCH_RUN_TAG", self.run_tag.clone().into()),
            ("AUTORESEARCH_REPO", self.repo.clone().into()),
            ("AUTORESEARCH_REPORT", self.report.clone().into()),
            ("AUTORESEARCH_BEST", self.best.clone().into()),
            ("AUTORESEARCH_BASELINE", self.baseline.clone().into()),
        ]
    }
}

/// Starts the notify helper and returns at once; `Err` says why it could not start.
pub fn spawn(cmd: &str, notice: &Notice, log: &Path) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut c = Command::new(exe);
    c.arg(HELPER)
        .arg(timeout().as_millis().to_string())
        .arg(log)
        .arg(cmd)
        .current_dir(&notice.repo)
        .env_remove(crate::process::RUN_TOKEN_VAR)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own group: a Ctrl-C at the terminal or a kill of the run's group does not reach it.
        .process_group(0);
    for (k, v) in notice.vars() {
        c.env(k, v);
    }
    let child = c.spawn().map_err(|e| format!("cannot start it: {e}"))?;
    // Reaped by a thread while this process lives; by init once it has exited.
    std::thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
    Ok(())
}

/// The helper: `__notify MILLIS LOG CMD` runs `sh -c CMD` with the timeout, its output in LOG,
/// then appends how it ended. Always exits 0.
pub fn helper(args: &[OsString]) -> ExitCode {
    let [secs, log, cmd] = args else {
        return ExitCode::from(2);
    };
    let ms: u64 = secs.to_str().and_then(|s| s.parse().ok()).unwrap_or(60_000);
    let log = PathBuf::from(log);
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let mut spec = crate::process::Spec::shell(&cmd.to_string_lossy(), &cwd);
    spec.timeout = Some(Duration::from_millis(ms));
    spec.stdout_log = Some(log.clone());
    spec.stderr_log = Some(log.clone());
    spec.tail_bytes = 4096;
    let line = match crate::process::run(&spec) {
        Ok(out) => format!(
            "[codex-autoresearch] notify: {} after {}\n",
            out.end.describe(),
            crate::duration::human(out.duration)
        ),
        Err(e) => format!("[codex-autoresearch] notify: could not start `sh -c`: {e}\n"),
    };
    let _ = crate::fsutil::append_durable(&log, line.as_bytes());
    ExitCode::SUCCESS
}
