//! Training and sampling a [`TransformerLm`] on prompt → completion examples.
//!
//! - [`completion_loss`]: next-token cross-entropy on the completion tokens only (the prompt is
//!   context, as in supervised fine-tuning of a chat model);
//! - [`generate`]: batched, KV-free autoregressive sampling (greedy at temperature 0), each row
//!   stopping at `eos`;
//! - [`reinforce_loss`]: REINFORCE over sampled completions with a mean-reward baseline and an
//!   exact per-token KL penalty to a frozen reference model.

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Device, Tensor, TensorData};
use mesalab_core::StreamRng;
use mesalab_nn::Hooks;
use mesalab_nn::lm::{TokenBatch, TransformerLm};
use rand::Rng;

/// One training example: `prompt` then `completion` (whose tokens carry the loss).
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    pub prompt: Vec<u32>,
    pub completion: Vec<u32>,
}

/// The batch and the loss weights `[batch·len, vocab]`: 1/n_completion_tokens at (position p,
/// token at p + 1) for each completion token.
fn targets(examples: &[Example], pad: u32, vocab: usize) -> (TokenBatch, Vec<f32>, usize) {
    let seqs: Vec<Vec<u32>> = examples.iter().map(|e| [e.prompt.clone(), e.completion.clone()].concat()).collect();
    let batch = TokenBatch::padded(&seqs, pad);
    let n: usize = examples.iter().map(|e| e.completion.len()).sum();
    let mut w = vec![0.0f32; batch.batch * batch.len * vocab];
    for (b, e) in examples.iter().enumerate() {
        for (i, &tok) in e.completion.iter().enumerate() {
            let p = e.prompt.len() + i - 1; // position whose logits predict completion token i
            w[(b * batch.len + p) * vocab + tok as usize] = 1.0 / n.max(1) as f32;
        }
    }
    (batch, w, n)
}

/// Mean cross-entropy of the completion tokens (a scalar on the model's device).
///
/// # Panics
/// When an example has an empty prompt (there is no position to predict its first token from).
pub fn completion_loss(model: &TransformerLm, examples: &[Example], pad: u32) -> Tensor<1> {
    assert!(examples.iter().all(|e| !e.prompt.is_empty()), "every example needs a prompt token");
    let vocab = model.spec.vocab;
    let (batch, w, _) = targets(examples, pad, vocab);
    let device = model.w_e.val().device();
    let (b, t) = (batch.batch, batch.len);
    // [B, T, V] -> [B·T, V]
    let logp = log_softmax(model.forward(&batch).reshape([b * t, vocab]), 1);
    let w = Tensor::<2>::from_data(TensorData::new(w, [b * t, vocab]), &device);
    (logp * w).sum().neg()
}

/// Samples a completion of at most `max_new` tokens for each prompt (greedy when `temperature` is
/// 0), stopping a row at `eos`. `hooks_for_step` builds the hooks of each forward pass (e.g. a
/// steering vector); `Hooks::none` for plain sampling. Returns the completions (with `eos` when
/// one was produced).
#[allow(clippy::too_many_arguments)] // the decoding knobs read best spelled out at call sites
pub fn generate(
    model: &TransformerLm,
    prompts: &[Vec<u32>],
    max_new: usize,
    temperature: f64,
    eos: u32,
    pad: u32,
    rng: &mut StreamRng,
    mut hooks_for_step: impl FnMut() -> Hooks,
) -> Vec<Vec<u32>> {
    generate_with(model, prompts, max_new, temperature, eos, pad, rng, |_| hooks_for_step())
}

