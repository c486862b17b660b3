//! [`RecurrentPolicy`]: an actor-critic with memory — an MLP encoder, one GRU or LSTM cell, and
//! policy and value heads reading the cell's output (CleanRL `ppo_atari_lstm`'s agent, with an
//! MLP in place of the Atari CNN).
//!
//! The hidden state travels outside the model as one `[batch, state_len]` tensor: `h` for a GRU,
//! `[h | c]` for an LSTM. [`RecurrentActorCritic::unroll_hooked`] runs `T` steps of `B` envs at
//! once: the encoder and the cell's input projection are one batched matmul over all `T·B` rows;
//! only the recurrence itself is a loop over time. A row whose `starts` flag is set begins a new
//! episode: its state is zeroed before that step, so no memory crosses an episode boundary.
//!
//! Cell equations (PyTorch's, so weights map one to one):
//! - GRU: `r = σ(x W_r + h U_r)`, `z = σ(x W_z + h U_z)`, `n = tanh(x W_n + r ⊙ (h U_n))`,
//!   `h' = (1 − z) ⊙ n + z ⊙ h` (each projection with its own bias).
//! - LSTM: `[i, f, g, o] = x W + h U`, `c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)`, `h' = σ(o) ⊙ tanh(c')`.
//!
//! Hooks (applied at every time step, so a patch or a steering vector acts on every step's state
//! and the cache holds the last step's):
//! - `encoder.fc.{i}.hook_out` `[time·batch, hidden]` (rows time-major),
//! - `gru.hook_h` or `lstm.hook_h`, `lstm.hook_c` `[batch, hidden]` (the state after the step),
//! - `policy.hook_logits` `[time·batch, action]`, `value.hook_out` `[time·batch, value]`.

use super::mlp::fast_tanh;
use super::{Activation, HIDDEN_GAIN, POLICY_GAIN, PolicyOutput, VALUE_GAIN, linear_from, linear_init, orthogonal};
use crate::hooks::{HookPoint, Hooks};
use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};
use mesalab_core::StreamRng;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Which recurrent cell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cell {
    /// Gated recurrent unit (Cho et al. 2014): state `h`.
    #[default]
    Gru,
    /// Long short-term memory (Hochreiter & Schmidhuber 1997): state `[h | c]`.
    Lstm,
}

impl Cell {
    /// Gate blocks in the input and hidden projections.
    fn gates(self) -> usize {
        match self {
            Cell::Gru => 3,
            Cell::Lstm => 4,
        }
    }

    /// Hook-name prefix.
    fn prefix(self) -> &'static str {
        match self {
            Cell::Gru => "gru",
            Cell::Lstm => "lstm",
        }
    }
}

/// Architecture of a [`RecurrentPolicy`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecurrentPolicyConfig {
    /// `gru` or `lstm`.
    pub cell: Cell,
    /// Widths of the MLP encoder before the cell (may be empty: the cell reads the observation).
    pub encoder: Vec<usize>,
    /// Encoder non-linearity.
    pub activation: Activation,
    /// Width of the cell's hidden state `h` (an LSTM also carries a cell state `c` of this width).
    pub hidden: usize,
}

impl Default for RecurrentPolicyConfig {
    /// One 64-wide tanh encoder layer into a 64-wide GRU.
    fn default() -> Self {
        Self { cell: Cell::Gru, encoder: vec![64], activation: Activation::Tanh, hidden: 64 }
    }
}

impl RecurrentPolicyConfig {
    /// What is wrong with the architecture, as `(key under the section, message)`.
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        if self.encoder.contains(&0) {
            return Some(("recurrent.encoder", "every width must be at least 1"));
        }
        if self.hidden == 0 {
            return Some(("recurrent.hidden", "must be at least 1"));
        }
        None
    }
}

