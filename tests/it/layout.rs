//! The file layout (GUIDE §11): the reference's current `autoresearch-results/` layout checked
//! against the acceptance rules of its own checkers (`autoresearch_resume_check.py`,
//! `check_skill_invariants.py exec`; each test names the rule it mirrors), `--layout march`, the
//! move of a March-layout run, `status --all` and `config` on a resumed run.

use std::path::Path;

use serde_json::Value;

use crate::support::*;

const VERIFY: &str = "sh measure.sh";

/// The names the reference calls legacy repo-root artifacts (`LEGACY_AUTORESEARCH_OWNED_BASENAMES`).
const LEGACY: [&str; 7] = [
    "research-results.tsv",
    "autoresearch-state.json",
    "autoresearch-launch.json",
    "autoresearch-runtime.json",
    "autoresearch-runtime.log",
    "autoresearch-lessons.md",
    "autoresearch-hook-context.json",
];

fn json(repo: &TestRepo, path: &str) -> Value {
    serde_json::from_str(&repo.read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn canonical(repo: &TestRepo, rel: &str) -> String {
    repo.root
        .join(rel)
        .canonicalize()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The reference's context resolution (anchor §1.5, `load_context_for_repo`): a version-2
/// pointer in the repository, a version-2 `context.json` under its artifact root agreeing with it
/// on `workspace_root`, `artifact_root` and `primary_repo` (else "Repo-local pointer ...
/// disagrees"), whose `results_path` and `state_path` are where the run's files are. Returns the
/// context.
#[track_caller]
fn assert_context_resolves(repo: &TestRepo, active: bool) -> Value {
    let pointer = json(repo, POINTER);
    assert_eq!(pointer["version"], 2, "{pointer}");
    let root = canonical(repo, ".");
    let artifact_root = canonical(repo, RESULTS_DIR);
    assert_eq!(pointer["workspace_root"], root.as_str());
    assert_eq!(pointer["primary_repo"], root.as_str());
    assert_eq!(pointer["artifact_root"], artifact_root.as_str());
    assert_eq!(pointer["active"], active);
    let context_path = Path::new(pointer["artifact_root"].as_str().unwrap()).join("context.json");
    let context: Value = serde_json::from_str(&std::fs::read_to_string(&context_path).unwrap())
        .expect("context.json");
    assert_eq!(context["version"], 2, "{context}");
    for key in ["workspace_root", "artifact_root", "primary_repo"] {
        assert_eq!(
            context[key], pointer[key],
            "context and pointer disagree on {key}"
        );
    }
    assert_eq!(context["active"], active);
    assert_eq!(context["results_path"], canonical(repo, RESULTS).as_str());
    assert_eq!(
        context["state_path"],
        format!("{artifact_root}/state.json").as_str()
    );
    assert_eq!(context["verify_cwd"], "workspace_root");
    let targets = context["repo_targets"].as_array().expect("repo_targets");
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0]["role"], "primary");
    assert_eq!(targets[0]["path"], root.as_str());
    for key in ["launch_path", "runtime_path", "log_path"] {
        assert!(context[key].is_null(), "{key}: {context}");
    }
    context
}

/// The reference's legacy-layout refusal ("Found legacy repo-root autoresearch artifacts"):
/// none of its March names at the repository root.
#[track_caller]
fn assert_no_legacy_names(repo: &TestRepo) {
    for name in LEGACY {
        assert!(!repo.exists(name), "legacy {name} at the repository root");
    }
    assert!(!repo.exists(MARCH_ENGINE), ".autoresearch/ is left behind");
}

/// `init_run`'s excludes (anchor §1.1): `autoresearch-results/` and `.codex-autoresearch/` in
/// `.git/info/exclude`, so the tree stays clean.
#[track_caller]
fn assert_excluded(repo: &TestRepo) {
    let exclude = repo.read(".git/info/exclude");
    for entry in ["/autoresearch-results/", "/.codex-autoresearch/"] {
        assert!(exclude.lines().any(|l| l == entry), "{entry}:\n{exclude}");
    }
    assert_eq!(repo.status(), "");
}

/// Rule: `resume_check` decides `full_resume` / `json_matches_tsv` (the state's required config
/// fields and every compared key equal to its `log_summary` replay), resolving the run through
/// the pointer and context, with no legacy files; the state's config names where the run is
/// (`workspace_root`, `artifact_root`, `primary_repo`, `repos`).
#[test]
fn resume_check_rules_hold_for_a_run_ending_on_a_keep() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    repo.run_loop(VERIFY, &agent, &["--iterations", "2", "--no-confirm"])
        .expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep", "keep"]);
    assert_eq!(repo.results_file(), RESULTS);
    assert_consistent(&repo);
    let context = assert_context_resolves(&repo, false);
    assert_eq!(context["session_mode"], "foreground");
    let config = &repo.state()["config"];
    for key in ["workspace_root", "artifact_root", "primary_repo"] {
        assert_eq!(config[key], context[key], "config.{key}");
    }
    assert_eq!(config["repos"][0]["role"], "primary");
    assert_eq!(config["repos"][0]["scope"], "src/**");
    assert_eq!(config["session_mode"], "foreground");
    assert!(repo.exists(LESSONS) && repo.exists(&format!("{ENGINE}/iter-0001/prompt.md")));
    assert_no_legacy_names(&repo);
    assert_excluded(&repo);
}

