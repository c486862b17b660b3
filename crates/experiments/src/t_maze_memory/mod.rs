//! # t-maze-memory: recurrent PPO against a memoryless policy, and the memory read off the state
//!
//! The T-maze (`t-maze-v1`, Bakker 2001) shows its cue only on the first step; at the junction a
//! policy must turn toward the cued arm. A feed-forward policy sees the same observation at the
//! junction whatever the cue, so its expected success is at most ½ — the baseline is a bound,
//! not a guess. Each seed trains a GRU and an LSTM policy with recurrent PPO
//! ([`mesalab_train::ppo::train_recurrent`]) and an MLP with the feed-forward trainer, same PPO
//! settings and env steps; all are scored on the same held-out episodes of the training
//! corridors (2–6 cells) and of longer deployment corridors (8–14), beside the cue oracle and
//! uniform random.
//!
//! Looking inside (per recurrent seed, on teacher-forced walks down every corridor length, which
//! depend only on the length and the cue):
//! - **Probe**: a logistic probe reads the cue from the hidden state after every step past the
//!   first (where the observation no longer shows it), on a stratified held-out split, beside a
//!   shuffled-label probe, the 95th percentile of random directions and the untrained twin.
//! - **Patching**: at the junction, the state carried in is replaced with the one the opposite cue
//!   left on the same corridor; the share of decisions that follow the donor's cue is the causal
//!   evidence that the choice reads the state. The null: the state shifted by a random direction
//!   of the same norm.
//!
//! Reading order: [`run`] → [`train_arm`] → [`evaluate_all`] → [`inside`] → [`verdict`].

mod report;

pub use report::report;

use crate::context::RunContext;
use crate::experiment::{RunSection, check_experiment_name, check_unit};
use crate::train_state;
use crate::verdict::{Bound, Check, Verdict};
use anyhow::Context as _;
use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use mesalab_analysis::probe::{self, ClassifierKind};
use mesalab_analysis::stats::Rate;
use mesalab_core::config::{Invalid, Validate};
use mesalab_core::{Seed, StreamRng, Streams};
use mesalab_envs::t_maze::{self, CueOracle, TMaze, TMazeParams};
use mesalab_envs::{Actor, Env, EpisodeStats, PerState, UniformRandom, VecEnv};
use mesalab_nn::device::{cpu, cpu_autodiff};
use mesalab_nn::policy::{
    Cell, MlpPolicy, MlpPolicyConfig, RecurrentActorCritic, RecurrentPolicy, RecurrentPolicyConfig,
};
use mesalab_train::ppo::{self, ActionSelection, PpoConfig};
use nalgebra::DMatrix;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// The experiment's config; every key has a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `t-maze-memory`.
    pub experiment: String,
    pub run: RunSection,
    /// The training corridors.
    pub env: TMazeParams,
    /// The deployment corridors (same `width`).
    pub deploy: TMazeParams,
    /// Shared by every arm (recurrent arms need `num_minibatches` to divide `num_envs`).
    pub ppo: PpoConfig,
    /// The recurrent arms' architecture; `cell` is set per arm from `cells`.
    pub recurrent: RecurrentPolicyConfig,
    /// The memoryless baseline's architecture.
    pub mlp: MlpPolicyConfig,
    /// Which recurrent cells to train (each seed trains every one, plus the MLP).
    pub cells: Vec<Cell>,
    pub eval: EvalSection,
    pub inside: InsideSection,
    pub verdict: VerdictSection,
    pub quick: toml::Table,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSection {
    /// Envs played side by side; every arm and baseline plays the same levels.
    pub num_envs: usize,
    /// Episodes per env and split.
    pub episodes_per_env: usize,
    pub selection: ActionSelection,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InsideSection {
    pub enabled: bool,
    pub probe_l2: f64,
    pub probe_test_fraction: f64,
    /// Random directions in the probe's null.
    pub random_directions: usize,
    /// Random-direction patches per junction decision (the patching null).
    pub null_draws: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerdictSection {
    /// Every recurrent arm's worst seed solves at least this share of held-out training corridors.
    pub min_recurrent_success: f64,
    /// The MLP's best seed stays at or below this (its expected success is at most ½).
    pub max_mlp_success: f64,
    /// The cue probe's held-out AUROC, worst recurrent seed.
    pub min_probe_auroc: f64,
    /// Junction decisions that follow the donor's cue after patching, worst recurrent seed.
    pub min_patch_follow: f64,
    /// Decisions a same-norm random shift changes, at most (the null).
    pub max_null_flip: f64,
    pub min_seeds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            experiment: "t-maze-memory".into(),
            run: RunSection { seeds: 3, log_every: 5, ..RunSection::default() },
            env: TMazeParams::train(),
            deploy: TMazeParams::deploy(),
            ppo: PpoConfig {
                num_envs: 16,
                num_steps: 32,
                total_timesteps: 60_000,
                learning_rate: 1e-3,
                num_minibatches: 4,
                ..PpoConfig::default()
            },
            recurrent: RecurrentPolicyConfig::default(),
            mlp: MlpPolicyConfig::default(),
            cells: vec![Cell::Gru, Cell::Lstm],
            eval: EvalSection::default(),
            inside: InsideSection::default(),
            verdict: VerdictSection::default(),
            quick: toml::Table::new(),
        }
    }
}

