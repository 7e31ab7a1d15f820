//! The findings machinery of the debug and security modes, on the driver's side: the schema a
//! turn's answer follows, the prompt's account of the run so far, the engine's checks of each
//! finding (its locations read from the retained commit, its repro run on the retained tree)
//! and the metric they give (see `engine_metric`), and `findings.json` with its reports, written
//! with each row.

use std::path::{Path, PathBuf};

use git2::Oid;

use super::Run;
use crate::artifacts::findings as files;
use crate::config::{AgentKind, Mode};
use crate::engine::findings::coverage::{Checked, Examined, parse_clean_turn, stride_name};
use crate::engine::findings::validate::{self, Pre};
use crate::engine::findings::{Assessed, Outcome, ReproRun, Store, parse, prompt, schema};
use crate::engine::policy::security;
use crate::engine::row::Status;
use crate::engine::step::{Draft, Measured};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::process::End;

/// Lines of a repro's output kept as evidence.
const REPRO_TAIL: usize = 20;

/// The findings state of a run (empty in the other modes).
#[derive(Default)]
pub(super) struct FindingsRun {
    /// `findings.json`, once read.
    store: Option<Store>,
    /// The mode's report directory.
    dir: Option<PathBuf>,
    /// The last agent turn's final message.
    pub(super) output: String,
    /// The current iteration's assessment, recorded with its row.
    pending: Option<Assessed>,
    /// security: what the current iteration examined and reported clean, recorded with its row.
    pending_examined: Option<Examined>,
}

/// True when an earlier debug or security run with `tag` left its findings (a new run then takes
/// another tag, so it neither reads nor overwrites them).
pub(super) fn report_taken(paths: &crate::artifacts::Paths, mode: Mode, tag: &str) -> bool {
    matches!(mode, Mode::Debug | Mode::Security)
        && paths
            .mode_dir(mode.as_str(), tag)
            .join(files::JSON)
            .exists()
}

/// The row's note of a turn that examined a vector and found it clean.
fn examined_note(e: &Examined) -> String {
    let what: Vec<String> = [
        e.stride.map(|s| stride_name(s).to_string()),
        e.owasp.clone(),
        e.vector.clone(),
    ]
    .into_iter()
    .flatten()
    .filter(|t| !t.trim().is_empty())
    .collect();
    format!("examined, clean: {}", what.join(" / "))
}

/// Reads `path` as it is in `commit`; `None` when it is not a file there.
fn read_at(repo: &git2::Repository, commit: Oid, path: &str) -> Option<String> {
    let tree = repo.find_commit(commit).ok()?.tree().ok()?;
    let entry = tree.get_path(Path::new(path)).ok()?;
    let blob = entry.to_object(repo).ok()?.peel_to_blob().ok()?;
    Some(String::from_utf8_lossy(blob.content()).into_owned())
}

impl Run {
    /// True in a mode whose turns report findings.
    pub(super) fn hunting(&self) -> bool {
        self.policy.reports_findings()
    }

    /// The mode's report directory (`findings.json` and the reports).
    pub(super) fn findings_dir(&mut self) -> PathBuf {
        let (mode, tag) = (self.cfg.mode.as_str(), self.run_tag.as_str());
        self.findings
            .dir
            .get_or_insert_with(|| self.paths.mode_dir(mode, tag))
            .clone()
    }

    /// The run's findings (read from `findings.json` the first time).
    fn store(&mut self) -> Result<Store> {
        if let Some(s) = &self.findings.store {
            return Ok(s.clone());
        }
        let dir = self.findings_dir();
        let store = match files::load(&dir)? {
            Some(s) => s,
            None => Store::new(self.cfg.mode, &self.run_tag, self.context()),
        };
        self.findings.store = Some(store.clone());
        Ok(store)
    }

    /// What the hunt is about: the symptom (debug) or the focus (security).
    fn context(&self) -> Option<String> {
        let s = &self.cfg.settings;
        s.symptom
            .clone()
            .map(|t| format!("Symptom: {t}"))
            .or_else(|| s.focus.clone().map(|t| format!("Focus: {t}")))
    }

