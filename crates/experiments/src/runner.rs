//! Executes a [`Plan`]: run directory, store bookkeeping, the experiment, `summary.json` and the
//! report.
//!
//! Order: the run directory (with `config.toml`) and the store row are created only once the plan
//! has validated; the experiment runs; `summary.json` and `report.html` are written (atomically);
//! they are recorded as artifacts; only then is the run marked `finished`. So a run the store calls
//! `finished` always has its summary and report on disk.
//!
//! Invariants: an error before the store row exists is [`RunError::Setup`] and leaves nothing
//! behind (a directory or `config.toml` this call created is removed again); any error after it
//! exists — the experiment's, drawing the report, writing the outputs, recording them — marks the
//! run `failed` with the message and keeps everything it logged ([`RunError::Failed`]); Ctrl-C
//! marks it `interrupted`; a finished run is never modified in the store again (its report can be
//! regenerated from the store at any time).

use crate::context::{Interrupted, Progress, RunContext};
use crate::plan::Plan;
use crate::registry::Runner;
use anyhow::Context as _;
use mesalab_store::{Artifact, ArtifactKind, NewRun, RunId, RunOutcome, Store};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// What a finished run produced.
#[derive(Debug)]
pub struct Finished {
    pub run_id: RunId,
    pub run_dir: PathBuf,
    pub summary: serde_json::Value,
    /// Set when `report.html` could not be redrawn once the run was marked finished: the report on
    /// disk is complete but was drawn just before, so its header still says `running`
    /// (`mesalab report <run-dir>` redraws it).
    pub report_warning: Option<String>,
}

/// How a run ended when it did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "run {run_id} was interrupted; its training states are saved: `mesalab resume {}` continues it",
        run_dir.display()
    )]
    Interrupted { run_id: i64, run_dir: PathBuf },
    /// Failed after the run was recorded; it is marked `failed` in the store (when the store
    /// accepted that) and keeps everything it logged.
    #[error("run {run_id} failed: {message}")]
    Failed { run_id: i64, message: String },
    /// Failed before the run was recorded (run directory or store problems); nothing was left
    /// behind.
    #[error(transparent)]
    Setup(#[from] anyhow::Error),
}

impl From<mesalab_store::StoreError> for RunError {
    fn from(e: mesalab_store::StoreError) -> Self {
        RunError::Setup(e.into())
    }
}

/// The files of a run directory the runner writes itself.
const CONFIG_FILE: &str = "config.toml";
const SUMMARY_FILE: &str = "summary.json";
const REPORT_FILE: &str = "report.html";

/// Creates `run_dir` (which must not exist or be empty), records the run and executes it.
pub fn execute(
    plan: &Plan,
    store: &Store,
    run_dir: &Path,
    progress: &dyn Progress,
    interrupted: Arc<AtomicBool>,
    code_revision: Option<String>,
) -> Result<Finished, RunError> {
    let run_id = begin(plan, store, run_dir, code_revision)?;
    drive(plan, store, run_id, run_dir, progress, interrupted)
}

/// Continues the unfinished run (`interrupted`, `crashed` or `failed`) whose directory is
/// `run_dir`, as a new attempt: the store forgets what earlier attempts logged, and the experiment
/// runs again over the same directory, where each training loop continues from the training state
/// it saved (`train-state.bin`) and finished trainings are not repeated. The evaluations are
/// deterministic functions of the trained models, so the run ends with the same results an
/// uninterrupted run would have (wall-clock fields aside). A finished run is refused with
/// [`RunError::Setup`] and nothing changes.
pub fn resume(
    store: &Store,
    run_dir: &Path,
    progress: &dyn Progress,
    interrupted: Arc<AtomicBool>,
    code_revision: Option<String>,
    threads: usize,
) -> Result<Finished, RunError> {
    let record = recorded_run(store, run_dir)?;
    let origin = format!("the stored config of run {}", record.id.0);
    let mut plan = Plan::new(&origin, &record.config_toml, &[], &crate::plan::PlanOptions::default())
        .map_err(|e| RunError::Setup(e.into()))?
        .named(&record.experiment);
    plan.quick = record.quick;
    plan.threads = threads;
    // Refused before the store is touched, as a new run would be.
    plan.check_memory(&crate::resources::MemoryLimit::machine(None)).map_err(RunError::Setup)?;
    store.resume_run(record.id, code_revision.as_deref())?;
    // Outputs of a finished run only; an attempt that crashed while writing them leaves them.
    for file in [SUMMARY_FILE, REPORT_FILE] {
        let _ = std::fs::remove_file(record.run_dir.join(file));
    }
    drive(&plan, store, record.id, &record.run_dir, progress, interrupted)
}