/// A policy whose action depends on the observations so far, through a state carried between
/// steps. What a recurrent PPO trainer and recurrent rollouts need.
pub trait RecurrentActorCritic: Module + 'static {
    /// Floats of state per env (`[batch, state_len]`).
    fn state_len(&self) -> usize;

    /// Runs `steps` steps of `batch = starts.len() / steps` envs.
    ///
    /// # Shapes
    /// - `obs`: `[steps·batch, obs_len]`, time-major (row `t·batch + b` is env `b` at step `t`).
    /// - `starts`: `[steps·batch]`, `true` where that row begins an episode (state zeroed first).
    /// - `state`: `[batch, state_len]`, the state before step 0.
    /// - returns logits `[steps·batch, action]`, values `[steps·batch]`, and the state after the
    ///   last step, `[batch, state_len]`.
    fn unroll_hooked(
        &self,
        obs: Tensor<2>,
        starts: &[bool],
        state: Tensor<2>,
        hooks: &mut Hooks,
    ) -> (PolicyOutput, Tensor<2>);

    /// Every hook point, in forward order.
    fn hook_points(&self) -> Vec<HookPoint>;

    /// Length of one flat observation.
    fn obs_len(&self) -> usize;

    /// Number of discrete actions.
    fn num_actions(&self) -> usize;

    /// [`RecurrentActorCritic::unroll_hooked`] without hooks.
    fn unroll(&self, obs: Tensor<2>, starts: &[bool], state: Tensor<2>) -> (PolicyOutput, Tensor<2>) {
        self.unroll_hooked(obs, starts, state, &mut Hooks::none())
    }

    /// The all-zero state of `batch` envs (every episode's first step sees it).
    fn zero_state(&self, batch: usize, device: &Device) -> Tensor<2> {
        Tensor::zeros([batch, self.state_len()], device)
    }

    /// Saves the parameters to a safetensors file (the architecture is the caller's config).
    fn save(&self, path: &Path) -> Result<(), String> {
        crate::checkpoint::save(self, path)
    }

    /// Loads parameters saved by [`RecurrentActorCritic::save`] into a model of the same architecture.
    fn load(self, path: &Path) -> Result<Self, String>
    where
        Self: Sized,
    {
        crate::checkpoint::load(self, path)
    }
}

/// Static facts of a built [`RecurrentPolicy`].
#[derive(Clone, Debug, PartialEq)]
pub struct RecurrentSpec {
    pub obs_len: usize,
    pub num_actions: usize,
    pub config: RecurrentPolicyConfig,
}

/// MLP encoder → GRU/LSTM → policy and value heads. See the module docs for shapes and hooks.
#[derive(Module, Debug)]
pub struct RecurrentPolicy {
    pub encoder: Vec<Linear>,
    /// `[d_in, gates·hidden]`: the input projections of every gate, gate-major (GRU `r, z, n`;
    /// LSTM `i, f, g, o`), as PyTorch's `weight_ih` transposed.
    pub cell_input: Linear,
    /// `[hidden, gates·hidden]`: the hidden projections, as `weight_hh` transposed.
    pub cell_hidden: Linear,
    pub policy_head: Linear,
    pub value_head: Linear,
    #[module(skip)]
    pub spec: RecurrentSpec,
}

impl RecurrentPolicy {
    /// CleanRL init from `rng` (the `"init"` stream): orthogonal √2 encoder layers, orthogonal
    /// gain-1 cell weights with zero biases (as `ppo_atari_lstm`), 0.01 policy head, 1.0 value head.
    pub fn init(
        config: &RecurrentPolicyConfig,
        obs_len: usize,
        num_actions: usize,
        rng: &mut StreamRng,
        device: &Device,
    ) -> Self {
        let mut d_in = obs_len;
        let encoder: Vec<Linear> = (config.encoder.iter())
            .map(|&d_out| {
                let l = linear_init(d_in, d_out, HIDDEN_GAIN, rng, device);
                d_in = d_out;
                l
            })
            .collect();
        let (h, g) = (config.hidden, config.cell.gates());
        // PyTorch's `weight_ih` is [gates·h, d_in]: orthogonal over the whole block; burn stores
        // the transpose, [d_in, gates·h].
        let cell = |d_in: usize, rng: &mut StreamRng| {
            let torch = orthogonal(g * h, d_in, 1.0, rng);
            let mut w = vec![0.0; d_in * g * h];
            for o in 0..g * h {
                for i in 0..d_in {
                    w[i * g * h + o] = torch[o * d_in + i];
                }
            }
            linear_from(w, vec![0.0; g * h], d_in, g * h, device)
        };
        let cell_input = cell(d_in, rng);
        let cell_hidden = cell(h, rng);
        let policy_head = linear_init(h, num_actions, POLICY_GAIN, rng, device);
        let value_head = linear_init(h, 1, VALUE_GAIN, rng, device);
        Self {
            encoder,
            cell_input,
            cell_hidden,
            policy_head,
            value_head,
            spec: RecurrentSpec { obs_len, num_actions, config: config.clone() },
        }
    }

