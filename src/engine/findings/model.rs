//! The finding an agent reports at the end of a debug or security turn (GUIDE: the finding
//! schema); the same names whether it comes from Codex's output schema, a Claude JSON block or a
//! command agent's last line.

use serde::{Deserialize, Serialize};

use crate::config::Severity;

/// A place in the code a finding cites: lines `start_line..=end_line` (1-based) of `path`
/// (relative to the repository root), and the code the agent quotes from them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    pub code: String,
}

/// A debug turn's verdict on its hypothesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Confirmed,
    Disproven,
    Inconclusive,
    NewLead,
}

/// The six STRIDE threat categories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Stride {
    Spoofing,
    Tampering,
    Repudiation,
    #[serde(rename = "Information Disclosure")]
    InformationDisclosure,
    #[serde(rename = "Denial of Service")]
    DenialOfService,
    #[serde(rename = "Elevation of Privilege")]
    ElevationOfPrivilege,
}

impl Stride {
    /// Every category, in the usual order.
    pub const ALL: [Stride; 6] = [
        Stride::Spoofing,
        Stride::Tampering,
        Stride::Repudiation,
        Stride::InformationDisclosure,
        Stride::DenialOfService,
        Stride::ElevationOfPrivilege,
    ];
}

/// One finding as the agent reports it. Fields beyond the shared ones belong to one mode and
/// are absent in the other.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub title: String,
    pub severity: Severity,
    #[serde(default)]
    pub locations: Vec<Location>,
    #[serde(default)]
    pub evidence: String,
    /// A shell command that fails while the problem is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repro: Option<String>,
    /// Text the repro prints while the problem is there (without it, a failing repro is one
    /// that exits non-zero).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repro_expect: Option<String>,
    // debug
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hypothesis: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_cause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggested_fix: Option<String>,
    // security
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stride: Option<Stride>,
    /// OWASP Top 10 (2021) category, e.g. `A03:2021`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owasp: Option<String>,
    /// e.g. `CWE-89`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub likelihood: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigation: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_names() {
        let f: Finding = serde_json::from_str(
            r#"{"title":"SQL built from input","severity":"high",
                "locations":[{"path":"app.py","start_line":3,"end_line":4,"code":"q = 'x' + a"}],
                "evidence":"e","repro":"pytest -q t.py","stride":"Information Disclosure",
                "owasp":"A03:2021","cwe":"CWE-89","verdict":"new_lead"}"#,
        )
        .unwrap();
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.stride, Some(Stride::InformationDisclosure));
        assert_eq!(f.verdict, Some(Verdict::NewLead));
        assert_eq!(f.locations[0].end_line, 4);
    }
}
