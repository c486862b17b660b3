//! Number formatting for tables, captions and axis ticks.
//!
//! All functions are total: NaN prints as `NaN`, infinities as `∞` / `-∞`.

/// Formats a number for a table with about four significant digits, trailing zeros trimmed.
///
/// - `|x| < 1e-3` or `|x| ≥ 1e6`: scientific with up to 3 significant digits (`3.2e-5`, `1.25e6`);
/// - `|x| < 10`: at least four decimals, so values near 1 keep their deviation (`1.0005`);
/// - otherwise four significant digits, never dropping integer digits (`206.6`, `12346`).
///
/// ```
/// use mesalab_report::fmt::number;
/// assert_eq!(number(0.206612), "0.2066");
/// assert_eq!(number(1.00049), "1.0005");
/// assert_eq!(number(3.2e-5), "3.2e-5");
/// assert_eq!(number(-12.3456), "-12.35");
/// assert_eq!(number(2.0), "2");
/// ```
pub fn number(x: f64) -> String {
    if let Some(s) = non_finite(x) {
        return s;
    }
    if x == 0.0 {
        return "0".into();
    }
    let a = x.abs();
    if !(1e-3..1e6).contains(&a) {
        return sci(x, 3);
    }
    let mag = a.log10().floor() as i32;
    let decimals = if a < 10.0 { (3 - mag).max(4) } else { (3 - mag).max(0) };
    trim_zeros(format!("{:.*}", decimals as usize, x))
}

/// `digits` significant digits (integer digits are never dropped), trailing zeros trimmed;
/// scientific outside `[1e-4, 1e9)`: `sig(0.82345, 3) == "0.823"`, `sig(1234.6, 3) == "1235"`.
pub fn sig(x: f64, digits: usize) -> String {
    if let Some(s) = non_finite(x) {
        return s;
    }
    if x == 0.0 {
        return "0".into();
    }
    let a = x.abs();
    if !(1e-4..1e9).contains(&a) {
        return sci(x, digits);
    }
    let mag = a.log10().floor() as i32;
    let decimals = (digits as i32 - 1 - mag).max(0) as usize;
    trim_zeros(format!("{x:.decimals$}"))
}

/// Scientific notation with at most `sig` significant digits, trailing zeros trimmed:
/// `sci(0.000032, 3) == "3.2e-5"`.
pub fn sci(x: f64, sig: usize) -> String {
    if let Some(s) = non_finite(x) {
        return s;
    }
    if x == 0.0 {
        return "0".into();
    }
    let s = format!("{:.*e}", sig.max(1) - 1, x);
    match s.split_once('e') {
        Some((mantissa, exp)) => format!("{}e{}", trim_zeros(mantissa.to_string()), exp),
        None => s,
    }
}

