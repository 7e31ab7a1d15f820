//! A seeded `kill -9` stress test: a run with a random-napping command agent (creates, deletes and
//! renames files and directories, sometimes outside the scope, sometimes fails), a guard and
//! `--rework 1` is killed at random moments, each time followed by a recovery run, and after each
//! recovery the invariants of crash safety are checked (log, state, HEAD, tree, trials, processes).
//!
//! `AUTORESEARCH_STRESS_POINTS` sets the number of kill points (default 30);
//! `AUTORESEARCH_STRESS_SEED` replays a run's choices (the seed is printed at the start; where
//! the kill lands still depends on timing); `AUTORESEARCH_STRESS_FAST=1` drops the naps of the
//! agent, verify and guard and kills sooner, so that more kills land inside the engine's own work.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

const POINTS_VAR: &str = "AUTORESEARCH_STRESS_POINTS";
const SEED_VAR: &str = "AUTORESEARCH_STRESS_SEED";
const FAST_VAR: &str = "AUTORESEARCH_STRESS_FAST";
const DEFAULT_POINTS: u64 = 30;
/// The environment variable the engine passes on to every child: how the test finds them.
const MARK_VAR: &str = "AUTORESEARCH_STRESS_MARK";

/// splitmix64: small, seeded, good enough to pick delays and agent seeds.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The user's untracked files outside the scope, with the bytes planted.
fn user_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("notes/mine.md", b"my notes\n".to_vec()),
        ("data/raw.bin", (0..=255u8).collect()),
        ("top-level.txt", b"no newline at the end".to_vec()),
    ]
}

/// An ignored file (never touched by the engine).
const IGNORED: (&str, &str) = ("build/cache.bin", "ignored\n");

/// Verify: the sum of every `*.num` file under `src/` (a file `src/broken` makes it print no
/// metric); it naps 0-90 ms depending on the seed and the iteration.
const VERIFY: &str = r#"s=$(cat "$STRESS_AUX/seed" 2>/dev/null || echo 0)
[ -n "$STRESS_FAST" ] || sleep "0.0$(( (s + ${AUTORESEARCH_ITERATION:-0}) % 10 ))"
if [ -e src/broken ]; then echo "broken build"; exit 1; fi
find src -type f -name '*.num' -exec cat {} + 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'"#;

/// Guard: fails while `src/guard-fail` exists; naps 0-40 ms.
const GUARD: &str = r#"s=$(cat "$STRESS_AUX/seed" 2>/dev/null || echo 0)
[ -n "$STRESS_FAST" ] || sleep "0.0$(( (s / 7 + ${AUTORESEARCH_ITERATION:-0}) % 5 ))"
[ ! -e src/guard-fail ]"#;

