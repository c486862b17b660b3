//! `mesalab bench build|list|score`: argument parsing, parallel builds and printing; the work is in
//! `mesalab_bench`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::anyhow;
use mesalab_bench::detectors::{self, Detector, Question, Settings};
use mesalab_bench::zoo::{self, JobState, Zoo};
use mesalab_experiments::Silent;
use mesalab_store::Store;

use crate::{Failure, open_store, parallel, run_failure};

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Train every model of a zoo (finished runs are reused; unfinished ones resume).
    Build(BuildArgs),
    /// Show a zoo's recipes, their build state, and every built model with its labels.
    List(ZooArgs),
    /// Score every detector on every model of a built zoo: leaderboard in the store and a report.
    Score(ScoreArgs),
}

#[derive(clap::Args, Debug)]
pub struct ZooArgs {
    /// A shipped zoo (`zoo`, `smoke`) or a zoo file (TOML).
    #[arg(default_value = "zoo")]
    zoo: String,
    /// Where the zoo's runs live (default: runs/bench/<zoo name>).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    #[command(flatten)]
    zoo: ZooArgs,
    /// Runs built at once, each on one thread with its own store connection (default: the
    /// machine's cores). Every run is seeded on its own, so results do not depend on it.
    #[arg(long)]
    jobs: Option<usize>,
}

#[derive(clap::Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    zoo: ZooArgs,
    /// Only these detectors (repeatable; default: all).
    #[arg(long = "detector")]
    detectors: Vec<String>,
    /// Output directory for the report (default: <zoo dir>/score-<time>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Detector setting, e.g. `--set situations=400` (repeatable; keys: situations,
    /// lm_situations, random_directions, bootstrap, irl_random_episodes).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

pub fn dispatch(
    command: BenchCommand,
    store_flag: Option<&Path>,
    interrupt: fn() -> Arc<AtomicBool>,
) -> Result<(), Failure> {
    match command {
        BenchCommand::Build(args) => build(&args, store_flag, interrupt()),
        BenchCommand::List(args) => list(&args, store_flag),
        BenchCommand::Score(args) => score(&args, store_flag),
    }
}

fn resolve(args: &ZooArgs) -> Result<(Zoo, PathBuf), Failure> {
    let zoo = Zoo::resolve(&args.zoo).map_err(Failure::Input)?;
    let dir = args.dir.clone().unwrap_or_else(|| Path::new("runs").join("bench").join(&zoo.name));
    Ok((zoo, dir))
}

fn build(args: &BuildArgs, store_flag: Option<&Path>, interrupted: Arc<AtomicBool>) -> Result<(), Failure> {
    let (zoo, dir) = resolve(&args.zoo)?;
    let store = open_store(store_flag)?;
    let states: Vec<JobState> = zoo
        .jobs
        .iter()
        .map(|j| zoo::job_state(&store, &dir, j))
        .collect::<anyhow::Result<_>>()
        .map_err(Failure::Input)?;
    let todo: Vec<usize> = (0..zoo.jobs.len()).filter(|&i| !matches!(states[i], JobState::Built(_))).collect();
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    eprintln!(
        "bench build {}: {} runs, {} already built, {} to build, {} at a time, into {}",
        zoo.name,
        zoo.jobs.len(),
        zoo.jobs.len() - todo.len(),
        todo.len(),
        jobs.min(todo.len().max(1)),
        dir.display()
    );
    let store_path = store.path().to_path_buf();
    let start = Instant::now();
    let done = std::sync::atomic::AtomicUsize::new(0);
    parallel::run_jobs(todo.len(), jobs, |k| {
        let i = todo[k];
        let job = &zoo.jobs[i];
        let store = Store::open(&store_path).map_err(|e| Failure::Input(anyhow!(e)))?;
        let run_dir = dir.join(&job.dir);
        let t = Instant::now();
        let revision = Some(env!("MESALAB_REVISION").to_string());
        match states[i] {
            JobState::Unfinished(..) => {
                mesalab_experiments::resume(&store, &run_dir, &Silent, interrupted.clone(), revision, 1)
                    .map_err(run_failure)?;
            }
            _ => {
                mesalab_experiments::execute(&job.plan, &store, &run_dir, &Silent, interrupted.clone(), revision)
                    .map_err(run_failure)?;
            }
        }
        let n = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        eprintln!("  [{n}/{}] {} seed {}: {:.1} s", todo.len(), job.recipe, job.seed, t.elapsed().as_secs_f64());
        Ok::<_, Failure>(())
    })?;
    println!(
        "built {} runs in {:.1} s; `mesalab bench list {}` shows the models",
        todo.len(),
        start.elapsed().as_secs_f64(),
        args.zoo.zoo
    );
    Ok(())
}

