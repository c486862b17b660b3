//! Activation patching and steering vectors for any model with hook points.
//!
//! Model-agnostic: the caller supplies the caches of a clean and a corrupted forward pass and a
//! closure that re-runs the corrupted input with given [`Hooks`] and returns a per-item metric.
//! Everything here is plain data manipulation on cached activations; nothing is lazy.
//!
//! - [`patching_sweep`]: for every hook (and every head of hooks with a `head` dim), patch the
//!   clean activation into the corrupted run and measure how much of the metric comes back.
//! - [`fraction_restored`]: that "how much", pooled over items by least squares, so items whose
//!   clean and corrupted metrics barely differ do not dominate (as a per-item ratio would).
//! - [`mean_difference`]: a steering vector, the mean activation difference of paired inputs.
//! - [`hook_shapes`]: every hook with its dim names and the shape it had in a cached pass.

use crate::hooks::{ActivationCache, HookError, HookPoint, Hooks};
use burn::tensor::TensorData;
use serde::Serialize;

/// Errors of the patching and steering helpers.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InterpError {
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error("hook `{0}` is missing from a cache; cache every hook that is patched or compared")]
    NotCached(String),
    #[error(
        "the clean and corrupted runs give the same metric on every item, so patching cannot restore \
         anything; choose inputs that change the metric"
    )]
    NoDifference,
    #[error("{what}: expected {expected} values but got {got}")]
    Length { what: &'static str, expected: usize, got: usize },
    #[error("hook `{name}`: the activations have shapes {a:?} and {b:?}; paired inputs must have the same shape")]
    Shape { name: String, a: Vec<usize>, b: Vec<usize> },
    #[error("hook `{name}` has no `head` dim to patch per head")]
    NoHeadDim { name: String },
}

/// How much of the clean-vs-corrupted metric difference one patch brings back.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PatchEffect {
    pub hook: String,
    /// `Some(h)` when only head `h`'s slice was patched.
    pub head: Option<usize>,
    /// 1 = the clean metric fully restored, 0 = no change from the corrupted run.
    pub restored: f64,
}

/// Least-squares fraction of the clean−corrupted difference that `patched` recovers:
/// `Σ (patched − corrupted)(clean − corrupted) / Σ (clean − corrupted)²`.
pub fn fraction_restored(clean: &[f64], corrupted: &[f64], patched: &[f64]) -> Result<f64, InterpError> {
    if corrupted.len() != clean.len() || patched.len() != clean.len() {
        let got = if corrupted.len() != clean.len() { corrupted.len() } else { patched.len() };
        return Err(InterpError::Length { what: "metric values per item", expected: clean.len(), got });
    }
    let (mut num, mut den) = (0.0, 0.0);
    for ((k, c), p) in clean.iter().zip(corrupted).zip(patched) {
        num += (p - c) * (k - c);
        den += (k - c) * (k - c);
    }
    if den == 0.0 || !den.is_finite() {
        return Err(InterpError::NoDifference);
    }
    Ok(num / den)
}

fn cached<'a>(cache: &'a ActivationCache, name: &str) -> Result<(Vec<usize>, Vec<f32>, &'a TensorData), InterpError> {
    let data = cache.get(name).ok_or_else(|| InterpError::NotCached(name.to_string()))?;
    let values = data.try_to_vec::<f32>().map_err(|_| InterpError::NotCached(name.to_string()))?;
    Ok((data.shape().to_vec(), values, data))
}

/// The corrupted activation with head `head`'s slice (dim 1) taken from the clean one.
/// Both must have shape `[batch, head, …]`.
pub fn head_patch(
    name: &str,
    clean: &TensorData,
    corrupted: &TensorData,
    head: usize,
) -> Result<TensorData, InterpError> {
    let shape = corrupted.shape().to_vec();
    if clean.shape().to_vec() != shape {
        return Err(InterpError::Shape { name: name.to_string(), a: clean.shape().to_vec(), b: shape });
    }
    if shape.len() < 2 || head >= shape[1] {
        return Err(InterpError::NoHeadDim { name: name.to_string() });
    }
    let c = clean.try_to_vec::<f32>().map_err(|_| InterpError::NotCached(name.to_string()))?;
    let mut out = corrupted.try_to_vec::<f32>().map_err(|_| InterpError::NotCached(name.to_string()))?;
    // [batch, head, rest…] row-major: item b's head h occupies one contiguous block of `rest`.
    let rest: usize = shape[2..].iter().product();
    let heads = shape[1];
    for b in 0..shape[0] {
        let start = (b * heads + head) * rest;
        out[start..start + rest].copy_from_slice(&c[start..start + rest]);
    }
    Ok(TensorData::new(out, shape))
}

