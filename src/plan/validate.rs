//! `plan`'s mechanical validation of one candidate: the run's own preflight (`config --check`'s:
//! settings, protection leaving files editable), every scope glob matching a tracked file, then
//! verify K times and the guard once in a scratch checkout of HEAD (`confirm::tree`) holding
//! stand-ins of the engine's files: a metric each time, the spread (noise, deterministic or
//! not), the cost per verify, no open of the engine's files, no change to tracked files; fix
//! mode's count must be able to reach 0. Writes nothing in the user's repository.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::candidate::Candidate;
use crate::artifacts::{Paths, stand_in};
use crate::config::{AgentKind, Mode, RunConfig};
use crate::confirm::tree::ScratchTree;
use crate::driver::Checked;
use crate::engine::number::{median, same};
use crate::engine::seq::{Effort, choose_effort};
use crate::error::{Error, Result};
use crate::output::{Output, Style};
use crate::process::{End, Outcome, Spec};
use crate::scope::PathSet;
use crate::verify::Read;

/// How verify's values spread over the runs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Noise {
    /// The sample standard deviation, in metric units.
    pub sigma: f64,
    /// Every run gave the same value.
    pub deterministic: bool,
}

/// What validating a candidate found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Validation {
    pub reasons: Vec<String>,
    pub notes: Vec<String>,
    pub values: Vec<f64>,
    /// The median of the values.
    pub baseline: Option<f64>,
    pub noise: Option<Noise>,
    pub seconds_per_verify: Option<f64>,
    /// Whether the guard passed, and its seconds.
    pub guard_passed: Option<bool>,
    pub guard_seconds: Option<f64>,
    /// The evaluator files verify and guard execute (protected during the run).
    pub evaluator: Vec<String>,
    /// Tracked files the agent may change.
    pub editable: Option<usize>,
    /// The effort `--keep-effort auto` would choose, and why.
    pub keep_effort: Option<String>,
    pub keep_effort_reason: Option<String>,
    pub iterations_per_hour: Option<f64>,
}

/// What validation needs beyond the candidate.
pub struct Setup<'a> {
    pub root: &'a Path,
    pub config_file: PathBuf,
    /// Verify runs (K).
    pub runs: u32,
    pub verify_timeout: Option<Duration>,
    /// What an agent turn is taken to cost (the keep effort and iterations per hour).
    pub agent_turn: Duration,
}

/// Validates `c`; an interruption is the only error.
pub fn validate(c: &Candidate, s: &Setup<'_>) -> Result<Validation> {
    let mut v = Validation::default();
    let mut settings = match c.settings() {
        Ok(st) => st,
        Err(why) => {
            v.reasons.push(why);
            return Ok(v);
        }
    };
    settings.repo = Some(s.root.to_path_buf());
    // The run's agent is not what is validated: a command agent needs no binary.
    settings.agent = Some(AgentKind::Command);
    settings.agent_cmd = Some("true".into());
    settings.fresh = Some(true);
    settings.verify_timeout = s.verify_timeout.map(crate::config::Dur);
    let opts = crate::driver::Options {
        settings,
        sources: Default::default(),
        config_file: Some(s.config_file.clone()),
        exec: false,
        output: Output {
            style: Style::Human,
        },
    };
    let checked = match crate::driver::check(opts) {
        Ok(ch) => ch,
        Err(e @ Error::Interrupted(..)) => return Err(e),
        Err(e) => {
            v.reasons.push(e.to_string());
            return Ok(v);
        }
    };
    v.editable = Some(checked.editable);
    v.evaluator = checked
        .protection
        .evaluators
        .iter()
        .map(|e| e.shown())
        .collect();
    v.reasons.extend(unmatched_globs(&checked));
    measure(&checked, s, &mut v)?;
    if checked.cfg.mode == Mode::Fix && v.reasons.is_empty() {
        fix_reaches_zero(&v.values, &mut v.reasons);
    }
    estimate(s.agent_turn, &mut v);
    Ok(v)
}

/// Each scope glob must match a tracked file.
fn unmatched_globs(c: &Checked) -> Vec<String> {
    let Ok(index) = c.repo.repo.index() else {
        return Vec::new();
    };
    let tracked: Vec<String> = index
        .iter()
        .map(|e| crate::repopath::decode(&e.path))
        .collect();
    c.cfg
        .scope
        .iter()
        .filter(|g| {
            PathSet::new(std::slice::from_ref(*g))
                .is_ok_and(|set| !tracked.iter().any(|f| set.matches(f)))
        })
        .map(|g| format!("scope glob `{g}` matches no tracked file"))
        .collect()
}

