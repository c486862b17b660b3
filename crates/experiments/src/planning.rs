//! What every planning-detection experiment shares (issue 14: sokoban-drc, gru-cheese-maze): a
//! policy as a batch [`Stepper`], thinking steps ([`think`]) and an untrained twin's states on the
//! same observations ([`replay_states`]), the same held-out levels for every arm
//! ([`held_out_starts`]), and the per-square plan probes' settings, scores and verdict margin.
//! A shared module, so no experiment reaches into another.

use burn::tensor::{Tensor, TensorData};
use mesalab_analysis::probe::{self, ClassifierKind, Split};
use mesalab_core::config::Invalid;
use mesalab_core::{Seed, Streams};
use mesalab_envs::Env;
use mesalab_nn::device::cpu;
use mesalab_nn::policy::{Policy, RecurrentActorCritic};
use mesalab_report::html::Cell;
use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThinkingSection {
    /// Extra steps on the first observation before the first action (0 = none), one evaluation each.
    pub steps: Vec<usize>,
}

impl ThinkingSection {
    /// Distinct step counts in 0..=64, 0 among them (every gain is measured from it).
    pub fn validate(&self) -> Result<(), Invalid> {
        let t = &self.steps;
        if t.is_empty() || t.iter().any(|&k| k > 64) || (1..t.len()).any(|i| t[..i].contains(&t[i])) {
            return Err(Invalid::new("thinking.steps", "list distinct step counts in 0..=64, at least one"));
        }
        if !t.contains(&0) {
            return Err(Invalid::new("thinking.steps", "must contain 0 (the baseline every gain is measured from)"));
        }
        Ok(())
    }
}

impl Default for ThinkingSection {
    fn default() -> Self {
        Self { steps: vec![0, 1, 2, 4, 8] }
    }
}

/// The `[inside]` keys every per-square plan-probe experiment has, for [`check_plan_probes`].
pub struct PlanProbeKeys<'a> {
    pub levels: usize,
    /// `eval.levels`: the probe episodes are the first of the evaluation's.
    pub eval_levels: usize,
    pub horizons: &'a [usize],
    pub probe_l2: f64,
    pub test_fraction: f64,
}

/// Checks the plan probes' `[inside]` keys, naming the bad one and its range.
pub fn check_plan_probes(k: PlanProbeKeys<'_>) -> Result<(), Invalid> {
    if k.levels < 4 || k.levels > k.eval_levels {
        return Err(Invalid::new(
            "inside.levels",
            format!("must be in 4..=eval.levels ({}): the probes read those episodes", k.eval_levels),
        ));
    }
    if k.horizons.is_empty() || k.horizons.iter().any(|&h| h == 0 || h > 1000) {
        return Err(Invalid::new("inside.horizons", "list horizons in 1..=1000 moves, at least one"));
    }
    if !(k.probe_l2.is_finite() && k.probe_l2 > 0.0) {
        return Err(Invalid::new("inside.probe_l2", "must be a positive number"));
    }
    if !(k.test_fraction > 0.0 && k.test_fraction < 1.0) {
        return Err(Invalid::new("inside.test_fraction", "must lie strictly between 0 and 1"));
    }
    Ok(())
}

/// One probe's held-out score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub seed: u64,
    /// `trained`, `untrained` (the twin fed the same observations), `observation` (5 × 5 window).
    pub features: String,
    /// `drc.{d}.hook_h` / `drc.{d}.hook_c`, or `obs` for the window.
    pub hook: String,
    /// `agent within {h}`, `agent later`, `box pushed off later`.
    pub target: String,
    #[serde(
        serialize_with = "mesalab_analysis::stats::nan_as_null",
        deserialize_with = "mesalab_analysis::stats::null_as_nan"
    )]
    pub auroc: f64,
    /// F1 of the positive class at the probe's own threshold.
    #[serde(
        serialize_with = "mesalab_analysis::stats::nan_as_null",
        deserialize_with = "mesalab_analysis::stats::null_as_nan"
    )]
    pub f1: f64,
    /// The same probe fit to shuffled labels (trained features only; NaN elsewhere).
    #[serde(
        serialize_with = "mesalab_analysis::stats::nan_as_null",
        deserialize_with = "mesalab_analysis::stats::null_as_nan"
    )]
    pub shuffled: f64,
    /// Positive share of the test rows.
    pub positives: f64,
    pub n_test: usize,
}

pub const TARGET_LATER: &str = "agent later";

pub fn target_within(h: usize) -> String {
    format!("agent within {h}")
}

/// `n` start states of `env` for split `split`: one stream per level from the run's base seed
/// (`held-out/{split}/{i}`), a family no training env draws from, so every arm and seed plays
/// the same levels.
pub fn held_out_starts<E: Env>(env: &E, base_seed: u64, split: &str, n: usize) -> Vec<E::State> {
    let streams = Streams::new(Seed(base_seed));
    (0..n).map(|i| env.reset(&mut streams.stream(&format!("held-out/{split}/{i}")))).collect()
}

/// How one policy's next action is computed for a batch of envs.
pub trait Stepper {
    /// Floats of carried state per env (0 for a feed-forward policy).
    fn state_len(&self) -> usize;
    /// Logits `[n, actions]` and the new state `[n, state_len]` for observations `[n, obs_len]`.
    fn step(&self, obs: &[f32], starts: &[bool], state: &[f32]) -> (Vec<f32>, Vec<f32>);
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().expect("f32 tensor")
}

/// A recurrent policy as a [`Stepper`] (no gradients: pass `policy.valid()`).
pub struct RecurrentStepper<'a, P>(pub &'a P);

