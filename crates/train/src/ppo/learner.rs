//! The arithmetic of one PPO run behind one interface, so [`super::train_resumable`]'s loop
//! (rollout, GAE, shuffles, logs, checkpoints) is written once:
//! - [`BurnLearner`]: any [`Policy`], with burn's tensors, autodiff and Adam.
//! - [`FusedLearner`]: an MLP policy ([`Policy::as_mlp`]) on flat buffers with
//!   [`mesalab_nn::fused`]'s kernels; its loss gradient is derived by hand below and tested against
//!   burn's autodiff of [`burn_minibatch_loss`] (the loss the burn learner differentiates).

use super::{PpoConfig, clip_grad_norm};
use crate::checkpoint::{CheckpointError, StateFile};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use mesalab_nn::device::{cpu, cpu_autodiff};
use mesalab_nn::fused::{Adam, FusedMlp, Workspace};
use mesalab_nn::policy::{Policy, PolicyOutput};

/// The section of a [`StateFile`] holding the fused learner's Adam state.
pub const FUSED_ADAM_SECTION: &str = "fused-adam";

/// One minibatch of the rollout, gathered by the training loop. Every slice has `n` rows.
pub struct Minibatch<'a> {
    /// `[n, obs_len]`.
    pub obs: &'a [f32],
    pub actions: &'a [usize],
    /// Log-probabilities of `actions` when they were taken.
    pub old_logprob: &'a [f32],
    /// Advantages (already normalised when `norm_adv`).
    pub advantages: &'a [f32],
    pub returns: &'a [f32],
    /// Values when the rollout ran.
    pub old_values: &'a [f32],
}

impl Minibatch<'_> {
    pub(crate) fn len(&self) -> usize {
        self.actions.len()
    }
}

/// What a minibatch's loss evaluated to.
pub struct LossReport {
    /// `[loss, policy loss, value loss, entropy]`.
    pub scalars: [f32; 4],
    /// `log π_new(a) − log π_old(a)`, `[n]`.
    pub logratio: Vec<f32>,
}

