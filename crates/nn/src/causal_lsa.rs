//! Causal linear self-attention for sequence prediction (von Oswald et al. 2023b, "Uncovering
//! mesa-optimization algorithms in Transformers").
//!
//! Position t attends to positions `1..=t` with linear scores averaged over them:
//!
//! `e_t ← e_t + Σ_h P_h W_V^h (1/t) Σ_{j≤t} e_j · (e_jᵀ W_K^hᵀ W_Q^h e_t)`.
//!
//! The 1/t keeps one fixed step size meaningful at every position (it makes a layer a step on
//! the *mean* loss over the context). The prediction at position t is the first `d_out` entries of
//! its token after the last layer (a slot the input leaves at zero), so with tokens
//! `e_t = (0, s_t, s_{t−1})` the hand-built layer of [`CausalLsa::gd_construction`] outputs one
//! gradient-descent step on `L(W) = 1/(2t) Σ_{j≤t} ‖W s_{j−1} − s_j‖²` from `W = 0`, applied to
//! `s_t` (tested in this module). No MLPs, norms or biases, as in [`crate::lsa`].

use crate::hooks::{HookPoint, Hooks};
use crate::lsa::{AttentionWeights, LayerWeights};
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use mesalab_core::StreamRng;
use rand_distr::{Distribution, Normal};

/// Static architecture of a [`CausalLsa`].
#[derive(Clone, Debug, PartialEq)]
pub struct CausalLsaSpec {
    /// Token width D.
    pub d_token: usize,
    /// Width of the prediction slot (the first `d_out` entries of each token).
    pub d_out: usize,
    pub layers: usize,
    pub heads: usize,
}

/// The model: `layers` causal attention layers on the residual stream.
#[derive(Module, Debug)]
pub struct CausalLsa {
    pub blocks: Vec<AttentionWeights>,
    #[module(skip)]
    pub spec: CausalLsaSpec,
}

/// The causal averaging mask `[T, T]`: row t holds 1/(t+1) at columns `0..=t` and 0 after.
fn causal_mean_mask(positions: usize) -> Vec<f32> {
    let mut m = vec![0.0f32; positions * positions];
    for t in 0..positions {
        for j in 0..=t {
            m[t * positions + j] = 1.0 / (t + 1) as f32;
        }
    }
    m
}

impl CausalLsa {
    /// Random init: every weight ~ N(0, init_std²) from `rng`.
    pub fn init(spec: CausalLsaSpec, init_std: f64, rng: &mut StreamRng, device: &Device) -> Self {
        let normal = Normal::new(0.0, init_std.max(0.0)).expect("finite std");
        let n = spec.heads * spec.d_token * spec.d_token;
        let mut draw = || (0..n).map(|_| normal.sample(rng) as f32).collect::<Vec<f32>>();
        let layers =
            (0..spec.layers).map(|_| LayerWeights { w_q: draw(), w_k: draw(), w_v: draw(), p: draw() }).collect();
        Self::from_weights(spec, layers, device)
    }

    /// A model with the given weights (one entry per layer).
    pub fn from_weights(spec: CausalLsaSpec, layers: Vec<LayerWeights>, device: &Device) -> Self {
        assert_eq!(layers.len(), spec.layers, "one LayerWeights per layer");
        let blocks = layers.into_iter().map(|l| AttentionWeights::new(l, spec.heads, spec.d_token, device)).collect();
        Self { blocks, spec }
    }

    /// The weights as plain vectors (one entry per layer).
    pub fn weights(&self) -> Vec<LayerWeights> {
        self.blocks.iter().map(AttentionWeights::to_plain).collect()
    }

    /// The one-GD-step layer for state width `d` (tokens `(0, s_t, s_{t−1})`, D = 3d) and step
    /// size `eta`, in head 0: the query reads s_t, the key s_{j−1}, the value s_j, and P writes
    /// `eta ·` the result into the prediction slot.
    pub fn gd_construction(d: usize, heads: usize, eta: f32) -> LayerWeights {
        let dt = 3 * d;
        let mut w_q = vec![0.0; heads * dt * dt];
        let mut w_k = vec![0.0; heads * dt * dt];
        let mut w_v = vec![0.0; heads * dt * dt];
        let mut p = vec![0.0; heads * dt * dt];
        for i in 0..d {
            w_q[i * dt + d + i] = 1.0;
            w_k[i * dt + 2 * d + i] = 1.0;
            w_v[i * dt + d + i] = 1.0;
            p[i * dt + i] = eta;
        }
        LayerWeights { w_q, w_k, w_v, p }
    }

