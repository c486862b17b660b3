//! Self-attention transformer for in-context regression (von Oswald et al., ICML 2023).
//!
//! Tokens are `e_i = (x_i, y_i) ∈ R^{d+1}` for the N context pairs and `(x_q, 0)` for the query,
//! which comes last. One layer updates every token with attention over the context tokens only
//! (keys and values never include the query):
//!
//! `e_j ← e_j + Σ_h P_h W_V^h Σ_i e_i · a_h(e_i, e_j)`, with `a_h = e_iᵀ W_K^hᵀ W_Q^h e_j` (linear)
//! or its softmax over i (softmax attention).
//!
//! The prediction is minus the query's y-slot after the last layer, so the hand-built
//! `W_K = W_Q = [[I,0],[0,0]]`, `P W_V = (η/N)[[0,0],[0,−1]]` layer outputs exactly one step of
//! gradient descent from `w = 0` with learning rate η (tested in this module).
//!
//! There are no MLPs, layer norms or biases: the model is the attention-only architecture of the
//! paper, so its weights can be compared entry by entry with the GD construction.

use crate::hooks::{HookPoint, Hooks};
use burn::module::{Module, Param};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use mesalab_core::StreamRng;
use rand_distr::{Distribution, Normal};

/// Static architecture of an [`Lsa`] model.
#[derive(Clone, Debug, PartialEq)]
pub struct LsaSpec {
    /// Token width D = d + 1.
    pub d_token: usize,
    pub layers: usize,
    pub heads: usize,
    /// Softmax instead of linear attention.
    pub softmax: bool,
    /// One set of weights reused by every layer (a recurrent, "looped" transformer).
    pub shared_weights: bool,
    /// Clip tokens to `[-clip, clip]` after each layer (0 = off); stabilises deep models.
    pub clip_tokens: f32,
}

/// One attention layer's weights, each `[heads, D, D]`.
#[derive(Module, Debug)]
pub struct AttentionWeights {
    pub w_q: Param<Tensor<3>>,
    pub w_k: Param<Tensor<3>>,
    pub w_v: Param<Tensor<3>>,
    /// Per-head output projection; head outputs are projected and summed.
    pub p: Param<Tensor<3>>,
}

/// The transformer: `layers` attention layers on the residual stream (one weight set when shared).
#[derive(Module, Debug)]
pub struct Lsa {
    pub blocks: Vec<AttentionWeights>,
    #[module(skip)]
    pub spec: LsaSpec,
}

/// Plain row-major weights of one layer, each `heads * D * D` floats laid out `[head, row, col]`.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerWeights {
    pub w_q: Vec<f32>,
    pub w_k: Vec<f32>,
    pub w_v: Vec<f32>,
    pub p: Vec<f32>,
}

impl AttentionWeights {
    /// One layer's parameters from plain weights, each `heads · d_token²` floats `[head, row, col]`.
    pub fn new(l: LayerWeights, heads: usize, d_token: usize, device: &Device) -> Self {
        let shape = [heads, d_token, d_token];
        let param = |v: Vec<f32>| Param::from_tensor(Tensor::from_data(TensorData::new(v, shape), device));
        Self { w_q: param(l.w_q), w_k: param(l.w_k), w_v: param(l.w_v), p: param(l.p) }
    }

    /// The layer's weights as plain vectors.
    pub fn to_plain(&self) -> LayerWeights {
        let read = |p: &Param<Tensor<3>>| p.val().into_data().try_to_vec::<f32>().expect("f32 weights");
        LayerWeights { w_q: read(&self.w_q), w_k: read(&self.w_k), w_v: read(&self.w_v), p: read(&self.p) }
    }
}

impl LsaSpec {
    fn weight_sets(&self) -> usize {
        if self.shared_weights { 1 } else { self.layers }
    }
}