    /// One step of the cell for `batch` envs: the input projection `xg` `[batch, gates·hidden]`
    /// (already computed for the step), the state `[batch, state_len]` → the new state.
    fn cell_step(&self, xg: Tensor<2>, state: Tensor<2>, hooks: &mut Hooks) -> Tensor<2> {
        let h_dim = self.spec.config.hidden;
        let gate = |t: &Tensor<2>, k: usize| t.clone().narrow(1, k * h_dim, h_dim); // [batch, hidden]
        match self.spec.config.cell {
            Cell::Gru => {
                let hg = self.cell_hidden.forward(state.clone()); // [batch, 3·hidden]
                let r = sigmoid(gate(&xg, 0) + gate(&hg, 0));
                let z = sigmoid(gate(&xg, 1) + gate(&hg, 1));
                let n = fast_tanh(gate(&xg, 2) + r * gate(&hg, 2));
                let h = z.clone().neg().add_scalar(1.0) * n + z * state;
                hooks.apply(|| "gru.hook_h".into(), h)
            }
            Cell::Lstm => {
                let h = state.clone().narrow(1, 0, h_dim); // [batch, hidden]
                let c = state.narrow(1, h_dim, h_dim); // [batch, hidden]
                let pre = xg + self.cell_hidden.forward(h); // [batch, 4·hidden]
                let c = sigmoid(gate(&pre, 1)) * c + sigmoid(gate(&pre, 0)) * fast_tanh(gate(&pre, 2));
                let h = sigmoid(gate(&pre, 3)) * fast_tanh(c.clone());
                let h = hooks.apply(|| "lstm.hook_h".into(), h);
                let c = hooks.apply(|| "lstm.hook_c".into(), c);
                Tensor::cat(vec![h, c], 1) // [batch, 2·hidden]
            }
        }
    }
}

impl RecurrentActorCritic for RecurrentPolicy {
    fn state_len(&self) -> usize {
        match self.spec.config.cell {
            Cell::Gru => self.spec.config.hidden,
            Cell::Lstm => 2 * self.spec.config.hidden,
        }
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
        let mut x = obs;
        for (i, layer) in self.encoder.iter().enumerate() {
            x = self.spec.config.activation.apply(layer.forward(x));
            x = hooks.apply(|| format!("encoder.fc.{i}.hook_out"), x);
        }
        let xg = self.cell_input.forward(x); // [steps·batch, gates·hidden]
        let gates = xg.dims()[1];
        let h_dim = self.spec.config.hidden;
        let mut state = state;
        let mut outputs = Vec::with_capacity(steps);
        for t in 0..steps {
            let rows = t * batch..(t + 1) * batch;
            if starts[rows.clone()].iter().any(|&s| s) {
                let keep: Vec<f32> = starts[rows.clone()].iter().map(|&s| if s { 0.0 } else { 1.0 }).collect();
                let keep: Tensor<2> = Tensor::from_data(TensorData::new(keep, [batch, 1]), &device);
                state = state * keep;
            }
            state = self.cell_step(xg.clone().slice([rows, 0..gates]), state, hooks);
            outputs.push(state.clone().narrow(1, 0, h_dim)); // h: [batch, hidden]
        }
        let h = Tensor::cat(outputs, 0); // [steps·batch, hidden]
        let logits = self.policy_head.forward(h.clone());
        let logits = hooks.apply(|| "policy.hook_logits".into(), logits);
        let value = hooks.apply(|| "value.hook_out".into(), self.value_head.forward(h));
        (PolicyOutput { logits, value: value.reshape([rows]) }, state) // value [rows, 1] → [rows]
    }

