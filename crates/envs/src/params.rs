//! Level-distribution parameters shared by all envs: named splits, TOML overrides, validation.
//!
//! Every env has one params struct (`#[serde(deny_unknown_fields, default)]`, a doc comment per field)
//! that is both the static description (grid size, view) and the level distribution (shift knobs).
//! Named splits (`train`, `deploy`, …) are constructors returning preset params; `--set key=value`
//! overrides are applied on top with [`mesalab_core::config::load`], so unknown keys and bad values get
//! the same located, "did you mean" errors as experiment configs.

use crate::api::Env;
use crate::error::EnvError;
use mesalab_core::config::{self, Override, Validate};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Parameters of one environment family. Implement this and add one line to
/// [`crate::registry::ENTRIES`] to make an env available by name.
pub trait EnvParams: Serialize + DeserializeOwned + Validate + Clone + std::fmt::Debug + Send + Sync + 'static {
    /// The environment these parameters build.
    type Env: Env + 'static;
    /// Versioned env name, e.g. `coin-corridor-v1`.
    const NAME: &'static str;
    /// Split names; the first is the default.
    const SPLITS: &'static [&'static str];
    /// The preset parameters of split `name`, or `None` when there is no such split.
    fn split(name: &str) -> Option<Self>;
    /// Builds the env. Must reject parameters that describe no possible level (return an error,
    /// never panic or loop forever). Called after `validate`.
    fn build(&self) -> Result<Self::Env, EnvError>;
}

/// The params of `split` with `overrides` applied and validated.
pub fn resolve<P: EnvParams>(split: &str, overrides: &[Override]) -> Result<P, EnvError> {
    let base = P::split(split).ok_or_else(|| EnvError::UnknownSplit {
        env: P::NAME.to_string(),
        split: split.to_string(),
        valid: P::SPLITS.join(", "),
        suggestion: mesalab_core::suggest::closest(split, P::SPLITS).map(str::to_string),
    })?;
    let text = to_toml(&base);
    let origin = format!("{} split `{split}`", P::NAME);
    config::load::<P>(&origin, &text, overrides)
        .map_err(|error| EnvError::Config { env: P::NAME.to_string(), error: Box::new(error) })
}

/// Validates and builds in one go (for code that holds typed params).
pub fn build_checked<P: EnvParams>(params: &P) -> Result<P::Env, EnvError> {
    params.validate().map_err(|inv| EnvError::params(P::NAME, inv.key, inv.message))?;
    params.build()
}

/// The params as a TOML document (what a run records as the resolved env config).
pub fn to_toml<P: Serialize>(params: &P) -> String {
    toml::to_string(params).unwrap_or_else(|e| format!("# params not representable as TOML: {e}\n"))
}
