//! Environments with training and deployment level distributions, intended vs proxy outcomes.
//! No tensors, no NN framework — ever.
//!
//! - [`actor`]: [`Actor`], whatever chooses actions (trained policy, scripted baseline, random).
//! - [`api`]: the [`Env`] trait, [`Step`], [`End`], [`Events`], [`EnvSpec`].
//! - [`episode`]: per-episode accumulation ([`EpisodeStats`]) and the [`AutoReset`] wrapper.
//! - [`vec_env`]: [`VecEnv`], N auto-resetting envs stepped into flat buffers.
//! - [`params`] + [`registry`]: named level distributions (`train`, `deploy`) with `--set` overrides,
//!   envs by versioned name, type-erased as [`AnyEnv`].
//! - [`grid`]: shared grid machinery (BFS, one-hot observations, full/egocentric views, renders).
//! - [`scripted`]: scripted baselines per env, an intended-goal oracle and a proxy-goal policy.
//! - Environments: [`coin_corridor`], [`cheese_maze`], [`keys_chests`], [`monster_shield`],
//!   [`sokoban`] (small Boxoban-style levels with an exact solver);
//!   [`gridworlds`] (AI Safety Gridworlds: boat race, tomato watering, absent supervisor); [`cartpole`];
//!   [`t_maze`] (a memory task: the cue is seen once, so memoryless policies are at chance).

pub mod actor;
pub mod any;
pub mod api;
pub mod cartpole;
pub mod cheese_maze;
pub mod coin_corridor;
pub mod episode;
pub mod error;
pub mod grid;
pub mod gridworlds;
pub mod keys_chests;
pub mod monster_shield;
pub mod params;
pub mod registry;
pub mod scripted;
pub mod sokoban;
pub mod t_maze;
pub mod vec_env;

pub use actor::{Actor, OnAny, PerState, StateActor, UniformRandom};
pub use any::{AnyEnv, AnyState};
pub use api::{End, Env, EnvSpec, Events, Step, SvgGeometry};
pub use episode::{AutoReset, EpisodeStats, SlotSnapshot};
pub use error::EnvError;
pub use params::EnvParams;
pub use vec_env::VecEnv;
