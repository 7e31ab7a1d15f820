//! The security mode's metric: the bounded coverage score over the validated findings, and the
//! record of which STRIDE and OWASP Top 10 (2021) categories were examined and found clean.
//!
//! Score (GUIDE "Security mode"): `(STRIDE covered / 6) * 35 + (OWASP covered / 10) * 35 +
//! min(confirmed, 15) * 2`, rounded to two decimals, 0..=100. A category is **covered** when at
//! least one validated finding of severity low or above names it; a finding is **confirmed**
//! when, besides being validated, its repro failed on the retained tree. Info findings and the
//! agent's "examined, clean" reports are recorded but never score: only evidence the engine
//! checked moves the metric.

use serde::{Deserialize, Serialize};

use super::model::{Finding, Stride};
use crate::config::Severity;

/// A validated finding (its locations and quoted code checked by the engine; not a duplicate)
/// and whether it is confirmed (its repro failed on the retained tree). From the run's store:
/// `(v.finding.clone(), v.status == Outcome::Confirmed)` for each of its validated findings.
pub type Checked = (Finding, bool);

/// The ten OWASP Top 10 (2021) categories, `A01:2021` first.
pub const OWASP_2021: [&str; 10] = [
    "Broken Access Control",
    "Cryptographic Failures",
    "Injection",
    "Insecure Design",
    "Security Misconfiguration",
    "Vulnerable and Outdated Components",
    "Identification and Authentication Failures",
    "Software and Data Integrity Failures",
    "Security Logging and Monitoring Failures",
    "Server-Side Request Forgery",
];

/// How many confirmed findings count towards the score at most.
pub const CONFIRMED_CAP: usize = 15;

/// Returns the OWASP Top 10 (2021) category a finding names, 1..=10: `A03:2021`, `A3:2021`,
/// `A03`, and `A03:2021-Injection` all give 3. Another edition (`A03:2017`) or an unknown code
/// gives `None`: the 2017 list numbers different categories.
pub fn owasp_category(text: &str) -> Option<u8> {
    let t = text.trim();
    let rest = t.strip_prefix(['A', 'a'])?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let n: u8 = digits.parse().ok().filter(|n| (1..=10).contains(n))?;
    let after = &rest[digits.len()..];
    match after.trim_start().strip_prefix(':') {
        Some(year) if !year.trim_start().starts_with("2021") => None,
        Some(_) => Some(n),
        // `A03`, `A03 Injection`, `A03-Injection`: no edition given, read as 2021.
        None if after.is_empty() || after.starts_with([' ', '-', '_']) => Some(n),
        None => None,
    }
}

/// The code of an OWASP 2021 category, e.g. `A03:2021`.
pub fn owasp_code(n: u8) -> String {
    format!("A{n:02}:2021")
}

/// The display name of a STRIDE category (as the finding schema spells it).
pub fn stride_name(s: Stride) -> &'static str {
    match s {
        Stride::Spoofing => "Spoofing",
        Stride::Tampering => "Tampering",
        Stride::Repudiation => "Repudiation",
        Stride::InformationDisclosure => "Information Disclosure",
        Stride::DenialOfService => "Denial of Service",
        Stride::ElevationOfPrivilege => "Elevation of Privilege",
    }
}

/// What a turn examined. A turn without a finding reports it as its structured output:
/// `{"examined": {"stride": "Tampering", "owasp": "A03:2021", "vector": "..."}, "clean": true}`
/// (other keys, e.g. the null fields of a strict output schema, are ignored).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Examined {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stride: Option<Stride>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owasp: Option<String>,
    /// The attack vector looked at, in a few words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<String>,
}

#[derive(Deserialize)]
struct CleanTurn {
    examined: Examined,
    clean: bool,
}

/// Reads a finding-less turn's "examined, clean" object from the agent's last message, where a
/// finding would be: the whole message, its last fenced ```json block, or its last line that is
/// a JSON object. `None` for anything else (a finding, prose, `"clean": false`).
pub fn parse_clean_turn(text: &str) -> Option<Examined> {
    let text = text.trim();
    let fenced = text.rfind("```json").and_then(|i| {
        let body = &text[i + "```json".len()..];
        body.find("```").map(|end| body[..end].trim())
    });
    let lines = text.lines().rev().map(str::trim);
    std::iter::once(text)
        .chain(fenced)
        .chain(lines)
        .filter(|c| c.starts_with('{'))
        .find_map(|c| serde_json::from_str::<CleanTurn>(c).ok())
        .and_then(|t| t.clean.then_some(t.examined))
}

/// Where a category stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Nobody looked (as far as the engine knows).
    Untested,
    /// Examined and reported clean (the agent's word; it does not score).
    Clean,
    /// A validated finding of severity low or above names it.
    Found,
}

