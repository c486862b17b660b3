//! PPO training of one (variant, seed) policy with its learning curves in the store.

use crate::context::RunContext;
use crate::train_state::TrainState;
use anyhow::Context as _;
use mesalab_core::{Seed, Streams};
use mesalab_envs::Env;
use mesalab_nn::device::cpu_autodiff;
use mesalab_nn::policy::{AnyPolicy, Policy, PolicyConfig};
use mesalab_store::{Artifact, ArtifactKind, MetricRow};
use mesalab_train::ppo::{self, PROGRESS_SECTION, PpoConfig, PpoProgress, SaveState, UpdateLog};
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

/// `<variant>/<name>` (or `name` when `variant` is empty).
pub fn metric_name(variant: &str, name: &str) -> String {
    if variant.is_empty() { name.to_string() } else { format!("{variant}/{name}") }
}

/// One PPO training job.
#[derive(Clone, Debug)]
pub struct TrainJob<'a> {
    /// Prefix of metric names and checkpoint directory (`""` for none), e.g. `rp-5`.
    pub variant: &'a str,
    pub seed: u64,
    pub ppo: &'a PpoConfig,
    pub model: &'a PolicyConfig,
    /// Log metrics every this many updates (and always the first and the last).
    pub log_every: usize,
    /// Save the resumable training state every this many updates (and on Ctrl-C, and at the end).
    pub checkpoint_every: usize,
}

/// What training cost and where it ended.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Training {
    /// Mean return / hidden performance of the training episodes of the last 10 updates.
    pub final_return: Option<f64>,
    pub final_performance: Option<f64>,
    pub env_steps: u64,
    pub seconds: f64,
    /// Environment steps per second of wall clock (updates included).
    pub steps_per_second: f64,
    /// The checkpoint, relative to the run directory.
    pub checkpoint: PathBuf,
}

/// Updates whose training episodes [`Training::final_return`] averages.
const FINAL_UPDATES: usize = 10;

/// Trains `job.model` with PPO on `env` for seed `job.seed` (init from the seed's `init` stream).
/// Every `log_every` updates logs, under `<variant>/`: `train/return`, `train/performance`,
/// `train/length`, `train/<event>` (share of finished episodes), `train/approx_kl`,
/// `train/entropy`, `train/value_loss`, `train/policy_loss`, `train/explained_variance`,
/// `train/clipfrac`, `train/sps`; x = environment steps. Saves the final policy to
/// `run_dir/<variant>/seed-N/policy.safetensors` and records it as an artifact. Honours Ctrl-C
/// (saving the training state first). Saves a resumable state in `<variant>/seed-N/train-state.bin`
/// every `checkpoint_every` updates and at the end, and continues from one an earlier attempt left.
pub fn train_policy<E: Env>(ctx: &RunContext, env: E, job: &TrainJob) -> anyhow::Result<(AnyPolicy, Training)> {
    let streams = Streams::new(Seed(job.seed));
    let spec = env.spec().clone();
    let policy = job.model.init(spec.obs_shape, spec.actions.len(), &mut streams.stream("init"), &cpu_autodiff());
    let label = format!("{} seed {}: training", if job.variant.is_empty() { "" } else { job.variant }, job.seed);
    let num_updates = job.ppo.num_updates();
    ctx.progress.start(label.trim_start(), num_updates as u64);
    let start = Instant::now();
    let state =
        TrainState::new(ctx.run_dir.join(seed_dir(job)).join("train-state.bin"), job.checkpoint_every, num_updates);
    // A state left by an earlier attempt (`mesalab resume`): its curve points are logged again
    // from the saved update logs, and training continues after its last update.
    let resume = state.earlier()?;
    if let Some(file) = &resume {
        let progress: PpoProgress = file.get(PROGRESS_SECTION)?;
        for log in &progress.logs {
            if logs_curve(job, log.update, num_updates) {
                log_update(ctx, job, log)?;
            }
        }
        ctx.progress.advance(progress.update as u64);
    }
    let mut failure: Option<anyhow::Error> = None;
    let on_update = |log: &UpdateLog, _: &AnyPolicy, save_state: &SaveState<'_>| -> ControlFlow<()> {
        if logs_curve(job, log.update, num_updates) {
            if let Err(e) = log_update(ctx, job, log) {
                failure = Some(e);
                return ControlFlow::Break(());
            }
            if let Some(r) = log.episodes.mean_return {
                ctx.progress.message(&format!("return {r:.2}, {:.0} steps/s", log.sps));
            }
        }
        state.after_update(ctx, log.update, save_state, &mut failure)
    };
    let trained = ppo::train_resumable(job.ppo, env, policy, &streams, resume.as_ref(), on_update)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    ctx.progress.finish();
    if let Some(e) = failure {
        return Err(e);
    }
    let seconds = start.elapsed().as_secs_f64();
    let rel = seed_dir(job).join("policy.safetensors");
    let path = ctx.run_dir.join(&rel);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    trained.model.save(&path).map_err(anyhow::Error::msg).with_context(|| format!("saving {}", path.display()))?;
    let name = metric_name(job.variant, &format!("seed-{}/policy", job.seed));
    ctx.store.add_artifact(ctx.run_id, &Artifact::new(name, ArtifactKind::Checkpoint, rel.clone()))?;
    let env_steps = trained.logs.last().map_or(0, |l| l.global_step);
    let (final_return, final_performance) = final_means(&trained.logs);
    let training = Training {
        final_return,
        final_performance,
        env_steps,
        seconds,
        steps_per_second: env_steps as f64 / seconds.max(1e-9),
        checkpoint: rel,
    };
    Ok((trained.model, training))
}

