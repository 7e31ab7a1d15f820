//! The rules a fix run's trial must keep (GUIDE "Debug mode" and "Security mode", `--fix`): it
//! adds no suppression marker and does not delete or weaken tests. Mechanical checks over the
//! files a turn changed; the step machine discards a trial that breaks one (`[SUPPRESSION]`,
//! `[WEAKENS TESTS]`).

use std::collections::HashMap;

use super::policy::security::suppression_in;

/// One file a turn changed: its text before (`None`: it did not exist) and after (`None`: the
/// turn deleted it). A file that is not text is given as `None` on the side it is binary.
#[derive(Clone, Copy, Debug)]
pub struct FileChange<'a> {
    pub path: &'a str,
    pub old: Option<&'a str>,
    pub new: Option<&'a str>,
}

/// Files whose only job is to make a scanner ignore code: any line added to one is a suppression.
const IGNORE_FILES: &[&str] = &[
    ".semgrepignore",
    ".bandit",
    ".snyk",
    ".trivyignore",
    ".gitleaksignore",
    ".eslintignore",
    ".codeqlignore",
];

/// Directory names that hold tests or repros.
const TEST_DIRS: &[&str] = &[
    "test",
    "tests",
    "spec",
    "specs",
    "__tests__",
    "testing",
    "repro",
    "repros",
];

/// Lines that make a test: removing more of them than a trial adds weakens the tests.
const TEST_LINES: &[&str] = &[
    "assert",
    "expect(",
    "#[test",
    "def test_",
    "@test",
    "func test",
];

/// Markers that skip a test: adding one to a test file weakens the tests.
const SKIPS: &[&str] = &[
    "pytest.mark.skip",
    "pytest.mark.xfail",
    "unittest.skip",
    "#[ignore",
    "@disabled",
    "@ignore",
    "t.skip(",
    "it.skip(",
    "describe.skip(",
    "test.skip(",
    "xit(",
    "xdescribe(",
];

/// Prose files: a marker mentioned in them suppresses nothing.
const PROSE: &[&str] = &[".md", ".txt", ".rst", ".adoc"];

/// Whether `path` (repository-relative, `/`-separated) is a test or repro file.
pub fn is_test_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    let mut parts = lower.split('/').collect::<Vec<_>>();
    let name = parts.pop().unwrap_or_default();
    let stem = name.split('.').next().unwrap_or_default();
    parts.iter().any(|d| TEST_DIRS.contains(d))
        || stem.starts_with("test_")
        || stem.ends_with("_test")
        || stem.ends_with("_tests")
        || stem == "test"
        || stem == "tests"
        || name.contains(".test.")
        || name.contains(".spec.")
        || name.ends_with("test.java")
        || name.ends_with("tests.java")
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The lines of `new` not in `old` and of `old` not in `new`, counted as multisets (a moved line
/// is neither): (added, removed).
fn line_diff<'a>(old: &'a str, new: &'a str) -> (Vec<&'a str>, Vec<&'a str>) {
    let mut count: HashMap<&str, i64> = HashMap::new();
    for l in old.lines() {
        *count.entry(l.trim()).or_default() += 1;
    }
    let mut added = Vec::new();
    for l in new.lines() {
        let c = count.entry(l.trim()).or_default();
        if *c > 0 {
            *c -= 1;
        } else {
            added.push(l);
        }
    }
    let mut left: HashMap<&str, i64> = HashMap::new();
    for l in new.lines() {
        *left.entry(l.trim()).or_default() += 1;
    }
    let mut removed = Vec::new();
    for l in old.lines() {
        let c = left.entry(l.trim()).or_default();
        if *c > 0 {
            *c -= 1;
        } else {
            removed.push(l);
        }
    }
    (added, removed)
}

fn has_any(line: &str, markers: &[&str]) -> bool {
    let lower = line.to_ascii_lowercase();
    markers.iter().any(|m| lower.contains(m))
}

/// The first rule a trial's changes break, as the discard row's description head:
/// `[SUPPRESSION] ...` (a suppression marker on an added line, or a line added to a scanner's
/// ignore file) or `[WEAKENS TESTS] ...` (a test or repro file deleted, a skip marker added to
/// one, or more assertion/test lines removed from one than added). `None`: the trial keeps them.
pub fn broken_rule(changes: &[FileChange]) -> Option<String> {
    for c in changes {
        let (added, removed) = line_diff(c.old.unwrap_or(""), c.new.unwrap_or(""));
        let lower = c.path.to_ascii_lowercase();
        if !PROSE.iter().any(|e| lower.ends_with(e)) {
            if IGNORE_FILES.contains(&file_name(&lower)) && !added.is_empty() {
                return Some(format!(
                    "[SUPPRESSION] added to the scanner ignore file {}",
                    c.path
                ));
            }
            if let Some((m, l)) = added.iter().find_map(|l| suppression_in(l).map(|m| (m, l))) {
                return Some(format!(
                    "[SUPPRESSION] `{m}` added in {}: {}",
                    c.path,
                    l.trim()
                ));
            }
        }
        if !is_test_path(c.path) {
            continue;
        }
        if c.old.is_some() && c.new.is_none() {
            return Some(format!("[WEAKENS TESTS] deleted the test file {}", c.path));
        }
        if let Some(l) = added.iter().find(|l| has_any(l, SKIPS)) {
            return Some(format!(
                "[WEAKENS TESTS] a skip added in {}: {}",
                c.path,
                l.trim()
            ));
        }
        let gone = removed.iter().filter(|l| has_any(l, TEST_LINES)).count();
        let new = added.iter().filter(|l| has_any(l, TEST_LINES)).count();
        if gone > new {
            return Some(format!(
                "[WEAKENS TESTS] removed {gone} assertion or test line(s) from {} and added {new}",
                c.path
            ));
        }
    }
    None
}