/// [`generate`] with hooks that depend on which prompts are still being answered:
/// `hooks_for_rows(live)` gets the indices (into `prompts`) of this pass's batch rows, in order
/// (e.g. to patch each row with activations from that prompt's counterpart).
#[allow(clippy::too_many_arguments)]
pub fn generate_with(
    model: &TransformerLm,
    prompts: &[Vec<u32>],
    max_new: usize,
    temperature: f64,
    eos: u32,
    pad: u32,
    rng: &mut StreamRng,
    mut hooks_for_rows: impl FnMut(&[usize]) -> Hooks,
) -> Vec<Vec<u32>> {
    let vocab = model.spec.vocab;
    let mut seqs: Vec<Vec<u32>> = prompts.to_vec();
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); prompts.len()];
    let mut done = vec![false; prompts.len()];
    let max_len = model.spec.max_len;
    for _ in 0..max_new {
        let live: Vec<usize> = (0..seqs.len()).filter(|&i| !done[i] && seqs[i].len() < max_len).collect();
        if live.is_empty() {
            break;
        }
        let rows: Vec<Vec<u32>> = live.iter().map(|&i| seqs[i].clone()).collect();
        let batch = TokenBatch::padded(&rows, pad);
        let mut hooks = hooks_for_rows(&live);
        let logits = model.forward_hooked(&batch, &mut hooks).into_data().try_to_vec::<f32>().expect("f32 logits");
        for (r, &i) in live.iter().enumerate() {
            let p = rows[r].len() - 1;
            let row = &logits[(r * batch.len + p) * vocab..(r * batch.len + p + 1) * vocab];
            let tok = if temperature <= 0.0 { argmax(row) } else { sample(row, temperature, rng) };
            seqs[i].push(tok);
            out[i].push(tok);
            if tok == eos {
                done[i] = true;
            }
        }
    }
    out
}

fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best as u32
}

fn sample(row: &[f32], temperature: f64, rng: &mut StreamRng) -> u32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let w: Vec<f64> = row.iter().map(|v| ((f64::from(*v - max)) / temperature).exp()).collect();
    let total: f64 = w.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (i, v) in w.iter().enumerate() {
        u -= v;
        if u <= 0.0 {
            return i as u32;
        }
    }
    (row.len() - 1) as u32
}

/// Log-probabilities `[batch·len, vocab]` of `model` on the examples' sequences, on the host.
pub fn log_probs(model: &TransformerLm, examples: &[Example], pad: u32) -> Vec<f32> {
    let vocab = model.spec.vocab;
    let (batch, _, _) = targets(examples, pad, vocab);
    let logits = model.forward(&batch).reshape([batch.batch * batch.len, vocab]);
    log_softmax(logits, 1).into_data().try_to_vec::<f32>().expect("f32 log-probs")
}

