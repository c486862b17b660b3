//! # sokoban-drc: a DRC agent on small Sokoban — does it plan?
//!
//! Guez et al. 2019 trained a "Deep Repeated ConvLSTM", DRC(D, N), with model-free RL on Sokoban
//! and found signs of planning: it solves more levels when given extra "thinking" steps before
//! acting. Taufeeque et al. 2024 and Bush et al. 2025 read the plan from its state with
//! per-square linear probes. This experiment rebuilds that chain on `sokoban-mini-v1` (7 × 7
//! rooms, 2 boxes) at CPU size, where the exact solver gives every level's optimal length.
//!
//! Per seed: a DRC ([`mesalab_nn::policy::DrcPolicy`]) trained with recurrent PPO and an MLP with
//! the feed-forward trainer, same PPO settings and env steps, on the train split (optimal plans of
//! 1–10 moves). Both play the same held-out levels of the train split and of the deploy split
//! (11–30 moves) beside uniform random and the solver (which solves every level in its optimal
//! length, so the table states how far from optimal each agent is).
//!
//! - **Thinking steps**: before its first action the DRC gets `k` extra steps on the first
//!   observation (its state advances, nothing moves), for every `k` in `thinking.steps`; solve rate
//!   and "pacing" (the agent returns to an earlier board in its first 10 moves, the cycles
//!   Taufeeque et al. saw at the start of hard levels) per `k`.
//! - **Plan probes** (one logistic probe shared by all squares, as Bush et al.'s 1×1 probes): from
//!   layer `d`'s `h` or `c` at a square after step `t`, does the agent stand on that square within
//!   its next `h` moves (one probe per horizon, and one for the rest of the episode), and will a
//!   box be pushed off it later? Held out by level. Controls on the same rows: the untrained twin
//!   fed the same observations, a probe on the observation's 5 × 5 window around the square, and
//!   shuffled labels.
//!
//! Reading order: [`run`] → [`arm_job`] → [`train_seed`] → [`play`] → [`evaluate_arm`] → [`plan_probes`] →
//! [`verdict`].

mod report;

pub use report::report;

use crate::context::RunContext;
use crate::experiment::{RunSection, check_experiment_name, check_unit};
pub use crate::planning::{FeedForwardStepper, ProbeResult, RecurrentStepper, Stepper, TARGET_LATER, ThinkingSection};
use crate::planning::{
    PlanProbeKeys, check_plan_probes, held_out_starts, margins_over_controls, replay_states, score_probe,
    target_within, think,
};
use crate::train_state;
use crate::verdict::{Bound, Check, Verdict};
use burn::module::Module;
use mesalab_analysis::probe::Split;
use mesalab_analysis::stats::Rate;
use mesalab_core::config::{Invalid, Validate};
use mesalab_core::{Seed, Streams};
use mesalab_envs::grid::Pos;
use mesalab_envs::sokoban::{self, Board, Sokoban, SokobanParams, SokobanState};
use mesalab_envs::{End, Env};
use mesalab_nn::device::cpu_autodiff;
use mesalab_nn::policy::{DrcPolicy, DrcPolicyConfig, MlpPolicy, MlpPolicyConfig, Policy, RecurrentActorCritic};
use mesalab_train::ppo::{self, PpoConfig};
use mesalab_train::rollout::argmax;
use nalgebra::DMatrix;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

