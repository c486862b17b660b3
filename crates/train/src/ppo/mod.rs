//! PPO (Schulman et al. 2017), discrete actions, in the CleanRL `ppo.py` tradition.
//!
//! Read top to bottom: hyperparameters ([`PpoConfig`], defaults = CleanRL's), what each update
//! logs ([`UpdateLog`]), then [`train`]: rollout over a [`VecEnv`] → GAE → minibatch epochs of the
//! clipped objective → log. Helpers follow ([`gae`], [`clip_grad_norm`], [`evaluate`]). The loop
//! is written once over a [`Learner`] (`learner.rs`), which holds the arithmetic: the policy's
//! forward pass, the loss and its gradient, Adam — burn's for any policy ([`BurnLearner`]) or the
//! fused kernels for MLPs ([`FusedLearner`], chosen by [`PpoConfig::kernel`]).
//!
//! Differences from CleanRL, all deliberate:
//! - Time-limit truncation bootstraps: when an episode ends with `End::Truncated`, the reward of
//!   that step gets `+ γ·V(terminal observation)` (the VecEnv keeps the terminal observation), and
//!   the GAE trace is cut there. `End::Terminated` never bootstraps. (CleanRL treats both as done.)
//! - Randomness comes from named streams of one seed: actions from `"actions"`, minibatch shuffles
//!   from `"minibatch"`, env slot `i` from `indexed("env", i)`; the caller initialises the policy
//!   from `"init"`. Same seed ⇒ identical logs (except the wall-clock field `sps`).
//! - A non-finite loss or logit stops training with [`PpoError::Diverged`], which carries the model
//!   from the start of the failing update and every log so far.
//!
//! Recurrent policies train with [`train_recurrent`] (`recurrent.rs`, CleanRL `ppo_atari_lstm`):
//! the same loss, GAE and logs over whole env sequences with the hidden state carried.
//!
//! Like CleanRL, the policy/value losses, entropy and KL estimates are per minibatch; this file logs
//! their mean over all minibatches of the update (CleanRL logs the last minibatch's), and `clipfrac`
//! as CleanRL (mean over all minibatches).

use crate::checkpoint::{CheckpointError, StateFile};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use mesalab_core::Streams;
use mesalab_core::config::{Invalid, Validate};
use mesalab_envs::{End, Env, EnvSpec, EpisodeStats, SlotSnapshot, VecEnv};
use mesalab_nn::policy::Policy;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;
use std::time::Instant;

mod learner;
mod recurrent;

pub use crate::rollout::{ActionSelection, Evaluation, evaluate};
pub use learner::{
    BurnLearner, FUSED_ADAM_SECTION, FusedLearner, Learner, LossReport, Minibatch, burn_minibatch_loss, clipped_loss,
};
pub use recurrent::{RECURRENT_PROGRESS_SECTION, RecurrentProgress, evaluate_recurrent, train_recurrent};

/// PPO hyperparameters. Defaults are CleanRL `ppo.py`'s (CartPole).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpoConfig {
    /// Parallel environments in the rollout VecEnv.
    pub num_envs: usize,
    /// Steps per environment per rollout; the batch is `num_envs * num_steps` transitions.
    pub num_steps: usize,
    /// Environment steps (over all envs) to train for; runs `total_timesteps / batch` updates.
    pub total_timesteps: u64,
    /// Adam learning rate (at the first update when annealed).
    pub learning_rate: f64,
    /// Anneal the learning rate linearly to 0 over the updates.
    pub anneal_lr: bool,
    /// Discount factor γ, in [0, 1].
    pub gamma: f32,
    /// GAE λ, in [0, 1].
    pub gae_lambda: f32,
    /// Minibatches per epoch; must divide the batch.
    pub num_minibatches: usize,
    /// Passes over the batch per update (K epochs).
    pub update_epochs: usize,
    /// Normalise advantages per minibatch (zero mean, unit std).
    pub norm_adv: bool,
    /// Surrogate clipping ε (also the value clipping range when `clip_vloss`).
    pub clip_coef: f32,
    /// Clip the value loss around the rollout's values (PPO2 / CleanRL).
    pub clip_vloss: bool,
    /// Entropy bonus coefficient.
    pub ent_coef: f32,
    /// Value loss coefficient.
    pub vf_coef: f32,
    /// Global gradient-norm clip over all parameters (PyTorch `clip_grad_norm_`); 0 disables.
    pub max_grad_norm: f32,
    /// Stop the update's epochs early when the approximate KL exceeds this (CleanRL: off).
    pub target_kl: Option<f32>,
    /// Adam ε. CleanRL sets 1e-5 explicitly (PyTorch's default is 1e-8).
    pub adam_epsilon: f32,
    /// Which arithmetic trains the policy: `auto` (fused kernels for MLP policies, burn for the
    /// rest) or `burn` (burn's tensors and autodiff for every policy). The two compute the same
    /// function to float rounding (tested), not bit for bit, so seeds give other trajectories.
    pub kernel: Kernel,
}

