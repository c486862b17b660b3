//! [`FusedMlp`]: an [`MlpPolicy`]'s forward and backward pass on flat f32 buffers, and [`Adam`]
//! on the same buffers — the arithmetic PPO needs, without burn's per-op dispatch and autodiff
//! graph (≈ 90 % of a CleanRL-sized update's time went there).
//!
//! It is a training kernel, not a second model: [`FusedMlp::from_policy`] reads an `MlpPolicy`'s
//! weights and [`FusedMlp::write_into`] writes them back (same parameter ids), so checkpoints,
//! hooks (cache / patch / steer) and every tool keep working on the burn module.
//!
//! Invariants:
//! - `params` holds every tensor in module order (actor layers, critic layers, policy head, value
//!   head; each weight `[d_in, d_out]` row-major as burn stores it, then its bias), so `grads` and
//!   Adam's moments share that layout.
//! - The math is the burn module's: `x·W + b`, then the activation, per layer (tested to 1e-5
//!   against burn's forward and its autodiff gradients on random inputs).

use crate::policy::mlp::MlpSpec;
use crate::policy::{Activation, MlpPolicy};
use burn::nn::Linear;
use burn::tensor::{Tensor, TensorData};
use mesalab_kernels::{Mat, axpy, matmul, tanh_in_place};
use serde::{Deserialize, Serialize};

/// Where one linear layer's tensors sit in the flat parameter buffer.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Layer {
    /// Offset of the `[d_in, d_out]` weight.
    w: usize,
    /// Offset of the `[d_out]` bias.
    b: usize,
    d_in: usize,
    d_out: usize,
}

impl Layer {
    fn weight<'a>(&self, params: &'a [f32]) -> &'a [f32] {
        &params[self.w..self.w + self.d_in * self.d_out]
    }
    fn flops(&self, n: usize) -> u64 {
        2 * (n * self.d_in * self.d_out) as u64
    }
}

/// An MLP actor-critic's parameters as one flat buffer, with its forward and backward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct FusedMlp {
    spec: MlpSpec,
    params: Vec<f32>,
    /// Actor (or shared torso) layers, then critic layers, then the policy head, then the value head.
    layers: Vec<Layer>,
}

/// Activations of the last [`FusedMlp::forward`], kept for [`FusedMlp::backward`], and scratch
/// buffers; reused across calls so a training loop allocates nothing per minibatch.
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    n: usize,
    /// Actor hidden layers after the activation, each `[n, hidden_i]`.
    actor: Vec<Vec<f32>>,
    /// Critic hidden layers after the activation, each `[n, hidden_i]` (empty when shared).
    critic: Vec<Vec<f32>>,
    /// Logits of the last forward, `[n, actions]`.
    pub logits: Vec<f32>,
    /// Values of the last forward, `[n]`.
    pub value: Vec<f32>,
    /// Backward scratch: the actor's and the critic's output gradients, and a layer-input gradient.
    grad_actor: Vec<f32>,
    grad_critic: Vec<f32>,
    scratch: Vec<f32>,
    /// The last forward's observations as row-compressed nonzeros, when sparse enough to use.
    obs_rows: SparseRows,
    obs_sparse: bool,
}

/// Observations at or below this share of nonzeros feed the first layers by row gathers instead
/// of a dense matmul. Measured on the shipped envs (one-hot grids): at 3 % nonzeros
/// (coin-corridor) the gathers are 1.5× faster end to end, at 13 % (absent-supervisor) ≈ 1.1×,
/// at 18–23 % (keys-chests, cheese-maze) slower than the sgemm, which runs AVX-512/FMA kernels.
pub const MAX_SPARSE_DENSITY: f64 = 0.14;

/// Row-compressed nonzeros of a row-major `[n, d]` batch.
#[derive(Clone, Debug, Default)]
struct SparseRows {
    /// Row `r`'s entries are `start[r]..start[r + 1]` of `cols` / `vals`.
    start: Vec<usize>,
    cols: Vec<usize>,
    vals: Vec<f32>,
}

