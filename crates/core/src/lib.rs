//! mesalab-core: the pieces every other crate shares and that need neither I/O nor tensors.
//!
//! - [`rng`]: one experiment seed split into independent, named random streams.
//! - [`config`]: TOML configs with `--set` overrides and errors that name file, line, key and the
//!   closest valid key.
//! - [`suggest`]: "did you mean" helpers for names (experiments, envs, hooks).

pub mod config;
pub mod rng;
pub mod suggest;

pub use rng::{Seed, StreamRng, Streams};