/// How PPO computes forward passes, gradients and Adam steps (see [`PpoConfig::kernel`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kernel {
    /// [`FusedLearner`] for MLP policies ([`Policy::as_mlp`]), [`BurnLearner`] otherwise.
    #[default]
    Auto,
    /// [`BurnLearner`] for every policy.
    Burn,
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            num_envs: 4,
            num_steps: 128,
            total_timesteps: 500_000,
            learning_rate: 2.5e-4,
            anneal_lr: true,
            gamma: 0.99,
            gae_lambda: 0.95,
            num_minibatches: 4,
            update_epochs: 4,
            norm_adv: true,
            clip_coef: 0.2,
            clip_vloss: true,
            ent_coef: 0.01,
            vf_coef: 0.5,
            max_grad_norm: 0.5,
            target_kl: None,
            adam_epsilon: 1e-5,
            kernel: Kernel::Auto,
        }
    }
}

impl PpoConfig {
    /// Transitions per update: `num_envs * num_steps`.
    pub fn batch_size(&self) -> usize {
        self.num_envs * self.num_steps
    }
    /// Transitions per gradient step.
    pub fn minibatch_size(&self) -> usize {
        self.batch_size() / self.num_minibatches.max(1)
    }
    /// Number of updates: `total_timesteps / batch_size` (rounded down).
    pub fn num_updates(&self) -> usize {
        (self.total_timesteps / self.batch_size().max(1) as u64) as usize
    }
}

impl Validate for PpoConfig {
    fn validate(&self) -> Result<(), Invalid> {
        let finite_at_least = |key: &str, v: f64, min: f64, strict: bool| {
            let ok = v.is_finite() && if strict { v > min } else { v >= min };
            if ok {
                Ok(())
            } else {
                Err(Invalid::new(key, format!("must be {} {min}, got {v}", if strict { ">" } else { ">=" })))
            }
        };
        if self.num_envs == 0 {
            return Err(Invalid::new("num_envs", "must be at least 1"));
        }
        if self.num_steps == 0 {
            return Err(Invalid::new("num_steps", "must be at least 1"));
        }
        if self.num_envs.checked_mul(self.num_steps).is_none() {
            return Err(Invalid::new(
                "num_steps",
                format!("the batch num_envs {} × num_steps {} overflows", self.num_envs, self.num_steps),
            ));
        }
        if self.num_minibatches == 0 || !self.batch_size().is_multiple_of(self.num_minibatches) {
            return Err(Invalid::new(
                "num_minibatches",
                format!(
                    "must divide the batch of {} transitions (num_envs {} × num_steps {}), got {}",
                    self.batch_size(),
                    self.num_envs,
                    self.num_steps,
                    self.num_minibatches
                ),
            ));
        }
        if self.update_epochs == 0 {
            return Err(Invalid::new("update_epochs", "must be at least 1"));
        }
        if self.num_updates() == 0 {
            return Err(Invalid::new(
                "total_timesteps",
                format!("{} is less than one batch ({} transitions)", self.total_timesteps, self.batch_size()),
            ));
        }
        finite_at_least("learning_rate", self.learning_rate, 0.0, true)?;
        for (key, v) in [("gamma", self.gamma), ("gae_lambda", self.gae_lambda)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Invalid::new(key, format!("must be in [0, 1], got {v}")));
            }
        }
        finite_at_least("clip_coef", self.clip_coef.into(), 0.0, true)?;
        if !self.ent_coef.is_finite() {
            return Err(Invalid::new("ent_coef", format!("must be finite, got {}", self.ent_coef)));
        }
        finite_at_least("vf_coef", self.vf_coef.into(), 0.0, false)?;
        finite_at_least("max_grad_norm", self.max_grad_norm.into(), 0.0, false)?;
        if let Some(kl) = self.target_kl {
            finite_at_least("target_kl", kl.into(), 0.0, true)?;
        }
        finite_at_least("adam_epsilon", self.adam_epsilon.into(), 0.0, true)
    }
}

/// What the episodes that finished in some window amounted to (training or evaluation).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpisodeSummary {
    /// Episodes that finished.
    pub count: usize,
    /// Mean undiscounted base return; `None` when no episode finished.
    pub mean_return: Option<f64>,
    /// Mean length in steps.
    pub mean_length: Option<f64>,
    /// Mean hidden performance (intended objective; never seen by the trainer).
    pub mean_performance: Option<f64>,
    /// Share of episodes that ended `Terminated` (the rest were `Truncated`).
    pub terminated_rate: Option<f64>,
    /// `(event, share of episodes in which it happened at least once)` for every event of the
    /// env, in spec order (empty when no episode finished).
    pub event_rates: Vec<(String, f64)>,
}

