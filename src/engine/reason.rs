//! Which line of a failed command's output says why it failed: the first error-looking line of a
//! guard's output (not the runtime's version banner), and the last meaningful line of an agent's
//! output (not a progress bar). Pure text in, one line out.

/// Removes ANSI escape sequences (colours, cursor moves) from `line`.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            // CSI: parameters and intermediates up to a final byte in `@`..=`~`.
            for f in chars.by_ref() {
                if ('@'..='~').contains(&f) {
                    break;
                }
            }
        } else {
            chars.next();
        }
    }
    out
}

/// Splits output into lines; a carriage return (progress output redrawing itself) also ends one.
fn raw_lines(output: &str) -> impl DoubleEndedIterator<Item = &str> {
    output.split(['\n', '\r'])
}

/// Returns a line without colours, trimmed.
fn shown(raw: &str) -> String {
    strip_ansi(raw).trim().to_string()
}

/// Returns a line without the rules and arrows around it (`--- FAIL: x`, `____ ERROR x ____`).
fn undecorated(t: &str) -> &str {
    t.trim_matches(|c: char| "=_-*!#>".contains(c) || c.is_whitespace())
}

/// Collapses runs of whitespace to one space.
fn squeeze(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// True for a line without a single word: dots, percentages, counters, spinners, progress bars
/// such as `[####    ] 45%` or `⠋ 12/40`.
pub fn is_progress_line(line: &str) -> bool {
    !line.chars().any(char::is_alphabetic)
}

/// True for a runtime's or test runner's banner: versions, platform and session headers.
fn is_banner(line: &str) -> bool {
    let low = line.to_ascii_lowercase();
    const STARTS: &[&str] = &[
        "platform ",
        "python ",
        "node.js v",
        "node v",
        "rootdir:",
        "cachedir:",
        "configfile:",
        "plugins:",
        "collected ",
        "collecting ",
        "rustc ",
        "cargo ",
        "go version ",
    ];
    STARTS.iter().any(|s| low.starts_with(s)) || low.contains("test session starts")
}

/// Returns the last line of `output` that carries words (not blank, not a progress line).
pub fn last_meaningful_line(output: &str) -> Option<String> {
    raw_lines(output)
        .rev()
        .map(shown)
        .find(|l| !l.is_empty() && !is_progress_line(l))
        .map(|l| squeeze(&l))
}

/// The first word of `t` names an exception or error type (`TypeError`, `AssertionError`,
/// `java.io.IOException`) and is followed by `:` or a `[CODE]`, or stands alone.
fn is_exception_line(t: &str) -> bool {
    let Some(first) = t.split_whitespace().next() else {
        return false;
    };
    let name = first.strip_suffix(':').unwrap_or(first);
    let typed = ["Error", "Exception", "Failure"]
        .iter()
        .any(|s| name.len() > s.len() && name.ends_with(s))
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '$');
    let rest = t[first.len()..].trim_start();
    typed && (first.ends_with(':') || rest.is_empty() || rest.starts_with('['))
}

/// A rule code at the start of a lint diagnostic: `F401`, `E501`, `PLR2004`, `UP006`.
fn is_rule_code(word: &str) -> bool {
    let letters = word.chars().take_while(char::is_ascii_uppercase).count();
    let digits = word[letters..]
        .chars()
        .take_while(char::is_ascii_digit)
        .count();
    (1..=3).contains(&letters) && (3..=4).contains(&digits) && letters + digits == word.len()
}

/// A lint diagnostic: `path:line:col: CODE message` (ruff, flake8) or `CODE message` followed
/// by its location (newer ruff).
fn is_lint_line(t: &str) -> bool {
    let mut words = t.split_whitespace();
    let (Some(first), second) = (words.next(), words.next()) else {
        return false;
    };
    if is_rule_code(first) {
        return second.is_some();
    }
    let loc: Vec<&str> = first.trim_end_matches(':').rsplitn(3, ':').collect();
    loc.len() == 3
        && loc[0].parse::<u32>().is_ok()
        && loc[1].parse::<u32>().is_ok()
        && second.is_some_and(is_rule_code)
}