/// Runs the experiment of the recorded, `running` run `run_id` and ends it, whatever happens.
fn drive(
    plan: &Plan,
    store: &Store,
    run_id: RunId,
    run_dir: &Path,
    progress: &dyn Progress,
    interrupted: Arc<AtomicBool>,
) -> Result<Finished, RunError> {
    // From here on the run exists in the store: every way out ends it.
    let threads = plan.threads.max(1);
    let ctx = RunContext { store, run_id, run_dir: run_dir.to_path_buf(), progress, interrupted, threads };
    let summary = match guarded(|| plan.config.run(&ctx)) {
        Ok(summary) => summary,
        Err(e) if e.is::<Interrupted>() || e.chain().any(|c| c.is::<Interrupted>()) => {
            return match store.finish_run(run_id, RunOutcome::Interrupted) {
                Ok(()) => Err(RunError::Interrupted { run_id: run_id.0, run_dir: run_dir.to_path_buf() }),
                Err(store_err) => Err(RunError::Failed {
                    run_id: run_id.0,
                    message: format!("interrupted by the user, and the store could not mark it so: {store_err}"),
                }),
            };
        }
        Err(e) => return Err(fail(store, run_id, run_dir, format!("{e:#}"))),
    };
    match finish(store, run_id, plan.runner, run_dir, &summary) {
        Ok(summary) => {
            // The report was drawn while the run was still `running`; now that the store says
            // `finished`, redraw it so its header says so too. The store is only read, and a
            // failure keeps the complete report written before.
            let report_warning = guarded(|| plan.runner.report(store, run_id))
                .and_then(|html| write_atomic(&run_dir.join(REPORT_FILE), html.as_bytes()))
                .err()
                .map(|e| format!("could not redraw {REPORT_FILE} after the run finished: {e:#}"));
            Ok(Finished { run_id, run_dir: run_dir.to_path_buf(), summary, report_warning })
        }
        Err(e) => Err(fail(store, run_id, run_dir, format!("{e:#}"))),
    }
}

/// Creates the run directory with `config.toml` and records the run. On an error nothing this
/// call created is left behind, so the caller may report bad input with nothing written.
fn begin(plan: &Plan, store: &Store, run_dir: &Path, code_revision: Option<String>) -> Result<RunId, RunError> {
    if run_dir.exists() && std::fs::read_dir(run_dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(RunError::Setup(anyhow::anyhow!(
            "run directory {} already exists and is not empty; pick another --out",
            run_dir.display()
        )));
    }
    // The directories this call creates, deepest first, to remove again on an error.
    let created: Vec<PathBuf> =
        run_dir.ancestors().take_while(|a| !a.as_os_str().is_empty() && !a.exists()).map(Path::to_path_buf).collect();
    let undo = || {
        for file in [run_dir.join(CONFIG_FILE), run_dir.join(CONFIG_FILE).with_extension("tmp")] {
            let _ = std::fs::remove_file(file);
        }
        for dir in &created {
            let _ = std::fs::remove_dir(dir);
        }
    };
    let recorded = std::fs::create_dir_all(run_dir)
        .with_context(|| format!("cannot create run directory {}", run_dir.display()))
        .and_then(|()| write_atomic(&run_dir.join(CONFIG_FILE), plan.resolved_toml.as_bytes()))
        .and_then(|()| {
            Ok(store.begin_run(&NewRun {
                experiment: plan.experiment.clone(),
                config_toml: plan.resolved_toml.clone(),
                seeds: plan.seeds.clone(),
                code_revision,
                run_dir: run_dir.to_path_buf(),
                quick: plan.quick,
            })?)
        });
    recorded.map_err(|e| {
        undo();
        RunError::Setup(e)
    })
}

