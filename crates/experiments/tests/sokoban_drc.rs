//! Smoke run of the shipped `sokoban-drc` config in quick mode, through the library: plan → train
//! the DRC and the MLP → play the held-out levels with thinking steps → plan probes → store →
//! summary and report. Run in release mode.

mod common;

#[test]
fn quick_run_plays_held_out_levels_with_thinking_steps_and_scores_plan_probes() {
    let run = common::quick_run("sokoban-drc", &["ppo.total_timesteps=2048", "eval.levels=12", "inside.levels=8"]);
    let s = &run.summary;
    common::assert_verdict_shape(&s["verdict"]);
    let outcomes = s["results"]["outcomes"].as_array().unwrap();
    // Solver and random per split, the DRC at each of the 5 thinking-step counts and the MLP.
    assert_eq!(outcomes.len(), 2 * (2 + 5 + 1), "{outcomes:?}");
    for o in outcomes {
        assert_eq!(o["solved"]["n"], 12, "{o}");
    }
    let solver: Vec<&serde_json::Value> = outcomes.iter().filter(|o| o["arm"] == "solver").collect();
    assert!(solver.iter().all(|o| o["solved"]["rate"] == 1.0), "{solver:?}");
    // Every layer's h and c for the trained DRC and its twin, and the window: 9 feature sets × 6 targets.
    let probes = s["results"]["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 9 * 6);
    assert!(probes.iter().all(|p| p["n_test"].as_u64().unwrap() > 0), "the split held out no level");
    // The window sees the player's cell, so "on this square within 1 move" is scoreable from it.
    let window = probes.iter().find(|p| p["features"] == "observation" && p["target"] == "agent within 1").unwrap();
    assert!(window["auroc"].as_f64().is_some_and(|a| (0.0..=1.0).contains(&a)), "{window}");
    // One seed is fewer than the verdict's 3: it must say no.
    assert_eq!(s["verdict"]["holds"], false);
    assert!(run.html.contains("<svg") && run.html.contains("thinking"), "report lacks the thinking table");
}
