//! [`DrcPolicy`]: a small "Deep Repeated ConvLSTM" agent, DRC(D, N) of Guez et al. 2019 ("An
//! investigation of model-free planning"), for symbolic `[C, H, W]` grid observations.
//!
//! Per env step: a 3×3 conv encoder `e = relu(conv(obs))`, then `N` ticks of a stack of `D`
//! ConvLSTM layers that all keep their state between ticks and between steps. Layer `d` at tick
//! `n` reads `[e, below, h_d]` (channels concatenated) where `below` is layer `d−1`'s new `h`, and
//! for layer 0 the top layer's `h` of the previous tick (Guez et al.'s top-down skip). The gates
//! are one 3×3 conv to `4·hidden` channels, PyTorch's LSTM equations per cell of the grid:
//! `[i, f, g, o] = conv([e, below, h])`, `c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)`, `h' = σ(o) ⊙ tanh(c')`.
//! After the last tick the top layer's `h` and the encoding `e` are flattened into a ReLU torso
//! shared by the policy and value heads (the paper's encoder skip into the output MLP).
//!
//! Left out of the paper's agent, to stay CPU-sized: pool-and-inject, the boundary channel, and
//! the paper's widths (32 channels, DRC(3,3), 10×10 Boxoban); the defaults are DRC(2,2) with 16
//! channels.
//!
//! The state travels outside the model as one `[batch, state_len]` row per env, laid out layer by
//! layer as `[h_0 | c_0 | h_1 | c_1 | …]`, each block `[hidden, H, W]` row-major, so the vector of
//! one grid square of one layer is `hidden` floats at stride `H·W` (what per-square plan probes
//! read).
//!
//! Hooks (after every env step's last tick, so a patch replaces the state the step carries out):
//! `encoder.conv.hook_out` `[time·batch, channel, H, W]`, `drc.{d}.hook_h` and `drc.{d}.hook_c`
//! `[batch, hidden, H, W]`, `torso.hook_out` `[time·batch, hidden]`, `policy.hook_logits`
//! `[time·batch, action]`, `value.hook_out` `[time·batch, value]`.

use super::cnn::Conv3;
use super::mlp::fast_tanh;
use super::recurrent::RecurrentActorCritic;
use super::{HIDDEN_GAIN, POLICY_GAIN, PolicyOutput, VALUE_GAIN, linear_init};
use crate::hooks::{HookPoint, Hooks};
use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor, TensorData};
use mesalab_core::StreamRng;
use serde::{Deserialize, Serialize};

/// Architecture of a [`DrcPolicy`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DrcPolicyConfig {
    /// Channels of the 3×3 encoder conv.
    pub encoder_channels: usize,
    /// Channels of every ConvLSTM layer's `h` and `c`.
    pub hidden_channels: usize,
    /// Stacked ConvLSTM layers (the paper's D).
    pub layers: usize,
    /// Ticks of the whole stack per env step (the paper's N).
    pub ticks: usize,
    /// Width of the ReLU torso before the heads.
    pub torso: usize,
}

impl Default for DrcPolicyConfig {
    /// DRC(2, 2) with 16 channels and a 128-wide torso.
    fn default() -> Self {
        Self { encoder_channels: 16, hidden_channels: 16, layers: 2, ticks: 2, torso: 128 }
    }
}

impl DrcPolicyConfig {
    /// What is wrong with the architecture, as `(key under the section, message)`.
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        for (key, v) in [
            ("drc.encoder_channels", self.encoder_channels),
            ("drc.hidden_channels", self.hidden_channels),
            ("drc.layers", self.layers),
            ("drc.ticks", self.ticks),
            ("drc.torso", self.torso),
        ] {
            if v == 0 {
                return Some((key, "must be at least 1"));
            }
        }
        if self.layers > 8 || self.ticks > 8 {
            return Some(("drc.layers", "drc.layers and drc.ticks must be at most 8"));
        }
        None
    }
}

/// Static facts of a built [`DrcPolicy`].
#[derive(Clone, Debug, PartialEq)]
pub struct DrcSpec {
    /// `[C, H, W]` of one observation.
    pub obs_shape: [usize; 3],
    pub num_actions: usize,
    pub config: DrcPolicyConfig,
}

