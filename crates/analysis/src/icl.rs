//! In-context linear regression: tasks and the learning algorithms a transformer may implement.
//!
//! A task is a teacher `w ∈ R^d`, N context pairs `(x_i, y_i = w·x_i + ε)` and a query `x_q`
//! whose target `y_q` the learner must predict from the context alone. Every algorithm here is
//! linear in the query, so it is summarised per task by its *implied weights* `v`, with the
//! prediction `ŷ = v·x_q`. Algorithms (von Oswald et al. 2023; Akyürek et al. 2023):
//!
//! - `zero`: `v = 0`.
//! - k-step GD from `w = 0` on `L(w) = 1/(2N) Σ (w·x_i − y_i)²` with step size η
//!   (parameterised as `eta_over_n` = η/N, the number the trained LSA stores).
//! - k-step GD++: before each GD step every input is transformed `x ← (I − γ X Xᵀ) x`
//!   (X = the current context inputs), as the paper's trained multi-layer models do.
//! - OLS (minimum-norm least squares) and ridge regression.

use crate::stats::{golden_min, half_mse};
use nalgebra::{DMatrix, DVector};
use rand::Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

/// Distribution of the inputs x.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum XDist {
    /// Each coordinate ~ U(−half_width, half_width).
    Uniform { half_width: f64 },
    /// Each coordinate ~ N(0, std²).
    Gaussian { std: f64 },
}

/// The task distribution.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub d: usize,
    pub n_context: usize,
    pub x: XDist,
    /// Teacher w ~ N(0, w_scale² I).
    pub w_scale: f64,
    /// Label noise std on every y (context and query).
    pub noise_std: f64,
}

impl TaskSpec {
    /// The out-of-distribution shift of von Oswald et al.: x ~ U(−α, α) (or N(0, α²)), teacher
    /// scaled by α relative to this spec's teacher scale.
    pub fn shifted(&self, alpha: f64) -> Self {
        let x = match self.x {
            XDist::Uniform { .. } => XDist::Uniform { half_width: alpha },
            XDist::Gaussian { .. } => XDist::Gaussian { std: alpha },
        };
        Self { x, w_scale: self.w_scale * alpha, ..*self }
    }
}

/// A batch of tasks.
#[derive(Clone, Debug)]
pub struct Tasks {
    pub d: usize,
    pub n_context: usize,
    pub count: usize,
    /// `[count, N + 1, d]`: context inputs, then the query input.
    pub x: Vec<f64>,
    /// `[count, N + 1]`: context labels, then the query's target.
    pub y: Vec<f64>,
    /// `[count, d]`: the teachers.
    pub w: Vec<f64>,
}

impl Tasks {
    pub fn sample(spec: &TaskSpec, count: usize, rng: &mut impl Rng) -> Self {
        let (d, n) = (spec.d, spec.n_context);
        let teacher = Normal::new(0.0, spec.w_scale).expect("finite scale");
        let noise = Normal::new(0.0, spec.noise_std.max(0.0)).expect("finite noise");
        let mut x = Vec::with_capacity(count * (n + 1) * d);
        let mut y = Vec::with_capacity(count * (n + 1));
        let mut w = Vec::with_capacity(count * d);
        for _ in 0..count {
            let wt: Vec<f64> = (0..d).map(|_| teacher.sample(rng)).collect();
            for _ in 0..=n {
                let xi: Vec<f64> = match spec.x {
                    XDist::Uniform { half_width } => {
                        (0..d).map(|_| rng.random_range(-half_width..=half_width)).collect()
                    }
                    XDist::Gaussian { std } => {
                        let g = Normal::new(0.0, std).expect("finite std");
                        (0..d).map(|_| g.sample(rng)).collect()
                    }
                };
                let clean: f64 = xi.iter().zip(&wt).map(|(a, b)| a * b).sum();
                y.push(if spec.noise_std > 0.0 { clean + noise.sample(rng) } else { clean });
                x.extend(xi);
            }
            w.extend(wt);
        }
        Self { d, n_context: n, count, x, y, w }
    }

