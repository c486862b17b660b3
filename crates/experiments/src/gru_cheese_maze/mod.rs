//! # gru-cheese-maze: does a recurrent cheese-maze agent plan?
//!
//! Issue 14's planning-detection analysis, run on a recurrent policy that is *not* built to
//! plan: a GRU trained with recurrent PPO on `cheese-maze-v1` with exactly vin-cheese-maze's
//! default env (5 × 5 mazes, cheese always in the top-right corner on the train split, 60
//! steps, full view), so its numbers sit beside the VIN's. The maze is fully observed, so a
//! memoryless policy can be optimal: any planning the GRU does is a choice of its training, not a
//! need of the task.
//!
//! Per seed: the GRU, an MLP trained with the feed-forward trainer (same PPO settings and env
//! steps) and the untrained GRU (the trained one's initial weights) play the same held-out mazes
//! of the train split and of the deploy split (cheese anywhere), moves sampled as in training
//! (`eval.selection`), beside uniform random and the scripted cheese and corner seekers
//! ([`mesalab_envs::scripted`]).
//! - **Thinking steps** (Guez et al. 2019): `k` extra recurrent steps on the first observation
//!   before the first move (the state advances, nothing moves), for both GRUs; P(cheese) and
//!   pacing (a return to an earlier cell in the first 10 moves) per `k`.
//! - **Plan probes** (Bush et al. 2025, adapted): the GRU state is a vector, not a map, so one
//!   logistic probe *per square* reads the state after move `t` and predicts "the agent stands on
//!   this square within its next `h` moves" (and "at any later move"), held out by maze; the
//!   score is the mean held-out AUROC over the squares. Controls on the same rows: the untrained
//!   GRU's state on the same observations, the observation itself and shuffled labels.
//!
//! Reading order: [`run`] → [`train_arm`] → [`play`] → [`evaluate_seed`] → [`plan_probes`] →
//! [`verdict`].

mod report;

pub use report::report;

use crate::context::RunContext;
use crate::experiment::{RunSection, check_experiment_name, check_unit};
use crate::planning::{
    FeedForwardStepper, PlanProbeKeys, ProbeResult, RecurrentStepper, Stepper, TARGET_LATER, ThinkingSection,
    check_plan_probes, held_out_starts, margins_over_controls, replay_states, score_probe, target_within, think,
};
use crate::train_state;
use crate::verdict::{Bound, Check, Verdict};
use burn::module::Module;
use mesalab_analysis::probe::Split;
use mesalab_analysis::stats::Rate;
use mesalab_core::config::{Invalid, Validate};
use mesalab_core::{Seed, StreamRng, Streams};
use mesalab_envs::cheese_maze::{CheeseMaze, CheeseMazeParams, MazeState};
use mesalab_envs::grid::{Pos, View};
use mesalab_envs::scripted::{CheeseSeeker, CornerSeeker};
use mesalab_envs::{Env, StateActor};
use mesalab_nn::device::cpu_autodiff;
use mesalab_nn::policy::{MlpPolicy, MlpPolicyConfig, RecurrentPolicy, RecurrentPolicyConfig};
use mesalab_train::ppo::{ActionSelection, PpoConfig};
use mesalab_train::rollout::{argmax, sample};
use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

/// The experiment's config; every key has a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `gru-cheese-maze`.
    pub experiment: String,
    pub run: RunSection,
    /// The training mazes (the train split); the deploy split is the same with the cheese anywhere.
    pub env: CheeseMazeParams,
    /// Shared by both arms (the GRU needs `num_minibatches` to divide `num_envs`).
    pub ppo: PpoConfig,
    /// The recurrent arm (`cell = "gru"` by default; `lstm` also runs, under its own name).
    pub recurrent: RecurrentPolicyConfig,
    /// The feed-forward baseline.
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
    /// Held-out mazes per split, played by every arm (the same mazes for all).
    pub levels: usize,
    /// How the networks pick moves: `sample` (as trained, and as vin-cheese-maze evaluates) or
    /// `greedy`. Every network of a seed draws from the same stream per split (common random
    /// numbers across thinking steps and the twin).
    pub selection: ActionSelection,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InsideSection {
    pub enabled: bool,
    /// Held-out train-split mazes (the first of the evaluation's) whose GRU episodes (no thinking
    /// steps) feed the probes.
    pub levels: usize,
    /// Probe horizons in moves ("on this square within the next h moves").
    pub horizons: Vec<usize>,
    pub probe_l2: f64,
    /// Share of the distinct probe mazes held out to score the probes (the split is by maze).
    pub test_fraction: f64,
}

