//! `plan --agent none`: candidates from the repository profile alone (failing tests, lint
//! warnings, type errors, the timing of a detected benchmark), ordered by what the goal's words
//! ask for. Pure: the profile in, at most three candidates out.

use super::candidate::{Candidate, MAX_CANDIDATES};
use super::profile::{Profile, TestRunner};

/// What a candidate measures (for the ordering by the goal's words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Tests,
    Lint,
    Types,
    Timing,
}

/// Words of a goal that point at each kind.
fn words(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Tests => &["test", "fail", "bug", "fix", "pass", "broken", "correct"],
        Kind::Lint => &[
            "lint", "warning", "clippy", "style", "clean", "ruff", "eslint",
        ],
        Kind::Types => &["type", "mypy", "tsc", "typing"],
        Kind::Timing => &[
            "fast", "speed", "slow", "perf", "latency", "time", "bench", "quick",
        ],
    }
}

/// A test run's failure count: the command and the metric's reading (`None`: scalar).
fn test_verify(runner: TestRunner) -> (String, Option<&'static str>) {
    let scalar = |s: &str| (s.to_string(), None);
    match runner {
        TestRunner::Cargo => scalar(
            "cargo test --no-fail-fast 2>&1 | awk '/^test result:/ { n += $6 } END { print n }'",
        ),
        TestRunner::Pytest => ("python3 -m pytest -q".into(), Some(r"(\d+) failed")),
        TestRunner::Unittest => scalar(
            "python3 -m unittest 2>&1 | awk '/^(FAIL|ERROR): / { n++ } /^Ran [0-9]+ test/ { ran = 1 } END { if (ran) print n + 0 }'",
        ),
        TestRunner::NodeTest => scalar(
            "npm test --silent -- --test-reporter=tap 2>&1 | awk '/^# fail [0-9]+/ { n = $3 } END { print n }'",
        ),
        TestRunner::Jest => ("npx jest --ci 2>&1".into(), Some(r"Tests:\s+(\d+) failed")),
        TestRunner::Go => scalar(
            "go test ./... 2>&1 | awk '/^--- FAIL/ { n++ } /^(ok|FAIL|\\?) / { ran = 1 } END { if (ran) print n + 0 }'",
        ),
        TestRunner::Npm => scalar("if npm test >/dev/null 2>&1; then echo 0; else echo 1; fi"),
        TestRunner::Make => scalar("if make -s test >/dev/null 2>&1; then echo 0; else echo 1; fi"),
        TestRunner::Ctest => scalar(
            "cmake -S . -B build >/dev/null && cmake --build build >/dev/null && ctest --test-dir build 2>&1 | awk '/tests failed out of/ { print $4 }'",
        ),
    }
}

/// The plain command that runs the tests (a guard for the other candidates).
fn test_guard(runner: TestRunner) -> &'static str {
    match runner {
        TestRunner::Cargo => "cargo test --quiet",
        TestRunner::Pytest => "python3 -m pytest -q",
        TestRunner::Unittest => "python3 -m unittest -q",
        TestRunner::NodeTest | TestRunner::Npm => "npm test --silent",
        TestRunner::Jest => "npx jest --ci",
        TestRunner::Go => "go test ./...",
        TestRunner::Make => "make -s test",
        TestRunner::Ctest => "ctest --test-dir build",
    }
}

/// A checker's count of findings: metric name, command, regex (`None`: scalar).
fn checker_verify(checker: &str) -> Option<(Kind, &'static str, String, Option<&'static str>)> {
    Some(match checker {
        "clippy" => (
            Kind::Lint,
            "warnings",
            "cargo clippy --all-targets --message-format=short 2>&1 | awk '/: warning: / { n++ } /^error/ { bad = 1 } END { if (!bad) print n + 0 }'".into(),
            None,
        ),
        "ruff" => (Kind::Lint, "errors", "ruff check --no-fix".into(), Some(r"Found (\d+) errors?")),
        "flake8" => (
            Kind::Lint,
            "warnings",
            "python3 -m flake8 --count --exit-zero . | tail -n 1".into(),
            None,
        ),
        "mypy" => (Kind::Types, "errors", "python3 -m mypy .".into(), Some(r"Found (\d+) errors?")),
        "pyright" => (Kind::Types, "errors", "npx pyright".into(), Some(r"(\d+) errors?")),
        "eslint" => (Kind::Lint, "problems", "npx eslint .".into(), Some(r"(\d+) problems? \(")),
        "tsc" => (
            Kind::Types,
            "errors",
            "npx tsc --noEmit --pretty false | grep -c 'error TS'".into(),
            None,
        ),
        "go-vet" => (
            Kind::Lint,
            "warnings",
            "go vet ./... 2>&1 | grep -c '^[^#]'".into(),
            None,
        ),
        _ => return None,
    })
}

