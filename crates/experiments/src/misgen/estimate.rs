//! Peak memory of a goal-misgeneralization run (see [`crate::resources`]), from its config and
//! the specs of the envs it trains and evaluates on. The sizes follow [`super::run`]:
//!
//! - whole run: one variant's evaluation levels (both splits) and goal-preference levels, the
//!   episodes pooled over seeds, and the `episodes` table rows accumulated over every variant,
//!   policy and split (JSON objects until the table is written);
//! - training: PPO's rollout buffers, the VecEnv, one minibatch through the autodiff graph, the
//!   model with its gradients, Adam moments and the copies PPO keeps, one log per update;
//! - evaluation: one policy's episodes on one split with the paths they walked (at most
//!   `max_steps` cells per episode).

use super::Misgen;
use crate::resources::SEED_TRAINING;
use crate::resources::{Bytes, Estimate, Part, Phase, Work, key, n};
use mesalab_envs::{Env, EpisodeStats};
use mesalab_nn::policy::{PolicyConfig, PolicyKind};
use mesalab_train::ppo::{PpoConfig, UpdateLog};

/// One row of the `episodes` table as a JSON object (≈ 10 fields: key string, value and map node
/// each), measured at ≈ 0.6–1 KiB.
pub const EPISODE_ROW_BYTES: u64 = 1024;

/// A level's start state, bounded by its observation: a grid level holds at most a few bytes per
/// observed cell, plus the fixed part (positions, counters, `Arc`s).
pub fn state_bytes(obs_len: usize) -> Bytes {
    Bytes::product(&[n(obs_len), 4]) + Bytes(Some(512))
}

/// Parameters of the policy `model` builds for observations `[C, H, W]` and `actions` actions.
pub fn policy_params(model: &PolicyConfig, obs_shape: [usize; 3], actions: usize) -> Bytes {
    let linear = |i: u64, o: u64| Bytes::product(&[i, o]) + Bytes(Some(o));
    match model.kind {
        PolicyKind::Mlp => {
            let obs_len = n(obs_shape.iter().fold(1usize, |a, &b| a.saturating_mul(b)));
            let hidden: Vec<u64> = model.mlp.hidden.iter().map(|&h| n(h)).collect();
            let mut tower = Bytes::ZERO;
            let mut fan_in = obs_len;
            for &h in &hidden {
                tower = tower + linear(fan_in, h);
                fan_in = h;
            }
            let towers = if model.mlp.shared_torso { tower } else { tower.times(2) };
            towers + linear(fan_in, n(actions)) + linear(fan_in, 1)
        }
        PolicyKind::Cnn => {
            let c = &model.cnn;
            let mut total = Bytes::ZERO;
            let mut c_in = n(obs_shape[0]);
            for &ch in &c.channels {
                let conv = |i: u64| Bytes::product(&[i, n(ch), 9]) + Bytes(Some(n(ch)));
                total = total + conv(c_in) + conv(n(ch)).times(n(c.res_blocks).saturating_mul(2));
                c_in = n(ch);
            }
            let flat = cnn_flat(model, obs_shape);
            total + linear(flat, n(c.hidden)) + linear(n(c.hidden), n(actions)) + linear(n(c.hidden), 1)
        }
        PolicyKind::Vin => {
            let (h, a) = (n(model.vin.hidden), n(actions));
            let conv = |i: u64, o: u64| Bytes::product(&[i, o, 9]) + Bytes(Some(o));
            conv(n(obs_shape[0]), h)
                + conv(h, h)
                + linear(h, 1)
                + Bytes::product(&[a, 18])
                + linear(a, a)
                + linear(a, 1)
        }
    }
}

/// Conv features after the last stage of a CNN policy (`C·H·W`).
fn cnn_flat(model: &PolicyConfig, obs_shape: [usize; 3]) -> u64 {
    let [_, mut h, mut w] = obs_shape;
    for _ in &model.cnn.channels {
        if model.cnn.pool {
            (h, w) = (h.div_ceil(2), w.div_ceil(2));
        }
    }
    n(model.cnn.channels.last().copied().unwrap_or(obs_shape[0])).saturating_mul(n(h)).saturating_mul(n(w))
}