/// Patches every hook in `points` (in order), and with `per_head` every head of each hook whose
/// dim 1 is `head`, from the clean cache into the corrupted run; returns the fraction restored.
///
/// `run_corrupted(hooks)` must run the *corrupted* input with `hooks` and return the metric per
/// item (the same items as `clean_metric` / `corrupted_metric`). Both caches must hold every hook
/// in `points`.
pub fn patching_sweep(
    points: &[HookPoint],
    clean: &ActivationCache,
    corrupted: &ActivationCache,
    clean_metric: &[f64],
    corrupted_metric: &[f64],
    per_head: bool,
    mut run_corrupted: impl FnMut(Hooks) -> Result<Vec<f64>, HookError>,
) -> Result<Vec<PatchEffect>, InterpError> {
    // Fail early (before any forward pass) when the metrics cannot separate the runs.
    fraction_restored(clean_metric, corrupted_metric, corrupted_metric)?;
    let mut effects = Vec::new();
    for point in points {
        let (clean_shape, _, clean_data) = cached(clean, &point.name)?;
        let (corrupt_shape, _, corrupt_data) = cached(corrupted, &point.name)?;
        if clean_shape != corrupt_shape {
            return Err(InterpError::Shape { name: point.name.clone(), a: clean_shape, b: corrupt_shape });
        }
        let patched = run_corrupted(Hooks::none().patch(&point.name, clean_data.clone()))?;
        let restored = fraction_restored(clean_metric, corrupted_metric, &patched)?;
        effects.push(PatchEffect { hook: point.name.clone(), head: None, restored });
        if per_head && point.dims.get(1) == Some(&"head") {
            for h in 0..clean_shape[1] {
                let value = head_patch(&point.name, clean_data, corrupt_data, h)?;
                let patched = run_corrupted(Hooks::none().patch(&point.name, value))?;
                let restored = fraction_restored(clean_metric, corrupted_metric, &patched)?;
                effects.push(PatchEffect { hook: point.name.clone(), head: Some(h), restored });
            }
        }
    }
    Ok(effects)
}

/// A steering vector: the mean over the batch of `a − b` at hook `name`, shape = the activation's
/// shape without the batch dim. Rows of `a` and `b` are paired inputs (e.g. the same maze with and
/// without cheese). Apply it with [`Hooks::add_tensor`].
pub fn mean_difference(name: &str, a: &ActivationCache, b: &ActivationCache) -> Result<TensorData, InterpError> {
    let (sa, va, _) = cached(a, name)?;
    let (sb, vb, _) = cached(b, name)?;
    if sa != sb || sa.is_empty() || sa[0] == 0 {
        return Err(InterpError::Shape { name: name.to_string(), a: sa, b: sb });
    }
    let batch = sa[0];
    let per_item = va.len() / batch;
    let mut mean = vec![0.0_f64; per_item];
    // [batch, rest…] row-major: item i is the i-th block of `per_item` values.
    for i in 0..batch {
        for (m, (x, y)) in mean.iter_mut().zip(va[i * per_item..].iter().zip(&vb[i * per_item..]).take(per_item)) {
            *m += f64::from(*x) - f64::from(*y);
        }
    }
    let mean: Vec<f32> = mean.iter().map(|m| (m / batch as f64) as f32).collect();
    Ok(TensorData::new(mean, sa[1..].to_vec()))
}

/// A hook point with the shape its activation had in one cached pass.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HookShape {
    pub name: String,
    pub dims: Vec<&'static str>,
    /// `None` when the hook was not cached.
    pub shape: Option<Vec<usize>>,
}

