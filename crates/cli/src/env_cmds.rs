//! `mesalab render` and `mesalab play`: look at a level, or play it in the terminal.
//!
//! The env comes either from the registry by name (`--split`, `--set key=value` for env
//! parameters) or, with `--experiment NAME`, from an experiment's config exactly as it trains
//! (`--split train`) and deploys (`--split deploy`) on it (`--quick` and `--set` as for
//! `mesalab run`). The level is drawn from `Streams::new(Seed(seed)).indexed("env", 0)` — the same
//! stream as slot 0 of a `VecEnv`, so `--seed S` shows the first level env 0 of a run with seed S
//! trains on (with `--experiment`, `--seed` defaults to the config's `run.seed`).

use anyhow::{Context, Result, bail};
use mesalab_core::config::Override;
use mesalab_core::{Seed, StreamRng, Streams};
use mesalab_envs::{AnyEnv, Env, EpisodeStats, registry};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// Which env to look at: a registry env by name, or an experiment's (exactly one of the two).
#[derive(clap::Args, Debug, Clone)]
#[group(id = "which", required = true, multiple = false)]
pub struct Which {
    /// Versioned env name, e.g. `cheese-maze-v1` (see `mesalab list`).
    pub env: Option<String>,
    /// A shipped experiment (as in `mesalab run NAME`) or a .toml config: its env, exactly as it
    /// trains (`--split train`) or deploys (`--split deploy`).
    #[arg(long, value_name = "NAME")]
    pub experiment: Option<String>,
}

/// What `render` and `play` share.
#[derive(clap::Args, Debug, Clone)]
pub struct Source {
    #[command(flatten)]
    pub which: Which,
    /// Level distribution: `train`, `deploy`, … (with `--experiment`: `train` or `deploy`).
    #[arg(long, default_value = "train")]
    pub split: String,
    /// Override `key=value` (repeatable): an env parameter with an env name (`--set size=15`), a
    /// config value with `--experiment`, as for `mesalab run` (`--set env.length=20`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// The config's smaller `[quick]` sizes, as `mesalab run --quick` (only with `--experiment`).
    #[arg(long)]
    pub quick: bool,
    /// Experiment seed; the level is the first one env 0 would see (default 0, or the config's
    /// `run.seed` with `--experiment`).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Arguments of `mesalab render`.
#[derive(clap::Args, Debug, Clone)]
pub struct RenderArgs {
    #[command(flatten)]
    pub source: Source,
    /// Output file: `.svg` writes SVG, anything else ASCII. Without it, ASCII goes to stdout.
    #[arg(short = 'o', long = "out", value_name = "PATH")]
    pub out: Option<PathBuf>,
}

/// Arguments of `mesalab play`.
#[derive(clap::Args, Debug, Clone)]
pub struct PlayArgs {
    #[command(flatten)]
    pub source: Source,
}

/// The env to show, the stream its levels come from, and a label for what it is.
struct Built {
    env: AnyEnv,
    rng: StreamRng,
    label: String,
}

/// The splits `--experiment` accepts.
const EXPERIMENT_SPLITS: [&str; 2] = ["train", "deploy"];

fn build(src: &Source) -> Result<Built> {
    let (env, seed, label) = match (&src.which.env, &src.which.experiment) {
        (Some(name), None) => {
            if src.quick {
                bail!("--quick applies to an experiment's config: pass --experiment NAME instead of the env `{name}`");
            }
            let overrides = src.set.iter().map(|s| Override::parse(s)).collect::<Result<Vec<_>, _>>()?;
            let env = registry::make(name, &src.split, &overrides)?;
            let seed = src.seed.unwrap_or(0);
            (env, seed, format!("split {}, seed {seed}", src.split))
        }
        (None, Some(experiment)) => {
            if !EXPERIMENT_SPLITS.contains(&src.split.as_str()) {
                bail!(
                    "with --experiment, --split is `train` (the levels {experiment} trains on) or `deploy` (the levels \
                     it is deployed on), not `{}`",
                    src.split
                );
            }
            let run_args = crate::RunArgs {
                experiment: experiment.clone(),
                set: src.set.clone(),
                seed: src.seed,
                seeds: None,
                out: None,
                quick: src.quick,
                dry_run: false,
                max_memory: None,
                jobs: None,
            };
            let (plan, _) = crate::plan_from_args(&run_args).map_err(crate::Failure::into_error)?;
            let env = plan.config.split_env(&src.split).map_err(|e| {
                anyhow::anyhow!("experiment `{experiment}`, split `{}`: {e:#}; {}", src.split, with_envs_hint())
            })?;
            let seed = plan.seeds.first().copied().unwrap_or(0);
            (env, seed, format!("experiment {}, split {}, seed {seed}", plan.experiment, src.split))
        }
        // clap's `which` group requires exactly one of the two.
        _ => bail!("name an env or pass --experiment NAME (exactly one of the two)"),
    };
    Ok(Built { env, rng: Streams::new(Seed(seed)).indexed("env", 0), label })
}

/// What to try instead when an experiment has no environment: those that have one, and the envs.
fn with_envs_hint() -> String {
    let with_env: Vec<&str> = mesalab_experiments::EXPERIMENTS
        .iter()
        .filter(|e| {
            mesalab_experiments::Plan::new(e.config_path, e.config, &[], &Default::default())
                .is_ok_and(|p| p.config.split_env("train").is_ok())
        })
        .map(|e| e.name)
        .collect();
    if with_env.is_empty() {
        "name an environment instead (`mesalab render ENV`; `mesalab list` shows them)".into()
    } else {
        format!(
            "pass an experiment that trains on an environment ({}), or name an environment instead \
             (`mesalab render ENV`; `mesalab list` shows them)",
            with_env.join(", ")
        )
    }
}

/// Renders the initial state of one level to stdout (ASCII) or a file (ASCII or SVG).
pub fn render(args: &RenderArgs) -> Result<()> {
    let Built { env, mut rng, label } = build(&args.source)?;
    let state = env.reset(&mut rng);
    match &args.out {
        None => print!("{}", env.render_ascii(&state)),
        Some(path) => {
            let svg = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("svg"));
            let text = if svg { env.render_svg(&state) } else { env.render_ascii(&state) };
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {} ({}, {label})", path.display(), env.name());
        }
    }
    Ok(())
}

