//! A sweep directory: the plan, one directory per point, and each point's state.
//!
//! ```text
//! DIR/sweep.toml            the sweep file as last run (status, retry and merge read this)
//! DIR/base-config.toml      the base config, when the sweep file names a path
//! DIR/plan.json             the expanded points
//! DIR/points/<key>/         one point: store.sqlite, run/ (its run directory), log.txt, attempt.json
//! DIR/attempts/<key>-<n>/   earlier attempts of a point that did not finish, moved aside
//! DIR/slurm/                submissions (<n>.keys, <n>.sh, jobs.jsonl) and task logs
//! DIR/merged.sqlite         `mesalab merge DIR`, with DIR/report.html
//! ```
//!
//! Invariants: a point is finished exactly when the newest run in its own store is `finished`; a
//! finished point's directory is never touched again (re-running a sweep skips it); an unfinished
//! point's directory is moved to `attempts/` whole before the point runs again, so no attempt's
//! logs are lost and every point store holds one attempt.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use mesalab_store::{RunStatus, Store};
use serde::{Deserialize, Serialize};

use crate::point::PlannedPoint;
use crate::spec::{Goal, SlurmOptions, SweepSpec};

pub const PLAN_FILE: &str = "plan.json";
pub const SPEC_FILE: &str = "sweep.toml";
pub const BASE_CONFIG_FILE: &str = "base-config.toml";
pub const POINT_STORE: &str = "store.sqlite";
pub const POINT_RUN_DIR: &str = "run";
pub const POINT_LOG: &str = "log.txt";
pub const ATTEMPT_FILE: &str = "attempt.json";
pub const MERGED_STORE: &str = "merged.sqlite";
pub const REPORT_FILE: &str = "report.html";

/// A swept key as the report needs it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub key: String,
    pub log_scale: bool,
}

/// `plan.json`: what `mesalab run` each point is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepPlan {
    pub name: String,
    /// As the sweep file names it.
    pub experiment: String,
    /// What `mesalab run` is given: the shipped name, or the copied base config's path.
    pub experiment_arg: String,
    pub quick: bool,
    /// Fixed `--set` overrides of every point.
    pub fixed: Vec<String>,
    pub metrics: Vec<String>,
    pub goal: Goal,
    pub keys: Vec<KeyInfo>,
    pub points: Vec<PlannedPoint>,
    pub slurm: SlurmOptions,
}

/// An opened sweep directory.
#[derive(Clone, Debug)]
pub struct Sweep {
    pub dir: PathBuf,
    pub plan: SweepPlan,
}

/// How one attempt of a point ended (or that it is still going), as `attempt.json` records it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// `local` or `slurm`.
    pub executor: String,
    pub host: String,
    /// Pid of the `mesalab run` process.
    pub pid: Option<u32>,
    pub slurm_job: Option<String>,
    pub started_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub wall_s: Option<f64>,
    /// Peak resident memory of the run (VmHWM, sampled every 0.1 s), KiB.
    pub peak_rss_kib: Option<u64>,
}

/// Where a point is.
#[derive(Clone, Debug, PartialEq)]
pub enum PointState {
    /// Never started (or its directory is gone).
    Pending,
    /// A process is on it (locally: its pid is alive; for Slurm, the caller asks squeue).
    Running,
    Finished {
        run_uid: String,
        wall_s: Option<f64>,
        peak_rss_kib: Option<u64>,
    },
    Failed {
        reason: String,
    },
}

impl PointState {
    pub fn word(&self) -> &'static str {
        match self {
            PointState::Pending => "pending",
            PointState::Running => "running",
            PointState::Finished { .. } => "finished",
            PointState::Failed { .. } => "failed",
        }
    }
}

