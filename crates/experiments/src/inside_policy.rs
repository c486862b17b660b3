//! Looking inside trained policies: run an [`AnyPolicy`] on chosen states with [`Hooks`] (cache,
//! patch, steer) and read its action probabilities. Shared by the goal-misgeneralization analyses
//! (cheese vector, coin-position probe); everything is eager and batched.

use crate::goal_misgen::AnyPolicy;
use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::{Tensor, TensorData};
use mesalab_envs::Env;
use mesalab_nn::device::cpu;
use mesalab_nn::policy::Policy;
use mesalab_nn::{ActivationCache, HookError, HookPoint, Hooks};

/// Every hook point of the policy, in forward order.
pub fn hook_points(policy: &AnyPolicy) -> Vec<HookPoint> {
    match policy {
        AnyPolicy::Mlp(p) => p.hook_points(),
        AnyPolicy::Cnn(p) => p.hook_points(),
    }
}

/// `Ok` when `name` is one of the policy's hooks; otherwise the error names the closest one.
pub fn check_hook(policy: &AnyPolicy, name: &str) -> Result<(), HookError> {
    Hooks::cache_only(&[name]).validate(&hook_points(policy))
}

/// Flat observations `[states, obs_len]` of `states`.
pub fn observations<E: Env>(env: &E, states: &[E::State]) -> Vec<f32> {
    let obs_len = env.spec().obs_len();
    let mut obs = vec![0.0f32; states.len() * obs_len];
    for (s, row) in states.iter().zip(obs.chunks_exact_mut(obs_len)) {
        env.write_obs(s, row);
    }
    obs
}

fn run_typed<P: Policy>(
    policy: &P,
    obs: Vec<f32>,
    n: usize,
    mut hooks: Hooks,
) -> Result<(Vec<Vec<f64>>, ActivationCache), HookError> {
    hooks.validate(&policy.hook_points())?;
    let obs_len = policy.obs_len();
    let out = policy.forward_hooked(Tensor::from_data(TensorData::new(obs, [n, obs_len]), &cpu()), &mut hooks);
    let k = policy.num_actions();
    let probs = softmax(out.logits, 1).into_data().try_into_vec::<f32>().expect("f32 probabilities");
    let cache = hooks.finish()?;
    Ok((probs.chunks_exact(k).map(|r| r.iter().map(|v| f64::from(*v)).collect()).collect(), cache))
}

/// Action probabilities `[states][actions]` of `policy` in `states`, run with `hooks` (all states
/// in one batch), and the activation cache the hooks recorded.
pub fn run_hooked<E: Env>(
    env: &E,
    policy: &AnyPolicy,
    states: &[E::State],
    hooks: Hooks,
) -> Result<(Vec<Vec<f64>>, ActivationCache), HookError> {
    let obs = observations(env, states);
    match policy {
        AnyPolicy::Mlp(p) => run_typed(&p.valid(), obs, states.len(), hooks),
        AnyPolicy::Cnn(p) => run_typed(&p.valid(), obs, states.len(), hooks),
    }
}

/// The cached activation at `name` when `policy` sees `states`, as `[states, rest…]` data.
pub fn activations<E: Env>(
    env: &E,
    policy: &AnyPolicy,
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
pub fn hook_shapes<E: Env>(
    model: &crate::goal_misgen::PolicyConfig,
    env: &E,
) -> anyhow::Result<Vec<mesalab_nn::interp::HookShape>> {
    let streams = mesalab_core::Streams::new(mesalab_core::Seed(0));
    let policy = crate::goal_misgen::init_policy(model, env.spec(), &streams);
    let mut rng = streams.stream("hook-shapes");
    let states = vec![env.reset(&mut rng), env.reset(&mut rng)];
    let (_, cache) = run_hooked(env, &policy, &states, Hooks::cache_all())?;
    Ok(mesalab_nn::interp::hook_shapes(&hook_points(&policy), &cache))
}
