//! A measurement that does not see or change the tree it measures: the baseline refuses a verify
//! that reads the engine's files and a verify or guard that edits tracked files; the default
//! format reads `name: value` lines and units; fix mode reads a missing count as 0.

use crate::support::*;

/// The error line of a refused run (other lines may be notes).
#[track_caller]
fn error_line(r: &Run) -> String {
    r.expect_code(2);
    r.stderr_lines()
        .into_iter()
        .find(|l| l.starts_with("codex-autoresearch: error: "))
        .unwrap_or_else(|| panic!("no error line in:\n{}", r.stderr))
        .to_string()
}

/// `args` with the value after `flag` replaced.
fn with(mut args: Vec<String>, flag: &str, value: &str) -> Vec<String> {
    let i = args.iter().position(|a| a == flag).expect("flag present") + 1;
    args[i] = value.to_string();
    args
}

#[track_caller]
fn assert_no_run_files(repo: &TestRepo) {
    for f in [
        "autoresearch-results/results.tsv",
        "autoresearch-results/state.json",
        "autoresearch-results/lessons.md",
    ] {
        assert!(!repo.exists(f), "{f} is left after a refused baseline");
    }
    assert_eq!(repo.status(), "", "the tree is as it was");
}

#[test]
fn a_verify_that_reads_the_engines_files_is_refused_at_the_baseline() {
    let repo = TestRepo::with_files(&[("src/a.txt", "TODO one\nTODO two\n")]);
    let agent = repo.script("agent.sh", "cat > /dev/null\necho idle");
    let r = repo.run_loop("grep -rn TODO . | wc -l", &agent, &["--iterations", "1"]);
    let line = error_line(&r);
    for needle in [
        "verify opened the engine's own files at the baseline",
        "autoresearch-results/engine/",
        "--exclude-dir=autoresearch-results",
        "--artifacts-dir",
    ] {
        assert!(line.contains(needle), "`{needle}` missing from: {line}");
    }
    assert_no_run_files(&repo);

    // The root artifacts have a stand-in at the baseline: a glob that would read the results
    // log once it exists is caught before it does.
    let r = repo.run_loop(
        "cat autoresearch-results/*.tsv 2>/dev/null | wc -l",
        &agent,
        &["--iterations", "1"],
    );
    let line = error_line(&r);
    assert!(
        line.contains("(autoresearch-results/results.tsv)"),
        "{line}"
    );
    assert_no_run_files(&repo);

    // A prompt stand-in too: a search of Markdown files would read the agent's prompts.
    let r = repo.run_loop(
        "grep -rn --include='*.md' TODO . | wc -l",
        &agent,
        &["--iterations", "1"],
    );
    let line = error_line(&r);
    assert!(
        line.contains("(autoresearch-results/engine/, autoresearch-results/lessons.md)"),
        "{line}"
    );
    assert_no_run_files(&repo);
    // Listing the directory is no read (test runners and linters walk every directory).
    let r = repo.run_loop(
        "find . -name '*.txt' -path './src/*' | wc -l",
        &agent,
        &["--iterations", "1"],
    );
    r.expect_code(0);
    assert_eq!(repo.rows()[0][2], "1");

    // The advice works: the same count over tracked files only, or the artifacts elsewhere.
    let r = repo.run_loop(
        "git grep -n TODO | wc -l",
        &agent,
        &["--iterations", "1", "--fresh"],
    );
    r.expect_code(0);
    assert_eq!(repo.rows()[0][2], "2");
    let outside = repo.aux.join("artifacts");
    let dir = outside.display().to_string();
    let r = repo.run_loop(
        "grep -rn TODO src | wc -l",
        &agent,
        &["--iterations", "1", "--artifacts-dir", &dir, "--fresh"],
    );
    r.expect_code(0);
}

