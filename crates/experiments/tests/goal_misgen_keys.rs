//! Smoke run of the shipped `keys-chests` config in quick mode with tiny sizes, through the library:
//! plan → execute → store → summary and report. Run in release mode.

use mesalab_core::config::Override;
use mesalab_experiments::{Plan, PlanOptions, Silent, execute, find};
use mesalab_store::Store;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

mod common;

const TINY: &[&str] =
    &["ppo.num_envs=8", "ppo.num_steps=64", "ppo.num_minibatches=2", "ppo.total_timesteps=2048", "eval.episodes=30"];

#[test]
fn quick_run_writes_summary_verdict_aggregate_and_report() {
    let e = find("keys-chests").unwrap();
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
    // Goal preference on deploy levels: every episode counted once (30 per seed).
    let prefs = s["inferred_mesa_objective"].as_array().unwrap();
    assert_eq!(prefs.len(), 1);
    let pooled = &prefs[0]["pooled"];
    let counted: u64 = pooled["pursued"].as_array().unwrap().iter().map(|r| r["k"].as_u64().unwrap()).sum::<u64>()
        + pooled["neither"]["k"].as_u64().unwrap();
    assert_eq!((pooled["episodes"].as_u64(), counted), (Some(30), 30));
    assert!(html.contains("Inferred mesa-objective"));
}