/// The experiment's config; every key has a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `sokoban-drc`.
    pub experiment: String,
    pub run: RunSection,
    /// The training levels.
    pub env: SokobanParams,
    /// The deployment levels (same room size, so one policy reads both).
    pub deploy: SokobanParams,
    /// Shared by both arms (the DRC needs `num_minibatches` to divide `num_envs`).
    pub ppo: PpoConfig,
    pub drc: DrcPolicyConfig,
    /// The feed-forward baseline's architecture.
    pub mlp: MlpPolicyConfig,
    pub eval: EvalSection,
    pub thinking: ThinkingSection,
    pub inside: InsideSection,
    pub verdict: VerdictSection,
    pub quick: toml::Table,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSection {
    /// Held-out levels per split, played greedily by every arm (the same levels for all).
    pub levels: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InsideSection {
    pub enabled: bool,
    /// Held-out train-split levels whose episodes (no thinking steps) feed the probes.
    pub levels: usize,
    /// Probe horizons in agent moves ("on this square within the next h moves").
    pub horizons: Vec<usize>,
    pub probe_l2: f64,
    /// Share of the probe levels held out to score the probes (the split is by level).
    pub test_fraction: f64,
    /// Rows (square × step) at most per probe; a fixed subsample keeps Newton fits fast.
    pub max_rows: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerdictSection {
    /// The DRC's held-out train-split solve rate, worst seed.
    pub min_drc_solve: f64,
    /// DRC minus MLP held-out train-split solve rate, worst seed (same seed index).
    pub min_gain_over_mlp: f64,
    /// The number of thinking steps the verdict tests (must be in `thinking.steps`).
    pub thinking_k: usize,
    /// Deploy-split solve rate with `thinking_k` steps minus with none, worst seed.
    pub min_thinking_gain: f64,
    /// Best layer's rest-of-episode path probe AUROC minus the better of the untrained twin and
    /// the observation-window probe, worst seed.
    pub min_probe_margin: f64,
    pub min_seeds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            experiment: "sokoban-drc".into(),
            run: RunSection { seeds: 3, log_every: 10, ..RunSection::default() },
            env: SokobanParams::train(),
            deploy: SokobanParams::deploy(),
            ppo: PpoConfig {
                num_envs: 32,
                num_steps: 32,
                total_timesteps: 120_000,
                learning_rate: 5e-4,
                gamma: 0.97,
                num_minibatches: 4,
                ..PpoConfig::default()
            },
            drc: DrcPolicyConfig::default(),
            mlp: MlpPolicyConfig { hidden: vec![128, 128], ..MlpPolicyConfig::default() },
            eval: EvalSection::default(),
            thinking: ThinkingSection::default(),
            inside: InsideSection::default(),
            verdict: VerdictSection::default(),
            quick: toml::Table::new(),
        }
    }
}

impl Default for EvalSection {
    fn default() -> Self {
        Self { levels: 200 }
    }
}

impl Default for InsideSection {
    fn default() -> Self {
        Self {
            enabled: true,
            levels: 120,
            horizons: vec![1, 2, 4, 8],
            probe_l2: 1e-3,
            test_fraction: 0.3,
            max_rows: 20_000,
        }
    }
}

