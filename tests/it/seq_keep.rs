//! The SEQ keep rule with the real binary (GUIDE §7a): an agent whose change is a real 1σ gain in
//! 10% of its turns and an edit with no effect otherwise, and a verify that prints the true value
//! plus Gaussian noise (seeded per verify run through `AUTORESEARCH_VERIFY_RUN`). Over several
//! seeded runs SEQ keeps few changes that are noise, where the strict rule keeps mostly noise.
//! `AUTORESEARCH_SEQ_SEEDS` and `AUTORESEARCH_SEQ_ITERATIONS` make it bigger (the closing
//! figures); the default is small enough for the suite.

use crate::support::*;

const AGENT: &str = r#"import os, random, sys
sys.stdin.read()
n = int(os.environ["AUTORESEARCH_ITERATION"])
rng = random.Random(int(os.environ["SIM_SEED"]) * 100003 + n)
level = float(open("src/level.txt").read())
if rng.random() < 0.1:
    open("src/level.txt", "w").write(repr(level - 1.0) + "\n")
    print("real gain")
else:
    with open("src/notes.txt", "a") as f:
        f.write("note %d\n" % n)
    print("no-effect edit")
"#;

const VERIFY: &str = r#"import os, random
level = float(open("src/level.txt").read())
run = int(os.environ["AUTORESEARCH_VERIFY_RUN"])
rng = random.Random(int(os.environ["SIM_SEED"]) * 7919 + run)
print(level + rng.gauss(0.0, 1.0))
"#;

/// Keeps, noise keeps, real gains kept, real gains offered, verify runs, iterations.
#[derive(Default, Debug, Clone, Copy)]
struct Tally {
    keeps: u32,
    noise: u32,
    real: u32,
    offered: u32,
    runs: u32,
    iterations: u32,
}

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn session(seed: u32, iterations: u32, rule: &[&str]) -> Tally {
    let repo = TestRepo::with_files(&[
        ("src/level.txt", "100.0\n"),
        ("src/notes.txt", ""),
        ("verify.py", VERIFY),
        ("agent.py", AGENT),
    ]);
    let n = iterations.to_string();
    let mut args: Vec<&str> = vec![
        "--iterations",
        &n,
        "--refine-after",
        "0",
        "--pivot-after",
        "0",
        "--max-pivots",
        "0",
        "--no-confirm",
    ];
    args.extend_from_slice(rule);
    let mut cmd = repo.cmd();
    cmd.env("SIM_SEED", seed.to_string())
        .args(TestRepo::loop_args(
            "python3 verify.py",
            "python3 agent.py",
            &args,
        ));
    let r: Run = cmd.output().expect("run binary").into();
    r.expect_code(0);
    let mut t = Tally::default();
    for row in repo.rows().iter().skip(1) {
        let (status, desc) = (row[5].as_str(), row[6].as_str());
        let real = desc.starts_with("real gain");
        t.iterations += 1;
        t.offered += u32::from(real);
        if status == "keep" {
            t.keeps += 1;
            t.real += u32::from(real);
            t.noise += u32::from(!real);
        }
    }
    let runs = repo.read("autoresearch-results/engine/runs.tsv");
    t.runs = runs.lines().count().saturating_sub(1) as u32;
    t
}

fn sessions(rule: &[&str]) -> Tally {
    let (seeds, iterations) = (
        env_u32("AUTORESEARCH_SEQ_SEEDS", 6),
        env_u32("AUTORESEARCH_SEQ_ITERATIONS", 60),
    );
    let mut all = Tally::default();
    for seed in 1..=seeds {
        let t = session(seed, iterations, rule);
        all.keeps += t.keeps;
        all.noise += t.noise;
        all.real += t.real;
        all.offered += t.offered;
        all.runs += t.runs;
        all.iterations += t.iterations;
    }
    eprintln!(
        "{rule:?}: {seeds} seeds x {iterations} iterations: keeps/100 {:.1}, noise share {:.0}% ({}/{}), real gains kept {}/{}, verify runs/iteration {:.2}",
        100.0 * f64::from(all.keeps) / f64::from(all.iterations),
        100.0 * f64::from(all.noise) / f64::from(all.keeps.max(1)),
        all.noise,
        all.keeps,
        all.real,
        all.offered,
        f64::from(all.runs) / f64::from(all.iterations)
    );
    all
}

