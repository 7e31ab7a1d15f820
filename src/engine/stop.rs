//! The stop-condition grammar (the reference's words and operators), parsed once at start and
//! evaluated against the retained metric. Pure.

use regex::Regex;

use super::Direction;

/// A comparison the retained metric is tested against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    Eq,
    Le,
    Ge,
    Lt,
    Gt,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Le => "<=",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Gt => ">",
        }
    }
}

/// A parsed stop condition: `metric <op> target`.
#[derive(Clone, Debug, PartialEq)]
pub struct StopCondition {
    pub op: Op,
    pub target: f64,
}

impl StopCondition {
    /// Returns true when the retained metric satisfies the condition.
    pub fn satisfied(&self, metric: f64) -> bool {
        match self.op {
            Op::Eq => (metric - self.target).abs() < 1e-9,
            Op::Le => metric <= self.target,
            Op::Ge => metric >= self.target,
            Op::Lt => metric < self.target,
            Op::Gt => metric > self.target,
        }
    }

    /// Returns the normal form, e.g. `metric <= 0.5`.
    pub fn describe(&self) -> String {
        format!(
            "metric {} {}",
            self.op.symbol(),
            super::number::canonical(self.target)
        )
    }
}

/// The whole number token (`1e-3`, `2.5`, and `1,000` too, so that it is refused rather than
/// read as `1`); a trailing `.` or `,` ends the sentence, not the number.
const NUMBER: &str = r"(-?[0-9.][0-9.,e+-]*)";
const WORDS: [&str; 11] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
];