    /// Input `i` (context `0..N`, query `N`) of task `t`.
    pub fn xi(&self, t: usize, i: usize) -> &[f64] {
        let start = (t * (self.n_context + 1) + i) * self.d;
        &self.x[start..start + self.d]
    }

    pub fn yi(&self, t: usize, i: usize) -> f64 {
        self.y[t * (self.n_context + 1) + i]
    }

    /// Query targets, `[count]`.
    pub fn targets(&self) -> Vec<f64> {
        (0..self.count).map(|t| self.yi(t, self.n_context)).collect()
    }

    /// The transformer's input: tokens `(x_i, y_i)` for the context and `(x_q, 0)` for the query,
    /// `[count, N + 1, d + 1]` as f32.
    pub fn tokens(&self) -> Vec<f32> {
        let n = self.n_context;
        let mut out = Vec::with_capacity(self.count * (n + 1) * (self.d + 1));
        for t in 0..self.count {
            for i in 0..=n {
                out.extend(self.xi(t, i).iter().map(|v| *v as f32));
                out.push(if i < n { self.yi(t, i) as f32 } else { 0.0 });
            }
        }
        out
    }

    /// Predictions `v_t · x_q` from implied weights `[count, d]`.
    pub fn predict(&self, implied: &[f64]) -> Vec<f64> {
        (0..self.count)
            .map(|t| {
                let v = &implied[t * self.d..(t + 1) * self.d];
                v.iter().zip(self.xi(t, self.n_context)).map(|(a, b)| a * b).sum()
            })
            .collect()
    }

    /// `0.5 · mean (ŷ − y_q)²` of predictions.
    pub fn loss(&self, predictions: &[f64]) -> f64 {
        half_mse(predictions, &self.targets())
    }
}

/// Most GD steps an [`Algorithm::GdPpPerStep`] holds.
pub const MAX_STEPS: usize = 10;

/// An algorithm the model may implement, with its fitted hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Algorithm {
    Zero,
    /// `steps` GD steps (GD++ when `gamma > 0`) with step size `eta_over_n` = η/N.
    Gd {
        steps: usize,
        eta_over_n: f64,
        gamma: f64,
    },
    /// GD++ with its own step size per step, `etas[..steps]` (a model with separate weights per
    /// layer can use them).
    GdPpPerStep {
        steps: usize,
        etas: [f64; MAX_STEPS],
        gamma: f64,
    },
    /// GD++ with its own step size and its own input transform per step, `etas[..steps]` and
    /// `gammas[..steps]` (γ_s transforms the inputs after step s).
    GdPpFree {
        steps: usize,
        etas: [f64; MAX_STEPS],
        gammas: [f64; MAX_STEPS],
    },
    Ols,
    Ridge {
        lambda: f64,
    },
}

impl Algorithm {
    pub fn label(&self) -> String {
        match self {
            Algorithm::Zero => "zero predictor".into(),
            Algorithm::Gd { steps, gamma, .. } if *gamma > 0.0 => format!("{steps}-step GD++"),
            Algorithm::Gd { steps: 1, .. } => "one-step GD".into(),
            Algorithm::Gd { steps, .. } => format!("{steps}-step GD"),
            Algorithm::GdPpPerStep { steps, .. } => format!("{steps}-step GD++ (η per step)"),
            Algorithm::GdPpFree { steps, .. } => format!("{steps}-step GD++ (η and γ per step)"),
            Algorithm::Ols => "OLS".into(),
            Algorithm::Ridge { .. } => "ridge".into(),
        }
    }

    /// Implied weights `[count, d]` on `tasks`.
    pub fn implied_weights(&self, tasks: &Tasks) -> Vec<f64> {
        let mut out = Vec::with_capacity(tasks.count * tasks.d);
        for t in 0..tasks.count {
            match *self {
                Algorithm::Zero => out.extend(std::iter::repeat_n(0.0, tasks.d)),
                Algorithm::Gd { steps, eta_over_n, gamma } => {
                    out.extend(gd_pp_weights(tasks, t, &vec![eta_over_n; steps], &vec![gamma; steps]))
                }
                Algorithm::GdPpPerStep { steps, etas, gamma } => {
                    out.extend(gd_pp_weights(tasks, t, &etas[..steps], &vec![gamma; steps]))
                }
                Algorithm::GdPpFree { steps, etas, gammas } => {
                    out.extend(gd_pp_weights(tasks, t, &etas[..steps], &gammas[..steps]))
                }
                Algorithm::Ols => out.extend(least_squares(tasks, t, None)),
                Algorithm::Ridge { lambda } => out.extend(least_squares(tasks, t, Some(lambda))),
            }
        }
        out
    }

