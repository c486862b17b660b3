//! Which algorithm does a trained in-context regressor run? Candidates beyond [`crate::icl`]'s
//! scalar-step families, and the certificate that ties a model to one of them.
//!
//! - [`PreconditionedGd`]: L steps of GD from `w = 0`, each with its own *matrix* step
//!   `w ← w − P_l ∇L(w)`, `∇L(w) = A w − b`, `A = XᵀX/N`, `b = Xᵀy/N` (Ahn et al. 2023: trained
//!   linear transformers implement preconditioned GD). Plain k-step GD is the case `P_l = η I`.
//! - [`fit_preconditioned_gd`]: fits the `L·d²` entries by exact block-coordinate least squares.
//!   The prediction is affine in each single `P_l` when the others are fixed (the later steps are
//!   affine maps of `w_l`), so each block update solves a `d²`-dimensional least-squares problem
//!   in closed form and the loss never increases.
//! - [`compare`]: a model's predictions and implied weights against one candidate on the same
//!   tasks: loss ratio, squared prediction difference (SPD), implied-weight distance (ILWD,
//!   Akyürek et al. 2023) and cosine.

use crate::icl::Tasks;
use crate::stats::{cosine, half_mse, mean, norm};
use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

/// L steps of GD with a matrix preconditioner per step.
///
/// Invariant: `p.len() == steps · d · d`, laid out `[step, row, col]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PreconditionedGd {
    pub d: usize,
    pub steps: usize,
    pub p: Vec<f64>,
}

/// One task's sufficient statistics: `A = XᵀX/N` (`[d, d]`), `b = Xᵀy/N` and the query.
struct TaskStats {
    a: Vec<f64>,
    b: Vec<f64>,
    q: Vec<f64>,
}

fn stats_of(tasks: &Tasks, t: usize) -> TaskStats {
    let (d, n) = (tasks.d, tasks.n_context);
    let mut a = vec![0.0; d * d];
    let mut b = vec![0.0; d];
    for i in 0..n {
        let (x, y) = (tasks.xi(t, i), tasks.yi(t, i));
        for r in 0..d {
            b[r] += y * x[r] / n as f64;
            for c in 0..d {
                a[r * d + c] += x[r] * x[c] / n as f64;
            }
        }
    }
    TaskStats { a, b, q: tasks.xi(t, n).to_vec() }
}

/// `M v` for row-major `[d, d]` M.
fn mat_vec(m: &[f64], v: &[f64]) -> Vec<f64> {
    let d = v.len();
    (0..d).map(|r| (0..d).map(|c| m[r * d + c] * v[c]).sum()).collect()
}

/// `Mᵀ v` for row-major `[d, d]` M.
fn mat_t_vec(m: &[f64], v: &[f64]) -> Vec<f64> {
    let d = v.len();
    (0..d).map(|c| (0..d).map(|r| m[r * d + c] * v[r]).sum()).collect()
}

impl PreconditionedGd {
    /// k-step GD with step size η/N = `eta_over_n` (the convention of [`crate::icl::Algorithm`]):
    /// `P_l = N·(η/N)·I`.
    pub fn scalar(d: usize, n_context: usize, etas_over_n: &[f64]) -> Self {
        let mut p = vec![0.0; etas_over_n.len() * d * d];
        for (l, e) in etas_over_n.iter().enumerate() {
            for k in 0..d {
                p[l * d * d + k * d + k] = e * n_context as f64;
            }
        }
        Self { d, steps: etas_over_n.len(), p }
    }

    /// Step `l`'s preconditioner, `[d, d]` row-major.
    pub fn step(&self, l: usize) -> &[f64] {
        &self.p[l * self.d * self.d..(l + 1) * self.d * self.d]
    }

    pub fn label(&self) -> String {
        format!("{}-step preconditioned GD", self.steps)
    }

    /// Weights after each step `w_1..w_L` from `w_0 = 0`.
    fn trajectory(&self, s: &TaskStats) -> Vec<Vec<f64>> {
        let mut w = vec![0.0; self.d];
        let mut out = Vec::with_capacity(self.steps);
        for l in 0..self.steps {
            let g: Vec<f64> = mat_vec(&s.a, &w).iter().zip(&s.b).map(|(aw, b)| aw - b).collect();
            let step = mat_vec(self.step(l), &g);
            w.iter_mut().zip(&step).for_each(|(w, s)| *w -= s);
            out.push(w.clone());
        }
        out
    }

