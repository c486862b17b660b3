//! Cost of one icl-gd training step (batch 1024, d = N = 10, one LSA layer) and its parts:
//! sampling tasks, the forward pass, and forward + backward + Adam.

use burn::tensor::{Tensor, TensorData};
use criterion::{Criterion, criterion_group, criterion_main};
use mesalab_analysis::icl::{TaskSpec, Tasks, XDist};
use mesalab_core::{Seed, Streams};
use mesalab_nn::device::{cpu, cpu_autodiff};
use mesalab_nn::lsa::{Lsa, LsaSpec};
use mesalab_train::supervised::{AdamSettings, Supervised};

const B: usize = 1024;

fn spec() -> TaskSpec {
    TaskSpec { d: 10, n_context: 10, x: XDist::Uniform { half_width: 0.5 }, w_scale: 1.0, noise_std: 0.0 }
}

fn lsa(layers: usize) -> LsaSpec {
    LsaSpec { d_token: 11, layers, heads: 1, softmax: false, shared_weights: false, clip_tokens: 0.0 }
}

fn bench(c: &mut Criterion) {
    let mut rng = Streams::new(Seed(0)).stream("bench");
    c.bench_function("icl/sample_1024_tasks", |b| b.iter(|| Tasks::sample(&spec(), B, &mut rng).tokens()));

    let batch = Tasks::sample(&spec(), B, &mut rng);
    let model = Lsa::init(lsa(1), 0.02, &mut rng, &cpu());
    c.bench_function("icl/forward_1024_1layer", |b| {
        b.iter(|| {
            let x = Tensor::<3>::from_data(TensorData::new(batch.tokens(), [B, 11, 11]), &cpu());
            model.predict(x).into_data()
        })
    });

    for layers in [1, 2] {
        let device = cpu_autodiff();
        let mut model = Some(Lsa::init(lsa(layers), 0.02, &mut rng, &device));
        let mut trainer = Supervised::new(&AdamSettings {
            learning_rate: 1e-3,
            beta1: 0.9,
            beta2: 0.98,
            epsilon: 1e-8,
            grad_clip_norm: 10.0,
        });
        let targets: Vec<f32> = batch.targets().iter().map(|v| *v as f32).collect();
        c.bench_function(&format!("icl/train_step_1024_{layers}layer"), |b| {
            b.iter(|| {
                let x = Tensor::<3>::from_data(TensorData::new(batch.tokens(), [B, 11, 11]), &device);
                let y = Tensor::<1>::from_data(TensorData::new(targets.clone(), [B]), &device);
                let m = model.take().expect("model");
                let loss = (m.predict(x) - y).powf_scalar(2.0).mean().mul_scalar(0.5);
                model = Some(trainer.step(m, loss).expect("finite loss").0);
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_secs(1)).measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