/// A policy being trained by PPO.
pub trait Learner<P> {
    /// Log-probabilities `[n, actions]` and values `[n]` of `n` observations (no gradients).
    fn act(&mut self, obs: &[f32], n: usize) -> (Vec<f32>, Vec<f32>);
    /// Values `[n]` of `n` observations (no gradients).
    fn values(&mut self, obs: &[f32], n: usize) -> Vec<f32>;
    /// Called before each rollout (the model is fixed until the next [`Learner::apply`]).
    fn begin_rollout(&mut self);
    /// Evaluates the clipped-surrogate loss on `mb` and its gradient, without applying it.
    fn loss(&mut self, mb: &Minibatch<'_>, config: &PpoConfig) -> LossReport;
    /// Clips the pending gradient to `max_grad_norm` and takes one Adam step; returns the norm
    /// before clipping.
    fn apply(&mut self, learning_rate: f64, max_grad_norm: f32) -> f32;
    /// Remembers the current weights as the last good ones (see [`Learner::last_good`]).
    fn mark_good(&mut self);
    /// The weights [`Learner::mark_good`] remembered, as the policy.
    fn last_good(&self) -> P;
    /// The current weights, as the policy.
    fn model(&self) -> P;
    /// Writes the model and the optimizer state.
    fn save(&self, file: &mut StateFile) -> Result<(), CheckpointError>;
}

/// The burn loss of one minibatch, as `[loss, policy loss, value loss, entropy]` (shape `[4]`,
/// each entry a scalar of the graph) plus the log-ratios `[n]`.
pub fn burn_minibatch_loss<P: Policy>(
    agent: &P,
    mb: &Minibatch<'_>,
    config: &PpoConfig,
    device: &Device,
) -> (Tensor<1>, Tensor<1>, Tensor<1>) {
    let n = mb.len();
    let obs_len = mb.obs.len() / n.max(1);
    let out = agent.forward(Tensor::from_data(TensorData::new(mb.obs.to_vec(), [n, obs_len]), device));
    clipped_loss(out, mb, config, device)
}

/// PPO's loss of one minibatch from the policy's outputs on it (`out`: logits `[n, action]`,
/// values `[n]`, rows in `mb`'s order), as [`burn_minibatch_loss`] returns it. The recurrent
/// trainer calls this with the outputs of an unrolled sequence.
pub fn clipped_loss(
    out: PolicyOutput,
    mb: &Minibatch<'_>,
    config: &PpoConfig,
    device: &Device,
) -> (Tensor<1>, Tensor<1>, Tensor<1>) {
    let n = mb.len();
    let num_actions = out.logits.dims()[1];
    let mut onehot = vec![0.0f32; n * num_actions];
    for (k, &a) in mb.actions.iter().enumerate() {
        onehot[k * num_actions + a] = 1.0;
    }
    let t1 = |v: &[f32]| Tensor::<1>::from_data(TensorData::new(v.to_vec(), [n]), device);
    let (old_logprob, mb_adv, mb_returns, old_values) =
        (t1(mb.old_logprob), t1(mb.advantages), t1(mb.returns), t1(mb.old_values));

    let logp_all = log_softmax(out.logits, 1); // [n, A]
    let onehot = Tensor::<2>::from_data(TensorData::new(onehot, [n, num_actions]), device);
    let newlogprob: Tensor<1> = (logp_all.clone() * onehot).sum_dim(1).reshape([n]); // [n, 1] → [n]
    let entropy: Tensor<1> = (logp_all.clone().exp() * logp_all).sum_dim(1).reshape([n]).neg(); // [n, 1] → [n]
    let logratio = newlogprob - old_logprob;
    let ratio = logratio.clone().exp();

    // Clipped surrogate: max of the two negated objectives.
    let pg_loss1 = mb_adv.clone().neg() * ratio.clone();
    let pg_loss2 = mb_adv.neg() * ratio.clamp(1.0 - config.clip_coef, 1.0 + config.clip_coef);
    let pg_loss = pg_loss1.max_pair(pg_loss2).mean();

    let newvalue = out.value;
    let v_loss = if config.clip_vloss {
        let unclipped = (newvalue.clone() - mb_returns.clone()).square();
        let clipped = old_values.clone() + (newvalue - old_values).clamp(-config.clip_coef, config.clip_coef);
        let clipped = (clipped - mb_returns).square();
        unclipped.max_pair(clipped).mean().mul_scalar(0.5)
    } else {
        (newvalue - mb_returns).square().mean().mul_scalar(0.5)
    };
    let entropy_loss = entropy.mean();
    let loss =
        pg_loss.clone() - entropy_loss.clone().mul_scalar(config.ent_coef) + v_loss.clone().mul_scalar(config.vf_coef);
    let scalars = Tensor::cat(vec![loss.clone(), pg_loss, v_loss, entropy_loss], 0);
    (loss, scalars, logratio)
}

pub(crate) fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().expect("f32 tensor")
}

/// Any policy, trained with burn.
pub struct BurnLearner<P: Policy> {
    agent: P,
    /// The gradient-free copy the rollout reads.
    actor: P,
    last_good: P,
    optimizer: ModuleOptimizer,
    pending: Option<GradientsParams>,
    device: Device,
    eval_device: Device,
}

impl<P: Policy> BurnLearner<P> {
    /// `policy` in training mode with a fresh Adam, or both restored from `resume`.
    pub fn new(policy: P, config: &PpoConfig, resume: Option<&StateFile>) -> Result<Self, CheckpointError> {
        let mut agent = policy.train();
        let mut optimizer = AdamConfig::new().with_epsilon(config.adam_epsilon).init();
        if let Some(file) = resume {
            agent = file.restore_model(agent)?;
            optimizer = optimizer.load_record(file.optimizer()?);
        }
        let actor = agent.valid();
        Ok(Self {
            last_good: agent.clone(),
            actor,
            agent,
            optimizer,
            pending: None,
            device: cpu_autodiff(),
            eval_device: cpu(),
        })
    }
}

