//! Fuzzing every registered env: arbitrary params (`--set` overrides on a split, or a made-up
//! split) → `make` → `reset` → a sequence of valid actions with `write_obs` after every step, and
//! both renders at the end. Nothing may panic: bad params are an `EnvError`.
//!
//! CI runs a short fixed-seed pass; `MESALAB_FUZZ_CASES=100000 cargo test --release --workspace
//! --test fuzz_envs` runs a long one (the closing note of issue 10 reports the count).

use mesalab_core::config::Override;
use mesalab_core::{Seed, Streams};
use mesalab_envs::Env;
use mesalab_envs::registry::{ENTRIES, defaults_toml, make};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

fn cases(default: u32) -> u32 {
    std::env::var("MESALAB_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A fixed-seed runner (the same inputs every CI run) unless `MESALAB_FUZZ_SEED` says otherwise.
fn runner(default_cases: u32) -> TestRunner {
    let seed: u64 = std::env::var("MESALAB_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRunner::new_with_rng(
        Config { cases: cases(default_cases), failure_persistence: None, ..Config::default() },
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

/// The keys of a params TOML (`a`, `a.b`, …).
fn keys(text: &str) -> Vec<String> {
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
    walk("", &toml::from_str(text).unwrap_or_default(), &mut out);
    out
}

/// Values as a `--set` argument writes them: numbers at and past every edge, strings, arrays,
/// tables and garbage.
fn raw_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        (0u64..70).prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
        prop::sample::select(vec![
            "0",
            "-1",
            "1",
            "2",
            "3",
            "63",
            "64",
            "65",
            "255",
            "4294967295",
            "4294967296",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "nan",
            "inf",
            "-inf",
            "1e308",
            "1e-308",
            "0.5",
            "-0.0",
            "true",
            "false",
            "\"\"",
            "[]",
            "{}",
            "[1, 2]",
            "[[]]",
            "\"full\"",
            "\"egocentric\"",
            "=",
            "[",
            "\"",
        ])
        .prop_map(str::to_string),
        any::<f64>().prop_map(|v| format!("{v:?}")),
        "[a-z_\\\"\\[\\]{}=.,0-9 -]{0,12}",
        prop::collection::vec(0u32..100, 0..4).prop_map(|v| format!("{v:?}")),
    ]
}

#[test]
fn every_env_survives_arbitrary_params_and_action_sequences() {
    let (total, built) = (std::cell::Cell::new(0u64), std::cell::Cell::new(0u64));
    for entry in ENTRIES {
        let defaults =
            entry.splits.iter().flat_map(|s| keys(&defaults_toml(entry.name, s).unwrap())).collect::<Vec<_>>();
        let key = prop_oneof![
            4 => prop::sample::select(defaults.clone()),
            1 => "[a-z_.]{0,10}",
        ];
        let split = prop_oneof![
            6 => prop::sample::select(entry.splits.to_vec()).prop_map(str::to_string),
            1 => "[a-z]{0,6}",
        ];
        let strategy = (
            split,
            prop::collection::vec((key, raw_value()), 0..5),
            any::<u64>(),
            prop::collection::vec(any::<u8>(), 0..300),
        );
        let mut runner = runner(200);
        runner
            .run(&strategy, |(split, sets, seed, actions)| {
                total.set(total.get() + 1);
                let overrides: Vec<Override> =
                    sets.iter().filter_map(|(k, v)| Override::parse(&format!("{k}={v}")).ok()).collect();
                let Ok(env) = make(entry.name, &split, &overrides) else { return Ok(()) };
                built.set(built.get() + 1);
                let spec = env.spec().clone();
                prop_assert!(!spec.actions.is_empty(), "{}: no actions", entry.name);
                let streams = Streams::new(Seed(seed));
                let (mut level_rng, mut step_rng) = (streams.stream("levels"), streams.stream("steps"));
                let mut obs = vec![0.0f32; spec.obs_len()];
                let mut state = env.reset(&mut level_rng);
                env.write_obs(&state, &mut obs);
                for a in actions {
                    let step = env.step(&mut state, a as usize % spec.actions.len(), &mut step_rng);
                    prop_assert!(step.reward.is_finite(), "{}: reward {}", entry.name, step.reward);
                    env.write_obs(&state, &mut obs);
                    prop_assert!(obs.iter().all(|v| v.is_finite()), "{}: non-finite observation", entry.name);
                    if step.end.is_some() {
                        state = env.reset(&mut level_rng);
                    }
                }
                let _ = env.render_ascii(&state);
                let _ = env.render_svg(&state);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{}: {e}", entry.name));
    }
    eprintln!("fuzz_envs: {} inputs, {} built envs, 0 panics", total.get(), built.get());
    assert!(built.get() > 0, "no input built an env: the strategy tests nothing");
}
