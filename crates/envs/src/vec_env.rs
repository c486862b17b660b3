//! [`VecEnv`]: N auto-resetting envs stepped into preallocated buffers.
//!
//! Invariant: slot `i` owns the RNG stream `streams.indexed("env", first_index + i)` and nothing
//! else is random, so its trajectory depends only on (seed, global env index, its actions) — not
//! on N, on how envs are split across VecEnvs, or on the thread count of [`VecEnv::step_parallel`].
//!
//! Buffer layout (all row-major, slot-major):
//! - `obs`: `[N, C, H, W]` flattened (`N * obs_len`), the observation to act on next (already the
//!   new episode's first observation when a slot auto-reset).
//! - `terminal_obs`: same shape; row `i` is the final observation of the episode that ended on the
//!   last step, valid only where `ends()[i].is_some()` (stale otherwise).
//! - `rewards`, `performance`, `ends`, `events`: `[N]`, from the last step.
//! - `finished`: `(slot, EpisodeStats)` of the episodes that ended on the last step, slot order.

use crate::api::{End, Env, Events};
use crate::episode::{EpisodeStats, Slot, SlotSnapshot};
use mesalab_core::Streams;

/// N copies of one env, auto-resetting, with step results in flat buffers.
pub struct VecEnv<E: Env> {
    env: E,
    slots: Vec<Slot<E::State>>,
    obs_len: usize,
    obs: Vec<f32>,
    terminal_obs: Vec<f32>,
    rewards: Vec<f32>,
    performance: Vec<f32>,
    ends: Vec<Option<End>>,
    events: Vec<Events>,
    finished: Vec<(usize, EpisodeStats)>,
}

/// Mutable views of one contiguous range of slots and their buffer rows.
struct Chunk<'a, S> {
    first: usize,
    slots: &'a mut [Slot<S>],
    obs: &'a mut [f32],
    terminal_obs: &'a mut [f32],
    rewards: &'a mut [f32],
    performance: &'a mut [f32],
    ends: &'a mut [Option<End>],
    events: &'a mut [Events],
    actions: &'a [usize],
}

impl<S> Chunk<'_, S> {
    fn run<E: Env<State = S>>(self, env: &E, obs_len: usize, finished: &mut Vec<(usize, EpisodeStats)>) {
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let row = i * obs_len..(i + 1) * obs_len;
            let (step, done) = slot.step(env, self.actions[i], &mut self.obs[row.clone()], &mut self.terminal_obs[row]);
            self.rewards[i] = step.reward;
            self.performance[i] = step.performance;
            self.ends[i] = step.end;
            self.events[i] = step.events;
            if let Some(stats) = done {
                finished.push((self.first + i, stats));
            }
        }
    }
}

impl<E: Env> VecEnv<E> {
    /// `n` envs; slot `i` uses stream `streams.indexed("env", first_index + i)`. Resets all of them.
    pub fn new(env: E, streams: &Streams, first_index: u64, n: usize) -> Self {
        let slots: Vec<_> = (0..n).map(|i| Slot::new(&env, streams.indexed("env", first_index + i as u64))).collect();
        let obs_len = env.spec().obs_len();
        let mut obs = vec![0.0; n * obs_len];
        for (s, row) in slots.iter().zip(obs.chunks_exact_mut(obs_len.max(1))) {
            env.write_obs(&s.state, row);
        }
        Self {
            env,
            slots,
            obs_len,
            obs,
            terminal_obs: vec![0.0; n * obs_len],
            rewards: vec![0.0; n],
            performance: vec![0.0; n],
            ends: vec![None; n],
            events: vec![Events::default(); n],
            finished: Vec::new(),
        }
    }

    /// What regenerates every slot exactly (see [`SlotSnapshot`]); with the same env, streams and
    /// first index, [`VecEnv::restore`] gives a VecEnv whose future steps equal this one's.
    pub fn snapshot(&self) -> Vec<SlotSnapshot> {
        self.slots.iter().map(Slot::snapshot).collect()
    }

