//! The executor trait and the one entry point that runs a sweep with any executor.

use crate::point::PlannedPoint;
use crate::sweep::{PointState, Sweep};

/// What an executor did with the points it was given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExecSummary {
    /// Points run to an end in this call (finished or failed).
    pub ran: usize,
    pub finished: usize,
    /// `(point key, why)`.
    pub failed: Vec<(String, String)>,
    /// Points found finished when their turn came.
    pub skipped: usize,
    /// Points handed to a scheduler and not waited for.
    pub submitted: usize,
    /// The Slurm job that was submitted, if any.
    pub job: Option<String>,
    pub interrupted: bool,
    pub wall_s: f64,
}

/// Runs (or submits) points of a sweep. None of the points given has finished; each runs in its
/// own directory through [`crate::exec::run_point`]; a failing point never stops the others.
pub trait Executor {
    fn name(&self) -> &'static str;
    fn execute(
        &self,
        sweep: &Sweep,
        points: &[PlannedPoint],
        progress: &mut dyn FnMut(&str),
    ) -> anyhow::Result<ExecSummary>;
}

/// The points of `sweep` that have not finished, in plan order.
pub fn unfinished(sweep: &Sweep, local_pids: bool) -> Vec<PlannedPoint> {
    sweep
        .plan
        .points
        .iter()
        .filter(|p| !matches!(sweep.state(&p.key, local_pids), PointState::Finished { .. }))
        .cloned()
        .collect()
}

/// Runs every unfinished point of `sweep` with `executor`; finished points are skipped.
pub fn run_sweep(
    sweep: &Sweep,
    executor: &dyn Executor,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<ExecSummary> {
    let todo = unfinished(sweep, executor.name() == "local");
    let total = sweep.plan.points.len();
    progress(&format!(
        "sweep {}: {total} point(s), {} finished already, {} to run ({})",
        sweep.plan.name,
        total - todo.len(),
        todo.len(),
        sweep.dir.display()
    ));
    let mut summary =
        if todo.is_empty() { ExecSummary::default() } else { executor.execute(sweep, &todo, progress)? };
    summary.skipped += total - todo.len();
    Ok(summary)
}