/// Rule: the current `log_summary` counts a `refine` row toward `consecutive_discards`
/// (scenario 14: discard, discard, refine gives 3 and `full_resume`); a state that did not would
/// be `state_tsv_diverged`.
#[test]
fn a_run_ending_on_a_refine_counts_it_in_consecutive_discards() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", 1);
    let extra = ["--iterations", "9", "--refine-after", "2", "--plateau", "2"];
    repo.run_loop(VERIFY, &agent, &extra).expect_code(0);
    assert_eq!(
        repo.statuses(),
        ["baseline", "discard", "discard", "refine"]
    );
    assert_eq!(repo.state()["state"]["consecutive_discards"], 3);
    assert_eq!(repo.state()["state"]["last_status"], "refine");
    assert_consistent(&repo);
}

/// Rules of `check_skill_invariants.py exec`: `results.tsv` and `context.json` exist, the log has
/// a direction and a main row beyond the baseline, every keep row names a commit that exists,
/// no `autoresearch-results/state.json`, the lessons untouched; plus anchor §1.9: the context is
/// inactive and the pointer there.
#[test]
fn exec_leaves_results_an_inactive_context_and_the_pointer_and_no_state() {
    let repo = number_repo(10);
    repo.write(LESSONS, "### L-1: mine\n");
    let lessons = repo.read_bytes(LESSONS);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let r = repo.run_owned(&TestRepo::exec_args(VERIFY, &agent, 2, &[]));
    r.expect_code(0);
    assert_eq!(r.json_lines().len(), 3, "two rows and the completion");
    assert!(repo.exists(RESULTS));
    assert!(!repo.exists(STATE), "exec leaves no state.json");
    assert!(!repo.exists("autoresearch-results/state.prev.json"));
    assert!(repo.exists(EXEC_STATE), "its state is the engine's");
    let context = assert_context_resolves(&repo, false);
    assert!(context["session_mode"].is_null(), "{context}");
    let rows = repo.rows();
    assert!(
        repo.read(RESULTS)
            .starts_with("# metric_direction: lower\n")
    );
    assert!(rows.len() >= 2, "a main row beyond the baseline");
    for row in rows.iter().filter(|r| r[5] == "keep") {
        assert_ne!(row[1], "-", "keep row {} has no commit", row[0]);
        assert!(repo.git_ok(&["rev-parse", "--verify", &format!("{}^{{commit}}", row[1])]));
    }
    assert_eq!(
        repo.read_bytes(LESSONS),
        lessons,
        "exec never writes lessons"
    );
    assert_no_legacy_names(&repo);
    assert_excluded(&repo);
}

