//! `mesalab sweep plan|run|status|retry`, `mesalab merge`, `mesalab export`: argument parsing,
//! reading sweep files and printing; the work is in `mesalab_sweep`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, anyhow};
use mesalab_core::config::{ConfigError, Override};
use mesalab_experiments::{Plan, PlanOptions};
use mesalab_store::Store;
use mesalab_sweep::executor::{Executor, unfinished};
use mesalab_sweep::local::Local;
use mesalab_sweep::slurm::{self, Slurm};
use mesalab_sweep::spec::SlurmOptions;
use mesalab_sweep::sweep::{PointState, Sweep};
use mesalab_sweep::{SweepSpec, estimate, export, merge};

use crate::Failure;

#[derive(clap::Subcommand, Debug)]
pub enum SweepCommand {
    /// Print a sweep file's points and the estimated time and memory; runs nothing (unless
    /// --calibrate) and writes nothing.
    Plan(PlanArgs),
    /// Run every unfinished point of a sweep (finished points are skipped).
    Run(RunArgs),
    /// Show each point's state (for Slurm sweeps with squeue / sacct).
    Status {
        /// The sweep directory.
        dir: PathBuf,
    },
    /// Run the failed points of a sweep again (resubmit them alone on Slurm).
    Retry(RetryArgs),
    /// Run one point (what a Slurm task runs).
    #[command(hide = true)]
    ExecPoint { dir: PathBuf, key: String },
}

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// The sweep file (TOML).
    file: PathBuf,
    /// Sweep directory whose finished points give the estimate (default: runs/sweeps/<name>).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Run the first point once (in a temporary directory) to measure its time and memory.
    #[arg(long)]
    calibrate: bool,
    /// Parallel points for the time estimate (default: the number of cores).
    #[arg(long)]
    workers: Option<usize>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ExecArgs {
    /// local (worker processes here) or slurm (one sbatch --array job).
    #[arg(long, default_value = "local")]
    executor: String,
    /// local: parallel worker processes (default: the number of cores).
    #[arg(long)]
    workers: Option<usize>,
    /// slurm: wait until every task has left the queue, printing progress.
    #[arg(long)]
    wait: bool,
    /// slurm: --time per task (default: the sweep file's [slurm] time).
    #[arg(long)]
    time: Option<String>,
    /// slurm: --mem per task.
    #[arg(long)]
    mem: Option<String>,
    /// slurm: --partition.
    #[arg(long)]
    partition: Option<String>,
    /// slurm: --account.
    #[arg(long)]
    account: Option<String>,
    /// slurm: --cpus-per-task.
    #[arg(long)]
    cpus_per_task: Option<u32>,
    /// slurm: at most this many tasks at once.
    #[arg(long)]
    max_parallel: Option<u32>,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The sweep file (TOML).
    file: PathBuf,
    /// Sweep directory (default: runs/sweeps/<name>); re-running into it skips finished points.
    #[arg(long)]
    dir: Option<PathBuf>,
    #[command(flatten)]
    exec: ExecArgs,
}

#[derive(clap::Args, Debug)]
pub struct RetryArgs {
    /// The sweep directory.
    dir: PathBuf,
    #[command(flatten)]
    exec: ExecArgs,
}

#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// Sweep directories (their finished point stores) and store files.
    #[arg(required = true)]
    sources: Vec<PathBuf>,
    /// The store to merge into (default for one sweep directory: DIR/merged.sqlite, and the sweep
    /// report DIR/report.html is written).
    #[arg(long)]
    into: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// csv, jsonl or parquet.
    #[arg(long)]
    format: String,
    /// Directory for runs.<ext>, metrics.<ext>, tables.<ext>.
    #[arg(long)]
    out: PathBuf,
    /// Only these run ids (comma-separated or repeated); default: every run.
    #[arg(long, value_delimiter = ',')]
    runs: Vec<i64>,
}

fn input(e: impl Into<anyhow::Error>) -> Failure {
    Failure::Input(e.into())
}

