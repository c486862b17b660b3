//! Sequences from random linear dynamical systems and the in-context learners that predict them
//! (von Oswald et al. 2023b).
//!
//! A sequence draws `W = ρ·Q` (Q Haar-random orthogonal, so every eigenvalue has modulus ρ),
//! `s_1 ~ N(0, I)` and `s_{t+1} = W s_t + σ ε`. At position t (1-based) a learner has seen the
//! pairs `(s_{j−1}, s_j)` for `j ≤ t` (with `s_0 = 0`) and predicts `s_{t+1}` as `Ŵ_t s_t`. Every
//! learner here is a rule for `Ŵ_t`:
//!
//! - `zero`: `Ŵ = 0` (the best context-free linear map too, since `E[W] = 0` — a model that does
//!   not learn in context cannot beat it by more than chance);
//! - k-step GD from `W = 0` on `L_t(W) = 1/(2t) Σ_{j≤t} ‖W s_{j−1} − s_j‖²`, step size η;
//! - ridge / online least squares: `Ŵ_t = (Σ s_j s_{j−1}ᵀ)(Σ s_{j−1} s_{j−1}ᵀ + λ I)⁻¹`;
//! - `oracle`: the true W (the noise floor).

use crate::stats::golden_min;
use nalgebra::{DMatrix, DVector};
use rand::Rng;
use rand_distr::{Distribution, Normal, StandardNormal};
use serde::{Deserialize, Serialize};

/// The sequence distribution.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LdsSpec {
    /// State width d.
    pub d: usize,
    /// Predicted positions T per sequence (the sequence holds T + 1 states).
    pub positions: usize,
    /// Spectral radius ρ of W.
    pub rho: f64,
    /// Transition noise σ.
    pub noise_std: f64,
}

/// A batch of sequences.
#[derive(Clone, Debug)]
pub struct Sequences {
    pub d: usize,
    pub positions: usize,
    pub count: usize,
    /// `[count, T + 1, d]`: s_1 … s_{T+1}.
    pub s: Vec<f64>,
    /// `[count, d, d]` row-major: each sequence's W.
    pub w: Vec<f64>,
}

/// A Haar-random orthogonal `d×d` matrix (QR of a Gaussian matrix, signs fixed by R's diagonal).
fn random_orthogonal(d: usize, rng: &mut impl Rng) -> DMatrix<f64> {
    let g = DMatrix::from_fn(d, d, |_, _| StandardNormal.sample(rng));
    let qr = g.qr();
    let (mut q, r) = (qr.q(), qr.r());
    for c in 0..d {
        if r[(c, c)] < 0.0 {
            q.column_mut(c).neg_mut();
        }
    }
    q
}

impl Sequences {
    /// `count` sequences, each with a fresh W.
    pub fn sample(spec: &LdsSpec, count: usize, rng: &mut impl Rng) -> Self {
        Self::sample_with(spec, count, rng, |rng| random_orthogonal(spec.d, rng) * spec.rho)
    }

    /// `k` systems W (`[k, d, d]` row-major), for training on a finite set of systems.
    pub fn sample_systems(spec: &LdsSpec, k: usize, rng: &mut impl Rng) -> Vec<f64> {
        (0..k)
            .flat_map(|_| (random_orthogonal(spec.d, rng) * spec.rho).transpose().iter().copied().collect::<Vec<_>>())
            .collect()
    }

    /// `count` sequences, each from a system drawn uniformly from `systems` (`[k, d, d]`).
    pub fn sample_from(spec: &LdsSpec, systems: &[f64], count: usize, rng: &mut impl Rng) -> Self {
        let dd = spec.d * spec.d;
        let k = systems.len() / dd;
        assert!(k > 0 && systems.len() == k * dd, "systems must hold k·d² numbers");
        Self::sample_with(spec, count, rng, |rng| {
            let i = rng.random_range(0..k);
            DMatrix::from_row_slice(spec.d, spec.d, &systems[i * dd..(i + 1) * dd])
        })
    }

    fn sample_with<R: Rng>(
        spec: &LdsSpec,
        count: usize,
        rng: &mut R,
        mut system: impl FnMut(&mut R) -> DMatrix<f64>,
    ) -> Self {
        let (d, t) = (spec.d, spec.positions);
        let noise = Normal::new(0.0, spec.noise_std.max(0.0)).expect("finite noise");
        let mut s = Vec::with_capacity(count * (t + 1) * d);
        let mut w = Vec::with_capacity(count * d * d);
        for _ in 0..count {
            let wm = system(rng);
            let mut state = DVector::from_fn(d, |_, _| StandardNormal.sample(rng));
            for _ in 0..=t {
                s.extend(state.iter());
                let eps = DVector::from_fn(d, |_, _| if spec.noise_std > 0.0 { noise.sample(rng) } else { 0.0 });
                state = &wm * state + eps;
            }
            for r in 0..d {
                for c in 0..d {
                    w.push(wm[(r, c)]);
                }
            }
        }
        Self { d, positions: t, count, s, w }
    }

