//! Tests of the coverage score and the examined-clean record.

use super::*;

/// A finding with these categories and severity (the other fields do not matter here).
pub(crate) fn finding(severity: &str, stride: &str, owasp: &str) -> Finding {
    serde_json::from_value(serde_json::json!({
        "title": format!("{stride} / {owasp}"),
        "severity": severity,
        "locations": [{"path": "app.py", "start_line": 1, "end_line": 1, "code": "x"}],
        "stride": stride,
        "owasp": owasp,
        "cwe": "CWE-89",
    }))
    .expect("finding")
}

#[test]
fn owasp_codes_are_read_in_their_usual_spellings() {
    for t in [
        "A03:2021",
        "A3:2021",
        "a03:2021",
        "A03",
        "A03:2021-Injection",
        "A03 Injection",
    ] {
        assert_eq!(owasp_category(t), Some(3), "{t}");
    }
    assert_eq!(owasp_category("A10:2021"), Some(10));
    for t in ["A03:2017", "A11:2021", "A00", "Injection", "", "A", "A03x"] {
        assert_eq!(owasp_category(t), None, "{t}");
    }
    assert_eq!(owasp_code(3), "A03:2021");
}

#[test]
fn the_score_matches_a_hand_computation() {
    // Three STRIDE categories (Tampering twice), two OWASP categories (A03 twice, A01), four
    // validated findings of which three are confirmed; an info finding and an unfounded one
    // (not passed in: the caller keeps validated findings only) add nothing.
    let findings = vec![
        (finding("high", "Tampering", "A03:2021"), true),
        (finding("critical", "Tampering", "A03:2021"), true),
        (
            finding("medium", "Information Disclosure", "A01:2021"),
            false,
        ),
        (finding("low", "Spoofing", "A01:2021"), true),
        (finding("info", "Repudiation", "A09:2021"), true),
    ];
    let c = Coverage::of(&findings, &[]);
    assert_eq!((c.stride_covered(), c.owasp_covered()), (3, 2));
    assert_eq!((c.validated, c.confirmed), (4, 3));
    // (3/6)*35 = 17.5; (2/10)*35 = 7; min(3,15)*2 = 6  => 30.5
    assert_eq!(c.score(), 30.5);
    // The info finding's categories count as examined, not covered.
    assert_eq!(c.stride[2], State::Clean);
    assert_eq!(c.owasp[8], State::Clean);
}

#[test]
fn the_score_is_bounded_and_rounded() {
    assert_eq!(Coverage::of(&[], &[]).score(), 0.0);
    // One STRIDE category alone: 35/6 = 5.8333.. -> 5.83.
    let one = Coverage::of(&[(finding("low", "Spoofing", "A99"), false)], &[]);
    assert_eq!(one.score(), 5.83);
    // Everything covered and 20 confirmed: 35 + 35 + 15*2 = 100.
    let mut all = Vec::new();
    for (i, s) in Stride::ALL.iter().enumerate() {
        all.push((
            finding("high", stride_name(*s), &owasp_code(i as u8 + 1)),
            true,
        ));
    }
    for n in 7..=10u8 {
        all.push((finding("high", "Tampering", &owasp_code(n)), true));
    }
    for _ in 0..10 {
        all.push((finding("medium", "Tampering", "A03:2021"), true));
    }
    let c = Coverage::of(&all, &[]);
    assert_eq!(c.confirmed, 20);
    assert_eq!(c.score(), 100.0);
    assert!(c.untested_stride().is_empty() && c.untested_owasp().is_empty());
}

#[test]
fn examined_and_clean_is_recorded_but_does_not_score() {
    let clean = parse_clean_turn(
        r#"{"examined": {"stride": "Denial of Service", "owasp": "A05:2021", "vector": "upload size"}, "clean": true}"#,
    )
    .expect("clean turn");
    assert_eq!(clean.stride, Some(Stride::DenialOfService));
    let c = Coverage::of(
        &[(finding("high", "Tampering", "A03:2021"), false)],
        &[clean],
    );
    assert_eq!(c.stride[4], State::Clean);
    assert_eq!(c.owasp[4], State::Clean);
    // (1/6)*35 + (1/10)*35 + 0 = 9.333..
    assert_eq!(c.score(), 9.33);
    // A clean report never downgrades a category a finding covers.
    let again = Examined {
        stride: Some(Stride::Tampering),
        owasp: Some("A03".into()),
        vector: None,
    };
    let c = Coverage::of(
        &[(finding("high", "Tampering", "A03:2021"), false)],
        &[again],
    );
    assert_eq!((c.stride[1], c.owasp[2]), (State::Found, State::Found));
    assert!(c.untested_stride().contains(&Stride::Spoofing));
    assert!(!c.untested_stride().contains(&Stride::Tampering));
}

#[test]
fn only_a_clean_report_is_read_as_one() {
    assert!(parse_clean_turn(r#"{"examined": {"stride": "Tampering"}, "clean": false}"#).is_none());
    assert!(parse_clean_turn(r#"{"title": "x", "severity": "high"}"#).is_none());
    assert!(parse_clean_turn("nothing found").is_none());
    assert!(parse_clean_turn(r#"{"examined": {"stride": "Tampering"}, "clean": true}"#).is_some());
}

#[test]
fn a_clean_report_is_found_where_a_finding_would_be() {
    let obj = r#"{"examined": {"stride": "Spoofing", "owasp": "A07:2021"}, "clean": true}"#;
    // A command agent's last line, a Claude fenced block.
    let line = parse_clean_turn(&format!("looked at login\n{obj}\n")).expect("last line");
    assert_eq!(line.stride, Some(Stride::Spoofing));
    let fenced = format!("Nothing there.\n```json\n{obj}\n```\n");
    assert_eq!(parse_clean_turn(&fenced), Some(line.clone()));
    // A strict output schema's object: the finding's fields present and null or empty.
    let strict = r#"{"title": "", "severity": "info", "locations": [], "repro": null,
        "examined": {"stride": "Spoofing", "owasp": "A07:2021", "vector": null}, "clean": true}"#;
    assert_eq!(parse_clean_turn(strict), Some(line));
}

#[test]
fn coverage_md_names_every_category_and_the_sum() {
    let c = Coverage::of(&[(finding("high", "Tampering", "A03:2021"), true)], &[]);
    let md = c.to_markdown();
    assert!(
        md.contains(
            "Score 11.33 = (1/6 STRIDE) * 35 + (1/10 OWASP) * 35 + min(1 confirmed, 15) * 2"
        ),
        "{md}"
    );
    assert!(md.contains("| Tampering | finding |"), "{md}");
    assert!(md.contains("| A03:2021 Injection | finding |"), "{md}");
    assert!(
        md.contains("| A10:2021 Server-Side Request Forgery | untested |"),
        "{md}"
    );
}
