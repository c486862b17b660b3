//! Running one point: a `mesalab run` child process with its own run directory and store, its
//! output in `log.txt`, and `attempt.json` with its exit status, wall time and peak memory. Both
//! executors run points through [`run_point`] (the Slurm task calls it via `mesalab sweep
//! exec-point`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::point::PlannedPoint;
use crate::sweep::{ATTEMPT_FILE, Attempt, POINT_LOG, PointState, Sweep, hostname, now_ms, write_atomic};

/// How a call of [`run_point`] went.
#[derive(Clone, Debug, PartialEq)]
pub enum PointOutcome {
    /// The point had finished before; nothing was run.
    AlreadyFinished,
    /// A live process on this machine is still running the point (left by an earlier sweep
    /// process that died alone); nothing was run and its directory was left alone.
    StillRunning(Option<u32>),
    /// It ran; the state its store shows now.
    Ran(PointState),
}

/// Runs `point` with the `mesalab` binary `bin` unless it has finished already. An earlier
/// unfinished attempt is moved aside first. `pid` receives the child's pid while it runs (0
/// otherwise), so a supervisor can signal it.
pub fn run_point(
    bin: &Path,
    sweep: &Sweep,
    point: &PlannedPoint,
    executor: &str,
    slurm_job: Option<String>,
    pid: Option<Arc<AtomicU32>>,
) -> anyhow::Result<PointOutcome> {
    match sweep.state(&point.key, true) {
        PointState::Finished { .. } => return Ok(PointOutcome::AlreadyFinished),
        PointState::Running => return Ok(PointOutcome::StillRunning(sweep.attempt(&point.key).and_then(|a| a.pid))),
        PointState::Pending | PointState::Failed { .. } => {}
    }
    sweep.set_aside(&point.key)?;
    let pd = sweep.point_dir(&point.key);
    std::fs::create_dir_all(&pd).with_context(|| format!("cannot create {}", pd.display()))?;
    let log = std::fs::File::create(pd.join(POINT_LOG))
        .with_context(|| format!("cannot create {}", pd.join(POINT_LOG).display()))?;
    let started = Instant::now();
    let mut attempt = Attempt {
        executor: executor.to_string(),
        host: hostname(),
        slurm_job,
        started_at_ms: now_ms(),
        ..Default::default()
    };
    let mut child = Command::new(bin)
        .args(sweep.run_args(point))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    attempt.pid = Some(child.id());
    if let Some(p) = &pid {
        p.store(child.id(), Ordering::SeqCst);
    }
    write_atomic(&pd.join(ATTEMPT_FILE), serde_json::to_string_pretty(&attempt)?.as_bytes())?;
    let mut peak: Option<u64> = None;
    let status = loop {
        if let Some(kib) = peak_rss_kib(child.id()) {
            peak = Some(peak.map_or(kib, |p| p.max(kib)));
        }
        match child.try_wait()? {
            Some(status) => break status,
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    if let Some(p) = &pid {
        p.store(0, Ordering::SeqCst);
    }
    attempt.ended_at_ms = Some(now_ms());
    attempt.wall_s = Some(started.elapsed().as_secs_f64());
    attempt.exit_code = status.code();
    attempt.signal = std::os::unix::process::ExitStatusExt::signal(&status);
    attempt.peak_rss_kib = peak;
    write_atomic(&pd.join(ATTEMPT_FILE), serde_json::to_string_pretty(&attempt)?.as_bytes())?;
    Ok(PointOutcome::Ran(sweep.state(&point.key, true)))
}

/// The peak resident set (VmHWM) of a live process, in KiB (Linux; `None` elsewhere or once it has
/// exited).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The last non-empty lines of a point's log, for failure messages.
pub fn log_tail(sweep: &Sweep, key: &str, lines: usize) -> String {
    let text = std::fs::read_to_string(sweep.point_dir(key).join(POINT_LOG)).unwrap_or_default();
    let kept: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    kept[kept.len().saturating_sub(lines)..].join(" | ")
}
