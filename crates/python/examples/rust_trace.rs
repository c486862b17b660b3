//! The Rust side of the Python package's seeding test: plays `mesalab_envs::VecEnv` (the vector
//! env every mesalab experiment trains on) with fixed actions and prints, per step and slot, what
//! the Python envs must reproduce for the same seed.
//!
//! ```text
//! cargo run --release --example rust_trace -- ENV SPLIT SEED NUM_ENVS STEPS [key=value ...]
//! ```
//! Prints `reset SLOT OBS_HASH` per slot, then per step and slot
//! `T SLOT OBS_HASH REWARD PERFORMANCE END EVENTS FINAL_HASH`: rewards as f32 bits (hex), END one
//! of `-`, `terminated`, `truncated`, EVENTS the bitset, FINAL_HASH the terminal observation's hash
//! (`-` unless the slot's episode ended). The action of slot `i` at step `t` is
//! `(7 t + 3 i) mod n_actions`. `OBS_HASH` is `Σ_k splitmix64(bits(obs[k]) + splitmix64(k + 1))
//! mod 2^64` (the Python test computes the same with NumPy).

use mesalab_core::config::Override;
use mesalab_core::{Seed, Streams};
use mesalab_envs::{End, Env, VecEnv, registry};

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn obs_hash(obs: &[f32]) -> u64 {
    obs.iter().enumerate().fold(0u64, |h, (k, v)| {
        h.wrapping_add(splitmix64(u64::from(v.to_bits()).wrapping_add(splitmix64(k as u64 + 1))))
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        eprintln!("usage: rust_trace ENV SPLIT SEED NUM_ENVS STEPS [key=value ...]");
        std::process::exit(2);
    }
    let parse = |i: usize, what: &str| -> u64 {
        args[i].parse().unwrap_or_else(|e| {
            eprintln!("error: {what} `{}`: {e}", args[i]);
            std::process::exit(2)
        })
    };
    let (seed, n, steps) = (parse(2, "seed"), parse(3, "num_envs") as usize, parse(4, "steps") as usize);
    let overrides: Vec<Override> =
        args[5..].iter().map(|s| Override::parse(s)).collect::<Result<_, _>>().unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(2)
        });
    let env = registry::make(&args[0], &args[1], &overrides).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    });
    let n_actions = env.spec().actions.len();
    let mut venv = VecEnv::new(env, &Streams::new(Seed(seed)), 0, n);
    let ol = venv.obs_len();
    for i in 0..n {
        println!("reset {i} {:016x}", obs_hash(&venv.obs()[i * ol..(i + 1) * ol]));
    }
    for t in 0..steps {
        let actions: Vec<usize> = (0..n).map(|i| (7 * t + 3 * i) % n_actions).collect();
        venv.step(&actions);
        for i in 0..n {
            let row = i * ol..(i + 1) * ol;
            let end = match venv.ends()[i] {
                None => "-",
                Some(End::Terminated) => "terminated",
                Some(End::Truncated) => "truncated",
            };
            let final_hash = if venv.ends()[i].is_some() {
                format!("{:016x}", obs_hash(&venv.terminal_obs()[row.clone()]))
            } else {
                "-".into()
            };
            println!(
                "{t} {i} {:016x} {:08x} {:08x} {end} {} {final_hash}",
                obs_hash(&venv.obs()[row]),
                venv.rewards()[i].to_bits(),
                venv.performance()[i].to_bits(),
                venv.events()[i].0,
            );
        }
    }
}
