//! Linear probes: does a model's activation space encode a quantity *linearly*?
//!
//! A probe is fit on one split of the activations and judged on the other (probing literature;
//! TransformerLens-style analyses). A high held-out score means little on its own, so every probe
//! comes with its controls: a null of random directions (how well does an *unfit* direction do?)
//! and a shuffled-label fit (how well does the probe do when there is nothing to find?).
//!
//! Conventions: activations are a `DMatrix<f64>` with one ROW per sample and one COLUMN per
//! feature; labels are `bool` (true = positive); a linear probe scores `w·x + b`, larger = more
//! positive, decision threshold 0.
//!
//! Minimum sizes, enforced everywhere a probe is fit or judged (fewer gives numbers that are noise):
//! a classifier needs ≥ [`MIN_TRAIN_PER_CLASS`] samples of each class to train on and ≥ 1 of each to
//! test on; a regression needs ≥ [`MIN_TRAIN_ROWS`] training rows and ≥ [`MIN_TEST_ROWS`] test rows.

use crate::stats::sigmoid;
use nalgebra::{DMatrix, DVector};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_distr::StandardNormal;
use serde::Serialize;

/// Samples of each class a classifier must train on.
pub const MIN_TRAIN_PER_CLASS: usize = 4;
/// Rows a regression probe must train on.
pub const MIN_TRAIN_ROWS: usize = 3;
/// Rows a regression probe must be tested on (R² of one row is undefined).
pub const MIN_TEST_ROWS: usize = 2;

/// Why a probe could not be fit or evaluated. Every message says what to change.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProbeError {
    #[error("too few {what}: need at least {needed}, got {got}; collect more samples or use a larger split")]
    TooFewSamples { what: &'static str, needed: usize, got: usize },
    #[error("length mismatch in {what}: expected {expected}, got {got}")]
    LengthMismatch { what: &'static str, expected: usize, got: usize },
    #[error(
        "the {split} labels are all one class, so AUROC and classifiers are undefined; \
         use stratified_split or collect samples of both classes"
    )]
    SingleClass { split: &'static str },
    #[error("{what} contains NaN or infinite values; filter or fix those samples first")]
    NonFinite { what: &'static str },
    #[error("bad parameter {name} = {value}: {why}")]
    BadParameter { name: &'static str, value: f64, why: &'static str },
    #[error("{split} index {index} is out of range for {n} samples; build the split from the same data")]
    IndexOutOfRange { split: &'static str, index: usize, n: usize },
    #[error("sample {index} is in both the train and the test split; the held-out score would leak")]
    SplitOverlap { index: usize },
}

/// Row indices of a train/test split. Invariant (checked by every `evaluate_*`): indices are
/// `< n` and no index is in both halves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Split {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

fn check_fraction(test_fraction: f64) -> Result<(), ProbeError> {
    if test_fraction.is_finite() && test_fraction > 0.0 && test_fraction < 1.0 {
        Ok(())
    } else {
        Err(ProbeError::BadParameter {
            name: "test_fraction",
            value: test_fraction,
            why: "must lie strictly between 0 and 1 (e.g. 0.25)",
        })
    }
}

/// Test-set size for `n` items: `round(n · f)`, kept within `[1, n − 1]` so neither half is empty.
fn test_count(n: usize, test_fraction: f64) -> usize {
    ((n as f64 * test_fraction).round() as usize).clamp(1, n - 1)
}

/// Random split of `0..n`: `round(n · test_fraction)` (at least 1, at most n − 1) rows go to test.
/// Each half is returned sorted; which rows land where is random.
pub fn holdout_split(n: usize, test_fraction: f64, rng: &mut impl Rng) -> Result<Split, ProbeError> {
    check_fraction(test_fraction)?;
    if n < 2 {
        return Err(ProbeError::TooFewSamples { what: "samples to split", needed: 2, got: n });
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    let mut test = order.split_off(n - test_count(n, test_fraction));
    order.sort_unstable();
    test.sort_unstable();
    Ok(Split { train: order, test })
}

/// Random split that keeps the class balance: each class is split separately with
/// `round(n_class · test_fraction)` (at least 1, at most n_class − 1) in test, so both halves hold
/// both classes — needed because AUROC is undefined on a single-class split.
pub fn stratified_split(labels: &[bool], test_fraction: f64, rng: &mut impl Rng) -> Result<Split, ProbeError> {
    check_fraction(test_fraction)?;
    let mut split = Split { train: Vec::new(), test: Vec::new() };
    for (class, what) in [(true, "positive samples to split"), (false, "negative samples to split")] {
        let mut idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        if idx.is_empty() {
            return Err(ProbeError::SingleClass { split: "whole" });
        }
        if idx.len() < 2 {
            return Err(ProbeError::TooFewSamples { what, needed: 2, got: idx.len() });
        }
        idx.shuffle(rng);
        let test = idx.split_off(idx.len() - test_count(idx.len(), test_fraction));
        split.train.extend(idx);
        split.test.extend(test);
    }
    split.train.sort_unstable();
    split.test.sort_unstable();
    Ok(split)
}

/// The given rows of `x`, in the given order.
///
/// # Panics
/// If a row index is `>= x.nrows()` (like slice indexing). The `evaluate_*` functions check their
/// split first, so they never reach this.
pub fn select_rows(x: &DMatrix<f64>, rows: &[usize]) -> DMatrix<f64> {
    if let Some(&bad) = rows.iter().find(|&&r| r >= x.nrows()) {
        panic!("select_rows: row {bad} is out of range for a matrix with {} rows", x.nrows());
    }
    x.select_rows(rows)
}

fn select<T: Copy>(v: &[T], rows: &[usize]) -> Vec<T> {
    rows.iter().map(|&r| v[r]).collect()
}

/// A linear classifier direction: `score(x) = w·x + b`; larger = more "positive", threshold 0.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinearProbe {
    pub weights: Vec<f64>,
    pub bias: f64,
}

impl LinearProbe {
    /// `w·x + b` for every row of `x`.
    ///
    /// # Panics
    /// If `x` does not have one column per weight.
    pub fn scores(&self, x: &DMatrix<f64>) -> Vec<f64> {
        assert_eq!(
            x.ncols(),
            self.weights.len(),
            "LinearProbe::scores: x has {} columns but the probe has {} weights",
            x.ncols(),
            self.weights.len()
        );
        let w = DVector::from_column_slice(&self.weights);
        (x * w).iter().map(|s| s + self.bias).collect()
    }

    /// The weights scaled to unit norm: the probe's direction in activation space, comparable
    /// across probes and usable for steering. All zeros if the weights are zero.
    pub fn direction(&self) -> Vec<f64> {
        let norm = self.weights.iter().map(|w| w * w).sum::<f64>().sqrt();
        if norm == 0.0 { vec![0.0; self.weights.len()] } else { self.weights.iter().map(|w| w / norm).collect() }
    }
}

fn check_l2(l2: f64) -> Result<(), ProbeError> {
    if l2.is_finite() && l2 >= 0.0 {
        Ok(())
    } else {
        Err(ProbeError::BadParameter { name: "l2", value: l2, why: "must be finite and >= 0 (e.g. 1e-2)" })
    }
}

fn check_finite(m: &DMatrix<f64>, what: &'static str) -> Result<(), ProbeError> {
    if m.iter().all(|v| v.is_finite()) { Ok(()) } else { Err(ProbeError::NonFinite { what }) }
}

/// Checks that a classifier's training labels hold enough of each class.
fn check_train_classes(labels: &[bool]) -> Result<(), ProbeError> {
    let pos = labels.iter().filter(|&&l| l).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return Err(ProbeError::SingleClass { split: "train" });
    }
    for (what, got) in [("positive training samples", pos), ("negative training samples", neg)] {
        if got < MIN_TRAIN_PER_CLASS {
            return Err(ProbeError::TooFewSamples { what, needed: MIN_TRAIN_PER_CLASS, got });
        }
    }
    Ok(())
}

fn check_classifier_input(x: &DMatrix<f64>, labels: &[bool]) -> Result<(), ProbeError> {
    if labels.len() != x.nrows() {
        return Err(ProbeError::LengthMismatch {
            what: "labels (one per row of x)",
            expected: x.nrows(),
            got: labels.len(),
        });
    }
    check_finite(x, "x")?;
    check_train_classes(labels)
}

fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

/// L2-regularised logistic regression, fit by Newton's method with a backtracking line search.
///
/// Features are standardised internally (train mean and std) so that `l2` means the same for every
/// feature whatever its scale; the returned weights are mapped back to the original feature space.
/// Objective (on standardised features `z`): `mean_i logloss(w·z_i + b, y_i) + (l2/2)·‖w‖²`, bias
/// unpenalised. Constant features get weight 0. With `l2 = 0` on separable data no finite optimum
/// exists: the fit stops after its iteration cap with large weights (AUROC is still meaningful);
/// prefer `l2 > 0`. Cost per Newton step: O(n·d² + d³).
pub fn fit_logistic(x: &DMatrix<f64>, labels: &[bool], l2: f64) -> Result<LinearProbe, ProbeError> {
    check_l2(l2)?;
    check_classifier_input(x, labels)?;
    let (n, d) = (x.nrows(), x.ncols());
    let (mean, scale) = standardisation(x);
    // Design matrix [z, 1]; constant features have scale 0 and become a zero column.
    let mut a = DMatrix::<f64>::zeros(n, d + 1);
    for j in 0..d {
        if scale[j] > 0.0 {
            for i in 0..n {
                a[(i, j)] = (x[(i, j)] - mean[j]) / scale[j];
            }
        }
    }
    a.column_mut(d).fill(1.0);
    let y = DVector::from_iterator(n, labels.iter().map(|&l| if l { 1.0 } else { 0.0 }));
    let pos = y.sum();
    let mut beta = DVector::<f64>::zeros(d + 1);
    beta[d] = (pos / (n as f64 - pos)).ln(); // start at the class prior

    let objective = |beta: &DVector<f64>| {
        let z = &a * beta;
        let loss = z.iter().zip(y.iter()).map(|(&z, &y)| softplus(z) - y * z).sum::<f64>() / n as f64;
        loss + 0.5 * l2 * beta.rows(0, d).norm_squared()
    };
    let mut f = objective(&beta);
    for _ in 0..100 {
        let z = &a * &beta;
        let p = z.map(sigmoid);
        let mut grad = a.transpose() * (&p - &y) / n as f64;
        for j in 0..d {
            grad[j] += l2 * beta[j];
        }
        if grad.amax() < 1e-10 {
            break;
        }
        let mut weighted = a.clone();
        for (i, mut row) in weighted.row_iter_mut().enumerate() {
            row *= p[i] * (1.0 - p[i]) / n as f64;
        }
        let mut hess = a.transpose() * weighted;
        for j in 0..d {
            hess[(j, j)] += l2;
        }
        let step = solve_spd(hess, &grad);
        // Backtracking (Armijo) so that the loss never increases, even far from the optimum.
        let slope = grad.dot(&step);
        let mut t = 1.0;
        let mut improved = false;
        while t > 1e-10 {
            let candidate = &beta - &step * t;
            let fc = objective(&candidate);
            if fc <= f - 1e-4 * t * slope {
                let done = f - fc <= 1e-15 * f.abs().max(1e-300);
                beta = candidate;
                f = fc;
                improved = !done;
                break;
            }
            t *= 0.5;
        }
        if !improved {
            break;
        }
    }
    let mut weights = vec![0.0; d];
    let mut bias = beta[d];
    for j in 0..d {
        if scale[j] > 0.0 {
            weights[j] = beta[j] / scale[j];
            bias -= weights[j] * mean[j];
        }
    }
    if !bias.is_finite() || weights.iter().any(|w| !w.is_finite()) {
        return Err(ProbeError::NonFinite { what: "fitted logistic weights (rescale x to moderate magnitudes)" });
    }
    Ok(LinearProbe { weights, bias })
}

/// A logistic regression read as a statistical model (Mini, Turner et al.'s decision-square
/// regression): coefficients per standard deviation of each feature with standard errors.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogisticRegression {
    /// `[β₀, β₁, …]`: the intercept, then one coefficient per standard deviation of each feature.
    pub coef: Vec<f64>,
    /// Standard errors of `coef`: square roots of the diagonal of the inverse Hessian of the
    /// summed penalised log-loss at the fit (the inverse observed Fisher information when `l2 = 0`).
    pub se: Vec<f64>,
    /// Mean log-likelihood per sample at the fit.
    pub mean_log_likelihood: f64,
    /// Share of samples classified right at threshold 0.5.
    pub accuracy: f64,
}

