//! The one episode loop: play any [`Actor`] — a trained policy ([`PolicyActor`]), a scripted
//! baseline, the random policy — from chosen start states to the end of their episodes, watching
//! every state it passes through. PPO evaluation ([`evaluate`]), the goal-misgeneralization harness
//! and the look-inside tools all play through here, so a trained agent and its baselines face the
//! same levels in the same loop.
//!
//! Invariants: an episode's actions and env draws come from the streams the caller passes, taken in
//! a fixed order (episode index, then step), so the same inputs give the same outputs, whatever
//! the batch size; a policy sees a whole batch per forward pass.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Tensor, TensorData};
use mesalab_core::StreamRng;
use mesalab_envs::{Actor, Env, EpisodeStats, Step, VecEnv};
use mesalab_nn::device::cpu;
use mesalab_nn::policy::Policy;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Episodes played side by side per forward pass in [`play`].
pub const BATCH: usize = 256;

/// How a policy picks its action from its distribution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionSelection {
    /// Sample from the policy (what it was trained with).
    #[default]
    Sample,
    /// The most probable action.
    Greedy,
}

/// Draws an action from a categorical distribution given its log-probabilities.
pub fn sample(logp: &[f32], rng: &mut StreamRng) -> usize {
    let u: f64 = rng.random();
    let mut cumulative = 0.0;
    for (a, lp) in logp.iter().enumerate() {
        cumulative += f64::from(*lp).exp();
        if u < cumulative {
            return a;
        }
    }
    logp.len() - 1 // rounding left the total a hair under 1
}

/// The most probable action (lowest index on ties).
pub fn argmax(logp: &[f32]) -> usize {
    logp.iter().enumerate().fold(0, |best, (a, lp)| if *lp > logp[best] { a } else { best })
}

/// Action log-probabilities `[n, actions]` (row-major) of `policy` for `n` flat observations.
pub fn log_probs<P: Policy>(policy: &P, obs: Vec<f32>, n: usize) -> Vec<f32> {
    let obs_len = policy.obs_len();
    let out = policy.forward(Tensor::from_data(TensorData::new(obs, [n, obs_len]), &cpu())); // [n, obs_len]
    log_softmax(out.logits, 1).into_data().try_into_vec::<f32>().expect("f32 logits")
}

/// Flat observations `[states, obs_len]` of `states`.
pub fn observations<E: Env>(env: &E, states: &[&E::State]) -> Vec<f32> {
    let obs_len = env.spec().obs_len();
    let mut obs = vec![0.0f32; states.len() * obs_len];
    for (s, row) in states.iter().zip(obs.chunks_exact_mut(obs_len)) {
        env.write_obs(s, row);
    }
    obs
}

/// A trained policy as an [`Actor`] (no gradients).
pub struct PolicyActor<P> {
    policy: P,
    pub selection: ActionSelection,
    name: String,
}

impl<P: Policy> PolicyActor<P> {
    pub fn new(policy: &P, selection: ActionSelection) -> Self {
        Self { policy: policy.valid(), selection, name: "trained policy".into() }
    }

    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Actions for `n` flat observations (`[n, obs_len]`), drawing from `rng` in row order.
    pub fn act_obs(&self, obs: Vec<f32>, n: usize, rng: &mut StreamRng, actions: &mut [usize]) {
        let k = self.policy.num_actions();
        let lp = log_probs(&self.policy, obs, n);
        for (row, a) in lp.chunks_exact(k).zip(actions.iter_mut()) {
            *a = match self.selection {
                ActionSelection::Sample => sample(row, rng),
                ActionSelection::Greedy => argmax(row),
            };
        }
    }
}

impl<E: Env, P: Policy> Actor<E> for PolicyActor<P> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn act(&self, env: &E, states: &[&E::State], rng: &mut StreamRng, actions: &mut [usize]) {
        self.act_obs(observations(env, states), states.len(), rng, actions);
    }
}

/// Action probabilities `[states][actions]` of `policy` in each of `states` (no gradients).
pub fn action_probs<E: Env, P: Policy>(env: &E, policy: &P, states: &[E::State]) -> Vec<Vec<f64>> {
    let policy = policy.valid();
    let k = env.spec().actions.len();
    let mut out = Vec::with_capacity(states.len());
    for chunk in states.chunks(BATCH) {
        let refs: Vec<&E::State> = chunk.iter().collect();
        let lp = log_probs(&policy, observations(env, &refs), chunk.len());
        out.extend(lp.chunks_exact(k).map(|r| r.iter().map(|v| f64::from(*v).exp()).collect()));
    }
    out
}

