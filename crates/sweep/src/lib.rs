//! mesalab-sweep: many `mesalab run`s from one sweep file, on this machine or on a Slurm cluster,
//! folded into one store, reported and exported.
//!
//! - [`spec`]: sweep files (TOML): the base experiment, grid and random search over `--set` keys,
//!   seeds; validated with file:line errors.
//! - [`point`]: one point (a seed and a value per swept key), identified by a content key.
//! - [`sweep`]: the sweep directory and each point's state.
//! - [`exec`]: running one point as a `mesalab run` child process.
//! - [`executor`]: the [`executor::Executor`] trait; [`local`] (worker processes here) and
//!   [`slurm`] (`sbatch --array`).
//! - [`estimate`]: time and memory per point from measured runs.
//! - [`merge`]: folding the point stores into one store and the sweep report.
//! - [`export`]: runs, metrics and tables as CSV, JSON lines or Parquet.
//!
//! The crate never links the experiments: points run as `mesalab run` processes, so a crashing
//! point cannot take the sweep down, and the sweep builds without the NN framework.

pub mod estimate;
pub mod exec;
pub mod executor;
pub mod export;
pub mod local;
pub mod merge;
pub mod point;
pub mod slurm;
pub mod spec;
pub mod sweep;

pub use executor::{ExecSummary, Executor, run_sweep};
pub use spec::SweepSpec;
pub use sweep::{PointState, Sweep};
