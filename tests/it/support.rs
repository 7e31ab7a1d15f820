//! Test harness: temporary git repositories, scripted command agents, and the binary run with a
//! hermetic environment (no user git config, HOME in a temp dir).

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tempfile::TempDir;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_codex-autoresearch");

/// The run's files in the default (current) layout, relative to the repository root.
pub const RESULTS_DIR: &str = "autoresearch-results";
pub const RESULTS: &str = "autoresearch-results/results.tsv";
pub const STATE: &str = "autoresearch-results/state.json";
pub const LESSONS: &str = "autoresearch-results/lessons.md";
pub const CONTEXT: &str = "autoresearch-results/context.json";
pub const POINTER: &str = ".codex-autoresearch/pointer.json";
/// The engine's own directory (lock, logs, `iter-NNNN/`, report).
pub const ENGINE: &str = "autoresearch-results/engine";
/// An exec run's state (the reference leaves no `state.json` after exec).
pub const EXEC_STATE: &str = "autoresearch-results/engine/state.exec.json";
/// The same files in the March 2026 layout (`--layout march`).
pub const MARCH_RESULTS: &str = "research-results.tsv";
pub const MARCH_STATE: &str = "autoresearch-state.json";
pub const MARCH_LESSONS: &str = "autoresearch-lessons.md";
pub const MARCH_ENGINE: &str = ".autoresearch";

/// A temporary git repository plus a scratch directory for scripts and HOME.
pub struct TestRepo {
    _dir: TempDir,
    _aux: TempDir,
    pub root: PathBuf,
    /// Outside the repository: scripts, HOME.
    pub aux: PathBuf,
}

/// The result of running the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with both streams unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Sets a hermetic environment on a command.
pub fn hermetic(cmd: &mut Command, home: &Path) {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("LANG", "C")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("TMPDIR", std::env::temp_dir());
}