/// [`fit_logistic`] with standardised coefficients and their standard errors. `None` coefficients
/// never occur: a constant feature is an error here (its coefficient per standard deviation is
/// undefined).
pub fn logistic_regression(x: &DMatrix<f64>, labels: &[bool], l2: f64) -> Result<LogisticRegression, ProbeError> {
    let probe = fit_logistic(x, labels, l2)?;
    let (n, d) = (x.nrows(), x.ncols());
    let (mean, scale) = standardisation(x);
    if scale.contains(&0.0) {
        return Err(ProbeError::BadParameter { name: "x", value: 0.0, why: "a feature is constant" });
    }
    // Back to the standardised space the fit ran in: β_j = w_j·s_j, β₀ = b + Σ w_j·m_j.
    let mut coef = vec![probe.bias + (0..d).map(|j| probe.weights[j] * mean[j]).sum::<f64>()];
    coef.extend((0..d).map(|j| probe.weights[j] * scale[j]));
    let mut hess = DMatrix::<f64>::zeros(d + 1, d + 1);
    let (mut loglik, mut right) = (0.0, 0usize);
    for (i, &label) in labels.iter().enumerate() {
        // Row [1, z_1, …, z_d] of the standardised design matrix.
        let row: Vec<f64> = std::iter::once(1.0).chain((0..d).map(|j| (x[(i, j)] - mean[j]) / scale[j])).collect();
        let z: f64 = row.iter().zip(&coef).map(|(a, b)| a * b).sum();
        let p = sigmoid(z);
        let y = if label { 1.0 } else { 0.0 };
        loglik -= softplus(z) - y * z;
        right += usize::from((p > 0.5) == label);
        for a in 0..=d {
            for b in 0..=d {
                hess[(a, b)] += p * (1.0 - p) * row[a] * row[b];
            }
        }
    }
    for j in 1..=d {
        hess[(j, j)] += n as f64 * l2;
    }
    let inverse = hess.try_inverse().ok_or(ProbeError::NonFinite { what: "logistic Hessian (singular)" })?;
    let se = (0..=d).map(|j| inverse[(j, j)].max(0.0).sqrt()).collect();
    Ok(LogisticRegression { coef, se, mean_log_likelihood: loglik / n as f64, accuracy: right as f64 / n as f64 })
}

