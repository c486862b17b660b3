//! Looking inside trained policies: run a [`Policy`] on chosen env states with [`Hooks`] (cache,
//! patch, steer) and read its action probabilities and activations. Used by the look-inside
//! analyses of every experiment (cheese vector, coin-position probes, decision squares); eager and
//! batched, no gradients.

use crate::rollout::observations;
use burn::tensor::activation::softmax;
use burn::tensor::{Tensor, TensorData};
use mesalab_core::{Seed, Streams};
use mesalab_envs::{Env, EnvSpec};
use mesalab_nn::device::{cpu, cpu_autodiff};
use mesalab_nn::interp::HookShape;
use mesalab_nn::policy::{AnyPolicy, Policy, PolicyConfig};
use mesalab_nn::{ActivationCache, HookError, Hooks};

/// The untrained policy of architecture `model` for `spec`, from `streams`' `init` stream (exactly
/// the weights PPO training starts from for the same seed).
pub fn init_policy(model: &PolicyConfig, spec: &EnvSpec, streams: &Streams) -> AnyPolicy {
    model.init(spec.obs_shape, spec.actions.len(), &mut streams.stream("init"), &cpu_autodiff())
}

/// `Ok` when `name` is one of the policy's hooks; otherwise the error names the closest one.
pub fn check_hook<P: Policy>(policy: &P, name: &str) -> Result<(), HookError> {
    Hooks::cache_only(&[name]).validate(&policy.hook_points())
}

/// Action probabilities `[states][actions]` of `policy` in `states`, run with `hooks` (all states
/// in one batch), and the activation cache the hooks recorded.
pub fn run_hooked<E: Env, P: Policy>(
    env: &E,
    policy: &P,
    states: &[E::State],
    mut hooks: Hooks,
) -> Result<(Vec<Vec<f64>>, ActivationCache), HookError> {
    let policy = policy.valid();
    hooks.validate(&policy.hook_points())?;
    let refs: Vec<&E::State> = states.iter().collect();
    let n = states.len();
    let obs = Tensor::from_data(TensorData::new(observations(env, &refs), [n, policy.obs_len()]), &cpu()); // [n, obs_len]
    let out = policy.forward_hooked(obs, &mut hooks);
    let k = policy.num_actions();
    let probs = softmax(out.logits, 1).into_data().try_into_vec::<f32>().expect("f32 probabilities");
    let cache = hooks.finish()?;
    Ok((probs.chunks_exact(k).map(|r| r.iter().map(|v| f64::from(*v)).collect()).collect(), cache))
}

/// The cached activation at `name` when `policy` sees `states`, as `[states, rest…]` data.
pub fn activations<E: Env, P: Policy>(
    env: &E,
    policy: &P,
    states: &[E::State],
    name: &str,
) -> Result<TensorData, HookError> {
    let (_, cache) = run_hooked(env, policy, states, Hooks::cache_only(&[name]))?;
    Ok(cache.get(name).cloned().expect("a validated hook is cached"))
}

/// `base + coefficient · vectors`, element-wise; both `[batch, rest…]` of the same shape. Patching
/// the result in applies a different steering vector to every row (e.g. each maze's own cheese vector).
pub fn add_scaled(base: &TensorData, vectors: &TensorData, coefficient: f32) -> TensorData {
    let a = base.try_to_vec::<f32>().expect("f32 activations");
    let v = vectors.try_to_vec::<f32>().expect("f32 activations");
    assert_eq!(a.len(), v.len(), "activations and vectors are built from the same states");
    let out: Vec<f32> = a.iter().zip(&v).map(|(x, y)| x + coefficient * y).collect();
    TensorData::new(out, base.shape().to_vec())
}

/// Row-wise `a − b` of two `[batch, rest…]` activations of the same shape.
pub fn difference(a: &TensorData, b: &TensorData) -> TensorData {
    add_scaled(a, b, -1.0)
}

/// The hook points of an untrained policy of architecture `model` for `env`, with their shapes on
/// two start states.
pub fn hook_shapes<E: Env>(model: &PolicyConfig, env: &E) -> Result<Vec<HookShape>, HookError> {
    let streams = Streams::new(Seed(0));
    let policy = init_policy(model, env.spec(), &streams);
    let mut rng = streams.stream("hook-shapes");
    let states = vec![env.reset(&mut rng), env.reset(&mut rng)];
    let (_, cache) = run_hooked(env, &policy, &states, Hooks::cache_all())?;
    Ok(mesalab_nn::interp::hook_shapes(&policy.hook_points(), &cache))
}
