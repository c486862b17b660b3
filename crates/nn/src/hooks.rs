//! Hook points: named places inside a model's forward pass where activations can be read
//! (cached), replaced (patched) or shifted (steered).
//!
//! Names follow TransformerLens: module path plus `hook_<what>` (`blocks.0.attn.hook_pattern`).
//! Everything is eager and explicit: a [`Hooks`] value is passed into `forward_hooked`, each hook
//! point calls [`Hooks::apply`], and afterwards the caller reads the cache. With no cache, patch or
//! addition registered, `apply` is a single branch and returns the tensor untouched.
//!
//! Invariant: patching a hook with the activation that the same model cached for the same input
//! reproduces the unpatched forward pass bit for bit (tested per model).

use burn::tensor::{Tensor, TensorData};
use std::collections::BTreeMap;

/// One hook point a model exposes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookPoint {
    pub name: String,
    /// Dimension names, e.g. `["batch", "head", "q_pos", "k_pos"]`.
    pub dims: Vec<&'static str>,
}

/// Errors from registering hooks on a model.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HookError {
    #[error("unknown hook `{name}`{suggestion}; list the model's hooks to see valid names")]
    UnknownHook { name: String, suggestion: String },
    #[error("hook `{name}`: {what} has shape {got:?} but the activation has shape {expected:?}")]
    ShapeMismatch { name: String, what: &'static str, got: Vec<usize>, expected: Vec<usize> },
}

/// Some units (last-dimension indices) of an activation taken from another input's pass: the
/// interchange intervention of activation patching, restricted to a few units.
#[derive(Clone, Debug)]
struct UnitPatch {
    units: Vec<usize>,
    /// `[batch, units_total]`, or `[batch, positions, units_total]` with `positions` ≤ the
    /// activation's (a prompt's activations patched into a longer generation pass).
    source: TensorData,
    /// Per batch row, how many leading positions to patch (`None`: every source position).
    positions: Option<Vec<usize>>,
}

impl UnitPatch {
    /// `x` with the units patched, or `None` when the shapes or indices do not fit.
    fn apply(&self, x: &TensorData) -> Option<TensorData> {
        let shape = x.shape().to_vec();
        let src_shape = self.source.shape().to_vec();
        let (mut values, src) = (x.try_to_vec::<f32>().ok()?, self.source.try_to_vec::<f32>().ok()?);
        let width = *shape.last()?;
        let fits = src_shape.len() == shape.len()
            && src_shape[0] == shape[0]
            && src_shape.last() == Some(&width)
            && match shape.len() {
                2 => true,
                3 => src_shape[1] <= shape[1],
                _ => false,
            }
            && self.units.iter().all(|&u| u < width)
            && self.positions.as_ref().is_none_or(|p| p.len() == shape[0]);
        if !fits {
            return None;
        }
        // Rows of `width` values: `[batch, positions]` of them (positions = 1 for 2-D).
        let (pos_x, pos_src) = if shape.len() == 3 { (shape[1], src_shape[1]) } else { (1, 1) };
        for r in 0..shape[0] {
            let upto = self.positions.as_ref().map_or(pos_src, |p| p[r].min(pos_src));
            for p in 0..upto {
                let (xi, si) = ((r * pos_x + p) * width, (r * pos_src + p) * width);
                for &u in &self.units {
                    values[xi + u] = src[si + u];
                }
            }
        }
        Some(TensorData::new(values, shape))
    }
}

/// What to do at hook points during one forward pass.
#[derive(Default, Debug)]
pub struct Hooks {
    /// Names to record; `None` = record nothing, `Some(empty)` = record every hook.
    cache_names: Option<Vec<String>>,
    cache: BTreeMap<String, TensorData>,
    patches: BTreeMap<String, TensorData>,
    /// (vector over the activation's trailing dims, coefficient).
    additions: BTreeMap<String, (TensorData, f32)>,
    unit_patches: BTreeMap<String, UnitPatch>,
    errors: Vec<HookError>,
}

impl Hooks {
    /// No caching, patching or steering: the plain forward pass.
    pub fn none() -> Self {
        Self::default()
    }