/// The agent: seeded by the kill point's seed file, the iteration and the directive.
const AGENT: &str = r#"cat > /dev/null
seed=$(cat "$STRESS_AUX/seed")
it=${AUTORESEARCH_ITERATION:-0}
x=$(( (seed + it * 7919 + ${#AUTORESEARCH_DIRECTIVE} * 104729) % 2147483648 ))
rnd() { x=$(( (x * 1103515245 + 12345) % 2147483648 )); r=$(( (x / 65536) % $1 )); }
nap() { [ -n "$STRESS_FAST" ] && return; rnd 3; if [ "$r" = 0 ]; then rnd 201; sleep "$(printf '0.%03d' "$r")"; fi; }
pick_file() {
  n=$(find src -type f 2>/dev/null | wc -l); f=
  if [ "$n" -gt 0 ]; then rnd "$n"; f=$(find src -type f | LC_ALL=C sort | sed -n "$((r + 1))p"); fi
}
pick_dir() {
  n=$(find src -mindepth 1 -type d 2>/dev/null | wc -l); dd=
  if [ "$n" -gt 0 ]; then rnd "$n"; dd=$(find src -mindepth 1 -type d | LC_ALL=C sort | sed -n "$((r + 1))p"); fi
}
bump() { v=$(cat src/base.num 2>/dev/null || echo 0); echo $((v + $1)) > src/base.num; }
if [ "$AUTORESEARCH_DIRECTIVE" = rework ]; then
  nap; rnd 3; if [ "$r" != 0 ]; then rm -f src/guard-fail; fi
  echo "rework of $it"; exit 0
fi
rnd 4; steps=$((r + 1)); d="it$it"; i=0
while [ "$i" -lt "$steps" ]; do
  i=$((i + 1)); nap; rnd 40; a=$r; rnd 1000; k=$r
  case $a in
    0|1|2|3|4|5) mkdir -p src/gen; echo $((k % 7 - 4)) > "src/gen/n$k.num"; d="$d new$k" ;;
    6|7|8|9) pick_file; if [ -n "$f" ]; then rm -f "$f"; d="$d rm"; fi ;;
    10|11|12) pick_file; if [ -n "$f" ]; then mkdir -p "src/mv$k"; mv "$f" "src/mv$k/"; d="$d mv"; fi ;;
    13|14) pick_dir; if [ -n "$dd" ]; then mv "$dd" "src/dir$k"; d="$d mvdir"; fi ;;
    15|16) mkdir -p "src/deep/a$k/b"; echo text > "src/deep/a$k/b/note.txt"; d="$d deep" ;;
    17|18|19|20|21|22) bump $(( -(k % 5) - 1 )); d="$d down" ;;
    23|24) bump $((k % 3 + 1)); d="$d up" ;;
    25) pick_dir; if [ -n "$dd" ]; then rm -r "$dd"; d="$d rmdir"; fi ;;
    26) mkdir -p outside; echo x > "outside/o$k.txt"; d="$d outside" ;;
    27) echo edited >> README.md; d="$d readme" ;;
    28) if [ $((k % 2)) = 0 ]; then echo clobbered >> notes/mine.md; else rm -f data/raw.bin; fi; d="$d userfile" ;;
    29|30|31|32) touch src/guard-fail; d="$d guardfail" ;;
    33) touch src/broken; d="$d broken" ;;
    34) echo "agent gave up"; exit 1 ;;
    35) ln -s ../base.num "src/gen/link$k" 2>/dev/null; d="$d link" ;;
    36) pick_file; if [ -n "$f" ] && [ -f "$f" ]; then chmod +x "$f"; d="$d chmod"; fi ;;
    *) d="$d nap" ;;
  esac
done
echo "$d""#;

/// How the runs of one kill point are started.
#[derive(Clone, Copy)]
struct Point {
    /// `--iterations`.
    cap: u64,
    /// `--rollback revert` instead of `reset`.
    revert: bool,
    /// `AUTORESEARCH_NO_WATCH=1`: scan the tree instead of watching it.
    no_watch: bool,
}

impl Point {
    fn label(&self) -> String {
        let mut l = format!("cap {}", self.cap);
        if self.revert {
            l.push_str(", revert");
        }
        if self.no_watch {
            l.push_str(", no watch");
        }
        l
    }
}

struct Stress {
    repo: TestRepo,
    verify: String,
    agent: String,
    guard: String,
    /// The value of [`MARK_VAR`] for this test's processes.
    mark: String,
    aux: String,
    seed: u64,
    /// No naps, sooner kills ([`FAST_VAR`]).
    fast: bool,
    /// The trial commits the in-flight marker named when a run was killed: each must stay
    /// reachable.
    trials: std::cell::RefCell<Vec<String>>,
}

