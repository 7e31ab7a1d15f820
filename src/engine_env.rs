//! The engine's tuning variables (`AUTORESEARCH_MIN_FREE_MB`, `AUTORESEARCH_QUOTA_BACKOFF`,
//! `AUTORESEARCH_LOG_CAP`), read and checked once per run: a value that does not parse is a
//! usage error naming the variable, never silently replaced by the default.

use std::time::Duration;

use crate::config::whole_number;
use crate::error::{Error, Result};
use crate::process::{DEFAULT_LOG_CAP, MIN_LOG_CAP};

/// The free-disk threshold variable (megabytes).
pub const MIN_FREE_MB: &str = "AUTORESEARCH_MIN_FREE_MB";
/// The first wait after a rate limit (a duration).
pub const QUOTA_BACKOFF: &str = "AUTORESEARCH_QUOTA_BACKOFF";
/// The size limit of each log file under `autoresearch-results/engine/` (bytes, or with a K, M or G suffix).
pub const LOG_CAP: &str = "AUTORESEARCH_LOG_CAP";

/// Default free-disk threshold in megabytes.
pub const DEFAULT_MIN_FREE_MB: u64 = 500;
/// Default first wait after a rate limit.
pub const DEFAULT_QUOTA_BACKOFF: Duration = Duration::from_secs(30);

/// The engine's tuning variables, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineEnv {
    /// Below this many megabytes free on the repository's disk the run stops (a hard blocker).
    pub min_free_mb: u64,
    /// The first wait after a rate limit (doubled on every retry).
    pub quota_backoff: Duration,
    /// Each log file of an agent, verify or guard run is cut to about this many bytes.
    pub log_cap: u64,
}

impl Default for EngineEnv {
    fn default() -> EngineEnv {
        EngineEnv {
            min_free_mb: DEFAULT_MIN_FREE_MB,
            quota_backoff: DEFAULT_QUOTA_BACKOFF,
            log_cap: DEFAULT_LOG_CAP,
        }
    }
}

/// Reads the engine's tuning variables from the process environment.
pub fn engine_env() -> Result<EngineEnv> {
    // A value that is not Unicode is shown lossily and refused like any other bad value.
    EngineEnv::from_lookup(|k| {
        std::env::var_os(k).map(|v| match v.into_string() {
            Ok(s) => s,
            Err(raw) => format!("{} (not UTF-8)", raw.to_string_lossy()),
        })
    })
}

fn refuse(var: &str, value: &str, what: &str, example: &str) -> Error {
    Error::Usage(format!(
        "{var}={value} is not {what}; unset it or give e.g. {example}"
    ))
}

/// Parses a byte size: a whole number, optionally followed by K, M or G (binary: KiB, MiB, GiB;
/// `KB`, `MB`, `GB` mean the same).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if digits == 0 {
        return None;
    }
    let n: u64 = t[..digits].parse().ok()?;
    let shift = match t[digits..].trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

impl EngineEnv {
    /// Reads the variables through `get`; an unset or blank variable keeps its default.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<EngineEnv> {
        let mut env = EngineEnv::default();
        let value = |var: &str| get(var).filter(|v| !v.trim().is_empty());
        if let Some(v) = value(MIN_FREE_MB) {
            env.min_free_mb = whole_number(&v)
                .map_err(|_| refuse(MIN_FREE_MB, &v, "a whole number of megabytes", "500"))?;
        }
        if let Some(v) = value(QUOTA_BACKOFF) {
            env.quota_backoff = crate::duration::parse(&v)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| refuse(QUOTA_BACKOFF, &v, "a duration above zero", "30s"))?;
        }
        if let Some(v) = value(LOG_CAP) {
            env.log_cap = parse_size(&v)
                .filter(|n| *n >= MIN_LOG_CAP)
                .ok_or_else(|| {
                    refuse(
                        LOG_CAP,
                        &v,
                        "a size of at least 1M (bytes, or with a K, M or G suffix)",
                        "8M",
                    )
                })?;
        }
        Ok(env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<EngineEnv> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EngineEnv::from_lookup(move |k| {
            pairs
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.clone())
        })
    }

    fn message(pairs: &[(&str, &str)]) -> String {
        let e = with(pairs).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::BLOCKED);
        assert!(matches!(e, Error::Usage(_)), "{e:?}");
        e.to_string()
    }

    #[test]
    fn unset_and_blank_variables_keep_the_defaults() {
        assert_eq!(with(&[]).unwrap(), EngineEnv::default());
        let blank = with(&[(MIN_FREE_MB, " "), (QUOTA_BACKOFF, ""), (LOG_CAP, "\t")]).unwrap();
        assert_eq!(blank, EngineEnv::default());
        assert_eq!(EngineEnv::default().min_free_mb, 500);
        assert_eq!(EngineEnv::default().quota_backoff, Duration::from_secs(30));
        assert_eq!(EngineEnv::default().log_cap, 8 << 20);
    }

    #[test]
    fn good_values_are_read() {
        let env = with(&[
            (MIN_FREE_MB, " 0 "),
            (QUOTA_BACKOFF, "1m30s"),
            (LOG_CAP, "64M"),
        ])
        .unwrap();
        assert_eq!(env.min_free_mb, 0);
        assert_eq!(env.quota_backoff, Duration::from_secs(90));
        assert_eq!(env.log_cap, 64 << 20);
        assert_eq!(with(&[(LOG_CAP, "2000000")]).unwrap().log_cap, 2_000_000);
    }

    #[test]
    fn a_bad_value_is_a_usage_error_naming_the_variable_and_the_value() {
        assert_eq!(
            message(&[(MIN_FREE_MB, "lots")]),
            "AUTORESEARCH_MIN_FREE_MB=lots is not a whole number of megabytes; unset it or give e.g. 500"
        );
        for bad in ["-5", "1.5", "500MB", "99999999999999999999999"] {
            let m = message(&[(MIN_FREE_MB, bad)]);
            assert!(m.starts_with(&format!("{MIN_FREE_MB}={bad} is not")), "{m}");
        }
        assert_eq!(
            message(&[(QUOTA_BACKOFF, "xyz")]),
            "AUTORESEARCH_QUOTA_BACKOFF=xyz is not a duration above zero; unset it or give e.g. 30s"
        );
        for bad in ["30", "0s", "-1s", "5 minutes"] {
            let m = message(&[(QUOTA_BACKOFF, bad)]);
            assert!(
                m.starts_with(&format!("{QUOTA_BACKOFF}={bad} is not")),
                "{m}"
            );
        }
        for bad in ["big", "512K", "1T", "8.5M", "-8M", "99999999999G"] {
            let m = message(&[(LOG_CAP, bad)]);
            assert!(m.starts_with(&format!("{LOG_CAP}={bad} is not")), "{m}");
            assert!(m.contains("e.g. 8M"), "{m}");
        }
    }

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("8M"), Some(8 << 20));
        assert_eq!(parse_size("8 MiB"), Some(8 << 20));
        assert_eq!(parse_size("3k"), Some(3 << 10));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("42"), Some(42));
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size("8MB"), Some(8 << 20));
        assert_eq!(parse_size("8MX"), None);
        assert_eq!(parse_size("-8M"), None);
    }
}
