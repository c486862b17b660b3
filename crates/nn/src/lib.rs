//! mesalab-nn: models with named hook points, on burn (flex CPU backend).
//!
//! - [`hooks`]: cache / patch / steer activations at named hook points (TransformerLens names).
//! - [`interp`]: activation patching sweeps, steering vectors (mean differences), hook shapes.
//! - [`lm`]: a decoder-only transformer language model (pre-LayerNorm, causal multi-head
//!   attention) with TransformerLens hook names.
//! - [`lsa`]: the linear (or softmax) self-attention transformer of von Oswald et al. 2023 for
//!   in-context regression, whose trained forward pass can implement gradient descent.
//! - [`causal_lsa`]: causal linear self-attention for sequence prediction (von Oswald et al.
//!   2023b), whose hand-built layer is one GD step on the sequence seen so far.
//! - [`fused`]: an MLP actor-critic's forward / backward and Adam on flat buffers (PPO's fast path).
//! - [`device`]: the CPU devices mesalab trains and evaluates on.
//! - [`checkpoint`]: safetensors save / load of any module.

pub mod causal_lsa;
pub mod checkpoint;
pub mod device;
pub mod fused;
pub mod hooks;
pub mod interp;
pub mod lm;
pub mod lsa;
pub mod policy;

pub use hooks::{ActivationCache, HookError, HookPoint, Hooks};