impl Stress {
    fn new(seed: u64, fast: bool) -> Stress {
        let repo = TestRepo::with_files(&[
            ("src/base.num", "40\n"),
            ("src/lib/a.num", "5\n"),
            ("src/lib/b.num", "5\n"),
            ("src/docs/readme.txt", "docs\n"),
            ("README.md", "the project\n"),
            (".gitignore", "build/\n"),
        ]);
        for (path, bytes) in user_files() {
            let p = repo.root.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, bytes).unwrap();
        }
        repo.write(IGNORED.0, IGNORED.1);
        let verify = format!("sh {}", repo.script("verify.sh", VERIFY));
        let guard = format!("sh {}", repo.script("guard.sh", GUARD));
        let agent = repo.script("agent.sh", AGENT);
        let mark = format!("stress-{}-{seed:x}", std::process::id());
        let aux = repo.aux.display().to_string();
        Stress {
            repo,
            verify,
            agent,
            guard,
            mark,
            aux,
            seed,
            fast,
            trials: Default::default(),
        }
    }

    fn args(&self, p: Point) -> Vec<String> {
        let cap = p.cap.to_string();
        let rollback = if p.revert { "revert" } else { "reset" };
        TestRepo::loop_args(
            &self.verify,
            &self.agent,
            &[
                "--guard",
                &self.guard,
                "--rework",
                "1",
                "--max-pivots",
                "0",
                "--iterations",
                &cap,
                "--agent-timeout",
                "20s",
                "--verify-timeout",
                "20s",
                "--rollback",
                rollback,
            ],
        )
    }

    fn env(&self, p: Point) -> [(&str, &str); 4] {
        [
            (MARK_VAR, self.mark.as_str()),
            ("STRESS_AUX", self.aux.as_str()),
            ("STRESS_FAST", if self.fast { "1" } else { "" }),
            ("AUTORESEARCH_NO_WATCH", if p.no_watch { "1" } else { "0" }),
        ]
    }

    /// The longest wait before the kill, before the second kill, and the most iterations a kill
    /// point adds: 0-1.5 s, 0-0.4 s and 4; fast: 0-0.25 s, 0-0.12 s and 10.
    fn limits(&self) -> (u64, u64, u64) {
        if self.fast {
            (250, 120, 10)
        } else {
            (1500, 400, 4)
        }
    }

    /// Starts a run as `p` says, kills it (engine only) after `delay` unless it ended before;
    /// returns what happened, for the summary line.
    fn start_and_kill(&self, p: Point, delay: Duration) -> String {
        let mut run = self.repo.spawn_env(&self.args(p), &self.env(p));
        let started = Instant::now();
        let end = started + delay;
        while Instant::now() < end {
            if let Ok(Some(_)) = run.child.try_wait() {
                let r = run.finish();
                assert!(
                    r.code == 0 || (r.code == 2 && self.last_status() == "blocked"),
                    "{}: a run ended with {}\n--- stdout\n{}\n--- stderr\n{}",
                    self.context(),
                    r.code,
                    r.stdout,
                    r.stderr
                );
                let took = started.elapsed().as_millis();
                return format!("ended first (exit {} after {took} ms)", r.code);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        run.signal(nix::sys::signal::Signal::SIGKILL);
        let code = run.finish().code;
        if code != -9 {
            return format!("ended just before the kill (exit {code})");
        }
        let Some(marker) = self.inflight() else {
            return format!("killed (exit {code}) with no iteration in flight");
        };
        let n = marker["iteration"].as_u64().unwrap_or_default();
        let phase = marker["phase"].as_str().unwrap_or("?");
        let mut what = format!("killed (exit {code}) in iteration {n} during {phase}");
        if let Some(t) = marker["trial_commit"].as_str() {
            what.push_str(&format!(" (trial {})", &t[..7.min(t.len())]));
            self.trials.borrow_mut().push(t.to_string());
        }
        what
    }

    /// The in-flight marker, if there is one.
    fn inflight(&self) -> Option<serde_json::Value> {
        let text = fs::read_to_string(
            self.repo
                .root
                .join("autoresearch-results/engine/inflight.json"),
        )
        .ok()?;
        serde_json::from_str(&text).ok()
    }

    fn last_status(&self) -> String {
        if !self.repo.exists("autoresearch-results/results.tsv") {
            return String::new();
        }
        self.repo.statuses().pop().unwrap_or_default()
    }

    fn context(&self) -> String {
        format!(
            "stress seed {} (replay with {SEED_VAR}={})",
            self.seed, self.seed
        )
    }

    /// The recovery run: to completion (exit 0), or to a hard blocker (exit 2, `blocked` row).
    fn recover(&self, p: Point) -> (Run, Duration) {
        let t = Instant::now();
        let r = self.repo.run_env(&self.args(p), &self.env(p));
        let took = t.elapsed();
        assert!(
            r.code == 0 || (r.code == 2 && self.last_status() == "blocked"),
            "{}: the recovery run exited {}\n--- stdout\n{}\n--- stderr\n{}",
            self.context(),
            r.code,
            r.stdout,
            r.stderr
        );
        (r, took)
    }
}

/// Runs the verify script on the checked-out tree and returns its metric.
fn measure(s: &Stress) -> f64 {
    let mut cmd = Command::new("sh");
    hermetic(&mut cmd, &s.repo.aux);
    let o = cmd
        .args(["-c", &s.verify])
        .env("STRESS_AUX", &s.aux)
        .env("STRESS_FAST", if s.fast { "1" } else { "" })
        .current_dir(&s.repo.root)
        .output()
        .expect("run verify");
    let out = String::from_utf8_lossy(&o.stdout);
    let last = out.lines().last().unwrap_or_default().trim().to_string();
    last.parse()
        .unwrap_or_else(|_| panic!("{}: HEAD's tree gives no metric: {out}", s.context()))
}

/// Every process (pid, cmdline) carrying this test's mark.
fn marked_processes(mark: &str) -> Vec<(u32, String)> {
    let needle = format!("{MARK_VAR}={mark}");
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(env) = fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if env.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
            let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            out.push((pid, cmd));
        }
    }
    out
}