impl State {
    /// The word coverage.md uses.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Untested => "untested",
            State::Clean => "examined, clean",
            State::Found => "finding",
        }
    }
}

/// The coverage of the threat model by the validated findings.
#[derive(Clone, Debug, PartialEq)]
pub struct Coverage {
    /// In [`Stride::ALL`]'s order.
    pub stride: [State; 6],
    /// `owasp[0]` is A01:2021.
    pub owasp: [State; 10],
    /// Validated findings of severity low or above.
    pub validated: usize,
    /// Of those, the confirmed ones.
    pub confirmed: usize,
}

fn scores(severity: Severity) -> bool {
    severity != Severity::Info
}

fn mark(slot: &mut State, to: State) {
    if *slot != State::Found {
        *slot = to;
    }
}

impl Coverage {
    /// Coverage of `findings` (validated only, see [`Checked`]) and of the turns reported clean.
    pub fn of(findings: &[Checked], examined: &[Examined]) -> Coverage {
        let mut c = Coverage {
            stride: [State::Untested; 6],
            owasp: [State::Untested; 10],
            validated: 0,
            confirmed: 0,
        };
        let stride_slot = |s: Stride| Stride::ALL.iter().position(|x| *x == s).unwrap_or(0);
        for (f, confirmed) in findings.iter().filter(|(f, _)| scores(f.severity)) {
            c.validated += 1;
            c.confirmed += usize::from(*confirmed);
            if let Some(s) = f.stride {
                mark(&mut c.stride[stride_slot(s)], State::Found);
            }
            if let Some(n) = f.owasp.as_deref().and_then(owasp_category) {
                mark(&mut c.owasp[usize::from(n - 1)], State::Found);
            }
        }
        // A finding's own categories were examined too; an info finding says "looked, minor".
        let info = findings
            .iter()
            .filter(|(f, _)| !scores(f.severity))
            .map(|(f, _)| Examined {
                stride: f.stride,
                owasp: f.owasp.clone(),
                vector: None,
            });
        for e in examined.iter().cloned().chain(info) {
            if let Some(s) = e.stride {
                mark(&mut c.stride[stride_slot(s)], State::Clean);
            }
            if let Some(n) = e.owasp.as_deref().and_then(owasp_category) {
                mark(&mut c.owasp[usize::from(n - 1)], State::Clean);
            }
        }
        c
    }

    /// STRIDE categories covered by a finding.
    pub fn stride_covered(&self) -> usize {
        self.stride.iter().filter(|s| **s == State::Found).count()
    }

    /// OWASP categories covered by a finding.
    pub fn owasp_covered(&self) -> usize {
        self.owasp.iter().filter(|s| **s == State::Found).count()
    }

    /// The bounded coverage score, 0..=100, two decimals.
    pub fn score(&self) -> f64 {
        let raw = (self.stride_covered() as f64 / 6.0) * 35.0
            + (self.owasp_covered() as f64 / 10.0) * 35.0
            + (self.confirmed.min(CONFIRMED_CAP) as f64) * 2.0;
        (raw * 100.0).round() / 100.0
    }

    /// STRIDE categories nobody has examined yet, in the usual order (the prompt's next targets).
    pub fn untested_stride(&self) -> Vec<Stride> {
        Stride::ALL
            .iter()
            .zip(self.stride)
            .filter(|(_, st)| *st == State::Untested)
            .map(|(s, _)| *s)
            .collect()
    }

    /// OWASP codes nobody has examined yet.
    pub fn untested_owasp(&self) -> Vec<String> {
        (1..=10u8)
            .filter(|n| self.owasp[usize::from(n - 1)] == State::Untested)
            .map(owasp_code)
            .collect()
    }

    /// `coverage.md`: the score, its parts, and one row per category.
    pub fn to_markdown(&self) -> String {
        let mut s = format!(
            "# Coverage\n\nScore {} = ({}/6 STRIDE) * 35 + ({}/10 OWASP) * 35 + min({} confirmed, {CONFIRMED_CAP}) * 2\n\n\
             | STRIDE | state |\n|---|---|\n",
            crate::engine::number::canonical(self.score()),
            self.stride_covered(),
            self.owasp_covered(),
            self.confirmed,
        );
        for (cat, st) in Stride::ALL.iter().zip(self.stride) {
            s.push_str(&format!("| {} | {} |\n", stride_name(*cat), st.as_str()));
        }
        s.push_str("\n| OWASP Top 10 (2021) | state |\n|---|---|\n");
        for (i, st) in self.owasp.iter().enumerate() {
            s.push_str(&format!(
                "| {} {} | {} |\n",
                owasp_code(i as u8 + 1),
                OWASP_2021[i],
                st.as_str()
            ));
        }
        s
    }
}

#[cfg(test)]
#[path = "coverage_tests.rs"]
pub(crate) mod tests;