/// Lines that name an error: pytest's `E   ...`, exceptions, `error:`/`error[E0308]:`, compiler
/// and type-checker diagnostics, panics, ESLint's `3:7  error  ...`.
fn is_error_line(raw: &str, t: &str) -> bool {
    let low = t.to_ascii_lowercase();
    let starts = |p: &str| low.starts_with(p);
    let mut words = t.split_whitespace();
    let eslint = words.next().is_some_and(|w| {
        w.split_once(':')
            .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok())
    }) && words.next() == Some("error");
    (raw.starts_with("E  ") && t.len() > 1)
        || is_exception_line(t)
        || starts("error:")
        || starts("error[")
        || starts("fatal:")
        || starts("fatal error")
        || starts("panic:")
        || low.contains(": error:")
        || low.contains(": error ")
        || low.contains("): error ")
        || low.contains(": fatal error")
        || low.contains("panicked at")
        || eslint
}

/// Lines that mark a failure without saying much: `FAILED ...`, `FAIL ...`, `ERROR ...`,
/// `not ok ...`, `test x ... FAILED`, lint diagnostics.
fn is_failure_marker(t: &str) -> bool {
    let t = undecorated(t);
    [
        "FAILED", "FAIL ", "FAIL:", "ERROR ", "ERROR:", "Error ", "not ok ",
    ]
    .iter()
    .any(|p| t.starts_with(p))
        || t.ends_with(" FAILED")
        || is_lint_line(t)
}