impl SparseRows {
    /// Fills from `x`; returns whether at most [`MAX_SPARSE_DENSITY`] of the entries are nonzero
    /// (the fill stops early, leaving the rows unusable, once that cannot hold).
    fn fill(&mut self, x: &[f32], n: usize, d: usize) -> bool {
        let limit = (MAX_SPARSE_DENSITY * (n * d) as f64) as usize;
        self.start.clear();
        self.cols.clear();
        self.vals.clear();
        self.start.push(0);
        for row in x.chunks_exact(d.max(1)).take(n) {
            for (j, &v) in row.iter().enumerate() {
                // NaN is kept (it is not 0), so it propagates as it would through the matmul.
                if v != 0.0 {
                    self.cols.push(j);
                    self.vals.push(v);
                }
            }
            if self.cols.len() > limit {
                return false;
            }
            self.start.push(self.cols.len());
        }
        d > 0
    }

    fn row(&self, r: usize) -> impl Iterator<Item = (usize, f32)> + '_ {
        let span = self.start[r]..self.start[r + 1];
        self.cols[span.clone()].iter().copied().zip(self.vals[span].iter().copied())
    }
}

impl FusedMlp {
    /// The policy's weights, or `None` when a layer has no bias (only `MlpPolicy::init`'s layout,
    /// where every layer has one, is fused).
    pub fn from_policy(policy: &MlpPolicy) -> Option<Self> {
        let mut params = Vec::new();
        let mut layers = Vec::new();
        for linear in policy.encoder.iter().chain(&policy.critic).chain([&policy.policy_head, &policy.value_head]) {
            let bias = linear.bias.as_ref()?;
            let [d_in, d_out] = linear.weight.dims();
            let w = params.len();
            params.extend(linear.weight.val().into_data().convert::<f32>().try_into_vec::<f32>().ok()?);
            let b = params.len();
            params.extend(bias.val().into_data().convert::<f32>().try_into_vec::<f32>().ok()?);
            layers.push(Layer { w, b, d_in, d_out });
        }
        Some(Self { spec: policy.spec.clone(), params, layers })
    }

    /// `policy` with this buffer's weights (its parameter ids, devices and gradient flags kept).
    ///
    /// # Panics
    /// When `policy` does not have this MLP's architecture.
    pub fn write_into(&self, mut policy: MlpPolicy) -> MlpPolicy {
        assert_eq!(policy.spec, self.spec, "write_into: another MLP architecture");
        let set = |linear: &mut Linear, layer: &Layer, params: &[f32]| {
            let weight = layer.weight(params).to_vec();
            let bias = params[layer.b..layer.b + layer.d_out].to_vec();
            linear.weight = linear.weight.clone().map(|old| {
                let grad = old.is_require_grad();
                let shape = [layer.d_in, layer.d_out];
                Tensor::from_data(TensorData::new(weight, shape), &old.device()).set_require_grad(grad)
            });
            let b = linear.bias.take().expect("fused layers have biases");
            linear.bias = Some(b.map(|old| {
                let grad = old.is_require_grad();
                Tensor::from_data(TensorData::new(bias, [layer.d_out]), &old.device()).set_require_grad(grad)
            }));
        };
        let (actor, critic) = (policy.encoder.len(), policy.critic.len());
        for (i, linear) in policy.encoder.iter_mut().enumerate() {
            set(linear, &self.layers[i], &self.params);
        }
        for (i, linear) in policy.critic.iter_mut().enumerate() {
            set(linear, &self.layers[actor + i], &self.params);
        }
        set(&mut policy.policy_head, &self.layers[actor + critic], &self.params);
        set(&mut policy.value_head, &self.layers[actor + critic + 1], &self.params);
        policy
    }

