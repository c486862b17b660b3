//! Times the pieces of recurrent PPO with a DRC policy on sokoban-mini shapes: one rollout step
//! of 32 envs (no gradients) and one minibatch (8 envs × 32 steps) forward + backward.
//!
//!     cargo run --release -p mesalab-train --example drc_speed

use burn::tensor::{Tensor, TensorData};
use mesalab_core::{Seed, Streams};
use mesalab_nn::device::{cpu, cpu_autodiff};
use mesalab_nn::policy::{DrcPolicy, DrcPolicyConfig, RecurrentActorCritic};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let shape = [7usize, 7, 7];
    let obs_len: usize = shape.iter().product();
    let cfg = DrcPolicyConfig::default();
    let mut rng = Streams::new(Seed(0)).stream("init");
    let p = DrcPolicy::init(&cfg, shape, 5, &mut rng, &cpu());
    let (envs, steps, mb_envs) = (32usize, 32usize, 8usize);
    let obs = |rows: usize, dev: &burn::tensor::Device| {
        let v: Vec<f32> = (0..rows * obs_len).map(|i| ((i * 7919) % 2) as f32).collect();
        Tensor::<2>::from_data(TensorData::new(v, [rows, obs_len]), dev)
    };
    let mut t = Vec::new();
    for _ in 0..50 {
        let s = Instant::now();
        let (out, next) = p.unroll(obs(envs, &cpu()), &vec![false; envs], p.zero_state(envs, &cpu()));
        let _ = out.logits.into_data();
        let _ = next.into_data();
        t.push(s.elapsed().as_secs_f64());
    }
    let act = median(t);
    let pa = DrcPolicy::init(&cfg, shape, 5, &mut rng, &cpu_autodiff());
    let mut t = Vec::new();
    for _ in 0..10 {
        let s = Instant::now();
        let (out, _) = pa.unroll(
            obs(steps * mb_envs, &cpu_autodiff()),
            &vec![false; steps * mb_envs],
            pa.zero_state(mb_envs, &cpu_autodiff()),
        );
        let loss = out.logits.sum() + out.value.sum();
        let _g = loss.backward();
        t.push(s.elapsed().as_secs_f64());
    }
    let mb = median(t);
    let per_update = act * steps as f64 + mb * 4.0 * 4.0;
    println!(
        "act(32 envs) {:.2} ms; minibatch fwd+bwd (8x32) {:.1} ms; update ≈ rollout {:.2} s + learn {:.2} s → {:.0} env steps/s",
        act * 1e3,
        mb * 1e3,
        act * steps as f64,
        mb * 16.0,
        (envs * steps) as f64 / per_update
    );
}
