//! Logistic regression by Newton's method (IRLS), plain `f64`, with standard errors from the
//! inverse observed Fisher information — the regression Mini, Turner et al. 2023 ran on the maze
//! agent's choices at decision squares.

use mesalab_analysis::stats::sigmoid;
use serde::{Deserialize, Serialize};

/// A fitted model `P(y = 1 | x) = σ(β₀ + Σ βᵢ xᵢ)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogisticFit {
    /// `[β₀, β₁, …]`: the intercept first, then one coefficient per feature.
    pub coef: Vec<f64>,
    /// Standard errors of `coef` (square roots of the diagonal of `(XᵀWX + λI)⁻¹` at the optimum).
    pub se: Vec<f64>,
    /// Newton iterations taken.
    pub iterations: usize,
    /// Largest coefficient change of the last step fell below the tolerance.
    pub converged: bool,
    /// Mean log-likelihood per sample at the optimum.
    pub mean_log_likelihood: f64,
    /// Share of samples classified right at threshold 0.5.
    pub accuracy: f64,
    pub n: usize,
}

impl LogisticFit {
    /// `P(y = 1 | x)`.
    pub fn predict(&self, x: &[f64]) -> f64 {
        sigmoid(self.coef[0] + x.iter().zip(&self.coef[1..]).map(|(a, b)| a * b).sum::<f64>())
    }
}

/// Fits `y` on `x` (rows of equal length; an intercept is added). `ridge` (λ ≥ 0) adds `λ/2·‖β‖²`
/// on the non-intercept coefficients, which keeps the fit finite under (quasi-)separation; use 0
/// for the plain maximum-likelihood estimate. `None` when there are no samples or the Hessian is
/// singular.
pub fn fit(x: &[Vec<f64>], y: &[bool], ridge: f64) -> Option<LogisticFit> {
    let n = x.len();
    if n == 0 || n != y.len() {
        return None;
    }
    let p = x[0].len() + 1;
    let row = |i: usize| std::iter::once(1.0).chain(x[i].iter().copied());
    let mut beta = vec![0.0; p];
    let (mut iterations, mut converged) = (0, false);
    let mut hessian_inv = None;
    for _ in 0..100 {
        iterations += 1;
        // Gradient g = Xᵀ(y − μ) − λβ and Hessian H = XᵀWX + λI (of the negative log-likelihood).
        let mut g = vec![0.0; p];
        let mut h = vec![0.0; p * p];
        for (i, &yi) in y.iter().enumerate() {
            let xi: Vec<f64> = row(i).collect();
            let mu = sigmoid(xi.iter().zip(&beta).map(|(a, b)| a * b).sum());
            let w = (mu * (1.0 - mu)).max(1e-12);
            let r = f64::from(u8::from(yi)) - mu;
            for a in 0..p {
                g[a] += xi[a] * r;
                for b in 0..p {
                    h[a * p + b] += w * xi[a] * xi[b];
                }
            }
        }
        for a in 1..p {
            g[a] -= ridge * beta[a];
            h[a * p + a] += ridge;
        }
        let inv = invert(&h, p)?;
        let mut max_change: f64 = 0.0;
        for a in 0..p {
            let delta: f64 = (0..p).map(|b| inv[a * p + b] * g[b]).sum();
            beta[a] += delta;
            max_change = max_change.max(delta.abs());
        }
        hessian_inv = Some(inv);
        if max_change < 1e-10 {
            converged = true;
            break;
        }
    }
    // Standard errors at the final β (recompute the Hessian there).
    let mut h = vec![0.0; p * p];
    let (mut ll, mut correct) = (0.0, 0usize);
    for (i, &yi) in y.iter().enumerate() {
        let xi: Vec<f64> = row(i).collect();
        let mu = sigmoid(xi.iter().zip(&beta).map(|(a, b)| a * b).sum());
        let w = (mu * (1.0 - mu)).max(1e-12);
        for a in 0..p {
            for b in 0..p {
                h[a * p + b] += w * xi[a] * xi[b];
            }
        }
        ll += if yi { mu.max(1e-300).ln() } else { (1.0 - mu).max(1e-300).ln() };
        correct += usize::from((mu >= 0.5) == yi);
    }
    for a in 1..p {
        h[a * p + a] += ridge;
    }
    let inv = invert(&h, p).or(hessian_inv)?;
    let se = (0..p).map(|a| inv[a * p + a].max(0.0).sqrt()).collect();
    Some(LogisticFit {
        coef: beta,
        se,
        iterations,
        converged,
        mean_log_likelihood: ll / n as f64,
        accuracy: correct as f64 / n as f64,
        n,
    })
}

