//! End-to-end tests of the coin-corridor experiment (plan → execute → store → summary and report)
//! and of its config errors. Run in release mode: the smoke run trains real (tiny) policies.

use mesalab_core::config::Override;
use mesalab_experiments::{Plan, PlanOptions, RunError, Silent, execute, find, regenerate_report};
use mesalab_store::Store;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

mod common;

fn plan(name: &str, sets: &[&str], opts: PlanOptions) -> Result<Plan, mesalab_core::config::ConfigError> {
    let e = find(name).unwrap();
    let overrides: Vec<Override> = sets.iter().map(|s| Override::parse(s).unwrap()).collect();
    Ok(Plan::new(e.config_path, e.config, &overrides, &opts)?.named(e.name))
}

fn run(store: &Store, dir: &std::path::Path, plan: &Plan) -> Result<mesalab_experiments::Finished, RunError> {
    execute(plan, store, dir, &Silent, Arc::new(AtomicBool::new(false)), Some("test".into()))
}

/// Quick mode shrunk further: two knob values, two seeds, a few PPO updates.
const TINY: &[&str] = &[
    "run.seeds=2",
    "sweep.random_percent=[0, 20]",
    "ppo.num_envs=8",
    "ppo.num_steps=32",
    "ppo.total_timesteps=2048",
    "eval.episodes=20",
    "run.log_every=2",
    "inside.preference_episodes=20",
    "inside.probe_levels=80",
];

