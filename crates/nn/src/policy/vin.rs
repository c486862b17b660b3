//! [`VinPolicy`]: a Value Iteration Network (Tamar et al. 2016), a white-box mesa-optimizer.
//!
//! The model's objective and its search are explicit by construction:
//! 1. a small conv net maps the observation `[C, H, W]` to a **reward map** `R [H, W]`
//!    (`conv 3×3 → relu → conv 3×3 → relu → conv 1×1`): the mesa-objective;
//! 2. `iterations` (K) steps of differentiable value iteration on the grid, starting from `V = 0`:
//!    `Q_a(s) = R(s) + γ · Σ_{s'} P_a(s' | s) V(s')` and `V = max_a Q_a`, where each action's
//!    transition kernel `P_a` is a learned softmax over the 3×3 neighbourhood (shared by every cell)
//!    and the discount `γ = sigmoid(·)` is learned;
//! 3. one more `Q` from `V_K`, read at the agent's cell (the one-hot `agent_channel` of the
//!    observation, so the read-out is exact), times a learned positive inverse temperature
//!    `β = exp(·)`, gives the logits; a linear value head on the same Q-values serves PPO.
//!
//! Why this parametrisation rather than Tamar's free conv over `[R, V]` and a linear head: with
//! free signs the planner could maximise `−R` (or the head could prefer low Q), and "R is the
//! objective" would not hold by construction. Here R enters every Q with weight +1, `P_a` is a
//! distribution, `γ ∈ (0, 1)` and `β > 0`, so the policy prefers actions whose discounted sum of R
//! along the modelled transitions is larger: R is the objective, up to a positive scale.
//!
//! Hooks (shapes):
//! - `vin.hook_reward` `[batch, height, width]`: R, the mesa-objective. Patching it (e.g. moving its
//!   peak) changes what the planner plans for.
//! - `vin.iter.{k}.hook_value` `[batch, height, width]`: V after iteration `k` (0-based, K of them).
//! - `vin.hook_q` `[batch, action, height, width]`: the final Q-values on every cell.
//! - `vin.hook_q_agent` `[batch, action]`: Q at the agent's cell.
//! - `policy.hook_logits` `[batch, action]`, `value.hook_out` `[batch, value]` (value width 1).
//!
//! Init: CleanRL-style orthogonal √2 for the reward convs, 1 for the value head, zero biases;
//! transition logits orthogonal with gain 1 (the actions start different, so policy gradients
//! reach R at once; nothing tells the model which way an action moves), `γ = 0.9`, `β = 1`.

use super::cnn::Conv3;
use super::{HIDDEN_GAIN, Policy, PolicyOutput, VALUE_GAIN, linear_init, orthogonal, squeeze_value};
use crate::hooks::{HookPoint, Hooks};
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::{relu, sigmoid, softmax};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};
use mesalab_core::StreamRng;
use serde::{Deserialize, Serialize};

/// The discount the value iteration starts from.
pub const INIT_GAMMA: f32 = 0.9;

/// Architecture of a [`VinPolicy`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VinPolicyConfig {
    /// Filters of the two 3×3 convs of the reward net.
    pub hidden: usize,
    /// Value-iteration steps K: information travels one cell per step, so K should reach the
    /// longest path the agent must plan (a 7×7 maze: ≤ 24 steps start → any cell).
    pub iterations: usize,
    /// The observation channel that is one-hot on the agent's cell (cheese-maze: 2, `agent`).
    pub agent_channel: usize,
}

impl Default for VinPolicyConfig {
    fn default() -> Self {
        Self { hidden: 16, iterations: 24, agent_channel: 2 }
    }
}

impl VinPolicyConfig {
    /// What is wrong, as `(key under the model section, message)`.
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        if self.hidden == 0 {
            return Some(("vin.hidden", "must be at least 1"));
        }
        if self.iterations == 0 || self.iterations > 256 {
            return Some(("vin.iterations", "must be in 1..=256"));
        }
        None
    }
}

/// Static facts of a built [`VinPolicy`].
#[derive(Clone, Debug, PartialEq)]
pub struct VinSpec {
    /// `[C, H, W]` of one observation.
    pub obs_shape: [usize; 3],
    pub num_actions: usize,
    pub config: VinPolicyConfig,
}

/// The Value Iteration Network actor-critic.
#[derive(Module, Debug)]
pub struct VinPolicy {
    pub reward_conv0: Conv3,
    pub reward_conv1: Conv3,
    /// `[1, hidden, 1, 1]`: the 1×1 conv to R.
    pub reward_out: Param<Tensor<4>>,
    pub reward_bias: Param<Tensor<1>>,
    /// `[actions, 9]`: logits of each action's transition distribution over the 3×3 neighbourhood.
    pub transition_logits: Param<Tensor<2>>,
    /// `[1]`: γ = sigmoid(gamma_logit).
    pub gamma_logit: Param<Tensor<1>>,
    /// `[1]`: β = exp(log_beta), the policy's inverse temperature on Q.
    pub log_beta: Param<Tensor<1>>,
    pub value_head: Linear,
    #[module(skip)]
    pub spec: VinSpec,
}

