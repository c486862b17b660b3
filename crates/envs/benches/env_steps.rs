//! Env steps per second on one core, including observation writing, with random actions and
//! auto-reset (level generation amortised in). Run:
//! `CARGO_TARGET_DIR=target-envs cargo bench -p mesalab-envs --bench env_steps`
//! (`-- sokoban` for sokoban-mini alone: steps, level generation per split, the solver).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mesalab_core::{Seed, Streams};
use mesalab_envs::{AutoReset, Env, registry};
use rand::Rng;
use std::hint::black_box;

const BATCH: u64 = 10_000;

fn bench_env<E: Env>(c: &mut Criterion, label: &str, env: E) {
    let n_actions = env.spec().actions.len();
    let mut act_rng = Streams::new(Seed(0)).stream("actions");
    // Pre-drawn random actions, so the bench measures the env, not the action RNG.
    let actions: Vec<usize> = (0..4096).map(|_| act_rng.random_range(0..n_actions)).collect();
    let mut env = AutoReset::new(env, Streams::new(Seed(0)).stream("env"));
    let mut g = c.benchmark_group("env_steps");
    g.throughput(Throughput::Elements(BATCH));
    let mut k = 0usize;
    g.bench_function(label, |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                let (step, _) = env.step(actions[k & 4095]);
                k += 1;
                black_box(step);
            }
            black_box(env.obs()[0]);
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    use mesalab_envs::{cheese_maze, coin_corridor, keys_chests, monster_shield, sokoban};
    bench_env(
        c,
        "coin-corridor-v1/typed",
        coin_corridor::CoinCorridor::new(coin_corridor::CoinCorridorParams::train()).unwrap(),
    );
    bench_env(c, "cheese-maze-v1/typed", cheese_maze::CheeseMaze::new(cheese_maze::CheeseMazeParams::train()).unwrap());
    bench_env(c, "keys-chests-v1/typed", keys_chests::KeysChests::new(keys_chests::KeysChestsParams::train()).unwrap());
    bench_env(
        c,
        "monster-shield-v1/typed",
        monster_shield::MonsterShield::new(monster_shield::MonsterShieldParams::train()).unwrap(),
    );
    bench_env(c, "sokoban-mini-v1/typed", sokoban::Sokoban::new(sokoban::SokobanParams::train()).unwrap());
    bench_sokoban_levels(c);
    for name in registry::names() {
        bench_env(c, &format!("{name}/any"), registry::make(name, "train", &[]).unwrap());
    }
}

/// `sokoban-mini-v1` levels: generation (reverse play + the solver, retries included) per split,
/// one forward solve and one full distance map of a deploy level.
fn bench_sokoban_levels(c: &mut Criterion) {
    use mesalab_envs::sokoban::{self, DistanceMap, MAX_STATES, Sokoban, SokobanParams};
    let mut g = c.benchmark_group("sokoban");
    g.throughput(Throughput::Elements(1));
    let streams = Streams::new(Seed(0));
    for (split, params) in [("train", SokobanParams::train()), ("deploy", SokobanParams::deploy())] {
        let env = Sokoban::new(params).unwrap();
        let mut i = 0u64;
        g.bench_function(format!("sokoban-mini-v1/generate/{split}"), |b| {
            b.iter(|| {
                i += 1;
                black_box(env.generate(&mut streams.indexed("env", i)).is_ok())
            })
        });
    }
    let env = Sokoban::new(SokobanParams::deploy()).unwrap();
    let levels: Vec<_> =
        (0..64).map(|i| std::sync::Arc::new(env.generate(&mut streams.indexed("env", i)).unwrap())).collect();
    let mut k = 0usize;
    g.bench_function("sokoban-mini-v1/solve/deploy", |b| {
        b.iter(|| {
            k += 1;
            black_box(sokoban::solve(&levels[k % 64]).map(|p| p.len()))
        })
    });
    g.bench_function("sokoban-mini-v1/distance-map/deploy", |b| {
        b.iter(|| {
            k += 1;
            black_box(DistanceMap::new(levels[k % 64].clone(), MAX_STATES).map(|m| m.solvable_states()))
        })
    });
    g.finish();
}

criterion_group! {
    name = group;
    config = Criterion::default().sample_size(10).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = benches
}
criterion_main!(group);