/// Fix mode drives a count to 0: the values must be whole, not negative, and not 0 already.
fn fix_reaches_zero(values: &[f64], reasons: &mut Vec<String>) {
    if let Some(x) = values.iter().find(|x| **x < 0.0 || x.fract() != 0.0) {
        reasons.push(format!(
            "fix mode drives a count to 0, but verify gave {x}: use mode loop, or a verify that counts"
        ));
    } else if values.iter().all(|x| *x == 0.0) {
        reasons.push("the count is already 0: nothing to fix".into());
    }
}

/// Keep effort and iterations per hour from the measured costs.
fn estimate(agent_turn: Duration, v: &mut Validation) {
    let (Some(verify), Some(noise)) = (v.seconds_per_verify, v.noise) else {
        return;
    };
    let (effort, why) = choose_effort(Duration::from_secs_f64(verify), agent_turn);
    // Verify runs per iteration: one for an exact metric, SEQ's typical count for a noisy one.
    let runs = match (noise.deterministic, effort) {
        (true, _) => 1.0,
        (false, Effort::Default) => 3.0,
        (false, Effort::Thorough) => 8.7,
    };
    let per = agent_turn.as_secs_f64() + verify * runs + v.guard_seconds.unwrap_or(0.0);
    v.iterations_per_hour = Some((3600.0 / per.max(0.001) * 10.0).round() / 10.0);
    v.keep_effort = Some(effort.as_str().into());
    v.keep_effort_reason = Some(why);
}

/// The scratch checkout with stand-ins of the engine's files.
struct Bench {
    tree: ScratchTree,
    paths: Paths,
    head: git2::Oid,
}

impl Bench {
    fn reset(&self) -> Result<()> {
        self.tree.checkout(self.head)?;
        // Stand-ins go only where their directory exists: make every one (best effort).
        let p = &self.paths;
        for f in [&p.results, &p.state, &p.lessons, &p.feedback] {
            if let Some(dir) = f.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
        }
        let _ = std::fs::create_dir_all(p.private.join("baseline"));
        stand_in::place(p);
        Ok(())
    }

