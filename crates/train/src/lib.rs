//! mesalab-train: base optimizers — the outer optimizers that produce (mesa-)optimizers.
//!
//! - [`supervised`]: Adam on a differentiable loss (the base optimizer of `icl-gd`).
//! - [`lm`]: supervised completion loss, batched sampling and REINFORCE-with-KL for the
//!   transformer language model.
//! - [`ppo`]: PPO on a reward over a [`mesalab_envs::VecEnv`] (the base optimizer of the RL
//!   experiments), CleanRL-style in one file.
//! - [`checkpoint`]: resumable training states (model, optimizer, counters, RNG positions, env
//!   snapshots) in one atomically written file.
//! - [`rollout`]: the one episode loop ([`rollout::play`]) for any [`mesalab_envs::Actor`] — trained
//!   policies ([`rollout::PolicyActor`]), scripted baselines, random — and [`rollout::evaluate`].

pub mod checkpoint;
pub mod inspect;
pub mod lm;
pub mod ppo;
pub mod rollout;
pub mod supervised;