/// Collects the files under `dir` (recursively) whose name passes `pred`.
fn find_files(dir: &Path, pred: &dyn Fn(&str) -> bool, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let ft = e.file_type().expect("file type");
        if ft.is_dir() {
            find_files(&e.path(), pred, out);
        } else if pred(&name) {
            out.push(e.path().display().to_string());
        }
    }
}

/// The invariants after a recovery.
fn check_invariants(s: &Stress) {
    let ctx = s.context();
    let repo = &s.repo;
    // The log parses, its rows are consecutive, and the state is its replay.
    assert_consistent(repo);
    let state = repo.state();
    let head = repo.head();
    assert_eq!(state["engine"]["head"], head.as_str(), "{ctx}");
    // HEAD's content gives the retained metric.
    let retained = state["state"]["current_metric"].as_f64().expect("metric");
    assert_eq!(
        measure(s),
        retained,
        "{ctx}: HEAD does not measure as retained"
    );
    // Clean apart from the user's files, which are intact.
    let mut want: Vec<String> = user_files()
        .iter()
        .map(|(p, _)| format!("?? {p}"))
        .collect();
    want.sort();
    let mut got: Vec<String> = repo.status().lines().map(str::to_string).collect();
    got.sort();
    assert_eq!(got, want, "{ctx}: the tree is not clean");
    for (path, bytes) in user_files() {
        assert_eq!(repo.read_bytes(path), bytes, "{ctx}: {path} changed");
    }
    assert_eq!(repo.read(IGNORED.0), IGNORED.1, "{ctx}");
    check_commits(s);
    // No process of the run is left.
    let end = Instant::now() + Duration::from_secs(2);
    let mut left = marked_processes(&s.mark);
    while !left.is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
        left = marked_processes(&s.mark);
    }
    assert!(
        left.is_empty(),
        "{ctx}: processes of the run are alive: {left:?}"
    );
    // No temporary file of an atomic write, no git lock.
    let mut stray = Vec::new();
    find_files(
        &repo.root,
        &|n: &str| n.starts_with(".autoresearch-tmp-"),
        &mut stray,
    );
    find_files(
        &repo.root.join(".git"),
        &|n: &str| n.ends_with(".lock"),
        &mut stray,
    );
    assert!(stray.is_empty(), "{ctx}: left behind: {stray:?}");
}

/// Every keep is on the branch; every failed trial resolves and is reachable from
/// `refs/autoresearch/` or HEAD.
fn check_commits(s: &Stress) {
    let ctx = s.context();
    let repo = &s.repo;
    let on_branch = repo.git(&["rev-list", "HEAD"]);
    let reachable = repo.git(&["rev-list", "HEAD", "--glob=refs/autoresearch/*"]);
    let found = |set: &str, short: &str| set.lines().any(|c| c.starts_with(short));
    for t in s.trials.borrow().iter() {
        assert!(
            found(&reachable, t),
            "{ctx}: the trial {t} of a killed iteration is unreachable"
        );
    }
    for row in repo.rows() {
        let (commit, status) = (row[1].as_str(), row[5].as_str());
        if commit == "-" {
            continue;
        }
        match status {
            "keep" | "baseline" => assert!(
                found(&on_branch, commit),
                "{ctx}: row {row:?}: the kept commit is not on HEAD"
            ),
            "discard" | "crash" => assert!(
                found(&reachable, commit),
                "{ctx}: row {row:?}: the trial {commit} is unreachable"
            ),
            _ => {}
        }
    }
}

