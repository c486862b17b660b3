//! mesalab-analysis: the algorithms a trained model is compared with, and the statistics of the
//! comparison. No tensors: everything here is plain f64 so that baselines are exact and cheap.
//!
//! - [`icl`]: in-context linear regression tasks and the algorithms a transformer may implement on
//!   them (zero, one/k-step GD, GD++, OLS, ridge), with their step sizes fitted on held-out tasks.
//! - [`icl_identify`]: preconditioned GD (a matrix step per layer) and the certificate that ties a
//!   trained model to one candidate algorithm (loss ratio, SPD, implied-weight distance, cosine).
//! - [`icl_pool`]: regression tasks from a finite pool of teachers and its Bayes-optimal predictor
//!   (dMMSE), for the task-diversity experiment.
//! - [`lds`]: sequences from random linear dynamical systems and the in-context learners that
//!   predict them (zero, k-step GD, least squares, the true W), for icl-autoregressive.
//! - [`probe`]: linear probes on activations (logistic, difference of means, ridge) judged on a
//!   held-out split against their controls (random-direction null, shuffled labels).
//! - [`irl`]: maximum-entropy inverse RL on tabular deterministic MDPs (gridworlds), to recover the
//!   reward an agent's trajectories imply.
//! - [`stats`]: summaries across seeds (mean, min, max, std) and small vector helpers.

pub mod icl;
pub mod icl_identify;
pub mod icl_pool;
pub mod irl;
pub mod lds;
pub mod probe;
pub mod stats;