impl TestRepo {
    /// Returns a repository on branch `main` with `files` committed.
    pub fn with_files(files: &[(&str, &str)]) -> TestRepo {
        let dir = TempDir::new().expect("tempdir");
        let aux = TempDir::new().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical root");
        let aux_path = aux.path().canonicalize().expect("canonical aux");
        let repo = TestRepo {
            _dir: dir,
            _aux: aux,
            root,
            aux: aux_path,
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.name", "Test User"]);
        repo.git(&["config", "user.email", "test@example.com"]);
        for (p, c) in files {
            repo.write(p, c);
        }
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-q", "-m", "initial"]);
        repo
    }

    /// Writes a file (creating directories).
    pub fn write(&self, path: &str, content: &str) {
        let p = self.root.join(path);
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).expect("mkdir");
        }
        fs::write(p, content).expect("write");
    }

    /// Reads a file of the repository.
    pub fn read(&self, path: &str) -> String {
        fs::read_to_string(self.root.join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
    }

    /// Returns true when the path exists in the repository.
    pub fn exists(&self, path: &str) -> bool {
        self.root.join(path).symlink_metadata().is_ok()
    }

    /// Runs git in the repository and returns stdout; panics on failure.
    #[track_caller]
    pub fn git(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("git");
        hermetic(&mut cmd, &self.aux);
        let o = cmd
            .args(args)
            .current_dir(&self.root)
            .output()
            .expect("git");
        assert!(
            o.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Returns `git status --porcelain` (untracked files listed).
    pub fn status(&self) -> String {
        self.git(&["status", "--porcelain", "--untracked-files=all"])
    }

    /// Returns the current HEAD commit id.
    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"]).trim().to_string()
    }

    /// Writes an executable shell script outside the repository and returns its path.
    pub fn script(&self, name: &str, body: &str) -> String {
        let p = self.aux.join(name);
        fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write script");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod");
        p.display().to_string()
    }

    /// Returns a command for the binary with a hermetic environment, in the repository.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(BIN);
        hermetic(&mut cmd, &self.aux);
        cmd.current_dir(&self.root).stdin(Stdio::null());
        cmd
    }

    /// Runs the binary with `args` and waits.
    pub fn run(&self, args: &[&str]) -> Run {
        self.cmd().args(args).output().expect("run binary").into()
    }

    /// Runs `run` with the usual required flags plus `extra`.
    pub fn run_loop(&self, verify: &str, agent: &str, extra: &[&str]) -> Run {
        self.run_owned(&TestRepo::loop_args(verify, agent, extra))
    }

    /// Returns the path (relative to the root) of the run's results log: the current layout's,
    /// else the March layout's when only that one exists.
    pub fn results_file(&self) -> &'static str {
        if !self.exists(RESULTS) && self.exists(MARCH_RESULTS) {
            MARCH_RESULTS
        } else {
            RESULTS
        }
    }

    /// Returns the path (relative to the root) of the run's state: the current layout's, an
    /// exec run's (in the engine's directory), or the March layout's, whichever exists.
    pub fn state_file(&self) -> &'static str {
        [STATE, EXEC_STATE, MARCH_STATE]
            .into_iter()
            .find(|f| self.exists(f))
            .unwrap_or(STATE)
    }

    /// Whether the run's files are in the March layout.
    pub fn is_march(&self) -> bool {
        self.results_file() == MARCH_RESULTS
    }

    /// Returns the data rows of the results log as columns.
    pub fn rows(&self) -> Vec<Vec<String>> {
        let text = self.read(self.results_file());
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .skip(1)
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }

    /// Returns the status column of every row.
    pub fn statuses(&self) -> Vec<String> {
        self.rows().into_iter().map(|r| r[5].clone()).collect()
    }

    /// Returns the parsed state file.
    pub fn state(&self) -> Value {
        serde_json::from_str(&self.read(self.state_file())).expect("state json")
    }

    /// Returns the commit subjects on HEAD, newest first.
    pub fn log(&self) -> Vec<String> {
        self.git(&["log", "--format=%s"])
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// A repository whose metric is the number in `src/value.txt` (verify: `sh measure.sh`).
pub fn number_repo(start: u32) -> TestRepo {
    TestRepo::with_files(&[
        ("src/value.txt", &format!("{start}\n")),
        ("measure.sh", "cat src/value.txt\n"),
    ])
}

/// An agent script that, per iteration number, runs the given shell snippet (the last echo is the
/// description). Unlisted iterations print "idle" and change nothing.
pub fn scripted_agent(repo: &TestRepo, name: &str, steps: &[(u32, &str)]) -> String {
    let mut body = String::from("cat > /dev/null\ncase \"$AUTORESEARCH_ITERATION\" in\n");
    for (n, snippet) in steps {
        body.push_str(&format!("  {n}) {snippet} ;;\n"));
    }
    body.push_str("  *) echo idle ;;\nesac\n");
    repo.script(name, &body)
}

// ---- Helpers for the preflight, cli, escalation and status modules ----

impl Run {
    /// Returns the non-empty lines of stderr.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }

    /// Returns the non-empty lines of stdout.
    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }

    /// Asserts exit 2 with exactly one stderr line; returns that line.
    #[track_caller]
    pub fn expect_one_error_line(&self) -> String {
        self.expect_code(2);
        let lines = self.stderr_lines();
        assert_eq!(
            lines.len(),
            1,
            "expected exactly one stderr line\n--- stderr\n{}",
            self.stderr
        );
        lines[0].to_string()
    }

    /// Asserts a refusal: exit 2, exactly one stderr line `codex-autoresearch: error: ...`
    /// containing every needle; returns the line.
    #[track_caller]
    pub fn expect_refusal(&self, needles: &[&str]) -> String {
        let line = self.expect_one_error_line();
        assert!(
            line.starts_with("codex-autoresearch: error: "),
            "not an error line: {line}"
        );
        for n in needles {
            assert!(line.contains(n), "`{n}` missing from: {line}");
        }
        line
    }
}

/// Everything a refused run must leave exactly as it was.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub head: String,
    pub symbolic_head: String,
    pub refs: String,
    pub index: String,
    pub status: String,
    /// Every file of the working tree outside `.git/` and the engine's directory, with its content.
    pub files: std::collections::BTreeMap<String, Vec<u8>>,
}

fn walk_files(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let rel = p
            .strip_prefix(root)
            .expect("inside root")
            .to_string_lossy()
            .into_owned();
        if rel == ".git" || rel == ".autoresearch" || rel == ENGINE {
            continue;
        }
        let ft = e.file_type().expect("file type");
        if ft.is_dir() {
            walk_files(root, &p, out);
        } else {
            out.insert(rel, fs::read(&p).unwrap_or_default());
        }
    }
}

impl TestRepo {
    /// Runs git in the repository; returns whether it succeeded (for commands expected to fail).
    pub fn git_ok(&self, args: &[&str]) -> bool {
        let mut cmd = Command::new("git");
        hermetic(&mut cmd, &self.aux);
        cmd.args(args)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .output()
            .expect("git")
            .status
            .success()
    }

