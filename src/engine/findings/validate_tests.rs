//! Tests of the validation of findings: locations, quoted code, repros, duplicates.

use super::*;
use crate::config::{Mode, Severity};

const CALC: &str = "def window_sum(xs, k):\n    total = 0\n    for i in range(k - 1):\n        total += xs[i]\n    return total\n";

fn read(p: &str) -> Option<String> {
    (p == "calc.py").then(|| CALC.to_string())
}

fn finding(start: u32, end: u32, code: &str) -> Finding {
    serde_json::from_value(serde_json::json!({
        "title": "off by one", "severity": "high", "evidence": "e",
        "locations": [{"path": "calc.py", "start_line": start, "end_line": end, "code": code}],
        "hypothesis": "the loop stops one short", "verdict": "confirmed",
        "repro": "python3 -c 'import calc'"
    }))
    .unwrap()
}

fn pre(f: Finding, store: &Store) -> Pre {
    precheck(f, store, &read)
}

#[test]
fn a_quote_of_the_cited_lines_passes_whatever_its_whitespace() {
    let f = finding(3, 4, "for i in range(k-1):\n total += xs[i]");
    assert!(matches!(pre(f, &Store::default()), Pre::RunRepro(_)));
}

#[test]
fn code_that_is_not_there_is_unfounded() {
    let cases = [
        (finding(40, 41, "x"), "does not exist (calc.py has 5 lines)"),
        (
            finding(1, 1, "def other():"),
            "is not what calc.py:1-1 holds",
        ),
        (finding(0, 1, "x"), "not a line range"),
        (finding(2, 2, "  "), "quotes no code"),
    ];
    for (f, why) in cases {
        let Pre::Done(a) = pre(f, &Store::default()) else {
            panic!("not settled")
        };
        assert_eq!(a.outcome, Outcome::Unfounded);
        assert!(a.note.contains(why), "{} lacks {why}", a.note);
        assert!(
            a.describe("")
                .starts_with("[UNFOUNDED] high: off by one (calc.py:")
        );
    }
    let mut f = finding(1, 1, "def window_sum(xs, k):");
    f.locations[0].path = "../etc/passwd".into();
    let Pre::Done(a) = pre(f, &Store::default()) else {
        panic!()
    };
    assert!(a.note.contains("not a path inside"), "{}", a.note);
    f = finding(1, 1, "x");
    f.locations.clear();
    let Pre::Done(a) = pre(f, &Store::default()) else {
        panic!()
    };
    assert!(a.note.contains("cites no code"));
}

#[test]
fn a_finding_at_an_overlapping_location_merges_into_the_first() {
    let first = settle(finding(3, 4, "for i in range(k - 1): total += xs[i]"), None);
    let store = Store::new(Mode::Debug, "t", None).with(1, &first, None);
    let Pre::Done(a) = pre(finding(3, 3, "for i in range(k - 1):"), &store) else {
        panic!("not merged")
    };
    assert_eq!((a.outcome, a.duplicate_of), (Outcome::Duplicate, Some(1)));
    let store = store.with(2, &a, None);
    assert_eq!(store.findings.len(), 1);
    assert_eq!(store.findings[0].also_in, vec![2]);
    assert!(a.describe("").ends_with("same as finding #1"));
    // eliminated.md and the prompt say why, as the row does.
    assert_eq!(store.tried[1].note, "same as finding #1");
    // Another kind (security: another CWE) at the same place is another finding.
    let mut other = finding(3, 3, "for i in range(k - 1):");
    other.cwe = Some("CWE-89".into());
    assert!(matches!(pre(other, &store), Pre::RunRepro(_)));
}