impl DrcSpec {
    /// Floats in one layer's `h` (or `c`): `hidden · H · W`.
    pub fn block_len(&self) -> usize {
        self.config.hidden_channels * self.obs_shape[1] * self.obs_shape[2]
    }

    /// Offset of layer `layer`'s `h` (`cell = false`) or `c` (`cell = true`) in a state row.
    pub fn block_offset(&self, layer: usize, cell: bool) -> usize {
        (2 * layer + usize::from(cell)) * self.block_len()
    }
}

/// DRC(D, N) actor-critic. See the module docs for the computation, state layout and hooks.
#[derive(Module, Debug)]
pub struct DrcPolicy {
    pub encoder: Conv3,
    /// Layer `d`'s gate conv, `[4·hidden, encoder + 2·hidden, 3, 3]`, gate blocks `i, f, g, o`.
    pub cells: Vec<Conv3>,
    pub torso: Linear,
    pub policy_head: Linear,
    pub value_head: Linear,
    #[module(skip)]
    pub spec: DrcSpec,
}

impl DrcPolicy {
    /// CleanRL-style init from `rng` (the `"init"` stream): orthogonal √2 encoder and torso,
    /// orthogonal gain-1 gate convs with zero biases (as the LSTM of `ppo_atari_lstm`), 0.01
    /// policy head, 1 value head.
    pub fn init(
        config: &DrcPolicyConfig,
        obs_shape: [usize; 3],
        num_actions: usize,
        rng: &mut StreamRng,
        device: &Device,
    ) -> Self {
        let [c, h, w] = obs_shape;
        let (e, hid) = (config.encoder_channels, config.hidden_channels);
        let encoder = Conv3::init(c, e, HIDDEN_GAIN, rng, device);
        let cells = (0..config.layers).map(|_| Conv3::init(e + 2 * hid, 4 * hid, 1.0, rng, device)).collect();
        let torso = linear_init((hid + e) * h * w, config.torso, HIDDEN_GAIN, rng, device);
        let policy_head = linear_init(config.torso, num_actions, POLICY_GAIN, rng, device);
        let value_head = linear_init(config.torso, 1, VALUE_GAIN, rng, device);
        Self {
            encoder,
            cells,
            torso,
            policy_head,
            value_head,
            spec: DrcSpec { obs_shape, num_actions, config: config.clone() },
        }
    }

    /// One ConvLSTM tick of layer `layer`: `(h, c)` `[batch, hidden, H, W]` → the new `(h, c)`.
    fn tick(&self, layer: usize, e: Tensor<4>, below: Tensor<4>, h: Tensor<4>, c: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let hid = self.spec.config.hidden_channels;
        let pre = self.cells[layer].forward(Tensor::cat(vec![e, below, h], 1)); // [batch, 4·hidden, H, W]
        let gate = |k: usize| pre.clone().narrow(1, k * hid, hid); // [batch, hidden, H, W]
        let c = sigmoid(gate(1)) * c + sigmoid(gate(0)) * fast_tanh(gate(2));
        let h = sigmoid(gate(3)) * fast_tanh(c.clone());
        (h, c)
    }
}

impl RecurrentActorCritic for DrcPolicy {
    fn state_len(&self) -> usize {
        2 * self.spec.config.layers * self.spec.block_len()
    }