    /// Runs git and returns stdout without asserting success (empty on failure).
    pub fn git_lossy(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("git");
        hermetic(&mut cmd, &self.aux);
        let o = cmd
            .args(args)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .output()
            .expect("git");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Captures HEAD, refs, index, status and every working-tree file.
    pub fn snapshot(&self) -> Snapshot {
        let mut files = std::collections::BTreeMap::new();
        walk_files(&self.root, &self.root, &mut files);
        Snapshot {
            head: self.git_lossy(&["rev-parse", "-q", "--verify", "HEAD"]),
            symbolic_head: fs::read_to_string(self.root.join(".git/HEAD")).unwrap_or_default(),
            refs: self.git_lossy(&["for-each-ref", "--format=%(refname) %(objectname)"]),
            index: self.git_lossy(&["ls-files", "-s"]),
            status: self.git_lossy(&["status", "--porcelain", "--untracked-files=all"]),
            files,
        }
    }

    /// Asserts that nothing changed since `before` and that no results, state or lessons exist.
    #[track_caller]
    pub fn assert_untouched(&self, before: &Snapshot) {
        let after = self.snapshot();
        assert_eq!(&after, before, "a refused run changed the repository");
        for f in [
            RESULTS,
            STATE,
            LESSONS,
            MARCH_RESULTS,
            MARCH_STATE,
            MARCH_LESSONS,
        ] {
            assert!(!self.exists(f), "{f} was created by a refused run");
        }
    }

    /// Returns the arguments of a `run` with the usual required flags plus `extra`.
    pub fn loop_args(verify: &str, agent: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "run",
            "--goal",
            "lower the number",
            "--scope",
            "src/**",
            "--metric",
            "value",
            "--direction",
            "lower",
            "--verify",
            verify,
            "--agent",
            "command",
            "--agent-cmd",
            agent,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// Runs the binary with owned arguments.
    pub fn run_owned(&self, args: &[String]) -> Run {
        self.cmd().args(args).output().expect("run binary").into()
    }

    /// Returns the path of the one file named `name` anywhere in the work tree outside `.git/`
    /// (an artifact whose directory depends on the layout and the date, e.g. `findings.json`);
    /// panics when there is none or more than one.
    pub fn find_artifact(&self, name: &str) -> PathBuf {
        fn walk(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
            for e in fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.file_name().is_some_and(|n| n == ".git") {
                    continue;
                }
                if p.is_dir() {
                    walk(&p, name, out);
                } else if p.file_name().is_some_and(|n| n == name) {
                    out.push(p);
                }
            }
        }
        let mut found = Vec::new();
        walk(&self.root, name, &mut found);
        match found.as_slice() {
            [one] => one.clone(),
            [] => panic!("no {name} in the work tree"),
            many => panic!("{} files named {name}: {many:?}", many.len()),
        }
    }

    /// Returns the text of a file outside the repository (in `aux`), or "" when it is missing.
    pub fn aux_read(&self, name: &str) -> String {
        fs::read_to_string(self.aux.join(name)).unwrap_or_default()
    }
}

/// An agent that moves `src/value.txt` by `step` (e.g. -1 or +1) every turn and says so.
pub fn stepping_agent(repo: &TestRepo, name: &str, step: i64) -> String {
    repo.script(
        name,
        &format!(
            "cat > /dev/null\nv=$(cat src/value.txt)\nn=$((v + ({step})))\necho $n > src/value.txt\necho \"set value to $n\""
        ),
    )
}

/// Polls `cond` every 50 ms for up to 60 s; panics with `what` if it never holds.
#[track_caller]
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < end {
        if cond() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

// ---- Helpers for the exec and config_file modules ----

/// The reference's per-row exec payload keys (extra keys are allowed beside them).
pub const EXEC_ROW_KEYS: [&str; 7] = [
    "iteration",
    "commit",
    "metric",
    "delta",
    "guard",
    "status",
    "description",
];

/// The reference's completion payload keys (extra keys are allowed beside them).
pub const EXEC_COMPLETION_KEYS: [&str; 10] = [
    "status",
    "baseline",
    "best",
    "best_iteration",
    "total_iterations",
    "keeps",
    "discards",
    "crashes",
    "improved",
    "exit_code",
];

impl Run {
    /// Parses every stdout line as one JSON object; panics on anything else (blank lines too).
    #[track_caller]
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!(
                        "stdout line is not JSON ({e}): {l:?}\n--- stdout\n{}\n--- stderr\n{}",
                        self.stdout, self.stderr
                    )
                });
                assert!(v.is_object(), "stdout line is not a JSON object: {l}");
                v
            })
            .collect()
    }

    /// Asserts exec's failure contract: exit 2, nothing on stdout, and a last stderr line
    /// `{"error": "<one line>", "exit_code": 2}` whose error contains every needle; returns the
    /// error text.
    #[track_caller]
    pub fn expect_exec_error(&self, needles: &[&str]) -> String {
        self.expect_code(2);
        assert_eq!(self.stdout, "", "exec printed on stdout despite failing");
        self.exec_error_line(needles)
    }

    /// Checks the last stderr line is exec's JSON error with exit code 2; returns the error text.
    #[track_caller]
    pub fn exec_error_line(&self, needles: &[&str]) -> String {
        let last = *self
            .stderr_lines()
            .last()
            .unwrap_or_else(|| panic!("stderr is empty; stdout:\n{}", self.stdout));
        let v: Value = serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("last stderr line is not JSON ({e}): {last}"));
        let obj = v.as_object().expect("an object");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["error", "exit_code"], "{last}");
        assert!(
            v["exit_code"].is_u64() && v["exit_code"] == 2,
            "exit_code must be the integer 2: {last}"
        );
        let error = v["error"].as_str().expect("error is a string").to_string();
        assert!(
            !error.is_empty() && !error.contains('\n'),
            "error must be one line: {error:?}"
        );
        for n in needles {
            assert!(
                error.contains(n),
                "`{n}` missing from the exec error: {error}"
            );
        }
        error
    }
}

