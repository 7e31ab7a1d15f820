//! The findings of a run (`findings.json`): every validated finding with its status and
//! evidence, and every hypothesis tried with its outcome. Pure: the driver loads and saves it.

use serde::{Deserialize, Serialize};

use super::Finding;
use super::coverage::{self, Checked, Coverage};
use crate::config::Mode;

/// What became of one turn's finding (the row's tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Validated, and its repro fails on the retained tree.
    Confirmed,
    /// Validated, but without a repro that fails.
    Unconfirmed,
    /// The same location and kind as an earlier finding: merged into it.
    Duplicate,
    /// Cites code that is not in the retained commit.
    Unfounded,
    /// debug: the hypothesis was disproven.
    Disproven,
    /// debug: the experiment settled nothing.
    Inconclusive,
    /// debug: not the cause, but it points elsewhere (followed first next).
    NewLead,
    /// The turn gave no readable finding.
    NoFinding,
}

impl Outcome {
    /// The tag leading the row's description.
    pub fn tag(self) -> &'static str {
        match self {
            Outcome::Confirmed => "[CONFIRMED]",
            Outcome::Unconfirmed => "[UNCONFIRMED]",
            Outcome::Duplicate => "[DUPLICATE]",
            Outcome::Unfounded => "[UNFOUNDED]",
            Outcome::Disproven => "[DISPROVEN]",
            Outcome::Inconclusive => "[INCONCLUSIVE]",
            Outcome::NewLead => "[NEW LEAD]",
            Outcome::NoFinding => "[NO FINDING]",
        }
    }

    /// The word used in `findings.json` and the reports.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Confirmed => "confirmed",
            Outcome::Unconfirmed => "unconfirmed",
            Outcome::Duplicate => "duplicate",
            Outcome::Unfounded => "unfounded",
            Outcome::Disproven => "disproven",
            Outcome::Inconclusive => "inconclusive",
            Outcome::NewLead => "new_lead",
            Outcome::NoFinding => "no_finding",
        }
    }
}

/// How the engine's run of a finding's repro ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReproRun {
    pub command: String,
    /// The exit code (`None`: killed by a signal or the timeout).
    pub exit: Option<i32>,
    pub timed_out: bool,
    /// The repro showed the problem (see [`super::validate::repro_shows`]).
    pub failed: bool,
    /// The last lines of its output.
    pub output: String,
}

/// A validated finding: its locations are in the retained commit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Validated {
    /// 1, 2, ... in the order found.
    pub id: u32,
    /// The iteration that reported it.
    pub iteration: u64,
    /// `confirmed` or `unconfirmed`.
    pub status: Outcome,
    pub finding: Finding,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repro_run: Option<ReproRun>,
    /// Where the turn's trial commit (instrumentation, a test) is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_ref: Option<String>,
    /// Later iterations that reported it again (merged duplicates).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_in: Vec<u64>,
    /// `--fix`: the commit that made its repro pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_by: Option<String>,
}

/// One turn: what it tried and what became of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tried {
    pub iteration: u64,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hypothesis: Option<String>,
    pub outcome: Outcome,
    /// Why (one line): the engine's reason or the agent's evidence.
    #[serde(default)]
    pub note: String,
    /// The finding it merged into or became.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<u32>,
}

/// `findings.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Store {
    pub version: u32,
    pub mode: String,
    pub run_tag: String,
    /// debug: the symptom; security: the focus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default)]
    pub findings: Vec<Validated>,
    #[serde(default)]
    pub tried: Vec<Tried>,
    /// security: what the turns without a finding examined and reported clean.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examined: Vec<coverage::Examined>,
}

/// What the engine made of one turn's finding, before it is recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessed {
    pub outcome: Outcome,
    /// Why, when the engine decided against the finding (one line).
    pub note: String,
    pub finding: Option<Finding>,
    pub repro_run: Option<ReproRun>,
    /// The earlier finding a duplicate merges into.
    pub duplicate_of: Option<u32>,
}

impl Assessed {
    /// A turn without a finding to record.
    pub fn nothing(outcome: Outcome, note: String) -> Assessed {
        Assessed {
            outcome,
            note,
            finding: None,
            repro_run: None,
            duplicate_of: None,
        }
    }

    /// The row's description: the tag, the finding and why.
    pub fn describe(&self, said: &str) -> String {
        let what = match &self.finding {
            Some(f) => {
                let title = match (&f.hypothesis, self.outcome) {
                    (Some(h), Outcome::Disproven | Outcome::Inconclusive | Outcome::NewLead) => h,
                    _ => &f.title,
                };
                let at = f
                    .locations
                    .first()
                    .map(|l| format!(" ({}:{}-{})", l.path, l.start_line, l.end_line))
                    .unwrap_or_default();
                format!("{}: {}{at}", f.severity.as_str(), one_line(title))
            }
            // A broken JSON answer is not a description: the note says what is wrong with it.
            None if said.contains("\":") || said.trim_end().ends_with('}') => {
                "unreadable answer".to_string()
            }
            None => one_line(said),
        };
        let why = match (self.duplicate_of, self.note.is_empty()) {
            (Some(id), _) => format!(" — same as finding #{id}"),
            (None, true) => String::new(),
            (None, false) => format!(" — {}", one_line(&self.note)),
        };
        format!("{} {what}{why}", self.outcome.tag())
    }
}

