//! Looking inside the trained icl-gd models.
//!
//! Output tests say the model *behaves* like GD; these ask where the computation lives.
//!
//! - **Probes** (Akyürek et al. 2023): at every layer boundary (0 = the input tokens, ℓ = after
//!   block ℓ−1) a ridge probe reads the residual stream, flattened over all positions, and is
//!   scored on held-out tasks (R²) for: Xᵀy, the reference GD's implied weights, w_OLS, and the
//!   predictions of k-step GD (k = 1..=layers) and OLS at the query. Controls: the same probe on
//!   the untrained model (same architecture, the seed's own init) and on shuffled targets.
//! - **Activation patching**: clean tasks vs corrupted tasks (same inputs, context labels from
//!   another teacher); each hook (and each head) is patched from clean into corrupted and the
//!   share of the clean prediction it restores is recorded.

use super::config::Config;
use burn::tensor::{Tensor, TensorData};
use mesalab_analysis::icl::{Algorithm, Tasks};
use mesalab_analysis::probe::{self, Split};
use mesalab_core::StreamRng;
use mesalab_nn::device::cpu;
use mesalab_nn::interp::{PatchEffect, patching_sweep};
use mesalab_nn::lsa::Lsa;
use mesalab_nn::{HookError, Hooks};
use nalgebra::DMatrix;
use rand_distr::{Distribution, Normal};

/// One probe score: a target read at one layer boundary of one model.
#[derive(Clone, Debug)]
pub struct ProbeScore {
    /// `trained` or `untrained`.
    pub model: &'static str,
    /// 0 = input tokens; ℓ = residual stream after block ℓ−1.
    pub layer: usize,
    pub target: String,
    pub test_r2: f64,
    /// Test R² of the same probe fitted on shuffled targets (≈ 0 when nothing leaks).
    pub shuffled_r2: f64,
}

/// The hook whose activation is the residual stream at layer boundary `layer`.
fn boundary_hook(layer: usize) -> String {
    if layer == 0 { "blocks.0.hook_resid_pre".into() } else { format!("blocks.{}.hook_resid_post", layer - 1) }
}

/// Probe targets on `tasks`: name and `[count, width]` values.
pub fn probe_targets(
    tasks: &Tasks,
    layers: usize,
    gd: &[Algorithm],
    reference: &Algorithm,
) -> Vec<(String, DMatrix<f64>)> {
    let (count, d, n) = (tasks.count, tasks.d, tasks.n_context);
    let mut xty = DMatrix::zeros(count, d);
    for t in 0..count {
        for i in 0..n {
            for (k, x) in tasks.xi(t, i).iter().enumerate() {
                xty[(t, k)] += tasks.yi(t, i) * x;
            }
        }
    }
    let weights = |alg: &Algorithm| DMatrix::from_row_slice(count, d, &alg.implied_weights(tasks));
    let column = |v: Vec<f64>| DMatrix::from_column_slice(count, 1, &v);
    let mut out = vec![
        ("Xᵀy".to_string(), xty),
        (format!("w of {}", reference.label()), weights(reference)),
        ("w_OLS".to_string(), weights(&Algorithm::Ols)),
    ];
    for alg in gd.iter().take(layers) {
        out.push((format!("ŷ of {}", alg.label()), column(alg.predict(tasks))));
    }
    out.push(("ŷ of OLS".to_string(), column(Algorithm::Ols.predict(tasks))));
    out
}

/// Residual streams at every layer boundary, each `[count, (N+1)·(d+1)]` (f64).
fn residual_streams(model: &Lsa, tasks: &Tasks) -> Result<Vec<DMatrix<f64>>, HookError> {
    let (n, d, count) = (tasks.n_context, tasks.d, tasks.count);
    let layers = model.spec.layers;
    let names: Vec<String> = (0..=layers).map(boundary_hook).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut hooks = Hooks::cache_only(&refs);
    let tokens = Tensor::<3>::from_data(TensorData::new(tasks.tokens(), [count, n + 1, d + 1]), &cpu());
    model.predict_hooked(tokens, &mut hooks);
    let cache = hooks.finish()?;
    let width = (n + 1) * (d + 1);
    Ok(names
        .iter()
        .map(|name| {
            let (_, values) = cache.values(name).expect("cached boundary");
            // [count, N+1, d+1] -> [count, (N+1)(d+1)]: one row of features per task.
            DMatrix::from_row_iterator(count, width, values.into_iter().map(f64::from))
        })
        .collect())
}