/// Asserts `v` carries the reference's row payload exactly typed; extra keys are allowed.
#[track_caller]
pub fn assert_exec_row(v: &Value) {
    for k in EXEC_ROW_KEYS {
        assert!(v.get(k).is_some(), "row payload lacks `{k}`: {v}");
    }
    assert!(v["iteration"].is_u64(), "iteration must be an integer: {v}");
    for k in ["metric", "delta"] {
        let f = v[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k} must be a number: {v}"));
        assert!(f.is_finite(), "{k} must be finite: {v}");
    }
    for k in ["commit", "guard", "status", "description"] {
        assert!(v[k].is_string(), "{k} must be a string: {v}");
    }
    assert_ne!(v["status"], "completed", "a row is never `completed`: {v}");
    if v["status"] == "keep" {
        let c = v["commit"].as_str().unwrap();
        assert!(
            c != "-" && !c.is_empty(),
            "a keep must name its commit: {v}"
        );
    }
}

/// Asserts `v` is the reference's completion payload, exactly typed; extra keys are allowed.
#[track_caller]
pub fn assert_exec_completion(v: &Value) {
    for k in EXEC_COMPLETION_KEYS {
        assert!(v.get(k).is_some(), "completion payload lacks `{k}`: {v}");
    }
    assert_eq!(v["status"], "completed", "{v}");
    for k in ["baseline", "best"] {
        assert!(
            v[k].as_f64().is_some_and(f64::is_finite),
            "{k} must be a finite number: {v}"
        );
    }
    for k in [
        "best_iteration",
        "total_iterations",
        "keeps",
        "discards",
        "crashes",
        "exit_code",
    ] {
        assert!(v[k].is_u64(), "{k} must be an integer: {v}");
    }
    assert!(v["improved"].is_boolean(), "improved must be a bool: {v}");
}

/// Parses a TSV number column (`-3`, `+2`, `0.5`).
pub fn tsv_num(s: &str) -> f64 {
    s.trim_start_matches('+')
        .parse()
        .unwrap_or_else(|_| panic!("not a number in the TSV: {s}"))
}

impl TestRepo {
    /// Returns the arguments of an `exec` with every required flag (command agent) plus `extra`.
    pub fn exec_args(verify: &str, agent: &str, iterations: u64, extra: &[&str]) -> Vec<String> {
        let mut args = TestRepo::loop_args(verify, agent, &[]);
        args[0] = "exec".into();
        args.push("--iterations".into());
        args.push(iterations.to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// Runs the binary with owned arguments and extra environment variables.
    pub fn run_env(&self, args: &[String], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.cmd();
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(args).output().expect("run binary").into()
    }

    /// Returns the raw bytes of a file of the repository.
    pub fn read_bytes(&self, path: &str) -> Vec<u8> {
        fs::read(self.root.join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
    }
}

#[path = "support_proc.rs"]
mod proc;
#[path = "support_replay.rs"]
mod replay;
pub use proc::*;
pub use replay::*;
