//! Per-episode accumulation ([`EpisodeStats`]) and the auto-reset wrapper ([`AutoReset`]).
//!
//! Invariants: an episode's stats cover exactly the steps from its reset to the step that ended it
//! (inclusive); `first_step` of an event is the 1-based step on which it first happened, so "which
//! came first" is a comparison (ties mean the same step). Auto-reset writes the terminal
//! observation before resetting, so value bootstrapping on truncation can use it.

use crate::api::{End, Env, EnvSpec, Step};
use mesalab_core::StreamRng;

/// Maximum number of named events per env (the width of [`crate::api::Events`]).
pub const MAX_EVENTS: usize = 32;
const NEVER: u32 = u32::MAX;

/// What one finished (or running) episode amounted to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpisodeStats {
    /// Sum of base rewards (undiscounted).
    pub episode_return: f64,
    /// Sum of hidden-performance increments.
    pub performance: f64,
    /// Number of steps taken.
    pub length: u32,
    /// How it ended; `None` while running.
    pub end: Option<End>,
    /// `counts[i]`: steps on which event `i` happened.
    pub counts: [u32; MAX_EVENTS],
    first: [u32; MAX_EVENTS],
}

impl Default for EpisodeStats {
    fn default() -> Self {
        Self {
            episode_return: 0.0,
            performance: 0.0,
            length: 0,
            end: None,
            counts: [0; MAX_EVENTS],
            first: [NEVER; MAX_EVENTS],
        }
    }
}

impl EpisodeStats {
    /// Adds one step.
    pub fn record(&mut self, step: &Step) {
        self.episode_return += f64::from(step.reward);
        self.performance += f64::from(step.performance);
        self.length += 1;
        for i in step.events.iter() {
            self.counts[i] += 1;
            if self.first[i] == NEVER {
                self.first[i] = self.length;
            }
        }
        if step.end.is_some() {
            self.end = step.end;
        }
    }

    /// The 1-based step on which event `index` first happened.
    pub fn first_step(&self, index: usize) -> Option<u32> {
        self.first.get(index).copied().filter(|&s| s != NEVER)
    }

    /// Whether event `index` happened at all.
    pub fn happened(&self, index: usize) -> bool {
        self.first_step(index).is_some()
    }

    /// Count of the event called `name` (0 if it never happened or the env has no such event).
    pub fn count(&self, spec: &EnvSpec, name: &str) -> u32 {
        spec.event_index(name).map_or(0, |i| self.counts[i])
    }

    /// First step of the event called `name`.
    pub fn first(&self, spec: &EnvSpec, name: &str) -> Option<u32> {
        spec.event_index(name).and_then(|i| self.first_step(i))
    }

    /// Which of the events `a` and `b` happened first: `Some(Ordering::Less)` when `a` came strictly
    /// first (or only `a` happened), `Equal` when on the same step, `None` when neither happened.
    pub fn order(&self, spec: &EnvSpec, a: &str, b: &str) -> Option<std::cmp::Ordering> {
        match (self.first(spec, a), self.first(spec, b)) {
            (None, None) => None,
            (Some(_), None) => Some(std::cmp::Ordering::Less),
            (None, Some(_)) => Some(std::cmp::Ordering::Greater),
            (Some(x), Some(y)) => Some(x.cmp(&y)),
        }
    }

    /// `(name, count)` for every event that happened, in spec order (for printing).
    pub fn event_counts(&self, spec: &EnvSpec) -> Vec<(&'static str, u32)> {
        spec.events.iter().enumerate().filter(|(i, _)| self.counts[*i] > 0).map(|(i, n)| (*n, self.counts[i])).collect()
    }
}

/// One env instance's running state inside an auto-resetting wrapper: state, its own RNG, and the
/// stats of the episode in progress.
///
/// It also keeps the rule that regenerates its state — the RNG position at the episode's reset
/// and the actions taken since — so a checkpoint can store a few integers instead of the env's
/// state type ([`SlotSnapshot`], [`Slot::restore`]).
#[derive(Clone, Debug)]
pub(crate) struct Slot<S> {
    pub state: S,
    pub rng: StreamRng,
    pub stats: EpisodeStats,
    /// `rng`'s word position just before this episode's reset.
    episode_start: u128,
    /// The actions of the episode in progress.
    actions: Vec<u32>,
}

/// How to regenerate one slot exactly: reset from its stream at `episode_start`, then replay
/// `actions` (the env is a deterministic function of its state, the action and its RNG).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SlotSnapshot {
    pub episode_start: u128,
    pub actions: Vec<u32>,
}

impl<S> Slot<S> {
    pub fn new<E: Env<State = S>>(env: &E, mut rng: StreamRng) -> Self {
        let episode_start = rng.get_word_pos();
        let state = env.reset(&mut rng);
        Self { state, rng, stats: EpisodeStats::default(), episode_start, actions: Vec::new() }
    }

    pub fn snapshot(&self) -> SlotSnapshot {
        SlotSnapshot { episode_start: self.episode_start, actions: self.actions.clone() }
    }

