//! The `slurm` executor: one `sbatch --array` job per submission, one task per point, each task
//! `mesalab sweep exec-point DIR KEY` writing the point's own store under the sweep directory.
//! `sweep status` combines `squeue` (queued / running tasks), `sacct` (how ended tasks ended, where
//! accounting is enabled) and the point stores (the truth about finished runs).
//!
//! Invariants: a point that Slurm still holds (pending or running) is never submitted again;
//! every submission is recorded in `slurm/jobs.jsonl` before this returns; the `mesalab` binary
//! and the sweep directory must be visible at the same paths on the compute nodes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::executor::{ExecSummary, Executor};
use crate::point::PlannedPoint;
use crate::spec::SlurmOptions;
use crate::sweep::{PointState, Sweep, now_ms, write_atomic};

pub struct Slurm {
    pub bin: PathBuf,
    pub options: SlurmOptions,
    /// Wait until every submitted task has left the queue.
    pub wait: bool,
    pub poll: Duration,
    pub interrupted: Arc<AtomicBool>,
}

/// One line of `slurm/jobs.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    pub submission: usize,
    pub job_id: String,
    /// Array task i runs the point with key `keys[i]`.
    pub keys: Vec<String>,
    pub submitted_at_ms: i64,
}

/// A point's state as `sweep status` shows it for a Slurm sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskStatus {
    /// `finished`, `failed`, `pending` (not submitted), `queued`, `running`.
    pub state: String,
    /// `JOB_TASK`, when submitted.
    pub task: Option<String>,
    /// What Slurm says (squeue or sacct state), when it says anything.
    pub slurm: Option<String>,
    pub detail: String,
}

fn slurm_dir(sweep: &Sweep) -> PathBuf {
    sweep.dir.join("slurm")
}

pub fn submissions(sweep: &Sweep) -> anyhow::Result<Vec<Submission>> {
    let path = slurm_dir(sweep).join("jobs.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(Vec::new()) };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{}:{}: damaged line", path.display(), i + 1)))
        .collect()
}

/// The newest `(job id, array index)` each point was submitted as.
fn latest_tasks(subs: &[Submission]) -> BTreeMap<String, (String, usize)> {
    let mut map = BTreeMap::new();
    for s in subs {
        for (i, k) in s.keys.iter().enumerate() {
            map.insert(k.clone(), (s.job_id.clone(), i));
        }
    }
    map
}

/// Parses `squeue -h -r -o %i|%T` lines into `(job, task) → state`. Pending arrays not yet split
/// show as `JOB_[0-3%2]`; each index in the range is taken as pending.
pub fn parse_squeue(text: &str) -> BTreeMap<(String, usize), String> {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let Some((id, state)) = line.trim().split_once('|') else { continue };
        let Some((job, task)) = id.split_once('_') else { continue };
        let state = state.trim().to_string();
        if let Some(range) = task.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            let range = range.split('%').next().unwrap_or("");
            for part in range.split(',') {
                let (a, b) = part.split_once('-').unwrap_or((part, part));
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    for t in a..=b {
                        map.insert((job.to_string(), t), state.clone());
                    }
                }
            }
        } else if let Ok(t) = task.parse() {
            map.insert((job.to_string(), t), state);
        }
    }
    map
}

/// Parses `sacct -n -P -X -o JobID,State,ExitCode,Elapsed` lines into `(job, task) → "STATE exit
/// X:Y after T"`.
pub fn parse_sacct(text: &str) -> BTreeMap<(String, usize), String> {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.trim().split('|').collect();
        if f.len() < 4 {
            continue;
        }
        let Some((job, task)) = f[0].split_once('_') else { continue };
        if let Ok(t) = task.parse::<usize>() {
            let state = f[1].split_whitespace().next().unwrap_or(f[1]);
            map.insert((job.to_string(), t), format!("{state} (exit {}, after {})", f[2], f[3]));
        }
    }
    map
}

/// States in which Slurm still holds a task.
fn is_active(state: &str) -> bool {
    matches!(
        state,
        "PENDING"
            | "RUNNING"
            | "CONFIGURING"
            | "COMPLETING"
            | "SUSPENDED"
            | "REQUEUED"
            | "RESIZING"
            | "REQUEUE_HOLD"
            | "REQUEUE_FED"
            | "SIGNALING"
            | "STAGE_OUT"
    )
}

