//! Single-thread sgemm at a large square size (the machine's reference GFLOP/s) and at the shapes
//! of a CleanRL-sized PPO minibatch, plus `tanh` throughput. Run:
//! `cargo bench -p mesalab-kernels --bench sgemm`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mesalab_kernels::{Mat, matmul, tanh_in_place};
use std::hint::black_box;

fn sgemm(c: &mut Criterion) {
    let mut g = c.benchmark_group("sgemm");
    // (m, n, k): the reference square, then a 128-row minibatch through 64-wide layers (forward,
    // the weight gradient `xᵀ·dz`, the input gradient `dz·Wᵀ`) and a 4-row rollout batch.
    for (m, n, k, ta, tb) in [
        (512, 512, 512, false, false),
        (128, 64, 64, false, false),
        (64, 64, 128, true, false),
        (128, 64, 64, false, true),
        (4, 64, 64, false, false),
    ] {
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let mut out = vec![0.0f32; m * n];
        g.throughput(Throughput::Elements((2 * m * n * k) as u64)); // FLOPs
        let name = format!("{m}x{n}x{k}{}{}", if ta { "-At" } else { "" }, if tb { "-Bt" } else { "" });
        g.bench_function(name, |bch| {
            bch.iter(|| {
                let (lhs, rhs) = (if ta { Mat::t(&a) } else { Mat::n(&a) }, if tb { Mat::t(&b) } else { Mat::n(&b) });
                matmul(m, n, k, lhs, rhs, &mut out, false);
                black_box(out[0])
            })
        });
    }
    g.finish();
}

fn tanh(c: &mut Criterion) {
    let mut g = c.benchmark_group("tanh");
    let xs: Vec<f32> = (0..128 * 64).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
    g.throughput(Throughput::Elements(xs.len() as u64));
    g.bench_function("kernels/128x64", |b| {
        b.iter(|| {
            let mut y = xs.clone();
            tanh_in_place(&mut y);
            black_box(y[7])
        })
    });
    g.bench_function("std/128x64", |b| b.iter(|| black_box(xs.iter().map(|x| x.tanh()).collect::<Vec<f32>>()[7])));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(1));
    targets = sgemm, tanh
}
criterion_main!(benches);
