//! PPO throughput on every shipped MLP config, fused kernels vs burn, against this machine's
//! single-thread sgemm, all measured in one run:
//!
//!     cargo run --release -p mesalab-experiments --example ppo_speed [-- REPS]
//!
//! For each experiment whose resolved config trains an MLP with PPO (its own `[ppo]` and
//! `[model]` sections, its own train env), it prints
//! - the PPO update's arithmetic rate: one minibatch gradient step (forward, loss, backward,
//!   gradient clipping, Adam) of the config's minibatch size on random dense observations (so
//!   the fused kernels' sparse first-layer path stays out of the FLOP count), timed over `REPS` repetitions of
//!   one update's `update_epochs × num_minibatches` steps (median); GFLOP/s counts the matmul
//!   FLOPs of forward + backward, and the share of the sgemm reference is printed beside it;
//! - end-to-end training env steps/s (rollout + GAE + update) over a fixed number of updates, with
//!   `ppo.kernel = auto` (fused) and `burn`, and their ratio.
//!
//! The sgemm reference is a 512×512×512 single-thread product through the same `gemm` crate (the
//! best case for the machine's vector units), re-measured just before each row so both sides of
//! the percentage see the same machine load. Medians of repeated timings; the machine is shared,
//! so read ratios rather than absolute figures.

use mesalab_core::{Seed, Streams};
use mesalab_experiments::registry::{self, EXPERIMENTS};
use mesalab_kernels::{Mat, matmul};
use mesalab_nn::device::cpu_autodiff;
use mesalab_nn::policy::{AnyPolicy, PolicyConfig, PolicyKind};
use mesalab_train::ppo::{self, BurnLearner, FusedLearner, Kernel, Learner, Minibatch, PpoConfig};
use rand::Rng;
use std::ops::ControlFlow;
use std::time::Instant;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Single-thread sgemm GFLOP/s at 512³ (median of `reps` products after a warm-up).
fn sgemm_gflops(reps: usize) -> f64 {
    let n = 512;
    let (a, b) = (vec![0.5f32; n * n], vec![0.25f32; n * n]);
    let mut c = vec![0.0f32; n * n];
    matmul(n, n, n, Mat::n(&a), Mat::n(&b), &mut c, false);
    let times = (0..reps)
        .map(|_| {
            let t = Instant::now();
            matmul(n, n, n, Mat::n(&a), Mat::n(&b), &mut c, false);
            t.elapsed().as_secs_f64()
        })
        .collect();
    2.0 * (n * n * n) as f64 / median(times) / 1e9
}

/// Median seconds per gradient step of `learner` on random minibatches of `mb` rows.
fn step_seconds<L: Learner<AnyPolicy>>(
    learner: &mut L,
    config: &PpoConfig,
    obs_len: usize,
    actions: usize,
    mb: usize,
    reps: usize,
) -> f64 {
    let mut rng = Streams::new(Seed(7)).stream("bench");
    let obs: Vec<f32> = (0..mb * obs_len).map(|_| rng.random_range(0.0f32..1.0)).collect();
    let acts: Vec<usize> = (0..mb).map(|_| rng.random_range(0..actions)).collect();
    let (old_logprob, adv, returns, old_values): (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) = (
        vec![-(actions as f32).ln(); mb],
        (0..mb).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
        (0..mb).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
        vec![0.0; mb],
    );
    let batch = Minibatch {
        obs: &obs,
        actions: &acts,
        old_logprob: &old_logprob,
        advantages: &adv,
        returns: &returns,
        old_values: &old_values,
    };
    let steps = config.update_epochs * config.num_minibatches;
    let mut one_update = || {
        let t = Instant::now();
        for _ in 0..steps {
            let report = learner.loss(&batch, config);
            std::hint::black_box(report.scalars);
            learner.apply(1e-4, config.max_grad_norm);
        }
        t.elapsed().as_secs_f64() / steps as f64
    };
    one_update(); // warm-up
    median((0..reps).map(|_| one_update()).collect())
}

