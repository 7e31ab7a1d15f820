//! `codex-autoresearch config --check`: validates a run's settings as `run` would before its
//! first write (the run's own preflight), then measures the baseline read-only: verify (SEQ's
//! baseline runs) and the guard in a scratch checkout of HEAD that borrows the repository's
//! objects, removed on every path. Prints at most 10 lines, or one JSON object.

use std::ffi::OsString;
use std::time::Duration;

use serde_json::{Value, json};

use crate::config::{Gathered, KeepRule, RunConfig};
use crate::confirm::tree::ScratchTree;
use crate::driver::Checked;
use crate::engine::number::{canonical, significant, tidy};
use crate::engine::seq::{Next, NoiseMode, NoiseState, Role, Seq};
use crate::error::{Error, Result, exit};
use crate::output::say;
use crate::output::{Output, Style};
use crate::process::{self, End, Spec};
use crate::verify::Read;

/// The baseline verify's result.
struct Baseline {
    value: f64,
    runs: usize,
    noise: Option<NoiseState>,
    seconds_per_run: f64,
}

/// What the measurement found; a failure is the reason.
struct Measured {
    verify: std::result::Result<Baseline, String>,
    /// The line of a metric the engine measures itself (then `verify` is not used).
    engine: Option<String>,
    /// `None` without a guard (or when verify failed first).
    guard: Option<(bool, f64, String)>,
}

/// Why a single run gave no value.
enum Failed {
    Interrupted(i32),
    Reason(String),
}

/// ` (last output: a | b)`, empty without output.
fn last_output(out: &process::Outcome) -> String {
    let tail = out.last_lines(3).replace('\n', " | ");
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!(" (last output: {tail})")
    }
}

/// Runs verify and the guard in the scratch checkout.
struct Bench<'a> {
    cfg: &'a RunConfig,
    tree: ScratchTree,
}

