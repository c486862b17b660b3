//! End-to-end test of icl-autoregressive through the library: plan → execute → store → summary
//! and report, on the quick config. Run in release mode (`cargo test --release`): it trains models.

use mesalab_core::config::Override;
use mesalab_experiments::{Plan, PlanOptions, Silent, execute, find, regenerate_report};
use mesalab_store::Store;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

fn plan(sets: &[&str], opts: PlanOptions) -> Result<Plan, String> {
    let e = find("icl-autoregressive").unwrap();
    let overrides: Vec<Override> = sets.iter().map(|s| Override::parse(s).unwrap()).collect();
    Plan::new(e.config_path, e.config, &overrides, &opts).map(|p| p.named(e.name)).map_err(|e| e.to_string())
}

/// The quick run (800 steps, 3 seeds, ≈ 10 s): every seed learns in context far beyond the zero
/// predictor, every candidate is scored, the per-position curves and probes are stored and the
/// report draws them. Whatever the identification says, the verdict carries a named candidate.
#[test]
fn the_quick_run_learns_in_context_and_scores_every_candidate() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("s.sqlite")).unwrap();
    let dir = tmp.path().join("run");
    let p = plan(&[], PlanOptions { quick: true, ..Default::default() }).unwrap();
    let done =
        execute(&p, &store, &dir, &Silent, Arc::new(AtomicBool::new(false)), Some("test".into())).expect("the run");
    let s = &done.summary;
    let seeds = s["per_seed"].as_array().unwrap();
    assert_eq!(seeds.len(), 3);
    for r in seeds {
        let f = |k: &str| r[k].as_f64().unwrap();
        // Measured 0.40 at quick size; 0.6 leaves room for the machine's float order.
        assert!(f("late_loss") < 0.6 * f("zero_late_loss"), "{r}");
        assert!(f("late_loss") > f("oracle_late_loss"), "{r}");
        assert_eq!(r["candidates"].as_array().unwrap().len(), 4, "1..3-step GD and least squares");
    }
    let checks = s["verdict"]["checks"].as_array().unwrap();
    assert!(checks.iter().any(|c| c["name"] == "late loss / zero predictor's" && c["pass"] == true));
    assert!(s["verdict"]["context"]["closest"].as_str().is_some_and(|c| !c.is_empty() && c != "none"));
    let positions = store.table(done.run_id, "position_losses").unwrap().unwrap();
    // 1..3-step GD, least squares, zero and the oracle, and 3 models, at 24 positions each.
    assert_eq!(positions.rows.len(), (6 + 3) * 24);
    assert!(
        s["inside"]["trained"]["one-step GD prediction"]["layer 1"]["mean"].as_f64().unwrap() > 0.9,
        "{}",
        s["inside"]
    );
    let path = regenerate_report(&store, &dir).unwrap();
    let html = std::fs::read_to_string(path).unwrap();
    for needle in ["Next-state loss by context position", "Which algorithm?", "Looking inside"] {
        assert!(html.contains(needle), "report lacks `{needle}`");
    }
}

#[test]
fn bad_settings_are_refused_with_the_key() {
    for (set, key) in [
        ("task.rho=1.5", "task.rho"),
        ("eval.late_from=30", "eval.late_from"),
        ("eval.early_to=0", "eval.late_from"),
        ("model.layers=0", "model.layers"),
        ("inside.probe_l2=-1", "inside.probe_l2"),
    ] {
        let err = plan(&[set], PlanOptions::default()).unwrap_err();
        assert!(err.contains(key), "{set}: {err}");
    }
}