/// Reads and validates a sweep file, then every point's config as `mesalab run` will load it.
/// Returns the spec and each point's resolved config.
fn load_spec(file: &Path) -> Result<(SweepSpec, Vec<String>), Failure> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read sweep file {}", file.display()))
        .map_err(input)?;
    let origin = file.display().to_string();
    let spec = SweepSpec::parse(&origin, &text).map_err(input)?;
    let located = |line: Option<usize>, key: String, message: String, suggestion: Option<String>| ConfigError {
        origin: origin.clone(),
        line,
        key: Some(key),
        message,
        suggestion,
    };
    // The base config, as `mesalab run` will read it.
    let (config_origin, config_text, shipped_name) = match mesalab_sweep::sweep::experiment_path(&spec, file) {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                input(located(
                    mesalab_core::config::locate_key(&text, "experiment"),
                    "experiment".into(),
                    format!("cannot read the base config {}: {e}", path.display()),
                    None,
                ))
            })?;
            (path.display().to_string(), text, None)
        }
        None => {
            let e = mesalab_experiments::find(&spec.experiment).map_err(|e| {
                input(located(
                    mesalab_core::config::locate_key(&text, "experiment"),
                    "experiment".into(),
                    e.to_string(),
                    None,
                ))
            })?;
            (e.config_path.to_string(), e.config.to_string(), Some(e.name))
        }
    };
    let mut resolved = Vec::new();
    for point in spec.points() {
        let mut overrides = spec.fixed.clone();
        for o in point.overrides() {
            overrides.push(Override::parse(&o).map_err(input)?);
        }
        let opts = PlanOptions { seed: Some(point.seed), seeds: Some(1), quick: spec.quick };
        let plan = Plan::new(&config_origin, &config_text, &overrides, &opts).map_err(|e| {
            // An error from an override points at the sweep file's line for that key.
            let from_set = e.origin.strip_prefix("--set ").and_then(|s| s.split_once('=')).map(|(k, _)| k.to_string());
            match from_set {
                Some(key) => {
                    let (line, name) = spec.locate(&key);
                    input(located(
                        line,
                        name,
                        format!("{} (at point {}: {})", e.message, point.index, point.label()),
                        e.suggestion,
                    ))
                }
                None => input(e),
            }
        })?;
        let plan = match shipped_name {
            Some(n) => plan.named(n),
            None => plan,
        };
        resolved.push(plan.resolved_toml);
    }
    Ok((spec, resolved))
}

