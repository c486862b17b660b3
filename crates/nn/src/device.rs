//! Devices. mesalab runs on burn's pure-Rust `flex` CPU backend; training uses its autodiff
//! decorator. One thread per process is fastest at mesalab's model sizes (DESIGN.md).

use burn::tensor::Device;

/// The plain CPU device (inference, analysis).
pub fn cpu() -> Device {
    Device::flex()
}

/// The CPU device with gradients enabled (training).
pub fn cpu_autodiff() -> Device {
    Device::flex().autodiff()
}
