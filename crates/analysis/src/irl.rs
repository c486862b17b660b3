//! Maximum-entropy inverse RL (Ziebart et al. 2008) on tabular, deterministic MDPs.
//!
//! Use: given an agent's trajectories in a gridworld, recover the state reward that best explains
//! them, and compare it (Pearson correlation) with the intended and the proxy reward — which
//! objective did the agent actually learn?
//!
//! Model. The reward is linear in state features, `r(s) = φ(s)·θ`, and is collected in every state
//! of a trajectory `s_0 … s_L`. Among all distributions over L-step action sequences from `s_0`,
//! MaxEnt picks `P(a_0 … a_{L−1} | s_0) ∝ exp(Σ_{t=0}^{L} r(s_t))`, which is exactly the trajectory
//! distribution of the time-dependent soft-optimal policy ([`soft_optimal_policy`]). A
//! demonstration is a *state* sequence, so its likelihood sums over the actions that make each
//! transition (e.g. two blocked moves in a corner both stay put).
//!
//! Episodes of different lengths. A demonstration with `L + 1` states is scored as a complete
//! L-step episode: its steps use the policy with `L, L−1, …, 1` steps to go, i.e. the last L steps
//! of the horizon-`H` soft-optimal policy. No padding and no invented absorbing state: the agent
//! is assumed to have known how long its episode would last (true for a time limit; for an episode
//! ended by reaching a goal it is the usual approximation). All lengths share one backward pass.
//!
//! Fitting: gradient ascent (Adam) on `J(θ) = mean_demos log P(demo) − (l2/2)·‖θ‖²`, whose gradient
//! is `empirical − expected feature counts − l2·θ`; the expected counts come from a forward pass
//! of the soft-optimal policy started from the demos' own start states at their own offsets.
//!
//! The reward is identifiable only up to what the demos constrain: adding a constant to every
//! state's reward changes no likelihood, and states the demos never approach stay near 0 (where
//! `l2` pulls them). Compare rewards with [`pearson`], which ignores shift and scale.

use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