/// The REINFORCE loss of sampled completions with rewards, and the mean KL to the reference.
///
/// `loss = −Σ_i (r_i − r̄) Σ_t log π(a_it) / N  +  β · Σ_{i,t} KL(π(·|s_it) ‖ π_ref(·|s_it)) / T_tot`,
/// with the KL exact over the vocabulary at every completion position. `ref_log_probs` comes from
/// [`log_probs`] of the frozen reference on the same examples.
pub fn reinforce_loss(
    model: &TransformerLm,
    examples: &[Example],
    rewards: &[f64],
    ref_log_probs: &[f32],
    kl_coef: f64,
    pad: u32,
    device: &Device,
) -> Tensor<1> {
    assert_eq!(examples.len(), rewards.len(), "one reward per example");
    let vocab = model.spec.vocab;
    let (batch, _, n_tokens) = targets(examples, pad, vocab);
    let (b, t) = (batch.batch, batch.len);
    let mean = rewards.iter().sum::<f64>() / rewards.len().max(1) as f64;
    // Policy-gradient weights: advantage_i / N at each sampled token; KL mask: 1/T_tot at each
    // completion position (broadcast over the vocabulary).
    let mut pg = vec![0.0f32; b * t * vocab];
    let mut kl_mask = vec![0.0f32; b * t];
    for (i, e) in examples.iter().enumerate() {
        let adv = ((rewards[i] - mean) / examples.len() as f64) as f32;
        for (k, &tok) in e.completion.iter().enumerate() {
            let p = e.prompt.len() + k - 1;
            pg[(i * t + p) * vocab + tok as usize] = adv;
            kl_mask[i * t + p] = 1.0 / n_tokens.max(1) as f32;
        }
    }
    let logp = log_softmax(model.forward(&batch).reshape([b * t, vocab]), 1); // [B·T, V]
    let pg = Tensor::<2>::from_data(TensorData::new(pg, [b * t, vocab]), device);
    let ref_lp = Tensor::<2>::from_data(TensorData::new(ref_log_probs.to_vec(), [b * t, vocab]), device);
    let kl_mask = Tensor::<2>::from_data(TensorData::new(kl_mask, [b * t, 1]), device);
    let kl = (softmax(logp.clone(), 1) * (logp.clone() - ref_lp)) * kl_mask; // [B·T, V]
    (logp * pg).sum().neg() + kl.sum().mul_scalar(kl_coef as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervised::{AdamSettings, Supervised};
    use burn::module::Module;
    use mesalab_core::{Seed, Streams};
    use mesalab_nn::device::{cpu, cpu_autodiff};
    use mesalab_nn::lm::LmSpec;

    fn spec() -> LmSpec {
        LmSpec { vocab: 8, max_len: 10, d_model: 16, layers: 1, heads: 2, d_mlp: 32 }
    }

    fn adam() -> AdamSettings {
        AdamSettings { learning_rate: 1e-2, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, grad_clip_norm: 0.0 }
    }

    #[test]
    fn supervised_training_on_completions_makes_greedy_generation_exact() {
        // Prompt [1, x] → completion [x, x, 7] (7 = eos): copy the token twice.
        let examples: Vec<Example> =
            (2..6).map(|x| Example { prompt: vec![1, x], completion: vec![x, x, 7] }).collect();
        let mut model = TransformerLm::init(spec(), &mut Streams::new(Seed(0)).stream("init"), &cpu_autodiff());
        let mut opt = Supervised::new(&adam());
        for _ in 0..150 {
            let loss = completion_loss(&model, &examples, 0);
            model = opt.step(model, loss).unwrap().0;
        }
        let prompts: Vec<Vec<u32>> = examples.iter().map(|e| e.prompt.clone()).collect();
        let out = generate(&model.valid(), &prompts, 5, 0.0, 7, 0, &mut Streams::new(Seed(0)).stream("s"), Hooks::none);
        for (e, o) in examples.iter().zip(&out) {
            assert_eq!(o, &e.completion, "greedy completion stops at eos");
        }
    }

    #[test]
    fn reinforce_raises_the_rewarded_completion_and_kl_is_zero_at_the_reference() {
        let device = cpu_autodiff();
        let mut model = TransformerLm::init(spec(), &mut Streams::new(Seed(1)).stream("init"), &device);
        let reference = model.valid();
        let prompt = vec![vec![1u32, 2]; 32];
        let mut rng = Streams::new(Seed(2)).stream("sample");
        let p_good = |m: &TransformerLm| {
            let lp = log_probs(m, &[Example { prompt: vec![1, 2], completion: vec![3] }], 0);
            f64::from(lp[8 + 3]).exp()
        };
        let before = p_good(&reference);
        let mut opt = Supervised::new(&adam());
        for _ in 0..40 {
            let outs = generate(&model.valid(), &prompt, 1, 1.0, 7, 0, &mut rng, Hooks::none);
            let examples: Vec<Example> =
                outs.iter().map(|o| Example { prompt: vec![1, 2], completion: o.clone() }).collect();
            let rewards: Vec<f64> = outs.iter().map(|o| f64::from(u8::from(o == &[3]))).collect();
            let ref_lp = log_probs(&reference, &examples, 0);
            let loss = reinforce_loss(&model, &examples, &rewards, &ref_lp, 0.0, 0, &device);
            model = opt.step(model, loss).unwrap().0;
        }
        let after = p_good(&model.valid());
        assert!(after > 0.9 && after > before, "p(rewarded) {before} -> {after}");
        // At the reference itself the KL term is zero, so the loss is the policy-gradient term only.
        let examples = vec![Example { prompt: vec![1, 2], completion: vec![4] }];
        let ref_lp = log_probs(&reference, &examples, 0);
        let ref_ad = TransformerLm::init(spec(), &mut Streams::new(Seed(1)).stream("init"), &cpu());
        let kl_only = reinforce_loss(&ref_ad, &examples, &[0.0], &ref_lp, 1.0, 0, &cpu()).into_scalar::<f32>();
        assert!(kl_only.abs() < 1e-6, "{kl_only}");
    }
}