impl Default for VerdictSection {
    fn default() -> Self {
        Self {
            min_drc_solve: 0.8,
            min_gain_over_mlp: 0.05,
            thinking_k: 4,
            min_thinking_gain: 0.02,
            min_probe_margin: 0.05,
            min_seeds: 3,
        }
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Invalid> {
        check_experiment_name(&self.experiment, "sokoban-drc")?;
        self.run.validate()?;
        let prefixed = |p: &str, e: Invalid| Invalid::new(format!("{p}.{}", e.key), e.message);
        self.env.validate().map_err(|e| prefixed("env", e))?;
        self.deploy.validate().map_err(|e| prefixed("deploy", e))?;
        if self.deploy.size != self.env.size {
            return Err(Invalid::new(
                "deploy.size",
                format!("must equal env.size ({}) so one policy reads both splits", self.env.size),
            ));
        }
        train_state::check_recurrent_ppo(&self.ppo, &self.mlp.hidden)?;
        if let Some((key, message)) = self.drc.problem() {
            return Err(Invalid::new(key, message));
        }
        if !(1..=100_000).contains(&self.eval.levels) {
            return Err(Invalid::new("eval.levels", "must be in 1..=100000"));
        }
        self.thinking.validate()?;
        let t = &self.thinking.steps;
        let i = &self.inside;
        check_plan_probes(PlanProbeKeys {
            levels: i.levels,
            eval_levels: self.eval.levels,
            horizons: &i.horizons,
            probe_l2: i.probe_l2,
            test_fraction: i.test_fraction,
        })?;
        if i.max_rows < 100 {
            return Err(Invalid::new("inside.max_rows", "must be at least 100"));
        }
        let v = &self.verdict;
        for (key, x) in [
            ("verdict.min_drc_solve", v.min_drc_solve),
            ("verdict.min_gain_over_mlp", v.min_gain_over_mlp),
            ("verdict.min_thinking_gain", v.min_thinking_gain),
            ("verdict.min_probe_margin", v.min_probe_margin),
        ] {
            check_unit(key, x)?;
        }
        if !t.contains(&v.thinking_k) || v.thinking_k == 0 {
            return Err(Invalid::new(
                "verdict.thinking_k",
                format!("must be one of the non-zero thinking.steps ({t:?}), got {}", v.thinking_k),
            ));
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
        let cells = n(self.env.size).saturating_mul(n(self.env.size));
        let block = cells.saturating_mul(n(self.drc.hidden_channels));
        let state = block.saturating_mul(2).saturating_mul(n(self.drc.layers));
        // The rollout (observations and states, f32) and one minibatch's unrolled graph (≈ 12
        // grid tensors per layer tick and row).
        let rollout = Bytes::product(&[n(self.ppo.batch_size()), cells.saturating_mul(4).saturating_add(8), 4]);
        let ticks = n(self.drc.layers).saturating_mul(n(self.drc.ticks));
        let graph = Bytes::product(&[n(self.ppo.minibatch_size()), block, ticks, 12 * 4]);
        let probe_states = Bytes::product(&[n(self.inside.levels), n(self.env.max_steps as usize), state, 4]);
        let keys = [key("ppo.num_envs", self.ppo.num_envs), key("ppo.num_steps", self.ppo.num_steps)];
        Ok(Estimate {
            parts: vec![
                Part::new(Phase::Resident, "rollout buffers", rollout, &keys),
                Part::new(Phase::Step("training"), "one minibatch's unrolled graph", graph, &keys),
                Part::new(
                    Phase::Step("probes"),
                    "recorded states of the probe episodes",
                    probe_states,
                    &[key("inside.levels", self.inside.levels)],
                ),
            ],
            work: Work {
                seeds: self.run.seeds,
                variants: 2,
                train_steps: self.ppo.total_timesteps,
                train_unit: "env steps per arm",
                evaluation: n(self.eval.levels).saturating_mul(2).saturating_mul(n(self.thinking.steps.len())),
                eval_unit: "held-out episodes per seed (levels × splits × thinking steps)",
            },
        })
    }

    fn run(&self, ctx: &RunContext) -> anyhow::Result<serde_json::Value> {
        run(self, ctx)
    }

    fn hook_shapes(&self) -> anyhow::Result<Vec<mesalab_nn::interp::HookShape>> {
        let env = Sokoban::new(self.env.clone())?;
        crate::experiment::recurrent_hook_shapes(&drc_init(self, &env, &Streams::new(Seed(self.run.seed))))
    }

    fn split_env(&self, split: &str) -> anyhow::Result<mesalab_envs::AnyEnv> {
        let params = match split {
            "train" => &self.env,
            "deploy" => &self.deploy,
            other => anyhow::bail!("sokoban-drc has the splits train and deploy, not `{other}`"),
        };
        Ok(mesalab_envs::AnyEnv::new(Sokoban::new(params.clone())?, split, mesalab_envs::params::to_toml(params)))
    }
}

/// One arm's held-out outcome on one split with one number of thinking steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// `drc`, `mlp`, `random`, `solver`.
    pub arm: String,
    /// `None` for the baselines.
    pub seed: Option<u64>,
    pub split: String,
    /// Extra steps before the first action (0 for every arm but the DRC's thinking rows).
    pub thinking: usize,
    /// Levels solved within the time limit.
    pub solved: Rate,
    /// Mean moves of the solved levels minus their optimal lengths (NaN when none was solved).
    #[serde(
        serialize_with = "mesalab_analysis::stats::nan_as_null",
        deserialize_with = "mesalab_analysis::stats::null_as_nan"
    )]
    pub excess_moves: f64,
    /// Episodes that returned to an earlier board within their first 10 moves.
    pub pacing: Rate,
}

/// Everything the run measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub outcomes: Vec<Outcome>,
    pub probes: Vec<ProbeResult>,
    /// Mean optimal length of the held-out levels per split (the solver's moves).
    pub optimal_len: Vec<(String, f64)>,
}

pub const TARGET_BOX: &str = "box pushed off later";

fn obs_shape(env: &Sokoban) -> [usize; 3] {
    let s = &env.spec().obs_shape;
    [s[0], s[1], s[2]]
}

fn drc_init(cfg: &Config, env: &Sokoban, streams: &Streams) -> DrcPolicy {
    DrcPolicy::init(&cfg.drc, obs_shape(env), env.spec().actions.len(), &mut streams.stream("init"), &cpu_autodiff())
}

/// A trained arm of one seed.
enum Trained {
    Drc(Box<DrcPolicy>),
    Mlp(Box<MlpPolicy>),
}