/// Returns the line of a failed command's `output` that best says why: the first line that
/// names an error (pytest `E` lines first), else the first failure marker, else the last line
/// with words that is not a version or session banner; `None` when there is no such line. A
/// line ending in `:` takes the next non-empty line with it (`panicked at src/lib.rs:3:5:` and
/// its message).
pub fn failure_line(output: &str) -> Option<String> {
    let lines: Vec<(&str, String)> = raw_lines(output).map(|raw| (raw, shown(raw))).collect();
    let pytest = |(raw, t): &(&str, String)| raw.starts_with("E  ") && t.len() > 1;
    let error = |(raw, t): &(&str, String)| is_error_line(raw, t);
    let marker = |(_, t): &(&str, String)| is_failure_marker(t);
    let at = lines
        .iter()
        .position(pytest)
        .or_else(|| lines.iter().position(error))
        .map(|i| (i, lines[i].1.as_str()))
        .or_else(|| {
            let i = lines.iter().position(marker)?;
            Some((i, undecorated(&lines[i].1)))
        });
    let Some((i, line)) = at else {
        return lines
            .iter()
            .rev()
            .map(|(_, t)| t)
            .find(|t| !t.is_empty() && !is_progress_line(t) && !is_banner(t))
            .map(|t| squeeze(t));
    };
    let next = lines[i + 1..]
        .iter()
        .map(|(_, t)| t)
        .find(|t| !t.is_empty());
    Some(match next {
        Some(n) if line.ends_with(':') && !is_error_line("", n) => squeeze(&format!("{line} {n}")),
        _ => squeeze(line),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(output: &str) -> String {
        failure_line(output).unwrap_or_default()
    }

    #[test]
    fn pytest_assertion_picks_the_e_line_not_the_banner() {
        let out = "\
============================= test session starts ==============================
platform linux -- Python 3.11.2, pytest-8.2.0, pluggy-1.5.0
rootdir: /repo
collected 2 items

test_calc.py .F                                                          [100%]

=================================== FAILURES ===================================
___________________________________ test_add ___________________________________

    def test_add():
>       assert add(1, 2) == 4
E       assert 3 == 4
E        +  where 3 = add(1, 2)

test_calc.py:5: AssertionError
=========================== short test summary info ============================
FAILED test_calc.py::test_add - assert 3 == 4
========================= 1 failed, 1 passed in 0.03s ==========================
";
        assert_eq!(pick(out), "E assert 3 == 4");
    }

    #[test]
    fn pytest_collection_error_picks_the_missing_module() {
        let out = "\
============================= test session starts ==============================
platform linux -- Python 3.11.2, pytest-8.2.0, pluggy-1.5.0
rootdir: /repo
collected 0 items / 1 error

==================================== ERRORS ====================================
________________________ ERROR collecting test_calc.py _________________________
ImportError while importing test module '/repo/test_calc.py'.
Hint: make sure your test modules/packages have valid Python names.
Traceback:
test_calc.py:1: in <module>
    from calc import add
E   ModuleNotFoundError: No module named 'calc'
=========================== short test summary info ============================
ERROR test_calc.py
!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!
=============================== 1 error in 0.05s ===============================
";
        assert_eq!(pick(out), "E ModuleNotFoundError: No module named 'calc'");
    }

    #[test]
    fn unittest_and_plain_python_pick_the_exception() {
        let out = "\
F
======================================================================
FAIL: test_add (test_calc.TestCalc.test_add)
----------------------------------------------------------------------
Traceback (most recent call last):
  File \"/repo/test_calc.py\", line 6, in test_add
    self.assertEqual(add(1, 2), 4)
AssertionError: 3 != 4

----------------------------------------------------------------------
Ran 1 test in 0.000s

FAILED (failures=1)
";
        assert_eq!(pick(out), "AssertionError: 3 != 4");
        let out = "Python 3.11.2\nTraceback (most recent call last):\n  File \"t.py\", line 1, in <module>\n    1 + 'a'\nTypeError: unsupported operand type(s) for +: 'int' and 'str'\n";
        assert_eq!(
            pick(out),
            "TypeError: unsupported operand type(s) for +: 'int' and 'str'"
        );
    }

    #[test]
    fn node_crash_picks_the_error_not_the_version_line() {
        let out = "\
/repo/index.js:3
  return a.b.c;
             ^

TypeError: Cannot read properties of undefined (reading 'c')
    at add (/repo/index.js:3:14)
    at Object.<anonymous> (/repo/test.js:2:1)
    at Module._compile (node:internal/modules/cjs/loader:1256:14)

Node.js v20.11.0
";
        assert_eq!(
            pick(out),
            "TypeError: Cannot read properties of undefined (reading 'c')"
        );
    }

    #[test]
    fn node_test_runner_assertion_takes_its_message_line() {
        let out = "\
\u{2716} adds numbers (1.2ms)
  AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:

  3 !== 4

      at TestContext.<anonymous> (/repo/test.js:5:10)
\u{2139} tests 1
\u{2139} pass 0
\u{2139} fail 1
";
        assert_eq!(
            pick(out),
            "AssertionError [ERR_ASSERTION]: Expected values to be strictly equal: 3 !== 4"
        );
    }

    #[test]
    fn cargo_test_picks_the_panic_with_its_message() {
        let out = "\
   Compiling calc v0.1.0 (/repo)
    Finished `test` profile [unoptimized + debuginfo] target(s) in 0.52s
     Running unittests src/lib.rs (target/debug/deps/calc-1f2e3d4c5b6a7980)

running 2 tests
test tests::a ... ok
test tests::b ... FAILED

failures:

---- tests::b stdout ----

thread 'tests::b' panicked at src/lib.rs:10:9:
assertion `left == right` failed
  left: 1
 right: 2
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace


failures:
    tests::b

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

error: test failed, to rerun pass `--lib`
";
        assert_eq!(
            pick(out),
            "thread 'tests::b' panicked at src/lib.rs:10:9: assertion `left == right` failed"
        );
    }

    #[test]
    fn cargo_build_picks_the_error_not_the_warning() {
        let out = "\
   Compiling calc v0.1.0 (/repo)
warning: unused variable: `x`
 --> src/lib.rs:2:9
  |
2 |     let x = 1;
  |         ^ help: if this is intentional, prefix it with an underscore: `_x`

error[E0308]: mismatched types
 --> src/lib.rs:3:5
  |
3 |     \"a\"
  |     ^^^ expected `i32`, found `&str`

error: could not compile `calc` (lib) due to 1 previous error; 1 warning emitted
";
        assert_eq!(pick(out), "error[E0308]: mismatched types");
    }

    #[test]
    fn ruff_both_formats_pick_the_diagnostic() {
        let concise = "calc.py:1:8: F401 [*] `os` imported but unused\nFound 1 error.\n[*] 1 fixable with the `--fix` option.\n";
        assert_eq!(
            pick(concise),
            "calc.py:1:8: F401 [*] `os` imported but unused"
        );
        let full = "\
F401 [*] `os` imported but unused
 --> calc.py:1:8
  |
1 | import os
  |        ^^
  |
help: Remove unused import: `os`

Found 1 error.
[*] 1 fixable with the `--fix` option.
";
        assert_eq!(pick(full), "F401 [*] `os` imported but unused");
    }

    #[test]
    fn type_checkers_and_eslint_pick_the_error() {
        let mypy = "calc.py:4: error: Incompatible return value type (got \"str\", expected \"int\")  [return-value]\nFound 1 error in 1 file (checked 2 source files)\n";
        assert_eq!(
            pick(mypy),
            "calc.py:4: error: Incompatible return value type (got \"str\", expected \"int\") [return-value]"
        );
        let tsc = "src/index.ts(3,7): error TS2322: Type 'string' is not assignable to type 'number'.\n\nFound 1 error in src/index.ts:3\n";
        assert_eq!(
            pick(tsc),
            "src/index.ts(3,7): error TS2322: Type 'string' is not assignable to type 'number'."
        );
        let eslint = "\n/repo/src/index.js\n  3:7  error  'x' is assigned a value but never used  no-unused-vars\n\n\u{2716} 1 problem (1 error, 0 warnings)\n";
        assert_eq!(
            pick(eslint),
            "3:7 error 'x' is assigned a value but never used no-unused-vars"
        );
    }

    #[test]
    fn failure_markers_come_after_errors_and_before_the_fallback() {
        let go = "--- FAIL: TestAdd (0.00s)\n    calc_test.go:8: add(1, 2) = 3, want 4\nFAIL\nFAIL\texample.com/calc\t0.002s\nFAIL\n";
        assert_eq!(pick(go), "FAIL: TestAdd (0.00s)");
        assert_eq!(
            pick("ok 1 - a\nnot ok 2 - adds\n# fail 1\n"),
            "not ok 2 - adds"
        );
    }

    #[test]
    fn without_an_error_line_the_last_line_with_words_that_is_no_banner() {
        assert_eq!(
            pick("Python 3.11.2\n3 checks, 1 bad\n\n"),
            "3 checks, 1 bad"
        );
        assert_eq!(pick("checking\n....\n45%\n"), "checking");
        assert_eq!(failure_line("Python 3.11.2\nNode.js v20.11.0\n"), None);
        assert_eq!(failure_line(""), None);
        // Colours and carriage-return redraws are what a terminal shows.
        assert_eq!(
            pick("\u{1b}[31merror:\u{1b}[0m bad config\n"),
            "error: bad config"
        );
        assert_eq!(pick("10%\r50%\rfailed to fetch\r\n"), "failed to fetch");
    }

    #[test]
    fn words_that_merely_contain_error_do_not_count() {
        let out = "error_count = 0\nno errors found in test_errors.py\nlast line\n";
        assert_eq!(pick(out), "last line");
        assert!(!is_exception_line(
            "ImportError while importing test module"
        ));
        assert!(is_exception_line("AssertionError"));
        assert!(is_exception_line("java.lang.IllegalStateException: closed"));
    }

    #[test]
    fn progress_lines_have_no_words() {
        for l in [
            "....",
            "45%",
            "[####      ] 45%",
            "\u{280b} 12/40",
            "=====>",
        ] {
            assert!(is_progress_line(l), "{l}");
        }
        for l in ["Error: boom", "fatal: model refused", "done."] {
            assert!(!is_progress_line(l), "{l}");
        }
    }

    #[test]
    fn the_last_meaningful_line_skips_progress_and_redraws() {
        assert_eq!(
            last_meaningful_line("Error: API key rejected\n....\n[####    ] 45%\n\n").as_deref(),
            Some("Error: API key rejected")
        );
        assert_eq!(
            last_meaningful_line("starting\r10%\r20%\n").as_deref(),
            Some("starting")
        );
        assert_eq!(last_meaningful_line("...\n45%\n"), None);
    }
}
