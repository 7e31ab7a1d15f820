//! The history a run leaves (issue 13): a keep is one commit that passed the guard (rework turns
//! amend the trial, the earlier attempts stay under the trial refs), its message and row carry
//! the last turn's description, and `--iterations N` counts experiments, not bookkeeping rows.

use std::process::Command;

use crate::support::*;

const VERIFY: &str = "sh measure.sh";
const GUARD: &str = "grep -q yes src/ok.txt || { echo 'guard: ok.txt must say yes'; exit 1; }\n";

/// A repository whose metric is `src/value.txt` and whose guard wants `src/ok.txt` to say yes.
fn guarded_repo() -> TestRepo {
    TestRepo::with_files(&[
        ("src/value.txt", "10\n"),
        ("src/ok.txt", "yes\n"),
        ("measure.sh", "cat src/value.txt\n"),
        ("guard.sh", GUARD),
    ])
}

/// Runs the guard on `commit`'s tree, exported outside the repository; true when it passes.
fn guard_passes_on(repo: &TestRepo, commit: &str) -> bool {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let archive = dir.path().join("tree.tar");
    repo.git(&["archive", "-o", archive.to_str().unwrap(), commit]);
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    let untar = Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&tree)
        .status()
        .expect("tar");
    assert!(untar.success());
    Command::new("sh")
        .arg("guard.sh")
        .current_dir(&tree)
        .output()
        .expect("guard")
        .status
        .success()
}

/// An agent whose first turn of iterations 1 and 3 lowers the value but breaks the guard
/// (`var -> const`), and whose rework turns repair it, the last one saying so (`var -> let`);
/// iteration 3 needs two rework turns. Iteration 2 lowers the value cleanly.
fn reworking_agent(repo: &TestRepo) -> String {
    repo.script(
        "agent.sh",
        "cat > /dev/null
n=$AUTORESEARCH_ITERATION
if [ \"$AUTORESEARCH_DIRECTIVE\" = rework ]; then
  c=$(cat \"$0.reworks.$n\" 2>/dev/null || echo 0); c=$((c + 1)); echo $c > \"$0.reworks.$n\"
  if [ \"$n\" = 3 ] && [ $c = 1 ]; then echo maybe > src/ok.txt; echo 'try maybe'; exit 0; fi
  echo yes > src/ok.txt; echo \"var -> let ($n)\"; exit 0
fi
case $n in
  1) echo 6 > src/value.txt; echo no > src/ok.txt; echo 'var -> const (1)' ;;
  2) echo 5 > src/value.txt; echo 'lower to 5' ;;
  3) echo 4 > src/value.txt; echo no > src/ok.txt; echo 'var -> const (3)' ;;
  *) echo idle ;;
esac",
    )
}

#[test]
fn issue_13_every_commit_a_run_adds_passes_the_guard_and_says_what_it_holds() {
    let repo = guarded_repo();
    let start = repo.head();
    let agent = reworking_agent(&repo);
    repo.run_loop(
        VERIFY,
        &agent,
        &[
            "--iterations",
            "3",
            "--guard",
            "sh guard.sh",
            "--rework",
            "2",
            "--run-tag",
            "h1",
        ],
    )
    .expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep", "keep", "keep"]);
    let range = format!("{start}..HEAD");
    let added: Vec<String> = repo
        .git(&["rev-list", "--reverse", &range])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(added.len(), 3, "one commit per keep: {added:?}");
    for c in &added {
        assert!(guard_passes_on(&repo, c), "commit {c} fails the guard");
    }
    // The message and the row say what the commit holds: the last turn's description.
    assert_eq!(
        repo.log(),
        [
            "experiment: var -> let (3)",
            "experiment: lower to 5",
            "experiment: var -> let (1)",
            "initial"
        ]
    );
    let rows = repo.rows();
    assert!(rows[1][6].starts_with("var -> let (1) (guard passed after 1 rework turn)"));
    assert!(rows[3][6].starts_with("var -> let (3) (guard passed after 2 rework turns)"));
    assert_eq!(
        rows[1][1],
        repo.git(&["rev-parse", "--short=7", &added[0]]).trim()
    );
    // The failed attempts stay reachable under the trial refs, none of them on the branch.
    let refs = repo.git(&[
        "for-each-ref",
        "--format=%(refname) %(subject)",
        "refs/autoresearch/h1/",
    ]);
    for want in [
        "refs/autoresearch/h1/trial-1 experiment: var -> const (1)",
        "refs/autoresearch/h1/trial-3 experiment: var -> const (3)",
        "refs/autoresearch/h1/trial-3-2 experiment: try maybe",
    ] {
        assert!(refs.contains(want), "{want} missing from\n{refs}");
    }
    for attempt in ["trial-1", "trial-3", "trial-3-2"] {
        let r = format!("refs/autoresearch/h1/{attempt}");
        assert!(
            !guard_passes_on(&repo, &r),
            "{attempt} was a failed attempt"
        );
        let first = repo.git(&["rev-list", "-n1", &r]);
        assert!(!added.contains(&first.trim().to_string()));
    }
    assert_eq!(repo.status(), "", "the tree is clean after the run");
}

