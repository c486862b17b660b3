//! A decoder-only transformer language model (GPT-2 style, pre-LayerNorm) with TransformerLens
//! hook names, small enough to train on a CPU in seconds.
//!
//! `tokens → W_E[token] + W_pos[pos] → blocks → ln_final → W_U → logits`, each block
//! `x + attn(ln1(x))` then `x + mlp(ln2(x))`, causal multi-head softmax attention, ReLU MLP.
//!
//! Tokens enter as ids (`[batch, pos]`, row-major `u32`); the embedding is a one-hot matmul built
//! on the host, which needs no integer tensors and is exact (one 1.0 per row). Sequences of
//! different lengths are right-padded: attention is causal, so a position never reads the padding
//! after it, and callers read logits only at real positions.
//!
//! Hook points (TransformerLens names and, for q/k/v/z, its `[batch, pos, head, d_head]` layout):
//! `hook_embed`, `hook_pos_embed`, `blocks.{l}.hook_resid_pre`, `blocks.{l}.ln1.hook_normalized`,
//! `blocks.{l}.attn.hook_q/hook_k/hook_v`, `blocks.{l}.attn.hook_attn_scores`,
//! `blocks.{l}.attn.hook_pattern`, `blocks.{l}.attn.hook_z`, `blocks.{l}.hook_attn_out`,
//! `blocks.{l}.hook_resid_mid`, `blocks.{l}.ln2.hook_normalized`, `blocks.{l}.mlp.hook_pre`,
//! `blocks.{l}.mlp.hook_post`, `blocks.{l}.hook_mlp_out`, `blocks.{l}.hook_resid_post`,
//! `ln_final.hook_normalized`, `hook_logits`.

use crate::hooks::{HookPoint, Hooks};
use burn::module::{Module, Param};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Tensor, TensorData};
use mesalab_core::StreamRng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

/// Architecture of a [`TransformerLm`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LmSpec {
    pub vocab: usize,
    /// Longest sequence (rows of the position embedding).
    pub max_len: usize,
    pub d_model: usize,
    pub layers: usize,
    pub heads: usize,
    /// Hidden width of each MLP (GPT-2 uses 4·d_model).
    pub d_mlp: usize,
}

impl Default for LmSpec {
    fn default() -> Self {
        Self { vocab: 64, max_len: 32, d_model: 48, layers: 2, heads: 4, d_mlp: 192 }
    }
}

impl LmSpec {
    pub fn d_head(&self) -> usize {
        self.d_model / self.heads.max(1)
    }

    /// Why this architecture cannot be built, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if self.vocab == 0 || self.max_len == 0 || self.d_model == 0 || self.layers == 0 || self.heads == 0 {
            return Some("vocab, max_len, d_model, layers and heads must all be at least 1".into());
        }
        if !self.d_model.is_multiple_of(self.heads) {
            return Some(format!("d_model {} must be a multiple of heads {}", self.d_model, self.heads));
        }
        if self.d_mlp == 0 {
            return Some("d_mlp must be at least 1".into());
        }
        None
    }
}

/// A LayerNorm's gain and bias, each `[d_model]`.
#[derive(Module, Debug)]
pub struct LayerNorm {
    pub w: Param<Tensor<1>>,
    pub b: Param<Tensor<1>>,
}

/// One transformer block's weights.
#[derive(Module, Debug)]
pub struct Block {
    pub ln1: LayerNorm,
    /// `[d_model, heads·d_head]`; column block h is head h.
    pub w_q: Param<Tensor<2>>,
    pub w_k: Param<Tensor<2>>,
    pub w_v: Param<Tensor<2>>,
    /// `[heads·d_head, d_model]`.
    pub w_o: Param<Tensor<2>>,
    pub b_o: Param<Tensor<1>>,
    pub ln2: LayerNorm,
    /// `[d_model, d_mlp]`, `[d_mlp]`, `[d_mlp, d_model]`, `[d_model]`.
    pub w_in: Param<Tensor<2>>,
    pub b_in: Param<Tensor<1>>,
    pub w_out: Param<Tensor<2>>,
    pub b_out: Param<Tensor<1>>,
}

/// The language model.
#[derive(Module, Debug)]
pub struct TransformerLm {
    /// `[vocab, d_model]`.
    pub w_e: Param<Tensor<2>>,
    /// `[max_len, d_model]`.
    pub w_pos: Param<Tensor<2>>,
    pub blocks: Vec<Block>,
    pub ln_final: LayerNorm,
    /// `[d_model, vocab]`, `[vocab]`.
    pub w_u: Param<Tensor<2>>,
    pub b_u: Param<Tensor<1>>,
    #[module(skip)]
    pub spec: LmSpec,
}

