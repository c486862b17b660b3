//! Prints single-core steps/s of registered envs (random actions, observation written every step,
//! auto-reset). Used by `bench/minigrid_side_by_side.sh`.
//!
//! `cargo run --release -p mesalab-envs --example env_speed -- [ENV] [STEPS] [--set k=v ...]`
//! (no ENV: every registered env, train split).

use mesalab_core::config::Override;
use mesalab_core::{Seed, Streams};
use mesalab_envs::{AutoReset, Env, registry};
use rand::Rng;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut positional = Vec::new();
    let mut overrides = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--set" {
            let v = it.next().expect("--set needs KEY=VALUE");
            overrides.push(Override::parse(v).unwrap_or_else(|e| panic!("{e}")));
        } else {
            positional.push(a.clone());
        }
    }
    let names: Vec<String> = match positional.first() {
        Some(n) => vec![n.clone()],
        None => registry::names().into_iter().map(String::from).collect(),
    };
    let steps: u64 = positional.get(1).map_or(2_000_000, |s| s.parse().expect("STEPS is a number"));
    for name in names {
        let env = match registry::make(&name, "train", &overrides) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        };
        let shape = env.spec().obs_shape;
        let n_actions = env.spec().actions.len();
        let mut act = Streams::new(Seed(1)).stream("actions");
        let actions: Vec<usize> = (0..4096).map(|_| act.random_range(0..n_actions)).collect();
        let mut e = AutoReset::new(env, Streams::new(Seed(1)).stream("env"));
        let mut episodes = 0u64;
        let mut checksum = 0.0f32;
        let t0 = Instant::now();
        for k in 0..steps {
            let (_, done) = e.step(actions[(k & 4095) as usize]);
            episodes += u64::from(done.is_some());
            checksum += e.obs()[(k as usize * 7) % e.obs().len()];
        }
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "{name} steps_per_sec={:.0} steps={steps} episodes={episodes} obs_shape={shape:?} checksum={checksum}",
            steps as f64 / secs
        );
    }
}
