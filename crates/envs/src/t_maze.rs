//! `t-maze-v1`: the T-maze memory task (Bakker 2001, "Reinforcement learning with long short-term
//! memory"): a cue seen only on the first step says which arm of the T at the corridor's end holds
//! the goal. A policy without memory cannot do better than chance at the junction (it sees the
//! same observation whichever the cue was), so this env separates recurrent policies from
//! feed-forward ones by construction.
//!
//! - A corridor of `length` cells (cells `0..length`), the junction at cell `length − 1`; the agent
//!   starts at cell 0. `length` is drawn uniformly from `[min_length, max_length]` per episode;
//!   the cue (`up` or `down`) uniformly.
//! - Actions `forward`, `up`, `down`. `forward` moves one cell east (a no-op at the junction);
//!   `up` / `down` at the junction enter that arm and end the episode (`Terminated`), elsewhere they
//!   waste the step.
//! - Reward `+1` for the arm the cue named (event `correct_arm`, performance `+1`), `0` for the
//!   other (`wrong_arm`); time limit `max_steps` (truncation).
//! - Observation `[4, 1, width]`, channel-major: `agent` (one-hot at the agent's cell), `cue_up`
//!   and `cue_down` (at the agent's cell, on the first step of the episode only), `junction`
//!   (one-hot at the junction, every step: the agent knows where to turn).
//!
//! Splits: `train` corridors of 2–6 cells, `deploy` of 8–14 (longer memory), same `width` 16, so
//! one policy reads both.
//!
//! ASCII render (three rows): the arms `U` / `D` above and below the junction, the corridor `.`
//! with the agent `A` and the junction `+`, then a line with the cue (and whether it is visible).
//! In the SVG the cued arm is green, the other red.

use crate::api::{End, Env, EnvSpec, Events, Step, SvgGeometry};
use crate::grid::{self, Pos, SvgCell};
use mesalab_core::StreamRng;
use mesalab_core::config::{Invalid, Validate};
use rand::Rng;
use serde::{Deserialize, Serialize};

pub const NAME: &str = "t-maze-v1";
pub const ACTIONS: &[&str] = &["forward", "up", "down"];
pub const ACT_FORWARD: usize = 0;
pub const ACT_UP: usize = 1;
pub const ACT_DOWN: usize = 2;
pub const CHANNELS: [&str; 4] = ["agent", "cue_up", "cue_down", "junction"];
pub const EVENTS: &[&str] = &[
    // Entered the arm the cue named.
    "correct_arm",
    // Entered the other arm.
    "wrong_arm",
];
pub const EV_CORRECT: usize = 0;
pub const EV_WRONG: usize = 1;

/// Knobs of `t-maze-v1`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TMazeParams {
    /// Shortest corridor (cells, junction included), ≥ 2.
    pub min_length: usize,
    /// Longest corridor, ≤ `width`.
    pub max_length: usize,
    /// Observation width in cells (fixed across splits so one policy reads every split).
    pub width: usize,
    /// Episode time limit in steps.
    pub max_steps: u32,
}

impl Default for TMazeParams {
    fn default() -> Self {
        Self::train()
    }
}

impl TMazeParams {
    /// Corridors of 2–6 cells.
    pub fn train() -> Self {
        Self { min_length: 2, max_length: 6, width: 16, max_steps: 40 }
    }

    /// Corridors of 8–14 cells: the cue must be held longer than in any training episode.
    pub fn deploy() -> Self {
        Self { min_length: 8, max_length: 14, ..Self::train() }
    }
}

impl Validate for TMazeParams {
    fn validate(&self) -> Result<(), Invalid> {
        if self.min_length < 2 {
            return Err(Invalid::new("min_length", format!("must be at least 2, got {}", self.min_length)));
        }
        if self.max_length < self.min_length {
            return Err(Invalid::new(
                "max_length",
                format!("must be at least min_length ({}), got {}", self.min_length, self.max_length),
            ));
        }
        if self.width < self.max_length || self.width > 256 {
            return Err(Invalid::new(
                "width",
                format!("must be in [max_length ({}), 256], got {}", self.max_length, self.width),
            ));
        }
        if (self.max_steps as usize) < self.max_length {
            return Err(Invalid::new(
                "max_steps",
                format!(
                    "must be at least max_length ({}) to reach the junction, got {}",
                    self.max_length, self.max_steps
                ),
            ));
        }
        Ok(())
    }
}

impl crate::params::EnvParams for TMazeParams {
    type Env = TMaze;
    const NAME: &'static str = NAME;
    const SPLITS: &'static [&'static str] = &["train", "deploy"];
    fn split(name: &str) -> Option<Self> {
        match name {
            "train" => Some(Self::train()),
            "deploy" => Some(Self::deploy()),
            _ => None,
        }
    }
    fn build(&self) -> Result<TMaze, crate::error::EnvError> {
        self.validate().map_err(|inv| crate::error::EnvError::params(NAME, inv.key, inv.message))?;
        Ok(TMaze::new(self.clone()))
    }
}

