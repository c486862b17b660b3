//! From config text to a validated plan, before anything is written anywhere.
//!
//! Order of precedence (later wins): defaults in code < the config file < its `[quick]` table
//! (with `--quick`) < `--set` overrides < `--seed` / `--seeds`.

use crate::registry::{Loaded, Runner, runner_of};
use crate::resources::{self, Estimate, MemoryLimit};
use mesalab_core::config::{ConfigError, Override};

/// CLI options that shape a plan.
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    pub seed: Option<u64>,
    pub seeds: Option<u64>,
    pub quick: bool,
}

/// A validated experiment run, ready to execute.
pub struct Plan {
    /// Name shown in the store and reports: the shipped experiment's name or the config's runner.
    pub experiment: String,
    pub runner: &'static Runner,
    pub config: Box<dyn Loaded>,
    /// The fully resolved config, as TOML (written to the run directory and the store).
    pub resolved_toml: String,
    pub seeds: Vec<u64>,
    pub quick: bool,
    /// Threads the run may use (independent seeds side by side; results do not depend on it).
    /// 1 unless the caller sets it.
    pub threads: usize,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("experiment", &self.experiment)
            .field("runner", &self.runner.name)
            .field("seeds", &self.seeds)
            .field("quick", &self.quick)
            .finish_non_exhaustive()
    }
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
        let config = runner.load(origin, text, &all, opts.quick)?;
        let resolved_toml = config.resolved_toml().map_err(|e| ConfigError {
            origin: origin.to_string(),
            line: None,
            key: None,
            message: format!("cannot write the resolved config: {e}"),
            suggestion: None,
        })?;
        Ok(Plan {
            experiment: runner.name.to_string(),
            runner,
            seeds: config.seeds(),
            config,
            resolved_toml,
            quick: opts.quick,
            threads: 1,
        })
    }

    /// The run's estimated peak memory and planned work, from the resolved config alone. With
    /// `threads` > 1, PPO seeds train side by side, so their training step
    /// ([`resources::SEED_TRAINING`]) is counted once per job.
    pub fn estimate(&self) -> anyhow::Result<Estimate> {
        let mut estimate = self.config.estimate()?;
        let side_by_side = self.threads.min(self.seeds.len()).max(1);
        let training: Vec<resources::Part> = (estimate.parts.iter())
            .filter(|p| p.phase == resources::Phase::Step(resources::SEED_TRAINING))
            .cloned()
            .collect();
        if side_by_side > 1 && !training.is_empty() {
            let more = side_by_side as u64 - 1;
            for p in training {
                let what = format!("{} (× {more} more seeds training side by side)", p.what);
                let mut extra = resources::Part::new(
                    resources::Phase::Step(resources::SEED_TRAINING),
                    what,
                    p.bytes.times(more),
                    &[],
                );
                extra.keys = std::iter::once(format!("threads = {side_by_side}")).chain(p.keys).collect();
                estimate.parts.push(extra);
            }
        }
        Ok(estimate)
    }

    /// The estimate, or a refusal naming the parameters that drive the size when its peak exceeds
    /// `limit` (or overflows). Call it before the store is opened or the run directory exists:
    /// a refused run writes nothing.
    pub fn check_memory(&self, limit: &MemoryLimit) -> anyhow::Result<Estimate> {
        let estimate = self.estimate()?;
        resources::check(&estimate, limit)?;
        Ok(estimate)
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
        let c: &crate::icl_gd::Config = p.config.as_any().downcast_ref().unwrap();
        assert_eq!(c.train.steps, 50);
        let p = plan(text, &["train.steps=7"], PlanOptions { quick: true, seed: Some(5), seeds: Some(2) }).unwrap();
        let c: &crate::icl_gd::Config = p.config.as_any().downcast_ref().unwrap();
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

    #[test]
    fn seed_counts_beyond_a_seed_list_abort_are_refused() {
        // Found by fuzzing: `--seeds 10^15` aborted allocating the plan's seed list (exit 134).
        for text in ["experiment = \"icl-gd\"\n", "experiment = \"coin-corridor\"\n"] {
            for seeds in [crate::experiment::MAX_SEEDS + 1, 1_000_000_000_000_000, u64::MAX] {
                let e = plan(text, &[], PlanOptions { seeds: Some(seeds), ..Default::default() }).unwrap_err();
                assert_eq!(e.key.as_deref(), Some("run.seeds"), "{text}: {e}");
            }
            let ok = plan(text, &[], PlanOptions { seeds: Some(crate::experiment::MAX_SEEDS), ..Default::default() });
            assert_eq!(ok.unwrap().seeds.len() as u64, crate::experiment::MAX_SEEDS);
        }
    }
}