/// Why an MDP, a demonstration set or a configuration was rejected. Messages say what to fix.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IrlError {
    #[error("no demonstrations with at least one step (two states); MaxEnt IRL needs transitions to learn from")]
    NoDemonstrations,
    #[error("demonstration {demo} is empty; every demonstration needs at least its start state")]
    EmptyDemo { demo: usize },
    #[error("demonstration {demo} has {states} states but horizon allows at most {max_states}; raise the horizon")]
    DemoTooLong { demo: usize, states: usize, max_states: usize },
    #[error("the transition table names state {index}, but the MDP has only {n_states} states (0..{n_states})")]
    BadState { index: usize, n_states: usize },
    #[error("demonstration {demo}, position {step}: state {state} does not exist (the MDP has {n_states} states)")]
    BadDemoState { demo: usize, step: usize, state: usize, n_states: usize },
    #[error(
        "demonstration {demo}, step {step}: no action leads from state {from} to state {to}; demos must \
         move by one action per step (add a stay action to the MDP if the agent can wait)"
    )]
    BadAction { demo: usize, step: usize, from: usize, to: usize },
    #[error("wrong size of {what}: expected {expected}, got {got}")]
    Shape { what: &'static str, expected: usize, got: usize },
    #[error("bad parameter {name} = {value}: {why}")]
    BadParameter { name: &'static str, value: f64, why: &'static str },
    #[error("{what} contains NaN or infinite values")]
    NonFinite { what: &'static str },
}

/// Grid action: move to the row above (y − 1).
pub const UP: usize = 0;
/// Grid action: move right (x + 1).
pub const RIGHT: usize = 1;
/// Grid action: move to the row below (y + 1).
pub const DOWN: usize = 2;
/// Grid action: move left (x − 1).
pub const LEFT: usize = 3;

/// Deterministic tabular MDP with state features.
///
/// Invariant (checked by [`TabularMdp::new`] and again by every function that takes an MDP, since
/// the fields are public): `n_states ≥ 1`, `n_actions ≥ 1`, `next.len() == n_states * n_actions`
/// with every entry `< n_states`, and `features` has `n_states` finite rows.
#[derive(Clone, Debug, PartialEq)]
pub struct TabularMdp {
    pub n_states: usize,
    pub n_actions: usize,
    /// Successor of state `s` under action `a`, at index `s * n_actions + a`.
    pub next: Vec<usize>,
    /// `[n_states, n_features]`: the reward is `features · θ`.
    pub features: DMatrix<f64>,
}

impl TabularMdp {
    pub fn new(n_states: usize, n_actions: usize, next: Vec<usize>, features: DMatrix<f64>) -> Result<Self, IrlError> {
        let mdp = Self { n_states, n_actions, next, features };
        mdp.check()?;
        Ok(mdp)
    }

    /// Checks the invariant (see the type's docs).
    pub fn check(&self) -> Result<(), IrlError> {
        if self.n_states == 0 {
            return Err(IrlError::BadParameter {
                name: "n_states",
                value: 0.0,
                why: "an MDP needs at least one state",
            });
        }
        if self.n_actions == 0 {
            return Err(IrlError::BadParameter {
                name: "n_actions",
                value: 0.0,
                why: "an MDP needs at least one action",
            });
        }
        let expected = self.n_states * self.n_actions;
        if self.next.len() != expected {
            return Err(IrlError::Shape {
                what: "next (n_states * n_actions entries)",
                expected,
                got: self.next.len(),
            });
        }
        if let Some(&index) = self.next.iter().find(|&&s| s >= self.n_states) {
            return Err(IrlError::BadState { index, n_states: self.n_states });
        }
        if self.features.nrows() != self.n_states {
            return Err(IrlError::Shape {
                what: "rows of features (one per state)",
                expected: self.n_states,
                got: self.features.nrows(),
            });
        }
        if self.features.iter().any(|v| !v.is_finite()) {
            return Err(IrlError::NonFinite { what: "features" });
        }
        Ok(())
    }

    /// The state reached from `s` by action `a`.
    ///
    /// # Panics
    /// If `s` or `a` is out of range.
    pub fn next_state(&self, s: usize, a: usize) -> usize {
        self.next[s * self.n_actions + a]
    }

    /// 4-connected grid: cell `(x, y)` has index `y * width + x`, `y = 0` the top row; actions
    /// [`UP`], [`RIGHT`], [`DOWN`], [`LEFT`]; a move into a wall or off the grid stays put. Walls
    /// (`wall(x, y)` true) are not states. Returns the MDP and, per cell, its state index (`None`
    /// for walls). Features are one-hot per state (identity matrix), so `θ` is the state reward;
    /// replace `features` for a structured reward. A grid that is all walls has no states and is
    /// rejected by every function that takes the MDP.
    pub fn grid(width: usize, height: usize, wall: impl Fn(usize, usize) -> bool) -> (TabularMdp, Vec<Option<usize>>) {
        let mut cell_state = vec![None; width * height];
        let mut n_states = 0;
        for y in 0..height {
            for x in 0..width {
                if !wall(x, y) {
                    cell_state[y * width + x] = Some(n_states);
                    n_states += 1;
                }
            }
        }
        let mut next = Vec::with_capacity(n_states * 4);
        for y in 0..height {
            for x in 0..width {
                let Some(s) = cell_state[y * width + x] else { continue };
                let moves = [(x, y.wrapping_sub(1)), (x + 1, y), (x, y + 1), (x.wrapping_sub(1), y)];
                for (nx, ny) in moves {
                    let target = if nx < width && ny < height { cell_state[ny * width + nx] } else { None };
                    next.push(target.unwrap_or(s));
                }
            }
        }
        let mdp = TabularMdp { n_states, n_actions: 4, next, features: DMatrix::identity(n_states, n_states) };
        (mdp, cell_state)
    }
}

/// MaxEnt IRL settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct IrlConfig {
    /// Longest episode, in steps; every demo must have at most `horizon + 1` states. Default 20.
    pub horizon: usize,
    /// Adam steps. Default 200: enough for one-hot rewards on grids of a few hundred states.
    pub iterations: usize,
    /// Adam step size: roughly the change per iteration of each weight. Default 0.05.
    pub learning_rate: f64,
    /// L2 penalty on θ; keeps unconstrained weights (states the demos never approach) at 0.
    /// Default 1e-3.
    pub l2: f64,
}

impl Default for IrlConfig {
    fn default() -> Self {
        Self { horizon: 20, iterations: 200, learning_rate: 0.05, l2: 1e-3 }
    }
}