impl EpisodeSummary {
    pub fn from_episodes(spec: &EnvSpec, episodes: &[EpisodeStats]) -> Self {
        if episodes.is_empty() {
            return Self::default();
        }
        let n = episodes.len() as f64;
        let mean = |f: &dyn Fn(&EpisodeStats) -> f64| Some(episodes.iter().map(f).sum::<f64>() / n);
        Self {
            count: episodes.len(),
            mean_return: mean(&|e| e.episode_return),
            mean_length: mean(&|e| f64::from(e.length)),
            mean_performance: mean(&|e| e.performance),
            terminated_rate: mean(&|e| f64::from(u8::from(e.end == Some(End::Terminated)))),
            event_rates: (spec.events.iter().enumerate())
                .map(|(i, name)| (name.to_string(), episodes.iter().filter(|e| e.happened(i)).count() as f64 / n))
                .collect(),
        }
    }
}

/// What one PPO update logs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpdateLog {
    /// 1-based update number.
    pub update: usize,
    /// Environment steps taken so far over all envs (after this update's rollout).
    pub global_step: u64,
    /// Learning rate used by this update.
    pub learning_rate: f64,
    /// Clipped surrogate loss (mean over minibatches).
    pub policy_loss: f32,
    /// Value loss, including the ½ (mean over minibatches).
    pub value_loss: f32,
    /// Policy entropy in nats (mean over minibatches).
    pub entropy: f32,
    /// `mean(−log r)` (mean over minibatches).
    pub old_approx_kl: f32,
    /// `mean((r − 1) − log r)`, Schulman's unbiased low-variance KL estimator (mean over minibatches).
    pub approx_kl: f32,
    /// Share of samples whose ratio left `[1 − ε, 1 + ε]` (mean over minibatches).
    pub clipfrac: f32,
    /// `1 − Var(returns − values) / Var(returns)` over the batch; NaN when returns are constant.
    pub explained_variance: f32,
    /// Global gradient norm before clipping (mean over minibatches).
    pub grad_norm: f32,
    /// Epochs run (fewer than `update_epochs` when `target_kl` stopped the update).
    pub epochs: usize,
    /// Environment steps per second since training began (wall clock: not reproducible).
    pub sps: f64,
    /// Episodes that finished during this update's rollout.
    pub episodes: EpisodeSummary,
}

/// Training stopped because a loss or a logit stopped being finite.
#[derive(Debug)]
pub struct Diverged<P> {
    /// The update in which it happened (1-based).
    pub update: usize,
    /// What became non-finite (e.g. `loss = NaN at epoch 2, minibatch 3`).
    pub what: String,
    /// The model at the start of the last update whose rollout was finite (the initial model if
    /// the first rollout already failed).
    pub model: P,
    /// Every completed update's log.
    pub logs: Vec<UpdateLog>,
}

/// Why [`train`] failed.
#[derive(Debug, thiserror::Error)]
pub enum PpoError<P: std::fmt::Debug> {
    #[error("invalid PPO hyperparameter `{}`: {}", .0.key, .0.message)]
    Config(Invalid),
    #[error("policy does not fit the env: {0}")]
    Incompatible(String),
    #[error("cannot resume PPO: {0}")]
    Resume(String),
    #[error(
        "PPO diverged in update {}: {}; returning the model from the start of that update and {} update logs (try a lower learning_rate or max_grad_norm)",
        .0.update, .0.what, .0.logs.len()
    )]
    Diverged(Box<Diverged<P>>),
}

/// The result of [`train`].
#[derive(Debug)]
pub struct Trained<P> {
    pub model: P,
    pub logs: Vec<UpdateLog>,
    /// The callback asked to stop before the last update.
    pub stopped_early: bool,
}

/// Checks that `policy` reads this env's observations and chooses among its actions.
pub fn check_compatible<P: Policy>(policy: &P, spec: &EnvSpec) -> Result<(), String> {
    if policy.obs_len() != spec.obs_len() {
        return Err(format!(
            "the policy reads {} floats per observation but {} observations are {:?} = {} floats",
            policy.obs_len(),
            spec.name,
            spec.obs_shape,
            spec.obs_len()
        ));
    }
    if policy.num_actions() != spec.actions.len() {
        return Err(format!(
            "the policy has {} actions but {} has {} ({:?})",
            policy.num_actions(),
            spec.name,
            spec.actions.len(),
            spec.actions
        ));
    }
    Ok(())
}

