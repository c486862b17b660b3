//! [`AnyEnv`]: a type-erased environment, so that the CLI, experiments and [`crate::VecEnv`] can
//! hold "whatever env the registry built" without generics.
//!
//! `AnyEnv` implements [`Env`] itself (its state is an [`AnyState`] box), so everything written
//! against the trait works on it. The cost is one virtual call and one downcast per step and per
//! observation write — a few nanoseconds; monomorphised envs stay available for hot loops.

use crate::api::{Env, EnvSpec, Step, SvgGeometry};
use mesalab_core::StreamRng;
use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// The state of an [`AnyEnv`]: a boxed state of the concrete env.
pub struct AnyState(Box<dyn DynState>);

trait DynState: Any + Send + Sync + fmt::Debug {
    fn clone_box(&self) -> Box<dyn DynState>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any + Clone + Send + Sync + fmt::Debug> DynState for T {
    fn clone_box(&self) -> Box<dyn DynState> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl Clone for AnyState {
    fn clone(&self) -> Self {
        Self(self.0.clone_box())
    }
}

impl fmt::Debug for AnyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl AnyState {
    /// The concrete state, when it is a `T`.
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref()
    }
    pub fn downcast_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.0.as_any_mut().downcast_mut()
    }
}

/// Object-safe mirror of [`Env`] over [`AnyState`].
trait DynEnv: Send + Sync {
    fn spec(&self) -> &EnvSpec;
    fn reset(&self, rng: &mut StreamRng) -> AnyState;
    fn step(&self, state: &mut AnyState, action: usize, rng: &mut StreamRng) -> Step;
    fn write_obs(&self, state: &AnyState, out: &mut [f32]);
    fn render_ascii(&self, state: &AnyState) -> String;
    fn render_svg(&self, state: &AnyState) -> String;
    fn svg_geometry(&self) -> Option<SvgGeometry>;
    fn as_any(&self) -> &dyn Any;
}

const WRONG_STATE: &str = "AnyEnv was given a state made by a different env";

impl<E: Env + 'static> DynEnv for E {
    fn spec(&self) -> &EnvSpec {
        Env::spec(self)
    }
    fn reset(&self, rng: &mut StreamRng) -> AnyState {
        AnyState(Box::new(Env::reset(self, rng)))
    }
    fn step(&self, state: &mut AnyState, action: usize, rng: &mut StreamRng) -> Step {
        Env::step(self, state.downcast_mut::<E::State>().expect(WRONG_STATE), action, rng)
    }
    fn write_obs(&self, state: &AnyState, out: &mut [f32]) {
        Env::write_obs(self, state.downcast_ref::<E::State>().expect(WRONG_STATE), out)
    }
    fn render_ascii(&self, state: &AnyState) -> String {
        Env::render_ascii(self, state.downcast_ref::<E::State>().expect(WRONG_STATE))
    }
    fn render_svg(&self, state: &AnyState) -> String {
        Env::render_svg(self, state.downcast_ref::<E::State>().expect(WRONG_STATE))
    }
    fn svg_geometry(&self) -> Option<SvgGeometry> {
        Env::svg_geometry(self)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A type-erased env plus how it was made (name, split, resolved params). Cheap to clone.
#[derive(Clone)]
pub struct AnyEnv {
    inner: Arc<dyn DynEnv>,
    split: String,
    params_toml: String,
}

impl fmt::Debug for AnyEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyEnv").field("name", &self.inner.spec().name).field("split", &self.split).finish()
    }
}

impl AnyEnv {
    /// Wraps a concrete env. `split` and `params_toml` describe how it was made (for records).
    pub fn new<E: Env + 'static>(env: E, split: impl Into<String>, params_toml: impl Into<String>) -> Self {
        Self { inner: Arc::new(env), split: split.into(), params_toml: params_toml.into() }
    }
    /// Versioned env name.
    pub fn name(&self) -> &'static str {
        self.inner.spec().name
    }
    /// The split the params started from (before overrides).
    pub fn split(&self) -> &str {
        &self.split
    }
    /// The resolved parameters as TOML (split preset plus overrides).
    pub fn params_toml(&self) -> &str {
        &self.params_toml
    }
    /// The concrete env, when it is an `E` (e.g. to call env-specific analysis helpers).
    pub fn downcast_ref<E: Env + 'static>(&self) -> Option<&E> {
        self.inner.as_any().downcast_ref()
    }
}

impl Env for AnyEnv {
    type State = AnyState;
    fn spec(&self) -> &EnvSpec {
        self.inner.spec()
    }
    fn reset(&self, rng: &mut StreamRng) -> AnyState {
        self.inner.reset(rng)
    }
    fn step(&self, state: &mut AnyState, action: usize, rng: &mut StreamRng) -> Step {
        self.inner.step(state, action, rng)
    }
    fn write_obs(&self, state: &AnyState, out: &mut [f32]) {
        self.inner.write_obs(state, out)
    }
    fn render_ascii(&self, state: &AnyState) -> String {
        self.inner.render_ascii(state)
    }
    fn render_svg(&self, state: &AnyState) -> String {
        self.inner.render_svg(state)
    }
    fn svg_geometry(&self) -> Option<SvgGeometry> {
        self.inner.svg_geometry()
    }
}
