//! `mesalab render` and `mesalab play`: look at a level, or play it in the terminal.
//!
//! Both build the env through the registry (`--split`, `--set key=value`) and draw the level from
//! `Streams::new(Seed(seed)).indexed("env", 0)` — the same stream as slot 0 of a `VecEnv`, so
//! `--seed S` shows the first level env 0 of a run with seed S trains on.

use anyhow::{Context, Result, bail};
use mesalab_core::config::Override;
use mesalab_core::{Seed, StreamRng, Streams};
use mesalab_envs::{AnyEnv, Env, EpisodeStats, registry};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// Arguments of `mesalab render`.
#[derive(clap::Args, Debug, Clone)]
pub struct RenderArgs {
    /// Versioned env name, e.g. `cheese-maze-v1`.
    pub env: String,
    /// Level distribution: `train`, `deploy`, …
    #[arg(long, default_value = "train")]
    pub split: String,
    /// Parameter override `key=value` (repeatable), e.g. `--set size=15`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Experiment seed; the level is the first one env 0 would see.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output file: `.svg` writes SVG, anything else ASCII. Without it, ASCII goes to stdout.
    #[arg(short = 'o', long = "out", value_name = "PATH")]
    pub out: Option<PathBuf>,
}

/// Arguments of `mesalab play`.
#[derive(clap::Args, Debug, Clone)]
pub struct PlayArgs {
    /// Versioned env name, e.g. `coin-corridor-v1`.
    pub env: String,
    /// Level distribution: `train`, `deploy`, …
    #[arg(long, default_value = "train")]
    pub split: String,
    /// Parameter override `key=value` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Experiment seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

fn build(env: &str, split: &str, set: &[String], seed: u64) -> Result<(AnyEnv, StreamRng)> {
    let overrides = set.iter().map(|s| Override::parse(s)).collect::<Result<Vec<_>, _>>()?;
    let env = registry::make(env, split, &overrides)?;
    Ok((env, Streams::new(Seed(seed)).indexed("env", 0)))
}

/// Renders the initial state of one level to stdout (ASCII) or a file (ASCII or SVG).
pub fn render(args: &RenderArgs) -> Result<()> {
    let (env, mut rng) = build(&args.env, &args.split, &args.set, args.seed)?;
    let state = env.reset(&mut rng);
    match &args.out {
        None => print!("{}", env.render_ascii(&state)),
        Some(path) => {
            let svg = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("svg"));
            let text = if svg { env.render_svg(&state) } else { env.render_ascii(&state) };
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {} ({}, split {}, seed {})", path.display(), env.name(), args.split, args.seed);
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
    let (env, mut rng) = build(&args.env, &args.split, &args.set, args.seed)?;
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
        let mut screen = format!("{} (split {}, seed {})\r\n\r\n", spec.name, args.split, args.seed);
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
