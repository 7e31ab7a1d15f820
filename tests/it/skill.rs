//! `skill install` and `skill show`, and the real pinned Codex finding the installed skill: a
//! `$codex-autoresearch` prompt puts SKILL.md into the model request, and the shell tool offers
//! the escalation parameters SKILL.md tells Codex to use.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::codex::codex_bin;
use crate::mock_responses::*;
use crate::support::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const DIR: &str = ".agents/skills/codex-autoresearch";

fn shipped(rel: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(rel)).unwrap()
}

fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

#[track_caller]
fn assert_installed(dir: &Path) {
    assert_eq!(read(dir, "SKILL.md"), shipped("SKILL.md"));
    assert_eq!(
        read(dir, "agents/openai.yaml"),
        shipped("agents/openai.yaml")
    );
}

#[test]
fn install_repo_writes_both_files_and_again_is_already_installed() {
    let repo = number_repo(1);
    let r = repo.run(&["skill", "install", "--repo"]);
    r.expect_code(0);
    let dir = repo.root.join(DIR);
    assert_installed(&dir);
    assert!(
        r.stdout.contains(&dir.display().to_string()),
        "{}",
        r.stdout
    );
    // Without a flag, from a subdirectory: the same place, already there.
    std::fs::create_dir_all(repo.root.join("src/deep")).unwrap();
    let again = repo
        .cmd()
        .current_dir(repo.root.join("src/deep"))
        .args(["skill", "install"])
        .output()
        .map(Run::from)
        .unwrap();
    again.expect_code(0);
    assert_eq!(
        again.stdout.lines().next().unwrap_or_default(),
        format!("already installed: {}", dir.display())
    );
    // `--repo DIR` names the repository from elsewhere.
    let other = number_repo(2);
    other
        .cmd()
        .current_dir(&repo.aux)
        .args(["skill", "install", "--repo"])
        .arg(&other.root)
        .output()
        .map(Run::from)
        .unwrap()
        .expect_code(0);
    assert_installed(&other.root.join(DIR));
}

#[test]
fn a_repo_install_is_excluded_so_a_run_over_the_whole_repository_starts() {
    use std::os::unix::fs::PermissionsExt as _;
    let repo = number_repo(5);
    let r = repo.run(&["skill", "install"]);
    r.expect_code(0);
    assert!(
        r.stdout.contains(".git/info/exclude") && r.stdout.contains("git add -f"),
        "{}",
        r.stdout
    );
    let exclude = std::fs::read_to_string(repo.root.join(".git/info/exclude")).unwrap();
    assert!(
        exclude
            .lines()
            .any(|l| l == "/.agents/skills/codex-autoresearch/"),
        "{exclude}"
    );
    for rel in ["SKILL.md", "agents/openai.yaml"] {
        let mode = std::fs::metadata(repo.root.join(DIR).join(rel))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "{rel}");
    }
    assert_eq!(repo.status(), "", "no untracked file");
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let mut args = TestRepo::loop_args("sh measure.sh", &agent, &["--iterations", "1"]);
    let scope = args.iter().position(|a| a == "src/**").unwrap();
    args[scope] = ".".into();
    let run = repo.run_owned(&args);
    run.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep"], "{}", run.stderr);
    // Once committed (`git add -f`), there is nothing to hide: no line about it.
    repo.git(&["add", "-f", DIR]);
    repo.git(&["commit", "-qm", "share the skill"]);
    let r = repo.run(&["skill", "install"]);
    r.expect_code(0);
    assert!(!r.stdout.contains("info/exclude"), "{}", r.stdout);
}

#[test]
fn a_changed_copy_is_refused_without_force_and_replaced_with_it() {
    let repo = number_repo(1);
    repo.run(&["skill", "install"]).expect_code(0);
    let skill_md = repo.root.join(DIR).join("SKILL.md");
    std::fs::write(&skill_md, "my own edits\n").unwrap();
    let line = repo
        .run(&["skill", "install", "--repo"])
        .expect_refusal(&[&skill_md.display().to_string(), "--force"]);
    assert!(line.contains("differs"), "{line}");
    assert_eq!(read(&repo.root.join(DIR), "SKILL.md"), "my own edits\n");
    let r = repo.run(&["skill", "install", "--force"]);
    r.expect_code(0);
    assert!(r.stdout.starts_with("replaced"), "{}", r.stdout);
    assert_installed(&repo.root.join(DIR));
}

#[test]
fn user_install_honours_home_and_outside_a_repository_needs_it() {
    let repo = number_repo(1);
    let outside = repo.aux.join("elsewhere");
    std::fs::create_dir_all(&outside).unwrap();
    let run_in = |dir: &Path, args: &[&str]| -> Run {
        repo.cmd()
            .current_dir(dir)
            .args(args)
            .output()
            .map(Run::from)
            .unwrap()
    };
    run_in(&outside, &["skill", "install"])
        .expect_refusal(&["not inside a git repository", "--user"]);
    run_in(&outside, &["skill", "install", "--user"]).expect_code(0);
    // The test harness sets HOME to `aux`.
    assert_installed(&repo.aux.join(DIR));
    assert!(!repo.exists(".agents"));
    run_in(&outside, &["skill", "install", "--user", "--repo"]).expect_code(2);
}