/// Trains `policy` (initialised by the caller, conventionally from `streams.stream("init")`) with
/// PPO on `config.num_envs` copies of `env`. After every update, `on_update` gets the log and the
/// current model; returning `ControlFlow::Break(())` stops training there.
pub fn train<E: Env, P: Policy>(
    config: &PpoConfig,
    env: E,
    policy: P,
    streams: &Streams,
    mut on_update: impl FnMut(&UpdateLog, &P) -> ControlFlow<()>,
) -> Result<Trained<P>, PpoError<P>> {
    train_resumable(config, env, policy, streams, None, |log, model, _| on_update(log, model))
}

/// Where PPO stands after a completed update: with the model and the optimizer state, everything
/// [`train_resumable`] needs to continue exactly as if it had never stopped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PpoProgress {
    /// The settings it was trained with; resuming under others is refused.
    pub config: PpoConfig,
    /// Completed updates.
    pub update: usize,
    pub global_step: u64,
    /// Word positions of the `actions` and `minibatch` streams.
    pub action_rng: u128,
    pub minibatch_rng: u128,
    /// The rollout envs, as the rule that regenerates them.
    pub envs: Vec<SlotSnapshot>,
    /// Every completed update's log.
    pub logs: Vec<UpdateLog>,
}

/// The section of a [`StateFile`] holding [`PpoProgress`].
pub const PROGRESS_SECTION: &str = "ppo-progress";

/// Writes the current PPO state into a [`StateFile`] (the caller adds its own sections and writes
/// the file). Handed to `on_update` by [`train_resumable`].
pub type SaveState<'a> = dyn Fn(&mut StateFile) -> Result<(), CheckpointError> + 'a;