impl Bench<'_> {
    /// The environment verify and guard see (as at the run's baseline, without its file paths).
    fn spec(&self, command: &str) -> Spec {
        let mut spec = Spec::shell(command, self.tree.root());
        spec.timeout = Some(self.cfg.verify_timeout);
        spec.env = [
            ("AUTORESEARCH_ITERATION", "0".to_string()),
            ("AUTORESEARCH_MODE", self.cfg.mode.to_string()),
            ("AUTORESEARCH_DIRECTIVE", "continue".to_string()),
            ("AUTORESEARCH_GOAL", self.cfg.goal.clone()),
            ("AUTORESEARCH_METRIC", self.cfg.metric.clone()),
            ("AUTORESEARCH_DIRECTION", self.cfg.direction.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
        spec
    }

    fn run(&self, spec: &Spec, who: &str) -> Result<process::Outcome> {
        process::run(spec).map_err(|e| Error::Blocked(format!("cannot start {who} (`sh -c`): {e}")))
    }

    /// Verify run number `k` (`--repeat` times, the median), with the run's metric reader.
    fn verify(&self, k: u32) -> Result<std::result::Result<(f64, Duration), Failed>> {
        let mut values = Vec::new();
        let mut took = Duration::ZERO;
        for r in 1..=self.cfg.repeat {
            if let Some(sig) = crate::signal::pending() {
                return Ok(Err(Failed::Interrupted(sig)));
            }
            let mut spec = self.spec(&self.cfg.verify);
            spec.env
                .push(("AUTORESEARCH_VERIFY_ROLE".into(), "baseline".into()));
            spec.env
                .push(("AUTORESEARCH_VERIFY_RUN".into(), k.to_string().into()));
            if self.cfg.repeat > 1 {
                spec.env
                    .push(("AUTORESEARCH_VERIFY_REPEAT".into(), r.to_string().into()));
            }
            let out = self.run(&spec, "verify")?;
            took += out.duration;
            let why = match crate::verify::read(self.cfg, &out) {
                Read::Metric(v) => {
                    values.push(v);
                    continue;
                }
                Read::Interrupted(sig) => return Ok(Err(Failed::Interrupted(sig))),
                Read::Failed { reason, .. } => reason,
            };
            return Ok(Err(Failed::Reason(format!("{why}{}", last_output(&out)))));
        }
        Ok(Ok((
            crate::engine::number::median(&values),
            took / self.cfg.repeat,
        )))
    }

    /// The baseline as the run measures it: once under strict; under SEQ twice, and up to
    /// `--baseline-runs` times when the first two differ.
    fn baseline(&self, seq: Option<Seq>) -> Result<std::result::Result<Baseline, Failed>> {
        let mut seq = seq;
        let mut times = Vec::new();
        let mut k = 1;
        let first = match self.verify(k)? {
            Ok((v, t)) => {
                times.push(t);
                v
            }
            Err(f) => return Ok(Err(f)),
        };
        if let Some(s) = seq.as_mut() {
            s.observe(Role::Baseline, first);
            while s.next() == Next::Run(Role::Baseline) {
                k += 1;
                match self.verify(k)? {
                    Ok((v, t)) => {
                        times.push(t);
                        s.observe(Role::Baseline, v);
                    }
                    Err(f) => return Ok(Err(f)),
                }
            }
        }
        let value = seq
            .as_ref()
            .and_then(Seq::reference_mean)
            .map_or(first, tidy);
        let total: Duration = times.iter().sum();
        Ok(Ok(Baseline {
            value,
            runs: times.len(),
            noise: seq.as_ref().map(Seq::noise),
            seconds_per_run: total.as_secs_f64() / times.len() as f64,
        }))
    }

    /// The guard once: whether it passed, how long it took, and why it failed.
    fn guard(&self, guard: &str) -> Result<std::result::Result<(bool, f64, String), Failed>> {
        if let Some(sig) = crate::signal::pending() {
            return Ok(Err(Failed::Interrupted(sig)));
        }
        let out = self.run(&self.spec(guard), "the guard")?;
        let secs = out.duration.as_secs_f64();
        Ok(match out.end {
            End::Interrupted(sig) => Err(Failed::Interrupted(sig)),
            End::Exited(0) => Ok((true, secs, String::new())),
            end => Ok((
                false,
                secs,
                format!("guard {}{}", end.describe(), last_output(&out)),
            )),
        })
    }
}

/// Measures verify and the guard on HEAD in a scratch checkout; an interruption is an error
/// (the scratch directory is removed as the bench is dropped).
fn measure(c: &Checked) -> Result<Measured> {
    let tree = ScratchTree::create(&c.repo)?;
    tree.checkout(c.head)?;
    let bench = Bench { cfg: &c.cfg, tree };
    let interrupted = |sig| Error::Interrupted(sig, "during config --check");
    let engine = match crate::check_engine::measure(c, bench.tree.root(), |cmd| bench.spec(cmd))? {
        Some(Err(sig)) => return Err(interrupted(sig)),
        Some(Ok(line)) => Some(line),
        None => None,
    };
    let seq = c.seq.clone().map(|p| Seq::new(c.cfg.direction, p));
    let verify = match engine {
        // Nothing for verify to measure: the engine does.
        Some(_) => Err(String::new()),
        None => match bench.baseline(seq)? {
            Ok(b) => Ok(b),
            Err(Failed::Interrupted(sig)) => return Err(interrupted(sig)),
            Err(Failed::Reason(why)) => {
                return Ok(Measured {
                    verify: Err(why),
                    engine,
                    guard: None,
                });
            }
        },
    };
    let guard = match c.cfg.guard.as_deref().map(|g| bench.guard(g)).transpose()? {
        Some(Err(Failed::Interrupted(sig))) => return Err(interrupted(sig)),
        Some(Err(Failed::Reason(why))) => Some((false, 0.0, why)),
        Some(Ok(g)) => Some(g),
        None => None,
    };
    Ok(Measured {
        verify,
        engine,
        guard,
    })
}

/// `config --check`: returns the exit code (0 valid, 2 invalid) after printing the result;
/// `launch` is the command that would start this run. Settings that cannot be read are
/// reported like any other reason.
pub fn command(g: Result<Gathered>, json_out: bool, launch: String) -> Result<u8> {
    crate::signal::install();
    let mut report = Report::new(launch);
    let g = match g {
        Ok(g) => g,
        Err(e) => {
            report.reasons.push(e.to_string());
            return Ok(report.print(json_out, e.exit_code()));
        }
    };
    let opts = crate::driver::Options {
        settings: g.settings,
        sources: g.sources,
        config_file: g.file,
        exec: false,
        output: Output {
            style: Style::Human,
        },
    };
    let checked = match crate::driver::check(opts) {
        Ok(c) => c,
        Err(e @ Error::Interrupted(..)) => return Err(e),
        Err(e) => {
            report.reasons.push(e.to_string());
            return Ok(report.print(json_out, e.exit_code()));
        }
    };
    let measured = measure(&checked)?;
    report.fill(&checked, measured);
    Ok(report.print(json_out, exit::BLOCKED))
}

/// What the check prints.
struct Report {
    reasons: Vec<String>,
    notes: Vec<String>,
    lines: Vec<String>,
    json: serde_json::Map<String, Value>,
    launch: String,
}

impl Report {
    fn new(launch: String) -> Report {
        let mut json = serde_json::Map::new();
        for k in [
            "baseline",
            "noise",
            "seconds_per_verify",
            "guard",
            "editable",
        ] {
            json.insert(k.into(), Value::Null);
        }
        json.insert("evaluator".into(), json!([]));
        Report {
            reasons: Vec::new(),
            notes: Vec::new(),
            lines: Vec::new(),
            json,
            launch,
        }
    }

    /// Fills in what the preflight established and the measurement found.
    fn fill(&mut self, c: &Checked, m: Measured) {
        let cfg = &c.cfg;
        let evaluators: Vec<String> = c.protection.evaluators.iter().map(|e| e.shown()).collect();
        self.json.insert("editable".into(), json!(c.editable));
        self.json.insert("evaluator".into(), json!(evaluators));
        let protected = if evaluators.is_empty() {
            String::new()
        } else {
            format!(", evaluator {} protected", evaluators.join(", "))
        };
        self.lines.push(format!(
            "ok: {} ({}) — {} file{} editable in {}{protected}",
            cfg.goal,
            cfg.mode,
            c.editable,
            if c.editable == 1 { "" } else { "s" },
            cfg.scope.join(",")
        ));
        // A clean checkout lacks untracked and ignored files: a verify failing there may only
        // need them, so it is "not measured", not refused (the run measures in the real tree).
        let lacking = (!c.untracked.is_empty()).then(|| {
            format!(
                "it may need files git does not track, which the check's clean checkout of HEAD lacks: {} (the run measures in your tree)",
                crate::engine::list_paths(&c.untracked)
            )
        });
        match m.verify {
            _ if m.engine.is_some() => self.lines.extend(m.engine),
            Ok(b) => self.verify_line(cfg, &b),
            Err(why) => match &lacking {
                Some(l) => self.notes.push(format!("verify not measured: {why}; {l}")),
                None => self.reasons.push(format!(
                    "the baseline verify gives no metric ({why}); fix --verify before starting"
                )),
            },
        }
        if let (Some((passed, secs, why)), Some(g)) = (m.guard, &cfg.guard) {
            self.json
                .insert("guard".into(), json!({"passed": passed, "seconds": secs}));
            if passed {
                self.lines.push(format!(
                    "guard: {} → passed ({} s)",
                    short(g),
                    significant(secs, 2)
                ));
            } else if let Some(l) = &lacking {
                self.notes.push(format!("guard not passed: {why}; {l}"));
            } else {
                self.reasons.push(format!(
                    "the guard fails on the untouched tree ({why}); a guard must pass before any change"
                ));
            }
        }
        self.lines
            .push(format!("{}; stop: {}", keep_rule(cfg), stop(cfg)));
        if let Some(why) = &c.read_only {
            self.notes.push(format!(
                "{why} (`launch` writes there; this check did not need to)"
            ));
        }
    }

    fn verify_line(&mut self, cfg: &RunConfig, b: &Baseline) {
        let how = match &b.noise {
            Some(n) if n.mode == NoiseMode::Exact => format!("exact: {} runs equal", b.runs),
            Some(n) => format!("noise σ={} from {} runs", significant(n.sigma, 2), b.runs),
            None => "1 run, keep rule strict".to_string(),
        };
        self.lines.push(format!(
            "verify: {} → {} ({how}), {} s per run",
            short(&cfg.verify),
            canonical(b.value),
            significant(b.seconds_per_run, 2)
        ));
        self.json.insert("baseline".into(), json!(b.value));
        self.json.insert("runs".into(), json!(b.runs));
        self.json.insert(
            "noise".into(),
            b.noise
                .map_or(Value::Null, |n| json!({"sigma": n.sigma, "mode": n.mode})),
        );
        self.json
            .insert("seconds_per_verify".into(), json!(b.seconds_per_run));
    }

    /// Prints the result; returns 0 when valid, else `code`.
    fn print(mut self, json_out: bool, code: u8) -> u8 {
        let valid = self.reasons.is_empty();
        if json_out {
            self.json.insert("valid".into(), json!(valid));
            self.json.insert("reasons".into(), json!(self.reasons));
            self.json.insert("notes".into(), json!(self.notes));
            self.json.insert("launch".into(), json!(self.launch));
            say(&Value::Object(self.json).to_string());
        } else if !valid {
            say(&format!("error: {}", self.reasons.join("; ")));
        } else {
            // At most 10 lines: ok, verify, guard, keep rule, notes, launch.
            self.lines
                .extend(self.notes.iter().map(|n| format!("note: {n}")));
            self.lines.truncate(9);
            self.lines.push(format!("launch: {}", self.launch));
            for l in &self.lines {
                say(l);
            }
        }
        if valid {
            exit::OK
        } else {
            code.max(exit::BLOCKED)
        }
    }
}

/// A command as a line shows it: at most 60 characters.
fn short(cmd: &str) -> String {
    let one = cmd.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= 60 {
        return one;
    }
    format!("{}…", one.chars().take(59).collect::<String>())
}

fn keep_rule(cfg: &RunConfig) -> String {
    match cfg.keep_rule {
        KeepRule::Strict => "keep rule: strict".into(),
        KeepRule::Seq => format!("keep rule: seq, effort {}", cfg.keep_effort),
    }
}

/// When the run stops by itself (the first that applies ends it).
fn stop(cfg: &RunConfig) -> String {
    let mut s = Vec::new();
    // The mode's own goal.
    match cfg.mode {
        crate::config::Mode::Fix => s.push(format!("{} reaches 0", cfg.metric)),
        crate::config::Mode::Ship => s.push(format!("{} reaches 100 (ready to ship)", cfg.metric)),
        crate::config::Mode::Debug | crate::config::Mode::Security => {
            s.push("diminishing returns".into())
        }
        crate::config::Mode::Loop => {}
    }
    if let Some(n) = cfg.iterations {
        s.push(format!("{n} iterations"));
    }
    if let Some((text, _)) = &cfg.stop_condition {
        s.push(text.clone());
    }
    if let Some(d) = cfg.max_duration {
        s.push(format!("after {}", crate::duration::format(d)));
    }
    if let Some((h, m)) = cfg.until {
        s.push(format!("at {h:02}:{m:02}"));
    }
    if let Some(t) = cfg.max_tokens {
        s.push(format!("{t} tokens"));
    }
    if let Some(p) = cfg.plateau {
        s.push(format!("{p} experiments without a keep"));
    }
    if s.is_empty() {
        "none (runs until stopped)".into()
    } else {
        s.join(", ")
    }
}

/// The `launch` command with the same RUN FLAGS as this `config --check` (from the process's
/// arguments, program name first): `config` becomes `launch`, `--check` and `--json` go.
pub fn launch_line(args: impl IntoIterator<Item = OsString>) -> String {
    let mut out: Vec<String> = vec!["codex-autoresearch".into()];
    let mut replaced = false;
    for a in args.into_iter().skip(1) {
        let a = a.to_string_lossy().into_owned();
        if !replaced && a == "config" {
            out.push("launch".into());
            replaced = true;
            continue;
        }
        let value_of_agent_arg = out.last().is_some_and(|p| p == "--agent-arg");
        if (a == "--check" || a == "--json") && !value_of_agent_arg {
            continue;
        }
        out.push(quote(&a));
    }
    out.join(" ")
}

/// Quotes `s` for a POSIX shell when it needs it.
fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_launch_line_keeps_the_run_flags_quoted_and_drops_check_and_json() {
        let args = [
            "/bin/x",
            "config",
            "--check",
            "--goal",
            "lower it's value",
            "--json",
            "--agent-arg",
            "--json",
            "--scope=src/**",
        ]
        .map(OsString::from);
        assert_eq!(
            launch_line(args),
            r"codex-autoresearch launch --goal 'lower it'\''s value' --agent-arg --json '--scope=src/**'"
        );
    }

    #[test]
    fn long_commands_are_shortened_to_one_line() {
        assert_eq!(short("sh  measure.sh\n--fast"), "sh measure.sh --fast");
        let long = "x".repeat(80);
        assert_eq!(short(&long).chars().count(), 60);
    }
}
