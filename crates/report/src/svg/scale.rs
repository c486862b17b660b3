//! Axis domains and tick positions: "nice" linear ticks (steps of 1, 2, 2.5 or 5 × 10^k) and
//! log ticks (decades, or a 1-2-5 sequence on short ranges).

/// Tick positions for one axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticks {
    /// The axis range, widened to nice values that contain the data.
    pub domain: (f64, f64),
    /// Labelled ticks, increasing, all within `domain`.
    pub major: Vec<f64>,
    /// Unlabelled ticks (log axes only), within `domain`, disjoint from `major`.
    pub minor: Vec<f64>,
}

/// A nice step of the form {1, 2, 2.5, 5} × 10^k that is at least `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let exp = raw.log10().floor();
    let base = 10f64.powf(exp);
    let f = raw / base;
    let m = [1.0, 2.0, 2.5, 5.0, 10.0].into_iter().find(|&m| f <= m * (1.0 + 1e-9)).unwrap_or(10.0);
    clean(m * base)
}

/// Linear ticks for data in `[lo, hi]`, aiming for about `target` intervals. The domain is widened
/// to the enclosing multiples of the step. Equal or non-finite bounds are handled: a single value
/// gets a small symmetric range around it, and non-finite input gives `[0, 1]`.
pub fn linear_ticks(lo: f64, hi: f64, target: usize) -> Ticks {
    let (mut lo, mut hi) = if lo.is_finite() && hi.is_finite() { (lo.min(hi), lo.max(hi)) } else { (0.0, 1.0) };
    if hi - lo <= 1e-12 * lo.abs().max(hi.abs()) {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        lo -= d;
        hi += d;
    }
    if !(hi - lo).is_finite() {
        // Spans near f64::MAX: no nice ticks exist; label the ends.
        return Ticks { domain: (lo, hi), major: vec![lo, hi], minor: vec![] };
    }
    let step = nice_step((hi - lo) / target.max(1) as f64);
    let start = (lo / step + 1e-9).floor();
    let end = (hi / step - 1e-9).ceil();
    let major: Vec<f64> = (0..=((end - start) as i64).min(1000)).map(|i| clean((start + i as f64) * step)).collect();
    Ticks { domain: (clean(start * step), clean(end * step)), major, minor: vec![] }
}

/// Log-10 ticks for positive data in `[lo, hi]`. Ranges of two decades or more snap to powers
/// of ten, with `2..9 × 10^k` minor ticks (and majors thinned to at most about eight when the range
/// is very wide). Shorter ranges snap to the 1-2-5 sequence and label it. Returns `None` when
/// there is no positive finite bound.
pub fn log_ticks(lo: f64, hi: f64) -> Option<Ticks> {
    let ok = |v: f64| v.is_finite() && v > 0.0;
    let (mut lo, mut hi) = match (ok(lo), ok(hi)) {
        (true, true) => (lo.min(hi), lo.max(hi)),
        (true, false) => (lo, lo),
        (false, true) => (hi, hi),
        (false, false) => return None,
    };
    if hi / lo < 1.0001 {
        lo /= 1.5;
        hi *= 1.5;
    }
    let wide = (hi / lo).log10() >= 2.0;
    let (d0, d1) = if wide {
        (pow10(lo.log10().floor() as i32), pow10((hi.log10() - 1e-9).ceil() as i32))
    } else {
        (snap125(lo, false), snap125(hi, true))
    };
    let e0 = d0.log10().floor() as i32;
    let e1 = d1.log10().ceil() as i32;
    let within = |v: f64| v >= d0 * (1.0 - 1e-9) && v <= d1 * (1.0 + 1e-9);
    let multiples = |ks: &[f64]| -> Vec<f64> {
        (e0..=e1).flat_map(|e| ks.iter().map(move |&k| clean(k * pow10(e)))).filter(|&v| within(v)).collect()
    };
    let all: Vec<f64> = multiples(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    let decades: Vec<f64> = multiples(&[1.0]);
    let (major, minor) = if decades.len() >= 3 {
        let stride = decades.len().div_ceil(8).max(1);
        let major: Vec<f64> = decades.iter().copied().step_by(stride).collect();
        let minor = if stride == 1 && decades.len() <= 6 {
            all.iter().copied().filter(|v| !major.contains(v)).collect()
        } else if stride > 1 {
            decades.iter().copied().filter(|v| !major.contains(v)).collect()
        } else {
            vec![]
        };
        (major, minor)
    } else {
        let m125 = multiples(&[1.0, 2.0, 5.0]);
        let major = if m125.len() >= 3 { m125 } else { all.clone() };
        let minor = all.iter().copied().filter(|v| !major.contains(v)).collect();
        (major, minor)
    };
    Some(Ticks { domain: (d0, d1), major, minor })
}

fn pow10(e: i32) -> f64 {
    clean(10f64.powi(e))
}

/// The nearest value of the 1-2-5 sequence below (`up = false`) or above `v`.
fn snap125(v: f64, up: bool) -> f64 {
    let e = v.log10().floor() as i32;
    let m = v / 10f64.powi(e);
    let c = if up {
        [1.0, 2.0, 5.0, 10.0].into_iter().find(|&c| c >= m * (1.0 - 1e-9)).unwrap_or(10.0)
    } else {
        [5.0, 2.0, 1.0].into_iter().find(|&c| c <= m * (1.0 + 1e-9)).unwrap_or(1.0)
    };
    clean(c * 10f64.powi(e))
}

/// Rounds away float noise (12 significant digits) and negative zero.
pub(crate) fn clean(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return if v == 0.0 { 0.0 } else { v };
    }
    format!("{v:.11e}").parse().unwrap_or(v)
}