    /// Implied weights `[count, d]` (the final `w_L` of each task).
    pub fn implied_weights(&self, tasks: &Tasks) -> Vec<f64> {
        assert_eq!(tasks.d, self.d, "preconditioner width {} vs task dimension {}", self.d, tasks.d);
        (0..tasks.count)
            .flat_map(|t| {
                let s = stats_of(tasks, t);
                self.trajectory(&s).pop().unwrap_or_else(|| vec![0.0; self.d])
            })
            .collect()
    }

    pub fn predict(&self, tasks: &Tasks) -> Vec<f64> {
        tasks.predict(&self.implied_weights(tasks))
    }

    pub fn loss(&self, tasks: &Tasks) -> f64 {
        tasks.loss(&self.predict(tasks))
    }
}

/// Fits `steps` matrix preconditioners so that predictions match `targets` (`[count]`: the query
/// labels for the best member of the family, or a model's predictions for the member closest to
/// it), starting from scalar GD at `init_etas_over_n` and sweeping every block `sweeps` times.
pub fn fit_preconditioned_gd(
    tasks: &Tasks,
    init_etas_over_n: &[f64],
    targets: &[f64],
    sweeps: usize,
) -> PreconditionedGd {
    assert_eq!(targets.len(), tasks.count, "one target per task");
    let d = tasks.d;
    let mut model = PreconditionedGd::scalar(d, tasks.n_context, init_etas_over_n);
    let stats: Vec<TaskStats> = (0..tasks.count).map(|t| stats_of(tasks, t)).collect();
    for _ in 0..sweeps {
        for l in 0..model.steps {
            // Features f_t = vec(u_t g_tᵀ) and offsets c_t with ŷ_t = c_t − f_t·vec(P_l).
            let mut f = DMatrix::<f64>::zeros(tasks.count, d * d);
            let mut rhs = DVector::<f64>::zeros(tasks.count);
            let mut without = model.clone();
            without.p[l * d * d..(l + 1) * d * d].iter_mut().for_each(|v| *v = 0.0);
            for (t, s) in stats.iter().enumerate() {
                let w_prev = if l == 0 { vec![0.0; d] } else { model.trajectory(s)[l - 1].clone() };
                let g: Vec<f64> = mat_vec(&s.a, &w_prev).iter().zip(&s.b).map(|(aw, b)| aw - b).collect();
                // u = Mᵀ x_q with M = (I − P_L A)…(I − P_{l+1} A): backwards, u ← u − A P_kᵀ u.
                let mut u = s.q.clone();
                for k in (l + 1..model.steps).rev() {
                    let pu = mat_t_vec(model.step(k), &u);
                    let apu = mat_vec(&s.a, &pu);
                    u.iter_mut().zip(&apu).for_each(|(u, v)| *u -= v);
                }
                for a in 0..d {
                    for b in 0..d {
                        f[(t, a * d + b)] = u[a] * g[b];
                    }
                }
                let c = crate::stats::dot(&without.trajectory(s).pop().unwrap_or_else(|| vec![0.0; d]), &s.q);
                rhs[t] = c - targets[t];
            }
            // (FᵀF + λI) p = Fᵀ(c − target); λ tiny, only against exactly collinear features.
            let mut gram = f.tr_mul(&f);
            let ridge = 1e-10 * (gram.trace() / (d * d) as f64).max(1e-300);
            for k in 0..d * d {
                gram[(k, k)] += ridge;
            }
            let solved = gram.cholesky().map(|c| c.solve(&f.tr_mul(&rhs)));
            if let Some(p) = solved.filter(|p| p.iter().all(|v| v.is_finite())) {
                model.p[l * d * d..(l + 1) * d * d].copy_from_slice(p.as_slice());
            }
        }
    }
    model
}

/// A model against one candidate algorithm on the same tasks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub algorithm: String,
    pub candidate_loss: f64,
    /// Model loss / candidate loss.
    pub loss_ratio: f64,
    /// Mean squared prediction difference.
    pub spd: f64,
    /// Mean ‖v_model − v_candidate‖₂ over the tasks with implied weights.
    pub ilwd: f64,
    /// Mean cos(v_model, v_candidate).
    pub cosine: f64,
}