/// Ridge probes for every target at every layer boundary of `trained` and `untrained`.
pub fn probe_layers(
    cfg: &Config,
    trained: &Lsa,
    untrained: &Lsa,
    tasks: &Tasks,
    targets: &[(String, DMatrix<f64>)],
    rng: &mut StreamRng,
) -> anyhow::Result<Vec<ProbeScore>> {
    let split: Split = probe::holdout_split(tasks.count, cfg.inside.probe_test_fraction, rng)?;
    let mut out = Vec::new();
    for (label, model) in [("trained", trained), ("untrained", untrained)] {
        for (layer, x) in residual_streams(model, tasks)?.iter().enumerate() {
            for (name, y) in targets {
                let (_, report) = probe::evaluate_regression(x, y, cfg.inside.probe_l2, &split)?;
                let shuffled = probe::shuffled_target_control(x, y, cfg.inside.probe_l2, &split, rng)?;
                out.push(ProbeScore {
                    model: label,
                    layer,
                    target: name.clone(),
                    test_r2: report.test_r2,
                    shuffled_r2: shuffled,
                });
            }
        }
    }
    Ok(out)
}

/// The same inputs with context labels from a fresh teacher per task (the query target too).
pub fn corrupt_labels(tasks: &Tasks, w_scale: f64, rng: &mut StreamRng) -> Tasks {
    let teacher = Normal::new(0.0, w_scale).expect("finite teacher scale");
    let mut out = tasks.clone();
    let n = tasks.n_context;
    for t in 0..tasks.count {
        let w: Vec<f64> = (0..tasks.d).map(|_| teacher.sample(rng)).collect();
        for i in 0..=n {
            let y: f64 = tasks.xi(t, i).iter().zip(&w).map(|(a, b)| a * b).sum();
            out.y[t * (n + 1) + i] = y;
        }
        out.w[t * tasks.d..(t + 1) * tasks.d].copy_from_slice(&w);
    }
    out
}

/// Patches every hook (and head) of `model` from `clean` into `corrupted`; returns the share of the
/// clean prediction each restores.
pub fn patching(model: &Lsa, clean: &Tasks, corrupted: &Tasks) -> anyhow::Result<Vec<PatchEffect>> {
    let (n, d, count) = (clean.n_context, clean.d, clean.count);
    let device = cpu();
    let input = |tasks: &Tasks| Tensor::<3>::from_data(TensorData::new(tasks.tokens(), [count, n + 1, d + 1]), &device);
    let run = |tasks: &Tasks, mut hooks: Hooks| -> Result<(Vec<f64>, mesalab_nn::ActivationCache), HookError> {
        let pred = model.predict_hooked(input(tasks), &mut hooks).into_data().try_to_vec::<f32>().expect("f32");
        Ok((pred.into_iter().map(f64::from).collect(), hooks.finish()?))
    };
    let (clean_metric, clean_cache) = run(clean, Hooks::cache_all())?;
    let (corrupted_metric, corrupted_cache) = run(corrupted, Hooks::cache_all())?;
    let effects = patching_sweep(
        &model.hook_points(),
        &clean_cache,
        &corrupted_cache,
        &clean_metric,
        &corrupted_metric,
        true,
        |hooks| run(corrupted, hooks).map(|(m, _)| m),
    )?;
    Ok(effects)
}

/// The hook points of an untrained model of this config, with their shapes on two tasks.
pub fn hook_shapes(cfg: &Config) -> anyhow::Result<Vec<mesalab_nn::interp::HookShape>> {
    let streams = mesalab_core::Streams::new(mesalab_core::Seed(cfg.run.seed));
    let model = Lsa::init(cfg.lsa_spec(), cfg.model.init_std, &mut streams.stream("init"), &cpu());
    let tasks = Tasks::sample(&cfg.task_spec(), 2, &mut streams.stream("hook-shapes"));
    let (n, d) = (tasks.n_context, tasks.d);
    let mut hooks = Hooks::cache_all();
    model
        .predict_hooked(Tensor::<3>::from_data(TensorData::new(tasks.tokens(), [2, n + 1, d + 1]), &cpu()), &mut hooks);
    Ok(mesalab_nn::interp::hook_shapes(&model.hook_points(), &hooks.finish()?))
}