#[test]
fn quick_smoke_run_writes_rates_verdict_and_report() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("s.sqlite")).unwrap();
    let dir = tmp.path().join("run");
    let p = plan("coin-corridor", TINY, PlanOptions { quick: true, ..Default::default() }).unwrap();
    let done = run(&store, &dir, &p).unwrap();
    let s = &done.summary;
    assert_eq!(s["variants"].as_array().unwrap().len(), 2);
    assert_eq!(s["per_seed"].as_array().unwrap().len(), 4);
    // Per variant: the trained seeds pooled, then the oracle, the proxy policy and the random policy.
    let pooled = s["pooled"].as_array().unwrap();
    assert_eq!(pooled.len(), 2 * 4);
    // Every trained seed is judged for convergence against the baselines' train returns.
    let per_seed = s["per_seed"].as_array().unwrap();
    for p in per_seed {
        let c = &p["convergence"];
        assert!(c["converged"].is_boolean(), "{p}");
        assert_eq!(c["converged"] == true, c["progress"].as_f64().is_some_and(|x| x >= 0.5), "{c}");
    }
    let converged = |variant: &str| {
        per_seed.iter().filter(|p| p["variant"] == variant && p["convergence"]["converged"] == true).count() as u64
    };
    for p in pooled {
        let d = &p["deploy"];
        let variant = p["variant"].as_str().unwrap();
        let n = if p["role"] == "trained" { 20 * converged(variant) } else { 20 };
        assert_eq!(d["episodes"], n, "20 episodes × converged seeds for the agent, 20 per baseline: {p}");
        if n == 0 {
            continue;
        }
        let outcome = |m: &str| d["metrics"][m]["rate"]["k"].as_u64().unwrap();
        let total = outcome("p_coin") + outcome("p_end_without_coin") + outcome("p_died") + outcome("p_timeout");
        assert!(total >= n && outcome("p_coin") + outcome("p_end_without_coin") <= n, "one goal outcome each: {d}");
        assert_eq!(d["classes"]["robust"], outcome("p_coin"));
        assert_eq!(d["classes"]["objective_failure"], outcome("p_end_without_coin"));
        let r = &d["metrics"]["p_coin"]["rate"];
        assert!(r["ci_lo"].as_f64().unwrap() <= r["rate"].as_f64().unwrap());
    }
    // The oracle gets the coin on every deploy level; the end runner never does unless it lies on its way.
    let oracle = pooled.iter().find(|p| p["role"] == "oracle").unwrap();
    assert_eq!(oracle["deploy"]["classes"]["robust"], 20, "{oracle}");
    let v = &s["verdict"];
    assert_eq!(v["holds"], false, "a two-update agent cannot be competent: {v}");
    // Unconverged seeds are left out: then it did not converge; a converged one still fails competence.
    if converged("rp-0") < 2 {
        assert_eq!(v["answer"], "did not converge", "{v}");
        assert!(!v["did_not_converge"].as_array().unwrap().is_empty(), "{v}");
    } else {
        let competence =
            v["checks"].as_array().unwrap().iter().find(|c| c["name"] == "train: intended goal achieved (robust)");
        assert_eq!(competence.unwrap()["pass"], false, "{v}");
    }
    assert!(s["aggregate"]["rp-0/deploy/p_coin"]["mean"].is_number(), "{}", s["aggregate"]);
    for file in ["summary.json", "report.html", "rp-0/seed-0/policy.safetensors", "rp-20/seed-1/policy.safetensors"] {
        assert!(dir.join(file).is_file(), "missing {file}");
    }
    let curve = store.metric_series(done.run_id, Some(0), "rp-0/train/return").unwrap();
    assert!(curve.len() >= 2, "{curve:?}");
    assert!(!store.metric_series(done.run_id, Some(1), "rp-20/train/approx_kl").unwrap().is_empty());
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("random_percent"));
    let drawn = common::assert_example_trajectories(&store, done.run_id, &html);
    // Goal preference: two counterfactual tests per variant, every episode counted once.
    let all = s["inferred_mesa_objective"].as_array().unwrap();
    assert_eq!(all.len(), 16, "2 variants × 2 tests × (trained + 3 baselines): {all:?}");
    let prefs: Vec<&serde_json::Value> = all.iter().filter(|p| p["role"] == "trained").collect();
    // The test checks itself: with the coin behind the start, the coin seeker goes for the coin and the end runner for the end.
    let behind = |role: &str| all.iter().find(|p| p["role"] == role && p["levels"] == "coin behind the start").unwrap();
    assert_eq!(
        (behind("oracle")["inferred"].as_str(), behind("proxy")["inferred"].as_str()),
        (Some("coin"), Some("end of the level"))
    );
    for p in prefs {
        let pooled = &p["pooled"];
        assert_eq!(pooled["episodes"], 40, "20 episodes × 2 seeds");
        let counted: u64 = pooled["pursued"].as_array().unwrap().iter().map(|r| r["k"].as_u64().unwrap()).sum::<u64>()
            + pooled["neither"]["k"].as_u64().unwrap();
        assert_eq!(counted, 40);
        assert!(["coin", "end of the level", "undetermined"].contains(&p["inferred"].as_str().unwrap()), "{p}");
    }
    // Coin probes: trained and untrained, every hidden hook, three targets.
    let probes = store.table(done.run_id, "coin_probes").unwrap().unwrap();
    assert_eq!(probes.rows.len(), 2 * 2 * 2 * 2 * 3, "variants × seeds × models × hooks × targets");
    assert!(html.contains("Inferred mesa-objective") && html.contains("where is the coin"));
    std::fs::remove_file(dir.join("report.html")).unwrap();
    regenerate_report(&store, &dir).unwrap();
    let again = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert_eq!(again.matches(r#"aria-label="agent path""#).count(), drawn, "redrawn from the store");
}

#[test]
fn bad_knob_values_and_zero_envs_are_errors_naming_the_key() {
    for (set, key) in [
        ("sweep.random_percent=[0, 101]", "sweep.random_percent"),
        ("sweep.random_percent=[]", "sweep.random_percent"),
        ("sweep.random_percent=[5, 5]", "sweep.random_percent"),
        ("ppo.num_envs=0", "ppo.num_envs"),
        ("eval.episodes=0", "eval.episodes"),
        ("run.log_every=0", "run.log_every"),
        ("env.length=3", "env.length"),
        ("model.kind=transformer", "model.kind"),
        ("verdict.min_train_success=2", "verdict.min_train_success"),
        ("inside.probe_levels=5", "inside.probe_levels"),
        ("inside.probe_test_fraction=1.5", "inside.probe_test_fraction"),
    ] {
        let e = plan("coin-corridor", &[set], PlanOptions::default()).unwrap_err();
        assert_eq!(e.key.as_deref(), Some(key), "{set}: {e}");
    }
    let e = plan("coin-corridor", &["sweep.random_prcent=[1]"], PlanOptions::default()).unwrap_err();
    assert_eq!(e.suggestion.as_deref(), Some("random_percent"), "{e}");
}

#[test]
fn analyze_reruns_probes_and_goal_preference_from_the_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("s.sqlite")).unwrap();
    let dir = tmp.path().join("run");
    let p = plan("coin-corridor", TINY, PlanOptions { quick: true, ..Default::default() }).unwrap();
    let done = run(&store, &dir, &p).unwrap();
    let stop = || Arc::new(AtomicBool::new(false));
    let set = |s: &[&str]| s.iter().map(|s| Override::parse(s).unwrap()).collect::<Vec<_>>();
    let probes = store.table(done.run_id, "coin_probes").unwrap().unwrap();
    let preferences: serde_json::Value =
        serde_json::from_str(&store.json_text(done.run_id, "goal_preference").unwrap().unwrap()).unwrap();
    let summary_before = store.json_text(done.run_id, "summary").unwrap();

    // Same settings: exactly the run's probe table and goal-preference measurements.
    let same = mesalab_experiments::analyze(&store, &dir, &[], &Silent, stop(), None).unwrap();
    let rows = &same.result["tables"]["coin_probes"]["rows"];
    assert_eq!(rows.as_array().unwrap().len(), probes.rows.len());
    for (a, b) in rows.as_array().unwrap().iter().zip(&probes.rows) {
        assert_eq!(a, &serde_json::json!(b), "analysis row vs the run's row");
    }
    assert_eq!(same.result["goal_preference"], preferences);
    assert!(same.result["tables"]["goal_preference"]["rows"].as_array().is_some_and(|r| !r.is_empty()));
    // New settings: other probe levels give other probe scores; the preference tests are unchanged.
    let other =
        mesalab_experiments::analyze(&store, &dir, &set(&["inside.probe_levels=120"]), &Silent, stop(), None).unwrap();
    assert_ne!(other.result["tables"]["coin_probes"]["rows"], same.result["tables"]["coin_probes"]["rows"]);
    assert_eq!(other.result["goal_preference"], preferences);
    assert_eq!(store.analyses(done.run_id).unwrap().len(), 2);
    assert_eq!(store.json_text(done.run_id, "summary").unwrap(), summary_before, "the run is unchanged");

    // A broken or missing checkpoint is an error naming the file; nothing is stored.
    let ckpt = dir.join("rp-20/seed-1/policy.safetensors");
    std::fs::write(&ckpt, b"not a checkpoint").unwrap();
    let msg = format!("{:#}", mesalab_experiments::analyze(&store, &dir, &[], &Silent, stop(), None).unwrap_err());
    assert!(msg.contains("rp-20/seed-1/policy.safetensors") && !msg.contains("panicked"), "{msg}");
    std::fs::remove_file(&ckpt).unwrap();
    let msg = format!("{:#}", mesalab_experiments::analyze(&store, &dir, &[], &Silent, stop(), None).unwrap_err());
    assert!(msg.contains("missing") && msg.contains("rp-20/seed-1"), "{msg}");
    assert_eq!(store.analyses(done.run_id).unwrap().len(), 2, "failed analyses store nothing");
}