/// Compares `model_pred` (`[count]`) and `model_implied` (`[k, d]`, the first k tasks; the
/// model's ∂ŷ/∂x_q, exact for models linear in the query) with a candidate's predictions and
/// implied weights on the same tasks.
pub fn compare(
    algorithm: String,
    tasks: &Tasks,
    model_pred: &[f64],
    model_implied: &[f64],
    candidate_pred: &[f64],
    candidate_implied: &[f64],
) -> Comparison {
    let d = tasks.d;
    let k = model_implied.len() / d;
    let (mut dist, mut cos) = (Vec::with_capacity(k), Vec::with_capacity(k));
    for t in 0..k {
        let (m, c) = (&model_implied[t * d..(t + 1) * d], &candidate_implied[t * d..(t + 1) * d]);
        let diff: Vec<f64> = m.iter().zip(c).map(|(a, b)| a - b).collect();
        dist.push(norm(&diff));
        cos.push(cosine(m, c));
    }
    let candidate_loss = tasks.loss(candidate_pred);
    Comparison {
        algorithm,
        candidate_loss,
        loss_ratio: tasks.loss(model_pred) / candidate_loss,
        spd: 2.0 * half_mse(model_pred, candidate_pred),
        ilwd: mean(&dist),
        cosine: mean(&cos),
    }
}

/// How far a matrix read from a model's weights is from a fitted one: cosine of the flattened
/// matrices and ‖A − B‖_F / ‖B‖_F, and how far each is from a multiple of I
/// (‖A − tr(A)/d·I‖_F / ‖A‖_F).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatrixMatch {
    pub cosine: f64,
    pub rel_distance: f64,
    pub read_anisotropy: f64,
    pub fitted_anisotropy: f64,
}

