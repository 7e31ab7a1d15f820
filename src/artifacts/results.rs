//! `autoresearch-results/results.tsv`: created once with its metadata, then only appended to (one write plus
//! fsync per row). Reading validates the file, then repairs a torn last line; it replays nothing (the
//! reducer does that).

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use crate::engine::row::{HEADER, Row, meta_line, parse_meta_line};
use crate::error::{Error, IoContext, Result};
use crate::fsutil;

/// The results log, with every row also held in memory.
pub struct ResultsLog {
    path: PathBuf,
    /// `# key: value` metadata, in file order.
    pub meta: Vec<(String, String)>,
    /// Main rows in order (parallel worker rows are skipped).
    pub rows: Vec<Row>,
    /// Raw text as last written, to restore it if something else writes to the file.
    text: String,
    stamp: Option<(u64, i128, u64)>,
}

/// What reading found and fixed.
#[derive(Debug, Default)]
pub struct Repair {
    /// Bytes of an incomplete last line that were cut off.
    pub torn_bytes: usize,
}

impl ResultsLog {
    /// Creates a new log with `meta` and the baseline row; fails if the file exists.
    pub fn create(path: &Path, meta: &[(String, String)], baseline: &Row) -> Result<ResultsLog> {
        if path.exists() {
            return Err(Error::Refused(format!("{} already exists", path.display())));
        }
        let mut text = String::new();
        for (k, v) in meta {
            text.push_str(&meta_line(k, v));
            text.push('\n');
        }
        text.push_str(HEADER);
        text.push('\n');
        text.push_str(&baseline.to_line());
        text.push('\n');
        fsutil::write_atomic(path, text.as_bytes())?;
        Ok(ResultsLog {
            path: path.to_path_buf(),
            meta: meta.to_vec(),
            rows: vec![baseline.clone()],
            stamp: fsutil::fingerprint(path),
            text,
        })
    }

    /// Returns a log that does not exist on disk yet (a fresh run before its baseline).
    pub fn unborn(path: &Path) -> ResultsLog {
        ResultsLog {
            path: path.to_path_buf(),
            meta: Vec::new(),
            rows: Vec::new(),
            text: String::new(),
            stamp: None,
        }
    }

    /// Reads an existing log without writing to it: an unterminated last line (a crash
    /// mid-write) is left out and reported, everything else must be valid.
    pub fn read(path: &Path) -> Result<(ResultsLog, Repair)> {
        let bytes = fs::read(path).ctx("read", path)?;
        let end = if bytes.is_empty() || bytes.ends_with(b"\n") {
            bytes.len()
        } else {
            bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
        };
        let text = String::from_utf8(bytes[..end].to_vec()).map_err(|_| {
            Error::Refused(format!(
                "{} is not valid UTF-8; move it aside or use --fresh",
                path.display()
            ))
        })?;
        let (meta, rows) = parse(&text).map_err(|(line, why)| {
            Error::Refused(format!(
                "{} line {line}: {why}; fix the line or start over with --fresh",
                path.display()
            ))
        })?;
        let repair = Repair {
            torn_bytes: bytes.len() - end,
        };
        Ok((
            ResultsLog {
                path: path.to_path_buf(),
                meta,
                rows,
                stamp: fsutil::fingerprint(path),
                text,
            },
            repair,
        ))
    }

    /// Cuts the file back to what [`ResultsLog::read`] read (leaving out a torn last line);
    /// returns how many bytes were cut. Call it only once nothing refuses the file.
    pub fn cut_torn(&mut self) -> Result<u64> {
        let len = self.text.len() as u64;
        let before = fs::metadata(&self.path).ctx("read", &self.path)?.len();
        if before <= len {
            return Ok(0);
        }
        let f = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .ctx("open", &self.path)?;
        f.set_len(len)
            .ctx("repair the torn last line of", &self.path)?;
        f.sync_all().ctx("sync", &self.path)?;
        self.stamp = fsutil::fingerprint(&self.path);
        Ok(before - len)
    }

