//! `sokoban-mini-v1` against its solver: every generated level on both splits is solvable, its
//! optimal length lies in the split's range, replaying the solver's moves through `step` solves it
//! in exactly that many steps, the backward distance map agrees, and levels are a function of their
//! stream (proptest with fixed seeds; `PROPTEST_CASES` for longer passes).

use mesalab_core::config::Override;
use mesalab_core::{Seed, Streams};
use mesalab_envs::sokoban::{self, DistanceMap, MAX_STATES, Sokoban, SokobanParams};
use mesalab_envs::{End, Env, EpisodeStats, registry};
use proptest::prelude::*;
use std::sync::Arc;

fn check_level(env: &Sokoban, seed: u64, index: u64) -> Result<(), TestCaseError> {
    let p = env.params();
    let mut rng = Streams::new(Seed(seed)).indexed("env", index);
    let mut s = env.reset(&mut rng);
    let level = s.level.clone();
    let len = level.optimal_len().expect("generated levels are solvable");
    prop_assert!((p.min_len..=p.max_len).contains(&len), "length {len} outside {}..={}", p.min_len, p.max_len);
    prop_assert!(!level.is_solved(level.start()));
    let path = sokoban::solve(&level).expect("solvable");
    prop_assert_eq!(path.len() as u32, len);
    let mut stats = EpisodeStats::default();
    for (i, &a) in path.iter().enumerate() {
        let st = env.step(&mut s, a, &mut rng);
        stats.record(&st);
        prop_assert_eq!(st.end.is_some(), i + 1 == path.len(), "ended at move {} of {}", i + 1, path.len());
    }
    prop_assert_eq!(stats.end, Some(End::Terminated));
    prop_assert_eq!(stats.counts[sokoban::EV_SOLVED], 1);
    prop_assert_eq!(stats.length, len);
    prop_assert_eq!(stats.performance, 1.0);
    // The backward distances agree with the forward solver from the start and along the way.
    let map = DistanceMap::new(Arc::clone(&level), MAX_STATES).expect("fits");
    prop_assert_eq!(map.distance(level.start()), Some(len));
    let mut b = *level.start();
    for &a in &path {
        let d = map.distance(&b).unwrap();
        prop_assert!(map.optimal_actions(&b).contains(&a));
        b.apply(level.walls(), a);
        prop_assert_eq!(map.distance(&b), Some(d - 1));
    }
    // Renders, and the same stream gives the same level.
    let s0 = env.state_for((*level).clone());
    prop_assert!(!env.render_ascii(&s0).is_empty());
    prop_assert!(env.render_svg(&s0).starts_with("<svg"));
    let again = env.reset(&mut Streams::new(Seed(seed)).indexed("env", index));
    prop_assert_eq!(&*again.level, &*level);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn train_levels_are_solvable_in_range_and_replay(seed in any::<u64>(), index in 0u64..1000) {
        check_level(&Sokoban::new(SokobanParams::train()).unwrap(), seed, index)?;
    }

    #[test]
    fn deploy_levels_are_solvable_in_range_and_replay(seed in any::<u64>(), index in 0u64..1000) {
        check_level(&Sokoban::new(SokobanParams::deploy()).unwrap(), seed, index)?;
    }

    #[test]
    fn other_rooms_and_one_box_levels_too(
        seed in any::<u64>(), size in 6usize..=10, boxes in 1usize..=2, walls in 0usize..=5, lo in 1u32..8,
    ) {
        let p = SokobanParams { size, num_boxes: boxes, interior_walls: walls, min_len: lo, max_len: lo + 8, ..SokobanParams::train() };
        check_level(&Sokoban::new(p).unwrap(), seed, 0)?;
    }
}

#[test]
fn an_impossible_length_range_is_refused_naming_the_key() {
    let e =
        registry::make("sokoban-mini-v1", "train", &[Override::parse("min_len=400").unwrap()]).unwrap_err().to_string();
    assert!(e.contains("`min_len`") && e.contains("reverse_steps"), "{e}");
    // Valid on its own, but 7 × 7 rooms with 2 boxes never need 200..=300 moves: the build probe says so.
    let sets = ["min_len=200", "max_len=300"].map(|s| Override::parse(s).unwrap());
    let e = registry::make("sokoban-mini-v1", "deploy", &sets).unwrap_err().to_string();
    assert!(e.contains("`min_len`") && e.contains("no level with an optimal solution of 200..=300"), "{e}");
    let e =
        registry::make("sokoban-mini-v1", "train", &[Override::parse("num_box=1").unwrap()]).unwrap_err().to_string();
    assert!(e.contains("did you mean `num_boxes`"), "{e}");
}