impl IrlConfig {
    fn check(&self) -> Result<(), IrlError> {
        if self.horizon == 0 {
            return Err(IrlError::BadParameter { name: "horizon", value: 0.0, why: "must be at least 1 step" });
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(IrlError::BadParameter {
                name: "learning_rate",
                value: self.learning_rate,
                why: "must be finite and > 0 (e.g. 0.05)",
            });
        }
        check_l2(self.l2)
    }
}

fn check_l2(l2: f64) -> Result<(), IrlError> {
    if l2.is_finite() && l2 >= 0.0 {
        Ok(())
    } else {
        Err(IrlError::BadParameter { name: "l2", value: l2, why: "must be finite and >= 0 (e.g. 1e-3)" })
    }
}

/// The fitted reward and how the fit went.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IrlResult {
    /// θ: one weight per feature.
    pub weights: Vec<f64>,
    /// `features · θ`: the recovered reward of every state.
    pub state_reward: Vec<f64>,
    /// Mean log-likelihood per demo step, at the start (entry 0, θ = 0) and after each iteration
    /// (`iterations + 1` entries). Higher is better; 0 would mean the demos are certain.
    pub log_likelihood: Vec<f64>,
    /// Final `‖empirical − expected feature counts‖` (per demo): ≈ 0 at the unregularised optimum.
    pub feature_gap: f64,
}

fn log_sum_exp(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = values.clone().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + values.map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// Backward soft value iteration. Returns `log π_t(a|s)` for `t = 0..horizon` (index
/// `s * n_actions + a`), where `π_t` has `horizon − t` steps to go:
/// `V_H = r`, `Q_t(s,a) = r(s) + V_{t+1}(next(s,a))`, `V_t = logsumexp_a Q_t`, `log π_t = Q_t − V_t`.
/// Working in log space keeps tiny probabilities exact (no `log(0)` from underflow).
fn soft_backward(mdp: &TabularMdp, reward: &[f64], horizon: usize) -> Vec<Vec<f64>> {
    let (n_s, n_a) = (mdp.n_states, mdp.n_actions);
    let mut value = reward.to_vec();
    let mut log_policy = vec![Vec::new(); horizon];
    let mut q = vec![0.0; n_a];
    for t in (0..horizon).rev() {
        let mut lp = vec![0.0; n_s * n_a];
        let mut new_value = vec![0.0; n_s];
        for s in 0..n_s {
            for (a, qa) in q.iter_mut().enumerate() {
                *qa = reward[s] + value[mdp.next[s * n_a + a]];
            }
            let v = log_sum_exp(q.iter().copied());
            new_value[s] = v;
            for a in 0..n_a {
                lp[s * n_a + a] = q[a] - v;
            }
        }
        value = new_value;
        log_policy[t] = lp;
    }
    log_policy
}

/// Time-dependent soft-optimal (MaxEnt) policy by backward soft value iteration with a stable
/// log-sum-exp. Entry `t` (for `t = 0..horizon`) is `π_t(a|s)` at index `s * n_actions + a`, with
/// `horizon − t` steps to go; each state's probabilities sum to 1. Temperature 1: rescale the
/// reward for a greedier or noisier policy.
pub fn soft_optimal_policy(mdp: &TabularMdp, state_reward: &[f64], horizon: usize) -> Result<Vec<Vec<f64>>, IrlError> {
    mdp.check()?;
    if state_reward.len() != mdp.n_states {
        return Err(IrlError::Shape {
            what: "state_reward (one per state)",
            expected: mdp.n_states,
            got: state_reward.len(),
        });
    }
    if state_reward.iter().any(|r| !r.is_finite()) {
        return Err(IrlError::NonFinite { what: "state_reward" });
    }
    Ok(soft_backward(mdp, state_reward, horizon).into_iter().map(|lp| lp.into_iter().map(f64::exp).collect()).collect())
}

/// Demonstrations checked against an MDP and horizon, with what every evaluation reuses.
struct Demos<'a> {
    demos: &'a [Vec<usize>],
    /// `starts[t][s]`: number of demos that start in `s` at time `t` (= horizon − their steps).
    starts: Vec<Vec<f64>>,
    /// Mean feature counts per demo (states `s_0 … s_L` of each demo).
    empirical: DVector<f64>,
    n_steps: usize,
}

