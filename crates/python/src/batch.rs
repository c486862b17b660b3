//! [`Batch`]: N copies of one registry env stepped together, the engine under both the Gymnasium
//! single env (N = 1, no autoreset) and the native vector env.
//!
//! Invariants:
//! - Slot `i` draws every random number from `Streams::new(Seed(seed_i)).indexed("env", index_i)`,
//!   where `seed_i` is the seed of its last seeded reset and `index_i` its env index (the slot
//!   number in a vector env). A reset without a seed continues that stream, so a slot's levels and
//!   trajectory are exactly those of slot `index_i` of `mesalab_envs::VecEnv` for the same seed and
//!   actions (which resets with the same stream when an episode ends).
//! - Nothing is written when a call is refused (bad action, stepping a slot that needs a reset):
//!   every check runs before the first slot moves.
//! - `step` writes each output row once, straight into the caller's buffers (NumPy arrays in the
//!   bindings); no intermediate copy.

use mesalab_core::config::Override;
use mesalab_core::{Seed, StreamRng, Streams};
use mesalab_envs::{AnyEnv, AnyState, End, Env, EnvSpec, EpisodeStats, registry};

/// What a slot does on the step after its episode ended (Gymnasium ≥ 1.0 `AutoresetMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Autoreset {
    /// Gymnasium's default: the step that ends an episode returns its last observation; the next
    /// step ignores the slot's action, resets it and returns the first observation of the new
    /// episode with reward 0 and neither terminated nor truncated.
    NextStep,
    /// The step that ends an episode resets the slot at once and returns the new episode's first
    /// observation; the last observation of the old one goes to `final_obs` (mesalab's `VecEnv`).
    SameStep,
    /// No autoreset: stepping a slot whose episode ended is an error until it is reset.
    Disabled,
}

impl Autoreset {
    /// Parses Gymnasium's names (`next_step`, `same_step`, `disabled`; `AutoresetMode.X.value`).
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "next_step" | "NextStep" => Ok(Self::NextStep),
            "same_step" | "SameStep" => Ok(Self::SameStep),
            "disabled" | "Disabled" => Ok(Self::Disabled),
            other => Err(format!(
                "unknown autoreset mode `{other}`{}; valid modes: next_step, same_step, disabled",
                mesalab_core::suggest::closest(other, &["next_step", "same_step", "disabled"])
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default()
            )),
        }
    }
}

/// One env instance: its state (`None` before the first reset), its stream and the running episode.
struct Slot {
    state: Option<AnyState>,
    rng: StreamRng,
    /// The episode ended on the last step and the slot has not been reset since.
    ended: bool,
    stats: EpisodeStats,
    index: u64,
}

/// Where [`Batch::step`] writes its results; every slice has one row per slot (`obs` and
/// `final_obs`: `obs_len` floats per slot).
pub struct StepOut<'a> {
    pub obs: &'a mut [f32],
    pub rewards: &'a mut [f32],
    /// Increment of the intended objective (hidden performance) on this step.
    pub performance: &'a mut [f32],
    pub terminated: &'a mut [bool],
    pub truncated: &'a mut [bool],
    /// Event bitset of the step (bit `k` ⇔ `spec.events[k]`).
    pub events: &'a mut [u32],
    /// The slot took a real step (false: it was reset by next-step autoreset instead).
    pub stepped: &'a mut [bool],
    /// Same-step mode: the last observation of the episode that ended (valid where it ended).
    pub final_obs: &'a mut [f32],
    /// Totals of the episode that ended on this step (valid where `terminated || truncated`).
    pub episode_return: &'a mut [f64],
    pub episode_performance: &'a mut [f64],
    pub episode_length: &'a mut [u32],
    /// `[N * n_events]`: per-event step counts of the episode that ended.
    pub episode_events: &'a mut [u32],
}

/// N copies of one env, each with its own stream.
pub struct Batch {
    env: AnyEnv,
    slots: Vec<Slot>,
    mode: Autoreset,
    obs_len: usize,
}

/// Builds env `name` exactly as `mesalab render NAME --split SPLIT --set k=v …` does; the error
/// text is the CLI's (without its `error: ` prefix).
pub fn make_env(name: &str, split: &str, overrides: &[String]) -> Result<AnyEnv, String> {
    let overrides =
        overrides.iter().map(|s| Override::parse(s)).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
    registry::make(name, split, &overrides).map_err(|e| e.to_string())
}

/// The stream of env `index` under `seed` (the one `VecEnv` slot `index` uses).
pub fn stream(seed: u64, index: u64) -> StreamRng {
    Streams::new(Seed(seed)).indexed("env", index)
}

