//! What `status` adds for a live run: the phase and how long it has lasted, the iteration,
//! the run's elapsed time, and the end estimate of a bounded run (`--iterations`: the
//! iterations left times the mean of the recent ones). Reads only.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::artifacts::Paths;
use crate::artifacts::inflight::Inflight;
use crate::artifacts::lock::Holder;
use crate::artifacts::state::{IterationRecord, StateFile};

/// Returns the tag of the run whose artifacts are at `paths`: the state's, else the results
/// log's, else (a launched run measuring its baseline) the run log's last header.
pub fn run_tag(paths: &Paths) -> Option<String> {
    let from_run_log = || {
        let text = std::fs::read_to_string(super::child::log_path(&paths.private)).ok()?;
        let header = text.lines().rev().find(|l| l.starts_with("==== "))?;
        let rest = header.split(" launched run ").nth(1)?;
        rest.split(' ').next().map(str::to_string)
    };
    // During the baseline the results log and the state are stand-ins (told by their size,
    // without opening them: an open then would be taken for verify's).
    if !paths.results.exists() || crate::artifacts::stand_in::sized_like(&paths.results) {
        return from_run_log();
    }
    StateFile::load(&paths.state)
        .ok()
        .map(|s| s.run_tag)
        .filter(|t| !t.is_empty())
        .or_else(|| {
            let (log, _) = crate::artifacts::results::ResultsLog::read(&paths.results).ok()?;
            log.meta("run_tag").map(str::to_string)
        })
}

/// A live run, as `status` shows it.
#[derive(Debug, PartialEq)]
pub struct Live {
    /// `agent`, `verify`, `guard`, `rework` (from the in-flight marker), `baseline` before the
    /// first row, `engine` between iterations (recording, escalating, re-measuring, confirming).
    pub phase: String,
    pub phase_started_at: Option<String>,
    pub phase_for: Option<Duration>,
    /// The iteration in flight, else the last one recorded.
    pub iteration: u64,
    pub started_at: String,
    pub elapsed: Option<Duration>,
    /// Mean duration of the recent iterations (bookkeeping rows left out).
    pub mean_iteration: Option<Duration>,
    pub iterations_left: Option<u64>,
    /// From now until the run's first bound ends it: the iteration cap at the mean pace, or a
    /// time budget.
    pub end_in: Option<Duration>,
    /// What that bound is (`4 iteration(s) left`, `--max-duration 8h`, `--until 07:00`).
    pub bound: Option<String>,
}

/// What [`Live::read`] needs from the run's files.
pub struct Inputs<'a> {
    pub holder: &'a Holder,
    pub inflight: Option<&'a Inflight>,
    /// The state's recent iteration records.
    pub recent: &'a [IterationRecord],
    /// The run's `--iterations`.
    pub cap: Option<u64>,
    /// Rows after the baseline so far; none before the baseline row exists.
    pub recorded: Option<u64>,
    /// Experiments so far (what the cap counts).
    pub experiments: u64,
    /// A time budget (`--max-duration`, `--until`): how long it leaves from now, and its name.
    pub deadline: Option<(Duration, String)>,
}

fn since(stamp: &str, now: SystemTime) -> Option<Duration> {
    let t = humantime::parse_rfc3339_weak(stamp).ok()?;
    Some(now.duration_since(t).unwrap_or_default())
}

/// Returns how long a bounded run has left: `left` iterations at `mean` each, less what the
/// iteration in flight has already spent (`into_current`; it counts as one of `left`).
pub fn end_estimate(mean: Duration, left: u64, into_current: Option<Duration>) -> Duration {
    let total = mean.saturating_mul(u32::try_from(left).unwrap_or(u32::MAX));
    // An iteration running longer than the mean is taken to end now, not to give time back.
    let spent = into_current.unwrap_or_default().min(mean);
    total.saturating_sub(if left > 0 { spent } else { Duration::ZERO })
}

