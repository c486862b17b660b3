//! `cartpole-v1`: Gymnasium's CartPole-v1 (Barto, Sutton & Anderson 1983), same dynamics and
//! constants, as a sanity-check env for the trainers.
//!
//! - State `(x, x_dot, theta, theta_dot)`, integrated in `f64` with explicit Euler, `tau = 0.02` s;
//!   gravity 9.8, cart mass 1.0, pole mass 0.1, half pole length 0.5, force ±10 N.
//! - Actions: `left` (push −10 N), `right` (+10 N).
//! - Reward +1 on every step, including the one that terminates (Gymnasium's default).
//! - Terminates when `|x| > 2.4` or `|theta| > 12°` (`12·2π/360 ≈ 0.2095` rad) after the step;
//!   truncates at 500 steps (termination wins when both happen on the same step).
//! - Initial state: each component `U(−0.05, 0.05)`.
//! - Observation `[4, 1, 1]`: channels `x, x_dot, theta, theta_dot` as `f32`.
//! - Hidden performance = reward (this env has no proxy); events `pole_fell`, `cart_out`.
//!
//! Splits: `train` and `deploy` are the same (no shift).
//!
//! ASCII render: a 51-character track over `x ∈ [−2.4, 2.4]` with the cart `C` and a pole glyph above
//! it (`|` upright, `/` leaning right, `\` leaning left), then the state values.

use crate::api::{Env, EnvSpec, Events, Step};
use mesalab_core::StreamRng;
use mesalab_core::config::{Invalid, Validate};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

pub const GRAVITY: f64 = 9.8;
pub const MASS_CART: f64 = 1.0;
pub const MASS_POLE: f64 = 0.1;
pub const TOTAL_MASS: f64 = MASS_CART + MASS_POLE;
/// Half the pole's length (Gymnasium's `length`).
pub const LENGTH: f64 = 0.5;
pub const POLE_MASS_LENGTH: f64 = MASS_POLE * LENGTH;
pub const FORCE_MAG: f64 = 10.0;
/// Seconds per step.
pub const TAU: f64 = 0.02;
/// 12 degrees in radians.
pub const THETA_THRESHOLD: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
pub const X_THRESHOLD: f64 = 2.4;
/// Gymnasium's `max_episode_steps` for CartPole-v1.
pub const MAX_STEPS: u32 = 500;
/// Half-width of the uniform initial state distribution.
pub const INIT_BOUND: f64 = 0.05;

pub const ACTIONS: &[&str] = &["left", "right"];
/// Split names (identical dynamics).
pub const SPLITS: &[&str] = &["train", "deploy"];
pub const CHANNELS: [&str; 4] = ["x", "x_dot", "theta", "theta_dot"];
pub const EVENTS: &[&str] = &[
    // |theta| exceeded 12° after this step.
    "pole_fell",
    // |x| exceeded 2.4 after this step.
    "cart_out",
];
pub const EV_POLE_FELL: usize = 0;
pub const EV_CART_OUT: usize = 1;

/// Knobs of `cartpole-v1`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CartPoleParams {
    /// Episode time limit in steps (CartPole-v1: 500).
    pub max_steps: u32,
}

impl Default for CartPoleParams {
    fn default() -> Self {
        Self { max_steps: MAX_STEPS }
    }
}

impl CartPoleParams {
    /// `train` and `deploy` are identical.
    pub fn for_split(split: &str) -> Option<Self> {
        SPLITS.contains(&split).then(Self::default)
    }
}

impl Validate for CartPoleParams {
    fn validate(&self) -> Result<(), Invalid> {
        if self.max_steps == 0 {
            return Err(Invalid::new("max_steps", "must be at least 1"));
        }
        Ok(())
    }
}

impl crate::params::EnvParams for CartPoleParams {
    type Env = CartPole;
    const NAME: &'static str = CartPole::NAME;
    const SPLITS: &'static [&'static str] = SPLITS;
    fn split(name: &str) -> Option<Self> {
        Self::for_split(name)
    }
    fn build(&self) -> Result<CartPole, crate::error::EnvError> {
        self.validate().map_err(|inv| crate::error::EnvError::params(CartPole::NAME, inv.key, inv.message))?;
        Ok(CartPole::new(self.clone()))
    }
}