    /// Every parameter, in module order.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// Every parameter, in module order (for an optimizer step).
    pub fn params_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }

    /// Offsets `(start, len)` of each tensor in the buffer, in module order (weight, then bias).
    pub fn tensors(&self) -> Vec<(usize, usize)> {
        self.layers.iter().flat_map(|l| [(l.w, l.d_in * l.d_out), (l.b, l.d_out)]).collect()
    }

    pub fn obs_len(&self) -> usize {
        self.spec.obs_len
    }

    pub fn num_actions(&self) -> usize {
        self.spec.num_actions
    }

    fn hidden_layers(&self) -> usize {
        self.spec.config.hidden.len()
    }

    fn critic_layers(&self) -> usize {
        if self.spec.config.shared_torso { 0 } else { self.hidden_layers() }
    }

    fn policy_head(&self) -> Layer {
        self.layers[self.hidden_layers() + self.critic_layers()]
    }

    fn value_head(&self) -> Layer {
        self.layers[self.hidden_layers() + self.critic_layers() + 1]
    }

    /// Multiply-add FLOPs (2 per multiply-add) of one forward pass over `n` observations.
    pub fn forward_flops(&self, n: usize) -> u64 {
        self.layers.iter().map(|l| l.flops(n)).sum()
    }

    /// FLOPs of one backward pass over `n` observations: the weight gradient of every layer plus
    /// the input gradient of every layer but the first of each tower.
    pub fn backward_flops(&self, n: usize) -> u64 {
        let (hidden, critic) = (self.hidden_layers(), self.critic_layers());
        let firsts = [0, hidden].into_iter().filter(|&i| i < hidden + critic).collect::<Vec<_>>();
        self.layers.iter().enumerate().map(|(i, l)| if firsts.contains(&i) { l.flops(n) } else { 2 * l.flops(n) }).sum()
    }

    /// `out = act(x · W + b)` for `n` rows (`act = None` for a head).
    fn linear(&self, layer: Layer, x: &[f32], n: usize, out: &mut Vec<f32>, act: Option<Activation>) {
        out.clear();
        let bias = &self.params[layer.b..layer.b + layer.d_out];
        for _ in 0..n {
            out.extend_from_slice(bias);
        }
        // [n, d_in] · [d_in, d_out] + bias rows → [n, d_out]
        matmul(n, layer.d_out, layer.d_in, Mat::n(x), Mat::n(layer.weight(&self.params)), out, true);
        activate(out, act);
    }

    /// [`FusedMlp::linear`] for a sparse input: each output row is the bias plus the weight rows
    /// of the input's nonzeros, scaled by them.
    fn linear_sparse(&self, layer: Layer, x: &SparseRows, n: usize, out: &mut Vec<f32>, act: Option<Activation>) {
        out.clear();
        let bias = &self.params[layer.b..layer.b + layer.d_out];
        let weight = layer.weight(&self.params);
        for r in 0..n {
            let start = out.len();
            out.extend_from_slice(bias);
            let row = &mut out[start..];
            for (j, v) in x.row(r) {
                axpy(v, &weight[j * layer.d_out..(j + 1) * layer.d_out], row);
            }
        }
        activate(out, act);
    }
}

/// The activation in place (`None` for a head).
fn activate(out: &mut [f32], act: Option<Activation>) {
    {
        match act {
            Some(Activation::Tanh) => tanh_in_place(out),
            Some(Activation::Relu) => out.iter_mut().for_each(|v| *v = v.max(0.0)),
            None => {}
        }
    }
}

impl FusedMlp {
    /// Runs tower layers `first..first + count` from `obs` (read through `sparse` when given),
    /// leaving each output in `acts`.
    fn tower(
        &self,
        first: usize,
        count: usize,
        obs: &[f32],
        sparse: Option<&SparseRows>,
        n: usize,
        acts: &mut Vec<Vec<f32>>,
    ) {
        acts.resize_with(count, Vec::new);
        let act = Some(self.spec.config.activation);
        for i in 0..count {
            let mut out = std::mem::take(&mut acts[i]);
            match (i, sparse) {
                (0, Some(rows)) => self.linear_sparse(self.layers[first], rows, n, &mut out, act),
                (0, None) => self.linear(self.layers[first], obs, n, &mut out, act),
                _ => self.linear(self.layers[first + i], &acts[i - 1], n, &mut out, act),
            }
            acts[i] = out;
        }
    }

