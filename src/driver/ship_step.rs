//! Ship mode's gated ship step, after the loop reached 100% readiness: without
//! `--approve-ship` the run stops "ready to ship" (exit 3) naming the command; `--dry-run` runs
//! the command's dry-run form; with consent the ship command runs once, its `ship` row is
//! recorded, then `--post-ship` and its row. A ship that failed is never run again by the engine.

use super::Run;
use crate::config::{Mode, ShipType};
use crate::engine::policy::Stop;
use crate::engine::readiness;
use crate::engine::row::{Guard, Status, one_line};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::process::{End, Spec};

/// Row descriptions of the ship step (also how a resume finds an earlier ship).
const SHIPPED: &str = "[SHIP]";
const SHIP_FAILED: &str = "[SHIP FAILED]";

impl Run {
    /// After the loop: the checklist's copy and report are brought up to date and, when ship
    /// mode reached its goal, the ship step runs.
    pub(super) fn after_loop(&mut self, stop: Result<Stop>) -> Result<Stop> {
        self.publish_checklist(&[]);
        match stop {
            Ok(Stop::Goal(why)) if self.cfg.mode == Mode::Ship && self.checklist.is_some() => {
                self.ship_step(why)
            }
            other => other,
        }
    }

    fn ship_command(&self) -> Option<String> {
        let ty = self
            .checklist
            .as_ref()
            .and_then(|c| c.spec.ship_type())
            .unwrap_or(ShipType::Generic);
        self.cfg
            .settings
            .ship_cmd
            .clone()
            .filter(|c| !c.trim().is_empty())
            .or_else(|| readiness::ship_command(ty).map(str::to_string))
    }

    fn ship_step(&mut self, why: String) -> Result<Stop> {
        let s = &self.cfg.settings;
        let (approved, dry) = (s.approve_ship == Some(true), s.dry_run == Some(true));
        if let Some(row) = self
            .results
            .rows
            .iter()
            .rev()
            .find(|r| r.status == Status::Ship && r.description.starts_with("[SHIP"))
        {
            let n = row.iteration;
            return Ok(if row.description.starts_with(SHIP_FAILED) {
                Stop::NeedsHuman(format!(
                    "the ship command failed at iteration {n} and is never retried by the engine; ship by hand, or start a new run with --fresh"
                ))
            } else {
                Stop::Goal(format!("already shipped at iteration {n}"))
            });
        }
        let Some(cmd) = self.ship_command() else {
            return Ok(Stop::NeedsHuman(
                "ready to ship: every checklist item passes, but this project type has no ship command; run again with --ship-cmd CMD --approve-ship".into(),
            ));
        };
        if dry {
            return self.ship_dry_run(&cmd);
        }
        if !approved {
            self.out
                .note(&format!("ready to ship; the ship command: {cmd}"));
            self.publish_checklist(&[format!("Ready to ship. The ship command: `{cmd}`")]);
            return Ok(Stop::NeedsHuman(format!(
                "ready to ship ({why}); a human decides: run again with --approve-ship to run `{cmd}`"
            )));
        }
        let (ok, detail) = self.ship_run(&cmd, "ship")?;
        let head = self.repo.head()?;
        let n = self.replay.tally.iteration + 1;
        let desc = if ok {
            format!("{SHIPPED} `{cmd}` succeeded")
        } else {
            format!("{SHIP_FAILED} `{cmd}` {detail}")
        };
        let row = self.experiment_row(
            n,
            Status::Ship,
            Some(head),
            None,
            Guard::NotRun,
            desc.clone(),
        );
        self.record(row, None)?;
        let mut extra = vec![desc];
        if !ok {
            self.publish_checklist(&extra);
            return Ok(Stop::NeedsHuman(format!(
                "the ship command `{cmd}` failed ({detail}); it is not retried: fix the cause and ship by hand"
            )));
        }
        let post = self
            .cfg
            .settings
            .post_ship
            .clone()
            .filter(|c| !c.trim().is_empty());
        let Some(post) = post else {
            self.publish_checklist(&extra);
            return Ok(Stop::Goal(format!("shipped with `{cmd}`")));
        };
        let (post_ok, post_detail) = self.ship_run(&post, "post-ship")?;
        let desc = if post_ok {
            format!("[POST-SHIP] `{post}` passed")
        } else {
            format!("[POST-SHIP FAILED] `{post}` {post_detail}")
        };
        let row = self.experiment_row(
            n + 1,
            Status::Ship,
            Some(head),
            None,
            Guard::NotRun,
            desc.clone(),
        );
        self.record(row, None)?;
        extra.push(desc);
        self.publish_checklist(&extra);
        Ok(if post_ok {
            Stop::Goal(format!("shipped with `{cmd}`; post-ship `{post}` passed"))
        } else {
            Stop::NeedsHuman(format!(
                "shipped with `{cmd}`, but the post-ship command `{post}` failed ({post_detail}); check the release"
            ))
        })
    }

    /// `--dry-run`: the ship command's dry-run form runs; nothing ships.
    fn ship_dry_run(&mut self, cmd: &str) -> Result<Stop> {
        let explicit = self.cfg.settings.ship_cmd.is_some();
        let ty = self.checklist.as_ref().and_then(|c| c.spec.ship_type());
        let Some(dry) = ty
            .filter(|_| !explicit)
            .and_then(readiness::dry_run_command)
        else {
            return Ok(Stop::NeedsHuman(format!(
                "ready to ship; `{cmd}` has no dry-run form the engine knows, so nothing ran; run again with --approve-ship to ship"
            )));
        };
        let (ok, detail) = self.ship_run(dry, "dry-run")?;
        let outcome = if ok {
            "passed".to_string()
        } else {
            format!("failed ({detail})")
        };
        self.publish_checklist(&[format!("Dry run `{dry}` {outcome}.")]);
        Ok(Stop::NeedsHuman(format!(
            "ready to ship; the dry run `{dry}` {outcome}; run again with --approve-ship to run `{cmd}`"
        )))
    }

    /// Runs a ship-step command in the repository (log in the ship report's directory); returns
    /// whether it passed and how it ended with its last output.
    fn ship_run(&mut self, cmd: &str, what: &str) -> Result<(bool, String)> {
        let dir = self.paths.mode_dir("ship", &self.run_tag);
        fsutil::ensure_dir(&dir)?;
        let log = dir.join(format!("{what}.log"));
        let mut spec = Spec::shell(cmd, &self.repo.root);
        spec.stdout_log = Some(log.clone());
        spec.stderr_log = Some(log.clone());
        spec.timeout = Some(self.cfg.verify_timeout);
        spec.group_record = Some(self.paths.child.clone());
        self.out.note(&format!(
            "{what}: running `{cmd}` (output in {})",
            log.display()
        ));
        let out = crate::process::run(&spec)
            .map_err(|e| Error::Blocked(format!("cannot start the {what} command `{cmd}`: {e}")))?;
        if let End::Interrupted(sig) = out.end {
            return Err(Error::Interrupted(sig, "during the ship step"));
        }
        let detail = format!("{}: {}", out.end.describe(), one_line(&out.last_lines(3)));
        Ok((out.end.success(), detail))
    }
}