/// Inverse of the `p × p` row-major matrix `m` by Gauss–Jordan elimination with partial pivoting.
fn invert(m: &[f64], p: usize) -> Option<Vec<f64>> {
    let mut a = m.to_vec();
    let mut inv = vec![0.0; p * p];
    for i in 0..p {
        inv[i * p + i] = 1.0;
    }
    let scale = m.iter().fold(0.0f64, |s, v| s.max(v.abs())).max(1e-300);
    for col in 0..p {
        let pivot = (col..p).max_by(|&r, &s| a[r * p + col].abs().total_cmp(&a[s * p + col].abs()))?;
        if a[pivot * p + col].abs() < 1e-13 * scale {
            return None;
        }
        for k in 0..p {
            a.swap(col * p + k, pivot * p + k);
            inv.swap(col * p + k, pivot * p + k);
        }
        let d = a[col * p + col];
        for k in 0..p {
            a[col * p + k] /= d;
            inv[col * p + k] /= d;
        }
        for r in 0..p {
            if r != col {
                let f = a[r * p + col];
                if f != 0.0 {
                    for k in 0..p {
                        a[r * p + k] -= f * a[col * p + k];
                        inv[r * p + k] -= f * inv[col * p + k];
                    }
                }
            }
        }
    }
    Some(inv)
}

/// Column means and standard deviations (population; 1 where a column is constant).
pub fn standardizer(x: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>) {
    let p = x.first().map_or(0, Vec::len);
    let n = x.len().max(1) as f64;
    let mean: Vec<f64> = (0..p).map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n).collect();
    let std: Vec<f64> = (0..p)
        .map(|j| {
            let v = x.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n;
            if v > 1e-24 { v.sqrt() } else { 1.0 }
        })
        .collect();
    (mean, std)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn recovers_known_coefficients_within_their_standard_errors() {
        // y ~ Bernoulli(σ(0.5 + 2 x₁ − 1 x₂)), x ~ N(0,1)-ish (uniform ±√3), 20k samples.
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let truth = [0.5, 2.0, -1.0];
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..20_000 {
            let r: Vec<f64> = (0..2).map(|_| rng.random_range(-1.732..1.732)).collect();
            let p = sigmoid(truth[0] + truth[1] * r[0] + truth[2] * r[1]);
            y.push(rng.random::<f64>() < p);
            x.push(r);
        }
        let f = fit(&x, &y, 0.0).unwrap();
        assert!(f.converged);
        for (k, t) in truth.iter().enumerate() {
            assert!((f.coef[k] - t).abs() < 4.0 * f.se[k], "β{k} = {} ± {} vs {t}", f.coef[k], f.se[k]);
            assert!(f.se[k] > 0.005 && f.se[k] < 0.1, "se {k} = {}", f.se[k]);
        }
        assert!(f.accuracy > 0.7);
    }

    #[test]
    fn separable_data_stays_finite_with_a_ridge() {
        let x: Vec<Vec<f64>> = (0..20).map(|i| vec![f64::from(i)]).collect();
        let y: Vec<bool> = (0..20).map(|i| i >= 10).collect();
        let f = fit(&x, &y, 1e-2).unwrap();
        assert!(f.coef.iter().all(|c| c.is_finite()) && f.coef[1] > 0.0);
        assert_eq!(f.accuracy, 1.0);
    }

    #[test]
    fn inverse_of_a_known_matrix() {
        let inv = invert(&[4.0, 7.0, 2.0, 6.0], 2).unwrap();
        let want = [0.6, -0.7, -0.2, 0.4];
        for (a, b) in inv.iter().zip(want) {
            assert!((a - b).abs() < 1e-12);
        }
        assert!(invert(&[1.0, 2.0, 2.0, 4.0], 2).is_none());
    }
}