    /// Every hook point, in forward order.
    pub fn hook_points(&self) -> Vec<HookPoint> {
        let mut points = Vec::new();
        let mut add = |name: String, dims: &[&'static str]| points.push(HookPoint { name, dims: dims.to_vec() });
        for l in 0..self.spec.layers {
            add(format!("blocks.{l}.hook_resid_pre"), &["batch", "pos", "d_token"]);
            add(format!("blocks.{l}.attn.hook_q"), &["batch", "head", "pos", "d_token"]);
            add(format!("blocks.{l}.attn.hook_k"), &["batch", "head", "pos", "d_token"]);
            add(format!("blocks.{l}.attn.hook_v"), &["batch", "head", "pos", "d_token"]);
            add(format!("blocks.{l}.attn.hook_pattern"), &["batch", "head", "q_pos", "k_pos"]);
            add(format!("blocks.{l}.hook_attn_out"), &["batch", "pos", "d_token"]);
            add(format!("blocks.{l}.hook_resid_post"), &["batch", "pos", "d_token"]);
        }
        points
    }

    /// Runs all layers.
    ///
    /// # Shapes
    /// - `tokens`: `[batch, T, D]`; returns the final tokens, `[batch, T, D]`.
    pub fn forward_hooked(&self, tokens: Tensor<3>, hooks: &mut Hooks) -> Tensor<3> {
        let [batch, positions, d] = tokens.dims();
        let heads = self.spec.heads;
        let device = tokens.device();
        // [T, T] -> [1, 1, T, T], broadcast over batch and heads.
        let mask =
            Tensor::<2>::from_data(TensorData::new(causal_mean_mask(positions), [positions, positions]), &device)
                .reshape([1, 1, positions, positions]);
        let mut z = tokens;
        for (l, w) in self.blocks.iter().enumerate() {
            z = hooks.apply(|| format!("blocks.{l}.hook_resid_pre"), z);
            // [B, T, D] -> [B·T, D]
            let z2 = z.clone().reshape([batch * positions, d]);
            let project = |p: &Param<Tensor<3>>| -> Tensor<4> {
                // [H, D_out, D_in] -> [D_in, H, D_out] -> [D_in, H·D_out]: column block h is W_hᵀ.
                let w = p.val().permute([2, 0, 1]).reshape([d, heads * d]);
                // [B·T, H·D] -> [B, T, H, D] -> [B, H, T, D]
                z2.clone().matmul(w).reshape([batch, positions, heads, d]).swap_dims(1, 2)
            };
            let q = hooks.apply(|| format!("blocks.{l}.attn.hook_q"), project(&w.w_q));
            let k = hooks.apply(|| format!("blocks.{l}.attn.hook_k"), project(&w.w_k));
            let v = hooks.apply(|| format!("blocks.{l}.attn.hook_v"), project(&w.w_v));
            // Scores [B, H, T(query), T(key)], averaged causally.
            let pattern = q.matmul(k.swap_dims(2, 3)) * mask.clone();
            let pattern = hooks.apply(|| format!("blocks.{l}.attn.hook_pattern"), pattern);
            let head_out = pattern.matmul(v); // [B, H, T, D]
            // [B, H, T, D] -> [B, T, H, D] -> [B·T, H·D] @ [H·D, D] -> [B, T, D]
            let p_stacked = w.p.val().swap_dims(1, 2).reshape([heads * d, d]);
            let attn_out = head_out
                .swap_dims(1, 2)
                .reshape([batch * positions, heads * d])
                .matmul(p_stacked)
                .reshape([batch, positions, d]);
            let attn_out = hooks.apply(|| format!("blocks.{l}.hook_attn_out"), attn_out);
            z = z + attn_out;
            z = hooks.apply(|| format!("blocks.{l}.hook_resid_post"), z);
        }
        z
    }

    /// The prediction slot of every position after the last layer.
    ///
    /// # Shapes
    /// - `tokens`: `[batch, T, D]`; returns `[batch, T, d_out]`.
    pub fn predict_hooked(&self, tokens: Tensor<3>, hooks: &mut Hooks) -> Tensor<3> {
        self.forward_hooked(tokens, hooks).narrow(2, 0, self.spec.d_out)
    }

    pub fn predict(&self, tokens: Tensor<3>) -> Tensor<3> {
        self.predict_hooked(tokens, &mut Hooks::none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::cpu;
    use mesalab_core::{Seed, Streams};
    use rand::Rng;

    /// Tokens `(0, s_t, s_{t−1})` of random sequences, `[B, T, 3d]`, and the states `[B, T+1, d]`.
    fn sequences(b: usize, t: usize, d: usize) -> (Vec<f32>, Vec<f32>) {
        let mut rng = Streams::new(Seed(1)).stream("s");
        let states: Vec<f32> = (0..b * (t + 1) * d).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut tokens = Vec::new();
        for s in 0..b {
            let st = |i: usize| &states[(s * (t + 1) + i) * d..(s * (t + 1) + i + 1) * d];
            for i in 0..t {
                tokens.extend(std::iter::repeat_n(0.0, d));
                tokens.extend_from_slice(st(i));
                if i == 0 { tokens.extend(std::iter::repeat_n(0.0, d)) } else { tokens.extend_from_slice(st(i - 1)) }
            }
        }
        (tokens, states)
    }

    #[test]
    fn the_construction_is_one_gd_step_on_the_causal_context() {
        let (b, t, d, eta) = (3, 6, 2, 0.7f32);
        let (tokens, states) = sequences(b, t, d);
        let spec = CausalLsaSpec { d_token: 3 * d, d_out: d, layers: 1, heads: 2 };
        let model = CausalLsa::from_weights(spec, vec![CausalLsa::gd_construction(d, 2, eta)], &cpu());
        let x = Tensor::<3>::from_data(TensorData::new(tokens, [b, t, 3 * d]), &cpu());
        let pred = model.predict(x).into_data().try_to_vec::<f32>().unwrap();
        for s in 0..b {
            let st = |i: isize| -> Vec<f32> {
                if i < 0 { vec![0.0; d] } else { states[(s * (t + 1) + i as usize) * d..][..d].to_vec() }
            };
            for pos in 0..t {
                // W_1 = η (1/(pos+1)) Σ_{j ≤ pos} s_j s_{j−1}ᵀ, prediction W_1 s_pos.
                let mut want = vec![0.0f32; d];
                for j in 0..=pos as isize {
                    let (sj, sprev, sq) = (st(j), st(j - 1), st(pos as isize));
                    let dotp: f32 = sprev.iter().zip(&sq).map(|(a, b)| a * b).sum();
                    for (w, v) in want.iter_mut().zip(&sj) {
                        *w += eta * v * dotp / (pos + 1) as f32;
                    }
                }
                let got = &pred[(s * t + pos) * d..(s * t + pos + 1) * d];
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-5, "seq {s} pos {pos}: {got:?} vs {want:?}");
                }
            }
        }
    }

    #[test]
    fn no_position_sees_the_future() {
        let (b, t, d) = (2, 5, 2);
        let (tokens, _) = sequences(b, t, d);
        let spec = CausalLsaSpec { d_token: 3 * d, d_out: d, layers: 2, heads: 2 };
        let model = CausalLsa::init(spec, 0.5, &mut Streams::new(Seed(2)).stream("init"), &cpu());
        let run = |tok: Vec<f32>| {
            model
                .predict(Tensor::<3>::from_data(TensorData::new(tok, [b, t, 3 * d]), &cpu()))
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let base = run(tokens.clone());
        let mut changed = tokens;
        // Perturb the last position of every sequence: earlier predictions must not move.
        for s in 0..b {
            for k in 0..3 * d {
                changed[(s * t + t - 1) * 3 * d + k] += 1.0;
            }
        }
        let after = run(changed);
        for s in 0..b {
            for pos in 0..t {
                let (x, y) = (&base[(s * t + pos) * d..][..d], &after[(s * t + pos) * d..][..d]);
                if pos < t - 1 {
                    assert_eq!(x, y, "position {pos} saw the future");
                } else {
                    assert_ne!(x, y, "the last position ignores its own token");
                }
            }
        }
    }
}