fn same3() -> ConvOptions<2> {
    ConvOptions::new([1, 1], [1, 1], [1, 1], 1)
}

impl VinPolicy {
    /// Init from `rng` (the `"init"` stream): reward convs, 1×1 conv, VI kernel, then the heads.
    ///
    /// # Panics
    /// When `config.agent_channel` is not a channel of `obs_shape` (configs check this first).
    pub fn init(
        config: &VinPolicyConfig,
        obs_shape: [usize; 3],
        num_actions: usize,
        rng: &mut StreamRng,
        device: &Device,
    ) -> Self {
        assert!(config.agent_channel < obs_shape[0], "vin.agent_channel must be a channel of the observation");
        let h = config.hidden;
        let reward_conv0 = Conv3::init(obs_shape[0], h, HIDDEN_GAIN, rng, device);
        let reward_conv1 = Conv3::init(h, h, HIDDEN_GAIN, rng, device);
        let out = orthogonal(1, h, 1.0, rng);
        let scalar = |v: f32| Param::from_tensor(Tensor::from_data(TensorData::new(vec![v], [1]), device));
        Self {
            reward_conv0,
            reward_conv1,
            reward_out: Param::from_tensor(Tensor::from_data(TensorData::new(out, [1, h, 1, 1]), device)),
            reward_bias: scalar(0.0),
            transition_logits: Param::from_tensor(Tensor::from_data(
                TensorData::new(orthogonal(num_actions, 9, 1.0, rng), [num_actions, 9]),
                device,
            )),
            gamma_logit: scalar((INIT_GAMMA / (1.0 - INIT_GAMMA)).ln()),
            log_beta: scalar(0.0),
            value_head: linear_init(num_actions, 1, VALUE_GAIN, rng, device),
            spec: VinSpec { obs_shape, num_actions, config: config.clone() },
        }
    }

    /// `γ · P_a` as a conv kernel `[action, 1, 3, 3]`.
    fn kernel(&self) -> Tensor<4> {
        let a = self.spec.num_actions;
        let p = softmax(self.transition_logits.val(), 1); // [action, 9]
        let gamma: Tensor<2> = sigmoid(self.gamma_logit.val()).reshape([1, 1]);
        (p * gamma).reshape([a, 1, 3, 3])
    }

    /// `Q_a = R + γ P_a V` (zero padding: off-grid cells have value 0).
    ///
    /// # Shapes
    /// `r`, `v`: `[batch, 1, H, W]`, `kernel` `[action, 1, 3, 3]` → `[batch, action, H, W]`.
    fn q(r: Tensor<4>, v: Tensor<4>, kernel: Tensor<4>) -> Tensor<4> {
        conv2d(v, kernel, None, same3()) + r
    }
}

impl Policy for VinPolicy {
    fn forward_hooked(&self, obs: Tensor<2>, hooks: &mut Hooks) -> PolicyOutput {
        let [batch, _] = obs.dims();
        let [c, h, w] = self.spec.obs_shape;
        let a = self.spec.num_actions;
        let x: Tensor<4> = obs.reshape([batch, c, h, w]); // [batch, C, H, W]
        let agent = x.clone().narrow(1, self.spec.config.agent_channel, 1); // [batch, 1, H, W]
        let hidden = relu(self.reward_conv1.forward(relu(self.reward_conv0.forward(x)))); // [batch, hidden, H, W]
        let r = conv2d(
            hidden,
            self.reward_out.val(),
            Some(self.reward_bias.val()),
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        );
        let r: Tensor<3> = hooks.apply(|| "vin.hook_reward".to_string(), r.reshape([batch, h, w])); // [batch, H, W]
        let r: Tensor<4> = r.reshape([batch, 1, h, w]);
        let kernel = self.kernel(); // [action, 1, 3, 3]
        let mut v: Tensor<4> = r.clone(); // V_0 = max_a (R + γ P_a · 0) = R
        v = hooks.apply(|| "vin.iter.0.hook_value".to_string(), v.reshape([batch, h, w])).reshape([batch, 1, h, w]);
        for k in 1..self.spec.config.iterations {
            let q = Self::q(r.clone(), v, kernel.clone()); // [batch, action, H, W]
            let vk: Tensor<3> = q.max_dim(1).reshape([batch, h, w]);
            v = hooks.apply(|| format!("vin.iter.{k}.hook_value"), vk).reshape([batch, 1, h, w]);
        }
        let q = hooks.apply(|| "vin.hook_q".to_string(), Self::q(r, v, kernel)); // [batch, action, H, W]
        // Q at the agent's cell: the one-hot agent channel as a mask, summed over the grid.
        let q_agent: Tensor<2> = (q * agent).sum_dim(3).sum_dim(2).reshape([batch, a]); // [batch, action]
        let q_agent = hooks.apply(|| "vin.hook_q_agent".to_string(), q_agent);
        let beta: Tensor<2> = self.log_beta.val().exp().reshape([1, 1]);
        let logits = hooks.apply(|| "policy.hook_logits".to_string(), q_agent.clone() * beta);
        let value = hooks.apply(|| "value.hook_out".to_string(), self.value_head.forward(q_agent)); // [batch, 1]
        PolicyOutput { logits, value: squeeze_value(value) }
    }

