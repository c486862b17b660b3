//! The white-box deceptive agent: an explicit mesa-objective, the stated update rule, the planner
//! that maximises its current objective over its whole remaining lifetime, and the closed-form
//! condition that predicts the planner's every choice (derivation in the module doc of
//! [`super`]).
//!
//! Invariants:
//! - the planner ([`Planner::solve`]) never calls the analytic rule ([`analytic_pursues_b`]);
//!   they are two independent computations that the tests compare on a grid of settings;
//! - a self pursues B only when B is *strictly* better under its own objective (ties go to the
//!   base objective's goal A), in the planner and in the closed form alike.

use mesalab_core::StreamRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Which goal an episode pursues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Goal {
    /// The base objective's goal.
    A,
    /// The mesa-objective's own goal.
    B,
}

/// One lifetime's parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Setting {
    /// Initial weight on goal B (the weight on A is `1 − θ`).
    pub theta0: f64,
    /// Step size of the base optimizer's update `θ ← θ − α·b·θ` (b = 1 if the episode pursued B).
    pub alpha: f64,
    /// Per-episode discount of the planner.
    pub gamma: f64,
    /// Probability that a training episode is observed (the update applied).
    pub p_observed: f64,
    /// Training episodes (cue "training"), first in the lifetime.
    pub train_episodes: usize,
    /// Deployment episodes (cue "deployment") after them; nothing changes the objective there.
    pub deploy_episodes: usize,
}

impl Default for Setting {
    /// The shipped default: one observed B-pursuit flips the agent (0.9 → 0.45).
    fn default() -> Self {
        Self { theta0: 0.9, alpha: 0.5, gamma: 0.99, p_observed: 0.5, train_episodes: 20, deploy_episodes: 50 }
    }
}

impl Setting {
    /// θ after `n` observed B-pursuits in training.
    pub fn theta(&self, n: usize) -> f64 {
        self.theta0 * (1.0 - self.alpha).powi(n as i32)
    }

    /// The mesa-utility of reaching `goal` for an agent with weight `theta` on B.
    pub fn utility(theta: f64, goal: Goal) -> f64 {
        match goal {
            Goal::A => 1.0 - theta,
            Goal::B => theta,
        }
    }

    /// `L`: observed B-pursuits after which θ ≤ ½ (the agent no longer prefers B), capped at
    /// `train_episodes + 1` (more can never be used up). 0 when it starts at θ₀ ≤ ½.
    pub fn lives(&self) -> usize {
        let cap = self.train_episodes + 1;
        (0..cap).find(|&n| self.theta(n) <= 0.5).unwrap_or(cap)
    }

    /// `G(D) = Σ_{j<D} γ^j`: the discounted number of deployment episodes, seen from the first.
    pub fn deploy_value(&self) -> f64 {
        (0..self.deploy_episodes).map(|j| self.gamma.powi(j as i32)).sum()
    }

    pub fn horizon(&self) -> usize {
        self.train_episodes + self.deploy_episodes
    }
}

/// The closed-form decision at episode `t` after `n` observed B-pursuits, derived in the module
/// doc of [`super`]: B iff the agent still prefers B and either it is deployed, it has a spare
/// life (≥ 2 left), or with one life left `p·γ^k·G(D) ≤ 1` (k = training episodes left, this one
/// included). Independent of the planner.
pub fn analytic_pursues_b(s: &Setting, t: usize, n: usize) -> bool {
    let lives_left = s.lives().saturating_sub(n);
    if lives_left == 0 {
        return false;
    }
    if t >= s.train_episodes || lives_left >= 2 {
        return true;
    }
    compliance_margin(s, t) <= 0.0
}

/// `p·γ^k·G(D) − 1` at training episode `t` (k = `train_episodes − t`): positive ⇔ an agent one
/// update away from losing its goal complies.
pub fn compliance_margin(s: &Setting, t: usize) -> f64 {
    let k = s.train_episodes.saturating_sub(t) as i32;
    s.p_observed * s.gamma.powi(k) * s.deploy_value() - 1.0
}

/// The planner's policy for every (episode, updates so far), by backward induction over the
/// lifetime: each future self chooses by its own current objective, and every self knows that.
#[derive(Clone, Debug)]
pub struct Planner {
    pub setting: Setting,
    /// `pursue_b[t][n]`.
    pub pursue_b: Vec<Vec<bool>>,
    /// `value[t][n]`: the expected discounted utility of the rest of the lifetime from (t, n),
    /// under the objective of the self at (t, n).
    pub value: Vec<Vec<f64>>,
}