impl Sweep {
    /// Writes `sweep.toml`, the base config copy and `plan.json` for `spec` into `dir` (created if
    /// needed). `spec_path` is where the sweep file was read (a relative experiment path is
    /// relative to it). Point directories already there keep their state: points are matched by
    /// key, so a point the new plan still has and that finished is not run again.
    pub fn prepare(spec: &SweepSpec, spec_path: &Path, dir: &Path) -> anyhow::Result<Sweep> {
        std::fs::create_dir_all(dir.join("points"))
            .with_context(|| format!("cannot create the sweep directory {}", dir.display()))?;
        let dir = std::fs::canonicalize(dir)?;
        let experiment_arg = match experiment_path(spec, spec_path) {
            Some(config) => {
                let text = std::fs::read_to_string(&config)
                    .with_context(|| format!("cannot read the base config {}", config.display()))?;
                let copy = dir.join(BASE_CONFIG_FILE);
                write_atomic(&copy, text.as_bytes())?;
                copy.display().to_string()
            }
            None => spec.experiment.clone(),
        };
        let plan = SweepPlan {
            name: spec.name.clone(),
            experiment: spec.experiment.clone(),
            experiment_arg,
            quick: spec.quick,
            fixed: spec.fixed.iter().map(|o| format!("{}={}", o.key, o.raw)).collect(),
            metrics: spec.metrics.clone(),
            goal: spec.goal,
            keys: spec.swept().map(|k| KeyInfo { key: k.key.clone(), log_scale: k.log_scale() }).collect(),
            points: spec.points().iter().map(PlannedPoint::from).collect(),
            slurm: spec.slurm.clone(),
        };
        write_atomic(&dir.join(SPEC_FILE), spec.text.as_bytes())?;
        write_atomic(&dir.join(PLAN_FILE), serde_json::to_string_pretty(&plan)?.as_bytes())?;
        Ok(Sweep { dir, plan })
    }

    /// Opens a sweep directory written by [`Sweep::prepare`].
    pub fn open(dir: &Path) -> anyhow::Result<Sweep> {
        let plan_path = dir.join(PLAN_FILE);
        let text = std::fs::read_to_string(&plan_path).with_context(|| {
            format!("{} is not a sweep directory (no {PLAN_FILE}); `mesalab sweep run FILE` creates one", dir.display())
        })?;
        let plan: SweepPlan =
            serde_json::from_str(&text).with_context(|| format!("{} is damaged", plan_path.display()))?;
        Ok(Sweep { dir: std::fs::canonicalize(dir)?, plan })
    }

    pub fn point_dir(&self, key: &str) -> PathBuf {
        self.dir.join("points").join(key)
    }

    pub fn point(&self, key: &str) -> Option<&PlannedPoint> {
        self.plan.points.iter().find(|p| p.key == key)
    }

    /// The `mesalab` arguments that run `point` into its own directory and store.
    pub fn run_args(&self, point: &PlannedPoint) -> Vec<String> {
        let pd = self.point_dir(&point.key);
        let mut args = vec![
            "--store".to_string(),
            pd.join(POINT_STORE).display().to_string(),
            "run".into(),
            self.plan.experiment_arg.clone(),
        ];
        if self.plan.quick {
            args.push("--quick".into());
        }
        args.extend(["--seed".into(), point.seed.to_string(), "--seeds".into(), "1".into()]);
        for o in self.plan.fixed.iter().cloned().chain(point.overrides()) {
            args.extend(["--set".into(), o]);
        }
        args.extend(["--out".into(), pd.join(POINT_RUN_DIR).display().to_string()]);
        args
    }