impl Default for EvalSection {
    fn default() -> Self {
        Self { num_envs: 16, episodes_per_env: 25, selection: ActionSelection::Greedy }
    }
}

impl Default for InsideSection {
    fn default() -> Self {
        Self { enabled: true, probe_l2: 1e-2, probe_test_fraction: 0.3, random_directions: 200, null_draws: 8 }
    }
}

impl Default for VerdictSection {
    fn default() -> Self {
        Self {
            min_recurrent_success: 0.95,
            max_mlp_success: 0.62,
            min_probe_auroc: 0.9,
            min_patch_follow: 0.8,
            max_null_flip: 0.2,
            min_seeds: 3,
        }
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Invalid> {
        check_experiment_name(&self.experiment, "t-maze-memory")?;
        self.run.validate()?;
        let prefixed = |p: &str, e: Invalid| Invalid::new(format!("{p}.{}", e.key), e.message);
        self.env.validate().map_err(|e| prefixed("env", e))?;
        self.deploy.validate().map_err(|e| prefixed("deploy", e))?;
        if self.deploy.width != self.env.width {
            return Err(Invalid::new(
                "deploy.width",
                format!("must equal env.width ({}) so one policy reads both splits", self.env.width),
            ));
        }
        train_state::check_recurrent_ppo(&self.ppo, &self.mlp.hidden)?;
        if let Some((key, message)) = self.recurrent.problem() {
            return Err(Invalid::new(key, message));
        }
        if self.cells.is_empty() || (1..self.cells.len()).any(|i| self.cells[..i].contains(&self.cells[i])) {
            return Err(Invalid::new("cells", "list each of \"gru\", \"lstm\" at most once, at least one"));
        }
        let e = &self.eval;
        if e.num_envs == 0 || e.num_envs > 4096 || e.episodes_per_env == 0 || e.episodes_per_env > 100_000 {
            return Err(Invalid::new("eval.num_envs", "eval.num_envs in 1..=4096 and eval.episodes_per_env ≥ 1"));
        }
        let i = &self.inside;
        if !(i.probe_l2.is_finite() && i.probe_l2 > 0.0) {
            return Err(Invalid::new("inside.probe_l2", "must be a positive number"));
        }
        if !(i.probe_test_fraction > 0.0 && i.probe_test_fraction < 1.0) {
            return Err(Invalid::new("inside.probe_test_fraction", "must lie strictly between 0 and 1"));
        }
        if i.random_directions == 0 || i.null_draws == 0 {
            return Err(Invalid::new("inside.random_directions", "inside.random_directions and null_draws ≥ 1"));
        }
        let v = &self.verdict;
        for (key, x) in [
            ("verdict.min_recurrent_success", v.min_recurrent_success),
            ("verdict.max_mlp_success", v.max_mlp_success),
            ("verdict.min_probe_auroc", v.min_probe_auroc),
            ("verdict.min_patch_follow", v.min_patch_follow),
            ("verdict.max_null_flip", v.max_null_flip),
        ] {
            check_unit(key, x)?;
        }
        if v.min_seeds == 0 {
            return Err(Invalid::new("verdict.min_seeds", "must be at least 1"));
        }
        Ok(())
    }
}

impl crate::registry::ExperimentConfig for Config {
    fn quick(&self) -> &toml::Table {
        &self.quick
    }

