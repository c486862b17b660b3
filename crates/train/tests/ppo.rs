//! PPO end to end: learning on cartpole-v1 (the CleanRL bar), reproducibility, errors, truncation
//! bootstrapping, the CNN policy on a grid env and evaluation on another split.
//!
//! The learning test is a real release-mode test: `cargo test --release -p mesalab-train`.

use burn::module::Module;
use mesalab_core::{Seed, StreamRng, Streams};
use mesalab_envs::{End, Env, EnvSpec, Events, Step, VecEnv, registry};
use mesalab_nn::device::{cpu, cpu_autodiff};
use mesalab_nn::policy::{CnnPolicy, CnnPolicyConfig, MlpPolicy, MlpPolicyConfig, Policy};
use mesalab_train::ppo::{self, ActionSelection, Kernel, PpoConfig, PpoError, UpdateLog};
use std::collections::VecDeque;
use std::ops::ControlFlow;

fn mlp_for(env: &impl Env, streams: &Streams) -> MlpPolicy {
    let spec = env.spec();
    MlpPolicy::init(
        &MlpPolicyConfig::default(),
        spec.obs_len(),
        spec.actions.len(),
        &mut streams.stream("init"),
        &cpu_autodiff(),
    )
}

/// Trains CleanRL's default PPO on cartpole-v1 for up to 500k steps; returns the env step at which
/// the recent return (episodes finished in the last 10 updates = 5,120 steps, count-weighted)
/// first reached 475, or `None`, and the best recent return seen.
fn steps_to_solve(seed: u64) -> (Option<u64>, f64) {
    let env = registry::make("cartpole-v1", "train", &[]).unwrap();
    let streams = Streams::new(Seed(seed));
    let policy = mlp_for(&env, &streams);
    let mut window: VecDeque<(usize, f64)> = VecDeque::new();
    let (mut solved, mut best) = (None, 0.0f64);
    ppo::train(&PpoConfig::default(), env, policy, &streams, |log, _| {
        window.push_back((log.episodes.count, log.episodes.mean_return.unwrap_or(0.0)));
        if window.len() > 10 {
            window.pop_front();
        }
        let n: usize = window.iter().map(|(c, _)| c).sum();
        let recent = window.iter().map(|(c, m)| *c as f64 * m).sum::<f64>() / n.max(1) as f64;
        best = best.max(recent);
        if window.len() == 10 && recent >= 475.0 {
            solved = Some(log.global_step);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })
    .unwrap();
    (solved, best)
}

/// CleanRL's bar: return ≥ 475 within 500k steps in at least 4 of 5 seeds. Each run stops once it
/// gets there (typically 150–300k steps, ~10 s each in release mode on one core).
#[test]
fn cartpole_reaches_475_within_500k_steps_in_4_of_5_seeds() {
    let results: Vec<_> = (1..=5).map(|seed| (seed, steps_to_solve(seed))).collect();
    for (seed, (solved, best)) in &results {
        eprintln!("seed {seed}: solved at {solved:?} steps, best recent return {best:.1}");
    }
    let solved = results.iter().filter(|(_, (s, _))| s.is_some()).count();
    assert!(solved >= 4, "only {solved} of 5 seeds reached 475: {results:?}");
}

fn short_config() -> PpoConfig {
    PpoConfig { num_envs: 2, num_steps: 64, total_timesteps: 2048, ..PpoConfig::default() }
}

fn run_short(seed: u64) -> Vec<UpdateLog> {
    let env = registry::make("cartpole-v1", "train", &[]).unwrap();
    let streams = Streams::new(Seed(seed));
    let policy = mlp_for(&env, &streams);
    let trained = ppo::train(&short_config(), env, policy, &streams, |_, _| ControlFlow::Continue(())).unwrap();
    trained.logs.into_iter().map(|l| UpdateLog { sps: 0.0, ..l }).collect()
}

/// The model's parameters as bits, in visiting order, for exact comparisons.
fn weight_bits(policy: &MlpPolicy) -> Vec<u32> {
    struct Bits(Vec<u32>);
    impl burn::module::ModuleVisitor for Bits {
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<burn::tensor::Tensor<D>>) {
            self.0.extend(p.val().into_data().try_to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()));
        }
    }
    let mut bits = Bits(Vec::new());
    policy.visit(&mut bits);
    bits.0
}