    /// Replays the rows with the direction the log's metadata names.
    pub fn replay(&self) -> Result<crate::engine::reducer::Replay> {
        let direction: crate::engine::Direction = self
            .meta("metric_direction")
            .ok_or_else(|| {
                Error::Refused(format!(
                    "{} has no `# metric_direction:` line; use --fresh",
                    self.path.display()
                ))
            })?
            .parse()
            .map_err(|e: String| Error::Refused(format!("{}: {e}", self.path.display())))?;
        let rules = super::layout::rules(super::layout::of_results(&self.path));
        crate::engine::reducer::Replay::from_rows_with(&self.rows, direction, rules).map_err(|e| {
            Error::Refused(format!(
                "{}: {e}; fix the file or start over with --fresh",
                self.path.display()
            ))
        })
    }

    /// Appends one row (one write plus fsync).
    pub fn append(&mut self, row: &Row) -> Result<()> {
        let mut line = row.to_line();
        line.push('\n');
        fsutil::append_durable(&self.path, line.as_bytes())?;
        self.text.push_str(&line);
        self.rows.push(row.clone());
        self.stamp = fsutil::fingerprint(&self.path);
        Ok(())
    }

    /// Returns a metadata value.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.meta
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Returns the last `n` rows.
    pub fn tail(&self, n: usize) -> &[Row] {
        &self.rows[self.rows.len().saturating_sub(n)..]
    }

    /// Returns true when the file is no longer what this process last wrote.
    pub fn tampered(&self) -> bool {
        fsutil::fingerprint(&self.path) != self.stamp
    }

    /// Rewrites the file with what this process last wrote.
    pub fn restore(&mut self) -> Result<()> {
        fsutil::write_atomic(&self.path, self.text.as_bytes())?;
        self.stamp = fsutil::fingerprint(&self.path);
        Ok(())
    }
}

/// Metadata pairs and main rows of a results log.
pub type Parsed = (Vec<(String, String)>, Vec<Row>);