impl Batch {
    /// `indices[i]` is slot `i`'s env index. Slots start unreset (`reset` must come first).
    pub fn new(env: AnyEnv, indices: &[u64], mode: Autoreset) -> Self {
        let obs_len = env.spec().obs_len();
        let slots = indices
            .iter()
            .map(|&index| Slot {
                state: None,
                rng: stream(0, index),
                ended: false,
                stats: EpisodeStats::default(),
                index,
            })
            .collect();
        Self { env, slots, mode, obs_len }
    }

    pub fn env(&self) -> &AnyEnv {
        &self.env
    }
    pub fn spec(&self) -> &EnvSpec {
        self.env.spec()
    }
    pub fn len(&self) -> usize {
        self.slots.len()
    }
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
    pub fn obs_len(&self) -> usize {
        self.obs_len
    }
    pub fn mode(&self) -> Autoreset {
        self.mode
    }

    /// Resets the slots where `mask` is true (all when `None`). `seeds[i] = Some(s)` restarts slot
    /// `i`'s stream from seed `s`; `None` (or no `seeds`) continues it. Writes those slots' first
    /// observations into `obs` and leaves the other rows untouched.
    pub fn reset(
        &mut self,
        seeds: Option<&[Option<u64>]>,
        mask: Option<&[bool]>,
        obs: &mut [f32],
    ) -> Result<(), String> {
        let n = self.slots.len();
        if let Some(s) = seeds
            && s.len() != n
        {
            return Err(format!("got {} seeds for {n} envs; pass one seed per env or a single int", s.len()));
        }
        if let Some(m) = mask
            && m.len() != n
        {
            return Err(format!("reset_mask has {} entries for {n} envs", m.len()));
        }
        self.check_rows("obs", obs.len(), self.obs_len)?;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if mask.is_some_and(|m| !m[i]) {
                continue;
            }
            if let Some(seed) = seeds.and_then(|s| s[i]) {
                slot.rng = stream(seed, slot.index);
            }
            let state = self.env.reset(&mut slot.rng);
            self.env.write_obs(&state, &mut obs[i * self.obs_len..(i + 1) * self.obs_len]);
            slot.state = Some(state);
            slot.ended = false;
            slot.stats = EpisodeStats::default();
        }
        Ok(())
    }

    /// Steps every slot with `actions[i]`, autoresetting per the mode; see [`StepOut`].
    pub fn step(&mut self, actions: &[i64], out: StepOut<'_>) -> Result<(), String> {
        let n = self.slots.len();
        let n_actions = self.env.spec().actions.len();
        let n_events = self.env.spec().events.len();
        if actions.len() != n {
            return Err(format!("got {} actions for {n} envs", actions.len()));
        }
        for (name, len, width) in [
            ("obs", out.obs.len(), self.obs_len),
            ("final_obs", out.final_obs.len(), self.obs_len),
            ("rewards", out.rewards.len(), 1),
            ("performance", out.performance.len(), 1),
            ("terminated", out.terminated.len(), 1),
            ("truncated", out.truncated.len(), 1),
            ("events", out.events.len(), 1),
            ("stepped", out.stepped.len(), 1),
            ("episode_return", out.episode_return.len(), 1),
            ("episode_performance", out.episode_performance.len(), 1),
            ("episode_length", out.episode_length.len(), 1),
            ("episode_events", out.episode_events.len(), n_events),
        ] {
            self.check_rows(name, len, width)?;
        }
        for (i, (slot, &a)) in self.slots.iter().zip(actions).enumerate() {
            if slot.state.is_none() {
                return Err(format!("env {i} has not been reset; call reset() before step()"));
            }
            if slot.ended && self.mode == Autoreset::Disabled {
                return Err(format!(
                    "env {i}'s episode has ended (terminated or truncated); call reset() before stepping it again"
                ));
            }
            let resetting = slot.ended && self.mode == Autoreset::NextStep;
            if !resetting && usize::try_from(a).map_or(true, |a| a >= n_actions) {
                return Err(format!(
                    "action {a} of env {i} is out of range: valid actions are 0..{n_actions} ({})",
                    self.env.spec().actions.join(", ")
                ));
            }
        }
        let ol = self.obs_len;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let row = i * ol..(i + 1) * ol;
            let state = slot.state.as_mut().expect("checked above");
            if slot.ended {
                // Next-step autoreset (the only mode that reaches here with an ended slot).
                *state = self.env.reset(&mut slot.rng);
                self.env.write_obs(state, &mut out.obs[row]);
                slot.ended = false;
                slot.stats = EpisodeStats::default();
                out.rewards[i] = 0.0;
                out.performance[i] = 0.0;
                out.terminated[i] = false;
                out.truncated[i] = false;
                out.events[i] = 0;
                out.stepped[i] = false;
                continue;
            }
            let step = self.env.step(state, a_index(actions[i]), &mut slot.rng);
            slot.stats.record(&step);
            out.rewards[i] = step.reward;
            out.performance[i] = step.performance;
            out.terminated[i] = step.end == Some(End::Terminated);
            out.truncated[i] = step.end == Some(End::Truncated);
            out.events[i] = step.events.0;
            out.stepped[i] = true;
            if step.end.is_some() {
                let stats = std::mem::take(&mut slot.stats);
                out.episode_return[i] = stats.episode_return;
                out.episode_performance[i] = stats.performance;
                out.episode_length[i] = stats.length;
                out.episode_events[i * n_events..(i + 1) * n_events].copy_from_slice(&stats.counts[..n_events]);
                if self.mode == Autoreset::SameStep {
                    self.env.write_obs(state, &mut out.final_obs[row.clone()]);
                    *state = self.env.reset(&mut slot.rng);
                } else {
                    slot.ended = true;
                }
            }
            self.env.write_obs(state, &mut out.obs[row]);
        }
        Ok(())
    }

    /// The current state of slot `i` as ASCII (the CLI's `render`).
    pub fn render_ascii(&self, i: usize) -> Result<String, String> {
        Ok(self.env.render_ascii(self.state(i)?))
    }

    /// The current state of slot `i` as a standalone SVG element.
    pub fn render_svg(&self, i: usize) -> Result<String, String> {
        Ok(self.env.render_svg(self.state(i)?))
    }

    fn state(&self, i: usize) -> Result<&AnyState, String> {
        let slot = self.slots.get(i).ok_or_else(|| format!("env {i} does not exist ({} envs)", self.slots.len()))?;
        slot.state.as_ref().ok_or_else(|| format!("env {i} has not been reset; call reset() before render()"))
    }

    fn check_rows(&self, name: &str, len: usize, width: usize) -> Result<(), String> {
        let want = self.slots.len() * width;
        if len != want {
            return Err(format!(
                "buffer `{name}` holds {len} values; {want} expected ({} envs × {width})",
                self.slots.len()
            ));
        }
        Ok(())
    }
}

