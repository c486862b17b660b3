//! Summaries across seeds and small vector helpers.

use serde::{Deserialize, Serialize};

/// Mean, spread and extremes of one metric across seeds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    #[serde(serialize_with = "nan_as_null", deserialize_with = "null_as_nan")]
    pub mean: f64,
    #[serde(serialize_with = "nan_as_null", deserialize_with = "null_as_nan")]
    pub min: f64,
    #[serde(serialize_with = "nan_as_null", deserialize_with = "null_as_nan")]
    pub max: f64,
    /// Sample standard deviation (0 for a single value).
    #[serde(serialize_with = "nan_as_null", deserialize_with = "null_as_nan")]
    pub std: f64,
    pub n: usize,
}

impl Summary {
    /// `None` for an empty slice. A NaN on any seed makes every field NaN (never hidden by min/max).
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = if n > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64 } else { 0.0 };
        let any_nan = values.iter().any(|v| v.is_nan());
        let min = if any_nan { f64::NAN } else { values.iter().copied().fold(f64::INFINITY, f64::min) };
        let max = if any_nan { f64::NAN } else { values.iter().copied().fold(f64::NEG_INFINITY, f64::max) };
        Some(Self { mean, min, max, std: var.sqrt(), n })
    }
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// Cosine similarity; 0 when either vector is zero.
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let denom = norm(a) * norm(b);
    if denom == 0.0 { 0.0 } else { dot(a, b) / denom }
}

pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() { f64::NAN } else { values.iter().sum::<f64>() / values.len() as f64 }
}

/// `0.5 · mean((a − b)²)`: the loss convention of von Oswald et al.'s code.
pub fn half_mse(a: &[f64], b: &[f64]) -> f64 {
    0.5 * a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len().max(1) as f64
}

/// Minimises a function of one variable on `[lo, hi]` by golden-section search (`iters` steps).
/// Returns the argmin; adequate for the unimodal step-size curves it is used on.
pub fn golden_min(mut f: impl FnMut(f64) -> f64, mut lo: f64, mut hi: f64, iters: usize) -> f64 {
    let r = (5f64.sqrt() - 1.0) / 2.0;
    let mut a = hi - r * (hi - lo);
    let mut b = lo + r * (hi - lo);
    let (mut fa, mut fb) = (f(a), f(b));
    for _ in 0..iters {
        if fa < fb {
            hi = b;
            b = a;
            fb = fa;
            a = hi - r * (hi - lo);
            fa = f(a);
        } else {
            lo = a;
            a = b;
            fa = fb;
            b = lo + r * (hi - lo);
            fb = f(b);
        }
    }
    if fa < fb { a } else { b }
}

/// The logistic function 1 / (1 + e^−z), computed without overflow for large |z|.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Wilson score 95% interval for `k` successes in `n` trials; `(0, 1)` when `n = 0`.
pub fn wilson(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    const Z: f64 = 1.959_963_984_540_054;
    let (k, n) = (k.min(n) as f64, n as f64);
    let p = k / n;
    let z2 = Z * Z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// `k` of `n` with its rate and Wilson 95% interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub k: u64,
    pub n: u64,
    /// `k / n` (NaN when `n = 0`; stored as `null`).
    #[serde(serialize_with = "nan_as_null", deserialize_with = "null_as_nan")]
    pub rate: f64,
    pub ci_lo: f64,
    pub ci_hi: f64,
}

impl Rate {
    pub fn new(k: u64, n: u64) -> Self {
        let (ci_lo, ci_hi) = wilson(k, n);
        let rate = if n == 0 { f64::NAN } else { k as f64 / n as f64 };
        Self { k, n, rate, ci_lo, ci_hi }
    }

    /// Items for which `pred` holds.
    pub fn of<T>(items: &[T], pred: impl Fn(&T) -> bool) -> Self {
        Self::new(items.iter().filter(|x| pred(x)).count() as u64, items.len() as u64)
    }

    /// Pools several rates (sums of `k` and `n`).
    pub fn pooled<'a>(rates: impl IntoIterator<Item = &'a Rate>) -> Self {
        let (k, n) = rates.into_iter().fold((0, 0), |(k, n), r| (k + r.k, n + r.n));
        Self::new(k, n)
    }
}

/// Newcombe's hybrid score 95% interval for `a.rate − b.rate` (independent Wilson intervals;
/// conservative when the two rates are paired on the same items).
pub fn difference_interval(a: &Rate, b: &Rate) -> (f64, f64) {
    let d = a.rate - b.rate;
    let lo = d - ((a.rate - a.ci_lo).powi(2) + (b.ci_hi - b.rate).powi(2)).sqrt();
    let hi = d + ((a.ci_hi - a.rate).powi(2) + (b.rate - b.ci_lo).powi(2)).sqrt();
    (lo, hi)
}

/// Serialises non-finite numbers as `null` (JSON has no NaN).
pub fn nan_as_null<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() { s.serialize_f64(*v) } else { s.serialize_none() }
}

/// Reads `null` back as NaN.
pub fn null_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_reference_values() {
        // Reference: statsmodels proportion_confint(k, n, method="wilson").
        let (lo, hi) = wilson(5, 10);
        assert!((lo - 0.236_593).abs() < 1e-5 && (hi - 0.763_407).abs() < 1e-5, "{lo} {hi}");
        let (lo, hi) = wilson(0, 20);
        assert!(lo == 0.0 && (hi - 0.161_125).abs() < 1e-5, "{lo} {hi}");
        let (lo, hi) = wilson(20, 20);
        assert!((lo - 0.838_875).abs() < 1e-5 && hi == 1.0, "{lo} {hi}");
        assert_eq!(wilson(0, 0), (0.0, 1.0));
        let r = Rate::pooled(&[Rate::new(1, 4), Rate::new(3, 4)]);
        assert_eq!((r.k, r.n, r.rate), (4, 8, 0.5));
        assert!(Rate::new(0, 0).rate.is_nan());
    }

    #[test]
    fn summary_of_values() {
        let s = Summary::of(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.mean, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        assert!((s.std - 1.0).abs() < 1e-12);
        assert!(Summary::of(&[]).is_none());
        let s = Summary::of(&[1.0, f64::NAN, 3.0]).unwrap();
        assert!(s.mean.is_nan() && s.min.is_nan() && s.max.is_nan(), "a NaN seed is never hidden: {s:?}");
        let json = serde_json::to_string(&s).unwrap();
        let back: Summary = serde_json::from_str(&json).unwrap();
        assert!(back.min.is_nan() && back.n == 3);
    }

    #[test]
    fn golden_finds_the_minimum_of_a_parabola() {
        let x = golden_min(|x| (x - 0.7).powi(2), 0.0, 3.0, 60);
        assert!((x - 0.7).abs() < 1e-6);
    }

    #[test]
    fn cosine_of_parallel_and_orthogonal() {
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-12);
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 3.0]), 0.0);
        assert_eq!(cosine(&[0.0, 0.0], &[0.0, 3.0]), 0.0);
    }
}
