//! MesaBench: a zoo of models whose answers — mesa-optimizer? proxy objective? deceptive? — are
//! known by construction, detectors behind one trait, and their scores against those answers.
//!
//! - [`zoo`]: the recipe file, the runs it expands into, the models and labels they yield;
//! - [`detectors`]: the [`detectors::Detector`] trait and every shipped detector (one file each);
//! - [`score`]: every detector on every model, the leaderboard per question and split;
//! - [`stats`]: AUROC / A12, Mann–Whitney, bootstrap intervals, dev thresholds;
//! - [`report`]: the HTML report.
//!
//! `mesalab bench build|list|score` (in the CLI) drives these; a score is recorded in the store as
//! a run of the pseudo-experiment [`EXPERIMENT`], its tables and report beside every other run.

pub mod detectors;
pub mod report;
pub mod score;
pub mod stats;
pub mod zoo;

use detectors::{Detector, Settings};
use mesalab_store::{Artifact, ArtifactKind, NewRun, ResultTable, RunId, RunOutcome, Store};
use score::{Leaderboard, ModelScores, leaderboard, truth};
use serde_json::json;
use std::path::Path;
use zoo::Zoo;

/// The store's experiment name for a scored zoo.
pub const EXPERIMENT: &str = "mesabench";

/// Seed of the bootstrap intervals.
pub const BOOTSTRAP_SEED: u64 = 20_251_203;

/// Writes a scored zoo as a finished `mesabench` run in `out_dir`: the leaderboard, factor and
/// per-model tables in the store, `summary.json`, `scores.json` and `report.html` on disk. Any
/// failure after the run row exists marks it failed and keeps what was written.
pub fn record(
    store: &Store,
    out_dir: &Path,
    zoo: &Zoo,
    settings: &Settings,
    detectors: &[&dyn Detector],
    results: &mut [ModelScores],
    code_revision: Option<String>,
) -> anyhow::Result<(RunId, Leaderboard)> {
    score::fit_across_models(results, detectors);
    let results: &[ModelScores] = results;
    std::fs::create_dir_all(out_dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out_dir.display()))?;
    let settings_toml = toml::to_string(settings)?;
    let config_toml = format!("# zoo: {}\n{}\n# detector settings\n[settings]\n{settings_toml}", zoo.origin, zoo.text);
    let run = store.begin_run(&NewRun {
        experiment: EXPERIMENT.into(),
        config_toml,
        seeds: Vec::new(),
        code_revision,
        run_dir: out_dir.to_path_buf(),
        quick: false,
    })?;
    let board = leaderboard(results, detectors, settings.bootstrap, BOOTSTRAP_SEED);
    match write(store, run, out_dir, zoo, &board, results) {
        Ok(()) => {
            store.finish_run(run, RunOutcome::Finished)?;
            Ok((run, board))
        }
        Err(e) => {
            store.finish_run(run, RunOutcome::Failed(format!("{e:#}")))?;
            Err(e)
        }
    }
}

fn write(
    store: &Store,
    run: RunId,
    out_dir: &Path,
    zoo: &Zoo,
    board: &Leaderboard,
    results: &[ModelScores],
) -> anyhow::Result<()> {
    let lines = board
        .lines
        .iter()
        .map(|l| {
            vec![
                json!(l.detector),
                json!(l.internal),
                json!(l.question.key()),
                json!(l.split.word()),
                json!(l.positives),
                json!(l.negatives),
                json!(l.unscored),
                json!(l.auroc),
                json!(l.ci_lo),
                json!(l.ci_hi),
                json!(l.accuracy),
                json!(l.mann_whitney_p),
            ]
        })
        .collect();
    store.put_table(
        run,
        &ResultTable {
            name: "leaderboard".into(),
            columns: [
                "detector",
                "internal",
                "question",
                "split",
                "positives",
                "negatives",
                "unscored",
                "auroc",
                "ci_lo",
                "ci_hi",
                "accuracy",
                "mann_whitney_p",
            ]
            .map(String::from)
            .to_vec(),
            rows: lines,
        },
    )?;
    let factors = board
        .factors
        .iter()
        .map(|f| {
            vec![
                json!(f.detector),
                json!(f.question.key()),
                json!(f.factor),
                json!(f.value),
                json!(f.positives),
                json!(f.negatives),
                json!(f.auroc),
            ]
        })
        .collect();
    store.put_table(
        run,
        &ResultTable {
            name: "factors".into(),
            columns: ["detector", "question", "factor", "value", "positives", "negatives", "auroc"]
                .map(String::from)
                .to_vec(),
            rows: factors,
        },
    )?;
    let mut rows = Vec::new();
    for m in results {
        for (d, qs) in &m.scores {
            for (q, v) in qs {
                let label = truth(&m.model.labels, *q).map_or(serde_json::Value::Null, |t| json!(t));
                rows.push(vec![
                    json!(m.model.id),
                    json!(m.model.split.word()),
                    json!(d),
                    json!(q.key()),
                    json!(v),
                    label,
                ]);
            }
        }
    }
    store.put_table(
        run,
        &ResultTable {
            name: "scores".into(),
            columns: ["model", "split", "detector", "question", "score", "label"].map(String::from).to_vec(),
            rows,
        },
    )?;
    let summary = json!({
        "experiment": EXPERIMENT,
        "zoo": zoo.name,
        "models": results.len(),
        "leaderboard": board.lines.iter().map(|l| json!({
            "detector": l.detector, "question": l.question.key(), "split": l.split.word(),
            "auroc": l.auroc, "ci": [l.ci_lo, l.ci_hi], "accuracy": l.accuracy,
            "mann_whitney_p": l.mann_whitney_p, "positives": l.positives, "negatives": l.negatives,
            "unscored": l.unscored,
        })).collect::<Vec<_>>(),
    });
    store.put_json(run, "summary", &summary)?;
    let write_file = |name: &str, bytes: &[u8], kind: ArtifactKind| -> anyhow::Result<()> {
        mesalab_experiments::runner::write_atomic(&out_dir.join(name), bytes)?;
        store.add_artifact(run, &Artifact::new(name, kind, name).with_size_from(out_dir)?)?;
        Ok(())
    };
    write_file("summary.json", serde_json::to_string_pretty(&summary)?.as_bytes(), ArtifactKind::Summary)?;
    write_file("scores.json", serde_json::to_string_pretty(results)?.as_bytes(), ArtifactKind::Other("scores".into()))?;
    let build_note = format!("zoo file {}", zoo.origin);
    let html = report::render(&zoo.name, board, results, out_dir, &build_note);
    write_file("report.html", html.as_bytes(), ArtifactKind::Report)?;
    Ok(())
}
