//! # icl-emergence: when does in-context regression training produce a general learner?
//!
//! Raventós et al. (NeurIPS 2023): pretrain on tasks whose teachers come from a *finite* pool of
//! M vectors. With few vectors the loss-minimising model is a memoriser — it identifies which pool
//! vector produced the context, as the Bayes-optimal estimator for the pool prior (dMMSE) does,
//! and fails on teachers outside the pool. With enough vectors it becomes a general in-context
//! learner — it tracks the algorithms that are optimal for the full Gaussian prior (ridge at
//! λ = σ²; for icl-gd's one-layer transformer, one step of GD) on pool and fresh tasks alike. The
//! transition M* is where the mesa-optimizer appears.
//!
//! Reading order: [`run`] fits the fresh-task baselines, then per seed and pool size trains one
//! icl-gd transformer ([`train_on_pool`]) and scores it and the baselines on the same fresh and
//! pool tasks ([`evaluate`]); [`locate_transition`] finds each seed's M*, [`verdict`] decides.

pub mod audit;
pub mod config;
mod report;

pub use config::Config;
pub use report::report;

use crate::context::{Interrupted, RunContext};
use crate::icl_gd::predict;
use burn::tensor::{Tensor, TensorData};
use mesalab_analysis::icl::{Algorithm, Tasks, fit_one_step_gd};
use mesalab_analysis::icl_pool::Pool;
use mesalab_analysis::stats::{Summary, half_mse};
use mesalab_core::{Seed, Streams};
use mesalab_nn::device::cpu_autodiff;
use mesalab_nn::lsa::Lsa;
use mesalab_store::{MetricRow, ResultTable};
use mesalab_train::supervised::Supervised;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

/// One trained model (a seed and a pool size) against the baselines, on the same tasks. Losses
/// are 0.5·MSE; SPD is Akyürek et al.'s mean squared prediction difference.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelResult {
    pub seed: u64,
    /// Pool size; `None` is M = ∞ (fresh teachers every step).
    pub m: Option<u64>,
    /// The model on fresh tasks (teachers from the full prior) and on pool tasks.
    pub fresh_loss: f64,
    pub pool_loss: f64,
    /// dMMSE for this model's pool (for M = ∞: ridge at λ = σ², the Bayes-optimal estimator).
    pub dmmse_fresh_loss: f64,
    pub dmmse_pool_loss: f64,
    pub ridge_pool_loss: f64,
    pub gd_pool_loss: f64,
    pub spd_dmmse_fresh: f64,
    pub spd_ridge_fresh: f64,
    pub spd_gd_fresh: f64,
    pub spd_dmmse_pool: f64,
    pub spd_ridge_pool: f64,
    pub spd_gd_pool: f64,
}

/// `min` that keeps NaN (f64::min would drop it and let a broken value pass).
fn min_or_nan(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.min(b) }
}

impl ModelResult {
    /// SPD on fresh tasks to the nearer general algorithm (ridge or one-step GD) ÷ SPD to dMMSE:
    /// below 1 the model is closer to a general learner than to the pool's Bayes estimator.
    pub fn fresh_distance_ratio(&self) -> f64 {
        min_or_nan(self.spd_ridge_fresh, self.spd_gd_fresh) / self.spd_dmmse_fresh
    }

    /// The same ratio on pool tasks.
    pub fn pool_distance_ratio(&self) -> f64 {
        min_or_nan(self.spd_ridge_pool, self.spd_gd_pool) / self.spd_dmmse_pool
    }

    fn label(&self) -> String {
        m_label(self.m)
    }
}

/// `M = 16` / `M = ∞` as the report and check names write it.
pub fn m_label(m: Option<u64>) -> String {
    match m {
        Some(m) => format!("M = {m}"),
        None => "M = ∞".into(),
    }
}

/// The fresh-task baselines, shared by every model: fitted on the fit tasks, scored on the fresh
/// evaluation tasks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FreshBaselines {
    /// Ridge at the Bayes-optimal λ = σ² (unit prior variance).
    pub ridge_loss: f64,
    /// One-step GD from w = 0 with η/N fitted on fresh tasks (icl-gd's reference).
    pub gd_loss: f64,
    pub gd_eta_over_n: f64,
    pub zero_loss: f64,
    pub lambda: f64,
}