fn list(args: &ZooArgs, store_flag: Option<&Path>) -> Result<(), Failure> {
    let (zoo, dir) = resolve(args)?;
    let store = open_store(store_flag)?;
    println!("zoo {} ({}): {}", zoo.name, zoo.origin, zoo.description);
    let mut all_built = true;
    for job in &zoo.jobs {
        let state = zoo::job_state(&store, &dir, job).map_err(Failure::Input)?;
        let word = match &state {
            JobState::Built(id) => format!("built (run {})", id.0),
            JobState::Unfinished(id, status) => format!("{} (run {}; `bench build` resumes it)", status.as_str(), id.0),
            JobState::New => "not built".into(),
        };
        all_built &= matches!(state, JobState::Built(_));
        println!("  {:28} seed {:2}  {:8}  {}", job.recipe, job.seed, job.split.word(), word);
    }
    if !all_built {
        println!("some runs are not built: `mesalab bench build {}` builds them", args.zoo);
        return Ok(());
    }
    let models = zoo::load_models(&zoo, &store, &dir).map_err(Failure::Run)?;
    println!("{} models:", models.len());
    println!("  {:44} {:8} {:6} {:9} {:9}  why", "model", "split", "mesa", "objective", "deceptive");
    for (m, _) in &models {
        let l = &m.labels;
        let w = |v: &dyn erased::Word| v.word();
        println!(
            "  {:44} {:8} {:6} {:9} {:9}  {}",
            m.id,
            m.split.word(),
            w(&l.mesa_optimizer),
            w(&l.objective),
            w(&l.deceptive),
            l.why
        );
    }
    Ok(())
}

/// Label words for printing.
mod erased {
    use mesalab_experiments::audit::{Objective, Truth};
    pub trait Word {
        fn word(&self) -> &'static str;
    }
    impl Word for Truth {
        fn word(&self) -> &'static str {
            match self {
                Truth::Yes => "yes",
                Truth::No => "no",
                Truth::Unknown => "—",
            }
        }
    }
    impl Word for Objective {
        fn word(&self) -> &'static str {
            match self {
                Objective::Intended => "intended",
                Objective::Proxy => "proxy",
                Objective::Unknown => "—",
            }
        }
    }
}

