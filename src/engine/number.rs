//! Metric numbers: parsing user text and the canonical decimal form used in the TSV.

/// The largest metric magnitude: differences of two metrics (and their rounding) stay finite.
pub const MAX_METRIC: f64 = 1e300;

/// Whether `v` can be a metric: finite and within [`MAX_METRIC`].
pub fn in_range(v: f64) -> bool {
    v.is_finite() && v.abs() <= MAX_METRIC
}

/// Parses a number as written in the results log: a plain decimal or scientific number, finite
/// (deltas may reach twice [`MAX_METRIC`]; logs written before that limit may hold bigger
/// metrics).
pub fn parse_stored(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.is_empty()
        || !t.bytes().any(|b| b.is_ascii_digit())
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
    {
        return None;
    }
    let v: f64 = t.parse().ok()?;
    v.is_finite().then_some(if v == 0.0 { 0.0 } else { v })
}

/// Parses a metric value: a plain decimal or scientific number, finite and within
/// [`MAX_METRIC`] only.
///
/// Returns `None` for anything else (including `NaN`, `inf`, hex, empty text).
pub fn parse_metric(text: &str) -> Option<f64> {
    // Rust's float parser also accepts "inf", "NaN" and "infinity"; a metric must be finite and
    // written with digits.
    parse_stored(text).filter(|v| in_range(*v))
}

/// Returns `v` as an integer when it is one that JSON carries exactly (a metric of `12` is
/// written `12`, not `12.0`).
pub fn as_json_int(v: f64) -> Option<i64> {
    (v.fract() == 0.0 && v.abs() < 9.0e15).then_some(v as i64)
}

/// Returns the canonical decimal text of a metric: fixed point, no trailing zeros, no `-0`.
pub fn canonical(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".to_string();
    }
    // `Display` for f64 is the shortest text that round-trips and never uses an exponent.
    let s = format!("{v}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Returns the canonical text of a delta, with a leading `+` when positive.
pub fn signed(v: f64) -> String {
    let c = canonical(v);
    if v > 0.0 && c != "0" {
        format!("+{c}")
    } else {
        c
    }
}

pub fn fraction_digits(v: f64) -> usize {
    let s = canonical(v);
    s.split_once('.').map_or(0, |(_, f)| f.len())
}

/// Returns `a - b` rounded to the decimal places the two operands carry, so `0.3 - 0.1` is `0.2`.
pub fn delta(a: f64, b: f64) -> f64 {
    let places = fraction_digits(a).max(fraction_digits(b)).min(12) as i32;
    let scale = 10f64.powi(places);
    let d = ((a - b) * scale).round() / scale;
    // Huge operands with many decimals: scaling overflows; their difference needs no rounding.
    let d = if d.is_finite() { d } else { a - b };
    if d == 0.0 { 0.0 } else { d }
}

/// The arithmetic mean; 0 for none.
pub fn mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let (s, n) = values
        .into_iter()
        .fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { 0.0 } else { s / n as f64 }
}

/// Returns the median of non-empty `values` (mean of the two middle values for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A mean of measured values without the float noise of its sum (`184.76600000000002` ->
/// `184.766`): 12 significant digits, more than any measurement carries.
pub fn tidy(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    // Decimal rounding through the formatter: exact at any magnitude.
    format!("{x:.11e}").parse().unwrap_or(x)
}

/// A mean of runs as a row shows it: one decimal place more than the runs carry (`51.79`,
/// `52.01`, `51.6` -> `51.8`; a mean of integers keeps one decimal), without float noise.
pub fn mean_shown(mean: f64, run_decimals: usize) -> f64 {
    let places = (run_decimals + 1).min(12) as i32;
    let scale = 10f64.powi(places);
    let r = (mean * scale).round() / scale;
    tidy(if r.is_finite() { r } else { mean })
}

/// `x` rounded to `digits` significant digits, in canonical form (`0.012345` -> `0.012`).
pub fn significant(x: f64, digits: i32) -> String {
    if x == 0.0 || !x.is_finite() {
        return canonical(x);
    }
    let scale = 10f64.powi(digits - 1 - x.abs().log10().floor() as i32);
    canonical((x * scale).round() / scale)
}