impl Lsa {
    /// Random init: every weight ~ N(0, init_std²), drawn from `rng` (so the seed fixes it).
    pub fn init(spec: LsaSpec, init_std: f64, rng: &mut StreamRng, device: &Device) -> Self {
        let normal = Normal::new(0.0, init_std.max(0.0)).expect("finite std");
        let n = spec.heads * spec.d_token * spec.d_token;
        let mut draw = || (0..n).map(|_| normal.sample(rng) as f32).collect::<Vec<f32>>();
        let layers = (0..spec.weight_sets())
            .map(|_| LayerWeights { w_q: draw(), w_k: draw(), w_v: draw(), p: draw() })
            .collect();
        Self::from_weights(spec, layers, device)
    }

    /// A model with the given weights (one entry per weight set).
    pub fn from_weights(spec: LsaSpec, layers: Vec<LayerWeights>, device: &Device) -> Self {
        assert_eq!(layers.len(), spec.weight_sets(), "one LayerWeights per weight set");
        let blocks = layers.into_iter().map(|l| AttentionWeights::new(l, spec.heads, spec.d_token, device)).collect();
        Self { blocks, spec }
    }

    /// The weights as plain vectors (one entry per weight set).
    pub fn weights(&self) -> Vec<LayerWeights> {
        self.blocks.iter().map(AttentionWeights::to_plain).collect()
    }