    /// Logits `[n, actions]` and values `[n]` of `n` flat observations, into `ws.logits` and
    /// `ws.value`; the activations stay in `ws` for [`FusedMlp::backward`].
    ///
    /// # Panics
    /// When `obs` does not hold `n * obs_len` values.
    pub fn forward(&self, obs: &[f32], n: usize, ws: &mut Workspace) {
        assert_eq!(obs.len(), n * self.obs_len(), "forward: obs must be [n, obs_len]");
        ws.n = n;
        ws.obs_sparse = ws.obs_rows.fill(obs, n, self.obs_len());
        let sparse = ws.obs_sparse.then_some(&ws.obs_rows);
        let (hidden, critic) = (self.hidden_layers(), self.critic_layers());
        self.tower(0, hidden, obs, sparse, n, &mut ws.actor);
        let mut logits = std::mem::take(&mut ws.logits);
        let actor_out = ws.actor.last().map_or(obs, |v| v.as_slice());
        self.linear(self.policy_head(), actor_out, n, &mut logits, None);
        ws.logits = logits;
        self.tower(hidden, critic, obs, sparse, n, &mut ws.critic);
        let critic_out =
            if self.spec.config.shared_torso { actor_out } else { ws.critic.last().map_or(obs, |v| v.as_slice()) };
        let mut value = std::mem::take(&mut ws.value);
        self.linear(self.value_head(), critic_out, n, &mut value, None); // [n, 1] = [n]
        ws.value = value;
    }

    /// Values `[n]` only (into `ws.value`), skipping the actor when the critic is separate.
    pub fn value(&self, obs: &[f32], n: usize, ws: &mut Workspace) {
        if self.spec.config.shared_torso {
            return self.forward(obs, n, ws);
        }
        assert_eq!(obs.len(), n * self.obs_len(), "value: obs must be [n, obs_len]");
        ws.n = n;
        ws.obs_sparse = ws.obs_rows.fill(obs, n, self.obs_len());
        let sparse = ws.obs_sparse.then_some(&ws.obs_rows);
        self.tower(self.hidden_layers(), self.critic_layers(), obs, sparse, n, &mut ws.critic);
        let critic_out = ws.critic.last().map_or(obs, |v| v.as_slice());
        let mut value = std::mem::take(&mut ws.value);
        self.linear(self.value_head(), critic_out, n, &mut value, None);
        ws.value = value;
    }

    /// Gradients of a loss with respect to every parameter, written into `grads` (module order,
    /// overwritten), given the loss's gradients with respect to the last [`FusedMlp::forward`]'s
    /// logits (`[n, actions]`) and values (`[n]`). `obs` must be that forward's input.
    ///
    /// # Panics
    /// When a buffer has the wrong length or `ws` holds no forward pass over these `n` rows.
    pub fn backward(&self, obs: &[f32], ws: &mut Workspace, dlogits: &[f32], dvalue: &[f32], grads: &mut [f32]) {
        let n = ws.n;
        assert_eq!(obs.len(), n * self.obs_len(), "backward: obs of another forward pass");
        assert_eq!(dlogits.len(), n * self.num_actions(), "backward: dlogits must be [n, actions]");
        assert_eq!(dvalue.len(), n, "backward: dvalue must be [n]");
        assert_eq!(grads.len(), self.params.len(), "backward: grads must match the parameters");
        assert_eq!(ws.actor.len(), self.hidden_layers(), "backward: no forward pass in the workspace");
        let (hidden, critic) = (self.hidden_layers(), self.critic_layers());
        let shared = self.spec.config.shared_torso;
        let actor_out = ws.actor.last().map_or(obs, |v| v.as_slice());
        let critic_out = if shared { actor_out } else { ws.critic.last().map_or(obs, |v| v.as_slice()) };

        // Heads: dW = inputᵀ · dout, db = Σ_rows dout, d input = dout · Wᵀ.
        let (ph, vh) = (self.policy_head(), self.value_head());
        head_grads(ph, actor_out, dlogits, n, grads);
        head_grads(vh, critic_out, dvalue, n, grads);
        if hidden > 0 {
            let (d_actor, d_critic) = (&mut ws.grad_actor, &mut ws.grad_critic);
            d_actor.resize(n * ph.d_in, 0.0);
            // [n, A] · [A, d_last] → [n, d_last]
            matmul(n, ph.d_in, ph.d_out, Mat::n(dlogits), Mat::t(ph.weight(&self.params)), d_actor, false);
            let d_value_in = if shared { &mut *d_actor } else { &mut *d_critic };
            d_value_in.resize(n * vh.d_in, 0.0);
            // [n, 1] · [1, d_last] → [n, d_last], added to the actor's when the torso is shared.
            matmul(n, vh.d_in, 1, Mat::n(dvalue), Mat::t(vh.weight(&self.params)), d_value_in, shared);
            let sparse = ws.obs_sparse.then_some(&ws.obs_rows);
            self.tower_backward(0, &ws.actor, obs, sparse, n, d_actor, &mut ws.scratch, grads);
            if critic > 0 {
                self.tower_backward(hidden, &ws.critic, obs, sparse, n, d_critic, &mut ws.scratch, grads);
            }
        }
    }

