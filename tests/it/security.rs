//! Security mode: the mode-specific flags refused outside their modes, `--diff BASE` narrowing
//! the scope to the changed files, and the webapp fixture's planted vulnerabilities (repro
//! scripts that fail while they exist, scripted findings that quote the right lines).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::*;

const WEBAPP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/security/webapp"
);

/// `config --check --json` of a security run with `extra` flags: the JSON object.
fn check_json(repo: &TestRepo, extra: &[&str]) -> Value {
    let mut args = vec![
        "config",
        "--check",
        "--json",
        "--mode",
        "security",
        "--goal",
        "review the pull request",
        "--agent",
        "command",
        "--agent-cmd",
        "true",
    ];
    args.extend_from_slice(extra);
    let r = repo.run(&args);
    serde_json::from_str(r.stdout.trim())
        .unwrap_or_else(|e| panic!("{e}\n--- stdout\n{}\n--- stderr\n{}", r.stdout, r.stderr))
}

/// main holds a.py and lib/b.py; branch `pr` changes lib/b.py and adds lib/c.py.
fn pull_request() -> TestRepo {
    let repo = TestRepo::with_files(&[("a.py", "a\n"), ("lib/b.py", "b\n")]);
    repo.git(&["checkout", "-q", "-b", "pr"]);
    repo.write("lib/b.py", "b2\n");
    repo.write("lib/c.py", "c\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "pr"]);
    repo
}

#[test]
fn mode_flags_are_refused_outside_their_modes() {
    let repo = number_repo(5);
    let cases: [(&[&str], &str); 6] = [
        (
            &["--fail-on", "high"],
            "--fail-on only applies with --mode security (not --mode loop)",
        ),
        (
            &["--focus", "auth"],
            "--focus only applies with --mode security",
        ),
        (
            &["--diff", "main"],
            "--diff only applies with --mode security",
        ),
        (
            &["--symptom", "slow"],
            "--symptom only applies with --mode debug",
        ),
        (
            &["--repro", "false"],
            "--repro only applies with --mode debug",
        ),
        (
            &["--fix"],
            "--fix only applies with --mode debug or --mode security",
        ),
    ];
    for (flags, message) in cases {
        let r = repo.run_loop("cat n.txt", "true", flags);
        r.expect_refusal(&[message]);
    }
}

#[test]
fn diff_limits_the_scope_to_the_changed_files() {
    let repo = pull_request();
    // The whole repository: three tracked files; since main: lib/b.py and lib/c.py.
    assert_eq!(check_json(&repo, &["--scope", "."])["editable"], 3);
    assert_eq!(check_json(&repo, &["--diff", "main"])["editable"], 2);
    // With --scope too: the changed files inside it.
    let narrow = check_json(&repo, &["--diff", "main", "--scope", "lib/c.py,a.py"]);
    assert_eq!(narrow["editable"], 1, "{narrow}");
}

#[test]
fn diff_refuses_a_base_that_is_not_a_commit_or_nothing_to_review() {
    let repo = pull_request();
    let base = [
        "run", "--mode", "security", "--goal", "review", "--agent", "command",
    ];
    let with = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(&["--agent-cmd", "true"]);
        a.extend_from_slice(extra);
        repo.run(&a)
    };
    with(&["--diff", "no-such-branch"]).expect_refusal(&[
        "--diff no-such-branch: not a commit in this repository",
        "fetch-depth: 0",
    ]);
    with(&["--diff", "main", "--scope", "a.py"]).expect_refusal(&[
        "--diff main: no file changed since main within --scope a.py; nothing to review",
    ]);
    with(&["--diff", "pr"])
        .expect_refusal(&["--diff pr: no file changed since pr; nothing to review"]);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn python(dir: &Path, script: &str) -> i32 {
    let out = Command::new("python3")
        .arg(script)
        .current_dir(dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3");
    out.status.code().unwrap_or(-1)
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from} not in {}", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

#[test]
fn webapp_repros_fail_while_the_vulnerabilities_exist() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(Path::new(WEBAPP), dir.path());
    let d = dir.path();
    assert_eq!(python(d, "repro/sqli.py"), 1);
    assert_eq!(python(d, "repro/traversal.py"), 1);
    let app = d.join("app.py");
    edit(
        &app,
        r#"query = "SELECT name, email FROM users WHERE name = '" + name + "'"
    return db.execute(query).fetchall()"#,
        r#"return db.execute("SELECT name, email FROM users WHERE name = ?", (name,)).fetchall()"#,
    );
    assert_eq!(python(d, "repro/sqli.py"), 0, "the SQL injection is fixed");
    assert_eq!(python(d, "repro/traversal.py"), 1);
    edit(
        &app,
        "    path = os.path.join(root, name)\n",
        "    path = os.path.realpath(os.path.join(root, name))\n    if not path.startswith(os.path.realpath(root) + os.sep):\n        raise PermissionError(name)\n",
    );
    assert_eq!(python(d, "repro/traversal.py"), 0, "the traversal is fixed");
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect()
}

#[test]
fn scripted_findings_quote_the_planted_lines() {
    let app = std::fs::read_to_string(format!("{WEBAPP}/app.py")).unwrap();
    let lines: Vec<&str> = app.lines().collect();
    let read = |name: &str| -> Value {
        let text = std::fs::read_to_string(format!("{WEBAPP}/findings/{name}.json")).unwrap();
        assert_eq!(text.trim().lines().count(), 1, "{name}: one line");
        serde_json::from_str(&text).unwrap()
    };
    for (name, cwe, start) in [("sqli", "CWE-89", 18), ("traversal", "CWE-22", 23)] {
        let f = read(name);
        assert_eq!(f["cwe"], cwe);
        let loc = &f["locations"][0];
        assert_eq!(loc["start_line"], start);
        let (s, e) = (start as usize, loc["end_line"].as_u64().unwrap() as usize);
        let quoted = lines[s - 1..e].join("\n");
        assert_eq!(
            squash(&quoted),
            squash(loc["code"].as_str().unwrap()),
            "{name}"
        );
    }
    let unfounded = read("unfounded");
    assert!(unfounded["locations"][0]["start_line"].as_u64().unwrap() as usize > lines.len());
    assert_eq!(read("repro-passes")["repro"], "python3 -c 'pass'");
    assert_eq!(read("clean")["clean"], true);
}