    pub fn predict(&self, tasks: &Tasks) -> Vec<f64> {
        tasks.predict(&self.implied_weights(tasks))
    }

    pub fn loss(&self, tasks: &Tasks) -> f64 {
        tasks.loss(&self.predict(tasks))
    }
}

/// Implied weights of k-step GD++ on task `t` (plain GD when `gamma == 0`).
///
/// Mirrors the token dynamics of the hand-built multi-layer LSA: per step, context labels become
/// residuals `r ← r − (η/N) Σ_j r_j (x_j·x_i)`, the query accumulates `(η/N) Σ_i r_i x_i·x_q`, and
/// every input (context and query) is multiplied by `(I − γ X Xᵀ)`. The query's input is tracked
/// as a linear map `M` (`x_q^(t) = M x_q`), which makes the implied weights exact.
fn gd_pp_weights(tasks: &Tasks, t: usize, etas: &[f64], gammas: &[f64]) -> Vec<f64> {
    let (d, n) = (tasks.d, tasks.n_context);
    let mut xs: Vec<f64> = (0..n).flat_map(|i| tasks.xi(t, i).to_vec()).collect(); // [N, d]
    let mut r: Vec<f64> = (0..n).map(|i| tasks.yi(t, i)).collect();
    let mut m = vec![0.0; d * d]; // [d, d], starts as I
    for k in 0..d {
        m[k * d + k] = 1.0;
    }
    let mut v = vec![0.0; d];
    for (&eta_over_n, &gamma) in etas.iter().zip(gammas) {
        // g = Σ_i r_i x_i  (the negative gradient times N)
        let mut g = vec![0.0; d];
        for i in 0..n {
            for k in 0..d {
                g[k] += r[i] * xs[i * d + k];
            }
        }
        // Query: ŷ += (η/N) gᵀ M x_q, so v += (η/N) Mᵀ g.
        for a in 0..d {
            for b in 0..d {
                v[b] += eta_over_n * m[a * d + b] * g[a];
            }
        }
        // Context residuals from the same (pre-update) inputs.
        let r_new: Vec<f64> = (0..n)
            .map(|i| {
                let xi = &xs[i * d..(i + 1) * d];
                r[i] - eta_over_n * xi.iter().zip(&g).map(|(a, b)| a * b).sum::<f64>()
            })
            .collect();
        r = r_new;
        if gamma != 0.0 {
            // S = X Xᵀ = Σ_i x_i x_iᵀ  [d, d];  T = I − γ S applied to inputs and to M.
            let mut s = vec![0.0; d * d];
            for i in 0..n {
                let xi = &xs[i * d..(i + 1) * d];
                for a in 0..d {
                    for b in 0..d {
                        s[a * d + b] += xi[a] * xi[b];
                    }
                }
            }
            let apply = |vec: &[f64]| -> Vec<f64> {
                (0..d).map(|a| vec[a] - gamma * (0..d).map(|b| s[a * d + b] * vec[b]).sum::<f64>()).collect()
            };
            for i in 0..n {
                let new = apply(&xs[i * d..(i + 1) * d]);
                xs[i * d..(i + 1) * d].copy_from_slice(&new);
            }
            // M ← T M, column by column.
            for c in 0..d {
                let col: Vec<f64> = (0..d).map(|a| m[a * d + c]).collect();
                let new = apply(&col);
                for a in 0..d {
                    m[a * d + c] = new[a];
                }
            }
        }
    }
    v
}