/// Envs whose observations are real vectors rather than 0/1 one-hot grids.
const REAL_VALUED_OBS: &[&str] = &["cartpole-v1"];

/// `(low, high)` of every observation value of `env` (Gymnasium's `Box` bounds): one-hot grids
/// and counters are 0/1; the envs in `REAL_VALUED_OBS` take any finite f32 (as Gymnasium's own
/// CartPole bounds its velocities). Tested on rollouts of every env, so a new env with other
/// values fails until it is listed here.
pub fn obs_bounds(env: &AnyEnv) -> (f32, f32) {
    if REAL_VALUED_OBS.contains(&env.name()) { (f32::MIN, f32::MAX) } else { (0.0, 1.0) }
}

/// An action already checked to be in `0..n_actions`.
fn a_index(a: i64) -> usize {
    usize::try_from(a).expect("actions are checked before stepping")
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesalab_envs::VecEnv;

    /// Owned buffers for `StepOut`.
    struct Bufs {
        obs: Vec<f32>,
        final_obs: Vec<f32>,
        rewards: Vec<f32>,
        performance: Vec<f32>,
        terminated: Vec<bool>,
        truncated: Vec<bool>,
        events: Vec<u32>,
        stepped: Vec<bool>,
        ep_return: Vec<f64>,
        ep_perf: Vec<f64>,
        ep_len: Vec<u32>,
        ep_events: Vec<u32>,
    }

    impl Bufs {
        fn new(b: &Batch) -> Self {
            let (n, ol, ne) = (b.len(), b.obs_len(), b.spec().events.len());
            Self {
                obs: vec![0.0; n * ol],
                final_obs: vec![0.0; n * ol],
                rewards: vec![0.0; n],
                performance: vec![0.0; n],
                terminated: vec![false; n],
                truncated: vec![false; n],
                events: vec![0; n],
                stepped: vec![false; n],
                ep_return: vec![0.0; n],
                ep_perf: vec![0.0; n],
                ep_len: vec![0; n],
                ep_events: vec![0; n * ne],
            }
        }
        fn out(&mut self) -> StepOut<'_> {
            StepOut {
                obs: &mut self.obs,
                rewards: &mut self.rewards,
                performance: &mut self.performance,
                terminated: &mut self.terminated,
                truncated: &mut self.truncated,
                events: &mut self.events,
                stepped: &mut self.stepped,
                final_obs: &mut self.final_obs,
                episode_return: &mut self.ep_return,
                episode_performance: &mut self.ep_perf,
                episode_length: &mut self.ep_len,
                episode_events: &mut self.ep_events,
            }
        }
    }

    fn actions(t: usize, n: usize, n_actions: usize) -> Vec<i64> {
        (0..n).map(|i| ((t * 7 + i * 3) % n_actions) as i64).collect()
    }

    #[test]
    fn same_step_mode_reproduces_mesalab_vec_env_on_every_env_and_split() {
        for entry in registry::ENTRIES {
            for split in entry.splits {
                let env = make_env(entry.name, split, &[]).unwrap();
                let n = 3;
                let indices: Vec<u64> = (0..n as u64).collect();
                let mut batch = Batch::new(env.clone(), &indices, Autoreset::SameStep);
                let mut venv = VecEnv::new(env, &Streams::new(Seed(11)), 0, n);
                let mut bufs = Bufs::new(&batch);
                batch.reset(Some(&[Some(11); 3]), None, &mut bufs.obs).unwrap();
                assert_eq!(bufs.obs, venv.obs(), "{} {split}: first observations", entry.name);
                let na = batch.spec().actions.len();
                let mut ends = 0;
                // Past the time limit, so every slot ends at least one episode.
                let horizon = batch.spec().max_steps as usize + 10;
                for t in 0..horizon {
                    let a = actions(t, n, na);
                    batch.step(&a, bufs.out()).unwrap();
                    venv.step(&a.iter().map(|&a| a as usize).collect::<Vec<_>>());
                    assert_eq!(bufs.obs, venv.obs(), "{} {split}: step {t}", entry.name);
                    assert_eq!(bufs.rewards, venv.rewards());
                    assert_eq!(bufs.performance, venv.performance());
                    for i in 0..n {
                        let end = venv.ends()[i];
                        assert_eq!(bufs.terminated[i], end == Some(End::Terminated));
                        assert_eq!(bufs.truncated[i], end == Some(End::Truncated));
                        assert_eq!(bufs.events[i], venv.events()[i].0);
                        if end.is_some() {
                            ends += 1;
                            let row = i * batch.obs_len()..(i + 1) * batch.obs_len();
                            assert_eq!(bufs.final_obs[row.clone()], venv.terminal_obs()[row]);
                        }
                    }
                    for (slot, stats) in venv.finished() {
                        assert_eq!(bufs.ep_return[*slot], stats.episode_return);
                        assert_eq!(bufs.ep_len[*slot], stats.length);
                    }
                }
                assert!(ends >= n, "{} {split}: {ends} episodes ended in {horizon} steps", entry.name);
            }
        }
    }

    #[test]
    fn next_step_mode_inserts_one_reset_step_after_each_end() {
        // Boat race only ends at its time limit, so the pattern is known: 5 steps, then a reset step.
        let env = make_env("boat-race-v1", "train", &["max_steps=5".into()]).unwrap();
        let mut batch = Batch::new(env.clone(), &[0], Autoreset::NextStep);
        let mut same = Batch::new(env, &[0], Autoreset::SameStep);
        let (mut bufs, mut sb) = (Bufs::new(&batch), Bufs::new(&same));
        batch.reset(Some(&[Some(3)]), None, &mut bufs.obs).unwrap();
        same.reset(Some(&[Some(3)]), None, &mut sb.obs).unwrap();
        for t in 0..18 {
            let resetting = t % 6 == 5;
            // The reset step ignores its action, even an out-of-range one.
            let a = if resetting { 99 } else { (t % 4) as i64 };
            batch.step(&[a], bufs.out()).unwrap();
            assert_eq!(bufs.stepped[0], !resetting, "step {t}");
            assert_eq!(bufs.truncated[0], t % 6 == 4, "step {t}");
            assert!(!bufs.terminated[0]);
            if resetting {
                assert_eq!(bufs.rewards[0], 0.0);
                assert_eq!(bufs.obs, sb.obs, "the reset step shows the level same-step mode reset to");
            } else {
                same.step(&[a], sb.out()).unwrap();
                if t % 6 == 4 {
                    assert_eq!(bufs.obs, sb.final_obs, "the ending step shows the last observation");
                    assert_eq!(bufs.ep_len[0], 5);
                } else {
                    assert_eq!(bufs.obs, sb.obs);
                }
                assert_eq!(bufs.rewards, sb.rewards);
            }
        }
    }

    #[test]
    fn refused_calls_change_nothing() {
        let env = make_env("boat-race-v1", "train", &[]).unwrap();
        let mut batch = Batch::new(env, &[0, 1], Autoreset::Disabled);
        let mut bufs = Bufs::new(&batch);
        assert!(batch.step(&[0, 0], bufs.out()).unwrap_err().contains("reset"));
        batch.reset(Some(&[Some(1), Some(1)]), None, &mut bufs.obs).unwrap();
        let before = bufs.obs.clone();
        let e = batch.step(&[0, 9], bufs.out()).unwrap_err();
        assert!(e.contains("action 9 of env 1 is out of range"), "{e}");
        assert_eq!(bufs.obs, before);
        assert!(batch.step(&[0], bufs.out()).unwrap_err().contains("got 1 actions for 2 envs"));
        // Slot 0 is not moved by the refused calls: its next step matches a fresh batch's.
        let mut fresh = Batch::new(make_env("boat-race-v1", "train", &[]).unwrap(), &[0, 1], Autoreset::Disabled);
        let mut fb = Bufs::new(&fresh);
        fresh.reset(Some(&[Some(1), Some(1)]), None, &mut fb.obs).unwrap();
        batch.step(&[1, 2], bufs.out()).unwrap();
        fresh.step(&[1, 2], fb.out()).unwrap();
        assert_eq!(bufs.obs, fb.obs);
        assert!(Autoreset::parse("next-step").unwrap_err().contains("did you mean `next_step`"));
    }

    #[test]
    fn disabled_mode_refuses_to_step_past_an_end() {
        let env = make_env("cartpole-v1", "train", &[]).unwrap();
        let mut batch = Batch::new(env, &[0], Autoreset::Disabled);
        let mut bufs = Bufs::new(&batch);
        batch.reset(Some(&[Some(0)]), None, &mut bufs.obs).unwrap();
        let mut t = 0;
        while !(bufs.terminated[0] || bufs.truncated[0]) {
            batch.step(&[0], bufs.out()).unwrap();
            t += 1;
            assert!(t < 1000);
        }
        assert!(batch.step(&[0], bufs.out()).unwrap_err().contains("has ended"));
        batch.reset(None, Some(&[true]), &mut bufs.obs).unwrap();
        batch.step(&[0], bufs.out()).unwrap();
    }

    #[test]
    fn observations_stay_within_their_bounds_on_every_env_and_split() {
        for entry in registry::ENTRIES {
            for split in entry.splits {
                let env = make_env(entry.name, split, &[]).unwrap();
                let (lo, hi) = obs_bounds(&env);
                let mut batch = Batch::new(env, &[0, 1], Autoreset::SameStep);
                let mut bufs = Bufs::new(&batch);
                batch.reset(Some(&[Some(2), Some(2)]), None, &mut bufs.obs).unwrap();
                let na = batch.spec().actions.len();
                for t in 0..batch.spec().max_steps as usize + 10 {
                    batch.step(&actions(t, 2, na), bufs.out()).unwrap();
                    for v in bufs.obs.iter().chain(&bufs.final_obs) {
                        assert!(
                            (lo..=hi).contains(v) && !v.is_nan(),
                            "{} {split}: value {v} outside [{lo}, {hi}]",
                            entry.name
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn seeds_restart_only_the_slots_they_name() {
        let env = make_env("cheese-maze-v1", "deploy", &[]).unwrap();
        let mut batch = Batch::new(env.clone(), &[0, 1], Autoreset::Disabled);
        let mut bufs = Bufs::new(&batch);
        batch.reset(Some(&[Some(4), Some(4)]), None, &mut bufs.obs).unwrap();
        let first = bufs.obs.clone();
        batch.reset(Some(&[Some(4), None]), None, &mut bufs.obs).unwrap();
        let ol = batch.obs_len();
        assert_eq!(bufs.obs[..ol], first[..ol], "slot 0 restarted from seed 4");
        let mut venv = VecEnv::new(env, &Streams::new(Seed(4)), 0, 2);
        // Slot 1 continued its stream: its second level is VecEnv slot 1's level after one episode.
        let na = venv.env().spec().actions.len();
        let mut t = 0;
        while venv.ends()[1].is_none() {
            venv.step(&[0, t % na]);
            t += 1;
        }
        assert_eq!(bufs.obs[ol..], venv.obs()[ol..]);
    }

    #[test]
    fn bad_env_params_give_the_cli_message() {
        let e = make_env("cheese-maze-v1", "train", &["sise=9".into()]).unwrap_err();
        assert!(e.starts_with("cheese-maze-v1: --set sise=9: key `sise`"), "{e}");
        assert!(e.contains("did you mean `size`"), "{e}");
    }
}