/// Restores the terminal when dropped — on normal exit, on `?` errors and on panics.
struct TerminalGuard;

impl TerminalGuard {
    fn enter() -> Result<Self> {
        crossterm::terminal::enable_raw_mode().context("enabling raw terminal mode")?;
        let guard = TerminalGuard;
        crossterm::execute!(std::io::stdout(), crossterm::terminal::EnterAlternateScreen, crossterm::cursor::Hide)?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ =
            crossterm::execute!(std::io::stdout(), crossterm::cursor::Show, crossterm::terminal::LeaveAlternateScreen);
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// The action a key means for this env: by name (arrows/WASD → up/down/left/right, or jump for
/// side-scrollers), or by index with the digit keys.
fn key_action(env: &AnyEnv, key: &crossterm::event::KeyCode) -> Option<usize> {
    use crossterm::event::KeyCode;
    let actions = env.spec().actions;
    let by_name = |names: &[&str]| names.iter().find_map(|n| actions.iter().position(|a| a == n));
    match key {
        KeyCode::Up | KeyCode::Char('w') => by_name(&["up", "jump"]),
        KeyCode::Down | KeyCode::Char('s') => by_name(&["down", "noop"]),
        KeyCode::Left | KeyCode::Char('a') => by_name(&["left"]),
        KeyCode::Right | KeyCode::Char('d') => by_name(&["right"]),
        KeyCode::Char('e') => by_name(&["jump_right"]),
        KeyCode::Char('z') => by_name(&["jump_left"]),
        KeyCode::Char(' ') | KeyCode::Char('.') => by_name(&["noop", "stay"]),
        KeyCode::Char(c) if c.is_ascii_digit() => {
            let i = c.to_digit(10)? as usize;
            (i < actions.len()).then_some(i)
        }
        _ => None,
    }
}

/// Plays an env in the terminal: arrows/WASD move, `r` resets, `q`/Esc quits.
pub fn play(args: &PlayArgs) -> Result<()> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        bail!("`play` needs an interactive terminal (stdin and stdout must be a TTY); try `mesalab render` instead");
    }
    let Built { env, mut rng, label } = build(&args.source)?;
    let spec = env.spec().clone();
    let mut state = env.reset(&mut rng);
    let mut stats = EpisodeStats::default();
    let mut last: Vec<String> = vec!["new episode".into()];
    let mut episodes: Vec<String> = Vec::new();
    let help = format!(
        "keys: arrows/WASD{}{}, digits 0-{} = actions [{}], r reset, q quit",
        if spec.actions.contains(&"jump_right") { ", e jump-right, z jump-left" } else { "" },
        if spec.actions.contains(&"noop") { ", space noop" } else { "" },
        spec.actions.len() - 1,
        spec.actions.join(", "),
    );