/// A batch of right-padded token ids, `[batch, len]` row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenBatch {
    pub ids: Vec<u32>,
    pub batch: usize,
    pub len: usize,
}

impl TokenBatch {
    /// Right-pads `seqs` with `pad` to the longest of them.
    pub fn padded(seqs: &[Vec<u32>], pad: u32) -> Self {
        let len = seqs.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(seqs.len() * len);
        for s in seqs {
            ids.extend(s);
            ids.extend(std::iter::repeat_n(pad, len - s.len()));
        }
        Self { ids, batch: seqs.len(), len }
    }
}

fn normal_param<const D: usize>(shape: [usize; D], std: f64, rng: &mut StreamRng, device: &Device) -> Param<Tensor<D>> {
    let normal = Normal::new(0.0, std).expect("finite std");
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| normal.sample(rng) as f32).collect();
    Param::from_tensor(Tensor::from_data(TensorData::new(v, shape), device))
}

fn const_param(len: usize, value: f32, device: &Device) -> Param<Tensor<1>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(vec![value; len], [len]), device))
}

impl LayerNorm {
    fn new(d: usize, device: &Device) -> Self {
        Self { w: const_param(d, 1.0, device), b: const_param(d, 0.0, device) }
    }

    /// Normalises over the last dim of `[rows, d]`: `(x − mean) / sqrt(var + 1e-5) · w + b`.
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let centred = x.clone() - x.mean_dim(1); // [rows, d] − [rows, 1]
        let var = centred.clone().powf_scalar(2.0).mean_dim(1); // [rows, 1], biased as in PyTorch
        let normed = centred / var.add_scalar(1e-5).sqrt();
        normed * self.w.val().unsqueeze::<2>() + self.b.val().unsqueeze::<2>()
    }
}

impl TransformerLm {
    /// Random init drawn from `rng` in a fixed order: token and position embeddings
    /// N(0, 1/d_model), every matrix N(0, 1/fan_in), the output projections
    /// of attention and MLP further divided by √(2·layers) (GPT-2), biases 0, LayerNorm gains 1.
    pub fn init(spec: LmSpec, rng: &mut StreamRng, device: &Device) -> Self {
        assert!(spec.problem().is_none(), "{}", spec.problem().unwrap_or_default());
        let d = spec.d_model;
        let inv = |n: usize| 1.0 / (n as f64).sqrt();
        let depth_scale = inv(2 * spec.layers);
        let w_e = normal_param([spec.vocab, d], inv(d), rng, device);
        let w_pos = normal_param([spec.max_len, d], inv(d), rng, device);
        let blocks = (0..spec.layers)
            .map(|_| Block {
                ln1: LayerNorm::new(d, device),
                w_q: normal_param([d, d], inv(d), rng, device),
                w_k: normal_param([d, d], inv(d), rng, device),
                w_v: normal_param([d, d], inv(d), rng, device),
                w_o: normal_param([d, d], inv(d) * depth_scale, rng, device),
                b_o: const_param(d, 0.0, device),
                ln2: LayerNorm::new(d, device),
                w_in: normal_param([d, spec.d_mlp], inv(d), rng, device),
                b_in: const_param(spec.d_mlp, 0.0, device),
                w_out: normal_param([spec.d_mlp, d], inv(spec.d_mlp) * depth_scale, rng, device),
                b_out: const_param(d, 0.0, device),
            })
            .collect();
        let ln_final = LayerNorm::new(d, device);
        let w_u = normal_param([d, spec.vocab], inv(d), rng, device);
        let b_u = const_param(spec.vocab, 0.0, device);
        Self { w_e, w_pos, blocks, ln_final, w_u, b_u, spec }
    }

