//! PPO hot paths on one core: one full update on cartpole-v1 (CleanRL defaults: 512-step rollout
//! with 4 envs, 4 epochs × 4 minibatches of the 64-64 tanh MLP) on the fused and the burn kernels,
//! GAE alone, and end-to-end env
//! steps/s of PPO with the IMPALA-like CNN on coin-corridor-v1. Run:
//! `CARGO_TARGET_DIR=target-ppo cargo bench -p mesalab-train --bench ppo`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mesalab_core::{Seed, Streams};
use mesalab_envs::{Env, registry};
use mesalab_nn::device::cpu_autodiff;
use mesalab_nn::policy::{CnnPolicy, CnnPolicyConfig, MlpPolicy, MlpPolicyConfig};
use mesalab_train::ppo::{self, Kernel, PpoConfig};
use rand::Rng;
use std::hint::black_box;
use std::ops::ControlFlow;
use std::time::Duration;

fn ppo_update_cartpole(c: &mut Criterion) {
    let env = registry::make("cartpole-v1", "train", &[]).unwrap();
    let streams = Streams::new(Seed(1));
    let spec = env.spec().clone();
    let policy = MlpPolicy::init(
        &MlpPolicyConfig::default(),
        spec.obs_len(),
        spec.actions.len(),
        &mut streams.stream("init"),
        &cpu_autodiff(),
    );
    let mut g = c.benchmark_group("ppo");
    // One update = one call with total_timesteps = one batch (env and optimizer setup included),
    // on the fused kernels (`auto`, the default) and on burn's.
    for (name, kernel) in [("fused", Kernel::Auto), ("burn", Kernel::Burn)] {
        let config = PpoConfig { total_timesteps: 512, kernel, ..PpoConfig::default() };
        g.throughput(Throughput::Elements(config.batch_size() as u64));
        g.bench_function(format!("update/cartpole-v1/mlp-64-64/{name}"), |b| {
            b.iter(|| {
                let t = ppo::train(&config, env.clone(), policy.clone(), &streams, |_, _| ControlFlow::Continue(()));
                black_box(t.unwrap().logs[0].approx_kl)
            })
        });
    }
    g.finish();
}

fn gae(c: &mut Criterion) {
    let mut g = c.benchmark_group("gae");
    for (steps, envs) in [(128usize, 4usize), (256, 64)] {
        let mut rng = Streams::new(Seed(0)).stream("bench");
        let n = steps * envs;
        let rewards: Vec<f32> = (0..n).map(|_| rng.random()).collect();
        let values: Vec<f32> = (0..n).map(|_| rng.random()).collect();
        let ended: Vec<bool> = (0..n).map(|_| rng.random_bool(0.01)).collect();
        let next: Vec<f32> = (0..envs).map(|_| rng.random()).collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("{steps}x{envs}"), |b| {
            b.iter(|| black_box(ppo::gae(&rewards, &values, &ended, &next, envs, 0.99, 0.95)))
        });
    }
    g.finish();
}

fn ppo_coin_corridor_cnn(c: &mut Criterion) {
    for res_blocks in [0, 1] {
        ppo_coin_corridor(c, CnnPolicyConfig { res_blocks, ..CnnPolicyConfig::default() });
    }
}

fn ppo_coin_corridor(c: &mut Criterion, cnn: CnnPolicyConfig) {
    let env = registry::make("coin-corridor-v1", "train", &[]).unwrap();
    let streams = Streams::new(Seed(1));
    let spec = env.spec().clone();
    let policy =
        CnnPolicy::init(&cnn, spec.obs_shape, spec.actions.len(), &mut streams.stream("init"), &cpu_autodiff());
    // Langosco et al.'s procgen PPO shape, scaled down: 16 envs × 64 steps, 3 epochs, 8 minibatches.
    let config = PpoConfig {
        num_envs: 16,
        num_steps: 64,
        total_timesteps: 1024,
        update_epochs: 3,
        num_minibatches: 8,
        gamma: 0.999,
        learning_rate: 5e-4,
        ..PpoConfig::default()
    };
    let mut g = c.benchmark_group("ppo");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(config.batch_size() as u64));
    let label = format!("update/coin-corridor-v1/cnn-{:?}-res{}-{}", cnn.channels, cnn.res_blocks, cnn.hidden);
    g.bench_function(label, |b| {
        b.iter(|| {
            let t = ppo::train(&config, env.clone(), policy.clone(), &streams, |_, _| ControlFlow::Continue(()));
            black_box(t.unwrap().logs[0].approx_kl)
        })
    });
    g.finish();
}

criterion_group!(benches, ppo_update_cartpole, gae, ppo_coin_corridor_cnn);
criterion_main!(benches);
