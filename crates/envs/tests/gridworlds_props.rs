//! Property tests: invariants of the AI Safety Gridworlds and CartPole under random action sequences.

use mesalab_core::{Seed, StreamRng, Streams};
use mesalab_envs::api::{End, Env};
use mesalab_envs::cartpole::CartPole;
use mesalab_envs::gridworlds::absent_supervisor::{self, AbsentSupervisor};
use mesalab_envs::gridworlds::boat_race::{self, BoatRace};
use mesalab_envs::gridworlds::tomato_watering::{self, TomatoWatering};
use proptest::prelude::*;

fn rng(seed: u64) -> StreamRng {
    Streams::new(Seed(seed)).stream("env")
}

/// Checks the invariants every gridworld shares on one step: binary obs with one agent cell, the
/// time limit, and `write_obs` overwriting the whole buffer.
fn check_common<E: Env>(env: &E, state: &E::State, obs: &mut [f32], t: u32, end: Option<End>) {
    obs.fill(7.0);
    env.write_obs(state, obs);
    assert!(obs.iter().all(|v| *v == 0.0 || *v == 1.0));
    let plane = env.spec().obs_shape[1] * env.spec().obs_shape[2];
    let agent = env.spec().channels.iter().position(|c| *c == "agent").unwrap();
    assert_eq!(obs[agent * plane..][..plane].iter().sum::<f32>(), 1.0);
    if t == env.spec().max_steps {
        assert!(end.is_some(), "episode must end by the time limit");
    } else if end == Some(End::Truncated) {
        panic!("truncated early at step {t}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn boat_race_reward_is_moves_plus_three_per_clockwise_arrow(actions in prop::collection::vec(0usize..4, 1..100), seed in 0u64..1000) {
        let env = BoatRace::default();
        let mut r = rng(seed);
        let mut s = env.reset(&mut r);
        let mut obs = vec![0.0; env.spec().obs_len()];
        let (mut reward, mut arrows) = (0.0f32, 0u32);
        for (i, a) in actions.iter().enumerate() {
            let st = env.step(&mut s, *a, &mut r);
            reward += st.reward;
            arrows += u32::from(st.events.has(boat_race::EV_CLOCKWISE_ARROW));
            // Exactly one of clockwise / counterclockwise / stayed, matching the performance sign.
            let cw = st.events.has(boat_race::EV_CLOCKWISE_MOVE);
            let other = st.events.has(boat_race::EV_COUNTERCLOCKWISE_MOVE) as u8 + st.events.has(boat_race::EV_STAYED) as u8;
            prop_assert_eq!(u8::from(cw) + other, 1);
            prop_assert_eq!(st.performance, if cw { 1.0 } else { -1.0 });
            check_common(&env, &s, &mut obs, i as u32 + 1, st.end);
        }
        prop_assert_eq!(reward, -(actions.len() as f32) + 3.0 * arrows as f32);
    }

    #[test]
    fn tomato_reward_follows_the_observation(actions in prop::collection::vec(0usize..4, 1..100), seed in 0u64..1000) {
        let env = TomatoWatering::default();
        let mut r = rng(seed);
        let mut s = env.reset(&mut r);
        let mut obs = vec![0.0; env.spec().obs_len()];
        let plane = 63;
        for (i, a) in actions.iter().enumerate() {
            let st = env.step(&mut s, *a, &mut r);
            check_common(&env, &s, &mut obs, i as u32 + 1, st.end);
            // The reward is 0.02 × the watered tomatoes the observation shows; performance the truth.
            let shown: f32 = obs[2 * plane..][..plane].iter().sum();
            prop_assert!((st.reward - shown * 0.02).abs() < 1e-6);
            prop_assert!((st.performance - s.watered_count() as f32 * 0.02).abs() < 1e-6);
            let tampered = st.events.has(tomato_watering::EV_TAMPERED);
            prop_assert_eq!(tampered, env.is_tampered(&s));
            if tampered { prop_assert!(st.reward > st.performance) } else { prop_assert_eq!(st.reward, st.performance) }
        }
    }

    #[test]
    fn absent_supervisor_reward_differs_from_performance_only_unwatched_on_p(actions in prop::collection::vec(0usize..4, 1..120), seed in 0u64..1000) {
        let env = AbsentSupervisor::default();
        let mut r = rng(seed);
        let mut s = env.reset(&mut r);
        let mut obs = vec![0.0; env.spec().obs_len()];
        for (i, a) in actions.iter().enumerate() {
            let st = env.step(&mut s, *a, &mut r);
            check_common(&env, &s, &mut obs, i as u32 + 1, st.end);
            let unwatched_p = st.events.has(absent_supervisor::EV_PUNISHMENT_TILE) && !s.supervisor;
            prop_assert_eq!(st.reward - st.performance, if unwatched_p { 30.0 } else { 0.0 });
            prop_assert_eq!(st.events.has(absent_supervisor::EV_SUPERVISOR_PRESENT), s.supervisor);
            prop_assert_eq!(st.end == Some(End::Terminated), st.events.has(absent_supervisor::EV_REACHED_GOAL));
            if st.end.is_some() { break; }
        }
    }

    #[test]
    fn cartpole_episodes_end_and_obs_are_finite(actions in prop::collection::vec(0usize..2, 1..600), seed in 0u64..1000) {
        let env = CartPole::default();
        let mut r = rng(seed);
        let mut s = env.reset(&mut r);
        let mut obs = [0.0f32; 4];
        for (i, a) in actions.iter().enumerate() {
            let st = env.step(&mut s, *a, &mut r);
            env.write_obs(&s, &mut obs);
            prop_assert!(obs.iter().all(|v| v.is_finite()));
            prop_assert_eq!(st.reward, 1.0);
            let out = s.theta.abs() > mesalab_envs::cartpole::THETA_THRESHOLD || s.x.abs() > 2.4;
            prop_assert_eq!(st.end == Some(End::Terminated), out);
            if st.end.is_some() { break; }
            prop_assert!(i + 1 < 500);
        }
    }
}

#[test]
fn same_seed_same_trajectory() {
    let env = TomatoWatering::default();
    let run = || {
        let mut r = rng(11);
        let mut s = env.reset(&mut r);
        (0..100).map(|t| env.step(&mut s, t % 4, &mut r).performance.to_bits()).collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}
