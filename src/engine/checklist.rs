//! Checklists as a metric (pure): the items (a command, or a check the engine makes itself),
//! their results, the score, the items a trial broke, the agent's feedback, the markdown
//! report, and the task-list format of `--verify-format checklist` (parsed and ticked).

use std::time::Duration;

/// A check the engine makes itself instead of running a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineCheck {
    /// No tracked file differs from HEAD.
    CleanTree,
    /// The manifest's version is above the one at the last tag.
    VersionBumped,
    /// The changelog has a heading for the manifest's version.
    Changelog,
    /// No TODO, FIXME or debug print added since the last tag.
    NoNewMarkers,
    /// A license file and a README at the root.
    LicenseReadme,
}

impl EngineCheck {
    /// What the report shows in place of a command.
    pub fn describe(self) -> &'static str {
        match self {
            EngineCheck::CleanTree => "(engine) no tracked file differs from HEAD",
            EngineCheck::VersionBumped => "(engine) the version is above the last tag's",
            EngineCheck::Changelog => "(engine) the changelog has an entry for the version",
            EngineCheck::NoNewMarkers => {
                "(engine) no TODO, FIXME or debug print added since the last tag"
            }
            EngineCheck::LicenseReadme => "(engine) a LICENSE and a README at the root",
        }
    }
}

/// How an item is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// A shell command that passes when it exits 0.
    Command(String),
    Engine(EngineCheck),
}

/// One item of a checklist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub name: String,
    pub check: Check,
    /// The item's own timeout (else `--verify-timeout`).
    pub timeout: Option<Duration>,
}

impl Item {
    /// An item checked by a command.
    pub fn command(name: &str, cmd: &str) -> Item {
        Item {
            name: name.to_string(),
            check: Check::Command(cmd.to_string()),
            timeout: None,
        }
    }

    /// An item the engine checks itself.
    pub fn engine(name: &str, check: EngineCheck) -> Item {
        Item {
            name: name.to_string(),
            check: Check::Engine(check),
            timeout: None,
        }
    }

    /// The command, or what the engine checks.
    pub fn shown(&self) -> &str {
        match &self.check {
            Check::Command(c) => c,
            Check::Engine(e) => e.describe(),
        }
    }
}

/// An item's result on one tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemResult {
    pub name: String,
    pub passed: bool,
    /// The end of its output (or the engine's explanation).
    pub tail: String,
}

/// The readiness score: passing items out of all, in percent (one decimal).
pub fn percent(results: &[ItemResult]) -> f64 {
    if results.is_empty() {
        return 100.0;
    }
    let passed = results.iter().filter(|r| r.passed).count() as f64;
    (passed * 1000.0 / results.len() as f64).round() / 10.0
}

/// The number of passing items.
pub fn passing(results: &[ItemResult]) -> usize {
    results.iter().filter(|r| r.passed).count()
}

/// The items that pass in `retained` and fail in `trial` (a keep must break none).
pub fn regressions(retained: &[ItemResult], trial: &[ItemResult]) -> Vec<String> {
    trial
        .iter()
        .filter(|t| !t.passed)
        .filter(|t| retained.iter().any(|r| r.name == t.name && r.passed))
        .map(|t| t.name.clone())
        .collect()
}

fn fenced(text: &str) -> String {
    let t = text.trim_end();
    if t.is_empty() {
        "(no output)\n".to_string()
    } else {
        format!("```\n{t}\n```\n")
    }
}

/// The output of the failing `names` (all failing items when `names` is empty), for the agent.
pub fn failing_output(items: &[Item], results: &[ItemResult], names: &[String]) -> String {
    let mut out = String::new();
    for (item, r) in items.iter().zip(results) {
        if r.passed || (!names.is_empty() && !names.contains(&r.name)) {
            continue;
        }
        out.push_str(&format!("### {} (`{}`)\n", r.name, item.shown()));
        out.push_str(&fenced(&r.tail));
    }
    out
}

/// The checklist as markdown: one box per item with its check, then the output tail of each
/// failing item. `extra` lines (the ship step's outcome) go at the end.
pub fn report(title: &str, items: &[Item], results: &[ItemResult], extra: &[String]) -> String {
    let mut out = format!(
        "# {title}\n\n{} of {} items pass ({}%).\n\n",
        passing(results),
        results.len(),
        crate::engine::number::canonical(percent(results))
    );
    for (item, r) in items.iter().zip(results) {
        let mark = if r.passed { "x" } else { " " };
        out.push_str(&format!("- [{mark}] {}: `{}`\n", r.name, item.shown()));
    }
    for (item, r) in items.iter().zip(results) {
        out.push_str(&format!(
            "\n## {} — {}\n\n`{}`\n\n{}",
            r.name,
            if r.passed { "pass" } else { "fail" },
            item.shown(),
            fenced(&r.tail)
        ));
    }
    for line in extra {
        out.push_str(&format!("\n{line}\n"));
    }
    out
}

/// One task of a task list: `- [ ] Task N: title` and its indented `accept: <command>` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    /// The task line without its box (`Task 2: add the parser`).
    pub title: String,
    pub accept: String,
    /// The task line's index in the file (0-based).
    pub line: usize,
}

/// The box of a task line, `- [ ] ` or `- [x] ` (`*` lists too), and the text after it.
fn task_line(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let rest = t.strip_prefix("- ").or_else(|| t.strip_prefix("* "))?;
    let rest = rest
        .strip_prefix("[ ]")
        .or_else(|| rest.strip_prefix("[x]"))
        .or_else(|| rest.strip_prefix("[X]"))?;
    Some(rest.trim())
}

