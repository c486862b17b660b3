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
use mesalab_train::checkpoint::StateFile;
use mesalab_train::ppo::{PROGRESS_SECTION, PpoProgress, RECURRENT_PROGRESS_SECTION, RecurrentProgress, SaveState};
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