#[test]
fn show_prints_skill_md_and_where_copies_are() {
    let repo = number_repo(1);
    let r = repo.run(&["skill", "show"]);
    r.expect_code(0);
    assert_eq!(r.stdout, shipped("SKILL.md"));
    assert!(r.stderr.contains("not installed"), "{}", r.stderr);
    repo.run(&["skill", "install"]).expect_code(0);
    repo.run(&["skill", "install", "--user"]).expect_code(0);
    std::fs::write(repo.aux.join(DIR).join("SKILL.md"), "changed").unwrap();
    let r = repo.run(&["skill", "show"]);
    assert_eq!(r.stdout, shipped("SKILL.md"));
    let in_repo = format!(
        "{} (the same as this binary's)",
        repo.root.join(DIR).display()
    );
    let in_home = format!("{} (differs", repo.aux.join(DIR).display());
    assert!(r.stderr.contains(&in_repo), "{}", r.stderr);
    assert!(r.stderr.contains(&in_home), "{}", r.stderr);
}

/// Runs the real `codex exec` in `repo` with `HOME=home` against `server`; returns the first
/// model request's body.
fn codex_request(bin: &Path, repo: &TestRepo, home: &Path, server: &MockServer) -> Value {
    let codex_home = repo.aux.join("codex-home");
    std::fs::create_dir_all(&codex_home).unwrap();
    let mut cmd = Command::new(bin);
    hermetic(&mut cmd, home);
    cmd.args(["exec", "--json", "--ephemeral", "-s", "workspace-write"])
        .arg("-C")
        .arg(&repo.root)
        .args(["-m", MOCK_MODEL])
        .args(codex_args(&server.base_url()))
        .arg("$codex-autoresearch lower the value")
        .env("CODEX_HOME", &codex_home)
        .env(MOCK_API_KEY_ENV, "dummy")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn codex");
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("codex exec did not finish in 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "codex exec: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.responses_requests()[0].body.clone()
}

/// The text of every input message of `role`.
fn texts(body: &Value, role: &str) -> Vec<String> {
    body["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == role)
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["text"].as_str().map(str::to_string))
        .collect()
}

/// Asserts Codex injected the installed SKILL.md from `dir` on the `$` mention, kept the
/// explicit-only skill out of the implicit list, and offers the escalation SKILL.md asks for.
#[track_caller]
fn assert_skill_reached_the_model(body: &Value, dir: &Path) {
    let injected: Vec<String> = texts(body, "user")
        .into_iter()
        .filter(|t| t.starts_with("<skill>"))
        .collect();
    assert_eq!(injected.len(), 1, "{injected:?}");
    let skill = &injected[0];
    assert!(skill.contains("<name>codex-autoresearch</name>"), "{skill}");
    let path = format!("<path>{}</path>", dir.join("SKILL.md").display());
    assert!(skill.contains(&path), "{path} not in {skill}");
    assert!(
        skill.contains("    codex-autoresearch launch RUN_FLAGS"),
        "{skill}"
    );
    // allow_implicit_invocation: false keeps it out of the list the model matches tasks on.
    let listed = texts(body, "developer")
        .iter()
        .any(|t| t.contains("- codex-autoresearch:"));
    assert!(
        !listed,
        "an explicit-only skill was listed for implicit use"
    );
    let tool = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "exec_command")
        .expect("the exec_command tool")
        .clone();
    let props = &tool["parameters"]["properties"];
    let modes = props["sandbox_permissions"]["enum"].as_array().unwrap();
    assert!(modes.contains(&Value::from("require_escalated")), "{tool}");
    assert!(props["justification"].is_object(), "{tool}");
}

#[test]
fn the_real_codex_finds_the_repo_skill_on_a_dollar_mention() {
    let Some(bin) = codex_bin() else { return };
    let repo = number_repo(10);
    repo.run(&["skill", "install", "--repo"]).expect_code(0);
    let server = MockServer::start(vec![MockReply::Sse(reply_message("ok", None))]);
    let body = codex_request(&bin, &repo, &repo.aux, &server);
    assert_skill_reached_the_model(&body, &repo.root.join(DIR));
}

#[test]
fn the_real_codex_finds_the_user_skill_under_home() {
    let Some(bin) = codex_bin() else { return };
    let repo = number_repo(10);
    let home: PathBuf = repo.aux.join("home");
    std::fs::create_dir_all(&home).unwrap();
    repo.cmd()
        .env("HOME", &home)
        .args(["skill", "install", "--user"])
        .output()
        .map(Run::from)
        .unwrap()
        .expect_code(0);
    let server = MockServer::start(vec![MockReply::Sse(reply_message("ok", None))]);
    let body = codex_request(&bin, &repo, &home, &server);
    assert_skill_reached_the_model(&body, &home.join(DIR));
}
