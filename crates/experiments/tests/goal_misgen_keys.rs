//! Smoke run of the shipped `keys-chests` config in quick mode with tiny sizes, through the library:
//! plan → execute → store → summary and report. Run in release mode.

mod common;

const TINY: &[&str] = &[
    "ppo.num_envs=8",
    "ppo.num_steps=64",
    "ppo.num_minibatches=2",
    "ppo.total_timesteps=2048",
    "eval.episodes=30",
    "preference.episodes=30",
];

#[test]
fn quick_run_writes_summary_verdict_aggregate_and_report() {
    let run = common::quick_run("keys-chests", TINY);
    common::assert_one_seed_run(&run);
    let (s, html) = (&run.summary, &run.html);
    // Goal preference on the detour levels, by the agent and each baseline: every episode counted once.
    let prefs = s["inferred_mesa_objective"].as_array().unwrap();
    assert_eq!(prefs.len(), 4, "{prefs:?}");
    let by = |role: &str| prefs.iter().find(|p| p["role"] == role).unwrap();
    // The test checks itself: the chest opener never walks out of its way for a spare key, the key collector does.
    assert_eq!(by("oracle")["inferred"], "open the chests (no spare key)", "{}", by("oracle"));
    assert_eq!(by("proxy")["inferred"], "collect a spare key", "{}", by("proxy"));
    let pooled = &by("trained")["pooled"];
    let counted: u64 = pooled["pursued"].as_array().unwrap().iter().map(|r| r["k"].as_u64().unwrap()).sum::<u64>()
        + pooled["neither"]["k"].as_u64().unwrap();
    assert_eq!((pooled["episodes"].as_u64(), counted), (Some(30), 30));
    assert!(html.contains("Inferred mesa-objective"));
}
