//! [`CnnPolicy`]: a small IMPALA-like CNN over symbolic `[C, H, W]` grid observations.
//!
//! Espeholt et al. 2018's IMPALA encoder, shrunk for CPU minutes: per stage `i` with `channels[i]`
//! filters, `conv 3×3 (same) → max-pool 3×3 stride 2 (pad 1) → res_blocks × [relu → conv → relu →
//! conv, + skip]`; then `relu → flatten → linear(hidden) → relu` (the torso) feeding a policy and a
//! value head. Pooling can be turned off for tiny grids. Init is CleanRL's (orthogonal √2 for convs
//! and the torso, 0.01 policy head, 1 value head, zero biases).

use super::{HIDDEN_GAIN, POLICY_GAIN, Policy, PolicyOutput, VALUE_GAIN, linear_init, orthogonal, squeeze_value};
use crate::hooks::{HookPoint, Hooks};
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::relu;
use burn::tensor::module::{conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData};
use mesalab_core::StreamRng;
use serde::{Deserialize, Serialize};

/// Architecture of a [`CnnPolicy`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CnnPolicyConfig {
    /// Filters per stage (IMPALA: 16-32-32).
    pub channels: Vec<usize>,
    /// Residual blocks per stage (IMPALA: 2). Default 0: one block per stage costs ≈1.8× the
    /// update time on CPU (see `crates/train/benches/ppo.rs`).
    pub res_blocks: usize,
    /// Max-pool 3×3 stride 2 after each stage's first conv (halves H and W, rounding up).
    pub pool: bool,
    /// Width of the torso layer after the flattened conv features (IMPALA: 256).
    pub hidden: usize,
}

impl Default for CnnPolicyConfig {
    fn default() -> Self {
        Self { channels: vec![16, 32, 32], res_blocks: 0, pool: true, hidden: 256 }
    }
}

/// A 3×3 "same" convolution with weight `[out, in, 3, 3]` and bias `[out]`.
#[derive(Module, Debug)]
pub struct Conv3 {
    pub weight: Param<Tensor<4>>,
    pub bias: Param<Tensor<1>>,
}

impl Conv3 {
    /// Orthogonal init over the flattened `[out, in·9]` weight (as PyTorch's `orthogonal_`).
    pub fn init(c_in: usize, c_out: usize, gain: f64, rng: &mut StreamRng, device: &Device) -> Self {
        Self::from_weights(orthogonal(c_out, c_in * 9, gain, rng), vec![0.0; c_out], c_in, c_out, device)
    }

    /// `weight` row-major `[c_out, c_in, 3, 3]`, `bias` `[c_out]`.
    pub fn from_weights(weight: Vec<f32>, bias: Vec<f32>, c_in: usize, c_out: usize, device: &Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::from_data(TensorData::new(weight, [c_out, c_in, 3, 3]), device)),
            bias: Param::from_tensor(Tensor::from_data(TensorData::new(bias, [c_out]), device)),
        }
    }

    /// # Shapes
    /// `[batch, c_in, H, W] -> [batch, c_out, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv2d(x, self.weight.val(), Some(self.bias.val()), ConvOptions::new([1, 1], [1, 1], [1, 1], 1))
    }
}

/// IMPALA residual block: `x + conv1(relu(conv0(relu(x))))`.
#[derive(Module, Debug)]
pub struct ResBlock {
    pub conv0: Conv3,
    pub conv1: Conv3,
}

/// One IMPALA stage.
#[derive(Module, Debug)]
pub struct Stage {
    pub conv: Conv3,
    pub res: Vec<ResBlock>,
}

/// Static facts of a built [`CnnPolicy`].
#[derive(Clone, Debug, PartialEq)]
pub struct CnnSpec {
    /// `[C, H, W]` of one observation.
    pub obs_shape: [usize; 3],
    pub num_actions: usize,
    pub config: CnnPolicyConfig,
    /// `[C, H, W]` after each stage.
    pub stage_shapes: Vec<[usize; 3]>,
}

/// IMPALA-like actor-critic CNN. Hooks: `encoder.conv.{i}.hook_out`, `torso.hook_out`,
/// `policy.hook_logits`, `value.hook_out`.
#[derive(Module, Debug)]
pub struct CnnPolicy {
    pub stages: Vec<Stage>,
    pub torso: Linear,
    pub policy_head: Linear,
    pub value_head: Linear,
    #[module(skip)]
    pub spec: CnnSpec,
}

fn pool_opts() -> MaxPoolOptions<2> {
    MaxPoolOptions::new([3, 3]).with_stride([2, 2]).with_padding([1, 1])
}

