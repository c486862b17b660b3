//! The `local` executor: N worker threads, each running one point at a time as a `mesalab run`
//! child process, with progress for the whole sweep (finished / failed / running, ETA).
//!
//! Invariants: one local executor per sweep directory at a time (`sweep.lock` holds its pid); a
//! point that fails is reported and the sweep goes on; an interrupt stops new points from starting
//! and passes SIGINT on to the running ones (which mark their runs `interrupted`).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::exec::{PointOutcome, log_tail, run_point};
use crate::executor::{ExecSummary, Executor};
use crate::point::PlannedPoint;
use crate::sweep::{PointState, Sweep, pid_alive};

pub struct Local {
    /// The `mesalab` binary the points run with.
    pub bin: PathBuf,
    pub workers: usize,
    pub interrupted: Arc<AtomicBool>,
    /// How often a progress line is printed while nothing else happens.
    pub heartbeat: Duration,
}

enum Event {
    Started(usize),
    Ended(usize, anyhow::Result<PointOutcome>, Duration),
}

impl Executor for Local {
    fn name(&self) -> &'static str {
        "local"
    }

    fn execute(
        &self,
        sweep: &Sweep,
        points: &[PlannedPoint],
        progress: &mut dyn FnMut(&str),
    ) -> anyhow::Result<ExecSummary> {
        let _lock = SweepLock::take(&sweep.dir)?;
        let workers = self.workers.max(1).min(points.len().max(1));
        progress(&format!("local: {} point(s) on {workers} worker(s)", points.len()));
        let queue = Arc::new(Mutex::new(points.iter().cloned().enumerate().collect::<VecDeque<_>>()));
        let pids: Vec<Arc<AtomicU32>> = (0..workers).map(|_| Arc::new(AtomicU32::new(0))).collect();
        let (tx, rx) = mpsc::channel::<Event>();
        let mut summary = ExecSummary::default();
        // Earlier timings of this sweep's points seed the ETA until this session has its own.
        let mut durations: Vec<f64> =
            sweep.plan.points.iter().filter_map(|p| sweep.attempt(&p.key).and_then(|a| a.wall_s)).collect();
        let started_at = Instant::now();
        std::thread::scope(|scope| {
            for pid in &pids {
                let (queue, tx, interrupted, pid) = (queue.clone(), tx.clone(), self.interrupted.clone(), pid.clone());
                let bin = self.bin.clone();
                scope.spawn(move || {
                    loop {
                        if interrupted.load(Ordering::SeqCst) {
                            break;
                        }
                        let Some((i, point)) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front() else {
                            break;
                        };
                        let _ = tx.send(Event::Started(i));
                        let t0 = Instant::now();
                        let outcome = run_point(&bin, sweep, &point, "local", None, Some(pid.clone()));
                        let _ = tx.send(Event::Ended(i, outcome, t0.elapsed()));
                    }
                });
            }
            drop(tx);
            let mut running: Vec<(usize, Instant)> = Vec::new();
            let mut forwarded = false;
            let mut last_line = Instant::now();
            loop {
                if self.interrupted.load(Ordering::SeqCst) && !forwarded {
                    forwarded = true;
                    summary.interrupted = true;
                    for pid in pids.iter().map(|p| p.load(Ordering::SeqCst)).filter(|&p| p != 0) {
                        // The children may not share our terminal's process group: pass it on.
                        let _ = std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status();
                    }
                    progress("interrupt: no new points start; waiting for the running ones to stop");
                }
                let event = match rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(e) => Some(e),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                };
                match event {
                    Some(Event::Started(i)) => running.push((i, Instant::now())),
                    Some(Event::Ended(i, outcome, took)) => {
                        running.retain(|(j, _)| *j != i);
                        let p = &points[i];
                        let what = format!("point {} (seed {}, {})", p.index, p.seed, p.label());
                        match outcome {
                            Ok(PointOutcome::AlreadyFinished) => summary.skipped += 1,
                            Ok(PointOutcome::StillRunning(pid)) => {
                                let reason = format!(
                                    "still being run by process {} (from an earlier sweep); run the sweep again once it has ended",
                                    pid.map_or("?".into(), |p| p.to_string())
                                );
                                progress(&format!("  {what}: skipped: {reason}"));
                                summary.failed.push((p.key.clone(), reason));
                            }
                            Ok(PointOutcome::Ran(PointState::Finished { .. })) => {
                                summary.finished += 1;
                                durations.push(took.as_secs_f64());
                                progress(&format!("  {what}: finished in {:.1} s", took.as_secs_f64()));
                            }
                            Ok(PointOutcome::Ran(state)) => {
                                let reason = match state {
                                    PointState::Failed { reason } => reason,
                                    other => format!("left {}", other.word()),
                                };
                                let tail = log_tail(sweep, &p.key, 2);
                                progress(&format!(
                                    "  {what}: FAILED after {:.1} s: {reason} [{tail}]",
                                    took.as_secs_f64()
                                ));
                                summary.failed.push((p.key.clone(), reason));
                            }
                            Err(e) => {
                                progress(&format!("  {what}: could not run: {e:#}"));
                                summary.failed.push((p.key.clone(), format!("{e:#}")));
                            }
                        }
                        progress(&self.line(&summary, points.len(), &running, &durations, workers));
                        last_line = Instant::now();
                    }
                    None if last_line.elapsed() >= self.heartbeat => {
                        progress(&self.line(&summary, points.len(), &running, &durations, workers));
                        last_line = Instant::now();
                    }
                    None => {}
                }
            }
        });
        summary.ran = summary.finished + summary.failed.len();
        summary.wall_s = started_at.elapsed().as_secs_f64();
        Ok(summary)
    }
}

impl Local {
    fn line(
        &self,
        s: &ExecSummary,
        total: usize,
        running: &[(usize, Instant)],
        durations: &[f64],
        workers: usize,
    ) -> String {
        let done = s.finished + s.failed.len() + s.skipped;
        let pending = total - done - running.len();
        let eta = median(durations).map(|m| {
            let left: f64 =
                pending as f64 * m + running.iter().map(|(_, t)| (m - t.elapsed().as_secs_f64()).max(0.0)).sum::<f64>();
            format!("ETA {:.0} s", left / workers as f64)
        });
        format!(
            "[sweep] {done}/{total} done: {} finished, {} failed; {} running, {pending} pending; {}",
            s.finished + s.skipped,
            s.failed.len(),
            running.len(),
            eta.unwrap_or_else(|| "ETA after the first point".into())
        )
    }
}

pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    Some(if v.len() % 2 == 1 { v[v.len() / 2] } else { (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0 })
}

/// `sweep.lock`: the pid of the local executor running the sweep; removed on drop. A lock left by
/// a dead process is taken over.
struct SweepLock(PathBuf);

impl SweepLock {
    fn take(dir: &Path) -> anyhow::Result<SweepLock> {
        let path = dir.join("sweep.lock");
        for _ in 0..2 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    use std::io::Write;
                    write!(f, "{}", std::process::id())?;
                    return Ok(SweepLock(path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).ok().and_then(|s| s.trim().parse::<u32>().ok());
                    match holder {
                        Some(pid) if pid_alive(pid) && pid != std::process::id() => bail!(
                            "another `mesalab sweep run` (pid {pid}) is running this sweep ({}); wait for it or stop it",
                            path.display()
                        ),
                        _ => std::fs::remove_file(&path)
                            .with_context(|| format!("cannot remove the stale {}", path.display()))?,
                    }
                }
                Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
            }
        }
        bail!("cannot take {}", path.display())
    }
}

impl Drop for SweepLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