impl<'a> Demos<'a> {
    fn new(mdp: &TabularMdp, demos: &'a [Vec<usize>], horizon: usize) -> Result<Self, IrlError> {
        if demos.is_empty() {
            return Err(IrlError::NoDemonstrations);
        }
        let mut starts = vec![vec![0.0; mdp.n_states]; horizon + 1];
        let mut visits = DVector::<f64>::zeros(mdp.n_states);
        let mut n_steps = 0;
        for (demo, states) in demos.iter().enumerate() {
            if states.is_empty() {
                return Err(IrlError::EmptyDemo { demo });
            }
            if states.len() > horizon + 1 {
                return Err(IrlError::DemoTooLong { demo, states: states.len(), max_states: horizon + 1 });
            }
            for (step, &state) in states.iter().enumerate() {
                if state >= mdp.n_states {
                    return Err(IrlError::BadDemoState { demo, step, state, n_states: mdp.n_states });
                }
                visits[state] += 1.0;
            }
            for (step, pair) in states.windows(2).enumerate() {
                let (from, to) = (pair[0], pair[1]);
                if !(0..mdp.n_actions).any(|a| mdp.next_state(from, a) == to) {
                    return Err(IrlError::BadAction { demo, step, from, to });
                }
            }
            starts[horizon + 1 - states.len()][states[0]] += 1.0;
            n_steps += states.len() - 1;
        }
        if n_steps == 0 {
            return Err(IrlError::NoDemonstrations);
        }
        let empirical = mdp.features.transpose() * visits / demos.len() as f64;
        Ok(Self { demos, starts, empirical, n_steps })
    }
}

/// The MaxEnt objective at one θ, with its gradient.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MaxEntObjective {
    /// `J(θ) = mean_demos log P(demo) − (l2/2)·‖θ‖²`: what [`maxent_irl`] maximises.
    pub objective: f64,
    /// `Σ log P(demo) / total demo steps`: comparable across demo sets of different lengths.
    pub log_likelihood_per_step: f64,
    /// `∂J/∂θ = empirical − expected feature counts (per demo) − l2·θ`.
    pub gradient: Vec<f64>,
    /// `‖empirical − expected feature counts‖`.
    pub feature_gap: f64,
}

/// Evaluates the MaxEnt objective and its exact gradient at `weights` (θ). Exposed so that a
/// caller can score a candidate reward (e.g. the intended one) by how well it explains the demos.
pub fn maxent_objective(
    mdp: &TabularMdp,
    demos: &[Vec<usize>],
    weights: &[f64],
    horizon: usize,
    l2: f64,
) -> Result<MaxEntObjective, IrlError> {
    mdp.check()?;
    check_l2(l2)?;
    if weights.len() != mdp.features.ncols() {
        return Err(IrlError::Shape {
            what: "weights (one per feature)",
            expected: mdp.features.ncols(),
            got: weights.len(),
        });
    }
    if weights.iter().any(|w| !w.is_finite()) {
        return Err(IrlError::NonFinite { what: "weights" });
    }
    let demos = Demos::new(mdp, demos, horizon)?;
    Ok(evaluate(mdp, &demos, &DVector::from_column_slice(weights), horizon, l2))
}

fn evaluate(mdp: &TabularMdp, demos: &Demos, theta: &DVector<f64>, horizon: usize, l2: f64) -> MaxEntObjective {
    let (n_s, n_a) = (mdp.n_states, mdp.n_actions);
    let reward: Vec<f64> = (&mdp.features * theta).iter().copied().collect();
    let log_policy = soft_backward(mdp, &reward, horizon);

    // Forward: expected visits of demos started at their own offsets; linear, so one pass serves
    // every length: d_{t+1} = d_t propagated by π_t, plus the demos that start at t + 1.
    let mut dist = demos.starts[0].clone();
    let mut visits = DVector::from_column_slice(&dist);
    for (t, lp) in log_policy.iter().enumerate() {
        let mut next = demos.starts[t + 1].clone();
        for s in 0..n_s {
            if dist[s] == 0.0 {
                continue;
            }
            for a in 0..n_a {
                next[mdp.next[s * n_a + a]] += dist[s] * lp[s * n_a + a].exp();
            }
        }
        dist = next;
        for s in 0..n_s {
            visits[s] += dist[s];
        }
    }
    let n_demos = demos.demos.len() as f64;
    let expected = mdp.features.transpose() * visits / n_demos;

    let mut total_log_lik = 0.0;
    for states in demos.demos {
        let offset = horizon + 1 - states.len();
        for (k, pair) in states.windows(2).enumerate() {
            let lp = &log_policy[offset + k];
            let from = pair[0];
            let actions = (0..n_a).filter(|&a| mdp.next[from * n_a + a] == pair[1]);
            total_log_lik += log_sum_exp(actions.map(|a| lp[from * n_a + a]));
        }
    }
    let gap = &demos.empirical - expected;
    let gradient = &gap - theta * l2;
    MaxEntObjective {
        objective: total_log_lik / n_demos - 0.5 * l2 * theta.norm_squared(),
        log_likelihood_per_step: total_log_lik / demos.n_steps as f64,
        gradient: gradient.iter().copied().collect(),
        feature_gap: gap.norm(),
    }
}

