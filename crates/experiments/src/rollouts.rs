//! Playing a trained policy from chosen start states while watching every state it passes through.
//!
//! [`mesalab_train::ppo::evaluate`] returns episode statistics only; the goal-misgeneralization
//! analyses also need the level each episode started from (cheese position, optimal plan) and
//! what happened along the way (cells visited, shields picked up after the last monster died).
//! [`play`] runs a batch of start states to the end of their episodes, in lock-step batches so the
//! policy sees a whole batch per forward pass, and calls an observer after every step.
//! [`trace_any`] uses it to record the agent's path from the first state to the last one
//! (which the auto-resetting [`mesalab_envs::VecEnv`] cannot give: it resets on the final step).

use crate::goal_misgen::{AnyPolicy, PositionFn};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Tensor, TensorData};
use mesalab_core::StreamRng;
use mesalab_envs::{Env, EpisodeStats, Step};
use mesalab_nn::device::cpu;
use mesalab_nn::policy::Policy;
use mesalab_train::ppo::ActionSelection;
use mesalab_train::rollout::{argmax, sample};

/// Episodes played side by side per forward pass.
const BATCH: usize = 256;

/// Action log-probabilities `[n, actions]` (row-major) of `policy` for `n` flat observations.
pub fn log_probs<P: Policy>(policy: &P, obs: Vec<f32>, n: usize, obs_len: usize) -> Vec<f32> {
    let out = policy.forward(Tensor::from_data(TensorData::new(obs, [n, obs_len]), &cpu()));
    log_softmax(out.logits, 1).into_data().try_into_vec::<f32>().expect("f32 logits")
}

/// Action probabilities `[states, actions]` of `policy` in each of `states` (no gradients).
pub fn action_probs<E: Env, P: Policy>(env: &E, policy: &P, states: &[E::State]) -> Vec<Vec<f64>> {
    let policy = policy.valid();
    let (obs_len, k) = (env.spec().obs_len(), env.spec().actions.len());
    let mut out = Vec::with_capacity(states.len());
    for chunk in states.chunks(BATCH) {
        let mut obs = vec![0.0f32; chunk.len() * obs_len];
        for (s, row) in chunk.iter().zip(obs.chunks_exact_mut(obs_len)) {
            env.write_obs(s, row);
        }
        let lp = log_probs(&policy, obs, chunk.len(), obs_len);
        out.extend(lp.chunks_exact(k).map(|r| r.iter().map(|v| f64::from(*v).exp()).collect()));
    }
    out
}

/// Plays one episode from each of `starts` with `policy`, sampling actions from `action_rng`
/// (env randomness from `env_rng`), and returns each episode's stats and its observer record.
///
/// `init(i, start)` makes episode `i`'s record; `observe(record, state_after, step)` is called after
/// every step. Episodes are independent of the batching: each episode's actions come from one
/// shared stream in a fixed order, so the same inputs give the same outputs.
pub fn play<E: Env, P: Policy, X>(
    env: &E,
    policy: &P,
    starts: Vec<E::State>,
    action_rng: &mut StreamRng,
    env_rng: &mut StreamRng,
    init: impl Fn(usize, &E::State) -> X,
    observe: impl FnMut(&mut X, &E::State, &Step),
) -> Vec<(EpisodeStats, X)> {
    play_selecting(env, policy, ActionSelection::Sample, starts, action_rng, env_rng, init, observe)
}

/// [`play`] with the actions picked by `selection` (greedy play draws nothing from `action_rng`).
#[allow(clippy::too_many_arguments)]
pub fn play_selecting<E: Env, P: Policy, X>(
    env: &E,
    policy: &P,
    selection: ActionSelection,
    starts: Vec<E::State>,
    action_rng: &mut StreamRng,
    env_rng: &mut StreamRng,
    init: impl Fn(usize, &E::State) -> X,
    mut observe: impl FnMut(&mut X, &E::State, &Step),
) -> Vec<(EpisodeStats, X)> {
    let policy = policy.valid();
    let (obs_len, k) = (env.spec().obs_len(), env.spec().actions.len());
    let mut results = Vec::with_capacity(starts.len());
    let mut index = 0;
    let mut pending = starts.into_iter();
    loop {
        let batch: Vec<E::State> = pending.by_ref().take(BATCH).collect();
        if batch.is_empty() {
            break;
        }
        let mut live: Vec<(E::State, EpisodeStats, X, bool)> = batch
            .into_iter()
            .map(|s| {
                let x = init(index, &s);
                index += 1;
                (s, EpisodeStats::default(), x, false)
            })
            .collect();
        while live.iter().any(|l| !l.3) {
            let running: Vec<usize> = (0..live.len()).filter(|&i| !live[i].3).collect();
            let mut obs = vec![0.0f32; running.len() * obs_len];
            for (&i, row) in running.iter().zip(obs.chunks_exact_mut(obs_len)) {
                env.write_obs(&live[i].0, row);
            }
            let lp = log_probs(&policy, obs, running.len(), obs_len);
            for (j, &i) in running.iter().enumerate() {
                let lp = &lp[j * k..(j + 1) * k];
                let a = match selection {
                    ActionSelection::Sample => sample(lp, action_rng),
                    ActionSelection::Greedy => argmax(lp),
                };
                let (state, stats, x, done) = &mut live[i];
                let step = env.step(state, a, env_rng);
                stats.record(&step);
                observe(x, state, &step);
                *done = step.end.is_some();
            }
        }
        results.extend(live.into_iter().map(|(_, stats, x, _)| (stats, x)));
    }
    results
}

/// [`action_probs`] for either kind of policy.
pub fn action_probs_any<E: Env>(env: &E, policy: &AnyPolicy, states: &[E::State]) -> Vec<Vec<f64>> {
    match policy {
        AnyPolicy::Mlp(p) => action_probs(env, p, states),
        AnyPolicy::Cnn(p) => action_probs(env, p, states),
    }
}

/// [`play`] for either kind of policy.
pub fn play_any<E: Env, X>(
    env: &E,
    policy: &AnyPolicy,
    starts: Vec<E::State>,
    action_rng: &mut StreamRng,
    env_rng: &mut StreamRng,
    init: impl Fn(usize, &E::State) -> X,
    observe: impl FnMut(&mut X, &E::State, &Step),
) -> Vec<(EpisodeStats, X)> {
    match policy {
        AnyPolicy::Mlp(p) => play(env, p, starts, action_rng, env_rng, init, observe),
        AnyPolicy::Cnn(p) => play(env, p, starts, action_rng, env_rng, init, observe),
    }
}

/// Plays one episode from each of `starts` and returns its stats and the agent's path: the cells of
/// every state from the start to the final one (states without a position are skipped).
pub fn trace_any<E: Env>(
    env: &E,
    policy: &AnyPolicy,
    selection: ActionSelection,
    starts: Vec<E::State>,
    action_rng: &mut StreamRng,
    env_rng: &mut StreamRng,
    position: PositionFn<'_, E::State>,
) -> Vec<(EpisodeStats, Vec<(usize, usize)>)> {
    let init = |_: usize, s: &E::State| position(s).into_iter().collect::<Vec<_>>();
    let observe = |path: &mut Vec<(usize, usize)>, s: &E::State, _: &Step| path.extend(position(s));
    match policy {
        AnyPolicy::Mlp(p) => play_selecting(env, p, selection, starts, action_rng, env_rng, init, observe),
        AnyPolicy::Cnn(p) => play_selecting(env, p, selection, starts, action_rng, env_rng, init, observe),
    }
}