/// Parses the log text; errors carry the 1-based line number.
pub fn parse(text: &str) -> Result<Parsed, (usize, String)> {
    let mut meta = Vec::new();
    let mut rows = Vec::new();
    let mut header_seen = false;
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with('#') {
            if let Some(kv) = parse_meta_line(line) {
                meta.push(kv);
            }
            continue;
        }
        if !header_seen {
            if line != HEADER {
                return Err((i + 1, "expected the header line `iteration<TAB>commit<TAB>metric<TAB>delta<TAB>guard<TAB>status<TAB>description`".into()));
            }
            header_seen = true;
            continue;
        }
        let first = line.split('\t').next().unwrap_or_default();
        if first.len() > 1
            && first.ends_with(|c: char| c.is_ascii_lowercase())
            && first
                .trim_end_matches(|c: char| c.is_ascii_lowercase())
                .parse::<u64>()
                .is_ok()
        {
            continue; // a parallel worker row (`5a`); it does not affect state
        }
        rows.push(Row::parse_line(line).map_err(|e| (i + 1, e))?);
    }
    if !header_seen {
        return Err((1, "no header line".into()));
    }
    Ok((meta, rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::row::{Guard, Status};

    fn row(i: u64, status: Status) -> Row {
        Row {
            iteration: i,
            commit: "abc1234".into(),
            metric: 10.0 - i as f64,
            delta: -1.0,
            guard: Guard::NotRun,
            status,
            description: format!("row {i}"),
        }
    }

    #[test]
    fn create_append_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.tsv");
        let meta = vec![
            ("metric_direction".to_string(), "lower".to_string()),
            ("mode".into(), "loop".into()),
        ];
        let mut log = ResultsLog::create(&p, &meta, &row(0, Status::Baseline)).unwrap();
        log.append(&row(1, Status::Keep)).unwrap();
        assert!(!log.tampered());
        let (back, repair) = ResultsLog::read(&p).unwrap();
        assert_eq!(repair.torn_bytes, 0);
        assert_eq!(back.rows.len(), 2);
        assert_eq!(back.meta("metric_direction"), Some("lower"));
        let text = fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("# metric_direction: lower\n# mode: loop\niteration\t"));
    }

    #[test]
    fn torn_last_line_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.tsv");
        let mut log = ResultsLog::create(&p, &[], &row(0, Status::Baseline)).unwrap();
        log.append(&row(1, Status::Keep)).unwrap();
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        std::io::Write::write_all(&mut f, b"2\tdef\t8\t-1\t-\tdisc").unwrap();
        drop(f);
        let torn = "2\tdef\t8\t-1\t-\tdisc".len();
        let before = fs::read(&p).unwrap();
        let (mut back, repair) = ResultsLog::read(&p).unwrap();
        assert_eq!(repair.torn_bytes, torn);
        assert_eq!(back.rows.len(), 2);
        assert_eq!(fs::read(&p).unwrap(), before, "reading writes nothing");
        assert_eq!(back.cut_torn().unwrap(), torn as u64);
        assert!(fs::read_to_string(&p).unwrap().ends_with("row 1\n"));
        assert_eq!(back.cut_torn().unwrap(), 0);
    }

    #[test]
    fn a_refused_file_is_left_byte_identical() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.tsv");
        let valid = "iteration\tcommit\tmetric\tdelta\tguard\tstatus\tdescription\n0\ta\t1\t0\t-\tbaseline\tb\n";
        let cases: Vec<Vec<u8>> = vec![
            // Random bytes, no newline at all.
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
            // Invalid UTF-8 before a torn tail.
            b"\xff\xfe garbage\nmore\xc3 torn".to_vec(),
            // Lines that do not parse, then a torn line.
            b"not a header\nnor this\n2\tdef\t8".to_vec(),
            // A valid start, a corrupt row, a torn last line.
            format!("{valid}1\ta\tfast\t0\t-\tkeep\tk\n2\ta\t0.5").into_bytes(),
        ];
        for bytes in cases {
            fs::write(&p, &bytes).unwrap();
            let err = ResultsLog::read(&p)
                .and_then(|(log, _)| log.replay())
                .expect_err("refused");
            assert!(matches!(err, Error::Refused(_)), "{err}");
            assert_eq!(fs::read(&p).unwrap(), bytes, "{err}");
        }
    }

    #[test]
    fn foreign_writes_are_detected_and_restored() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.tsv");
        let mut log = ResultsLog::create(&p, &[], &row(0, Status::Baseline)).unwrap();
        let before = fs::read_to_string(&p).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(10));
        fs::write(&p, "garbage\n").unwrap();
        assert!(log.tampered());
        log.restore().unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), before);
        assert!(!log.tampered());
    }

    #[test]
    fn corrupt_rows_name_the_line() {
        let text = "# metric_direction: lower\niteration\tcommit\tmetric\tdelta\tguard\tstatus\tdescription\n0\ta\t1\t0\t-\tbaseline\tb\n1\ta\tfast\t0\t-\tkeep\tk\n";
        let (line, why) = parse(text).unwrap_err();
        assert_eq!(line, 4);
        assert!(why.contains("metric `fast`"));
        assert!(parse("0\ta\t1\t0\t-\tbaseline\tb\n").is_err());
    }

    #[test]
    fn worker_rows_and_blank_lines_are_skipped() {
        let text = "iteration\tcommit\tmetric\tdelta\tguard\tstatus\tdescription\n\n0\ta\t1\t0\t-\tbaseline\tb\n1a\tc\t0\t-1\tpass\tkeep\tw\n1\tc\t0\t-1\tpass\tkeep\tm\n";
        let (_, rows) = parse(text).unwrap();
        assert_eq!(rows.len(), 2);
    }
}
