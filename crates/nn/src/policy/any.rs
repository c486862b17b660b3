//! [`AnyPolicy`]: the actor-critic a config chooses ([`PolicyConfig`]: MLP or CNN), as one type that
//! implements [`Policy`], so trainers, rollouts and look-inside tools take it like any policy.

use super::{CnnPolicy, CnnPolicyConfig, MlpPolicy, MlpPolicyConfig, Policy, PolicyOutput, VinPolicy, VinPolicyConfig};
use crate::hooks::{HookPoint, Hooks};
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use mesalab_core::StreamRng;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Which actor-critic network to train.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    /// Observations flattened into an MLP (fast on CPU).
    #[default]
    Mlp,
    /// A small IMPALA-like CNN over the `[C, H, W]` grid.
    Cnn,
    /// A Value Iteration Network: learned reward map, K steps of value iteration (white-box planner).
    Vin,
}

/// The `[model]` section of the RL experiments: which network, and its architecture.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// `mlp` or `cnn`.
    pub kind: PolicyKind,
    /// MLP architecture (used when `kind = "mlp"`).
    pub mlp: MlpPolicyConfig,
    /// CNN architecture (used when `kind = "cnn"`).
    pub cnn: CnnPolicyConfig,
    /// VIN architecture (used when `kind = "vin"`).
    pub vin: VinPolicyConfig,
}

impl PolicyConfig {
    /// What is wrong with the architecture, as `(key under the section, message)`.
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        if self.mlp.hidden.contains(&0) {
            return Some(("mlp.hidden", "every width must be at least 1"));
        }
        if self.cnn.channels.is_empty() || self.cnn.channels.contains(&0) {
            return Some(("cnn.channels", "needs at least one stage, each ≥ 1 filter"));
        }
        if self.cnn.hidden == 0 {
            return Some(("cnn.hidden", "must be at least 1"));
        }
        self.vin.problem()
    }

    /// A freshly initialised policy for `[C, H, W]` observations and `num_actions` actions, drawn
    /// from `rng` (conventionally the seed's `init` stream).
    pub fn init(&self, obs_shape: [usize; 3], num_actions: usize, rng: &mut StreamRng, device: &Device) -> AnyPolicy {
        match self.kind {
            PolicyKind::Mlp => {
                AnyPolicy::Mlp(MlpPolicy::init(&self.mlp, obs_shape.iter().product(), num_actions, rng, device))
            }
            PolicyKind::Cnn => AnyPolicy::Cnn(CnnPolicy::init(&self.cnn, obs_shape, num_actions, rng, device)),
            PolicyKind::Vin => AnyPolicy::Vin(VinPolicy::init(&self.vin, obs_shape, num_actions, rng, device)),
        }
    }
}

/// An MLP, CNN or VIN actor-critic. Checkpoints are those of the inner model, so a file saved from an
/// `AnyPolicy::Mlp` loads into a bare [`MlpPolicy`] and back.
// A handful of policies live at once (one per seed), so the size gap between variants costs
// nothing worth an indirection through every forward pass.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum AnyPolicy {
    Mlp(MlpPolicy),
    Cnn(CnnPolicy),
    Vin(VinPolicy),
}

impl AnyPolicy {
    /// The length of the policy's explicit search: a VIN's value-iteration steps K. `None` for
    /// policies with no search budget to change (MLP, CNN).
    pub fn search_budget(&self) -> Option<usize> {
        match self {
            AnyPolicy::Vin(v) => Some(v.spec.config.iterations),
            AnyPolicy::Mlp(_) | AnyPolicy::Cnn(_) => None,
        }
    }

    /// The same weights with another search length (a VIN with K = `budget`); `None` where
    /// [`Self::search_budget`] is `None` or `budget` is 0.
    pub fn with_search_budget(&self, budget: usize) -> Option<AnyPolicy> {
        match self {
            AnyPolicy::Vin(v) if budget > 0 => {
                let mut v = v.clone();
                v.spec.config.iterations = budget;
                Some(AnyPolicy::Vin(v))
            }
            _ => None,
        }
    }
}

impl Policy for AnyPolicy {
    fn as_mlp(&self) -> Option<&MlpPolicy> {
        match self {
            AnyPolicy::Mlp(p) => Some(p),
            AnyPolicy::Cnn(_) | AnyPolicy::Vin(_) => None,
        }
    }