    /// The VecEnv `snapshot` describes (see [`VecEnv::snapshot`]). Buffers other than `obs` hold
    /// nothing until the next step, as after [`VecEnv::new`].
    pub fn restore(env: E, streams: &Streams, first_index: u64, snapshot: &[SlotSnapshot]) -> Result<Self, String> {
        let mut v = Self::new(env, streams, first_index, snapshot.len());
        for (i, s) in snapshot.iter().enumerate() {
            let rng = streams.indexed("env", first_index + i as u64);
            v.slots[i] = Slot::restore(&v.env, rng, s).map_err(|e| format!("env slot {i}: {e}"))?;
            let row = i * v.obs_len..(i + 1) * v.obs_len;
            v.env.write_obs(&v.slots[i].state, &mut v.obs[row]);
        }
        Ok(v)
    }

    pub fn env(&self) -> &E {
        &self.env
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
    /// `[N * obs_len]`: observations to act on.
    pub fn obs(&self) -> &[f32] {
        &self.obs
    }
    /// `[N * obs_len]`: terminal observations, valid where `ends()[i].is_some()`.
    pub fn terminal_obs(&self) -> &[f32] {
        &self.terminal_obs
    }
    pub fn rewards(&self) -> &[f32] {
        &self.rewards
    }
    pub fn performance(&self) -> &[f32] {
        &self.performance
    }
    pub fn ends(&self) -> &[Option<End>] {
        &self.ends
    }
    pub fn events(&self) -> &[Events] {
        &self.events
    }
    /// Episodes that ended on the last step, as `(slot, stats)` in slot order.
    pub fn finished(&self) -> &[(usize, EpisodeStats)] {
        &self.finished
    }
    /// Current state of slot `i` (for rendering or analysis).
    pub fn state(&self, i: usize) -> &E::State {
        &self.slots[i].state
    }
    /// Stats of slot `i`'s running episode.
    pub fn running_stats(&self, i: usize) -> &EpisodeStats {
        &self.slots[i].stats
    }

    /// Steps every slot with `actions[i]` (`len == N`), auto-resetting ended episodes.
    pub fn step(&mut self, actions: &[usize]) {
        self.step_parallel(actions, 1);
    }

    /// Like [`VecEnv::step`] but spread over up to `threads` scoped threads. Gives results identical
    /// to `step` (each slot only touches its own state, RNG and buffer rows). Spawning costs
    /// ~10–50 µs per thread per call, so this pays only for large N or slow envs.
    pub fn step_parallel(&mut self, actions: &[usize], threads: usize) {
        assert_eq!(actions.len(), self.slots.len(), "one action per env");
        self.finished.clear();
        let n = self.slots.len();
        if n == 0 {
            return;
        }
        let threads = threads.clamp(1, n);
        let per = n.div_ceil(threads);
        let ol = self.obs_len;
        let chunks =
            self.slots
                .chunks_mut(per)
                .zip(self.obs.chunks_mut(per * ol))
                .zip(self.terminal_obs.chunks_mut(per * ol))
                .zip(self.rewards.chunks_mut(per))
                .zip(self.performance.chunks_mut(per))
                .zip(self.ends.chunks_mut(per))
                .zip(self.events.chunks_mut(per))
                .zip(actions.chunks(per))
                .enumerate()
                .map(|(k, (((((((slots, obs), terminal_obs), rewards), performance), ends), events), actions))| {
                    Chunk { first: k * per, slots, obs, terminal_obs, rewards, performance, ends, events, actions }
                });
        let env = &self.env;
        if threads == 1 {
            for c in chunks {
                c.run(env, ol, &mut self.finished);
            }
            return;
        }
        let parts: Vec<Vec<(usize, EpisodeStats)>> = std::thread::scope(|s| {
            let handles: Vec<_> = chunks
                .map(|c| {
                    s.spawn(move || {
                        let mut f = Vec::new();
                        c.run(env, ol, &mut f);
                        f
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("env step thread panicked")).collect()
        });
        self.finished.extend(parts.into_iter().flatten());
    }
}