impl CnnPolicy {
    /// CleanRL-style init from `rng` (use the `"init"` stream), stages in order, then torso, heads.
    pub fn init(
        config: &CnnPolicyConfig,
        obs_shape: [usize; 3],
        num_actions: usize,
        rng: &mut StreamRng,
        device: &Device,
    ) -> Self {
        let mut c_in = obs_shape[0];
        let mut stages = Vec::new();
        for &c in &config.channels {
            let conv = Conv3::init(c_in, c, HIDDEN_GAIN, rng, device);
            let res = (0..config.res_blocks)
                .map(|_| ResBlock {
                    conv0: Conv3::init(c, c, HIDDEN_GAIN, rng, device),
                    conv1: Conv3::init(c, c, HIDDEN_GAIN, rng, device),
                })
                .collect();
            stages.push(Stage { conv, res });
            c_in = c;
        }
        let stage_shapes = Self::stage_shapes(config, obs_shape);
        let flat: usize = stage_shapes.last().copied().unwrap_or(obs_shape).iter().product();
        let torso = linear_init(flat, config.hidden, HIDDEN_GAIN, rng, device);
        let policy_head = linear_init(config.hidden, num_actions, POLICY_GAIN, rng, device);
        let value_head = linear_init(config.hidden, 1, VALUE_GAIN, rng, device);
        Self {
            stages,
            torso,
            policy_head,
            value_head,
            spec: CnnSpec { obs_shape, num_actions, config: config.clone(), stage_shapes },
        }
    }

    /// `[C, H, W]` after each stage (pooling 3×3/2 with padding 1 maps n to ⌈n/2⌉).
    pub fn stage_shapes(config: &CnnPolicyConfig, obs_shape: [usize; 3]) -> Vec<[usize; 3]> {
        let [_, mut h, mut w] = obs_shape;
        config
            .channels
            .iter()
            .map(|&c| {
                if config.pool {
                    (h, w) = (h.div_ceil(2), w.div_ceil(2));
                }
                [c, h, w]
            })
            .collect()
    }

    /// Torso activations from observations, calling the encoder and torso hooks.
    ///
    /// # Shapes
    /// `obs`: `[batch, C·H·W]` → `[batch, hidden]`.
    fn torso_hooked(&self, obs: Tensor<2>, hooks: &mut Hooks) -> Tensor<2> {
        let [batch, _] = obs.dims();
        let [c, h, w] = self.spec.obs_shape;
        let mut x: Tensor<4> = obs.reshape([batch, c, h, w]); // [batch, C, H, W]
        for (i, stage) in self.stages.iter().enumerate() {
            x = stage.conv.forward(x);
            if self.spec.config.pool {
                x = max_pool2d(x, pool_opts()); // [batch, c_i, ⌈H/2⌉, ⌈W/2⌉]
            }
            for block in &stage.res {
                let y = block.conv1.forward(relu(block.conv0.forward(relu(x.clone()))));
                x = x + y;
            }
            x = hooks.apply(|| format!("encoder.conv.{i}.hook_out"), x); // [batch, c_i, h_i, w_i]
        }
        let flat: Tensor<2> = relu(x).flatten(1, 3); // [batch, c·h·w]
        hooks.apply(|| "torso.hook_out".to_string(), relu(self.torso.forward(flat))) // [batch, hidden]
    }
}

impl Policy for CnnPolicy {
    fn forward_hooked(&self, obs: Tensor<2>, hooks: &mut Hooks) -> PolicyOutput {
        let torso = self.torso_hooked(obs, hooks);
        let logits = hooks.apply(|| "policy.hook_logits".to_string(), self.policy_head.forward(torso.clone()));
        let value = hooks.apply(|| "value.hook_out".to_string(), self.value_head.forward(torso)); // [batch, 1]
        PolicyOutput { logits, value: squeeze_value(value) }
    }