impl<P: Policy> Learner<P> for BurnLearner<P> {
    fn act(&mut self, obs: &[f32], n: usize) -> (Vec<f32>, Vec<f32>) {
        let obs_len = obs.len() / n.max(1);
        let out = self.actor.forward(Tensor::from_data(TensorData::new(obs.to_vec(), [n, obs_len]), &self.eval_device));
        (to_vec(log_softmax(out.logits, 1)), to_vec(out.value))
    }

    fn values(&mut self, obs: &[f32], n: usize) -> Vec<f32> {
        let obs_len = obs.len() / n.max(1);
        to_vec(self.actor.value(Tensor::from_data(TensorData::new(obs.to_vec(), [n, obs_len]), &self.eval_device)))
    }

    fn begin_rollout(&mut self) {
        self.actor = self.agent.valid();
    }

    fn loss(&mut self, mb: &Minibatch<'_>, config: &PpoConfig) -> LossReport {
        let (loss, scalars, logratio) = burn_minibatch_loss(&self.agent, mb, config, &self.device);
        // One read-back of the scalars and the log-ratios for the logs.
        let s = to_vec(scalars.detach());
        let report = LossReport { scalars: [s[0], s[1], s[2], s[3]], logratio: to_vec(logratio.detach()) };
        self.pending = Some(GradientsParams::from_grads(loss.backward(), &self.agent));
        report
    }

    fn apply(&mut self, learning_rate: f64, max_grad_norm: f32) -> f32 {
        let mut grads = self.pending.take().expect("apply follows loss");
        let norm = clip_grad_norm(&mut grads, &self.agent, max_grad_norm);
        self.agent = self.optimizer.step(learning_rate, self.agent.clone(), grads);
        norm
    }

    fn mark_good(&mut self) {
        self.last_good = self.agent.clone();
    }

    fn last_good(&self) -> P {
        self.last_good.clone()
    }

    fn model(&self) -> P {
        self.agent.clone()
    }

    fn save(&self, file: &mut StateFile) -> Result<(), CheckpointError> {
        file.put_model(&self.agent)?;
        file.put_optimizer(self.optimizer.to_record())
    }
}

/// An MLP policy trained on flat buffers with the fused kernels.
pub struct FusedLearner<P: Policy> {
    /// The policy as given (its burn module is what [`Learner::model`] writes the weights into).
    template: P,
    net: FusedMlp,
    adam: Adam,
    ws: Workspace,
    grads: Vec<f32>,
    last_good: Vec<f32>,
    /// Gradients of the loss with respect to the logits `[n, actions]` and values `[n]`.
    dlogits: Vec<f32>,
    dvalue: Vec<f32>,
}

impl<P: Policy> FusedLearner<P> {
    /// `None` when `policy` is not an MLP the kernels cover; otherwise its weights with a fresh
    /// Adam, or both restored from `resume`.
    pub fn new(policy: P, config: &PpoConfig, resume: Option<&StateFile>) -> Option<Result<Self, CheckpointError>> {
        let template = policy.train();
        let net = FusedMlp::from_policy(template.as_mlp()?)?;
        let build = || -> Result<Self, CheckpointError> {
            let (template, net, adam) = match resume {
                Some(file) => {
                    let restored = file.restore_model(template)?;
                    let net = restored
                        .as_mlp()
                        .and_then(FusedMlp::from_policy)
                        .ok_or_else(|| CheckpointError("the restored model is not the MLP this run trains".into()))?;
                    let adam: Adam = file.get(FUSED_ADAM_SECTION)?;
                    if adam.moment_1.len() != net.params().len() || adam.moment_2.len() != net.params().len() {
                        return Err(CheckpointError(format!(
                            "the optimizer state holds {} moments for a model of {} parameters",
                            adam.moment_1.len(),
                            net.params().len()
                        )));
                    }
                    (restored, net, adam)
                }
                None => {
                    let adam = Adam::new(net.params().len(), config.adam_epsilon);
                    (template, net, adam)
                }
            };
            Ok(Self {
                template,
                grads: vec![0.0; net.params().len()],
                last_good: net.params().to_vec(),
                net,
                adam,
                ws: Workspace::default(),
                dlogits: Vec::new(),
                dvalue: Vec::new(),
            })
        };
        Some(build())
    }