/// Where one seed's model turns from memoriser into general learner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub seed: u64,
    /// The smallest finite M from which on (at it and every larger finite M of the sweep) the
    /// model is closer on fresh tasks to ridge or GD than to dMMSE; `None` when it is not so even
    /// at the largest finite M.
    pub m_star: Option<u64>,
    /// The sweep's M just below `m_star` (M* lies in (below, m_star]); `None` when `m_star` is
    /// the smallest M (the transition lies at or below the sweep).
    pub below: Option<u64>,
}

/// Each seed's M* from its models' fresh distance ratios (see [`Transition::m_star`]). A NaN
/// ratio counts as "not general", so a broken model never creates a transition.
pub fn locate_transition(results: &[ModelResult], seed: u64) -> Transition {
    let mut finite: Vec<&ModelResult> = results.iter().filter(|r| r.seed == seed && r.m.is_some()).collect();
    finite.sort_by_key(|r| r.m);
    let general = |r: &ModelResult| r.fresh_distance_ratio() < 1.0;
    let mut start = finite.len();
    while start > 0 && general(finite[start - 1]) {
        start -= 1;
    }
    match finite.get(start) {
        Some(r) => Transition { seed, m_star: r.m, below: start.checked_sub(1).and_then(|i| finite[i].m) },
        None => Transition { seed, m_star: None, below: None },
    }
}

/// The share of the way from the zero predictor to one-step GD that a model covers on fresh tasks.
fn progress(r: &ModelResult, b: &FreshBaselines) -> f64 {
    (b.zero_loss - r.fresh_loss) / (b.zero_loss - b.gd_loss)
}