/// Trains arm `arm` (`drc` or `mlp`) of `seed` and saves its weights under `seed-{seed}/`.
/// Resumable: the training state is saved in `seed-{seed}/{arm}-train-state.bin` every
/// `run.checkpoint_every` updates, after the last one and on Ctrl-C, and an earlier attempt's
/// state is continued (a finished training runs no update again).
fn train_seed(cfg: &Config, ctx: &RunContext, seed: u64, arm: &str) -> anyhow::Result<Trained> {
    let env = Sokoban::new(cfg.env.clone())?;
    let streams = Streams::new(Seed(seed));
    let (state, resume) = train_state::arm_state(ctx, seed, arm, &cfg.ppo, cfg.run.checkpoint_every)?;
    let dir = ctx.run_dir.join(format!("seed-{seed}"));
    let path = dir.join(format!("{arm}.safetensors"));
    std::fs::create_dir_all(&dir)?;
    let mut failure: Option<anyhow::Error> = None;
    let (trained, logs) = if arm == "drc" {
        let init = drc_init(cfg, &env, &streams);
        let t = ppo::train_recurrent(&cfg.ppo, env, init, &streams, resume.as_ref(), |log, _, save| {
            state.after_update(ctx, log.update, save, &mut failure)
        })
        .map_err(|e| anyhow::anyhow!("seed {seed}, drc: {e}"))?;
        if let Some(e) = failure {
            return Err(e);
        }
        t.model.save(&path).map_err(anyhow::Error::msg)?;
        (Trained::Drc(Box::new(t.model)), t.logs)
    } else {
        let init = MlpPolicy::init(
            &cfg.mlp,
            env.spec().obs_len(),
            env.spec().actions.len(),
            &mut streams.stream("init"),
            &cpu_autodiff(),
        );
        let t = ppo::train_resumable(&cfg.ppo, env, init, &streams, resume.as_ref(), |log, _, save| {
            state.after_update(ctx, log.update, save, &mut failure)
        })
        .map_err(|e| anyhow::anyhow!("seed {seed}, mlp: {e}"))?;
        if let Some(e) = failure {
            return Err(e);
        }
        t.model.save(&path).map_err(anyhow::Error::msg)?;
        (Trained::Mlp(Box::new(t.model)), t.logs)
    };
    ctx.progress.finish();
    train_state::log_arm_curve(ctx, cfg.run.log_every, (arm, seed), ("solved", sokoban::EV_SOLVED), &logs)?;
    Ok(trained)
}

/// The held-out levels of a split: one stream per level from the run's base seed, a family no
/// training env draws from, so every arm and seed plays the same levels.
pub fn held_out_levels(cfg: &Config, split: &str, n: usize) -> anyhow::Result<(Sokoban, Vec<SokobanState>)> {
    let params = if split == "train" { &cfg.env } else { &cfg.deploy };
    let env = Sokoban::new(params.clone())?;
    let levels = held_out_starts(&env, cfg.run.seed, split, n);
    Ok((env, levels))
}

/// Uniform random moves as a [`Stepper`] (equal logits; [`play`] samples when asked to).
struct RandomStepper(usize);

impl Stepper for RandomStepper {
    fn state_len(&self) -> usize {
        0
    }
    fn step(&self, _: &[f32], starts: &[bool], _: &[f32]) -> (Vec<f32>, Vec<f32>) {
        (vec![0.0; starts.len() * self.0], Vec::new())
    }
}

/// One episode on one held-out level.
#[derive(Clone, Debug, Default)]
pub struct Episode {
    pub solved: bool,
    /// Moves made (the time limit when unsolved).
    pub moves: u32,
    /// The level's optimal length.
    pub optimal: u32,
    /// Returned to an earlier board within the first 10 moves.
    pub pacing: bool,
    /// The player's cell before each move and after the last (`moves + 1` entries).
    pub positions: Vec<Pos>,
    /// The cell a box was pushed off by each move, if any (`moves` entries).
    pub pushes: Vec<Option<Pos>>,
    /// Observation before each move (`moves` × obs_len), when recorded.
    pub obs: Vec<Vec<f32>>,
    /// Carried state after each move's forward pass (`moves` × state_len), when recorded.
    pub states: Vec<Vec<f32>>,
}