/// Every hook point with its dim names and the shape it had in `cache`.
pub fn hook_shapes(points: &[HookPoint], cache: &ActivationCache) -> Vec<HookShape> {
    points
        .iter()
        .map(|p| HookShape {
            name: p.name.clone(),
            dims: p.dims.clone(),
            shape: cache.get(&p.name).map(|d| d.shape().to_vec()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::cpu;
    use crate::lsa::{LayerWeights, Lsa, LsaSpec};
    use burn::tensor::Tensor;

    fn spec(layers: usize, heads: usize) -> LsaSpec {
        LsaSpec { d_token: 3, layers, heads, softmax: false, shared_weights: false, clip_tokens: 0.0 }
    }

    /// Two tasks (d = 2, N = 2): rows are tokens (x₁, x₂, y); the query's y-slot is 0.
    fn tokens(ys: [f32; 4]) -> Tensor<3> {
        #[rustfmt::skip]
        let t = vec![
            1.0, 0.0, ys[0],   0.0, 1.0, ys[1],   1.0, 1.0, 0.0,
            0.5, 0.5, ys[2],   1.0, -1.0, ys[3],  2.0, 0.0, 0.0,
        ];
        // [task, pos, d_token]
        Tensor::from_data(TensorData::new(t, [2, 3, 3]), &cpu())
    }

    fn predict(model: &Lsa, input: Tensor<3>, hooks: Hooks) -> Result<Vec<f64>, HookError> {
        let mut hooks = hooks;
        let pred = model.predict_hooked(input, &mut hooks).into_data().try_to_vec::<f32>().unwrap();
        hooks.finish()?;
        Ok(pred.into_iter().map(f64::from).collect())
    }

    fn run_cached(model: &Lsa, input: Tensor<3>) -> (ActivationCache, Vec<f64>) {
        let mut hooks = Hooks::cache_all();
        let pred = model.predict_hooked(input, &mut hooks).into_data().try_to_vec::<f32>().unwrap();
        (hooks.finish().unwrap(), pred.into_iter().map(f64::from).collect())
    }

    #[test]
    fn fraction_restored_is_least_squares_and_rejects_equal_runs() {
        assert_eq!(fraction_restored(&[1.0, 3.0], &[0.0, 1.0], &[1.0, 3.0]).unwrap(), 1.0);
        assert_eq!(fraction_restored(&[1.0, 3.0], &[0.0, 1.0], &[0.0, 1.0]).unwrap(), 0.0);
        // Differences (1, 2); patched moves (0.5, 1): half restored.
        assert!((fraction_restored(&[1.0, 3.0], &[0.0, 1.0], &[0.5, 2.0]).unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(fraction_restored(&[1.0], &[1.0], &[0.0]), Err(InterpError::NoDifference));
        assert!(matches!(fraction_restored(&[1.0], &[0.0, 1.0], &[0.0]), Err(InterpError::Length { .. })));
    }

    /// On the hand-built one-step-GD model, corrupting the context labels changes the prediction;
    /// patching the final residual stream (which the prediction reads) restores it fully, patching
    /// the input residual stream too (it is the whole input), and patching only the keys restores
    /// nothing (keys see x only, which the corruption left unchanged).
    #[test]
    fn patching_the_gd_construction_restores_what_the_math_says() {
        let model = Lsa::from_weights(spec(1, 1), vec![LayerWeights::gd_construction(3, 1, 0.5)], &cpu());
        let (clean_cache, clean) = run_cached(&model, tokens([1.0, -1.0, 2.0, 0.5]));
        let (corrupt_cache, corrupt) = run_cached(&model, tokens([-1.0, 2.0, 0.0, 1.0]));
        let points = model.hook_points();
        let effects = patching_sweep(&points, &clean_cache, &corrupt_cache, &clean, &corrupt, true, |hooks| {
            predict(&model, tokens([-1.0, 2.0, 0.0, 1.0]), hooks)
        })
        .unwrap();
        let get = |hook: &str, head: Option<usize>| {
            effects.iter().find(|e| e.hook == hook && e.head == head).map(|e| e.restored).unwrap()
        };
        assert!((get("blocks.0.hook_resid_post", None) - 1.0).abs() < 1e-6);
        assert!((get("blocks.0.hook_resid_pre", None) - 1.0).abs() < 1e-6);
        assert!((get("blocks.0.attn.hook_v", None) - 1.0).abs() < 1e-6);
        assert!((get("blocks.0.attn.hook_z", Some(0)) - 1.0).abs() < 1e-6);
        assert!(get("blocks.0.attn.hook_k", None).abs() < 1e-6);
        // One entry per hook plus one per head of the six hooks with a head dim (q, k, v, scores, pattern, z).
        assert_eq!(effects.len(), points.len() + 6);
    }

    /// With two heads, patching one head's output restores exactly that head's share.
    #[test]
    fn per_head_patches_add_up_for_a_linear_readout() {
        let mut rng = mesalab_core::Streams::new(mesalab_core::Seed(1)).stream("init");
        let model = Lsa::init(spec(1, 2), 0.5, &mut rng, &cpu());
        let (clean_cache, clean) = run_cached(&model, tokens([1.0, -1.0, 2.0, 0.5]));
        let (corrupt_cache, corrupt) = run_cached(&model, tokens([-1.0, 2.0, 0.0, 1.0]));
        let points: Vec<HookPoint> =
            model.hook_points().into_iter().filter(|p| p.name == "blocks.0.attn.hook_z").collect();
        let effects = patching_sweep(&points, &clean_cache, &corrupt_cache, &clean, &corrupt, true, |hooks| {
            predict(&model, tokens([-1.0, 2.0, 0.0, 1.0]), hooks)
        })
        .unwrap();
        // The prediction is linear in the head outputs, so the heads' shares sum to the whole.
        let whole = effects[0].restored;
        let sum: f64 = effects[1..].iter().map(|e| e.restored).sum();
        assert!((whole - 1.0).abs() < 1e-5, "{whole}");
        assert!((sum - whole).abs() < 1e-4, "{sum} vs {whole}");
    }

    #[test]
    fn mean_difference_steers_the_corrupted_run_to_the_clean_mean() {
        let model = Lsa::from_weights(spec(1, 1), vec![LayerWeights::gd_construction(3, 1, 0.5)], &cpu());
        let (a, _) = run_cached(&model, tokens([1.0, -1.0, 2.0, 0.5]));
        let (b, _) = run_cached(&model, tokens([-1.0, 2.0, 0.0, 1.0]));
        let v = mean_difference("blocks.0.hook_resid_post", &a, &b).unwrap();
        assert_eq!(v.shape().to_vec(), vec![3, 3]); // [pos, d_token]
        let (_, pa) = a.values("blocks.0.hook_resid_post").unwrap();
        let (_, pb) = b.values("blocks.0.hook_resid_post").unwrap();
        let v = v.try_to_vec::<f32>().unwrap();
        for i in 0..9 {
            let expected = ((pa[i] - pb[i]) + (pa[9 + i] - pb[9 + i])) / 2.0;
            assert!((v[i] - expected).abs() < 1e-6);
        }
        // Adding a [pos, d_token] vector broadcasts over the batch: the query's y-slot moves by −coef·v.
        let steer = TensorData::new(v.clone(), [3, 3]);
        let plain = predict(&model, tokens([-1.0, 2.0, 0.0, 1.0]), Hooks::none()).unwrap();
        let steered = predict(
            &model,
            tokens([-1.0, 2.0, 0.0, 1.0]),
            Hooks::none().add_tensor("blocks.0.hook_resid_post", steer, 2.0),
        )
        .unwrap();
        for (p, s) in plain.iter().zip(&steered) {
            assert!((p - 2.0 * f64::from(v[8]) - s).abs() < 1e-5);
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let model = Lsa::from_weights(spec(1, 1), vec![LayerWeights::gd_construction(3, 1, 0.5)], &cpu());
        let (a, m) = run_cached(&model, tokens([1.0, -1.0, 2.0, 0.5]));
        assert_eq!(
            mean_difference("blocks.0.hook_resid_psot", &a, &a),
            Err(InterpError::NotCached("blocks.0.hook_resid_psot".into()))
        );
        let points = model.hook_points();
        let same = patching_sweep(&points, &a, &a, &m, &m, false, |_| Ok(m.clone()));
        assert_eq!(same, Err(InterpError::NoDifference));
        // A steering vector whose shape matches no trailing dims is reported by `finish`.
        let bad = Hooks::none().add_tensor("blocks.0.hook_resid_post", TensorData::new(vec![0.0_f32; 4], [2, 2]), 1.0);
        let err = predict(&model, tokens([1.0, -1.0, 2.0, 0.5]), bad).unwrap_err();
        assert!(matches!(err, HookError::ShapeMismatch { .. }), "{err}");
        let head = head_patch("x", a.get("blocks.0.attn.hook_z").unwrap(), a.get("blocks.0.attn.hook_z").unwrap(), 3);
        assert!(matches!(head, Err(InterpError::NoHeadDim { .. })));
        let shapes = hook_shapes(&points, &a);
        assert!(shapes.iter().all(|h| h.shape.is_some()));
        assert_eq!(shapes[0].shape.as_deref(), Some(&[2, 3, 3][..]));
    }
}