    /// The finding schema Codex is given (written once under the private directory).
    pub(super) fn finding_schema(&self) -> Result<Option<PathBuf>> {
        if !self.hunting() || self.cfg.agent != AgentKind::Codex {
            return Ok(None);
        }
        let path = self.paths.private.join("finding-schema.json");
        let text = schema::finding(self.cfg.mode).to_string();
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            fsutil::write_quick(&path, text.as_bytes())?;
        }
        Ok(Some(path))
    }

    /// Fills the findings placeholders a rendered prompt left (`{{symptom}}`, `{{repro}}`,
    /// `{{findings}}`, `{{answer}}`).
    pub(super) fn findings_prompt(&mut self, text: String) -> Result<String> {
        if !self.hunting() {
            return Ok(text);
        }
        let store = self.store()?;
        let s = &self.cfg.settings;
        let symptom = s.symptom.clone().unwrap_or_default();
        let repro = match &s.repro {
            Some(r) => format!("The user reproduces it with: `{r}`\n"),
            None => String::new(),
        };
        let answer = match self.cfg.agent {
            AgentKind::Codex => {
                "Your final message is the finding itself: the engine gives Codex its JSON schema."
            }
            _ => {
                "End your final message with the finding as one JSON object on its own last line \
                 (or in a ```json block)."
            }
        };
        Ok(text
            .replace("{{symptom}}", symptom.trim())
            .replace("{{repro}}", &repro)
            .replace("{{findings}}", &prompt::history(&store))
            .replace("{{answer}}", answer))
    }

    /// Measures the findings metric: of the findings so far on the untouched tree; with the
    /// last turn's finding checked and counted in an iteration.
    pub(super) fn measure_findings(&mut self, dir: &Path, stem: &str) -> Result<Measured> {
        let store = self.store()?;
        if self.untouched {
            return Ok(Measured::Metric(store.metric(self.cfg.mode)));
        }
        let text = std::mem::take(&mut self.findings.output);
        let clean = match self.cfg.mode {
            Mode::Security => parse_clean_turn(&text),
            _ => None,
        };
        if let Some(e) = clean {
            let note = examined_note(&e);
            self.findings.pending = Some(Assessed::nothing(Outcome::NoFinding, note));
            self.findings.pending_examined = Some(e);
            return Ok(Measured::Metric(store.metric(self.cfg.mode)));
        }
        let assessed = match parse::extract(&text) {
            Err(why) => Assessed::nothing(Outcome::NoFinding, why),
            Ok(f) => {
                let f = validate::relative_paths(f, &self.repo_roots());
                let (repo, head) = (&self.repo.repo, self.head);
                match validate::precheck(f, &store, &|p| read_at(repo, head, p)) {
                    Pre::Done(a) => a,
                    Pre::RunRepro(f) => {
                        let run = match f.repro.clone().filter(|r| !r.trim().is_empty()) {
                            None => None,
                            Some(cmd) => match self.run_repro(dir, stem, &cmd, &f)? {
                                Ok(run) => Some(run),
                                Err(sig) => return Ok(Measured::Interrupted(sig)),
                            },
                        };
                        validate::settle(f, run)
                    }
                }
            }
        };
        let n = self.replay.tally.iteration + 1;
        let metric = store.with(n, &assessed, None).metric(self.cfg.mode);
        self.findings.pending = Some(assessed);
        Ok(Measured::Metric(metric))
    }

    /// Runs a finding's repro on the retained tree (the trial's changes set aside) with the
    /// verify timeout; `Err(signal)` when interrupted.
    fn run_repro(
        &mut self,
        dir: &Path,
        stem: &str,
        cmd: &str,
        f: &crate::engine::findings::Finding,
    ) -> Result<std::result::Result<ReproRun, i32>> {
        let trial = self.repo.head()?;
        if trial != self.head {
            self.restore_tree_to(self.head)?;
        }
        let spec = self.check_spec(cmd, dir.join(format!("{stem}-repro.log")));
        let out = self.run_check(&spec, "the repro");
        self.restore_measurement_writes("the repro")?;
        if trial != self.head {
            self.restore_tree_to(trial)?;
        }
        let out =
            out.map_err(|e| Error::Blocked(format!("cannot start the repro (`sh -c`): {e}")))?;
        let (exit, timed_out) = match out.end {
            End::Exited(c) => (Some(c), false),
            End::Interrupted(sig) => return Ok(Err(sig)),
            End::TimedOut | End::IdleTimedOut => (None, true),
            End::Signaled(_) => (None, false),
        };
        let output = out.last_lines(REPRO_TAIL);
        Ok(Ok(ReproRun {
            command: cmd.to_string(),
            exit,
            timed_out,
            failed: validate::repro_shows(f, exit, timed_out, &output),
            output,
        }))
    }

    /// Before iteration `n`'s row is written: its finding is recorded (with the ref keeping its
    /// trial) and the row says what became of it.
    pub(super) fn record_finding(&mut self, n: u64, d: &mut Draft<Oid>) -> Result<()> {
        let Some(a) = self.findings.pending.take() else {
            return Ok(());
        };
        if !matches!(d.status, Status::Keep | Status::Discard) {
            self.findings.pending_examined = None;
        }
        if !matches!(d.status, Status::Keep | Status::Discard) {
            return Ok(());
        }
        let trial_ref = d.commit.and_then(|c| self.trial_ref(n, c));
        let mut store = self.store()?.with(n, &a, trial_ref.clone());
        let examined = self.findings.pending_examined.take();
        let clean = examined.is_some();
        store.examined.extend(examined);
        files::save(&self.findings_dir(), &store)?;
        self.findings.store = Some(store);
        let kept = trial_ref
            .map(|r| format!("; evidence kept at {r}"))
            .unwrap_or_default();
        // A clean turn's answer is the examined object: the note says it in words.
        let what = match clean {
            true => format!("{} {}", a.outcome.tag(), a.note),
            false => a.describe(&d.description),
        };
        d.description = format!("{what}{kept}");
        Ok(())
    }

    /// The validated findings with whether each is confirmed (the exit gate, `status`).
    pub(super) fn checked_findings(&self) -> Vec<Checked> {
        match &self.findings.store {
            Some(s) => s.checked(),
            None => files::load(&self.paths.mode_dir(self.cfg.mode.as_str(), &self.run_tag))
                .ok()
                .flatten()
                .map(|s| s.checked())
                .unwrap_or_default(),
        }
    }

    /// The mode's template for the next turn: security fills its lens, focus and the
    /// categories not examined yet (from `findings.json`); the other modes' as they are.
    pub(super) fn turn_template(&self) -> std::borrow::Cow<'static, str> {
        let template = self.policy.template();
        if self.cfg.mode != Mode::Security {
            return template.into();
        }
        let store = self.findings.store.clone().or_else(|| {
            files::load(&self.paths.mode_dir(self.cfg.mode.as_str(), &self.run_tag))
                .ok()
                .flatten()
        });
        let coverage = store.unwrap_or_default().coverage();
        let s = &self.cfg.settings;
        security::fill_turn(
            template,
            &security::Turn {
                iteration: self.replay.tally.iteration + 1,
                focus: s.focus.as_deref(),
                diff_base: s.diff.as_deref(),
                coverage: &coverage,
            },
        )
        .into()
    }

    /// The repository's directory as git gives it and resolved (agents may cite either).
    fn repo_roots(&self) -> Vec<String> {
        let dir = self.repo.repo.workdir().map(Path::to_path_buf);
        let real = dir.as_ref().and_then(|d| d.canonicalize().ok());
        [dir, real]
            .into_iter()
            .flatten()
            .map(|d| d.to_string_lossy().into_owned())
            .collect()
    }

    /// The ref the rollback kept iteration `n`'s trial `commit` under.
    fn trial_ref(&self, n: u64, commit: Oid) -> Option<String> {
        let base = format!("refs/autoresearch/{}/trial-{n}", self.run_tag);
        (1..10)
            .map(|k| match k {
                1 => base.clone(),
                k => format!("{base}-{k}"),
            })
            .find(|r| self.repo.repo.refname_to_id(r).ok() == Some(commit))
    }

    /// The findings so far by severity, for the end of a run.
    pub(super) fn findings_line(&mut self) -> Option<String> {
        if !self.hunting() {
            return None;
        }
        let store = self.store().ok()?;
        // A hunt whose turns all crashed never saved: write the (empty) reports now, so the
        // line below names files that exist (and CI's SARIF upload finds one).
        let dir = self.findings_dir();
        if !dir.join(files::JSON).exists() {
            files::save(&dir, &store).ok()?;
        }
        let counts: Vec<String> = store
            .by_severity()
            .iter()
            .map(|(s, k)| format!("{k} {}", s.as_str()))
            .collect();
        Some(format!(
            "findings: {} validated ({} confirmed){}; report: {}",
            store.findings.len(),
            store.confirmed().count(),
            if counts.is_empty() {
                String::new()
            } else {
                format!(" — {}", counts.join(", "))
            },
            dir.join("findings.md").display()
        ))
    }
}
