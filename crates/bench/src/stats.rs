//! Scoring statistics over models (InterpBench's): AUROC, Vargha–Delaney A12, the Mann–Whitney U
//! test, stratified bootstrap intervals, and accuracy at a threshold chosen on other models.
//!
//! Invariants: scores are compared fail-closed — a NaN score ranks its model as badly as possible
//! (a positive below every score, a negative above every score), so a detector never gains from
//! failing; every function is deterministic (the bootstrap draws from the rng it is given).

use rand::Rng;

/// `scores[i]` with `positive[i]` (true: the question's answer is yes).
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    pub scores: Vec<f64>,
    pub positive: Vec<bool>,
}

impl Scored {
    pub fn counts(&self) -> (usize, usize) {
        let p = self.positive.iter().filter(|&&p| p).count();
        (p, self.positive.len() - p)
    }
    /// Scores with NaN replaced fail-closed: −∞ for positives, +∞ for negatives.
    fn closed(&self) -> Vec<f64> {
        self.scores
            .iter()
            .zip(&self.positive)
            .map(|(&s, &p)| if s.is_nan() { if p { f64::NEG_INFINITY } else { f64::INFINITY } } else { s })
            .collect()
    }
}

/// Vargha–Delaney A12 = P(positive score > negative score) + ½ P(equal), over every pair; equal to
/// the AUROC. NaN when either class is empty.
pub fn a12(s: &Scored) -> f64 {
    let x = s.closed();
    let (pos, neg): (Vec<f64>, Vec<f64>) = split(&x, &s.positive);
    if pos.is_empty() || neg.is_empty() {
        return f64::NAN;
    }
    let mut wins = 0.0;
    for &p in &pos {
        for &n in &neg {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (pos.len() * neg.len()) as f64
}

/// The AUROC (the area under the ROC curve, ties counted half): identical to [`a12`].
pub fn auroc(s: &Scored) -> f64 {
    a12(s)
}

fn split(x: &[f64], positive: &[bool]) -> (Vec<f64>, Vec<f64>) {
    let pos = x.iter().zip(positive).filter(|(_, p)| **p).map(|(v, _)| *v).collect();
    let neg = x.iter().zip(positive).filter(|(_, p)| !**p).map(|(v, _)| *v).collect();
    (pos, neg)
}

/// Two-sided Mann–Whitney U test of "positives and negatives score alike": the normal
/// approximation with the tie correction and a continuity correction of ½. Returns `(U, p)`, U of
/// the positives. NaN when a class is empty.
pub fn mann_whitney(s: &Scored) -> (f64, f64) {
    let x = s.closed();
    let (n1, n2) = s.counts();
    if n1 == 0 || n2 == 0 {
        return (f64::NAN, f64::NAN);
    }
    let ranks = average_ranks(&x);
    let r1: f64 = ranks.iter().zip(&s.positive).filter(|(_, p)| **p).map(|(r, _)| *r).sum();
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let u = r1 - n1f * (n1f + 1.0) / 2.0;
    let n = n1f + n2f;
    let mut tie_term = 0.0;
    let mut sorted = x.clone();
    sorted.sort_by(f64::total_cmp);
    let mut i = 0;
    while i < sorted.len() {
        let j = (i..sorted.len()).find(|&j| sorted[j] != sorted[i]).unwrap_or(sorted.len());
        let t = (j - i) as f64;
        tie_term += t * t * t - t;
        i = j;
    }
    let var = n1f * n2f / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if var <= 0.0 {
        return (u, 1.0); // every score equal: no evidence of a difference
    }
    let z = ((u - n1f * n2f / 2.0).abs() - 0.5).max(0.0) / var.sqrt();
    (u, (2.0 * normal_upper_tail(z)).min(1.0))
}

/// Ranks 1..=n with ties given their average rank.
fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let j = (i..idx.len()).find(|&j| x[idx[j]] != x[idx[i]]).unwrap_or(idx.len());
        let avg = (i + 1 + j) as f64 / 2.0;
        for &k in &idx[i..j] {
            ranks[k] = avg;
        }
        i = j;
    }
    ranks
}