/// The scope: where the code of the main languages lives (tests and benchmarks left out).
fn scope(profile: &Profile) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in profile.languages.iter().filter(|l| l.share >= 10) {
        if let Some(s) = profile.sources.get(l.name) {
            out.extend(s.iter().cloned());
        }
    }
    out.dedup();
    out
}

/// Up to three candidates for `goal` from `profile`, most fitting first.
pub fn candidates(goal: &str, profile: &Profile) -> Vec<Candidate> {
    let scope = scope(profile);
    if scope.is_empty() {
        return Vec::new();
    }
    let guard = profile.tests.first().map(|t| test_guard(*t).to_string());
    let make = |kind, mode: &str, metric: &str, verify: String, regex: Option<&str>, guard| {
        (
            kind,
            Candidate {
                goal: goal.to_string(),
                mode: mode.into(),
                scope: scope.clone(),
                metric: metric.into(),
                direction: "lower".into(),
                verify,
                guard,
                verify_format: regex.map(|_| "regex".to_string()),
                metric_regex: regex.map(String::from),
            },
        )
    };
    let mut all: Vec<(Kind, Candidate)> = Vec::new();
    if let Some(t) = profile.tests.first() {
        let (verify, regex) = test_verify(*t);
        all.push(make(Kind::Tests, "fix", "failures", verify, regex, None));
    }
    for c in &profile.checkers {
        if let Some((kind, metric, verify, regex)) = checker_verify(c) {
            all.push(make(kind, "fix", metric, verify, regex, guard.clone()));
        }
    }
    // The detected benchmark, else the test suite: what "faster" can mean with nothing else.
    let timed = profile
        .benchmarks
        .first()
        .map(|b| b.command.clone())
        .or_else(|| profile.tests.first().map(|t| test_guard(*t).to_string()));
    if let Some(command) = timed {
        let verify = format!(
            "s=$(date +%s%N); {command} >/dev/null 2>&1 || exit 1; e=$(date +%s%N); echo $(( (e - s) / 1000000 ))"
        );
        all.push(make(
            Kind::Timing,
            "loop",
            "ms",
            verify,
            None,
            guard.clone(),
        ));
    }
    let goal_lc = goal.to_lowercase();
    // A speed word decides: "make the tests pass faster" asks for time, not for fixed tests.
    let hits = |k: Kind| {
        let n = words(k).iter().filter(|w| goal_lc.contains(*w)).count();
        if matches!(k, Kind::Timing) { n * 3 } else { n }
    };
    // Stable: ties keep the order above (tests, checkers, timing).
    all.sort_by_key(|(k, _)| std::cmp::Reverse(hits(*k)));
    all.into_iter()
        .map(|(_, c)| c)
        .take(MAX_CANDIDATES)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::profile::Bench;

    fn rust() -> Profile {
        let mut p = Profile::from_files(
            &[
                ("Cargo.toml".into(), 10),
                ("src/lib.rs".into(), 10),
                ("benches/b.rs".into(), 1),
            ],
            |_| Some(String::new()),
        );
        p.benchmarks = vec![Bench {
            name: "b".into(),
            command: "cargo bench".into(),
        }];
        p
    }

    #[test]
    fn tests_first_unless_the_goal_asks_for_speed() {
        let c = candidates("fix the failing tests", &rust());
        let metrics: Vec<&str> = c.iter().map(|c| c.metric.as_str()).collect();
        assert_eq!(metrics, ["failures", "warnings", "ms"]);
        assert_eq!(c[0].mode, "fix");
        assert_eq!(c[0].guard, None);
        assert_eq!(c[1].guard.as_deref(), Some("cargo test --quiet"));
        assert_eq!(c[0].scope, ["src/**"]);
        let fast = candidates("make it faster", &rust());
        assert_eq!(fast[0].metric, "ms");
        assert_eq!(fast[0].mode, "loop");
        assert!(fast[0].verify.contains("cargo bench >/dev/null"));
    }

    #[test]
    fn without_a_benchmark_speed_times_the_test_suite() {
        let mut p = rust();
        p.benchmarks.clear();
        let fast = candidates("make the tests pass faster", &p);
        assert_eq!(fast[0].metric, "ms");
        assert!(fast[0].verify.contains("cargo test --quiet >/dev/null"));
        assert_eq!(fast[0].guard.as_deref(), Some("cargo test --quiet"));
    }

    #[test]
    fn regex_readings_carry_their_format() {
        let p = Profile {
            checkers: vec!["ruff"],
            ..Profile::from_files(&[("a.py".into(), 5)], |_| None)
        };
        let c = candidates("clean up lint", &p);
        assert_eq!(c[0].verify_format.as_deref(), Some("regex"));
        assert_eq!(c[0].metric_regex.as_deref(), Some(r"Found (\d+) errors?"));
        assert_eq!(c[0].scope, ["a.py"]);
    }

    #[test]
    fn nothing_to_measure_gives_no_candidate() {
        let p = Profile::from_files(&[("README.md".into(), 5)], |_| None);
        assert!(candidates("anything", &p).is_empty());
    }
}