/// Parses a stop condition such as `metric <= 0.5`, `below 10`, `at least 90`, `reaches zero`.
///
/// `names` are extra words that refer to the metric (its name, the primary JSON key).
pub fn parse(text: &str, names: &[&str], direction: Direction) -> Result<StopCondition, String> {
    let mut s = text
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for (digit, word) in WORDS.iter().enumerate() {
        let re = Regex::new(&format!(r"\b{word}\b")).map_err(|e| e.to_string())?;
        s = re.replace_all(&s, digit.to_string().as_str()).into_owned();
    }
    let mut refs = vec!["metric".to_string()];
    for name in names {
        let n = name.trim().to_lowercase();
        if !n.is_empty() {
            let words: Vec<String> = n.split_whitespace().map(regex::escape).collect();
            refs.push(words.join(r"\s+"));
        }
    }
    let reference = format!(r"(?:current\s+)?(?:{})", refs.join("|"));
    let reach = if direction == Direction::Lower {
        Op::Le
    } else {
        Op::Ge
    };
    let patterns: Vec<(String, Op)> = vec![
        (format!(r"{reference}\s*(?:==|=)\s*{NUMBER}"), Op::Eq),
        (format!(r"{reference}\s*(?:<=|=<)\s*{NUMBER}"), Op::Le),
        (format!(r"{reference}\s*(?:>=|=>)\s*{NUMBER}"), Op::Ge),
        (format!(r"{reference}\s*<\s*{NUMBER}"), Op::Lt),
        (format!(r"{reference}\s*>\s*{NUMBER}"), Op::Gt),
        (format!(r"(?:<=|=<)\s*{NUMBER}"), Op::Le),
        (format!(r"(?:>=|=>)\s*{NUMBER}"), Op::Ge),
        (format!(r"<\s*{NUMBER}"), Op::Lt),
        (format!(r">\s*{NUMBER}"), Op::Gt),
        (
            format!(r"\b(?:at most|no more than|up to)\s+{NUMBER}"),
            Op::Le,
        ),
        (format!(r"\b(?:at least|no less than)\s+{NUMBER}"), Op::Ge),
        (format!(r"\b(?:below|under|less than)\s+{NUMBER}"), Op::Lt),
        (
            format!(r"\b(?:above|over|greater than|more than)\s+{NUMBER}"),
            Op::Gt,
        ),
        (format!(r"\b(?:equals?|exactly|is)\s+{NUMBER}"), Op::Eq),
        (
            format!(r"\b(?:reach|reaches|hit|hits|get to|gets to|down to)\s+{NUMBER}"),
            reach,
        ),
    ];
    for (pattern, op) in patterns {
        let re = Regex::new(&pattern).map_err(|e| e.to_string())?;
        if let Some(caps) = re.captures(&s) {
            let token = caps
                .get(1)
                .map_or("", |m| m.as_str().trim_end_matches(['.', ',']));
            let target = super::number::parse_metric(token).ok_or_else(|| {
                format!(
                    "cannot read the number `{token}` in `{text}` (write it like 0.5, 1000 or 1e-3)"
                )
            })?;
            return Ok(StopCondition { op, target });
        }
    }
    Err(format!(
        "cannot understand `{text}`; write e.g. `metric <= 0.5`, `below 10`, `at least 90` or `reaches 0`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> StopCondition {
        parse(text, &["todo_count", "test failures"], Direction::Lower).expect(text)
    }

    #[test]
    fn operators_with_a_metric_reference() {
        assert_eq!(
            p("metric <= 0.5"),
            StopCondition {
                op: Op::Le,
                target: 0.5
            }
        );
        assert_eq!(
            p("metric == 0"),
            StopCondition {
                op: Op::Eq,
                target: 0.0
            }
        );
        assert_eq!(
            p("metric = 3"),
            StopCondition {
                op: Op::Eq,
                target: 3.0
            }
        );
        assert_eq!(
            p("current metric >= 90"),
            StopCondition {
                op: Op::Ge,
                target: 90.0
            }
        );
        assert_eq!(
            p("todo_count == 0"),
            StopCondition {
                op: Op::Eq,
                target: 0.0
            }
        );
        assert_eq!(
            p("test   failures < 2"),
            StopCondition {
                op: Op::Lt,
                target: 2.0
            }
        );
        assert_eq!(
            p("metric =< -1.5"),
            StopCondition {
                op: Op::Le,
                target: -1.5
            }
        );
        assert_eq!(
            p("metric > .5"),
            StopCondition {
                op: Op::Gt,
                target: 0.5
            }
        );
    }

    #[test]
    fn words() {
        assert_eq!(
            p("below 10"),
            StopCondition {
                op: Op::Lt,
                target: 10.0
            }
        );
        assert_eq!(
            p("under 3"),
            StopCondition {
                op: Op::Lt,
                target: 3.0
            }
        );
        assert_eq!(
            p("at least 90"),
            StopCondition {
                op: Op::Ge,
                target: 90.0
            }
        );
        assert_eq!(
            p("no more than 4"),
            StopCondition {
                op: Op::Le,
                target: 4.0
            }
        );
        assert_eq!(
            p("greater than 7"),
            StopCondition {
                op: Op::Gt,
                target: 7.0
            }
        );
        assert_eq!(
            p("exactly 2"),
            StopCondition {
                op: Op::Eq,
                target: 2.0
            }
        );
        assert_eq!(
            p("stop when metric reaches zero"),
            StopCondition {
                op: Op::Le,
                target: 0.0
            }
        );
        assert_eq!(
            p("reaches ten"),
            StopCondition {
                op: Op::Le,
                target: 10.0
            }
        );
        assert_eq!(
            p("Gets to Five"),
            StopCondition {
                op: Op::Le,
                target: 5.0
            }
        );
        assert_eq!(
            p("<= 1"),
            StopCondition {
                op: Op::Le,
                target: 1.0
            }
        );
    }

    #[test]
    fn reaches_follows_the_direction() {
        let c = parse("reaches 90", &[], Direction::Higher).expect("parse");
        assert_eq!(
            c,
            StopCondition {
                op: Op::Ge,
                target: 90.0
            }
        );
        assert!(c.satisfied(90.0) && c.satisfied(95.0) && !c.satisfied(89.9));
    }

    #[test]
    fn words_inside_other_words_do_not_count() {
        // "this 3" must not read as "is 3"; the later "is fine" has no number.
        assert!(parse("this 3", &[], Direction::Lower).is_err());
        assert!(parse("someone", &[], Direction::Lower).is_err());
    }

    #[test]
    fn unparseable_conditions_are_errors() {
        let e = parse("when it feels fast", &[], Direction::Lower).unwrap_err();
        assert!(e.contains("cannot understand"));
    }

    #[test]
    fn numbers_are_read_whole() {
        assert_eq!(p("metric <= 1e-3").target, 0.001);
        assert_eq!(p("< 2.5e2").target, 250.0);
        assert_eq!(p("below 10.").target, 10.0);
        assert_eq!(p("below 10, then stop").target, 10.0);
        assert_eq!(p("metric <= -0.5").target, -0.5);
        for bad in ["below 1,000", "metric <= 1e", "below 1.2.3"] {
            let e = parse(bad, &[], Direction::Lower).unwrap_err();
            assert!(e.contains("cannot read the number"), "{bad}: {e}");
        }
    }

    #[test]
    fn satisfaction() {
        assert!(p("metric <= 0.5").satisfied(0.5));
        assert!(!p("metric <= 0.5").satisfied(0.6));
        assert!(p("below 10").satisfied(9.99));
        assert!(!p("below 10").satisfied(10.0));
        assert!(p("metric == 0").satisfied(0.0));
        assert_eq!(p("below 10").describe(), "metric < 10");
    }
}