/// `<variant>/seed-N` (or `seed-N`), relative to the run directory.
fn seed_dir(job: &TrainJob) -> PathBuf {
    if job.variant.is_empty() { PathBuf::new() } else { PathBuf::from(job.variant) }.join(format!("seed-{}", job.seed))
}

/// Whether update `update` (1-based) is a learning-curve point: every `log_every`, the first, the last.
fn logs_curve(job: &TrainJob, update: usize, num_updates: usize) -> bool {
    update.is_multiple_of(job.log_every.max(1)) || update == num_updates || update == 1
}

/// Episode-weighted mean return and performance of the last [`FINAL_UPDATES`] updates.
fn final_means(logs: &[UpdateLog]) -> (Option<f64>, Option<f64>) {
    let tail = &logs[logs.len().saturating_sub(FINAL_UPDATES)..];
    let n: usize = tail.iter().map(|l| l.episodes.count).sum();
    if n == 0 {
        return (None, None);
    }
    let w = |f: &dyn Fn(&UpdateLog) -> Option<f64>| {
        Some(tail.iter().map(|l| l.episodes.count as f64 * f(l).unwrap_or(f64::NAN)).sum::<f64>() / n as f64)
    };
    (w(&|l| l.episodes.mean_return), w(&|l| l.episodes.mean_performance))
}

fn log_update(ctx: &RunContext, job: &TrainJob, log: &UpdateLog) -> anyhow::Result<()> {
    let step = log.global_step as i64;
    let seed = Some(job.seed);
    let m = |name: &str| metric_name(job.variant, name);
    let mut rows = vec![
        MetricRow::new(seed, step, m("train/approx_kl"), f64::from(log.approx_kl)),
        MetricRow::new(seed, step, m("train/entropy"), f64::from(log.entropy)),
        MetricRow::new(seed, step, m("train/value_loss"), f64::from(log.value_loss)),
        MetricRow::new(seed, step, m("train/policy_loss"), f64::from(log.policy_loss)),
        MetricRow::new(seed, step, m("train/explained_variance"), f64::from(log.explained_variance)),
        MetricRow::new(seed, step, m("train/clipfrac"), f64::from(log.clipfrac)),
        MetricRow::new(seed, step, m("train/sps"), log.sps),
    ];
    let e = &log.episodes;
    if e.count > 0 {
        for (name, v) in [
            ("train/return", e.mean_return),
            ("train/performance", e.mean_performance),
            ("train/length", e.mean_length),
        ] {
            if let Some(v) = v {
                rows.push(MetricRow::new(seed, step, m(name), v));
            }
        }
        for (event, rate) in &e.event_rates {
            rows.push(MetricRow::new(seed, step, m(&format!("train/{event}")), *rate));
        }
    }
    ctx.store.log_metrics(ctx.run_id, &rows)?;
    Ok(())
}
