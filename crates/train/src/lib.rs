//! mesalab-train: base optimizers — the outer optimizers that produce (mesa-)optimizers.
//!
//! - [`supervised`]: Adam on a differentiable loss (the base optimizer of `icl-gd`).
//! - [`ppo`]: PPO on a reward over a [`mesalab_envs::VecEnv`] (the base optimizer of the RL
//!   experiments), CleanRL-style in one file, plus [`ppo::evaluate`] for any split.

pub mod ppo;
pub mod supervised;