impl<P: RecurrentActorCritic> Stepper for RecurrentStepper<'_, P> {
    fn state_len(&self) -> usize {
        self.0.state_len()
    }
    fn step(&self, obs: &[f32], starts: &[bool], state: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (n, device) = (starts.len(), cpu());
        let obs = Tensor::from_data(TensorData::new(obs.to_vec(), [n, obs.len() / n]), &device);
        let state = Tensor::from_data(TensorData::new(state.to_vec(), [n, self.0.state_len()]), &device);
        let (out, next) = self.0.unroll(obs, starts, state);
        (to_vec(out.logits), to_vec(next))
    }
}

/// A feed-forward policy as a [`Stepper`].
pub struct FeedForwardStepper<'a, P>(pub &'a P);

impl<P: Policy> Stepper for FeedForwardStepper<'_, P> {
    fn state_len(&self) -> usize {
        0
    }
    fn step(&self, obs: &[f32], starts: &[bool], _: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let n = starts.len();
        let obs = Tensor::from_data(TensorData::new(obs.to_vec(), [n, obs.len() / n]), &cpu());
        (to_vec(self.0.forward(obs).logits), Vec::new())
    }
}

/// The state after `thinking` extra steps on the first observations `obs` (`[n, obs_len]`) of `n`
/// envs, from the zero state (the first step marks the episode start; nothing moves). Shared by
/// every experiment that gives a recurrent agent thinking steps, so "thinking" means one thing.
pub fn think(stepper: &dyn Stepper, obs: &[f32], n: usize, thinking: usize) -> Vec<f32> {
    let mut carried = vec![0.0f32; n * stepper.state_len()];
    for i in 0..thinking {
        carried = stepper.step(obs, &vec![i == 0; n], &carried).1;
    }
    carried
}

/// The states `stepper` (an untrained twin) reaches on another agent's observation sequences
/// (`[episode][t][obs_len]` in, `[episode][t][state_len]` out), no thinking steps.
pub fn replay_states<'e>(stepper: &dyn Stepper, sequences: impl Iterator<Item = &'e [Vec<f32>]>) -> Vec<Vec<Vec<f32>>> {
    (sequences)
        .map(|obs| {
            let mut state = vec![0.0f32; stepper.state_len()];
            (obs.iter().enumerate())
                .map(|(t, o)| {
                    state = stepper.step(o, &[t == 0], &state).1;
                    state.clone()
                })
                .collect()
        })
        .collect()
}

/// F1 of the positive class, predicting positive where `score > 0`.
pub fn f1(scores: &[f64], labels: &[bool]) -> f64 {
    let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
    for (&s, &l) in scores.iter().zip(labels) {
        match (s > 0.0, l) {
            (true, true) => tp += 1.0,
            (true, false) => fp += 1.0,
            (false, true) => fn_ += 1.0,
            _ => {}
        }
    }
    if tp == 0.0 { 0.0 } else { 2.0 * tp / (2.0 * tp + fp + fn_) }
}

/// Fits and scores one logistic probe (ridge `l2`): held-out (AUROC, F1, shuffled-label AUROC when
/// `shuffled`, else NaN); NaN scores when a split has one class only.
pub fn score_probe(
    l2: f64,
    x: &DMatrix<f64>,
    labels: &[bool],
    split: &Split,
    shuffled: bool,
    rng: &mut mesalab_core::StreamRng,
) -> (f64, f64, f64) {
    let kind = ClassifierKind::Logistic { l2 };
    let Ok(report) = probe::evaluate_classifier(kind, x, labels, split) else {
        return (f64::NAN, f64::NAN, f64::NAN);
    };
    let test_x = DMatrix::from_fn(split.test.len(), x.ncols(), |i, j| x[(split.test[i], j)]);
    let test_y: Vec<bool> = split.test.iter().map(|&i| labels[i]).collect();
    let f1 = f1(&report.probe.scores(&test_x), &test_y);
    let control = if shuffled {
        probe::shuffled_label_control(kind, x, labels, split, rng).unwrap_or(f64::NAN)
    } else {
        f64::NAN
    };
    (report.test_auroc, f1, control)
}

/// Per seed: the best `trained` probe's AUROC for `target` minus the better of the best
/// `untrained` and `observation` probes (NaN when any is missing or NaN: fails closed).
pub fn margins_over_controls(probes: &[ProbeResult], target: &str) -> Vec<(u64, f64)> {
    let mut seeds: Vec<u64> = probes.iter().map(|p| p.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    (seeds.into_iter())
        .map(|seed| {
            let best = |features: &str| {
                (probes.iter())
                    .filter(|p| p.seed == seed && p.target == target && p.features == features)
                    .map(|p| p.auroc)
                    .fold(f64::NAN, |m, a| if m.is_nan() || a > m { a } else { m })
            };
            // NaN anywhere (a probe that could not be scored) makes the margin NaN: fails closed.
            let (trained, twin, window) = (best("trained"), best("untrained"), best("observation"));
            let margin = if twin.is_nan() || window.is_nan() { f64::NAN } else { trained - twin.max(window) };
            (seed, margin)
        })
        .collect()
}

/// The probe table's columns, one row per [`probe_row`] .
pub const PROBE_HEADER: [&str; 9] =
    ["seed", "target", "features", "hook", "AUROC", "F1", "shuffled AUROC", "positives", "test rows"];

/// One probe's row of the probe table.
pub fn probe_row(p: &ProbeResult) -> Vec<Cell> {
    vec![
        Cell::int(p.seed as i64),
        Cell::text(&p.target),
        Cell::text(&p.features),
        Cell::text(&p.hook),
        Cell::fixed(p.auroc, 3),
        Cell::fixed(p.f1, 3),
        Cell::fixed(p.shuffled, 3),
        Cell::fixed(p.positives, 3),
        Cell::int(p.n_test as i64),
    ]
}
