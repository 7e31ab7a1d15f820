//! Severity order and the security gate: `exec --mode security --fail-on SEVERITY` exits 1 when
//! a validated finding at or above that severity exists (GUIDE "Security mode", exit codes).

use super::coverage::Checked;
use crate::config::{Mode, Severity};
use crate::error::exit;

/// The rank of a severity: info 0, low 1, medium 2, high 3, critical 4.
pub fn rank(s: Severity) -> u8 {
    match s {
        Severity::Info => 0,
        Severity::Low => 1,
        Severity::Medium => 2,
        Severity::High => 3,
        Severity::Critical => 4,
    }
}

/// Returns true when `s` is at or above `threshold`.
pub fn at_or_above(s: Severity, threshold: Severity) -> bool {
    rank(s) >= rank(threshold)
}

/// Returns true when a validated finding (confirmed or not) is at or above `threshold`.
pub fn fail_on(threshold: Severity, findings: &[Checked]) -> bool {
    findings
        .iter()
        .any(|(f, _)| at_or_above(f.severity, threshold))
}

/// The exit code of a security `exec` that finished without a blocker or an interruption (those
/// keep their own codes): with `--fail-on`, 1 when [`fail_on`] holds, else 0; without it, 0
/// (the audit ran; the report and SARIF carry the findings).
pub fn exec_exit(threshold: Option<Severity>, findings: &[Checked]) -> u8 {
    match threshold {
        Some(t) if fail_on(t, findings) => exit::NO_IMPROVEMENT,
        _ => exit::OK,
    }
}

/// The exec exit code when the mode decides it (security: [`exec_exit`]); `None` for the other
/// modes, whose exec exit is 0 improved, 1 not. Only for a run that ended without a blocker or
/// an interruption.
pub fn mode_exec_exit(mode: Mode, threshold: Option<Severity>, findings: &[Checked]) -> Option<u8> {
    (mode == Mode::Security).then(|| exec_exit(threshold, findings))
}

/// The line that says why `exec --fail-on` exits as it does: the validated findings at or
/// above the threshold, most severe first (`None` without `--fail-on`).
pub fn fail_on_line(threshold: Option<Severity>, findings: &[Checked]) -> Option<String> {
    let t = threshold?;
    let mut hits: Vec<_> = findings
        .iter()
        .filter(|(f, _)| at_or_above(f.severity, t))
        .collect();
    if hits.is_empty() {
        return Some(format!(
            "--fail-on {}: no validated finding at or above {}",
            t.as_str(),
            t.as_str()
        ));
    }
    hits.sort_by_key(|(f, _)| std::cmp::Reverse(rank(f.severity)));
    let names: Vec<String> = hits
        .iter()
        .map(|(f, _)| format!("{} ({})", f.title, f.severity.as_str()))
        .collect();
    Some(format!(
        "--fail-on {}: {} validated finding(s) at or above {}: {}",
        t.as_str(),
        hits.len(),
        t.as_str(),
        names.join("; ")
    ))
}

/// Counts of validated findings by severity, most severe first (for status and the report).
pub fn counts(findings: &[Checked]) -> [(Severity, usize); 5] {
    let order = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];
    order.map(|s| (s, findings.iter().filter(|(f, _)| f.severity == s).count()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::findings::coverage::tests::finding;

    #[test]
    fn severities_are_ordered() {
        let words = ["info", "low", "medium", "high", "critical"];
        let parsed: Vec<Severity> = words.iter().map(|w| w.parse().unwrap()).collect();
        for (i, a) in parsed.iter().enumerate() {
            for (j, b) in parsed.iter().enumerate() {
                assert_eq!(at_or_above(*a, *b), i >= j, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn fail_on_counts_validated_findings_at_or_above_the_threshold() {
        let medium_unconfirmed = vec![(finding("medium", "Tampering", "A03"), false)];
        assert!(fail_on(Severity::Medium, &medium_unconfirmed));
        assert!(fail_on(Severity::Low, &medium_unconfirmed));
        assert!(!fail_on(Severity::High, &medium_unconfirmed));
        assert!(!fail_on(Severity::Critical, &[]));
        assert_eq!(exec_exit(Some(Severity::High), &medium_unconfirmed), 0);
        assert_eq!(exec_exit(Some(Severity::Medium), &medium_unconfirmed), 1);
        assert_eq!(exec_exit(None, &medium_unconfirmed), 0);
        let critical = vec![(finding("critical", "Spoofing", "A07"), true)];
        assert_eq!(exec_exit(Some(Severity::High), &critical), 1);
        assert_eq!(
            mode_exec_exit(Mode::Security, Some(Severity::High), &critical),
            Some(1)
        );
        assert_eq!(mode_exec_exit(Mode::Security, None, &critical), Some(0));
        assert_eq!(
            mode_exec_exit(Mode::Debug, Some(Severity::High), &critical),
            None
        );
        assert_eq!(mode_exec_exit(Mode::Loop, None, &[]), None);
    }

    #[test]
    fn the_fail_on_line_names_the_findings_that_fail_the_gate_most_severe_first() {
        let f = vec![
            (finding("high", "Tampering", "A03"), true),
            (finding("low", "Tampering", "A03"), false),
            (finding("critical", "Spoofing", "A07"), false),
        ];
        assert_eq!(fail_on_line(None, &f), None);
        let line = fail_on_line(Some(Severity::High), &f).unwrap();
        assert!(
            line.starts_with("--fail-on high: 2 validated finding(s) at or above high: ")
                && line.find("(critical)") < line.find("(high)")
                && !line.contains("(low)")
                && !line.contains('\n'),
            "{line}"
        );
        assert_eq!(
            fail_on_line(Some(Severity::Critical), &f[..2]).unwrap(),
            "--fail-on critical: no validated finding at or above critical"
        );
    }

    #[test]
    fn counts_go_most_severe_first() {
        let f = vec![
            (finding("low", "Tampering", "A03"), false),
            (finding("high", "Tampering", "A03"), true),
            (finding("high", "Spoofing", "A07"), false),
        ];
        let c = counts(&f);
        assert_eq!(c[0], (Severity::Critical, 0));
        assert_eq!(c[1], (Severity::High, 2));
        assert_eq!(c[3], (Severity::Low, 1));
    }
}
