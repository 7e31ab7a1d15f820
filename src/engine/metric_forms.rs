//! The forms the default (scalar) format reads besides a bare number: a number with a unit
//! (`12ms`, `93 %`), a `name: value` / `name=value` line naming `--metric`; and, when nothing can
//! be read, the `--verify-format regex` that would read the output. Pure.

use std::sync::LazyLock;

use regex::Regex;

use super::number::parse_metric;

/// The units a number may carry on its own line (the unit is dropped: the metric is the number
/// as printed).
const UNITS: &str = r"ns|us|µs|μs|ms|s|sec|secs|seconds|m|min|mins|h|%|B|b|KB|kB|KiB|MB|MiB|GB|GiB|TB|TiB|x|ops/s|req/s|it/s|rps|qps|[kKMG]?B/s";

/// A number, optionally followed by a unit, alone on its text.
static WITH_UNIT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"^([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(?:{UNITS})?$"
    ))
    .expect("valid unit regex")
});

/// A `label: number` or `label=number` line (an optional unit after the number).
static LABELLED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*([A-Za-z_][\w .\-/]*?)\s*[:=]\s*(\S+(?:\s+\S+)?)\s*$").expect("valid regex")
});

/// A count followed by a word (`3 failed`, `12 errors`).
static COUNTED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(\d+) ([A-Za-z]+)\b").expect("valid regex"));

/// Reads `text` as a number with an optional unit (`12ms`, `1.5 s`, `93%`).
pub fn with_unit(text: &str) -> Option<f64> {
    let caps = WITH_UNIT.captures(text.trim())?;
    parse_metric(&caps[1])
}

/// Reads the last `name: value` / `name=value` line of `stdout` whose name is `metric`
/// (case-insensitive); the value may carry a unit.
pub fn named(stdout: &str, metric: &str) -> Option<f64> {
    let metric = metric.trim();
    if metric.is_empty() {
        return None;
    }
    stdout.lines().rev().find_map(|line| {
        let caps = LABELLED.captures(line)?;
        caps[1]
            .trim()
            .eq_ignore_ascii_case(metric)
            .then(|| with_unit(&caps[2]))
            .flatten()
    })
}

/// Quotes `s` for a POSIX shell (single quotes).
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Returns what to pass so that `stdout` can be read: `--metric <label>` when a line reads
/// `label: value`, else a `--verify-format regex --metric-regex` built from the last line that
/// holds a labelled number or a count (`3 failed`); `None` when nothing looks like a metric.
pub fn suggest(stdout: &str) -> Option<String> {
    for line in stdout.lines().rev() {
        if let Some(caps) = LABELLED.captures(line)
            && with_unit(&caps[2]).is_some()
        {
            let label = caps[1].trim();
            return Some(format!(
                "use --metric {} (the name on the `{label}: ...` line), or --verify-format regex --metric-regex {}",
                shell_quote(label),
                shell_quote(&format!(r"{}\s*[:=]\s*([-+0-9.eE]+)", regex::escape(label)))
            ));
        }
    }
    for line in stdout.lines().rev() {
        if let Some(caps) = COUNTED.captures(line) {
            return Some(format!(
                "use --verify-format regex --metric-regex {}",
                shell_quote(&format!(r"(\d+) {}", regex::escape(&caps[2])))
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_with_a_unit_are_read_as_printed() {
        assert_eq!(with_unit("12ms"), Some(12.0));
        assert_eq!(with_unit("1.5s"), Some(1.5));
        assert_eq!(with_unit("93%"), Some(93.0));
        assert_eq!(with_unit("12 ms"), Some(12.0));
        assert_eq!(with_unit(" 3.2 MB/s "), Some(3.2));
        assert_eq!(with_unit("-4e2 ns"), Some(-400.0));
        assert_eq!(with_unit("42"), Some(42.0));
        assert_eq!(with_unit("3 passed"), None, "a word is not a unit");
        assert_eq!(with_unit("12 ms total"), None);
        assert_eq!(with_unit("ms"), None);
        assert_eq!(with_unit("NaN ms"), None);
    }

    #[test]
    fn a_line_naming_the_metric_is_read() {
        assert_eq!(named("running\nscore: 0.93\ndone", "score"), Some(0.93));
        assert_eq!(named("Score=0.5", "score"), Some(0.5), "case-insensitive");
        assert_eq!(named("latency_ms = 12 ms", "LATENCY_MS"), Some(12.0));
        assert_eq!(
            named("score: 1\nscore: 2\n", "score"),
            Some(2.0),
            "the last"
        );
        assert_eq!(named("total score: 0.9", "score"), None, "the whole name");
        assert_eq!(named("other: 0.9", "score"), None);
        assert_eq!(named("score: fast", "score"), None);
        assert_eq!(named("score: 0.9", ""), None);
    }

    #[test]
    fn the_suggestion_is_built_from_the_output() {
        let s = suggest("Ran it\nTotal: 0.93\n").unwrap();
        assert!(s.contains("--metric 'Total'"), "{s}");
        assert!(
            s.contains(r"--metric-regex 'Total\s*[:=]\s*([-+0-9.eE]+)'"),
            "{s}"
        );
        let s = suggest("=== 3 failed, 10 passed in 0.1s ===").unwrap();
        assert_eq!(
            s,
            r"use --verify-format regex --metric-regex '(\d+) failed'"
        );
        assert_eq!(suggest("all good\n"), None);
        assert!(
            suggest("mean time: 1")
                .unwrap()
                .contains("--metric 'mean time'"),
            "shell-quoted"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
