//! Unattended runs: `launch` starts `run` detached (its own session, no terminal, output to
//! `autoresearch-results/engine/run.log`) and returns once it has passed preflight; `logs`, `stop` and the
//! live part of `status` look after it. Submodules: `child` (the run's side of the readiness
//! pipe), `control` (`stop` and its request file, `logs`), `live` (phase, elapsed, estimate).

pub mod child;
pub mod control;
pub mod live;

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::artifacts::Paths;
use crate::artifacts::lock;
use crate::config::Settings;
use crate::error::{Error, IoContext, Result, exit};
use crate::git::Repo;

/// How long `launch` waits for the run to pass preflight before it gives up waiting.
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// Returns the arguments of the detached `run`: this process's own, with `launch` replaced by
/// `run` and `launch`'s own `--json` left out (the run log is for people).
pub fn run_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    let mut replaced = false;
    for a in args.into_iter().skip(1) {
        if !replaced && a == "launch" {
            out.push("run".into());
            replaced = true;
            continue;
        }
        let value_of_agent_arg = out.last().is_some_and(|p| p == "--agent-arg");
        if a == "--json" && !value_of_agent_arg {
            continue;
        }
        out.push(a);
    }
    out
}

/// Refuses a launch where a run is live, naming it (`run` itself would say only its pid).
fn refuse_live_run(settings: &Settings) -> Result<()> {
    let Ok(start) = crate::config::start_dir(settings.repo.as_deref()) else {
        return Ok(());
    };
    let Ok(repo) = Repo::discover(&start) else {
        return Ok(());
    };
    let Ok(paths) = Paths::find(
        &repo.root,
        settings.artifacts_dir.as_deref(),
        settings.layout,
    ) else {
        return Ok(());
    };
    let Some(h) = lock::live(&paths.lock) else {
        return Ok(());
    };
    let tag = live::run_tag(&paths).unwrap_or_else(|| "(still measuring its baseline)".into());
    Err(Error::Refused(format!(
        "a run is already live here: run {tag} (pid {}, started {}); follow it with `codex-autoresearch logs -f`, end it with `codex-autoresearch stop`",
        h.pid, h.started_at
    )))
}

/// `launch`: starts `codex-autoresearch run ARGS` detached and waits until it is ready or
/// refused. `settings` are the launch's own (to find a live run); `json` prints one object.
pub fn launch(settings: &Settings, args: Vec<OsString>, json: bool) -> Result<u8> {
    refuse_live_run(settings)?;
    let exe = std::env::current_exe().ctx("find", Path::new("/proc/self/exe"))?;
    let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(std::io::Error::from)
        .ctx("create", Path::new("a pipe"))?;
    // The run's output until it is ready: an unlinked file, which a killed `launch` cannot break.
    let early = tempfile::tempfile().ctx("create a temporary file in", &std::env::temp_dir())?;
    let stdout = early
        .try_clone()
        .ctx("duplicate", Path::new("a temporary file"))?;
    let stderr = early
        .try_clone()
        .ctx("duplicate", Path::new("a temporary file"))?;
    let fd = writer.as_raw_fd();
    let mut cmd = Command::new(&exe);
    cmd.args(args)
        .env(child::READY_FD_VAR, fd.to_string())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    // SAFETY: only setsid and fcntl, both async-signal-safe, run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Its own session and process group, no controlling terminal: the launcher's
            // death, its terminal closing or a signal to its group do not reach the run.
            nix::unistd::setsid()?;
            nix::fcntl::fcntl(
                BorrowedFd::borrow_raw(fd),
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            )?;
            Ok(())
        });
    }
    let mut proc_ = cmd.spawn().ctx("start", &exe)?;
    drop(writer);
    let pid = proc_.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(std::fs::File::from(reader)).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(START_TIMEOUT).map_err(|_| {
        Error::Blocked(format!(
            "the run (pid {pid}) did not pass its preflight within {}; it may still be starting: see `codex-autoresearch status`, or end it with `kill {pid}`",
            humantime::format_duration(START_TIMEOUT)
        ))
    })?;
    let ready: Option<serde_json::Value> = serde_json::from_str(line.trim())
        .ok()
        .filter(|v: &serde_json::Value| v["ready"] == true);
    let Some(ready) = ready else {
        // Refused (or died): its own words and exit code, as `run` would have given them.
        let status = proc_.wait().ctx("wait for", &exe)?;
        let code = status
            .code()
            .map(|c| u8::try_from(c).unwrap_or(exit::BLOCKED))
            .or_else(|| status.signal().map(|s| 128u8.saturating_add(s as u8)))
            .unwrap_or(exit::BLOCKED);
        let mut text = Vec::new();
        use std::io::{Read, Seek};
        let mut early = early;
        let _ = early.rewind();
        let _ = early.read_to_end(&mut text);
        let _ = std::io::stderr().lock().write_all(&text);
        return Ok(code);
    };
    print_launched(&ready, pid, settings, json);
    Ok(exit::OK)
}

/// Prints what was launched and how to look after it.
fn print_launched(ready: &serde_json::Value, pid: u32, settings: &Settings, json: bool) {
    let tag = ready["run_tag"].as_str().unwrap_or_default();
    let log = ready["log"].as_str().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if json {
        let v = serde_json::json!({
            "tag": tag,
            "pid": pid,
            "log": log,
            "repo": ready["repo"],
            "resumed": ready["resumed"],
        });
        let _ = writeln!(out, "{v}");
        return;
    }
    let mut place = String::new();
    if let Some(r) = &settings.repo {
        place.push_str(&format!(" --repo {}", r.display()));
    }
    if let Some(a) = &settings.artifacts_dir {
        place.push_str(&format!(" --artifacts-dir {}", a.display()));
    }
    let verb = if ready["resumed"] == true {
        "resumed"
    } else {
        "launched"
    };
    let _ = writeln!(out, "{verb} run {tag} (pid {pid}), detached; log: {log}");
    let _ = writeln!(
        out,
        "follow it: codex-autoresearch logs -f{place}; check it: codex-autoresearch status{place}; stop it: codex-autoresearch stop{place}"
    );
}
