//! Actor-critic policies for the RL trainers (PPO), with named hook points.
//!
//! - [`Policy`]: what a trainer needs from a model — logits and a value from flat observations,
//!   with [`Hooks`] threaded through so every activation can be cached, patched or steered.
//! - [`mlp`]: [`MlpPolicy`], observations flattened, CleanRL's separate 64-64 tanh actor and critic
//!   by default (optionally one shared torso).
//! - [`any`]: [`AnyPolicy`], the MLP or CNN a [`PolicyConfig`] chooses, itself a [`Policy`].
//! - [`cnn`]: [`CnnPolicy`], a small IMPALA-like CNN over the symbolic `[C, H, W]` grid, then a
//!   torso MLP shared by the policy and value heads.
//! - [`vin`]: [`VinPolicy`], a Value Iteration Network (Tamar et al. 2016): a learned reward map,
//!   K steps of differentiable value iteration, Q read at the agent's cell (a white-box planner).
//! - [`recurrent`]: [`RecurrentPolicy`], an MLP encoder into a GRU or LSTM cell (state carried
//!   between steps, reset at episode starts), behind [`RecurrentActorCritic`].
//! - [`drc`]: [`DrcPolicy`], DRC(D, N) (Guez et al. 2019): a conv encoder into a stack of D
//!   ConvLSTM layers ticked N times per step, behind [`RecurrentActorCritic`].
//! - Initialisation follows CleanRL (`layer_init`): orthogonal weights with gain √2 in hidden
//!   layers, 0.01 for the policy head, 1 for the value head, zero biases. burn's orthogonal
//!   initializer cannot take a seed, so [`orthogonal`] draws from a [`StreamRng`] and
//!   orthonormalises with modified Gram–Schmidt (equivalent to PyTorch's QR with `sign(diag R)`).
//!
//! Hook names (TransformerLens style) and shapes:
//! - `encoder.fc.{i}.hook_out` `[batch, hidden]`: MLP actor (or shared) layer `i` after activation.
//! - `value.fc.{i}.hook_out` `[batch, hidden]`: MLP critic layer `i` (separate critic only).
//! - `encoder.conv.{i}.hook_out` `[batch, channel, height, width]`: CNN stage `i` output.
//! - `torso.hook_out` `[batch, hidden]`: CNN torso after its activation.
//! - VIN: `vin.hook_reward` `[batch, height, width]`, `vin.iter.{k}.hook_value` `[batch, height,
//!   width]`, `vin.hook_q` `[batch, action, height, width]`, `vin.hook_q_agent` `[batch, action]`.
//! - DRC: `drc.{d}.hook_h`, `drc.{d}.hook_c` `[batch, hidden, height, width]` (layer `d`'s state
//!   after a step), `encoder.conv.hook_out`, `torso.hook_out`.
//! - `policy.hook_logits` `[batch, action]`, `value.hook_out` `[batch, value]` (value width 1).

pub mod any;
pub mod cnn;
pub mod drc;
pub mod mlp;
pub mod recurrent;
pub mod vin;

pub use any::{AnyPolicy, PolicyConfig, PolicyKind};
pub use cnn::{CnnPolicy, CnnPolicyConfig};
pub use drc::{DrcPolicy, DrcPolicyConfig};
pub use mlp::{Activation, MlpPolicy, MlpPolicyConfig};
pub use recurrent::{Cell, RecurrentActorCritic, RecurrentPolicy, RecurrentPolicyConfig};
pub use vin::{VinPolicy, VinPolicyConfig};

use crate::hooks::{HookPoint, Hooks};
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use mesalab_core::StreamRng;
use rand_distr::{Distribution, StandardNormal};
use std::path::Path;

/// CleanRL's gain for hidden layers, √2.
pub const HIDDEN_GAIN: f64 = std::f64::consts::SQRT_2;
/// CleanRL's gain for the policy (actor) head: near-uniform initial action distribution.
pub const POLICY_GAIN: f64 = 0.01;
/// CleanRL's gain for the value (critic) head.
pub const VALUE_GAIN: f64 = 1.0;

/// What a policy returns for a batch of observations.
#[derive(Clone, Debug)]
pub struct PolicyOutput {
    /// Unnormalised action log-probabilities, `[batch, action]`.
    pub logits: Tensor<2>,
    /// State values, `[batch]`.
    pub value: Tensor<1>,
}

/// An actor-critic model over flat observations and a discrete action set.
pub trait Policy: Module + 'static {
    /// Logits and values for a batch of observations, calling `hooks.apply` at every hook point.
    ///
    /// # Shapes
    /// - `obs`: `[batch, obs_len]`, each row an observation flattened channel-major (`[C, H, W]`),
    ///   exactly as `VecEnv::obs` lays it out.
    /// - returns logits `[batch, action]` and value `[batch]`.
    fn forward_hooked(&self, obs: Tensor<2>, hooks: &mut Hooks) -> PolicyOutput;

    /// Every hook point, in forward order.
    fn hook_points(&self) -> Vec<HookPoint>;

    /// Length of one flat observation (`C * H * W`).
    fn obs_len(&self) -> usize;

    /// Number of discrete actions.
    fn num_actions(&self) -> usize;

    /// The plain forward pass (no hooks).
    fn forward(&self, obs: Tensor<2>) -> PolicyOutput {
        self.forward_hooked(obs, &mut Hooks::none())
    }

    /// Values only. Defaults to the full forward pass; models with a separate critic skip the actor.
    ///
    /// # Shapes
    /// - `obs`: `[batch, obs_len]`; returns `[batch]`.
    fn value(&self, obs: Tensor<2>) -> Tensor<1> {
        self.forward(obs).value
    }

    /// The MLP this policy is, when it is one (PPO then trains it with [`crate::fused`]'s kernels).
    fn as_mlp(&self) -> Option<&MlpPolicy> {
        None
    }

    /// This policy with its MLP replaced by `f(mlp)`; unchanged when [`Policy::as_mlp`] is `None`.
    fn map_mlp(self, _f: impl FnOnce(MlpPolicy) -> MlpPolicy) -> Self
    where
        Self: Sized,
    {
        self
    }

    /// Saves the parameters to a safetensors file (the architecture is the caller's config).
    fn save(&self, path: &Path) -> Result<(), String> {
        crate::checkpoint::save(self, path)
    }

    /// Loads parameters saved by [`Policy::save`] into a model of the same architecture.
    fn load(self, path: &Path) -> Result<Self, String>
    where
        Self: Sized,
    {
        crate::checkpoint::load(self, path)
    }
}

