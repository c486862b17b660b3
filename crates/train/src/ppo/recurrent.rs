//! Recurrent PPO, CleanRL `ppo_atari_lstm` semantics, for any [`RecurrentActorCritic`].
//!
//! What changes against [`super::train_resumable`] and why:
//! - The rollout carries each env's hidden state from step to step; a step that begins an
//!   episode (the first of training, or the one after an end) starts from the zero state (the
//!   `starts` flags, CleanRL's `dones`).
//! - The state at the rollout's first step is kept; the update re-runs each env's whole
//!   `num_steps` sequence from it, with the same start flags, so the gradient flows through time
//!   (truncated at the rollout's edge).
//! - Minibatches are whole envs, not shuffled transitions: the envs are shuffled once per epoch
//!   and split into `num_minibatches` groups (so `num_minibatches` must divide `num_envs`).
//! - Truncated episodes bootstrap as in the feed-forward trainer, with `V` of the terminal
//!   observation computed from the state the episode reached.
//!
//! Everything else — GAE, the clipped loss ([`super::clipped_loss`]), the logs, divergence
//! handling, resuming bit for bit — is the feed-forward trainer's. Arithmetic is burn's.

use super::learner::{clipped_loss, to_vec};
use super::{
    Diverged, EpisodeSummary, Minibatch, MinibatchStats, PpoConfig, PpoError, PpoProgress, SaveState, Trained,
    UpdateLog, clip_grad_norm, explained_variance, gae, normalize,
};
use crate::checkpoint::{CheckpointError, StateFile};
use crate::rollout::{ActionSelection, Evaluation, argmax, sample};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use mesalab_core::config::{Invalid, Validate};
use mesalab_core::{StreamRng, Streams};
use mesalab_envs::{End, Env, EnvSpec, EpisodeStats, VecEnv};
use mesalab_nn::device::{cpu, cpu_autodiff};
use mesalab_nn::policy::RecurrentActorCritic;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;
use std::time::Instant;

/// The section of a [`StateFile`] holding [`RecurrentProgress`].
pub const RECURRENT_PROGRESS_SECTION: &str = "recurrent-ppo-progress";

/// Where recurrent PPO stands after an update: the feed-forward trainer's progress plus what the
/// next rollout continues from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecurrentProgress {
    pub ppo: PpoProgress,
    /// Every env's hidden state, `[num_envs, state_len]` row-major.
    pub state: Vec<f32>,
    /// Whether each env's next step begins an episode.
    pub starts: Vec<bool>,
}

/// Checks that `policy` fits `spec` and that `config` splits into whole-env minibatches.
fn check<P: RecurrentActorCritic>(config: &PpoConfig, policy: &P, spec: &EnvSpec) -> Result<(), PpoError<P>> {
    config.validate().map_err(PpoError::Config)?;
    if !config.num_envs.is_multiple_of(config.num_minibatches) {
        return Err(PpoError::Config(Invalid::new(
            "num_minibatches",
            format!(
                "must divide num_envs ({}) for a recurrent policy: its minibatches are whole env sequences, got {}",
                config.num_envs, config.num_minibatches
            ),
        )));
    }
    if policy.obs_len() != spec.obs_len() || policy.num_actions() != spec.actions.len() {
        return Err(PpoError::Incompatible(format!(
            "the policy reads {} floats and has {} actions; {} observations are {:?} = {} floats with {} actions",
            policy.obs_len(),
            policy.num_actions(),
            spec.name,
            spec.obs_shape,
            spec.obs_len(),
            spec.actions.len()
        )));
    }
    Ok(())
}

