//! `config --check`: validates as `run` would, measures the baseline in a scratch checkout, prints
//! at most 10 lines (or one JSON object) and writes nothing in the repository.

use std::path::Path;

use serde_json::Value;

use crate::support::*;

/// The run flags of a check against `repo` with this verify and extra flags.
fn flags<'a>(verify: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "config",
        "--check",
        "--goal",
        "lower the value",
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
        "true",
        "--iterations",
        "4",
    ];
    v.extend_from_slice(extra);
    v
}

/// Files under `.git/objects` and `.git/refs`.
fn git_files(root: &Path) -> usize {
    fn count(p: &Path) -> usize {
        std::fs::read_dir(p).map_or(0, |d| {
            d.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        count(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
    }
    count(&root.join(".git/objects")) + count(&root.join(".git/refs"))
}

/// The scratch directories (`autoresearch-confirm-*`) in `tmp`.
fn scratch_dirs(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("autoresearch-confirm-"))
        .collect()
}

#[test]
fn a_valid_configuration_prints_the_baseline_in_at_most_10_lines_and_writes_nothing() {
    let repo = number_repo(10);
    let before = repo.snapshot();
    let objects = git_files(&repo.root);
    let tmp = tempfile::tempdir().unwrap();
    let r: Run = repo
        .cmd()
        .args(flags(
            "sh measure.sh",
            &["--guard", "test -f src/value.txt"],
        ))
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap()
        .into();
    r.expect_code(0);
    let lines = r.stdout_lines();
    assert!(lines.len() <= 10, "{}", r.stdout);
    assert!(
        lines[0].starts_with("ok: lower the value (loop) — 1 file editable in src/**")
            && lines[0].contains("evaluator measure.sh protected"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("verify: sh measure.sh → 10 (exact: 2 runs equal)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("guard: test -f src/value.txt → passed"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("stop: 4 iterations"), "{}", r.stdout);
    let launch = lines.last().unwrap();
    assert!(
        launch.starts_with(
            "launch: codex-autoresearch launch --goal 'lower the value' --scope 'src/**'"
        ) && !launch.contains("--check"),
        "{launch}"
    );
    repo.assert_untouched(&before);
    assert_eq!(git_files(&repo.root), objects, "objects or refs were added");
    assert!(
        !repo.exists("autoresearch-results"),
        "artifacts were created"
    );
    assert!(
        scratch_dirs(tmp.path()).is_empty(),
        "the scratch checkout was left"
    );
}

#[test]
fn a_verify_without_a_metric_is_one_error_line_and_exit_2() {
    let repo = number_repo(10);
    let before = repo.snapshot();
    let r = repo.run(&flags("echo no number here", &[]));
    r.expect_code(2);
    let lines = r.stdout_lines();
    assert_eq!(lines.len(), 1, "{}", r.stdout);
    assert!(
        lines[0].starts_with("error: the baseline verify gives no metric")
            && lines[0].contains("no number here"),
        "{}",
        r.stdout
    );
    repo.assert_untouched(&before);
}

#[test]
fn a_failing_guard_is_an_error_and_exit_2() {
    let repo = number_repo(10);
    let r = repo.run(&flags(
        "sh measure.sh",
        &["--guard", "echo broken test; exit 3"],
    ));
    r.expect_code(2);
    assert!(
        r.stdout
            .starts_with("error: the guard fails on the untouched tree (guard exit 3")
            && r.stdout.contains("broken test"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_refused_preflight_is_reported_like_run_does() {
    let repo = number_repo(10);
    repo.write("src/value.txt", "11\n");
    let r = repo.run(&flags("sh measure.sh", &[]));
    r.expect_code(2);
    assert!(
        r.stdout
            .starts_with("error: uncommitted changes to tracked files: src/value.txt"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_noisy_verify_shows_the_noise_from_baseline_runs() {
    let repo = number_repo(10);
    let r = repo.run(&flags(
        "echo \"10.$AUTORESEARCH_VERIFY_RUN\" # $AUTORESEARCH_VERIFY_ROLE",
        &["--baseline-runs", "4"],
    ));
    r.expect_code(0);
    assert!(r.stdout.contains("noise σ="), "{}", r.stdout);
    assert!(r.stdout.contains("from 4 runs"), "{}", r.stdout);
    // The mean of 10.1 .. 10.4.
    assert!(r.stdout.contains("→ 10.25 ("), "{}", r.stdout);
}

#[test]
fn json_is_one_object_with_the_documented_keys() {
    let repo = number_repo(10);
    let mut args = flags(
        "echo \"10.$AUTORESEARCH_VERIFY_RUN\"",
        &["--json", "--guard", "true"],
    );
    args.push("--baseline-runs");
    args.push("3");
    let r = repo.run(&args);
    r.expect_code(0);
    let v: Value = serde_json::from_str(r.stdout.trim()).expect("one JSON object");
    for k in [
        "valid",
        "reasons",
        "baseline",
        "noise",
        "seconds_per_verify",
        "guard",
        "editable",
        "evaluator",
        "launch",
    ] {
        assert!(v.get(k).is_some(), "no {k}: {v}");
    }
    assert_eq!(v["valid"], true);
    assert_eq!(v["reasons"], serde_json::json!([]));
    assert_eq!(v["baseline"], 10.2);
    assert_eq!(v["noise"]["mode"], "statistical");
    assert!(v["noise"]["sigma"].as_f64().unwrap() > 0.0, "{v}");
    assert_eq!(v["guard"]["passed"], true);
    assert_eq!(v["editable"], 1);
    assert!(
        v["launch"]
            .as_str()
            .unwrap()
            .starts_with("codex-autoresearch launch "),
        "{v}"
    );

    let bad = repo.run(&flags("echo none", &["--json"]));
    bad.expect_code(2);
    let v: Value = serde_json::from_str(bad.stdout.trim()).expect("one JSON object");
    assert_eq!(v["valid"], false);
    assert!(
        v["reasons"][0].as_str().unwrap().contains("no metric"),
        "{v}"
    );
}

#[test]
fn a_verify_needing_untracked_files_is_said_to_be_unmeasured() {
    let repo = number_repo(10);
    repo.write("bench.sh", "cat src/value.txt\n");
    let r = repo.run(&flags("sh bench.sh", &[]));
    r.expect_code(0);
    assert!(
        r.stdout.contains("note: verify not measured")
            && r.stdout.contains("files git does not track")
            && r.stdout.contains("bench.sh"),
        "{}",
        r.stdout
    );
}

#[test]
fn ctrl_c_leaves_no_scratch_directory() {
    let repo = number_repo(10);
    let tmp = tempfile::tempdir().unwrap();
    let mark = repo.aux.join("verify-started");
    let verify = format!("touch {}; sleep 30; echo 1", mark.display());
    let mut run = repo.spawn_env(
        &flags(&verify, &[]),
        &[("TMPDIR", tmp.path().to_str().unwrap())],
    );
    run.wait_for(&mark);
    assert_eq!(
        scratch_dirs(tmp.path()).len(),
        1,
        "the check measures in a scratch checkout"
    );
    run.signal(nix::sys::signal::Signal::SIGINT);
    let r = run.finish();
    assert_eq!(r.code, 130, "{}\n{}", r.stdout, r.stderr);
    assert!(
        scratch_dirs(tmp.path()).is_empty(),
        "{:?}",
        scratch_dirs(tmp.path())
    );
}

#[test]
fn a_checklist_is_measured_item_by_item_and_findings_modes_need_no_verify() {
    let repo = TestRepo::with_files(&[
        ("src/calc.py", "def add(a, b):\n    return a + b\n"),
        (
            "TASKS.md",
            "- [ ] Task 1: add\n  accept: grep -q 'def add' src/calc.py\n- [ ] Task 2: sub\n  accept: grep -q 'def sub' src/calc.py\n",
        ),
    ]);
    let before = repo.snapshot();
    let common = [
        "config",
        "--check",
        "--goal",
        "do the tasks",
        "--scope",
        "src/**",
        "--agent",
        "command",
        "--agent-cmd",
        "true",
    ];
    let mut args = common.to_vec();
    args.extend(["--verify-format", "checklist", "--checklist", "TASKS.md"]);
    let out = repo.run(&args);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("baseline tasks_done = 1 (1 of 2 items pass; failing: Task 2"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("stop: tasks_done >= 2"),
        "{}",
        out.stdout
    );
    let mut args = common.to_vec();
    args.extend(["--mode", "debug", "--symptom", "wrong sums"]);
    let out = repo.run(&args);
    out.expect_code(0);
    assert!(
        out.stdout.contains("metric: confirmed_findings")
            && out.stdout.contains("stop: diminishing returns"),
        "{}",
        out.stdout
    );
    repo.assert_untouched(&before);
}