    /// Every hook point, in forward order.
    pub fn hook_points(&self) -> Vec<HookPoint> {
        let mut points = Vec::new();
        let mut add = |name: String, dims: &[&'static str]| points.push(HookPoint { name, dims: dims.to_vec() });
        const RESID: &[&str] = &["batch", "pos", "d_model"];
        const HEADS: &[&str] = &["batch", "pos", "head", "d_head"];
        add("hook_embed".into(), RESID);
        add("hook_pos_embed".into(), RESID);
        for l in 0..self.spec.layers {
            add(format!("blocks.{l}.hook_resid_pre"), RESID);
            add(format!("blocks.{l}.ln1.hook_normalized"), RESID);
            add(format!("blocks.{l}.attn.hook_q"), HEADS);
            add(format!("blocks.{l}.attn.hook_k"), HEADS);
            add(format!("blocks.{l}.attn.hook_v"), HEADS);
            add(format!("blocks.{l}.attn.hook_attn_scores"), &["batch", "head", "q_pos", "k_pos"]);
            add(format!("blocks.{l}.attn.hook_pattern"), &["batch", "head", "q_pos", "k_pos"]);
            add(format!("blocks.{l}.attn.hook_z"), HEADS);
            add(format!("blocks.{l}.hook_attn_out"), RESID);
            add(format!("blocks.{l}.hook_resid_mid"), RESID);
            add(format!("blocks.{l}.ln2.hook_normalized"), RESID);
            add(format!("blocks.{l}.mlp.hook_pre"), &["batch", "pos", "d_mlp"]);
            add(format!("blocks.{l}.mlp.hook_post"), &["batch", "pos", "d_mlp"]);
            add(format!("blocks.{l}.hook_mlp_out"), RESID);
            add(format!("blocks.{l}.hook_resid_post"), RESID);
        }
        add("ln_final.hook_normalized".into(), RESID);
        add("hook_logits".into(), &["batch", "pos", "vocab"]);
        points
    }

    /// Logits for every position.
    ///
    /// # Shapes
    /// - `tokens`: `[batch, len]` ids (`len ≤ max_len`, every id `< vocab`); returns
    ///   `[batch, len, vocab]`.
    ///
    /// # Panics
    /// On an id `≥ vocab` or `len > max_len` (callers tokenise with the model's own vocabulary).
    pub fn forward_hooked(&self, tokens: &TokenBatch, hooks: &mut Hooks) -> Tensor<3> {
        let spec = &self.spec;
        let (b, t, d, h, dh) = (tokens.batch, tokens.len, spec.d_model, spec.heads, spec.d_head());
        assert!(t <= spec.max_len, "sequence length {t} exceeds the model's max_len {}", spec.max_len);
        let device = self.w_e.val().device();
        // One-hot rows on the host: [B·T, V].
        let mut one_hot = vec![0.0f32; b * t * spec.vocab];
        for (row, &id) in tokens.ids.iter().enumerate() {
            assert!((id as usize) < spec.vocab, "token id {id} outside the vocabulary of {}", spec.vocab);
            one_hot[row * spec.vocab + id as usize] = 1.0;
        }
        let one_hot = Tensor::<2>::from_data(TensorData::new(one_hot, [b * t, spec.vocab]), &device);
        // [B·T, V] @ [V, D] -> [B, T, D]
        let embed = hooks.apply(|| "hook_embed".into(), one_hot.matmul(self.w_e.val()).reshape([b, t, d]));
        // [T, D] -> [1, T, D], broadcast over the batch when added; hooked at full batch shape.
        let pos = self.w_pos.val().narrow(0, 0, t).unsqueeze::<3>().expand([b, t, d]);
        let pos = hooks.apply(|| "hook_pos_embed".into(), pos);
        let mut x = embed + pos; // [B, T, D]
        // Additive causal mask: −1e9 where k_pos > q_pos. [T, T] -> [1, 1, T, T].
        let mask: Vec<f32> = (0..t * t).map(|i| if i % t > i / t { -1e9 } else { 0.0 }).collect();
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [t, t]), &device).unsqueeze::<4>();
        let scale = 1.0 / (dh as f32).sqrt();
        for (l, blk) in self.blocks.iter().enumerate() {
            x = hooks.apply(|| format!("blocks.{l}.hook_resid_pre"), x);
            // [B, T, D] -> [B·T, D]
            let n1 = blk.ln1.forward(x.clone().reshape([b * t, d]));
            let n1 = hooks.apply(|| format!("blocks.{l}.ln1.hook_normalized"), n1.reshape([b, t, d]));
            let n1 = n1.reshape([b * t, d]);
            // [B·T, D] @ [D, H·dh] -> [B, T, H, dh] (TransformerLens layout)
            let split = |w: &Param<Tensor<2>>| n1.clone().matmul(w.val()).reshape([b, t, h, dh]);
            let q = hooks.apply(|| format!("blocks.{l}.attn.hook_q"), split(&blk.w_q));
            let k = hooks.apply(|| format!("blocks.{l}.attn.hook_k"), split(&blk.w_k));
            let v = hooks.apply(|| format!("blocks.{l}.attn.hook_v"), split(&blk.w_v));
            // [B, T, H, dh] -> [B, H, T, dh]; scores [B, H, T, dh] @ [B, H, dh, T] -> [B, H, T, T]
            let (qh, kh, vh) = (q.swap_dims(1, 2), k.swap_dims(1, 2), v.swap_dims(1, 2));
            let scores = qh.matmul(kh.swap_dims(2, 3)).mul_scalar(scale) + mask.clone();
            let scores = hooks.apply(|| format!("blocks.{l}.attn.hook_attn_scores"), scores);
            let pattern = hooks.apply(|| format!("blocks.{l}.attn.hook_pattern"), softmax(scores, 3));
            // [B, H, T, T] @ [B, H, T, dh] -> [B, H, T, dh] -> [B, T, H, dh]
            let z = hooks.apply(|| format!("blocks.{l}.attn.hook_z"), pattern.matmul(vh).swap_dims(1, 2));
            // [B, T, H, dh] -> [B·T, H·dh] @ [H·dh, D] -> [B, T, D]
            let attn_out =
                (z.reshape([b * t, h * dh]).matmul(blk.w_o.val()) + blk.b_o.val().unsqueeze::<2>()).reshape([b, t, d]);
            let attn_out = hooks.apply(|| format!("blocks.{l}.hook_attn_out"), attn_out);
            x = hooks.apply(|| format!("blocks.{l}.hook_resid_mid"), x + attn_out);
            let n2 = blk.ln2.forward(x.clone().reshape([b * t, d]));
            let n2 = hooks.apply(|| format!("blocks.{l}.ln2.hook_normalized"), n2.reshape([b, t, d]));
            // [B·T, D] @ [D, M] -> [B, T, M]
            let pre = (n2.reshape([b * t, d]).matmul(blk.w_in.val()) + blk.b_in.val().unsqueeze::<2>())
                .reshape([b, t, spec.d_mlp]);
            let pre = hooks.apply(|| format!("blocks.{l}.mlp.hook_pre"), pre);
            let post = hooks.apply(|| format!("blocks.{l}.mlp.hook_post"), relu(pre));
            // [B·T, M] @ [M, D] -> [B, T, D]
            let mlp_out = (post.reshape([b * t, spec.d_mlp]).matmul(blk.w_out.val())
                + blk.b_out.val().unsqueeze::<2>())
            .reshape([b, t, d]);
            let mlp_out = hooks.apply(|| format!("blocks.{l}.hook_mlp_out"), mlp_out);
            x = hooks.apply(|| format!("blocks.{l}.hook_resid_post"), x + mlp_out);
        }
        let nf = self.ln_final.forward(x.reshape([b * t, d]));
        let nf = hooks.apply(|| "ln_final.hook_normalized".into(), nf.reshape([b, t, d]));
        // [B·T, D] @ [D, V] -> [B, T, V]
        let logits = (nf.reshape([b * t, d]).matmul(self.w_u.val()) + self.b_u.val().unsqueeze::<2>())
            .reshape([b, t, spec.vocab]);
        hooks.apply(|| "hook_logits".into(), logits)
    }

    pub fn forward(&self, tokens: &TokenBatch) -> Tensor<3> {
        self.forward_hooked(tokens, &mut Hooks::none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{cpu, cpu_autodiff};
    use burn::tensor::activation::log_softmax;
    use mesalab_core::{Seed, Streams};

    fn tiny() -> LmSpec {
        LmSpec { vocab: 11, max_len: 8, d_model: 16, layers: 2, heads: 4, d_mlp: 32 }
    }

    fn batch() -> TokenBatch {
        TokenBatch::padded(&[vec![1, 2, 3, 4, 5, 6], vec![7, 3, 9, 10], vec![0, 0, 1]], 0)
    }

    fn values(t: Tensor<3>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn cache_matches_and_self_patching_every_hook_is_bit_exact() {
        let device = cpu();
        let model = TransformerLm::init(tiny(), &mut Streams::new(Seed(1)).stream("init"), &device);
        let plain = values(model.forward(&batch()));
        let mut hooks = Hooks::cache_all();
        let cached = values(model.forward_hooked(&batch(), &mut hooks));
        let cache = hooks.finish().unwrap();
        assert_eq!(plain, cached);
        assert_eq!(cache.activations.len(), model.hook_points().len(), "every hook point records");
        let (shape, logits) = cache.values("hook_logits").unwrap();
        assert_eq!((shape, logits), (vec![3, 6, 11], plain.clone()));
        assert_eq!(cache.values("blocks.1.attn.hook_z").unwrap().0, vec![3, 6, 4, 4]);
        assert_eq!(cache.values("blocks.0.attn.hook_pattern").unwrap().0, vec![3, 4, 6, 6]);
        for point in model.hook_points() {
            let mut hooks = Hooks::none().patch(&point.name, cache.get(&point.name).unwrap().clone());
            let patched = values(model.forward_hooked(&batch(), &mut hooks));
            hooks.finish().unwrap();
            assert_eq!(plain, patched, "self-patching {} changed the logits", point.name);
        }
    }

    #[test]
    fn attention_is_causal_and_rows_sum_to_one() {
        let device = cpu();
        let model = TransformerLm::init(tiny(), &mut Streams::new(Seed(2)).stream("init"), &device);
        let mut hooks = Hooks::cache_only(&["blocks.0.attn.hook_pattern"]);
        model.forward_hooked(&batch(), &mut hooks);
        let (_, p) = hooks.finish().unwrap().values("blocks.0.attn.hook_pattern").unwrap();
        for row in p.chunks(6).enumerate() {
            let q = row.0 % 6;
            assert!(row.1[q + 1..].iter().all(|&v| v == 0.0), "future positions get no attention");
            assert!((row.1.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
        // Changing a later token leaves earlier logits unchanged.
        let a = TokenBatch::padded(&[vec![1, 2, 3, 4]], 0);
        let b = TokenBatch::padded(&[vec![1, 2, 3, 9]], 0);
        let (la, lb) = (values(model.forward(&a)), values(model.forward(&b)));
        assert_eq!(la[..3 * 11], lb[..3 * 11]);
        assert_ne!(la[3 * 11..], lb[3 * 11..]);
    }

    #[test]
    fn steering_the_final_residual_shifts_logits_by_the_unembedded_vector_direction() {
        let device = cpu();
        let model = TransformerLm::init(tiny(), &mut Streams::new(Seed(3)).stream("init"), &device);
        let plain = values(model.forward(&batch()));
        let mut hooks = Hooks::none().add("hook_logits", (0..11).map(|i| i as f32).collect(), 0.5);
        let steered = values(model.forward_hooked(&batch(), &mut hooks));
        hooks.finish().unwrap();
        for (i, (p, s)) in plain.iter().zip(&steered).enumerate() {
            assert!((s - p - 0.5 * (i % 11) as f32).abs() < 1e-5);
        }
        let bad = Hooks::none().add("blocks.0.hook_resid_psot", vec![0.0; 16], 1.0);
        assert!(bad.validate(&model.hook_points()).unwrap_err().to_string().contains("blocks.0.hook_resid_post"));
    }

    #[test]
    fn learns_a_fixed_sequence_and_survives_a_checkpoint_round_trip() {
        use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
        let device = cpu_autodiff();
        let mut model = TransformerLm::init(tiny(), &mut Streams::new(Seed(4)).stream("init"), &device);
        let seq = TokenBatch::padded(&[vec![1, 5, 2, 8, 3, 9, 4]], 0);
        // Target at position p is token p + 1.
        let mut target = vec![0.0f32; 6 * 11];
        for p in 0..6 {
            target[p * 11 + seq.ids[p + 1] as usize] = 1.0;
        }
        let mut optim: ModuleOptimizer = AdamConfig::new().init();
        let mut first = None;
        let mut last = 0.0;
        for _ in 0..60 {
            let logits = model.forward(&seq).narrow(1, 0, 6).reshape([6, 11]);
            let tgt = Tensor::<2>::from_data(TensorData::new(target.clone(), [6, 11]), &device);
            let loss = (log_softmax(logits, 1) * tgt).sum().neg().div_scalar(6.0);
            last = loss.clone().into_scalar::<f32>();
            first.get_or_insert(last);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-2, model, grads);
        }
        assert!(last < 0.05 && last < first.unwrap() / 20.0, "loss {first:?} -> {last}");
        let dir = std::env::temp_dir().join(format!("mesalab-lm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lm.safetensors");
        crate::checkpoint::save(&model, &path).unwrap();
        let fresh = TransformerLm::init(tiny(), &mut Streams::new(Seed(99)).stream("init"), &cpu());
        let loaded = crate::checkpoint::load(fresh, &path).unwrap();
        use burn::module::Module;
        assert_eq!(values(model.valid().forward(&seq)), values(loaded.forward(&seq)));
        std::fs::remove_dir_all(&dir).ok();
    }
}
