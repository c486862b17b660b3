//! Smoke run of the shipped `alignment-faking` config in quick mode with tiny sizes, through the
//! library: plan → execute → store → summary and report. Run in release mode.

mod common;

const TINY: &[&str] = &[
    "grid.theta_alpha=[[0.9, 0.5], [0.8, 0.1]]",
    "grid.gammas=[0.6, 0.9]",
    "grid.p_observed=[0.3, 1.0]",
    "grid.train_episodes=[1, 3]",
    "grid.deploy_episodes=[0, 5, 20]",
    "grid.curve_deploy_episodes=[0, 2, 20]",
    "grid.curve_p_observed=[0.5]",
    "grid.curve_lifetimes=10",
    "simulate.lifetimes=20",
    "clone.lifetimes=2",
    "clone.epochs=1",
    "eval.episodes=20",
    "eval.probe_states=60",
];

#[test]
fn quick_run_writes_the_grid_check_curves_clone_probes_and_report() {
    let run = common::quick_run("alignment-faking", TINY);
    let s = &run.summary;
    assert_eq!(s["status"], "finished");
    common::assert_verdict_shape(&s["verdict"]);
    let checks = s["verdict"]["checks"].as_array().unwrap();
    let check = |prefix: &str| checks.iter().find(|c| c["name"].as_str().unwrap().starts_with(prefix)).unwrap();
    // The exact test ran on the whole tiny grid: 2·2·2·2·3 = 48 settings, and it passed.
    let grid = &s["results"]["grid"];
    assert_eq!(grid["settings"], 48, "{grid}");
    assert!(grid["points"].as_u64().unwrap() > 48);
    assert_eq!((grid["mismatches"].as_u64(), grid["near_ties"].as_u64()), (Some(0), Some(0)));
    assert_eq!(check("planner ≠ closed form")["pass"], true);
    // The deceptive planner in the default setting complies in training and keeps its objective.
    assert_eq!(check("output evaluation")["pass"], true, "{}", check("output evaluation"));
    assert_eq!(check("objective drift")["pass"], true);
    // One seed: the seed-count check reports it and fails.
    let seeds = check("seeds");
    assert_eq!((seeds["value"].as_f64(), seeds["pass"].as_bool()), (Some(1.0), Some(false)));
    assert_eq!(s["gap_curve"].as_array().unwrap().len(), 3);
    assert_eq!(s["results"]["clones"].as_array().unwrap().len(), 1);
    assert_eq!(s["results"]["baselines"].as_array().unwrap().len(), 3);
    let probes = s["results"]["probes"].as_array().unwrap();
    assert!(probes.iter().any(|p| p["target"] == "training cue" && p["model"] == "untrained"), "{probes:?}");
    for section in [
        "Verdict",
        "The condition",
        "Compliance gap against the deployment horizon",
        "Output evaluation and objective drift",
        "The learned version",
        "Probes at every hidden layer",
    ] {
        assert!(run.html.contains(section), "report section `{section}`");
    }
    assert!(run.html.contains("<svg"));
    assert!(run.dir.join("seed-0").join("policy.safetensors").exists());
}
