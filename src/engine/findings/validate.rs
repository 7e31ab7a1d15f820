//! The engine's checks of a finding (GUIDE "Debug mode"): every location exists in the retained
//! commit and quotes what those lines hold (whitespace aside), a repeat of an earlier finding is
//! merged, and a repro that fails on the retained tree confirms it. Pure: the driver reads the
//! files and runs the repro.

use super::store::{Assessed, Outcome, ReproRun, Store};
use super::{Finding, Location, Verdict};

/// Exit codes that mean the repro could not run at all (not found, not executable).
const CANNOT_RUN: [i32; 2] = [126, 127];

/// What to do with a finding before its repro runs.
#[derive(Debug, PartialEq)]
pub enum Pre {
    /// Settled without a repro.
    Done(Assessed),
    /// Valid and new: run its repro (if it has one), then [`settle`].
    RunRepro(Finding),
}

/// Removes all whitespace.
fn squeeze(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Why `loc` is not in the retained commit (`read` returns a file's text there), if it is not.
pub fn unfounded(loc: &Location, read: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let p = &loc.path;
    if p.is_empty() || p.starts_with('/') || p.split('/').any(|c| c == "..") {
        return Some(format!("`{p}` is not a path inside the repository"));
    }
    let Some(text) = read(p) else {
        return Some(format!("{p} is not in the retained commit"));
    };
    let (a, b) = (loc.start_line as usize, loc.end_line as usize);
    if a == 0 || b < a {
        return Some(format!(
            "{p}:{a}-{b} is not a line range (lines count from 1)"
        ));
    }
    let lines: Vec<&str> = text.lines().collect();
    if b > lines.len() {
        return Some(format!(
            "{p}:{a}-{b} does not exist ({p} has {} lines)",
            lines.len()
        ));
    }
    let quoted = squeeze(&loc.code);
    if quoted.is_empty() {
        return Some(format!("the location {p}:{a}-{b} quotes no code"));
    }
    if squeeze(&lines[a - 1..b].join("\n")) != quoted {
        return Some(format!(
            "the quoted code is not what {p}:{a}-{b} holds in the retained commit"
        ));
    }
    None
}

/// Two findings are the same when they share a kind (security: the CWE) and a location
/// (the same file, overlapping lines).
pub fn same(a: &Finding, b: &Finding) -> bool {
    let kind = |f: &Finding| f.cwe.as_deref().map(str::to_ascii_uppercase);
    kind(a) == kind(b)
        && a.locations.iter().any(|x| {
            b.locations.iter().any(|y| {
                x.path == y.path && x.start_line <= y.end_line && y.start_line <= x.end_line
            })
        })
}

/// The finding with each location's path made relative to the repository as agents often
/// cite it otherwise: a leading `./` dropped, an absolute path under one of `roots` (the
/// repository's directory, as given and resolved) made relative. Other paths stay as they are
/// (and are then refused as not inside the repository).
pub fn relative_paths(mut f: Finding, roots: &[String]) -> Finding {
    for loc in &mut f.locations {
        let under = roots.iter().find_map(|r| {
            let r = r.trim_end_matches('/');
            loc.path
                .strip_prefix(r)?
                .strip_prefix('/')
                .map(str::to_string)
        });
        let mut p = under.unwrap_or_else(|| loc.path.clone());
        while let Some(rest) = p.strip_prefix("./") {
            p = rest.trim_start_matches('/').to_string();
        }
        loc.path = p;
    }
    f
}

/// Checks a finding against the retained commit and the findings so far.
pub fn precheck(f: Finding, store: &Store, read: &dyn Fn(&str) -> Option<String>) -> Pre {
    let verdict = match f.verdict {
        Some(Verdict::Disproven) => Some(Outcome::Disproven),
        Some(Verdict::Inconclusive) => Some(Outcome::Inconclusive),
        Some(Verdict::NewLead) => Some(Outcome::NewLead),
        Some(Verdict::Confirmed) | None => None,
    };
    if let Some(outcome) = verdict {
        return Pre::Done(Assessed {
            finding: Some(f),
            ..Assessed::nothing(outcome, String::new())
        });
    }
    let why = if f.locations.is_empty() {
        Some("the finding cites no code".to_string())
    } else {
        f.locations.iter().find_map(|l| unfounded(l, read))
    };
    if let Some(why) = why {
        return Pre::Done(Assessed {
            finding: Some(f),
            ..Assessed::nothing(Outcome::Unfounded, why)
        });
    }
    if let Some(earlier) = store.findings.iter().find(|v| same(&v.finding, &f)) {
        return Pre::Done(Assessed {
            finding: Some(f),
            duplicate_of: Some(earlier.id),
            ..Assessed::nothing(Outcome::Duplicate, String::new())
        });
    }
    Pre::RunRepro(f)
}

/// True when the repro's run shows the problem: the output the finding names appears
/// (`repro_expect`), or, without one, it exits non-zero (a command that cannot run at all, or
/// that times out, shows nothing).
pub fn repro_shows(f: &Finding, exit: Option<i32>, timed_out: bool, output: &str) -> bool {
    if timed_out {
        return false;
    }
    match f.repro_expect.as_deref().filter(|e| !e.trim().is_empty()) {
        Some(expect) => output.contains(expect.trim()),
        None => exit.is_some_and(|c| c != 0 && !CANNOT_RUN.contains(&c)),
    }
}

/// The assessment of a valid, new finding once its repro ran (`None`: it has none).
pub fn settle(f: Finding, run: Option<ReproRun>) -> Assessed {
    let (outcome, note) = match &run {
        None => (
            Outcome::Unconfirmed,
            "no repro: the engine cannot confirm it".to_string(),
        ),
        Some(r) if r.failed => (Outcome::Confirmed, String::new()),
        Some(r) if r.timed_out => (Outcome::Unconfirmed, "the repro timed out".to_string()),
        Some(r) => (
            Outcome::Unconfirmed,
            match (r.exit, &f.repro_expect) {
                (Some(c), _) if CANNOT_RUN.contains(&c) => {
                    format!("the repro could not run (exit {c})")
                }
                (_, Some(e)) => format!("the repro did not print `{}`", e.trim()),
                (Some(c), None) => format!("the repro passed (exit {c})"),
                (None, None) => "the repro was killed".to_string(),
            },
        ),
    };
    Assessed {
        finding: Some(f),
        repro_run: run,
        ..Assessed::nothing(outcome, note)
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