/// After the experiment returned `summary`: draws the report, writes `summary.json` and
/// `report.html`, records them, and marks the run finished. Returns the summary as written.
fn finish(
    store: &Store,
    run_id: RunId,
    runner: &Runner,
    run_dir: &Path,
    summary: &serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let out = summary_json(store, run_id, summary)?;
    let html = guarded(|| runner.report(store, run_id)).context("drawing the report")?;
    write_atomic(&run_dir.join(SUMMARY_FILE), serde_json::to_string_pretty(&out)?.as_bytes())?;
    write_atomic(&run_dir.join(REPORT_FILE), html.as_bytes())?;
    for (name, kind, file) in [
        ("config", ArtifactKind::Other("config".into()), CONFIG_FILE),
        ("summary", ArtifactKind::Summary, SUMMARY_FILE),
        ("report", ArtifactKind::Report, REPORT_FILE),
    ] {
        store
            .add_artifact(run_id, &Artifact::new(name, kind, file).with_size_from(run_dir)?)
            .with_context(|| format!("recording {file}"))?;
    }
    store.finish_run(run_id, RunOutcome::Finished).context("marking the run finished")?;
    Ok(summary.clone())
}

/// `summary.json`: run metadata and the experiment's summary. It is written just before the run is
/// marked finished, and only if it then is: `status` is `finished` and `ended_at` the time the
/// outputs were written (the store's end time is a moment later).
fn summary_json(store: &Store, run_id: RunId, summary: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
    let record = store.run(run_id)?.context("run vanished from the store")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let mut out = serde_json::json!({
        "run_id": run_id.0,
        "experiment": record.experiment,
        "status": mesalab_store::RunStatus::Finished.as_str(),
        "quick": record.quick,
        "code_revision": record.code_revision,
        "started_at": mesalab_store::rfc3339(record.started_at_ms),
        "ended_at": mesalab_store::rfc3339(now.max(record.started_at_ms)),
    });
    if let (Some(o), Some(s)) = (out.as_object_mut(), summary.as_object()) {
        for (k, v) in s {
            if k != "experiment" {
                o.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(out)
}

/// Marks the run failed with `message` and removes a `summary.json` / `report.html` already
/// written (they would describe a finished run); `config.toml`, checkpoints and everything in the
/// store stay.
fn fail(store: &Store, run_id: RunId, run_dir: &Path, message: String) -> RunError {
    for file in [SUMMARY_FILE, REPORT_FILE] {
        let _ = std::fs::remove_file(run_dir.join(file));
    }
    let message = match store.finish_run(run_id, RunOutcome::Failed(message.clone())) {
        Ok(()) => message,
        Err(store_err) => format!("{message} (and the store could not mark the run failed: {store_err})"),
    };
    RunError::Failed { run_id: run_id.0, message }
}

/// Runs `f`, turning a panic into an error, so a panicking experiment or report still ends its run
/// (the panic message itself is printed by the panic hook as usual).
fn guarded<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        Err(anyhow::anyhow!("panicked: {what}"))
    })
}

/// What `mesalab analyze` produced.
#[derive(Debug)]
pub struct Analysis {
    pub analysis_id: i64,
    pub result: serde_json::Value,
    /// `analysis-<id>.html` in the run directory.
    pub page: PathBuf,
}