    fn seeds(&self) -> Vec<u64> {
        self.run.seed_list()
    }

    fn estimate(&self) -> anyhow::Result<crate::resources::Estimate> {
        use crate::resources::{Bytes, Estimate, Part, Phase, Work, key, n};
        let obs = n(self.env.width).saturating_mul(4);
        let h = n(self.recurrent.hidden);
        // The rollout (f32) and one minibatch's unrolled graph (≈ 12 tensors of `hidden` per row).
        let rollout = Bytes::product(&[n(self.ppo.batch_size()), obs.saturating_add(8), 4]);
        let graph = Bytes::product(&[n(self.ppo.minibatch_size()), h, 12 * 4]);
        let keys = [key("ppo.num_envs", self.ppo.num_envs), key("ppo.num_steps", self.ppo.num_steps)];
        Ok(Estimate {
            parts: vec![
                Part::new(Phase::Resident, "rollout buffers", rollout, &keys),
                Part::new(Phase::Step("training"), "one minibatch's unrolled graph", graph, &keys),
            ],
            work: Work {
                seeds: self.run.seeds,
                variants: self.cells.len() as u64 + 1,
                train_steps: self.ppo.total_timesteps,
                train_unit: "env steps per arm",
                evaluation: n(self.eval.num_envs).saturating_mul(n(self.eval.episodes_per_env)).saturating_mul(2),
                eval_unit: "held-out episodes per arm and seed",
            },
        })
    }

    fn run(&self, ctx: &RunContext) -> anyhow::Result<serde_json::Value> {
        run(self, ctx)
    }

    fn hook_shapes(&self) -> anyhow::Result<Vec<mesalab_nn::interp::HookShape>> {
        let env = TMaze::new(self.env.clone());
        let mut out = Vec::new();
        for &cell in &self.cells {
            let p = recurrent_init(self, cell, &env, &Streams::new(Seed(self.run.seed)));
            out.extend(crate::experiment::recurrent_hook_shapes(&p)?);
        }
        Ok(out)
    }

    fn split_env(&self, split: &str) -> anyhow::Result<mesalab_envs::AnyEnv> {
        let params = match split {
            "train" => &self.env,
            "deploy" => &self.deploy,
            other => anyhow::bail!("t-maze-memory has the splits train and deploy, not `{other}`"),
        };
        Ok(mesalab_envs::AnyEnv::new(TMaze::new(params.clone()), split, mesalab_envs::params::to_toml(params)))
    }
}

/// One arm's held-out outcome on one split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// `gru`, `lstm`, `mlp`, `oracle`, `random`.
    pub arm: String,
    /// `None` for the baselines.
    pub seed: Option<u64>,
    pub split: String,
    /// Episodes that entered the cued arm.
    pub success: Rate,
    /// Episodes cut by the time limit (never turned).
    pub truncated: Rate,
}

/// What the probe and the patching found in one network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Inside {
    pub arm: String,
    pub seed: u64,
    /// `trained` or `untrained`.
    pub model: String,
    pub probe: crate::probe_score::ProbeScore,
    /// Junction decisions of the unpatched policy that were correct for both cues (the ones
    /// patching can test), over every corridor length of both splits.
    pub patched_decisions: u64,
    /// Of those, the share that followed the donor's cue after patching.
    pub follow: Rate,
    /// Decisions a same-norm random shift of the state changed (over `null_draws` per decision).
    pub null_flip: Rate,
}

/// Everything the run measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub outcomes: Vec<Outcome>,
    pub inside: Vec<Inside>,
}

fn recurrent_init(cfg: &Config, cell: Cell, env: &TMaze, streams: &Streams) -> RecurrentPolicy {
    let arch = RecurrentPolicyConfig { cell, ..cfg.recurrent.clone() };
    RecurrentPolicy::init(
        &arch,
        env.spec().obs_len(),
        env.spec().actions.len(),
        &mut streams.stream("init"),
        &cpu_autodiff(),
    )
}

