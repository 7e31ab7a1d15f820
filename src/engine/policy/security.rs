//! The security mode's policy: its template and its rules (the score only rises; the run never
//! stops because the metric is 0), the rotating adversarial lens each turn takes, the turn's
//! placeholders, and `--fix`'s choice of findings (critical and high, confirmed) with its rules.

use super::Policy;
use crate::config::Severity;
use crate::engine::Direction;
use crate::engine::findings::Finding;
use crate::engine::findings::coverage::{Checked, Coverage, stride_name};
use crate::engine::findings::gate::rank;

/// The security mode's policy.
pub struct Security;

impl Policy for Security {
    fn template(&self) -> &'static str {
        include_str!("../../../modes/security.md")
    }

    fn check(&self, direction: Direction) -> Result<(), String> {
        match direction {
            Direction::Higher => Ok(()),
            Direction::Lower => Err(
                "--mode security measures a coverage score that rises with each validated finding; use --direction higher (or leave it out)".into(),
            ),
        }
    }

    // `goal_reached` stays the default `None`: a score of 0 means nothing found yet, never done.

    fn reports_findings(&self) -> bool {
        true
    }

    fn exhausted(&self, pivots: u64) -> super::Stop {
        super::debug::diminishing_returns(pivots)
    }
}

/// The adversarial lens of a turn; the lenses take turns so the audit looks from every side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lens {
    ExternalAttacker,
    MaliciousInput,
    SupplyChain,
    Insider,
    Infrastructure,
}

impl Lens {
    /// Every lens, in rotation order.
    pub const ALL: [Lens; 5] = [
        Lens::ExternalAttacker,
        Lens::MaliciousInput,
        Lens::SupplyChain,
        Lens::Insider,
        Lens::Infrastructure,
    ];

    /// The lens's name in the prompt.
    pub fn name(self) -> &'static str {
        match self {
            Lens::ExternalAttacker => "external attacker",
            Lens::MaliciousInput => "malicious input",
            Lens::SupplyChain => "supply chain",
            Lens::Insider => "insider",
            Lens::Infrastructure => "infrastructure",
        }
    }

    /// What the lens asks the agent to look at.
    pub fn text(self) -> &'static str {
        match self {
            Lens::ExternalAttacker => {
                "An unauthenticated attacker on the network: entry points, authentication and session handling, access control on every route, rate limits."
            }
            Lens::MaliciousInput => {
                "Hostile data through every input: injection (SQL, shell, template, path), parsing and deserialisation, file names and sizes, encodings."
            }
            Lens::SupplyChain => {
                "Dependencies, build and release: pinned versions, known-vulnerable packages, install scripts, CI workflows, artefact integrity."
            }
            Lens::Insider => {
                "A user or operator with some access: privilege escalation, missing audit trails, secrets in code or logs, overly broad permissions."
            }
            Lens::Infrastructure => {
                "Configuration and deployment: debug modes, default credentials, TLS and headers, container and cloud settings, exposed services."
            }
        }
    }
}

/// The lens of iteration `n` (1-based): the lenses in [`Lens::ALL`]'s order, round and round.
pub fn lens_for(iteration: u64) -> Lens {
    let i = iteration.saturating_sub(1) % Lens::ALL.len() as u64;
    Lens::ALL[i as usize]
}

/// What a security turn's prompt needs beyond the shared placeholders.
pub struct Turn<'a> {
    /// The iteration about to run (1-based).
    pub iteration: u64,
    /// `--focus`.
    pub focus: Option<&'a str>,
    /// `--diff BASE`.
    pub diff_base: Option<&'a str>,
    /// The coverage of the validated findings so far.
    pub coverage: &'a Coverage,
}