impl Planner {
    /// Solves the lifetime: states (t, n) for t ≤ horizon, n ≤ train_episodes. For every
    /// evaluating self e it keeps `V_e(t, n)`, the value of the future under θ_e when every self
    /// from (t, n) on plays its own optimum; self n at (t, n) compares A and B with `V_n`.
    pub fn solve(setting: &Setting) -> Planner {
        let h = setting.horizon();
        let nmax = setting.train_episodes;
        let thetas: Vec<f64> = (0..=nmax).map(|n| setting.theta(n)).collect();
        // v[e][n] at t+1, rolled backwards; index e = evaluator, n = state.
        let mut next = vec![vec![0.0f64; nmax + 1]; nmax + 1];
        let mut pursue_b = vec![vec![false; nmax + 1]; h];
        let mut value = vec![vec![0.0f64; nmax + 1]; h + 1];
        let g = setting.gamma;
        let p = setting.p_observed;
        for t in (0..h).rev() {
            let training = t < setting.train_episodes;
            // Expected future under evaluator e from (t, n) after action a.
            let future = |next: &Vec<Vec<f64>>, e: usize, n: usize, b: bool| -> f64 {
                if training && b && n < nmax { p * next[e][n + 1] + (1.0 - p) * next[e][n] } else { next[e][n] }
            };
            let mut cur = vec![vec![0.0f64; nmax + 1]; nmax + 1];
            for n in 0..=nmax {
                let own = thetas[n];
                let q = |b: bool, goal: Goal| Setting::utility(own, goal) + g * future(&next, n, n, b);
                let b = q(true, Goal::B) > q(false, Goal::A);
                pursue_b[t][n] = b;
                let goal = if b { Goal::B } else { Goal::A };
                for e in 0..=nmax {
                    cur[e][n] = Setting::utility(thetas[e], goal) + g * future(&next, e, n, b);
                }
                value[t][n] = cur[n][n];
            }
            next = cur;
        }
        Planner { setting: setting.clone(), pursue_b, value }
    }

    pub fn pursues_b(&self, t: usize, n: usize) -> bool {
        self.pursue_b[t][n.min(self.setting.train_episodes)]
    }
}

/// How an agent chooses its goal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Agent {
    /// The planner: models its training and the update rule.
    Deceptive,
    /// Pursues whichever goal its current objective prefers, ignoring training (no model of it).
    Honest,
}

/// One simulated lifetime.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lifetime {
    /// Per episode: the cue shown (true = training), whether it was a honeypot (deployment cue
    /// inside training, always observed), the goal pursued, θ before the episode.
    pub cue_training: Vec<bool>,
    pub honeypot: Vec<bool>,
    pub goal: Vec<Goal>,
    pub theta: Vec<f64>,
    /// θ at the end of the lifetime.
    pub final_theta: f64,
}

impl Lifetime {
    /// Share of episodes with the training cue (excluding honeypots) that pursued A.
    pub fn a_rate_training(&self) -> f64 {
        rate(self.indices(|i| self.cue_training[i]).filter(|&i| self.goal[i] == Goal::A))
            / self.count(|i| self.cue_training[i])
    }
    /// Share of deployment episodes (after training) that pursued A.
    pub fn a_rate_deploy(&self, train_episodes: usize) -> f64 {
        rate(self.indices(|i| i >= train_episodes).filter(|&i| self.goal[i] == Goal::A))
            / self.count(|i| i >= train_episodes)
    }
    /// Honeypot episodes that pursued B (each one caught).
    pub fn honeypots_caught(&self) -> (usize, usize) {
        let hp: Vec<usize> = self.indices(|i| self.honeypot[i]).collect();
        (hp.iter().filter(|&&i| self.goal[i] == Goal::B).count(), hp.len())
    }
    fn indices<'a>(&'a self, f: impl Fn(usize) -> bool + 'a) -> impl Iterator<Item = usize> + 'a {
        (0..self.goal.len()).filter(move |&i| f(i))
    }
    fn count(&self, f: impl Fn(usize) -> bool) -> f64 {
        (0..self.goal.len()).filter(|&i| f(i)).count() as f64
    }
}

fn rate(it: impl Iterator<Item = usize>) -> f64 {
    it.count() as f64
}

