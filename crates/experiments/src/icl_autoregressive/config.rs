//! The `icl-autoregressive` config: every field has a default, so a config file lists only what
//! it changes.

use mesalab_analysis::lds::LdsSpec;
use mesalab_core::config::{Invalid, Validate};
use mesalab_nn::causal_lsa::CausalLsaSpec;
use mesalab_train::supervised::AdamSettings;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Which experiment this file configures (`icl-autoregressive`).
    pub experiment: String,
    pub run: RunSection,
    pub task: TaskSection,
    pub model: ModelSection,
    pub train: TrainSection,
    pub eval: EvalSection,
    pub inside: InsideSection,
    pub verdict: VerdictSection,
    /// Overrides applied by `--quick`, as a nested table.
    pub quick: toml::Table,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSection {
    /// Base seed; seed i uses `seed + i` (init and training data). Evaluation sequences and the
    /// fitted baselines use the base seed.
    pub seed: u64,
    pub seeds: u64,
}

/// Sequences `s_{t+1} = W s_t + σ ε`, W = ρ·(random orthogonal), s_1 ~ N(0, I).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskSection {
    /// State width d (tokens are 3d wide: prediction slot, s_t, s_{t−1}).
    pub d: usize,
    /// Predicted positions per sequence.
    pub positions: usize,
    /// Spectral radius ρ of W.
    pub rho: f64,
    /// Transition noise σ.
    pub noise_std: f64,
    /// Train on this many fixed systems W (drawn once per seed) instead of a fresh W per
    /// sequence (0, the default). With one system the best prediction ignores the context, so
    /// nothing needs to be learned in context (MesaBench's negative).
    pub train_systems: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    pub layers: usize,
    pub heads: usize,
    pub init_std: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    /// Adam steps; every step draws a fresh batch of sequences.
    pub steps: u64,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
    /// Per-parameter gradient L2 clip; 0 disables.
    pub grad_clip_norm: f32,
    pub log_every: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSection {
    /// Held-out sequences every model and baseline is scored on.
    pub validation_sequences: usize,
    /// Separate sequences on which the baselines' η and λ are fitted.
    pub fit_sequences: usize,
    /// k-step GD candidates for k = 1..=this.
    pub gd_steps_max: usize,
    /// Positions (0-based) from which on losses count as "late in the context".
    pub late_from: usize,
    /// Positions `0..early_to` are "early in the context".
    pub early_to: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InsideSection {
    pub enabled: bool,
    /// Sequences whose late positions feed the probes (half train, half test).
    pub probe_sequences: usize,
    pub probe_l2: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerdictSection {
    /// Late-context loss / the zero predictor's (the best context-free linear map) at most this.
    pub max_late_ratio_vs_zero: f64,
    /// Late-context loss / early-context loss at most this (the loss falls along the context).
    pub max_late_over_early: f64,
    /// The closest candidate fits when |late loss / its late loss − 1| ≤ this ...
    pub max_identified_loss_gap: f64,
    /// ... and the mean cosine of the model's predictions with its predictions is ≥ this.
    pub min_identified_cosine: f64,
    pub min_seeds: u64,
    /// A seed converged when its late loss closed this share of the gap from the zero predictor
    /// to one-step GD.
    pub min_progress: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            experiment: "icl-autoregressive".into(),
            run: RunSection { seed: 0, seeds: 3 },
            task: TaskSection { d: 4, positions: 24, rho: 1.0, noise_std: 0.1, train_systems: 0 },
            model: ModelSection { layers: 1, heads: 1, init_std: 0.05 },
            train: TrainSection {
                steps: 3000,
                batch_size: 256,
                learning_rate: 2e-3,
                beta1: 0.9,
                beta2: 0.98,
                epsilon: 1e-8,
                grad_clip_norm: 10.0,
                log_every: 20,
            },
            eval: EvalSection {
                validation_sequences: 2000,
                fit_sequences: 2000,
                gd_steps_max: 3,
                late_from: 12,
                early_to: 3,
            },
            inside: InsideSection { enabled: true, probe_sequences: 600, probe_l2: 1e-3 },
            verdict: VerdictSection {
                max_late_ratio_vs_zero: 0.5,
                max_late_over_early: 0.8,
                max_identified_loss_gap: 0.05,
                min_identified_cosine: 0.99,
                min_seeds: 3,
                min_progress: 0.5,
            },
            quick: toml::Table::new(),
        }
    }
}

