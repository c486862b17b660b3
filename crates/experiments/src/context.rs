//! What an experiment gets to work with while it runs: where to write (the store and the run
//! directory), how to report progress (implemented by the CLI; experiments never print), and
//! whether the user asked to stop.

use mesalab_store::{RunId, Store};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Progress reporting, implemented by the CLI (progress bars) or silently.
pub trait Progress {
    /// Starts a phase of `total` units, e.g. training steps.
    fn start(&self, label: &str, total: u64);
    fn advance(&self, units: u64);
    /// A short status line shown beside the bar (e.g. the current loss).
    fn message(&self, message: &str);
    fn finish(&self);
    /// Progress for one of several jobs running at once (e.g. seeds trained side by side), shown
    /// beside this one. Defaults to showing nothing.
    fn job(&self) -> Box<dyn Progress + Send> {
        Box::new(Silent)
    }
}

/// Progress that shows nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn message(&self, _: &str) {}
    fn finish(&self) {}
}

/// The run an experiment is executing.
pub struct RunContext<'a> {
    pub store: &'a Store,
    pub run_id: RunId,
    pub run_dir: PathBuf,
    pub progress: &'a dyn Progress,
    /// Set by Ctrl-C; long loops check it through [`RunContext::check_interrupt`].
    pub interrupted: Arc<AtomicBool>,
    /// Threads the experiment may use for independent work (seeds trained side by side); the
    /// results do not depend on it.
    pub threads: usize,
}

/// Returned when the user interrupted the run.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by the user")]
pub struct Interrupted;

impl RunContext<'_> {
    pub fn check_interrupt(&self) -> Result<(), Interrupted> {
        if self.interrupted.load(Ordering::Relaxed) { Err(Interrupted) } else { Ok(()) }
    }
}

/// What `mesalab analyze` gives an experiment: the finished run it analyses (read only: an
/// analysis never writes into the run) and progress reporting.
pub struct AnalysisContext<'a> {
    pub store: &'a Store,
    pub run_id: RunId,
    pub run_dir: PathBuf,
    pub progress: &'a dyn Progress,
    pub interrupted: Arc<AtomicBool>,
}

impl AnalysisContext<'_> {
    pub fn check_interrupt(&self) -> Result<(), Interrupted> {
        if self.interrupted.load(Ordering::Relaxed) { Err(Interrupted) } else { Ok(()) }
    }
}
