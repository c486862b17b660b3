//! PPO on `cartpole-v1` with CleanRL `ppo.py`'s defaults, printing return vs steps.
//!
//!     cargo run --release -p mesalab-train --example ppo_cartpole -- [SEED] [TOTAL_TIMESTEPS] [EVERY]
//!
//! At the first update at or past each multiple of EVERY steps (default 50000) it prints the
//! recent return: the mean return of the training episodes that finished in the last 10 updates
//! (5,120 env steps) — the metric `bench/cleanrl_ppo.py` prints too — then the wall-clock time.
//! Output lines are `key=value` for `bench/cleanrl_side_by_side.sh`.

use mesalab_core::{Seed, Streams};
use mesalab_envs::{Env, registry};
use mesalab_nn::device::cpu_autodiff;
use mesalab_nn::policy::{MlpPolicy, MlpPolicyConfig};
use mesalab_train::ppo::{self, PpoConfig};
use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| args.get(i).map_or(Ok(default), |s| s.parse::<u64>());
    let (seed, total, every) = (arg(0, 1)?, arg(1, 500_000)?, arg(2, 50_000)?);

    let config = PpoConfig { total_timesteps: total, ..PpoConfig::default() };
    let env = registry::make("cartpole-v1", "train", &[])?;
    let streams = Streams::new(Seed(seed));
    let spec = env.spec().clone();
    let policy = MlpPolicy::init(
        &MlpPolicyConfig::default(),
        spec.obs_len(),
        spec.actions.len(),
        &mut streams.stream("init"),
        &cpu_autodiff(),
    );

    let start = Instant::now();
    let mut window: VecDeque<(usize, f64)> = VecDeque::new();
    let mut next_checkpoint = every;
    println!("impl=mesalab seed={seed} total_timesteps={total}");
    let trained = ppo::train(&config, env, policy, &streams, |log, _| {
        // (episode count, mean return) of the last 10 updates.
        window.push_back((log.episodes.count, log.episodes.mean_return.unwrap_or(0.0)));
        if window.len() > 10 {
            window.pop_front();
        }
        if log.global_step >= next_checkpoint {
            let n: usize = window.iter().map(|(c, _)| c).sum();
            let r = window.iter().map(|(c, m)| *c as f64 * m).sum::<f64>() / n as f64;
            println!("step={} return={r:.1} sps={:.0}", log.global_step, log.sps);
            while next_checkpoint <= log.global_step {
                next_checkpoint += every;
            }
        }
        ControlFlow::Continue(())
    })?;
    let last = trained.logs.last().expect("at least one update");
    println!(
        "done impl=mesalab seed={seed} steps={} wall_s={:.2} sps={:.0}",
        last.global_step,
        start.elapsed().as_secs_f64(),
        last.sps
    );
    Ok(())
}