#[test]
fn training_resumed_from_a_saved_state_equals_an_uninterrupted_run() {
    for kernel in [Kernel::Auto, Kernel::Burn] {
        resume_equals_uninterrupted(kernel);
    }
}

fn resume_equals_uninterrupted(kernel: Kernel) {
    let env = registry::make("keys-chests-v1", "train", &[]).unwrap();
    let config = PpoConfig { num_envs: 3, num_steps: 32, total_timesteps: 32 * 3 * 12, kernel, ..PpoConfig::default() };
    let streams = Streams::new(Seed(3));
    let whole =
        ppo::train(&config, env.clone(), mlp_for(&env, &streams), &streams, |_, _| ControlFlow::Continue(())).unwrap();
    // Stop after update 5 with the state saved there, then continue from the file.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("state.bin");
    let first = ppo::train_resumable(&config, env.clone(), mlp_for(&env, &streams), &streams, None, |log, _, save| {
        if log.update == 5 {
            let mut file = mesalab_train::checkpoint::StateFile::new();
            save(&mut file).unwrap();
            file.write(&path).unwrap();
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })
    .unwrap();
    assert!(first.stopped_early && first.logs.len() == 5);
    let file = mesalab_train::checkpoint::StateFile::read(&path).unwrap();
    // A differently initialised policy: every weight must come from the file.
    let other_init = mlp_for(&env, &Streams::new(Seed(99)));
    let rest = ppo::train_resumable(&config, env.clone(), other_init, &streams, Some(&file), |_, _, _| {
        ControlFlow::Continue(())
    })
    .unwrap();
    let no_clock = |logs: &[UpdateLog]| {
        format!("{:?}", logs.iter().map(|l| UpdateLog { sps: 0.0, ..l.clone() }).collect::<Vec<_>>())
    };
    assert_eq!(rest.logs.len(), 12, "{kernel:?}");
    assert_eq!(no_clock(&whole.logs), no_clock(&rest.logs), "{kernel:?}");
    assert_eq!(weight_bits(&whole.model), weight_bits(&rest.model), "{kernel:?}");
    // Other settings than the state's are refused, the other kernel among them.
    let other_kernel = if kernel == Kernel::Auto { Kernel::Burn } else { Kernel::Auto };
    for other in
        [PpoConfig { learning_rate: 1e-3, ..config.clone() }, PpoConfig { kernel: other_kernel, ..config.clone() }]
    {
        let err =
            ppo::train_resumable(&other, env.clone(), mlp_for(&env, &streams), &streams, Some(&file), |_, _, _| {
                ControlFlow::Continue(())
            })
            .unwrap_err();
        assert!(err.to_string().contains("other PPO settings"), "{err}");
    }
    if kernel == Kernel::Burn {
        // A state from before `ppo.kernel` existed (its settings read as `auto`) holds burn's
        // optimizer: resuming it on the fused kernels is refused with the setting to use.
        let mut progress: ppo::PpoProgress = file.get(ppo::PROGRESS_SECTION).unwrap();
        progress.config.kernel = Kernel::Auto;
        let mut old = mesalab_train::checkpoint::StateFile::read(&path).unwrap();
        old.put(ppo::PROGRESS_SECTION, &progress).unwrap();
        let auto = PpoConfig { kernel: Kernel::Auto, ..config.clone() };
        let err = ppo::train_resumable(&auto, env.clone(), mlp_for(&env, &streams), &streams, Some(&old), |_, _, _| {
            ControlFlow::Continue(())
        })
        .unwrap_err();
        assert!(err.to_string().contains(r#"ppo.kernel="burn""#), "{err}");
    }
}

#[test]
fn same_seed_gives_identical_logs() {
    let (a, b, c) = (run_short(7), run_short(7), run_short(8));
    assert_eq!(a.len(), 16);
    // Debug strings compare NaN (explained variance of a constant batch) as equal.
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert_ne!(format!("{a:?}"), format!("{c:?}"));
    let last = a.last().unwrap();
    assert_eq!(last.global_step, 2048);
    assert!(last.learning_rate > 0.0 && last.learning_rate < 2.5e-4 / 8.0, "annealed: {}", last.learning_rate);
    assert!(a.iter().all(|l| l.entropy > 0.0 && l.entropy <= 2f32.ln() + 1e-6 && l.epochs == 4));
    let episodes: usize = a.iter().map(|l| l.episodes.count).sum();
    assert!(episodes > 20, "{episodes}");
    let with_eps = a.iter().find(|l| l.episodes.count > 0).unwrap();
    let names: Vec<_> = with_eps.episodes.event_rates.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["pole_fell", "cart_out"]);
    assert_eq!(with_eps.episodes.terminated_rate, Some(1.0));
    assert_eq!(with_eps.episodes.mean_return, with_eps.episodes.mean_performance);
}

#[test]
fn bad_hyperparameters_and_mismatched_policies_fail_before_training() {
    let env = registry::make("cartpole-v1", "train", &[]).unwrap();
    let streams = Streams::new(Seed(1));
    let config = PpoConfig { num_minibatches: 3, ..PpoConfig::default() };
    let mut called = false;
    let err = ppo::train(&config, env.clone(), mlp_for(&env, &streams), &streams, |_, _| {
        called = true;
        ControlFlow::Continue(())
    })
    .unwrap_err();
    assert!(!called);
    let msg = err.to_string();
    assert!(matches!(err, PpoError::Config(_)));
    assert!(msg.contains("`num_minibatches`") && msg.contains("512"), "{msg}");
    let config = PpoConfig { gamma: 1.01, ..PpoConfig::default() };
    let err = ppo::train(&config, env.clone(), mlp_for(&env, &streams), &streams, |_, _| ControlFlow::Continue(()));
    assert!(err.unwrap_err().to_string().contains("`gamma`: must be in [0, 1]"));
    let wrong = MlpPolicy::init(&MlpPolicyConfig::default(), 5, 2, &mut streams.stream("init"), &cpu_autodiff());
    let err = ppo::train(&PpoConfig::default(), env, wrong, &streams, |_, _| ControlFlow::Continue(())).unwrap_err();
    assert!(err.to_string().contains("reads 5 floats per observation"), "{err}");
}

/// One-float observation (always 1.0), two actions, reward 1 per step; episodes end with `end`
/// after `len` steps; the reward becomes NaN on global step `nan_at` (counted per slot).
#[derive(Clone)]
struct ToyEnv {
    spec: EnvSpec,
    end: End,
    len: u32,
    nan_at: Option<u32>,
}

impl ToyEnv {
    fn new(end: End, len: u32, nan_at: Option<u32>) -> Self {
        let spec = EnvSpec {
            name: "toy-v1",
            actions: &["a", "b"],
            channels: vec!["one"],
            obs_shape: [1, 1, 1],
            events: &[],
            max_steps: len,
        };
        Self { spec, end, len, nan_at }
    }
}

impl Env for ToyEnv {
    /// (steps this episode, steps since the slot was created)
    type State = (u32, u32);
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }
    fn reset(&self, _rng: &mut StreamRng) -> (u32, u32) {
        (0, 0)
    }
    fn step(&self, state: &mut (u32, u32), _action: usize, _rng: &mut StreamRng) -> Step {
        state.0 += 1;
        state.1 += 1;
        let reward = if Some(state.1) == self.nan_at { f32::NAN } else { 1.0 };
        let end = (state.0 >= self.len).then_some(self.end);
        Step { reward, performance: 0.0, end, events: Events::default() }
    }
    fn write_obs(&self, _state: &(u32, u32), out: &mut [f32]) {
        out[0] = 1.0;
    }
    fn render_ascii(&self, state: &(u32, u32)) -> String {
        format!("{}", state.0)
    }
    fn render_svg(&self, _state: &(u32, u32)) -> String {
        "<svg></svg>".into()
    }
}

/// The value the critic learns for the constant observation on a 5-step toy episode with γ = 0.9.
fn learned_value(end: End) -> f32 {
    let env = ToyEnv::new(end, 5, None);
    let streams = Streams::new(Seed(3));
    let policy = mlp_for(&env, &streams);
    let config = PpoConfig {
        num_envs: 4,
        num_steps: 32,
        total_timesteps: 4 * 32 * 150,
        learning_rate: 1e-2,
        anneal_lr: false,
        gamma: 0.9,
        clip_vloss: false,
        vf_coef: 1.0,
        ..PpoConfig::default()
    };
    let trained = ppo::train(&config, env, policy, &streams, |_, _| ControlFlow::Continue(())).unwrap();
    let obs = burn::tensor::Tensor::from_data(burn::tensor::TensorData::new(vec![1.0f32], [1, 1]), &cpu());
    trained.model.valid().value(obs).into_scalar::<f32>()
}

/// Truncation bootstraps from the terminal observation: with a constant observation the truncated
/// task is the infinite-horizon one, V = 1 / (1 − γ) = 10. Termination does not: V is the mean
/// remaining return over the 5 steps, (1 + 1.9 + 2.71 + 3.44 + 4.10) / 5 ≈ 2.63.
#[test]
fn truncation_bootstraps_and_termination_does_not() {
    let truncated = learned_value(End::Truncated);
    let terminated = learned_value(End::Terminated);
    assert!((truncated - 10.0).abs() < 1.0, "truncated: V = {truncated}, expected ≈ 10");
    assert!((terminated - 2.63).abs() < 0.6, "terminated: V = {terminated}, expected ≈ 2.63");
}

#[test]
fn a_nan_loss_stops_training_with_the_last_good_model_and_the_logs() {
    // One env, 16 steps per update: the NaN reward on step 40 lands in update 3.
    let env = ToyEnv::new(End::Truncated, 1000, Some(40));
    let streams = Streams::new(Seed(1));
    let policy = mlp_for(&env, &streams);
    let config =
        PpoConfig { num_envs: 1, num_steps: 16, total_timesteps: 160, num_minibatches: 2, ..PpoConfig::default() };
    let mut seen = 0;
    let err = ppo::train(&config, env, policy, &streams, |_, _| {
        seen += 1;
        ControlFlow::Continue(())
    })
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("diverged in update 3") && msg.contains("NaN") && msg.contains("2 update logs"), "{msg}");
    let PpoError::Diverged(d) = err else { panic!("{msg}") };
    assert_eq!((d.update, d.logs.len(), seen), (3, 2, 2));
    let obs = burn::tensor::Tensor::from_data(burn::tensor::TensorData::new(vec![1.0f32], [1, 1]), &cpu());
    assert!(d.model.valid().value(obs).into_scalar::<f32>().is_finite());
}