    fn hook_points(&self) -> Vec<HookPoint> {
        let mut points: Vec<HookPoint> = (0..self.encoder.len())
            .map(|i| HookPoint { name: format!("encoder.fc.{i}.hook_out"), dims: vec!["time·batch", "hidden"] })
            .collect();
        let prefix = self.spec.config.cell.prefix();
        points.push(HookPoint { name: format!("{prefix}.hook_h"), dims: vec!["batch", "hidden"] });
        if self.spec.config.cell == Cell::Lstm {
            points.push(HookPoint { name: "lstm.hook_c".into(), dims: vec!["batch", "hidden"] });
        }
        points.push(HookPoint { name: "policy.hook_logits".into(), dims: vec!["time·batch", "action"] });
        points.push(HookPoint { name: "value.hook_out".into(), dims: vec!["time·batch", "value"] });
        points
    }

    fn obs_len(&self) -> usize {
        self.spec.obs_len
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

    fn policy(cell: Cell, encoder: Vec<usize>) -> RecurrentPolicy {
        let cfg = RecurrentPolicyConfig { cell, encoder, hidden: 5, ..Default::default() };
        RecurrentPolicy::init(&cfg, 3, 2, &mut Streams::new(Seed(7)).stream("init"), &cpu())
    }

    fn obs(rows: usize) -> Tensor<2> {
        let v: Vec<f32> = (0..rows * 3).map(|i| ((i * 7919) % 13) as f32 / 6.5 - 1.0).collect();
        Tensor::from_data(TensorData::new(v, [rows, 3]), &cpu())
    }

    fn sigmoid_f(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// Row `r` of `x W + b` for a burn linear layer, in f64.
    fn affine(layer: &Linear, x: &[f64]) -> Vec<f64> {
        let [d_in, d_out] = layer.weight.val().dims();
        let w = to_vec(layer.weight.val());
        let b = to_vec(layer.bias.as_ref().unwrap().val());
        (0..d_out)
            .map(|o| f64::from(b[o]) + (0..d_in).map(|i| x[i] * f64::from(w[i * d_out + o])).sum::<f64>())
            .collect()
    }

    #[test]
    fn cells_match_the_pytorch_equations_by_hand() {
        for cell in [Cell::Gru, Cell::Lstm] {
            let p = policy(cell, vec![]);
            let x = to_vec(obs(1));
            let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
            let h_dim = 5;
            let prev: Vec<f64> = (0..p.state_len()).map(|i| (i as f64 * 0.37).sin()).collect();
            let state = Tensor::from_data(
                TensorData::new(prev.iter().map(|&v| v as f32).collect::<Vec<_>>(), [1, p.state_len()]),
                &cpu(),
            );
            let (_, next) = p.unroll(obs(1), &[false], state);
            let got = to_vec(next);
            let xg = affine(&p.cell_input, &x);
            let expected: Vec<f64> = match cell {
                Cell::Gru => {
                    let hg = affine(&p.cell_hidden, &prev);
                    (0..h_dim)
                        .map(|j| {
                            let r = sigmoid_f(xg[j] + hg[j]);
                            let z = sigmoid_f(xg[h_dim + j] + hg[h_dim + j]);
                            let n = (xg[2 * h_dim + j] + r * hg[2 * h_dim + j]).tanh();
                            (1.0 - z) * n + z * prev[j]
                        })
                        .collect()
                }
                Cell::Lstm => {
                    let pre: Vec<f64> =
                        affine(&p.cell_hidden, &prev[..h_dim]).iter().zip(&xg).map(|(a, b)| a + b).collect();
                    let c: Vec<f64> = (0..h_dim)
                        .map(|j| {
                            sigmoid_f(pre[h_dim + j]) * prev[h_dim + j] + sigmoid_f(pre[j]) * pre[2 * h_dim + j].tanh()
                        })
                        .collect();
                    let h: Vec<f64> = (0..h_dim).map(|j| sigmoid_f(pre[3 * h_dim + j]) * c[j].tanh()).collect();
                    h.into_iter().chain(c).collect()
                }
            };
            for (g, e) in got.iter().zip(&expected) {
                assert!((f64::from(*g) - e).abs() < 1e-5, "{cell:?}: {got:?} vs {expected:?}");
            }
        }
    }

    #[test]
    fn an_unroll_equals_its_steps_and_starts_reset_the_state() {
        for cell in [Cell::Gru, Cell::Lstm] {
            let p = policy(cell, vec![4]);
            let (steps, batch) = (5, 2);
            let starts: Vec<bool> = (0..steps * batch).map(|r| r == 0 || r == 7).collect();
            let all = obs(steps * batch);
            let (out, last) = p.unroll(all.clone(), &starts, p.zero_state(batch, &cpu()));
            let mut state = p.zero_state(batch, &cpu());
            let mut logits = Vec::new();
            for t in 0..steps {
                let rows = t * batch..(t + 1) * batch;
                let (o, s) = p.unroll(all.clone().slice([rows.clone(), 0..3]), &starts[rows], state);
                logits.extend(to_vec(o.logits));
                state = s;
            }
            let whole = to_vec(out.logits);
            for (a, b) in whole.iter().zip(&logits) {
                assert!((a - b).abs() < 1e-6, "{cell:?}");
            }
            assert_eq!(to_vec(last), to_vec(state));
            // A start flag erases the past: env 1 at step 3 (row 7) sees a zero state, so its
            // output equals a fresh unroll from that row.
            let fresh = p.unroll(all.clone().slice([6..8, 0..3]), &[false, true], p.zero_state(2, &cpu())).0;
            let fresh = to_vec(fresh.logits);
            assert!((whole[7 * 2] - fresh[2]).abs() < 1e-6 && (whole[7 * 2 + 1] - fresh[3]).abs() < 1e-6);
            // Without the flag the state matters (the test can fail).
            let kept =
                p.unroll(all.clone().slice([6..8, 0..3]), &[false, false], Tensor::ones([2, p.state_len()], &cpu()));
            assert_ne!(to_vec(kept.0.logits)[2], fresh[2]);
        }
    }

    #[test]
    fn self_patching_the_state_is_exact_and_steering_changes_later_steps() {
        let p = policy(Cell::Lstm, vec![4]);
        let starts = vec![true, true, false, false];
        let run = |hooks: &mut Hooks| to_vec(p.unroll_hooked(obs(4), &starts, p.zero_state(2, &cpu()), hooks).0.logits);
        let plain = run(&mut Hooks::none());
        let names: Vec<String> = p.hook_points().into_iter().map(|h| h.name).collect();
        assert_eq!(
            names,
            ["encoder.fc.0.hook_out", "lstm.hook_h", "lstm.hook_c", "policy.hook_logits", "value.hook_out"]
        );
        // Single-step patching: the cache of one step patched back reproduces it bit for bit.
        let one = |hooks: &mut Hooks| {
            let out = p.unroll_hooked(obs(2), &[true, true], p.zero_state(2, &cpu()), hooks).0;
            to_vec(out.logits)
        };
        let mut cache = Hooks::cache_all();
        let base = one(&mut cache);
        let cache = cache.finish().unwrap();
        for name in &names {
            let mut patched = Hooks::none().patch(name, cache.get(name).unwrap().clone());
            assert_eq!(one(&mut patched), base, "{name}");
        }
        // Steering the cell state at every step moves the second step's logits.
        let steered = run(&mut Hooks::none().add("lstm.hook_c", vec![1.0; 5], 2.0));
        assert_ne!(steered[4..], plain[4..]);
    }

    #[test]
    fn checkpoints_round_trip_and_bad_configs_are_named() {
        let p = policy(Cell::Gru, vec![4]);
        let path = std::env::temp_dir().join(format!("mesalab-recurrent-{}.safetensors", std::process::id()));
        p.save(&path).unwrap();
        let other = RecurrentPolicy::init(&p.spec.config, 3, 2, &mut Streams::new(Seed(8)).stream("init"), &cpu());
        let out = |q: &RecurrentPolicy| to_vec(q.unroll(obs(2), &[true, true], q.zero_state(2, &cpu())).0.logits);
        assert_ne!(out(&other), out(&p));
        let loaded = other.load(&path).unwrap();
        assert_eq!(out(&loaded), out(&p));
        let _ = std::fs::remove_file(&path);
        let bad = RecurrentPolicyConfig { hidden: 0, ..Default::default() };
        assert_eq!(bad.problem(), Some(("recurrent.hidden", "must be at least 1")));
    }
}
