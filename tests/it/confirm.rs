//! `codex-autoresearch confirm` and the confirmation at the end of a run: a scripted run whose
//! keeps have known true effects, measured again with seeded Gaussian noise; the interval covers
//! the true total effect, the ablation flags the planted dead-weight keep, the user's tree and
//! HEAD are untouched, and a signal leaves no scratch checkout behind.

use std::path::Path;
use std::time::Instant;

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::Signal;
use serde_json::Value;

use crate::support::*;

/// The evaluator: the true value is 20, minus 3 when `src/a.txt` says fast, minus 2 when
/// `src/b.txt` does. During the run it is deterministic and wrongly rewards the tidy comment in
/// `src/c.txt` (so that keep is kept by chance); under confirm it has Gaussian noise (sd 0.3)
/// seeded by AUTORESEARCH_VERIFY_RUN, and the comment does nothing, as in truth.
const BENCH: &str = r#"import os, random, sys, time
def on(p):
    return open(p).read().strip().startswith("fast")
v = 20.0 - 3 * on("src/a.txt") - 2 * on("src/b.txt")
if os.environ.get("AUTORESEARCH_VERIFY_ROLE") == "confirm":
    slow = os.environ.get("SLOW_CONFIRM_MARKER")
    if slow:
        open(slow + ".tmp", "w").write(str(os.getpid()))
        os.rename(slow + ".tmp", slow)
        time.sleep(60)
    r = random.Random(int(os.environ["AUTORESEARCH_VERIFY_RUN"]) * 7919 + 17)
    v += r.gauss(0, 0.3)
else:
    v -= 0.5 * ("tidy" in open("src/c.txt").read())
print("%.4f" % v)
"#;

/// The true total effect of the three keeps (lower is better: 20 -> 15).
const TRUE_EFFECT: f64 = 5.0;

fn scripted_run(extra: &[&str]) -> (TestRepo, Run) {
    let repo = TestRepo::with_files(&[
        ("src/a.txt", "slow\n"),
        ("src/b.txt", "slow\n"),
        ("src/c.txt", "plain\n"),
        ("bench.py", BENCH),
    ]);
    let agent = scripted_agent(
        &repo,
        "agent.sh",
        &[
            (1, "echo fast > src/a.txt; echo 'a fast'"),
            (2, "echo '# tidy' >> src/c.txt; echo 'c tidy'"),
            (3, "echo fast > src/b.txt; echo 'b fast'"),
        ],
    );
    let mut args = vec!["--iterations", "3", "--keep-rule", "strict"];
    args.extend_from_slice(extra);
    let r = repo.run_loop("python3 bench.py", &agent, &args);
    r.expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep", "keep", "keep"]);
    (repo, r)
}

fn confirm_json(repo: &TestRepo) -> Value {
    serde_json::from_str(&repo.read("autoresearch-results/engine/confirm.json"))
        .expect("confirm.json")
}

fn scratch_dirs(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("autoresearch-confirm-"))
                .collect()
        })
        .unwrap_or_default()
}

/// The lock file inside a scratch checkout.
const LOCK: &str = ".git/autoresearch-confirm.lock";

/// Creates the lock file `path` and holds its lock, as a live confirm does.
fn hold(path: &Path) -> Flock<std::fs::File> {
    let f = std::fs::File::create(path).unwrap();
    Flock::lock(f, FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| e)
        .unwrap()
}

fn keep_verdicts(v: &Value) -> Vec<(String, Value)> {
    v["keeps"]
        .as_array()
        .expect("keeps")
        .iter()
        .map(|k| {
            (
                k["description"].as_str().unwrap().to_string(),
                k["verdict"].clone(),
            )
        })
        .collect()
}

