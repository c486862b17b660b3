//! Env steps per second on one core, including observation writing, with random actions and
//! auto-reset (level generation amortised in). Run:
//! `CARGO_TARGET_DIR=target-envs cargo bench -p mesalab-envs --bench env_steps`

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
    use mesalab_envs::{cheese_maze, coin_corridor, keys_chests, monster_shield};
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
    for name in registry::names() {
        bench_env(c, &format!("{name}/any"), registry::make(name, "train", &[]).unwrap());
    }
}

criterion_group! {
    name = group;
    config = Criterion::default().sample_size(10).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = benches
}
criterion_main!(group);