#[test]
fn only_a_failing_repro_confirms() {
    let f = finding(3, 3, "for i in range(k - 1):");
    let run = |exit: Option<i32>, timed_out: bool, output: &str, f: &Finding| ReproRun {
        command: "r".into(),
        exit,
        timed_out,
        failed: repro_shows(f, exit, timed_out, output),
        output: output.into(),
    };
    let confirmed = settle(f.clone(), Some(run(Some(1), false, "", &f)));
    assert_eq!(confirmed.outcome, Outcome::Confirmed);
    for (exit, timed_out, why) in [
        (Some(0), false, "the repro passed (exit 0)"),
        (Some(127), false, "the repro could not run (exit 127)"),
        (None, true, "the repro timed out"),
    ] {
        let a = settle(f.clone(), Some(run(exit, timed_out, "", &f)));
        assert_eq!(a.outcome, Outcome::Unconfirmed);
        assert_eq!(a.note, why);
    }
    assert_eq!(settle(f.clone(), None).outcome, Outcome::Unconfirmed);
    // A named output decides, whatever the exit code.
    let mut named = f.clone();
    named.repro_expect = Some("AssertionError".into());
    assert!(repro_shows(
        &named,
        Some(0),
        false,
        "x\nAssertionError: 5 != 6"
    ));
    assert!(!repro_shows(&named, Some(1), false, "ImportError"));
}

#[test]
fn verdicts_other_than_confirmed_are_tried_not_found() {
    for (v, o) in [
        (Verdict::Disproven, Outcome::Disproven),
        (Verdict::Inconclusive, Outcome::Inconclusive),
        (Verdict::NewLead, Outcome::NewLead),
    ] {
        let mut f = finding(99, 99, "not checked");
        f.verdict = Some(v);
        let Pre::Done(a) = pre(f, &Store::default()) else {
            panic!()
        };
        assert_eq!(a.outcome, o);
        assert!(a.describe("").contains("the loop stops one short"));
        let s = Store::new(Mode::Debug, "t", None).with(1, &a, None);
        assert!(s.findings.is_empty());
        assert_eq!(s.tried[0].outcome, o);
    }
}

#[test]
fn the_debug_metric_counts_confirmed_findings_and_status_counts_severities() {
    let f = finding(3, 3, "for i in range(k - 1):");
    let mut g = finding(1, 1, "def window_sum(xs, k):");
    g.severity = Severity::Low;
    let ok = ReproRun {
        command: "r".into(),
        exit: Some(1),
        timed_out: false,
        failed: true,
        output: String::new(),
    };
    let s = Store::new(Mode::Debug, "t", None)
        .with(1, &settle(f, Some(ok)), Some("refs/x".into()))
        .with(2, &settle(g, None), None);
    assert_eq!(s.metric(Mode::Debug), 1.0);
    assert_eq!(
        s.by_severity(),
        vec![(Severity::High, 1), (Severity::Low, 1)]
    );
    assert_eq!(s.findings[0].trial_ref.as_deref(), Some("refs/x"));
}

#[test]
fn a_broken_json_answer_is_not_repeated_as_the_row_description() {
    let a = Assessed::nothing(
        Outcome::NoFinding,
        "the finding does not parse (eof)".into(),
    );
    let said = r#"  total += xs[i]"}],"evidence":"one short","verdict":"confirmed"}"#;
    assert_eq!(
        a.describe(said),
        "[NO FINDING] unreadable answer — the finding does not parse (eof)"
    );
    assert_eq!(
        a.describe("looked at the parser, nothing"),
        "[NO FINDING] looked at the parser, nothing — the finding does not parse (eof)"
    );
}

#[test]
fn a_path_cited_with_dot_slash_or_absolute_under_the_repository_is_made_relative() {
    let roots = ["/srv/repo".to_string(), "/private/srv/repo/".to_string()];
    let cite = |p: &str| {
        let mut f = finding(3, 4, "for i in range(k - 1):\n total += xs[i]");
        f.locations[0].path = p.into();
        relative_paths(f, &roots).locations[0].path.clone()
    };
    assert_eq!(cite("./calc.py"), "calc.py");
    assert_eq!(cite(".//./calc.py"), "calc.py");
    assert_eq!(cite("/srv/repo/calc.py"), "calc.py");
    assert_eq!(cite("/private/srv/repo/calc.py"), "calc.py");
    // Outside the repository (or a sibling sharing the prefix): left for the check to refuse.
    assert_eq!(cite("/srv/repo2/calc.py"), "/srv/repo2/calc.py");
    assert_eq!(cite("/etc/passwd"), "/etc/passwd");
    let f = finding(3, 4, "for i in range(k - 1):\n total += xs[i]");
    let mut g = f.clone();
    g.locations[0].path = "./calc.py".into();
    assert_eq!(
        pre(relative_paths(g, &roots), &Store::default()),
        pre(f, &Store::default())
    );
}