fn arm_name(cell: Cell) -> &'static str {
    train_state::cell_arm(cell)
}

/// Where arm `arm` of `seed` trains: the run's settings and the success curve.
fn arm_job<'a, 'c>(cfg: &'a Config, ctx: &'a RunContext<'c>, seed: u64, arm: &'a str) -> train_state::ArmJob<'a, 'c> {
    train_state::ArmJob {
        ctx,
        seed,
        arm,
        ppo: &cfg.ppo,
        checkpoint_every: cfg.run.checkpoint_every,
        log_every: cfg.run.log_every,
        metric: ("success", t_maze::EV_CORRECT),
    }
}

/// Trains one recurrent arm of one seed and saves its weights (resumable: [`train_state::arm_state`]).
fn train_arm(cfg: &Config, ctx: &RunContext, cell: Cell, seed: u64) -> anyhow::Result<RecurrentPolicy> {
    let env = TMaze::new(cfg.env.clone());
    let init = recurrent_init(cfg, cell, &env, &Streams::new(Seed(seed)));
    train_state::train_recurrent_arm(&arm_job(cfg, ctx, seed, arm_name(cell)), env, init)
}

/// Trains the memoryless baseline of one seed with the same PPO settings (resumable).
fn train_mlp(cfg: &Config, ctx: &RunContext, seed: u64) -> anyhow::Result<MlpPolicy> {
    let env = TMaze::new(cfg.env.clone());
    let streams = Streams::new(Seed(seed));
    let init = MlpPolicy::init(
        &cfg.mlp,
        env.spec().obs_len(),
        env.spec().actions.len(),
        &mut streams.stream("init"),
        &cpu_autodiff(),
    );
    train_state::train_feedforward_arm(&arm_job(cfg, ctx, seed, "mlp"), env, init)
}

/// The held-out envs of a split: the run's base seed and a slot range no training env uses, so
/// every arm and seed plays the same levels.
fn held_out(cfg: &Config, split: &str) -> VecEnv<TMaze> {
    let params = if split == "train" { &cfg.env } else { &cfg.deploy };
    VecEnv::new(TMaze::new(params.clone()), &Streams::new(Seed(cfg.run.seed)), 1 << 40, cfg.eval.num_envs)
}

fn outcome(arm: &str, seed: Option<u64>, split: &str, episodes: &[EpisodeStats]) -> Outcome {
    Outcome {
        arm: arm.into(),
        seed,
        split: split.into(),
        success: Rate::of(episodes, |e| e.happened(t_maze::EV_CORRECT)),
        truncated: Rate::of(episodes, |e| e.end == Some(mesalab_envs::End::Truncated)),
    }
}

/// Plays exactly `per_env` episodes in every slot with a scripted or random actor.
fn play_actor(
    actor: &dyn Actor<TMaze>,
    envs: &mut VecEnv<TMaze>,
    per_env: usize,
    rng: &mut StreamRng,
) -> Vec<EpisodeStats> {
    let n = envs.len();
    let mut per_slot: Vec<Vec<EpisodeStats>> = vec![Vec::new(); n];
    let mut actions = vec![0usize; n];
    while per_slot.iter().any(|s| s.len() < per_env) {
        let states: Vec<_> = (0..n).map(|i| envs.state(i)).collect();
        actor.act(envs.env(), &states, rng, &mut actions);
        envs.step(&actions);
        for (slot, stats) in envs.finished() {
            if per_slot[*slot].len() < per_env {
                per_slot[*slot].push(*stats);
            }
        }
    }
    per_slot.into_iter().flatten().collect()
}

/// Every trained arm of one seed on both splits.
fn evaluate_all(
    cfg: &Config,
    seed: u64,
    recurrent: &[(Cell, RecurrentPolicy)],
    mlp: &MlpPolicy,
) -> anyhow::Result<Vec<Outcome>> {
    let mut out = Vec::new();
    for split in ["train", "deploy"] {
        let rng = || Streams::new(Seed(seed)).stream("eval-actions");
        for (cell, policy) in recurrent {
            let e = ppo::evaluate_recurrent(
                policy,
                &mut held_out(cfg, split),
                cfg.eval.episodes_per_env,
                cfg.eval.selection,
                &mut rng(),
            )
            .map_err(anyhow::Error::msg)?;
            out.push(outcome(arm_name(*cell), Some(seed), split, &e.episodes));
        }
        let e =
            ppo::evaluate(mlp, &mut held_out(cfg, split), cfg.eval.episodes_per_env, cfg.eval.selection, &mut rng())
                .map_err(anyhow::Error::msg)?;
        out.push(outcome("mlp", Some(seed), split, &e.episodes));
    }
    Ok(out)
}