fn squeue(jobs: &[String]) -> anyhow::Result<BTreeMap<(String, usize), String>> {
    if jobs.is_empty() {
        return Ok(BTreeMap::new());
    }
    let out = Command::new("squeue")
        .args(["-h", "-r", "-o", "%i|%T", "-j", &jobs.join(",")])
        .output()
        .context("cannot run squeue (is this a Slurm login node?)")?;
    if out.status.success() {
        return Ok(parse_squeue(&String::from_utf8_lossy(&out.stdout)));
    }
    // Job ids Slurm has already forgotten make `-j` fail: list everything and filter.
    let out = Command::new("squeue").args(["-h", "-r", "-o", "%i|%T"]).output().context("cannot run squeue")?;
    if !out.status.success() {
        bail!("squeue failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let all = parse_squeue(&String::from_utf8_lossy(&out.stdout));
    Ok(all.into_iter().filter(|((j, _), _)| jobs.contains(j)).collect())
}

/// `None` where accounting is off (`sacct` fails), which single-node test clusters often are.
fn sacct(jobs: &[String]) -> Option<BTreeMap<(String, usize), String>> {
    if jobs.is_empty() {
        return Some(BTreeMap::new());
    }
    let out = Command::new("sacct")
        .args(["-n", "-P", "-X", "-o", "JobID,State,ExitCode,Elapsed", "-j", &jobs.join(",")])
        .output()
        .ok()?;
    out.status.success().then(|| parse_sacct(&String::from_utf8_lossy(&out.stdout)))
}

/// Every point's state for a Slurm sweep, in plan order.
pub fn status(sweep: &Sweep) -> anyhow::Result<(Vec<(PlannedPoint, TaskStatus)>, bool)> {
    let subs = submissions(sweep)?;
    let tasks = latest_tasks(&subs);
    let jobs: Vec<String> = {
        let mut j: Vec<String> = subs.iter().map(|s| s.job_id.clone()).collect();
        j.dedup();
        j
    };
    let queue = squeue(&jobs)?;
    let acct = sacct(&jobs);
    let mut out = Vec::new();
    for p in &sweep.plan.points {
        let task = tasks.get(&p.key);
        let task_name = task.map(|(j, i)| format!("{j}_{i}"));
        let queued = task.and_then(|(j, i)| queue.get(&(j.clone(), *i))).filter(|s| is_active(s));
        let accounted = task.and_then(|(j, i)| acct.as_ref().and_then(|a| a.get(&(j.clone(), *i)))).cloned();
        let store = sweep.state(&p.key, false);
        let (state, detail) = match (&store, queued) {
            (PointState::Finished { wall_s, .. }, _) => {
                ("finished", wall_s.map(|w| format!("{w:.1} s")).unwrap_or_default())
            }
            (_, Some(q)) if q == "PENDING" => ("queued", String::new()),
            (_, Some(_)) => ("running", String::new()),
            (PointState::Failed { reason }, None) => ("failed", reason.clone()),
            (PointState::Running, None) => ("failed", "the Slurm task ended without ending its run".into()),
            (PointState::Pending, None) if task.is_some() => (
                "failed",
                format!(
                    "the task left the queue without starting the point; see {}",
                    slurm_dir(sweep).join("logs").display()
                ),
            ),
            (PointState::Pending, None) => ("pending", "not submitted".into()),
        };
        let slurm = queued.cloned().or(accounted);
        out.push((p.clone(), TaskStatus { state: state.into(), task: task_name, slurm, detail }));
    }
    Ok((out, acct.is_some()))
}

impl Slurm {
    fn submit(&self, sweep: &Sweep, keys: &[String]) -> anyhow::Result<Submission> {
        let dir = slurm_dir(sweep);
        std::fs::create_dir_all(dir.join("logs"))?;
        let subs = submissions(sweep)?;
        let n = subs.iter().map(|s| s.submission + 1).max().unwrap_or(0);
        let keys_file = dir.join(format!("{n}.keys"));
        write_atomic(&keys_file, (keys.join("\n") + "\n").as_bytes())?;
        let script = dir.join(format!("{n}.sh"));
        let text = format!(
            "#!/bin/bash\n# mesalab sweep {name}, submission {n}: array task i runs the point on line i+1 of {keys}.\nset -euo pipefail\nkey=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" {keys_q})\nexec {bin} sweep exec-point {dir_q} \"$key\"\n",
            name = sweep.plan.name,
            keys = keys_file.display(),
            keys_q = shell_quote(&keys_file.display().to_string()),
            bin = shell_quote(&self.bin.display().to_string()),
            dir_q = shell_quote(&sweep.dir.display().to_string()),
        );
        write_atomic(&script, text.as_bytes())?;
        let o = &self.options;
        let mut array = format!("0-{}", keys.len() - 1);
        if o.max_parallel > 0 {
            array.push_str(&format!("%{}", o.max_parallel));
        }
        let mut args = vec![
            "--parsable".to_string(),
            format!("--job-name=mesalab-{}", sweep.plan.name),
            format!("--array={array}"),
            format!("--output={}", dir.join("logs").join("%A_%a.out").display()),
            format!("--time={}", o.time),
            format!("--mem={}", o.mem),
            format!("--cpus-per-task={}", o.cpus_per_task),
        ];
        if let Some(p) = &o.partition {
            args.push(format!("--partition={p}"));
        }
        if let Some(a) = &o.account {
            args.push(format!("--account={a}"));
        }
        args.push(script.display().to_string());
        let out =
            Command::new("sbatch").args(&args).output().context("cannot run sbatch (is Slurm installed here?)")?;
        if !out.status.success() {
            bail!("sbatch {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let job_id = stdout.trim().split(';').next().unwrap_or("").trim().to_string();
        if job_id.is_empty() || !job_id.bytes().all(|b| b.is_ascii_digit()) {
            bail!("sbatch printed no job id (got `{}`)", stdout.trim());
        }
        let sub = Submission { submission: n, job_id, keys: keys.to_vec(), submitted_at_ms: now_ms() };
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("jobs.jsonl"))?;
        use std::io::Write;
        writeln!(f, "{}", serde_json::to_string(&sub)?)?;
        f.sync_all()?;
        Ok(sub)
    }
}

impl Executor for Slurm {
    fn name(&self) -> &'static str {
        "slurm"
    }

    fn execute(
        &self,
        sweep: &Sweep,
        points: &[PlannedPoint],
        progress: &mut dyn FnMut(&str),
    ) -> anyhow::Result<ExecSummary> {
        let started = Instant::now();
        let (before, _) = status(sweep)?;
        let held: Vec<&str> = before
            .iter()
            .filter(|(_, s)| s.state == "queued" || s.state == "running")
            .map(|(p, _)| p.key.as_str())
            .collect();
        let keys: Vec<String> =
            points.iter().filter(|p| !held.contains(&p.key.as_str())).map(|p| p.key.clone()).collect();
        if !held.is_empty() {
            progress(&format!("slurm: {} point(s) are still queued or running; not submitting them again", held.len()));
        }
        let mut summary = ExecSummary::default();
        if keys.is_empty() {
            return Ok(summary);
        }
        let sub = self.submit(sweep, &keys)?;
        progress(&format!(
            "slurm: submitted job {} ({} task(s), --time={} --mem={}); `mesalab sweep status {}` shows progress",
            sub.job_id,
            keys.len(),
            self.options.time,
            self.options.mem,
            sweep.dir.display()
        ));
        summary.job = Some(sub.job_id.clone());
        summary.submitted = keys.len();
        if !self.wait {
            return Ok(summary);
        }
        let mut last = String::new();
        loop {
            std::thread::sleep(self.poll);
            let (now, _) = status(sweep)?;
            let mine: Vec<&TaskStatus> = now.iter().filter(|(p, _)| keys.contains(&p.key)).map(|(_, s)| s).collect();
            let count = |w: &str| mine.iter().filter(|s| s.state == w).count();
            let line = format!(
                "[sweep] job {}: {} finished, {} failed, {} running, {} queued",
                sub.job_id,
                count("finished"),
                count("failed"),
                count("running"),
                count("queued")
            );
            if line != last {
                progress(&line);
                last = line;
            }
            if self.interrupted.load(Ordering::SeqCst) {
                progress(&format!(
                    "interrupt: stopped waiting; job {} keeps running (scancel {} stops it)",
                    sub.job_id, sub.job_id
                ));
                summary.interrupted = true;
                break;
            }
            if count("running") + count("queued") == 0 {
                summary.finished = count("finished");
                summary.failed = now
                    .iter()
                    .filter(|(p, s)| keys.contains(&p.key) && s.state == "failed")
                    .map(|(p, s)| (p.key.clone(), s.detail.clone()))
                    .collect();
                summary.ran = summary.finished + summary.failed.len();
                summary.submitted = 0;
                break;
            }
        }
        summary.wall_s = started.elapsed().as_secs_f64();
        Ok(summary)
    }
}

/// The points `sweep retry` resubmits: failed ones, never those Slurm still holds.
pub fn retryable(sweep: &Sweep) -> anyhow::Result<Vec<PlannedPoint>> {
    let (all, _) = status(sweep)?;
    Ok(all.into_iter().filter(|(_, s)| s.state == "failed").map(|(p, _)| p).collect())
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The Slurm task's id (`JOB_TASK`) from its environment, when run under Slurm.
pub fn task_id_from_env() -> Option<String> {
    let job = std::env::var("SLURM_ARRAY_JOB_ID").ok()?;
    let task = std::env::var("SLURM_ARRAY_TASK_ID").ok()?;
    Some(format!("{job}_{task}"))
}

pub fn default_bin() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot find the mesalab binary's path")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_and_pending_ranges() {
        let q = parse_squeue("12_3|RUNNING\n12_[4-6%2]|PENDING\n13_0|COMPLETING\ngarbage\n");
        assert_eq!(q.get(&("12".into(), 3)).map(String::as_str), Some("RUNNING"));
        assert_eq!(q.get(&("12".into(), 5)).map(String::as_str), Some("PENDING"));
        assert_eq!(q.get(&("12".into(), 6)).map(String::as_str), Some("PENDING"));
        assert!(!q.contains_key(&("12".into(), 7)));
        assert!(is_active("COMPLETING") && !is_active("COMPLETED") && !is_active("TIMEOUT"));
    }

    #[test]
    fn sacct_lines() {
        let a = parse_sacct("7_0|COMPLETED|0:0|00:00:03\n7_1|CANCELLED by 0|0:15|00:00:01\n7|FAILED|1:0|00:00:01\n");
        assert_eq!(a[&("7".into(), 0)], "COMPLETED (exit 0:0, after 00:00:03)");
        assert!(a[&("7".into(), 1)].starts_with("CANCELLED "));
        assert_eq!(a.len(), 2);
    }
}
