//! Resumable PPO training for every experiment that drives the trainer itself: where one
//! training's state file lives, what an earlier attempt left there (`mesalab resume`), and the
//! per-update step that saves it every `checkpoint_every` updates, after the last update and on
//! Ctrl-C (then stops the training).
//!
//! Invariant: a state is written whole or not at all ([`StateFile::write`]), and a training that
//! finished saved its last update, so resuming it runs no update and returns the same model and
//! logs.

use crate::context::{Interrupted, RunContext};
use anyhow::Context as _;
use mesalab_core::config::{Invalid, Validate};
use mesalab_store::MetricRow;
use mesalab_train::checkpoint::StateFile;
use mesalab_train::ppo::{
    PROGRESS_SECTION, PpoConfig, PpoProgress, RECURRENT_PROGRESS_SECTION, RecurrentProgress, SaveState, UpdateLog,
};
use std::ops::ControlFlow;
use std::path::PathBuf;

/// One training's state file and when to write it.
#[derive(Clone, Debug)]
pub struct TrainState {
    pub path: PathBuf,
    /// Save every this many updates (0 counts as 1).
    pub every: usize,
    pub num_updates: usize,
}

impl TrainState {
    pub fn new(path: PathBuf, every: usize, num_updates: usize) -> Self {
        Self { path, every, num_updates }
    }

    /// The state an earlier attempt left, if any (an unreadable file is an error naming it).
    pub fn earlier(&self) -> anyhow::Result<Option<StateFile>> {
        if !self.path.exists() {
            return Ok(None);
        }
        Ok(Some(StateFile::read(&self.path).with_context(|| format!("resuming from {}", self.path.display()))?))
    }

    /// Updates an earlier attempt completed (its saved progress, feed-forward or recurrent; 0
    /// when the file has neither).
    pub fn updates_done(file: &StateFile) -> usize {
        if let Ok(p) = file.get::<RecurrentProgress>(RECURRENT_PROGRESS_SECTION) {
            return p.ppo.update;
        }
        file.get::<PpoProgress>(PROGRESS_SECTION).map_or(0, |p| p.update)
    }

    /// Saves the state when due (every `every` updates, the last one, or on Ctrl-C) and says
    /// whether training goes on: `Break` on Ctrl-C (after saving) or when saving failed, with the
    /// error left in `failure` for the caller to return.
    pub fn after_update(
        &self,
        ctx: &RunContext,
        update: usize,
        save: &SaveState<'_>,
        failure: &mut Option<anyhow::Error>,
    ) -> ControlFlow<()> {
        let interrupted = ctx.check_interrupt().is_err();
        let due = interrupted || update.is_multiple_of(self.every.max(1)) || update == self.num_updates;
        if due && let Err(e) = self.write(save) {
            *failure = Some(e);
            return ControlFlow::Break(());
        }
        if interrupted {
            *failure = Some(Interrupted.into());
            return ControlFlow::Break(());
        }
        ctx.progress.advance(1);
        ControlFlow::Continue(())
    }

    fn write(&self, save: &SaveState<'_>) -> anyhow::Result<()> {
        let mut file = StateFile::new();
        save(&mut file)?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        file.write(&self.path)?;
        Ok(())
    }
}

/// The state of arm `arm` of `seed` in an experiment that trains several arms per seed
/// (`seed-{seed}/{arm}-train-state.bin`), its progress bar started with the updates an earlier
/// attempt completed already counted, and that attempt's state.
pub fn arm_state(
    ctx: &RunContext,
    seed: u64,
    arm: &str,
    ppo: &PpoConfig,
    checkpoint_every: usize,
) -> anyhow::Result<(TrainState, Option<StateFile>)> {
    let num_updates = ppo.num_updates();
    ctx.progress.start(&format!("seed {seed}: {arm}"), num_updates as u64);
    let path = ctx.run_dir.join(format!("seed-{seed}")).join(format!("{arm}-train-state.bin"));
    let state = TrainState::new(path, checkpoint_every, num_updates);
    let resume = state.earlier()?;
    if let Some(file) = &resume {
        ctx.progress.advance(TrainState::updates_done(file) as u64);
    }
    Ok((state, resume))
}

/// Logs arm `arm`'s training curve of `seed`: `{arm}/train/{metric}` (the share of finished
/// episodes with the env's event number `event`) and `{arm}/train/return`, every `log_every`
/// updates and the last.
pub fn log_arm_curve(
    ctx: &RunContext,
    log_every: usize,
    (arm, seed): (&str, u64),
    (metric, event): (&str, usize),
    logs: &[UpdateLog],
) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for (i, log) in logs.iter().enumerate() {
        if !i.is_multiple_of(log_every.max(1)) && i + 1 != logs.len() {
            continue;
        }
        let rate = log.episodes.event_rates.get(event).map(|(_, r)| *r);
        for (name, value) in [(format!("train/{metric}"), rate), ("train/return".to_string(), log.episodes.mean_return)]
        {
            if let Some(v) = value {
                rows.push(MetricRow::new(Some(seed), log.global_step as i64, format!("{arm}/{name}"), v));
            }
        }
    }
    ctx.store.log_metrics(ctx.run_id, &rows)?;
    Ok(())
}

