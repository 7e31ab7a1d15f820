//! Failure reasons: the one line of a failing command's output that says what went wrong.

/// Returns the most telling line of a failure's output: for now the last non-empty line.
pub fn failure_line(output: &str) -> Option<String> {
    output
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
}
