//! Errors from building environments: unknown names, bad parameters, impossible level distributions.

use mesalab_core::config::ConfigError;

/// Why an environment could not be built. Every variant says what the valid choices are.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("unknown environment `{name}`{hint}; valid environments: {valid}", hint = hint(suggestion))]
    UnknownEnv { name: String, valid: String, suggestion: Option<String> },
    #[error("`{env}` has no split `{split}`{hint}; valid splits: {valid}", hint = hint(suggestion))]
    UnknownSplit { env: String, split: String, valid: String, suggestion: Option<String> },
    /// A parameter override did not parse, names an unknown key, or failed validation.
    /// (The config error is shown inline rather than as a `source`, so it is not printed twice.)
    #[error("{env}: {error}")]
    Config { env: String, error: Box<ConfigError> },
    /// Parameters that are well-formed but describe no possible level (checked at construction).
    #[error("{env}: parameter `{key}`: {message}")]
    Params { env: String, key: String, message: String },
}

fn hint(s: &Option<String>) -> String {
    match s {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}

impl EnvError {
    /// An impossible-parameters error for env `env` (versioned name).
    pub fn params(env: &str, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Params { env: env.to_string(), key: key.into(), message: message.into() }
    }
}
