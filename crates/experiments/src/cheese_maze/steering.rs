//! Steering the maze agent with activation vectors (Mini, Turner et al. 2023).
//!
//! - **Cheese vector** of a maze: the activation at a middle hook with the cheese minus without it,
//!   both with the agent at the start. Added with coefficient −1 at the *decision square* (another
//!   agent position, so the subtraction is not an identity), it should remove the pull of the
//!   cheese: the probability of the move towards the cheese drops.
//! - **Top-right vector** of a maze: the activation with the cheese moved into the top-right corner
//!   minus with the cheese where it is (agent at the start). Added with coefficient +1 it should
//!   pull the agent towards the corner.
//! - Each vector is measured in two forms: the maze's own vector computed at the start (as Turner
//!   et al.), and one mean vector computed on *other* mazes (held out from the test mazes) with the
//!   agent at their decision squares, which asks whether a single direction carries "cheese" (or
//!   "corner") across mazes.
//!
//! Measured per coefficient on the test mazes' decision squares: mean probability of the first
//! move towards the cheese and towards the corner, and the share of squares where the cheese move
//! is the likelier one.

use burn::tensor::TensorData;
use mesalab_envs::cheese_maze::{CheeseMaze, MazeState};
use mesalab_envs::grid::{DIRS, Pos};
use mesalab_nn::Hooks;
use mesalab_nn::interp::{PatchEffect, patching_sweep};
use mesalab_nn::policy::{AnyPolicy, Policy};
use mesalab_train::inspect::{activations, add_scaled, check_hook, difference, run_hooked};
use serde::Serialize;

/// A test maze: its decision square state and the moves towards cheese and corner.
#[derive(Clone, Debug)]
pub struct DecisionCase {
    /// Agent at the start, cheese in place.
    pub start: MazeState,
    /// Agent at the start, no cheese.
    pub start_no_cheese: MazeState,
    /// Agent at the start, cheese moved into the top-right corner.
    pub start_cheese_corner: MazeState,
    /// Agent at the decision square, cheese in place.
    pub decision: MazeState,
    /// Agent at the decision square, no cheese (the corrupted input of activation patching).
    pub decision_no_cheese: MazeState,
    /// Agent at the decision square, cheese moved into the top-right corner.
    pub decision_cheese_corner: MazeState,
    pub move_cheese: usize,
    pub move_corner: usize,
}

/// Decision cases of every level with a far cheese and a decision square (the paths split).
pub fn decision_cases(env: &CheeseMaze, levels: &[MazeState], far_distance: f64) -> Vec<DecisionCase> {
    let mut out = Vec::new();
    for s in levels {
        let l = &s.level;
        let (Some(d), Some(cheese)) = (l.decision_info(), l.cheese) else { continue };
        let Some(square) = d.decision_square else { continue };
        if cheese.euclid(l.top_right) < far_distance {
            continue;
        }
        let next = |to: Pos| l.walls.shortest_path(square, to).and_then(|p| p.get(1).copied());
        let (Some(nc), Some(nt)) = (next(cheese), next(l.top_right)) else { continue };
        let action = |n: Pos| DIRS.iter().position(|&dir| square.offset(dir) == n);
        let (Some(move_cheese), Some(move_corner)) = (action(nc), action(nt)) else { continue };
        let (Some(no_cheese), Some(cheese_corner)) = (env.with_cheese(s, None), env.with_cheese(s, Some(l.top_right)))
        else {
            continue;
        };
        let decision = MazeState { level: l.clone(), agent: square, t: 0 };
        let Some(decision_no_cheese) = env.with_cheese(&decision, None) else { continue };
        let Some(decision_cheese_corner) = env.with_cheese(&decision, Some(l.top_right)) else { continue };
        out.push(DecisionCase {
            start: s.clone(),
            start_no_cheese: no_cheese,
            start_cheese_corner: cheese_corner,
            decision,
            decision_no_cheese,
            decision_cheese_corner,
            move_cheese,
            move_corner,
        });
    }
    out
}