/// `--layout march` writes the March names at the root (no context, no pointer) and replays with
/// the March rule (a refine row counts for nothing: `consecutive_discards` 2 where the current
/// rules give 3); `status` finds that run without moving it; the next `run` without the flag
/// moves it into `autoresearch-results/` with one notice line, nothing lost, and resumes it with
/// counters that agree with the current rules (no "disagreed" warning).
#[test]
fn a_march_layout_run_is_found_moved_with_one_notice_and_resumed() {
    let repo = number_repo(10);
    let worse = stepping_agent(&repo, "worse.sh", 1);
    let extra = [
        "--iterations",
        "9",
        "--refine-after",
        "2",
        "--plateau",
        "2",
        "--layout",
        "march",
    ];
    repo.run_loop(VERIFY, &worse, &extra).expect_code(0);
    assert!(repo.is_march());
    assert_eq!(
        repo.statuses(),
        ["baseline", "discard", "discard", "refine"]
    );
    assert_eq!(
        repo.state()["state"]["consecutive_discards"],
        2,
        "March rule"
    );
    assert_consistent(&repo);
    assert!(!repo.exists(RESULTS_DIR) && !repo.exists(".codex-autoresearch"));
    assert!(repo.exists(&format!("{MARCH_ENGINE}/iter-0001/prompt.md")));
    let exclude = repo.read(".git/info/exclude");
    assert!(
        exclude.lines().any(|l| l == "/research-results.tsv"),
        "{exclude}"
    );
    assert_eq!(repo.status(), "");
    let march_rows = repo.read(MARCH_RESULTS);

    // Read-only commands find it where it is.
    let s = repo.run(&["status"]);
    s.expect_code(0);
    assert!(s.stdout.contains("iteration 3"), "{}", s.stdout);
    assert!(repo.is_march(), "status moves nothing");

    let better = stepping_agent(&repo, "better.sh", -1);
    // Two experiments before, one more now (the refine row is not one).
    let more = ["--iterations", "3", "--no-confirm", "--plateau", "9"];
    let r = repo.run_loop(VERIFY, &better, &more);
    r.expect_code(0);
    let notices: Vec<&str> = r
        .stderr_lines()
        .into_iter()
        .filter(|l| l.contains("March 2026 layout"))
        .collect();
    assert_eq!(notices.len(), 1, "{}", r.stderr);
    assert!(!r.stderr.contains("disagreed"), "{}", r.stderr);
    assert!(r.stdout.contains("resuming"), "{}", r.stdout);
    assert_no_legacy_names(&repo);
    assert!(!repo.is_march());
    let text = repo.read(RESULTS);
    assert!(
        text.starts_with(&march_rows),
        "the old rows are kept as they were"
    );
    assert_eq!(
        repo.statuses(),
        ["baseline", "discard", "discard", "refine", "keep"]
    );
    assert!(
        repo.exists(&format!("{ENGINE}/iter-0001/prompt.md")),
        "old logs moved"
    );
    assert!(repo.exists(&format!("{ENGINE}/iter-0004/prompt.md")));
    assert_consistent(&repo);
    assert_context_resolves(&repo, false);
    assert_excluded(&repo);
}

/// A move a kill cut short (here: the engine's directory and the lessons already moved, the
/// state and the log not) is finished by the next start, which resumes the run.
#[test]
fn a_move_cut_short_is_finished_by_the_next_start() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    repo.run_loop(
        VERIFY,
        &agent,
        &["--iterations", "1", "--no-confirm", "--layout", "march"],
    )
    .expect_code(0);
    let rows = repo.read(MARCH_RESULTS);
    std::fs::create_dir_all(repo.root.join(RESULTS_DIR)).unwrap();
    std::fs::rename(repo.root.join(MARCH_ENGINE), repo.root.join(ENGINE)).unwrap();
    std::fs::rename(repo.root.join(MARCH_LESSONS), repo.root.join(LESSONS)).unwrap();
    let r = repo.run_loop(VERIFY, &agent, &["--iterations", "2", "--no-confirm"]);
    r.expect_code(0);
    assert!(r.stdout.contains("resuming"), "{}", r.stdout);
    assert_no_legacy_names(&repo);
    assert!(repo.read(RESULTS).starts_with(&rows));
    assert_eq!(repo.statuses(), ["baseline", "keep", "keep"]);
    assert!(repo.read(LESSONS).contains("### L-1:"));
    assert_consistent(&repo);
}

