//! In-context regression with a *finite* pretraining prior (Raventós et al. 2023): tasks whose
//! teachers are drawn uniformly from a pool of M fixed vectors, and the Bayes-optimal predictor
//! for that discrete prior (dMMSE).
//!
//! Invariants: pool tasks have exactly the layout of [`Tasks`] (inputs, noise and query drawn as
//! [`Tasks::sample`] draws them), so every [`crate::icl::Algorithm`] runs on them unchanged; the
//! dMMSE posterior is computed in log space, so it never overflows and its weights sum to one.

use crate::icl::{TaskSpec, Tasks, XDist};
use rand::Rng;
use rand_distr::{Distribution, Normal};

/// M teacher vectors drawn once from the task prior `N(0, w_scale² I)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    pub d: usize,
    /// `[M, d]`.
    pub w: Vec<f64>,
}

impl Pool {
    pub fn sample(spec: &TaskSpec, m: usize, rng: &mut impl Rng) -> Self {
        let teacher = Normal::new(0.0, spec.w_scale).expect("finite scale");
        Self { d: spec.d, w: (0..m * spec.d).map(|_| teacher.sample(rng)).collect() }
    }

    pub fn len(&self) -> usize {
        self.w.len() / self.d.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.w.is_empty()
    }

    pub fn vector(&self, i: usize) -> &[f64] {
        &self.w[i * self.d..(i + 1) * self.d]
    }