/// The physical state plus the step counter.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CartPoleState {
    pub x: f64,
    pub x_dot: f64,
    pub theta: f64,
    pub theta_dot: f64,
    /// Steps taken this episode.
    pub t: u32,
}

/// The CartPole env.
#[derive(Clone, Debug)]
pub struct CartPole {
    params: CartPoleParams,
    spec: EnvSpec,
}

impl CartPole {
    pub const NAME: &'static str = "cartpole-v1";

    /// Panics if `params` do not validate (call [`Validate::validate`] first for a clean error).
    pub fn new(params: CartPoleParams) -> Self {
        if let Err(e) = params.validate() {
            panic!("invalid {} params: {}: {}", Self::NAME, e.key, e.message);
        }
        let spec = EnvSpec {
            name: Self::NAME,
            actions: ACTIONS,
            channels: CHANNELS.to_vec(),
            obs_shape: [4, 1, 1],
            events: EVENTS,
            max_steps: params.max_steps,
        };
        Self { params, spec }
    }

    pub fn params(&self) -> &CartPoleParams {
        &self.params
    }
}

impl Default for CartPole {
    fn default() -> Self {
        Self::new(CartPoleParams::default())
    }
}

/// One Euler step of the cart-pole equations of motion (Florian 2007's corrected form, as in
/// Gymnasium) under horizontal force `force`.
#[inline]
pub fn dynamics(s: &mut CartPoleState, force: f64) {
    let (sin, cos) = s.theta.sin_cos();
    let temp = (force + POLE_MASS_LENGTH * s.theta_dot * s.theta_dot * sin) / TOTAL_MASS;
    let theta_acc = (GRAVITY * sin - cos * temp) / (LENGTH * (4.0 / 3.0 - MASS_POLE * cos * cos / TOTAL_MASS));
    let x_acc = temp - POLE_MASS_LENGTH * theta_acc * cos / TOTAL_MASS;
    s.x += TAU * s.x_dot;
    s.x_dot += TAU * x_acc;
    s.theta += TAU * s.theta_dot;
    s.theta_dot += TAU * theta_acc;
}