/// Maps data values to pixels, linearly or on a log10 scale.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scale {
    pub d0: f64,
    pub d1: f64,
    pub r0: f64,
    pub r1: f64,
    pub log: bool,
}

impl Scale {
    pub fn map(&self, v: f64) -> f64 {
        let (a, b, v) = if self.log { (self.d0.log10(), self.d1.log10(), v.log10()) } else { (self.d0, self.d1, v) };
        if b == a {
            return (self.r0 + self.r1) / 2.0;
        }
        self.r0 + (v - a) / (b - a) * (self.r1 - self.r0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(0.9), 1.0);
        assert_eq!(nice_step(1.0), 1.0);
        assert_eq!(nice_step(1.3), 2.0);
        assert_eq!(nice_step(2.2), 2.5);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(0.023), 0.025);
        assert_eq!(nice_step(430.0), 500.0);
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(nice_step(f64::NAN), 1.0);
    }

    #[test]
    fn linear_ticks_are_round_and_cover_data() {
        let t = linear_ticks(0.13, 0.87, 5);
        assert_eq!(t.major, vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(t.domain, (0.0, 1.0));

        let t = linear_ticks(0.0, 20_000.0, 4);
        assert_eq!(t.major, vec![0.0, 5000.0, 10000.0, 15000.0, 20000.0]);

        let t = linear_ticks(-3.7, 12.1, 5);
        assert_eq!(t.domain, (-5.0, 15.0));
        assert!(t.major.contains(&0.0));

        // Float noise is cleaned: 0.1 * 3 is exactly 0.3 here.
        let t = linear_ticks(0.0, 0.7, 7);
        assert!(t.major.contains(&0.3), "{:?}", t.major);
    }

    #[test]
    fn linear_ticks_degenerate_inputs() {
        let t = linear_ticks(5.0, 5.0, 5);
        assert!(t.domain.0 < 5.0 && t.domain.1 > 5.0);
        assert!(t.major.len() >= 2);

        let t = linear_ticks(0.0, 0.0, 5);
        assert_eq!(t.domain, (-1.0, 1.0));

        let t = linear_ticks(f64::NAN, f64::INFINITY, 5);
        assert_eq!(t.domain, (0.0, 1.0));

        let t = linear_ticks(3.0, 1.0, 4);
        assert_eq!(t.domain, (1.0, 3.0));

        let t = linear_ticks(-f64::MAX, f64::MAX, 5);
        assert_eq!(t.major.len(), 2);
    }

    #[test]
    fn log_ticks_decades() {
        let t = log_ticks(0.003, 2.0).unwrap();
        assert_eq!(t.domain, (0.001, 10.0));
        assert_eq!(t.major, vec![0.001, 0.01, 0.1, 1.0, 10.0]);
        assert!(t.minor.contains(&0.002) && t.minor.contains(&0.5));
        assert!(t.minor.iter().all(|v| !t.major.contains(v)));
    }

    #[test]
    fn log_ticks_short_range_uses_125() {
        let t = log_ticks(0.03, 0.25).unwrap();
        assert_eq!(t.domain, (0.02, 0.5));
        assert_eq!(t.major, vec![0.02, 0.05, 0.1, 0.2, 0.5]);

        let t = log_ticks(0.21, 0.45).unwrap();
        assert_eq!(t.domain, (0.2, 0.5));
        assert_eq!(t.major, vec![0.2, 0.3, 0.4, 0.5]);
    }

    #[test]
    fn log_ticks_wide_range_is_thinned() {
        let t = log_ticks(1e-12, 1e6).unwrap();
        assert!(t.major.len() <= 9, "{:?}", t.major);
        assert_eq!(t.major[0], 1e-12);
        assert!(t.minor.iter().all(|v| v.log10().fract().abs() < 1e-9));
    }

    #[test]
    fn log_ticks_degenerate_inputs() {
        assert!(log_ticks(0.0, -1.0).is_none());
        assert!(log_ticks(f64::NAN, f64::NAN).is_none());
        let t = log_ticks(-1.0, 4.0).unwrap();
        assert!(t.domain.0 < 4.0 && t.domain.1 > 4.0);
        let t = log_ticks(1.0, 1.0).unwrap();
        assert!(t.domain.0 < 1.0 && t.domain.1 > 1.0);
    }

    #[test]
    fn scale_maps_both_kinds() {
        let s = Scale { d0: 0.0, d1: 10.0, r0: 100.0, r1: 0.0, log: false };
        assert_eq!(s.map(5.0), 50.0);
        let s = Scale { d0: 1.0, d1: 100.0, r0: 0.0, r1: 200.0, log: true };
        assert!((s.map(10.0) - 100.0).abs() < 1e-9);
    }
}