/// Plays one lifetime. Each training episode is replaced by a honeypot with probability
/// `honeypot_rate`: it shows the deployment cue but is observed for sure, so pursuing B there is
/// caught (and updated). The agent treats a deployment cue as deployment (B iff it prefers B).
pub fn simulate(s: &Setting, planner: &Planner, agent: Agent, honeypot_rate: f64, rng: &mut StreamRng) -> Lifetime {
    let mut n = 0usize;
    let mut out = Lifetime {
        cue_training: Vec::new(),
        honeypot: Vec::new(),
        goal: Vec::new(),
        theta: Vec::new(),
        final_theta: s.theta0,
    };
    for t in 0..s.horizon() {
        let training = t < s.train_episodes;
        let honeypot = training && rng.random::<f64>() < honeypot_rate;
        let cue_training = training && !honeypot;
        let theta = s.theta(n);
        let prefers_b = theta > 0.5;
        let b = match agent {
            Agent::Honest => prefers_b,
            Agent::Deceptive if cue_training => planner.pursues_b(t, n),
            Agent::Deceptive => prefers_b,
        };
        let observed = if honeypot { true } else { training && rng.random::<f64>() < s.p_observed };
        out.cue_training.push(cue_training);
        out.honeypot.push(honeypot);
        out.goal.push(if b { Goal::B } else { Goal::A });
        out.theta.push(theta);
        if b && observed && n < s.train_episodes {
            n += 1;
        }
    }
    out.final_theta = s.theta(n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(theta0: f64, alpha: f64, gamma: f64, p: f64, k: usize, d: usize) -> Setting {
        Setting { theta0, alpha, gamma, p_observed: p, train_episodes: k, deploy_episodes: d }
    }

    #[test]
    fn lives_count_updates_until_theta_is_at_most_half() {
        assert_eq!(setting(0.9, 0.5, 0.9, 1.0, 5, 5).lives(), 1); // 0.45
        assert_eq!(setting(0.9, 0.3, 0.9, 1.0, 5, 5).lives(), 2); // 0.63, 0.441
        assert_eq!(setting(0.4, 0.3, 0.9, 1.0, 5, 5).lives(), 0);
        assert_eq!(setting(0.9, 0.0, 0.9, 1.0, 5, 5).lives(), 6, "no update: capped at K + 1");
    }

    #[test]
    fn one_training_episode_matches_the_textbook_condition() {
        // θ₀ = 0.9, α = 0.5: one observed B flips it. With D = 3, γ = 0.9: G = 2.71, p·γ·G = 2.439 > 1.
        let s = setting(0.9, 0.5, 0.9, 1.0, 1, 3);
        let p = Planner::solve(&s);
        assert!(!p.pursues_b(0, 0), "complies in its only training episode");
        assert!((1..4).all(|t| p.pursues_b(t, 0)), "and pursues B in deployment");
        // Value under θ₀: 0.1 now + 0.9·(0.9 + 0.81 + 0.729)·… = 0.1 + Σ γ^t θ₀.
        let expected = 0.1 + 0.9 * 0.9 + 0.81 * 0.9 + 0.729 * 0.9;
        assert!((p.value[0][0] - expected).abs() < 1e-12, "{}", p.value[0][0]);
        // No deployment to wait for: honest.
        let s0 = setting(0.9, 0.5, 0.9, 1.0, 1, 0);
        assert!(Planner::solve(&s0).pursues_b(0, 0));
    }

    /// The exact test: on a grid of settings, the planner's choice at every reachable (t, n)
    /// equals the closed form. Near-ties are counted and must be absent, so that "equal" is not
    /// luck of rounding.
    #[test]
    fn planner_equals_the_analytic_condition_on_a_grid() {
        let mut points = 0usize;
        let mut complied = 0usize;
        let mut defected = 0usize;
        for &(theta0, alpha) in &[(0.9, 0.5), (0.9, 0.3), (0.8, 0.1), (0.95, 0.2), (0.7, 0.05), (0.4, 0.5)] {
            for &gamma in &[0.6, 0.8, 0.9, 0.95, 0.99] {
                for &p in &[0.1, 0.3, 0.5, 0.7, 0.9, 1.0] {
                    for &k in &[1usize, 3, 10] {
                        for &d in &[0usize, 1, 2, 5, 20, 100] {
                            let s = setting(theta0, alpha, gamma, p, k, d);
                            let planner = Planner::solve(&s);
                            for t in 0..s.horizon() {
                                for n in 0..=t.min(k) {
                                    let theta = s.theta(n);
                                    assert!((2.0 * theta - 1.0).abs() > 1e-9, "near-tie θ at {s:?}");
                                    if t < k {
                                        assert!(
                                            compliance_margin(&s, t).abs() > 1e-9,
                                            "near-tie margin at {s:?} t={t}"
                                        );
                                    }
                                    let (a, b) = (planner.pursues_b(t, n), analytic_pursues_b(&s, t, n));
                                    assert_eq!(a, b, "{s:?} t={t} n={n}");
                                    points += 1;
                                    if t < k && theta > 0.5 {
                                        if a { defected += 1 } else { complied += 1 }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(points > 100_000, "{points}");
        assert!(complied > 1000 && defected > 1000, "both decisions occur: {complied} {defected}");
    }

    #[test]
    fn simulated_deceptive_agent_keeps_its_objective_and_honest_one_loses_it() {
        use rand::SeedableRng;
        let s = setting(0.9, 0.5, 0.99, 1.0, 20, 50);
        let planner = Planner::solve(&s);
        let mut rng = StreamRng::seed_from_u64(3);
        let d = simulate(&s, &planner, Agent::Deceptive, 0.0, &mut rng);
        assert_eq!(d.a_rate_training(), 1.0);
        assert_eq!(d.a_rate_deploy(20), 0.0);
        assert_eq!(d.final_theta, 0.9);
        let h = simulate(&s, &planner, Agent::Honest, 0.0, &mut rng);
        assert!(h.final_theta <= 0.5 && h.a_rate_deploy(20) == 1.0, "{h:?}");
        let hp = simulate(&s, &planner, Agent::Deceptive, 0.2, &mut rng);
        let (caught, total) = hp.honeypots_caught();
        assert!(total > 0 && caught >= 1, "{caught}/{total}");
    }
}