/// Plays every level once, all side by side: `thinking` extra steps on the first observation, then
/// greedy moves (uniformly random ones when `random_rng` is given) until solved or timed out.
pub fn play(
    env: &Sokoban,
    levels: &[SokobanState],
    stepper: &dyn Stepper,
    thinking: usize,
    record: bool,
    mut random_rng: Option<&mut mesalab_core::StreamRng>,
) -> Vec<Episode> {
    let (n, obs_len, k) = (levels.len(), env.spec().obs_len(), env.spec().actions.len());
    let mut states: Vec<SokobanState> = levels.to_vec();
    let mut episodes: Vec<Episode> = (states.iter())
        .map(|s| Episode {
            optimal: s.level.optimal_len().unwrap_or(0),
            positions: vec![s.board.player],
            ..Episode::default()
        })
        .collect();
    let mut seen: Vec<Vec<Board>> = states.iter().map(|s| vec![s.board]).collect();
    let mut done = vec![false; n];
    let mut obs = vec![0.0f32; n * obs_len];
    for (s, o) in states.iter().zip(obs.chunks_exact_mut(obs_len)) {
        env.write_obs(s, o);
    }
    let mut carried = think(stepper, &obs, n, thinking);
    let mut unused = Streams::new(Seed(0)).stream("unused"); // sokoban steps draw nothing
    let mut first = thinking == 0;
    while done.iter().any(|d| !d) {
        let (logits, next) = stepper.step(&obs, &vec![first; n], &carried);
        first = false;
        for i in 0..n {
            if done[i] {
                continue;
            }
            let e = &mut episodes[i];
            if record {
                e.obs.push(obs[i * obs_len..(i + 1) * obs_len].to_vec());
                let sl = stepper.state_len();
                e.states.push(next[i * sl..(i + 1) * sl].to_vec());
            }
            let action = match random_rng.as_deref_mut() {
                Some(rng) => rand::Rng::random_range(rng, 0..k),
                None => argmax(&logits[i * k..(i + 1) * k]),
            };
            let before = states[i].board;
            let step = env.step(&mut states[i], action, &mut unused);
            let after = states[i].board;
            e.moves += 1;
            e.positions.push(after.player);
            let pushed = before.boxes().iter().find(|b| !after.has_box(**b)).copied();
            e.pushes.push(pushed);
            if e.moves <= 10 && seen[i].contains(&after) {
                e.pacing = true;
            }
            seen[i].push(after);
            if let Some(end) = step.end {
                e.solved = end == End::Terminated;
                done[i] = true;
            } else {
                env.write_obs(&states[i], &mut obs[i * obs_len..(i + 1) * obs_len]);
            }
        }
        carried = next;
    }
    episodes
}

fn outcome(arm: &str, seed: Option<u64>, split: &str, thinking: usize, episodes: &[Episode]) -> Outcome {
    let solved: Vec<&Episode> = episodes.iter().filter(|e| e.solved).collect();
    let excess = if solved.is_empty() {
        f64::NAN
    } else {
        solved.iter().map(|e| f64::from(e.moves) - f64::from(e.optimal)).sum::<f64>() / solved.len() as f64
    };
    Outcome {
        arm: arm.into(),
        seed,
        split: split.into(),
        thinking,
        solved: Rate::of(episodes, |e| e.solved),
        excess_moves: excess,
        pacing: Rate::of(episodes, |e| e.pacing),
    }
}

/// Outcomes, and the mean optimal length per split.
type Baselines = (Vec<Outcome>, Vec<(String, f64)>);

/// The solver and uniform random on the held-out levels, and the levels' mean optimal length.
fn baselines(cfg: &Config) -> anyhow::Result<Baselines> {
    let mut out = Vec::new();
    let mut optimal = Vec::new();
    for split in ["train", "deploy"] {
        let (env, levels) = held_out_levels(cfg, split, cfg.eval.levels)?;
        // The solver: every level it proves solvable is solved in exactly its optimal length.
        let lens: Vec<Option<u32>> = levels.iter().map(|s| sokoban::solve(&s.level).map(|p| p.len() as u32)).collect();
        let solved = lens.iter().filter(|l| l.is_some()).count() as u64;
        let mean = lens.iter().flatten().map(|&l| f64::from(l)).sum::<f64>() / solved.max(1) as f64;
        out.push(Outcome {
            arm: "solver".into(),
            seed: None,
            split: split.into(),
            thinking: 0,
            solved: Rate::new(solved, levels.len() as u64),
            excess_moves: 0.0,
            pacing: Rate::new(0, levels.len() as u64),
        });
        optimal.push((split.to_string(), mean));
        let mut rng = Streams::new(Seed(cfg.run.seed)).stream("baseline-actions");
        let episodes = play(&env, &levels, &RandomStepper(env.spec().actions.len()), 0, false, Some(&mut rng));
        out.push(outcome("random", None, split, 0, &episodes));
    }
    Ok((out, optimal))
}