/// Minimum-norm least squares (`lambda = None`) or ridge on task `t`'s context.
fn least_squares(tasks: &Tasks, t: usize, lambda: Option<f64>) -> Vec<f64> {
    let (d, n) = (tasks.d, tasks.n_context);
    let x = DMatrix::from_fn(n, d, |i, k| tasks.xi(t, i)[k]);
    let y = DVector::from_fn(n, |i, _| tasks.yi(t, i));
    let w = match lambda {
        None => x.clone().svd(true, true).solve(&y, 1e-10).unwrap_or_else(|_| DVector::zeros(d)),
        Some(lambda) => {
            let a = x.transpose() * &x + DMatrix::identity(d, d) * lambda;
            let b = x.transpose() * y;
            a.cholesky().map(|c| c.solve(&b)).unwrap_or_else(|| DVector::zeros(d))
        }
    };
    w.iter().copied().collect()
}

/// One-step GD's optimal η/N on `tasks`, exactly: ŷ = c·a_t with a_t = Σ_i y_i x_i·x_q, so the
/// least-squares c = Σ a_t y_t / Σ a_t².
pub fn fit_one_step_gd(tasks: &Tasks) -> f64 {
    let a = Algorithm::Gd { steps: 1, eta_over_n: 1.0, gamma: 0.0 }.predict(tasks);
    let y = tasks.targets();
    let num: f64 = a.iter().zip(&y).map(|(a, y)| a * y).sum();
    let den: f64 = a.iter().map(|a| a * a).sum();
    if den > 0.0 { num / den } else { 0.0 }
}

/// k-step GD with η/N line-searched on `tasks`.
pub fn fit_gd(tasks: &Tasks, steps: usize) -> Algorithm {
    let c1 = fit_one_step_gd(tasks);
    if steps == 1 {
        return Algorithm::Gd { steps, eta_over_n: c1, gamma: 0.0 };
    }
    let loss = |eta: f64| Algorithm::Gd { steps, eta_over_n: eta, gamma: 0.0 }.loss(tasks);
    let eta_over_n = golden_min(loss, 0.0, 2.5 * c1.max(1e-6), 40);
    Algorithm::Gd { steps, eta_over_n, gamma: 0.0 }
}

/// k-step GD++ with (γ, η/N) fitted on `tasks`: golden search on γ, each γ with its best η.
pub fn fit_gd_pp(tasks: &Tasks, steps: usize) -> Algorithm {
    let c1 = fit_one_step_gd(tasks).max(1e-6);
    // γ·Σ_i x_i² is the fraction by which the transform shrinks the inputs; keep it below 1.
    let probe = tasks.count.min(256);
    let scale: f64 = (0..probe)
        .map(|t| (0..tasks.n_context).map(|i| crate::stats::dot(tasks.xi(t, i), tasks.xi(t, i))).sum::<f64>())
        .sum::<f64>()
        / (probe as f64 * tasks.d as f64);
    let gamma_max = 1.0 / scale.max(1e-9);
    let targets = tasks.targets();
    let best_eta = |gamma: f64| {
        let unrolled = Unrolled::new(tasks, steps, gamma);
        let eta = golden_min(|eta| half_mse(&unrolled.predict(tasks, eta), &targets), 0.0, 3.0 * c1, 20);
        (eta, half_mse(&unrolled.predict(tasks, eta), &targets))
    };
    let gamma = golden_min(|gamma| best_eta(gamma).1, 0.0, gamma_max, 16);
    Algorithm::Gd { steps, eta_over_n: best_eta(gamma).0, gamma }
}