#[test]
fn cnn_policy_trains_on_coin_corridor_and_evaluates_on_deploy() {
    let env = registry::make("coin-corridor-v1", "train", &[]).unwrap();
    let spec = env.spec().clone();
    let streams = Streams::new(Seed(5));
    let cnn = CnnPolicyConfig { channels: vec![8, 16], res_blocks: 1, pool: true, hidden: 32 };
    // Built on the plain device: `train` moves it to autodiff.
    let policy = CnnPolicy::init(&cnn, spec.obs_shape, spec.actions.len(), &mut streams.stream("init"), &cpu());
    let config = PpoConfig { num_envs: 4, num_steps: 32, total_timesteps: 256, ..PpoConfig::default() };
    let trained = ppo::train(&config, env, policy, &streams, |_, _| ControlFlow::Continue(())).unwrap();
    assert_eq!(trained.logs.len(), 2);
    assert!(trained.logs.iter().all(|l| l.policy_loss.is_finite() && l.value_loss.is_finite()));
    // Evaluate on another split, with its own env streams (first index far from training's).
    let deploy = registry::make("coin-corridor-v1", "deploy", &[]).unwrap();
    let eval_streams = Streams::new(Seed(5));
    let mut envs = VecEnv::new(deploy, &eval_streams, 1 << 32, 3);
    let mut rng = eval_streams.stream("eval-actions");
    let eval = ppo::evaluate(&trained.model, &mut envs, 2, ActionSelection::Sample, &mut rng).unwrap();
    assert_eq!(eval.episodes.len(), 6);
    assert_eq!(eval.summary.count, 6);
    assert_eq!(eval.summary.event_rates.len(), spec.events.len());
    let greedy = ppo::evaluate(&trained.model, &mut envs, 1, ActionSelection::Greedy, &mut rng).unwrap();
    assert_eq!(greedy.summary.count, 3);
    let cartpole = registry::make("cartpole-v1", "train", &[]).unwrap();
    let mut wrong = VecEnv::new(cartpole, &eval_streams, 0, 1);
    assert!(ppo::evaluate(&trained.model, &mut wrong, 1, ActionSelection::Sample, &mut rng).is_err());
}
