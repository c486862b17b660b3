//! Fuzzing the config loader: every shipped config with arbitrary `--set` overrides (known keys,
//! near-misses and made-up ones; values at and past every edge), `--seed`/`--seeds`, full and
//! quick mode, and the config text itself cut or with bytes replaced. A plan that loads is then
//! estimated and checked against a memory limit, as `mesalab run` does before anything is
//! written. Nothing may panic: bad input is a `ConfigError` (or a refusal).
//!
//! CI runs a short fixed-seed pass; `MESALAB_FUZZ_CASES=20000 cargo test --release --workspace
//! --test fuzz_config` runs a long one (the closing note of issue 10 reports the count).

use mesalab_core::config::Override;
use mesalab_experiments::resources::{MemoryLimit, check};
use mesalab_experiments::{EXPERIMENTS, Plan, PlanOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

fn runner(default_cases: u32) -> TestRunner {
    let cases = std::env::var("MESALAB_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default_cases);
    let seed: u64 = std::env::var("MESALAB_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRunner::new_with_rng(
        Config { cases, failure_persistence: None, ..Config::default() },
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

/// Every key of a resolved config, tables included (`ppo`, `ppo.num_envs`, …).
fn keys(resolved: &str) -> Vec<String> {
    fn walk(prefix: &str, t: &toml::Table, out: &mut Vec<String>) {
        for (k, v) in t {
            let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            if let toml::Value::Table(inner) = v {
                walk(&key, inner, out);
            }
            out.push(key);
        }
    }
    let mut out = Vec::new();
    walk("", &toml::from_str(resolved).expect("a resolved config is TOML"), &mut out);
    out
}

fn raw_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        (0u64..5000).prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
        prop::sample::select(vec![
            "0",
            "-1",
            "1",
            "2",
            "3",
            "100",
            "101",
            "4294967295",
            "4294967296",
            "9223372036854775807",
            "18446744073709551615",
            "18446744073709551616",
            "1000000000000",
            "nan",
            "inf",
            "-inf",
            "1e308",
            "-1e308",
            "1e-320",
            "0.5",
            "-0.0",
            "true",
            "false",
            "\"\"",
            "\"linear\"",
            "\"softmax\"",
            "\"cnn\"",
            "\"mlp\"",
            "\"greedy\"",
            "\"gaussian\"",
            "[]",
            "{}",
            "[1, 2]",
            "[0, 0]",
            "[1000000000000]",
            "[[]]",
            "[-1]",
            "[0.0]",
            "{a = 1}",
            "=",
            "[",
            "\"",
            "'",
            "\"\"\"",
            "#",
        ])
        .prop_map(str::to_string),
        any::<f64>().prop_map(|v| format!("{v:?}")),
        "[a-z_\\\"\\[\\]{}=.,0-9 #-]{0,16}",
        prop::collection::vec(0u64..200, 0..5).prop_map(|v| format!("{v:?}")),
        prop::collection::vec(any::<u64>(), 0..3).prop_map(|v| format!("{v:?}")),
    ]
}

/// Loads, estimates and checks a plan; every outcome but a panic is fine.
fn load(origin: &str, text: &str, overrides: &[Override], opts: &PlanOptions, limit: &MemoryLimit) -> bool {
    match Plan::new(origin, text, overrides, opts) {
        Ok(plan) => {
            if let Ok(estimate) = plan.estimate() {
                let _ = estimate.peak();
                let _ = estimate.render();
                let _ = check(&estimate, limit);
            }
            let _ = plan.check_memory(limit);
            true
        }
        Err(e) => {
            let _ = e.to_string();
            false
        }
    }
}

#[test]
fn every_shipped_config_survives_arbitrary_overrides() {
    let limit = MemoryLimit { bytes: 1 << 30, source: "fuzz".into() };
    let (total, loaded) = (std::cell::Cell::new(0u64), std::cell::Cell::new(0u64));
    for e in EXPERIMENTS {
        let resolved = Plan::new(e.config_path, e.config, &[], &PlanOptions::default()).unwrap().resolved_toml;
        let known = keys(&resolved);
        let key = prop_oneof![
            6 => prop::sample::select(known.clone()),
            1 => prop::sample::select(known.clone()).prop_map(|k| format!("{k}x")),
            1 => "[a-z_.]{0,12}",
        ];
        let strategy = (
            prop::collection::vec((key, raw_value()), 0..6),
            any::<bool>(),
            prop::option::of(any::<u64>()),
            prop::option::of(prop_oneof![0u64..6, any::<u64>()]),
        );
        runner(120)
            .run(&strategy, |(sets, quick, seed, seeds)| {
                total.set(total.get() + 1);
                let overrides: Vec<Override> =
                    sets.iter().filter_map(|(k, v)| Override::parse(&format!("{k}={v}")).ok()).collect();
                let opts = PlanOptions { seed, seeds, quick };
                loaded.set(loaded.get() + u64::from(load(e.config_path, e.config, &overrides, &opts, &limit)));
                Ok(())
            })
            .unwrap_or_else(|err| panic!("{}: {err}", e.name));
    }
    eprintln!("fuzz_config overrides: {} inputs, {} loaded plans, 0 panics", total.get(), loaded.get());
    assert!(loaded.get() > 0, "no input loaded: the strategy tests nothing");
}

#[test]
fn every_shipped_config_text_survives_cuts_and_replaced_bytes() {
    let limit = MemoryLimit { bytes: 1 << 30, source: "fuzz".into() };
    let total = std::cell::Cell::new(0u64);
    for e in EXPERIMENTS {
        let len = e.config.len();
        let strategy = (0..=len, prop::collection::vec((0..len, any::<u8>()), 0..4), any::<bool>());
        runner(40)
            .run(&strategy, |(cut, replaced, quick)| {
                total.set(total.get() + 1);
                let mut bytes = e.config.as_bytes()[..cut].to_vec();
                for (at, b) in replaced {
                    if at < bytes.len() {
                        bytes[at] = b;
                    }
                }
                // The CLI reads configs as UTF-8 text; invalid UTF-8 never reaches the loader.
                let text = String::from_utf8_lossy(&bytes);
                load("fuzzed.toml", &text, &[], &PlanOptions { quick, ..Default::default() }, &limit);
                Ok(())
            })
            .unwrap_or_else(|err| panic!("{}: {err}", e.name));
    }
    eprintln!("fuzz_config texts: {} inputs, 0 panics", total.get());
}