/// Parses a task list; every task needs its `accept:` line, indented, right below it (blank
/// lines between are allowed). Errors name the line.
pub fn parse_tasks(text: &str) -> Result<Vec<Task>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut tasks = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(title) = task_line(line) else {
            continue;
        };
        let next = lines[i + 1..]
            .iter()
            .enumerate()
            .find(|(_, l)| !l.trim().is_empty());
        let accept = next.and_then(|(_, l)| {
            let indented = l.starts_with([' ', '\t']);
            let cmd = l.trim().strip_prefix("accept:")?.trim();
            (indented && !cmd.is_empty()).then_some(cmd)
        });
        let Some(accept) = accept else {
            return Err(format!(
                "line {}: the task `{title}` has no indented `accept: <command>` line below it",
                i + 1
            ));
        };
        tasks.push(Task {
            title: title.to_string(),
            accept: accept.to_string(),
            line: i,
        });
    }
    if tasks.is_empty() {
        return Err("no `- [ ] Task N: title` line with an `accept:` line below it".into());
    }
    Ok(tasks)
}

/// The task list with each task's box set from `done` (the engine's copy: the boxes say which
/// acceptance commands pass, whatever they said before).
pub fn tick(text: &str, tasks: &[Task], done: &[bool]) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.lines().enumerate() {
        match tasks.iter().position(|t| t.line == i) {
            Some(k) => {
                let indent = &line[..line.len() - line.trim_start().len()];
                let bullet = &line.trim_start()[..1];
                let mark = if done.get(k) == Some(&true) { "x" } else { " " };
                out.push_str(&format!("{indent}{bullet} [{mark}] {}", tasks[k].title));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Boxes ticked and boxes in all, of a markdown checklist.
pub fn progress(text: &str) -> (usize, usize) {
    let mut done = 0;
    let mut all = 0;
    for line in text.lines() {
        if task_line(line).is_some() {
            all += 1;
            let t = line.trim_start();
            if t[2..].starts_with("[x]") || t[2..].starts_with("[X]") {
                done += 1;
            }
        }
    }
    (done, all)
}

/// The items of a task list: one per task, checked by its acceptance command.
pub fn task_items(tasks: &[Task]) -> Vec<Item> {
    tasks
        .iter()
        .map(|t| Item::command(&t.title, &t.accept))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, passed: bool) -> ItemResult {
        ItemResult {
            name: name.into(),
            passed,
            tail: format!("{name} output"),
        }
    }

    #[test]
    fn the_score_is_the_share_of_passing_items() {
        assert_eq!(percent(&[r("a", true), r("b", false), r("c", false)]), 33.3);
        assert_eq!(percent(&[r("a", true), r("b", true)]), 100.0);
        assert_eq!(percent(&[r("a", false)]), 0.0);
        assert_eq!(passing(&[r("a", true), r("b", false)]), 1);
    }

    #[test]
    fn a_regression_is_an_item_that_passed_and_fails_now() {
        let retained = [r("fmt", true), r("changelog", false), r("build", true)];
        let trial = [r("fmt", false), r("changelog", true), r("build", true)];
        assert_eq!(regressions(&retained, &trial), ["fmt"]);
        assert!(regressions(&trial, &trial).is_empty());
    }

    #[test]
    fn feedback_and_report_show_the_failing_output() {
        let items = [Item::command("fmt", "cargo fmt --check"), {
            Item::engine("changelog", EngineCheck::Changelog)
        }];
        let results = [r("fmt", false), r("changelog", true)];
        let fb = failing_output(&items, &results, &[]);
        assert!(fb.contains("### fmt (`cargo fmt --check`)\n```\nfmt output\n```"));
        assert!(!fb.contains("changelog"));
        let md = report("Ship readiness", &items, &results, &["shipped".into()]);
        assert!(md.contains("1 of 2 items pass (50%)"), "{md}");
        assert!(md.contains("- [ ] fmt: `cargo fmt --check`"));
        assert!(md.contains("- [x] changelog: `(engine)"));
        assert!(md.contains("## fmt — fail"));
        assert!(md.ends_with("\nshipped\n"));
    }

    const LIST: &str = "# Plan\n\n- [ ] Task 1: parser\n  accept: test -f a\n- [x] Task 2: printer\n\n    accept: grep -q b b.txt\ntext\n";

    #[test]
    fn a_task_list_parses_with_its_accept_lines() {
        let tasks = parse_tasks(LIST).unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[0].title, "Task 1: parser");
        assert_eq!(tasks[0].accept, "test -f a");
        assert_eq!(tasks[1].accept, "grep -q b b.txt");
        assert_eq!(tasks[1].line, 4);
        let e = parse_tasks("- [ ] Task 1: x\naccept: true\n").unwrap_err();
        assert!(e.contains("line 1") && e.contains("no indented"), "{e}");
        assert!(parse_tasks("just text\n").is_err());
    }

    #[test]
    fn ticking_sets_boxes_from_the_accepts_only() {
        let tasks = parse_tasks(LIST).unwrap();
        let ticked = tick(LIST, &tasks, &[true, false]);
        assert!(ticked.contains("- [x] Task 1: parser\n"));
        assert!(ticked.contains("- [ ] Task 2: printer\n"), "{ticked}");
        assert!(ticked.contains("  accept: test -f a\n"));
        assert_eq!(progress(&ticked), (1, 2));
        assert_eq!(progress(LIST), (1, 2));
        assert_eq!(task_items(&tasks)[1].shown(), "grep -q b b.txt");
    }
}
