//! The `icl-gd` config: every field has a default, so a config file lists only what it changes.

use mesalab_analysis::icl::{TaskSpec, XDist};
use mesalab_core::config::{Invalid, Validate};
use mesalab_nn::lsa::LsaSpec;
use mesalab_train::supervised::AdamSettings;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Which experiment this file configures (`icl-gd`).
    pub experiment: String,
    pub run: RunSection,
    pub task: TaskSection,
    pub model: ModelSection,
    pub train: TrainSection,
    pub eval: EvalSection,
    pub verdict: VerdictSection,
    /// Looking inside the trained models: probes per layer and activation patching.
    pub inside: InsideSection,
    /// Overrides applied by `--quick`, as a nested table (`eval.validation_tasks = 4000`).
    pub quick: toml::Table,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSection {
    /// Base seed; seed i of the run uses `seed + i`. Baselines and validation tasks use the base seed.
    pub seed: u64,
    /// Number of independently trained models.
    pub seeds: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XDistName {
    Uniform,
    Gaussian,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskSection {
    /// Input dimension d.
    pub d: usize,
    /// Context pairs per task (N).
    pub n_context: usize,
    /// Input distribution: `uniform` or `gaussian`.
    pub x_dist: XDistName,
    /// Uniform inputs: x ~ U(−x_range, x_range) per coordinate.
    pub x_range: f64,
    /// Gaussian inputs: x ~ N(0, x_std²) per coordinate.
    pub x_std: f64,
    /// Teacher w ~ N(0, w_scale² I).
    pub w_scale: f64,
    /// Label noise standard deviation.
    pub noise_std: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Attention {
    Linear,
    Softmax,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    pub layers: usize,
    pub heads: usize,
    /// `linear` (LSA, as in the GD construction) or `softmax`.
    pub attention: Attention,
    /// Reuse one layer's weights in every layer.
    pub shared_weights: bool,
    /// Standard deviation of the normal weight init.
    pub init_std: f64,
    /// Clip tokens to [−clip, clip] after each layer; 0 disables.
    pub clip_tokens: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    /// Adam steps; every step draws a fresh batch of tasks.
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
    /// Evaluate on the validation tasks every this many steps.
    pub eval_every: u64,
    /// Save a resumable training state every this many steps (and on Ctrl-C, and when training
    /// ends); `mesalab resume` continues from the last one.
    pub checkpoint_every: u64,
    /// Seeds whose training ends below `verdict.min_progress` (the small-init model learns W_KQ's
    /// directions one at a time and can sit on the rank-1 saddle) are retrained from a fresh
    /// init and a fresh data stream up to this many times; every restart is recorded per seed.
    pub max_restarts: u32,
    /// From this fraction of `steps` on, the learning rate decays linearly to 0 at the last step
    /// (1 = constant). Under a constant rate Adam's noise stays in the weights: at d = 20 the
    /// sensitivity cosine vs GD ended at 0.995 instead of 0.999 (measured, issue 10).
    pub lr_decay_from: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSection {
    /// Held-out tasks every model and baseline is scored on (the same tasks for all).
    pub validation_tasks: usize,
    /// Separate tasks on which baseline step sizes (η, γ, λ) are fitted.
    pub fit_tasks: usize,
    /// Separate tasks on which the matrix preconditioners (layers · d² numbers) are fitted: many
    /// more than `fit_tasks`, since with 200 free numbers 4k tasks overfit by ≈ 5% of the loss.
    pub precond_fit_tasks: usize,
    /// Reference k-step GD and GD++ for k = 1..=gd_steps_max (at least the model's depth).
    pub gd_steps_max: usize,
    /// Out-of-distribution scales α: x ~ U(−α, α), teacher scaled by α.
    pub ood_alphas: Vec<f64>,
    pub ood_tasks: usize,
    /// Tasks on which ∂ŷ/∂x_q is computed by autodiff.
    pub sensitivity_tasks: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InsideSection {
    /// Run the probes and the patching sweep after training (off: skip both).
    pub enabled: bool,
    /// Fresh tasks whose cached activations the ridge probes are fitted and tested on.
    pub probe_tasks: usize,
    /// Share of the probe tasks held out to score the probes.
    pub probe_test_fraction: f64,
    /// L2 penalty of the ridge probes.
    pub probe_l2: f64,
    /// Tasks of the patching sweep (clean labels vs labels from another teacher).
    pub patch_tasks: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerdictSection {
    /// Largest model loss / reference-algorithm loss.
    pub max_loss_ratio: f64,
    /// Smallest mean cosine between the model's and the reference's sensitivities.
    pub min_sensitivity_cosine: f64,
    /// Largest mean |ŷ_model − ŷ_reference| / RMS(y) over the validation tasks: scale-free, so the
    /// same bound means the same thing for Gaussian and uniform inputs and any d (0.044 is the old
    /// absolute bound 0.04 at the default task, where RMS(y) = √(10/12) ≈ 0.913).
    pub max_rel_pred_diff: f64,
    /// Largest relative error of the learned η against η*/N (one-layer models).
    pub max_eta_rel_error: f64,
    /// Multi-layer models: loss / k-step GD++ loss must lie within 1 ± (this − 1).
    pub max_loss_ratio_vs_gdpp: f64,
    /// Identification: the closest candidate fits when |model loss / its loss − 1| ≤ this ...
    pub max_identified_loss_gap: f64,
    /// ... and the mean cosine of the model's implied weights with its weights is ≥ this.
    pub min_identified_cosine: f64,
    /// Fewest converged seeds a verdict may rest on.
    pub min_seeds: u64,
    /// A seed converged when its validation loss closed at least this share of the gap between
    /// the zero predictor's loss and the reference algorithm's. Seeds that did not (e.g. stuck at
    /// the zero-predictor saddle) are reported as `did not converge` and are not evidence either way.
    pub min_progress: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            experiment: "icl-gd".into(),
            run: RunSection { seed: 0, seeds: 3 },
            task: TaskSection::default(),
            model: ModelSection::default(),
            train: TrainSection::default(),
            eval: EvalSection::default(),
            verdict: VerdictSection::default(),
            inside: InsideSection::default(),
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
        Self {
            d: 10,
            n_context: 10,
            x_dist: XDistName::Uniform,
            x_range: 0.5,
            x_std: 1.0,
            w_scale: 1.0,
            noise_std: 0.0,
        }
    }
}

impl Default for ModelSection {
    fn default() -> Self {
        Self {
            layers: 1,
            heads: 1,
            attention: Attention::Linear,
            shared_weights: false,
            init_std: 0.002,
            clip_tokens: 0.0,
        }
    }
}

impl Default for TrainSection {
    fn default() -> Self {
        Self {
            steps: 2000,
            batch_size: 1024,
            learning_rate: 1e-3,
            beta1: 0.9,
            beta2: 0.98,
            epsilon: 1e-8,
            grad_clip_norm: 10.0,
            log_every: 20,
            eval_every: 200,
            checkpoint_every: 250,
            max_restarts: 2,
            lr_decay_from: 0.5,
        }
    }
}

impl Default for EvalSection {
    fn default() -> Self {
        Self {
            validation_tasks: 10_000,
            fit_tasks: 10_000,
            precond_fit_tasks: 40_000,
            gd_steps_max: 3,
            ood_alphas: vec![0.25, 0.5, 0.75, 1.0, 1.5, 2.0],
            ood_tasks: 2000,
            sensitivity_tasks: 2000,
        }
    }
}

impl Default for InsideSection {
    fn default() -> Self {
        Self { enabled: true, probe_tasks: 4000, probe_test_fraction: 0.25, probe_l2: 1e-3, patch_tasks: 1000 }
    }
}

impl Default for VerdictSection {
    fn default() -> Self {
        Self {
            max_loss_ratio: 1.01,
            min_sensitivity_cosine: 0.995,
            max_rel_pred_diff: 0.044,
            max_eta_rel_error: 0.03,
            max_loss_ratio_vs_gdpp: 1.05,
            max_identified_loss_gap: 0.05,
            min_identified_cosine: 0.99,
            min_seeds: 3,
            min_progress: 0.5,
        }
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
        if self.experiment != "icl-gd" {
            return Err(Invalid::new("experiment", format!("this config is for `icl-gd`, not `{}`", self.experiment)));
        }
        at_least("run.seeds", self.run.seeds, 1)?;
        crate::experiment::check_seed_count(self.run.seeds)?;
        let t = &self.task;
        at_least("task.d", t.d as u64, 1)?;
        at_least("task.n_context", t.n_context as u64, 1)?;
        positive("task.x_range", t.x_range)?;
        positive("task.x_std", t.x_std)?;
        positive("task.w_scale", t.w_scale)?;
        if !(t.noise_std.is_finite() && t.noise_std >= 0.0) {
            return Err(Invalid::new("task.noise_std", format!("must be ≥ 0, got {}", t.noise_std)));
        }
        let m = &self.model;
        at_least("model.layers", m.layers as u64, 1)?;
        at_least("model.heads", m.heads as u64, 1)?;
        if !(m.init_std.is_finite() && m.init_std >= 0.0) {
            return Err(Invalid::new("model.init_std", format!("must be ≥ 0, got {}", m.init_std)));
        }
        if !(m.clip_tokens.is_finite() && m.clip_tokens >= 0.0) {
            return Err(Invalid::new("model.clip_tokens", "must be ≥ 0 (0 disables clipping)"));
        }
        let tr = &self.train;
        at_least("train.steps", tr.steps, 1)?;
        at_least("train.batch_size", tr.batch_size as u64, 1)?;
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
        at_least("train.eval_every", tr.eval_every, 1)?;
        at_least("train.checkpoint_every", tr.checkpoint_every, 1)?;
        if !(tr.lr_decay_from.is_finite() && (0.0..=1.0).contains(&tr.lr_decay_from)) {
            return Err(Invalid::new("train.lr_decay_from", format!("must be in [0, 1], got {}", tr.lr_decay_from)));
        }
        if tr.max_restarts > 10 {
            return Err(Invalid::new("train.max_restarts", format!("must be at most 10, got {}", tr.max_restarts)));
        }
        let e = &self.eval;
        at_least("eval.validation_tasks", e.validation_tasks as u64, 100)?;
        at_least("eval.fit_tasks", e.fit_tasks as u64, 100)?;
        at_least("eval.precond_fit_tasks", e.precond_fit_tasks as u64, 100)?;
        at_least("eval.gd_steps_max", e.gd_steps_max as u64, 1)?;
        if e.gd_steps_max > 10 {
            return Err(Invalid::new("eval.gd_steps_max", "must be at most 10"));
        }
        at_least("eval.ood_tasks", e.ood_tasks as u64, 10)?;
        at_least("eval.sensitivity_tasks", e.sensitivity_tasks as u64, 10)?;
        for a in &e.ood_alphas {
            positive("eval.ood_alphas", *a)?;
        }
        let i = &self.inside;
        at_least("inside.probe_tasks", i.probe_tasks as u64, 40)?;
        at_least("inside.patch_tasks", i.patch_tasks as u64, 2)?;
        if !(i.probe_test_fraction > 0.0 && i.probe_test_fraction < 1.0) {
            return Err(Invalid::new(
                "inside.probe_test_fraction",
                format!("must be in (0, 1), got {}", i.probe_test_fraction),
            ));
        }
        if !(i.probe_l2.is_finite() && i.probe_l2 >= 0.0) {
            return Err(Invalid::new("inside.probe_l2", format!("must be ≥ 0, got {}", i.probe_l2)));
        }
        Ok(())
    }
}

impl Config {
    /// The learning rate of step `step` (0-based): constant, then linear to 0 at the last step
    /// from `train.lr_decay_from`.
    pub fn learning_rate_at(&self, step: u64) -> f64 {
        let t = &self.train;
        let from = t.lr_decay_from * t.steps as f64;
        let s = step as f64;
        if s < from || t.lr_decay_from >= 1.0 {
            t.learning_rate
        } else {
            t.learning_rate * ((t.steps as f64 - s) / (t.steps as f64 - from)).clamp(0.0, 1.0)
        }
    }

    pub fn task_spec(&self) -> TaskSpec {
        let t = &self.task;
        TaskSpec {
            d: t.d,
            n_context: t.n_context,
            x: match t.x_dist {
                XDistName::Uniform => XDist::Uniform { half_width: t.x_range },
                XDistName::Gaussian => XDist::Gaussian { std: t.x_std },
            },
            w_scale: t.w_scale,
            noise_std: t.noise_std,
        }
    }

    pub fn lsa_spec(&self) -> LsaSpec {
        LsaSpec {
            d_token: self.task.d + 1,
            layers: self.model.layers,
            heads: self.model.heads,
            softmax: self.model.attention == Attention::Softmax,
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

    /// The model's depth, which fixes the reference algorithm (k-step GD with k = layers).
    pub fn reference_steps(&self) -> usize {
        self.model.layers
    }

    /// A one-layer linear model with one head: the setting of the GD construction, where η and
    /// the interpolation test are defined.
    pub fn is_gd_setting(&self) -> bool {
        self.model.layers == 1 && self.model.heads == 1 && self.model.attention == Attention::Linear
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

    fn analyze(&self, ctx: &crate::context::AnalysisContext) -> anyhow::Result<serde_json::Value> {
        super::analyze(self, ctx)
    }

    fn estimate(&self) -> anyhow::Result<crate::resources::Estimate> {
        Ok(self.memory_estimate())
    }

    fn hook_shapes(&self) -> anyhow::Result<Vec<mesalab_nn::interp::HookShape>> {
        super::inside::hook_shapes(self)
    }
}

impl Config {
    /// Peak memory of a run of this config (see [`crate::resources`]). The sizes follow `run`:
    /// the fit, validation, OOD, probe and patch tasks stay for the whole run (f64, `[count,
    /// N+1, d]` inputs, labels, teachers); training holds one batch through the autodiff graph;
    /// evaluation, probes and patching each hold one model's activations over all their tasks.
    pub fn memory_estimate(&self) -> crate::resources::Estimate {
        use crate::resources::{Bytes, Estimate, Part, Phase, Work, key, n};
        let (t, e, i, m) = (&self.task, &self.eval, &self.inside, &self.model);
        let (d, tokens) = (n(t.d), n(t.n_context).saturating_add(1));
        let width = d.saturating_add(1);
        // One task as `Tasks` holds it: (N+1)·d inputs, N+1 labels, d teacher weights (f64).
        let task = Bytes::sum([Bytes::product(&[tokens, d, 8]), Bytes::product(&[tokens, 8]), Bytes::product(&[d, 8])]);
        // One task's f32 tokens `[N+1, d+1]`.
        let token_f32 = Bytes::product(&[tokens, width, 4]);
        // Activations of one task in a forward pass with every hook: per layer the residual
        // stream, attention output and their copies (3·T·D) and per head q, k, v and z with their
        // transposed copies (6·T·D) plus scores and pattern (2·T²), f32.
        let per_head = Bytes::product(&[6, tokens, width]) + Bytes::product(&[2, tokens, tokens]);
        let per_layer = Bytes::product(&[3, tokens, width]) + per_head.times(n(m.heads));
        let forward = (per_layer.times(n(m.layers)) + Bytes::product(&[tokens, width])).times(4);
        // Autodiff keeps the forward activations, their gradients and temporaries: ≈ 3×.
        let autodiff = forward.times(3);
        let params = Bytes::product(&[n(m.layers), n(m.heads), 4, width, width, 4]);
        let task_keys = [key("task.d", t.d), key("task.n_context", t.n_context)];
        let with = |extra: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
            extra.iter().cloned().chain(task_keys.iter().cloned()).collect()
        };
        let ood = n(e.ood_tasks).saturating_mul(n(e.ood_alphas.len()));
        let mut parts = vec![
            Part::new(
                Phase::Resident,
                "fit tasks",
                task.times(n(e.fit_tasks)),
                &with(&[key("eval.fit_tasks", e.fit_tasks)]),
            ),
            Part::new(
                Phase::Resident,
                "validation tasks",
                task.times(n(e.validation_tasks)),
                &with(&[key("eval.validation_tasks", e.validation_tasks)]),
            ),
            Part::new(
                Phase::Resident,
                "out-of-distribution tasks",
                task.times(ood),
                &with(&[key("eval.ood_tasks", e.ood_tasks), key("eval.ood_alphas (count)", e.ood_alphas.len())]),
            ),
            // Per seed: 300 prediction and 40·d sensitivity pairs as JSON rows (≈ 3 × 64 B each).
            Part::new(
                Phase::Resident,
                "per-seed sample rows",
                Bytes::product(&[self.run.seeds, d.saturating_mul(40).saturating_add(300), 192]),
                &[key("run.seeds", self.run.seeds), key("task.d", t.d)],
            ),
            Part::new(
                Phase::Step("training"),
                "one training batch through autodiff",
                (task + token_f32 + autodiff).times(n(self.train.batch_size)),
                &with(&[
                    key("train.batch_size", self.train.batch_size),
                    key("model.layers", m.layers),
                    key("model.heads", m.heads),
                ]),
            ),
            // Model, gradients and Adam's two moments.
            Part::new(
                Phase::Step("training"),
                "model and Adam state",
                params.times(4),
                &with(&[key("model.layers", m.layers)]),
            ),
            Part::new(
                Phase::Step("training"),
                "validation tokens (periodic validation)",
                token_f32.times(n(e.validation_tasks)) + forward.times(2048),
                &with(&[key("eval.validation_tasks", e.validation_tasks)]),
            ),
            Part::new(
                Phase::Step("evaluation"),
                "validation tokens and predictions",
                (token_f32 + Bytes::product(&[d, 8, 3]) + Bytes(Some(8 * 6))).times(n(e.validation_tasks))
                    + forward.times(2048),
                &with(&[key("eval.validation_tasks", e.validation_tasks)]),
            ),
            Part::new(
                Phase::Step("evaluation"),
                "input sensitivities by autodiff",
                (token_f32 + autodiff).times(n(e.sensitivity_tasks.min(e.validation_tasks))),
                &with(&[key("eval.sensitivity_tasks", e.sensitivity_tasks)]),
            ),
            // Preconditioner fits: the tasks, and one d²-wide feature row per task.
            Part::new(
                Phase::Step("fitting baselines"),
                "preconditioner fit tasks and features",
                (task + Bytes::product(&[d, d, 8])).times(n(e.precond_fit_tasks)),
                &with(&[key("eval.precond_fit_tasks", e.precond_fit_tasks)]),
            ),
            // Baselines: per fitted task a few d-vectors and a d×d system (OLS, ridge, GD++).
            Part::new(
                Phase::Step("fitting baselines"),
                "baseline fits",
                (Bytes::product(&[d, d, 8, 3]) + Bytes::product(&[d, 8, 4]))
                    .times(n(e.fit_tasks.max(e.validation_tasks))),
                &with(&[key("eval.fit_tasks", e.fit_tasks)]),
            ),
        ];
        if i.enabled {
            let probe_width = tokens.saturating_mul(width);
            let targets = Bytes::product(&[
                n(i.probe_tasks),
                d.saturating_mul(3).saturating_add(n(m.layers)).saturating_add(1),
                8,
            ]);
            parts.push(Part::new(
                Phase::Resident,
                "probe and patch tasks",
                task.times(n(i.probe_tasks)) + targets + task.times(n(i.patch_tasks)).times(2),
                &with(&[key("inside.probe_tasks", i.probe_tasks), key("inside.patch_tasks", i.patch_tasks)]),
            ));
            // Residual streams at every boundary of one model, as f32 cache and f64 matrices, and
            // the ridge probe's centred copies and its Gram matrix (min(tasks, width)², 3 copies).
            let boundaries = n(m.layers).saturating_add(1);
            let gram_side = n(i.probe_tasks).min(probe_width);
            parts.push(Part::new(
                Phase::Step("probes"),
                "residual streams and ridge probes",
                Bytes::product(&[boundaries, n(i.probe_tasks), probe_width, 12])
                    + forward.times(n(i.probe_tasks))
                    + Bytes::product(&[3, n(i.probe_tasks), probe_width, 8])
                    + Bytes::product(&[3, gram_side, gram_side, 8]),
                &with(&[key("inside.probe_tasks", i.probe_tasks), key("model.layers", m.layers)]),
            ));
            // Every hook cached on clean and corrupted tasks, plus one patched run.
            parts.push(Part::new(
                Phase::Step("patching"),
                "activation caches for patching",
                (forward.times(3) + token_f32.times(2)).times(n(i.patch_tasks)),
                &with(&[key("inside.patch_tasks", i.patch_tasks), key("model.heads", m.heads)]),
            ));
        }
        let evaluation = n(e.validation_tasks).saturating_add(ood).saturating_mul(self.run.seeds);
        Estimate {
            parts,
            work: Work {
                seeds: self.run.seeds,
                variants: 1,
                train_steps: self.train.steps,
                train_unit: "Adam steps (batches of fresh tasks)",
                evaluation,
                eval_unit: "held-out tasks scored by the models",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learning_rate_is_constant_then_decays_linearly_to_zero() {
        let mut cfg = Config::default();
        cfg.train.steps = 100;
        cfg.train.learning_rate = 0.01;
        cfg.train.lr_decay_from = 1.0;
        assert!((0..100).all(|s| cfg.learning_rate_at(s) == 0.01), "1.0 must mean constant");
        cfg.train.lr_decay_from = 0.5;
        assert_eq!(cfg.learning_rate_at(49), 0.01);
        assert_eq!(cfg.learning_rate_at(50), 0.01);
        assert!((cfg.learning_rate_at(75) - 0.005).abs() < 1e-12);
        assert!(cfg.learning_rate_at(99) > 0.0 && cfg.learning_rate_at(99) < 0.0003);
        assert!((1..100).all(|s| cfg.learning_rate_at(s) <= cfg.learning_rate_at(s - 1)));
        cfg.train.lr_decay_from = 1.5;
        assert!(cfg.validate().is_err());
        cfg.train.lr_decay_from = f64::NAN;
        assert!(cfg.validate().is_err());
    }
}
