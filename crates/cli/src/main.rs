//! `mesalab`: run experiments on learned optimization, from config to report.
//!
//! The CLI is thin: it parses arguments, reads config files, shows progress and maps errors to
//! exit codes. Everything else lives in the library crates.
//!
//! Exit codes (also in `--help`): 0 ok; 1 the run failed (it is marked `failed` in the store and
//! keeps what it logged); 2 bad input (arguments, config, store path, an occupied `--out`): nothing
//! was run or written; 130 interrupted (the run is marked `interrupted`).

mod bench_cmds;
mod env_cmds;
mod parallel;
mod progress;
mod serve_cmd;
mod sweep_cmds;

use anyhow::{Context, anyhow};
use clap::{Parser, Subcommand};
use mesalab_core::config::Override;
use mesalab_experiments::resources::{self, MemoryLimit};
use mesalab_experiments::{EXPERIMENTS, Plan, PlanOptions, RunError, analyze, execute, regenerate_report, resume};
use mesalab_report::html::{IndexEntry, Status, index_page};
use mesalab_store::Store;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const AFTER_HELP: &str = concat!(
    "Examples:\n",
    "  mesalab demo\n",
    "  mesalab run icl-gd --seeds 3\n",
    "  mesalab run configs/experiments/icl-gd.toml --set model.layers=2 --out runs/deep\n",
    "  mesalab report runs/icl-gd-20261128T120000Z\n",
    "  mesalab render cheese-maze-v1 --split deploy -o maze.svg\n",
    "  mesalab render --experiment coin-corridor --split deploy -o deploy.svg\n",
    "  mesalab serve --port 8765\n",
    "  mesalab sweep run sweep.toml --workers 2 && mesalab merge runs/sweeps/<name>\n",
    "\n",
    "Exit codes: 0 ok, 1 the run failed (it is marked failed in the store and keeps what it logged),\n",
    "2 bad input (nothing was run or written), 130 interrupted."
);