    fn policy_with(&self, params: &[f32]) -> P {
        let mut net = self.net.clone();
        net.params_mut().copy_from_slice(params);
        self.template.clone().map_mlp(|m| net.write_into(m))
    }

    /// FLOPs of one gradient step on `n` rows (forward + backward matmuls).
    pub fn step_flops(&self, n: usize) -> u64 {
        self.net.forward_flops(n) + self.net.backward_flops(n)
    }
}

/// In place: logits `[n, A]` → log-softmax, row by row.
fn log_softmax_rows(logits: &mut [f32], num_actions: usize) {
    for row in logits.chunks_exact_mut(num_actions) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = row.iter().map(|z| (z - max).exp()).sum();
        let lse = max + sum.ln();
        row.iter_mut().for_each(|z| *z -= lse);
    }
}

impl<P: Policy> Learner<P> for FusedLearner<P> {
    fn act(&mut self, obs: &[f32], n: usize) -> (Vec<f32>, Vec<f32>) {
        self.net.forward(obs, n, &mut self.ws);
        let mut logp = self.ws.logits.clone();
        log_softmax_rows(&mut logp, self.net.num_actions());
        (logp, self.ws.value.clone())
    }

    fn values(&mut self, obs: &[f32], n: usize) -> Vec<f32> {
        self.net.value(obs, n, &mut self.ws);
        self.ws.value.clone()
    }

    fn begin_rollout(&mut self) {}