    /// Record every hook point.
    pub fn cache_all() -> Self {
        Self { cache_names: Some(Vec::new()), ..Self::default() }
    }

    /// Record only these hook points.
    pub fn cache_only(names: &[&str]) -> Self {
        Self { cache_names: Some(names.iter().map(|s| s.to_string()).collect()), ..Self::default() }
    }

    /// Replace the activation at `name` with `value` (same shape as the activation).
    pub fn patch(mut self, name: &str, value: TensorData) -> Self {
        self.patches.insert(name.to_string(), value);
        self
    }

    /// Add `coefficient * vector` along the last dimension of the activation at `name`.
    pub fn add(self, name: &str, vector: Vec<f32>, coefficient: f32) -> Self {
        let len = vector.len();
        self.add_tensor(name, TensorData::new(vector, [len]), coefficient)
    }

    /// Add `coefficient * vector` to the activation at `name`, broadcast over its leading dims:
    /// `vector`'s shape must equal the activation's trailing dims (e.g. `[channel, height, width]`
    /// for a conv activation `[batch, channel, height, width]`, or `[d]` for `[batch, pos, d]`).
    /// This is how a steering vector (a mean activation difference) is applied.
    pub fn add_tensor(mut self, name: &str, vector: TensorData, coefficient: f32) -> Self {
        self.additions.insert(name.to_string(), (vector, coefficient));
        self
    }

    /// Replace units `units` (indices into the last dimension) of the activation at `name` with
    /// those of `source`, taken from another input's pass. `source` is `[batch, width]` for a
    /// `[batch, width]` activation, or `[batch, positions, width]` for a `[batch, positions', width]`
    /// one with `positions ≤ positions'`; then `positions_per_row[r]` (default: all) leading
    /// positions of row `r` are patched and later ones (tokens generated since) left alone.
    pub fn patch_units(
        mut self,
        name: &str,
        units: Vec<usize>,
        source: TensorData,
        positions_per_row: Option<Vec<usize>>,
    ) -> Self {
        self.unit_patches.insert(name.to_string(), UnitPatch { units, source, positions: positions_per_row });
        self
    }

    /// Checks every patched / steered name against the model's hook points.
    pub fn validate(&self, points: &[HookPoint]) -> Result<(), HookError> {
        let known: Vec<&str> = points.iter().map(|p| p.name.as_str()).collect();
        let requested = (self.patches.keys().chain(self.additions.keys()).chain(self.unit_patches.keys()))
            .chain(self.cache_names.iter().flatten());
        for name in requested {
            if !known.contains(&name.as_str()) {
                return Err(HookError::UnknownHook {
                    name: name.clone(),
                    suggestion: mesalab_core::suggest::did_you_mean(name, &known),
                });
            }
        }
        Ok(())
    }

    fn active(&self) -> bool {
        self.cache_names.is_some()
            || !self.patches.is_empty()
            || !self.additions.is_empty()
            || !self.unit_patches.is_empty()
    }

