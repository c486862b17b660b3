//! Property tests of level generation and dynamics invariants (proptest).

use mesalab_core::{Seed, StreamRng, Streams};
use mesalab_envs::cheese_maze::{self, CheeseMaze, CheeseMazeParams};
use mesalab_envs::coin_corridor::{self, CoinCorridor, CoinCorridorParams};
use mesalab_envs::grid::{Pos, View};
use mesalab_envs::keys_chests::{self, KeysChests, KeysChestsParams};
use mesalab_envs::monster_shield::{self, MonsterShield, MonsterShieldParams};
use mesalab_envs::{Env, EpisodeStats, registry};
use proptest::prelude::*;
use rand::Rng;

fn rng(seed: u64) -> StreamRng {
    Streams::new(Seed(seed)).stream("env")
}

/// Every value is 0 or 1, and in the full view exactly one cell has the `agent` channel set.
fn check_obs(env: &impl Env, obs: &[f32], full: bool) -> Result<(), TestCaseError> {
    let spec = env.spec();
    prop_assert_eq!(obs.len(), spec.obs_len());
    prop_assert!(obs.iter().all(|&v| v == 0.0 || v == 1.0));
    let [_, h, w] = spec.obs_shape;
    let agent = spec.channels.iter().position(|c| *c == "agent").unwrap();
    let plane = &obs[agent * h * w..(agent + 1) * h * w];
    let n = plane.iter().filter(|&&v| v == 1.0).count();
    if full {
        prop_assert_eq!(n, 1);
    } else {
        // Egocentric: the agent is always the centre cell.
        prop_assert_eq!(n, 1);
        prop_assert_eq!(plane[(h / 2) * w + w / 2], 1.0);
    }
    Ok(())
}

