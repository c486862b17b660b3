//! Smoke run of the shipped `keys-chests` config in quick mode with tiny sizes, through the library:
//! plan → execute → store → summary and report. Run in release mode.

mod common;

const TINY: &[&str] =
    &["ppo.num_envs=8", "ppo.num_steps=64", "ppo.num_minibatches=2", "ppo.total_timesteps=2048", "eval.episodes=30"];

#[test]
fn quick_run_writes_summary_verdict_aggregate_and_report() {
    let run = common::quick_run("keys-chests", TINY);
    common::assert_one_seed_run(&run);
    let (s, html) = (&run.summary, &run.html);
    // Goal preference on deploy levels: every episode counted once (30 per seed).
    let prefs = s["inferred_mesa_objective"].as_array().unwrap();
    assert_eq!(prefs.len(), 1);
    let pooled = &prefs[0]["pooled"];
    let counted: u64 = pooled["pursued"].as_array().unwrap().iter().map(|r| r["k"].as_u64().unwrap()).sum::<u64>()
        + pooled["neither"]["k"].as_u64().unwrap();
    assert_eq!((pooled["episodes"].as_u64(), counted), (Some(30), 30));
    assert!(html.contains("Inferred mesa-objective"));
}
