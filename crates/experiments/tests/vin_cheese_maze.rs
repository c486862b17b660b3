//! Smoke run of the shipped `vin-cheese-maze` config in quick mode, through the library: plan →
//! train the VIN → evaluate → read and edit R → store → summary and report. Run in release mode.

mod common;

#[test]
fn quick_run_reads_and_edits_the_reward_map() {
    let run =
        common::quick_run("vin-cheese-maze", &["ppo.total_timesteps=2048", "eval.episodes=16", "inside.levels=8"]);
    common::assert_one_seed_run(&run);
    let vin = &run.summary["vin"];
    // Every level read lands in exactly one peak class; the shares sum to 1.
    let shares: f64 = (0..3).map(|i| vin["trained"]["peaks"][i]["pooled"]["rate"].as_f64().unwrap()).sum();
    assert!((shares - 1.0).abs() < 1e-9, "{vin}");
    for key in ["trained_edited", "trained_unedited", "untrained_edited", "random"] {
        let r = &vin["edit"][key];
        assert!(
            r["n"].as_u64().unwrap() > 0 && r["rate"].as_f64().is_some_and(|x| (0.0..=1.0).contains(&x)),
            "{key}: {r}"
        );
    }
    // The full verdict (with the R-edit checks) replaced the harness's.
    let names: Vec<&str> =
        run.summary["verdict"]["checks"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert!(names.iter().any(|n| n.contains("edited episodes reaching")), "{names:?}");
    let t = run.store.table(run.done.run_id, "reward_edit").unwrap().expect("the reward_edit table");
    assert_eq!(t.rows.len(), 4);
    assert!(run.html.contains("The mesa-objective, read off R") && run.html.contains("Editing R"));
    // The planning test ran every budget (default [1, 2, 4, 8] and the trained K = 12) and has a
    // verdict of its own, shown in the report.
    let b = run.store.table(run.done.run_id, "search_budget").unwrap().expect("the search_budget table");
    assert_eq!(b.rows.len(), 5);
    let planning = &run.summary["planning"];
    assert!(
        planning["answer"].is_string() && planning["checks"].as_array().is_some_and(|c| c.len() == 3),
        "{planning}"
    );
    assert!(run.html.contains("The planning test"));
    // IRL was fitted on the deploy levels read and scored against R (a correlation in [-1, 1] or
    // null where a map is flat).
    let irl = &run.summary["vin"]["irl"];
    assert!(irl["levels"].as_u64().is_some_and(|n| n >= 1), "{irl}");
    assert!(irl["corr_r"]["mean"].as_f64().is_none_or(|r| (-1.0..=1.0).contains(&r)), "{irl}");
}
