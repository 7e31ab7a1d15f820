//! The pure engine: numbers, rows, the reducer, the iteration's step machine, the mode policies,
//! escalation and stop conditions.
//! Nothing here touches the filesystem, git or processes, so all of it is unit-tested directly.

pub mod checklist;
pub mod effect;
pub mod evaluator;
pub mod experiments;
pub mod findings;
pub mod fix_rules;
pub mod gates;
pub mod goal;
pub mod holdout;
pub mod metric;
pub mod metric_forms;
pub mod number;
pub mod policy;
pub mod readiness;
pub mod reason;
pub mod reducer;
pub mod row;
pub mod seq;
pub mod step;
pub mod stop;

use std::fmt;
use std::str::FromStr;

/// Returns up to eight paths joined by commas, then `and N more`.
pub fn list_paths(paths: &[String]) -> String {
    const SHOW: usize = 8;
    let mut s = paths
        .iter()
        .take(SHOW)
        .map(|p| crate::repopath::display(p).into_owned())
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > SHOW {
        s.push_str(&format!(" and {} more", paths.len() - SHOW));
    }
    s
}

/// The name of an interrupting signal (`SIGINT`, `SIGTERM`, `SIGHUP`), as rows and messages
/// give it.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        15 => "SIGTERM",
        1 => "SIGHUP",
        _ => "SIGINT",
    }
}

/// Which way the metric should move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Lower,
    Higher,
}

impl Direction {
    /// Returns true when `trial` is strictly better than `retained` (ties are not improvements).
    pub fn improves(self, trial: f64, retained: f64) -> bool {
        match self {
            Direction::Lower => trial < retained,
            Direction::Higher => trial > retained,
        }
    }

    /// Returns `lower` or `higher`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Lower => "lower",
            Direction::Higher => "higher",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Direction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "lower" => Ok(Direction::Lower),
            "higher" => Ok(Direction::Higher),
            other => Err(format!(
                "`{other}` is not a direction (use lower or higher)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_improvement_only() {
        assert!(Direction::Lower.improves(9.0, 10.0));
        assert!(!Direction::Lower.improves(10.0, 10.0));
        assert!(!Direction::Lower.improves(11.0, 10.0));
        assert!(Direction::Higher.improves(11.0, 10.0));
        assert!(!Direction::Higher.improves(10.0, 10.0));
    }

    #[test]
    fn listed_paths_show_bytes_that_are_not_utf8() {
        let paths = vec![
            "a.txt".to_string(),
            crate::repopath::decode(b"src/caf\xe9.txt"),
        ];
        assert_eq!(list_paths(&paths), "a.txt, src/caf\\xe9.txt");
    }

    #[test]
    fn direction_parses() {
        assert_eq!("Lower".parse::<Direction>(), Ok(Direction::Lower));
        assert!("down".parse::<Direction>().is_err());
    }
}
