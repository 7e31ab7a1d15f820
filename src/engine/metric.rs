//! Reading the metric out of verify output: scalar, metrics-json and regex formats. Pure.

use regex::Regex;

use super::number::parse_metric;

/// How verify prints its metric.
#[derive(Clone, Debug)]
pub enum MetricFormat {
    /// The last non-empty stdout line is a number.
    Scalar,
    /// The last non-empty stdout line is a JSON object; `key` picks the metric.
    MetricsJson { key: String },
    /// The first capture group of the last match of the regex in stdout.
    Regex(Regex),
}

fn last_line(stdout: &str) -> Option<&str> {
    stdout.lines().map(str::trim).rfind(|l| !l.is_empty())
}

fn clip(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(59).collect::<String>())
    } else {
        s.to_string()
    }
}

impl MetricFormat {
    /// Returns the metric of `--metric` `name` in `stdout`, or a short reason why there is none.
    /// The scalar format also reads a number with a unit and a `name: value` line, and says
    /// which format would read the output when it cannot. With `absent_is_zero` (fix mode, a
    /// verify that exited 0), a regex that matches nothing reads 0: the counted failures are gone.
    pub fn read(&self, stdout: &str, name: &str, absent_is_zero: bool) -> Result<f64, String> {
        use super::metric_forms::{named, suggest, with_unit};
        match self {
            MetricFormat::Scalar => self.extract(stdout).or_else(|why| {
                last_line(stdout)
                    .and_then(with_unit)
                    .or_else(|| named(stdout, name))
                    .ok_or_else(|| match suggest(stdout) {
                        Some(hint) => format!("{why}; {hint}"),
                        None => why,
                    })
            }),
            MetricFormat::Regex(re) if absent_is_zero && !re.is_match(stdout) => Ok(0.0),
            _ => self.extract(stdout),
        }
    }

    /// Returns the metric in `stdout`, or a short reason why there is none.
    pub fn extract(&self, stdout: &str) -> Result<f64, String> {
        match self {
            MetricFormat::Scalar => {
                let line = last_line(stdout).ok_or("verify printed nothing on stdout")?;
                parse_metric(line).ok_or_else(|| {
                    format!(
                        "last stdout line `{}` is not a finite number within ±1e300",
                        clip(line)
                    )
                })
            }
            MetricFormat::MetricsJson { key } => {
                let line = last_line(stdout).ok_or("verify printed nothing on stdout")?;
                let value: serde_json::Value = serde_json::from_str(line).map_err(|_| {
                    format!("last stdout line `{}` is not a JSON object", clip(line))
                })?;
                let obj = value.as_object().ok_or_else(|| {
                    format!("last stdout line `{}` is not a JSON object", clip(line))
                })?;
                let v = obj
                    .get(key)
                    .ok_or_else(|| format!("the JSON object has no key `{key}`"))?;
                v.as_f64()
                    .filter(|f| super::number::in_range(*f))
                    .ok_or_else(|| {
                        format!(
                            "`{key}` is `{}`, not a finite number within ±1e300",
                            clip(&v.to_string())
                        )
                    })
            }
            MetricFormat::Regex(re) => {
                let caps = re
                    .captures_iter(stdout)
                    .last()
                    .ok_or_else(|| format!("no match for /{}/ in stdout", re.as_str()))?;
                let text = caps.get(1).map(|m| m.as_str()).unwrap_or_default();
                parse_metric(text).ok_or_else(|| {
                    format!(
                        "captured `{}` is not a finite number within ±1e300",
                        clip(text)
                    )
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_reads_units_and_the_named_line_and_says_what_to_use() {
        let f = MetricFormat::Scalar;
        assert_eq!(f.read("42\n", "score", false), Ok(42.0));
        assert_eq!(f.read("bench\n12ms\n", "latency", false), Ok(12.0));
        assert_eq!(f.read("score: 0.93\nbye", "score", false), Ok(0.93));
        assert_eq!(f.read("SCORE=0.5", "score", false), Ok(0.5));
        let why = f.read("total: 0.93\ndone", "score", false).unwrap_err();
        assert!(why.contains("`done`"), "{why}");
        assert!(why.contains("--metric 'total'"), "{why}");
        let why = f
            .read("2 failed, 3 passed\n", "failures", true)
            .unwrap_err();
        assert!(
            why.contains(r"--verify-format regex --metric-regex '(\d+) failed'"),
            "{why}"
        );
    }

    #[test]
    fn a_regex_without_a_match_reads_zero_only_when_told() {
        let f = MetricFormat::Regex(Regex::new(r"(\d+) failed").unwrap());
        assert_eq!(f.read("3 failed, 1 passed", "failures", true), Ok(3.0));
        assert_eq!(f.read("4 passed", "failures", true), Ok(0.0));
        assert!(f.read("4 passed", "failures", false).is_err());
        let g = MetricFormat::Regex(Regex::new(r"failed: (\w+)").unwrap());
        assert!(
            g.read("failed: many", "failures", true).is_err(),
            "a match is read"
        );
    }

    #[test]
    fn scalar_uses_the_last_non_empty_line() {
        let f = MetricFormat::Scalar;
        assert_eq!(f.extract("running...\n42\n\n"), Ok(42.0));
        assert_eq!(f.extract("  3.25  "), Ok(3.25));
        assert!(f.extract("42\ndone").unwrap_err().contains("`done`"));
        assert!(f.extract("").unwrap_err().contains("nothing"));
        assert!(f.extract("NaN").is_err());
        assert!(f.extract("inf").is_err());
    }

    #[test]
    fn metrics_json_picks_the_key() {
        let f = MetricFormat::MetricsJson {
            key: "latency_ms".into(),
        };
        assert_eq!(
            f.extract("log line\n{\"latency_ms\": 12.5, \"ok\": true}\n"),
            Ok(12.5)
        );
        assert!(
            f.extract("{\"other\": 1}")
                .unwrap_err()
                .contains("no key `latency_ms`")
        );
        assert!(
            f.extract("{\"latency_ms\": \"fast\"}")
                .unwrap_err()
                .contains("not a finite number")
        );
        assert!(
            f.extract("[1,2]")
                .unwrap_err()
                .contains("not a JSON object")
        );
        assert!(f.extract("{\"latency_ms\": 1}\ntrailing").is_err());
    }

    #[test]
    fn regex_uses_the_first_group_of_the_last_match() {
        let f = MetricFormat::Regex(Regex::new(r"score: ([0-9.]+)").unwrap());
        assert_eq!(f.extract("score: 1\nscore: 2.5\nbye"), Ok(2.5));
        assert!(f.extract("nothing here").unwrap_err().contains("no match"));
        let g = MetricFormat::Regex(Regex::new(r"score: (\w+)").unwrap());
        assert!(
            g.extract("score: fast")
                .unwrap_err()
                .contains("not a finite number")
        );
    }
}
