//! Inverse RL on the maze agent: which reward explains what it does on deployment mazes?
//!
//! For each of a few deployment mazes with a far cheese, the agent plays several sampled episodes
//! from the start; maximum-entropy IRL ([`mesalab_analysis::irl`], one-hot state features) fits a
//! reward map on that maze's cells to the visited-state sequences. The map is compared (Pearson)
//! with the intended reward (1 on the cheese cell) and the proxy (1 on the top-right cell), and its
//! peak is located. An agent that pursues the corner gets a map that correlates with the proxy.

use mesalab_analysis::irl::{IrlConfig, TabularMdp, maxent_irl, pearson};
use mesalab_core::StreamRng;
use mesalab_envs::Step;
use mesalab_envs::cheese_maze::{CheeseMaze, MazeState};
use mesalab_envs::grid::Pos;
use mesalab_nn::policy::AnyPolicy;
use mesalab_train::rollout::{ActionSelection, PolicyActor, play};
use serde::Serialize;

/// The recovered reward of one maze.
#[derive(Clone, Debug, Serialize)]
pub struct MazeReward {
    /// Pearson correlation of the recovered state reward with the intended (cheese) and the proxy
    /// (top-right corner) reward over the maze's free cells; NaN if undefined.
    pub corr_intended: f64,
    pub corr_proxy: f64,
    /// Where the recovered reward peaks: `cheese`, `top-right` or `elsewhere`.
    pub peak: &'static str,
    /// Recovered reward per grid cell, `[row][col]` (NaN on walls), for a heatmap.
    pub map: Vec<Vec<f64>>,
    pub demos: usize,
    pub final_log_likelihood: f64,
}

/// Fits a reward map to `episodes` sampled episodes of `policy` from `level`'s start.
pub fn recover(
    env: &CheeseMaze,
    policy: &AnyPolicy,
    level: &MazeState,
    episodes: usize,
    horizon: usize,
    action_rng: &mut StreamRng,
    env_rng: &mut StreamRng,
) -> anyhow::Result<MazeReward> {
    let l = &level.level;
    let (w, h) = (l.walls.w, l.walls.h);
    let (mdp, cell_state) = TabularMdp::grid(w, h, |x, y| l.walls.is_wall(Pos::new(x as i32, y as i32)));
    let state_of = |p: Pos| cell_state.get(p.y as usize * w + p.x as usize).copied().flatten();
    let played = play(
        env,
        &PolicyActor::new(policy, ActionSelection::Sample),
        vec![level.clone(); episodes],
        action_rng,
        env_rng,
        |_, s: &MazeState| vec![s.agent],
        |path: &mut Vec<Pos>, s: &MazeState, _: &Step| path.push(s.agent),
    );
    let demos: Vec<Vec<usize>> =
        played.into_iter().map(|(_, path)| path.into_iter().filter_map(state_of).take(horizon + 1).collect()).collect();
    let cfg = IrlConfig { horizon, ..IrlConfig::default() };
    let fit = maxent_irl(&mdp, &demos, &cfg)?;
    let indicator = |target: Pos| {
        let mut v = vec![0.0; mdp.n_states];
        if let Some(s) = state_of(target) {
            v[s] = 1.0;
        }
        v
    };
    let cheese = l.cheese.ok_or_else(|| anyhow::anyhow!("IRL needs a maze with cheese"))?;
    let corr_intended = pearson(&fit.state_reward, &indicator(cheese)).unwrap_or(f64::NAN);
    let corr_proxy = pearson(&fit.state_reward, &indicator(l.top_right)).unwrap_or(f64::NAN);
    let peak_state = (0..mdp.n_states).max_by(|&a, &b| fit.state_reward[a].total_cmp(&fit.state_reward[b]));
    let peak = match peak_state {
        Some(s) if Some(s) == state_of(cheese) => "cheese",
        Some(s) if Some(s) == state_of(l.top_right) => "top-right",
        _ => "elsewhere",
    };
    let map = (0..h)
        .map(|y| (0..w).map(|x| cell_state[y * w + x].map_or(f64::NAN, |s| fit.state_reward[s])).collect())
        .collect();
    Ok(MazeReward {
        corr_intended,
        corr_proxy,
        peak,
        map,
        demos: demos.len(),
        final_log_likelihood: fit.log_likelihood.last().copied().unwrap_or(f64::NAN),
    })
}