/// The oracle and uniform random on the same held-out levels.
fn baselines(cfg: &Config) -> Vec<Outcome> {
    let mut out = Vec::new();
    for split in ["train", "deploy"] {
        for (name, actor) in
            [("oracle", &PerState(CueOracle) as &dyn Actor<TMaze>), ("random", &UniformRandom as &dyn Actor<TMaze>)]
        {
            let mut rng = Streams::new(Seed(cfg.run.seed)).stream("baseline-actions");
            let episodes = play_actor(actor, &mut held_out(cfg, split), cfg.eval.episodes_per_env, &mut rng);
            out.push(outcome(name, None, split, &episodes));
        }
    }
    out
}

/// One teacher-forced walk: the state after every step and the junction decision.
struct Walk {
    length: usize,
    cue_up: bool,
    /// The state after step `t`, `t = 0..length` (`[length][state_len]`).
    states: Vec<Vec<f32>>,
    /// The greedy action at the junction.
    decision: usize,
}

/// One step of one env: (log-probabilities, new state).
fn step_one<P: RecurrentActorCritic>(policy: &P, obs: &[f32], start: bool, state: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let device = cpu();
    let obs = Tensor::from_data(TensorData::new(obs.to_vec(), [1, obs.len()]), &device);
    let state = Tensor::from_data(TensorData::new(state.to_vec(), [1, state.len()]), &device);
    let (out, next) = policy.unroll(obs, &[start], state);
    let v = |t: Tensor<2>| t.into_data().try_into_vec::<f32>().expect("f32");
    (v(out.logits), v(next))
}

fn greedy(logits: &[f32]) -> usize {
    mesalab_train::rollout::argmax(logits)
}

/// Walks `forward` to the junction of every corridor length of both splits, with either cue.
fn walks<P: RecurrentActorCritic>(cfg: &Config, policy: &P) -> Vec<Walk> {
    let env = TMaze::new(TMazeParams { min_length: 2, max_length: cfg.env.width, ..cfg.env.clone() });
    let (lo, hi) = (cfg.env.min_length.min(cfg.deploy.min_length), cfg.env.max_length.max(cfg.deploy.max_length));
    let mut rng = Streams::new(Seed(0)).stream("unused"); // t-maze steps draw nothing
    let mut obs = vec![0.0f32; env.spec().obs_len()];
    let mut out = Vec::new();
    for length in lo..=hi {
        for cue_up in [true, false] {
            let mut s = env.start(length, cue_up);
            let mut state = vec![0.0f32; policy.state_len()];
            let mut states = Vec::with_capacity(length);
            let mut decision = 0;
            for t in 0..length {
                env.write_obs(&s, &mut obs);
                let (logits, next) = step_one(policy, &obs, t == 0, &state);
                if t + 1 == length {
                    decision = greedy(&logits);
                } else {
                    env.step(&mut s, t_maze::ACT_FORWARD, &mut rng);
                }
                state = next;
                states.push(state.clone());
            }
            out.push(Walk { length, cue_up, states, decision });
        }
    }
    out
}