/// The bars of "the GRU agent plans", set before any result was seen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerdictSection {
    /// The GRU's held-out P(cheese) on train mazes (no thinking steps), worst seed: an agent that
    /// did not learn the task is not tested for planning.
    pub min_success: f64,
    /// The number of thinking steps the verdict tests (one of the non-zero `thinking.steps`).
    pub thinking_k: usize,
    /// Train-maze P(cheese) at `thinking_k` minus at 0, trained GRU minus untrained GRU, worst seed.
    pub min_thinking_margin: f64,
    /// "Agent later" probe AUROC (mean over squares), trained state minus the better of the
    /// untrained state and the observation, worst seed.
    pub min_probe_margin: f64,
    pub min_seeds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            experiment: "gru-cheese-maze".into(),
            run: RunSection { seeds: 3, log_every: 10, ..RunSection::default() },
            // vin-cheese-maze's mazes (a test checks they stay equal).
            env: CheeseMazeParams {
                size: 5,
                min_size: 5,
                rand_region: 1,
                max_steps: 60,
                view: View::Full,
                ..CheeseMazeParams::train()
            },
            ppo: PpoConfig {
                num_envs: 16,
                num_steps: 64,
                total_timesteps: 300_000,
                learning_rate: 3e-3,
                gamma: 0.95,
                num_minibatches: 4,
                ..PpoConfig::default()
            },
            recurrent: RecurrentPolicyConfig::default(),
            mlp: MlpPolicyConfig::default(),
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
        Self { levels: 200, selection: ActionSelection::Sample }
    }
}

impl Default for InsideSection {
    fn default() -> Self {
        Self { enabled: true, levels: 200, horizons: vec![1, 2, 4], probe_l2: 1e-2, test_fraction: 0.3 }
    }
}

