//! A findings run's files in its mode report directory (`Paths::mode_dir`): `findings.json`
//! (the [`Store`]) and the markdown reports beside it: `findings.md` (every validated finding
//! with its evidence), `eliminated.md` (the hypotheses ruled out) and `summary.md` (counts);
//! in security mode also `coverage.md` (the score and each category's state) and
//! `security.sarif` (SARIF 2.1.0).

use std::path::Path;

use crate::engine::findings::{Outcome, Store, Validated};
use crate::error::{Error, Result};
use crate::fsutil;

/// The store's file name.
pub const JSON: &str = "findings.json";

/// security: the coverage report's file name (beside `security.sarif`).
pub const COVERAGE: &str = "coverage.md";

/// Reads `findings.json` in `dir`; `None` when there is none yet.
pub fn load(dir: &Path) -> Result<Option<Store>> {
    let path = dir.join(JSON);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::Refused(format!(
                "{} is not a findings file ({e}); move it aside or start with --fresh",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", &path, e)),
    }
}

/// Writes the store and its reports into `dir` (created if needed).
pub fn save(dir: &Path, store: &Store) -> Result<()> {
    fsutil::ensure_dir(dir)?;
    let json = serde_json::to_string_pretty(store).unwrap_or_default();
    fsutil::write_atomic(&dir.join(JSON), json.as_bytes())?;
    fsutil::write_quick(&dir.join("findings.md"), findings_md(store).as_bytes())?;
    fsutil::write_quick(&dir.join("eliminated.md"), eliminated_md(store).as_bytes())?;
    fsutil::write_quick(&dir.join("summary.md"), summary_md(store).as_bytes())?;
    if store.mode == crate::config::Mode::Security.as_str() {
        fsutil::write_quick(
            &dir.join(COVERAGE),
            store.coverage().to_markdown().as_bytes(),
        )?;
        crate::report::sarif::write(&dir.join(crate::report::sarif::FILE), &store.checked())?;
    }
    Ok(())
}

fn field(out: &mut String, name: &str, value: Option<&str>) {
    if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) {
        out.push_str(&format!("- **{name}:** {v}\n"));
    }
}