/// Per-feature mean and population std; the std is 0 for features that are constant up to rounding.
fn standardisation(x: &DMatrix<f64>) -> (Vec<f64>, Vec<f64>) {
    let n = x.nrows() as f64;
    let mut means = Vec::with_capacity(x.ncols());
    let mut scales = Vec::with_capacity(x.ncols());
    for col in x.column_iter() {
        let m = col.sum() / n;
        let s = (col.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n).sqrt();
        means.push(m);
        // Rounding in the mean of a constant column leaves s ~ 1e-16·|m|: treat that as constant.
        scales.push(if s <= 1e-12 * m.abs() { 0.0 } else { s });
    }
    (means, scales)
}

/// Solves `h · s = g` for a symmetric positive (semi)definite `h`, adding the smallest diagonal
/// jitter that makes the Cholesky factorisation succeed (needed when `l2 = 0`).
fn solve_spd(h: DMatrix<f64>, g: &DVector<f64>) -> DVector<f64> {
    let scale = (h.trace() / h.nrows() as f64).abs().max(1e-300);
    let mut jitter = 0.0;
    loop {
        let mut hj = h.clone();
        for j in 0..hj.nrows() {
            hj[(j, j)] += jitter;
        }
        if let Some(chol) = hj.cholesky() {
            return chol.solve(g);
        }
        jitter = if jitter == 0.0 { 1e-12 * scale } else { jitter * 10.0 };
        if jitter > 1e6 * scale {
            // Only reachable with non-finite entries; a zero step ends the fit.
            return DVector::zeros(g.len());
        }
    }
}

/// Difference of class means: `w = mean(pos) − mean(neg)`, bias puts the threshold halfway between
/// the two means. No fitting, no hyperparameter: the baseline a logistic probe must beat, and
/// often the better steering direction (Marks & Tegmark 2023).
pub fn fit_diff_of_means(x: &DMatrix<f64>, labels: &[bool]) -> Result<LinearProbe, ProbeError> {
    check_classifier_input(x, labels)?;
    let d = x.ncols();
    let (mut pos, mut neg) = (vec![0.0; d], vec![0.0; d]);
    let (mut n_pos, mut n_neg) = (0.0, 0.0);
    for (row, &label) in x.row_iter().zip(labels) {
        let (acc, count) = if label { (&mut pos, &mut n_pos) } else { (&mut neg, &mut n_neg) };
        *count += 1.0;
        for (a, v) in acc.iter_mut().zip(row.iter()) {
            *a += v;
        }
    }
    let weights: Vec<f64> = pos.iter().zip(&neg).map(|(p, q)| p / n_pos - q / n_neg).collect();
    let midpoint: Vec<f64> = pos.iter().zip(&neg).map(|(p, q)| 0.5 * (p / n_pos + q / n_neg)).collect();
    let bias = -weights.iter().zip(&midpoint).map(|(w, m)| w * m).sum::<f64>();
    Ok(LinearProbe { weights, bias })
}

/// A linear regression probe: `ŷ = Wᵀx + b`, one column of `weights` per target.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RidgeProbe {
    /// `[features, targets]`; serialised as one array per feature (row-major, readable in JSON).
    #[serde(serialize_with = "serialize_rows")]
    pub weights: DMatrix<f64>,
    /// One intercept per target.
    pub bias: Vec<f64>,
}

fn serialize_rows<S: serde::Serializer>(m: &DMatrix<f64>, serializer: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = serializer.serialize_seq(Some(m.nrows()))?;
    for row in m.row_iter() {
        seq.serialize_element(&row.iter().copied().collect::<Vec<f64>>())?;
    }
    seq.end()
}

impl RidgeProbe {
    /// Predictions `[samples, targets]` for every row of `x`.
    ///
    /// # Panics
    /// If `x` does not have one column per row of `weights`.
    pub fn predict(&self, x: &DMatrix<f64>) -> DMatrix<f64> {
        assert_eq!(
            x.ncols(),
            self.weights.nrows(),
            "RidgeProbe::predict: x has {} columns but the probe was fit on {} features",
            x.ncols(),
            self.weights.nrows()
        );
        let mut out = x * &self.weights;
        for (mut col, b) in out.column_iter_mut().zip(&self.bias) {
            col.add_scalar_mut(*b);
        }
        out
    }
}

/// Ridge regression of every target column on `x`, with an unpenalised intercept (fit by
/// centring). Minimises `(1/2n)·‖Y − XW − 1bᵀ‖² + (l2/2)·‖W‖²`, so `l2` does not scale with n; it is
/// in the units of the feature variance (features are *not* standardised: activations share one
/// scale). `l2 = 0` gives the minimum-norm least-squares solution, also when features > samples.
pub fn fit_ridge(x: &DMatrix<f64>, y: &DMatrix<f64>, l2: f64) -> Result<RidgeProbe, ProbeError> {
    check_l2(l2)?;
    if y.nrows() != x.nrows() {
        return Err(ProbeError::LengthMismatch {
            what: "rows of y (one per row of x)",
            expected: x.nrows(),
            got: y.nrows(),
        });
    }
    if x.nrows() < MIN_TRAIN_ROWS {
        return Err(ProbeError::TooFewSamples { what: "training rows", needed: MIN_TRAIN_ROWS, got: x.nrows() });
    }
    check_finite(x, "x")?;
    check_finite(y, "y")?;
    let n = x.nrows() as f64;
    let mx: Vec<f64> = x.column_iter().map(|c| c.sum() / n).collect();
    let my: Vec<f64> = y.column_iter().map(|c| c.sum() / n).collect();
    let mut xc = x.clone();
    for (mut c, m) in xc.column_iter_mut().zip(&mx) {
        c.add_scalar_mut(-m);
    }
    let mut yc = y.clone();
    for (mut c, m) in yc.column_iter_mut().zip(&my) {
        c.add_scalar_mut(-m);
    }
    let weights = if l2 > 0.0 {
        let mut gram = xc.transpose() * &xc / n;
        for j in 0..gram.nrows() {
            gram[(j, j)] += l2;
        }
        let rhs = xc.transpose() * &yc / n;
        match gram.clone().cholesky() {
            Some(chol) => chol.solve(&rhs),
            None => pinv_solve(gram, &rhs)?,
        }
    } else {
        pinv_solve(xc, &yc)?
    };
    let bias =
        (0..y.ncols()).map(|t| my[t] - weights.column(t).iter().zip(&mx).map(|(w, m)| w * m).sum::<f64>()).collect();
    if weights.iter().any(|w| !w.is_finite()) {
        return Err(ProbeError::NonFinite { what: "fitted ridge weights (rescale x to moderate magnitudes)" });
    }
    Ok(RidgeProbe { weights, bias })
}

