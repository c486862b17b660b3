//! The Env API every environment implements (gymnax / NAVIX shape, adapted for speed).
//!
//! - An env value is an immutable description: its static parameters and level distribution.
//! - `State` is a plain `Clone` value holding everything that changes (plus, usually, an `Arc` of
//!   the generated level), so a state can be copied to branch a rollout.
//! - `step` mutates the state in place instead of returning a new one: the functional form would
//!   copy the state every step, which the ≥1M steps/s target cannot afford. Clone first to branch.
//! - Every step reports the base reward (what the trainer sees), the intended-objective score
//!   (hidden performance, never given to the trainer) and the named proxy events that happened.
//! - An episode ends with `End::Terminated` (the MDP reached a terminal state) or `End::Truncated`
//!   (time limit) — never a single `done` flag, because bootstrapping differs.

use mesalab_core::StreamRng;

/// Why an episode ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum End {
    /// A terminal state of the MDP: no value to bootstrap.
    Terminated,
    /// Cut by the time limit: the value of the last state still counts.
    Truncated,
}

/// Named events of one step as a bitset: bit `i` set ⇔ `EnvSpec::events[i]` happened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Events(pub u32);

impl Events {
    pub fn set(&mut self, index: usize) {
        self.0 |= 1 << index;
    }
    pub fn has(self, index: usize) -> bool {
        self.0 & (1 << index) != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Indices of the events that happened, ascending.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..32).filter(move |&i| self.has(i))
    }
    /// Names of the events that happened, in `spec.events` order.
    pub fn names(self, spec: &EnvSpec) -> Vec<&'static str> {
        self.iter().filter_map(|i| spec.events.get(i).copied()).collect()
    }
}

/// What one step reports.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Step {
    /// The base reward: what the base optimizer maximises.
    pub reward: f32,
    /// Increment of the intended objective (hidden performance). Never an input to training.
    pub performance: f32,
    /// `Some` when this step ended the episode.
    pub end: Option<End>,
    /// Proxy and outcome events that happened on this step.
    pub events: Events,
}

/// Static facts about an env instance (fixed once the env is constructed).
#[derive(Clone, Debug, PartialEq)]
pub struct EnvSpec {
    /// Versioned name, e.g. `coin-corridor-v1`. Changing dynamics means a new version.
    pub name: &'static str,
    /// Action names; actions are indices into this list.
    pub actions: &'static [&'static str],
    /// Observation channel names, in order (the `C` of `[C, H, W]`).
    pub channels: Vec<&'static str>,
    /// Observation shape `[C, H, W]`; `write_obs` writes `C*H*W` floats, channel-major.
    pub obs_shape: [usize; 3],
    /// Event names; bit `i` of [`Events`] refers to `events[i]`.
    pub events: &'static [&'static str],
    /// Time limit: the step that reaches it is `End::Truncated` (unless it also terminated).
    pub max_steps: u32,
}

impl EnvSpec {
    pub fn obs_len(&self) -> usize {
        self.obs_shape.iter().product()
    }
    pub fn event_index(&self, name: &str) -> Option<usize> {
        self.events.iter().position(|e| *e == name)
    }
}

/// Where [`Env::render_svg`] draws its grid, so a report can overlay an agent's path on a render
/// without parsing the SVG: cell `(row, col)` is the square of side `cell` pixels whose top-left
/// corner is `(x0 + col·cell, y0 + row·cell)`, for `rows × cols` cells.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SvgGeometry {
    pub x0: f64,
    pub y0: f64,
    pub cell: f64,
    pub rows: usize,
    pub cols: usize,
}

/// An environment: an immutable description plus pure-ish dynamics driven by an explicit RNG.
pub trait Env: Send + Sync {
    type State: Clone + Send + Sync + std::fmt::Debug;

    fn spec(&self) -> &EnvSpec;

    /// Samples a level from this env's distribution and returns its initial state.
    fn reset(&self, rng: &mut StreamRng) -> Self::State;

    /// Applies `action` (an index into `spec().actions`) and reports what happened.
    fn step(&self, state: &mut Self::State, action: usize, rng: &mut StreamRng) -> Step;

    /// Writes the observation of `state` into `out` (`len == spec().obs_len()`), overwriting all of it.
    fn write_obs(&self, state: &Self::State, out: &mut [f32]);

    /// A terminal picture of the state, one character per cell (legend in the env's docs).
    fn render_ascii(&self, state: &Self::State) -> String;

    /// A standalone `<svg>` element picturing the state, for reports.
    fn render_svg(&self, state: &Self::State) -> String;

    /// The grid layout of [`Env::render_svg`]; `None` when the render is not a grid of cells.
    fn svg_geometry(&self) -> Option<SvgGeometry> {
        None
    }
}
