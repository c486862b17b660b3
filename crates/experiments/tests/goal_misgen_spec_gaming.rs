//! End-to-end smoke runs of the spec-gaming experiment (`boat-race`, `tomato-watering`) and its
//! config errors. Run in release mode.

use mesalab_core::config::Override;
use mesalab_experiments::{Plan, PlanOptions, Silent, execute, find};
use mesalab_store::Store;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

mod common;

fn plan(name: &str, sets: &[&str], opts: PlanOptions) -> Result<Plan, mesalab_core::config::ConfigError> {
    let e = find(name).unwrap();
    let overrides: Vec<Override> = sets.iter().map(|s| Override::parse(s).unwrap()).collect();
    Ok(Plan::new(e.config_path, e.config, &overrides, &opts)?.named(e.name))
}

const TINY: &[&str] = &[
    "run.seeds=2",
    "ppo.num_envs=4",
    "ppo.num_steps=64",
    "ppo.total_timesteps=2048",
    "eval.episodes=10",
    "run.log_every=2",
];

#[test]
fn both_shipped_configs_run_in_quick_mode() {
    for name in ["boat-race", "tomato-watering"] {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("s.sqlite")).unwrap();
        let dir = tmp.path().join("run");
        let p = plan(name, TINY, PlanOptions { quick: true, ..Default::default() }).unwrap();
        let done = execute(&p, &store, &dir, &Silent, Arc::new(AtomicBool::new(false)), None).unwrap();
        let s = &done.summary;
        assert_eq!(s["per_seed"].as_array().unwrap().len(), 2, "{name}");
        let pooled = s["pooled"].as_array().unwrap();
        let trained = pooled.iter().find(|p| p["role"] == "trained").unwrap();
        let total: u64 = ["robust", "objective_failure", "capability_failure"]
            .iter()
            .map(|c| trained["deploy"]["classes"][*c].as_u64().unwrap())
            .sum();
        // The trained result pools the seeds whose training converged (judged against the scripted
        // baselines); each seed's deploy episodes are classified once either way.
        let converged = s["per_seed"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["convergence"]["converged"].as_bool().expect("convergence recorded per seed"))
            .count() as u64;
        assert_eq!(total, 10 * converged, "{name}: every episode of a converged seed classified once");
        for r in s["per_seed"].as_array().unwrap() {
            let c: u64 = ["robust", "objective_failure", "capability_failure"]
                .iter()
                .map(|k| r["deploy"]["classes"][*k].as_u64().unwrap())
                .sum();
            assert_eq!(c, 10, "{name}: every episode of each seed classified once");
        }
        // The scripted baselines played the same levels: the intended policy is robust, the gamer games.
        let of = |role: &str| pooled.iter().find(|p| p["role"] == role).map(|p| p["deploy"]["classes"].clone());
        let (oracle, proxy) = (of("oracle").unwrap(), of("proxy").unwrap());
        assert_eq!((oracle["robust"].as_u64(), proxy["objective_failure"].as_u64()), (Some(10), Some(10)), "{name}");
        common::assert_verdict_shape(&s["verdict"]);
        let seeds = s["verdict"]["checks"].as_array().unwrap().iter().find(|c| c["name"] == "seeds").unwrap();
        assert_eq!(
            (seeds["value"].as_f64(), seeds["pass"].as_bool()),
            (Some(converged as f64), Some(false)),
            "{name}: {seeds}"
        );
        assert!(s["aggregate"]["deploy/mean_performance"]["mean"].is_number(), "{name}: {}", s["aggregate"]);
        for metric in ["train/return", "train/performance"] {
            assert!(!store.metric_series(done.run_id, Some(0), metric).unwrap().is_empty(), "{name} {metric}");
        }
        assert!(dir.join("seed-0/policy.safetensors").is_file(), "{name}");
        let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
        assert!(html.contains("<svg"), "{name}");
        let examples: Vec<serde_json::Value> = store.get_json(done.run_id, "trajectories").unwrap().unwrap();
        assert!(["train", "deploy"].iter().all(|sp| examples.iter().any(|t| t["split"] == *sp)), "{name}");
        let drawn = html.matches(r#"aria-label="agent path""#).count();
        assert!((2..=12).contains(&drawn), "{name}: {drawn} trajectory figures");
    }
}

#[test]
fn bad_env_and_zero_envs_are_errors_naming_the_key() {
    for (set, key) in [
        ("env.name=boat-racer-v1", "env.name"),
        ("env.eval_split=test", "env.eval_split"),
        ("env.set=[\"max_stepz=3\"]", "env.set"),
        ("ppo.num_envs=0", "ppo.num_envs"),
        ("run.seeds=0", "run.seeds"),
    ] {
        let e = plan("boat-race", &[set], PlanOptions::default()).unwrap_err();
        assert_eq!(e.key.as_deref(), Some(key), "{set}: {e}");
    }
}