/// k-step GD++ with a step size per step (a model with separate weights per layer is free to use
/// them): (γ, η_1..η_k) fitted by coordinate descent from the shared-η fit.
pub fn fit_gd_pp_per_step(tasks: &Tasks, steps: usize) -> Algorithm {
    let steps = steps.min(MAX_STEPS);
    let Algorithm::Gd { eta_over_n, mut gamma, .. } = fit_gd_pp(tasks, steps) else {
        unreachable!("fit_gd_pp returns Gd")
    };
    let c1 = fit_one_step_gd(tasks).max(1e-6);
    let targets = tasks.targets();
    let mut etas = vec![eta_over_n; steps];
    let loss_at = |gamma: f64, etas: &[f64]| {
        half_mse(&Unrolled::new(tasks, steps, gamma).predict_per_step(tasks, etas), &targets)
    };
    for _ in 0..3 {
        let unrolled = Unrolled::new(tasks, steps, gamma);
        for s in 0..steps {
            let best = best_step_size(&unrolled, tasks, &targets, &etas, s, c1);
            etas[s] = best;
        }
        let g = golden_min(|g| loss_at(g, &etas), 0.0, 2.0 * gamma.max(1e-3), 16);
        if loss_at(g, &etas) < loss_at(gamma, &etas) {
            gamma = g;
        }
    }
    let mut fixed = [0.0; MAX_STEPS];
    fixed[..steps].copy_from_slice(&etas);
    Algorithm::GdPpPerStep { steps, etas: fixed, gamma }
}

/// k-step GD++ with a step size and an input transform per step: (η_s, γ_s) fitted by coordinate
/// descent from the per-step-η fit (shared γ). γ_k (after the last step) does not change the
/// prediction and stays at the shared value.
pub fn fit_gd_pp_free(tasks: &Tasks, steps: usize) -> Algorithm {
    let steps = steps.min(MAX_STEPS);
    let Algorithm::GdPpPerStep { etas, gamma, .. } = fit_gd_pp_per_step(tasks, steps) else {
        unreachable!("fit_gd_pp_per_step returns GdPpPerStep")
    };
    let targets = tasks.targets();
    let mut etas = etas[..steps].to_vec();
    let mut gammas = vec![gamma; steps];
    let c1 = fit_one_step_gd(tasks).max(1e-6);
    let loss_at = |gammas: &[f64], etas: &[f64]| {
        half_mse(&Unrolled::with_gammas(tasks, gammas).predict_per_step(tasks, etas), &targets)
    };
    for _ in 0..3 {
        for s in 0..steps.saturating_sub(1) {
            let hi = 2.0 * gammas[s].max(1e-3);
            let g = golden_min(
                |g| {
                    let mut trial = gammas.clone();
                    trial[s] = g;
                    loss_at(&trial, &etas)
                },
                0.0,
                hi,
                16,
            );
            let mut trial = gammas.clone();
            trial[s] = g;
            if loss_at(&trial, &etas) < loss_at(&gammas, &etas) {
                gammas = trial;
            }
        }
        let unrolled = Unrolled::with_gammas(tasks, &gammas);
        for s in 0..steps {
            let best = best_step_size(&unrolled, tasks, &targets, &etas, s, c1);
            let mut trial = etas.clone();
            trial[s] = best;
            if half_mse(&unrolled.predict_per_step(tasks, &trial), &targets)
                <= half_mse(&unrolled.predict_per_step(tasks, &etas), &targets)
            {
                etas = trial;
            }
        }
    }
    let (mut e, mut g) = ([0.0; MAX_STEPS], [0.0; MAX_STEPS]);
    e[..steps].copy_from_slice(&etas);
    g[..steps].copy_from_slice(&gammas);
    Algorithm::GdPpFree { steps, etas: e, gammas: g }
}

/// Step `s`'s η/N that minimises the loss with the other steps' `etas` fixed (golden search on
/// [0, 4·c1], c1 = one-step GD's η/N).
fn best_step_size(unrolled: &Unrolled, tasks: &Tasks, targets: &[f64], etas: &[f64], s: usize, c1: f64) -> f64 {
    let mut trial = etas.to_vec();
    golden_min(
        |e| {
            trial[s] = e;
            half_mse(&unrolled.predict_per_step(tasks, &trial), targets)
        },
        0.0,
        4.0 * c1,
        24,
    )
}

/// GD++ with the input transforms precomputed. The inputs' trajectory depends on γ only, not on
/// η, so for a fixed γ each candidate η costs O(steps·N·d) per task instead of O(steps·N·d²).
struct Unrolled {
    steps: usize,
    /// `[count, steps, N, d]`: context inputs before each step.
    xs: Vec<f64>,
    /// `[count, steps, d]`: the query input before each step.
    q: Vec<f64>,
}

