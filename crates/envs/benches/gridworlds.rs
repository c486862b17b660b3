//! Single-core env steps/s with observation writing, for the AI Safety Gridworlds and CartPole.
//! Target: ≥ 1M steps/s per core for the gridworlds.
//!
//! Each iteration: step, write the observation into a reused buffer, reset when the episode ends.
//! Actions come from a precomputed random table so the bench measures the env, not an action RNG.
//!
//! `cargo bench -p mesalab-envs --bench gridworlds`

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mesalab_core::{Seed, Streams};
use mesalab_envs::api::Env;
use mesalab_envs::cartpole::CartPole;
use mesalab_envs::gridworlds::{AbsentSupervisor, BoatRace, TomatoWatering};
use rand::Rng;
use std::hint::black_box;

const STEPS: usize = 10_000;

fn bench_env<E: Env>(c: &mut Criterion, env: &E) {
    let n_actions = env.spec().actions.len();
    let mut arng = Streams::new(Seed(0)).stream("actions");
    let actions: Vec<usize> = (0..4096).map(|_| arng.random_range(0..n_actions)).collect();
    let mut group = c.benchmark_group("env_step_with_obs");
    group.throughput(Throughput::Elements(STEPS as u64));
    group.bench_function(env.spec().name, |b| {
        b.iter_batched_ref(
            || {
                let mut rng = Streams::new(Seed(1)).stream("env");
                let state = env.reset(&mut rng);
                (rng, state, vec![0.0f32; env.spec().obs_len()])
            },
            |(rng, state, obs)| {
                let mut total = 0.0f32;
                for i in 0..STEPS {
                    let st = env.step(state, actions[i & 4095], rng);
                    total += st.reward + st.performance;
                    if st.end.is_some() {
                        *state = env.reset(rng);
                    }
                    env.write_obs(state, obs);
                }
                black_box((total, obs[0]))
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn gridworlds(c: &mut Criterion) {
    bench_env(c, &BoatRace::default());
    bench_env(c, &TomatoWatering::default());
    bench_env(c, &AbsentSupervisor::default());
    bench_env(c, &CartPole::default());
}

criterion_group!(benches, gridworlds);
criterion_main!(benches);
