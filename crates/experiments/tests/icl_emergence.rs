//! End-to-end smoke test of icl-emergence through the library: plan → execute → store → summary
//! and report, on a tiny sweep. Run in release mode (`cargo test --release`): it trains models.

use mesalab_core::config::Override;
use mesalab_experiments::{Plan, PlanOptions, Silent, execute, find, regenerate_report};
use mesalab_store::Store;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

fn plan(sets: &[&str], opts: PlanOptions) -> Result<Plan, String> {
    let e = find("icl-emergence").unwrap();
    let overrides: Vec<Override> = sets.iter().map(|s| Override::parse(s).unwrap()).collect();
    Plan::new(e.config_path, e.config, &overrides, &opts).map(|p| p.named(e.name)).map_err(|e| e.to_string())
}

/// The quick config, shrunk further: two finite pool sizes and M = ∞, short training.
const TINY: &[&str] = &[
    "pool.sizes=[1, 64]",
    "train.steps=250",
    "train.batch_size=256",
    "eval.fresh_tasks=400",
    "eval.pool_tasks=300",
    "eval.fit_tasks=400",
];

#[test]
fn a_tiny_sweep_leaves_results_for_every_model_baselines_and_a_report() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("s.sqlite")).unwrap();
    let dir = tmp.path().join("run");
    let p = plan(TINY, PlanOptions { quick: true, seeds: Some(2), ..Default::default() }).unwrap();
    let done =
        execute(&p, &store, &dir, &Silent, Arc::new(AtomicBool::new(false)), Some("test".into())).expect("the run");
    let s = &done.summary;
    let results = s["results"].as_array().unwrap();
    // 2 seeds × (M = 1, M = 64, M = ∞), each with every metric finite.
    assert_eq!(results.len(), 6, "{s}");
    for r in results {
        for k in ["fresh_loss", "pool_loss", "dmmse_fresh_loss", "spd_dmmse_fresh", "spd_ridge_fresh", "spd_gd_fresh"] {
            assert!(r[k].as_f64().is_some_and(f64::is_finite), "{k} of {r}");
        }
    }
    let at = |seed: u64, m: serde_json::Value| results.iter().find(|r| r["seed"] == seed && r["m"] == m).unwrap();
    let f = |r: &serde_json::Value, k: &str| r[k].as_f64().unwrap();
    let ridge = s["baselines"]["ridge_loss"].as_f64().unwrap();
    for seed in [0, 1] {
        // With one teacher the pool's Bayes estimator knows it: near the noise floor 0.5·σ² =
        // 0.125 on pool tasks, better than ridge there, and worse than ridge on fresh tasks.
        let one = at(seed, serde_json::json!(1));
        assert!(f(one, "dmmse_pool_loss") < f(one, "ridge_pool_loss"), "{one}");
        assert!(f(one, "dmmse_pool_loss") < 0.15, "{one}");
        assert!(f(one, "dmmse_fresh_loss") > ridge, "{one}");
        // At M = ∞ the discrete prior is the Gaussian one: dMMSE is ridge, on the fresh tasks.
        let inf = at(seed, serde_json::Value::Null);
        assert_eq!(f(inf, "dmmse_fresh_loss"), ridge);
        assert_eq!(f(inf, "fresh_loss"), f(inf, "pool_loss"));
    }
    // Two seeds cannot support the verdict, whatever the numbers; the seeds check counts the
    // converged ones (those not listed as `did_not_converge`).
    let seeds_check = s["verdict"]["checks"].as_array().unwrap().iter().find(|c| c["name"] == "seeds").unwrap();
    let unconverged = s["verdict"]["did_not_converge"].as_array().map_or(0, Vec::len);
    assert_eq!(seeds_check["value"].as_f64(), Some((2 - unconverged) as f64));
    assert_eq!(seeds_check["pass"], false);
    assert_eq!(s["verdict"]["holds"], false);
    assert_eq!(s["per_m"]["M = 64"]["seeds"], 2);

    for file in ["config.toml", "summary.json", "report.html"] {
        assert!(dir.join(file).is_file(), "missing {file}");
    }
    let path = regenerate_report(&store, &dir).unwrap();
    let html = std::fs::read_to_string(path).unwrap();
    for needle in ["Loss on fresh tasks", "dMMSE", "The transition M*", "Per pool size, across seeds"] {
        assert!(html.contains(needle), "report lacks `{needle}`");
    }
}

#[test]
fn bad_pool_sizes_are_refused_with_the_key() {
    for (set, needle) in [
        ("pool.sizes=[4, 2]", "strictly increasing"),
        ("pool.sizes=[]", "at least one"),
        ("pool.sizes=[0, 1]", "1..="),
        ("task.noise_var=0", "positive"),
    ] {
        let err = plan(&[set], PlanOptions::default()).unwrap_err();
        assert!(err.contains("pool.sizes") || err.contains("task.noise_var"), "{set}: {err}");
        assert!(err.contains(needle), "{set}: {err}");
    }
}