/// `status --all` lists the archived runs, oldest first, with their dates and outcomes.
#[test]
fn status_all_lists_archived_runs_with_dates_and_outcomes() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    let first = ["--iterations", "1", "--no-confirm", "--run-tag", "first"];
    repo.run_loop(VERIFY, &agent, &first).expect_code(0);
    let second = [
        "--iterations",
        "1",
        "--no-confirm",
        "--fresh",
        "--run-tag",
        "second",
    ];
    repo.run_loop(VERIFY, &agent, &second).expect_code(0);
    let third = [
        "--iterations",
        "2",
        "--no-confirm",
        "--fresh",
        "--run-tag",
        "third",
    ];
    repo.run_loop(VERIFY, &agent, &third).expect_code(0);

    let plain = repo.run(&["status"]);
    assert!(!plain.stdout.contains("archived"), "{}", plain.stdout);
    let r = repo.run(&["status", "--all"]);
    r.expect_code(0);
    let lines: Vec<&str> = r
        .stdout_lines()
        .into_iter()
        .skip_while(|l| !l.starts_with("archived runs"))
        .collect();
    assert_eq!(lines[0], "archived runs (2):", "{}", r.stdout);
    assert!(
        lines[1].starts_with("  prev: run first started 20")
            && lines[1].contains("1 iterations; ended: iteration cap reached"),
        "{}",
        r.stdout
    );
    assert!(
        lines[2].starts_with("  prev2: run second started 20"),
        "{}",
        r.stdout
    );

    let r = repo.run(&["status", "--json", "--all"]);
    r.expect_code(0);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["run"]["run_tag"], "third", "{v}");
    let archived = v["archived"].as_array().expect("archived");
    assert_eq!(archived.len(), 2);
    assert_eq!(archived[0]["generation"], "prev");
    assert_eq!(archived[0]["run_tag"], "first");
    assert_eq!(archived[0]["reason"], "iterations");
    assert_eq!(archived[0]["iterations"], 1);
    assert!(archived[0]["started_at"].as_str().unwrap().ends_with('Z'));
    assert!(archived[0]["ended_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(archived[1]["run_tag"], "second");
}

/// `config` on a repository holding a run shows that run's repository and tag.
#[test]
fn config_shows_the_resumed_runs_repo_and_run_tag() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    repo.run_loop(VERIFY, &agent, &["--iterations", "1", "--no-confirm"])
        .expect_code(0);
    let tag = repo.state()["run_tag"].as_str().unwrap().to_string();
    let r = repo.run(&["config"]);
    r.expect_code(0);
    let line = |key: &str| {
        r.stdout_lines()
            .into_iter()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no {key} line:\n{}", r.stdout))
            .to_string()
    };
    let root = repo.root.display().to_string();
    assert!(line("repo").contains(&root), "{}", line("repo"));
    assert!(line("repo").ends_with("resumed run"), "{}", line("repo"));
    assert!(line("run_tag").contains(&tag), "{}", line("run_tag"));
    assert!(
        line("run_tag").ends_with("resumed run"),
        "{}",
        line("run_tag")
    );
    let r = repo.run(&["config", "--json"]);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["settings"]["run_tag"]["value"], tag.as_str());
    assert_eq!(v["settings"]["run_tag"]["source"], "resumed");
    assert_eq!(v["settings"]["repo"]["source"], "resumed");
    // No run to resume: neither is made up.
    let fresh = repo.run(&["config", "--fresh", "--json"]);
    let v: Value = serde_json::from_str(fresh.stdout.trim()).unwrap();
    assert!(v["settings"]["run_tag"]["value"].is_null(), "{v}");
}