    /// Back through tower layers `first..first + acts.len()`, `d_out` holding the gradient with
    /// respect to the last layer's output (consumed); `scratch` is reused for the layer inputs.
    #[allow(clippy::too_many_arguments)]
    fn tower_backward(
        &self,
        first: usize,
        acts: &[Vec<f32>],
        obs: &[f32],
        sparse: Option<&SparseRows>,
        n: usize,
        d_out: &mut Vec<f32>,
        scratch: &mut Vec<f32>,
        grads: &mut [f32],
    ) {
        for i in (0..acts.len()).rev() {
            let layer = self.layers[first + i];
            // d pre-activation = d output ⊙ act'(output)
            match self.spec.config.activation {
                Activation::Tanh => d_out.iter_mut().zip(&acts[i]).for_each(|(d, a)| *d *= 1.0 - a * a),
                Activation::Relu => d_out.iter_mut().zip(&acts[i]).for_each(|(d, a)| {
                    if *a <= 0.0 {
                        *d = 0.0
                    }
                }),
            }
            match (i, sparse) {
                (0, Some(rows)) => sparse_grads(layer, rows, d_out, n, grads),
                (0, None) => head_grads(layer, obs, d_out, n, grads),
                _ => head_grads(layer, &acts[i - 1], d_out, n, grads),
            }
            if i > 0 {
                scratch.resize(n * layer.d_in, 0.0);
                // [n, d_out] · [d_out, d_in] → [n, d_in]
                matmul(n, layer.d_in, layer.d_out, Mat::n(d_out), Mat::t(layer.weight(&self.params)), scratch, false);
                std::mem::swap(d_out, scratch);
            }
        }
    }
}

/// A layer's weight and bias gradients from its input `[n, d_in]` and output gradient `[n, d_out]`.
fn head_grads(layer: Layer, input: &[f32], d_out: &[f32], n: usize, grads: &mut [f32]) {
    // [d_in, n] · [n, d_out] → [d_in, d_out]
    let dw = &mut grads[layer.w..layer.w + layer.d_in * layer.d_out];
    matmul(layer.d_in, layer.d_out, n, Mat::t(input), Mat::n(d_out), dw, false);
    let db = &mut grads[layer.b..layer.b + layer.d_out];
    db.fill(0.0);
    for row in d_out.chunks_exact(layer.d_out) {
        db.iter_mut().zip(row).for_each(|(s, g)| *s += g);
    }
}

/// [`head_grads`] for a sparse input: `dW[j] = Σ_r x[r, j] · d_out[r]` over the nonzeros only.
fn sparse_grads(layer: Layer, input: &SparseRows, d_out: &[f32], n: usize, grads: &mut [f32]) {
    let dw = &mut grads[layer.w..layer.w + layer.d_in * layer.d_out];
    dw.fill(0.0);
    for r in 0..n {
        let g = &d_out[r * layer.d_out..(r + 1) * layer.d_out];
        for (j, v) in input.row(r) {
            axpy(v, g, &mut dw[j * layer.d_out..(j + 1) * layer.d_out]);
        }
    }
    let db = &mut grads[layer.b..layer.b + layer.d_out];
    db.fill(0.0);
    for row in d_out.chunks_exact(layer.d_out) {
        db.iter_mut().zip(row).for_each(|(s, g)| *s += g);
    }
}