    fn hook_points(&self) -> Vec<HookPoint> {
        let mut points: Vec<HookPoint> = (0..self.stages.len())
            .map(|i| HookPoint {
                name: format!("encoder.conv.{i}.hook_out"),
                dims: vec!["batch", "channel", "height", "width"],
            })
            .collect();
        points.push(HookPoint { name: "torso.hook_out".into(), dims: vec!["batch", "hidden"] });
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

    fn obs(batch: usize, shape: [usize; 3]) -> Tensor<2> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..batch * n).map(|i| ((i * 7919) % 13) as f32 / 13.0 - 0.3).collect();
        Tensor::from_data(TensorData::new(v, [batch, n]), &cpu())
    }

    fn vec_of<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// One channel, one 1-filter stage without pooling or residuals, hidden 1: the conv is a 3×3
    /// box sum (zero padding), the torso sums the (relu'd) map, so every activation is an integer.
    #[test]
    fn cache_returns_exact_activations_on_hand_set_weights() {
        let device = cpu();
        let config = CnnPolicyConfig { channels: vec![1], res_blocks: 0, pool: false, hidden: 1 };
        let shape = [1, 2, 3];
        let model = CnnPolicy {
            stages: vec![Stage { conv: Conv3::from_weights(vec![1.0; 9], vec![-1.0], 1, 1, &device), res: vec![] }],
            torso: linear_from(vec![1.0; 6], vec![0.0], 6, 1, &device),
            policy_head: linear_from(vec![1.0, -1.0], vec![0.0, 0.0], 1, 2, &device),
            value_head: linear_from(vec![2.0], vec![0.5], 1, 1, &device),
            spec: CnnSpec {
                obs_shape: shape,
                num_actions: 2,
                config: config.clone(),
                stage_shapes: CnnPolicy::stage_shapes(&config, shape),
            },
        };
        // Grid [[1,0,2],[0,1,0]]: box sums [[2,4,3],[2,4,3]] minus bias 1 -> [[1,3,2],[1,3,2]].
        let x = Tensor::from_data(TensorData::new(vec![1f32, 0., 2., 0., 1., 0.], [1, 6]), &device);
        let mut hooks = Hooks::cache_all();
        let out = model.forward_hooked(x, &mut hooks);
        let cache = hooks.finish().unwrap();
        assert_eq!(cache.values("encoder.conv.0.hook_out").unwrap(), (vec![1, 1, 2, 3], vec![1., 3., 2., 1., 3., 2.]));
        assert_eq!(cache.values("torso.hook_out").unwrap(), (vec![1, 1], vec![12.]));
        assert_eq!(cache.values("policy.hook_logits").unwrap(), (vec![1, 2], vec![12., -12.]));
        assert_eq!(cache.values("value.hook_out").unwrap(), (vec![1, 1], vec![24.5]));
        assert_eq!(vec_of(out.value), vec![24.5]);
    }

    #[test]
    fn shapes_hooks_and_self_patching() {
        let device = cpu();
        let shape = [5, 6, 24];
        let config = CnnPolicyConfig::default();
        let model = CnnPolicy::init(&config, shape, 4, &mut Streams::new(Seed(1)).stream("init"), &device);
        assert_eq!(model.spec.stage_shapes, vec![[16, 3, 12], [32, 2, 6], [32, 1, 3]]);
        let plain = model.forward(obs(3, shape));
        let (pl, pv) = (vec_of(plain.logits), vec_of(plain.value));
        assert_eq!((pl.len(), pv.len()), (12, 3));
        let mut hooks = Hooks::cache_all();
        model.forward_hooked(obs(3, shape), &mut hooks);
        let cache = hooks.finish().unwrap();
        let names: Vec<String> = model.hook_points().into_iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "encoder.conv.0.hook_out",
                "encoder.conv.1.hook_out",
                "encoder.conv.2.hook_out",
                "torso.hook_out",
                "policy.hook_logits",
                "value.hook_out"
            ]
        );
        assert_eq!(cache.get("encoder.conv.1.hook_out").unwrap().shape().to_vec(), vec![3, 32, 2, 6]);
        for name in &names {
            let mut hooks = Hooks::none().patch(name, cache.get(name).unwrap().clone());
            let out = model.forward_hooked(obs(3, shape), &mut hooks);
            hooks.finish().unwrap();
            assert_eq!(vec_of(out.logits), pl, "{name}");
            assert_eq!(vec_of(out.value), pv, "{name}");
        }
        let err = Hooks::none().patch("encoder.conv.0.hook_outt", cache.get(&names[0]).unwrap().clone());
        let err = err.validate(&model.hook_points()).unwrap_err().to_string();
        assert!(err.contains("did you mean `encoder.conv.0.hook_out`"), "{err}");
    }

    #[test]
    fn gradients_reach_every_conv() {
        let device = cpu_autodiff();
        let shape = [3, 5, 7];
        let config = CnnPolicyConfig { channels: vec![4, 4], res_blocks: 1, pool: true, hidden: 8 };
        let model = CnnPolicy::init(&config, shape, 3, &mut Streams::new(Seed(2)).stream("init"), &device);
        let x = Tensor::from_data(obs(2, shape).into_data(), &device);
        let out = model.forward(x);
        let grads = (out.logits.sum() + out.value.sum()).backward();
        for s in &model.stages {
            for c in std::iter::once(&s.conv).chain(s.res.iter().flat_map(|r| [&r.conv0, &r.conv1])) {
                let g = vec_of(c.weight.val().grad(&grads).expect("gradient"));
                assert!(g.iter().any(|v| *v != 0.0));
            }
        }
    }
}
