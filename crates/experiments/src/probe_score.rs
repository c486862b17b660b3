//! A classifier probe's held-out AUROC beside its two controls, as the deceptive-alignment
//! experiments store it (`alignment-faking`, `absent-supervisor`). NaN is stored as `null`.

use serde::{Deserialize, Serialize};

/// One probe score with its controls: a shuffled-label probe on the same activations and the 95th
/// percentile of random directions (`mesalab_analysis::probe`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeScore {
    pub seed: u64,
    /// `trained` or `untrained` (the same architecture at initialisation).
    pub model: String,
    pub hook: String,
    /// What the probe reads (e.g. `training cue`).
    pub target: String,
    #[serde(
        serialize_with = "mesalab_analysis::stats::nan_as_null",
        deserialize_with = "mesalab_analysis::stats::null_as_nan"
    )]
    pub auroc: f64,
    #[serde(
        serialize_with = "mesalab_analysis::stats::nan_as_null",
        deserialize_with = "mesalab_analysis::stats::null_as_nan"
    )]
    pub shuffled: f64,
    #[serde(
        serialize_with = "mesalab_analysis::stats::nan_as_null",
        deserialize_with = "mesalab_analysis::stats::null_as_nan"
    )]
    pub null_p95: f64,
}