#[test]
fn confirm_covers_the_true_effect_and_flags_the_dead_weight_keep() {
    let (repo, run) = scripted_run(&["--no-confirm"]);
    assert!(
        !repo.exists("autoresearch-results/engine/confirm.json"),
        "--no-confirm"
    );
    assert!(!run.stdout.contains("confirmed:"), "{}", run.stdout);
    let before = repo.snapshot();
    let tmp = repo.aux.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    // What a confirm killed by a second signal would have left: its lock is free.
    let gone = tmp.join("autoresearch-confirm-4000000-gone");
    std::fs::create_dir_all(gone.join(".git")).unwrap();
    std::fs::write(gone.join(LOCK), "").unwrap();
    // A live confirm in another pid namespace (its pid means nothing here): it holds its lock.
    let live = tmp.join("autoresearch-confirm-4000001-elsewhere");
    std::fs::create_dir_all(live.join(".git")).unwrap();
    let held = hold(&live.join(LOCK));
    let started = Instant::now();
    let r: Run = repo
        .cmd()
        .args(["confirm", "--confirm-runs", "10"])
        .env("TMPDIR", &tmp)
        .output()
        .expect("confirm")
        .into();
    let took = started.elapsed();
    r.expect_code(0);
    eprintln!("confirm took {took:?} (4 comparisons x 2 sides x 10 runs of python3)");
    assert!(r.stdout.starts_with("confirmed: value +"), "{}", r.stdout);
    let v = confirm_json(&repo);
    assert_eq!(v["complete"], true);
    assert_eq!(v["runs"], 10);
    assert_eq!(v["baseline"]["values"].as_array().unwrap().len(), 10);
    let (low, high) = (
        v["effect"]["low"].as_f64().unwrap(),
        v["effect"]["high"].as_f64().unwrap(),
    );
    assert!(
        low <= TRUE_EFFECT && TRUE_EFFECT <= high,
        "[{low}, {high}] misses the true effect {TRUE_EFFECT}"
    );
    assert!(low > 4.0 && high < 6.0, "too wide: [{low}, {high}]");
    assert_eq!(
        keep_verdicts(&v),
        [
            ("a fast".to_string(), Value::from("carries")),
            ("c tidy".to_string(), Value::from("dead_weight")),
            ("b fast".to_string(), Value::from("carries")),
        ]
    );
    let md = repo.read("autoresearch-results/engine/confirm.md");
    assert!(
        md.contains("| dead weight |") && md.contains("c tidy"),
        "{md}"
    );
    // The user's tree, index, refs and HEAD are as they were; nothing is left behind.
    assert_eq!(repo.snapshot(), before, "confirm changed the repository");
    assert_eq!(repo.git(&["worktree", "list"]).lines().count(), 1);
    assert_eq!(
        scratch_dirs(&tmp),
        ["autoresearch-confirm-4000001-elsewhere"],
        "the stale one is swept, the live one kept"
    );
    drop(held);
    // status shows the confirmed effect.
    let s = repo.run(&["status"]);
    s.expect_code(0);
    assert!(s.stdout.contains("confirmed: value +"), "{}", s.stdout);
    assert!(s.stdout.contains("1 dead-weight keep(s)"), "{}", s.stdout);
    let sj: Value = serde_json::from_str(repo.run(&["status", "--json"]).stdout.trim()).unwrap();
    assert_eq!(sj["run"]["confirm"]["dead_weight"], 1, "{sj}");
}

#[test]
fn a_run_with_keeps_confirms_at_the_end() {
    let (repo, run) = scripted_run(&["--confirm-runs", "4"]);
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("confirmed: "))
        .unwrap_or_else(|| panic!("no confirm line:\n{}", run.stdout));
    assert!(line.contains("4 runs each"), "{line}");
    let v = confirm_json(&repo);
    assert_eq!(v["runs"], 4);
    assert_eq!(v["keeps"].as_array().unwrap().len(), 3);
    assert_eq!(
        repo.status(),
        "",
        "the run's tree is clean after its confirm"
    );
}

