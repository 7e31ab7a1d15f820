//! The results of `confirm`: `confirm.json` (the figures) and `confirm.md` (a table for people),
//! written whole and atomically once the measurement is complete; the one-line summary printed
//! after a run and by `status`.

use std::time::Duration;

use git2::Oid;
use serde::Serialize;
use serde_json::{Value, json};

use crate::artifacts::Paths;
use crate::config::RunConfig;
use crate::engine::effect::{Effect, LEVEL, Sample, Verdict};
use crate::engine::number::canonical;
use crate::error::Result;
use crate::fsutil;

/// One side of a comparison: a commit and its verify values.
#[derive(Clone, Debug, Serialize)]
pub struct Side {
    pub commit: String,
    #[serde(flatten)]
    pub sample: Sample,
    pub values: Vec<f64>,
}

impl Side {
    pub fn new(commit: Oid, values: Vec<f64>) -> Side {
        Side {
            commit: commit.to_string(),
            sample: Sample::of(&values),
            values,
        }
    }
}

/// What the ablation found about one keep.
#[derive(Clone, Debug, Serialize)]
pub struct KeepReport {
    pub iteration: u64,
    pub commit: String,
    pub description: String,
    /// `carries`, `dead_weight` or `harmful`; absent when the keep was skipped.
    pub verdict: Option<Verdict>,
    /// The final tree against the final tree without this keep (positive = the keep helps).
    pub contribution: Option<Effect>,
    pub without: Option<Side>,
    #[serde(rename = "final")]
    pub last: Option<Side>,
    /// Why the keep was skipped, or what went wrong.
    pub note: Option<String>,
}

impl KeepReport {
    pub fn new(iteration: u64, commit: &str, description: &str) -> KeepReport {
        KeepReport {
            iteration,
            commit: commit.to_string(),
            description: description.to_string(),
            verdict: None,
            contribution: None,
            without: None,
            last: None,
            note: None,
        }
    }
}

/// The whole result of one `confirm`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub version: u32,
    pub complete: bool,
    pub run_tag: String,
    pub metric: String,
    pub direction: String,
    pub level: f64,
    /// Verify runs per side.
    pub runs: u32,
    pub verify: String,
    pub baseline: Side,
    #[serde(rename = "final")]
    pub last: Side,
    /// The final commit against the baseline (positive = better).
    pub effect: Effect,
    /// The smallest contribution a keep needs to count as carrying (metric units).
    pub min_effect: f64,
    pub keeps: Vec<KeepReport>,
    pub duration_ms: u64,
    pub finished_at: String,
}

/// An effect as `+2.1 [+1.8, +2.4]`.
fn interval(e: &Effect) -> String {
    let s = |v: f64| {
        let c = canonical(round(v));
        if v > 0.0 && c != "0" {
            format!("+{c}")
        } else {
            c
        }
    };
    format!("{} [{}, {}]", s(e.estimate), s(e.low), s(e.high))
}