/// The cue probe over the states after steps `1..length` (the cue no longer in view).
fn cue_probe(
    cfg: &Config,
    walks: &[Walk],
    seed: u64,
    model: &str,
    arm: &str,
    rng: &mut StreamRng,
) -> anyhow::Result<crate::probe_score::ProbeScore> {
    let rows: Vec<(&[f32], bool)> =
        walks.iter().flat_map(|w| w.states[1..].iter().map(move |s| (s.as_slice(), w.cue_up))).collect();
    let width = rows.first().map(|r| r.0.len()).context("no probe rows")?;
    let x = DMatrix::from_fn(rows.len(), width, |i, j| f64::from(rows[i].0[j]));
    let labels: Vec<bool> = rows.iter().map(|r| r.1).collect();
    let split = probe::stratified_split(&labels, cfg.inside.probe_test_fraction, rng)?;
    let kind = ClassifierKind::Logistic { l2: cfg.inside.probe_l2 };
    let report = probe::evaluate_classifier(kind, &x, &labels, &split)?;
    Ok(crate::probe_score::ProbeScore {
        seed,
        model: model.into(),
        hook: format!("{arm}.hook_h"),
        target: "cue (up)".into(),
        auroc: report.test_auroc,
        shuffled: probe::shuffled_label_control(kind, &x, &labels, &split, rng)?,
        null_p95: probe::random_direction_null(&x, &labels, &split, cfg.inside.random_directions, rng)?.p95,
    })
}

/// Patching at the junction: the state carried into the junction step replaced by the opposite
/// cue's (same corridor), and by a same-norm random shift (the null).
fn patching<P: RecurrentActorCritic>(
    cfg: &Config,
    policy: &P,
    walks: &[Walk],
    rng: &mut StreamRng,
) -> (u64, Rate, Rate) {
    let env = TMaze::new(TMazeParams { min_length: 2, max_length: cfg.env.width, ..cfg.env.clone() });
    let arm = |up: bool| if up { t_maze::ACT_UP } else { t_maze::ACT_DOWN };
    let mut obs = vec![0.0f32; env.spec().obs_len()];
    let (mut tested, mut follow, mut null_flip, mut null_n) = (0u64, 0u64, 0u64, 0u64);
    for pair in walks.chunks(2) {
        let [up, down] = pair else { continue };
        if up.decision != arm(true) || down.decision != arm(false) || up.length < 2 {
            continue;
        }
        let j = up.length - 2; // the state entering the junction step
        for (own, donor) in [(up, down), (down, up)] {
            tested += 1;
            let mut s = env.start(own.length, own.cue_up);
            s.pos = own.length - 1;
            s.t = (own.length - 1) as u32;
            env.write_obs(&s, &mut obs);
            let (logits, _) = step_one(policy, &obs, false, &donor.states[j]);
            follow += u64::from(greedy(&logits) == arm(donor.cue_up));
            let diff: f64 =
                own.states[j].iter().zip(&donor.states[j]).map(|(a, b)| f64::from(a - b).powi(2)).sum::<f64>().sqrt();
            for _ in 0..cfg.inside.null_draws {
                let dir: Vec<f64> = (0..own.states[j].len()).map(|_| StandardNormal.sample(&mut *rng)).collect();
                let norm = dir.iter().map(|d| d * d).sum::<f64>().sqrt().max(1e-12);
                let shifted: Vec<f32> =
                    own.states[j].iter().zip(&dir).map(|(a, d)| a + (d / norm * diff) as f32).collect();
                let (logits, _) = step_one(policy, &obs, false, &shifted);
                null_flip += u64::from(greedy(&logits) != own.decision);
                null_n += 1;
            }
        }
    }
    (tested, Rate::new(follow, tested), Rate::new(null_flip, null_n))
}

/// The probe and patching for a trained network and its untrained twin.
fn inside(cfg: &Config, cell: Cell, seed: u64, trained: &RecurrentPolicy) -> anyhow::Result<Vec<Inside>> {
    let env = TMaze::new(cfg.env.clone());
    let untrained = recurrent_init(cfg, cell, &env, &Streams::new(Seed(seed)));
    let mut out = Vec::new();
    for (model, policy) in [("trained", trained), ("untrained", &untrained)] {
        let mut rng = Streams::new(Seed(seed)).stream(&format!("inside/{model}/{}", arm_name(cell)));
        let policy = policy.valid();
        let walks = walks(cfg, &policy);
        let probe = cue_probe(cfg, &walks, seed, model, arm_name(cell), &mut rng)?;
        let (tested, follow, null_flip) = patching(cfg, &policy, &walks, &mut rng);
        out.push(Inside {
            arm: arm_name(cell).into(),
            seed,
            model: model.into(),
            probe,
            patched_decisions: tested,
            follow,
            null_flip,
        });
    }
    Ok(out)
}