#[test]
fn an_auto_fixing_guard_is_refused_naming_the_files_and_nothing_is_lost() {
    let repo = number_repo(10);
    repo.write("src/code.py", "x=1\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "code"]);
    // Like a formatter with `fix = true`: it passes, having rewritten the file.
    let guard = repo.script("fmt.sh", "printf 'x = 1\\n' > src/code.py\nexit 0");
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let r = repo.run_loop(
        "sh measure.sh",
        &agent,
        &["--iterations", "1", "--guard", &guard],
    );
    let line = error_line(&r);
    for needle in [
        "the guard changed tracked files at the baseline",
        "src/code.py",
        "--no-fix",
    ] {
        assert!(line.contains(needle), "`{needle}` missing from: {line}");
    }
    assert_eq!(repo.read("src/code.py"), "x=1\n", "your file is put back");
    assert_no_run_files(&repo);
    // The guard's version is kept as a blob, named on the console.
    let blob = r
        .stderr
        .split("kept as blob ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no blob named in:\n{}", r.stderr));
    assert_eq!(repo.git(&["cat-file", "-p", blob]), "x = 1\n");

    // The same from verify.
    let r = repo.run_loop(
        "sed -i 's/x=1/x = 1/' src/code.py; cat src/value.txt",
        &agent,
        &["--iterations", "1"],
    );
    let line = error_line(&r);
    assert!(
        line.contains("verify changed tracked files at the baseline (src/code.py"),
        "{line}"
    );
    assert_eq!(repo.read("src/code.py"), "x=1\n");

    // Files a guard creates are its byproducts: the run starts and never commits them.
    let guard = repo.script(
        "cache.sh",
        "mkdir -p src/__pycache__; echo c > src/__pycache__/x.pyc",
    );
    let r = repo.run_loop(
        "sh measure.sh",
        &agent,
        &["--iterations", "1", "--guard", &guard],
    );
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep"]);
    assert!(!repo.exists("src/__pycache__"));
}

#[test]
fn a_named_line_and_a_number_with_a_unit_are_read_without_a_regex() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let args = |verify: &str, direction: &str| {
        let a = TestRepo::loop_args(verify, &agent, &["--iterations", "1", "--fresh"]);
        with(with(a, "--metric", "score"), "--direction", direction)
    };
    // `score: 0.93`: the value of the line named like --metric (any case), wherever it is.
    // (Scripts outside the repository: a file verify names is protected from the agent.)
    let verify = repo.script(
        "score.sh",
        "echo 'collecting...'; echo \"Score: 0.$(cat src/value.txt)3\"; echo done",
    );
    let r = repo.run_owned(&args(&verify, "higher"));
    r.expect_code(0);
    let metrics: Vec<String> = repo.rows().iter().map(|r| r[2].clone()).collect();
    assert_eq!(metrics, ["0.103", "0.93"]);
    assert_eq!(repo.statuses(), ["baseline", "keep"]);

    // `12ms`: a number with a unit on the last line.
    let verify = repo.script("ms.sh", "echo \"1$(cat src/value.txt)ms\"");
    let r = repo.run_owned(&args(&verify, "lower"));
    r.expect_code(0);
    let metrics: Vec<String> = repo.rows().iter().map(|r| r[2].clone()).collect();
    assert_eq!(metrics, ["19", "18"]);

    // Nothing readable: the refusal says which format would read it.
    let r = repo.run_owned(&args(
        "echo \"=== $(cat src/value.txt) failed in 0.2s ===\"",
        "lower",
    ));
    let line = error_line(&r);
    assert!(
        line.contains(r"use --verify-format regex --metric-regex '(\d+) failed'"),
        "{line}"
    );
}