fn one_line(s: &str) -> String {
    crate::engine::row::one_line(s)
}

impl Store {
    /// An empty store for a run.
    pub fn new(mode: Mode, run_tag: &str, context: Option<String>) -> Store {
        Store {
            version: 1,
            mode: mode.to_string(),
            run_tag: run_tag.to_string(),
            context,
            findings: Vec::new(),
            tried: Vec::new(),
            examined: Vec::new(),
        }
    }

    /// The store with iteration `n`'s assessment recorded; `trial_ref` keeps its trial.
    pub fn with(&self, n: u64, a: &Assessed, trial_ref: Option<String>) -> Store {
        let mut s = self.clone();
        let mut id = None;
        match (a.outcome, a.duplicate_of) {
            (Outcome::Confirmed | Outcome::Unconfirmed, _) => {
                let next = s.findings.iter().map(|f| f.id).max().unwrap_or(0) + 1;
                if let Some(f) = &a.finding {
                    s.findings.push(Validated {
                        id: next,
                        iteration: n,
                        status: a.outcome,
                        finding: f.clone(),
                        repro_run: a.repro_run.clone(),
                        trial_ref,
                        also_in: Vec::new(),
                        fixed_by: None,
                    });
                    id = Some(next);
                }
            }
            (Outcome::Duplicate, Some(of)) => {
                if let Some(v) = s.findings.iter_mut().find(|v| v.id == of) {
                    v.also_in.push(n);
                }
                id = Some(of);
            }
            _ => {}
        }
        let f = a.finding.as_ref();
        s.tried.push(Tried {
            iteration: n,
            title: f.map(|f| f.title.clone()).unwrap_or_default(),
            hypothesis: f.and_then(|f| f.hypothesis.clone()),
            outcome: a.outcome,
            note: if let (Outcome::Duplicate, Some(of), true) =
                (a.outcome, a.duplicate_of, a.note.is_empty())
            {
                format!("same as finding #{of}")
            } else if a.note.is_empty() {
                f.map(|f| one_line(&f.evidence)).unwrap_or_default()
            } else {
                a.note.clone()
            },
            finding: id,
        });
        s
    }

    /// The confirmed findings.
    pub fn confirmed(&self) -> impl Iterator<Item = &Validated> {
        self.findings
            .iter()
            .filter(|v| v.status == Outcome::Confirmed)
    }

    /// The run's metric: debug counts the confirmed findings; security scores coverage.
    pub fn metric(&self, mode: Mode) -> f64 {
        match mode {
            Mode::Security => self.coverage().score(),
            _ => self.confirmed().count() as f64,
        }
    }

    /// The validated findings, each with whether it is confirmed (the coverage score, the
    /// SARIF log, the security gate and `--fix` take them so).
    pub fn checked(&self) -> Vec<Checked> {
        self.findings
            .iter()
            .map(|v| (v.finding.clone(), v.status == Outcome::Confirmed))
            .collect()
    }

    /// security: the coverage of the threat model by the validated findings and the turns
    /// reported clean.
    pub fn coverage(&self) -> Coverage {
        Coverage::of(&self.checked(), &self.examined)
    }

    /// Validated findings per severity, most severe first (`status`).
    pub fn by_severity(&self) -> Vec<(crate::config::Severity, usize)> {
        crate::config::Severity::WORDS
            .iter()
            .filter_map(|w| w.parse::<crate::config::Severity>().ok())
            .map(|s| {
                (
                    s,
                    self.findings
                        .iter()
                        .filter(|v| v.finding.severity == s)
                        .count(),
                )
            })
            .filter(|(_, k)| *k > 0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqli(confirmed: bool) -> Assessed {
        let f: Finding = serde_json::from_str(
            r#"{"title":"sqli","severity":"high","stride":"Information Disclosure",
                "owasp":"A03:2021","cwe":"CWE-89"}"#,
        )
        .unwrap();
        let outcome = if confirmed {
            Outcome::Confirmed
        } else {
            Outcome::Unconfirmed
        };
        Assessed {
            finding: Some(f),
            ..Assessed::nothing(outcome, String::new())
        }
    }

    #[test]
    fn the_security_metric_is_the_coverage_score_and_debug_counts_confirmed() {
        let s = Store::new(Mode::Security, "t", None).with(1, &sqli(true), None);
        // (1/6) * 35 + (1/10) * 35 + 1 * 2 = 5.8333 + 3.5 + 2
        assert_eq!(s.metric(Mode::Security), 11.33);
        assert_eq!(s.metric(Mode::Debug), 1.0);
        // An unconfirmed finding covers its categories but adds no confirmed points.
        let u = Store::new(Mode::Security, "t", None).with(1, &sqli(false), None);
        assert_eq!(u.metric(Mode::Security), 9.33);
        // A clean report is recorded but never scores.
        let mut c = s.clone();
        c.examined.push(coverage::Examined {
            stride: Some(super::super::Stride::DenialOfService),
            owasp: Some("A05:2021".into()),
            vector: None,
        });
        assert_eq!(c.metric(Mode::Security), 11.33);
        assert_eq!(c.coverage().untested_stride().len(), 4);
        let back: Store = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back.examined, c.examined);
    }
}
