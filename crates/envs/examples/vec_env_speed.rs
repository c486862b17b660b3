//! Batched env stepping speed: one [`VecEnv`] of N envs (default 1024) stepped with uniformly random
//! actions, observations copied out after every step the way PPO's rollout does
//! (`obs[rows].copy_from_slice(envs.obs())`). Prints one `key=value` line per env, the median of
//! several repetitions. Used by `bench/pufferlib_side_by_side.sh`.
//!
//! `cargo run --release -p mesalab-envs --example vec_env_speed -- [ENV ...] [--num-envs N]
//! [--steps S] [--reps R] [--threads T] [--obs-read copy|none] [--split SPLIT] [--set k=v ...]`
//! (no ENV: cheese-maze-v1, keys-chests-v1, coin-corridor-v1; S batched steps per repetition).
//!
//! What one timed step includes: `VecEnv::step` (env dynamics, reward, events, episode stats,
//! auto-reset with level generation, the full observation written for every env, the terminal
//! observation for envs that ended) plus the copy of `obs()` into a staging buffer (`--obs-read
//! none`: one element read instead, to see what the copy costs). Actions are
//! drawn before timing (64 batches, reused cyclically), so RNG cost for actions is not counted.

use mesalab_core::config::Override;
use mesalab_core::{Seed, Streams};
use mesalab_envs::{Env, VecEnv, registry};
use rand::Rng;
use std::hint::black_box;
use std::time::Instant;

/// Distinct pre-drawn action batches; cycled so the env never sees a short periodic sequence.
const ACTION_BATCHES: usize = 64;

struct Args {
    envs: Vec<String>,
    num_envs: usize,
    steps: usize,
    reps: usize,
    threads: usize,
    /// Copy `obs()` out after every step (PPO's rollout does); off isolates `VecEnv::step` itself.
    copy_obs: bool,
    split: String,
    overrides: Vec<Override>,
}

fn parse_args() -> Args {
    let mut a = Args {
        envs: Vec::new(),
        num_envs: 1024,
        steps: 500,
        reps: 5,
        threads: 1,
        copy_obs: true,
        split: "train".to_string(),
        overrides: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--num-envs" => a.num_envs = number(&arg, value()),
            "--steps" => a.steps = number(&arg, value()),
            "--reps" => a.reps = number(&arg, value()),
            "--threads" => a.threads = number(&arg, value()),
            "--split" => a.split = value(),
            "--obs-read" => {
                a.copy_obs = match value().as_str() {
                    "copy" => true,
                    "none" => false,
                    other => panic!("--obs-read copy|none, not {other}"),
                }
            }
            "--set" => a.overrides.push(Override::parse(&value()).unwrap_or_else(|e| panic!("{e}"))),
            _ if arg.starts_with("--") => panic!("unknown flag {arg}"),
            _ => a.envs.push(arg),
        }
    }
    if a.envs.is_empty() {
        a.envs = ["cheese-maze-v1", "keys-chests-v1", "coin-corridor-v1"].map(String::from).to_vec();
    }
    assert!(a.num_envs > 0 && a.steps > 0 && a.reps > 0, "--num-envs, --steps and --reps must be positive");
    a
}

fn number(flag: &str, v: String) -> usize {
    v.parse().unwrap_or_else(|e| panic!("{flag} {v}: {e}"))
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let args = parse_args();
    let n = args.num_envs;
    let set = if args.overrides.is_empty() {
        "none".to_string()
    } else {
        args.overrides.iter().map(|o| format!("{}={}", o.key, o.raw)).collect::<Vec<_>>().join(",")
    };
    for name in &args.envs {
        let env = registry::make(name, &args.split, &args.overrides).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2);
        });
        let shape = env.spec().obs_shape;
        let n_actions = env.spec().actions.len();
        let mut rng = Streams::new(Seed(1)).stream("actions");
        let actions: Vec<Vec<usize>> =
            (0..ACTION_BATCHES).map(|_| (0..n).map(|_| rng.random_range(0..n_actions)).collect()).collect();
        let mut v = VecEnv::new(env, &Streams::new(Seed(1)), 0, n);
        let mut staging = vec![0.0f32; v.obs().len()];
        let mut k = 0usize;
        let mut episodes = 0usize;
        let mut checksum = 0.0f64;
        let mut run = |steps: usize, episodes: &mut usize, checksum: &mut f64| {
            for _ in 0..steps {
                v.step_parallel(&actions[k % ACTION_BATCHES], args.threads);
                if args.copy_obs {
                    staging.copy_from_slice(v.obs());
                } else {
                    staging[0] = v.obs()[(k * 7919) % staging.len()];
                }
                *episodes += v.finished().len();
                // One read per step keeps the copy observable without adding a full pass over it.
                let at = if args.copy_obs { (k * 7919) % staging.len() } else { 0 };
                *checksum += f64::from(black_box(&staging)[at]);
                k += 1;
            }
        };
        // Warm-up: first-touch page faults and the first wave of auto-resets are not steady state.
        run(args.steps / 5 + 1, &mut episodes, &mut checksum);
        episodes = 0;
        let mut walls = Vec::with_capacity(args.reps);
        for _ in 0..args.reps {
            let t0 = Instant::now();
            run(args.steps, &mut episodes, &mut checksum);
            walls.push(t0.elapsed().as_secs_f64());
        }
        let (fastest, slowest) = walls.iter().fold((f64::MAX, 0.0f64), |(a, b), &w| (a.min(w), b.max(w)));
        let wall = median(&mut walls);
        let env_steps = n * args.steps;
        println!(
            "env={name} set={set} num_envs={n} threads={} obs_read={} obs_len={} obs_shape={}x{}x{} obs_bytes_per_env={} \
             steps={env_steps} wall_s={wall:.4} sps={:.0} sps_min={:.0} sps_max={:.0} reps={} \
             episodes_per_rep={} checksum={checksum}",
            args.threads,
            if args.copy_obs { "copy" } else { "none" },
            v.obs_len(),
            shape[0],
            shape[1],
            shape[2],
            v.obs_len() * std::mem::size_of::<f32>(),
            env_steps as f64 / wall,
            env_steps as f64 / slowest,
            env_steps as f64 / fastest,
            args.reps,
            episodes / args.reps,
        );
    }
}