#[derive(Parser, Debug)]
#[command(
    name = "mesalab",
    version,
    about = "A laboratory for learned optimization: base optimizers, mesa-optimizers, and the gap between their objectives.",
    after_help = AFTER_HELP
)]
struct Cli {
    /// SQLite store (default: $MESALAB_STORE, else runs/mesalab.sqlite).
    #[arg(long, global = true, value_name = "PATH")]
    store: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run an experiment: a shipped name (see `list`) or a path to a TOML config.
    Run(RunArgs),
    /// Continue an interrupted, crashed or failed run from its saved training states; its final
    /// results equal an uninterrupted run's. A finished run is refused (exit 2).
    Resume {
        /// The run directory.
        run_dir: PathBuf,
        /// Seeds trained side by side (default: the machine's cores); results do not depend on it.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        jobs: Option<u32>,
    },
    /// Rerun a finished run's look-inside analyses from its checkpoints, e.g. with
    /// `--set inside.probe_tasks=4000`; stored as a new analysis linked to the run (the run
    /// itself never changes) and drawn into `analysis-<id>.html`.
    Analyze {
        /// The run directory.
        run_dir: PathBuf,
        /// Override an `inside.*` setting (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// List the shipped experiments and environments.
    List,
    /// Regenerate a run's report.html from the store.
    Report {
        /// The run directory.
        run_dir: PathBuf,
    },
    /// Run every shipped experiment in quick mode and write an index page linking the reports.
    Demo {
        /// Directory for the demo's runs and index.html (default: runs/demo-<time>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Experiments run at once, each on one thread with its own store connection (default:
        /// the machine's cores). Results are identical to `--jobs 1`: every experiment is seeded
        /// on its own.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
        jobs: Option<u32>,
        /// Only these experiments (comma-separated names, as `mesalab list` shows them).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// Render one level of an environment (ASCII, or SVG with `-o level.svg`).
    Render(env_cmds::RenderArgs),
    /// Play an environment in the terminal (arrow keys / WASD).
    Play(env_cmds::PlayArgs),
    /// List the hook points of an experiment's model (name, dims, shape on a batch of 2), for
    /// caching, patching and steering.
    Hooks(HooksArgs),
    /// Serve a read-only live dashboard over the store (runs table, live curves, comparisons) on
    /// http://127.0.0.1:8765/.
    Serve(serve_cmd::ServeArgs),
    /// MesaBench: build a zoo of models with known answers, list it, score detectors on it.
    Bench {
        #[command(subcommand)]
        command: bench_cmds::BenchCommand,
    },
    /// Sweeps: plan, run (locally or on Slurm), status, retry.
    Sweep {
        #[command(subcommand)]
        command: sweep_cmds::SweepCommand,
    },
    /// Fold stores (or a sweep's point stores) into one store; a sweep also gets its report.
    Merge(sweep_cmds::MergeArgs),
    /// Export the store's runs, metrics and tables as CSV, JSON lines or Parquet.
    Export(sweep_cmds::ExportArgs),
}

#[derive(clap::Args, Debug)]
struct HooksArgs {
    /// Experiment name or path to a .toml config.
    experiment: String,
    /// Override a config value, e.g. `--set model.layers=2` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Experiment name or path to a .toml config.
    experiment: String,
    /// Override a config value, e.g. `--set train.steps=500` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Base seed (seed i of the run uses seed + i).
    #[arg(long)]
    seed: Option<u64>,
    /// Number of seeds.
    #[arg(long)]
    seeds: Option<u64>,
    /// Run directory (default: runs/<experiment>-<time>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Smaller evaluation sizes from the config's [quick] table.
    #[arg(long)]
    quick: bool,
    /// Print the resolved config, the planned work and the memory estimate, and write nothing
    /// (exit 2 when the run would be refused).
    #[arg(long)]
    dry_run: bool,
    /// Refuse runs whose estimated peak memory exceeds SIZE (e.g. 512M, 8G); it can only lower
    /// the machine's available memory, which is the default limit.
    #[arg(long, value_name = "SIZE", value_parser = mesalab_experiments::resources::parse_size)]
    max_memory: Option<u64>,
    /// Seeds trained side by side, one thread each (default: the machine's cores). Results are
    /// identical to `--jobs 1`; the memory estimate counts a training step once per job.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    jobs: Option<u32>,
}

/// An error with the exit code it maps to.
enum Failure {
    /// Exit 2, bad input: nothing was run or written.
    Input(anyhow::Error),
    /// Exit 1: a run failed after it was recorded (it is marked `failed` in the store and keeps
    /// what it logged), or something failed after runs were written (the demo's index).
    Run(anyhow::Error),
    /// Exit 130: the user interrupted a run (it is marked `interrupted`).
    Interrupted(String),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Run(e.into())
    }
}

impl Failure {
    /// The error itself, whatever its exit code.
    fn into_error(self) -> anyhow::Error {
        match self {
            Failure::Input(e) | Failure::Run(e) => e,
            Failure::Interrupted(msg) => anyhow!(msg),
        }
    }
}

/// Exit status of a Unix tool killed by SIGPIPE (128 + 13).
const BROKEN_PIPE_EXIT: i32 = 141;

/// Rust ignores SIGPIPE, so `println!` to a closed pipe (`mesalab merge DIR | grep -q ...`,
/// `mesalab ls | head`) panics with a backtrace. Exit quietly with the status a SIGPIPE death
/// gives instead. Every store write commits before its summary is printed, so nothing is lost.
fn exit_quietly_on_broken_pipe() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to std") && msg.contains("Broken pipe") {
            std::process::exit(BROKEN_PIPE_EXIT);
        }
        default_hook(info);
    }));
}

fn main() -> ExitCode {
    exit_quietly_on_broken_pipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Run(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
        Err(Failure::Interrupted(msg)) => {
            eprintln!("{msg}");
            ExitCode::from(130)
        }
    }
}