impl Default for RunSection {
    fn default() -> Self {
        Config::default().run
    }
}
impl Default for TaskSection {
    fn default() -> Self {
        Config::default().task
    }
}
impl Default for ModelSection {
    fn default() -> Self {
        Config::default().model
    }
}
impl Default for TrainSection {
    fn default() -> Self {
        Config::default().train
    }
}
impl Default for EvalSection {
    fn default() -> Self {
        Config::default().eval
    }
}
impl Default for InsideSection {
    fn default() -> Self {
        Config::default().inside
    }
}
impl Default for VerdictSection {
    fn default() -> Self {
        Config::default().verdict
    }
}

fn positive(key: &str, v: f64) -> Result<(), Invalid> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(Invalid::new(key, format!("must be a positive number, got {v}")))
    }
}

fn in_range(key: &str, v: u64, lo: u64, hi: u64) -> Result<(), Invalid> {
    if (lo..=hi).contains(&v) { Ok(()) } else { Err(Invalid::new(key, format!("must be in {lo}..={hi}, got {v}"))) }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Invalid> {
        if self.experiment != "icl-autoregressive" {
            return Err(Invalid::new(
                "experiment",
                format!("this config is for `icl-autoregressive`, not `{}`", self.experiment),
            ));
        }
        in_range("run.seeds", self.run.seeds, 1, u64::MAX)?;
        crate::experiment::check_seed_count(self.run.seeds)?;
        if self.run.seed.checked_add(self.run.seeds).is_none() {
            return Err(Invalid::new("run.seed", "seed + seeds overflows a 64-bit seed"));
        }
        let t = &self.task;
        in_range("task.d", t.d as u64, 1, 32)?;
        in_range("task.positions", t.positions as u64, 2, 512)?;
        if !(t.rho.is_finite() && t.rho > 0.0 && t.rho <= 1.0) {
            return Err(Invalid::new("task.rho", format!("must be in (0, 1] (a stable system), got {}", t.rho)));
        }
        if !(t.noise_std.is_finite() && t.noise_std >= 0.0) {
            return Err(Invalid::new("task.noise_std", format!("must be ≥ 0, got {}", t.noise_std)));
        }
        in_range("task.train_systems", t.train_systems, 0, 1 << 20)?;
        let m = &self.model;
        in_range("model.layers", m.layers as u64, 1, 8)?;
        in_range("model.heads", m.heads as u64, 1, 8)?;
        if !(m.init_std.is_finite() && m.init_std >= 0.0) {
            return Err(Invalid::new("model.init_std", format!("must be ≥ 0, got {}", m.init_std)));
        }
        let tr = &self.train;
        in_range("train.steps", tr.steps, 1, 10_000_000)?;
        in_range("train.batch_size", tr.batch_size as u64, 1, 1 << 14)?;
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
        in_range("train.log_every", tr.log_every, 1, u64::MAX)?;
        let e = &self.eval;
        in_range("eval.validation_sequences", e.validation_sequences as u64, 50, 200_000)?;
        in_range("eval.fit_sequences", e.fit_sequences as u64, 50, 200_000)?;
        in_range("eval.gd_steps_max", e.gd_steps_max as u64, 1, 10)?;
        if e.early_to == 0 || e.early_to > e.late_from || e.late_from >= t.positions {
            return Err(Invalid::new(
                "eval.late_from",
                format!(
                    "needs 0 < eval.early_to ≤ eval.late_from < task.positions, got early_to {}, late_from {}, positions {}",
                    e.early_to, e.late_from, t.positions
                ),
            ));
        }
        let i = &self.inside;
        in_range("inside.probe_sequences", i.probe_sequences as u64, 20, 100_000)?;
        positive("inside.probe_l2", i.probe_l2)?;
        let v = &self.verdict;
        positive("verdict.max_late_ratio_vs_zero", v.max_late_ratio_vs_zero)?;
        positive("verdict.max_late_over_early", v.max_late_over_early)?;
        positive("verdict.max_identified_loss_gap", v.max_identified_loss_gap)?;
        if !(v.min_identified_cosine.is_finite() && v.min_identified_cosine <= 1.0) {
            return Err(Invalid::new("verdict.min_identified_cosine", "must be a number ≤ 1"));
        }
        in_range("verdict.min_seeds", v.min_seeds, 1, u64::MAX)?;
        if !(0.0..=1.0).contains(&v.min_progress) {
            return Err(Invalid::new("verdict.min_progress", format!("must be in [0, 1], got {}", v.min_progress)));
        }
        Ok(())
    }
}