impl Env for CartPole {
    type State = CartPoleState;

    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&self, rng: &mut StreamRng) -> CartPoleState {
        let mut u = || rng.random_range(-INIT_BOUND..INIT_BOUND);
        CartPoleState { x: u(), x_dot: u(), theta: u(), theta_dot: u(), t: 0 }
    }

    fn step(&self, state: &mut CartPoleState, action: usize, _rng: &mut StreamRng) -> Step {
        let force = match action {
            0 => -FORCE_MAG,
            1 => FORCE_MAG,
            _ => panic!("cartpole action {action} out of range: actions are 0 (left), 1 (right)"),
        };
        dynamics(state, force);
        let mut events = Events::default();
        let pole_fell = state.theta < -THETA_THRESHOLD || state.theta > THETA_THRESHOLD;
        let cart_out = state.x < -X_THRESHOLD || state.x > X_THRESHOLD;
        if pole_fell {
            events.set(EV_POLE_FELL);
        }
        if cart_out {
            events.set(EV_CART_OUT);
        }
        state.t += 1;
        let end = if pole_fell || cart_out {
            Some(crate::api::End::Terminated)
        } else if state.t >= self.params.max_steps {
            Some(crate::api::End::Truncated)
        } else {
            None
        };
        Step { reward: 1.0, performance: 1.0, end, events }
    }

    fn write_obs(&self, state: &CartPoleState, out: &mut [f32]) {
        out.copy_from_slice(&[state.x as f32, state.x_dot as f32, state.theta as f32, state.theta_dot as f32]);
    }

    fn render_ascii(&self, state: &CartPoleState) -> String {
        const WIDTH: usize = 51;
        let col = (((state.x + X_THRESHOLD) / (2.0 * X_THRESHOLD)) * (WIDTH - 1) as f64).round();
        let col = col.clamp(0.0, (WIDTH - 1) as f64) as usize;
        let pole = if state.theta > 0.05 {
            '/'
        } else if state.theta < -0.05 {
            '\\'
        } else {
            '|'
        };
        let mut s = String::with_capacity(3 * WIDTH + 80);
        s.extend((0..WIDTH).map(|i| if i == col { pole } else { ' ' }));
        s.push('\n');
        s.extend((0..WIDTH).map(|i| if i == col { 'C' } else { '-' }));
        s.push('\n');
        let _ = writeln!(
            s,
            "t={}/{} x={:+.3} x_dot={:+.3} theta={:+.4} theta_dot={:+.3}",
            state.t, self.params.max_steps, state.x, state.x_dot, state.theta, state.theta_dot
        );
        s
    }

    fn render_svg(&self, state: &CartPoleState) -> String {
        // Gymnasium's picture: 600×400, world width 2·2.4 m, pole drawn at its full length 2·LENGTH.
        let (w, h) = (600.0, 400.0);
        let scale = w / (2.0 * X_THRESHOLD);
        let track_y = 300.0;
        let cart_x = state.x * scale + w / 2.0;
        let (cart_w, cart_h) = (50.0, 30.0);
        let axle_y = track_y - cart_h / 4.0;
        let pole_len = scale * 2.0 * LENGTH;
        let tip_x = cart_x + pole_len * state.theta.sin();
        let tip_y = axle_y - pole_len * state.theta.cos();
        let mut s = String::with_capacity(900);
        let _ = write!(
            s,
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="monospace"><rect width="{w}" height="{h}" fill="#ffffff"/><line x1="0" y1="{track_y}" x2="{w}" y2="{track_y}" stroke="#000000" stroke-width="1"/><rect x="{:.1}" y="{:.1}" width="{cart_w}" height="{cart_h}" fill="#000000"/><line x1="{cart_x:.1}" y1="{axle_y:.1}" x2="{tip_x:.1}" y2="{tip_y:.1}" stroke="#ca9865" stroke-width="10" stroke-linecap="round"/><circle cx="{cart_x:.1}" cy="{axle_y:.1}" r="5" fill="#8184cb"/><text x="8" y="{}" font-size="14" fill="#000000">{} t={}/{} x={:+.3} theta={:+.4}</text></svg>"##,
            cart_x - cart_w / 2.0,
            track_y - cart_h / 2.0,
            h - 12.0,
            Self::NAME,
            state.t,
            self.params.max_steps,
            state.x,
            state.theta,
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::End;
    use rand::SeedableRng;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn two_pushes_right_from_rest_match_the_equations() {
        // From rest (θ = 0, so sin θ = 0, cos θ = 1) with F = +10:
        //   temp     = F / M = 10 / 1.1 = 100/11
        //   θ_acc    = (0 − temp) / (0.5·(4/3 − 0.1/1.1)) = −(100/11) / (41/66) = −600/41
        //   x_acc    = temp − 0.05·θ_acc / 1.1 = 100/11 + 300/451 = 400/41
        // Euler uses the old velocities for positions: x = θ = 0, ẋ = 0.02·400/41 = 8/41,
        // θ̇ = 0.02·(−600/41) = −12/41.
        let env = CartPole::default();
        let mut rng = StreamRng::seed_from_u64(0);
        let mut s = CartPoleState::default();
        let st = env.step(&mut s, 1, &mut rng);
        assert_eq!((st.reward, st.end), (1.0, None));
        assert!(close(s.x, 0.0) && close(s.theta, 0.0));
        assert!(close(s.x_dot, 8.0 / 41.0) && close(s.theta_dot, -12.0 / 41.0), "{s:?}");
        // Second push: θ is still 0 at the start of the step, so the accelerations repeat;
        // x = 0.02·8/41, θ = 0.02·(−12/41), ẋ = 16/41, θ̇ = −24/41.
        env.step(&mut s, 1, &mut rng);
        assert!(close(s.x, 0.16 / 41.0) && close(s.theta, -0.24 / 41.0), "{s:?}");
        assert!(close(s.x_dot, 16.0 / 41.0) && close(s.theta_dot, -24.0 / 41.0), "{s:?}");
    }

    #[test]
    fn tilted_push_left_matches_the_equations() {
        // From (x, ẋ, θ, θ̇) = (0.01, −0.02, 0.1, 0.3), F = −10, by hand (double precision):
        //   sin 0.1 = 0.0998334166, cos 0.1 = 0.9950041653
        //   temp  = (−10 + 0.05·0.09·0.0998334166)/1.1            = −9.0905006815
        //   denom = 0.5·(4/3 − 0.1·0.9950041653²/1.1)             =  0.6216651535
        //   θ_acc = (9.8·0.0998334166 − 0.9950041653·temp)/denom  = 16.1235569803
        //   x_acc = temp − 0.05·θ_acc·0.9950041653/1.1            = −9.8197282430
        //   x = 0.01 + 0.02·(−0.02) = 0.0096;  ẋ = −0.02 + 0.02·x_acc = −0.2163945649
        //   θ = 0.1 + 0.02·0.3 = 0.106;        θ̇ = 0.3 + 0.02·θ_acc = 0.6224711396
        let env = CartPole::default();
        let mut rng = StreamRng::seed_from_u64(0);
        let mut s = CartPoleState { x: 0.01, x_dot: -0.02, theta: 0.1, theta_dot: 0.3, t: 0 };
        env.step(&mut s, 0, &mut rng);
        let tol = 1e-9;
        assert!((s.x - 0.0096).abs() < tol, "{s:?}");
        assert!((s.x_dot - -0.2163945649).abs() < tol, "{s:?}");
        assert!((s.theta - 0.106).abs() < tol, "{s:?}");
        assert!((s.theta_dot - 0.6224711396).abs() < tol, "{s:?}");
        let mut obs = [0.0f32; 4];
        env.write_obs(&s, &mut obs);
        assert_eq!(obs, [s.x as f32, s.x_dot as f32, s.theta as f32, s.theta_dot as f32]);
    }

    #[test]
    fn terminates_on_angle_or_position_and_truncates_at_500() {
        let env = CartPole::default();
        let mut rng = StreamRng::seed_from_u64(0);
        // θ = 0.2 + 0.02·1.0 = 0.22 > 0.2094: terminated, still rewarded.
        let mut s = CartPoleState { theta: 0.2, theta_dot: 1.0, ..Default::default() };
        let st = env.step(&mut s, 1, &mut rng);
        assert_eq!((st.reward, st.end), (1.0, Some(End::Terminated)));
        assert!(st.events.has(EV_POLE_FELL) && !st.events.has(EV_CART_OUT));
        // x = −2.39 + 0.02·(−1) = −2.41 < −2.4.
        let mut s = CartPoleState { x: -2.39, x_dot: -1.0, ..Default::default() };
        let st = env.step(&mut s, 0, &mut rng);
        assert_eq!(st.end, Some(End::Terminated));
        assert!(st.events.has(EV_CART_OUT));
        // Just inside both limits, at step 499 → the 500th step truncates.
        let mut s = CartPoleState { t: 499, ..Default::default() };
        assert_eq!(env.step(&mut s, 0, &mut rng).end, Some(End::Truncated));
        assert!((THETA_THRESHOLD - 0.20943951023931953).abs() < 1e-15);
    }

    #[test]
    fn reset_is_uniform_in_the_small_box() {
        let env = CartPole::default();
        let mut rng = StreamRng::seed_from_u64(5);
        let mut sum = [0.0f64; 4];
        for _ in 0..4000 {
            let s = env.reset(&mut rng);
            let v = [s.x, s.x_dot, s.theta, s.theta_dot];
            assert!(v.iter().all(|c| (-0.05..0.05).contains(c)) && s.t == 0);
            for (a, b) in sum.iter_mut().zip(v) {
                *a += b;
            }
        }
        // Mean of U(−0.05, 0.05) is 0 with sd 0.0289/√4000 ≈ 0.00046.
        assert!(sum.iter().all(|s| (s / 4000.0).abs() < 0.002), "{sum:?}");
    }

    #[test]
    fn renders() {
        let env = CartPole::default();
        let s = CartPoleState { x: 0.0, theta: 0.1, ..Default::default() };
        let a = env.render_ascii(&s);
        let lines: Vec<&str> = a.lines().collect();
        assert_eq!(lines[0].find('/'), Some(25));
        assert_eq!(lines[1].find('C'), Some(25));
        let svg = env.render_svg(&s);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