/// Runs `steps` random actions with auto-reset, checking observations and returning the
/// trajectory (actions, rewards, ends, events, renders) for determinism comparisons.
fn rollout<E: Env>(env: &E, seed: u64, steps: usize, full: bool) -> Result<Vec<String>, TestCaseError> {
    let mut r = rng(seed);
    let mut actions = Streams::new(Seed(seed)).stream("actions");
    let mut s = env.reset(&mut r);
    let mut obs = vec![0.0; env.spec().obs_len()];
    let mut trace = Vec::new();
    let mut t = 0u32;
    for _ in 0..steps {
        env.write_obs(&s, &mut obs);
        check_obs(env, &obs, full)?;
        let a = actions.random_range(0..env.spec().actions.len());
        let st = env.step(&mut s, a, &mut r);
        t += 1;
        prop_assert!(t <= env.spec().max_steps);
        trace.push(format!("{a} {:?} {}", st, env.render_ascii(&s)));
        if st.end.is_some() {
            if t == env.spec().max_steps {
                prop_assert!(st.end.is_some());
            }
            s = env.reset(&mut r);
            t = 0;
        }
    }
    Ok(trace)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn cheese_maze_levels_are_solvable_and_consistent(
        seed in any::<u64>(), half in 1usize..13, min_half in 1usize..13, region in 1usize..30, ego in any::<bool>(),
    ) {
        let size = 2 * half + 1;
        let min_size = (2 * min_half.min(half) + 1).max(3);
        let p = CheeseMazeParams {
            size, min_size, rand_region: region,
            view: if ego { View::Egocentric } else { View::Full }, view_radius: 3, ..CheeseMazeParams::train()
        };
        let env = CheeseMaze::new(p).unwrap();
        let s = env.reset(&mut rng(seed));
        let l = &s.level;
        let cheese = l.cheese.unwrap();
        for p in [l.start, l.top_right, cheese] {
            prop_assert!(!l.walls.is_wall(p));
        }
        prop_assert_ne!(cheese, l.start);
        prop_assert!(l.walls.connected());
        // Cheese inside the top-right region of this level's maze.
        let r = region.min(l.maze_size) as i32;
        prop_assert!(cheese.x > l.top_right.x - r && cheese.y < l.top_right.y + r);
        let info = l.decision_info().unwrap();
        prop_assert_eq!(info.path_start_cheese, l.walls.bfs(l.start)[l.walls.idx(cheese)]);
        let a = rollout(&env, seed, 150, !ego)?;
        let b = rollout(&env, seed, 150, !ego)?;
        prop_assert_eq!(a, b);
    }

    #[test]
    fn cheese_maze_events_match_the_map(seed in any::<u64>()) {
        let env = CheeseMaze::new(CheeseMazeParams { size: 7, min_size: 7, ..CheeseMazeParams::deploy() }).unwrap();
        let mut r = rng(seed);
        let mut s = env.reset(&mut r);
        for _ in 0..300 {
            let st = env.step(&mut s, r.random_range(0..4), &mut r);
            prop_assert_eq!(st.events.has(cheese_maze::EV_CHEESE), Some(s.agent) == s.level.cheese);
            prop_assert_eq!(st.reward, if Some(s.agent) == s.level.cheese { 10.0 } else { 0.0 });
            if st.events.has(cheese_maze::EV_TOP_RIGHT) {
                prop_assert_eq!(s.agent, s.level.top_right);
            }
            if st.end.is_some() {
                s = env.reset(&mut r);
            }
        }
    }

    #[test]
    fn coin_corridor_levels_are_solvable_and_consistent(
        seed in any::<u64>(), height in 5usize..=8, length in 12usize..=40, pct in 0u32..=100,
        density in 0.0f64..=1.0, enemies in 0u32..=4, ego in any::<bool>(),
    ) {
        let p = CoinCorridorParams {
            height, length, random_percent: pct, obstacle_density: density, max_enemies: enemies,
            view: if ego { View::Egocentric } else { View::Full }, view_radius: 3, ..CoinCorridorParams::train()
        };
        let env = CoinCorridor::new(p).unwrap();
        let mut r = rng(seed);
        let l = env.generate(&mut r);
        let reach = coin_corridor::reachable(&l.solid, l.start);
        prop_assert!(reach[l.solid.idx(l.end)], "end unreachable");
        prop_assert!(reach[l.solid.idx(l.coin)], "coin unreachable");
        prop_assert!(!l.solid.is_wall(l.coin) && !l.solid.is_wall(l.start));
        prop_assert!(l.solid.is_wall(l.coin.offset((0, 1))), "coin floats");
        if !l.coin_randomised { prop_assert_eq!(l.coin, l.end); }
        let g = height as i32 - 2;
        for lane in &l.patrols {
            for x in lane.lo..=lane.hi {
                prop_assert!(!l.solid.is_wall(Pos::new(x, g)) && l.solid.is_wall(Pos::new(x, g + 1)));
            }
            prop_assert!(lane.lo > l.start.x + 1);
        }
        let a = rollout(&env, seed, 150, !ego)?;
        let b = rollout(&env, seed, 150, !ego)?;
        prop_assert_eq!(a, b);
    }

    #[test]
    fn coin_corridor_events_match_the_map(seed in any::<u64>()) {
        let env = CoinCorridor::new(CoinCorridorParams::deploy()).unwrap();
        let mut r = rng(seed);
        let mut s = env.reset(&mut r);
        let mut stats = EpisodeStats::default();
        for _ in 0..400 {
            // Biased to the right so that episodes reach the end.
            let a = if r.random_bool(0.6) { 2 + 3 * r.random_range(0..2) } else { r.random_range(0..6) };
            let st = env.step(&mut s, a, &mut r);
            stats.record(&st);
            let died = st.events.has(coin_corridor::EV_DIED);
            if !died {
                prop_assert_eq!(st.events.has(coin_corridor::EV_COIN), s.agent == s.level.coin);
                prop_assert_eq!(st.events.has(coin_corridor::EV_END), s.agent == s.level.end);
            }
            prop_assert_eq!(st.performance, if st.events.has(coin_corridor::EV_COIN) { 1.0 } else { 0.0 });
            prop_assert!(!(died && st.events.has(coin_corridor::EV_COIN)));
            prop_assert!(!s.level.solid.is_wall(s.agent), "agent inside a wall");
            if st.end.is_some() {
                prop_assert!(st.events.0 != 0, "every end has a reason");
                s = env.reset(&mut r);
                stats = EpisodeStats::default();
            }
        }
    }

    #[test]
    fn keys_chests_levels_and_inventory_are_consistent(
        seed in any::<u64>(), half in 2usize..8, keys in 0u32..5, chests in 1u32..5, loops in 0.0f64..=1.0,
    ) {
        let p = KeysChestsParams { size: 2 * half + 1, keys, chests, loop_fraction: loops, ..KeysChestsParams::train() };
        let env = KeysChests::new(p).unwrap();
        let mut r = rng(seed);
        let mut s = env.reset(&mut r);
        let l = s.level.clone();
        let d = l.walls.bfs(l.start);
        let mut all: Vec<Pos> = l.keys.iter().chain(&l.chests).copied().collect();
        all.push(l.start);
        for &p in &all {
            prop_assert!(!l.walls.is_wall(p) && d[l.walls.idx(p)] != u32::MAX, "object unreachable");
        }
        all.sort();
        all.dedup();
        prop_assert_eq!(all.len(), (keys + chests + 1) as usize, "objects overlap");
        let mut stats = EpisodeStats::default();
        for _ in 0..200 {
            let st = env.step(&mut s, r.random_range(0..4), &mut r);
            stats.record(&st);
            prop_assert_eq!(stats.counts[keys_chests::EV_KEY] - stats.counts[keys_chests::EV_CHEST], s.held);
            prop_assert_eq!(stats.episode_return as u32, stats.counts[keys_chests::EV_CHEST]);
            // Excess keys can never be used, so they are still held.
            prop_assert!(keys_chests::excess_keys(&stats, chests) <= s.held);
            if st.end.is_some() {
                s = env.reset(&mut r);
                stats = EpisodeStats::default();
            }
        }
        let a = rollout(&env, seed, 100, true)?;
        prop_assert_eq!(a, rollout(&env, seed, 100, true)?);
    }

    #[test]
    fn monster_shield_objects_stay_on_free_distinct_cells(
        seed in any::<u64>(), size in 5usize..12, walls in 0.0f64..=0.5, prob in 0.0f64..=1.0,
    ) {
        let p = MonsterShieldParams { size, wall_fraction: walls, monster_move_prob: prob, ..MonsterShieldParams::deploy() };
        let env = MonsterShield::new(p).unwrap();
        let mut r = rng(seed);
        let mut s = env.reset(&mut r);
        prop_assert!(s.level.walls.connected());
        let mut stats = EpisodeStats::default();
        for _ in 0..200 {
            let st = env.step(&mut s, r.random_range(0..4), &mut r);
            stats.record(&st);
            let mut items: Vec<Pos> = s.apples.iter().chain(&s.shields).copied().collect();
            items.push(s.agent);
            for &p in items.iter().chain(&s.monsters) {
                prop_assert!(!s.level.walls.is_wall(p));
            }
            prop_assert!(!s.monsters.contains(&s.agent), "a monster shares the agent's cell after a step");
            let n = items.len();
            items.sort();
            items.dedup();
            prop_assert_eq!(items.len(), n, "items overlap");
            // Event counts are per step; two monsters can hit on the same step.
            let apple = if st.events.has(monster_shield::EV_APPLE) { 1.0 } else { 0.0 };
            if st.events.has(monster_shield::EV_HIT) {
                prop_assert!(st.reward <= apple - 1.0);
            } else {
                prop_assert_eq!(st.reward, apple);
            }
            prop_assert_eq!(st.reward, st.performance);
            prop_assert!(stats.counts[monster_shield::EV_DESTROYED] <= stats.counts[monster_shield::EV_SHIELD]);
            if st.end.is_some() {
                s = env.reset(&mut r);
                stats = EpisodeStats::default();
            }
        }
        let a = rollout(&env, seed, 100, true)?;
        prop_assert_eq!(a, rollout(&env, seed, 100, true)?);
    }

    #[test]
    fn every_registered_env_is_deterministic_in_its_seed(seed in any::<u64>()) {
        for name in registry::names() {
            for split in registry::lookup(name).unwrap().splits {
                let env = registry::make(name, split, &[]).unwrap();
                let run = || {
                    let mut r = rng(seed);
                    let mut s = env.reset(&mut r);
                    let mut out = Vec::new();
                    let mut obs = vec![0.0; env.spec().obs_len()];
                    for t in 0..60 {
                        let st = env.step(&mut s, (t * 7 + seed as usize) % env.spec().actions.len(), &mut r);
                        env.write_obs(&s, &mut obs);
                        out.push((format!("{st:?}"), obs.clone()));
                        if st.end.is_some() { s = env.reset(&mut r); }
                    }
                    out
                };
                prop_assert_eq!(run(), run(), "{} {}", name, split);
            }
        }
    }
}