/// An integer with thousands separators: `integer(52874) == "52,874"`.
pub fn integer(i: i64) -> String {
    let digits = i.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if i < 0 {
        out.push('-');
    }
    for (k, c) in digits.chars().enumerate() {
        if k > 0 && (digits.len() - k).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Fixed number of decimals (`fixed(0.5, 2) == "0.50"`); NaN/∞ as in [`number`].
pub fn fixed(x: f64, decimals: usize) -> String {
    non_finite(x).unwrap_or_else(|| clean_negative_zero(format!("{x:.decimals$}")))
}

/// A fraction as a percentage: `percent(0.1234, 1) == "12.3%"`.
pub fn percent(fraction: f64, decimals: usize) -> String {
    match non_finite(fraction) {
        Some(s) => s,
        None => format!("{}%", fixed(fraction * 100.0, decimals)),
    }
}

/// `mean ± spread`, with the spread rounded to two significant digits and the mean to the same
/// decimal place: `mean_pm(0.20663, 0.00312) == "0.2066 ± 0.0031"`.
pub fn mean_pm(mean: f64, spread: f64) -> String {
    match shared_decimals(&[mean, spread], spread) {
        Some(d) => format!("{} ± {}", fixed(mean, d), fixed(spread, d)),
        None => format!("{} ± {}", number(mean), number(spread)),
    }
}

/// `mean [lo, hi]` (a range or a confidence interval), all three to the decimal place given by two
/// significant digits of the half-width: `mean_range(0.20663, 0.20121, 0.21012) == "0.2066 [0.2012, 0.2101]"`.
pub fn mean_range(mean: f64, lo: f64, hi: f64) -> String {
    match shared_decimals(&[mean, lo, hi], (hi - lo) / 2.0) {
        Some(d) => format!("{} [{}, {}]", fixed(mean, d), fixed(lo, d), fixed(hi, d)),
        None => format!("{} [{}, {}]", number(mean), number(lo), number(hi)),
    }
}

/// Mean and sample standard deviation of the finite values, as [`mean_pm`]; `"–"` when there are
/// none, just the mean when there is one.
pub fn summary_pm(values: &[f64]) -> String {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    match v.len() {
        0 => "–".into(),
        1 => number(v[0]),
        n => {
            let mean = v.iter().sum::<f64>() / n as f64;
            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            mean_pm(mean, var.sqrt())
        }
    }
}

/// Decimal places such that `spread` shows two significant digits, when every value is finite
/// and in the range where fixed notation reads well.
fn shared_decimals(values: &[f64], spread: f64) -> Option<usize> {
    if !values.iter().all(|v| v.is_finite()) || !spread.is_finite() || spread <= 0.0 {
        return None;
    }
    let max = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if max >= 1e6 || spread < 1e-6 {
        return None;
    }
    let e = spread.log10().floor() as i32;
    Some((1 - e).clamp(0, 8) as usize)
}

/// Labels for ticks on a linear axis: one shared number of decimals (`0.0, 0.5, 1.0`), or
/// scientific notation when the values are very large or very small. Negative values use a
/// typographic minus sign.
pub fn linear_tick_labels(ticks: &[f64]) -> Vec<String> {
    let max = ticks.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if max >= 1e5 || (max > 0.0 && max < 1e-3) {
        return ticks.iter().map(|&v| minus(&sci(v, 3))).collect();
    }
    let decimals = ticks.iter().map(|&v| decimals_needed(v)).max().unwrap_or(0);
    ticks.iter().map(|&v| minus(&fixed(v, decimals))).collect()
}

/// Label for one tick on a log axis: plain for `1e-3 ≤ |v| < 1e5` (`0.01`, `200`), scientific
/// otherwise (`1e-6`).
pub fn log_tick_label(v: f64) -> String {
    let a = v.abs();
    if v != 0.0 && !(1e-3..1e5).contains(&a) { minus(&sci(v, 2)) } else { minus(&fixed(v, decimals_needed(v))) }
}

/// Smallest number of decimals (≤ 6) that represents `v` to within float noise.
fn decimals_needed(v: f64) -> usize {
    for d in 0..=6 {
        let p = 10f64.powi(d);
        if ((v * p).round() / p - v).abs() <= 1e-9 * v.abs().max(1e-12) {
            return d as usize;
        }
    }
    6
}

fn non_finite(x: f64) -> Option<String> {
    if x.is_nan() {
        Some("NaN".into())
    } else if x.is_infinite() {
        Some(if x > 0.0 { "∞" } else { "-∞" }.into())
    } else {
        None
    }
}

fn trim_zeros(s: String) -> String {
    if !s.contains('.') {
        return clean_negative_zero(s);
    }
    let t = s.trim_end_matches('0').trim_end_matches('.');
    clean_negative_zero(t.to_string())
}

fn clean_negative_zero(s: String) -> String {
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') { s[1..].to_string() } else { s }
}

/// Replaces ASCII hyphens (sign and exponent sign) with the typographic minus sign (U+2212).
pub(crate) fn minus(s: &str) -> String {
    s.replace('-', "\u{2212}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_significant_digits() {
        assert_eq!(number(0.2066), "0.2066");
        assert_eq!(number(0.20663), "0.2066");
        assert_eq!(number(1.0005), "1.0005");
        assert_eq!(number(1.00049), "1.0005");
        assert_eq!(number(3.2e-5), "3.2e-5");
        assert_eq!(number(-3.2e-5), "-3.2e-5");
        assert_eq!(number(0.001234), "0.001234");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(1.0), "1");
        assert_eq!(number(9.99996), "10");
        assert_eq!(number(12.3456), "12.35");
        assert_eq!(number(206.61), "206.6");
        assert_eq!(number(12345.6), "12346");
        assert_eq!(number(1_234_567.0), "1.23e6");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(-0.0), "0");
        assert_eq!(number(-0.00001), "-1e-5");
    }

    #[test]
    fn number_non_finite() {
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::INFINITY), "∞");
        assert_eq!(number(f64::NEG_INFINITY), "-∞");
        assert_eq!(mean_pm(f64::NAN, 0.1), "NaN ± 0.1");
        assert_eq!(mean_range(1.0, f64::NAN, 2.0), "1 [NaN, 2]");
    }

    #[test]
    fn spreads_and_ranges() {
        assert_eq!(mean_pm(0.20663, 0.00312), "0.2066 ± 0.0031");
        assert_eq!(mean_pm(12.3, 4.56), "12.3 ± 4.6");
        assert_eq!(mean_pm(1234.0, 56.0), "1234 ± 56");
        assert_eq!(mean_pm(0.5, 0.0), "0.5 ± 0");
        assert_eq!(mean_range(0.20663, 0.20121, 0.21012), "0.2066 [0.2012, 0.2101]");
        assert_eq!(mean_range(0.9, 0.9, 0.9), "0.9 [0.9, 0.9]");
        assert_eq!(summary_pm(&[1.0, 2.0, 3.0, f64::NAN]), "2.0 ± 1.0");
        assert_eq!(summary_pm(&[]), "–");
        assert_eq!(percent(0.1234, 1), "12.3%");
        assert_eq!(fixed(-0.0001, 2), "0.00");
        assert_eq!(sig(0.82345, 3), "0.823");
        assert_eq!(integer(52874), "52,874");
        assert_eq!(integer(-1_234_567), "-1,234,567");
        assert_eq!(integer(999), "999");
        assert_eq!(integer(i64::MIN), "-9,223,372,036,854,775,808");
        assert_eq!(sig(1234.6, 3), "1235");
        assert_eq!(sig(0.5, 3), "0.5");
        assert_eq!(sig(2e-6, 2), "2e-6");
    }

    #[test]
    fn tick_labels() {
        assert_eq!(linear_tick_labels(&[0.0, 0.5, 1.0]), ["0.0", "0.5", "1.0"]);
        assert_eq!(linear_tick_labels(&[0.1 + 0.2, 0.4, -0.1]), ["0.3", "0.4", "\u{2212}0.1"]);
        assert_eq!(linear_tick_labels(&[0.0, 5000.0, 10000.0]), ["0", "5000", "10000"]);
        assert_eq!(linear_tick_labels(&[0.0, 1e5, 2e5]), ["0", "1e5", "2e5"]);
        assert_eq!(linear_tick_labels(&[0.0, 2.5e-4, 5e-4]), ["0", "2.5e\u{2212}4", "5e\u{2212}4"]);
        assert_eq!(log_tick_label(0.01), "0.01");
        assert_eq!(log_tick_label(1e-6), "1e\u{2212}6");
        assert_eq!(log_tick_label(200.0), "200");
        assert_eq!(log_tick_label(1e6), "1e6");
    }
}