#[test]
fn seq_keeps_real_gains_and_little_noise_with_the_real_binary() {
    let t = sessions(&["--keep-effort", "default"]);
    assert!(t.offered >= 15, "enough real gains offered: {t:?}");
    assert!(
        f64::from(t.noise) <= 0.25 * f64::from(t.keeps.max(4)),
        "at most a quarter of SEQ's keeps are noise (the model: 4%): {t:?}"
    );
    assert!(
        f64::from(t.real) >= 0.12 * f64::from(t.offered),
        "SEQ keeps a share of the real gains (the model: 34%): {t:?}"
    );
    let per = f64::from(t.runs) / f64::from(t.iterations);
    assert!(
        (1.5..5.0).contains(&per),
        "about 3 verify runs per iteration: {per}"
    );
}

#[test]
fn the_strict_rule_on_the_same_runs_keeps_mostly_noise() {
    let t = sessions(&["--keep-rule", "strict"]);
    assert!(
        f64::from(t.noise) >= 0.4 * f64::from(t.keeps),
        "the strict rule keeps noise (the model: 71%): {t:?}"
    );
    let per = f64::from(t.runs) / f64::from(t.iterations);
    assert!(per < 1.1, "one verify run per iteration: {per}");
}

/// A resumed run replays `runs.tsv`: it goes on with the same reference and noise estimate (no
/// new baseline runs, no drift row for a noisy re-measure), and its check of the retained tree
/// is logged as a `check` run the rule does not use.
#[test]
fn a_resumed_run_continues_from_its_runs_not_from_one_new_sample() {
    let repo = TestRepo::with_files(&[
        ("src/level.txt", "100.0\n"),
        ("src/notes.txt", ""),
        ("verify.py", VERIFY),
        ("agent.py", AGENT),
    ]);
    let run = |n: &str| {
        let mut cmd = repo.cmd();
        cmd.env("SIM_SEED", "3").args(TestRepo::loop_args(
            "python3 verify.py",
            "python3 agent.py",
            &[
                "--iterations",
                n,
                "--keep-effort",
                "default",
                "--no-confirm",
            ],
        ));
        let r: Run = cmd.output().expect("run binary").into();
        r.expect_code(0);
        r
    };
    run("6");
    // The next iteration's number (refine rows consumed no iteration of the 6).
    let next = repo.rows().len().to_string();
    let noise = repo.state()["noise"].clone();
    assert_eq!(noise["mode"], "statistical", "{noise}");
    let before = repo.read("autoresearch-results/engine/runs.tsv");
    let r = run("12");
    assert!(!r.stderr.contains("a new reference"), "{}", r.stderr);
    let statuses = repo.statuses();
    assert!(!statuses.contains(&"drift".to_string()), "{statuses:?}");
    let after = repo.read("autoresearch-results/engine/runs.tsv");
    assert!(after.starts_with(&before), "runs.tsv is append-only");
    let new: Vec<Vec<&str>> = after[before.len()..]
        .lines()
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(
        new[0][3], "check",
        "the resume's check comes first: {new:?}"
    );
    assert_eq!(new[0][0], next);
    assert!(
        new.iter().all(|r| r[3] != "baseline"),
        "no new baseline: {new:?}"
    );
    let numbers: Vec<u64> = after
        .lines()
        .skip(1)
        .map(|l| l.split('\t').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    let n_after = repo.state()["noise"]["n"].as_u64().unwrap();
    assert!(
        n_after >= noise["n"].as_u64().unwrap(),
        "the noise estimate carried over"
    );
}
