//! `autoresearch-results/engine/runs.tsv`: every verify run of a run, append-only (iteration, run number,
//! commit, role, value, use), so that a resumed run rebuilds the keep rule's reference and noise
//! estimate from the same runs instead of re-baselining on one sample.

use std::path::{Path, PathBuf};

use crate::engine::seq::{Role, RunRecord, Use};
use crate::error::{IoContext, Result};
use crate::fsutil;

/// The header line.
pub const HEADER: &str = "iteration\trun\tcommit\trole\tvalue\tuse";

/// The runs log of one run.
#[derive(Debug)]
pub struct RunsLog {
    path: PathBuf,
    /// The number the next run gets (1 for the first).
    next: u64,
    /// Runs appended since the last [`RunsLog::sync`].
    unsynced: bool,
    /// The file has its header line (known at open; no stat per run).
    started: bool,
}

/// Parses one line; `None` for the header, a torn or a foreign line.
fn parse(line: &str) -> Option<RunRecord> {
    let f: Vec<&str> = line.split('\t').collect();
    let [iteration, run, commit, role, value, used] = f.as_slice() else {
        return None;
    };
    Some(RunRecord {
        iteration: iteration.parse().ok()?,
        run: run.parse().ok()?,
        commit: (*commit).to_string(),
        role: role.parse().ok()?,
        value: value.parse::<f64>().ok().filter(|v| v.is_finite())?,
        used: used.parse().ok()?,
    })
}

impl RunsLog {
    /// Reads the runs recorded so far (every complete, well-formed line; a torn last line left
    /// by a crash is cut off so the next append starts a line of its own).
    pub fn open(path: &Path) -> Result<(RunsLog, Vec<RunRecord>)> {
        let text = match std::fs::read(path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).ctx("read", path),
        };
        let complete = match text.rfind('\n') {
            Some(i) => &text[..=i],
            None => "",
        };
        if complete.len() < text.len() {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .ctx("open", path)?;
            f.set_len(complete.len() as u64)
                .ctx("cut a torn line of", path)?;
        }
        let records: Vec<RunRecord> = complete.lines().filter_map(parse).collect();
        let next = records.iter().map(|r| r.run).max().unwrap_or(0) + 1;
        Ok((
            RunsLog {
                path: path.to_path_buf(),
                next,
                unsynced: false,
                started: !complete.is_empty(),
            },
            records,
        ))
    }

    /// A log for a new run: nothing on disk until the first append.
    pub fn new(path: &Path) -> RunsLog {
        RunsLog {
            path: path.to_path_buf(),
            next: 1,
            unsynced: false,
            started: false,
        }
    }

    /// Appends run number `run` (one write; [`RunsLog::sync`] makes the runs durable before the
    /// row that used them is recorded). Numbers count every verify run, those that gave no
    /// metric included.
    pub fn append(
        &mut self,
        run: u64,
        iteration: u64,
        commit: &str,
        role: Role,
        value: f64,
        used: Use,
    ) -> Result<RunRecord> {
        let rec = RunRecord {
            iteration,
            run,
            commit: commit.to_string(),
            role,
            value,
            used,
        };
        let mut line = String::new();
        if !std::mem::replace(&mut self.started, true) {
            line.push_str(HEADER);
            line.push('\n');
        }
        // `{}` of an f64 is its shortest exact form: the replay sees the same number.
        line.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            rec.iteration,
            rec.run,
            rec.commit,
            rec.role.as_str(),
            rec.value,
            rec.used.as_str()
        ));
        fsutil::append(&self.path, line.as_bytes())?;
        self.unsynced = true;
        self.next = self.next.max(run + 1);
        Ok(rec)
    }

    /// Waits for the disk to hold the runs appended so far (one fsync, when there are any).
    pub fn sync(&mut self) -> Result<()> {
        if std::mem::take(&mut self.unsynced) {
            fsutil::sync_file(&self.path)?;
        }
        Ok(())
    }

    /// The highest run number recorded, plus one.
    pub fn next_run(&self) -> u64 {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_round_trip_exactly_and_a_torn_line_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.tsv");
        let mut log = RunsLog::new(&path);
        let values = [0.1 + 0.2, 1e-300, 12345.678901234567, -3.0];
        for (i, v) in values.iter().enumerate() {
            let role = if i == 0 {
                Role::Baseline
            } else {
                Role::Candidate
            };
            log.append(i as u64 + 1, i as u64, "abc1234", role, *v, Use::Ok)
                .unwrap();
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, b"4\t5\tabc\tretained\t1.2").unwrap();
        let (mut log, recs) = RunsLog::open(&path).unwrap();
        let got: Vec<f64> = recs.iter().map(|r| r.value).collect();
        assert_eq!(got, values, "bit-exact values");
        assert_eq!(recs[0].role, Role::Baseline);
        assert_eq!(log.next_run(), 5);
        log.append(5, 4, "def", Role::Retained, 2.5, Use::Outlier)
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(HEADER));
        assert!(
            text.ends_with("4\t5\tdef\tretained\t2.5\toutlier\n"),
            "{text}"
        );
        assert_eq!(RunsLog::open(&path).unwrap().1.len(), 5);
    }
}