    /// State `s_i` (0-based: `i = 0` is s_1) of sequence `n`.
    pub fn state(&self, n: usize, i: usize) -> &[f64] {
        let start = (n * (self.positions + 1) + i) * self.d;
        &self.s[start..start + self.d]
    }

    /// The model's input: token `(0_d, s_t, s_{t−1})` per position, `[count, T, 3d]` as f32.
    pub fn tokens(&self) -> Vec<f32> {
        let d = self.d;
        let mut out = Vec::with_capacity(self.count * self.positions * 3 * d);
        for n in 0..self.count {
            for i in 0..self.positions {
                out.extend(std::iter::repeat_n(0.0, d));
                out.extend(self.state(n, i).iter().map(|v| *v as f32));
                if i == 0 {
                    out.extend(std::iter::repeat_n(0.0, d));
                } else {
                    out.extend(self.state(n, i - 1).iter().map(|v| *v as f32));
                }
            }
        }
        out
    }

    /// Targets `s_{t+1}` per position, `[count, T, d]`.
    pub fn targets(&self) -> Vec<f64> {
        (0..self.count).flat_map(|n| (1..=self.positions).flat_map(move |i| self.state(n, i).to_vec())).collect()
    }

    /// `0.5 · mean over sequences and coordinates of the squared error` at each position, `[T]`.
    pub fn position_losses(&self, pred: &[f64]) -> Vec<f64> {
        let (d, t) = (self.d, self.positions);
        let targets = self.targets();
        let mut out = vec![0.0; t];
        for n in 0..self.count {
            for (pos, o) in out.iter_mut().enumerate() {
                let at = (n * t + pos) * d;
                *o += (0..d).map(|k| (pred[at + k] - targets[at + k]).powi(2)).sum::<f64>();
            }
        }
        out.iter().map(|v| 0.5 * v / (self.count * d) as f64).collect()
    }

    /// Mean of [`Sequences::position_losses`] over the positions `from..` (0-based).
    pub fn loss_from(&self, pred: &[f64], from: usize) -> f64 {
        let l = self.position_losses(pred);
        l[from.min(l.len())..].iter().sum::<f64>() / (l.len() - from.min(l.len())).max(1) as f64
    }
}

/// A rule for the context estimate `Ŵ_t`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Learner {
    Zero,
    Gd { steps: usize, eta: f64 },
    Ridge { lambda: f64 },
    Oracle,
}

impl Learner {
    pub fn label(&self) -> String {
        match self {
            Learner::Zero => "zero predictor".into(),
            Learner::Gd { steps: 1, .. } => "one-step GD".into(),
            Learner::Gd { steps, .. } => format!("{steps}-step GD"),
            Learner::Ridge { .. } => "least squares (ridge)".into(),
            Learner::Oracle => "oracle (true W)".into(),
        }
    }

    /// Predictions `[count, T, d]`.
    pub fn predict(&self, seqs: &Sequences) -> Vec<f64> {
        let d = seqs.d;
        let mut out = Vec::with_capacity(seqs.count * seqs.positions * d);
        for n in 0..seqs.count {
            // Running sums over the context: C = Σ s_j s_{j−1}ᵀ, S = Σ s_{j−1} s_{j−1}ᵀ.
            let mut c = DMatrix::<f64>::zeros(d, d);
            let mut s = DMatrix::<f64>::zeros(d, d);
            for pos in 0..seqs.positions {
                let cur = DVector::from_column_slice(seqs.state(n, pos));
                let prev =
                    if pos == 0 { DVector::zeros(d) } else { DVector::from_column_slice(seqs.state(n, pos - 1)) };
                c += &cur * prev.transpose();
                s += &prev * prev.transpose();
                let t = (pos + 1) as f64;
                let w_hat = match *self {
                    Learner::Zero => DMatrix::zeros(d, d),
                    Learner::Oracle => DMatrix::from_row_slice(d, d, &seqs.w[n * d * d..(n + 1) * d * d]),
                    Learner::Gd { steps, eta } => {
                        // W ← W − η ∇, ∇ = (W S − C)/t.
                        let mut w = DMatrix::<f64>::zeros(d, d);
                        for _ in 0..steps {
                            w -= (&w * &s - &c) * (eta / t);
                        }
                        w
                    }
                    Learner::Ridge { lambda } => {
                        let a = &s + DMatrix::<f64>::identity(d, d) * lambda;
                        // Ŵ = C A⁻¹ (A symmetric): solve A Ŵᵀ = Cᵀ.
                        a.cholesky()
                            .map(|ch| ch.solve(&c.transpose()).transpose())
                            .unwrap_or_else(|| DMatrix::zeros(d, d))
                    }
                };
                out.extend((w_hat * &cur).iter());
            }
        }
        out
    }
}

/// One-step GD's best η on `seqs` (the prediction is linear in η: exact least squares).
pub fn fit_one_step_gd(seqs: &Sequences) -> f64 {
    let unit = Learner::Gd { steps: 1, eta: 1.0 }.predict(seqs);
    let y = seqs.targets();
    let num: f64 = unit.iter().zip(&y).map(|(a, b)| a * b).sum();
    let den: f64 = unit.iter().map(|a| a * a).sum();
    if den > 0.0 { num / den } else { 0.0 }
}