/// Adam (Kingma & Ba) on a flat buffer, step for step the formula of burn's `Adam` (no weight
/// decay): `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, then
/// `θ ← θ − lr · m·√(1−β₂ᵗ)/(1−β₁ᵗ) / (√v + ε·√(1−β₂ᵗ))`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Adam {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    /// Steps taken.
    pub time: usize,
    pub moment_1: Vec<f32>,
    pub moment_2: Vec<f32>,
}

impl Adam {
    /// Zero moments for `len` parameters; β = (0.9, 0.999) as burn's and PyTorch's defaults.
    pub fn new(len: usize, epsilon: f32) -> Self {
        Self { beta_1: 0.9, beta_2: 0.999, epsilon, time: 0, moment_1: vec![0.0; len], moment_2: vec![0.0; len] }
    }

    /// One step of `params` along `grads`.
    ///
    /// # Panics
    /// When the buffers' lengths differ from the moments'.
    pub fn step(&mut self, params: &mut [f32], grads: &[f32], learning_rate: f32) {
        assert_eq!(params.len(), self.moment_1.len(), "adam: parameter count changed");
        assert_eq!(grads.len(), self.moment_1.len(), "adam: gradient count differs");
        self.time += 1;
        let t = self.time as i32;
        let bias_correction2_sqrt = (1.0 - self.beta_2.powi(t)).sqrt();
        let combined = bias_correction2_sqrt / (1.0 - self.beta_1.powi(t));
        let eps = self.epsilon * bias_correction2_sqrt;
        let (b1, b2) = (self.beta_1, self.beta_2);
        for (((p, g), m), v) in params.iter_mut().zip(grads).zip(&mut self.moment_1).zip(&mut self.moment_2) {
            *m = *m * b1 + g * (1.0 - b1);
            *v = *v * b2 + g * g * (1.0 - b2);
            *p -= learning_rate * (*m * combined / (v.sqrt() + eps));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{cpu, cpu_autodiff};
    use crate::policy::{MlpPolicyConfig, Policy};
    use burn::optim::{AdamConfig, GradientsParams};
    use mesalab_core::{Seed, Streams};
    use rand::Rng;

    fn random(len: usize, rng: &mut mesalab_core::StreamRng) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.5f32..1.5)).collect()
    }

    fn configs() -> Vec<MlpPolicyConfig> {
        vec![
            MlpPolicyConfig::default(),
            MlpPolicyConfig { shared_torso: true, ..MlpPolicyConfig::default() },
            MlpPolicyConfig { hidden: vec![7, 5, 3], activation: Activation::Relu, shared_torso: false },
            MlpPolicyConfig { hidden: vec![], ..MlpPolicyConfig::default() },
        ]
    }

    fn close(what: &str, got: &[f32], want: &[f32], tol: f32) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}[{i}]: fused {g} vs burn {w}");
        }
    }

    /// burn's logits `[n, A]`, values `[n]`, and its autodiff gradients (module order) of the
    /// loss `Σ c ⊙ logits + Σ d ⊙ value`, whose gradients with respect to the outputs are (c, d).
    fn burn_probe(policy: &MlpPolicy, obs: &[f32], c: &[f32], d: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let device = cpu_autodiff();
        let (n, a) = (d.len(), c.len() / d.len());
        let out = policy.forward(Tensor::from_data(TensorData::new(obs.to_vec(), [n, obs.len() / n]), &device));
        let (logits, values) = (out.logits.clone(), out.value.clone());
        let loss = (out.logits * Tensor::<2>::from_data(TensorData::new(c.to_vec(), [n, a]), &device)).sum()
            + (out.value * Tensor::<1>::from_data(TensorData::new(d.to_vec(), [n]), &device)).sum();
        let grads = GradientsParams::from_grads(loss.backward(), policy);
        let read = |t: Option<Tensor<2>>| t.unwrap().into_data().try_to_vec::<f32>().unwrap();
        let mut want = Vec::new();
        for l in policy.encoder.iter().chain(&policy.critic).chain([&policy.policy_head, &policy.value_head]) {
            want.extend(read(grads.get::<2>(l.weight.id)));
            want.extend(grads.get::<1>(l.bias.as_ref().unwrap().id).unwrap().into_data().try_to_vec::<f32>().unwrap());
        }
        let vec = |t: burn::tensor::TensorData| t.try_to_vec::<f32>().unwrap();
        (vec(logits.into_data()), vec(values.into_data()), want)
    }

    #[test]
    fn forward_matches_burn_on_random_inputs() {
        let device = cpu();
        for (k, config) in configs().into_iter().enumerate() {
            let streams = Streams::new(Seed(10 + k as u64));
            let policy = MlpPolicy::init(&config, 6, 3, &mut streams.stream("init"), &device);
            let fused = FusedMlp::from_policy(&policy).unwrap();
            let obs = random(9 * 6, &mut streams.stream("obs"));
            let out = policy.forward(Tensor::from_data(TensorData::new(obs.clone(), [9, 6]), &device));
            let mut ws = Workspace::default();
            fused.forward(&obs, 9, &mut ws);
            close("logits", &ws.logits, &out.logits.into_data().try_to_vec::<f32>().unwrap(), 1e-5);
            close("value", &ws.value, &out.value.into_data().try_to_vec::<f32>().unwrap(), 1e-5);
            let values = ws.value.clone();
            fused.value(&obs, 9, &mut ws);
            assert_eq!(ws.value, values, "value-only pass = forward's values");
        }
    }

    /// Loss = Σ c ⊙ logits + Σ d ⊙ value with random c, d: its gradients with respect to the
    /// outputs are exactly (c, d), so burn's autodiff and the fused backward see the same input.
    #[test]
    fn backward_matches_burn_autodiff_to_1e_5() {
        let device = cpu_autodiff();
        for (k, config) in configs().into_iter().enumerate() {
            let streams = Streams::new(Seed(20 + k as u64));
            let mut rng = streams.stream("data");
            let policy = MlpPolicy::init(&config, 5, 4, &mut streams.stream("init"), &device);
            let n = 13;
            let obs = random(n * 5, &mut rng);
            let (c, d) = (random(n * 4, &mut rng), random(n, &mut rng));
            let (_, _, want) = burn_probe(&policy, &obs, &c, &d);
            let fused = FusedMlp::from_policy(&policy).unwrap();
            let mut ws = Workspace::default();
            fused.forward(&obs, n, &mut ws);
            let mut got = vec![f32::NAN; fused.params().len()];
            fused.backward(&obs, &mut ws, &c, &d, &mut got);
            close(&format!("grads of config {k}"), &got, &want, 1e-5);
            // A second pass through the reused workspace gives the same bits.
            fused.forward(&obs, n, &mut ws);
            let mut again = vec![0.0; got.len()];
            fused.backward(&obs, &mut ws, &c, &d, &mut again);
            assert_eq!(got, again, "workspace reuse");
        }
    }

    /// One-hot-like observations (a 1 and a 0.5 per row of 20, density ≤ 0.1) take the sparse
    /// path; its forward and gradients match burn's, and dense inputs keep the matmul path.
    #[test]
    fn sparse_observations_match_burn_forward_and_autodiff() {
        let device = cpu_autodiff();
        for (k, config) in configs().into_iter().enumerate() {
            let streams = Streams::new(Seed(40 + k as u64));
            let mut rng = streams.stream("data");
            let (n, d, actions) = (11, 20, 3);
            let policy = MlpPolicy::init(&config, d, actions, &mut streams.stream("init"), &device);
            let mut obs = vec![0.0f32; n * d];
            for row in obs.chunks_exact_mut(d) {
                row[rng.random_range(0..d)] = 1.0;
                row[rng.random_range(0..d)] = 0.5;
            }
            let (c, dv) = (random(n * actions, &mut rng), random(n, &mut rng));
            let (logits, values, want) = burn_probe(&policy, &obs, &c, &dv);
            let fused = FusedMlp::from_policy(&policy).unwrap();
            let mut ws = Workspace::default();
            fused.forward(&obs, n, &mut ws);
            assert!(ws.obs_sparse, "config {k}: the sparse path was not taken");
            close("sparse logits", &ws.logits, &logits, 1e-5);
            close("sparse values", &ws.value, &values, 1e-5);
            let mut got = vec![f32::NAN; fused.params().len()];
            fused.backward(&obs, &mut ws, &c, &dv, &mut got);
            close(&format!("sparse grads of config {k}"), &got, &want, 1e-5);
            let dense = random(n * d, &mut rng);
            fused.forward(&dense, n, &mut ws);
            assert!(!ws.obs_sparse, "dense observations must use the matmul");
        }
    }

    #[test]
    fn write_into_round_trips_and_keeps_parameter_ids() {
        let device = cpu_autodiff();
        let policy =
            MlpPolicy::init(&MlpPolicyConfig::default(), 4, 2, &mut Streams::new(Seed(3)).stream("init"), &device);
        let mut fused = FusedMlp::from_policy(&policy).unwrap();
        fused.params_mut().iter_mut().for_each(|p| *p += 0.25);
        let id = policy.encoder[0].weight.id;
        let written = fused.write_into(policy);
        assert_eq!(written.encoder[0].weight.id, id);
        assert_eq!(FusedMlp::from_policy(&written).unwrap(), fused);
        assert!(written.encoder[0].weight.val().is_require_grad(), "gradient flag kept");
        let total: usize = fused.tensors().iter().map(|(_, len)| len).sum();
        assert_eq!(total, fused.params().len());
    }

    #[test]
    fn adam_matches_burn_adam_over_several_steps() {
        let device = cpu_autodiff();
        let streams = Streams::new(Seed(5));
        let mut policy = MlpPolicy::init(&MlpPolicyConfig::default(), 3, 2, &mut streams.stream("init"), &device);
        let mut fused = FusedMlp::from_policy(&policy).unwrap();
        let mut adam = Adam::new(fused.params().len(), 1e-5);
        let mut optimizer = AdamConfig::new().with_epsilon(1e-5).init();
        let mut rng = streams.stream("data");
        for step in 0..5 {
            let obs = random(8 * 3, &mut rng);
            let (c, d) = (random(8 * 2, &mut rng), random(8, &mut rng));
            let out = policy.forward(Tensor::from_data(TensorData::new(obs.clone(), [8, 3]), &device));
            let loss = (out.logits * Tensor::<2>::from_data(TensorData::new(c.clone(), [8, 2]), &device)).sum()
                + (out.value * Tensor::<1>::from_data(TensorData::new(d.clone(), [8]), &device)).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &policy);
            policy = optimizer.step(1e-2, policy, grads);
            let mut ws = Workspace::default();
            fused.forward(&obs, 8, &mut ws);
            let mut g = vec![0.0; fused.params().len()];
            fused.backward(&obs, &mut ws, &c, &d, &mut g);
            adam.step(fused.params_mut(), &g, 1e-2);
            let burn = FusedMlp::from_policy(&policy).unwrap();
            close(&format!("params after step {step}"), fused.params(), burn.params(), 1e-5);
        }
    }

    #[test]
    fn flop_counts_follow_the_layer_shapes() {
        let policy =
            MlpPolicy::init(&MlpPolicyConfig::default(), 4, 2, &mut Streams::new(Seed(1)).stream("init"), &cpu());
        let fused = FusedMlp::from_policy(&policy).unwrap();
        // Actor 4·64 + 64·64 + 64·2, critic 4·64 + 64·64 + 64·1 multiply-adds per row.
        let macs = (4 * 64 + 64 * 64 + 64 * 2) + (4 * 64 + 64 * 64 + 64);
        assert_eq!(fused.forward_flops(10), 2 * 10 * macs as u64);
        // Backward: weight grads of all layers + input grads of all but each tower's first layer.
        assert_eq!(fused.backward_flops(10), 2 * 10 * (2 * macs - 2 * 4 * 64) as u64);
    }
}
