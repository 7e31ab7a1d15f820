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
        let mut args = vec![
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
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Returns the data rows of the results log as columns.
    pub fn rows(&self) -> Vec<Vec<String>> {
        let text = self.read("research-results.tsv");
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
        serde_json::from_str(&self.read("autoresearch-state.json")).expect("state json")
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