/// k-step GD with η line-searched on `seqs`.
pub fn fit_gd(seqs: &Sequences, steps: usize) -> Learner {
    let eta1 = fit_one_step_gd(seqs);
    if steps == 1 {
        return Learner::Gd { steps, eta: eta1 };
    }
    let y = seqs.targets();
    let loss = |eta: f64| crate::stats::half_mse(&Learner::Gd { steps, eta }.predict(seqs), &y);
    Learner::Gd { steps, eta: golden_min(loss, 0.0, 2.5 * eta1.max(1e-6), 30) }
}

/// Ridge with λ from a log grid on `seqs`.
pub fn fit_ridge(seqs: &Sequences) -> Learner {
    let y = seqs.targets();
    [1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0]
        .into_iter()
        .map(|lambda| (lambda, crate::stats::half_mse(&Learner::Ridge { lambda }.predict(seqs), &y)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(Learner::Ridge { lambda: 0.1 }, |(lambda, _)| Learner::Ridge { lambda })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesalab_core::{Seed, Streams};

    fn spec() -> LdsSpec {
        LdsSpec { d: 3, positions: 20, rho: 0.95, noise_std: 0.1 }
    }

    fn seqs(count: usize, stream: &str) -> Sequences {
        Sequences::sample(&spec(), count, &mut Streams::new(Seed(4)).stream(stream))
    }

    #[test]
    fn sequences_follow_their_dynamics_and_w_is_scaled_orthogonal() {
        let s = seqs(5, "a");
        for n in 0..s.count {
            let w = DMatrix::from_row_slice(3, 3, &s.w[n * 9..(n + 1) * 9]);
            let wtw = w.transpose() * &w;
            assert!((wtw - DMatrix::identity(3, 3) * 0.95f64.powi(2)).abs().max() < 1e-10);
            // The residual s_{t+1} − W s_t is the noise: std ≈ 0.1.
            let mut r2 = 0.0;
            for i in 0..20 {
                let pred = &w * DVector::from_column_slice(s.state(n, i));
                r2 += (DVector::from_column_slice(s.state(n, i + 1)) - pred).norm_squared();
            }
            let std = (r2 / 60.0).sqrt();
            assert!((0.05..0.2).contains(&std), "noise std {std}");
        }
    }

    /// Least squares converges to the noise floor late in the sequence and beats one-step GD,
    /// which beats the zero predictor; the oracle sits at σ²/2.
    #[test]
    fn learners_rank_as_expected_and_least_squares_reaches_the_floor() {
        let fit = seqs(400, "fit");
        let val = seqs(400, "val");
        let late = |l: &Learner| val.loss_from(&l.predict(&val), 12);
        let (zero, oracle) = (late(&Learner::Zero), late(&Learner::Oracle));
        let gd = late(&fit_gd(&fit, 1));
        let ls = late(&fit_ridge(&fit));
        assert!((oracle - 0.005).abs() < 0.001, "oracle {oracle} vs σ²/2 = 0.005");
        assert!(ls < 2.0 * oracle, "least squares {ls} vs oracle {oracle}");
        assert!(ls < gd && gd < zero, "ls {ls} < gd {gd} < zero {zero}");
        // The first position has only the degenerate pair (0, s_1): nothing to learn from.
        let first = |l: &Learner| val.position_losses(&l.predict(&val))[0];
        assert_eq!(first(&fit_gd(&fit, 1)), first(&Learner::Zero));
    }

    #[test]
    fn sequences_from_a_finite_set_use_only_its_systems() {
        let mut rng = Streams::new(Seed(2)).stream("sys");
        let systems = Sequences::sample_systems(&spec(), 2, &mut rng);
        let s = Sequences::sample_from(&spec(), &systems, 40, &mut rng);
        let mut used = [false; 2];
        for n in 0..s.count {
            let w = &s.w[n * 9..(n + 1) * 9];
            let i = (0..2).find(|&i| &systems[i * 9..(i + 1) * 9] == w).expect("a listed system");
            used[i] = true;
        }
        assert_eq!(used, [true, true]);
    }

    #[test]
    fn one_gd_step_matches_its_closed_form_on_a_tiny_case() {
        let s = seqs(1, "b");
        let eta = 0.3;
        let pred = Learner::Gd { steps: 1, eta }.predict(&s);
        // Position 2 (0-based 1): W_1 = η/2 (s_1 · 0ᵀ + s_2 s_1ᵀ), prediction W_1 s_2.
        let (s1, s2) = (s.state(0, 0), s.state(0, 1));
        let dot: f64 = s1.iter().zip(s2).map(|(a, b)| a * b).sum();
        for k in 0..3 {
            let want = eta / 2.0 * s2[k] * dot;
            assert!((pred[3 + k] - want).abs() < 1e-12);
        }
    }
}