fn untested(c: &Coverage) -> String {
    let stride: Vec<&str> = c.untested_stride().into_iter().map(stride_name).collect();
    let owasp = c.untested_owasp();
    let list = |v: &[String]| {
        if v.is_empty() {
            "(all examined)".to_string()
        } else {
            v.join(", ")
        }
    };
    format!(
        "STRIDE: {}; OWASP Top 10 (2021): {}",
        list(&stride.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        list(&owasp)
    )
}

/// The template with the security placeholders filled (`{{lens}}`, `{{lens_text}}`,
/// `{{focus}}`, `{{untested}}`); the shared ones stay for `prompt::render`. The user's focus
/// text has its `{{` broken (`{ {`) so render never reads it as a placeholder.
pub fn fill_turn(template: &str, t: &Turn<'_>) -> String {
    let lens = lens_for(t.iteration);
    let mut focus = match t.focus.map(str::trim).filter(|f| !f.is_empty()) {
        Some(f) => format!("Concentrate on: {}", f.replace("{{", "{ {")),
        None => "No focus given: choose the most exposed untested vector.".to_string(),
    };
    if let Some(base) = t.diff_base {
        focus.push_str(&format!(
            "\nPull-request review: only the files changed since `{}` (the scope above) are under review.",
            base.replace("{{", "{ {")
        ));
    }
    template
        .replace("{{lens_text}}", lens.text())
        .replace("{{lens}}", lens.name())
        .replace("{{untested}}", &untested(t.coverage))
        .replace("{{focus}}", &focus)
}

/// What `--fix` does with the findings, as indices into the slice given to [`fix_plan`] (the
/// store's order): the targets (critical and high, confirmed, with a repro the fix run drives
/// to passing), most severe first, and the critical or high findings it leaves, with why.
#[derive(Debug, PartialEq)]
pub struct FixPlan {
    pub targets: Vec<usize>,
    pub skipped: Vec<(usize, &'static str)>,
}

/// Chooses `--fix`'s targets among validated findings (see [`FixPlan`]). Medium and lower are
/// never fixed by the engine: the report lists them.
pub fn fix_plan(findings: &[Checked]) -> FixPlan {
    let mut targets = Vec::new();
    let mut skipped = Vec::new();
    for (i, (f, confirmed)) in findings.iter().enumerate() {
        if rank(f.severity) < rank(Severity::High) {
            continue;
        }
        let has_repro = f.repro.as_deref().is_some_and(|r| !r.trim().is_empty());
        match (has_repro, confirmed) {
            (true, true) => targets.push(i),
            (false, _) => skipped.push((i, "no repro: a fix could not be measured")),
            (true, false) => skipped.push((i, "its repro passes: nothing to drive to passing")),
        }
    }
    // Stable: findings of one severity keep the order they were found in.
    targets.sort_by_key(|i| std::cmp::Reverse(rank(findings[*i].0.severity)));
    FixPlan { targets, skipped }
}

/// The rules a security fix run adds to its prompt.
pub const FIX_RULES: &str = "Fix the vulnerability in the implementation, at its root cause. \
Never weaken, skip or delete a test or the repro, never loosen an assertion, and never add a \
suppression (nosec, noqa, nosemgrep, NOSONAR, eslint-disable, #[allow], @SuppressWarnings, \
codeql or lgtm comments, scanner ignore files).";

/// The goal of the fix run for one finding: what to fix, where, how it is measured, the rules.
pub fn fix_goal(f: &Finding) -> String {
    let at: Vec<String> = f
        .locations
        .iter()
        .map(|l| format!("{}:{}-{}", l.path, l.start_line, l.end_line))
        .collect();
    let cwe = f.cwe.as_deref().unwrap_or("no CWE");
    format!(
        "Fix the {} security finding \"{}\" ({cwe}) at {}. Done when `{}` passes. {FIX_RULES}",
        f.severity,
        f.title.trim(),
        at.join(", "),
        f.repro.as_deref().unwrap_or("").trim(),
    )
}

/// Suppression markers a fix must not add (matched case-insensitively in added lines).
const SUPPRESSIONS: &[&str] = &[
    "nosec",
    "noqa",
    "nosemgrep",
    "nosonar",
    "eslint-disable",
    "#[allow(",
    "#![allow(",
    "@suppresswarnings",
    "codeql[",
    "lgtm[",
    "nolint",
    "type: ignore",
    "@ts-ignore",
    "pragma: no cover",
];

/// The first suppression marker in a fix's added lines, if any (the engine discards such a fix).
pub fn suppression_in(added: &str) -> Option<&'static str> {
    let lower = added.to_ascii_lowercase();
    SUPPRESSIONS.iter().copied().find(|m| lower.contains(m))
}

#[cfg(test)]
#[path = "security_tests.rs"]
mod tests;