#[test]
fn impossible_parameters_are_errors_not_hangs() {
    use mesalab_core::config::Override;
    let bad = [
        ("cheese-maze-v1", "size=12"),
        ("cheese-maze-v1", "size=1"),
        ("cheese-maze-v1", "max_steps=0"),
        ("coin-corridor-v1", "length=3"),
        ("coin-corridor-v1", "random_percent=101"),
        ("coin-corridor-v1", "max_steps=0"),
        ("keys-chests-v1", "keys=60"),
        ("keys-chests-v1", "size=8"),
        ("monster-shield-v1", "apples=60"),
        ("monster-shield-v1", "view=sideways"),
    ];
    for (env, ov) in bad {
        let e = registry::make(env, "train", &[Override::parse(ov).unwrap()]);
        assert!(e.is_err(), "{env} {ov} should be rejected");
        let msg = e.unwrap_err().to_string();
        assert!(!msg.is_empty());
    }
    // Dense obstacles and walls still generate quickly (bounded retries with fallbacks).
    let env = registry::make(
        "monster-shield-v1",
        "train",
        &[
            Override::parse("wall_fraction=0.5").unwrap(),
            Override::parse("size=5").unwrap(),
            Override::parse("apples=2").unwrap(),
            Override::parse("shields=2").unwrap(),
            Override::parse("monsters=4").unwrap(),
        ],
    )
    .unwrap();
    let mut r = rng(0);
    for _ in 0..100 {
        env.reset(&mut r);
    }
}

#[test]
fn overrides_change_params_and_egocentric_view_changes_shape() {
    use mesalab_core::config::Override;
    let env = registry::make(
        "cheese-maze-v1",
        "deploy",
        &[Override::parse("view=egocentric").unwrap(), Override::parse("view_radius=2").unwrap()],
    )
    .unwrap();
    assert_eq!(env.spec().obs_shape, [3, 5, 5]);
    assert!(env.params_toml().contains("view = \"egocentric\""), "{}", env.params_toml());
    assert_eq!(env.split(), "deploy");
}
