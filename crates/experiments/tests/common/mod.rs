//! Set-up and assertions shared by the goal-misgeneralization smoke tests.
#![allow(dead_code)] // each test binary uses a different subset

use mesalab_core::config::Override;
use mesalab_experiments::{Finished, Plan, PlanOptions, Silent, execute, find};
use mesalab_store::{RunId, Store};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// A finished one-seed quick run of a shipped experiment in a temporary directory.
pub struct QuickRun {
    /// Keeps the directory alive while the test reads it.
    pub tmp: tempfile::TempDir,
    pub store: Store,
    pub dir: std::path::PathBuf,
    pub done: Finished,
    /// `summary.json` as written to the run directory.
    pub summary: serde_json::Value,
    pub html: String,
}

/// Runs `name` in quick mode with one seed and the `--set` overrides `sets`.
pub fn quick_run(name: &str, sets: &[&str]) -> QuickRun {
    let e = find(name).unwrap();
    let overrides: Vec<Override> = sets.iter().map(|s| Override::parse(s).unwrap()).collect();
    let opts = PlanOptions { quick: true, seeds: Some(1), ..Default::default() };
    let plan = Plan::new(e.config_path, e.config, &overrides, &opts).unwrap().named(e.name);
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("s.sqlite")).unwrap();
    let dir = tmp.path().join("run");
    let done = execute(&plan, &store, &dir, &Silent, Arc::new(AtomicBool::new(false)), None).unwrap();
    let summary = serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    QuickRun { tmp, store, dir, done, summary, html }
}

/// What every one-seed goal-misgeneralization run must leave: a finished status, a verdict that
/// names its baselines and holds exactly when every check passes, whose seed-count check counts
/// at most the one (converged) seed and fails; per-seed aggregates, a report with figures, example trajectories, and
/// the per-episode table.
pub fn assert_one_seed_run(r: &QuickRun) {
    let s = &r.summary;
    assert_eq!(s["status"], "finished");
    assert_verdict_shape(&s["verdict"]);
    let seeds =
        s["verdict"]["checks"].as_array().unwrap().iter().find(|c| c["name"] == "seeds").expect("a seeds check");
    // The check counts the seeds whose training converged: the one seed or none, too few either way.
    let counted = seeds["value"].as_f64();
    assert!(matches!(counted, Some(c) if c == 0.0 || c == 1.0) && seeds["pass"] == false, "{seeds}");
    let agg = s["aggregate"].as_object().unwrap();
    assert!(!agg.is_empty());
    assert!(agg.values().any(|a| a["mean"].is_f64() && a["n"] == 1), "{agg:?}");
    assert!(r.html.contains("<svg") && r.html.contains("Verdict"));
    assert_example_trajectories(&r.store, r.done.run_id, &r.html);
    assert!(r.store.table(r.done.run_id, "episodes").unwrap().is_some_and(|t| !t.rows.is_empty()));
}

/// Example trajectories are stored for both splits and drawn over their levels (a dozen at most);
/// returns how many were drawn.
pub fn assert_example_trajectories(store: &Store, run: RunId, html: &str) -> usize {
    let examples: Vec<serde_json::Value> = store.get_json(run, "trajectories").unwrap().unwrap();
    assert!(
        ["train", "deploy"].iter().all(|sp| examples
            .iter()
            .any(|t| t["split"] == *sp && t["path"].as_array().is_some_and(|p| !p.is_empty()))),
        "trajectories of both splits are stored"
    );
    let drawn = html.matches(r#"aria-label="agent path""#).count();
    assert!(html.contains("Example trajectories") && (2..=12).contains(&drawn), "{drawn} trajectory figures");
    drawn
}

/// A verdict as `summary.json` stores it: a claim, what it compared with, checks whose `pass` is
/// false wherever the value is missing (NaN), and `holds` = every check passes.
pub fn assert_verdict_shape(v: &serde_json::Value) {
    assert!(
        !v["claim"].as_str().unwrap_or("").is_empty() && !v["compared_with"].as_str().unwrap_or("").is_empty(),
        "{v}"
    );
    let checks = v["checks"].as_array().expect("checks");
    assert!(!checks.is_empty());
    for c in checks {
        assert!(
            ["worst_seed", "pooled", "count"].contains(&c["aggregation"].as_str().unwrap_or(""))
                || c["aggregation"].is_object(),
            "{c}"
        );
        if c["value"].is_null() {
            assert_eq!(c["pass"], false, "a missing value never passes: {c}");
        }
    }
    let all = checks.iter().all(|c| c["pass"] == true);
    assert_eq!(v["holds"].as_bool(), Some(all), "{v}");
    // `did not converge` only when seeds were left out and too few remained (the `seeds` check).
    let seeds_fail = checks.iter().any(|c| c["name"] == "seeds" && c["pass"] == false);
    let left_out = v["did_not_converge"].as_array().is_some_and(|s| !s.is_empty());
    let expected = if all {
        "yes"
    } else if seeds_fail && left_out {
        "did not converge"
    } else {
        "no"
    };
    assert_eq!(v["answer"], expected, "{v}");
}