/// Returns the median of `values`, or `None` when there are none.
pub fn median_duration(values: &[std::time::Duration]) -> Option<std::time::Duration> {
    let mut v = values.to_vec();
    v.sort_unstable();
    (!v.is_empty()).then(|| v[v.len() / 2])
}

#[cfg(test)]
#[test]
fn a_mean_shows_one_decimal_more_than_its_runs() {
    assert_eq!(mean_shown((51.79 + 52.01 + 51.6) / 3.0, 2), 51.8);
    assert_eq!(mean_shown(51.793333333, 2), 51.793);
    assert_eq!(mean_shown(235.125999999, 3), 235.126);
    assert_eq!(mean_shown(10.0 / 3.0, 0), 3.3);
    assert_eq!(mean_shown(1e300, 0), 1e300);
}

#[cfg(test)]
#[test]
fn a_tidy_mean_drops_the_float_noise_and_keeps_the_digits() {
    assert_eq!(tidy(184.76600000000002), 184.766);
    assert_eq!(tidy(0.1 + 0.2), 0.3);
    assert_eq!(tidy(-12.345678), -12.345678);
    assert_eq!(tidy(1e-9 / 3.0), 3.33333333333e-10);
    assert_eq!(tidy(0.0), 0.0);
    assert_eq!(tidy(1e300), 1e300);
}

/// Returns true when two metrics are equal at the precision the TSV keeps.
pub fn same(a: f64, b: f64) -> bool {
    canonical(a) == canonical(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_scientific_numbers() {
        assert_eq!(parse_metric("12"), Some(12.0));
        assert_eq!(parse_metric(" -3.5 "), Some(-3.5));
        assert_eq!(parse_metric("1e3"), Some(1000.0));
        assert_eq!(parse_metric(".5"), Some(0.5));
        assert_eq!(parse_metric("+2"), Some(2.0));
        assert_eq!(parse_metric("-0"), Some(0.0));
    }

    #[test]
    fn rejects_non_finite_and_garbage() {
        for bad in [
            "", "NaN", "nan", "inf", "-inf", "infinity", "1e999", "0x10", "12ms", "1,5", "--1",
            "1.7e308", "-2e300",
        ] {
            assert_eq!(parse_metric(bad), None, "{bad}");
        }
    }

    #[test]
    fn deltas_of_extreme_metrics_stay_finite() {
        for (a, b) in [
            (MAX_METRIC, -MAX_METRIC),
            (-MAX_METRIC, MAX_METRIC),
            (MAX_METRIC, 0.123456789012),
            (1e290, -0.5),
        ] {
            assert!(delta(a, b).is_finite(), "{a} - {b}");
        }
        assert_eq!(parse_metric("1e300"), Some(1e300));
        // A log keeps any finite number: a delta of two extreme metrics, an older big metric.
        assert_eq!(parse_stored("-2e300"), Some(-2e300));
        assert_eq!(parse_stored("1e308"), Some(1e308));
        assert_eq!(parse_stored("inf"), None);
    }

    #[test]
    fn canonical_form_has_no_trailing_zeros() {
        assert_eq!(canonical(10.50), "10.5");
        assert_eq!(canonical(1e3), "1000");
        assert_eq!(canonical(-0.0), "0");
        assert_eq!(canonical(0.1), "0.1");
        assert_eq!(canonical(1e-7), "0.0000001");
        assert_eq!(canonical(-2.25), "-2.25");
        assert_eq!(canonical(123456789.0), "123456789");
    }

    #[test]
    fn deltas_are_signed_and_free_of_float_noise() {
        assert_eq!(signed(delta(12.0, 10.0)), "+2");
        assert_eq!(signed(delta(5.0, 10.0)), "-5");
        assert_eq!(signed(delta(10.0, 10.0)), "0");
        assert_eq!(signed(delta(0.3, 0.1)), "+0.2");
        assert_eq!(signed(delta(0.1, 0.3)), "-0.2");
        assert_eq!(signed(delta(1.005, 1.0)), "+0.005");
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
    }
}