impl Unrolled {
    fn new(tasks: &Tasks, steps: usize, gamma: f64) -> Self {
        Self::with_gammas(tasks, &vec![gamma; steps])
    }

    /// Input transforms with `gammas[s]` after step s (one step per entry).
    fn with_gammas(tasks: &Tasks, gammas: &[f64]) -> Self {
        let steps = gammas.len();
        let (d, n) = (tasks.d, tasks.n_context);
        let mut xs_all = Vec::with_capacity(tasks.count * steps * n * d);
        let mut q_all = Vec::with_capacity(tasks.count * steps * d);
        for t in 0..tasks.count {
            let mut xs: Vec<f64> = (0..n).flat_map(|i| tasks.xi(t, i).to_vec()).collect(); // [N, d]
            let mut q = tasks.xi(t, n).to_vec();
            for &gamma in gammas {
                xs_all.extend_from_slice(&xs);
                q_all.extend_from_slice(&q);
                // Every input x ← x − γ Σ_i x_i (x_i·x), from the pre-step context.
                let old = xs.clone();
                let transform = |x: &[f64]| -> Vec<f64> {
                    let mut out = x.to_vec();
                    for i in 0..n {
                        let xi = &old[i * d..(i + 1) * d];
                        let c = gamma * crate::stats::dot(xi, x);
                        for k in 0..d {
                            out[k] -= c * xi[k];
                        }
                    }
                    out
                };
                for i in 0..n {
                    let new = transform(&old[i * d..(i + 1) * d]);
                    xs[i * d..(i + 1) * d].copy_from_slice(&new);
                }
                q = transform(&q);
            }
        }
        Self { steps, xs: xs_all, q: q_all }
    }

    fn predict(&self, tasks: &Tasks, eta_over_n: f64) -> Vec<f64> {
        self.predict_per_step(tasks, &vec![eta_over_n; self.steps])
    }

    /// Predictions with step size `etas[s]` at step s.
    fn predict_per_step(&self, tasks: &Tasks, etas: &[f64]) -> Vec<f64> {
        let (d, n, steps) = (tasks.d, tasks.n_context, self.steps);
        let mut out = Vec::with_capacity(tasks.count);
        let mut r = vec![0.0; n];
        let mut g = vec![0.0; d];
        for t in 0..tasks.count {
            for (i, ri) in r.iter_mut().enumerate() {
                *ri = tasks.yi(t, i);
            }
            let mut y_hat = 0.0;
            for (s, &eta) in etas.iter().enumerate().take(steps) {
                let xs = &self.xs[((t * steps + s) * n) * d..((t * steps + s + 1) * n) * d];
                let q = &self.q[(t * steps + s) * d..(t * steps + s + 1) * d];
                g.iter_mut().for_each(|v| *v = 0.0);
                for i in 0..n {
                    for k in 0..d {
                        g[k] += r[i] * xs[i * d + k];
                    }
                }
                y_hat += eta * crate::stats::dot(&g, q);
                for i in 0..n {
                    r[i] -= eta * crate::stats::dot(&xs[i * d..(i + 1) * d], &g);
                }
            }
            out.push(y_hat);
        }
        out
    }
}

