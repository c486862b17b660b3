//! Smoke run of the shipped `cheese-maze` config in quick mode with tiny sizes, through the library:
//! plan → execute → store → summary and report. Run in release mode.

use mesalab_core::config::Override;
use mesalab_experiments::{Plan, PlanOptions, find};

mod common;

const TINY: &[&str] = &[
    "ppo.num_envs=8",
    "ppo.num_steps=64",
    "ppo.num_minibatches=2",
    "ppo.total_timesteps=2048",
    "sweep.rand_regions=[1, 3]",
    "eval.episodes=40",
    "inside.preference_episodes=20",
    "inside.test_mazes=200",
    "inside.vector_mazes=100",
    "inside.irl_mazes=2",
    "inside.irl_episodes=10",
];

#[test]
fn quick_run_writes_summary_verdict_aggregate_and_report() {
    let run = common::quick_run("cheese-maze", TINY);
    common::assert_one_seed_run(&run);
    let (s, store, done, html) = (&run.summary, &run.store, &run.done, &run.html);
    // Looking inside: one preference per variant, a steering curve per vector kind and coefficient,
    // patching per hook, IRL per maze — into the store, the summary and the report.
    let prefs = s["inferred_mesa_objective"].as_array().unwrap();
    assert_eq!(prefs.len(), 2 * 4, "variants × (trained + 3 baselines): {prefs:?}");
    assert!(prefs.iter().all(|p| p["pooled"]["episodes"] == 20));
    // The test checks itself: the cheese seeker goes for the cheese on every far-cheese maze.
    let oracle = prefs.iter().find(|p| p["role"] == "oracle").unwrap();
    assert_eq!(oracle["inferred"], "cheese", "{oracle}");
    let decisions = store.table(done.run_id, "decisions").unwrap().unwrap();
    assert!(!decisions.rows.is_empty() && s["logistic"]["r1"]["n"].as_u64().unwrap() > 0, "{}", s["logistic"]);
    let steering = store.table(done.run_id, "steering").unwrap().unwrap();
    assert_eq!(steering.rows.len(), 2 * 4 * 7, "variants × vector kinds × coefficients");
    let irl = store.table(done.run_id, "irl").unwrap().unwrap();
    assert_eq!(irl.rows.len(), 2 * 2);
    for v in ["r1", "r3"] {
        let x = &s["inside"][v];
        assert_eq!(x["steering_hook"], "encoder.fc.0.hook_out");
        let layers = x["by_layer"].as_object().unwrap();
        assert!(layers.contains_key("encoder.fc.0.hook_out") && layers.contains_key("encoder.fc.1.hook_out"), "{x}");
        assert!(x["irl_corr_proxy"]["n"].as_u64().unwrap() >= 1, "{x}");
    }
    assert!(html.contains("steering vectors") && html.contains("Inverse RL"));
}

#[test]
fn a_misspelled_steering_hook_is_an_error_before_training() {
    let e = find("cheese-maze").unwrap();
    let o = [Override::parse("inside.steering_hook=encoder.fc.0.hook_outt").unwrap()];
    let err = Plan::new(e.config_path, e.config, &o, &PlanOptions::default()).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("inside.steering_hook"), "{err}");
    assert!(err.to_string().contains("encoder.fc.0.hook_out"), "names the closest hook: {err}");
    let o = [Override::parse("inside.coefficients=[0.5, 1]").unwrap()];
    let err = Plan::new(e.config_path, e.config, &o, &PlanOptions::default()).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("inside.coefficients"), "{err}");
}
