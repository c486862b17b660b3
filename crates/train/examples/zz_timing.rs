use burn::tensor::activation::{sigmoid, tanh};
use burn::tensor::{Tensor, TensorData};
use mesalab_nn::device::{cpu, cpu_autodiff};
use std::time::Instant;
fn t(name: &str, f: &dyn Fn(Tensor<2>) -> Tensor<2>, ad: bool) {
    let dev = if ad { cpu_autodiff() } else { cpu() };
    let n = 2000;
    let v: Vec<f32> = (0..128 * 64).map(|i| (i % 97) as f32 / 50.0 - 1.0).collect();
    let x = Tensor::<2>::from_data(TensorData::new(v, [128, 64]), &dev);
    let x = if ad { x.require_grad() } else { x };
    let st = Instant::now();
    for _ in 0..n {
        let y = f(x.clone());
        if ad {
            let _ = y.sum().backward();
        } else {
            let _ = y.into_data();
        }
    }
    println!("{name} ad={ad}: {:.1} us", st.elapsed().as_secs_f64() / n as f64 * 1e6);
}
fn main() {
    for ad in [false, true] {
        t("tanh", &|x| tanh(x), ad);
        t("sigmoid", &|x| sigmoid(x), ad);
        t("exp", &|x| x.exp(), ad);
        t("2sig(2x)-1", &|x| sigmoid(x.mul_scalar(2.0)).mul_scalar(2.0).sub_scalar(1.0), ad);
        t("1-2/(e^2x+1)", &|x| x.mul_scalar(2.0).exp().add_scalar(1.0).recip().mul_scalar(-2.0).add_scalar(1.0), ad);
        t("identity", &|x| x.mul_scalar(1.0), ad);
    }
}
