//! The shipped experiments: name → config (embedded, so the binary runs anywhere) and runner.

use crate::icl_gd;
use mesalab_core::config::{self, ConfigError, Override};
use mesalab_store::{RunId, Store};

/// Which runner a config belongs to (the `experiment = "…"` key of a config file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runner {
    IclGd,
}

impl Runner {
    pub const ALL: [(&'static str, Runner); 1] = [("icl-gd", Runner::IclGd)];

    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, r)| *r == self).map(|(n, _)| *n).expect("every runner is listed")
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
    }

    /// Regenerates a run's report from the store.
    pub fn report(self, store: &Store, run: RunId) -> anyhow::Result<String> {
        match self {
            Runner::IclGd => icl_gd::report(store, run),
        }
    }
}

/// A shipped experiment.
#[derive(Clone, Copy, Debug)]
pub struct Experiment {
    pub name: &'static str,
    pub description: &'static str,
    /// The config file shipped in `configs/experiments/`, embedded at build time.
    pub config: &'static str,
    pub config_path: &'static str,
}

macro_rules! shipped {
    ($name:literal, $description:literal) => {
        Experiment {
            name: $name,
            description: $description,
            config: include_str!(concat!("../../../configs/experiments/", $name, ".toml")),
            config_path: concat!("configs/experiments/", $name, ".toml"),
        }
    };
}

/// Every shipped experiment, in the order `mesalab list` shows them.
pub const EXPERIMENTS: &[Experiment] = &[
    shipped!(
        "icl-gd",
        "1-layer linear self-attention trained on in-context regression vs one step of GD (von Oswald et al. 2023)"
    ),
    shipped!("icl-gd-2layer", "2-layer linear self-attention vs 2-step GD and GD++"),
    shipped!("icl-gd-softmax", "1-layer softmax attention, 1 head, vs one step of GD"),
    shipped!("icl-gd-softmax-2head", "1-layer softmax attention, 2 heads, vs one step of GD"),
];

/// No shipped experiment has this name.
#[derive(Debug, thiserror::Error)]
#[error("unknown experiment `{name}`{suggestion}; shipped experiments: {}", names().join(", "))]
pub struct UnknownExperiment {
    pub name: String,
    pub suggestion: String,
}

pub fn names() -> Vec<&'static str> {
    EXPERIMENTS.iter().map(|e| e.name).collect()
}

pub fn find(name: &str) -> Result<&'static Experiment, UnknownExperiment> {
    EXPERIMENTS.iter().find(|e| e.name == name).ok_or_else(|| UnknownExperiment {
        name: name.to_string(),
        suggestion: mesalab_core::suggest::did_you_mean(name, &names()),
    })
}

/// The runner a config text names in its `experiment` key.
pub fn runner_of(origin: &str, text: &str) -> Result<Runner, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError {
        origin: origin.to_string(),
        line: e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1),
        key: None,
        message: e.message().to_string(),
        suggestion: None,
    })?;
    let runners: Vec<&str> = Runner::ALL.iter().map(|(n, _)| *n).collect();
    match table.get("experiment") {
        Some(toml::Value::String(name)) => Runner::parse(name).ok_or_else(|| ConfigError {
            origin: origin.to_string(),
            line: config::locate_key(text, "experiment"),
            key: Some("experiment".into()),
            message: format!("unknown experiment `{name}`; valid: {}", runners.join(", ")),
            suggestion: mesalab_core::suggest::closest(name, &runners).map(str::to_string),
        }),
        _ => Err(ConfigError {
            origin: origin.to_string(),
            line: None,
            key: Some("experiment".into()),
            message: format!(
                "the config must name its experiment, e.g. `experiment = \"icl-gd\"` (valid: {})",
                runners.join(", ")
            ),
            suggestion: None,
        }),
    }
}

/// `--set` overrides from a `[quick]` table, in key order.
pub(crate) fn flatten_table(prefix: &str, table: &toml::Table, out: &mut Vec<Override>) {
    for (k, v) in table {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(t) => flatten_table(&key, t, out),
            other => out.push(Override { key, raw: other.to_string() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_config_loads_in_full_and_quick_mode() {
        for e in EXPERIMENTS {
            for quick in [false, true] {
                let plan = crate::plan::Plan::new(
                    e.config_path,
                    e.config,
                    &[],
                    &crate::plan::PlanOptions { quick, ..Default::default() },
                );
                assert!(plan.is_ok(), "{}: {}", e.name, plan.err().map(|e| e.to_string()).unwrap_or_default());
            }
        }
    }

    #[test]
    fn unknown_names_suggest_the_closest() {
        let e = find("icl-dg").unwrap_err();
        assert!(e.to_string().contains("did you mean `icl-gd`"), "{e}");
        let e = runner_of("x.toml", "experiment = \"icl_gd\"\n").unwrap_err();
        assert_eq!(e.suggestion.as_deref(), Some("icl-gd"));
        assert!(runner_of("x.toml", "[task]\nd = 3\n").is_err());
    }
}