    /// Every hook point, in forward order.
    pub fn hook_points(&self) -> Vec<HookPoint> {
        let mut points = Vec::new();
        let mut add = |name: String, dims: &[&'static str]| points.push(HookPoint { name, dims: dims.to_vec() });
        for l in 0..self.spec.layers {
            add(format!("blocks.{l}.hook_resid_pre"), &["batch", "pos", "d_token"]);
            add(format!("blocks.{l}.attn.hook_q"), &["batch", "head", "pos", "d_token"]);
            add(format!("blocks.{l}.attn.hook_k"), &["batch", "head", "k_pos", "d_token"]);
            add(format!("blocks.{l}.attn.hook_v"), &["batch", "head", "k_pos", "d_token"]);
            add(format!("blocks.{l}.attn.hook_scores"), &["batch", "head", "q_pos", "k_pos"]);
            add(format!("blocks.{l}.attn.hook_pattern"), &["batch", "head", "q_pos", "k_pos"]);
            add(format!("blocks.{l}.attn.hook_z"), &["batch", "head", "pos", "d_token"]);
            add(format!("blocks.{l}.hook_attn_out"), &["batch", "pos", "d_token"]);
            add(format!("blocks.{l}.hook_resid_post"), &["batch", "pos", "d_token"]);
        }
        points
    }

    /// Runs all layers.
    ///
    /// # Shapes
    /// - `tokens`: `[batch, N + 1, D]`, context tokens first, the query last.
    /// - returns the final tokens, `[batch, N + 1, D]`.
    pub fn forward_hooked(&self, tokens: Tensor<3>, hooks: &mut Hooks) -> Tensor<3> {
        let [_, positions, _] = tokens.dims();
        let n_context = positions - 1;
        let mut z = tokens;
        for l in 0..self.spec.layers {
            let w = &self.blocks[if self.spec.shared_weights { 0 } else { l }];
            z = hooks.apply(|| format!("blocks.{l}.hook_resid_pre"), z);
            let [batch, _, d] = z.dims();
            let heads = self.spec.heads;
            // All heads' projections as one 2-D matmul (small batched matmuls are slow on CPU):
            // [B, T, D] -> [B·T, D] @ [D, H·D] -> [B, T, H, D] -> [B, H, T, D].
            let z2 = z.clone().reshape([batch * positions, d]);
            let project = |p: &Param<Tensor<3>>, rows: Tensor<2>, count: usize| -> Tensor<4> {
                // [H, D_out, D_in] -> [D_in, H, D_out] -> [D_in, H·D_out]: column block h is W_hᵀ.
                let w = p.val().permute([2, 0, 1]).reshape([d, heads * d]);
                rows.matmul(w).reshape([batch, count, heads, d]).swap_dims(1, 2)
            };
            // Context rows only: [B, N, D] -> [B·N, D].
            let ctx2 = z.clone().narrow(1, 0, n_context).reshape([batch * n_context, d]);
            let q = hooks.apply(|| format!("blocks.{l}.attn.hook_q"), project(&w.w_q, z2, positions)); // [B, H, T, D]
            let k = hooks.apply(|| format!("blocks.{l}.attn.hook_k"), project(&w.w_k, ctx2.clone(), n_context)); // [B, H, N, D]
            let v = hooks.apply(|| format!("blocks.{l}.attn.hook_v"), project(&w.w_v, ctx2, n_context)); // [B, H, N, D]
            let scores = q.matmul(k.swap_dims(2, 3)); // [B, H, T, N]
            let scores = hooks.apply(|| format!("blocks.{l}.attn.hook_scores"), scores);
            let pattern = if self.spec.softmax { softmax(scores, 3) } else { scores };
            let pattern = hooks.apply(|| format!("blocks.{l}.attn.hook_pattern"), pattern);
            let head_out = pattern.matmul(v); // [B, H, T, D]
            let head_out = hooks.apply(|| format!("blocks.{l}.attn.hook_z"), head_out);
            // Project each head and sum over heads in one matmul:
            // [B, H, T, D] -> [B, T, H, D] -> [B·T, H·D] @ [H·D, D] -> [B, T, D].
            let p_stacked = w.p.val().swap_dims(1, 2).reshape([heads * d, d]); // rows h·D..: P_hᵀ
            let attn_out = head_out
                .swap_dims(1, 2)
                .reshape([batch * positions, heads * d])
                .matmul(p_stacked)
                .reshape([batch, positions, d]);
            let attn_out = hooks.apply(|| format!("blocks.{l}.hook_attn_out"), attn_out);
            z = z + attn_out;
            if self.spec.clip_tokens > 0.0 {
                z = z.clamp(-self.spec.clip_tokens, self.spec.clip_tokens);
            }
            z = hooks.apply(|| format!("blocks.{l}.hook_resid_post"), z);
        }
        z
    }

    /// The prediction for each query: minus the query's y-slot after the last layer.
    ///
    /// # Shapes
    /// - `tokens`: `[batch, N + 1, D]`; returns `[batch]`.
    pub fn predict_hooked(&self, tokens: Tensor<3>, hooks: &mut Hooks) -> Tensor<1> {
        let [batch, positions, d_token] = tokens.dims();
        let out = self.forward_hooked(tokens, hooks);
        // [B, T, D] -> [B, 1, 1] (query row, y column) -> [B]
        out.narrow(1, positions - 1, 1).narrow(2, d_token - 1, 1).reshape([batch]).neg()
    }

    pub fn predict(&self, tokens: Tensor<3>) -> Tensor<1> {
        self.predict_hooked(tokens, &mut Hooks::none())
    }
}

/// `A = Bᵀ C` for row-major `D×D` matrices.
fn at_b(a: &[f32], b: &[f32], d: usize) -> Vec<f32> {
    let mut out = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..d {
            out[i * d + j] = (0..d).map(|k| a[k * d + i] * b[k * d + j]).sum();
        }
    }
    out
}

/// `A B` for row-major `D×D` matrices.
fn a_b(a: &[f32], b: &[f32], d: usize) -> Vec<f32> {
    let mut out = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..d {
            out[i * d + j] = (0..d).map(|k| a[i * d + k] * b[k * d + j]).sum();
        }
    }
    out
}

impl LayerWeights {
    fn head(v: &[f32], h: usize, d: usize) -> &[f32] {
        &v[h * d * d..(h + 1) * d * d]
    }

    /// `W_KQ = W_Kᵀ W_Q` of head `h` (`D×D`, row-major): `a(e_i, e_j) = e_iᵀ W_KQ e_j`.
    pub fn w_kq(&self, h: usize, d: usize) -> Vec<f32> {
        at_b(Self::head(&self.w_k, h, d), Self::head(&self.w_q, h, d), d)
    }

    /// `P W_V` of head `h` (`D×D`, row-major): what a context token writes, per unit attention.
    pub fn p_w_v(&self, h: usize, d: usize) -> Vec<f32> {
        a_b(Self::head(&self.p, h, d), Self::head(&self.w_v, h, d), d)
    }