/// Reruns the look-inside section of the finished run in `run_dir` from its checkpoints, with
/// `overrides` (only `inside.*` keys: anything else would describe another run), stores the
/// result as a new analysis linked to the run, writes `analysis-<id>.html` and redraws the run's
/// report (which lists its analyses). The run's own records are never modified. Errors are
/// [`RunError::Setup`] (bad input: nothing stored) or [`RunError::Failed`] (the analysis failed:
/// nothing stored).
pub fn analyze(
    store: &Store,
    run_dir: &Path,
    overrides: &[mesalab_core::config::Override],
    progress: &dyn Progress,
    interrupted: Arc<AtomicBool>,
    code_revision: Option<String>,
) -> Result<Analysis, RunError> {
    let record = recorded_run(store, run_dir)?;
    if record.status != mesalab_store::RunStatus::Finished {
        return Err(RunError::Setup(anyhow::anyhow!(
            "run {} is {}; only finished runs are analysed (`mesalab resume {}` finishes it)",
            record.id.0,
            record.status.as_str(),
            run_dir.display()
        )));
    }
    if let Some(o) = overrides.iter().find(|o| !o.key.starts_with("inside.")) {
        return Err(RunError::Setup(anyhow::anyhow!(
            "--set {}: an analysis may change only `inside.*` settings; `{}` would describe another run",
            o.key,
            o.key
        )));
    }
    let origin = format!("the stored config of run {}", record.id.0);
    let plan = Plan::new(&origin, &record.config_toml, overrides, &crate::plan::PlanOptions::default())
        .map_err(|e| RunError::Setup(e.into()))?;
    let ctx = crate::context::AnalysisContext {
        store,
        run_id: record.id,
        run_dir: record.run_dir.clone(),
        progress,
        interrupted,
    };
    let failed = |message: String| RunError::Failed { run_id: record.id.0, message };
    let result = guarded(|| plan.config.analyze(&ctx)).map_err(|e| failed(format!("{e:#}")))?;
    let settings: Vec<String> = overrides.iter().map(|o| format!("{}={}", o.key, o.raw)).collect();
    let analysis_id = store
        .add_analysis(record.id, &settings, code_revision.as_deref(), &result)
        .map_err(|e| failed(e.to_string()))?;
    let page = record.run_dir.join(format!("analysis-{analysis_id}.html"));
    let html = crate::report_common::analysis_page(&record, analysis_id, &settings, &result);
    write_atomic(&page, html.as_bytes()).map_err(|e| failed(format!("{e:#}")))?;
    // The run's report lists its analyses; redrawing it changes no record of the run.
    let _ = regenerate_report(store, &record.run_dir);
    Ok(Analysis { analysis_id, result, page })
}

/// Regenerates `report.html` of the run whose directory is `run_dir`; returns the file written.
pub fn regenerate_report(store: &Store, run_dir: &Path) -> anyhow::Result<PathBuf> {
    let record = recorded_run(store, run_dir)?;
    // The resolved config names its runner, whatever the shipped experiment was called.
    let runner = crate::registry::runner_of("the stored config", &record.config_toml)
        .map_err(|e| anyhow::anyhow!("run {}: {e}", record.id.0))?;
    let html = runner.report(store, record.id)?;
    let path = record.run_dir.join("report.html");
    write_atomic(&path, html.as_bytes())?;
    Ok(path)
}

/// The run whose directory is `run_dir`, or an error naming the store and the directory.
fn recorded_run(store: &Store, run_dir: &Path) -> anyhow::Result<mesalab_store::RunRecord> {
    store.run_by_dir(run_dir)?.with_context(|| {
        format!("no run in the store {} has the directory {}", store.path().display(), run_dir.display())
    })
}

