//! Independent jobs of one run (seeds, arms) on up to `ctx.threads` threads.
//!
//! Invariant: a job reads nothing but its own inputs (its seed's streams, its own files and curve
//! rows), so results are bit for bit those of one-at-a-time execution and come back in job
//! order, whatever the thread count.

use crate::context::{Progress, RunContext};

/// Runs jobs `0..n`, up to `ctx.threads` at a time (each on one thread with its own progress bar),
/// and returns their results in job order. The first error is returned after the jobs already
/// running finish; no later job starts.
pub fn run_jobs<T: Send>(
    ctx: &RunContext,
    n: usize,
    job: impl Fn(&RunContext, usize) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<Vec<T>> {
    let mut out = Vec::with_capacity(n);
    if ctx.threads <= 1 || n <= 1 {
        for i in 0..n {
            out.push(job(ctx, i)?);
            ctx.check_interrupt()?;
        }
        return Ok(out);
    }
    let (store, run_id, run_dir, interrupted) = (ctx.store, ctx.run_id, &ctx.run_dir, &ctx.interrupted);
    let indices: Vec<usize> = (0..n).collect();
    for chunk in indices.chunks(ctx.threads) {
        let bars: Vec<Box<dyn Progress + Send>> = chunk.iter().map(|_| ctx.progress.job()).collect();
        let results: Vec<anyhow::Result<T>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (chunk.iter().zip(bars))
                .map(|(&i, bar)| {
                    let job = &job;
                    scope.spawn(move || {
                        let worker = RunContext {
                            store,
                            run_id,
                            run_dir: run_dir.clone(),
                            progress: &*bar,
                            interrupted: interrupted.clone(),
                            threads: 1,
                        };
                        job(&worker, i)
                    })
                })
                .collect();
            (handles.into_iter())
                .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a worker thread panicked"))))
                .collect()
        });
        for r in results {
            out.push(r?);
        }
        ctx.check_interrupt()?;
    }
    Ok(out)
}
