//! Supervised training with Adam: the base optimizer for tasks with a differentiable loss.
//!
//! Thin on purpose: burn's `ModuleOptimizer` does the per-parameter Adam update; this file fixes
//! mesalab's conventions around it (PyTorch-like epsilon by default, per-parameter gradient-norm
//! clipping, and a hard error on a non-finite loss so that a diverged run stops instead of
//! silently training on NaNs).

use crate::checkpoint::{CheckpointError, StateFile};
use burn::module::Module;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Adam hyperparameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamSettings {
    pub learning_rate: f64,
    pub beta1: f32,
    pub beta2: f32,
    /// burn's default is 1e-5; PyTorch's (and the papers') 1e-8.
    pub epsilon: f32,
    /// Clip each parameter's gradient to this L2 norm; 0 disables clipping.
    pub grad_clip_norm: f32,
}

/// The loss became NaN or infinite.
#[derive(Debug, thiserror::Error)]
#[error("the loss became {value} at step {step}: training diverged (try a smaller learning rate)")]
pub struct Diverged {
    pub step: u64,
    pub value: f32,
}

/// Adam with its state, stepping a module of type `M`.
pub struct Supervised {
    optim: ModuleOptimizer,
    learning_rate: f64,
    steps: u64,
}

impl Supervised {
    pub fn new(settings: &AdamSettings) -> Self {
        let mut config =
            AdamConfig::new().with_beta_1(settings.beta1).with_beta_2(settings.beta2).with_epsilon(settings.epsilon);
        if settings.grad_clip_norm > 0.0 {
            config = config.with_grad_clipping(Some(GradientClippingConfig::Norm(settings.grad_clip_norm)));
        }
        Self { optim: config.init(), learning_rate: settings.learning_rate, steps: 0 }
    }

    /// One Adam step on `loss`, a scalar computed from `model` on an autodiff device.
    /// Returns the updated model and the loss value before the step.
    pub fn step<M: Module>(&mut self, model: M, loss: Tensor<1>) -> Result<(M, f32), Diverged> {
        let value = loss.clone().into_scalar::<f32>();
        if !value.is_finite() {
            return Err(Diverged { step: self.steps, value });
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let model = self.optim.step(self.learning_rate, model, grads);
        self.steps += 1;
        Ok((model, value))
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The step size of the next steps (a schedule sets it before each step; it is not part of
    /// the saved state, so a schedule must be a function of the step index).
    pub fn set_learning_rate(&mut self, learning_rate: f64) {
        self.learning_rate = learning_rate;
    }

    /// Writes the optimizer state (Adam moments and step counts) and the step count into `file`.
    pub fn save_state(&self, file: &mut StateFile) -> Result<(), CheckpointError> {
        file.put_optimizer(self.optim.to_record())?;
        file.put("supervised-steps", &self.steps)
    }

    /// The optimizer [`Supervised::save_state`] wrote, with `settings` (the run's own: the state holds
    /// no hyperparameters). Restore the model with [`StateFile::restore_model`] so that its
    /// parameter ids match the optimizer state's.
    pub fn restore(settings: &AdamSettings, file: &StateFile) -> Result<Self, CheckpointError> {
        let mut s = Self::new(settings);
        s.optim = s.optim.load_record(file.optimizer()?);
        s.steps = file.get("supervised-steps")?;
        Ok(s)
    }
}