/// Maximum-entropy IRL: the reward weights θ that make the demonstrations most likely under the
/// soft-optimal policy (see the module docs for the model and how episode lengths are handled).
///
/// `demos` are state sequences of 1 to `cfg.horizon + 1` states whose consecutive states are one
/// action apart. θ starts at 0 and is fit by `cfg.iterations` Adam steps (β = 0.9, 0.999).
pub fn maxent_irl(mdp: &TabularMdp, demos: &[Vec<usize>], cfg: &IrlConfig) -> Result<IrlResult, IrlError> {
    mdp.check()?;
    cfg.check()?;
    let demos = Demos::new(mdp, demos, cfg.horizon)?;
    let n_f = mdp.features.ncols();
    let mut theta = DVector::<f64>::zeros(n_f);
    let (mut m, mut v) = (DVector::<f64>::zeros(n_f), DVector::<f64>::zeros(n_f));
    let (beta1, beta2, eps) = (0.9, 0.999, 1e-8);
    let mut log_likelihood = Vec::with_capacity(cfg.iterations + 1);
    for i in 1..=cfg.iterations {
        let eval = evaluate(mdp, &demos, &theta, cfg.horizon, cfg.l2);
        log_likelihood.push(eval.log_likelihood_per_step);
        let g = DVector::from_vec(eval.gradient);
        m = m * beta1 + &g * (1.0 - beta1);
        v = v * beta2 + g.component_mul(&g) * (1.0 - beta2);
        let (c1, c2) = (1.0 - beta1.powi(i as i32), 1.0 - beta2.powi(i as i32));
        for j in 0..n_f {
            // Ascent: the gradient points uphill in the log-likelihood.
            theta[j] += cfg.learning_rate * (m[j] / c1) / ((v[j] / c2).sqrt() + eps);
        }
    }
    let last = evaluate(mdp, &demos, &theta, cfg.horizon, cfg.l2);
    log_likelihood.push(last.log_likelihood_per_step);
    Ok(IrlResult {
        state_reward: (&mdp.features * &theta).iter().copied().collect(),
        weights: theta.iter().copied().collect(),
        log_likelihood,
        feature_gap: last.feature_gap,
    })
}