/// What recurrent PPO beside an MLP baseline needs of the `[ppo]` section and the MLP's widths:
/// valid PPO settings whose minibatches are whole env sequences, and no zero width.
pub fn check_recurrent_ppo(ppo: &PpoConfig, mlp_hidden: &[usize]) -> Result<(), Invalid> {
    ppo.validate().map_err(|e| Invalid::new(format!("ppo.{}", e.key), e.message))?;
    if !ppo.num_envs.is_multiple_of(ppo.num_minibatches) {
        return Err(Invalid::new(
            "ppo.num_minibatches",
            "must divide ppo.num_envs: recurrent minibatches are whole env sequences",
        ));
    }
    if mlp_hidden.contains(&0) {
        return Err(Invalid::new("mlp.hidden", "every width must be at least 1"));
    }
    Ok(())
}

/// One arm of one seed to train: where its state, weights and curve go, and with what settings.
/// Shared by the experiments that train recurrent and feed-forward arms side by side, so every one
/// resumes, saves and logs the same way.
pub struct ArmJob<'a, 'c> {
    pub ctx: &'a RunContext<'c>,
    pub seed: u64,
    /// The arm's name: its state file, weights file and curve prefix.
    pub arm: &'a str,
    pub ppo: &'a PpoConfig,
    pub checkpoint_every: usize,
    pub log_every: usize,
    /// The curve's metric name and the env event it counts.
    pub metric: (&'a str, usize),
}

impl ArmJob<'_, '_> {
    /// Ends the training: reports a save failure or Ctrl-C, logs the curve and saves the weights
    /// to `seed-{seed}/{arm}.safetensors`.
    fn finish(
        &self,
        failure: Option<anyhow::Error>,
        logs: &[UpdateLog],
        save: impl FnOnce(&std::path::Path) -> Result<(), String>,
    ) -> anyhow::Result<()> {
        if let Some(e) = failure {
            return Err(e);
        }
        self.ctx.progress.finish();
        log_arm_curve(self.ctx, self.log_every, (self.arm, self.seed), self.metric, logs)?;
        let dir = self.ctx.run_dir.join(format!("seed-{}", self.seed));
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        save(&dir.join(format!("{}.safetensors", self.arm))).map_err(anyhow::Error::msg)
    }
}

/// The per-update callback a trainer is handed (save when due, stop on Ctrl-C).
type OnUpdate<'f, P> = dyn FnMut(&UpdateLog, &P, &SaveState<'_>) -> ControlFlow<()> + 'f;

/// What both arm trainers share: the arm's state and an earlier attempt's, the trainer `train`
/// run with the per-update save, then [`ArmJob::finish`].
fn run_arm<P>(
    job: &ArmJob<'_, '_>,
    train: impl FnOnce(
        &mesalab_core::Streams,
        Option<&StateFile>,
        &mut OnUpdate<'_, P>,
    ) -> Result<mesalab_train::ppo::Trained<P>, String>,
    save: impl FnOnce(&P, &std::path::Path) -> Result<(), String>,
) -> anyhow::Result<P> {
    let streams = mesalab_core::Streams::new(mesalab_core::Seed(job.seed));
    let (state, resume) = arm_state(job.ctx, job.seed, job.arm, job.ppo, job.checkpoint_every)?;
    let mut failure: Option<anyhow::Error> = None;
    let trained = train(&streams, resume.as_ref(), &mut |log, _, save| {
        state.after_update(job.ctx, log.update, save, &mut failure)
    })
    .map_err(|e| anyhow::anyhow!("seed {}, {}: {e}", job.seed, job.arm))?;
    job.finish(failure, &trained.logs, |path| save(&trained.model, path))?;
    Ok(trained.model)
}

/// Trains a recurrent arm with recurrent PPO from `init`, resumably ([`arm_state`]), and saves it.
pub fn train_recurrent_arm<E: mesalab_envs::Env, P: mesalab_nn::policy::RecurrentActorCritic>(
    job: &ArmJob<'_, '_>,
    env: E,
    init: P,
) -> anyhow::Result<P> {
    let train = |streams: &mesalab_core::Streams, resume: Option<&StateFile>, on_update: &mut OnUpdate<'_, P>| {
        mesalab_train::ppo::train_recurrent(job.ppo, env, init, streams, resume, on_update).map_err(|e| e.to_string())
    };
    run_arm(job, train, |model, path| model.save(path))
}

/// Trains a feed-forward arm with the feed-forward PPO trainer from `init`, resumably, and saves it.
pub fn train_feedforward_arm<E: mesalab_envs::Env, P: mesalab_nn::policy::Policy>(
    job: &ArmJob<'_, '_>,
    env: E,
    init: P,
) -> anyhow::Result<P> {
    let train = |streams: &mesalab_core::Streams, resume: Option<&StateFile>, on_update: &mut OnUpdate<'_, P>| {
        mesalab_train::ppo::train_resumable(job.ppo, env, init, streams, resume, on_update).map_err(|e| e.to_string())
    };
    run_arm(job, train, |model, path| model.save(path))
}

/// A recurrent arm's name (state file, weights, curves, result rows): its cell, `gru` or `lstm`.
pub fn cell_arm(cell: mesalab_nn::policy::Cell) -> &'static str {
    match cell {
        mesalab_nn::policy::Cell::Gru => "gru",
        mesalab_nn::policy::Cell::Lstm => "lstm",
    }
}