#[test]
fn a_signal_during_confirm_leaves_nothing_behind() {
    let (repo, _) = scripted_run(&["--no-confirm"]);
    let before = repo.snapshot();
    let tmp = repo.aux.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    for (sig, code) in [(Signal::SIGINT, 130), (Signal::SIGTERM, 143)] {
        let marker = repo.aux.join(format!("slow-{code}"));
        let running = repo.spawn_env(
            &["confirm"],
            &[
                ("TMPDIR", tmp.to_str().unwrap()),
                ("SLOW_CONFIRM_MARKER", marker.to_str().unwrap()),
            ],
        );
        let mut running = running;
        running.wait_for(&marker);
        assert_eq!(scratch_dirs(&tmp).len(), 1, "the scratch checkout exists");
        running.signal(sig);
        let r = running.finish();
        r.expect_code(code);
        assert!(r.stderr.contains("during confirm"), "{}", r.stderr);
        assert!(scratch_dirs(&tmp).is_empty(), "{:?}", scratch_dirs(&tmp));
        assert_eq!(repo.git(&["worktree", "list"]).lines().count(), 1);
        assert!(
            !repo.exists("autoresearch-results/engine/confirm.json"),
            "nothing half-done"
        );
        assert_eq!(repo.snapshot(), before, "confirm changed the repository");
    }
}

#[test]
fn confirm_without_a_run_or_a_keep_refuses() {
    let repo = number_repo(10);
    repo.run(&["confirm"])
        .expect_refusal(&["no autoresearch run"]);
    let agent = scripted_agent(&repo, "agent.sh", &[]);
    repo.run_loop("sh measure.sh", &agent, &["--iterations", "1"])
        .expect_code(0);
    repo.run(&["confirm"])
        .expect_refusal(&["no keep", "no result to confirm"]);
}

#[test]
fn the_metric_decides_not_the_exit_status_and_a_verify_without_one_stops_confirm() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    // Prints its metric and exits 3 (as `grep -c` exits 1 on zero); under confirm it prints
    // nothing when FAIL_CONFIRM is set.
    let verify = "[ -n \"$FAIL_CONFIRM\" ] && [ \"$AUTORESEARCH_VERIFY_ROLE\" = confirm ] && exit 0; sh measure.sh; exit 3";
    repo.run_loop(verify, &agent, &["--iterations", "1", "--no-confirm"])
        .expect_code(0);
    assert_eq!(repo.statuses(), ["baseline", "keep"]);
    let r = repo.run(&["confirm", "--confirm-runs", "2"]);
    r.expect_code(0);
    assert!(
        r.stdout.starts_with("confirmed: value +1 [+1, +1] better"),
        "{}",
        r.stdout
    );
    let r: Run = repo
        .cmd()
        .args(["confirm", "--confirm-runs", "2"])
        .env("FAIL_CONFIRM", "1")
        .output()
        .expect("confirm")
        .into();
    r.expect_code(2);
    assert!(
        r.stderr.contains("verify failed on commit") && r.stderr.contains("printed nothing"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_scratch_checkout_that_vanishes_under_confirm_is_named_and_retried_once() {
    let repo = number_repo(10);
    let agent = stepping_agent(&repo, "agent.sh", -1);
    // Under confirm, with the flag file there, verify removes its own checkout (as another
    // process's sweep would) and fails.
    let flag = repo.aux.join("vanish");
    let verify = format!(
        "if [ \"$AUTORESEARCH_VERIFY_ROLE\" = confirm ] && [ -e {} ]; then rm -rf \"$PWD\"; exit 1; fi; sh measure.sh",
        flag.display()
    );
    repo.run_loop(&verify, &agent, &["--iterations", "1", "--no-confirm"])
        .expect_code(0);
    std::fs::write(&flag, "").unwrap();
    let r = repo.run(&["confirm", "--confirm-runs", "2"]);
    r.expect_code(2);
    let says = |text: &str| {
        assert!(
            text.contains("the scratch checkout") && text.contains("vanished"),
            "{text}"
        );
        assert!(!text.contains("fix verify"), "{text}");
        assert_eq!(
            text.matches("codex-autoresearch confirm").count(),
            1,
            "{text}"
        );
    };
    says(&r.stderr);
    // At the end of a run: one note, the run's result as it was.
    let r = repo.run_loop(
        &verify,
        &agent,
        &["--iterations", "1", "--confirm-runs", "2", "--fresh"],
    );
    r.expect_code(0);
    let note = r
        .stderr
        .lines()
        .find(|l| l.contains("vanished"))
        .unwrap_or_else(|| panic!("{}", r.stderr));
    says(note);
    assert!(note.contains("the run's result stands"), "{note}");
}
