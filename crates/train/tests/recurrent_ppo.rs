//! Recurrent PPO end to end on the T-maze memory task: a GRU and an LSTM solve what a memoryless
//! MLP cannot (its best is chance at the junction), on held-out episodes of the training
//! distribution, over several seeds; and resuming reproduces an uninterrupted run bit for bit.
//!
//! Real release-mode training: `cargo test --release -p mesalab-train --test recurrent_ppo`.

use mesalab_core::config::Validate;
use mesalab_core::{Seed, Streams};
use mesalab_envs::t_maze::{TMaze, TMazeParams};
use mesalab_envs::{Env, PerState, VecEnv};
use mesalab_nn::device::cpu_autodiff;
use mesalab_nn::policy::{Cell, MlpPolicy, MlpPolicyConfig, RecurrentPolicy, RecurrentPolicyConfig};
use mesalab_train::checkpoint::StateFile;
use mesalab_train::ppo::{self, ActionSelection, PpoConfig, PpoError, UpdateLog};
use std::ops::ControlFlow;

/// Small rollouts of many envs: T-maze episodes last 2–40 steps.
fn config(total_timesteps: u64) -> PpoConfig {
    PpoConfig {
        num_envs: 16,
        num_steps: 32,
        total_timesteps,
        learning_rate: 1e-3,
        num_minibatches: 4,
        ent_coef: 0.01,
        ..PpoConfig::default()
    }
}

fn recurrent(cell: Cell, env: &TMaze, streams: &Streams) -> RecurrentPolicy {
    let cfg = RecurrentPolicyConfig { cell, ..RecurrentPolicyConfig::default() };
    RecurrentPolicy::init(
        &cfg,
        env.spec().obs_len(),
        env.spec().actions.len(),
        &mut streams.stream("init"),
        &cpu_autodiff(),
    )
}

/// Success rate (share of episodes that entered the cued arm) on 400 held-out train-split episodes.
fn success(eval: &ppo::Evaluation) -> f64 {
    eval.summary.event_rates.iter().find(|(e, _)| e == "correct_arm").map(|(_, r)| *r).unwrap_or(f64::NAN)
}

fn held_out(streams: &Streams) -> VecEnv<TMaze> {
    VecEnv::new(TMaze::new(TMazeParams::train()), streams, 1 << 32, 16)
}

#[test]
fn gru_and_lstm_solve_the_t_maze_that_an_mlp_cannot() {
    let env = TMaze::new(TMazeParams::train());
    let mut rows = Vec::new();
    for seed in 1..=3u64 {
        let streams = Streams::new(Seed(seed));
        let mut rates = Vec::new();
        for cell in [Cell::Gru, Cell::Lstm] {
            let trained = ppo::train_recurrent(
                &config(60_000),
                env.clone(),
                recurrent(cell, &env, &streams),
                &streams,
                None,
                |_, _, _| ControlFlow::Continue(()),
            )
            .unwrap();
            let eval = ppo::evaluate_recurrent(
                &trained.model,
                &mut held_out(&streams),
                25,
                ActionSelection::Greedy,
                &mut streams.stream("eval-actions"),
            )
            .unwrap();
            rates.push(success(&eval));
        }
        let mlp = MlpPolicy::init(
            &MlpPolicyConfig::default(),
            env.spec().obs_len(),
            env.spec().actions.len(),
            &mut streams.stream("init"),
            &cpu_autodiff(),
        );
        let trained =
            ppo::train(&config(60_000), env.clone(), mlp, &streams, |_, _| ControlFlow::Continue(())).unwrap();
        let eval = ppo::evaluate(
            &trained.model,
            &mut held_out(&streams),
            25,
            ActionSelection::Greedy,
            &mut streams.stream("eval-actions"),
        )
        .unwrap();
        rates.push(success(&eval));
        eprintln!("seed {seed}: success gru {:.3} lstm {:.3} mlp {:.3}", rates[0], rates[1], rates[2]);
        rows.push(rates);
    }
    // The oracle (which holds the cue) on held-out levels checks the env and the success count.
    let streams = Streams::new(Seed(1));
    let mut levels = streams.stream("oracle-levels");
    let starts: Vec<_> = (0..400).map(|_| env.reset(&mut levels)).collect();
    let played = mesalab_train::rollout::play(
        &env,
        &PerState(mesalab_envs::t_maze::CueOracle),
        starts,
        &mut streams.stream("a"),
        &mut streams.stream("e"),
        |_, _| (),
        |_, _, _| {},
    );
    assert!(played.iter().all(|(stats, _)| stats.happened(mesalab_envs::t_maze::EV_CORRECT)));
    for (seed, r) in rows.iter().enumerate() {
        assert!(r[0] >= 0.95 && r[1] >= 0.95, "seed {}: a recurrent policy failed the T-maze: {r:?}", seed + 1);
        // A memoryless policy is at chance at the junction: its expected success is at most 1/2.
        assert!(r[2] <= 0.62, "seed {}: the MLP beat chance, so the task leaks the cue: {r:?}", seed + 1);
    }
}

#[test]
fn resuming_recurrent_ppo_reproduces_the_uninterrupted_run() {
    let env = TMaze::new(TMazeParams::train());
    let streams = Streams::new(Seed(5));
    let cfg = config(16 * 32 * 6);
    let all = |resume: Option<&StateFile>, stop_after: Option<usize>| {
        let mut saved = None;
        let trained = ppo::train_recurrent(
            &cfg,
            env.clone(),
            recurrent(Cell::Lstm, &env, &streams),
            &streams,
            resume,
            |log: &UpdateLog, _, save| {
                if Some(log.update) == stop_after {
                    let mut file = StateFile::new();
                    save(&mut file).unwrap();
                    saved = Some(file);
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            },
        )
        .unwrap();
        (trained, saved)
    };
    let (whole, _) = all(None, None);
    let (_, state) = all(None, Some(3));
    let (resumed, _) = all(state.as_ref(), None);
    let strip = |logs: &[UpdateLog]| logs.iter().map(|l| UpdateLog { sps: 0.0, ..l.clone() }).collect::<Vec<_>>();
    assert_eq!(strip(&whole.logs), strip(&resumed.logs));
    assert_eq!(whole.logs.len(), 6);
    // Other settings are refused.
    let other = PpoConfig { learning_rate: 5e-4, ..cfg.clone() };
    let err = ppo::train_recurrent(
        &other,
        env.clone(),
        recurrent(Cell::Lstm, &env, &streams),
        &streams,
        state.as_ref(),
        |_, _, _| ControlFlow::Continue(()),
    )
    .unwrap_err();
    assert!(matches!(err, PpoError::Resume(_)), "{err}");
}

#[test]
fn minibatches_must_be_whole_envs() {
    let env = TMaze::new(TMazeParams::train());
    let streams = Streams::new(Seed(1));
    let cfg = PpoConfig { num_envs: 6, num_minibatches: 4, num_steps: 8, ..config(6 * 8 * 4) };
    assert!(cfg.validate().is_ok(), "the feed-forward trainer accepts it");
    let err =
        ppo::train_recurrent(&cfg, env.clone(), recurrent(Cell::Gru, &env, &streams), &streams, None, |_, _, _| {
            ControlFlow::Continue(())
        })
        .unwrap_err();
    assert!(err.to_string().contains("num_minibatches") && err.to_string().contains("whole env sequences"), "{err}");
}