pub fn matrix_match(read: &[f64], fitted: &[f64], d: usize) -> MatrixMatch {
    let diff: Vec<f64> = read.iter().zip(fitted).map(|(a, b)| a - b).collect();
    let anisotropy = |m: &[f64]| {
        let tr = (0..d).map(|k| m[k * d + k]).sum::<f64>() / d as f64;
        let off: Vec<f64> = m.iter().enumerate().map(|(i, v)| if i / d == i % d { v - tr } else { *v }).collect();
        norm(&off) / norm(m)
    };
    MatrixMatch {
        cosine: cosine(read, fitted),
        rel_distance: norm(&diff) / norm(fitted),
        read_anisotropy: anisotropy(read),
        fitted_anisotropy: anisotropy(fitted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::icl::{Algorithm, TaskSpec, XDist, fit_gd};
    use mesalab_core::{Seed, Streams};
    use rand::Rng;

    fn tasks(d: usize, n: usize, count: usize, x: XDist, stream: &str) -> Tasks {
        let spec = TaskSpec { d, n_context: n, x, w_scale: 1.0, noise_std: 0.0 };
        Tasks::sample(&spec, count, &mut Streams::new(Seed(3)).stream(stream))
    }

    #[test]
    fn scalar_preconditioners_are_plain_gd() {
        let t = tasks(4, 6, 20, XDist::Uniform { half_width: 0.5 }, "a");
        let gd = Algorithm::Gd { steps: 3, eta_over_n: 0.3, gamma: 0.0 }.implied_weights(&t);
        let pgd = PreconditionedGd::scalar(4, 6, &[0.3; 3]).implied_weights(&t);
        let err = gd.iter().zip(&pgd).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(err < 1e-12, "max |GD − preconditioned GD with η I| = {err}");
    }

    /// Targets made by a known 2-step preconditioned GD (random, non-symmetric P's) are fitted
    /// back: the fit recovers the predictions and the matrices.
    #[test]
    fn the_fit_recovers_a_planted_preconditioner() {
        let (d, n) = (3, 8);
        let t = tasks(d, n, 600, XDist::Gaussian { std: 1.0 }, "b");
        let mut rng = Streams::new(Seed(9)).stream("p");
        let mut planted = PreconditionedGd::scalar(d, n, &[0.08, 0.05]);
        planted.p.iter_mut().for_each(|v| *v += rng.random_range(-0.2..0.2));
        let targets = planted.predict(&t);
        let fitted = fit_preconditioned_gd(&t, &[0.1, 0.1], &targets, 30);
        let spd = 2.0 * half_mse(&fitted.predict(&t), &targets);
        let scale = targets.iter().map(|v| v * v).sum::<f64>() / targets.len() as f64;
        assert!(spd < 1e-8 * scale, "SPD {spd} against target scale {scale}");
        let m = matrix_match(fitted.step(0), planted.step(0), d);
        assert!(m.rel_distance < 1e-3, "step-1 preconditioner off by {}", m.rel_distance);
    }

    /// The fitted family's loss never exceeds scalar GD's (it contains it) and, where the inputs
    /// are anisotropic, beats it clearly; on isotropic inputs the fitted P is close to a multiple
    /// of I.
    #[test]
    fn preconditioning_helps_only_where_the_inputs_are_anisotropic() {
        let (d, n) = (4, 12);
        let iso = tasks(d, n, 4000, XDist::Gaussian { std: 1.0 }, "iso");
        let gd = fit_gd(&iso, 1);
        let Algorithm::Gd { eta_over_n, .. } = gd else { unreachable!() };
        let fitted = fit_preconditioned_gd(&iso, &[eta_over_n], &iso.targets(), 3);
        assert!(fitted.loss(&iso) <= gd.loss(&iso) * (1.0 + 1e-9));
        let m = matrix_match(fitted.step(0), fitted.step(0), d);
        assert!(m.fitted_anisotropy < 0.1, "isotropic inputs: P anisotropy {}", m.fitted_anisotropy);

        // Anisotropic: scale input coordinate k by 2^{-k}.
        let mut aniso = tasks(d, n, 4000, XDist::Gaussian { std: 1.0 }, "aniso");
        for t in 0..aniso.count {
            for i in 0..=n {
                for k in 0..d {
                    aniso.x[(t * (n + 1) + i) * d + k] *= 0.5f64.powi(k as i32);
                }
                let y = (0..d).map(|k| aniso.x[(t * (n + 1) + i) * d + k] * aniso.w[t * d + k]).sum();
                aniso.y[t * (n + 1) + i] = y;
            }
        }
        let gd = fit_gd(&aniso, 1);
        let Algorithm::Gd { eta_over_n, .. } = gd else { unreachable!() };
        let fitted = fit_preconditioned_gd(&aniso, &[eta_over_n], &aniso.targets(), 3);
        let ratio = fitted.loss(&aniso) / gd.loss(&aniso);
        assert!(ratio < 0.9, "preconditioned / scalar GD loss on anisotropic inputs: {ratio}");
        let m = matrix_match(fitted.step(0), fitted.step(0), d);
        assert!(m.fitted_anisotropy > 0.3, "anisotropic inputs: P anisotropy {}", m.fitted_anisotropy);
    }

    #[test]
    fn compare_measures_distance_and_a_perfect_match() {
        let t = tasks(3, 5, 50, XDist::Uniform { half_width: 1.0 }, "c");
        let alg = PreconditionedGd::scalar(3, 5, &[0.2]);
        let (p, v) = (alg.predict(&t), alg.implied_weights(&t));
        let same = compare("x".into(), &t, &p, &v, &p, &v);
        assert_eq!((same.spd, same.ilwd, same.loss_ratio), (0.0, 0.0, 1.0));
        assert!((same.cosine - 1.0).abs() < 1e-12);
        let other = PreconditionedGd::scalar(3, 5, &[0.4]);
        let c = compare("x".into(), &t, &p, &v, &other.predict(&t), &other.implied_weights(&t));
        assert!(c.spd > 0.0 && c.ilwd > 0.0, "{c:?}");
        // Implied weights double, so they stay parallel: cosine 1 but ILWD = ‖v‖.
        assert!((c.cosine - 1.0).abs() < 1e-9);
        let mean_norm = (0..t.count).map(|i| norm(&v[i * 3..i * 3 + 3])).sum::<f64>() / t.count as f64;
        assert!((c.ilwd - mean_norm).abs() < 1e-9);
    }
}