/// Rounds to 4 significant digits for display.
fn round(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let digits = 3 - v.abs().log10().floor() as i32;
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(7)]
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: &RunConfig,
        run_tag: &str,
        baseline: Side,
        last: Side,
        effect: Effect,
        keeps: Vec<KeepReport>,
        min_effect: f64,
        took: Duration,
    ) -> Report {
        Report {
            version: 1,
            complete: true,
            run_tag: run_tag.to_string(),
            metric: cfg.metric.clone(),
            direction: cfg.direction.to_string(),
            level: LEVEL,
            runs: cfg.confirm_runs,
            verify: cfg.verify.clone(),
            baseline,
            last,
            effect,
            min_effect,
            keeps,
            duration_ms: took.as_millis() as u64,
            finished_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                .to_string(),
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    fn count(&self, v: Verdict) -> usize {
        self.keeps.iter().filter(|k| k.verdict == Some(v)).count()
    }

    /// The one-line summary.
    pub fn line(&self, paths: &Paths) -> String {
        let skipped = self.keeps.iter().filter(|k| k.verdict.is_none()).count();
        format!(
            "confirmed: {} {} {} (95% interval, positive = better; baseline {} -> final {}, {} runs each); keeps: {} carry, {} dead weight, {} harmful, {} skipped; see {}",
            self.metric,
            interval(&self.effect),
            if self.effect.low > 0.0 {
                "better"
            } else if self.effect.high < 0.0 {
                "worse"
            } else {
                "not distinguishable from no change"
            },
            short(&self.baseline.commit),
            short(&self.last.commit),
            self.runs,
            self.count(Verdict::Carries),
            self.count(Verdict::DeadWeight),
            self.count(Verdict::Harmful),
            skipped,
            paths.confirm_md.display()
        )
    }

    /// One line per keep (for the `confirm` command's output).
    pub fn keep_lines(&self) -> Vec<String> {
        self.keeps
            .iter()
            .map(|k| {
                let what = match (&k.contribution, k.verdict) {
                    (Some(c), Some(v)) => {
                        format!("{} {}", v.as_str().replace('_', " "), interval(c))
                    }
                    _ => format!("skipped: {}", k.note.as_deref().unwrap_or("-")),
                };
                format!(
                    "  keep #{} {}: {} ({})",
                    k.iteration, k.commit, what, k.description
                )
            })
            .collect()
    }

    /// The markdown report.
    pub fn markdown(&self) -> String {
        let mut md = format!(
            "# Confirm: {}\n\nMetric `{}` ({} is better), verify `{}`, {} interleaved runs per side, 95% Welch intervals; positive = better.\n\n",
            self.run_tag,
            self.metric,
            self.direction,
            self.verify.replace('`', "'"),
            self.runs
        );
        md.push_str(
            "| comparison | mean (control) | mean (treated) | effect [95% interval] | verdict |\n",
        );
        md.push_str("| --- | --- | --- | --- | --- |\n");
        md.push_str(&format!(
            "| final {} vs baseline {} | {} ± {} | {} ± {} | {} | {} |\n",
            short(&self.last.commit),
            short(&self.baseline.commit),
            canonical(round(self.baseline.sample.mean)),
            canonical(round(self.baseline.sample.sd)),
            canonical(round(self.last.sample.mean)),
            canonical(round(self.last.sample.sd)),
            interval(&self.effect),
            if self.effect.covers_zero() {
                "no clear effect"
            } else {
                "total effect"
            }
        ));
        for k in &self.keeps {
            let desc = k.description.replace('|', "\\|");
            match (&k.contribution, &k.without, &k.last, k.verdict) {
                (Some(c), Some(w), Some(f), Some(v)) => md.push_str(&format!(
                    "| keep #{} {} ({desc}): final vs final without it | {} ± {} | {} ± {} | {} | {} |\n",
                    k.iteration,
                    k.commit,
                    canonical(round(w.sample.mean)),
                    canonical(round(w.sample.sd)),
                    canonical(round(f.sample.mean)),
                    canonical(round(f.sample.sd)),
                    interval(c),
                    v.as_str().replace('_', " ")
                )),
                _ => md.push_str(&format!(
                    "| keep #{} {} ({desc}) | - | - | - | skipped: {} |\n",
                    k.iteration,
                    k.commit,
                    k.note.as_deref().unwrap_or("-").replace('|', "\\|")
                )),
            }
        }
        md.push_str(&format!(
            "\nA keep is dead weight when its contribution's interval contains 0{}; it carries the gain when the interval is above 0. Took {:.1} s; finished {}.\n",
            if self.min_effect > 0.0 {
                format!(" or its estimate is below --min-effect ({})", canonical(round(self.min_effect)))
            } else {
                String::new()
            },
            self.duration_ms as f64 / 1000.0,
            self.finished_at
        ));
        md
    }

    /// Writes `confirm.json` and `confirm.md` (each atomically).
    pub fn write(&self, paths: &Paths) -> Result<()> {
        fsutil::ensure_dir(&paths.private)?;
        let mut text = serde_json::to_string_pretty(&self.to_json()).unwrap_or_default();
        text.push('\n');
        fsutil::write_atomic(&paths.confirm_json, text.as_bytes())?;
        fsutil::write_atomic(&paths.confirm_md, self.markdown().as_bytes())
    }
}

/// The `status` line for the confirmation stored at `paths`, if there is one; `retained` is the
/// run's retained commit (short), to say when the run has moved on since.
pub fn status_line(paths: &Paths, retained: &str) -> Option<(String, Value)> {
    let text = std::fs::read_to_string(&paths.confirm_json).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    let e: Effect = Effect {
        estimate: v["effect"]["estimate"].as_f64()?,
        low: v["effect"]["low"].as_f64()?,
        high: v["effect"]["high"].as_f64()?,
        df: None,
    };
    let last = v["final"]["commit"].as_str()?;
    let stale = !retained.is_empty() && !last.starts_with(retained);
    let dead = v["keeps"]
        .as_array()
        .map(|ks| ks.iter().filter(|k| k["verdict"] == "dead_weight").count())
        .unwrap_or(0);
    let line = format!(
        "confirmed: {} {} (95% interval, positive = better, {} runs each; final {}); {} dead-weight keep(s){}",
        v["metric"].as_str().unwrap_or("metric"),
        interval(&e),
        v["runs"],
        short(last),
        dead,
        if stale {
            "; the run has moved on since: run `codex-autoresearch confirm` again"
        } else {
            ""
        }
    );
    let summary = json!({
        "effect": e.estimate, "low": e.low, "high": e.high, "runs": v["runs"],
        "final": last, "dead_weight": dead, "stale": stale,
    });
    Some((line, summary))
}