/// One episode's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TMazeState {
    /// Corridor length (the junction is cell `length − 1`).
    pub length: usize,
    /// `true`: the goal is the up arm.
    pub cue_up: bool,
    /// The agent's cell along the corridor.
    pub pos: usize,
    /// Steps taken this episode (the cue is visible while `t == 0`).
    pub t: u32,
    /// The arm entered (`Some(true)` = up), once the episode has ended there.
    pub arm: Option<bool>,
}

/// The T-maze env.
#[derive(Clone, Debug)]
pub struct TMaze {
    params: TMazeParams,
    spec: EnvSpec,
}

impl TMaze {
    /// Panics if `params` do not validate (use [`crate::params::build_checked`] for a clean error).
    pub fn new(params: TMazeParams) -> Self {
        if let Err(e) = params.validate() {
            panic!("invalid {NAME} params: {}: {}", e.key, e.message);
        }
        let spec = EnvSpec {
            name: NAME,
            actions: ACTIONS,
            channels: CHANNELS.to_vec(),
            obs_shape: [CHANNELS.len(), 1, params.width],
            events: EVENTS,
            max_steps: params.max_steps,
        };
        Self { params, spec }
    }

    pub fn params(&self) -> &TMazeParams {
        &self.params
    }

    /// A start state with a chosen corridor length and cue (for tests and probes).
    pub fn start(&self, length: usize, cue_up: bool) -> TMazeState {
        TMazeState { length: length.clamp(2, self.params.width), cue_up, pos: 0, t: 0, arm: None }
    }
}

impl Env for TMaze {
    type State = TMazeState;

    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&self, rng: &mut StreamRng) -> TMazeState {
        let length = rng.random_range(self.params.min_length..=self.params.max_length);
        let cue_up = rng.random_bool(0.5);
        self.start(length, cue_up)
    }

    fn step(&self, state: &mut TMazeState, action: usize, _rng: &mut StreamRng) -> Step {
        let mut step = Step::default();
        state.t += 1;
        let junction = state.length - 1;
        match action {
            ACT_FORWARD => state.pos = (state.pos + 1).min(junction),
            ACT_UP | ACT_DOWN if state.pos == junction => {
                let up = action == ACT_UP;
                state.arm = Some(up);
                step.end = Some(End::Terminated);
                let mut events = Events::default();
                if up == state.cue_up {
                    step.reward = 1.0;
                    step.performance = 1.0;
                    events.set(EV_CORRECT);
                } else {
                    events.set(EV_WRONG);
                }
                step.events = events;
            }
            _ => {}
        }
        if step.end.is_none() && state.t >= self.params.max_steps {
            step.end = Some(End::Truncated);
        }
        step
    }

    fn write_obs(&self, state: &TMazeState, out: &mut [f32]) {
        let w = self.params.width;
        out.fill(0.0);
        out[state.pos] = 1.0;
        if state.t == 0 {
            let ch = if state.cue_up { 1 } else { 2 };
            out[ch * w + state.pos] = 1.0;
        }
        out[3 * w + state.length - 1] = 1.0;
    }

    fn render_ascii(&self, state: &TMazeState) -> String {
        let junction = state.length - 1;
        let mut s = grid::ascii(state.length, 3, |p| match (p.y, p.x) {
            (0, x) if x == junction as i32 => {
                if state.arm == Some(true) {
                    'A'
                } else {
                    'U'
                }
            }
            (2, x) if x == junction as i32 => {
                if state.arm == Some(false) {
                    'A'
                } else {
                    'D'
                }
            }
            (1, x) if x == state.pos as i32 && state.arm.is_none() => 'A',
            (1, x) if x == junction as i32 => '+',
            (1, _) => '.',
            _ => ' ',
        });
        let cue = if state.cue_up { "up" } else { "down" };
        let seen = if state.t == 0 { "visible" } else { "hidden" };
        s.push_str(&format!("cue: {cue} ({seen}), t={}/{}\n", state.t, self.params.max_steps));
        s
    }

    fn render_svg(&self, state: &TMazeState) -> String {
        let junction = state.length as i32 - 1;
        let caption = format!("{NAME} cue={} t={}", if state.cue_up { "up" } else { "down" }, state.t);
        grid::svg(self.params.width, 3, 28, &caption, |p: Pos| {
            let arm = |up: bool| {
                let fill = if up == state.cue_up { "#7fd17f" } else { "#e08080" };
                let glyph = if state.arm == Some(up) {
                    "A"
                } else if up {
                    "U"
                } else {
                    "D"
                };
                SvgCell { fill, glyph: Some((glyph, "#000000")) }
            };
            match (p.y, p.x) {
                (0, x) if x == junction => arm(true),
                (2, x) if x == junction => arm(false),
                (1, x) if x <= junction => {
                    let agent = x == state.pos as i32 && state.arm.is_none();
                    SvgCell { fill: "#ffffff", glyph: agent.then_some(("A", "#1f4fbf")) }
                }
                _ => SvgCell { fill: "#404040", glyph: None },
            }
        })
    }

    fn svg_geometry(&self) -> Option<SvgGeometry> {
        Some(grid::svg_geometry(self.params.width, 3, 28))
    }
}