impl Live {
    /// Builds the live view at `now`.
    pub fn read(i: &Inputs<'_>, now: SystemTime) -> Live {
        let (phase, phase_started_at) = match (i.inflight, i.recorded) {
            (Some(m), _) => (
                m.phase.clone(),
                Some(m.phase_started_at.clone().unwrap_or(m.started_at.clone())),
            ),
            (None, None) => ("baseline".to_string(), Some(i.holder.started_at.clone())),
            (None, Some(_)) => ("engine".to_string(), None),
        };
        let recorded = i.recorded.unwrap_or(0);
        let iteration = i.inflight.map_or(recorded, |m| m.iteration);
        let durations: Vec<u64> = i
            .recent
            .iter()
            .map(|r| r.total_ms)
            .filter(|&ms| ms > 0)
            .collect();
        let mean_iteration = (!durations.is_empty())
            .then(|| Duration::from_millis(durations.iter().sum::<u64>() / durations.len() as u64));
        let iterations_left = i.cap.map(|c| c.saturating_sub(i.experiments));
        let into_current = i.inflight.and_then(|m| since(&m.started_at, now));
        let by_cap = match (mean_iteration, iterations_left) {
            (Some(mean), Some(left)) => Some((
                end_estimate(mean, left, into_current),
                format!("{left} iteration(s) left"),
            )),
            _ => None,
        };
        // The first bound to end the run (a time budget is checked between iterations, so the
        // run ends with the iteration in flight at that time: close enough for an estimate).
        let (end_in, bound) = match (by_cap, i.deadline.clone()) {
            (Some(c), Some(d)) => Some(if d.0 < c.0 { d } else { c }),
            (c, d) => c.or(d),
        }
        .map_or((None, None), |(d, b)| (Some(d), Some(b)));
        Live {
            phase_for: phase_started_at.as_deref().and_then(|s| since(s, now)),
            phase,
            phase_started_at,
            iteration,
            started_at: i.holder.started_at.clone(),
            elapsed: since(&i.holder.started_at, now),
            mean_iteration,
            iterations_left,
            end_in,
            bound,
        }
    }

    /// The `live` object of `status --json`.
    pub fn to_json(&self, now: SystemTime) -> Value {
        let secs = |d: Option<Duration>| d.map(|d| d.as_secs());
        json!({
            "phase": self.phase,
            "phase_started_at": self.phase_started_at,
            "phase_seconds": secs(self.phase_for),
            "iteration": self.iteration,
            "started_at": self.started_at,
            "elapsed_seconds": secs(self.elapsed),
            "mean_iteration_seconds": self.mean_iteration.map(|d| d.as_secs_f64()),
            "iterations_left": self.iterations_left,
            "end_estimate_seconds": secs(self.end_in),
            "end_estimate": self.end_in.map(|d| humantime::format_rfc3339_seconds(now + d).to_string()),
            "end_bound": self.bound,
        })
    }

    /// The human lines of `status`.
    pub fn lines(&self, now: SystemTime) -> Vec<String> {
        let short =
            |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs())).to_string();
        let mut out = vec![format!(
            "phase: {}{} (iteration {})",
            self.phase,
            self.phase_for
                .map(|d| format!(" for {}", short(d)))
                .unwrap_or_default(),
            self.iteration
        )];
        let mut pace = format!(
            "elapsed: {} (since {})",
            self.elapsed.map(short).unwrap_or_else(|| "?".into()),
            self.started_at
        );
        if let Some(m) = self.mean_iteration {
            pace.push_str(&format!("; mean iteration {}", short(m)));
        }
        out.push(pace);
        match (self.iterations_left, self.end_in, &self.bound) {
            (_, Some(d), Some(bound)) => out.push(format!(
                "end estimate: {} (in {}), {bound}",
                humantime::format_rfc3339_seconds(now + d),
                short(d)
            )),
            (Some(left), None, _) => out.push(format!(
                "end estimate: after the first iteration; {left} iteration(s) left"
            )),
            _ => {}
        }
        out
    }
}