/// A `rows × cols` row-major matrix with orthonormal rows (when `rows <= cols`) or columns
/// (otherwise), times `gain` — PyTorch's `nn.init.orthogonal_` on a `[rows, cols]` weight, drawn
/// from `rng`.
pub fn orthogonal(rows: usize, cols: usize, gain: f64, rng: &mut StreamRng) -> Vec<f32> {
    let (m, n) = (rows.max(cols), rows.min(cols));
    // A is m×n (column j is a[j*m..(j+1)*m]); its columns are orthonormalised in order, which is
    // the Q of A = QR with a positive diagonal of R.
    let mut a: Vec<f64> = (0..m * n).map(|_| StandardNormal.sample(rng)).collect();
    for j in 0..n {
        for k in 0..j {
            let dot: f64 = (0..m).map(|i| a[j * m + i] * a[k * m + i]).sum();
            for i in 0..m {
                a[j * m + i] -= dot * a[k * m + i];
            }
        }
        let norm = (0..m).map(|i| a[j * m + i] * a[j * m + i]).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
        for i in 0..m {
            a[j * m + i] /= norm;
        }
    }
    let mut w = vec![0.0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            // rows >= cols: W = Q (m = rows); otherwise W = Qᵀ (m = cols).
            let q = if rows >= cols { a[c * m + r] } else { a[r * m + c] };
            w[r * cols + c] = (gain * q) as f32;
        }
    }
    w
}

/// A linear layer with the given weights, `weight` row-major `[d_in, d_out]` (burn's layout: the
/// transpose of PyTorch's `[out, in]`), `bias` `[d_out]`.
pub fn linear_from(weight: Vec<f32>, bias: Vec<f32>, d_in: usize, d_out: usize, device: &Device) -> Linear {
    assert_eq!(weight.len(), d_in * d_out, "linear weight must be d_in * d_out");
    assert_eq!(bias.len(), d_out, "linear bias must be d_out");
    Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(weight, [d_in, d_out]), device)),
        bias: Some(Param::from_tensor(Tensor::from_data(TensorData::new(bias, [d_out]), device))),
    }
}

/// CleanRL's `layer_init(nn.Linear(d_in, d_out), std=gain)`: orthogonal weight, zero bias.
pub fn linear_init(d_in: usize, d_out: usize, gain: f64, rng: &mut StreamRng, device: &Device) -> Linear {
    // PyTorch draws the [out, in] weight; burn stores [in, out].
    let torch = orthogonal(d_out, d_in, gain, rng);
    let mut weight = vec![0.0; d_in * d_out];
    for o in 0..d_out {
        for i in 0..d_in {
            weight[i * d_out + o] = torch[o * d_in + i];
        }
    }
    linear_from(weight, vec![0.0; d_out], d_in, d_out, device)
}

/// The value head's `[batch, 1]` output as `[batch]`.
fn squeeze_value(v: Tensor<2>) -> Tensor<1> {
    let [batch, _] = v.dims();
    v.reshape([batch])
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesalab_core::{Seed, Streams};

    fn gram(w: &[f32], rows: usize, cols: usize, by_rows: bool) -> Vec<f64> {
        let n = if by_rows { rows } else { cols };
        let get = |k: usize, i: usize| if by_rows { w[k * cols + i] } else { w[i * cols + k] } as f64;
        let len = if by_rows { cols } else { rows };
        let mut g = vec![0.0; n * n];
        for a in 0..n {
            for b in 0..n {
                g[a * n + b] = (0..len).map(|i| get(a, i) * get(b, i)).sum();
            }
        }
        g
    }

    #[test]
    fn orthogonal_is_orthonormal_times_gain_and_seeded() {
        let mut rng = Streams::new(Seed(1)).stream("init");
        for (rows, cols, gain) in [(64, 4, 2f64.sqrt()), (3, 64, 0.01), (16, 16, 1.0)] {
            let w = orthogonal(rows, cols, gain, &mut rng);
            let by_rows = rows <= cols;
            let n = rows.min(cols);
            let g = gram(&w, rows, cols, by_rows);
            for a in 0..n {
                for b in 0..n {
                    let expected = if a == b { gain * gain } else { 0.0 };
                    assert!((g[a * n + b] - expected).abs() < 1e-5 * gain * gain.max(1.0), "{rows}x{cols} at {a},{b}");
                }
            }
        }
        let a = orthogonal(8, 5, 1.0, &mut Streams::new(Seed(2)).stream("init"));
        let b = orthogonal(8, 5, 1.0, &mut Streams::new(Seed(2)).stream("init"));
        assert_eq!(a, b);
    }
}
