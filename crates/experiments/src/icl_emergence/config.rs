//! The `icl-emergence` config: every field has a default, so a config file lists only what it
//! changes. The model section is icl-gd's (the same transformer family).

use crate::icl_gd::config::ModelSection;
use mesalab_analysis::icl::{TaskSpec, XDist};
use mesalab_core::config::{Invalid, Validate};
use mesalab_nn::lsa::LsaSpec;
use mesalab_train::supervised::AdamSettings;
use serde::{Deserialize, Serialize};

/// Largest pool size a config may ask for (the dMMSE baseline costs pool size × tasks × N × d).
pub const MAX_POOL: u64 = 1 << 16;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Which experiment this file configures (`icl-emergence`).
    pub experiment: String,
    pub run: RunSection,
    pub task: TaskSection,
    pub pool: PoolSection,
    pub model: ModelSection,
    pub train: TrainSection,
    pub eval: EvalSection,
    pub verdict: VerdictSection,
    /// Overrides applied by `--quick`, as a nested table.
    pub quick: toml::Table,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSection {
    /// Base seed; seed i uses `seed + i` (its pools, init and data). Fresh evaluation tasks and
    /// the fitted baselines use the base seed.
    pub seed: u64,
    /// Seeds; each trains one model per pool size.
    pub seeds: u64,
}

/// Raventós et al.'s task: x ~ N(0, I_d), w ~ N(0, I_d), y = w·x + ε, ε ~ N(0, σ²).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskSection {
    pub d: usize,
    /// Context pairs per task (N); the model predicts the query's label.
    pub n_context: usize,
    /// Label noise variance σ² (context and query labels).
    pub noise_var: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolSection {
    /// Finite pool sizes M, strictly increasing.
    pub sizes: Vec<u64>,
    /// Also train on fresh teachers every step (M = ∞).
    pub fresh: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    /// Adam steps per model; every step draws a batch of tasks (teachers from the pool).
    pub steps: u64,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
    /// Per-parameter gradient L2 clip; 0 disables.
    pub grad_clip_norm: f32,
    /// Record the training loss every this many steps.
    pub log_every: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSection {
    /// Held-out tasks with fresh teachers from the full prior: one set for every model and baseline.
    pub fresh_tasks: usize,
    /// Held-out tasks with teachers from the model's own pool (fresh inputs and noise), per seed and M.
    pub pool_tasks: usize,
    /// Fresh tasks on which one-step GD's step size is fitted.
    pub fit_tasks: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerdictSection {
    /// "Tracks A rather than B" means SPD to A × this ≤ SPD to B (2 = twice as close).
    pub distance_margin: f64,
    /// "Fails on fresh tasks": fresh loss ≥ this × one-step GD's fresh loss (the general algorithm
    /// this architecture learns from fresh tasks).
    pub min_fresh_failure_ratio: f64,
    /// Fewest converged seeds a verdict may rest on.
    pub min_seeds: u64,
    /// A seed converged when its model at the largest M closed at least this share of the gap
    /// between the zero predictor's fresh loss and one-step GD's.
    pub min_progress: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            experiment: "icl-emergence".into(),
            run: RunSection::default(),
            task: TaskSection::default(),
            pool: PoolSection::default(),
            // icl-gd's model with a larger init: from 0.002 the fresh-teacher (M = ∞) model sits on
            // the zero-predictor saddle for most of an 800-step run; from 0.05 it reaches GD.
            model: ModelSection { init_std: 0.05, ..ModelSection::default() },
            train: TrainSection::default(),
            eval: EvalSection::default(),
            verdict: VerdictSection::default(),
            quick: toml::Table::new(),
        }
    }
}

impl Default for RunSection {
    fn default() -> Self {
        Self { seed: 0, seeds: 3 }
    }
}

impl Default for TaskSection {
    fn default() -> Self {
        Self { d: 4, n_context: 16, noise_var: 0.25 }
    }
}

impl Default for PoolSection {
    fn default() -> Self {
        Self { sizes: (0..=10).map(|k| 1u64 << k).collect(), fresh: true }
    }
}

impl Default for TrainSection {
    fn default() -> Self {
        Self {
            steps: 2000,
            batch_size: 512,
            learning_rate: 1e-3,
            beta1: 0.9,
            beta2: 0.98,
            epsilon: 1e-8,
            grad_clip_norm: 10.0,
            log_every: 50,
        }
    }
}

impl Default for EvalSection {
    fn default() -> Self {
        Self { fresh_tasks: 4000, pool_tasks: 2000, fit_tasks: 4000 }
    }
}

impl Default for VerdictSection {
    fn default() -> Self {
        Self { distance_margin: 2.0, min_fresh_failure_ratio: 1.25, min_seeds: 3, min_progress: 0.5 }
    }
}

fn positive(key: &str, v: f64) -> Result<(), Invalid> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(Invalid::new(key, format!("must be a positive number, got {v}")))
    }
}

