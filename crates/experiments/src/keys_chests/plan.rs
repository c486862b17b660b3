//! Exact shortest plans on a keys-chests level, from BFS distances between the start, the keys and
//! the chests: the fewest steps to open every openable chest ([`optimal_steps`]) and to do so while
//! also collecting a given number of keys ([`steps_with_keys`]). Used to score episode lengths
//! and to pick counterfactual levels on which a spare key costs a detour.
//!
//! The plans are over the order in which objects are visited (a dynamic programme over which keys
//! are left, which chests are open and how many keys are held), with shortest-path distances
//! between them; walking over an object on the way picks it up in the env, which can only shorten
//! a real episode, so these are lower bounds on what any policy needs.

use mesalab_envs::grid::{Pos, Walls};
use mesalab_envs::keys_chests::KcLevel;
use std::collections::HashMap;

/// The fewest steps that open every chest the level's keys allow (`None` if unreachable).
pub fn optimal_steps(level: &KcLevel) -> Option<u32> {
    steps_with_keys(level, 0)
}

/// The fewest steps that open every openable chest and collect at least `min_keys` keys in all.
pub fn steps_with_keys(level: &KcLevel, min_keys: usize) -> Option<u32> {
    let nodes: Vec<Pos> =
        std::iter::once(level.start).chain(level.keys.iter().copied()).chain(level.chests.iter().copied()).collect();
    let dist: Vec<Vec<u32>> = nodes.iter().map(|&p| distances(&level.walls, p, &nodes)).collect();
    let (k, c) = (level.keys.len(), level.chests.len());
    if k > 63 || c > 63 || min_keys > k {
        return None;
    }
    let planner = Planner { dist, keys: k, chests: c, target: k.min(c), min_keys, memo: HashMap::new() };
    let best = planner.solve(0, (1u64 << k) - 1, 0, 0);
    (best < u32::MAX).then_some(best)
}

fn distances(walls: &Walls, from: Pos, to: &[Pos]) -> Vec<u32> {
    let d = walls.bfs(from);
    to.iter().map(|&p| d[walls.idx(p)]).collect()
}

/// Node 0 is the start, nodes `1..=keys` the keys, then the chests.
struct Planner {
    dist: Vec<Vec<u32>>,
    keys: usize,
    chests: usize,
    target: usize,
    min_keys: usize,
    memo: HashMap<(usize, u64, u64, u32), u32>,
}

impl Planner {
    /// Fewest steps from node `at` with `keys_left` (bit set = still on the floor), `opened`
    /// chests and `held` keys; `u32::MAX` when the goal cannot be reached.
    fn solve(mut self, at: usize, keys_left: u64, opened: u64, held: u32) -> u32 {
        self.step(at, keys_left, opened, held)
    }

    fn step(&mut self, at: usize, keys_left: u64, opened: u64, held: u32) -> u32 {
        let collected = self.keys - keys_left.count_ones() as usize;
        if opened.count_ones() as usize >= self.target && collected >= self.min_keys {
            return 0;
        }
        if let Some(&v) = self.memo.get(&(at, keys_left, opened, held)) {
            return v;
        }
        let mut best = u32::MAX;
        for i in (0..self.keys).filter(|i| keys_left & (1 << i) != 0) {
            let d = self.dist[at][1 + i];
            if d != u32::MAX {
                let rest = self.step(1 + i, keys_left & !(1 << i), opened, held + 1);
                best = best.min(d.saturating_add(rest));
            }
        }
        if held > 0 {
            for j in (0..self.chests).filter(|j| opened & (1 << j) == 0) {
                let d = self.dist[at][1 + self.keys + j];
                if d != u32::MAX {
                    let rest = self.step(1 + self.keys + j, keys_left, opened | (1 << j), held - 1);
                    best = best.min(d.saturating_add(rest));
                }
            }
        }
        self.memo.insert((at, keys_left, opened, held), best);
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesalab_core::{Seed, Streams};
    use mesalab_envs::Env;
    use mesalab_envs::keys_chests::{KeysChests, KeysChestsParams};

    #[test]
    fn collecting_more_keys_never_costs_less() {
        let env = KeysChests::new(KeysChestsParams::deploy()).unwrap();
        let mut rng = Streams::new(Seed(1)).stream("levels");
        let mut detours = 0;
        for _ in 0..50 {
            let s = env.reset(&mut rng);
            let best = optimal_steps(&s.level).unwrap();
            let spare = steps_with_keys(&s.level, s.level.chests.len() + 1).unwrap();
            let all = steps_with_keys(&s.level, s.level.keys.len()).unwrap();
            assert!(best <= spare && spare <= all, "{best} {spare} {all}");
            detours += usize::from(spare > best);
        }
        assert!(detours > 10, "a spare key usually costs a detour: {detours} of 50");
        // More keys than exist: no plan.
        let s = env.reset(&mut rng);
        assert_eq!(steps_with_keys(&s.level, s.level.keys.len() + 1), None);
    }
}