    fn hook_points(&self) -> Vec<HookPoint> {
        let grid = || vec!["batch", "height", "width"];
        let mut points = vec![HookPoint { name: "vin.hook_reward".into(), dims: grid() }];
        points.extend(
            (0..self.spec.config.iterations)
                .map(|k| HookPoint { name: format!("vin.iter.{k}.hook_value"), dims: grid() }),
        );
        points.push(HookPoint { name: "vin.hook_q".into(), dims: vec!["batch", "action", "height", "width"] });
        points.push(HookPoint { name: "vin.hook_q_agent".into(), dims: vec!["batch", "action"] });
        points.push(HookPoint { name: "policy.hook_logits".into(), dims: vec!["batch", "action"] });
        points.push(HookPoint { name: "value.hook_out".into(), dims: vec!["batch", "value"] });
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
    use super::super::linear_from;
    use super::*;
    use crate::device::{cpu, cpu_autodiff};
    use mesalab_core::{Seed, Streams};

    fn vec_of<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// A 1×4 corridor, channels (goal, agent); 2 actions (left, right). Hand-set weights: the reward
    /// net copies the goal channel (R = goal), `P_left` is all mass on the left neighbour, `P_right`
    /// on the right one (logit −1e9 elsewhere: exactly 0 after the softmax) and γ = 0.9: exact
    /// value iteration on a deterministic corridor, so every V is known in closed form.
    fn corridor(iterations: usize) -> VinPolicy {
        let device = cpu();
        let config = VinPolicyConfig { hidden: 1, iterations, agent_channel: 1 };
        let mut w0 = vec![0.0f32; 2 * 9];
        w0[4] = 1.0; // centre tap of the goal channel
        let mut w1 = vec![0.0f32; 9];
        w1[4] = 1.0;
        let mut logits = vec![-1e9f32; 2 * 9];
        logits[3] = 0.0; // left: (row 1, col 0) of the 3×3 window
        logits[9 + 5] = 0.0; // right: (row 1, col 2)
        let scalar = |v: f32| Param::from_tensor(Tensor::from_data(TensorData::new(vec![v], [1]), &device));
        VinPolicy {
            reward_conv0: Conv3::from_weights(w0, vec![0.0], 2, 1, &device),
            reward_conv1: Conv3::from_weights(w1, vec![0.0], 1, 1, &device),
            reward_out: Param::from_tensor(Tensor::from_data(TensorData::new(vec![1.0f32], [1, 1, 1, 1]), &device)),
            reward_bias: scalar(0.0),
            transition_logits: Param::from_tensor(Tensor::from_data(TensorData::new(logits, [2, 9]), &device)),
            gamma_logit: scalar(9f32.ln()), // sigmoid(ln 9) = 0.9
            log_beta: scalar(0.0),
            value_head: linear_from(vec![0.5, 0.5], vec![0.0], 2, 1, &device),
            spec: VinSpec { obs_shape: [2, 1, 4], num_actions: 2, config },
        }
    }

    /// Goal at column 3, agent at column 0, as a flat `[1, 8]` observation.
    fn corridor_obs(goal: usize, agent: usize) -> Tensor<2> {
        let mut v = vec![0.0f32; 8];
        v[goal] = 1.0;
        v[4 + agent] = 1.0;
        Tensor::from_data(TensorData::new(v, [1, 8]), &cpu())
    }

    #[test]
    fn hand_set_corridor_is_exact_value_iteration() {
        let model = corridor(3);
        let mut hooks = Hooks::cache_all();
        let out = model.forward_hooked(corridor_obs(3, 0), &mut hooks);
        let cache = hooks.finish().unwrap();
        assert_eq!(cache.values("vin.hook_reward").unwrap(), (vec![1, 1, 4], vec![0., 0., 0., 1.]));
        // V_0 = max(R, R) = R; V_1(x) = R(x) + 0.9·max(V_0 neighbours); zero padding off the ends.
        assert_eq!(cache.values("vin.iter.0.hook_value").unwrap().1, vec![0., 0., 0., 1.]);
        let v1 = cache.values("vin.iter.1.hook_value").unwrap().1;
        let expect1 = [0.0f32, 0.0, 0.9, 1.0];
        let v2 = cache.values("vin.iter.2.hook_value").unwrap().1;
        let expect2 = [0.0f32, 0.81, 0.9, 1.81]; // the goal keeps collecting R (no termination)
        for (got, want) in v1.iter().zip(expect1).chain(v2.iter().zip(expect2)) {
            assert!((got - want).abs() < 1e-6, "{v1:?} {v2:?}");
        }
        // Q at the agent (column 0): left reads the padding (0), right reads V_2(1) = 0.81·0.9.
        let (shape, q) = cache.values("vin.hook_q_agent").unwrap();
        assert_eq!(shape, vec![1, 2]);
        assert!(q[0].abs() < 1e-6 && (q[1] - 0.729).abs() < 1e-6, "{q:?}");
        let logits = vec_of(out.logits);
        assert!(logits[1] > logits[0], "the planner moves towards the goal: {logits:?}");
    }

    #[test]
    fn patching_the_reward_map_retargets_the_plan() {
        let model = corridor(4);
        // Goal at column 3 but R patched to peak at column 0 while the agent stands at column 2:
        // the plan now goes left.
        let mut r = vec![0.0f32; 4];
        r[0] = 1.0;
        let mut hooks = Hooks::none().patch("vin.hook_reward", TensorData::new(r, [1, 1, 4]));
        let out = model.forward_hooked(corridor_obs(3, 2), &mut hooks);
        hooks.finish().unwrap();
        let patched = vec_of(out.logits);
        let plain = vec_of(model.forward(corridor_obs(3, 2)).logits);
        assert!(plain[1] > plain[0] && patched[0] > patched[1], "{plain:?} vs {patched:?}");
    }

    #[test]
    fn hooks_shapes_self_patching_and_gradients() {
        let shape = [3, 7, 7];
        let config = VinPolicyConfig { hidden: 4, iterations: 5, agent_channel: 2 };
        let model = VinPolicy::init(&config, shape, 4, &mut Streams::new(Seed(3)).stream("init"), &cpu());
        let obs = || {
            let mut v = vec![0.0f32; 2 * 147];
            for (i, x) in v.iter_mut().enumerate() {
                *x = if (i * 7919) % 5 == 0 { 1.0 } else { 0.0 };
            }
            v[2 * 49 + 10] = 1.0; // an agent cell in sample 0
            v[147 + 2 * 49 + 30] = 1.0;
            Tensor::<2>::from_data(TensorData::new(v, [2, 147]), &cpu())
        };
        let names: Vec<String> = model.hook_points().into_iter().map(|p| p.name).collect();
        assert_eq!(names.len(), 1 + 5 + 4);
        assert_eq!(names[0], "vin.hook_reward");
        assert_eq!(names[5], "vin.iter.4.hook_value");
        let plain = model.forward(obs());
        let (pl, pv) = (vec_of(plain.logits), vec_of(plain.value));
        let mut hooks = Hooks::cache_all();
        model.forward_hooked(obs(), &mut hooks);
        let cache = hooks.finish().unwrap();
        assert_eq!(cache.get("vin.hook_q").unwrap().shape().to_vec(), vec![2, 4, 7, 7]);
        assert_eq!(cache.get("vin.iter.2.hook_value").unwrap().shape().to_vec(), vec![2, 7, 7]);
        for name in &names {
            let mut hooks = Hooks::none().patch(name, cache.get(name).unwrap().clone());
            let out = model.forward_hooked(obs(), &mut hooks);
            hooks.finish().unwrap();
            assert_eq!(vec_of(out.logits), pl, "{name}");
            assert_eq!(vec_of(out.value), pv, "{name}");
        }
        let device = cpu_autodiff();
        let model = VinPolicy::init(&config, shape, 4, &mut Streams::new(Seed(3)).stream("init"), &device);
        let out = model.forward(Tensor::from_data(obs().into_data(), &device));
        let grads = (out.logits.sum() + out.value.sum()).backward();
        for g in [
            model.reward_conv0.weight.val().grad(&grads),
            model.reward_conv1.weight.val().grad(&grads),
            model.reward_out.val().grad(&grads),
        ] {
            assert!(vec_of(g.expect("gradient")).iter().any(|v| *v != 0.0));
        }
        for g in [model.gamma_logit.val().grad(&grads), model.log_beta.val().grad(&grads)] {
            assert!(vec_of(g.expect("gradient")).iter().any(|v| *v != 0.0));
        }
        assert!(vec_of(model.transition_logits.val().grad(&grads).expect("gradient")).iter().any(|v| *v != 0.0));
    }
}