fn dispatch(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::List => {
            list();
            Ok(())
        }
        // Both only read (configs, the env registry) and draw; every error is bad input.
        Command::Render(args) => env_cmds::render(&args).map_err(Failure::Input),
        Command::Play(args) => env_cmds::play(&args).map_err(Failure::Input),
        Command::Hooks(args) => {
            let run_args = RunArgs {
                experiment: args.experiment,
                set: args.set,
                seed: None,
                seeds: None,
                out: None,
                quick: false,
                dry_run: false,
                max_memory: None,
                jobs: None,
            };
            let (plan, _) = plan_from_args(&run_args)?;
            // The model is built at full size: refuse what the run itself would be refused for.
            plan.check_memory(&MemoryLimit::machine(None)).map_err(Failure::Input)?;
            let shapes = plan.config.hook_shapes().map_err(Failure::Input)?;
            let width = shapes.iter().map(|h| h.name.len()).max().unwrap_or(0);
            let dims: Vec<String> = shapes.iter().map(|h| format!("[{}]", h.dims.join(", "))).collect();
            let dims_width = dims.iter().map(|d| d.chars().count()).max().unwrap_or(0);
            let mut out = std::io::stdout().lock();
            for (h, d) in shapes.into_iter().zip(dims) {
                let shape = h.shape.map(|s| format!("{s:?}")).unwrap_or_else(|| "(not reached)".into());
                // A closed pipe (`mesalab hooks … | head`) ends the listing quietly.
                if writeln!(out, "{:width$}  {d:dims_width$}  {shape}", h.name).is_err() {
                    break;
                }
            }
            Ok(())
        }
        Command::Report { run_dir } => {
            let store = open_store(cli.store.as_deref())?;
            let path = regenerate_report(&store, &run_dir).map_err(Failure::Input)?;
            println!("{}", path.display());
            Ok(())
        }
        Command::Run(args) => {
            let (mut plan, default_name) = plan_from_args(&args)?;
            plan.threads = args.jobs.map_or_else(cores, |j| j as usize);
            // Before the store or the run directory exists: a refusal writes nothing.
            let limit = MemoryLimit::machine(args.max_memory);
            if args.dry_run {
                return dry_run(&plan, &limit);
            }
            plan.check_memory(&limit).map_err(Failure::Input)?;
            let store = open_store(cli.store.as_deref())?;
            let run_dir = match &args.out {
                Some(dir) => dir.clone(),
                None => fresh_dir(Path::new("runs"), &default_name),
            };
            let interrupted = install_interrupt_handler();
            let finished = run_plan(&plan, &store, &run_dir, interrupted)?;
            print_outcome(&finished.summary, &finished.run_dir);
            Ok(())
        }
        Command::Resume { run_dir, jobs } => {
            let store = open_store(cli.store.as_deref())?;
            let interrupted = install_interrupt_handler();
            let progress = progress::Bars::new(std::io::stdout().is_terminal());
            eprintln!("resuming the run in {}", run_dir.display());
            let revision = Some(env!("MESALAB_REVISION").to_string());
            let finished =
                resume(&store, &run_dir, &progress, interrupted, revision, jobs.map_or_else(cores, |j| j as usize))
                    .map_err(run_failure)?;
            if let Some(warning) = &finished.report_warning {
                eprintln!("warning: {warning}; `mesalab report {}` redraws it", finished.run_dir.display());
            }
            print_outcome(&finished.summary, &finished.run_dir);
            Ok(())
        }
        Command::Analyze { run_dir, set } => {
            let overrides = set
                .iter()
                .map(|s| Override::parse(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Failure::Input(e.into()))?;
            let store = open_store(cli.store.as_deref())?;
            let interrupted = install_interrupt_handler();
            let progress = progress::Bars::new(std::io::stdout().is_terminal());
            let revision = Some(env!("MESALAB_REVISION").to_string());
            let done = analyze(&store, &run_dir, &overrides, &progress, interrupted, revision).map_err(run_failure)?;
            println!("analysis {} → {}", done.analysis_id, done.page.display());
            Ok(())
        }
        Command::Demo { out, jobs, only } => demo(cli.store.as_deref(), out, jobs, &only),
        Command::Serve(args) => serve_cmd::serve(cli.store.as_deref(), &args),
        Command::Bench { command } => bench_cmds::dispatch(command, cli.store.as_deref(), install_interrupt_handler),
        Command::Sweep { command } => sweep_cmds::dispatch(command, cli.store.as_deref(), install_interrupt_handler),
        Command::Merge(args) => sweep_cmds::merge_cmd(args),
        Command::Export(args) => sweep_cmds::export_cmd(args, cli.store.as_deref()),
    }
}

