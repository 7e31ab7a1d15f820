//! One results row: statuses, description tags, and the TSV line encoding (pure, no I/O).

use std::fmt;
use std::str::FromStr;

use super::number::{canonical, parse_stored, signed};

/// The header line of `autoresearch-results/results.tsv`.
pub const HEADER: &str = "iteration\tcommit\tmetric\tdelta\tguard\tstatus\tdescription";

/// Longest description kept in a row, in characters.
pub const MAX_DESCRIPTION: usize = 300;

/// The status word of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Baseline,
    Keep,
    Discard,
    Crash,
    NoOp,
    Blocked,
    Refine,
    Pivot,
    Search,
    Drift,
    /// Ship mode's ship step: the ship command's and `--post-ship`'s outcomes.
    Ship,
}

impl Status {
    /// Every status, in the order the GUIDE lists them.
    pub const ALL: [Status; 11] = [
        Status::Baseline,
        Status::Keep,
        Status::Discard,
        Status::Crash,
        Status::NoOp,
        Status::Blocked,
        Status::Refine,
        Status::Pivot,
        Status::Search,
        Status::Drift,
        Status::Ship,
    ];

    /// Returns the status word written in the TSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Baseline => "baseline",
            Status::Keep => "keep",
            Status::Discard => "discard",
            Status::Crash => "crash",
            Status::NoOp => "no-op",
            Status::Blocked => "blocked",
            Status::Refine => "refine",
            Status::Pivot => "pivot",
            Status::Search => "search",
            Status::Drift => "drift",
            Status::Ship => "ship",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown status `{s}`"))
    }
}

/// The guard column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    Pass,
    Fail,
    NotRun,
}

impl Guard {
    /// Returns the word written in the TSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Guard::Pass => "pass",
            Guard::Fail => "fail",
            Guard::NotRun => "-",
        }
    }

    fn parse(s: &str) -> Guard {
        match s {
            "pass" => Guard::Pass,
            "fail" => Guard::Fail,
            _ => Guard::NotRun,
        }
    }
}

/// One row of the results log.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub iteration: u64,
    /// Short hash of the trial commit, or `-`.
    pub commit: String,
    pub metric: f64,
    pub delta: f64,
    pub guard: Guard,
    pub status: Status,
    pub description: String,
}

/// Returns `text` as one TSV-safe line: control characters (tabs, newlines) become spaces, runs of
/// spaces collapse, the bytes of a file name that is not UTF-8 show as `\xNN`
/// ([`crate::repopath::display`]), and the result is trimmed and capped at [`MAX_DESCRIPTION`]
/// characters.
pub fn one_line(text: &str) -> String {
    let text = crate::repopath::display(text);
    let mut out = String::with_capacity(text.len().min(MAX_DESCRIPTION * 4));
    let mut last_space = true;
    for ch in text.chars() {
        let ch = if ch.is_control() || ch.is_whitespace() {
            ' '
        } else {
            ch
        };
        if ch == ' ' {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(ch);
            last_space = false;
        }
    }
    let trimmed = out.trim_end();
    if trimmed.chars().count() > MAX_DESCRIPTION {
        let cut: String = trimmed.chars().take(MAX_DESCRIPTION - 1).collect();
        format!("{}…", cut.trim_end())
    } else {
        trimmed.to_string()
    }
}

impl Row {
    /// Returns the TSV line for this row, without the trailing newline.
    pub fn to_line(&self) -> String {
        let description = one_line(&self.description);
        let description = if description.is_empty() {
            "-".to_string()
        } else {
            description
        };
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            self.iteration,
            one_line(&self.commit),
            canonical(self.metric),
            signed(self.delta),
            self.guard.as_str(),
            self.status,
            description
        )
    }

    /// Parses one data line of the results log.
    pub fn parse_line(line: &str) -> Result<Row, String> {
        let fields: Vec<&str> = line.splitn(7, '\t').collect();
        if fields.len() != 7 {
            return Err(format!(
                "expected 7 tab-separated columns, found {}",
                fields.len()
            ));
        }
        let iteration = fields[0]
            .parse::<u64>()
            .map_err(|_| format!("iteration `{}` is not a whole number", fields[0]))?;
        let metric = parse_stored(fields[2])
            .ok_or_else(|| format!("metric `{}` is not a finite number", fields[2]))?;
        let delta = parse_stored(fields[3])
            .ok_or_else(|| format!("delta `{}` is not a finite number", fields[3]))?;
        let status = fields[5].parse::<Status>()?;
        Ok(Row {
            iteration,
            commit: fields[1].to_string(),
            metric,
            delta,
            guard: Guard::parse(fields[4]),
            status,
            description: fields[6].to_string(),
        })
    }
}