    /// Called by models at each hook point: records, patches and steers as registered.
    /// Shape mismatches are recorded and reported by [`Hooks::finish`]; the activation is then
    /// left unchanged.
    pub fn apply<const D: usize>(&mut self, name: impl FnOnce() -> String, x: Tensor<D>) -> Tensor<D> {
        if !self.active() {
            return x;
        }
        let name = name();
        let mut x = x;
        if let Some(value) = self.patches.get(&name) {
            let expected = x.dims().to_vec();
            if value.shape().to_vec() == expected {
                x = Tensor::from_data(value.clone(), &x.device());
            } else {
                self.errors.push(HookError::ShapeMismatch {
                    name: name.clone(),
                    what: "the patch",
                    got: value.shape().to_vec(),
                    expected,
                });
            }
        }
        if let Some(patch) = self.unit_patches.get(&name) {
            match patch.apply(&x.to_data()) {
                Some(data) => x = Tensor::from_data(data, &x.device()),
                None => self.errors.push(HookError::ShapeMismatch {
                    name: name.clone(),
                    what: "the unit patch",
                    got: patch.source.shape().to_vec(),
                    expected: x.dims().to_vec(),
                }),
            }
        }
        if let Some((vector, coefficient)) = self.additions.get(&name) {
            let dims = x.dims();
            let trailing = vector.shape().to_vec();
            let k = trailing.len();
            let flat = vector.try_to_vec::<f32>().ok().filter(|_| k >= 1 && k <= D && dims[D - k..] == trailing[..]);
            if let Some(flat) = flat {
                let v: Tensor<1> =
                    Tensor::from_data(TensorData::new(flat, [trailing.iter().product::<usize>()]), &x.device());
                // [trailing…] -> [1, …, 1, trailing…] so it broadcasts over every leading dim.
                let mut shape = [1usize; D];
                shape[D - k..].copy_from_slice(&trailing);
                x = x + v.reshape(shape).mul_scalar(*coefficient);
            } else {
                self.errors.push(HookError::ShapeMismatch {
                    name: name.clone(),
                    what: "the steering vector",
                    got: vector.shape().to_vec(),
                    expected: dims.to_vec(),
                });
            }
        }
        let wanted = match &self.cache_names {
            Some(names) => names.is_empty() || names.contains(&name),
            None => false,
        };
        if wanted {
            self.cache.insert(name, x.to_data());
        }
        x
    }

    /// Ends the pass: the cache, or the first error a hook point met.
    pub fn finish(self) -> Result<ActivationCache, HookError> {
        match self.errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(ActivationCache { activations: self.cache }),
        }
    }
}

/// Activations recorded during one forward pass, by hook name (f32 data with shape).
#[derive(Clone, Debug, Default)]
pub struct ActivationCache {
    pub activations: BTreeMap<String, TensorData>,
}

impl ActivationCache {
    pub fn get(&self, name: &str) -> Option<&TensorData> {
        self.activations.get(name)
    }

    /// The activation as flat f32 values with its shape.
    pub fn values(&self, name: &str) -> Option<(Vec<usize>, Vec<f32>)> {
        let data = self.activations.get(name)?;
        Some((data.shape().to_vec(), data.try_to_vec::<f32>().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::cpu;

    fn tensor3(values: Vec<f32>, shape: [usize; 3]) -> Tensor<3> {
        Tensor::from_data(TensorData::new(values, shape), &cpu())
    }

    #[test]
    fn a_unit_patch_replaces_only_the_listed_units_at_each_rows_leading_positions() {
        // x: [batch 2, positions 3, width 2], all zeros; source: [2, 2, 2] of distinct values.
        let x = tensor3(vec![0.0; 12], [2, 3, 2]);
        let source = TensorData::new((1..=8).map(|v| v as f32).collect::<Vec<f32>>(), [2, 2, 2]);
        let mut hooks = Hooks::none().patch_units("h", vec![1], source, Some(vec![2, 1]));
        let out = hooks.apply(|| "h".into(), x).into_data().try_to_vec::<f32>().unwrap();
        hooks.finish().unwrap();
        // Row 0: positions 0 and 1 take unit 1 from the source (2, 4); row 1: position 0 only (6).
        assert_eq!(out, vec![0.0, 2.0, 0.0, 4.0, 0.0, 0.0, 0.0, 6.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn a_unit_patch_that_does_not_fit_is_an_error_and_leaves_the_activation() {
        let x = tensor3(vec![0.5; 12], [2, 3, 2]);
        let wrong_batch = TensorData::new(vec![1.0f32; 6], [1, 3, 2]);
        let mut hooks = Hooks::none().patch_units("h", vec![0], wrong_batch, None);
        let out = hooks.apply(|| "h".into(), x.clone()).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(out, vec![0.5; 12]);
        assert!(matches!(hooks.finish(), Err(HookError::ShapeMismatch { what: "the unit patch", .. })));
        let unit_out_of_range = TensorData::new(vec![1.0f32; 12], [2, 3, 2]);
        let mut hooks = Hooks::none().patch_units("h", vec![2], unit_out_of_range, None);
        hooks.apply(|| "h".into(), x);
        assert!(hooks.finish().is_err());
    }
}