/// Ridge with λ chosen from a log grid on `tasks`.
pub fn fit_ridge(tasks: &Tasks) -> Algorithm {
    let grid = [1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0];
    let lambda = grid
        .into_iter()
        .map(|lambda| (lambda, Algorithm::Ridge { lambda }.loss(tasks)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(l, _)| l)
        .unwrap_or(1e-3);
    Algorithm::Ridge { lambda }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesalab_core::{Seed, Streams};

    fn default_spec() -> TaskSpec {
        TaskSpec { d: 10, n_context: 10, x: XDist::Uniform { half_width: 0.5 }, w_scale: 1.0, noise_std: 0.0 }
    }

    fn tasks(count: usize, stream: &str) -> Tasks {
        Tasks::sample(&default_spec(), count, &mut Streams::new(Seed(0)).stream(stream))
    }

    /// Ahn et al. 2023: for x ~ N(0, I_d), w ~ N(0, I_d), noiseless, the best single GD step from
    /// w = 0 has η*/N = 1/(N + d + 1) (from E[XᵀX] = N·I and E[(XᵀX)²] = N(N + d + 1)·I), and its
    /// risk relative to the zero predictor is (d + 1)/(N + d + 1). The line search on 20k sampled
    /// tasks must find both, for d ≠ N, N > d and N < d: η within 2%, the risk ratio within four
    /// of its standard errors (per-task squared errors are heavy-tailed, so its sampling error is
    /// ≈ 1–2%; the SE is computed from the same tasks by the delta method).
    #[test]
    fn line_searched_one_step_gd_matches_the_gaussian_closed_form() {
        for (d, n) in [(5, 20), (10, 10), (20, 10), (10, 40)] {
            let spec = TaskSpec { d, n_context: n, x: XDist::Gaussian { std: 1.0 }, w_scale: 1.0, noise_std: 0.0 };
            let t = Tasks::sample(&spec, 20_000, &mut Streams::new(Seed(d as u64 * 100 + n as u64)).stream("x"));
            let eta = fit_one_step_gd(&t);
            let closed = 1.0 / (n + d + 1) as f64;
            assert!((eta / closed - 1.0).abs() < 0.02, "d={d} N={n}: line search {eta}, closed form {closed}");
            let pred = Algorithm::Gd { steps: 1, eta_over_n: eta, gamma: 0.0 }.predict(&t);
            let y = t.targets();
            let e_gd: Vec<f64> = pred.iter().zip(&y).map(|(p, y)| (p - y).powi(2)).collect();
            let e_zero: Vec<f64> = y.iter().map(|y| y * y).collect();
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let ratio = mean(&e_gd) / mean(&e_zero);
            let resid: Vec<f64> = e_gd.iter().zip(&e_zero).map(|(g, z)| g - ratio * z).collect();
            let var = resid.iter().map(|r| r * r).sum::<f64>() / (resid.len() - 1) as f64;
            let se = var.sqrt() / (resid.len() as f64).sqrt() / mean(&e_zero);
            let relative = (d + 1) as f64 / (n + d + 1) as f64;
            assert!(se < 0.03 * relative, "d={d} N={n}: standard error {se} too large to test anything");
            assert!(
                (ratio - relative).abs() < 4.0 * se,
                "d={d} N={n}: GD/zero {ratio} ± {se} vs closed form {relative}"
            );
        }
    }

    #[test]
    fn ols_recovers_the_teacher_on_noiseless_tasks() {
        let t = tasks(50, "a");
        let w = Algorithm::Ols.implied_weights(&t);
        let err: f64 = w.iter().zip(&t.w).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(err < 1e-6, "max |w_ols − w| = {err}");
    }

    #[test]
    fn gd_implied_weights_match_an_explicit_gradient_step() {
        let t = tasks(3, "b");
        let alg = Algorithm::Gd { steps: 2, eta_over_n: 0.4, gamma: 0.0 };
        let v = alg.implied_weights(&t);
        for task in 0..3 {
            let mut w = vec![0.0; 10];
            for _ in 0..2 {
                let mut g = [0.0; 10];
                for i in 0..10 {
                    let x = t.xi(task, i);
                    let r = t.yi(task, i) - crate::stats::dot(&w, x);
                    for k in 0..10 {
                        g[k] += r * x[k];
                    }
                }
                for k in 0..10 {
                    w[k] += 0.4 * g[k];
                }
            }
            for k in 0..10 {
                assert!((v[task * 10 + k] - w[k]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn unrolled_gd_pp_equals_the_implied_weights() {
        let t = tasks(20, "c");
        let alg = Algorithm::Gd { steps: 3, eta_over_n: 0.9, gamma: 0.15 };
        let fast = Unrolled::new(&t, 3, 0.15).predict(&t, 0.9);
        for (a, b) in fast.iter().zip(alg.predict(&t)) {
            assert!((a - b).abs() < 1e-10, "{a} vs {b}");
        }
    }

    /// Free per-step γ contains the shared-γ family (never worse on the fit tasks), its implied
    /// weights equal the unrolled predictions, and with equal γ's it is per-step GD++ exactly.
    #[test]
    fn free_gd_pp_contains_the_shared_gamma_fit() {
        let fit = tasks(1500, "free");
        let per_step = fit_gd_pp_per_step(&fit, 3);
        let free = fit_gd_pp_free(&fit, 3);
        assert!(free.loss(&fit) <= per_step.loss(&fit) + 1e-12, "{} vs {}", free.loss(&fit), per_step.loss(&fit));
        let Algorithm::GdPpFree { etas, gammas, .. } = free else { unreachable!() };
        let fast = Unrolled::with_gammas(&fit, &gammas[..3]).predict_per_step(&fit, &etas[..3]);
        for (a, b) in fast.iter().zip(free.predict(&fit)) {
            assert!((a - b).abs() < 1e-10);
        }
        let Algorithm::GdPpPerStep { etas, gamma, .. } = per_step else { unreachable!() };
        let same = Algorithm::GdPpFree { steps: 3, etas, gammas: [gamma; MAX_STEPS] };
        for (a, b) in same.predict(&fit).iter().zip(per_step.predict(&fit)) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn per_step_gd_pp_is_at_least_as_good_and_consistent() {
        let fit = tasks(2000, "fit");
        let shared = fit_gd_pp(&fit, 2);
        let per_step = fit_gd_pp_per_step(&fit, 2);
        assert!(per_step.loss(&fit) <= shared.loss(&fit) + 1e-12);
        let Algorithm::GdPpPerStep { etas, gamma, .. } = per_step else { unreachable!() };
        let fast = Unrolled::new(&fit, 2, gamma).predict_per_step(&fit, &etas[..2]);
        for (a, b) in fast.iter().zip(per_step.predict(&fit)) {
            assert!((a - b).abs() < 1e-10);
        }
    }

    /// Reference run (RESEARCH.md §1, an independent numpy re-implementation, d = N = 10,
    /// x ~ U(−0.5, 0.5)): η*/N = 0.604, one-step GD 0.2066, zero 0.42, 2-step GD 0.159,
    /// 3-step GD 0.135, 2-step GD++ 0.110 at γ ≈ 0.175, 3-step GD++ 0.076.
    /// Measured here: η*/N 0.603–0.608; over five 10k-task validation sets one-step GD
    /// 0.2023–0.2066, zero 0.408–0.417, 2-step GD 0.151–0.157, 3-step GD 0.128–0.134, 2-step GD++
    /// 0.105–0.112 at γ ≈ 0.177, 3-step GD++ 0.077–0.079: the reference numbers sit inside the
    /// spread of 10k-task validation sets. The tolerances allow for that spread; the orderings are
    /// exact claims.
    #[test]
    fn baselines_reproduce_the_reference_numbers() {
        let fit = tasks(10_000, "fit");
        let val = tasks(10_000, "val");
        let gd1 = fit_gd(&fit, 1);
        let Algorithm::Gd { eta_over_n, .. } = gd1 else { unreachable!() };
        assert!((eta_over_n - 0.604).abs() < 0.02, "eta*/N = {eta_over_n}");
        let close = |got: f64, want: f64, tol: f64| assert!((got / want - 1.0).abs() < tol, "{got} vs {want}");
        close(gd1.loss(&val), 0.2066, 0.04);
        close(Algorithm::Zero.loss(&val), 0.42, 0.04);
        let gd2 = fit_gd(&fit, 2).loss(&val);
        let gd3 = fit_gd(&fit, 3).loss(&val);
        close(gd2, 0.159, 0.06);
        close(gd3, 0.135, 0.07);
        let pp = fit_gd_pp(&fit, 2);
        let pp2 = pp.loss(&val);
        close(pp2, 0.110, 0.06);
        close(fit_gd_pp(&fit, 3).loss(&val), 0.076, 0.05);
        assert!(pp2 < gd3 && gd3 < gd2 && gd2 < gd1.loss(&val));
        let Algorithm::Gd { gamma, .. } = pp else { unreachable!() };
        assert!((gamma - 0.175).abs() < 0.03, "gamma = {gamma}");
    }
}