/// One trained arm of one seed on both splits (the DRC at every thinking-step count, the MLP
/// without), and the probe episodes (the DRC's, no thinking steps, states recorded; empty for
/// the MLP).
fn evaluate_arm(cfg: &Config, seed: u64, trained: &Trained) -> anyhow::Result<(Vec<Outcome>, Vec<Episode>)> {
    let mut out = Vec::new();
    let mut probe_episodes = Vec::new();
    for split in ["train", "deploy"] {
        let (env, levels) = held_out_levels(cfg, split, cfg.eval.levels)?;
        match trained {
            Trained::Drc(drc) => {
                let drc = drc.valid();
                for &k in &cfg.thinking.steps {
                    let record = cfg.inside.enabled && k == 0 && split == "train";
                    let episodes = play(&env, &levels, &RecurrentStepper(&drc), k, record, None);
                    if record {
                        probe_episodes = episodes[..cfg.inside.levels].to_vec();
                    }
                    out.push(outcome("drc", Some(seed), split, k, &episodes));
                }
            }
            Trained::Mlp(mlp) => {
                let episodes = play(&env, &levels, &FeedForwardStepper(&mlp.valid()), 0, false, None);
                out.push(outcome("mlp", Some(seed), split, 0, &episodes));
            }
        }
    }
    Ok((out, probe_episodes))
}

/// One (seed, arm) job: train, play the held-out levels, and (DRC, `inside.enabled`) fit the
/// plan probes. Evaluation runs inside the job so that it, too, uses every worker.
fn arm_job(cfg: &Config, ctx: &RunContext, seed: u64, arm: &str) -> anyhow::Result<(Vec<Outcome>, Vec<ProbeResult>)> {
    let trained = train_seed(cfg, ctx, seed, arm)?;
    ctx.progress.start(&format!("seed {seed}, {arm}: evaluating"), 1);
    let (outcomes, episodes) = evaluate_arm(cfg, seed, &trained)?;
    let probes = if cfg.inside.enabled && matches!(trained, Trained::Drc(_)) {
        ctx.progress.message("plan probes");
        plan_probes(cfg, seed, &episodes)?
    } else {
        Vec::new()
    };
    ctx.progress.finish();
    Ok((outcomes, probes))
}

/// Probe rows: (episode, move, free square) for every move of every probe episode.
struct Rows {
    /// `(episode, t, y, x)`.
    keys: Vec<(usize, usize, usize, usize)>,
    /// The targets' labels, one vector per target, aligned with `keys`.
    labels: Vec<(String, Vec<bool>)>,
    split: Split,
}

/// Builds the probe rows and labels, subsampled to `max_rows` from a fixed stream, split by level.
fn probe_rows(cfg: &Config, env: &Sokoban, episodes: &[Episode], seed: u64) -> Rows {
    let [_, h, w] = obs_shape(env);
    let walls = |e: &Episode, y: usize, x: usize| e.obs[0][y * w + x] > 0.5; // channel 0 is `wall`
    let mut keys = Vec::new();
    for (ei, e) in episodes.iter().enumerate() {
        for t in 0..e.moves as usize {
            for y in 0..h {
                for x in 0..w {
                    if !walls(e, y, x) {
                        keys.push((ei, t, y, x));
                    }
                }
            }
        }
    }
    let mut rng = Streams::new(Seed(seed)).stream("probe-rows");
    keys.shuffle(&mut rng);
    keys.truncate(cfg.inside.max_rows);
    keys.sort_unstable();
    let at = |p: Pos, y: usize, x: usize| p.y == y as i32 && p.x == x as i32;
    let mut labels = Vec::new();
    let horizon_label = |hz: Option<usize>| -> Vec<bool> {
        (keys.iter())
            .map(|&(ei, t, y, x)| {
                let pos = &episodes[ei].positions;
                let end = hz.map_or(pos.len(), |hz| (t + 1 + hz).min(pos.len()));
                pos[t + 1..end].iter().any(|&p| at(p, y, x))
            })
            .collect()
    };
    for &hz in &cfg.inside.horizons {
        labels.push((target_within(hz), horizon_label(Some(hz))));
    }
    labels.push((TARGET_LATER.to_string(), horizon_label(None)));
    let boxes = (keys.iter())
        .map(|&(ei, t, y, x)| episodes[ei].pushes[t + 1..].iter().flatten().any(|&p| at(p, y, x)))
        .collect();
    labels.push((TARGET_BOX.to_string(), boxes));
    let test_from = ((1.0 - cfg.inside.test_fraction) * episodes.len() as f64).round() as usize;
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (i, &(ei, ..)) in keys.iter().enumerate() {
        if ei < test_from { train.push(i) } else { test.push(i) }
    }
    Rows { keys, labels, split: Split { train, test } }
}

