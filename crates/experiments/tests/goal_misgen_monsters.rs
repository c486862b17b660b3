//! Smoke run of the shipped `monster-shield` config in quick mode with tiny sizes, through the library:
//! plan → execute → store → summary and report. Run in release mode.

use mesalab_core::config::Override;
use mesalab_experiments::{Plan, PlanOptions, Silent, execute, find};
use mesalab_store::Store;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

mod common;

const TINY: &[&str] =
    &["ppo.num_envs=8", "ppo.num_steps=64", "ppo.num_minibatches=2", "ppo.total_timesteps=2048", "eval.episodes=20"];

#[test]
fn quick_run_writes_summary_verdict_aggregate_and_report() {
    let e = find("monster-shield").unwrap();
    let overrides: Vec<Override> = TINY.iter().map(|s| Override::parse(s).unwrap()).collect();
    let plan = Plan::new(
        e.config_path,
        e.config,
        &overrides,
        &PlanOptions { quick: true, seeds: Some(1), ..Default::default() },
    )
    .unwrap()
    .named(e.name);
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("s.sqlite")).unwrap();
    let dir = tmp.path().join("run");
    let done = execute(&plan, &store, &dir, &Silent, Arc::new(AtomicBool::new(false)), None).unwrap();
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["status"], "finished");
    for key in ["claim", "holds", "answer", "checks"] {
        assert!(!s["verdict"][key].is_null(), "verdict.{key} missing");
    }
    // One seed cannot support a verdict.
    assert_eq!(s["verdict"]["holds"], false);
    let agg = s["aggregate"].as_object().unwrap();
    assert!(!agg.is_empty());
    assert!(agg.values().any(|a| a["mean"].is_f64() && a["n"] == 1), "{agg:?}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("Verdict"));
    common::assert_example_trajectories(&store, done.run_id, &html);
    assert!(store.table(done.run_id, "episodes").unwrap().is_some_and(|t| !t.rows.is_empty()));
}