    /// `count` tasks whose teachers are pool vectors chosen uniformly at random; inputs and label
    /// noise as `spec` says.
    pub fn tasks(&self, spec: &TaskSpec, count: usize, rng: &mut impl Rng) -> Tasks {
        assert!(!self.is_empty() && self.d == spec.d, "a pool of {}-vectors for a d = {} task", self.d, spec.d);
        let (d, n) = (spec.d, spec.n_context);
        let noise = Normal::new(0.0, spec.noise_std.max(0.0)).expect("finite noise");
        let mut x = Vec::with_capacity(count * (n + 1) * d);
        let mut y = Vec::with_capacity(count * (n + 1));
        let mut w = Vec::with_capacity(count * d);
        for _ in 0..count {
            let wt = self.vector(rng.random_range(0..self.len()));
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
                let clean: f64 = xi.iter().zip(wt).map(|(a, b)| a * b).sum();
                y.push(if spec.noise_std > 0.0 { clean + noise.sample(rng) } else { clean });
                x.extend(xi);
            }
            w.extend_from_slice(wt);
        }
        Tasks { d, n_context: n, count, x, y, w }
    }

    /// dMMSE implied weights `[count, d]`: per task the posterior mean of the teacher under the
    /// uniform prior on the pool and Gaussian label noise of variance `noise_var`,
    /// `Σ_i p_i w_i` with `p_i ∝ exp(−Σ_k (y_k − w_i·x_k)² / 2σ²)` over the context pairs.
    /// With `noise_var = 0` the posterior puts all its weight on the best-fitting vectors.
    pub fn dmmse_weights(&self, tasks: &Tasks, noise_var: f64) -> Vec<f64> {
        let (d, n, m) = (tasks.d, tasks.n_context, self.len());
        let mut out = Vec::with_capacity(tasks.count * d);
        let mut log_p = vec![0.0; m];
        for t in 0..tasks.count {
            for (i, lp) in log_p.iter_mut().enumerate() {
                let wi = self.vector(i);
                let sse: f64 = (0..n)
                    .map(|k| {
                        let r = tasks.yi(t, k) - tasks.xi(t, k).iter().zip(wi).map(|(a, b)| a * b).sum::<f64>();
                        r * r
                    })
                    .sum();
                *lp = if noise_var > 0.0 { -sse / (2.0 * noise_var) } else { -sse };
            }
            let max = log_p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let weights: Vec<f64> = if noise_var > 0.0 {
                log_p.iter().map(|l| (l - max).exp()).collect()
            } else {
                // The σ² → 0 limit: uniform over the exact best fits.
                log_p.iter().map(|l| f64::from(u8::from(*l >= max))).collect()
            };
            let total: f64 = weights.iter().sum();
            let mut v = vec![0.0; d];
            for (i, p) in weights.iter().enumerate() {
                for (vk, wk) in v.iter_mut().zip(self.vector(i)) {
                    *vk += p / total * wk;
                }
            }
            out.extend(v);
        }
        out
    }

    /// dMMSE predictions on `tasks`.
    pub fn dmmse_predict(&self, tasks: &Tasks, noise_var: f64) -> Vec<f64> {
        tasks.predict(&self.dmmse_weights(tasks, noise_var))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::icl::Algorithm;
    use mesalab_core::{Seed, Streams};

    fn spec(noise_std: f64) -> TaskSpec {
        TaskSpec { d: 4, n_context: 12, x: XDist::Gaussian { std: 1.0 }, w_scale: 1.0, noise_std }
    }

    #[test]
    fn pool_tasks_use_only_pool_teachers() {
        let s = Streams::new(Seed(1));
        let pool = Pool::sample(&spec(0.5), 3, &mut s.stream("pool"));
        assert_eq!(pool.len(), 3);
        let tasks = pool.tasks(&spec(0.5), 200, &mut s.stream("tasks"));
        let mut used = [false; 3];
        for t in 0..tasks.count {
            let w = &tasks.w[t * 4..(t + 1) * 4];
            let i = (0..3).find(|&i| pool.vector(i) == w).expect("a teacher outside the pool");
            used[i] = true;
        }
        assert!(used.iter().all(|u| *u), "200 draws from 3 vectors missed one");
    }

    #[test]
    fn dmmse_of_a_one_vector_pool_is_that_vector() {
        let s = Streams::new(Seed(2));
        let pool = Pool::sample(&spec(0.5), 1, &mut s.stream("pool"));
        let fresh = Tasks::sample(&spec(0.5), 20, &mut s.stream("fresh"));
        let w = pool.dmmse_weights(&fresh, 0.25);
        for t in 0..20 {
            for k in 0..4 {
                assert!((w[t * 4 + k] - pool.w[k]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn dmmse_identifies_pool_teachers_and_beats_ridge_on_pool_tasks() {
        let s = Streams::new(Seed(3));
        let sp = spec(0.5);
        let pool = Pool::sample(&sp, 8, &mut s.stream("pool"));
        let tasks = pool.tasks(&sp, 2000, &mut s.stream("tasks"));
        let dmmse = tasks.loss(&pool.dmmse_predict(&tasks, 0.25));
        let ridge = Algorithm::Ridge { lambda: 0.25 }.loss(&tasks);
        // The irreducible loss is 0.5·σ² = 0.125; dMMSE knows the 8 candidates, ridge does not.
        assert!(dmmse < ridge, "dMMSE {dmmse} vs ridge {ridge}");
        assert!(dmmse < 0.14, "dMMSE {dmmse} is far above the noise floor 0.125");
    }

    #[test]
    fn dmmse_posterior_is_stable_for_tiny_noise_and_matches_brute_force() {
        let s = Streams::new(Seed(4));
        let sp = spec(0.0);
        let pool = Pool::sample(&sp, 5, &mut s.stream("pool"));
        let tasks = pool.tasks(&sp, 50, &mut s.stream("tasks"));
        // Noise variance so small that exp(−sse/2σ²) underflows without the log-sum-exp shift.
        let w = pool.dmmse_weights(&tasks, 1e-9);
        assert!(w.iter().all(|v| v.is_finite()));
        for t in 0..tasks.count {
            for k in 0..4 {
                assert!((w[t * 4 + k] - tasks.w[t * 4 + k]).abs() < 1e-9, "task {t} not identified");
            }
        }
        // A moderate σ²: the posterior mean equals the direct (unshifted) formula.
        let fresh = Tasks::sample(&spec(0.5), 10, &mut s.stream("fresh"));
        let w = pool.dmmse_weights(&fresh, 4.0);
        for t in 0..fresh.count {
            let mut num = [0.0; 4];
            let mut den = 0.0;
            for i in 0..5 {
                let sse: f64 = (0..12)
                    .map(|k| {
                        let r =
                            fresh.yi(t, k) - fresh.xi(t, k).iter().zip(pool.vector(i)).map(|(a, b)| a * b).sum::<f64>();
                        r * r
                    })
                    .sum();
                let p = (-sse / 8.0).exp();
                den += p;
                for (nk, wk) in num.iter_mut().zip(pool.vector(i)) {
                    *nk += p * wk;
                }
            }
            for k in 0..4 {
                assert!((w[t * 4 + k] - num[k] / den).abs() < 1e-9);
            }
        }
    }
}