#[test]
fn issue_13_refine_rows_do_not_consume_iterations() {
    // Two failures, then a refine row (`--refine-after 2`), then a keep: 3 experiments.
    let repo = number_repo(10);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo 11 > src/value.txt; echo 'raise to 11'"),
            (2, "echo 12 > src/value.txt; echo 'raise to 12'"),
            (4, "echo 3 > src/value.txt; echo 'lower to 3'"),
        ],
    );
    let r = repo.run_loop(
        VERIFY,
        &agent,
        &["--iterations", "3", "--refine-after", "2"],
    );
    r.expect_code(0);
    assert_eq!(
        repo.statuses(),
        ["baseline", "discard", "discard", "refine", "keep"]
    );
    let status = repo.run(&["status", "--json"]);
    status.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(status.stdout.trim()).expect("status json");
    assert_eq!(v["run"]["experiments"], 3);
    assert_eq!(v["run"]["iterations_cap"], 3);
    assert_eq!(v["run"]["iteration"], 4);
    let human = repo.run(&["status"]);
    assert!(
        human.stdout.lines().any(|l| l == "experiments: 3/3"),
        "{}",
        human.stdout
    );
}

#[test]
fn issue_13_kill_9_after_the_amend_keeps_both_attempts_and_the_interruption_costs_no_iteration() {
    let repo = guarded_repo();
    let start = repo.head();
    let marker = repo.aux.join("verifying");
    // Verify hangs on the amended trial (value 5) only.
    let verify = format!(
        "sh {}",
        repo.script(
            "measure.sh",
            &format!(
                "v=$(cat src/value.txt)\nif [ \"$v\" = 5 ]; then {}; sleep 60; fi\necho $v",
                mark(&marker)
            ),
        )
    );
    let agent = repo.script(
        "agent.sh",
        "cat > /dev/null
if [ \"$AUTORESEARCH_DIRECTIVE\" = rework ]; then
  echo yes > src/ok.txt; echo 5 > src/value.txt; echo 'var -> let'; exit 0
fi
case $AUTORESEARCH_ITERATION in
  1) echo 6 > src/value.txt; echo no > src/ok.txt; echo 'var -> const' ;;
  *) echo 7 > src/value.txt; echo 'lower to 7' ;;
esac",
    );
    let args = |n: &str| {
        TestRepo::loop_args(
            &verify,
            &agent,
            &[
                "--iterations",
                n,
                "--guard",
                "sh guard.sh",
                "--run-tag",
                "k9",
            ],
        )
    };
    let mut first = repo.spawn(&args("1"));
    first.wait_for(&marker);
    let verify_group = pgid_of(read_pid(&marker)).expect("verify is running");
    // The amended trial is on the branch, one commit on the start; the first attempt is kept.
    let amended = repo.head();
    assert_eq!(repo.git(&["rev-parse", "HEAD^"]).trim(), start);
    assert_eq!(repo.log()[0], "experiment: var -> let");
    let attempt = repo
        .git(&["rev-parse", "refs/autoresearch/k9/trial-1"])
        .trim()
        .to_string();
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s", &attempt]).trim(),
        "experiment: var -> const"
    );
    first.signal(nix::sys::signal::Signal::SIGKILL);
    assert_eq!(first.finish().code, -9);
    kill_group(verify_group);

    // The resume recovers the iteration (its crash row is no experiment) and makes one.
    let r = repo.run_owned(&args("1"));
    r.expect_code(0);
    assert!(
        r.stderr
            .contains("iteration 1 was interrupted during verify"),
        "{}",
        r.stderr
    );
    assert_eq!(repo.statuses(), ["baseline", "crash", "keep"]);
    let rows = repo.rows();
    assert!(
        rows[1][6].starts_with("[INTERRUPTED] var -> let"),
        "{}",
        rows[1][6]
    );
    assert_eq!(rows[1][1], amended[..7], "the row names the amended trial");
    // Both attempts stay reachable under the trial refs; the branch holds the keep only.
    let refs = repo.git(&[
        "for-each-ref",
        "--format=%(objectname)",
        "refs/autoresearch/k9/",
    ]);
    assert!(refs.contains(&attempt) && refs.contains(&amended), "{refs}");
    assert_eq!(repo.log(), ["experiment: lower to 7", "initial"]);
    assert_consistent(&repo);
}