#[test]
fn fix_mode_reads_a_missing_failure_count_as_zero_and_stops() {
    let repo = TestRepo::with_files(&[
        ("src/failing.txt", "3\n"),
        // Like pytest: `N failed` only while tests fail, and exit 1 then.
        (
            "test.sh",
            "n=$(cat src/failing.txt)\nif [ \"$n\" -gt 0 ]; then echo \"=== $n failed, 2 passed in 0.1s ===\"; exit 1; fi\necho '=== 5 passed in 0.1s ==='\n",
        ),
    ]);
    let agent = repo.script(
        "agent.sh",
        "cat > /dev/null\nn=$(($(cat src/failing.txt) - 1))\necho $n > src/failing.txt\necho \"fix one, $n left\"",
    );
    let args = with(
        TestRepo::loop_args(
            "sh test.sh",
            &agent,
            &[
                "--iterations",
                "10",
                "--mode",
                "fix",
                "--verify-format",
                "regex",
                "--metric-regex",
                r"(\d+) failed",
            ],
        ),
        "--metric",
        "failures",
    );
    let r = repo.run_owned(&args);
    r.expect_code(0);
    let metrics: Vec<String> = repo.rows().iter().map(|r| r[2].clone()).collect();
    assert_eq!(metrics, ["3", "2", "1", "0"]);
    assert!(r.stdout.contains("goal reached"), "{}", r.stdout);

    // A verify that fails without printing the count is no measurement, even in fix mode.
    let repo = TestRepo::with_files(&[("src/failing.txt", "0\n")]);
    let args = with(args, "--verify", "echo 'collection error'; exit 2");
    let r = repo.run_owned(&args);
    let line = error_line(&r);
    assert!(
        line.contains("the baseline verify gives no metric"),
        "{line}"
    );
    assert!(line.contains("exit 2"), "{line}");
}

#[test]
fn stand_ins_are_no_run_even_when_the_engine_is_killed_during_the_baseline() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let slow = repo.script("slow.sh", "sleep 30; cat src/value.txt");
    let mut engine = repo
        .cmd()
        .args(TestRepo::loop_args(&slow, &agent, &["--iterations", "1"]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the engine");
    wait_for("the stand-ins of the baseline", || {
        repo.exists("autoresearch-results/results.tsv")
            && repo.exists("autoresearch-results/state.json")
    });
    let s = repo.run(&["status"]);
    s.expect_code(0);
    // The stand-ins are not a run's log: the live run is still measuring its baseline.
    assert!(s.stdout.contains("a run is starting"), "{}", s.stdout);
    assert!(s.stdout.contains("phase: baseline"), "{}", s.stdout);
    engine.kill().expect("kill the engine");
    engine.wait().expect("reap the engine");

    let r = repo.run_loop("sh measure.sh", &agent, &["--iterations", "1"]);
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep"]);
}

/// A recursive grep that leaves out the run's files but not `.git` reads git's reflogs, which
/// grow with every trial commit (`experiment: remove a TODO` adds the word each time): refused at
/// the baseline; with `--exclude-dir=.git` as advised, a real removal is kept.
#[test]
fn a_verify_reading_gits_reflogs_is_refused_and_the_advice_works() {
    let repo = TestRepo::with_files(&[("src/a.txt", "TODO one\nTODO two\nTODO three\n")]);
    let agent = repo.script(
        "agent.sh",
        "cat > /dev/null\nsed -i '1d' src/a.txt\necho 'remove a TODO'",
    );
    let without_git = "grep -rn --exclude-dir=autoresearch-results --exclude-dir=.codex-autoresearch TODO . | wc -l";
    let r = repo.run_loop(without_git, &agent, &["--iterations", "1"]);
    let line = error_line(&r);
    assert!(line.contains(".git/logs/HEAD"), "{line}");
    assert!(line.contains("--exclude-dir=.git"), "{line}");
    assert_no_run_files(&repo);

    let advised = "grep -rn --exclude-dir=autoresearch-results --exclude-dir=.codex-autoresearch --exclude-dir=.git TODO . | wc -l";
    repo.run_loop(advised, &agent, &["--iterations", "2", "--no-confirm"])
        .expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep", "keep"]);
}
