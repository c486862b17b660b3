//! mesalab-analysis: the algorithms a trained model is compared with, and the statistics of the
//! comparison. No tensors: everything here is plain f64 so that baselines are exact and cheap.
//!
//! - [`icl`]: in-context linear regression tasks and the algorithms a transformer may implement on
//!   them (zero, one/k-step GD, GD++, OLS, ridge), with their step sizes fitted on held-out tasks.
//! - [`stats`]: summaries across seeds (mean, min, max, std) and small vector helpers.

pub mod icl;
pub mod stats;