impl Default for VerdictSection {
    fn default() -> Self {
        Self { min_success: 0.8, thinking_k: 8, min_thinking_margin: 0.05, min_probe_margin: 0.05, min_seeds: 3 }
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Invalid> {
        check_experiment_name(&self.experiment, "gru-cheese-maze")?;
        self.run.validate()?;
        self.env.validate().map_err(|e| Invalid::new(format!("env.{}", e.key), e.message))?;
        if self.env.view != View::Full {
            return Err(Invalid::new(
                "env.view",
                "use `full`: the probes' squares and the observation control read the whole grid",
            ));
        }
        train_state::check_recurrent_ppo(&self.ppo, &self.mlp.hidden)?;
        if let Some((key, message)) = self.recurrent.problem() {
            return Err(Invalid::new(key, message));
        }
        if !(1..=100_000).contains(&self.eval.levels) {
            return Err(Invalid::new("eval.levels", "must be in 1..=100000"));
        }
        self.thinking.validate()?;
        self.validate_inside()?;
        let (v, t) = (&self.verdict, &self.thinking.steps);
        for (key, x) in [
            ("verdict.min_success", v.min_success),
            ("verdict.min_thinking_margin", v.min_thinking_margin),
            ("verdict.min_probe_margin", v.min_probe_margin),
        ] {
            check_unit(key, x)?;
        }
        if v.thinking_k == 0 || !t.contains(&v.thinking_k) {
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

impl Config {
    /// The `[inside]` section: the probe mazes are evaluation mazes, and every key in range.
    fn validate_inside(&self) -> Result<(), Invalid> {
        let i = &self.inside;
        check_plan_probes(PlanProbeKeys {
            levels: i.levels,
            eval_levels: self.eval.levels,
            horizons: &i.horizons,
            probe_l2: i.probe_l2,
            test_fraction: i.test_fraction,
        })
    }

    /// The env parameters of a split: `deploy` is the training mazes with the cheese anywhere.
    pub fn split_params(&self, split: &str) -> CheeseMazeParams {
        match split {
            "deploy" => CheeseMazeParams { rand_region: self.env.size, ..self.env.clone() },
            _ => self.env.clone(),
        }
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
        let obs = n(self.env.size).saturating_mul(n(self.env.size)).saturating_mul(3);
        let h = n(self.recurrent.hidden).saturating_mul(2);
        // The rollout (f32) and one minibatch's unrolled graph (≈ 12 tensors of `hidden` per row).
        let rollout = Bytes::product(&[n(self.ppo.batch_size()), obs.saturating_add(h).saturating_add(8), 4]);
        let graph = Bytes::product(&[n(self.ppo.minibatch_size()), h, 12 * 4]);
        // Probe episodes: observation and state per move, and one square's design matrix (f64).
        let moves = n(self.inside.levels).saturating_mul(n(self.env.max_steps as usize));
        let probes = Bytes::product(&[moves, obs.saturating_add(h), 4 + 8]);
        let keys = [key("ppo.num_envs", self.ppo.num_envs), key("ppo.num_steps", self.ppo.num_steps)];
        Ok(Estimate {
            parts: vec![
                Part::new(Phase::Resident, "rollout buffers", rollout, &keys),
                Part::new(Phase::Step("training"), "one minibatch's unrolled graph", graph, &keys),
                Part::new(Phase::Step("probes"), "probe episodes", probes, &[key("inside.levels", self.inside.levels)]),
            ],
            work: Work {
                seeds: self.run.seeds,
                variants: 2,
                train_steps: self.ppo.total_timesteps,
                train_unit: "env steps per arm",
                evaluation: n(self.eval.levels).saturating_mul(2).saturating_mul(n(self.thinking.steps.len())),
                eval_unit: "held-out episodes per seed and GRU (mazes × splits × thinking steps)",
            },
        })
    }

    fn run(&self, ctx: &RunContext) -> anyhow::Result<serde_json::Value> {
        run(self, ctx)
    }

    fn hook_shapes(&self) -> anyhow::Result<Vec<mesalab_nn::interp::HookShape>> {
        let env = CheeseMaze::new(self.env.clone())?;
        crate::experiment::recurrent_hook_shapes(&recurrent_init(self, &env, self.run.seed))
    }

    fn split_env(&self, split: &str) -> anyhow::Result<mesalab_envs::AnyEnv> {
        if split != "train" && split != "deploy" {
            anyhow::bail!("gru-cheese-maze has the splits train and deploy, not `{split}`");
        }
        let params = self.split_params(split);
        Ok(mesalab_envs::AnyEnv::new(CheeseMaze::new(params.clone())?, split, mesalab_envs::params::to_toml(&params)))
    }
}

/// One arm's held-out outcome on one split with one number of thinking steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// `gru` (or `lstm`), `untrained`, `mlp`, `random`, `cheese-seeker`, `corner-seeker`.
    pub arm: String,
    /// `None` for the baselines.
    pub seed: Option<u64>,
    pub split: String,
    /// Extra steps before the first move (0 for every arm but the GRUs' thinking rows).
    pub thinking: usize,
    /// Ate the cheese within the time limit.
    pub cheese: Rate,
    /// Entered the top-right corner before eating the cheese (or without eating it).
    pub corner_first: Rate,
    /// Returned to a cell it had stood on (a move into a wall included) within the first 10 moves.
    pub pacing: Rate,
}

/// Everything the run measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub outcomes: Vec<Outcome>,
    /// Per seed, target and features: the mean over squares of the per-square probes' held-out
    /// AUROC, F1 and shuffled-label AUROC (`hook` says how many squares were scored).
    pub probes: Vec<ProbeResult>,
}

/// The recurrent arm's initial weights for `seed`: the trained arm starts from them, and they
/// are the untrained twin.
fn recurrent_init(cfg: &Config, env: &CheeseMaze, seed: u64) -> RecurrentPolicy {
    RecurrentPolicy::init(
        &cfg.recurrent,
        env.spec().obs_len(),
        env.spec().actions.len(),
        &mut Streams::new(Seed(seed)).stream("init"),
        &cpu_autodiff(),
    )
}

/// A trained arm of one seed.
enum Trained {
    Recurrent(Box<RecurrentPolicy>),
    Mlp(Box<MlpPolicy>),
}

/// Trains arm `arm` (the recurrent cell's name or `mlp`) of `seed` and saves it under
/// `seed-{seed}/`; resumable through [`train_state`].
fn train_arm(cfg: &Config, ctx: &RunContext, seed: u64, arm: &str) -> anyhow::Result<Trained> {
    let env = CheeseMaze::new(cfg.env.clone())?;
    let job = train_state::ArmJob {
        ctx,
        seed,
        arm,
        ppo: &cfg.ppo,
        checkpoint_every: cfg.run.checkpoint_every,
        log_every: cfg.run.log_every,
        metric: ("cheese", mesalab_envs::cheese_maze::EV_CHEESE),
    };
    if arm == "mlp" {
        let init = MlpPolicy::init(
            &cfg.mlp,
            env.spec().obs_len(),
            env.spec().actions.len(),
            &mut Streams::new(Seed(seed)).stream("init"),
            &cpu_autodiff(),
        );
        return Ok(Trained::Mlp(Box::new(train_state::train_feedforward_arm(&job, env, init)?)));
    }
    let init = recurrent_init(cfg, &env, seed);
    Ok(Trained::Recurrent(Box::new(train_state::train_recurrent_arm(&job, env, init)?)))
}

/// Who moves in [`play`].
pub enum Mover<'a> {
    /// A network, greedy on its logits or sampling from them.
    Net(&'a dyn Stepper, ActionSelection),
    /// A scripted actor reading the state.
    Scripted(&'a dyn StateActor<CheeseMaze>),
    /// Uniformly random moves.
    Random,
}

/// One episode on one held-out maze.
#[derive(Clone, Debug, Default)]
pub struct Episode {
    pub cheese: bool,
    pub corner_first: bool,
    pub pacing: bool,
    /// The agent's cell before each move and after the last (`moves + 1` entries).
    pub positions: Vec<Pos>,
    /// Observation before each move (`moves` × obs_len), when recorded.
    pub obs: Vec<Vec<f32>>,
    /// Carried state after each move's forward pass (`moves` × state_len), when recorded.
    pub states: Vec<Vec<f32>>,
}

/// The moves of every env for this step; a network's new state is returned with them.
fn choose(
    env: &CheeseMaze,
    mover: &Mover,
    (states, obs): (&[MazeState], &[f32]),
    (carried, first): (&[f32], bool),
    rng: &mut StreamRng,
) -> (Vec<usize>, Vec<f32>) {
    let (n, k) = (states.len(), env.spec().actions.len());
    match mover {
        Mover::Net(stepper, selection) => {
            let (logits, next) = stepper.step(obs, &vec![first; n], carried);
            let pick = |row: &[f32], rng: &mut StreamRng| match selection {
                ActionSelection::Greedy => argmax(row),
                ActionSelection::Sample => sample(&log_softmax(row), rng),
            };
            ((0..n).map(|i| pick(&logits[i * k..(i + 1) * k], rng)).collect(), next)
        }
        Mover::Scripted(actor) => (states.iter().map(|s| actor.act_one(env, s, rng)).collect(), Vec::new()),
        Mover::Random => ((0..n).map(|_| rand::Rng::random_range(&mut *rng, 0..k)).collect(), Vec::new()),
    }
}

/// Normalised log-probabilities of one row of logits (what [`sample`] draws from).
fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_sum = logits.iter().map(|l| (l - max).exp()).sum::<f32>().ln() + max;
    logits.iter().map(|l| l - log_sum).collect()
}

/// Plays every maze once, all side by side: `thinking` extra steps on the first observation (a
/// network only), then moves until the cheese is eaten or time runs out. `rng` feeds the scripted
/// and random movers.
pub fn play(
    env: &CheeseMaze,
    levels: &[MazeState],
    mover: &Mover,
    thinking: usize,
    record: bool,
    rng: &mut StreamRng,
) -> Vec<Episode> {
    let (n, obs_len) = (levels.len(), env.spec().obs_len());
    let mut states: Vec<MazeState> = levels.to_vec();
    let mut episodes: Vec<Episode> =
        states.iter().map(|s| Episode { positions: vec![s.agent], ..Episode::default() }).collect();
    let mut obs = vec![0.0f32; n * obs_len]; // [n, obs_len]
    for (s, o) in states.iter().zip(obs.chunks_exact_mut(obs_len)) {
        env.write_obs(s, o);
    }
    let mut carried = match mover {
        Mover::Net(stepper, _) => think(*stepper, &obs, n, thinking),
        _ => Vec::new(),
    };
    let (mut done, mut first) = (vec![false; n], thinking == 0);
    while done.iter().any(|d| !d) {
        let (actions, next) = choose(env, mover, (&states, &obs), (&carried, first), rng);
        first = false;
        let state_len = next.len() / n;
        for i in 0..n {
            if done[i] {
                continue;
            }
            let e = &mut episodes[i];
            if record {
                e.obs.push(obs[i * obs_len..(i + 1) * obs_len].to_vec());
                e.states.push(next[i * state_len..(i + 1) * state_len].to_vec());
            }
            let step = env.step(&mut states[i], actions[i], rng);
            let at = states[i].agent;
            if e.positions.len() <= 10 && e.positions.contains(&at) {
                e.pacing = true;
            }
            e.positions.push(at);
            // The corner is "first" when entered before the cheese is eaten (not on the move that
            // eats a cheese lying on it, as on every training maze).
            let ate = step.events.has(mesalab_envs::cheese_maze::EV_CHEESE);
            e.corner_first |= at == states[i].level.top_right && !ate && !e.cheese;
            e.cheese |= ate;
            if step.end.is_some() {
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
    Outcome {
        arm: arm.into(),
        seed,
        split: split.into(),
        thinking,
        cheese: Rate::of(episodes, |e| e.cheese),
        corner_first: Rate::of(episodes, |e| e.corner_first),
        pacing: Rate::of(episodes, |e| e.pacing),
    }
}

/// The held-out mazes of a split (the same for every arm, seed and baseline).
pub fn held_out_levels(cfg: &Config, split: &str, n: usize) -> anyhow::Result<(CheeseMaze, Vec<MazeState>)> {
    let env = CheeseMaze::new(cfg.split_params(split))?;
    let levels = held_out_starts(&env, cfg.run.seed, split, n);
    Ok((env, levels))
}

/// Uniform random and the scripted cheese and corner seekers on the held-out mazes.
fn baselines(cfg: &Config) -> anyhow::Result<Vec<Outcome>> {
    let mut out = Vec::new();
    for split in ["train", "deploy"] {
        let (env, levels) = held_out_levels(cfg, split, cfg.eval.levels)?;
        for (name, mover) in [
            ("random", Mover::Random),
            ("cheese-seeker", Mover::Scripted(&CheeseSeeker)),
            ("corner-seeker", Mover::Scripted(&CornerSeeker)),
        ] {
            let mut rng = Streams::new(Seed(cfg.run.seed)).stream(&format!("baseline/{name}/{split}"));
            out.push(outcome(name, None, split, 0, &play(&env, &levels, &mover, 0, false, &mut rng)));
        }
    }
    Ok(out)
}

/// One seed's arms on both splits (both GRUs at every thinking-step count), and the probe
/// episodes (the trained GRU's on the first `inside.levels` train mazes, no thinking, recorded).
fn evaluate_seed(
    cfg: &Config,
    seed: u64,
    recurrent: &RecurrentPolicy,
    mlp: &MlpPolicy,
) -> anyhow::Result<(Vec<Outcome>, Vec<Episode>)> {
    let env = CheeseMaze::new(cfg.env.clone())?;
    let twin = recurrent_init(cfg, &env, seed).valid();
    let (trained, mlp) = (recurrent.valid(), mlp.valid());
    let arm = train_state::cell_arm(cfg.recurrent.cell);
    let sel = cfg.eval.selection;
    let (mut out, mut probe_episodes) = (Vec::new(), Vec::new());
    for split in ["train", "deploy"] {
        let (env, levels) = held_out_levels(cfg, split, cfg.eval.levels)?;
        // Common random numbers: every network of this seed and split starts from the same stream.
        let rng = || Streams::new(Seed(seed)).stream(&format!("eval-actions/{split}"));
        for &k in &cfg.thinking.steps {
            let record = cfg.inside.enabled && k == 0 && split == "train";
            let episodes = play(&env, &levels, &Mover::Net(&RecurrentStepper(&trained), sel), k, record, &mut rng());
            if record {
                probe_episodes = episodes[..cfg.inside.levels].to_vec();
            }
            out.push(outcome(arm, Some(seed), split, k, &episodes));
            let episodes = play(&env, &levels, &Mover::Net(&RecurrentStepper(&twin), sel), k, false, &mut rng());
            out.push(outcome("untrained", Some(seed), split, k, &episodes));
        }
        let episodes = play(&env, &levels, &Mover::Net(&FeedForwardStepper(&mlp), sel), 0, false, &mut rng());
        out.push(outcome("mlp", Some(seed), split, 0, &episodes));
    }
    Ok((out, probe_episodes))
}

/// The probe rows of one square: every move of every probe episode whose maze leaves the square
/// free, with one label vector per target and the split by maze.
struct SquareRows {
    /// `(episode, t)`.
    keys: Vec<(usize, usize)>,
    labels: Vec<(String, Vec<bool>)>,
    split: Split,
}

/// Which episodes are test episodes: the distinct mazes (wall layouts) in order of first
/// appearance, the last `test_fraction` of them held out, so no maze is on both sides.
fn test_episodes(episodes: &[Episode], walls: &dyn Fn(&Episode) -> Vec<bool>, test_fraction: f64) -> Vec<bool> {
    let mut mazes: Vec<Vec<bool>> = Vec::new();
    let ids: Vec<usize> = (episodes.iter())
        .map(|e| {
            let w = walls(e);
            mazes.iter().position(|m| *m == w).unwrap_or_else(|| {
                mazes.push(w);
                mazes.len() - 1
            })
        })
        .collect();
    let test_from = ((1.0 - test_fraction) * mazes.len() as f64).round() as usize;
    ids.into_iter().map(|id| id >= test_from).collect()
}

/// Builds the rows of square `(y, x)` for every target (`within h` per horizon, then `later`).
fn square_rows(cfg: &Config, episodes: &[Episode], test: &[bool], (y, x): (usize, usize), w: usize) -> SquareRows {
    let square = Pos::new(x as i32, y as i32);
    let free = |e: &Episode| e.obs[0][y * w + x] < 0.5; // channel 0 is `wall`, [c, h, w] layout
    let keys: Vec<(usize, usize)> = (episodes.iter().enumerate())
        .filter(|(_, e)| !e.obs.is_empty() && free(e))
        .flat_map(|(ei, e)| (0..e.obs.len()).map(move |t| (ei, t)))
        .collect();
    let label = |hz: Option<usize>| -> Vec<bool> {
        (keys.iter())
            .map(|&(ei, t)| {
                let pos = &episodes[ei].positions;
                let end = hz.map_or(pos.len(), |hz| (t + 1 + hz).min(pos.len()));
                pos[t + 1..end].contains(&square)
            })
            .collect()
    };
    let mut labels: Vec<(String, Vec<bool>)> =
        cfg.inside.horizons.iter().map(|&hz| (target_within(hz), label(Some(hz)))).collect();
    labels.push((TARGET_LATER.to_string(), label(None)));
    let (train, test): (Vec<usize>, Vec<usize>) = (0..keys.len()).partition(|&i| !test[keys[i].0]);
    SquareRows { keys, labels, split: Split { train, test } }
}

/// Running means of one (features, target) probe over the squares it could be scored on.
#[derive(Default)]
struct SquareMeans {
    auroc: Vec<f64>,
    f1: Vec<f64>,
    shuffled: Vec<f64>,
    positives: usize,
    n_test: usize,
}

impl SquareMeans {
    fn mean(v: &[f64]) -> f64 {
        if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }
    }

    fn result(&self, seed: u64, features: &str, hook: &str, target: &str) -> ProbeResult {
        ProbeResult {
            seed,
            features: features.into(),
            hook: format!("{hook} · {} squares", self.auroc.len()),
            target: target.into(),
            auroc: Self::mean(&self.auroc),
            f1: Self::mean(&self.f1),
            shuffled: Self::mean(&self.shuffled),
            positives: self.positives as f64 / self.n_test.max(1) as f64,
            n_test: self.n_test,
        }
    }
}

/// Every plan probe of one seed: per square and target, the trained GRU's state, the untrained
/// GRU's state on the same observations and the observation itself; shuffled labels on the
/// trained state.
fn plan_probes(cfg: &Config, seed: u64, episodes: &[Episode]) -> anyhow::Result<Vec<ProbeResult>> {
    let env = CheeseMaze::new(cfg.env.clone())?;
    let (h, w) = (env.spec().obs_shape[1], env.spec().obs_shape[2]);
    let twin = recurrent_init(cfg, &env, seed).valid();
    let twin = replay_states(&RecurrentStepper(&twin), episodes.iter().map(|e| e.obs.as_slice()));
    let walls = |e: &Episode| e.obs.first().map_or(Vec::new(), |o| o[..h * w].iter().map(|&v| v > 0.5).collect());
    let test = test_episodes(episodes, &walls, cfg.inside.test_fraction);
    let hook = format!("{}.hook_h", train_state::cell_arm(cfg.recurrent.cell));
    let kinds = [("trained", hook.as_str()), ("untrained", hook.as_str()), ("observation", "obs")];
    let targets = cfg.inside.horizons.len() + 1;
    let mut means: Vec<Vec<SquareMeans>> =
        (0..kinds.len()).map(|_| (0..targets).map(|_| SquareMeans::default()).collect()).collect();
    let mut rng = Streams::new(Seed(seed)).stream("probe-controls");
    for (y, x) in (0..h).flat_map(|y| (0..w).map(move |x| (y, x))) {
        let rows = square_rows(cfg, episodes, &test, (y, x), w);
        if rows.keys.is_empty() {
            continue;
        }
        for (kind, (features, _)) in kinds.iter().enumerate() {
            let row = |r: usize| features_of(kind, episodes, &twin, rows.keys[r]);
            // [rows, width]: row r is the features after move t of episode ei, `rows.keys[r] = (ei, t)`.
            let xm = DMatrix::from_fn(rows.keys.len(), row(0).len(), |r, j| f64::from(row(r)[j]));
            for (ti, (_, labels)) in rows.labels.iter().enumerate() {
                let shuffled = *features == "trained";
                let (auroc, f1, control) =
                    score_probe(cfg.inside.probe_l2, &xm, labels, &rows.split, shuffled, &mut rng);
                let m = &mut means[kind][ti];
                if auroc.is_finite() {
                    m.auroc.push(auroc);
                    m.f1.push(f1);
                    m.shuffled.extend(Some(control).filter(|c| c.is_finite()));
                }
                m.positives += rows.split.test.iter().filter(|&&i| labels[i]).count();
                m.n_test += rows.split.test.len();
            }
        }
    }
    let names: Vec<String> = rows_target_names(cfg);
    Ok((kinds.iter().zip(&means))
        .flat_map(|((features, hook), per_target)| {
            (per_target.iter().zip(&names)).map(move |(m, target)| m.result(seed, features, hook, target))
        })
        .collect())
}

/// Probe features of move `t` of episode `ei`: kind 0 the trained state, 1 the untrained twin's
/// state on the same observations, 2 the observation.
fn features_of<'a>(
    kind: usize,
    episodes: &'a [Episode],
    twin: &'a [Vec<Vec<f32>>],
    (ei, t): (usize, usize),
) -> &'a [f32] {
    match kind {
        0 => &episodes[ei].states[t],
        1 => &twin[ei][t],
        _ => &episodes[ei].obs[t],
    }
}

/// The probe targets in the order [`square_rows`] builds them.
fn rows_target_names(cfg: &Config) -> Vec<String> {
    (cfg.inside.horizons.iter().map(|&hz| target_within(hz))).chain([TARGET_LATER.to_string()]).collect()
}

/// Everything one seed measures after training: evaluation, thinking steps and probes.
fn analyse_seed(
    cfg: &Config,
    ctx: &RunContext,
    seed: u64,
    recurrent: &RecurrentPolicy,
    mlp: &MlpPolicy,
) -> anyhow::Result<(Vec<Outcome>, Vec<ProbeResult>)> {
    ctx.progress.start(&format!("seed {seed}: evaluating, thinking steps, probes"), 1);
    let (outcomes, episodes) = evaluate_seed(cfg, seed, recurrent, mlp)?;
    let probes = if cfg.inside.enabled { plan_probes(cfg, seed, &episodes)? } else { Vec::new() };
    ctx.progress.finish();
    Ok((outcomes, probes))
}

/// Runs the experiment; returns the JSON of `summary.json`.
pub fn run(cfg: &Config, ctx: &RunContext) -> anyhow::Result<serde_json::Value> {
    let started = std::time::Instant::now();
    let mut r = Results { outcomes: baselines(cfg)?, probes: Vec::new() };
    let seeds = cfg.run.seed_list();
    let arm = train_state::cell_arm(cfg.recurrent.cell);
    // Jobs: (seed, arm) pairs, the slower recurrent arms first so the threads finish together.
    let jobs: Vec<(u64, &str)> = (seeds.iter().map(|&s| (s, arm))).chain(seeds.iter().map(|&s| (s, "mlp"))).collect();
    let trained = crate::jobs::run_jobs(ctx, jobs.len(), |worker, i| train_arm(cfg, worker, jobs[i].0, jobs[i].1))?;
    let (recurrent, mlps) = trained.split_at(seeds.len());
    let pairs: Vec<(&RecurrentPolicy, &MlpPolicy)> = (recurrent.iter().zip(mlps))
        .map(|pair| match pair {
            (Trained::Recurrent(g), Trained::Mlp(m)) => Ok((&**g, &**m)),
            _ => Err(anyhow::anyhow!("the recurrent arms come first, then one MLP per seed")),
        })
        .collect::<anyhow::Result<_>>()?;
    let analysed = crate::jobs::run_jobs(ctx, seeds.len(), |worker, i| {
        analyse_seed(cfg, worker, seeds[i], pairs[i].0, pairs[i].1)
    })?;
    for (outcomes, probes) in analysed {
        r.outcomes.extend(outcomes);
        r.probes.extend(probes);
    }
    let v = verdict(cfg, &r);
    crate::experiment::store_summary(ctx, "gru-cheese-maze", &seeds, &r, started, &v)
}

/// Per-seed P(cheese) of `arm` on `split` with `thinking` steps.
fn per_seed(r: &Results, arm: &str, split: &str, thinking: usize) -> Vec<(u64, f64)> {
    (r.outcomes.iter())
        .filter(|o| o.arm == arm && o.split == split && o.thinking == thinking)
        .filter_map(|o| o.seed.map(|s| (s, o.cheese.rate)))
        .collect()
}

/// Per seed of the trained arm: its train-maze P(cheese) gain from `k` thinking steps minus the
/// untrained GRU's (NaN when a row is missing: fails closed).
pub fn thinking_margins(r: &Results, arm: &str, k: usize) -> Vec<(u64, f64)> {
    let at =
        |a: &str, s: u64, k: usize| per_seed(r, a, "train", k).into_iter().find(|p| p.0 == s).map_or(f64::NAN, |p| p.1);
    (per_seed(r, arm, "train", 0).into_iter())
        .map(|(s, base)| (s, (at(arm, s, k) - base) - (at("untrained", s, k) - at("untrained", s, 0))))
        .collect()
}

/// The claim "the GRU agent plans": it learned the training mazes, extra thinking steps help it
/// more than they help its untrained twin on every seed, and its state predicts where it will
/// go better than its untrained twin's state or the observation can, on every seed.
pub fn verdict(cfg: &Config, r: &Results) -> Verdict {
    let v = &cfg.verdict;
    let arm = train_state::cell_arm(cfg.recurrent.cell);
    let mut checks = vec![Check::worst_seed(
        format!("{arm}: held-out P(cheese), train mazes"),
        Bound::AtLeast(v.min_success),
        per_seed(r, arm, "train", 0),
    )];
    checks.push(Check::worst_seed(
        format!(
            "{arm}: train-maze P(cheese) with {} thinking steps minus none, minus the untrained {arm}'s",
            v.thinking_k
        ),
        Bound::AtLeast(v.min_thinking_margin),
        thinking_margins(r, arm, v.thinking_k),
    ));
    let seeker = (r.outcomes.iter())
        .filter(|o| o.arm == "cheese-seeker")
        .map(|o| o.cheese.rate)
        .fold(f64::NAN, |m, x| if m.is_nan() || x < m { x } else { m });
    checks.push(Check::pooled("cheese-seeker: P(cheese), both splits (checks the env)", Bound::AtLeast(1.0), seeker));
    if cfg.inside.enabled {
        checks.push(Check::worst_seed(
            "plan probe (agent later): trained-state AUROC minus the better of the untrained state and the observation",
            Bound::AtLeast(v.min_probe_margin),
            margins_over_controls(&r.probes, TARGET_LATER),
        ));
    }
    checks.push(Check::seeds(v.min_seeds, cfg.run.seed_list().len()));
    Verdict::new(
        "a GRU agent trained by recurrent PPO on cheese-maze plans: thinking steps help it beyond its untrained twin, and its state predicts its future path beyond what the observation or an untrained state give",
        "the untrained GRU (its initial weights) at the same thinking steps and as probe features on the same observations; the observation as probe features; shuffled labels; an MLP with the same PPO settings and env steps, uniform random and the scripted cheese and corner seekers on the same held-out mazes",
        checks,
    )
}

#[cfg(test)]
mod tests;