/// On a failure: prints the log and the last runs' output, and copies the repository and the
/// scripts to the temp dir for a look (the test's own temp dirs are removed when it unwinds).
struct DumpOnPanic<'a> {
    s: &'a Stress,
    what: String,
    recovery: String,
}

impl Drop for DumpOnPanic<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let keep = std::env::temp_dir().join(format!("autoresearch-stress-{}", self.s.seed));
        let _ = fs::create_dir_all(&keep);
        for (from, to) in [(&self.s.repo.root, "repo"), (&self.s.repo.aux, "aux")] {
            let _ = Command::new("cp")
                .arg("-a")
                .arg(from)
                .arg(keep.join(to))
                .status();
        }
        eprintln!(
            "stress: FAILED at: {}\n--- results\n{}\n--- recovery stderr\n{}\n--- kept a copy at {}",
            self.what,
            fs::read_to_string(self.s.repo.root.join("autoresearch-results/results.tsv"))
                .unwrap_or_default(),
            self.recovery,
            keep.display()
        );
    }
}

/// One line: how many rows of each status, and how many are `[INTERRUPTED]`.
fn histogram(repo: &TestRepo) -> String {
    let mut counts = std::collections::BTreeMap::new();
    let mut interrupted = 0;
    for row in repo.rows() {
        *counts.entry(row[5].clone()).or_insert(0) += 1;
        interrupted += usize::from(row[6].starts_with("[INTERRUPTED]"));
    }
    let mut line: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    line.push(format!("[INTERRUPTED] {interrupted}"));
    line.join(", ")
}

#[test]
fn kill_9_at_random_moments_keeps_every_invariant() {
    let points: u64 = std::env::var(POINTS_VAR)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_POINTS);
    let seed: u64 = std::env::var(SEED_VAR)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let fast = std::env::var(FAST_VAR).is_ok_and(|v| !v.is_empty() && v != "0");
    eprintln!(
        "stress: seed {seed}, {points} kill points{} (replay with {SEED_VAR}={seed})",
        if fast { ", fast" } else { "" }
    );
    let started = Instant::now();
    let s = Stress::new(seed, fast);
    let (max_delay, max_again, max_step) = s.limits();
    let mut rng = Rng(seed);
    let mut cap = 0;
    for k in 1..=points {
        let point_seed = rng.below(1_000_000);
        fs::write(s.repo.aux.join("seed"), point_seed.to_string()).unwrap();
        cap += 1 + rng.below(max_step);
        let p = Point {
            cap,
            revert: rng.below(4) == 0,
            no_watch: rng.below(3) == 0,
        };
        let delay = Duration::from_millis(rng.below(max_delay + 1));
        let mut what = s.start_and_kill(p, delay);
        // Sometimes the next run is killed too, early: inside its take-over and recovery.
        if rng.below(4) == 0 {
            let again = Duration::from_millis(rng.below(max_again));
            let second = s.start_and_kill(p, again);
            what = format!("{what}; again after {} ms: {second}", again.as_millis());
        }
        let mut dump = DumpOnPanic {
            s: &s,
            what: format!("kill point {k}: {what}"),
            recovery: String::new(),
        };
        let (r, took) = s.recover(p);
        dump.recovery = r.stderr.clone();
        check_invariants(&s);
        drop(dump);
        let stopped = r.stderr.contains("left running by the previous run");
        eprintln!(
            "stress {k}/{points}: seed {point_seed}, {}, delay {} ms, {what}; recovery exit {} in {} ms{}, {} rows",
            p.label(),
            delay.as_millis(),
            r.code,
            took.as_millis(),
            if stopped { ", stopped orphans" } else { "" },
            s.repo.rows().len()
        );
    }
    eprintln!(
        "stress: {points} kill points in {:.1} s (seed {seed}); rows: {}",
        started.elapsed().as_secs_f64(),
        histogram(&s.repo)
    );
}