    /// The gradient of `loss = pg − c_ent·H̄ + c_v·L_v` with respect to the logits `z` and the
    /// values `v`, per row `k` of `n` (`p = softmax(z)`, `ℓ = log p`, `H = −Σ p ℓ`, `r = e^{ℓ_a − ℓ_old}`):
    /// - policy: `pg = mean max(−A r, −A clip(r))`; the max takes the unclipped branch unless the
    ///   clip is active, where the gradient is 0, so `∂pg/∂ℓ_a = −A r / n` on that branch;
    ///   `∂ℓ_a/∂z_j = δ_aj − p_j`.
    /// - entropy: `∂H/∂z_j = −p_j (ℓ_j + H)`, so `−c_ent/n · ∂H/∂z_j = c_ent/n · p_j (ℓ_j + H)`.
    /// - value: `L_v = ½ mean max((v − R)², (v_old + clip(v − v_old) − R)²)`; the clipped branch
    ///   wins only where the clip is active (gradient 0), so `∂L_v/∂v = (v − R)/n` otherwise.
    fn loss(&mut self, mb: &Minibatch<'_>, config: &PpoConfig) -> LossReport {
        let n = mb.len();
        let num_actions = self.net.num_actions();
        self.net.forward(mb.obs, n, &mut self.ws);
        let (inv_n, eps) = (1.0 / n as f32, config.clip_coef);
        self.dlogits.resize(n * num_actions, 0.0);
        self.dvalue.resize(n, 0.0);
        let mut logratio = vec![0.0f32; n];
        let (mut pg_sum, mut v_sum, mut ent_sum) = (0.0f64, 0.0f64, 0.0f64);
        let mut logp = std::mem::take(&mut self.ws.logits);
        log_softmax_rows(&mut logp, num_actions);
        for k in 0..n {
            let l = &logp[k * num_actions..(k + 1) * num_actions];
            let d = &mut self.dlogits[k * num_actions..(k + 1) * num_actions];
            let a = mb.actions[k];
            let entropy: f32 = -l.iter().map(|&lj| lj.exp() * lj).sum::<f32>();
            let lr = l[a] - mb.old_logprob[k];
            let ratio = lr.exp();
            let adv = mb.advantages[k];
            let (loss1, loss2) = (-adv * ratio, -adv * ratio.clamp(1.0 - eps, 1.0 + eps));
            let d_logratio = if loss1 >= loss2 { -adv * inv_n * ratio } else { 0.0 };
            for (j, (dj, &lj)) in d.iter_mut().zip(l).enumerate() {
                let p = lj.exp();
                let onehot = if j == a { 1.0 } else { 0.0 };
                *dj = d_logratio * (onehot - p) + config.ent_coef * inv_n * p * (lj + entropy);
            }
            let (v, ret, old) = (self.ws.value[k], mb.returns[k], mb.old_values[k]);
            let unclipped = (v - ret) * (v - ret);
            let (v_loss, dv) = if config.clip_vloss {
                let clipped = old + (v - old).clamp(-eps, eps) - ret;
                let clipped = clipped * clipped;
                (unclipped.max(clipped), if unclipped >= clipped { v - ret } else { 0.0 })
            } else {
                (unclipped, v - ret)
            };
            self.dvalue[k] = config.vf_coef * inv_n * dv;
            logratio[k] = lr;
            pg_sum += f64::from(loss1.max(loss2));
            v_sum += f64::from(v_loss);
            ent_sum += f64::from(entropy);
        }
        self.ws.logits = logp;
        let (pg, v_loss, entropy) =
            ((pg_sum / n as f64) as f32, (0.5 * v_sum / n as f64) as f32, (ent_sum / n as f64) as f32);
        let loss = pg - config.ent_coef * entropy + config.vf_coef * v_loss;
        self.net.backward(mb.obs, &mut self.ws, &self.dlogits, &self.dvalue, &mut self.grads);
        LossReport { scalars: [loss, pg, v_loss, entropy], logratio }
    }

    fn apply(&mut self, learning_rate: f64, max_grad_norm: f32) -> f32 {
        // Global L2 norm as `clip_grad_norm`: per-tensor f32 sums of squares, added in f64.
        let total: f64 = (self.net.tensors().iter())
            .map(|&(start, len)| f64::from(self.grads[start..start + len].iter().map(|g| g * g).sum::<f32>()))
            .sum();
        let norm = total.sqrt() as f32;
        let factor = max_grad_norm / (norm + 1e-6);
        if max_grad_norm > 0.0 && factor < 1.0 {
            self.grads.iter_mut().for_each(|g| *g *= factor);
        }
        self.adam.step(self.net.params_mut(), &self.grads, learning_rate as f32);
        norm
    }

    fn mark_good(&mut self) {
        self.last_good.copy_from_slice(self.net.params());
    }

    fn last_good(&self) -> P {
        self.policy_with(&self.last_good)
    }

    fn model(&self) -> P {
        self.policy_with(self.net.params())
    }