/// Trains the recurrent `policy` (initialised by the caller from `streams.stream("init")`) with
/// PPO on `config.num_envs` copies of `env`, continuing from `resume` when given (a [`StateFile`]
/// that the [`SaveState`] handed to `on_update` filled). Same streams as the feed-forward trainer.
pub fn train_recurrent<E: Env, P: RecurrentActorCritic>(
    config: &PpoConfig,
    env: E,
    policy: P,
    streams: &Streams,
    resume: Option<&StateFile>,
    mut on_update: impl FnMut(&UpdateLog, &P, &SaveState<'_>) -> ControlFlow<()>,
) -> Result<Trained<P>, PpoError<P>> {
    check(config, &policy, env.spec())?;
    let (num_envs, num_steps, num_updates) = (config.num_envs, config.num_steps, config.num_updates());
    let obs_len = env.spec().obs_len();
    let num_actions = env.spec().actions.len();
    let state_len = policy.state_len();
    let spec = env.spec().clone();
    let bad = |e: CheckpointError| PpoError::Resume(e.0);

    let mut agent = policy.train();
    let mut optimizer: ModuleOptimizer = AdamConfig::new().with_epsilon(config.adam_epsilon).init();
    let progress: Option<RecurrentProgress> =
        resume.map(|f| f.get(RECURRENT_PROGRESS_SECTION)).transpose().map_err(bad)?;
    if let (Some(file), Some(p)) = (resume, &progress) {
        if p.ppo.config != *config {
            return Err(PpoError::Resume(
                "the training state was written with other PPO settings than this run's".into(),
            ));
        }
        if p.ppo.update > num_updates
            || p.ppo.logs.len() != p.ppo.update
            || p.state.len() != num_envs * state_len
            || p.starts.len() != num_envs
        {
            return Err(PpoError::Resume(format!(
                "the training state is at update {} of {num_updates} with {} logs and a state of {} floats for {num_envs} envs × {state_len}",
                p.ppo.update,
                p.ppo.logs.len(),
                p.state.len()
            )));
        }
        agent = file.restore_model(agent).map_err(bad)?;
        optimizer = optimizer.load_record(file.optimizer().map_err(bad)?);
    }
    let mut envs = match &progress {
        Some(p) => VecEnv::restore(env, streams, 0, &p.ppo.envs).map_err(PpoError::Resume)?,
        None => VecEnv::new(env, streams, 0, num_envs),
    };
    let mut action_rng = streams.stream("actions");
    let mut minibatch_rng = streams.stream("minibatch");
    let mut logs: Vec<UpdateLog> = Vec::with_capacity(num_updates.min(4096));
    let mut global_step = 0u64;
    let mut first_update = 1;
    let mut state = vec![0.0f32; num_envs * state_len];
    let mut next_start = vec![true; num_envs];
    if let Some(p) = progress {
        action_rng.set_word_pos(p.ppo.action_rng);
        minibatch_rng.set_word_pos(p.ppo.minibatch_rng);
        global_step = p.ppo.global_step;
        first_update = p.ppo.update + 1;
        logs = p.ppo.logs;
        state = p.state;
        next_start = p.starts;
    }
    let resumed_at_step = global_step;
    let (device, eval_device) = (cpu_autodiff(), cpu());

    // Rollout storage, `[num_steps, num_envs]` row-major.
    let batch_size = config.batch_size();
    let mut obs = vec![0.0f32; batch_size * obs_len];
    let mut starts = vec![false; batch_size];
    let mut actions = vec![0usize; batch_size];
    let mut logprobs = vec![0.0f32; batch_size];
    let mut rewards = vec![0.0f32; batch_size];
    let mut ended = vec![false; batch_size];
    let mut values = vec![0.0f32; batch_size];
    let envs_per_minibatch = num_envs / config.num_minibatches;

    let mut last_good = agent.clone();
    let start = Instant::now();
    let diverged =
        |update, what: String, model, logs| PpoError::Diverged(Box::new(Diverged { update, what, model, logs }));

    for update in first_update..=num_updates {
        let learning_rate = if config.anneal_lr {
            (1.0 - (update - 1) as f64 / num_updates as f64) * config.learning_rate
        } else {
            config.learning_rate
        };

        // ---- Rollout, carrying every env's state.
        let actor = agent.valid();
        let rollout_state = state.clone();
        let mut finished: Vec<EpisodeStats> = Vec::new();
        for step in 0..num_steps {
            global_step += num_envs as u64;
            let rows = step * num_envs..(step + 1) * num_envs;
            obs[rows.start * obs_len..rows.end * obs_len].copy_from_slice(envs.obs());
            starts[rows.clone()].copy_from_slice(&next_start);
            let (logp, value, new_state) = act(&actor, envs.obs(), &next_start, &state, state_len, &eval_device);
            if let Some(bad) = logp.iter().chain(&value).find(|v| !v.is_finite()) {
                let what = format!("a policy output became {bad} in the rollout");
                return Err(diverged(update, what, last_good.clone(), logs));
            }
            for (i, row) in rows.clone().enumerate() {
                let lp = &logp[i * num_actions..(i + 1) * num_actions];
                actions[row] = sample(lp, &mut action_rng);
                logprobs[row] = lp[actions[row]];
                values[row] = value[i];
            }
            envs.step(&actions[rows.clone()]);
            for (i, row) in rows.enumerate() {
                rewards[row] = envs.rewards()[i];
                ended[row] = envs.ends()[i].is_some();
            }
            // Truncated episodes: + γ·V(terminal observation, seen from the state they reached).
            let truncated: Vec<usize> = (0..num_envs).filter(|&i| envs.ends()[i] == Some(End::Truncated)).collect();
            if !truncated.is_empty() {
                let (mut terminal, mut terminal_state) = (Vec::new(), Vec::new());
                for &i in &truncated {
                    terminal.extend_from_slice(&envs.terminal_obs()[i * obs_len..(i + 1) * obs_len]);
                    terminal_state.extend_from_slice(&new_state[i * state_len..(i + 1) * state_len]);
                }
                let no_starts = vec![false; truncated.len()];
                let (_, v, _) = act(&actor, &terminal, &no_starts, &terminal_state, state_len, &eval_device);
                for (k, &i) in truncated.iter().enumerate() {
                    rewards[step * num_envs + i] += config.gamma * v[k];
                }
            }
            for (i, s) in next_start.iter_mut().enumerate() {
                *s = envs.ends()[i].is_some();
            }
            state = new_state;
            finished.extend(envs.finished().iter().map(|(_, stats)| *stats));
        }
        last_good = agent.clone();

        // ---- Advantages, bootstrapped from V(next observation) under the carried state.
        let next_value = act(&actor, envs.obs(), &next_start, &state, state_len, &eval_device).1;
        let advantages = gae(&rewards, &values, &ended, &next_value, num_envs, config.gamma, config.gae_lambda);
        let returns: Vec<f32> = advantages.iter().zip(&values).map(|(a, v)| a + v).collect();

        // ---- Epochs over minibatches of whole env sequences.
        let mut env_order: Vec<usize> = (0..num_envs).collect();
        let mut stats = MinibatchStats::default();
        let mut epochs = 0;
        for epoch in 0..config.update_epochs {
            epochs += 1;
            env_order.shuffle(&mut minibatch_rng);
            let mut last_approx_kl = 0.0;
            for (mb, group) in env_order.chunks(envs_per_minibatch).enumerate() {
                // Rows of the group, time-major: row `t·G + j` is env `group[j]` at step `t`.
                let rows: Vec<usize> =
                    (0..num_steps).flat_map(|t| group.iter().map(move |&e| t * num_envs + e)).collect();
                let gather = |src: &[f32]| -> Vec<f32> { rows.iter().map(|&r| src[r]).collect() };
                let mut mb_obs = Vec::with_capacity(rows.len() * obs_len);
                for &r in &rows {
                    mb_obs.extend_from_slice(&obs[r * obs_len..(r + 1) * obs_len]);
                }
                let mb_starts: Vec<bool> = rows.iter().map(|&r| starts[r]).collect();
                let mut mb_state = Vec::with_capacity(group.len() * state_len);
                for &e in group {
                    mb_state.extend_from_slice(&rollout_state[e * state_len..(e + 1) * state_len]);
                }
                let mut mb_adv = gather(&advantages);
                if config.norm_adv {
                    normalize(&mut mb_adv);
                }
                let mb_actions: Vec<usize> = rows.iter().map(|&r| actions[r]).collect();
                let (mb_old_logprob, mb_returns, mb_old_values) =
                    (gather(&logprobs), gather(&returns), gather(&values));
                let batch = Minibatch {
                    obs: &mb_obs,
                    actions: &mb_actions,
                    old_logprob: &mb_old_logprob,
                    advantages: &mb_adv,
                    returns: &mb_returns,
                    old_values: &mb_old_values,
                };
                let (out, _) = agent.unroll(
                    Tensor::from_data(TensorData::new(mb_obs.clone(), [rows.len(), obs_len]), &device),
                    &mb_starts,
                    Tensor::from_data(TensorData::new(mb_state, [group.len(), state_len]), &device),
                );
                let (loss, scalars, logratio) = clipped_loss(out, &batch, config, &device);
                let s = to_vec(scalars.detach());
                if let Some(bad) = s.iter().find(|v| !v.is_finite()) {
                    let what = format!("the loss became {bad} at epoch {}, minibatch {}", epoch + 1, mb + 1);
                    return Err(diverged(update, what, last_good.clone(), logs));
                }
                last_approx_kl = stats.add(&s, &to_vec(logratio.detach()), config.clip_coef);
                let mut grads = GradientsParams::from_grads(loss.backward(), &agent);
                let norm = clip_grad_norm(&mut grads, &agent, config.max_grad_norm);
                stats.grad_norm += f64::from(norm);
                agent = optimizer.step(learning_rate, agent, grads);
            }
            if config.target_kl.is_some_and(|kl| last_approx_kl > f64::from(kl)) {
                break;
            }
        }

        logs.push(UpdateLog {
            update,
            global_step,
            learning_rate,
            explained_variance: explained_variance(&values, &returns),
            epochs,
            sps: (global_step - resumed_at_step) as f64 / start.elapsed().as_secs_f64().max(1e-9),
            episodes: EpisodeSummary::from_episodes(&spec, &finished),
            ..stats.into_log()
        });
        let save = |file: &mut StateFile| -> Result<(), CheckpointError> {
            file.put_model(&agent)?;
            file.put_optimizer(optimizer.to_record())?;
            let progress = RecurrentProgress {
                ppo: PpoProgress {
                    config: config.clone(),
                    update,
                    global_step,
                    action_rng: action_rng.get_word_pos(),
                    minibatch_rng: minibatch_rng.get_word_pos(),
                    envs: envs.snapshot(),
                    logs: logs.clone(),
                },
                state: state.clone(),
                starts: next_start.clone(),
            };
            file.put(RECURRENT_PROGRESS_SECTION, &progress)
        };
        if on_update(logs.last().expect("just pushed"), &agent, &save).is_break() {
            return Ok(Trained { model: agent.clone(), logs, stopped_early: update < num_updates });
        }
    }
    Ok(Trained { model: agent, logs, stopped_early: false })
}

/// One step of `n = starts.len()` envs without gradients: log-probabilities `[n, actions]`,
/// values `[n]` and the new state `[n, state_len]`.
fn act<P: RecurrentActorCritic>(
    policy: &P,
    obs: &[f32],
    starts: &[bool],
    state: &[f32],
    state_len: usize,
    device: &Device,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = starts.len();
    let obs = Tensor::from_data(TensorData::new(obs.to_vec(), [n, obs.len() / n]), device);
    let state = Tensor::from_data(TensorData::new(state.to_vec(), [n, state_len]), device);
    let (out, next) = policy.unroll(obs, starts, state);
    (to_vec(log_softmax(out.logits, 1)), to_vec(out.value), to_vec(next))
}

/// Plays exactly `episodes_per_env` episodes in every slot of `envs` with the recurrent `policy`
/// (no gradients), each episode from the zero state, actions from `rng` (conventionally
/// `streams.stream("eval-actions")`). The recurrent twin of [`crate::rollout::evaluate`], with its
/// fixed per-slot quota (so short episodes are not favoured).
pub fn evaluate_recurrent<E: Env, P: RecurrentActorCritic>(
    policy: &P,
    envs: &mut VecEnv<E>,
    episodes_per_env: usize,
    selection: ActionSelection,
    rng: &mut StreamRng,
) -> Result<Evaluation, String> {
    let spec = envs.env().spec().clone();
    if policy.obs_len() != spec.obs_len() || policy.num_actions() != spec.actions.len() {
        return Err(format!("the recurrent policy does not fit {}", spec.name));
    }
    let policy = policy.valid();
    let (n, k, state_len) = (envs.len(), spec.actions.len(), policy.state_len());
    let device = cpu();
    let mut per_slot: Vec<Vec<EpisodeStats>> = vec![Vec::new(); n];
    let mut state = vec![0.0f32; n * state_len];
    let mut starts = vec![true; n];
    let mut actions = vec![0usize; n];
    while per_slot.iter().any(|s| s.len() < episodes_per_env) {
        let (logp, _, next) = act(&policy, envs.obs(), &starts, &state, state_len, &device);
        for (row, a) in logp.chunks_exact(k).zip(actions.iter_mut()) {
            *a = match selection {
                ActionSelection::Sample => sample(row, rng),
                ActionSelection::Greedy => argmax(row),
            };
        }
        envs.step(&actions);
        state = next;
        for (i, s) in starts.iter_mut().enumerate() {
            *s = envs.ends()[i].is_some();
        }
        for (slot, stats) in envs.finished() {
            if per_slot[*slot].len() < episodes_per_env {
                per_slot[*slot].push(*stats);
            }
        }
    }
    let episodes: Vec<EpisodeStats> = per_slot.into_iter().flatten().collect();
    let summary = EpisodeSummary::from_episodes(&spec, &episodes);
    Ok(Evaluation { episodes, summary })
}
