//! From config text to a validated plan, before anything is written anywhere.
//!
//! Order of precedence (later wins): defaults in code < the config file < its `[quick]` table
//! (with `--quick`) < `--set` overrides < `--seed` / `--seeds`.

use crate::icl_gd;
use crate::registry::{Runner, flatten_table, runner_of};
use mesalab_core::config::{self, ConfigError, Override};

/// CLI options that shape a plan.
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    pub seed: Option<u64>,
    pub seeds: Option<u64>,
    pub quick: bool,
}

/// A loaded config per runner.
#[derive(Clone, Debug)]
pub enum LoadedConfig {
    IclGd(icl_gd::Config),
}

/// A validated experiment run, ready to execute.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Name shown in the store and reports: the shipped experiment's name or the config's runner.
    pub experiment: String,
    pub runner: Runner,
    pub config: LoadedConfig,
    /// The fully resolved config, as TOML (written to the run directory and the store).
    pub resolved_toml: String,
    pub seeds: Vec<u64>,
    pub quick: bool,
}

impl Plan {
    /// Loads and validates `text` (read from `origin`).
    pub fn new(origin: &str, text: &str, overrides: &[Override], opts: &PlanOptions) -> Result<Plan, ConfigError> {
        let runner = runner_of(origin, text)?;
        let mut all: Vec<Override> = overrides.to_vec();
        if let Some(seed) = opts.seed {
            all.push(Override { key: "run.seed".into(), raw: seed.to_string() });
        }
        if let Some(seeds) = opts.seeds {
            all.push(Override { key: "run.seeds".into(), raw: seeds.to_string() });
        }
        match runner {
            Runner::IclGd => {
                let mut cfg: icl_gd::Config = config::load(origin, text, &all)?;
                if opts.quick {
                    let mut quick = Vec::new();
                    flatten_table("", &cfg.quick, &mut quick);
                    quick.extend(all.iter().cloned());
                    cfg = config::load(origin, text, &quick)?;
                }
                let seeds = (0..cfg.run.seeds).map(|i| cfg.run.seed + i).collect();
                let resolved_toml = toml::to_string(&cfg).map_err(|e| ConfigError {
                    origin: origin.to_string(),
                    line: None,
                    key: None,
                    message: format!("cannot write the resolved config: {e}"),
                    suggestion: None,
                })?;
                Ok(Plan {
                    experiment: String::new(),
                    runner,
                    config: LoadedConfig::IclGd(cfg),
                    resolved_toml,
                    seeds,
                    quick: opts.quick,
                })
            }
        }
        .map(|mut p: Plan| {
            p.experiment = runner.name().to_string();
            p
        })
    }

    /// Names the plan after a shipped experiment (e.g. `icl-gd-2layer`).
    pub fn named(mut self, name: &str) -> Self {
        self.experiment = name.to_string();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str, sets: &[&str], opts: PlanOptions) -> Result<Plan, ConfigError> {
        let ovs: Vec<Override> = sets.iter().map(|s| Override::parse(s).unwrap()).collect();
        Plan::new("t.toml", text, &ovs, &opts)
    }

    #[test]
    fn precedence_quick_then_set_then_seed_flags() {
        let text = "experiment = \"icl-gd\"\n[train]\nsteps = 50\n[quick]\ntrain.steps = 10\neval.fit_tasks = 200\n";
        let p = plan(text, &[], PlanOptions::default()).unwrap();
        let LoadedConfig::IclGd(c) = &p.config;
        assert_eq!(c.train.steps, 50);
        let p = plan(text, &["train.steps=7"], PlanOptions { quick: true, seed: Some(5), seeds: Some(2) }).unwrap();
        let LoadedConfig::IclGd(c) = &p.config;
        assert_eq!((c.train.steps, c.eval.fit_tasks), (7, 200));
        assert_eq!(p.seeds, vec![5, 6]);
        assert!(p.resolved_toml.contains("steps = 7"));
    }

    #[test]
    fn invalid_values_are_errors_naming_the_key() {
        let text = "experiment = \"icl-gd\"\n";
        for (set, key) in [
            ("task.d=0", "task.d"),
            ("task.n_context=0", "task.n_context"),
            ("train.learning_rate=-1e-3", "train.learning_rate"),
            ("task.x_dist=cauchy", "task.x_dist"),
            ("model.layrs=2", "model.layrs"),
        ] {
            let e = plan(text, &[set], PlanOptions::default()).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{set}: {e}");
            assert!(e.origin.starts_with("--set"), "{e}");
        }
        let e = plan("experiment = \"icl-gd\"\n[task]\nd = 0\n", &[], PlanOptions::default()).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(3), Some("task.d")));
        let e = plan(text, &["model.layrs=2"], PlanOptions::default()).unwrap_err();
        assert_eq!(e.suggestion.as_deref(), Some("layers"));
        let e = plan(text, &[], PlanOptions { seeds: Some(0), ..Default::default() }).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("run.seeds"));
    }
}