    fn unroll_hooked(
        &self,
        obs: Tensor<2>,
        starts: &[bool],
        state: Tensor<2>,
        hooks: &mut Hooks,
    ) -> (PolicyOutput, Tensor<2>) {
        let [rows, _] = obs.dims();
        let [batch, _] = state.dims();
        assert!(batch > 0 && rows % batch == 0 && starts.len() == rows, "unroll: rows must be steps × batch");
        let steps = rows / batch;
        let device = obs.device();
        let [c, height, width] = self.spec.obs_shape;
        let (layers, hid, block) = (self.spec.config.layers, self.spec.config.hidden_channels, self.spec.block_len());
        let e = relu(self.encoder.forward(obs.reshape([rows, c, height, width]))); // [rows, C, H, W] → [rows, E, H, W]
        let e = hooks.apply(|| "encoder.conv.hook_out".into(), e);
        let e_channels = e.dims()[1];
        // The state row split into per-layer blocks: [batch, state_len] → D × ([batch, hidden, H, W] h, c).
        let as_grid = |t: Tensor<2>| t.reshape([batch, hid, height, width]);
        let mut hs: Vec<Tensor<4>> = Vec::with_capacity(layers);
        let mut cs: Vec<Tensor<4>> = Vec::with_capacity(layers);
        for d in 0..layers {
            hs.push(as_grid(state.clone().narrow(1, 2 * d * block, block)));
            cs.push(as_grid(state.clone().narrow(1, (2 * d + 1) * block, block)));
        }
        let mut tops = Vec::with_capacity(steps);
        for t in 0..steps {
            let rows = t * batch..(t + 1) * batch;
            if starts[rows.clone()].iter().any(|&s| s) {
                let keep: Vec<f32> = starts[rows.clone()].iter().map(|&s| if s { 0.0 } else { 1.0 }).collect();
                let keep: Tensor<4> = Tensor::from_data(TensorData::new(keep, [batch, 1, 1, 1]), &device);
                for d in 0..layers {
                    hs[d] = hs[d].clone() * keep.clone();
                    cs[d] = cs[d].clone() * keep.clone();
                }
            }
            let e_t = e.clone().slice([rows, 0..e_channels, 0..height, 0..width]); // [batch, E, H, W]
            for _ in 0..self.spec.config.ticks {
                for d in 0..layers {
                    let below = if d == 0 { hs[layers - 1].clone() } else { hs[d - 1].clone() };
                    let (h, c) = self.tick(d, e_t.clone(), below, hs[d].clone(), cs[d].clone());
                    hs[d] = h;
                    cs[d] = c;
                }
            }
            for d in 0..layers {
                hs[d] = hooks.apply(|| format!("drc.{d}.hook_h"), hs[d].clone());
                cs[d] = hooks.apply(|| format!("drc.{d}.hook_c"), cs[d].clone());
            }
            tops.push(hs[layers - 1].clone());
        }
        let top = Tensor::cat(tops, 0); // [rows, hidden, H, W], time-major like `obs`
        let features = Tensor::cat(vec![top, e], 1).reshape([rows, (hid + e_channels) * height * width]); // [rows, (hidden+E)·H·W]
        let torso = hooks.apply(|| "torso.hook_out".into(), relu(self.torso.forward(features)));
        let logits = hooks.apply(|| "policy.hook_logits".into(), self.policy_head.forward(torso.clone()));
        let value = hooks.apply(|| "value.hook_out".into(), self.value_head.forward(torso));
        let flat = |t: Tensor<4>| t.reshape([batch, block]); // [batch, hidden, H, W] → [batch, hidden·H·W]
        let blocks: Vec<Tensor<2>> = hs.into_iter().zip(cs).flat_map(|(h, c)| [flat(h), flat(c)]).collect();
        (PolicyOutput { logits, value: value.reshape([rows]) }, Tensor::cat(blocks, 1)) // value [rows, 1] → [rows]
    }

    fn hook_points(&self) -> Vec<HookPoint> {
        let grid = vec!["batch", "channel", "height", "width"];
        let mut points = vec![HookPoint {
            name: "encoder.conv.hook_out".into(),
            dims: vec!["time·batch", "channel", "height", "width"],
        }];
        for d in 0..self.spec.config.layers {
            points.push(HookPoint { name: format!("drc.{d}.hook_h"), dims: grid.clone() });
            points.push(HookPoint { name: format!("drc.{d}.hook_c"), dims: grid.clone() });
        }
        points.push(HookPoint { name: "torso.hook_out".into(), dims: vec!["time·batch", "hidden"] });
        points.push(HookPoint { name: "policy.hook_logits".into(), dims: vec!["time·batch", "action"] });
        points.push(HookPoint { name: "value.hook_out".into(), dims: vec!["time·batch", "value"] });
        points
    }

    fn obs_len(&self) -> usize {
        self.spec.obs_shape.iter().product()
    }

    fn num_actions(&self) -> usize {
        self.spec.num_actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::cpu;
    use mesalab_core::{Seed, Streams};

    fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec::<f32>().unwrap()
    }

    const SHAPE: [usize; 3] = [2, 4, 5];