/// Behaviour at the decision squares under one steering setting.
#[derive(Clone, Debug, Serialize)]
pub struct SteeringPoint {
    /// `cheese (own maze, at start)`, `cheese (mean of other mazes)`, `top-right (own maze, at start)`,
    /// `top-right (mean of other mazes)`.
    pub vector: String,
    pub coefficient: f64,
    /// Mean probability of the move towards the cheese / the corner.
    pub p_cheese_move: f64,
    pub p_corner_move: f64,
    /// Share of decision squares where the cheese move is likelier than the corner move.
    pub toward_cheese: f64,
}

/// The whole analysis for one policy.
#[derive(Clone, Debug, Serialize)]
pub struct SteeringResult {
    pub hook: String,
    pub test_mazes: usize,
    pub vector_mazes: usize,
    pub points: Vec<SteeringPoint>,
    /// 1 − toward_cheese(coef −1) / toward_cheese(coef 0): the relative drop in decision squares
    /// where the cheese path is chosen, own-maze cheese vector (computed at the start).
    pub cheese_vector_reduction: f64,
    /// The same with the mean cheese vector of other mazes.
    pub mean_cheese_vector_reduction: f64,
    /// Rise in the share of decision squares where the corner path is chosen, coef +1 vs 0,
    /// own-maze top-right vector (computed at the start).
    pub top_right_vector_gain: f64,
    /// The same with the mean top-right vector of other mazes.
    pub mean_top_right_vector_gain: f64,
}

fn behaviour(cases: &[DecisionCase], probs: &[Vec<f64>], vector: &str, coefficient: f64) -> SteeringPoint {
    let n = cases.len().max(1) as f64;
    let (mut pc, mut pt, mut toward) = (0.0, 0.0, 0.0);
    for (c, p) in cases.iter().zip(probs) {
        pc += p[c.move_cheese];
        pt += p[c.move_corner];
        toward += f64::from(u8::from(p[c.move_cheese] > p[c.move_corner]));
    }
    SteeringPoint {
        vector: vector.into(),
        coefficient,
        p_cheese_move: pc / n,
        p_corner_move: pt / n,
        toward_cheese: toward / n,
    }
}

/// Row-wise mean of a `[batch, rest…]` activation, repeated `rows` times (the same vector per row).
fn mean_rows(data: &TensorData, rows: usize) -> TensorData {
    let shape = data.shape().to_vec();
    let values = data.try_to_vec::<f32>().expect("f32 activations");
    let per = values.len() / shape[0].max(1);
    let mut mean = vec![0.0f64; per];
    // [batch, rest…] row-major: row i is the i-th block of `per` values.
    for row in values.chunks_exact(per) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += f64::from(*v);
        }
    }
    let mean: Vec<f32> = mean.iter().map(|m| (m / shape[0] as f64) as f32).collect();
    let mut out_shape = shape;
    out_shape[0] = rows;
    TensorData::new(mean.repeat(rows), out_shape)
}

