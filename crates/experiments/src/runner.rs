//! Executes a [`Plan`]: run directory, store bookkeeping, the experiment, `summary.json` and the
//! report.
//!
//! Invariants: the run directory and store row exist only once the plan has validated; a run that
//! fails or is interrupted is marked so in the store and keeps everything it logged; a finished run
//! is never touched again (its report can be regenerated from the store at any time).

use crate::context::{Interrupted, Progress, RunContext};
use crate::plan::Plan;
use crate::registry::Runner;
use anyhow::Context as _;
use mesalab_store::{Artifact, ArtifactKind, NewRun, RunId, RunOutcome, Store};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// What a finished run produced.
#[derive(Debug)]
pub struct Finished {
    pub run_id: RunId,
    pub run_dir: PathBuf,
    pub summary: serde_json::Value,
}

/// How a run ended when it did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("run {run_id} was interrupted; everything logged so far is in the store")]
    Interrupted { run_id: i64 },
    #[error("run {run_id} failed: {message}")]
    Failed { run_id: i64, message: String },
    /// Failed before the run existed (directory or store problems).
    #[error(transparent)]
    Setup(#[from] anyhow::Error),
}

impl From<mesalab_store::StoreError> for RunError {
    fn from(e: mesalab_store::StoreError) -> Self {
        RunError::Setup(e.into())
    }
}

/// Creates `run_dir` (which must not exist or be empty), records the run and executes it.
pub fn execute(
    plan: &Plan,
    store: &Store,
    run_dir: &Path,
    progress: &dyn Progress,
    interrupted: Arc<AtomicBool>,
    code_revision: Option<String>,
) -> Result<Finished, RunError> {
    if run_dir.exists() && std::fs::read_dir(run_dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(RunError::Setup(anyhow::anyhow!(
            "run directory {} already exists and is not empty; pick another --out",
            run_dir.display()
        )));
    }
    std::fs::create_dir_all(run_dir).with_context(|| format!("cannot create run directory {}", run_dir.display()))?;
    write_atomic(&run_dir.join("config.toml"), plan.resolved_toml.as_bytes())?;
    let run_id = store.begin_run(&NewRun {
        experiment: plan.experiment.clone(),
        config_toml: plan.resolved_toml.clone(),
        seeds: plan.seeds.clone(),
        code_revision,
        run_dir: run_dir.to_path_buf(),
        quick: plan.quick,
    })?;
    let ctx = RunContext { store, run_id, run_dir: run_dir.to_path_buf(), progress, interrupted };
    let result = plan.config.run(&ctx);
    let summary = match result {
        Ok(summary) => summary,
        Err(e) if e.is::<Interrupted>() => {
            store.finish_run(run_id, RunOutcome::Interrupted).map_err(anyhow::Error::from)?;
            return Err(RunError::Interrupted { run_id: run_id.0 });
        }
        Err(e) => {
            let message = format!("{e:#}");
            store.finish_run(run_id, RunOutcome::Failed(message.clone())).map_err(anyhow::Error::from)?;
            return Err(RunError::Failed { run_id: run_id.0, message });
        }
    };
    for (name, kind, file) in [
        ("config", ArtifactKind::Other("config".into()), "config.toml"),
        ("summary", ArtifactKind::Summary, "summary.json"),
        ("report", ArtifactKind::Report, "report.html"),
    ] {
        store.add_artifact(run_id, &Artifact::new(name, kind, file))?;
    }
    store.finish_run(run_id, RunOutcome::Finished)?;
    write_outputs(store, run_id, plan.runner, run_dir, &summary)?;
    Ok(Finished { run_id, run_dir: run_dir.to_path_buf(), summary })
}

/// `summary.json` (run metadata + the experiment's summary) and `report.html`.
fn write_outputs(
    store: &Store,
    run_id: RunId,
    runner: &Runner,
    run_dir: &Path,
    summary: &serde_json::Value,
) -> anyhow::Result<()> {
    let record = store.run(run_id)?.context("run vanished from the store")?;
    let mut out = serde_json::json!({
        "run_id": run_id.0,
        "experiment": record.experiment,
        "status": record.status.as_str(),
        "quick": record.quick,
        "code_revision": record.code_revision,
        "started_at": mesalab_store::rfc3339(record.started_at_ms),
        "ended_at": record.ended_at_ms.map(mesalab_store::rfc3339),
    });
    if let (Some(o), Some(s)) = (out.as_object_mut(), summary.as_object()) {
        for (k, v) in s {
            if k != "experiment" {
                o.insert(k.clone(), v.clone());
            }
        }
    }
    write_atomic(&run_dir.join("summary.json"), serde_json::to_string_pretty(&out)?.as_bytes())?;
    let html = runner.report(store, run_id)?;
    write_atomic(&run_dir.join("report.html"), html.as_bytes())?;
    Ok(())
}

/// Regenerates `report.html` of the run whose directory is `run_dir`; returns the file written.
pub fn regenerate_report(store: &Store, run_dir: &Path) -> anyhow::Result<PathBuf> {
    let record = store.run_by_dir(run_dir)?.with_context(|| {
        format!("no run in the store {} has the directory {}", store.path().display(), run_dir.display())
    })?;
    // The resolved config names its runner, whatever the shipped experiment was called.
    let runner = crate::registry::runner_of("the stored config", &record.config_toml)
        .map_err(|e| anyhow::anyhow!("run {}: {e}", record.id.0))?;
    let html = runner.report(store, record.id)?;
    let path = record.run_dir.join("report.html");
    write_atomic(&path, html.as_bytes())?;
    Ok(path)
}

/// Writes via a temporary file and a rename, so readers never see half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot move {} into place", path.display()))?;
    Ok(())
}
