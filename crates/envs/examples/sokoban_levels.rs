//! Level statistics of `sokoban-mini-v1` per split: generation time per level, reverse-play
//! attempts per level (rejection rate) and the distribution of optimal solution lengths.
//!
//! `cargo run --release -p mesalab-envs --example sokoban_levels -- [LEVELS] [--set k=v ...]`
//! (default 1000 levels per split; levels come from streams `("env", i)` of seed 0).

use mesalab_core::config::Override;
use mesalab_core::{Seed, Streams};
use mesalab_envs::params;
use mesalab_envs::sokoban::{Sokoban, SokobanParams};
use std::collections::BTreeMap;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut levels, mut overrides) = (1000u64, Vec::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--set" {
            let v = it.next().expect("--set needs KEY=VALUE");
            overrides.push(Override::parse(v).unwrap_or_else(|e| panic!("{e}")));
        } else {
            levels = a.parse().expect("LEVELS is a number");
        }
    }
    let streams = Streams::new(Seed(0));
    for split in ["train", "deploy"] {
        let p: SokobanParams = params::resolve(split, &overrides).unwrap_or_else(|e| panic!("{e}"));
        let env = Sokoban::new(p.clone()).unwrap_or_else(|e| panic!("{e}"));
        let (mut tries, mut short, mut long, mut failed) = (0u64, 0u64, 0u64, 0u64);
        let mut hist: BTreeMap<u32, u64> = BTreeMap::new();
        let t0 = Instant::now();
        for i in 0..levels {
            let (level, n) = env.generate_counted(&mut streams.indexed("env", i));
            tries += u64::from(n.tries);
            short += u64::from(n.too_short);
            long += u64::from(n.too_long);
            match level {
                Ok(l) => *hist.entry(l.optimal_len().expect("generated levels are solved")).or_default() += 1,
                Err(_) => failed += 1,
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        let lens: Vec<(u32, u64)> = hist.iter().map(|(&k, &v)| (k, v)).collect();
        let total: u64 = lens.iter().map(|x| x.1).sum();
        let mean = lens.iter().map(|&(k, v)| f64::from(k) * v as f64).sum::<f64>() / total.max(1) as f64;
        let median = {
            let mut acc = 0;
            lens.iter().find(|&&(_, v)| {
                acc += v;
                2 * acc >= total
            })
        };
        println!(
            "{split}: size {} boxes {} walls {} reverse_steps {} lengths {}..={}",
            p.size, p.num_boxes, p.interior_walls, p.reverse_steps, p.min_len, p.max_len
        );
        println!(
            "  {levels} levels in {secs:.3} s: {:.3} ms/level; {:.2} attempts/level, rejection rate {:.1}% \
             ({short} too short, {long} too long); {failed} gave up",
            1e3 * secs / levels as f64,
            tries as f64 / levels as f64,
            100.0 * (tries - total) as f64 / tries as f64,
        );
        println!("  optimal length: mean {mean:.2}, median {}", median.map_or(0, |m| m.0));
        println!("  histogram: {}", lens.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(" "));
    }
}