    fn map_mlp(self, f: impl FnOnce(MlpPolicy) -> MlpPolicy) -> Self {
        match self {
            AnyPolicy::Mlp(p) => AnyPolicy::Mlp(f(p)),
            other => other,
        }
    }

    fn forward_hooked(&self, obs: Tensor<2>, hooks: &mut Hooks) -> PolicyOutput {
        match self {
            AnyPolicy::Mlp(p) => p.forward_hooked(obs, hooks),
            AnyPolicy::Cnn(p) => p.forward_hooked(obs, hooks),
            AnyPolicy::Vin(p) => p.forward_hooked(obs, hooks),
        }
    }

    fn hook_points(&self) -> Vec<HookPoint> {
        match self {
            AnyPolicy::Mlp(p) => p.hook_points(),
            AnyPolicy::Cnn(p) => p.hook_points(),
            AnyPolicy::Vin(p) => p.hook_points(),
        }
    }

    fn obs_len(&self) -> usize {
        match self {
            AnyPolicy::Mlp(p) => p.obs_len(),
            AnyPolicy::Cnn(p) => p.obs_len(),
            AnyPolicy::Vin(p) => p.obs_len(),
        }
    }

    fn num_actions(&self) -> usize {
        match self {
            AnyPolicy::Mlp(p) => p.num_actions(),
            AnyPolicy::Cnn(p) => p.num_actions(),
            AnyPolicy::Vin(p) => p.num_actions(),
        }
    }

    fn value(&self, obs: Tensor<2>) -> Tensor<1> {
        match self {
            AnyPolicy::Mlp(p) => p.value(obs),
            AnyPolicy::Cnn(p) => p.value(obs),
            AnyPolicy::Vin(p) => p.value(obs),
        }
    }

    fn save(&self, path: &Path) -> Result<(), String> {
        match self {
            AnyPolicy::Mlp(p) => p.save(path),
            AnyPolicy::Cnn(p) => p.save(path),
            AnyPolicy::Vin(p) => p.save(path),
        }
    }

    fn load(self, path: &Path) -> Result<Self, String> {
        Ok(match self {
            AnyPolicy::Mlp(p) => AnyPolicy::Mlp(p.load(path)?),
            AnyPolicy::Cnn(p) => AnyPolicy::Cnn(p.load(path)?),
            AnyPolicy::Vin(p) => AnyPolicy::Vin(p.load(path)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::cpu;
    use burn::tensor::TensorData;
    use mesalab_core::{Seed, Streams};

    #[test]
    fn any_policy_is_its_inner_model_and_checkpoints_alike() {
        let mut rng = Streams::new(Seed(4)).stream("init");
        let device = cpu();
        for kind in [PolicyKind::Mlp, PolicyKind::Cnn, PolicyKind::Vin] {
            let cfg = PolicyConfig { kind, ..PolicyConfig::default() };
            let p = cfg.init([3, 5, 5], 3, &mut rng, &device);
            assert_eq!((p.obs_len(), p.num_actions()), (75, 3));
            let obs = || {
                Tensor::<2>::from_data(
                    TensorData::new((0..150).map(|i| (i % 7) as f32 / 7.0).collect(), [2, 75]),
                    &device,
                )
            };
            let before = p.forward(obs()).logits.into_data();
            let dir = std::env::temp_dir().join(format!("mesalab-any-policy-{kind:?}-{}", std::process::id()));
            let path = dir.with_extension("safetensors");
            p.save(&path).unwrap();
            let fresh = cfg.init([3, 5, 5], 3, &mut rng, &device);
            assert_ne!(fresh.forward(obs()).logits.into_data(), before, "a fresh draw differs");
            let loaded = fresh.load(&path).unwrap();
            assert_eq!(loaded.forward(obs()).logits.into_data(), before);
            let _ = std::fs::remove_file(&path);
        }
        assert_eq!(
            PolicyConfig { mlp: MlpPolicyConfig { hidden: vec![0], ..Default::default() }, ..Default::default() }
                .problem(),
            Some(("mlp.hidden", "every width must be at least 1"))
        );
    }
}
