//! PPO on `sokoban-mini-v1` (train split) with a DRC, GRU or MLP policy, printing the training
//! solve rate and env steps/s as it goes: a quick way to size a Sokoban run before an experiment.
//!
//!     cargo run --release -p mesalab-train --example recurrent_sokoban -- [drc|gru|mlp|cnn] [SEED] [TOTAL_TIMESTEPS]
//!
//! PPO settings: 32 envs × 32 steps, 4 minibatches, 4 epochs, lr 5e-4, γ 0.97.

use mesalab_core::{Seed, Streams};
use mesalab_envs::Env;
use mesalab_envs::sokoban::{EV_SOLVED, Sokoban, SokobanParams};
use mesalab_nn::device::cpu_autodiff;
use mesalab_nn::policy::{
    CnnPolicy, CnnPolicyConfig, DrcPolicy, DrcPolicyConfig, MlpPolicy, MlpPolicyConfig, RecurrentPolicy,
    RecurrentPolicyConfig,
};
use mesalab_train::ppo::{self, PpoConfig, UpdateLog};
use std::ops::ControlFlow;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arch = args.first().map_or("drc", String::as_str).to_string();
    let seed: u64 = args.get(1).map_or(Ok(1), |s| s.parse())?;
    let total: u64 = args.get(2).map_or(Ok(200_000), |s| s.parse())?;
    let config = PpoConfig {
        num_envs: 32,
        num_steps: 32,
        num_minibatches: 4,
        total_timesteps: total,
        learning_rate: 5e-4,
        gamma: 0.97,
        // SOKOBAN_KERNEL=burn trains the MLP on burn's autodiff instead of the fused kernels.
        kernel: if std::env::var("SOKOBAN_KERNEL").as_deref() == Ok("burn") {
            ppo::Kernel::Burn
        } else {
            ppo::Kernel::Auto
        },
        ..PpoConfig::default()
    };
    // Optional env overrides for sizing: SOKOBAN_BOXES, SOKOBAN_MAX_LEN.
    let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u32>().ok());
    let mut params = SokobanParams::train();
    if let Some(b) = var("SOKOBAN_BOXES") {
        params.num_boxes = b as usize;
    }
    if let Some(m) = var("SOKOBAN_MAX_LEN") {
        params.max_len = m;
    }
    let env = Sokoban::new(params)?;
    let spec = env.spec().clone();
    let streams = Streams::new(Seed(seed));
    let mut rng = streams.stream("init");
    let start = Instant::now();
    let every = (config.num_updates() / 20).max(1);
    let print = |log: &UpdateLog| {
        if log.update.is_multiple_of(every) {
            let solved = log.episodes.event_rates.get(EV_SOLVED).map_or(f64::NAN, |(_, r)| *r);
            println!(
                "arch={arch} step={} solved={solved:.3} return={:.2} entropy={:.2} sps={:.0} wall={:.1}s",
                log.global_step,
                log.episodes.mean_return.unwrap_or(f64::NAN),
                log.entropy,
                log.sps,
                start.elapsed().as_secs_f64()
            );
        }
    };
    let shape = [spec.obs_shape[0], spec.obs_shape[1], spec.obs_shape[2]];
    match arch.as_str() {
        "drc" => {
            let p = DrcPolicy::init(&DrcPolicyConfig::default(), shape, spec.actions.len(), &mut rng, &cpu_autodiff());
            ppo::train_recurrent(&config, env, p, &streams, None, |log, _, _| {
                print(log);
                ControlFlow::Continue(())
            })
            .map_err(|e| e.to_string())?;
        }
        "gru" => {
            let cfg = RecurrentPolicyConfig { encoder: vec![128], hidden: 128, ..Default::default() };
            let p = RecurrentPolicy::init(&cfg, spec.obs_len(), spec.actions.len(), &mut rng, &cpu_autodiff());
            ppo::train_recurrent(&config, env, p, &streams, None, |log, _, _| {
                print(log);
                ControlFlow::Continue(())
            })
            .map_err(|e| e.to_string())?;
        }
        "mlp" => {
            let cfg = MlpPolicyConfig { hidden: vec![128, 128], ..Default::default() };
            let p = MlpPolicy::init(&cfg, spec.obs_len(), spec.actions.len(), &mut rng, &cpu_autodiff());
            ppo::train(&config, env, p, &streams, |log, _| {
                print(log);
                ControlFlow::Continue(())
            })
            .map_err(|e| e.to_string())?;
        }
        "cnn" => {
            let cfg = CnnPolicyConfig { channels: vec![16, 32], pool: false, hidden: 128, ..Default::default() };
            let p = CnnPolicy::init(&cfg, shape, spec.actions.len(), &mut rng, &cpu_autodiff());
            ppo::train(&config, env, p, &streams, |log, _| {
                print(log);
                ControlFlow::Continue(())
            })
            .map_err(|e| e.to_string())?;
        }
        other => return Err(format!("unknown arch `{other}`: use drc, gru, mlp or cnn").into()),
    }
    Ok(())
}