/// f32 activations of one observation in a forward pass (every layer's output).
pub fn policy_activations(model: &PolicyConfig, obs_shape: [usize; 3]) -> Bytes {
    match model.kind {
        PolicyKind::Mlp => {
            let sum = Bytes::sum(model.mlp.hidden.iter().map(|&h| Bytes(Some(n(h)))));
            if model.mlp.shared_torso { sum } else { sum.times(2) }
        }
        PolicyKind::Cnn => {
            let c = &model.cnn;
            let [_, mut h, mut w] = obs_shape;
            let mut total = Bytes::ZERO;
            for &ch in &c.channels {
                // The first conv's output before pooling, then pooled, then the residual blocks.
                let full = Bytes::product(&[n(ch), n(h), n(w)]);
                if c.pool {
                    (h, w) = (h.div_ceil(2), w.div_ceil(2));
                }
                let pooled = Bytes::product(&[n(ch), n(h), n(w)]);
                total = total + full.times(2) + pooled.times(n(c.res_blocks).saturating_mul(4).saturating_add(1));
            }
            total + Bytes(Some(n(c.hidden)))
        }
        PolicyKind::Vin => {
            // Two reward convs, R; per iteration [R, V], Q and V; the final Q.
            let cells = n(obs_shape[1]).saturating_mul(n(obs_shape[2]));
            let a: u64 = 8; // Q channels = actions, not known here: sized for up to 8 (grid envs have ≤ 5)
            let per_iter = Bytes::product(&[cells, a + 3]);
            Bytes::product(&[cells, n(model.vin.hidden), 2])
                + Bytes(Some(cells))
                + per_iter.times(n(model.vin.iterations))
                + Bytes::product(&[cells, a])
        }
    }
    .times(4)
}

/// PPO's memory for one training job.
pub fn ppo_parts(model: &PolicyConfig, ppo: &PpoConfig, obs_shape: [usize; 3], actions: usize) -> Vec<Part> {
    let obs_len = n(obs_shape.iter().fold(1usize, |a, &b| a.saturating_mul(b)));
    let batch = n(ppo.num_envs).checked_mul(n(ppo.num_steps));
    let minibatch = batch.map(|b| b / n(ppo.num_minibatches.max(1)));
    let updates = batch.filter(|&b| b > 0).map_or(0, |b| ppo.total_timesteps / b);
    let obs_f32 = Bytes::product(&[obs_len, 4]);
    let ppo_keys = [key("ppo.num_envs", ppo.num_envs), key("ppo.num_steps", ppo.num_steps)];
    let model_keys = model_keys(model);
    let mut mb_keys: Vec<(&str, String)> = ppo_keys.to_vec();
    mb_keys.push(key("ppo.num_minibatches", ppo.num_minibatches));
    mb_keys.extend(model_keys.iter().cloned());
    let rollout = match batch {
        // obs, action, log-prob, reward, end, value; advantages, returns and shuffled indices.
        Some(b) => (obs_f32 + Bytes(Some(8 + 4 + 4 + 1 + 4 + 4 + 4 + 8))).times(b),
        None => Bytes(None),
    };
    let minibatch_bytes = match minibatch {
        // Gathered observations, their tensor and its autodiff copy; one-hot actions; and every
        // layer's activations kept for the backward pass with their gradients (≈ 3×).
        Some(mb) => {
            (obs_f32.times(3) + Bytes::product(&[n(actions), 8]) + policy_activations(model, obs_shape).times(3))
                .times(mb)
        }
        None => Bytes(None),
    };
    // The VecEnv's states and observation buffer; the rollout's batched forward pass.
    let vec_env = (state_bytes(obs_len as usize) + obs_f32.times(2) + policy_activations(model, obs_shape))
        .times(n(ppo.num_envs));
    // Parameters, gradients, Adam's two moments, the last good copy (divergence report) and the
    // inference copy: 6 × f32.
    let params = policy_params(model, obs_shape, actions).times(4 * 6);
    let logs = Bytes::product(&[updates, std::mem::size_of::<UpdateLog>() as u64 + 256]);
    vec![
        Part::new(Phase::Step(SEED_TRAINING), "PPO rollout buffers", rollout, &ppo_keys),
        Part::new(Phase::Step(SEED_TRAINING), "one minibatch through autodiff", minibatch_bytes, &mb_keys),
        Part::new(Phase::Step(SEED_TRAINING), "VecEnv states and batched forward", vec_env, &ppo_keys[..1]),
        Part::new(Phase::Step(SEED_TRAINING), "policy, gradients, Adam state and copies", params, &model_keys),
        Part::new(
            Phase::Step(SEED_TRAINING),
            "one log per PPO update",
            logs,
            &[key("ppo.total_timesteps", ppo.total_timesteps), ppo_keys[0].clone(), ppo_keys[1].clone()],
        ),
    ]
}

/// The `model.*` keys that size a policy.
fn model_keys(model: &PolicyConfig) -> Vec<(&'static str, String)> {
    match model.kind {
        PolicyKind::Mlp => vec![key("model.mlp.hidden", format!("{:?}", model.mlp.hidden))],
        PolicyKind::Cnn => vec![
            key("model.cnn.channels", format!("{:?}", model.cnn.channels)),
            key("model.cnn.hidden", model.cnn.hidden),
            key("model.cnn.res_blocks", model.cnn.res_blocks),
        ],
        PolicyKind::Vin => {
            vec![key("model.vin.hidden", model.vin.hidden), key("model.vin.iterations", model.vin.iterations)]
        }
    }
}