fn list() {
    println!("Experiments (mesalab run <name>):");
    let width = EXPERIMENTS.iter().map(|e| e.name.len()).max().unwrap_or(0);
    for e in EXPERIMENTS {
        println!("  {:width$}  {}", e.name, e.description);
    }
    println!("\nEnvironments (mesalab render|play <name>, or --experiment <experiment> for its train/deploy levels):");
    let width = mesalab_envs::registry::ENTRIES.iter().map(|e| e.name.len()).max().unwrap_or(0);
    for e in mesalab_envs::registry::ENTRIES {
        println!("  {:width$}  {} [splits: {}]", e.name, e.summary, e.splits.join(", "));
    }
}

/// Resolves `experiment` (a shipped name or a .toml path) into a validated plan.
fn plan_from_args(args: &RunArgs) -> Result<(Plan, String), Failure> {
    let overrides = args
        .set
        .iter()
        .map(|s| Override::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::Input(e.into()))?;
    let opts = PlanOptions { seed: args.seed, seeds: args.seeds, quick: args.quick };
    let looks_like_path = args.experiment.ends_with(".toml") || args.experiment.contains('/');
    if looks_like_path {
        let path = Path::new(&args.experiment);
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))
            .map_err(Failure::Input)?;
        let origin = path.display().to_string();
        let plan = Plan::new(&origin, &text, &overrides, &opts).map_err(|e| Failure::Input(e.into()))?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| plan.experiment.clone());
        Ok((plan, stem))
    } else {
        let e = mesalab_experiments::find(&args.experiment).map_err(|e| Failure::Input(e.into()))?;
        let plan =
            Plan::new(e.config_path, e.config, &overrides, &opts).map_err(|e| Failure::Input(e.into()))?.named(e.name);
        Ok((plan, e.name.to_string()))
    }
}

/// `run --dry-run`: the resolved config, the planned work and the memory estimate; exit 2 when
/// the run would be refused.
fn dry_run(plan: &Plan, limit: &MemoryLimit) -> Result<(), Failure> {
    let estimate = plan.estimate().map_err(Failure::Input)?;
    println!(
        "# {} — resolved config ({} seed(s); dry run: nothing was run or written)",
        plan.experiment,
        plan.seeds.len()
    );
    println!("{}", plan.resolved_toml.trim_end());
    println!();
    print!("{}", estimate.render());
    let peak = estimate.peak().get().map_or_else(|| "overflow".to_string(), |b| b.to_string());
    println!("estimated peak bytes: {peak}");
    println!("memory limit: {} ({})", resources::human(limit.bytes), limit.source);
    match resources::check(&estimate, limit) {
        Ok(()) => {
            println!("would run: yes");
            Ok(())
        }
        Err(e) => Err(Failure::Input(e.into())),
    }
}

fn open_store(flag: Option<&Path>) -> Result<Store, Failure> {
    let path = mesalab_store::resolve_path(flag);
    let store = Store::open(&path).map_err(|e| Failure::Input(anyhow!(e)))?;
    // Runs left `running` by a process that no longer exists crashed; say so in the store. One
    // transaction: if it fails nothing was written, and nothing can run on this store.
    store.mark_orphans_crashed().map_err(|e| Failure::Input(anyhow!(e)))?;
    Ok(store)
}