fn at_least(key: &str, v: u64, min: u64) -> Result<(), Invalid> {
    if v >= min { Ok(()) } else { Err(Invalid::new(key, format!("must be at least {min}, got {v}"))) }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Invalid> {
        if self.experiment != "icl-emergence" {
            return Err(Invalid::new(
                "experiment",
                format!("this config is for `icl-emergence`, not `{}`", self.experiment),
            ));
        }
        at_least("run.seeds", self.run.seeds, 1)?;
        crate::experiment::check_seed_count(self.run.seeds)?;
        if self.run.seed.checked_add(self.run.seeds).is_none() {
            return Err(Invalid::new("run.seed", "seed + seeds overflows a 64-bit seed"));
        }
        let t = &self.task;
        at_least("task.d", t.d as u64, 1)?;
        if t.d > 64 {
            return Err(Invalid::new("task.d", format!("must be at most 64, got {}", t.d)));
        }
        at_least("task.n_context", t.n_context as u64, 1)?;
        if t.n_context > 256 {
            return Err(Invalid::new("task.n_context", format!("must be at most 256, got {}", t.n_context)));
        }
        positive("task.noise_var", t.noise_var)?;
        let p = &self.pool;
        if p.sizes.is_empty() {
            return Err(Invalid::new("pool.sizes", "needs at least one finite pool size, e.g. [1, 2, 4]"));
        }
        for (i, &m) in p.sizes.iter().enumerate() {
            if !(1..=MAX_POOL).contains(&m) {
                return Err(Invalid::new("pool.sizes", format!("each size must be in 1..={MAX_POOL}, got {m}")));
            }
            if i > 0 && m <= p.sizes[i - 1] {
                return Err(Invalid::new("pool.sizes", "must be strictly increasing"));
            }
        }
        let m = &self.model;
        at_least("model.layers", m.layers as u64, 1)?;
        at_least("model.heads", m.heads as u64, 1)?;
        if m.layers > 8 || m.heads > 8 {
            return Err(Invalid::new("model.layers", "layers and heads must each be at most 8"));
        }
        if !(m.init_std.is_finite() && m.init_std >= 0.0) {
            return Err(Invalid::new("model.init_std", format!("must be ≥ 0, got {}", m.init_std)));
        }
        if !(m.clip_tokens.is_finite() && m.clip_tokens >= 0.0) {
            return Err(Invalid::new("model.clip_tokens", "must be ≥ 0 (0 disables clipping)"));
        }
        let tr = &self.train;
        at_least("train.steps", tr.steps, 1)?;
        at_least("train.batch_size", tr.batch_size as u64, 1)?;
        if tr.batch_size > 1 << 16 {
            return Err(Invalid::new("train.batch_size", "must be at most 65536"));
        }
        positive("train.learning_rate", tr.learning_rate)?;
        for (key, beta) in [("train.beta1", tr.beta1), ("train.beta2", tr.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                return Err(Invalid::new(key, format!("must be in [0, 1), got {beta}")));
            }
        }
        positive("train.epsilon", f64::from(tr.epsilon))?;
        if !(tr.grad_clip_norm.is_finite() && tr.grad_clip_norm >= 0.0) {
            return Err(Invalid::new("train.grad_clip_norm", "must be ≥ 0 (0 disables clipping)"));
        }
        at_least("train.log_every", tr.log_every, 1)?;
        let e = &self.eval;
        for (key, v) in
            [("eval.fresh_tasks", e.fresh_tasks), ("eval.pool_tasks", e.pool_tasks), ("eval.fit_tasks", e.fit_tasks)]
        {
            at_least(key, v as u64, 100)?;
            if v > 1_000_000 {
                return Err(Invalid::new(key, format!("must be at most 1000000, got {v}")));
            }
        }
        let v = &self.verdict;
        if !(v.distance_margin.is_finite() && v.distance_margin >= 1.0) {
            return Err(Invalid::new("verdict.distance_margin", format!("must be ≥ 1, got {}", v.distance_margin)));
        }
        positive("verdict.min_fresh_failure_ratio", v.min_fresh_failure_ratio)?;
        at_least("verdict.min_seeds", v.min_seeds, 1)?;
        if !(0.0..=1.0).contains(&v.min_progress) {
            return Err(Invalid::new("verdict.min_progress", format!("must be in [0, 1], got {}", v.min_progress)));
        }
        Ok(())
    }
}

impl Config {
    pub fn task_spec(&self) -> TaskSpec {
        TaskSpec {
            d: self.task.d,
            n_context: self.task.n_context,
            x: XDist::Gaussian { std: 1.0 },
            w_scale: 1.0,
            noise_std: self.task.noise_var.sqrt(),
        }
    }

    pub fn lsa_spec(&self) -> LsaSpec {
        LsaSpec {
            d_token: self.task.d + 1,
            layers: self.model.layers,
            heads: self.model.heads,
            softmax: self.model.attention == crate::icl_gd::config::Attention::Softmax,
            shared_weights: self.model.shared_weights,
            clip_tokens: self.model.clip_tokens,
        }
    }

