//! Python bindings for mesalab: every registry env as a Gymnasium env (single and native vector)
//! and read-only access to the run store, packaged by maturin as the `mesalab` wheel.
//!
//! - [`batch`]: the stepping engine (N slots, Gymnasium autoreset modes, seeding that reproduces
//!   `mesalab_envs::VecEnv`); pure Rust, tested without Python.
//! - [`raster`]: the `rgb_array` render, rasterized from the env's own SVG render.
//! - `py` (feature `python`): the PyO3 module `mesalab._native`; the Gymnasium classes and the
//!   pandas readers are Python (`python/mesalab/`) on top of it.

pub mod batch;
pub mod raster;

#[cfg(feature = "python")]
mod py;