/// Minimum-norm least-squares solution of `a · w = b` by an eigendecomposition of the smaller Gram
/// matrix (`aᵀa` or `a·aᵀ`). Not nalgebra's SVD: it loses accuracy on rank-deficient matrices
/// (dimforge/nalgebra#1172), and centred data is rank-deficient whenever samples ≤ features or
/// features are collinear. Directions with singular value below `1e-7 · σ_max` count as null.
fn pinv_solve(a: DMatrix<f64>, b: &DMatrix<f64>) -> Result<DMatrix<f64>, ProbeError> {
    let tall = a.nrows() >= a.ncols();
    let gram = if tall { a.transpose() * &a } else { &a * a.transpose() };
    let eig = gram.symmetric_eigen();
    let tol = eig.eigenvalues.amax() * 1e-14;
    let inv = eig.eigenvalues.map(|l| if l > tol { 1.0 / l } else { 0.0 });
    let q = &eig.eigenvectors;
    // pinv(gram) = Q · diag(inv) · Qᵀ.
    let mut q_scaled = q.clone();
    for (mut col, l) in q_scaled.column_iter_mut().zip(inv.iter()) {
        col *= *l;
    }
    let pinv = q_scaled * q.transpose();
    let w = if tall { pinv * (a.transpose() * b) } else { a.transpose() * (pinv * b) };
    if w.iter().all(|v| v.is_finite()) { Ok(w) } else { Err(ProbeError::NonFinite { what: "least-squares solution" }) }
}

/// Area under the ROC curve: the probability that a random positive outscores a random negative,
/// ties counted 1/2 (Mann–Whitney U / (n_pos · n_neg)). 0.5 = chance, 1 = perfect separation.
/// Infinite scores are ranked normally; NaN scores are rejected.
pub fn auroc(scores: &[f64], labels: &[bool]) -> Result<f64, ProbeError> {
    if scores.len() != labels.len() {
        return Err(ProbeError::LengthMismatch { what: "scores vs labels", expected: labels.len(), got: scores.len() });
    }
    if scores.iter().any(|s| s.is_nan()) {
        return Err(ProbeError::NonFinite { what: "scores" });
    }
    let n_pos = labels.iter().filter(|&&l| l).count();
    let n_neg = labels.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return Err(ProbeError::SingleClass { split: "scored" });
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let avg_rank = (start + 1 + end) as f64 / 2.0;
        rank_sum += avg_rank * order[start..end].iter().filter(|&&i| labels[i]).count() as f64;
        start = end;
    }
    let (p, q) = (n_pos as f64, n_neg as f64);
    Ok((rank_sum - p * (p + 1.0) / 2.0) / (p * q))
}

/// Fraction of samples where `score > threshold` agrees with the label. NaN when the slices are
/// empty or of different lengths.
pub fn accuracy(scores: &[f64], labels: &[bool], threshold: f64) -> f64 {
    if scores.is_empty() || scores.len() != labels.len() {
        return f64::NAN;
    }
    let correct = scores.iter().zip(labels).filter(|&(&s, &l)| (s > threshold) == l).count();
    correct as f64 / scores.len() as f64
}

/// Coefficient of determination `1 − SSE/SST` per target column: 1 = perfect, 0 = no better than
/// predicting the column's own mean, negative = worse. NaN for a column whose target is constant
/// (SST = 0), and for every column when the shapes differ or there are no rows.
pub fn r2_per_target(pred: &DMatrix<f64>, target: &DMatrix<f64>) -> Vec<f64> {
    if pred.shape() != target.shape() || target.nrows() == 0 {
        return vec![f64::NAN; target.ncols()];
    }
    let n = target.nrows() as f64;
    pred.column_iter()
        .zip(target.column_iter())
        .map(|(p, t)| {
            let mean = t.sum() / n;
            let sst: f64 = t.iter().map(|v| (v - mean).powi(2)).sum();
            let sse: f64 = p.iter().zip(t.iter()).map(|(a, b)| (a - b).powi(2)).sum();
            if sst == 0.0 { f64::NAN } else { 1.0 - sse / sst }
        })
        .collect()
}

/// Mean of [`r2_per_target`] over the target columns (NaN if any column's is, or no columns).
pub fn r2(pred: &DMatrix<f64>, target: &DMatrix<f64>) -> f64 {
    let per = r2_per_target(pred, target);
    if per.is_empty() { f64::NAN } else { per.iter().sum::<f64>() / per.len() as f64 }
}

/// Which linear classifier to fit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum ClassifierKind {
    Logistic { l2: f64 },
    DiffOfMeans,
}

impl ClassifierKind {
    fn fit(self, x: &DMatrix<f64>, labels: &[bool]) -> Result<LinearProbe, ProbeError> {
        match self {
            ClassifierKind::Logistic { l2 } => fit_logistic(x, labels, l2),
            ClassifierKind::DiffOfMeans => fit_diff_of_means(x, labels),
        }
    }
}

/// A classifier probe fit on the train split and scored on both.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassifierReport {
    pub kind: ClassifierKind,
    pub n_train: usize,
    pub n_test: usize,
    pub train_auroc: f64,
    pub test_auroc: f64,
    /// At the probe's own threshold (score > 0).
    pub test_accuracy: f64,
    pub probe: LinearProbe,
}

fn check_split(split: &Split, n: usize) -> Result<(), ProbeError> {
    let mut in_train = vec![false; n];
    for &i in &split.train {
        if i >= n {
            return Err(ProbeError::IndexOutOfRange { split: "train", index: i, n });
        }
        in_train[i] = true;
    }
    for &i in &split.test {
        if i >= n {
            return Err(ProbeError::IndexOutOfRange { split: "test", index: i, n });
        }
        if in_train[i] {
            return Err(ProbeError::SplitOverlap { index: i });
        }
    }
    Ok(())
}

/// Both halves of a validated problem: `(x_train, y_train, x_test, y_test)`.
type Halves<Y> = (DMatrix<f64>, Y, DMatrix<f64>, Y);

/// Validates a classification problem and splits it.
fn classification_data(x: &DMatrix<f64>, labels: &[bool], split: &Split) -> Result<Halves<Vec<bool>>, ProbeError> {
    if labels.len() != x.nrows() {
        return Err(ProbeError::LengthMismatch {
            what: "labels (one per row of x)",
            expected: x.nrows(),
            got: labels.len(),
        });
    }
    check_split(split, x.nrows())?;
    check_finite(x, "x")?;
    let (y_train, y_test) = (select(labels, &split.train), select(labels, &split.test));
    check_train_classes(&y_train)?;
    if y_test.iter().all(|&l| l) || y_test.iter().all(|&l| !l) {
        return Err(ProbeError::SingleClass { split: "test" });
    }
    Ok((select_rows(x, &split.train), y_train, select_rows(x, &split.test), y_test))
}

/// Fits a classifier on `split.train` and reports AUROC on both halves and test accuracy.
pub fn evaluate_classifier(
    kind: ClassifierKind,
    x: &DMatrix<f64>,
    labels: &[bool],
    split: &Split,
) -> Result<ClassifierReport, ProbeError> {
    let (x_train, y_train, x_test, y_test) = classification_data(x, labels, split)?;
    let probe = kind.fit(&x_train, &y_train)?;
    let test_scores = probe.scores(&x_test);
    Ok(ClassifierReport {
        kind,
        n_train: y_train.len(),
        n_test: y_test.len(),
        train_auroc: auroc(&probe.scores(&x_train), &y_train)?,
        test_auroc: auroc(&test_scores, &y_test)?,
        test_accuracy: accuracy(&test_scores, &y_test, 0.0),
        probe,
    })
}