/// `base/<name>-<UTC time>`, with a numeric suffix if that exists already.
fn fresh_dir(base: &Path, name: &str) -> PathBuf {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let stamp: String =
        mesalab_store::rfc3339(now).chars().take(19).filter(|c| c.is_ascii_alphanumeric() || *c == 'T').collect();
    let first = base.join(format!("{name}-{stamp}Z"));
    if !first.exists() {
        return first;
    }
    (2..).map(|i| base.join(format!("{name}-{stamp}Z-{i}"))).find(|p| !p.exists()).expect("some suffix is free")
}

/// First Ctrl-C asks the run to stop at the next check (it is then marked `interrupted`);
/// a second one exits at once (the run is marked `crashed` the next time the store is opened).
fn install_interrupt_handler() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = flag.clone();
    let _ = ctrlc::set_handler(move || {
        if handler_flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: stopping after the current step (Ctrl-C again to quit at once)");
    });
    flag
}

/// The machine's cores (1 when unknown).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn run_plan(
    plan: &Plan,
    store: &Store,
    run_dir: &Path,
    interrupted: Arc<AtomicBool>,
) -> Result<mesalab_experiments::Finished, Failure> {
    run_plan_with(plan, store, run_dir, interrupted, progress::Bars::new(std::io::stdout().is_terminal()))
}

fn run_plan_with(
    plan: &Plan,
    store: &Store,
    run_dir: &Path,
    interrupted: Arc<AtomicBool>,
    progress: progress::Bars,
) -> Result<mesalab_experiments::Finished, Failure> {
    eprintln!(
        "running {} ({} seed{}) into {}",
        plan.experiment,
        plan.seeds.len(),
        if plan.seeds.len() == 1 { "" } else { "s" },
        run_dir.display()
    );
    let revision = Some(env!("MESALAB_REVISION").to_string());
    let finished = execute(plan, store, run_dir, &progress, interrupted, revision).map_err(run_failure)?;
    if let Some(warning) = &finished.report_warning {
        eprintln!("warning: {warning}; `mesalab report {}` redraws it", finished.run_dir.display());
    }
    Ok(finished)
}

fn run_failure(e: RunError) -> Failure {
    match e {
        RunError::Interrupted { .. } => Failure::Interrupted(e.to_string()),
        // Recorded in the store and marked failed there, with what it logged.
        RunError::Failed { .. } => Failure::Run(e.into()),
        // Before the run was (re)started; nothing was left behind or changed.
        RunError::Setup(e) => Failure::Input(e),
    }
}

fn print_outcome(summary: &serde_json::Value, run_dir: &Path) {
    let verdict = &summary["verdict"];
    if let Some(claim) = verdict["claim"].as_str() {
        println!("verdict: {} — {claim}", verdict["answer"].as_str().unwrap_or("?"));
    }
    let identification = &summary["identification"];
    if let Some(closest) = identification["context"]["closest"].as_str() {
        println!(
            "algorithm: {} (closest candidate: {closest}; identification {})",
            identification["context"]["identified"].as_str().unwrap_or("?"),
            identification["answer"].as_str().unwrap_or("?")
        );
    }
    for name in [
        "loss",
        "gd_loss",
        "loss_ratio_vs_gd",
        "sensitivity_cosine",
        "mean_abs_pred_diff",
        "rel_pred_diff",
        "eta_rel_error",
    ] {
        let a = &summary["aggregate"][name];
        if let (Some(mean), Some(min), Some(max)) = (a["mean"].as_f64(), a["min"].as_f64(), a["max"].as_f64()) {
            println!("  {name:20} {mean:.4}  [{min:.4}, {max:.4}]");
        }
    }
    println!("report: {}", run_dir.join("report.html").display());
}