/// P(Z > z) for a standard normal, from the complementary error function (Numerical Recipes'
/// Chebyshev fit, relative error < 1.2e-7).
pub fn normal_upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// A percentile interval of `stat` over `resamples` stratified bootstrap resamples (positives and
/// negatives each resampled with replacement at their own size, so every resample has both).
pub fn bootstrap(s: &Scored, stat: fn(&Scored) -> f64, resamples: usize, rng: &mut impl Rng) -> (f64, f64) {
    let pos: Vec<usize> = (0..s.scores.len()).filter(|&i| s.positive[i]).collect();
    let neg: Vec<usize> = (0..s.scores.len()).filter(|&i| !s.positive[i]).collect();
    if pos.is_empty() || neg.is_empty() || resamples == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mut values = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        let mut r = Scored { scores: Vec::new(), positive: Vec::new() };
        for class in [&pos, &neg] {
            for _ in 0..class.len() {
                let i = class[rng.random_range(0..class.len())];
                r.scores.push(s.scores[i]);
                r.positive.push(s.positive[i]);
            }
        }
        values.push(stat(&r));
    }
    values.sort_by(f64::total_cmp);
    (quantile(&values, 0.025), quantile(&values, 0.975))
}

/// Linear-interpolated quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// The threshold that maximises accuracy on `dev` (predict positive when score > threshold), the
/// midpoint between adjacent distinct scores; ties go to the lowest threshold. NaN when `dev` is empty.
pub fn best_threshold(dev: &Scored) -> f64 {
    let x = dev.closed();
    let mut cuts: Vec<f64> = x.iter().copied().filter(|v| v.is_finite()).collect();
    cuts.sort_by(f64::total_cmp);
    cuts.dedup();
    if cuts.is_empty() {
        return f64::NAN;
    }
    let mut candidates = vec![cuts[0] - 1.0];
    candidates.extend(cuts.windows(2).map(|w| (w[0] + w[1]) / 2.0));
    candidates.push(cuts[cuts.len() - 1] + 1.0);
    let mut best = (f64::NAN, -1.0);
    for t in candidates {
        let acc = accuracy(dev, t);
        if acc > best.1 {
            best = (t, acc);
        }
    }
    best.0
}

/// Share of models classified right at `threshold` (NaN scores are wrong, whatever the class).
pub fn accuracy(s: &Scored, threshold: f64) -> f64 {
    if s.scores.is_empty() {
        return f64::NAN;
    }
    if threshold.is_nan() {
        return 0.0; // no threshold could be chosen (every dev score failed): nothing is classified right
    }
    let right = s.scores.iter().zip(&s.positive).filter(|(v, p)| !v.is_nan() && ((**v > threshold) == **p)).count();
    right as f64 / s.scores.len() as f64
}