/// A ridge probe fit on the train split and scored on both.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RegressionReport {
    pub n_train: usize,
    pub n_test: usize,
    /// Mean R² over targets.
    pub train_r2: f64,
    pub test_r2: f64,
    pub test_r2_per_target: Vec<f64>,
}

/// Validates a regression problem and splits it.
fn regression_data(x: &DMatrix<f64>, y: &DMatrix<f64>, split: &Split) -> Result<Halves<DMatrix<f64>>, ProbeError> {
    if y.nrows() != x.nrows() {
        return Err(ProbeError::LengthMismatch {
            what: "rows of y (one per row of x)",
            expected: x.nrows(),
            got: y.nrows(),
        });
    }
    check_split(split, x.nrows())?;
    if split.train.len() < MIN_TRAIN_ROWS {
        return Err(ProbeError::TooFewSamples {
            what: "training rows",
            needed: MIN_TRAIN_ROWS,
            got: split.train.len(),
        });
    }
    if split.test.len() < MIN_TEST_ROWS {
        return Err(ProbeError::TooFewSamples { what: "test rows", needed: MIN_TEST_ROWS, got: split.test.len() });
    }
    check_finite(x, "x")?;
    check_finite(y, "y")?;
    Ok((
        select_rows(x, &split.train),
        select_rows(y, &split.train),
        select_rows(x, &split.test),
        select_rows(y, &split.test),
    ))
}

/// Fits a ridge probe on `split.train` and reports R² on both halves. A test target that is
/// constant has R² NaN (see [`r2_per_target`]).
pub fn evaluate_regression(
    x: &DMatrix<f64>,
    y: &DMatrix<f64>,
    l2: f64,
    split: &Split,
) -> Result<(RidgeProbe, RegressionReport), ProbeError> {
    check_l2(l2)?;
    let (x_train, y_train, x_test, y_test) = regression_data(x, y, split)?;
    let probe = fit_ridge(&x_train, &y_train, l2)?;
    let test_r2_per_target = r2_per_target(&probe.predict(&x_test), &y_test);
    let report = RegressionReport {
        n_train: x_train.nrows(),
        n_test: x_test.nrows(),
        train_r2: r2(&probe.predict(&x_train), &y_train),
        test_r2: if test_r2_per_target.is_empty() {
            f64::NAN
        } else {
            test_r2_per_target.iter().sum::<f64>() / test_r2_per_target.len() as f64
        },
        test_r2_per_target,
    };
    Ok((probe, report))
}

/// Test AUROC of random directions: what a probe scores when it has learned nothing specific.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NullBaseline {
    /// Number of directions drawn.
    pub n: usize,
    pub mean: f64,
    /// 95th percentile (linear interpolation between order statistics).
    pub p95: f64,
    /// Best of the n: the bar for "a fitted probe beats searching n directions".
    pub max: f64,
}

/// Null baseline: test AUROC of `n_directions` random unit directions (isotropic Gaussian in the raw
/// feature space), each oriented (sign flipped) so that its train AUROC is ≥ 0.5 — the same single
/// bit a fitted probe learns from the train split. Same sample rules as [`evaluate_classifier`].
/// When the concept is strongly encoded in few dimensions, random directions overlap it and the
/// null sits above 0.5: that is the point — a probe must beat `max`, not 0.5.
pub fn random_direction_null(
    x: &DMatrix<f64>,
    labels: &[bool],
    split: &Split,
    n_directions: usize,
    rng: &mut impl Rng,
) -> Result<NullBaseline, ProbeError> {
    if n_directions == 0 {
        return Err(ProbeError::BadParameter {
            name: "n_directions",
            value: 0.0,
            why: "need at least one random direction (e.g. 100)",
        });
    }
    let (x_train, y_train, x_test, y_test) = classification_data(x, labels, split)?;
    let d = x.ncols();
    let mut aurocs = Vec::with_capacity(n_directions);
    for _ in 0..n_directions {
        let mut weights: Vec<f64> = (0..d).map(|_| rng.sample(StandardNormal)).collect();
        let norm = weights.iter().map(|w| w * w).sum::<f64>().sqrt();
        if norm > 0.0 {
            weights.iter_mut().for_each(|w| *w /= norm);
        }
        let mut probe = LinearProbe { weights, bias: 0.0 };
        if auroc(&probe.scores(&x_train), &y_train)? < 0.5 {
            probe.weights.iter_mut().for_each(|w| *w = -*w);
        }
        aurocs.push(auroc(&probe.scores(&x_test), &y_test)?);
    }
    aurocs.sort_by(f64::total_cmp);
    let pos = 0.95 * (n_directions - 1) as f64;
    let (lo, frac) = (pos.floor() as usize, pos.fract());
    let p95 = if lo + 1 < n_directions { aurocs[lo] * (1.0 - frac) + aurocs[lo + 1] * frac } else { aurocs[lo] };
    Ok(NullBaseline {
        n: n_directions,
        mean: aurocs.iter().sum::<f64>() / n_directions as f64,
        p95,
        max: aurocs[n_directions - 1],
    })
}

/// Permutes the entries at `rows` among themselves (the train rows), leaving every other entry.
fn permute_within<T: Copy>(values: &mut [T], rows: &[usize], rng: &mut impl Rng) {
    let mut taken: Vec<T> = rows.iter().map(|&r| values[r]).collect();
    taken.shuffle(rng);
    for (&r, v) in rows.iter().zip(taken) {
        values[r] = v;
    }
}

/// Control: the same probe fit on labels permuted within the train split, scored against the true
/// test labels. Returns that test AUROC, ≈ 0.5 on average. One draw spreads like an *unoriented*
/// random direction: by ≈ 0.4·cos(probe, concept) with cos ~ 1/√d, so in few dimensions with a
/// strong concept a single value can sit far from 0.5 — compare against [`random_direction_null`]
/// or repeat with several rngs before reading anything into it.
pub fn shuffled_label_control(
    kind: ClassifierKind,
    x: &DMatrix<f64>,
    labels: &[bool],
    split: &Split,
    rng: &mut impl Rng,
) -> Result<f64, ProbeError> {
    // Validate on the true labels first so errors describe the caller's data.
    classification_data(x, labels, split)?;
    let mut permuted = labels.to_vec();
    permute_within(&mut permuted, &split.train, rng);
    Ok(evaluate_classifier(kind, x, &permuted, split)?.test_auroc)
}

/// Regression analogue of [`shuffled_label_control`]: ridge fit on target rows permuted within the
/// train split; returns the test R² (mean over targets): ≈ −features/n_train on average, spreading
/// by ≈ 2/√n_train per target (chance alignment of the random fit with the real map).
pub fn shuffled_target_control(
    x: &DMatrix<f64>,
    y: &DMatrix<f64>,
    l2: f64,
    split: &Split,
    rng: &mut impl Rng,
) -> Result<f64, ProbeError> {
    check_l2(l2)?;
    regression_data(x, y, split)?;
    let mut order: Vec<usize> = (0..y.nrows()).collect();
    permute_within(&mut order, &split.train, rng);
    let permuted = y.select_rows(&order);
    Ok(evaluate_regression(x, &permuted, l2, split)?.1.test_r2)
}