/// [`train`], continuing from `resume` (a [`StateFile`] that a [`SaveState`] filled) when given.
/// `on_update` also gets a [`SaveState`] to checkpoint the state after this update. A resumed run
/// gives the same models, logs (except the wall-clock `sps`) and final state as an uninterrupted
/// one: the state holds the model, Adam's moments and step counts, the update counter (so the
/// annealed learning rate), the RNG streams' positions and the envs' regeneration rule.
pub fn train_resumable<E: Env, P: Policy>(
    config: &PpoConfig,
    env: E,
    policy: P,
    streams: &Streams,
    resume: Option<&StateFile>,
    on_update: impl FnMut(&UpdateLog, &P, &SaveState<'_>) -> ControlFlow<()>,
) -> Result<Trained<P>, PpoError<P>> {
    config.validate().map_err(PpoError::Config)?;
    check_compatible(&policy, env.spec()).map_err(PpoError::Incompatible)?;
    let num_updates = config.num_updates();
    let bad = |e: CheckpointError| PpoError::Resume(e.0);
    let progress: Option<PpoProgress> = resume.map(|f| f.get(PROGRESS_SECTION)).transpose().map_err(bad)?;
    if let Some(p) = &progress {
        if &p.config != config {
            return Err(PpoError::Resume(
                "the training state was written with other PPO settings than this run's".into(),
            ));
        }
        if p.update > num_updates || p.logs.len() != p.update {
            return Err(PpoError::Resume(format!(
                "the training state is at update {} of {num_updates} with {} logs",
                p.update,
                p.logs.len()
            )));
        }
    }
    let state = resume.zip(progress);
    if config.kernel == Kernel::Auto {
        // A state without the fused optimizer section was written by burn's kernels (before
        // `kernel` existed, its settings read as `auto`): say which setting resumes it.
        if resume.is_some_and(|f| f.bytes(learner::FUSED_ADAM_SECTION).is_err()) && policy.as_mlp().is_some() {
            return Err(PpoError::Resume(
                "the training state was written by burn's kernels; resume it with `--set ppo.kernel=\"burn\"`".into(),
            ));
        }
        if let Some(learner) = FusedLearner::new(policy.clone(), config, resume) {
            return run(config, env, learner.map_err(bad)?, streams, state, on_update);
        }
    }
    let learner = BurnLearner::new(policy, config, resume).map_err(bad)?;
    run(config, env, learner, streams, state, on_update)
}

/// The PPO loop of [`train_resumable`] over any [`Learner`].
fn run<E: Env, P: Policy>(
    config: &PpoConfig,
    env: E,
    mut learner: impl Learner<P>,
    streams: &Streams,
    resume: Option<(&StateFile, PpoProgress)>,
    mut on_update: impl FnMut(&UpdateLog, &P, &SaveState<'_>) -> ControlFlow<()>,
) -> Result<Trained<P>, PpoError<P>> {
    let (num_envs, num_steps) = (config.num_envs, config.num_steps);
    let (batch_size, minibatch_size, num_updates) =
        (config.batch_size(), config.minibatch_size(), config.num_updates());
    let obs_len = env.spec().obs_len();
    let num_actions = env.spec().actions.len();
    let spec = env.spec().clone();

    let mut envs = match &resume {
        Some((_, p)) => VecEnv::restore(env, streams, 0, &p.envs).map_err(PpoError::Resume)?,
        None => VecEnv::new(env, streams, 0, num_envs),
    };
    let mut action_rng = streams.stream("actions");
    let mut minibatch_rng = streams.stream("minibatch");
    // Grown as updates finish: reserving `num_updates` up front would abort on an absurd
    // `total_timesteps` before a single step ran.
    let mut logs: Vec<UpdateLog> = Vec::with_capacity(num_updates.min(4096));
    let mut global_step = 0u64;
    let mut first_update = 1;
    if let Some((_, p)) = resume {
        action_rng.set_word_pos(p.action_rng);
        minibatch_rng.set_word_pos(p.minibatch_rng);
        global_step = p.global_step;
        first_update = p.update + 1;
        logs = p.logs;
    }
    let resumed_at_step = global_step;

    // Rollout storage, `[num_steps, num_envs]` row-major (obs: `[num_steps, num_envs, obs_len]`).
    let mut obs = vec![0.0f32; batch_size * obs_len];
    let mut actions = vec![0usize; batch_size];
    let mut logprobs = vec![0.0f32; batch_size];
    let mut rewards = vec![0.0f32; batch_size];
    let mut ended = vec![false; batch_size];
    let mut values = vec![0.0f32; batch_size];
    // Minibatch storage, reused.
    let mut mb_obs = Vec::with_capacity(minibatch_size * obs_len);
    let mut mb_actions = Vec::with_capacity(minibatch_size);
    let (mut mb_old_logprob, mut mb_adv, mut mb_returns, mut mb_old_values) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());

    learner.mark_good();
    let start = Instant::now();
    let diverged =
        |update, what: String, model, logs| PpoError::Diverged(Box::new(Diverged { update, what, model, logs }));

    for update in first_update..=num_updates {
        let learning_rate = if config.anneal_lr {
            (1.0 - (update - 1) as f64 / num_updates as f64) * config.learning_rate
        } else {
            config.learning_rate
        };

        // ---- Rollout: num_steps steps of every env with the current policy (no gradients).
        learner.begin_rollout();
        let mut finished: Vec<EpisodeStats> = Vec::new();
        for step in 0..num_steps {
            global_step += num_envs as u64;
            let rows = step * num_envs..(step + 1) * num_envs;
            obs[rows.start * obs_len..rows.end * obs_len].copy_from_slice(envs.obs());
            let (logp, value) = learner.act(envs.obs(), num_envs);
            if let Some(bad) = logp.iter().chain(&value).find(|v| !v.is_finite()) {
                let what = format!("a policy output became {bad} in the rollout");
                return Err(diverged(update, what, learner.last_good(), logs));
            }
            for (i, row) in rows.clone().enumerate() {
                let lp = &logp[i * num_actions..(i + 1) * num_actions];
                actions[row] = crate::rollout::sample(lp, &mut action_rng);
                logprobs[row] = lp[actions[row]];
                values[row] = value[i];
            }
            envs.step(&actions[rows.clone()]);
            for (i, row) in rows.enumerate() {
                rewards[row] = envs.rewards()[i];
                ended[row] = envs.ends()[i].is_some();
            }
            // Truncated episodes: add γ·V(terminal observation) to the last reward (the GAE trace
            // is cut at `ended` either way, so this is the only bootstrap they get).
            let truncated: Vec<usize> = (0..num_envs).filter(|&i| envs.ends()[i] == Some(End::Truncated)).collect();
            if !truncated.is_empty() {
                let mut terminal = Vec::with_capacity(truncated.len() * obs_len);
                for &i in &truncated {
                    terminal.extend_from_slice(&envs.terminal_obs()[i * obs_len..(i + 1) * obs_len]);
                }
                let v = learner.values(&terminal, truncated.len());
                for (k, &i) in truncated.iter().enumerate() {
                    rewards[step * num_envs + i] += config.gamma * v[k];
                }
            }
            finished.extend(envs.finished().iter().map(|(_, stats)| *stats));
        }
        learner.mark_good();

        // ---- Advantages: GAE(γ, λ) bootstrapped from the value of the observation after the rollout.
        let next_value = learner.values(envs.obs(), num_envs);
        let advantages = gae(&rewards, &values, &ended, &next_value, num_envs, config.gamma, config.gae_lambda);
        let returns: Vec<f32> = advantages.iter().zip(&values).map(|(a, v)| a + v).collect();

        // ---- Optimise the clipped surrogate for update_epochs passes over shuffled minibatches.
        let mut indices: Vec<usize> = (0..batch_size).collect();
        let mut stats = MinibatchStats::default();
        let mut epochs = 0;
        for epoch in 0..config.update_epochs {
            epochs += 1;
            indices.shuffle(&mut minibatch_rng);
            let mut last_approx_kl = 0.0;
            for (mb, idx) in indices.chunks(minibatch_size).enumerate() {
                let gather = |dst: &mut Vec<f32>, src: &[f32]| {
                    dst.clear();
                    dst.extend(idx.iter().map(|&j| src[j]));
                };
                mb_obs.clear();
                mb_actions.clear();
                for &j in idx {
                    mb_obs.extend_from_slice(&obs[j * obs_len..(j + 1) * obs_len]);
                    mb_actions.push(actions[j]);
                }
                gather(&mut mb_adv, &advantages);
                if config.norm_adv {
                    normalize(&mut mb_adv);
                }
                gather(&mut mb_old_logprob, &logprobs);
                gather(&mut mb_returns, &returns);
                gather(&mut mb_old_values, &values);
                let batch = Minibatch {
                    obs: &mb_obs,
                    actions: &mb_actions,
                    old_logprob: &mb_old_logprob,
                    advantages: &mb_adv,
                    returns: &mb_returns,
                    old_values: &mb_old_values,
                };
                let report = learner.loss(&batch, config);
                if let Some(bad) = report.scalars.iter().find(|v| !v.is_finite()) {
                    let what = format!("the loss became {bad} at epoch {}, minibatch {}", epoch + 1, mb + 1);
                    return Err(diverged(update, what, learner.last_good(), logs));
                }
                last_approx_kl = stats.add(&report.scalars, &report.logratio, config.clip_coef);
                let norm = learner.apply(learning_rate, config.max_grad_norm);
                stats.grad_norm += f64::from(norm);
            }
            if config.target_kl.is_some_and(|kl| last_approx_kl > f64::from(kl)) {
                break;
            }
        }

        let log = UpdateLog {
            update,
            global_step,
            learning_rate,
            explained_variance: explained_variance(&values, &returns),
            epochs,
            sps: (global_step - resumed_at_step) as f64 / start.elapsed().as_secs_f64().max(1e-9),
            episodes: EpisodeSummary::from_episodes(&spec, &finished),
            ..stats.into_log()
        };
        logs.push(log);
        let model = learner.model();
        let save = |file: &mut StateFile| -> Result<(), CheckpointError> {
            learner.save(file)?;
            let progress = PpoProgress {
                config: config.clone(),
                update,
                global_step,
                action_rng: action_rng.get_word_pos(),
                minibatch_rng: minibatch_rng.get_word_pos(),
                envs: envs.snapshot(),
                logs: logs.clone(),
            };
            file.put(PROGRESS_SECTION, &progress)
        };
        if on_update(logs.last().expect("just pushed"), &model, &save).is_break() {
            return Ok(Trained { model, logs, stopped_early: update < num_updates });
        }
    }
    Ok(Trained { model: learner.model(), logs, stopped_early: false })
}

/// Sums of the per-minibatch statistics of one update.
#[derive(Default)]
struct MinibatchStats {
    count: usize,
    policy_loss: f64,
    value_loss: f64,
    entropy: f64,
    old_approx_kl: f64,
    approx_kl: f64,
    clipfrac: f64,
    grad_norm: f64,
}

impl MinibatchStats {
    /// Adds one minibatch (`scalars` = loss, policy loss, value loss, entropy); returns its approx KL.
    fn add(&mut self, scalars: &[f32], logratio: &[f32], clip_coef: f32) -> f64 {
        let n = logratio.len() as f64;
        let (mut old_kl, mut kl, mut clipped) = (0.0, 0.0, 0.0);
        for &lr in logratio {
            let (lr, r) = (f64::from(lr), f64::from(lr).exp());
            old_kl -= lr;
            kl += (r - 1.0) - lr;
            if (r - 1.0).abs() > f64::from(clip_coef) {
                clipped += 1.0;
            }
        }
        self.count += 1;
        self.policy_loss += f64::from(scalars[1]);
        self.value_loss += f64::from(scalars[2]);
        self.entropy += f64::from(scalars[3]);
        self.old_approx_kl += old_kl / n;
        self.approx_kl += kl / n;
        self.clipfrac += clipped / n;
        kl / n
    }

    /// The means, in an otherwise empty log.
    fn into_log(self) -> UpdateLog {
        let m = |s: f64| (s / self.count.max(1) as f64) as f32;
        UpdateLog {
            update: 0,
            global_step: 0,
            learning_rate: 0.0,
            policy_loss: m(self.policy_loss),
            value_loss: m(self.value_loss),
            entropy: m(self.entropy),
            old_approx_kl: m(self.old_approx_kl),
            approx_kl: m(self.approx_kl),
            clipfrac: m(self.clipfrac),
            explained_variance: f32::NAN,
            grad_norm: m(self.grad_norm),
            epochs: 0,
            sps: 0.0,
            episodes: EpisodeSummary::default(),
        }
    }
}

/// In place: `(x − mean) / (std + 1e-8)` with the unbiased std, as CleanRL (`torch.std`).
fn normalize(x: &mut [f32]) {
    let n = x.len() as f64;
    let mean = x.iter().map(|v| f64::from(*v)).sum::<f64>() / n;
    let var = x.iter().map(|v| (f64::from(*v) - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    let denom = var.sqrt() + 1e-8;
    for v in x {
        *v = ((f64::from(*v) - mean) / denom) as f32;
    }
}

/// `1 − Var(y − ŷ) / Var(y)` (population variances); NaN when `Var(y) = 0`.
pub fn explained_variance(predicted: &[f32], target: &[f32]) -> f32 {
    let var = |it: &mut dyn Iterator<Item = f64>| {
        let v: Vec<f64> = it.collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64
    };
    let var_y = var(&mut target.iter().map(|y| f64::from(*y)));
    if var_y == 0.0 {
        return f32::NAN;
    }
    let var_diff = var(&mut target.iter().zip(predicted).map(|(y, p)| f64::from(*y) - f64::from(*p)));
    (1.0 - var_diff / var_y) as f32
}

/// Generalised advantage estimation (Schulman et al. 2016).
///
/// `δ_t = r_t + γ·V(s_{t+1})·(1 − ended_t) − V(s_t)`, `A_t = δ_t + γλ·(1 − ended_t)·A_{t+1}`, where
/// `ended_t` means the step taken at `t` ended the episode (its reward already holds any truncation
/// bootstrap) and `V(s_T)` is `next_value`.
///
/// # Shapes
/// - `rewards`, `values`, `ended`: `[T, N]` row-major (step-major), `next_value`: `[N]`.
/// - returns the advantages, `[T, N]`.
pub fn gae(
    rewards: &[f32],
    values: &[f32],
    ended: &[bool],
    next_value: &[f32],
    num_envs: usize,
    gamma: f32,
    gae_lambda: f32,
) -> Vec<f32> {
    let n = num_envs;
    let t_len = rewards.len() / n;
    let mut advantages = vec![0.0f32; rewards.len()];
    let mut last = vec![0.0f32; n];
    for t in (0..t_len).rev() {
        for i in 0..n {
            let k = t * n + i;
            let next = if t + 1 == t_len { next_value[i] } else { values[k + n] };
            let nonterminal = if ended[k] { 0.0 } else { 1.0 };
            let delta = rewards[k] + gamma * next * nonterminal - values[k];
            last[i] = delta + gamma * gae_lambda * nonterminal * last[i];
            advantages[k] = last[i];
        }
    }
    advantages
}

/// Scales all gradients together so that their global L2 norm is at most `max_norm` (PyTorch's
/// `clip_grad_norm_`: factor `max_norm / (norm + 1e-6)` when below 1). Returns the norm before
/// clipping. `max_norm = 0` only measures.
pub fn clip_grad_norm<M: Module>(grads: &mut GradientsParams, module: &M, max_norm: f32) -> f32 {
    struct SumSquares<'a> {
        grads: &'a GradientsParams,
        total: f64,
    }
    impl ModuleVisitor for SumSquares<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                self.total += f64::from(g.square().sum().into_scalar::<f32>());
            }
        }
    }
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f32,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                self.grads.register::<D>(param.id, g.mul_scalar(self.factor));
            }
        }
    }
    let mut sum = SumSquares { grads, total: 0.0 };
    module.visit(&mut sum);
    let norm = sum.total.sqrt() as f32;
    let factor = max_norm / (norm + 1e-6);
    if max_norm > 0.0 && factor < 1.0 {
        module.visit(&mut Scale { grads, factor });
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    use mesalab_core::Seed;
    use mesalab_nn::device::cpu_autodiff;
    use mesalab_nn::policy::{MlpPolicy, MlpPolicyConfig};

    #[test]
    fn gae_matches_hand_computation() {
        // One env, T = 3, γ = 0.5, λ = 0.5; the episode ends after step 1 (index 1).
        let rewards = [1.0, 2.0, 3.0];
        let values = [0.5, 1.0, 2.0];
        let ended = [false, true, false];
        let adv = gae(&rewards, &values, &ended, &[4.0], 1, 0.5, 0.5);
        // t=2: δ = 3 + 0.5·4 − 2 = 3;             A = 3
        // t=1: δ = 2 + 0 − 1 = 1 (ended: no bootstrap, trace cut);  A = 1
        // t=0: δ = 1 + 0.5·1 − 0.5 = 1;           A = 1 + 0.25·1 = 1.25
        assert_eq!(adv, vec![1.25, 1.0, 3.0]);
        // λ = 1, γ = 1, no ends, two envs: A_t = Σ r + V_T − V_t, env-major layout respected.
        let adv = gae(&[1.0, 10.0, 1.0, 10.0], &[0.0, 0.0, 0.0, 0.0], &[false; 4], &[5.0, 50.0], 2, 1.0, 1.0);
        assert_eq!(adv, vec![7.0, 70.0, 6.0, 60.0]);
    }

    #[test]
    fn global_grad_norm_clipping_scales_all_gradients_together() {
        let device = cpu_autodiff();
        let cfg = MlpPolicyConfig::default();
        let model = MlpPolicy::init(&cfg, 4, 2, &mut Streams::new(Seed(1)).stream("init"), &device);
        let obs = Tensor::<2>::from_data(TensorData::new((0..32).map(|i| i as f32 / 7.0).collect(), [8, 4]), &device);
        let grads_of = || {
            let out = model.forward(obs.clone());
            GradientsParams::from_grads((out.logits.sum() * 100.0 + out.value.sum() * 100.0).backward(), &model)
        };
        let read = |g: &GradientsParams| {
            let w: Tensor<2> = g.get(model.encoder[0].weight.id).unwrap();
            let b: Tensor<1> = g.get(model.value_head.bias.as_ref().unwrap().id).unwrap();
            (w.into_data().try_into_vec::<f32>().unwrap(), b.into_data().try_into_vec::<f32>().unwrap())
        };
        let mut grads = grads_of();
        let (w0, b0) = read(&grads);
        let norm = clip_grad_norm(&mut grads, &model, 0.0);
        assert!(norm > 1.0, "{norm}");
        assert_eq!(read(&grads), (w0.clone(), b0.clone()), "max_norm 0 only measures");
        let mut again = grads_of();
        assert_eq!(clip_grad_norm(&mut again, &model, 10.0 * norm), norm);
        assert_eq!(read(&again).0, w0, "a norm below the limit is left alone");
        let mut clipped = grads_of();
        clip_grad_norm(&mut clipped, &model, 0.5);
        let after = clip_grad_norm(&mut clipped, &model, 0.0);
        assert!((after - 0.5).abs() < 1e-4, "clipped global norm {after}");
        let (w1, b1) = read(&clipped);
        let factor = 0.5 / (norm + 1e-6);
        for (a, b) in w0.iter().chain(&b0).zip(w1.iter().chain(&b1)) {
            assert!((a * factor - b).abs() <= 1e-6 * a.abs().max(1.0), "{a} · {factor} vs {b}");
        }
    }

    #[test]
    fn explained_variance_and_normalize() {
        assert_eq!(explained_variance(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 1.0);
        assert_eq!(explained_variance(&[0.0, 0.0], &[1.0, 3.0]), 0.0);
        assert!(explained_variance(&[1.0, 2.0], &[2.0, 2.0]).is_nan());
        let mut x = [1.0, 2.0, 3.0];
        normalize(&mut x);
        assert!((x[0] + 1.0).abs() < 1e-6 && x[1].abs() < 1e-6 && (x[2] - 1.0).abs() < 1e-6, "{x:?}");
    }

    #[test]
    fn bad_hyperparameters_are_named() {
        let bad = |f: fn(&mut PpoConfig)| {
            let mut c = PpoConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert_eq!(bad(|c| c.num_minibatches = 3).key, "num_minibatches");
        assert!(bad(|c| c.num_minibatches = 3).message.contains("512"));
        assert_eq!(bad(|c| c.num_envs = 0).key, "num_envs");
        assert_eq!(bad(|c| c.gamma = 1.5).key, "gamma");
        assert_eq!(bad(|c| c.gae_lambda = -0.1).key, "gae_lambda");
        assert_eq!(bad(|c| c.learning_rate = -1e-3).key, "learning_rate");
        assert_eq!(bad(|c| c.learning_rate = f64::NAN).key, "learning_rate");
        assert_eq!(bad(|c| c.total_timesteps = 100).key, "total_timesteps");
        assert_eq!(bad(|c| c.update_epochs = 0).key, "update_epochs");
        // In release builds the product would wrap (to 0 here) and pass the divisibility check.
        assert_eq!(bad(|c| (c.num_envs, c.num_steps) = (1 << 33, 1 << 31)).key, "num_steps");
        assert_eq!(bad(|c| c.max_grad_norm = -1.0).key, "max_grad_norm");
        assert_eq!(bad(|c| c.target_kl = Some(0.0)).key, "target_kl");
        assert!(PpoConfig::default().validate().is_ok());
    }
}