fn default_dir(spec: &SweepSpec) -> PathBuf {
    Path::new("runs").join("sweeps").join(&spec.name)
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn bin() -> Result<PathBuf, Failure> {
    slurm::default_bin().map_err(Failure::Run)
}

pub fn dispatch(
    cmd: SweepCommand,
    store_flag: Option<&Path>,
    interrupted: impl Fn() -> Arc<AtomicBool>,
) -> Result<(), Failure> {
    match cmd {
        SweepCommand::Plan(args) => plan(args, store_flag),
        SweepCommand::Run(args) => {
            let (spec, _) = load_spec(&args.file)?;
            let dir = args.dir.clone().unwrap_or_else(|| default_dir(&spec));
            let executor = executor_for(&args.exec, &spec.slurm, interrupted())?;
            let sweep = Sweep::prepare(&spec, &args.file, &dir).map_err(Failure::Run)?;
            let mut print = |line: &str| eprintln!("{line}");
            let summary = mesalab_sweep::run_sweep(&sweep, executor.as_ref(), &mut print).map_err(Failure::Run)?;
            finish(&sweep, &summary)
        }
        SweepCommand::Retry(args) => {
            let sweep = Sweep::open(&args.dir).map_err(input)?;
            let is_slurm = args.exec.executor == "slurm";
            let todo =
                if is_slurm { slurm::retryable(&sweep).map_err(Failure::Run)? } else { unfinished(&sweep, true) };
            eprintln!("retry: {} point(s) to run again", todo.len());
            if todo.is_empty() {
                return Ok(());
            }
            let executor = executor_for(&args.exec, &sweep.plan.slurm, interrupted())?;
            let mut print = |line: &str| eprintln!("{line}");
            let summary = executor.execute(&sweep, &todo, &mut print).map_err(Failure::Run)?;
            finish(&sweep, &summary)
        }
        SweepCommand::Status { dir } => status(&dir),
        SweepCommand::ExecPoint { dir, key } => {
            let sweep = Sweep::open(&dir).map_err(input)?;
            let point =
                sweep.point(&key).cloned().ok_or_else(|| input(anyhow!("no point {key} in {}", dir.display())))?;
            let outcome =
                mesalab_sweep::exec::run_point(&bin()?, &sweep, &point, "slurm", slurm::task_id_from_env(), None)
                    .map_err(Failure::Run)?;
            match outcome {
                mesalab_sweep::exec::PointOutcome::AlreadyFinished => {
                    println!("point {key} had finished already");
                    Ok(())
                }
                mesalab_sweep::exec::PointOutcome::StillRunning(pid) => {
                    Err(Failure::Run(anyhow!("point {key} is still being run by process {pid:?} on this node")))
                }
                mesalab_sweep::exec::PointOutcome::Ran(PointState::Finished { wall_s, .. }) => {
                    println!("point {key} finished in {:.1} s", wall_s.unwrap_or(f64::NAN));
                    Ok(())
                }
                mesalab_sweep::exec::PointOutcome::Ran(other) => Err(Failure::Run(anyhow!(
                    "point {key} {}: {}",
                    other.word(),
                    mesalab_sweep::exec::log_tail(&sweep, &key, 3)
                ))),
            }
        }
    }
}

fn executor_for(
    args: &ExecArgs,
    from_file: &SlurmOptions,
    interrupted: Arc<AtomicBool>,
) -> Result<Box<dyn Executor>, Failure> {
    match args.executor.as_str() {
        "local" => Ok(Box::new(Local {
            bin: bin()?,
            workers: args.workers.unwrap_or_else(cores),
            interrupted,
            heartbeat: Duration::from_secs(10),
        })),
        "slurm" => {
            let mut o = from_file.clone();
            if let Some(t) = &args.time {
                o.time = t.clone();
            }
            if let Some(m) = &args.mem {
                o.mem = m.clone();
            }
            if let Some(p) = &args.partition {
                o.partition = Some(p.clone());
            }
            if let Some(a) = &args.account {
                o.account = Some(a.clone());
            }
            if let Some(c) = args.cpus_per_task {
                o.cpus_per_task = c;
            }
            if let Some(m) = args.max_parallel {
                o.max_parallel = m;
            }
            o.validate().map_err(|inv| {
                input(anyhow!("--{}: {}", inv.key.trim_start_matches("slurm.").replace('_', "-"), inv.message))
            })?;
            Ok(Box::new(Slurm { bin: bin()?, options: o, wait: args.wait, poll: Duration::from_secs(2), interrupted }))
        }
        other => Err(input(anyhow!(
            "unknown executor `{other}`{}; valid: local, slurm",
            mesalab_core::suggest::did_you_mean(other, &["local", "slurm"])
        ))),
    }
}

fn finish(sweep: &Sweep, s: &mesalab_sweep::ExecSummary) -> Result<(), Failure> {
    if s.submitted > 0 {
        println!("submitted {} point(s) as Slurm job {}", s.submitted, s.job.as_deref().unwrap_or("?"));
        return Ok(());
    }
    println!(
        "sweep {}: {} ran ({} finished, {} failed), {} already finished; {:.1} s",
        sweep.plan.name,
        s.ran,
        s.finished,
        s.failed.len(),
        s.skipped,
        s.wall_s
    );
    for (key, why) in &s.failed {
        println!("  failed: point {key}: {why}");
    }
    if s.interrupted {
        return Err(Failure::Interrupted("sweep interrupted; `mesalab sweep run` again runs what is missing".into()));
    }
    if !s.failed.is_empty() {
        return Err(Failure::Run(anyhow!(
            "{} point(s) failed; `mesalab sweep retry {}` runs them again",
            s.failed.len(),
            sweep.dir.display()
        )));
    }
    println!("`mesalab merge {}` folds the point stores into one and draws the sweep report", sweep.dir.display());
    Ok(())
}

fn plan(args: PlanArgs, store_flag: Option<&Path>) -> Result<(), Failure> {
    let (spec, resolved) = load_spec(&args.file)?;
    let points = spec.points();
    let dir = args.dir.clone().unwrap_or_else(|| default_dir(&spec));
    let existing = Sweep::open(&dir).ok();
    println!(
        "sweep {}: {} point(s) of {}{}",
        spec.name,
        points.len(),
        spec.experiment,
        if spec.quick { " --quick" } else { "" }
    );
    if !spec.fixed.is_empty() {
        println!("fixed: {}", spec.fixed.iter().map(|o| format!("{}={}", o.key, o.raw)).collect::<Vec<_>>().join(" "));
    }
    for p in &points {
        let state = existing
            .as_ref()
            .filter(|s| s.point(&p.key).is_some())
            .map(|s| s.state(&p.key, true).word())
            .unwrap_or("new");
        println!("  {:>4}  {}  seed {:<4} {:<9} {}", p.index, p.key, p.seed, state, p.label());
    }
    let workers = args.workers.unwrap_or_else(cores);
    let mut est = existing.as_ref().and_then(estimate::from_sweep);
    if est.is_none() && args.calibrate {
        let tmp = std::env::temp_dir().join(format!("mesalab-calibrate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let sweep = Sweep::prepare(&spec, &args.file, &tmp).map_err(Failure::Run)?;
        let first = sweep.plan.points[0].clone();
        eprintln!("calibrating: running point 0 ({}) once in {}", first.label(), tmp.display());
        mesalab_sweep::exec::run_point(&bin()?, &sweep, &first, "local", None, None).map_err(Failure::Run)?;
        let attempt = sweep.attempt(&first.key);
        let ok = matches!(sweep.state(&first.key, true), PointState::Finished { .. });
        if !ok {
            let tail = mesalab_sweep::exec::log_tail(&sweep, &first.key, 3);
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(Failure::Run(anyhow!("calibration: point 0 failed: {tail}")));
        }
        est = attempt.as_ref().and_then(|a| estimate::from_attempt(a, "point 0"));
        let _ = std::fs::remove_dir_all(&tmp);
    }
    if est.is_none() {
        let store_path = mesalab_store::resolve_path(store_flag);
        if store_path.is_file()
            && let Ok(store) = Store::open(&store_path)
        {
            let experiment =
                mesalab_experiments::registry::runner_of("resolved", &resolved[0]).map(|r| r.name).unwrap_or("");
            est = estimate::from_store(&store, experiment, &resolved[0], spec.quick);
        }
    }
    match est {
        Some(e) => {
            for line in estimate::describe(&e, points.len(), workers.min(points.len()).max(1)) {
                println!("{line}");
            }
            if let Some(limit) = estimate::slurm_time_s(&spec.slurm.time)
                && e.per_point_s > limit
            {
                println!("warning: a point takes longer than the Slurm time limit {}", spec.slurm.time);
            }
            if let (Some(mem), Some(peak)) = (estimate::slurm_mem_kib(&spec.slurm.mem), e.peak_rss_kib)
                && peak > mem
            {
                println!("warning: a point needs more memory than the Slurm limit {}", spec.slurm.mem);
            }
        }
        None => println!(
            "estimate: none — no finished point of this sweep and no finished run of this experiment in the store; \
             `mesalab sweep plan --calibrate {}` runs point 0 once to measure it",
            args.file.display()
        ),
    }
    Ok(())
}

fn status(dir: &Path) -> Result<(), Failure> {
    let sweep = Sweep::open(dir).map_err(input)?;
    let subs = slurm::submissions(&sweep).map_err(Failure::Run)?;
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    if subs.is_empty() {
        println!("sweep {} (local): {} point(s)", sweep.plan.name, sweep.plan.points.len());
        for p in &sweep.plan.points {
            let state = sweep.state(&p.key, true);
            let detail = match &state {
                PointState::Finished { wall_s, .. } => wall_s.map(|w| format!("{w:.1} s")).unwrap_or_default(),
                PointState::Failed { reason } => reason.clone(),
                _ => String::new(),
            };
            *counts.entry(state.word().to_string()).or_default() += 1;
            println!("  {:>4}  {}  seed {:<4} {:<9} {}  {}", p.index, p.key, p.seed, state.word(), p.label(), detail);
        }
    } else {
        let (all, accounting) = slurm::status(&sweep).map_err(Failure::Run)?;
        println!(
            "sweep {} (slurm, {} submission(s), jobs {}): {} point(s){}",
            sweep.plan.name,
            subs.len(),
            subs.iter().map(|s| s.job_id.as_str()).collect::<Vec<_>>().join(","),
            sweep.plan.points.len(),
            if accounting {
                ""
            } else {
                "; sacct unavailable (accounting off): ended tasks are judged by their stores"
            }
        );
        for (p, s) in &all {
            *counts.entry(s.state.clone()).or_default() += 1;
            println!(
                "  {:>4}  {}  seed {:<4} {:<9} {:<10} {}  {}{}",
                p.index,
                p.key,
                p.seed,
                s.state,
                s.task.as_deref().unwrap_or("-"),
                p.label(),
                s.detail,
                s.slurm.as_ref().map(|x| format!(" [slurm: {x}]")).unwrap_or_default()
            );
        }
    }
    println!("{}", counts.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", "));
    Ok(())
}

pub fn merge_cmd(args: MergeArgs) -> Result<(), Failure> {
    let is_sweep = |p: &Path| p.join(mesalab_sweep::sweep::PLAN_FILE).is_file();
    if let [only] = args.sources.as_slice()
        && is_sweep(only)
    {
        let sweep = Sweep::open(only).map_err(input)?;
        let m = merge::merge_sweep(&sweep, args.into.as_deref()).map_err(|e| {
            match e.downcast::<mesalab_store::StoreError>() {
                Ok(store_err @ mesalab_store::StoreError::MergeConflict { .. }) => Failure::Input(store_err.into()),
                Ok(other) => Failure::Run(other.into()),
                Err(e) => Failure::Run(e),
            }
        })?;
        print_merge(&m.summary, &m.store);
        println!("{} of {} point(s) in the merged store", m.merged_points, sweep.plan.points.len());
        if !m.missing.is_empty() {
            println!("not finished (not merged): {}", m.missing.join(", "));
        }
        println!("report: {}", m.report.display());
        return Ok(());
    }
    let into = args.into.clone().ok_or_else(|| input(anyhow!("name the target store with --into PATH")))?;
    let mut paths = Vec::new();
    for s in &args.sources {
        if is_sweep(s) {
            let sweep = Sweep::open(s).map_err(input)?;
            paths.extend(sweep.finished_stores().into_iter().map(|(_, p)| p));
        } else if s.is_file() {
            paths.push(s.clone());
        } else {
            return Err(input(anyhow!("{} is neither a store file nor a sweep directory", s.display())));
        }
    }
    let sources: Vec<Store> = paths.iter().map(|p| Store::open(p)).collect::<Result<_, _>>().map_err(input)?;
    let target = Store::open(&into).map_err(input)?;
    let summary = target.merge(&sources.iter().collect::<Vec<_>>()).map_err(|e| match e {
        mesalab_store::StoreError::MergeConflict { .. } => Failure::Input(e.into()),
        other => Failure::Run(other.into()),
    })?;
    print_merge(&summary, &into);
    Ok(())
}

fn print_merge(s: &mesalab_store::MergeSummary, into: &Path) {
    println!("merged into {}: {} run(s) copied, {} already there", into.display(), s.imported.len(), s.already_present);
    for (path, id) in &s.skipped_running {
        println!("  skipped run {id} of {} (still running; merge again once it has ended)", path.display());
    }
}

pub fn export_cmd(args: ExportArgs, store_flag: Option<&Path>) -> Result<(), Failure> {
    let format = export::Format::parse(&args.format).map_err(input)?;
    let path = mesalab_store::resolve_path(store_flag);
    if !path.is_file() {
        return Err(input(anyhow!("no store at {}; name one with --store PATH", path.display())));
    }
    let store = Store::open(&path).map_err(input)?;
    let runs = (!args.runs.is_empty()).then_some(args.runs.as_slice());
    if let Some(ids) = runs {
        let known: Vec<i64> = store.runs().map_err(|e| Failure::Run(e.into()))?.iter().map(|r| r.id.0).collect();
        if let Some(bad) = ids.iter().find(|i| !known.contains(i)) {
            return Err(input(anyhow!("run {bad} is not in the store {}", path.display())));
        }
    }
    for (file, rows) in export::export(&store, runs, format, &args.out).map_err(Failure::Run)? {
        println!("{} ({rows} rows)", file.display());
    }
    Ok(())
}