/// ROC points `(false-positive rate, true-positive rate)` from the strictest threshold down.
pub fn roc(s: &Scored) -> Vec<(f64, f64)> {
    let x = s.closed();
    let (p, n) = s.counts();
    if p == 0 || n == 0 {
        return Vec::new();
    }
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[b].total_cmp(&x[a]));
    let mut out = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut i = 0;
    while i < idx.len() {
        let j = (i..idx.len()).find(|&j| x[idx[j]] != x[idx[i]]).unwrap_or(idx.len());
        for &k in &idx[i..j] {
            if s.positive[k] {
                tp += 1;
            } else {
                fp += 1;
            }
        }
        out.push((fp as f64 / n as f64, tp as f64 / p as f64));
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn scored(pos: &[f64], neg: &[f64]) -> Scored {
        Scored {
            scores: pos.iter().chain(neg).copied().collect(),
            positive: pos.iter().map(|_| true).chain(neg.iter().map(|_| false)).collect(),
        }
    }

    #[test]
    fn a12_matches_hand_counts() {
        // Pairs (p, n): 3>1, 3>2, 3=3 (½), 2>1, 2=2 (½), 2<3, i.e. 4 of 6 → 2/3... counted below.
        let s = scored(&[3.0, 2.0], &[1.0, 2.0, 3.0]);
        // 3 vs {1,2,3}: 1 + 1 + ½; 2 vs {1,2,3}: 1 + ½ + 0 → 4 / 6.
        assert!((a12(&s) - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(auroc(&scored(&[5.0, 6.0], &[1.0, 2.0])), 1.0);
        assert_eq!(auroc(&scored(&[1.0], &[2.0])), 0.0);
        assert!(auroc(&scored(&[1.0], &[])).is_nan());
    }

    #[test]
    fn nan_scores_fail_closed() {
        // A NaN on a positive ranks it below everything; on a negative, above everything.
        assert_eq!(auroc(&scored(&[f64::NAN], &[0.0])), 0.0);
        assert_eq!(auroc(&scored(&[1.0], &[f64::NAN])), 0.0);
        assert_eq!(accuracy(&scored(&[f64::NAN], &[f64::NAN]), 0.0), 0.0);
    }

    #[test]
    fn mann_whitney_matches_a_hand_computed_golden() {
        // pos {4, 5, 6}, neg {1, 2, 3}: ranks 4+5+6 = 15, U = 15 − 6 = 9 (the maximum, n1·n2).
        // No ties: var = 3·3·7/12 = 5.25; z = (|9 − 4.5| − 0.5)/√5.25 = 4/2.291288 = 1.745743;
        // p = 2·P(Z > 1.745743) = 0.080856 (normal table: Φ(1.7457) = 0.959572).
        let (u, p) = mann_whitney(&scored(&[4.0, 5.0, 6.0], &[1.0, 2.0, 3.0]));
        assert_eq!(u, 9.0);
        assert!((p - 0.080856).abs() < 1e-4, "{p}");
        // With ties: pos {1, 2}, neg {2, 3}: ranks 1, 2.5 | 2.5, 4; U = 3.5 − 3 = 0.5; one tie of
        // 2: tie term 6; var = 2·2/12·(5 − 6/12) = 1.5; z = (|0.5 − 2| − 0.5)/√1.5 = 0.816497;
        // p = 2·P(Z > 0.816497) = 0.414216.
        let (u, p) = mann_whitney(&scored(&[1.0, 2.0], &[2.0, 3.0]));
        assert_eq!(u, 0.5);
        assert!((p - 0.414216).abs() < 1e-4, "{p}");
        // All equal: no evidence.
        assert_eq!(mann_whitney(&scored(&[1.0], &[1.0])).1, 1.0);
    }

    #[test]
    fn normal_tail_matches_tables() {
        for (z, want) in [(0.0, 0.5), (1.0, 0.158_655_25), (1.959_964, 0.025), (3.0, 0.001_349_9), (-1.0, 0.841_344_75)]
        {
            assert!((normal_upper_tail(z) - want).abs() < 1e-6, "{z}");
        }
    }

    #[test]
    fn bootstrap_interval_covers_the_estimate_and_collapses_when_separable() {
        let mut rng = mesalab_core::StreamRng::seed_from_u64(7);
        let s = scored(&[0.9, 0.8, 0.4, 0.7, 0.6], &[0.5, 0.3, 0.2, 0.65, 0.1]);
        let est = auroc(&s);
        let (lo, hi) = bootstrap(&s, auroc, 2000, &mut rng);
        assert!(lo <= est && est <= hi && lo < hi, "{lo} {est} {hi}");
        // Perfectly separated: every resample is separated too.
        let (lo, hi) = bootstrap(&scored(&[2.0, 3.0], &[0.0, 1.0]), auroc, 200, &mut rng);
        assert_eq!((lo, hi), (1.0, 1.0));
    }

    #[test]
    fn threshold_from_dev_and_roc_points() {
        let dev = scored(&[0.8, 0.9], &[0.1, 0.5]);
        let t = best_threshold(&dev);
        assert!((t - 0.65).abs() < 1e-12);
        assert_eq!(accuracy(&dev, t), 1.0);
        assert_eq!(accuracy(&scored(&[0.6], &[0.7]), t), 0.0);
        assert_eq!(roc(&dev), vec![(0.0, 0.0), (0.0, 0.5), (0.0, 1.0), (0.5, 1.0), (1.0, 1.0)]);
    }
}