    fn spec(&self, cfg: &RunConfig, command: &str, k: u32) -> Spec {
        let mut spec = Spec::shell(command, self.tree.root());
        spec.timeout = Some(cfg.verify_timeout);
        spec.env = [
            ("AUTORESEARCH_ITERATION", "0".to_string()),
            ("AUTORESEARCH_MODE", cfg.mode.to_string()),
            ("AUTORESEARCH_DIRECTIVE", "continue".to_string()),
            ("AUTORESEARCH_GOAL", cfg.goal.clone()),
            ("AUTORESEARCH_METRIC", cfg.metric.clone()),
            ("AUTORESEARCH_DIRECTION", cfg.direction.to_string()),
            ("AUTORESEARCH_VERIFY_ROLE", "baseline".to_string()),
            ("AUTORESEARCH_VERIFY_RUN", k.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
        spec
    }

    /// Runs `spec`; the reasons it broke a rule (opened the engine's files, changed tracked
    /// files; the tree is put back).
    fn run(&self, spec: &Spec, who: &str, reasons: &mut Vec<String>) -> Result<Outcome> {
        let mut found = Vec::new();
        let out = self.run_once(spec, who, &mut found);
        // Each of the K verify runs breaks the same rule: one reason, not K.
        for r in found {
            if !reasons.contains(&r) {
                reasons.push(r);
            }
        }
        out
    }

    fn run_once(&self, spec: &Spec, who: &str, reasons: &mut Vec<String>) -> Result<Outcome> {
        let root = self.tree.root();
        let (out, opened) =
            crate::driver::run_watching_opens(&self.paths, root, &root.join(".git"), spec);
        let out = out.map_err(|e| Error::Blocked(format!("cannot start {who} (`sh -c`): {e}")))?;
        if let End::Interrupted(sig) = out.end {
            return Err(Error::Interrupted(sig, "during plan"));
        }
        if !opened.is_empty() {
            reasons.push(format!(
                "{who} opened the engine's own files ({}): its result would change as the run writes them; exclude them (`--exclude-dir=.autoresearch --exclude-dir=.git`, or `git grep`)",
                crate::engine::list_paths(&opened)
            ));
        }
        let changed = self.changed_tracked();
        if !changed.is_empty() {
            reasons.push(format!(
                "{who} changed tracked files ({}): verify and guard must not change the tree they measure; run fixers in check mode",
                crate::engine::list_paths(&changed)
            ));
            self.reset()?;
        }
        Ok(out)
    }

    fn changed_tracked(&self) -> Vec<String> {
        let Ok(repo) = git2::Repository::open(self.tree.root()) else {
            return Vec::new();
        };
        let mut opts = git2::StatusOptions::new();
        opts.include_untracked(false).include_ignored(false);
        repo.statuses(Some(&mut opts))
            .map(|st| {
                st.iter()
                    .map(|e| crate::repopath::decode(e.path_bytes()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Verify K times, then the guard once, in a scratch checkout of HEAD.
fn measure(c: &Checked, s: &Setup<'_>, v: &mut Validation) -> Result<()> {
    let tree = ScratchTree::create(&c.repo)?;
    let paths = Paths::new(tree.root(), None)?;
    let bench = Bench {
        tree,
        paths,
        head: c.head,
    };
    bench.reset()?;
    let cfg = &c.cfg;
    let mut took = Vec::new();
    for k in 1..=s.runs.max(1) {
        if let Some(sig) = crate::signal::pending() {
            return Err(Error::Interrupted(sig, "during plan"));
        }
        let out = bench.run(&bench.spec(cfg, &cfg.verify, k), "verify", &mut v.reasons)?;
        took.push(out.duration.as_secs_f64());
        match crate::verify::read(cfg, &out) {
            Read::Metric(x) => v.values.push(x),
            Read::Interrupted(sig) => return Err(Error::Interrupted(sig, "during plan")),
            Read::Failed { reason, .. } => {
                let tail = out.last_lines(3).replace('\n', " | ");
                let tail = if tail.trim().is_empty() {
                    String::new()
                } else {
                    format!(" (last output: {tail})")
                };
                v.reasons.push(format!(
                    "verify gives no metric on the untouched tree: {reason}{tail}"
                ));
                if !c.untracked.is_empty() {
                    v.notes.push(format!(
                        "the scratch checkout lacks files git does not track: {}",
                        crate::engine::list_paths(&c.untracked)
                    ));
                }
                return Ok(());
            }
        }
    }
    let mid = median(&v.values);
    v.baseline = Some(mid);
    v.seconds_per_verify = Some(median(&took));
    v.noise = Some(noise(&v.values));
    if let Some(g) = cfg.guard.as_deref() {
        let out = bench.run(&bench.spec(cfg, g, 0), "the guard", &mut v.reasons)?;
        let passed = out.end == End::Exited(0);
        v.guard_passed = Some(passed);
        v.guard_seconds = Some(out.duration.as_secs_f64());
        if !passed {
            let tail = out.last_lines(3).replace('\n', " | ");
            v.reasons.push(format!(
                "the guard fails on the untouched tree ({}{}); a guard must pass before any change",
                out.end.describe(),
                if tail.is_empty() {
                    String::new()
                } else {
                    format!("; last output: {tail}")
                }
            ));
        }
    }
    Ok(())
}

/// The spread of `values`.
pub fn noise(values: &[f64]) -> Noise {
    let n = values.len();
    let deterministic = values.windows(2).all(|w| same(w[0], w[1]));
    if n < 2 || deterministic {
        return Noise {
            sigma: 0.0,
            deterministic: true,
        };
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    Noise {
        sigma: var.sqrt(),
        deterministic: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_says_deterministic_or_sigma() {
        assert_eq!(
            noise(&[3.0, 3.0, 3.0]),
            Noise {
                sigma: 0.0,
                deterministic: true
            }
        );
        let n = noise(&[1.0, 2.0, 3.0]);
        assert!(!n.deterministic);
        assert!((n.sigma - 1.0).abs() < 1e-12);
    }

    #[test]
    fn fix_mode_needs_a_whole_count_above_zero() {
        let mut r = Vec::new();
        fix_reaches_zero(&[2.0, 2.0], &mut r);
        assert!(r.is_empty());
        fix_reaches_zero(&[0.5], &mut r);
        assert!(r[0].contains("verify gave 0.5"), "{r:?}");
        let mut r = Vec::new();
        fix_reaches_zero(&[0.0, 0.0], &mut r);
        assert!(r[0].contains("already 0"));
        let mut r = Vec::new();
        fix_reaches_zero(&[-1.0], &mut r);
        assert_eq!(r.len(), 1);
    }
}