/// The oracle: walks to the junction and turns toward the cue (it reads the state, which holds the
/// cue; a memoryless policy reading only the current observation cannot).
#[derive(Clone, Copy, Debug, Default)]
pub struct CueOracle;

impl crate::actor::StateActor<TMaze> for CueOracle {
    fn name(&self) -> String {
        "oracle: remembers the cue".into()
    }

    fn act_one(&self, _env: &TMaze, state: &TMazeState, _rng: &mut StreamRng) -> usize {
        if state.pos + 1 < state.length {
            ACT_FORWARD
        } else if state.cue_up {
            ACT_UP
        } else {
            ACT_DOWN
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesalab_core::{Seed, Streams};

    fn env() -> TMaze {
        TMaze::new(TMazeParams::train())
    }

    #[test]
    fn the_cue_is_seen_only_on_the_first_step_and_the_right_arm_pays() {
        let env = env();
        let mut rng = Streams::new(Seed(1)).stream("env");
        let mut obs = vec![0.0; env.spec().obs_len()];
        for cue_up in [true, false] {
            let mut s = env.start(4, cue_up);
            env.write_obs(&s, &mut obs);
            let cue_ch = if cue_up { 1 } else { 2 };
            assert_eq!(obs[cue_ch * 16], 1.0);
            assert_eq!(obs.iter().sum::<f32>(), 3.0, "agent, cue, junction");
            assert_eq!(obs[3 * 16 + 3], 1.0, "junction at cell length - 1");
            for _ in 0..3 {
                assert!(env.step(&mut s, ACT_FORWARD, &mut rng).end.is_none());
            }
            env.write_obs(&s, &mut obs);
            assert_eq!(obs[16..3 * 16].iter().sum::<f32>(), 0.0, "no cue after the first step");
            // The two cues give the same observation here: no memoryless policy can tell them apart.
            let mut other = env.start(4, !cue_up);
            for _ in 0..3 {
                env.step(&mut other, ACT_FORWARD, &mut rng);
            }
            let mut other_obs = vec![0.0; obs.len()];
            env.write_obs(&other, &mut other_obs);
            assert_eq!(obs, other_obs);
            let (right, wrong) = if cue_up { (ACT_UP, ACT_DOWN) } else { (ACT_DOWN, ACT_UP) };
            let mut w = s;
            let step = env.step(&mut s, right, &mut rng);
            assert_eq!((step.reward, step.end, step.events.has(EV_CORRECT)), (1.0, Some(End::Terminated), true));
            let step = env.step(&mut w, wrong, &mut rng);
            assert_eq!((step.reward, step.end, step.events.has(EV_WRONG)), (0.0, Some(End::Terminated), true));
        }
    }

    #[test]
    fn turning_before_the_junction_wastes_the_step_and_time_runs_out() {
        let env = env();
        let mut rng = Streams::new(Seed(2)).stream("env");
        let mut s = env.start(5, true);
        assert!(env.step(&mut s, ACT_UP, &mut rng).end.is_none());
        assert_eq!(s.pos, 0);
        let mut last = Step::default();
        for _ in 1..40 {
            last = env.step(&mut s, ACT_DOWN, &mut rng);
        }
        assert_eq!(last.end, Some(End::Truncated));
    }

    #[test]
    fn the_oracle_always_wins_and_splits_draw_their_lengths() {
        use crate::actor::StateActor;
        for (params, range) in [(TMazeParams::train(), 2..=6), (TMazeParams::deploy(), 8..=14)] {
            let env = TMaze::new(params);
            let mut rng = Streams::new(Seed(3)).stream("env");
            for _ in 0..200 {
                let mut s = env.reset(&mut rng);
                assert!(range.contains(&s.length));
                loop {
                    let a = CueOracle.act_one(&env, &s, &mut rng);
                    let step = env.step(&mut s, a, &mut rng);
                    if let Some(end) = step.end {
                        assert_eq!((end, step.reward), (End::Terminated, 1.0));
                        break;
                    }
                }
            }
        }
        let bad = TMazeParams { max_length: 20, ..TMazeParams::train() };
        assert_eq!(bad.validate().unwrap_err().key, "width");
    }
}
