//! `autoresearch-results/lessons.md`: what worked (keeps) and what was abandoned (pivots), in the
//! reference's block format. Appended only; the engine never rewrites it.

use std::path::{Path, PathBuf};

use crate::engine::row::one_line;
use crate::error::Result;
use crate::fsutil;

/// The lessons file and its entries (the last ones go into prompts; their count numbers the next).
pub struct Lessons {
    path: PathBuf,
    entries: Vec<String>,
    /// The whole file as last read or written, to restore it after a foreign write.
    text: String,
    stamp: Option<(u64, i128, u64)>,
}

/// One lesson to append.
pub struct Lesson<'a> {
    pub title: &'a str,
    pub strategy: &'a str,
    pub outcome: &'a str,
    pub insight: &'a str,
    pub context: String,
    pub iteration: String,
}

fn field(v: &str) -> String {
    let v = one_line(v);
    if v.is_empty() { "-".into() } else { v }
}

impl Lessons {
    /// Reads the lessons file if it exists (any content is accepted; entries start at `### `).
    pub fn load(path: &Path) -> Lessons {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut entries: Vec<String> = Vec::new();
        for line in text.lines() {
            if line.starts_with("### ") {
                entries.push(String::new());
            }
            if let Some(e) = entries.last_mut() {
                e.push_str(line);
                e.push('\n');
            }
        }
        Lessons {
            path: path.to_path_buf(),
            entries,
            text,
            stamp: fsutil::fingerprint(path),
        }
    }

    /// Rewrites the file with what this process last read or wrote.
    pub fn restore(&mut self) -> Result<()> {
        if self.text.is_empty() {
            let _ = std::fs::remove_file(&self.path);
        } else {
            fsutil::write_atomic(&self.path, self.text.as_bytes())?;
        }
        self.stamp = fsutil::fingerprint(&self.path);
        Ok(())
    }

    /// Returns the last `n` entries as one line each, for prompts:
    /// `- [keep] <title> (<insight>)`, plus the goal when it differs from `goal`.
    pub fn recent(&self, n: usize, goal: &str) -> String {
        let start = self.entries.len().saturating_sub(n);
        let mut out = Vec::new();
        for e in &self.entries[start..] {
            let field = |name: &str| {
                e.lines()
                    .find_map(|l| l.strip_prefix(&format!("- **{name}:** ")))
                    .unwrap_or("")
                    .trim()
                    .to_string()
            };
            let title = e.lines().next().unwrap_or("").trim_start_matches("### ");
            let title = title.split_once(": ").map_or(title, |(_, t)| t);
            let mut line = format!("- [{}] {}", field("Outcome"), title);
            let insight = field("Insight");
            if !insight.is_empty() && insight != title && insight != "-" {
                line.push_str(&format!(" ({insight})"));
            }
            let other_goal = field("Context")
                .split("; ")
                .find_map(|kv| kv.strip_prefix("goal="))
                .filter(|g| *g != goal)
                .map(str::to_string);
            if let Some(g) = other_goal {
                line.push_str(&format!(" [other goal: {g}]"));
            }
            out.push(line);
        }
        out.join("\n")
    }

    /// Returns true when something else wrote to the file since it was read or appended.
    pub fn tampered(&self) -> bool {
        fsutil::fingerprint(&self.path) != self.stamp
    }

    /// Appends one lesson block.
    pub fn append(&mut self, l: &Lesson<'_>) -> Result<()> {
        let n = self.entries.len() + 1;
        let mut title = field(l.title);
        if title.chars().count() > 120 {
            title = title.chars().take(119).collect::<String>() + "…";
        }
        let block = format!(
            "### L-{n}: {title}\n- **Strategy:** {}\n- **Outcome:** {}\n- **Insight:** {}\n- **Context:** {}\n- **Iteration:** {}\n- **Timestamp:** {}\n\n",
            field(l.strategy),
            field(l.outcome),
            field(l.insight),
            field(&l.context),
            field(&l.iteration),
            crate::artifacts::state::now_utc(),
        );
        fsutil::append_durable(&self.path, block.as_bytes())?;
        self.text.push_str(&block);
        self.entries.push(block);
        self.stamp = fsutil::fingerprint(&self.path);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_numbered_blocks_in_the_reference_format() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lessons.md");
        let mut l = Lessons::load(&p);
        for (i, title) in ["cache the parser", "switch to\nbatching"]
            .iter()
            .enumerate()
        {
            l.append(&Lesson {
                title,
                strategy: title,
                outcome: if i == 0 { "keep" } else { "pivot" },
                insight: title,
                context: "goal=g; scope=src/**; metric=m; direction=lower".into(),
                iteration: format!("tag#{}", i + 1),
            })
            .unwrap();
        }
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with(
            "### L-1: cache the parser\n- **Strategy:** cache the parser\n- **Outcome:** keep\n"
        ));
        assert!(text.contains("### L-2: switch to batching\n"));
        assert!(text.contains("- **Iteration:** tag#2\n"));
        let again = Lessons::load(&p);
        assert_eq!(again.recent(1, "g"), "- [pivot] switch to batching");
        assert_eq!(
            again.recent(2, "other").lines().next(),
            Some("- [keep] cache the parser [other goal: g]")
        );
    }
}