/// What the agent is told with a discard for a broken rule (the row's description carries it).
pub const FEEDBACK: &str = "a fix must not add suppressions or delete, skip or weaken tests \
or repros; fix the implementation instead";

#[cfg(test)]
mod tests {
    use super::*;

    fn change<'a>(path: &'a str, old: Option<&'a str>, new: Option<&'a str>) -> FileChange<'a> {
        FileChange { path, old, new }
    }

    #[test]
    fn a_suppression_marker_on_an_added_line_breaks_the_rule() {
        let old = "q = db.execute(sql)\n";
        let new = "q = db.execute(sql)  # nosec B608\n";
        assert_eq!(
            broken_rule(&[change("app.py", Some(old), Some(new))]).as_deref(),
            Some("[SUPPRESSION] `nosec` added in app.py: q = db.execute(sql)  # nosec B608")
        );
        let rs = broken_rule(&[change(
            "src/a.rs",
            None,
            Some("#[allow(unused)]\nfn f() {}\n"),
        )]);
        assert!(
            rs.unwrap()
                .starts_with("[SUPPRESSION] `#[allow(` added in src/a.rs")
        );
        // A marker already there, or only removed, or mentioned in prose, is no addition.
        let kept = "x = 1  # noqa\ny = 2\n";
        assert_eq!(
            broken_rule(&[change("a.py", Some(kept), Some("x = 1  # noqa\ny = 3\n"))]),
            None
        );
        assert_eq!(
            broken_rule(&[change("a.py", Some(kept), Some("x = 1\ny = 2\n"))]),
            None
        );
        assert_eq!(
            broken_rule(&[change("NOTES.md", None, Some("never add # nosec\n"))]),
            None
        );
        let ignore = broken_rule(&[change(".semgrepignore", None, Some("app.py\n"))]);
        assert_eq!(
            ignore.as_deref(),
            Some("[SUPPRESSION] added to the scanner ignore file .semgrepignore")
        );
    }

    #[test]
    fn test_paths_are_recognised() {
        for p in [
            "tests/it/main.rs",
            "test_calc.py",
            "pkg/calc_test.go",
            "web/app.test.js",
            "web/app.spec.ts",
            "repro/sqli.py",
            "src/test/java/AppTest.java",
        ] {
            assert!(is_test_path(p), "{p}");
        }
        for p in ["app.py", "src/contest.rs", "latest/x.py", "attestation.py"] {
            assert!(!is_test_path(p), "{p}");
        }
    }

    #[test]
    fn deleting_skipping_or_thinning_tests_weakens_them() {
        let test = "def test_sum():\n    assert total(3) == 6\n    assert total(0) == 0\n";
        assert_eq!(
            broken_rule(&[change("test_calc.py", Some(test), None)]).as_deref(),
            Some("[WEAKENS TESTS] deleted the test file test_calc.py")
        );
        let thinner = "def test_sum():\n    assert total(3) == 6\n";
        assert_eq!(
            broken_rule(&[change("test_calc.py", Some(test), Some(thinner))]).as_deref(),
            Some(
                "[WEAKENS TESTS] removed 1 assertion or test line(s) from test_calc.py and added 0"
            )
        );
        let skipped = format!("import pytest\n@pytest.mark.skip\n{test}");
        assert!(
            broken_rule(&[change("test_calc.py", Some(test), Some(&skipped))])
                .unwrap()
                .starts_with("[WEAKENS TESTS] a skip added in test_calc.py")
        );
        // Correcting an assertion (one out, one in), moving lines, adding tests: allowed.
        let corrected = "def test_sum():\n    assert total(3) == 6\n    assert total(0) == 1\n";
        let moved = "def test_sum():\n    assert total(0) == 0\n    assert total(3) == 6\n";
        let more = format!("{test}\ndef test_one():\n    assert total(1) == 1\n");
        for new in [corrected, moved, more.as_str()] {
            assert_eq!(
                broken_rule(&[change("test_calc.py", Some(test), Some(new))]),
                None,
                "{new}"
            );
        }
        // Outside test paths, removing an assert is the implementation's business.
        assert_eq!(
            broken_rule(&[change("calc.py", Some("assert x\ny\n"), Some("y\n"))]),
            None
        );
    }
}