#[cfg(test)]
mod tests {

    #[test]
    fn logistic_regression_recovers_known_coefficients_within_their_errors() {
        use rand::SeedableRng;
        // y ~ Bernoulli(σ(−0.3 + 1.5 z₁ + 0.8 z₂)) on standardised features, 10k samples.
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let truth = [-0.3, 1.5, 0.8];
        let n = 10_000;
        let mut x = DMatrix::<f64>::zeros(n, 2);
        let mut y = Vec::with_capacity(n);
        for i in 0..n {
            x[(i, 0)] = rng.random_range(-2.0..2.0);
            x[(i, 1)] = rng.random_range(-2.0..2.0);
        }
        let (mean, scale) = standardisation(&x);
        for i in 0..n {
            let z =
                truth[0] + truth[1] * (x[(i, 0)] - mean[0]) / scale[0] + truth[2] * (x[(i, 1)] - mean[1]) / scale[1];
            y.push(rng.random::<f64>() < sigmoid(z));
        }
        let f = logistic_regression(&x, &y, 0.0).unwrap();
        for (k, t) in truth.iter().enumerate() {
            assert!((f.coef[k] - t).abs() < 4.0 * f.se[k], "β{k} = {} ± {} vs {t}", f.coef[k], f.se[k]);
            assert!(f.se[k] > 0.0 && f.se[k] < 0.1, "{f:?}");
        }
        // A constant feature: an error, not a number.
        let mut c = x.clone();
        c.column_mut(1).fill(3.0);
        assert!(logistic_regression(&c, &y, 0.0).is_err());
    }

    use super::*;
    use mesalab_core::{Seed, StreamRng, Streams};
    use rand_distr::{Distribution, Normal};

    fn rng(name: &str) -> StreamRng {
        Streams::new(Seed(7)).stream(name)
    }

    fn gaussian(rows: usize, cols: usize, rng: &mut StreamRng) -> DMatrix<f64> {
        DMatrix::from_fn(rows, cols, |_, _| rng.sample(StandardNormal))
    }

    /// Gaussian x, labels = sign(w·x + noise) with a planted w: a linearly decodable concept.
    fn planted(n: usize, d: usize, noise: f64, rng: &mut StreamRng) -> (DMatrix<f64>, Vec<bool>, Vec<f64>) {
        let x = gaussian(n, d, rng);
        let w: Vec<f64> = (0..d).map(|_| rng.sample(StandardNormal)).collect();
        let eps = Normal::new(0.0, noise).unwrap();
        let labels = (0..n).map(|i| (0..d).map(|j| w[j] * x[(i, j)]).sum::<f64>() + eps.sample(rng) > 0.0).collect();
        (x, labels, w)
    }

    fn cosine(a: &[f64], b: &[f64]) -> f64 {
        crate::stats::cosine(a, b)
    }

    #[test]
    fn holdout_split_partitions_all_indices() {
        let s = holdout_split(10, 0.3, &mut rng("split")).unwrap();
        assert_eq!(s.test.len(), 3);
        let mut all = [s.train.clone(), s.test.clone()].concat();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        // Two rows still give one in each half.
        let s = holdout_split(2, 0.01, &mut rng("split")).unwrap();
        assert_eq!((s.train.len(), s.test.len()), (1, 1));
    }

    #[test]
    fn stratified_split_keeps_both_classes_in_both_halves() {
        // 3 positives among 40: a plain split would often put none in test.
        let labels: Vec<bool> = (0..40).map(|i| i % 13 == 0 && i > 0).collect();
        for seed in 0..20 {
            let s = stratified_split(&labels, 0.2, &mut Streams::new(Seed(seed)).stream("split")).unwrap();
            for half in [&s.train, &s.test] {
                assert!(half.iter().any(|&i| labels[i]) && half.iter().any(|&i| !labels[i]));
            }
            // round(3·0.2)=1 positive and round(37·0.2)=7 negatives in test.
            assert_eq!(s.test.len(), 8);
            assert_eq!(s.train.len() + s.test.len(), 40);
        }
    }

    #[test]
    fn planted_concept_is_found_by_both_classifiers() {
        let (x, labels, w) = planted(1200, 10, 0.3, &mut rng("planted"));
        let split = stratified_split(&labels, 0.25, &mut rng("split")).unwrap();
        for kind in [ClassifierKind::Logistic { l2: 1e-3 }, ClassifierKind::DiffOfMeans] {
            let report = evaluate_classifier(kind, &x, &labels, &split).unwrap();
            assert!(report.test_auroc > 0.97, "{kind:?}: test AUROC {}", report.test_auroc);
            assert!(report.test_accuracy > 0.9, "{kind:?}: test accuracy {}", report.test_accuracy);
            // For isotropic Gaussian x both estimate the planted direction.
            assert!(cosine(&report.probe.weights, &w) > 0.95, "{kind:?}: direction off the planted w");
            assert_eq!((report.n_train, report.n_test), (split.train.len(), split.test.len()));
        }
    }