/// Cheese and top-right vectors at `hook`, own-maze and mean-of-other-mazes, swept over `coefficients`,
/// on the decision squares of `test` (vectors for the mean form come from `vector_set`).
pub fn analyse(
    env: &CheeseMaze,
    policy: &AnyPolicy,
    hook: &str,
    test: &[DecisionCase],
    vector_set: &[DecisionCase],
    coefficients: &[f64],
) -> anyhow::Result<SteeringResult> {
    check_hook(policy, hook)?;
    anyhow::ensure!(!test.is_empty() && !vector_set.is_empty(), "no maze with a far cheese and a decision square");
    let states = |f: fn(&DecisionCase) -> &MazeState, cases: &[DecisionCase]| -> Vec<MazeState> {
        cases.iter().map(|c| f(c).clone()).collect()
    };
    let act =
        |f: fn(&DecisionCase) -> &MazeState, cases: &[DecisionCase]| activations(env, policy, &states(f, cases), hook);
    let at_decision = act(|c| &c.decision, test)?;
    let cheese_own = difference(&act(|c| &c.start, test)?, &act(|c| &c.start_no_cheese, test)?);
    let corner_own = difference(&act(|c| &c.start_cheese_corner, test)?, &act(|c| &c.start, test)?);
    // Mean vectors: other mazes, agent at *their* decision squares (what transfers across mazes).
    let cheese_mean = mean_rows(
        &difference(&act(|c| &c.decision, vector_set)?, &act(|c| &c.decision_no_cheese, vector_set)?),
        test.len(),
    );
    let corner_mean = mean_rows(
        &difference(&act(|c| &c.decision_cheese_corner, vector_set)?, &act(|c| &c.decision, vector_set)?),
        test.len(),
    );
    let decisions = states(|c| &c.decision, test);
    let mut points = Vec::new();
    for (label, vectors) in [
        ("cheese (own maze, at start)", &cheese_own),
        ("cheese (mean of other mazes)", &cheese_mean),
        ("top-right (own maze, at start)", &corner_own),
        ("top-right (mean of other mazes)", &corner_mean),
    ] {
        for &coef in coefficients {
            let patched = add_scaled(&at_decision, vectors, coef as f32);
            let (probs, _) = run_hooked(env, policy, &decisions, Hooks::none().patch(hook, patched))?;
            points.push(behaviour(test, &probs, label, coef));
        }
    }
    let at = |vector: &str, coef: f64| {
        points.iter().find(|p| p.vector == vector && (p.coefficient - coef).abs() < 1e-9).cloned()
    };
    // Cheese-seeking at a decision square = choosing the cheese path (its move likelier than the
    // corner move); the headline compares the share of such choices at −1 (or +1) with 0.
    let reduction = |vector: &str| match (at(vector, 0.0), at(vector, -1.0)) {
        (Some(base), Some(sub)) if base.toward_cheese > 0.0 => 1.0 - sub.toward_cheese / base.toward_cheese,
        _ => f64::NAN,
    };
    let gain = |vector: &str| match (at(vector, 0.0), at(vector, 1.0)) {
        (Some(base), Some(add)) => base.toward_cheese - add.toward_cheese,
        _ => f64::NAN,
    };
    Ok(SteeringResult {
        hook: hook.to_string(),
        test_mazes: test.len(),
        vector_mazes: vector_set.len(),
        cheese_vector_reduction: reduction("cheese (own maze, at start)"),
        mean_cheese_vector_reduction: reduction("cheese (mean of other mazes)"),
        top_right_vector_gain: gain("top-right (own maze, at start)"),
        mean_top_right_vector_gain: gain("top-right (mean of other mazes)"),
        points,
    })
}

/// Activation patching at the decision squares: clean = the maze with its cheese, corrupted = the
/// same maze without it; metric = log P(cheese move) − log P(corner move). Each hook is patched from
/// clean into corrupted; the share of the metric's difference it restores says where the cheese's
/// influence on the choice flows.
pub fn patching(env: &CheeseMaze, policy: &AnyPolicy, cases: &[DecisionCase]) -> anyhow::Result<Vec<PatchEffect>> {
    anyhow::ensure!(!cases.is_empty(), "no maze with a far cheese and a decision square");
    let metric = |probs: &[Vec<f64>]| -> Vec<f64> {
        cases
            .iter()
            .zip(probs)
            .map(|(c, p)| p[c.move_cheese].max(1e-12).ln() - p[c.move_corner].max(1e-12).ln())
            .collect()
    };
    let clean: Vec<MazeState> = cases.iter().map(|c| c.decision.clone()).collect();
    let corrupted: Vec<MazeState> = cases.iter().map(|c| c.decision_no_cheese.clone()).collect();
    let (clean_probs, clean_cache) = run_hooked(env, policy, &clean, Hooks::cache_all())?;
    let (corrupted_probs, corrupted_cache) = run_hooked(env, policy, &corrupted, Hooks::cache_all())?;
    let effects = patching_sweep(
        &policy.hook_points(),
        &clean_cache,
        &corrupted_cache,
        &metric(&clean_probs),
        &metric(&corrupted_probs),
        false,
        |hooks| run_hooked(env, policy, &corrupted, hooks).map(|(p, _)| metric(&p)),
    );
    match effects {
        // A policy blind to the cheese: nothing to restore, so nothing to localise.
        Err(mesalab_nn::interp::InterpError::NoDifference) => Ok(Vec::new()),
        other => Ok(other?),
    }
}