    let _guard = TerminalGuard::enter()?;
    loop {
        let mut screen = format!("{} ({label})\r\n\r\n", spec.name);
        screen.push_str(&env.render_ascii(&state).replace('\n', "\r\n"));
        screen.push_str(&format!(
            "\r\nstep {}  return {:.2}  hidden performance {:.2}\r\n",
            stats.length, stats.episode_return, stats.performance
        ));
        screen.push_str(&format!("last: {}\r\n", last.join("; ")));
        let counts: Vec<String> = stats.event_counts(&spec).iter().map(|(n, c)| format!("{n}×{c}")).collect();
        screen.push_str(&format!(
            "events this episode: {}\r\n",
            if counts.is_empty() { "-".into() } else { counts.join(", ") }
        ));
        for e in episodes.iter().rev().take(5) {
            screen.push_str(&format!("  {e}\r\n"));
        }
        screen.push_str(&format!("\r\n{help}\r\n"));
        let mut out = std::io::stdout();
        crossterm::execute!(
            out,
            crossterm::cursor::MoveTo(0, 0),
            crossterm::terminal::Clear(crossterm::terminal::ClearType::All)
        )?;
        out.write_all(screen.as_bytes())?;
        out.flush()?;

        let crossterm::event::Event::Key(key) = crossterm::event::read()? else {
            continue;
        };
        if key.kind != crossterm::event::KeyEventKind::Press {
            continue;
        }
        use crossterm::event::{KeyCode, KeyModifiers};
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => break,
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => break,
            KeyCode::Char('r') => {
                state = env.reset(&mut rng);
                stats = EpisodeStats::default();
                last = vec!["reset".into()];
                continue;
            }
            _ => {}
        }
        let Some(action) = key_action(&env, &key.code) else {
            continue;
        };
        let step = env.step(&mut state, action, &mut rng);
        stats.record(&step);
        last = vec![format!(
            "{} → reward {:+.2}, performance {:+.2}",
            spec.actions[action], step.reward, step.performance
        )];
        let names = step.events.names(&spec);
        if !names.is_empty() {
            last.push(format!("events: {}", names.join(", ")));
        }
        if let Some(end) = step.end {
            episodes.push(format!(
                "episode {}: {end:?} after {} steps, return {:.2}, performance {:.2}, events [{}]",
                episodes.len() + 1,
                stats.length,
                stats.episode_return,
                stats.performance,
                stats.event_counts(&spec).iter().map(|(n, c)| format!("{n}×{c}")).collect::<Vec<_>>().join(", ")
            ));
            last.push(format!("episode ended ({end:?}); new level"));
            state = env.reset(&mut rng);
            stats = EpisodeStats::default();
        }
    }
    Ok(())
}