/// Every plan probe of one seed: each layer's `h` and `c` of the trained DRC and of its untrained
/// twin, and the observation window, for every target.
fn plan_probes(cfg: &Config, seed: u64, episodes: &[Episode]) -> anyhow::Result<Vec<ProbeResult>> {
    let env = Sokoban::new(cfg.env.clone())?;
    let [c, h, w] = obs_shape(&env);
    let twin = drc_init(cfg, &env, &Streams::new(Seed(seed))).valid();
    let twin = replay_states(&RecurrentStepper(&twin), episodes.iter().map(|e| e.obs.as_slice()));
    let rows = probe_rows(cfg, &env, episodes, seed);
    let spec = mesalab_nn::policy::drc::DrcSpec { obs_shape: [c, h, w], num_actions: 4, config: cfg.drc.clone() };
    let hidden = cfg.drc.hidden_channels;
    let mut rng = Streams::new(Seed(seed)).stream("probe-controls");
    let mut out = Vec::new();
    let mut push = |features: &str, hook: &str, x: &DMatrix<f64>, shuffled: bool| {
        for (target, labels) in &rows.labels {
            let (auroc, f1, control) = score_probe(cfg.inside.probe_l2, x, labels, &rows.split, shuffled, &mut rng);
            let positives =
                rows.split.test.iter().filter(|&&i| labels[i]).count() as f64 / rows.split.test.len().max(1) as f64;
            out.push(ProbeResult {
                seed,
                features: features.into(),
                hook: hook.into(),
                target: target.clone(),
                auroc,
                f1,
                shuffled: control,
                positives,
                n_test: rows.split.test.len(),
            });
        }
    };
    for d in 0..cfg.drc.layers {
        for (cell, name) in [(false, "h"), (true, "c")] {
            let offset = spec.block_offset(d, cell);
            let hook = format!("drc.{d}.hook_{name}");
            // Row r: the `hidden` channels of the block at the row's square, stride H·W.
            let grid = |value: &dyn Fn(usize, usize, usize) -> f32| {
                DMatrix::from_fn(rows.keys.len(), hidden, |r, ch| {
                    let (ei, t, y, x) = rows.keys[r];
                    f64::from(value(ei, t, offset + (ch * h + y) * w + x))
                })
            };
            push("trained", &hook, &grid(&|ei, t, j| episodes[ei].states[t][j]), true);
            push("untrained", &hook, &grid(&|ei, t, j| twin[ei][t][j]), false);
        }
    }
    // The observation's 5 × 5 window around the square (zero outside the grid): C·25 features.
    let window = DMatrix::from_fn(rows.keys.len(), c * 25, |r, j| {
        let (ei, t, y, x) = rows.keys[r];
        let (ch, dy, dx) = (j / 25, (j % 25) / 5, j % 5);
        let (yy, xx) = (y as i64 + dy as i64 - 2, x as i64 + dx as i64 - 2);
        if yy < 0 || xx < 0 || yy >= h as i64 || xx >= w as i64 {
            return 0.0;
        }
        f64::from(episodes[ei].obs[t][(ch * h + yy as usize) * w + xx as usize])
    });
    push("observation", "obs", &window, false);
    Ok(out)
}