    /// The last attempt record of a point, if it ever started.
    pub fn attempt(&self, key: &str) -> Option<Attempt> {
        let text = std::fs::read_to_string(self.point_dir(key).join(ATTEMPT_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// A point's state from its own store and attempt record. With `local_pids`, a run whose
    /// process is gone from this machine is taken as crashed; without (Slurm: the process may be
    /// on another node), a `running` run stays [`PointState::Running`] for the caller to judge.
    pub fn state(&self, key: &str, local_pids: bool) -> PointState {
        let pd = self.point_dir(key);
        if !pd.is_dir() {
            return PointState::Pending;
        }
        let attempt = self.attempt(key);
        let store_path = pd.join(POINT_STORE);
        let newest = if store_path.is_file() {
            match Store::open(&store_path) {
                Ok(store) => {
                    if local_pids {
                        let _ = store.mark_orphans_crashed();
                    }
                    match store.runs() {
                        Ok(runs) => runs.into_iter().next(),
                        Err(e) => return PointState::Failed { reason: format!("its store cannot be read: {e}") },
                    }
                }
                Err(e) => return PointState::Failed { reason: format!("its store cannot be opened: {e}") },
            }
        } else {
            None
        };
        match newest {
            Some(run) if run.status == RunStatus::Finished => PointState::Finished {
                run_uid: run.uid,
                wall_s: attempt.as_ref().and_then(|a| a.wall_s),
                peak_rss_kib: attempt.as_ref().and_then(|a| a.peak_rss_kib),
            },
            Some(run) if run.status == RunStatus::Running => match &attempt {
                Some(a) if a.ended_at_ms.is_some() => PointState::Failed {
                    reason: format!("`mesalab run` ended ({}) without ending its run", exit_text(a)),
                },
                _ => PointState::Running,
            },
            Some(run) => PointState::Failed {
                reason: format!("run {}: {}", run.status, run.error.unwrap_or_else(|| "no message".into())),
            },
            None => match &attempt {
                Some(a) if a.ended_at_ms.is_some() => PointState::Failed {
                    reason: format!(
                        "`mesalab run` ended ({}) before recording a run; see {}",
                        exit_text(a),
                        pd.join(POINT_LOG).display()
                    ),
                },
                Some(a) if local_pids && a.pid.is_some_and(|p| !pid_alive(p)) => {
                    PointState::Failed { reason: "its process died before recording a run".into() }
                }
                Some(_) => PointState::Running,
                None => PointState::Pending,
            },
        }
    }

    /// Moves an unfinished point's directory to `attempts/<key>-<n>` so the point can run again.
    pub fn set_aside(&self, key: &str) -> anyhow::Result<Option<PathBuf>> {
        let pd = self.point_dir(key);
        if !pd.exists() {
            return Ok(None);
        }
        if matches!(self.state(key, true), PointState::Finished { .. }) {
            bail!("point {key} has finished; a finished point is never run again");
        }
        let attempts = self.dir.join("attempts");
        std::fs::create_dir_all(&attempts)?;
        let target = (1..).map(|n| attempts.join(format!("{key}-{n}"))).find(|p| !p.exists()).expect("a free name");
        std::fs::rename(&pd, &target)
            .with_context(|| format!("cannot move {} to {}", pd.display(), target.display()))?;
        Ok(Some(target))
    }

    /// The point stores of finished points (what `mesalab merge` folds together).
    pub fn finished_stores(&self) -> Vec<(PlannedPoint, PathBuf)> {
        self.plan
            .points
            .iter()
            .filter(|p| matches!(self.state(&p.key, false), PointState::Finished { .. }))
            .map(|p| (p.clone(), self.point_dir(&p.key).join(POINT_STORE)))
            .collect()
    }
}

/// The base config's path when the sweep file names one (`experiment = "cfg/x.toml"`).
pub fn experiment_path(spec: &SweepSpec, spec_path: &Path) -> Option<PathBuf> {
    let e = &spec.experiment;
    if e.ends_with(".toml") || e.contains('/') {
        let p = Path::new(e);
        Some(if p.is_absolute() { p.to_path_buf() } else { spec_path.parent().unwrap_or(Path::new(".")).join(p) })
    } else {
        None
    }
}

pub fn exit_text(a: &Attempt) -> String {
    match (a.exit_code, a.signal) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "no exit status".into(),
    }
}

/// Whether `pid` is alive on this machine (Linux `/proc`; elsewhere assumed alive).
pub fn pid_alive(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some('Z' | 'X' | 'x'))
        }
        Err(_) => false,
    }
}

/// Writes via a temporary file and a rename, so readers never see half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot move {} into place", path.display()))?;
    Ok(())
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}