/// The time a run's `--max-duration` and `--until` leave it at `now` (the sooner), with the
/// flag that sets it: `--max-duration` counts the run's active time (the state's `elapsed_ms`
/// plus the time since the state was written), `--until` the next HH:MM after this session
/// started.
pub fn deadline(
    state: Option<&StateFile>,
    holder: &Holder,
    now: SystemTime,
) -> Option<(Duration, String)> {
    let state = state?;
    let text = |k: &str| state.config.get(k).and_then(Value::as_str);
    let by_duration = text("max_duration")
        .and_then(|t| crate::duration::parse(t).ok())
        .map(|max| {
            let since_save = since(&state.updated_at, now).unwrap_or_default();
            let spent = Duration::from_millis(state.engine.elapsed_ms) + since_save;
            (
                max.saturating_sub(spent),
                format!("--max-duration {}", crate::duration::format(max)),
            )
        });
    let by_clock = text("until").and_then(|t| {
        let (h, m) = crate::config::parse_clock(t).ok()?;
        let session = humantime::parse_rfc3339_weak(&holder.started_at).ok()?;
        let tz = jiff::tz::TimeZone::try_system().unwrap_or(jiff::tz::TimeZone::UTC);
        let start = jiff::Timestamp::try_from(session).ok()?;
        let at = crate::localtime::next_occurrence(start, &tz, h, m).ok()?;
        let at = SystemTime::try_from(at).ok()?;
        Some((
            at.duration_since(now).unwrap_or_default(),
            format!("--until {t}"),
        ))
    });
    match (by_duration, by_clock) {
        (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// The run's `--iterations`, as its state stores it.
pub fn cap(state: Option<&StateFile>) -> Option<u64> {
    state
        .and_then(|s| s.config.get("iterations"))
        .and_then(Value::as_u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(started_at: &str) -> Holder {
        Holder {
            pid: 1,
            start_time: 1,
            started_at: started_at.into(),
            token: None,
        }
    }

    #[test]
    fn the_estimate_counts_the_iterations_left_less_the_current_ones_progress() {
        let m = Duration::from_secs(60);
        assert_eq!(end_estimate(m, 3, None), Duration::from_secs(180));
        assert_eq!(
            end_estimate(m, 3, Some(Duration::from_secs(20))),
            Duration::from_secs(160)
        );
        // Longer than the mean: it ends now, as far as the estimate knows.
        assert_eq!(
            end_estimate(m, 1, Some(Duration::from_secs(300))),
            Duration::ZERO
        );
        assert_eq!(end_estimate(m, 0, None), Duration::ZERO);
    }

    #[test]
    fn a_live_iteration_shows_its_phase_time_and_the_estimate() {
        let now = humantime::parse_rfc3339("2026-01-01T01:00:00Z").unwrap();
        let marker = Inflight {
            version: 1,
            iteration: 3,
            run_tag: "t".into(),
            branch: "refs/heads/main".into(),
            start_commit: "0".repeat(40),
            phase: "verify".into(),
            trial_commit: None,
            description: None,
            started_at: "2026-01-01T00:59:00Z".into(),
            phase_started_at: Some("2026-01-01T00:59:50Z".into()),
            pid: 1,
        };
        let recent: Vec<IterationRecord> = [100_000, 0, 140_000]
            .into_iter()
            .map(|total_ms| IterationRecord {
                total_ms,
                ..IterationRecord::default()
            })
            .collect();
        let h = holder("2026-01-01T00:30:00Z");
        let live = Live::read(
            &Inputs {
                holder: &h,
                inflight: Some(&marker),
                recent: &recent,
                cap: Some(10),
                recorded: Some(2),
                experiments: 2,
                deadline: None,
            },
            now,
        );
        assert_eq!(live.phase, "verify");
        assert_eq!(live.phase_for, Some(Duration::from_secs(10)));
        assert_eq!(live.iteration, 3);
        assert_eq!(live.elapsed, Some(Duration::from_secs(1800)));
        assert_eq!(live.mean_iteration, Some(Duration::from_secs(120)));
        assert_eq!(live.iterations_left, Some(8));
        // 8 x 120 s, less the 60 s the third iteration has run.
        assert_eq!(live.end_in, Some(Duration::from_secs(900)));
        let v = live.to_json(now);
        assert_eq!(v["end_estimate"], "2026-01-01T01:15:00Z");
        assert_eq!(v["end_bound"], "8 iteration(s) left");
        // A time budget that ends the run sooner is the estimate.
        let budget = Live::read(
            &Inputs {
                holder: &h,
                inflight: Some(&marker),
                recent: &recent,
                cap: Some(10),
                recorded: Some(2),
                experiments: 2,
                deadline: Some((Duration::from_secs(300), "--max-duration 1h".into())),
            },
            now,
        );
        assert_eq!(budget.end_in, Some(Duration::from_secs(300)));
        assert!(
            budget.lines(now)[2].ends_with("(in 5m), --max-duration 1h"),
            "{:?}",
            budget.lines(now)
        );
        let mut state = StateFile {
            version: 1,
            run_tag: "t".into(),
            mode: "loop".into(),
            config: serde_json::from_value(json!({"max_duration": "1h"})).unwrap(),
            state: crate::engine::reducer::Replay::start(
                &crate::engine::row::Row {
                    iteration: 0,
                    commit: "abc1234".into(),
                    metric: 1.0,
                    delta: 0.0,
                    guard: crate::engine::row::Guard::NotRun,
                    status: crate::engine::row::Status::Baseline,
                    description: String::new(),
                },
                crate::engine::Direction::Lower,
            )
            .unwrap()
            .tally,
            engine: Default::default(),
            noise: None,
            holdout: None,
            updated_at: "2026-01-01T00:50:00Z".into(),
        };
        state.engine.elapsed_ms = 20 * 60 * 1000;
        // 20 minutes recorded, 10 more since the state was written: 30 left.
        assert_eq!(
            deadline(Some(&state), &h, now),
            Some((Duration::from_secs(1800), "--max-duration 1h".into()))
        );
        assert!(live.lines(now)[0].starts_with("phase: verify for 10s (iteration 3)"));
        // Before the first row: the baseline, timed from the run's start; no estimate.
        let live = Live::read(
            &Inputs {
                holder: &h,
                inflight: None,
                recent: &[],
                cap: Some(10),
                recorded: None,
                experiments: 0,
                deadline: None,
            },
            now,
        );
        assert_eq!(live.phase, "baseline");
        assert_eq!(live.phase_for, Some(Duration::from_secs(1800)));
        assert_eq!(live.end_in, None);
    }
}