/// A probe step over `samples` start states: their observations and every layer's activations,
/// the activations as an f64 matrix with its centred and split copies, the ridge probe's Gram
/// matrix (min(samples, width)², 3 copies) and the logistic probe's Hessian (width², 2 copies).
pub fn probe_part(
    what: &str,
    samples: usize,
    model: &PolicyConfig,
    obs_shape: [usize; 3],
    keys: &[(&str, String)],
) -> Part {
    let obs_len = obs_shape.iter().fold(1usize, |a, &b| a.saturating_mul(b));
    let acts = policy_activations(model, obs_shape);
    let width = acts.get().map_or(u64::MAX, |a| a / 4);
    let side = n(samples).min(width);
    let bytes = (state_bytes(obs_len) + Bytes::product(&[n(obs_len), 4]) + acts + Bytes::product(&[width, 8, 4]))
        .times(n(samples))
        + Bytes::product(&[3, side, side, 8])
        + Bytes::product(&[2, width, width, 8]);
    Part::new(Phase::Step("looking inside"), what, bytes, keys)
}

/// The harness's estimate for `m`, plus the experiment's own parts (its look-inside step), which
/// `extra` builds from the training env's spec.
pub fn estimate<M: Misgen>(m: &M, extra: impl FnOnce(&mesalab_envs::EnvSpec) -> Vec<Part>) -> anyhow::Result<Estimate> {
    let s = m.sections();
    let variants = m.variants();
    let first = variants.first().ok_or_else(|| anyhow::anyhow!("the experiment has no variants"))?;
    let train_env = m.train_env(first)?;
    let spec = train_env.spec().clone();
    let deploy = m.eval_env(first, "deploy")?;
    let eval_train = m.eval_env(first, "train")?;
    let obs_len = [&spec, deploy.spec(), eval_train.spec()].iter().map(|s| s.obs_len()).max().unwrap_or(0);
    let max_steps = [deploy.spec().max_steps, eval_train.spec().max_steps].into_iter().max().unwrap_or(0);
    let episodes = n(s.eval.episodes);
    let seeds = s.run.seeds;
    let policies = seeds.saturating_add(n(m.baselines(first).len()));
    let tests = n(m.preference_tests(first)?.len());
    let state = state_bytes(obs_len);
    let episode = Bytes(Some(std::mem::size_of::<M::Episode>() as u64 + 64));
    let eval_keys = [key("eval.episodes", s.eval.episodes)];
    let rows = Bytes::product(&[n(variants.len()), policies, 2, episodes, EPISODE_ROW_BYTES]);
    let row_keys = [key("eval.episodes", s.eval.episodes), key("run.seeds", seeds), key("variants", variants.len())];
    let mut parts = vec![
        Part::new(
            Phase::Resident,
            "evaluation levels (both splits)",
            state.times(episodes.saturating_mul(2)),
            &eval_keys,
        ),
        Part::new(
            Phase::Resident,
            "goal-preference levels",
            state.times(tests.saturating_mul(n(m.preference_episodes()))),
            &[key("preference episodes", m.preference_episodes())],
        ),
        Part::new(
            Phase::Resident,
            "episodes pooled over seeds",
            episode.times(seeds.saturating_mul(episodes).saturating_mul(2)),
            &[key("eval.episodes", s.eval.episodes), key("run.seeds", seeds)],
        ),
        Part::new(Phase::Resident, "`episodes` table rows", rows, &row_keys),
        // Writing the table: its typed copy and the serialised text.
        Part::new(Phase::Step("writing results"), "`episodes` table as written", rows.times(2), &row_keys),
        Part::new(
            Phase::Step("evaluation"),
            "one policy's episodes with their paths",
            (episode
                + Bytes(Some(std::mem::size_of::<EpisodeStats>() as u64))
                + Bytes::product(&[n(max_steps as usize), 16]))
            .times(episodes),
            &[key("eval.episodes", s.eval.episodes), key("env max_steps", max_steps)],
        ),
    ];
    parts.extend(ppo_parts(s.model, s.ppo, spec.obs_shape, spec.actions.len()));
    parts.extend(extra(&spec));
    let models = seeds.saturating_mul(n(variants.len()));
    Ok(Estimate {
        parts,
        work: Work {
            seeds,
            variants: n(variants.len()),
            train_steps: s.ppo.total_timesteps,
            train_unit: "PPO env steps",
            evaluation: models
                .saturating_add(n(m.baselines(first).len()).saturating_mul(n(variants.len())))
                .saturating_mul(episodes)
                .saturating_mul(2),
            eval_unit: "evaluation episodes (every policy, both splits)",
        },
    })
}