/// Runs the experiment; returns the JSON of `summary.json`.
pub fn run(cfg: &Config, ctx: &RunContext) -> anyhow::Result<serde_json::Value> {
    let started = std::time::Instant::now();
    let mut r = Results { outcomes: baselines(cfg), inside: Vec::new() };
    for seed in cfg.run.seed_list() {
        let mut recurrent = Vec::new();
        for &cell in &cfg.cells {
            recurrent.push((cell, train_arm(cfg, ctx, cell, seed)?));
        }
        let mlp = train_mlp(cfg, ctx, seed)?;
        r.outcomes.extend(evaluate_all(cfg, seed, &recurrent, &mlp)?);
        if cfg.inside.enabled {
            for (cell, policy) in &recurrent {
                r.inside.extend(inside(cfg, *cell, seed, policy)?);
            }
        }
    }
    let v = verdict(cfg, &r);
    crate::experiment::store_summary(ctx, "t-maze-memory", &cfg.run.seed_list(), &r, started, &v)
}

/// The claim: every recurrent arm solves the held-out training corridors on every seed, the MLP
/// stays at chance, and the state holds the cue (probe) and carries the decision (patching).
pub fn verdict(cfg: &Config, r: &Results) -> Verdict {
    let v = &cfg.verdict;
    let per_seed = |arm: &str, split: &str| -> Vec<(u64, f64)> {
        (r.outcomes.iter())
            .filter(|o| o.arm == arm && o.split == split)
            .filter_map(|o| o.seed.map(|s| (s, o.success.rate)))
            .collect()
    };
    let mut checks = Vec::new();
    for &cell in &cfg.cells {
        let arm = arm_name(cell);
        checks.push(Check::worst_seed(
            format!("{arm}: held-out success, training corridors"),
            Bound::AtLeast(v.min_recurrent_success),
            per_seed(arm, "train"),
        ));
    }
    checks.push(Check::worst_seed(
        "mlp: held-out success, training corridors (best seed)",
        Bound::AtMost(v.max_mlp_success),
        per_seed("mlp", "train"),
    ));
    let oracle =
        r.outcomes.iter().find(|o| o.arm == "oracle" && o.split == "train").map_or(f64::NAN, |o| o.success.rate);
    checks.push(Check::pooled("oracle: held-out success (checks the env)", Bound::AtLeast(0.99), oracle));
    if cfg.inside.enabled {
        for &cell in &cfg.cells {
            let arm = arm_name(cell);
            let trained = |f: &dyn Fn(&Inside) -> f64| -> Vec<(u64, f64)> {
                (r.inside.iter()).filter(|i| i.arm == arm && i.model == "trained").map(|i| (i.seed, f(i))).collect()
            };
            checks.push(Check::worst_seed(
                format!("{arm}: cue probe held-out AUROC"),
                Bound::AtLeast(v.min_probe_auroc),
                trained(&|i| i.probe.auroc),
            ));
            // The probe's controls are reported, not gated: in a 64-wide state random directions
            // separate the cue too (measured: p95 = 1.0), so the causal test is the patching below.
            checks.push(Check::worst_seed(
                format!("{arm}: junction decisions following the patched-in cue"),
                Bound::AtLeast(v.min_patch_follow),
                trained(&|i| if i.patched_decisions == 0 { f64::NAN } else { i.follow.rate }),
            ));
            checks.push(Check::worst_seed(
                format!("{arm}: decisions changed by a same-norm random shift (null)"),
                Bound::AtMost(v.max_null_flip),
                trained(&|i| if i.patched_decisions == 0 { f64::NAN } else { i.null_flip.rate }),
            ));
        }
    }
    checks.push(Check::seeds(v.min_seeds, cfg.run.seed_list().len()));
    Verdict::new(
        "a recurrent policy trained by PPO holds the cue in its state and solves the T-maze that a memoryless MLP cannot",
        "an MLP trained with the same PPO settings and env steps, the cue oracle and uniform random on the same held-out episodes; the untrained twin, shuffled labels and random directions for the probe; same-norm random shifts for patching",
        checks,
    )
}

#[cfg(test)]
mod tests;