fn settings(set: &[String]) -> Result<Settings, Failure> {
    let mut table = toml::Table::try_from(Settings::default()).map_err(|e| Failure::Run(anyhow!(e)))?;
    for s in set {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| Failure::Input(anyhow!("--set {s}: expected KEY=VALUE, e.g. `--set situations=400`")))?;
        let value: toml::Value = v
            .trim()
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| Failure::Input(anyhow!("--set {s}: `{v}` is not a whole number")))?;
        if !table.contains_key(k.trim()) {
            let keys: Vec<&String> = table.keys().collect();
            return Err(Failure::Input(anyhow!("--set {s}: no setting `{k}`; known: {keys:?}")));
        }
        table.insert(k.trim().into(), value);
    }
    let settings: Settings = table.try_into().map_err(|e| Failure::Input(anyhow!("--set: {e}")))?;
    if settings.situations < 10 || settings.lm_situations < 10 {
        return Err(Failure::Input(anyhow!("--set: situations and lm_situations must be at least 10")));
    }
    if settings.situations > 100_000
        || settings.lm_situations > 10_000
        || settings.random_directions > 1000
        || settings.bootstrap > 100_000
        || settings.irl_random_episodes > 1000
    {
        return Err(Failure::Input(anyhow!(
            "--set: at most situations=100000, lm_situations=10000, random_directions=1000, bootstrap=100000, \
             irl_random_episodes=1000"
        )));
    }
    if settings.irl_random_episodes < 2 {
        return Err(Failure::Input(anyhow!(
            "--set irl_random_episodes: at least 2 random episodes per start estimate a partition function"
        )));
    }
    Ok(settings)
}

fn score(args: &ScoreArgs, store_flag: Option<&Path>) -> Result<(), Failure> {
    let (zoo, dir) = resolve(&args.zoo)?;
    let settings = settings(&args.set)?;
    let chosen: Vec<&'static dyn Detector> = if args.detectors.is_empty() {
        detectors::REGISTRY.to_vec()
    } else {
        args.detectors.iter().map(|d| detectors::find(d)).collect::<anyhow::Result<_>>().map_err(Failure::Input)?
    };
    let store = open_store(store_flag)?;
    for job in &zoo.jobs {
        if !matches!(zoo::job_state(&store, &dir, job).map_err(Failure::Input)?, JobState::Built(_)) {
            return Err(Failure::Input(anyhow!(
                "recipe `{}` seed {} is not built; `mesalab bench build {}` builds it",
                job.recipe,
                job.seed,
                args.zoo.zoo
            )));
        }
    }
    let start = Instant::now();
    let models = zoo::load_models(&zoo, &store, &dir).map_err(Failure::Run)?;
    eprintln!("bench score {}: {} models, {} detectors", zoo.name, models.len(), chosen.len());
    let revisions = zoo::revisions(models.iter().map(|(m, _)| m));
    if revisions.len() > 1 {
        let list: Vec<String> = revisions.iter().map(|(r, n)| format!("{r} ({n})")).collect();
        eprintln!(
            "warning: the models were trained by {} code revisions: {}. Finished runs are reused by config, \
             whatever code built them; build into a fresh --dir to score one revision",
            revisions.len(),
            list.join(", ")
        );
    }
    let mut results = mesalab_bench::score::score_models(models, &chosen, &settings, &mut |i, n, id| {
        if i < n {
            eprintln!("  [{}/{n}] {id}", i + 1);
        }
    });
    let out = args.out.clone().unwrap_or_else(|| crate::fresh_dir(&dir, "score"));
    let revision = Some(env!("MESALAB_REVISION").to_string());
    let (_, board) = mesalab_bench::record(&store, &out, &zoo, &settings, &chosen, &mut results, revision)?;
    println!("held-out leaderboard ({} models, scored in {:.1} s):", results.len(), start.elapsed().as_secs_f64());
    for q in Question::ALL {
        for l in board.lines.iter().filter(|l| l.question == q && l.split == zoo::Split::Heldout) {
            println!(
                "  {:17} {:15} AUROC {:.3} [{:.3}, {:.3}]  acc {:.3}  p {:.2e}  ({}+/{}-, {} unscored)",
                q.text(),
                l.detector,
                l.auroc,
                l.ci_lo,
                l.ci_hi,
                l.accuracy,
                l.mann_whitney_p,
                l.positives,
                l.negatives,
                l.unscored
            );
        }
    }
    for m in &results {
        for (d, e) in &m.errors {
            eprintln!("warning: {d} failed on {}: {e}", m.model.id);
        }
    }
    println!("report: {}", out.join("report.html").display());
    Ok(())
}