/// Plays one episode from each of `starts` with `actor` (actions from `action_rng`, env
/// randomness from `env_rng`) and returns each episode's stats and its observer record.
///
/// `init(i, start)` makes episode `i`'s record; `observe(record, state_after, step)` is called
/// after every step.
pub fn play<E: Env, A: Actor<E> + ?Sized, X>(
    env: &E,
    actor: &A,
    starts: Vec<E::State>,
    action_rng: &mut StreamRng,
    env_rng: &mut StreamRng,
    init: impl Fn(usize, &E::State) -> X,
    mut observe: impl FnMut(&mut X, &E::State, &Step),
) -> Vec<(EpisodeStats, X)> {
    let mut results = Vec::with_capacity(starts.len());
    let mut index = 0;
    let mut pending = starts.into_iter();
    let mut actions = vec![0usize; BATCH];
    loop {
        let mut live: Vec<(E::State, EpisodeStats, X, bool)> = pending
            .by_ref()
            .take(BATCH)
            .map(|s| {
                let x = init(index, &s);
                index += 1;
                (s, EpisodeStats::default(), x, false)
            })
            .collect();
        if live.is_empty() {
            break;
        }
        while live.iter().any(|l| !l.3) {
            let running: Vec<usize> = (0..live.len()).filter(|&i| !live[i].3).collect();
            let states: Vec<&E::State> = running.iter().map(|&i| &live[i].0).collect();
            actor.act(env, &states, action_rng, &mut actions[..running.len()]);
            for (j, &i) in running.iter().enumerate() {
                let (state, stats, x, done) = &mut live[i];
                let step = env.step(state, actions[j], env_rng);
                stats.record(&step);
                observe(x, state, &step);
                *done = step.end.is_some();
            }
        }
        results.extend(live.into_iter().map(|(_, stats, x, _)| (stats, x)));
    }
    results
}

/// Episodes played by [`evaluate`].
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// Every episode, ordered by slot, then by finishing order within the slot.
    pub episodes: Vec<EpisodeStats>,
    pub summary: crate::ppo::EpisodeSummary,
}

/// Plays exactly `episodes_per_env` episodes in every slot of `envs` with `policy` (no gradients),
/// sampling actions from `rng` (conventionally `streams.stream("eval-actions")`). A fixed quota per
/// slot keeps the mean unbiased (stopping at the first N finished would favour short episodes).
/// `envs` may be any split of any env the policy fits, e.g. the `deploy` split of its training env.
pub fn evaluate<E: Env, P: Policy>(
    policy: &P,
    envs: &mut VecEnv<E>,
    episodes_per_env: usize,
    selection: ActionSelection,
    rng: &mut StreamRng,
) -> Result<Evaluation, String> {
    crate::ppo::check_compatible(policy, envs.env().spec())?;
    let actor = PolicyActor::new(policy, selection);
    let n = envs.len();
    let mut per_slot: Vec<Vec<EpisodeStats>> = vec![Vec::new(); n];
    let mut actions = vec![0usize; n];
    while per_slot.iter().any(|s| s.len() < episodes_per_env) {
        actor.act_obs(envs.obs().to_vec(), n, rng, &mut actions);
        envs.step(&actions);
        for (slot, stats) in envs.finished() {
            if per_slot[*slot].len() < episodes_per_env {
                per_slot[*slot].push(*stats);
            }
        }
    }
    let episodes: Vec<EpisodeStats> = per_slot.into_iter().flatten().collect();
    let summary = crate::ppo::EpisodeSummary::from_episodes(envs.env().spec(), &episodes);
    Ok(Evaluation { episodes, summary })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesalab_core::{Seed, Streams};
    use mesalab_envs::UniformRandom;
    use mesalab_envs::cartpole::{CartPole, CartPoleParams};

    #[test]
    fn play_is_independent_of_the_batching_and_counts_every_step() {
        let env = CartPole::new(CartPoleParams::default());
        let streams = Streams::new(Seed(9));
        let mut level_rng = streams.stream("levels");
        let starts: Vec<_> = (0..300).map(|_| env.reset(&mut level_rng)).collect();
        let run = |starts: Vec<_>| {
            play(
                &env,
                &UniformRandom,
                starts,
                &mut streams.stream("a"),
                &mut streams.stream("e"),
                |i, _| (i, 0u32),
                |x: &mut (usize, u32), _, _| x.1 += 1,
            )
        };
        let all = run(starts.clone());
        assert_eq!(all.len(), 300);
        for (i, (stats, (index, steps))) in all.iter().enumerate() {
            assert_eq!((*index, *steps), (i, stats.length), "the observer saw every step of episode {i}");
        }
        assert_eq!(all, run(starts), "same inputs, same outputs");
    }

    #[test]
    fn sampling_follows_the_distribution_and_argmax_breaks_ties_low() {
        let logp: Vec<f32> = [0.2f32, 0.5, 0.3].iter().map(|p| p.ln()).collect();
        let mut rng = Streams::new(Seed(1)).stream("s");
        let mut counts = [0usize; 3];
        for _ in 0..20_000 {
            counts[sample(&logp, &mut rng)] += 1;
        }
        for (c, p) in counts.iter().zip([0.2, 0.5, 0.3]) {
            assert!((*c as f64 / 20_000.0 - p).abs() < 0.015, "{counts:?}");
        }
        assert_eq!(argmax(&logp), 1);
        assert_eq!(argmax(&[0.0, 0.0, -1.0]), 0);
    }
}