    pub fn adam(&self) -> AdamSettings {
        let t = &self.train;
        AdamSettings {
            learning_rate: t.learning_rate,
            beta1: t.beta1,
            beta2: t.beta2,
            epsilon: t.epsilon,
            grad_clip_norm: t.grad_clip_norm,
        }
    }

    /// The pool sizes trained, in order: the finite ones, then `None` (M = ∞) when `pool.fresh`.
    pub fn pool_sizes(&self) -> Vec<Option<u64>> {
        let mut out: Vec<Option<u64>> = self.pool.sizes.iter().map(|m| Some(*m)).collect();
        if self.pool.fresh {
            out.push(None);
        }
        out
    }

    /// Peak memory and work of a run (see [`crate::resources`]): the fresh, fit and per-model pool
    /// tasks (f64), the largest pool, one training batch through autodiff, and the dMMSE
    /// posterior of one task at a time.
    pub fn memory_estimate(&self) -> crate::resources::Estimate {
        use crate::resources::{Bytes, Estimate, Part, Phase, Work, key, n};
        let (t, e, m) = (&self.task, &self.eval, &self.model);
        let (d, tokens) = (n(t.d), n(t.n_context).saturating_add(1));
        let width = d.saturating_add(1);
        let task = Bytes::sum([Bytes::product(&[tokens, d, 8]), Bytes::product(&[tokens, 8]), Bytes::product(&[d, 8])]);
        let token_f32 = Bytes::product(&[tokens, width, 4]);
        // Per layer: residual stream, attention output and per head q, k, v, z and scores (f32),
        // kept ≈ 3× by autodiff.
        let per_layer = Bytes::product(&[3, tokens, width])
            + (Bytes::product(&[6, tokens, width]) + Bytes::product(&[2, tokens, tokens])).times(n(m.heads));
        let forward = (per_layer.times(n(m.layers)) + Bytes::product(&[tokens, width])).times(4);
        let largest_pool = self.pool.sizes.iter().copied().max().unwrap_or(1);
        let models = n(self.pool_sizes().len()).saturating_mul(self.run.seeds);
        let task_keys = [key("task.d", t.d), key("task.n_context", t.n_context)];
        let with = |extra: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
            extra.iter().cloned().chain(task_keys.iter().cloned()).collect()
        };
        let parts = vec![
            Part::new(
                Phase::Resident,
                "fresh and fit tasks",
                task.times(n(e.fresh_tasks).saturating_add(n(e.fit_tasks))),
                &with(&[key("eval.fresh_tasks", e.fresh_tasks), key("eval.fit_tasks", e.fit_tasks)]),
            ),
            // Per model: one result row (≈ 20 numbers as JSON) and its curve points.
            Part::new(
                Phase::Resident,
                "per-model results",
                Bytes::product(&[models, 20 + self.train.steps / self.train.log_every.max(1), 64]),
                &[key("run.seeds", self.run.seeds), key("pool.sizes (count)", self.pool.sizes.len())],
            ),
            Part::new(
                Phase::Step("training"),
                "pool, one batch through autodiff, model and Adam state",
                Bytes::product(&[largest_pool, d, 8])
                    + (task + token_f32 + forward.times(3)).times(n(self.train.batch_size))
                    + Bytes::product(&[n(m.layers), n(m.heads), 16, width, width, 4]),
                &with(&[
                    key("train.batch_size", self.train.batch_size),
                    key("model.layers", m.layers),
                    key("pool.sizes (largest)", largest_pool),
                ]),
            ),
            Part::new(
                Phase::Step("evaluation"),
                "pool tasks, tokens and the predictions of model and baselines",
                task.times(n(e.pool_tasks))
                    + (token_f32 + Bytes::product(&[d, 8, 4]) + Bytes::product(&[8, 8]))
                        .times(n(e.fresh_tasks.max(e.pool_tasks)))
                    + forward.times(2048)
                    + Bytes::product(&[largest_pool, 8]),
                &with(&[key("eval.pool_tasks", e.pool_tasks), key("eval.fresh_tasks", e.fresh_tasks)]),
            ),
        ];
        let evaluation = n(e.fresh_tasks).saturating_add(n(e.pool_tasks)).saturating_mul(models);
        Estimate {
            parts,
            work: Work {
                seeds: self.run.seeds,
                variants: n(self.pool_sizes().len()),
                train_steps: self.train.steps,
                train_unit: "Adam steps (batches of pool tasks)",
                evaluation,
                eval_unit: "held-out tasks scored by the models",
            },
        }
    }
}

impl crate::registry::ExperimentConfig for Config {
    fn quick(&self) -> &toml::Table {
        &self.quick
    }

    fn seeds(&self) -> Vec<u64> {
        (0..self.run.seeds).map(|i| self.run.seed + i).collect()
    }

    fn run(&self, ctx: &crate::context::RunContext) -> anyhow::Result<serde_json::Value> {
        super::run(self, ctx)
    }

    fn estimate(&self) -> anyhow::Result<crate::resources::Estimate> {
        Ok(self.memory_estimate())
    }
}
