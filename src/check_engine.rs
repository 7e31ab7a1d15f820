//! `config --check` for a metric the engine measures itself: a checklist (ship mode,
//! `--verify-format checklist`) is run item by item in the scratch checkout; findings (debug,
//! security) start at nothing to measure.

use crate::config::{Mode, ShipType};
use crate::driver::Checked;
use crate::engine::checklist::{self, Check, ItemResult};
use crate::engine::number::canonical;
use crate::error::{Error, Result};
use crate::process::{self, End, Spec};

/// The line the check prints for an engine-measured metric, or why it cannot be measured
/// (`Err(Ok(reason))`); `Err(Err(sig))` when interrupted. `None`: verify measures.
pub(crate) fn measure(
    c: &Checked,
    root: &std::path::Path,
    spec_of: impl Fn(&str) -> Spec,
) -> Result<Option<std::result::Result<String, i32>>> {
    let cfg = &c.cfg;
    if crate::config::engine_metric(cfg.mode, cfg.verify_format).is_none() {
        return Ok(None);
    }
    if matches!(cfg.mode, Mode::Debug | Mode::Security) {
        return Ok(Some(Ok(format!(
            "metric: {} (higher is better), counted by the engine from the findings it validates; starts at 0",
            cfg.metric
        ))));
    }
    let Some(list) = &c.checklist else {
        return Err(Error::Blocked("internal: no checklist to check".into()));
    };
    let ty = list.ship_type().unwrap_or(ShipType::Generic);
    let mut results = Vec::new();
    for item in &list.items {
        if let Some(sig) = crate::signal::pending() {
            return Ok(Some(Err(sig)));
        }
        let passed = match &item.check {
            Check::Command(cmd) => {
                let mut spec = spec_of(cmd);
                if let Some(t) = item.timeout {
                    spec.timeout = Some(t);
                }
                let out = process::run(&spec).map_err(|e| {
                    Error::Blocked(format!("cannot start the checklist item `{cmd}`: {e}"))
                })?;
                if let End::Interrupted(sig) = out.end {
                    return Ok(Some(Err(sig)));
                }
                out.end.success()
            }
            // Read-only checks of the repository (its tags, HEAD, the tree preflight found clean).
            Check::Engine(check) => crate::ship::checks::run(&c.repo.repo, root, ty, *check).0,
        };
        results.push(ItemResult {
            name: item.name.clone(),
            passed,
            tail: String::new(),
        });
    }
    let failing: Vec<&str> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.name.as_str())
        .collect();
    let value = match list.ship_type() {
        Some(_) => checklist::percent(&results),
        None => checklist::passing(&results) as f64,
    };
    let failing = if failing.is_empty() {
        "all pass".to_string()
    } else {
        format!("failing: {}", failing.join(", "))
    };
    Ok(Some(Ok(format!(
        "baseline {} = {} ({} of {} items pass; {failing}), measured by the engine",
        cfg.metric,
        canonical(value),
        checklist::passing(&results),
        results.len()
    ))))
}