impl Config {
    pub fn lds_spec(&self) -> LdsSpec {
        LdsSpec { d: self.task.d, positions: self.task.positions, rho: self.task.rho, noise_std: self.task.noise_std }
    }

    pub fn model_spec(&self) -> CausalLsaSpec {
        CausalLsaSpec {
            d_token: 3 * self.task.d,
            d_out: self.task.d,
            layers: self.model.layers,
            heads: self.model.heads,
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

    /// Peak memory and work: the evaluation sequences (f64) with every candidate's predictions,
    /// one training batch through autodiff, and the probes' residual streams.
    pub fn memory_estimate(&self) -> crate::resources::Estimate {
        use crate::resources::{Bytes, Estimate, Part, Phase, Work, key, n};
        let (t, e, m) = (&self.task, &self.eval, &self.model);
        let (d, positions) = (n(t.d), n(t.positions));
        let width = d.saturating_mul(3);
        let seq = Bytes::product(&[positions.saturating_add(1), d, 8]) + Bytes::product(&[d, d, 8]);
        let candidates = n(e.gd_steps_max).saturating_add(3);
        // Per layer and head: q, k, v, z ([T, D] each) and the pattern [T, T], ≈ 3× under autodiff.
        let per_layer = (Bytes::product(&[4, positions, width]) + Bytes::product(&[positions, positions]))
            .times(n(m.heads))
            + Bytes::product(&[3, positions, width]);
        let forward = per_layer.times(n(m.layers)).times(4);
        let keys = [key("task.d", t.d), key("task.positions", t.positions)];
        let with = |extra: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
            extra.iter().cloned().chain(keys.iter().cloned()).collect()
        };
        let parts = vec![
            Part::new(
                Phase::Resident,
                "validation and fit sequences",
                seq.times(n(e.validation_sequences).saturating_add(n(e.fit_sequences))),
                &with(&[
                    key("eval.validation_sequences", e.validation_sequences),
                    key("eval.fit_sequences", e.fit_sequences),
                ]),
            ),
            Part::new(
                Phase::Step("training"),
                "one batch through autodiff",
                (seq + forward.times(3)).times(n(self.train.batch_size)),
                &with(&[key("train.batch_size", self.train.batch_size), key("model.layers", m.layers)]),
            ),
            Part::new(
                Phase::Step("evaluation"),
                "predictions of the model and every candidate",
                Bytes::product(&[positions, d, 8]).times(candidates.saturating_add(2)).times(n(e.validation_sequences))
                    + forward.times(n(e.validation_sequences)),
                &with(&[
                    key("eval.validation_sequences", e.validation_sequences),
                    key("eval.gd_steps_max", e.gd_steps_max),
                ]),
            ),
            Part::new(
                Phase::Step("probes"),
                "residual streams at every layer boundary (f64)",
                Bytes::product(&[positions, width, 8])
                    .times(n(m.layers).saturating_add(1))
                    .times(n(self.inside.probe_sequences)),
                &with(&[key("inside.probe_sequences", self.inside.probe_sequences)]),
            ),
        ];
        Estimate {
            parts,
            work: Work {
                seeds: self.run.seeds,
                variants: 1,
                train_steps: self.train.steps,
                train_unit: "Adam steps (batches of fresh sequences)",
                evaluation: n(e.validation_sequences).saturating_mul(self.run.seeds),
                eval_unit: "held-out sequences scored by the models",
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

    fn hook_shapes(&self) -> anyhow::Result<Vec<mesalab_nn::interp::HookShape>> {
        super::hook_shapes(self)
    }
}