/// Writes via a temporary file and a rename, so readers never see half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot move {} into place", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Silent;
    use crate::experiment::ExperimentConfig;
    use mesalab_store::{MetricRow, RunStatus};
    use std::cell::RefCell;

    /// A stand-in experiment whose `mode` says how its run ends.
    #[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
    #[serde(default)]
    struct Fake {
        mode: String,
        quick: toml::Table,
    }

    impl mesalab_core::config::Validate for Fake {
        fn validate(&self) -> Result<(), mesalab_core::config::Invalid> {
            Ok(())
        }
    }

    impl ExperimentConfig for Fake {
        fn quick(&self) -> &toml::Table {
            &self.quick
        }
        fn seeds(&self) -> Vec<u64> {
            vec![0]
        }
        fn estimate(&self) -> anyhow::Result<crate::resources::Estimate> {
            Ok(crate::resources::Estimate { parts: Vec::new(), work: Default::default() })
        }
        fn run(&self, ctx: &RunContext) -> anyhow::Result<serde_json::Value> {
            ctx.store.log_metrics(ctx.run_id, &[MetricRow::new(Some(0), 0, "loss", 1.0)])?;
            std::fs::write(ctx.run_dir.join("checkpoint.bin"), b"weights")?;
            match self.mode.as_str() {
                "ok" => Ok(serde_json::json!({ "experiment": "ignored", "verdict": { "holds": true } })),
                "error" => anyhow::bail!("the experiment broke"),
                "interrupt" => Err(anyhow::Error::from(Interrupted).context("while training")),
                "panic" => panic!("the experiment panicked"),
                other => unreachable!("mode {other}"),
            }
        }
    }

    thread_local! {
        /// What each report drawing saw: the run's status and whether summary.json existed.
        static DRAWN: RefCell<Vec<RunStatus>> = const { RefCell::new(Vec::new()) };
    }

    fn report(store: &Store, run: RunId) -> anyhow::Result<String> {
        let status = store.run(run)?.context("no run")?.status;
        DRAWN.with(|d| d.borrow_mut().push(status));
        Ok(format!("<html>run {} ({status})</html>", run.0))
    }

    fn broken_report(_: &Store, _: RunId) -> anyhow::Result<String> {
        anyhow::bail!("no chart for you")
    }

    static FAKE: Runner = Runner::of::<Fake>("fake", report);
    static FAKE_BROKEN_REPORT: Runner = Runner::of::<Fake>("fake", broken_report);

    fn plan(mode: &str, runner: &'static Runner) -> Plan {
        let config = Fake { mode: mode.into(), quick: toml::Table::new() };
        Plan {
            experiment: "fake".into(),
            runner,
            resolved_toml: toml::to_string(&config).unwrap(),
            config: Box::new(config),
            seeds: vec![0],
            quick: false,
            threads: 1,
        }
    }

    fn run(plan: &Plan, store: &Store, dir: &Path, interrupt: bool) -> Result<Finished, RunError> {
        execute(plan, store, dir, &Silent, Arc::new(AtomicBool::new(interrupt)), None)
    }

    fn only_run(store: &Store) -> mesalab_store::RunRecord {
        let runs = store.runs().unwrap();
        assert_eq!(runs.len(), 1, "{runs:?}");
        runs.into_iter().next().unwrap()
    }

    #[test]
    fn a_finished_run_has_its_summary_and_report_on_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("s.sqlite")).unwrap();
        let dir = tmp.path().join("run");
        DRAWN.with(|d| d.borrow_mut().clear());
        let done = run(&plan("ok", &FAKE), &store, &dir, false).unwrap();
        assert!(done.report_warning.is_none());
        let record = store.run(done.run_id).unwrap().unwrap();
        assert_eq!(record.status, RunStatus::Finished);
        for file in [CONFIG_FILE, SUMMARY_FILE, REPORT_FILE, "checkpoint.bin"] {
            assert!(dir.join(file).is_file(), "{file} missing from a finished run");
        }
        assert!(!dir.join("summary.tmp").exists() && !dir.join("report.tmp").exists());
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(SUMMARY_FILE)).unwrap()).unwrap();
        assert_eq!(summary["status"], "finished");
        assert_eq!(summary["experiment"], "fake");
        assert_eq!(summary["verdict"]["holds"], true);
        assert!(summary["ended_at"].is_string());
        assert_eq!(done.summary["verdict"]["holds"], true);
        // The report was drawn before the run was marked finished, and redrawn once it was.
        assert_eq!(DRAWN.with(|d| d.borrow().clone()), vec![RunStatus::Running, RunStatus::Finished]);
        assert!(std::fs::read_to_string(dir.join(REPORT_FILE)).unwrap().contains("(finished)"));
        // Every output is recorded, with the size it has on disk.
        let artifacts = store.artifacts(done.run_id).unwrap();
        for (name, file) in [("config", CONFIG_FILE), ("summary", SUMMARY_FILE), ("report", REPORT_FILE)] {
            let a = artifacts.iter().find(|a| a.artifact.name == name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(a.artifact.path, Path::new(file));
            assert!(a.artifact.size_bytes.is_some_and(|s| s > 0), "{name}");
        }
        assert_eq!(
            artifacts.iter().find(|a| a.artifact.name == "summary").unwrap().artifact.size_bytes,
            Some(std::fs::metadata(dir.join(SUMMARY_FILE)).unwrap().len())
        );
    }

    #[test]
    fn a_report_that_cannot_be_drawn_fails_the_run_and_keeps_what_it_logged() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("s.sqlite")).unwrap();
        let dir = tmp.path().join("run");
        let err = run(&plan("ok", &FAKE_BROKEN_REPORT), &store, &dir, false).unwrap_err();
        let RunError::Failed { run_id, message } = err else { panic!("expected a failed run, got {err}") };
        assert!(message.contains("drawing the report") && message.contains("no chart for you"), "{message}");
        let record = only_run(&store);
        assert_eq!((record.id.0, record.status), (run_id, RunStatus::Failed));
        assert_eq!(record.error.as_deref(), Some(message.as_str()));
        assert_eq!(store.metric_series(record.id, Some(0), "loss").unwrap(), vec![(0, 1.0)]);
        assert!(dir.join(CONFIG_FILE).is_file() && dir.join("checkpoint.bin").is_file());
        assert!(!dir.join(SUMMARY_FILE).exists() && !dir.join(REPORT_FILE).exists());
    }

    #[test]
    fn an_experiment_error_or_panic_fails_the_run() {
        for (mode, needle) in [("error", "the experiment broke"), ("panic", "panicked: the experiment panicked")] {
            let tmp = tempfile::tempdir().unwrap();
            let store = Store::open(&tmp.path().join("s.sqlite")).unwrap();
            let dir = tmp.path().join("run");
            let err = run(&plan(mode, &FAKE), &store, &dir, false).unwrap_err();
            let RunError::Failed { message, .. } = err else { panic!("{mode}: expected a failed run, got {err}") };
            assert!(message.contains(needle), "{mode}: {message}");
            let record = only_run(&store);
            assert_eq!(record.status, RunStatus::Failed, "{mode}");
            assert!(record.error.is_some_and(|e| e.contains(needle)), "{mode}");
            assert!(!store.metric_series(record.id, Some(0), "loss").unwrap().is_empty());
            assert!(dir.join(CONFIG_FILE).is_file(), "{mode}");
            assert!(!dir.join(SUMMARY_FILE).exists() && !dir.join(REPORT_FILE).exists(), "{mode}");
        }
    }

    #[test]
    fn an_interrupt_is_marked_interrupted_even_under_context() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("s.sqlite")).unwrap();
        let err = run(&plan("interrupt", &FAKE), &store, &tmp.path().join("run"), true).unwrap_err();
        assert!(matches!(err, RunError::Interrupted { .. }), "{err}");
        assert_eq!(only_run(&store).status, RunStatus::Interrupted);
    }

    #[test]
    fn setup_errors_record_no_run_and_leave_nothing_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("s.sqlite")).unwrap();
        // A non-empty directory is refused and left as it was.
        let full = tmp.path().join("full");
        std::fs::create_dir(&full).unwrap();
        std::fs::write(full.join("keep.txt"), "x").unwrap();
        let err = run(&plan("ok", &FAKE), &store, &full, false).unwrap_err();
        assert!(matches!(err, RunError::Setup(_)) && err.to_string().contains("not empty"), "{err}");
        assert_eq!(std::fs::read_dir(&full).unwrap().count(), 1);
        // A directory that cannot be created.
        let file = tmp.path().join("plain-file");
        std::fs::write(&file, "x").unwrap();
        let err = run(&plan("ok", &FAKE), &store, &file.join("run"), false).unwrap_err();
        assert!(matches!(err, RunError::Setup(_)) && err.to_string().contains("cannot create"), "{err}");
        // The store refuses the run (an empty experiment name): the directories and config.toml
        // this call created are removed again, and an empty directory given is left empty.
        let mut nameless = plan("ok", &FAKE);
        nameless.experiment.clear();
        let nested = tmp.path().join("a").join("b");
        let err = run(&nameless, &store, &nested, false).unwrap_err();
        assert!(matches!(err, RunError::Setup(_)), "{err}");
        assert!(!tmp.path().join("a").exists(), "created directories are removed again");
        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(matches!(run(&nameless, &store, &empty, false), Err(RunError::Setup(_))));
        assert!(empty.is_dir() && std::fs::read_dir(&empty).unwrap().next().is_none());
        assert!(store.runs().unwrap().is_empty(), "no run is recorded on a setup error");
    }
}
