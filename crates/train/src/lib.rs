//! mesalab-train: base optimizers — the outer optimizers that produce (mesa-)optimizers.
//!
//! - [`supervised`]: Adam on a differentiable loss (the base optimizer of `icl-gd`).

pub mod supervised;