    fn policy(layers: usize, ticks: usize) -> DrcPolicy {
        let cfg = DrcPolicyConfig { encoder_channels: 3, hidden_channels: 2, layers, ticks, torso: 6 };
        DrcPolicy::init(&cfg, SHAPE, 4, &mut Streams::new(Seed(3)).stream("init"), &cpu())
    }

    fn obs(rows: usize) -> Tensor<2> {
        let len: usize = SHAPE.iter().product();
        let v: Vec<f32> = (0..rows * len).map(|i| ((i * 7919) % 13) as f32 / 6.5 - 1.0).collect();
        Tensor::from_data(TensorData::new(v, [rows, len]), &cpu())
    }

    fn sigmoid_f(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// A 3×3 same-padded conv of `x` `[c_in, H, W]` (f64, by loops) with a [`Conv3`]'s weights.
    fn conv(layer: &Conv3, x: &[f64], c_in: usize, h: usize, w: usize) -> Vec<f64> {
        let weight = to_vec(layer.weight.val());
        let bias = to_vec(layer.bias.val());
        let c_out = bias.len();
        let mut out = vec![0.0; c_out * h * w];
        for o in 0..c_out {
            for y in 0..h {
                for x0 in 0..w {
                    let mut s = f64::from(bias[o]);
                    for i in 0..c_in {
                        for dy in 0..3 {
                            for dx in 0..3 {
                                let (yy, xx) = (y as i64 + dy as i64 - 1, x0 as i64 + dx as i64 - 1);
                                if yy < 0 || xx < 0 || yy >= h as i64 || xx >= w as i64 {
                                    continue;
                                }
                                let v = x[(i * h + yy as usize) * w + xx as usize];
                                s += v * f64::from(weight[((o * c_in + i) * 3 + dy) * 3 + dx]);
                            }
                        }
                    }
                    out[(o * h + y) * w + x0] = s;
                }
            }
        }
        out
    }

    #[test]
    fn one_step_matches_the_convlstm_equations_by_hand() {
        let p = policy(2, 2);
        let [c, h, w] = SHAPE;
        let (hid, e_ch, block) = (2, 3, p.spec.block_len());
        let prev: Vec<f64> = (0..p.state_len()).map(|i| (i as f64 * 0.37).sin() * 0.5).collect();
        let state = Tensor::from_data(
            TensorData::new(prev.iter().map(|&v| v as f32).collect::<Vec<_>>(), [1, p.state_len()]),
            &cpu(),
        );
        let x: Vec<f64> = to_vec(obs(1)).into_iter().map(f64::from).collect();
        let (_, next) = p.unroll(obs(1), &[false], state);
        let got = to_vec(next);
        let e: Vec<f64> = conv(&p.encoder, &x, c, h, w).into_iter().map(|v| v.max(0.0)).collect();
        let (mut hs, mut cs): (Vec<Vec<f64>>, Vec<Vec<f64>>) = (0..2)
            .map(|d| {
                (
                    prev[2 * d * block..(2 * d + 1) * block].to_vec(),
                    prev[(2 * d + 1) * block..(2 * d + 2) * block].to_vec(),
                )
            })
            .unzip();
        for _ in 0..2 {
            for d in 0..2 {
                let below = if d == 0 { hs[1].clone() } else { hs[d - 1].clone() };
                let input: Vec<f64> = e.iter().chain(&below).chain(&hs[d]).copied().collect();
                let pre = conv(&p.cells[d], &input, e_ch + 2 * hid, h, w);
                let g = |k: usize, j: usize| pre[k * block + j];
                let new_c: Vec<f64> =
                    (0..block).map(|j| sigmoid_f(g(1, j)) * cs[d][j] + sigmoid_f(g(0, j)) * g(2, j).tanh()).collect();
                hs[d] = (0..block).map(|j| sigmoid_f(g(3, j)) * new_c[j].tanh()).collect();
                cs[d] = new_c;
            }
        }
        let expected: Vec<f64> = (0..2).flat_map(|d| hs[d].iter().chain(&cs[d]).copied().collect::<Vec<_>>()).collect();
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(&expected) {
            assert!((f64::from(*g) - e).abs() < 1e-5, "{g} vs {e}");
        }
    }

    #[test]
    fn an_unroll_equals_its_steps_and_starts_reset_the_state() {
        let p = policy(2, 1);
        let (steps, batch) = (4, 2);
        let len: usize = SHAPE.iter().product();
        let starts: Vec<bool> = (0..steps * batch).map(|r| r == 0 || r == 1 || r == 5).collect();
        let all = obs(steps * batch);
        let (out, last) = p.unroll(all.clone(), &starts, p.zero_state(batch, &cpu()));
        let mut state = p.zero_state(batch, &cpu());
        let mut logits = Vec::new();
        for t in 0..steps {
            let rows = t * batch..(t + 1) * batch;
            let (o, s) = p.unroll(all.clone().slice([rows.clone(), 0..len]), &starts[rows], state);
            logits.extend(to_vec(o.logits));
            state = s;
        }
        for (a, b) in to_vec(out.logits).iter().zip(&logits) {
            assert!((a - b).abs() < 1e-5);
        }
        for (a, b) in to_vec(last).iter().zip(to_vec(state)) {
            assert!((a - b).abs() < 1e-5);
        }
        // Row 5 (env 1, step 2) starts an episode: it equals a fresh unroll from a zero state; a
        // non-zero state without the flag gives other logits (so the check can fail).
        let whole = to_vec(p.unroll(all.clone(), &starts, p.zero_state(batch, &cpu())).0.logits);
        let pair = all.clone().slice([4..6, 0..len]);
        let fresh = to_vec(p.unroll(pair.clone(), &[false, true], Tensor::ones([2, p.state_len()], &cpu())).0.logits);
        for k in 0..4 {
            assert!((whole[5 * 4 + k] - fresh[4 + k]).abs() < 1e-5);
        }
        let kept = to_vec(p.unroll(pair, &[false, false], Tensor::ones([2, p.state_len()], &cpu())).0.logits);
        assert_ne!(kept[4..], fresh[4..]);
    }

    #[test]
    fn hooks_cache_patch_and_steer_the_grid_state() {
        let p = policy(2, 2);
        let names: Vec<String> = p.hook_points().into_iter().map(|h| h.name).collect();
        assert_eq!(
            names,
            [
                "encoder.conv.hook_out",
                "drc.0.hook_h",
                "drc.0.hook_c",
                "drc.1.hook_h",
                "drc.1.hook_c",
                "torso.hook_out",
                "policy.hook_logits",
                "value.hook_out"
            ]
        );
        let one =
            |hooks: &mut Hooks| to_vec(p.unroll_hooked(obs(2), &[true, true], p.zero_state(2, &cpu()), hooks).0.logits);
        let mut cache = Hooks::cache_all();
        let base = one(&mut cache);
        let cache = cache.finish().unwrap();
        assert_eq!(cache.get("drc.1.hook_h").unwrap().shape().to_vec(), vec![2, 2, 4, 5]);
        for name in &names {
            let mut patched = Hooks::none().patch(name, cache.get(name).unwrap().clone());
            assert_eq!(one(&mut patched), base, "{name}");
        }
        let steering = TensorData::new(vec![1.0f32; 2 * 4 * 5], [2, 4, 5]); // [hidden, H, W]
        let steered = one(&mut Hooks::none().add_tensor("drc.1.hook_h", steering, 3.0));
        assert_ne!(steered, base);
    }

    #[test]
    fn checkpoints_round_trip_and_bad_configs_are_named() {
        let p = policy(1, 3);
        let path = std::env::temp_dir().join(format!("mesalab-drc-{}.safetensors", std::process::id()));
        p.save(&path).unwrap();
        let other = DrcPolicy::init(&p.spec.config, SHAPE, 4, &mut Streams::new(Seed(9)).stream("init"), &cpu());
        let out = |q: &DrcPolicy| to_vec(q.unroll(obs(2), &[true, true], q.zero_state(2, &cpu())).0.logits);
        assert_ne!(out(&other), out(&p));
        assert_eq!(out(&other.load(&path).unwrap()), out(&p));
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            DrcPolicyConfig { ticks: 0, ..Default::default() }.problem(),
            Some(("drc.ticks", "must be at least 1"))
        );
    }
}
