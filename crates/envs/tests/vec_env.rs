//! VecEnv determinism: results depend only on (seed, env index), never on batch split or threads.

use mesalab_core::{Seed, Streams};
use mesalab_envs::{AnyEnv, End, Env, VecEnv, registry};

/// Fixed per-(step, index) actions so that every arrangement gets the same inputs.
fn action(t: usize, global: usize, n_actions: usize) -> usize {
    (t * 31 + global * 17 + (t * global) % 5) % n_actions
}

type Trace = Vec<(Vec<f32>, f32, f32, Option<End>, u32, Vec<f32>)>;

fn run(venv: &mut VecEnv<AnyEnv>, first: usize, steps: usize, threads: usize) -> Vec<Trace> {
    let n = venv.len();
    let na = venv.env().spec().actions.len();
    let ol = venv.obs_len();
    let mut out = vec![Vec::new(); n];
    for t in 0..steps {
        let actions: Vec<usize> = (0..n).map(|i| action(t, first + i, na)).collect();
        venv.step_parallel(&actions, threads);
        for (i, tr) in out.iter_mut().enumerate() {
            let end = venv.ends()[i];
            let term = if end.is_some() { venv.terminal_obs()[i * ol..(i + 1) * ol].to_vec() } else { vec![] };
            tr.push((
                venv.obs()[i * ol..(i + 1) * ol].to_vec(),
                venv.rewards()[i],
                venv.performance()[i],
                end,
                venv.events()[i].0,
                term,
            ));
        }
    }
    out
}

#[test]
fn split_batches_and_threads_give_identical_trajectories() {
    for name in ["cheese-maze-v1", "coin-corridor-v1", "keys-chests-v1", "monster-shield-v1"] {
        let env =
            registry::make(name, "train", &[mesalab_core::config::Override::parse("max_steps=40").unwrap()]).unwrap();
        let streams = Streams::new(Seed(42));
        let mut all = VecEnv::new(env.clone(), &streams, 0, 8);
        let mut lo = VecEnv::new(env.clone(), &streams, 0, 4);
        let mut hi = VecEnv::new(env.clone(), &streams, 4, 4);
        let mut par = VecEnv::new(env.clone(), &streams, 0, 8);
        assert_eq!(all.obs()[..4 * all.obs_len()], lo.obs()[..]);
        let a = run(&mut all, 0, 120, 1);
        let mut b = run(&mut lo, 0, 120, 1);
        b.extend(run(&mut hi, 4, 120, 1));
        let c = run(&mut par, 0, 120, 3);
        assert_eq!(a, b, "{name}: batch split changed trajectories");
        assert_eq!(a, c, "{name}: threads changed trajectories");
        assert!(a.iter().flatten().any(|s| s.3.is_some()), "{name}: some episode should end in 120 steps");
    }
}

#[test]
fn finished_episodes_match_the_step_buffers_and_terminal_obs_differs_from_reset_obs() {
    let ov = |s: &str| mesalab_core::config::Override::parse(s).unwrap();
    // Large mazes only, so that a fresh level never repeats the terminal picture by chance.
    let env = registry::make("cheese-maze-v1", "train", &[ov("max_steps=10"), ov("min_size=13")]).unwrap();
    let mut v = VecEnv::new(env, &Streams::new(Seed(1)), 0, 3);
    let mut returns = [0.0f64; 3];
    let mut finished = 0;
    for t in 0..35 {
        v.step(&[t % 4, (t + 1) % 4, (t + 2) % 4]);
        for (ret, r) in returns.iter_mut().zip(v.rewards()) {
            *ret += f64::from(*r);
        }
        for &(i, st) in v.finished() {
            assert!(v.ends()[i].is_some());
            assert_eq!(st.episode_return, returns[i]);
            assert!(st.length <= 10);
            let ol = v.obs_len();
            assert_ne!(v.terminal_obs()[i * ol..(i + 1) * ol], v.obs()[i * ol..(i + 1) * ol]);
            returns[i] = 0.0;
            finished += 1;
        }
        assert_eq!(v.finished().len(), v.ends().iter().filter(|e| e.is_some()).count());
    }
    assert!(finished >= 9, "each slot times out every 10 steps ({finished})");
}

#[test]
fn a_restored_snapshot_continues_exactly_like_the_original() {
    for name in registry::names() {
        let env = registry::make(name, "train", &[]).unwrap();
        let streams = Streams::new(Seed(9));
        let mut original = VecEnv::new(env.clone(), &streams, 3, 6);
        run(&mut original, 0, 37, 1);
        let snapshot = original.snapshot();
        let mut restored = VecEnv::restore(env.clone(), &streams, 3, &snapshot).unwrap();
        assert_eq!(original.obs(), restored.obs(), "{name}: observations after restore");
        for i in 0..6 {
            assert_eq!(original.running_stats(i), restored.running_stats(i), "{name}: slot {i} stats");
        }
        assert_eq!(run(&mut original, 37, 150, 1), run(&mut restored, 37, 150, 1), "{name}: futures differ");
        // A snapshot replayed on another seed is refused, or regenerates another state: never a panic.
        let other = VecEnv::restore(env, &Streams::new(Seed(10)), 3, &snapshot);
        if let Ok(o) = other {
            assert_eq!(o.len(), 6);
        }
    }
}