/// Encodes a `# key: value` metadata line; values with line breaks are written as `json:"..."`.
pub fn meta_line(key: &str, value: &str) -> String {
    if value.contains('\n') || value.contains('\r') || value.starts_with("json:") {
        let encoded = serde_json::to_string(value).unwrap_or_else(|_| "\"\"".to_string());
        format!("# {key}: json:{encoded}")
    } else {
        format!("# {key}: {}", value.trim())
    }
}

/// Decodes a `# key: value` metadata line, or returns `None` for other comments.
pub fn parse_meta_line(line: &str) -> Option<(String, String)> {
    let body = line.strip_prefix('#')?;
    let (key, value) = body.split_once(':')?;
    let key = key.trim();
    if key.is_empty() || key.contains(' ') {
        return None;
    }
    let value = value.trim();
    let value = match value.strip_prefix("json:") {
        Some(json) => serde_json::from_str::<String>(json).unwrap_or_else(|_| value.to_string()),
        None => value.to_string(),
    };
    Some((key.to_string(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(description: &str) -> Row {
        Row {
            iteration: 3,
            commit: "abc1234".into(),
            metric: 9.5,
            delta: -0.5,
            guard: Guard::Pass,
            status: Status::Keep,
            description: description.into(),
        }
    }

    #[test]
    fn encodes_a_row() {
        assert_eq!(
            row("faster parser").to_line(),
            "3\tabc1234\t9.5\t-0.5\tpass\tkeep\tfaster parser"
        );
    }

    #[test]
    fn hostile_descriptions_stay_on_one_line_and_round_trip() {
        let cases = [
            ("tab\there", "tab here"),
            ("new\nline\r\nand more", "new line and more"),
            ("\"quoted\" start", "\"quoted\" start"),
            ("unicode ✓ – 日本語 🚀", "unicode ✓ – 日本語 🚀"),
            ("  padded   spaces  ", "padded spaces"),
            ("nul\u{0}and bell\u{7}", "nul and bell"),
            ("", "-"),
        ];
        for (input, expected) in cases {
            let line = row(input).to_line();
            assert_eq!(line.matches('\t').count(), 6, "{input:?}");
            assert!(!line.contains('\n') && !line.contains('\r'));
            let back = Row::parse_line(&line).expect("round trip");
            assert_eq!(back.description, expected, "{input:?}");
            assert_eq!(back.metric, 9.5);
            assert_eq!(back.status, Status::Keep);
        }
    }

    #[test]
    fn file_names_that_are_not_utf8_show_as_hex_bytes() {
        let path = crate::repopath::decode(b"src/caf\xe9.txt");
        let line = row(&format!("[SCOPE] {path} — outside")).to_line();
        assert!(
            line.ends_with("\t[SCOPE] src/caf\\xe9.txt — outside"),
            "{line}"
        );
        let again = Row::parse_line(&line).expect("parse").to_line();
        assert_eq!(again, line, "the shown form is stable");
    }

    #[test]
    fn long_descriptions_are_capped() {
        let long = "x".repeat(1000);
        let line = row(&long).to_line();
        let desc = Row::parse_line(&line).expect("parse").description;
        assert_eq!(desc.chars().count(), MAX_DESCRIPTION);
        assert!(desc.ends_with('…'));
    }

    #[test]
    fn parse_rejects_malformed_lines() {
        assert!(Row::parse_line("1\tabc\t2\t0\t-\tkeep").is_err());
        assert!(Row::parse_line("x\tabc\t2\t0\t-\tkeep\td").is_err());
        assert!(Row::parse_line("1\tabc\tNaN\t0\t-\tkeep\td").is_err());
        assert!(Row::parse_line("1\tabc\t2\t0\t-\twon\td").is_err());
    }

    #[test]
    fn every_status_round_trips() {
        for st in Status::ALL {
            assert_eq!(st.as_str().parse::<Status>(), Ok(st));
        }
    }

    #[test]
    fn meta_lines_encode_multiline_values_as_json() {
        assert_eq!(meta_line("goal", "fewer bugs"), "# goal: fewer bugs");
        let encoded = meta_line("verify", "python3 - <<'PY'\nprint(1)\nPY");
        assert_eq!(
            encoded,
            "# verify: json:\"python3 - <<'PY'\\nprint(1)\\nPY\""
        );
        assert_eq!(
            parse_meta_line(&encoded),
            Some(("verify".into(), "python3 - <<'PY'\nprint(1)\nPY".into()))
        );
        assert_eq!(
            parse_meta_line("# mode: loop"),
            Some(("mode".into(), "loop".into()))
        );
        assert_eq!(parse_meta_line("# just a comment"), None);
    }
}