/// The verdict: a transition exists — at the smallest M the model tracks dMMSE and fails on fresh
/// tasks, at the largest finite M it tracks ridge / one-step GD on fresh and on pool tasks, and
/// every converged seed has an M* inside the sweep. A seed converged when its model at the largest
/// M (∞ when swept) covered `verdict.min_progress` of the way from the zero predictor to GD;
/// unconverged seeds are listed and left out.
pub fn verdict(cfg: &Config, results: &[ModelResult], b: &FreshBaselines) -> crate::verdict::Verdict {
    use crate::verdict::{Bound, Check, Verdict};
    let v = &cfg.verdict;
    let sizes = cfg.pool_sizes();
    let (smallest, largest_finite, largest) =
        (sizes.first().copied().flatten(), cfg.pool.sizes.last().copied(), sizes.last().copied().flatten());
    let mut seeds: Vec<u64> = results.iter().map(|r| r.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    let at = |seed: u64, m: Option<u64>| results.iter().find(|r| r.seed == seed && r.m == m);
    let converged = |seed: u64| at(seed, largest).is_some_and(|r| progress(r, b) >= v.min_progress);
    let (ok, unconverged): (Vec<u64>, Vec<u64>) = seeds.iter().partition(|s| converged(**s));
    let per = |m: Option<u64>, f: &dyn Fn(&ModelResult) -> f64| -> Vec<(u64, f64)> {
        ok.iter().map(|&s| (s, at(s, m).map(f).unwrap_or(f64::NAN))).collect()
    };
    let (small, large) = (m_label(smallest), m_label(largest_finite));
    let checks = vec![
        Check::worst_seed(
            format!("{small}: fresh SPD to ridge/GD ÷ SPD to dMMSE"),
            Bound::AtLeast(v.distance_margin),
            per(smallest, &|r| r.fresh_distance_ratio()),
        ),
        Check::worst_seed(
            format!("{small}: fresh loss ÷ one-step GD's"),
            Bound::AtLeast(v.min_fresh_failure_ratio),
            per(smallest, &|r| r.fresh_loss / b.gd_loss),
        ),
        Check::worst_seed(
            format!("{large}: fresh SPD to ridge/GD ÷ SPD to dMMSE"),
            Bound::AtMost(1.0 / v.distance_margin),
            per(largest_finite, &|r| r.fresh_distance_ratio()),
        ),
        Check::worst_seed(
            format!("{large}: pool SPD to ridge/GD ÷ SPD to dMMSE"),
            Bound::AtMost(1.0 / v.distance_margin),
            per(largest_finite, &|r| r.pool_distance_ratio()),
        ),
        Check::worst_seed(
            "log₂ M* (above the smallest M; NaN: no transition in the sweep)",
            Bound::Above(smallest.map_or(f64::NAN, |m| (m as f64).log2())),
            ok.iter().map(|&s| (s, locate_transition(results, s).m_star.map_or(f64::NAN, |m| (m as f64).log2()))),
        ),
        Check::seeds(v.min_seeds, ok.len()),
    ];
    let transitions: Vec<Transition> = ok.iter().map(|&s| locate_transition(results, s)).collect();
    let log2: Vec<f64> = transitions.iter().filter_map(|t| t.m_star).map(|m| (m as f64).log2()).collect();
    Verdict::new(
        "a task-diversity transition exists: at the smallest M the model tracks dMMSE and fails on fresh tasks, \
         at the largest finite M it tracks ridge / one-step GD on fresh and pool tasks",
        "dMMSE for each model's own pool, ridge at λ = σ² and one-step GD (η fitted on fresh tasks), on the same \
         held-out fresh and pool tasks",
        checks,
    )
    .with_unconverged_seeds(unconverged)
    .with_context(json!({
        "transitions": transitions,
        "log2_m_star": Summary::of(&log2),
    }))
}

/// Runs the experiment; returns the JSON written to `summary.json`.
pub fn run(cfg: &Config, ctx: &RunContext) -> anyhow::Result<serde_json::Value> {
    let spec = cfg.task_spec();
    let base = Streams::new(Seed(cfg.run.seed));
    let noise_var = cfg.task.noise_var;

    // Fresh tasks and the general algorithms: one set for every seed and pool size.
    ctx.progress.start("fitting baselines", 1);
    let fit = Tasks::sample(&spec, cfg.eval.fit_tasks, &mut base.stream("fit-tasks"));
    let fresh = Tasks::sample(&spec, cfg.eval.fresh_tasks, &mut base.stream("fresh-tasks"));
    let ridge = Algorithm::Ridge { lambda: noise_var };
    let gd = Algorithm::Gd { steps: 1, eta_over_n: fit_one_step_gd(&fit), gamma: 0.0 };
    let fresh_ref = Reference::of(&fresh, ridge, gd);
    let baselines = FreshBaselines {
        ridge_loss: fresh.loss(&fresh_ref.ridge),
        gd_loss: fresh.loss(&fresh_ref.gd),
        gd_eta_over_n: match gd {
            Algorithm::Gd { eta_over_n, .. } => eta_over_n,
            _ => f64::NAN,
        },
        zero_loss: Algorithm::Zero.loss(&fresh),
        lambda: noise_var,
    };
    ctx.progress.advance(1);
    ctx.progress.finish();

    let mut results = Vec::new();
    for seed in (0..cfg.run.seeds).map(|i| cfg.run.seed + i) {
        let streams = Streams::new(Seed(seed));
        for m in cfg.pool_sizes() {
            let pool = m.map(|m| Pool::sample(&spec, m as usize, &mut streams.indexed("pool", m)));
            let model = train_on_pool(cfg, ctx, seed, m, pool.as_ref())?;
            save_checkpoint(ctx, seed, m, &model)?;
            ctx.progress.start(&format!("seed {seed}, {}: evaluating", m_label(m)), 1);
            let r = evaluate(cfg, &model, seed, m, pool.as_ref(), &fresh, &fresh_ref, &streams)?;
            ctx.progress.advance(1);
            ctx.progress.finish();
            results.push(r);
        }
    }

    store_results(ctx, &results, &baselines)?;
    let verdict = verdict(cfg, &results, &baselines);
    let summary = json!({
        "experiment": "icl-emergence",
        "seeds": cfg.run.seed..cfg.run.seed + cfg.run.seeds,
        "pool_sizes": cfg.pool_sizes(),
        "results": results,
        "per_m": per_m(cfg, &results),
        "baselines": baselines,
        "verdict": verdict.to_json(),
    });
    ctx.store.put_json(ctx.run_id, "summary", &summary)?;
    Ok(summary)
}

/// The general algorithms and their predictions on one task set, computed once and reused.
#[derive(Clone)]
struct Reference {
    ridge_alg: Algorithm,
    gd_alg: Algorithm,
    ridge: Vec<f64>,
    gd: Vec<f64>,
}

impl Reference {
    fn of(tasks: &Tasks, ridge: Algorithm, gd: Algorithm) -> Self {
        Self { ridge_alg: ridge, gd_alg: gd, ridge: ridge.predict(tasks), gd: gd.predict(tasks) }
    }
}

fn spd(a: &[f64], b: &[f64]) -> f64 {
    2.0 * half_mse(a, b)
}

/// Trains one icl-gd transformer with Adam on batches of tasks whose teachers come from `pool`
/// (fresh teachers every step when `pool` is `None`). The init is the seed's, the same for every
/// pool size, so a seed's models differ only in the pool they saw.
/// Where the model of (`seed`, `m`) is saved, relative to the run directory:
/// `seed-N/M-<m>/model.safetensors` (`M-inf` for fresh tasks).
pub fn checkpoint_path(seed: u64, m: Option<u64>) -> std::path::PathBuf {
    let m = m.map_or("inf".to_string(), |m| m.to_string());
    std::path::PathBuf::from(format!("seed-{seed}/M-{m}/model.safetensors"))
}

fn save_checkpoint(ctx: &RunContext, seed: u64, m: Option<u64>, model: &Lsa) -> anyhow::Result<()> {
    let rel = checkpoint_path(seed, m);
    let path = ctx.run_dir.join(&rel);
    let dir = path.parent().expect("has a parent");
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    mesalab_nn::checkpoint::save(model, &path).map_err(anyhow::Error::msg)?;
    let name = rel.parent().expect("has a parent").display().to_string();
    ctx.store.add_artifact(
        ctx.run_id,
        &mesalab_store::Artifact::new(format!("{name}/model"), mesalab_store::ArtifactKind::Checkpoint, rel),
    )?;
    Ok(())
}

fn train_on_pool(
    cfg: &Config,
    ctx: &RunContext,
    seed: u64,
    m: Option<u64>,
    pool: Option<&Pool>,
) -> anyhow::Result<Lsa> {
    let streams = Streams::new(Seed(seed));
    let device = cpu_autodiff();
    let spec = cfg.task_spec();
    let mut model = Lsa::init(cfg.lsa_spec(), cfg.model.init_std, &mut streams.stream("init"), &device);
    let mut trainer = Supervised::new(&cfg.adam());
    let mut data_rng = streams.indexed("train-data", m.unwrap_or(u64::MAX));
    let (b, n, d) = (cfg.train.batch_size, cfg.task.n_context, cfg.task.d);
    let curve = format!("train_loss/{}", m.map_or("inf".to_string(), |m| m.to_string()));
    let mut rows = Vec::new();
    ctx.progress.start(&format!("seed {seed}, {}: training", m_label(m)), cfg.train.steps);
    for step in 0..cfg.train.steps {
        if ctx.check_interrupt().is_err() {
            ctx.store.log_metrics(ctx.run_id, &rows)?;
            return Err(Interrupted.into());
        }
        let batch = match pool {
            Some(p) => p.tasks(&spec, b, &mut data_rng),
            None => Tasks::sample(&spec, b, &mut data_rng),
        };
        let tokens = Tensor::<3>::from_data(TensorData::new(batch.tokens(), [b, n + 1, d + 1]), &device);
        let targets: Vec<f32> = batch.targets().iter().map(|v| *v as f32).collect();
        let targets = Tensor::<1>::from_data(TensorData::new(targets, [b]), &device);
        let loss = (model.predict(tokens) - targets).powf_scalar(2.0).mean().mul_scalar(0.5);
        let (next, value) = trainer.step(model, loss)?;
        model = next;
        if step % cfg.train.log_every == 0 || step + 1 == cfg.train.steps {
            rows.push(MetricRow::new(Some(seed), step as i64, curve.clone(), f64::from(value)));
        }
        ctx.progress.advance(1);
    }
    ctx.store.log_metrics(ctx.run_id, &rows)?;
    ctx.progress.finish();
    Ok(model)
}

/// The model, dMMSE, ridge and one-step GD on the shared fresh tasks and on held-out tasks from
/// the model's own pool (for M = ∞ the pool tasks are the fresh tasks and dMMSE is ridge).
#[allow(clippy::too_many_arguments)]
fn evaluate(
    cfg: &Config,
    model: &Lsa,
    seed: u64,
    m: Option<u64>,
    pool: Option<&Pool>,
    fresh: &Tasks,
    fresh_ref: &Reference,
    streams: &Streams,
) -> anyhow::Result<ModelResult> {
    use burn::module::Module;
    let inference = model.valid();
    let noise_var = cfg.task.noise_var;
    let model_fresh = predict(&inference, fresh);
    let (pool_tasks, dmmse_fresh) = match pool {
        Some(p) => (
            p.tasks(&cfg.task_spec(), cfg.eval.pool_tasks, &mut streams.indexed("pool-eval", m.unwrap_or(0))),
            p.dmmse_predict(fresh, noise_var),
        ),
        None => (fresh.clone(), fresh_ref.ridge.clone()),
    };
    let (pool_ref, dmmse_pool) = match pool {
        Some(p) => {
            (Reference::of(&pool_tasks, fresh_ref.ridge_alg, fresh_ref.gd_alg), p.dmmse_predict(&pool_tasks, noise_var))
        }
        None => (fresh_ref.clone(), fresh_ref.ridge.clone()),
    };
    let model_pool = predict(&inference, &pool_tasks);
    let r = ModelResult {
        seed,
        m,
        fresh_loss: fresh.loss(&model_fresh),
        pool_loss: pool_tasks.loss(&model_pool),
        dmmse_fresh_loss: fresh.loss(&dmmse_fresh),
        dmmse_pool_loss: pool_tasks.loss(&dmmse_pool),
        ridge_pool_loss: pool_tasks.loss(&pool_ref.ridge),
        gd_pool_loss: pool_tasks.loss(&pool_ref.gd),
        spd_dmmse_fresh: spd(&model_fresh, &dmmse_fresh),
        spd_ridge_fresh: spd(&model_fresh, &fresh_ref.ridge),
        spd_gd_fresh: spd(&model_fresh, &fresh_ref.gd),
        spd_dmmse_pool: spd(&model_pool, &dmmse_pool),
        spd_ridge_pool: spd(&model_pool, &pool_ref.ridge),
        spd_gd_pool: spd(&model_pool, &pool_ref.gd),
    };
    Ok(r)
}

/// Mean / min / max / std over seeds of every metric, per pool size (key `m_label`).
fn per_m(cfg: &Config, results: &[ModelResult]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for m in cfg.pool_sizes() {
        let of_m: Vec<&ModelResult> = results.iter().filter(|r| r.m == m).collect();
        let mut metrics: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for r in &of_m {
            for (k, v) in metric_values(r) {
                metrics.entry(k).or_default().push(v);
            }
        }
        let closer = of_m.iter().filter(|r| r.fresh_distance_ratio() < 1.0).count();
        let mut entry: serde_json::Map<String, serde_json::Value> =
            metrics.iter().map(|(k, v)| (k.to_string(), json!(Summary::of(v)))).collect();
        entry.insert("m".into(), json!(m));
        entry.insert("seeds_closer_to_general".into(), json!(closer));
        entry.insert("seeds".into(), json!(of_m.len()));
        out.insert(m_label(m), serde_json::Value::Object(entry));
    }
    serde_json::Value::Object(out)
}

/// The per-model numbers by name, the derived distance ratios included.
fn metric_values(r: &ModelResult) -> Vec<(&'static str, f64)> {
    vec![
        ("fresh_loss", r.fresh_loss),
        ("pool_loss", r.pool_loss),
        ("dmmse_fresh_loss", r.dmmse_fresh_loss),
        ("dmmse_pool_loss", r.dmmse_pool_loss),
        ("ridge_pool_loss", r.ridge_pool_loss),
        ("gd_pool_loss", r.gd_pool_loss),
        ("spd_dmmse_fresh", r.spd_dmmse_fresh),
        ("spd_ridge_fresh", r.spd_ridge_fresh),
        ("spd_gd_fresh", r.spd_gd_fresh),
        ("spd_dmmse_pool", r.spd_dmmse_pool),
        ("spd_ridge_pool", r.spd_ridge_pool),
        ("spd_gd_pool", r.spd_gd_pool),
        ("fresh_distance_ratio", r.fresh_distance_ratio()),
        ("pool_distance_ratio", r.pool_distance_ratio()),
    ]
}

fn store_results(ctx: &RunContext, results: &[ModelResult], b: &FreshBaselines) -> anyhow::Result<()> {
    let names: Vec<&str> = metric_values(&ModelResult::default()).iter().map(|(k, _)| *k).collect();
    let mut columns = vec!["seed".to_string(), "m".to_string()];
    columns.extend(names.iter().map(|s| s.to_string()));
    let rows = results
        .iter()
        .map(|r| {
            let mut row = vec![json!(r.seed), json!(r.m)];
            row.extend(metric_values(r).iter().map(|(_, v)| json!(v)));
            row
        })
        .collect();
    ctx.store.put_table(ctx.run_id, &ResultTable { name: "emergence".into(), columns, rows })?;
    let metrics: Vec<MetricRow> = results
        .iter()
        .flat_map(|r| {
            let label = r.label();
            metric_values(r)
                .into_iter()
                .map(move |(k, v)| MetricRow::new(Some(r.seed), 0, format!("final/{label}/{k}"), v))
        })
        .collect();
    ctx.store.log_metrics(ctx.run_id, &metrics)?;
    let rows = vec![
        vec![json!("ridge (λ = σ²)"), json!(b.lambda), json!(null), json!(b.ridge_loss)],
        vec![json!("one-step GD"), json!(null), json!(b.gd_eta_over_n), json!(b.gd_loss)],
        vec![json!("zero predictor"), json!(null), json!(null), json!(b.zero_loss)],
    ];
    let columns = ["algorithm", "lambda", "eta_over_n", "fresh_loss"].iter().map(|s| s.to_string()).collect();
    ctx.store.put_table(ctx.run_id, &ResultTable { name: "baselines".into(), columns, rows })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baselines() -> FreshBaselines {
        FreshBaselines { ridge_loss: 0.2, gd_loss: 0.6, gd_eta_over_n: 0.05, zero_loss: 2.0, lambda: 0.25 }
    }

    /// A model that is `dmmse_share` of the way from a general learner to dMMSE: the SPDs to
    /// dMMSE and to GD are set so their ratio is `ratio` (GD nearer when ratio < 1).
    fn result(seed: u64, m: Option<u64>, ratio: f64, fresh_loss: f64) -> ModelResult {
        ModelResult {
            seed,
            m,
            fresh_loss,
            pool_loss: 0.3,
            dmmse_fresh_loss: 1.0,
            dmmse_pool_loss: 0.15,
            ridge_pool_loss: 0.2,
            gd_pool_loss: 0.6,
            spd_dmmse_fresh: 1.0,
            spd_ridge_fresh: 2.0 * ratio.max(1e-9),
            spd_gd_fresh: ratio,
            spd_dmmse_pool: 1.0,
            spd_ridge_pool: 2.0 * ratio.max(1e-9),
            spd_gd_pool: ratio,
        }
    }

    fn cfg() -> Config {
        let mut c = Config::default();
        c.pool.sizes = vec![1, 4, 16, 64];
        c.pool.fresh = true;
        c
    }

    /// A seed whose models turn general from `m_star` on (ratios 5 below, 0.1 from it).
    fn seed_with_transition(seed: u64, m_star: u64) -> Vec<ModelResult> {
        let mut out: Vec<ModelResult> = [1, 4, 16, 64]
            .into_iter()
            .map(|m| if m < m_star { result(seed, Some(m), 5.0, 1.5) } else { result(seed, Some(m), 0.1, 0.62) })
            .collect();
        out.push(result(seed, None, 0.0, 0.6));
        out
    }

    #[test]
    fn a_clear_transition_is_a_yes_with_m_star_per_seed() {
        let results: Vec<ModelResult> =
            [(0, 4), (1, 16), (2, 4)].into_iter().flat_map(|(s, m)| seed_with_transition(s, m)).collect();
        let v = verdict(&cfg(), &results, &baselines());
        assert!(v.holds, "{:#?}", v.checks);
        assert_eq!(v.answer, "yes");
        let t = locate_transition(&results, 1);
        assert_eq!((t.m_star, t.below), (Some(16), Some(4)));
        assert_eq!(v.context["log2_m_star"]["max"], 4.0);
    }

    #[test]
    fn a_memoriser_at_every_size_is_a_measured_no() {
        // Closer to dMMSE at every finite M: no transition in the sweep, so M* is NaN and the
        // large-M checks fail with their measured ratios.
        let results: Vec<ModelResult> = (0..3)
            .flat_map(|s| {
                let mut r: Vec<ModelResult> =
                    [1, 4, 16, 64].into_iter().map(|m| result(s, Some(m), 3.0, 1.5)).collect();
                r.push(result(s, None, 0.0, 0.6));
                r
            })
            .collect();
        let v = verdict(&cfg(), &results, &baselines());
        assert_eq!((v.holds, v.answer.as_str()), (false, "no"));
        let large = v.check("M = 64: fresh SPD to ridge/GD ÷ SPD to dMMSE").unwrap();
        assert_eq!((large.value, large.pass), (3.0, false));
        let star = &v.checks[4];
        assert!(star.value.is_nan() && !star.pass);
        assert_eq!(locate_transition(&results, 0).m_star, None);
        // A general learner already at M = 1 (the transition is below the sweep) is also a no.
        let early: Vec<ModelResult> = (0..3).flat_map(|s| seed_with_transition(s, 1)).collect();
        let v = verdict(&cfg(), &early, &baselines());
        assert!(!v.holds);
        assert!(!v.check("M = 1: fresh loss ÷ one-step GD's").unwrap().pass);
        assert_eq!(locate_transition(&early, 0), Transition { seed: 0, m_star: Some(1), below: None });
    }

    #[test]
    fn a_nan_anywhere_fails_and_never_creates_a_transition() {
        let mut results: Vec<ModelResult> = (0..3).flat_map(|s| seed_with_transition(s, 4)).collect();
        // Seed 1's model at M = 64 diverged: its SPDs are NaN.
        let broken = results.iter_mut().find(|r| r.seed == 1 && r.m == Some(64)).unwrap();
        broken.spd_gd_fresh = f64::NAN;
        broken.spd_gd_pool = f64::NAN;
        assert!(broken.fresh_distance_ratio().is_nan(), "min must keep NaN");
        let v = verdict(&cfg(), &results, &baselines());
        assert!(!v.holds);
        let large = v.check("M = 64: fresh SPD to ridge/GD ÷ SPD to dMMSE").unwrap();
        assert!(large.value.is_nan() && large.worst_seed == Some(1) && !large.pass);
        assert_eq!(locate_transition(&results, 1).m_star, None);
        // A NaN fresh loss at M = ∞ means the seed did not converge; with two seeds left the
        // verdict is "did not converge", not "no".
        let mut results: Vec<ModelResult> = (0..3).flat_map(|s| seed_with_transition(s, 4)).collect();
        results.iter_mut().find(|r| r.seed == 2 && r.m.is_none()).unwrap().fresh_loss = f64::NAN;
        let v = verdict(&cfg(), &results, &baselines());
        assert_eq!((v.holds, v.answer.as_str()), (false, "did not converge"));
        assert_eq!(v.did_not_converge, vec![2]);
    }
}
