//! What every experiment implements ([`ExperimentConfig`]) and the config sections every
//! experiment shares ([`RunSection`]). A leaf module: it imports no experiment and no registry, so
//! the registry can list experiments without import cycles.

use crate::context::RunContext;
use mesalab_core::config::{self, Invalid};

/// A loaded, validated config that knows how to run its experiment.
pub trait ExperimentConfig:
    serde::de::DeserializeOwned + serde::Serialize + config::Validate + Send + Sync + 'static
{
    /// The `[quick]` table: overrides `--quick` applies.
    fn quick(&self) -> &toml::Table;
    /// The seeds this config trains (`run.seed`, `run.seed + 1`, …).
    fn seeds(&self) -> Vec<u64>;
    /// The run's peak memory and planned work, from this config alone and before anything large
    /// is allocated (the CLI refuses a run whose peak exceeds the machine's memory). An error is
    /// bad input found while estimating (e.g. an env that cannot be built).
    fn estimate(&self) -> anyhow::Result<crate::resources::Estimate>;
    /// Runs the experiment; returns the experiment's part of `summary.json`.
    fn run(&self, ctx: &RunContext) -> anyhow::Result<serde_json::Value>;
    /// Recomputes the experiment's look-inside section from a finished run's checkpoints with this
    /// config's `inside` settings (`mesalab analyze`); returns the analysis as JSON.
    fn analyze(&self, ctx: &crate::context::AnalysisContext) -> anyhow::Result<serde_json::Value> {
        let _ = ctx;
        anyhow::bail!("this experiment cannot rerun its look-inside analyses from checkpoints yet")
    }
    /// The hook points of the model this config trains (untrained), with the shape each has on a
    /// batch of two inputs.
    fn hook_shapes(&self) -> anyhow::Result<Vec<mesalab_nn::interp::HookShape>> {
        anyhow::bail!("this experiment trains no model with hook points")
    }
    /// The environment of split `split` (`train` or `deploy`) exactly as this experiment trains
    /// and deploys on it (for `mesalab render` / `play --experiment`).
    fn split_env(&self, split: &str) -> anyhow::Result<mesalab_envs::AnyEnv> {
        let _ = split;
        anyhow::bail!("this experiment has no environment")
    }
}

/// The `[run]` section of every experiment.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSection {
    /// Base seed; seed i of the run is `seed + i` (for every variant).
    pub seed: u64,
    /// Independently trained models (per variant).
    pub seeds: u64,
    /// Log training curves every this many updates (PPO) or steps (supervised), and always the
    /// first and the last.
    pub log_every: usize,
    /// Save a resumable training state every this many PPO updates (and on Ctrl-C, and when
    /// training ends); `mesalab resume` continues from the last one.
    pub checkpoint_every: usize,
}

impl Default for RunSection {
    fn default() -> Self {
        Self { seed: 0, seeds: 5, log_every: 5, checkpoint_every: 10 }
    }
}

impl RunSection {
    /// `seed, seed + 1, …` (`seeds` of them).
    pub fn seed_list(&self) -> Vec<u64> {
        (0..self.seeds).map(|i| self.seed + i).collect()
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        if self.seeds == 0 {
            return Err(Invalid::new("run.seeds", "must be at least 1"));
        }
        check_seed_count(self.seeds)?;
        if self.log_every == 0 {
            return Err(Invalid::new("run.log_every", "must be at least 1"));
        }
        if self.checkpoint_every == 0 {
            return Err(Invalid::new("run.checkpoint_every", "must be at least 1"));
        }
        if self.seed.checked_add(self.seeds).is_none() {
            return Err(Invalid::new("run.seed", "seed + seeds overflows a 64-bit seed"));
        }
        Ok(())
    }
}

/// The most seeds one run trains (per variant). The seed list is built when a plan is made, so a
/// count beyond any real run must be refused before that (fuzzing found `run.seeds = 10^15`
/// aborting on allocating the list); more seeds than this belong in a sweep.
pub const MAX_SEEDS: u64 = 100_000;

/// `run.seeds` at most [`MAX_SEEDS`].
pub fn check_seed_count(seeds: u64) -> Result<(), Invalid> {
    if seeds > MAX_SEEDS {
        return Err(Invalid::new(
            "run.seeds",
            format!("must be at most {MAX_SEEDS} per run, got {seeds}; use a sweep over run.seed for more"),
        ));
    }
    Ok(())
}

/// `experiment = "…"` must name this config's experiment.
pub fn check_experiment_name(found: &str, expected: &str) -> Result<(), Invalid> {
    if found == expected {
        Ok(())
    } else {
        Err(Invalid::new("experiment", format!("this config is for `{expected}`, not `{found}`")))
    }
}

/// A share in `[0, 1]` (verdict thresholds).
pub fn check_unit(key: &str, v: f64) -> Result<(), Invalid> {
    if (0.0..=1.0).contains(&v) { Ok(()) } else { Err(Invalid::new(key, format!("must be in [0, 1], got {v}"))) }
}

/// The hook points of a recurrent policy with the shape each has on a batch of two zero
/// observations, both episode starts ([`ExperimentConfig::hook_shapes`] of the recurrent
/// experiments, so they all probe their models the same way).
pub(crate) fn recurrent_hook_shapes<P: mesalab_nn::policy::RecurrentActorCritic>(
    policy: &P,
) -> anyhow::Result<Vec<mesalab_nn::interp::HookShape>> {
    use mesalab_nn::device::cpu;
    let mut hooks = mesalab_nn::hooks::Hooks::cache_all();
    let obs = burn::tensor::Tensor::zeros([2, policy.obs_len()], &cpu()); // [batch = 2, obs_len]
    let _ = policy.unroll_hooked(obs, &[true, true], policy.zero_state(2, &cpu()), &mut hooks);
    let cache = hooks.finish()?;
    Ok((policy.hook_points().into_iter())
        .map(|point| {
            let shape = cache.get(&point.name).map(|d| d.shape().to_vec());
            mesalab_nn::interp::HookShape { name: point.name, dims: point.dims, shape }
        })
        .collect())
}

/// Writes `summary.json`'s experiment part (name, seeds, results, wall time since `started`, the
/// verdict) to the store and returns it: the one shape the hand-driven experiments share.
pub(crate) fn store_summary(
    ctx: &RunContext,
    experiment: &str,
    seeds: &[u64],
    results: &impl serde::Serialize,
    started: std::time::Instant,
    verdict: &crate::verdict::Verdict,
) -> anyhow::Result<serde_json::Value> {
    let summary = serde_json::json!({
        "experiment": experiment,
        "seeds": seeds,
        "results": results,
        "wall_seconds": started.elapsed().as_secs_f64(),
        "verdict": verdict.to_json(),
    });
    ctx.store.put_json(ctx.run_id, "summary", &summary)?;
    Ok(summary)
}