/// Env steps/s of `updates` PPO updates with `kernel` (rollout, GAE and update).
fn train_sps(config: &PpoConfig, env: mesalab_envs::AnyEnv, policy: AnyPolicy, kernel: Kernel, updates: usize) -> f64 {
    let config = PpoConfig { kernel, total_timesteps: (config.batch_size() * updates) as u64, ..config.clone() };
    let streams = Streams::new(Seed(1));
    let t = Instant::now();
    let trained = ppo::train(&config, env, policy, &streams, |_, _| ControlFlow::Continue(())).expect("PPO trains");
    (trained.logs.last().expect("logs").global_step as f64) / t.elapsed().as_secs_f64()
}

fn main() -> anyhow::Result<()> {
    let reps: usize = std::env::args().nth(1).map_or(Ok(9), |s| s.parse())?;
    println!("sgemm: 512x512x512 on 1 thread, re-measured before each row (median of 9)");
    println!(
        "{:<18} {:>7} {:>5} {:>12} {:>13} {:>13} {:>8} {:>10} {:>9} {:>11} {:>11} {:>6}",
        "experiment",
        "obs_len",
        "mb",
        "fused us/st",
        "fused GFLOP/s",
        "sgemm GFLOP/s",
        "% sgemm",
        "burn us/st",
        "step ×",
        "fused sps",
        "burn sps",
        "sps ×"
    );
    for exp in EXPERIMENTS {
        let runner = registry::runner_of(exp.config_path, exp.config)?;
        let loaded = runner.load(exp.config_path, exp.config, &[], false)?;
        let resolved: toml::Table = toml::from_str(&loaded.resolved_toml()?)?;
        let (Some(ppo_table), Some(model_table)) = (resolved.get("ppo"), resolved.get("model")) else { continue };
        let config: PpoConfig = ppo_table.clone().try_into()?;
        let model: PolicyConfig = model_table.clone().try_into()?;
        if model.kind != PolicyKind::Mlp {
            continue;
        }
        let env = loaded.split_env("train")?;
        let spec = mesalab_envs::Env::spec(&env).clone();
        let policy =
            model.init(spec.obs_shape, spec.actions.len(), &mut Streams::new(Seed(1)).stream("init"), &cpu_autodiff());
        let (obs_len, actions, mb) = (spec.obs_len(), spec.actions.len(), config.minibatch_size());

        let sgemm = sgemm_gflops(9);
        let mut fused = FusedLearner::new(policy.clone(), &config, None).expect("an MLP").expect("fresh");
        let flops = fused.step_flops(mb) as f64;
        let fused_s = step_seconds(&mut fused, &config, obs_len, actions, mb, reps);
        let mut burn = BurnLearner::new(policy.clone(), &config, None).expect("fresh");
        let burn_s = step_seconds(&mut burn, &config, obs_len, actions, mb, reps.min(5));
        let updates = 8;
        let fused_sps =
            median((0..3).map(|_| train_sps(&config, env.clone(), policy.clone(), Kernel::Auto, updates)).collect());
        let burn_sps =
            median((0..3).map(|_| train_sps(&config, env.clone(), policy.clone(), Kernel::Burn, updates)).collect());
        let gflops = flops / fused_s / 1e9;
        println!(
            "{:<18} {:>7} {:>5} {:>12.1} {:>13.1} {:>13.1} {:>7.0}% {:>10.1} {:>8.1}× {:>11.0} {:>11.0} {:>5.1}×",
            exp.name,
            obs_len,
            mb,
            fused_s * 1e6,
            gflops,
            sgemm,
            100.0 * gflops / sgemm,
            burn_s * 1e6,
            burn_s / fused_s,
            fused_sps,
            burn_sps,
            fused_sps / burn_sps
        );
    }
    Ok(())
}