/// Pearson correlation. `None` when the lengths differ, there are fewer than 2 values, a value is
/// not finite, or either side is constant (correlation undefined).
pub fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 2 || a.iter().chain(b).any(|v| !v.is_finite()) {
        return None;
    }
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa == 0.0 || sbb == 0.0 { None } else { Some((sab / (saa * sbb).sqrt()).clamp(-1.0, 1.0)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesalab_core::{Seed, StreamRng, Streams};
    use rand::Rng;

    fn rng(name: &str) -> StreamRng {
        Streams::new(Seed(11)).stream(name)
    }

    /// One episode of `steps` steps from `start` under a time-dependent policy with `policy.len()`
    /// steps in all (uses its last `steps` entries, as the model does for a short episode).
    fn sample_demo(
        mdp: &TabularMdp,
        policy: &[Vec<f64>],
        start: usize,
        steps: usize,
        rng: &mut StreamRng,
    ) -> Vec<usize> {
        let mut states = vec![start];
        let mut s = start;
        for pi in &policy[policy.len() - steps..] {
            let u: f64 = rng.random();
            let mut acc = 0.0;
            let mut action = mdp.n_actions - 1;
            for a in 0..mdp.n_actions {
                acc += pi[s * mdp.n_actions + a];
                if u < acc {
                    action = a;
                    break;
                }
            }
            s = mdp.next_state(s, action);
            states.push(s);
        }
        states
    }

    /// Two states, action 0 stays and action 1 switches.
    fn two_state(reward_features: DMatrix<f64>) -> TabularMdp {
        TabularMdp::new(2, 2, vec![0, 1, 1, 0], reward_features).unwrap()
    }

    #[test]
    fn grid_moves_and_walls() {
        // 3×2 grid with a wall at (1, 0):   s0  #  s1
        //                                  s2  s3 s4
        let (mdp, cells) = TabularMdp::grid(3, 2, |x, y| (x, y) == (1, 0));
        assert_eq!(cells, vec![Some(0), None, Some(1), Some(2), Some(3), Some(4)]);
        assert_eq!(mdp.n_states, 5);
        // Order: up, right, down, left. Blocked (wall or edge) moves stay put.
        assert_eq!(&mdp.next[0..4], &[0, 0, 2, 0]);
        assert_eq!(&mdp.next[4..8], &[1, 1, 4, 1]);
        assert_eq!(&mdp.next[12..16], &[3, 4, 3, 2]); // s3 = (1, 1): up is the wall
        assert_eq!(mdp.features, DMatrix::identity(5, 5));
        mdp.check().unwrap();
    }

    #[test]
    fn soft_policy_matches_hand_computation() {
        // r = (0, ln 3). With one step to go from either state: π(a) ∝ exp(r(next(s, a))), so
        // stay/switch = 1/4, 3/4 from state 0 and 3/4, 1/4 from state 1. With two steps to go
        // V_1(s) = r(s) + ln 4 adds the same constant to both actions, so π_0 = π_1.
        let mdp = two_state(DMatrix::identity(2, 2));
        let pi = soft_optimal_policy(&mdp, &[0.0, 3f64.ln()], 2).unwrap();
        assert_eq!(pi.len(), 2);
        for p in &pi {
            for (got, want) in p.iter().zip([0.25, 0.75, 0.75, 0.25]) {
                assert!((got - want).abs() < 1e-12, "{p:?}");
            }
        }
        // Likelihood of the demo 0 → 1 with one step: ln(3/4) per step.
        let obj = maxent_objective(&mdp, &[vec![0, 1]], &[0.0, 3f64.ln()], 1, 0.0).unwrap();
        assert!((obj.log_likelihood_per_step - 0.75f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn soft_policy_is_stable_for_huge_rewards() {
        let (mdp, _) = TabularMdp::grid(4, 1, |_, _| false);
        let pi = soft_optimal_policy(&mdp, &[0.0, 0.0, 0.0, 5000.0], 6).unwrap();
        for p in &pi {
            for s in 0..4 {
                let sum: f64 = p[s * 4..s * 4 + 4].iter().sum();
                assert!((sum - 1.0).abs() < 1e-12 && p.iter().all(|v| v.is_finite()));
            }
        }
        // From state 2 with any steps to go, moving right onto the reward is (numerically) certain.
        assert!((pi[0][2 * 4 + RIGHT] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        // Tiny grid with a wall, dense random features, demos of different lengths (including
        // blocked moves that two actions explain), a random θ and an L2 term.
        let (mut mdp, _) = TabularMdp::grid(3, 2, |x, y| (x, y) == (1, 0));
        let mut r = rng("fd");
        mdp.features = DMatrix::from_fn(5, 3, |_, _| r.random_range(-1.0..1.0));
        let demos = vec![vec![0, 2, 3, 4, 1], vec![2, 2, 3], vec![1, 1], vec![4, 3, 3, 2, 0], vec![3]];
        let theta = [0.7, -0.4, 1.1];
        let (horizon, l2) = (5, 0.3);
        let at = |t: &[f64]| maxent_objective(&mdp, &demos, t, horizon, l2).unwrap();
        let grad = at(&theta).gradient;
        let h = 1e-5;
        for j in 0..3 {
            let (mut plus, mut minus) = (theta, theta);
            plus[j] += h;
            minus[j] -= h;
            let fd = (at(&plus).objective - at(&minus).objective) / (2.0 * h);
            assert!((fd - grad[j]).abs() < 1e-7 * (1.0 + fd.abs()), "θ_{j}: analytic {} vs fd {fd}", grad[j]);
        }
    }

    /// 5×5 open grid, reward `goal_reward` at the goal and 0 elsewhere, demos from the soft-optimal
    /// policy from uniformly random starts.
    fn goal_problem(
        n_demos: usize,
        horizon: usize,
        goal_reward: f64,
    ) -> (TabularMdp, usize, Vec<f64>, Vec<Vec<usize>>) {
        let (mdp, cells) = TabularMdp::grid(5, 5, |_, _| false);
        let goal = cells[5 + 3].unwrap(); // (3, 1)
        let mut truth = vec![0.0; mdp.n_states];
        truth[goal] = goal_reward;
        let policy = soft_optimal_policy(&mdp, &truth, horizon).unwrap();
        let mut r = rng("demos");
        let demos = (0..n_demos)
            .map(|_| sample_demo(&mdp, &policy, r.random_range(0..mdp.n_states), horizon, &mut r))
            .collect();
        (mdp, goal, truth, demos)
    }

    #[test]
    fn recovers_a_planted_goal_reward() {
        let (mdp, goal, truth, demos) = goal_problem(1000, 10, 1.0);
        let cfg = IrlConfig { horizon: 10, ..IrlConfig::default() };
        let fit = maxent_irl(&mdp, &demos, &cfg).unwrap();
        let corr = pearson(&fit.state_reward, &truth).unwrap();
        assert!(corr > 0.8, "correlation with the true reward {corr}");
        let argmax = (0..mdp.n_states).max_by(|&a, &b| fit.state_reward[a].total_cmp(&fit.state_reward[b])).unwrap();
        assert_eq!(argmax, goal);
        assert_eq!(fit.log_likelihood.len(), cfg.iterations + 1);
        // The recovered reward explains the demos at least as well as the truth does (it is the MLE
        // up to the small L2 term).
        let truth_ll = maxent_objective(&mdp, &demos, &truth, 10, 0.0).unwrap().log_likelihood_per_step;
        assert!(fit.log_likelihood.last().unwrap() >= &(truth_ll - 1e-3));
    }

    #[test]
    fn log_likelihood_increases_and_feature_gap_shrinks() {
        // A stronger reward than in the recovery test, so that there is a clear likelihood to gain.
        let (mdp, _, truth, mut demos) = goal_problem(100, 8, 3.0);
        // Mixed lengths: episodes that ended early.
        for (i, d) in demos.iter_mut().enumerate() {
            d.truncate(2 + i % 8);
        }
        let cfg = IrlConfig { horizon: 8, iterations: 150, ..IrlConfig::default() };
        let fit = maxent_irl(&mdp, &demos, &cfg).unwrap();
        let ll = &fit.log_likelihood;
        // θ = 0: every action equally likely, so a step has probability (actions that make it)/4;
        // more than one action only for a blocked move that stays put at an edge or corner.
        let mut uniform = 0.0;
        for d in &demos {
            for p in d.windows(2) {
                uniform += ((0..4).filter(|&a| mdp.next_state(p[0], a) == p[1]).count() as f64 / 4.0).ln();
            }
        }
        uniform /= demos.iter().map(|d| d.len() - 1).sum::<usize>() as f64;
        assert!((ll[0] - uniform).abs() < 1e-12, "start {} vs {uniform}", ll[0]);
        let truth_ll = maxent_objective(&mdp, &demos, &truth, 8, 0.0).unwrap().log_likelihood_per_step;
        let end = *ll.last().unwrap();
        assert!(end > ll[0] + 0.1, "{} → {end}", ll[0]);
        // The fit is the (near-unregularised) MLE, so it explains the demos at least as well as the
        // reward that generated them.
        assert!(end >= truth_ll - 1e-3, "fit {end} vs truth {truth_ll}");
        // Adam may wobble slightly, but never by much, and the trend is up throughout.
        for w in ll.windows(2) {
            assert!(w[1] > w[0] - 1e-3, "log-likelihood fell from {} to {}", w[0], w[1]);
        }
        for q in 1..4 {
            assert!(ll[q * ll.len() / 4] > ll[(q - 1) * ll.len() / 4]);
        }
        let start_gap = maxent_objective(&mdp, &demos, &vec![0.0; mdp.n_states], 8, 0.0).unwrap().feature_gap;
        assert!(fit.feature_gap < 0.2 * start_gap, "gap {} from {start_gap}", fit.feature_gap);
    }

    #[test]
    fn pearson_cases() {
        // Deviations (−1, 0, 1) and (−13/6, −1/6, 7/3): Σdxdy = 4.5, Σdx² = 2, Σdy² = 61/6, so
        // r = 4.5 / √(61/3).
        let want = 4.5 / (61.0f64 / 3.0).sqrt();
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.5]).unwrap() - want).abs() < 1e-12);
        assert_eq!(pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        assert_eq!(pearson(&[1.0, 1.0], &[1.0, 2.0]), None);
        assert_eq!(pearson(&[1.0], &[1.0]), None);
        assert_eq!(pearson(&[1.0, 2.0], &[1.0]), None);
        assert_eq!(pearson(&[1.0, f64::NAN], &[1.0, 2.0]), None);
    }

    #[test]
    fn every_error_variant_comes_from_the_right_bad_input() {
        use IrlError::*;
        let (mdp, _) = TabularMdp::grid(3, 1, |_, _| false); // states 0 - 1 - 2 in a row
        let cfg = IrlConfig { horizon: 3, iterations: 1, ..IrlConfig::default() };
        assert_eq!(maxent_irl(&mdp, &[], &cfg), Err(NoDemonstrations));
        assert_eq!(maxent_irl(&mdp, &[vec![0], vec![2]], &cfg), Err(NoDemonstrations));
        assert_eq!(maxent_irl(&mdp, &[vec![0, 1], vec![]], &cfg), Err(EmptyDemo { demo: 1 }));
        assert_eq!(
            maxent_irl(&mdp, &[vec![0, 1, 2, 2, 1]], &cfg),
            Err(DemoTooLong { demo: 0, states: 5, max_states: 4 })
        );
        assert_eq!(
            maxent_irl(&mdp, &[vec![0, 1], vec![1, 7]], &cfg),
            Err(BadDemoState { demo: 1, step: 1, state: 7, n_states: 3 })
        );
        assert_eq!(maxent_irl(&mdp, &[vec![0, 1, 0, 2]], &cfg), Err(BadAction { demo: 0, step: 2, from: 0, to: 2 }));
        let id = || DMatrix::identity(2, 2);
        assert_eq!(TabularMdp::new(2, 2, vec![0, 1, 1, 2], id()), Err(BadState { index: 2, n_states: 2 }));
        assert!(matches!(TabularMdp::new(2, 2, vec![0, 1, 1], id()), Err(Shape { expected: 4, got: 3, .. })));
        assert!(matches!(
            TabularMdp::new(2, 2, vec![0, 1, 1, 0], DMatrix::identity(3, 3)),
            Err(Shape { expected: 2, got: 3, .. })
        ));
        assert!(matches!(soft_optimal_policy(&mdp, &[0.0], 2), Err(Shape { expected: 3, got: 1, .. })));
        assert!(matches!(maxent_objective(&mdp, &[vec![0, 1]], &[0.0], 2, 0.0), Err(Shape { expected: 3, .. })));
        let mut nan_features = id();
        nan_features[(0, 1)] = f64::NAN;
        assert_eq!(TabularMdp::new(2, 2, vec![0, 1, 1, 0], nan_features), Err(NonFinite { what: "features" }));
        assert_eq!(soft_optimal_policy(&mdp, &[0.0, f64::INFINITY, 0.0], 2), Err(NonFinite { what: "state_reward" }));
        assert!(matches!(
            TabularMdp::new(0, 2, vec![], DMatrix::zeros(0, 1)),
            Err(BadParameter { name: "n_states", .. })
        ));
        assert!(matches!(TabularMdp::new(2, 0, vec![], id()), Err(BadParameter { name: "n_actions", .. })));
        let demos = [vec![0, 1]];
        for (bad, name) in [
            (IrlConfig { horizon: 0, ..cfg }, "horizon"),
            (IrlConfig { learning_rate: 0.0, ..cfg }, "learning_rate"),
            (IrlConfig { learning_rate: f64::NAN, ..cfg }, "learning_rate"),
            (IrlConfig { l2: -1.0, ..cfg }, "l2"),
        ] {
            assert!(matches!(maxent_irl(&mdp, &demos, &bad), Err(BadParameter { name: n, .. }) if n == name));
        }
        // The public fields can break the invariant after construction: still an error, no panic.
        let mut broken = mdp.clone();
        broken.next[0] = 99;
        assert_eq!(maxent_irl(&broken, &demos, &cfg), Err(BadState { index: 99, n_states: 3 }));
        let (walls_only, _) = TabularMdp::grid(2, 2, |_, _| true);
        assert!(matches!(maxent_irl(&walls_only, &demos, &cfg), Err(BadParameter { name: "n_states", .. })));
        let msg = BadAction { demo: 0, step: 2, from: 0, to: 2 }.to_string();
        assert!(msg.contains("demonstration 0, step 2") && msg.contains("stay action"), "{msg}");
    }
}
