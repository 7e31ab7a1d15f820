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