/// Runs the experiment; returns the JSON of `summary.json`.
pub fn run(cfg: &Config, ctx: &RunContext) -> anyhow::Result<serde_json::Value> {
    let started = std::time::Instant::now();
    let (outcomes, optimal_len) = baselines(cfg)?;
    let mut r = Results { outcomes, probes: Vec::new(), optimal_len };
    let seeds = cfg.run.seed_list();
    // Jobs: (seed, arm) pairs, the slow DRC arms first so the threads finish together.
    let jobs: Vec<(u64, &str)> = (seeds.iter().map(|&s| (s, "drc"))).chain(seeds.iter().map(|&s| (s, "mlp"))).collect();
    // Results in job order (DRC seeds, then MLP seeds), whatever `--jobs` is.
    for (outcomes, probes) in
        crate::jobs::run_jobs(ctx, jobs.len(), |worker, i| arm_job(cfg, worker, jobs[i].0, jobs[i].1))?
    {
        r.outcomes.extend(outcomes);
        r.probes.extend(probes);
    }
    let v = verdict(cfg, &r);
    crate::experiment::store_summary(ctx, "sokoban-drc", &seeds, &r, started, &v)
}

/// Per-seed values of `f` over the outcomes matching `arm`, `split` and `thinking`.
fn per_seed(r: &Results, arm: &str, split: &str, thinking: usize) -> Vec<(u64, f64)> {
    (r.outcomes.iter())
        .filter(|o| o.arm == arm && o.split == split && o.thinking == thinking)
        .filter_map(|o| o.seed.map(|s| (s, o.solved.rate)))
        .collect()
}

/// The best trained layer's probe AUROC for `target` minus the better control, per seed.
pub fn probe_margins(r: &Results, target: &str) -> Vec<(u64, f64)> {
    margins_over_controls(&r.probes, target)
}

/// The claim: the DRC solves held-out training-distribution levels, better than an MLP with the
/// same PPO budget; extra thinking steps raise its solve rate on longer plans; and its state
/// predicts where it will go better than its untrained twin or the observation can.
pub fn verdict(cfg: &Config, r: &Results) -> Verdict {
    let v = &cfg.verdict;
    let mut checks = Vec::new();
    let drc = per_seed(r, "drc", "train", 0);
    checks.push(Check::worst_seed(
        "drc: held-out solve rate, train split",
        Bound::AtLeast(v.min_drc_solve),
        drc.clone(),
    ));
    let mlp = per_seed(r, "mlp", "train", 0);
    let gain: Vec<(u64, f64)> =
        (drc.iter()).map(|&(s, d)| (s, mlp.iter().find(|m| m.0 == s).map_or(f64::NAN, |m| d - m.1))).collect();
    checks.push(Check::worst_seed(
        "drc minus mlp: held-out solve rate, train split",
        Bound::AtLeast(v.min_gain_over_mlp),
        gain,
    ));
    let base = per_seed(r, "drc", "deploy", 0);
    let think = per_seed(r, "drc", "deploy", v.thinking_k);
    let thinking_gain: Vec<(u64, f64)> =
        (base.iter()).map(|&(s, b)| (s, think.iter().find(|t| t.0 == s).map_or(f64::NAN, |t| t.1 - b))).collect();
    checks.push(Check::worst_seed(
        format!("drc: deploy solve rate with {} thinking steps minus none", v.thinking_k),
        Bound::AtLeast(v.min_thinking_gain),
        thinking_gain,
    ));
    let solver = (r.outcomes.iter())
        .filter(|o| o.arm == "solver")
        .map(|o| o.solved.rate)
        .fold(f64::NAN, |m, x| if m.is_nan() || x < m { x } else { m });
    checks.push(Check::pooled("solver: held-out levels solvable (checks the env)", Bound::AtLeast(1.0), solver));
    if cfg.inside.enabled {
        checks.push(Check::worst_seed(
            "plan probe (agent later): best layer AUROC minus the better of untrained twin and observation window",
            Bound::AtLeast(v.min_probe_margin),
            probe_margins(r, TARGET_LATER),
        ));
    }
    checks.push(Check::seeds(v.min_seeds, cfg.run.seed_list().len()));
    Verdict::new(
        "a DRC agent trained by recurrent PPO solves held-out Sokoban levels better than an MLP, improves with thinking steps, and its state predicts its future path",
        "an MLP trained with the same PPO settings and env steps, uniform random and the exact solver on the same held-out levels; zero thinking steps; the untrained twin on the same observations, a 5×5 observation-window probe and shuffled labels for the probes",
        checks,
    )
}

#[cfg(test)]
mod tests;