fn finding_md(v: &Validated) -> String {
    let f = &v.finding;
    let mut s = format!(
        "## #{} {} — {} ({})\n\n",
        v.id,
        f.title.trim(),
        f.severity.as_str(),
        v.status.word()
    );
    field(
        &mut s,
        "Found in iteration",
        Some(&match v.also_in.as_slice() {
            [] => v.iteration.to_string(),
            again => format!(
                "{} (reported again in {})",
                v.iteration,
                again
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    );
    field(&mut s, "Hypothesis", f.hypothesis.as_deref());
    field(&mut s, "Evidence", Some(&f.evidence));
    field(&mut s, "Root cause", f.root_cause.as_deref());
    field(&mut s, "Suggested fix", f.suggested_fix.as_deref());
    field(
        &mut s,
        "STRIDE",
        f.stride.map(crate::engine::findings::coverage::stride_name),
    );
    field(&mut s, "OWASP", f.owasp.as_deref());
    field(&mut s, "CWE", f.cwe.as_deref());
    field(&mut s, "Scenario", f.scenario.as_deref());
    field(&mut s, "Impact", f.impact.as_deref());
    field(&mut s, "Mitigation", f.mitigation.as_deref());
    if let Some(r) = &v.repro_run {
        let how = match (r.exit, r.timed_out) {
            (_, true) => "timed out".to_string(),
            (Some(c), _) => format!("exit {c}"),
            (None, _) => "killed".to_string(),
        };
        let verdict = if r.failed { "fails" } else { "does not fail" };
        field(
            &mut s,
            "Repro",
            Some(&format!(
                "`{}` {verdict} on the retained tree ({how})",
                r.command
            )),
        );
    }
    field(&mut s, "Evidence commit", v.trial_ref.as_deref());
    field(&mut s, "Fixed by", v.fixed_by.as_deref());
    for l in &f.locations {
        s.push_str(&format!(
            "\n`{}:{}-{}`\n\n```\n{}\n```\n",
            l.path,
            l.start_line,
            l.end_line,
            l.code.trim_end()
        ));
    }
    s.push('\n');
    s
}

/// `findings.md`: every validated finding, most severe first.
pub fn findings_md(store: &Store) -> String {
    let mut s = format!("# Findings of {} ({})\n\n", store.run_tag, store.mode);
    if let Some(c) = &store.context {
        s.push_str(&format!("{}\n\n", c.trim()));
    }
    if store.findings.is_empty() {
        s.push_str("No validated finding yet.\n");
    }
    let mut all: Vec<&Validated> = store.findings.iter().collect();
    all.sort_by_key(|v| (severity_rank(v), v.id));
    for v in all {
        s.push_str(&finding_md(v));
    }
    s
}

fn severity_rank(v: &Validated) -> usize {
    crate::config::Severity::WORDS
        .iter()
        .position(|w| *w == v.finding.severity.as_str())
        .unwrap_or(usize::MAX)
}

/// `eliminated.md`: the hypotheses ruled out and the findings the engine rejected.
pub fn eliminated_md(store: &Store) -> String {
    let mut s = format!("# Eliminated in {}\n\n", store.run_tag);
    let gone: Vec<_> = store
        .tried
        .iter()
        .filter(|t| !matches!(t.outcome, Outcome::Confirmed | Outcome::Unconfirmed))
        .collect();
    if gone.is_empty() {
        s.push_str("Nothing eliminated yet.\n");
    }
    for t in gone {
        let what = t.hypothesis.as_deref().unwrap_or(&t.title);
        s.push_str(&format!(
            "- iteration {} {} {}{}\n",
            t.iteration,
            t.outcome.tag(),
            if what.trim().is_empty() {
                "(no finding)"
            } else {
                what.trim()
            },
            if t.note.is_empty() {
                String::new()
            } else {
                format!(" — {}", t.note)
            }
        ));
    }
    s
}

/// `summary.md`: the counts by status and severity.
pub fn summary_md(store: &Store) -> String {
    let count = |o: Outcome| store.tried.iter().filter(|t| t.outcome == o).count();
    let confirmed = store.confirmed().count();
    let mut s = format!(
        "# Summary of {} ({})\n\n- turns: {}\n- validated findings: {} ({confirmed} confirmed, {} unconfirmed)\n",
        store.run_tag,
        store.mode,
        store.tried.len(),
        store.findings.len(),
        store.findings.len() - confirmed
    );
    for (sev, k) in store.by_severity() {
        s.push_str(&format!("  - {}: {k}\n", sev.as_str()));
    }
    for o in [
        Outcome::Duplicate,
        Outcome::Unfounded,
        Outcome::Disproven,
        Outcome::Inconclusive,
        Outcome::NewLead,
        Outcome::NoFinding,
    ] {
        s.push_str(&format!("- {}: {}\n", o.word(), count(o)));
    }
    let fixed = store
        .findings
        .iter()
        .filter(|v| v.fixed_by.is_some())
        .count();
    if fixed > 0 {
        s.push_str(&format!("- fixed: {fixed}\n"));
    }
    s
}

/// What `status` shows of a findings run (`mode` debug or security, run `tag`): the line and
/// the JSON (`validated`, `confirmed`, `by_severity`; security adds `score`,
/// `stride_covered`, `owasp_covered`); `None` in the other modes or before a
/// finding file exists.
pub fn status_of(
    paths: &crate::artifacts::Paths,
    mode: &str,
    tag: &str,
) -> Option<(String, serde_json::Value)> {
    if !matches!(mode, "debug" | "security") {
        return None;
    }
    let store = load(&paths.mode_dir(mode, tag)).ok().flatten()?;
    let by: Vec<(crate::config::Severity, usize)> = store.by_severity();
    let confirmed = store.confirmed().count();
    let counts: Vec<String> = by
        .iter()
        .map(|(s, k)| format!("{k} {}", s.as_str()))
        .collect();
    let mut line = format!(
        "findings: {} validated ({confirmed} confirmed){}",
        store.findings.len(),
        if counts.is_empty() {
            String::new()
        } else {
            format!(": {}", counts.join(", "))
        }
    );
    let severities: serde_json::Map<String, serde_json::Value> = by
        .iter()
        .map(|(s, k)| (s.as_str().to_string(), (*k).into()))
        .collect();
    let mut json = serde_json::json!({
        "validated": store.findings.len(),
        "confirmed": confirmed,
        "by_severity": severities,
    });
    if mode == "security" {
        let c = store.coverage();
        json["score"] = serde_json::json!(c.score());
        json["stride_covered"] = c.stride_covered().into();
        json["owasp_covered"] = c.owasp_covered().into();
        line.push_str(&format!(
            "; coverage score {} ({}/6 STRIDE, {}/10 OWASP)",
            crate::engine::number::canonical(c.score()),
            c.stride_covered(),
            c.owasp_covered()
        ));
    }
    Some((line, json))
}