    fn save(&self, file: &mut StateFile) -> Result<(), CheckpointError> {
        file.put_model(&self.model())?;
        file.put(FUSED_ADAM_SECTION, &self.adam)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesalab_core::{Seed, Streams};
    use mesalab_nn::policy::{MlpPolicy, MlpPolicyConfig};
    use rand::Rng;

    /// Observations, actions, old log-probabilities, advantages, returns and old values.
    type MinibatchData = (Vec<f32>, Vec<usize>, Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

    /// A random minibatch whose ratios straddle the clip range and whose values straddle the
    /// value clip, so every branch of the loss is exercised.
    fn minibatch_data(policy: &MlpPolicy, n: usize, rng: &mut mesalab_core::StreamRng) -> MinibatchData {
        let obs: Vec<f32> = (0..n * policy.obs_len()).map(|_| rng.random_range(-2.0f32..2.0)).collect();
        let actions: Vec<usize> = (0..n).map(|_| rng.random_range(0..policy.num_actions())).collect();
        let fused = FusedMlp::from_policy(policy).unwrap();
        let mut ws = Workspace::default();
        fused.forward(&obs, n, &mut ws);
        let mut logp = ws.logits.clone();
        log_softmax_rows(&mut logp, policy.num_actions());
        let na = policy.num_actions();
        let old_logprob = (0..n).map(|k| logp[k * na + actions[k]] + rng.random_range(-0.5f32..0.5)).collect();
        let advantages = (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect();
        let returns = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let old_values = (0..n).map(|k| ws.value[k] + rng.random_range(-0.5f32..0.5)).collect();
        (obs, actions, old_logprob, advantages, returns, old_values)
    }

    #[test]
    fn fused_loss_and_gradient_match_burn_autodiff() {
        let device = cpu_autodiff();
        let configs = [
            (MlpPolicyConfig::default(), PpoConfig::default()),
            (
                MlpPolicyConfig { shared_torso: true, ..MlpPolicyConfig::default() },
                PpoConfig { clip_vloss: false, ent_coef: 0.3, ..PpoConfig::default() },
            ),
            (
                MlpPolicyConfig {
                    hidden: vec![16, 8],
                    activation: mesalab_nn::policy::Activation::Relu,
                    shared_torso: false,
                },
                PpoConfig { clip_coef: 0.05, vf_coef: 2.0, ..PpoConfig::default() },
            ),
        ];
        for (i, (mlp, config)) in configs.into_iter().enumerate() {
            let streams = Streams::new(Seed(30 + i as u64));
            let policy = MlpPolicy::init(&mlp, 7, 5, &mut streams.stream("init"), &device);
            let n = 64;
            let (obs, actions, old_logprob, advantages, returns, old_values) =
                minibatch_data(&policy, n, &mut streams.stream("data"));
            let mb = Minibatch {
                obs: &obs,
                actions: &actions,
                old_logprob: &old_logprob,
                advantages: &advantages,
                returns: &returns,
                old_values: &old_values,
            };
            // burn: the loss the burn learner trains on, and its autodiff gradient.
            let (loss, scalars, logratio) = burn_minibatch_loss(&policy, &mb, &config, &device);
            let grads = GradientsParams::from_grads(loss.backward(), &policy);
            let mut want = Vec::new();
            for l in policy.encoder.iter().chain(&policy.critic).chain([&policy.policy_head, &policy.value_head]) {
                want.extend(to_vec(grads.get::<2>(l.weight.id).unwrap()));
                want.extend(to_vec(grads.get::<1>(l.bias.as_ref().unwrap().id).unwrap()));
            }
            let mut fused = FusedLearner::new(policy.clone(), &config, None).unwrap().unwrap();
            let report = fused.loss(&mb, &config);
            for (what, got, want) in [
                ("scalars", report.scalars.to_vec(), to_vec(scalars.detach())),
                ("logratio", report.logratio, to_vec(logratio.detach())),
            ] {
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "config {i} {what}: fused {g} vs burn {w}");
                }
            }
            let scale = want.iter().fold(0.0f32, |m, g| m.max(g.abs()));
            for (k, (g, w)) in fused.grads.iter().zip(&want).enumerate() {
                assert!((g - w).abs() <= 1e-5 * (scale + w.abs()), "config {i} grad[{k}]: fused {g} vs burn {w}");
            }
        }
    }

    #[test]
    fn fused_learner_declines_policies_it_does_not_cover() {
        use mesalab_nn::policy::{CnnPolicy, CnnPolicyConfig};
        let device = cpu_autodiff();
        let cnn = CnnPolicy::init(
            &CnnPolicyConfig::default(),
            [2, 5, 5],
            4,
            &mut Streams::new(Seed(1)).stream("init"),
            &device,
        );
        assert!(FusedLearner::new(cnn, &PpoConfig::default(), None).is_none());
    }
}