fn demo(store_flag: Option<&Path>, out: Option<PathBuf>, jobs: Option<u32>, only: &[String]) -> Result<(), Failure> {
    for name in only {
        if !EXPERIMENTS.iter().any(|e| e.name == name) {
            let known: Vec<&str> = EXPERIMENTS.iter().map(|e| e.name).collect();
            return Err(Failure::Input(anyhow!("--only: no experiment `{name}`; known: {}", known.join(", "))));
        }
    }
    let dir = out.unwrap_or_else(|| fresh_dir(Path::new("runs"), "demo"));
    let interrupted = install_interrupt_handler();
    let mut plans = Vec::new();
    let limit = MemoryLimit::machine(None);
    for e in EXPERIMENTS.iter().filter(|e| only.is_empty() || only.iter().any(|n| n == e.name)) {
        let plan = Plan::new(e.config_path, e.config, &[], &PlanOptions { quick: true, ..Default::default() })
            .map_err(|err| Failure::Run(anyhow!("shipped config {} is invalid: {err}", e.config_path)))?
            .named(e.name);
        plan.check_memory(&limit).map_err(|err| Failure::Input(err.context(format!("demo: {}", e.name))))?;
        plans.push((e, plan));
    }
    let jobs = jobs.map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), |j| j as usize);
    // Opened once here (marks orphans crashed, checks the store); each job opens its own
    // connection to the same WAL database.
    let store_path = open_store(store_flag)?.path().to_path_buf();
    let experiments: Vec<(&str, PathBuf)> = plans.iter().map(|(e, _)| (e.name, dir.join(e.name))).collect();
    eprintln!("demo: {} experiments, {} at a time, into {}", plans.len(), jobs.min(plans.len()), dir.display());
    let multi = indicatif::MultiProgress::new();
    let outcomes = parallel::run_jobs(plans.len(), jobs, |job| {
        let store = Store::open(&store_path).map_err(|e| Failure::Input(anyhow!(e)))?;
        let (_, run_dir) = &experiments[job];
        let bars = progress::Bars::in_multi(std::io::stdout().is_terminal(), multi.clone(), experiments[job].0);
        let finished = run_plan_with(&plans[job].1, &store, run_dir, interrupted.clone(), bars)?;
        print_outcome(&finished.summary, &finished.run_dir);
        Ok::<_, Failure>(finished)
    })?;
    let mut entries = Vec::new();
    for ((e, _), finished) in plans.iter().zip(outcomes) {
        let v = &finished.summary["verdict"];
        let answer = v["answer"].as_str().unwrap_or("?").to_string();
        let claim = v["claim"].as_str().unwrap_or("").to_string();
        let mut headline: Vec<(String, String)> =
            ["loss", "loss_ratio_vs_gd", "sensitivity_cosine", "loss_ratio_vs_gdpp"]
                .iter()
                .filter_map(|k| {
                    finished.summary["aggregate"][*k]["mean"].as_f64().map(|m| (k.to_string(), format!("{m:.4}")))
                })
                .collect();
        // The goal-preference tests' verdicts: what each agent was inferred to pursue.
        let tested = finished.summary["inferred_mesa_objective"].as_array().into_iter().flatten();
        // The trained agents' inferences; the baselines' rows check the test itself (in the report).
        for p in tested.filter(|p| p["role"] == "trained") {
            if let (Some(variant), Some(levels), Some(goal)) =
                (p["variant"].as_str(), p["levels"].as_str(), p["inferred"].as_str())
            {
                headline.push((format!("pursues ({variant}; {levels})"), goal.to_string()));
            }
        }
        entries.push(IndexEntry {
            name: e.name.to_string(),
            description: if claim.is_empty() {
                e.description.to_string()
            } else {
                format!("{} — claim: {claim}.", e.description)
            },
            href: format!("{}/report.html", e.name),
            headline,
            status: if answer == "yes" {
                Status::good("verdict: yes")
            } else {
                Status::bad(format!("verdict: {answer}"))
            },
        });
    }
    let index = dir.join("index.html");
    mesalab_experiments::runner::write_atomic(&index, index_page("mesalab demo (quick mode)", &entries).as_bytes())?;
    println!("index: {}", index.display());
    Ok(())
}