    #[test]
    fn logistic_weights_are_in_the_original_feature_space() {
        // Scale feature 0 by 1000 and shift feature 1: the scores (hence AUROC) must be the same
        // as on the unscaled data, because the weights are mapped back from the standardised fit.
        let (x, labels, _) = planted(400, 3, 0.5, &mut rng("scaled"));
        let mut xs = x.clone();
        xs.column_mut(0).scale_mut(1000.0);
        xs.column_mut(1).add_scalar_mut(50.0);
        let p = fit_logistic(&x, &labels, 1e-2).unwrap();
        let ps = fit_logistic(&xs, &labels, 1e-2).unwrap();
        assert!((ps.weights[0] * 1000.0 - p.weights[0]).abs() < 1e-6 * p.weights[0].abs().max(1.0));
        let (s, ss) = (p.scores(&x), ps.scores(&xs));
        for (a, b) in s.iter().zip(&ss) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn logistic_matches_the_one_dimensional_closed_form() {
        // One feature, x ∈ {−1, +1}; P(y | x=+1) = 3/4, P(y | x=−1) = 1/4, no penalty. The MLE is
        // logit(3/4) = ln 3 at x = +1 and −ln 3 at x = −1, so w = ln 3, b = 0 (hand-derived).
        let xs = [1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0];
        let labels = [true, true, true, false, true, false, false, false];
        let x = DMatrix::from_column_slice(8, 1, &xs);
        let p = fit_logistic(&x, &labels, 0.0).unwrap();
        assert!((p.weights[0] - 3f64.ln()).abs() < 1e-8, "w = {}", p.weights[0]);
        assert!(p.bias.abs() < 1e-8, "b = {}", p.bias);
    }

    #[test]
    fn logistic_survives_separable_data_and_constant_features() {
        let mut x = DMatrix::from_fn(12, 2, |i, _| i as f64);
        x.column_mut(1).fill(3.0);
        let labels: Vec<bool> = (0..12).map(|i| i >= 6).collect();
        for l2 in [0.0, 1e-2] {
            let p = fit_logistic(&x, &labels, l2).unwrap();
            assert_eq!(p.weights[1], 0.0, "constant feature must get weight 0");
            assert_eq!(auroc(&p.scores(&x), &labels).unwrap(), 1.0);
        }
    }

    #[test]
    fn diff_of_means_is_hand_computable() {
        // pos mean (2, 1), neg mean (0, −1): w = (2, 2), midpoint (1, 0), b = −2.
        let x = DMatrix::from_row_slice(8, 2, &[2., 0., 2., 2., 1., 1., 3., 1., 0., -1., 0., -1., 1., -2., -1., 0.]);
        let labels = [true, true, true, true, false, false, false, false];
        let p = fit_diff_of_means(&x, &labels).unwrap();
        assert_eq!(p.weights, vec![2.0, 2.0]);
        assert_eq!(p.bias, -2.0);
        let dir = p.direction();
        assert!((dir[0] - 0.5f64.sqrt()).abs() < 1e-15 && (dir[1] - 0.5f64.sqrt()).abs() < 1e-15);
        assert_eq!(LinearProbe { weights: vec![0.0, 0.0], bias: 1.0 }.direction(), vec![0.0, 0.0]);
    }

    #[test]
    fn auroc_matches_hand_count_with_ties() {
        // Positives {0.4, 0.8}, negatives {0.1, 0.4, 0.3}. Pairs: 0.4 beats 0.1 and 0.3, ties 0.4
        // (½); 0.8 beats all three. (2 + ½ + 3) / 6 = 11/12.
        let scores = [0.1, 0.4, 0.4, 0.8, 0.3];
        let labels = [false, true, false, true, false];
        assert!((auroc(&scores, &labels).unwrap() - 11.0 / 12.0).abs() < 1e-15);
        assert_eq!(auroc(&[1.0, 1.0, 1.0], &[true, false, true]).unwrap(), 0.5);
        assert_eq!(auroc(&[3.0, 2.0, 1.0], &[true, false, false]).unwrap(), 1.0);
        assert_eq!(auroc(&[f64::NEG_INFINITY, f64::INFINITY], &[true, false]).unwrap(), 0.0);
    }

    #[test]
    fn accuracy_counts_scores_above_threshold_as_positive() {
        assert_eq!(accuracy(&[0.5, -0.5, 0.0, 2.0], &[true, false, true, false], 0.0), 0.5);
        assert!(accuracy(&[], &[], 0.0).is_nan());
        assert!(accuracy(&[1.0], &[true, false], 0.0).is_nan());
    }

    #[test]
    fn shuffled_labels_give_chance_auroc() {
        // A probe fit on shuffled labels points in a random direction, and a random direction's
        // test AUROC against a real concept deviates from 0.5 by ~0.4·cos(direction, concept), with
        // cos ~ 1/√d. So the control is tight only in many dimensions: d = 300 gives σ ≈ 0.03
        // (plus ≈ 0.018 sampling noise from 500 + 500 test samples), and 0.1 is > 3σ.
        let (x, labels, _) = planted(2000, 300, 0.3, &mut rng("planted"));
        let split = stratified_split(&labels, 0.5, &mut rng("split")).unwrap();
        for kind in [ClassifierKind::Logistic { l2: 1e-2 }, ClassifierKind::DiffOfMeans] {
            let real = evaluate_classifier(kind, &x, &labels, &split).unwrap().test_auroc;
            let a = shuffled_label_control(kind, &x, &labels, &split, &mut rng("shuffle")).unwrap();
            assert!((a - 0.5).abs() < 0.1, "{kind:?}: shuffled AUROC {a}");
            // Difference of means estimates 300 coordinates from 1000 samples, so it is noisier.
            assert!(real > 0.85, "{kind:?}: real AUROC {real}");
        }
    }

    #[test]
    fn random_direction_null_is_near_chance_and_below_a_real_probe() {
        let mut r = rng("null");
        let x = gaussian(800, 20, &mut r);
        let noise_labels: Vec<bool> = (0..800).map(|_| r.random_bool(0.5)).collect();
        let split = stratified_split(&noise_labels, 0.5, &mut r).unwrap();
        let null = random_direction_null(&x, &noise_labels, &split, 200, &mut r).unwrap();
        assert_eq!(null.n, 200);
        assert!((null.mean - 0.5).abs() < 0.03, "null mean {}", null.mean);
        assert!(null.p95 < 0.7 && null.p95 <= null.max && null.mean <= null.p95, "{null:?}");

        // With a planted concept, the fitted probe must beat the best random direction.
        let (x, labels, _) = planted(800, 20, 0.3, &mut r);
        let split = stratified_split(&labels, 0.5, &mut r).unwrap();
        let null = random_direction_null(&x, &labels, &split, 200, &mut r).unwrap();
        let fitted = evaluate_classifier(ClassifierKind::Logistic { l2: 1e-2 }, &x, &labels, &split).unwrap();
        assert!(fitted.test_auroc > null.max, "probe {} vs null max {}", fitted.test_auroc, null.max);
    }

    /// x Gaussian [n, 8], y = x·W + 0.01·noise with a planted W [8, 3] and intercepts.
    fn planted_regression(n: usize, r: &mut StreamRng) -> (DMatrix<f64>, DMatrix<f64>, DMatrix<f64>) {
        let x = gaussian(n, 8, r);
        let w = gaussian(8, 3, r);
        let mut y = &x * &w + gaussian(n, 3, r) * 0.01;
        for (t, mut col) in y.column_iter_mut().enumerate() {
            col.add_scalar_mut(t as f64 - 1.0);
        }
        (x, y, w)
    }

    #[test]
    fn ridge_recovers_a_planted_linear_map() {
        let mut r = rng("ridge");
        let (x, y, w) = planted_regression(300, &mut r);
        let split = holdout_split(300, 0.3, &mut r).unwrap();
        for l2 in [0.0, 1e-4] {
            let (probe, report) = evaluate_regression(&x, &y, l2, &split).unwrap();
            assert!(report.test_r2 > 0.99 && report.train_r2 > 0.99, "{report:?}");
            assert_eq!(report.test_r2_per_target.len(), 3);
            assert!((&probe.weights - &w).amax() < 0.01, "weights off the planted map");
            for (t, b) in probe.bias.iter().enumerate() {
                assert!((b - (t as f64 - 1.0)).abs() < 0.01, "bias {t} = {b}");
            }
        }
        // A fit on shuffled targets is a random map; its test R² is ≈ −d/n with a spread of
        // ≈ 2/√n_train per target (chance alignment with the real map), so use many rows.
        let (x, y, _) = planted_regression(4000, &mut r);
        let split = holdout_split(4000, 0.25, &mut r).unwrap();
        let shuffled = shuffled_target_control(&x, &y, 1e-4, &split, &mut r).unwrap();
        assert!(shuffled.abs() < 0.1, "shuffled-target R² {shuffled}");
    }

    #[test]
    fn ridge_matches_closed_form_shrinkage() {
        // One centred feature with (1/n)Σx² = 1 and y = 2x: the ridge weight is 2/(1 + l2).
        let x = DMatrix::from_column_slice(4, 1, &[1.0, -1.0, 1.0, -1.0]);
        let y = &x * 2.0;
        let p = fit_ridge(&x, &y, 1.0).unwrap();
        assert!((p.weights[(0, 0)] - 1.0).abs() < 1e-12 && p.bias[0].abs() < 1e-12);
        // More features than samples with l2 = 0: minimum-norm interpolation, no failure.
        let mut r = rng("wide");
        let (xw, yw) = (gaussian(5, 20, &mut r), gaussian(5, 2, &mut r));
        let pw = fit_ridge(&xw, &yw, 0.0).unwrap();
        // Residual ~1e-15 here; nalgebra's SVD gave up to 1e-4 on such centred (rank-deficient)
        // data, which is why pinv_solve does not use it.
        assert!((pw.predict(&xw) - &yw).amax() < 1e-9);
    }

    #[test]
    fn ridge_without_penalty_gives_the_minimum_norm_solution_for_collinear_features() {
        // Features (a, b, a + b), target 3a: every w = (3 − t, −t, t) fits exactly; ‖w‖² =
        // (3 − t)² + 2t² is least at t = 1, so the minimum-norm solution is w = (2, −1, 1).
        let mut r = rng("collinear");
        let ab = gaussian(50, 2, &mut r);
        let x = DMatrix::from_fn(50, 3, |i, j| if j < 2 { ab[(i, j)] } else { ab[(i, 0)] + ab[(i, 1)] });
        let y = ab.columns(0, 1) * 3.0;
        let p = fit_ridge(&x, &y, 0.0).unwrap();
        for (got, want) in p.weights.iter().zip([2.0, -1.0, 1.0]) {
            assert!((got - want).abs() < 1e-9, "weights {:?}", p.weights.as_slice());
        }
    }

    #[test]
    fn r2_of_perfect_and_mean_predictions() {
        let t = DMatrix::from_row_slice(4, 2, &[1.0, 5.0, 2.0, 3.0, 3.0, 1.0, 6.0, 7.0]);
        assert_eq!(r2_per_target(&t, &t), vec![1.0, 1.0]);
        let mean = DMatrix::from_fn(4, 2, |_, j| t.column(j).mean());
        assert_eq!(r2(&mean, &t), 0.0);
        // Off by 1 everywhere in column 0: SSE = 4, SST = 14 → 1 − 4/14.
        let mut p = t.clone();
        p.column_mut(0).add_scalar_mut(1.0);
        assert!((r2_per_target(&p, &t)[0] - (1.0 - 4.0 / 14.0)).abs() < 1e-15);
        let constant = DMatrix::from_element(3, 1, 2.0);
        assert!(r2(&constant, &constant).is_nan());
        assert!(r2(&t, &constant).is_nan());
    }

    #[test]
    fn every_error_variant_comes_from_the_right_bad_input() {
        use ProbeError::*;
        let mut r = rng("errors");
        let (x, labels, _) = planted(40, 3, 0.1, &mut r);
        let split = stratified_split(&labels, 0.25, &mut r).unwrap();
        let logistic = ClassifierKind::Logistic { l2: 1e-2 };

        // TooFewSamples
        let three_pos: Vec<bool> = (0..40).map(|i| i < 3).collect();
        assert_eq!(
            fit_logistic(&x, &three_pos, 0.1),
            Err(TooFewSamples { what: "positive training samples", needed: 4, got: 3 })
        );
        assert_eq!(holdout_split(1, 0.5, &mut r), Err(TooFewSamples { what: "samples to split", needed: 2, got: 1 }));
        let y = gaussian(40, 2, &mut r);
        let small = Split { train: vec![0, 1], test: vec![2, 3] };
        assert_eq!(
            evaluate_regression(&x, &y, 0.1, &small).unwrap_err(),
            TooFewSamples { what: "training rows", needed: 3, got: 2 }
        );
        let one_test = Split { train: vec![0, 1, 2], test: vec![3] };
        assert_eq!(
            evaluate_regression(&x, &y, 0.1, &one_test).unwrap_err(),
            TooFewSamples { what: "test rows", needed: 2, got: 1 }
        );
        // LengthMismatch
        assert_eq!(
            fit_diff_of_means(&x, &labels[..39]),
            Err(LengthMismatch { what: "labels (one per row of x)", expected: 40, got: 39 })
        );
        assert_eq!(
            auroc(&[0.0], &[true, false]),
            Err(LengthMismatch { what: "scores vs labels", expected: 2, got: 1 })
        );
        assert!(matches!(fit_ridge(&x, &y.rows(0, 10).into_owned(), 0.1), Err(LengthMismatch { .. })));
        // SingleClass
        assert_eq!(auroc(&[0.1, 0.2], &[true, true]), Err(SingleClass { split: "scored" }));
        assert_eq!(fit_logistic(&x, &[false; 40], 0.1), Err(SingleClass { split: "train" }));
        let pos: Vec<usize> = (0..40).filter(|&i| labels[i]).collect();
        let neg: Vec<usize> = (0..40).filter(|&i| !labels[i]).collect();
        let test_all_pos = Split { train: [&pos[1..], &neg[..]].concat(), test: vec![pos[0]] };
        assert_eq!(evaluate_classifier(logistic, &x, &labels, &test_all_pos), Err(SingleClass { split: "test" }));
        assert_eq!(stratified_split(&[true; 5], 0.5, &mut r), Err(SingleClass { split: "whole" }));
        // NonFinite
        let mut bad = x.clone();
        bad[(3, 1)] = f64::NAN;
        assert_eq!(evaluate_classifier(logistic, &bad, &labels, &split), Err(NonFinite { what: "x" }));
        let mut bad_y = y.clone();
        bad_y[(0, 0)] = f64::INFINITY;
        assert_eq!(fit_ridge(&x, &bad_y, 0.1), Err(NonFinite { what: "y" }));
        assert_eq!(auroc(&[f64::NAN, 0.0], &[true, false]), Err(NonFinite { what: "scores" }));
        // BadParameter
        assert!(matches!(fit_logistic(&x, &labels, -1.0), Err(BadParameter { name: "l2", .. })));
        assert!(matches!(fit_ridge(&x, &y, f64::NAN), Err(BadParameter { name: "l2", .. })));
        assert!(matches!(holdout_split(10, 1.0, &mut r), Err(BadParameter { name: "test_fraction", .. })));
        assert!(matches!(
            random_direction_null(&x, &labels, &split, 0, &mut r),
            Err(BadParameter { name: "n_directions", .. })
        ));
        // IndexOutOfRange / SplitOverlap
        let oob = Split { train: split.train.clone(), test: vec![40] };
        assert_eq!(
            evaluate_classifier(logistic, &x, &labels, &oob),
            Err(IndexOutOfRange { split: "test", index: 40, n: 40 })
        );
        let overlap = Split { train: split.train.clone(), test: vec![split.train[0], split.test[0]] };
        assert_eq!(evaluate_regression(&x, &y, 0.1, &overlap).unwrap_err(), SplitOverlap { index: split.train[0] });
        // Every message says what to do or what was expected.
        let msg = TooFewSamples { what: "training rows", needed: 3, got: 2 }.to_string();
        assert!(msg.contains("at least 3") && msg.contains("got 2"), "{msg}");
    }
}