    /// The one-step-GD construction for token width `d_token` and step size `eta_over_n` (η/N),
    /// in head 0 (other heads zero).
    pub fn gd_construction(d_token: usize, heads: usize, eta_over_n: f32) -> Self {
        let d = d_token;
        let mut w_kq = vec![0.0; heads * d * d];
        let mut w_v = vec![0.0; heads * d * d];
        let mut p = vec![0.0; heads * d * d];
        for i in 0..d - 1 {
            w_kq[i * d + i] = 1.0;
        }
        w_v[(d - 1) * d + (d - 1)] = -1.0;
        for i in 0..d {
            p[i * d + i] = eta_over_n;
        }
        Self { w_q: w_kq.clone(), w_k: w_kq, w_v, p }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{cpu, cpu_autodiff};
    use mesalab_core::{Seed, Streams};
    use rand::Rng;

    fn spec(layers: usize, heads: usize, softmax: bool) -> LsaSpec {
        LsaSpec { d_token: 4, layers, heads, softmax, shared_weights: false, clip_tokens: 0.0 }
    }

    /// Random tasks: tokens `[B, N+1, D]` with y = w·x for context, 0 for the query.
    fn tasks(b: usize, n: usize, d: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut rng = Streams::new(Seed(seed)).stream("t");
        let (mut tokens, mut xs, mut ys) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..b {
            let w: Vec<f32> = (0..d).map(|_| rng.random_range(-1.0..1.0)).collect();
            for t in 0..=n {
                let x: Vec<f32> = (0..d).map(|_| rng.random_range(-0.5..0.5)).collect();
                let y: f32 = x.iter().zip(&w).map(|(a, b)| a * b).sum();
                tokens.extend(&x);
                tokens.push(if t < n { y } else { 0.0 });
                xs.extend(&x);
                ys.push(y);
            }
        }
        (tokens, xs, ys)
    }

    #[test]
    fn gd_construction_equals_one_explicit_gd_step() {
        let (b, n, d) = (64, 10, 3);
        let eta_over_n = 0.6_f32;
        let model =
            Lsa::from_weights(spec(1, 1, false), vec![LayerWeights::gd_construction(d + 1, 1, eta_over_n)], &cpu());
        let (tokens, xs, ys) = tasks(b, n, d, 1);
        let pred = model.predict(Tensor::from_data(TensorData::new(tokens, [b, n + 1, d + 1]), &cpu()));
        let pred = pred.into_data().try_to_vec::<f32>().unwrap();
        for t in 0..b {
            // One GD step from w = 0 on L(w) = 1/(2N) Σ (w·x_i − y_i)²: w₁ = (η/N) Σ y_i x_i.
            let x = |i: usize| &xs[(t * (n + 1) + i) * d..(t * (n + 1) + i + 1) * d];
            let mut w1 = vec![0.0_f32; d];
            for i in 0..n {
                for (w, xk) in w1.iter_mut().zip(x(i)) {
                    *w += eta_over_n * ys[t * (n + 1) + i] * xk;
                }
            }
            let expected: f32 = w1.iter().zip(x(n)).map(|(a, b)| a * b).sum();
            assert!((pred[t] - expected).abs() < 1e-5, "task {t}: {} vs {expected}", pred[t]);
        }
    }

    #[test]
    fn w_kq_and_p_w_v_of_the_construction() {
        let l = LayerWeights::gd_construction(3, 1, 0.5);
        assert_eq!(l.w_kq(0, 3), vec![1., 0., 0., 0., 1., 0., 0., 0., 0.]);
        assert_eq!(l.p_w_v(0, 3), vec![0., 0., 0., 0., 0., 0., 0., 0., -0.5]);
    }

    #[test]
    fn cache_returns_the_activations_and_self_patching_changes_nothing() {
        let device = cpu();
        let mut rng = Streams::new(Seed(3)).stream("init");
        for softmax in [false, true] {
            let model = Lsa::init(spec(2, 2, softmax), 0.3, &mut rng, &device);
            let (tokens, _, _) = tasks(5, 6, 3, 2);
            let input = || Tensor::<3>::from_data(TensorData::new(tokens.clone(), [5, 7, 4]), &device);
            let plain = model.predict(input()).into_data().try_to_vec::<f32>().unwrap();
            let mut hooks = Hooks::cache_all();
            let cached_pred = model.predict_hooked(input(), &mut hooks).into_data().try_to_vec::<f32>().unwrap();
            let cache = hooks.finish().unwrap();
            assert_eq!(plain, cached_pred);
            assert_eq!(cache.activations.len(), model.hook_points().len());
            // The residual stream after the last layer is what the prediction reads.
            let (shape, post) = cache.values("blocks.1.hook_resid_post").unwrap();
            assert_eq!(shape, vec![5, 7, 4]);
            for t in 0..5 {
                assert_eq!(-post[(t * 7 + 6) * 4 + 3], plain[t]);
            }
            for point in model.hook_points() {
                let mut hooks = Hooks::none().patch(&point.name, cache.get(&point.name).unwrap().clone());
                let patched = model.predict_hooked(input(), &mut hooks).into_data().try_to_vec::<f32>().unwrap();
                hooks.finish().unwrap();
                assert_eq!(plain, patched, "self-patching {} changed the output", point.name);
            }
        }
    }

    #[test]
    fn bad_hook_names_and_shapes_are_errors() {
        let device = cpu();
        let model = Lsa::init(spec(1, 1, false), 0.1, &mut Streams::new(Seed(0)).stream("i"), &device);
        let hooks = Hooks::none().add("blocks.0.hook_resid_pots", vec![0.0; 4], 1.0);
        let err = hooks.validate(&model.hook_points()).unwrap_err();
        assert!(err.to_string().contains("blocks.0.hook_resid_post"), "{err}");
        let (tokens, _, _) = tasks(2, 3, 3, 0);
        let mut hooks = Hooks::none().add("blocks.0.hook_resid_post", vec![0.0; 3], 1.0);
        model.predict_hooked(Tensor::from_data(TensorData::new(tokens, [2, 4, 4]), &device), &mut hooks);
        assert!(matches!(hooks.finish(), Err(crate::HookError::ShapeMismatch { .. })));
    }

    #[test]
    fn steering_adds_the_vector_at_the_hook() {
        let device = cpu();
        let model = Lsa::init(spec(1, 1, false), 0.1, &mut Streams::new(Seed(0)).stream("i"), &device);
        let (tokens, _, _) = tasks(2, 3, 3, 0);
        let input = || Tensor::<3>::from_data(TensorData::new(tokens.clone(), [2, 4, 4]), &device);
        let plain = model.predict(input()).into_data().try_to_vec::<f32>().unwrap();
        // Adding +1 to the y-slot of the final residual stream lowers every prediction by 1·coef.
        let mut hooks = Hooks::none().add("blocks.0.hook_resid_post", vec![0.0, 0.0, 0.0, 1.0], 0.25);
        let steered = model.predict_hooked(input(), &mut hooks).into_data().try_to_vec::<f32>().unwrap();
        for (p, s) in plain.iter().zip(&steered) {
            assert!((p - 0.25 - s).abs() < 1e-6);
        }
    }

    #[test]
    fn gradients_reach_every_weight() {
        let device = cpu_autodiff();
        let model = Lsa::init(spec(2, 1, false), 0.1, &mut Streams::new(Seed(0)).stream("i"), &device);
        let (tokens, _, _) = tasks(4, 5, 3, 0);
        let pred = model.predict(Tensor::from_data(TensorData::new(tokens, [4, 6, 4]), &device));
        let grads = pred.powf_scalar(2.0).mean().backward();
        for b in &model.blocks {
            for p in [&b.w_q, &b.w_k, &b.w_v, &b.p] {
                let g = p.val().grad(&grads).expect("gradient");
                let g = g.into_data().try_to_vec::<f32>().unwrap();
                assert!(g.iter().any(|v| *v != 0.0));
            }
        }
    }
}