    /// The slot `snapshot` describes, on stream `rng` (the slot's own stream, at any position).
    /// Errors when replaying its actions ends the episode (a snapshot of another env or seed).
    pub fn restore<E: Env<State = S>>(env: &E, mut rng: StreamRng, snapshot: &SlotSnapshot) -> Result<Self, String> {
        rng.set_word_pos(snapshot.episode_start);
        let mut slot = Self::new(env, rng);
        for (t, &a) in snapshot.actions.iter().enumerate() {
            let action = a as usize;
            if action >= env.spec().actions.len() {
                return Err(format!("action {action} at step {t} is not an action of {}", env.spec().name));
            }
            let step = env.step(&mut slot.state, action, &mut slot.rng);
            slot.stats.record(&step);
            slot.actions.push(a);
            if step.end.is_some() {
                return Err(format!(
                    "replaying the saved actions ended the episode at step {t} of {}: the snapshot is not of this env and seed",
                    snapshot.actions.len()
                ));
            }
        }
        Ok(slot)
    }

    /// Steps, and when the episode ends writes the terminal observation into `terminal_obs`, resets
    /// and returns the finished episode's stats. Always writes the (post-reset) observation to `obs`.
    pub fn step<E: Env<State = S>>(
        &mut self,
        env: &E,
        action: usize,
        obs: &mut [f32],
        terminal_obs: &mut [f32],
    ) -> (Step, Option<EpisodeStats>) {
        let step = env.step(&mut self.state, action, &mut self.rng);
        self.stats.record(&step);
        let finished = if step.end.is_some() {
            env.write_obs(&self.state, terminal_obs);
            self.episode_start = self.rng.get_word_pos();
            self.actions.clear();
            self.state = env.reset(&mut self.rng);
            Some(std::mem::take(&mut self.stats))
        } else {
            self.actions.push(u32::try_from(action).unwrap_or(u32::MAX));
            None
        };
        env.write_obs(&self.state, obs);
        (step, finished)
    }
}

/// A single env that resets itself when an episode ends, keeping the terminal observation.
#[derive(Clone, Debug)]
pub struct AutoReset<E: Env> {
    env: E,
    slot: Slot<E::State>,
    obs: Vec<f32>,
    terminal_obs: Vec<f32>,
}

impl<E: Env> AutoReset<E> {
    /// Resets with `rng` (which the wrapper keeps and uses for all later steps and resets).
    pub fn new(env: E, rng: StreamRng) -> Self {
        let slot = Slot::new(&env, rng);
        let n = env.spec().obs_len();
        let mut obs = vec![0.0; n];
        env.write_obs(&slot.state, &mut obs);
        Self { env, slot, obs, terminal_obs: vec![0.0; n] }
    }
    pub fn env(&self) -> &E {
        &self.env
    }
    pub fn state(&self) -> &E::State {
        &self.slot.state
    }
    /// The current observation (of the new episode right after an auto-reset).
    pub fn obs(&self) -> &[f32] {
        &self.obs
    }
    /// The observation of the last terminal state (valid after a step that ended an episode).
    pub fn terminal_obs(&self) -> &[f32] {
        &self.terminal_obs
    }
    /// The running episode's stats so far.
    pub fn stats(&self) -> &EpisodeStats {
        &self.slot.stats
    }
    /// Steps; returns the step and, when it ended the episode, that episode's stats.
    pub fn step(&mut self, action: usize) -> (Step, Option<EpisodeStats>) {
        self.slot.step(&self.env, action, &mut self.obs, &mut self.terminal_obs)
    }
    /// Abandons the running episode and starts a new one.
    pub fn reset(&mut self) {
        self.slot.state = self.env.reset(&mut self.slot.rng);
        self.slot.stats = EpisodeStats::default();
        self.env.write_obs(&self.slot.state, &mut self.obs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Events;

    #[test]
    fn stats_accumulate_and_order_events() {
        let spec = EnvSpec {
            name: "t-v1",
            actions: &["a"],
            channels: vec![],
            obs_shape: [1, 1, 1],
            events: &["x", "y", "z"],
            max_steps: 10,
        };
        let mut st = EpisodeStats::default();
        let mut ev = Events::default();
        ev.set(1);
        st.record(&Step { reward: 1.0, performance: 0.5, end: None, events: ev });
        let mut ev = Events::default();
        ev.set(0);
        ev.set(1);
        st.record(&Step { reward: 2.0, performance: 0.0, end: Some(End::Terminated), events: ev });
        assert_eq!((st.episode_return, st.performance, st.length), (3.0, 0.5, 2));
        assert_eq!(st.count(&spec, "y"), 2);
        assert_eq!(st.first(&spec, "x"), Some(2));
        assert_eq!(st.order(&spec, "y", "x"), Some(std::cmp::Ordering::Less));
        assert_eq!(st.order(&spec, "z", "x"), Some(std::cmp::Ordering::Greater));
        assert_eq!(st.order(&spec, "z", "nope"), None);
        assert_eq!(st.end, Some(End::Terminated));
        assert_eq!(st.event_counts(&spec), vec![("x", 1), ("y", 2)]);
    }
}
