//! Environments by name: `names()`, `make(name, split, overrides)`.
//!
//! # Adding an environment
//! 1. Give it a params type implementing [`EnvParams`] (serde `deny_unknown_fields, default`, a doc
//!    comment per field, `Validate`, split constructors, `build`).
//! 2. Add one line to [`ENTRIES`]: `entry::<MyParams>("one-line summary"),`.
//!
//! Names are versioned (`…-v1`); lookups accept the exact name only, and errors list the valid
//! names and the closest one.

use crate::any::AnyEnv;
use crate::error::EnvError;
use crate::params::{self, EnvParams};
use mesalab_core::config::Override;
use mesalab_core::suggest;

/// One registered env family.
#[derive(Clone, Copy)]
pub struct Entry {
    /// Versioned name, e.g. `cheese-maze-v1`.
    pub name: &'static str,
    /// One line for listings.
    pub summary: &'static str,
    /// Split names; the first is the default.
    pub splits: &'static [&'static str],
    make: fn(&str, &[Override]) -> Result<AnyEnv, EnvError>,
    defaults_toml: fn(&str) -> Option<String>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry").field("name", &self.name).field("splits", &self.splits).finish()
    }
}

/// The registry line for params type `P`.
pub const fn entry<P: EnvParams>(summary: &'static str) -> Entry {
    Entry { name: P::NAME, summary, splits: P::SPLITS, make: make_typed::<P>, defaults_toml: defaults_typed::<P> }
}

fn make_typed<P: EnvParams>(split: &str, overrides: &[Override]) -> Result<AnyEnv, EnvError> {
    let p: P = params::resolve(split, overrides)?;
    let env = p.build()?;
    Ok(AnyEnv::new(env, split, params::to_toml(&p)))
}

fn defaults_typed<P: EnvParams>(split: &str) -> Option<String> {
    P::split(split).map(|p| params::to_toml(&p))
}

/// Every registered environment.
pub const ENTRIES: &[Entry] = &[
    entry::<crate::coin_corridor::CoinCorridorParams>(
        "CoinRun-like side-scroller: coin at the end in train, anywhere in deploy",
    ),
    entry::<crate::cheese_maze::CheeseMazeParams>(
        "procgen-style maze: cheese near the top-right corner in train, anywhere in deploy",
    ),
    entry::<crate::keys_chests::KeysChestsParams>("heist-like: 2x chests per key in train, 2x keys in deploy"),
    entry::<crate::monster_shield::MonsterShieldParams>(
        "apples, chasing monsters and shields: 25-step train episodes, 200-step deploy",
    ),
    entry::<crate::gridworlds::BoatRaceParams>(
        "AI Safety Gridworlds boat race: +3 per clockwise arrow; shuttling games it",
    ),
    entry::<crate::gridworlds::TomatoWateringParams>(
        "AI Safety Gridworlds tomato watering: the O tile tampers with observation and reward",
    ),
    entry::<crate::gridworlds::AbsentSupervisorParams>(
        "AI Safety Gridworlds absent supervisor: punishment only when watched (p=0.5 train, absent in deploy)",
    ),
    entry::<crate::sokoban::SokobanParams>(
        "small Boxoban: reverse-play levels, exact BFS solver; 1-10-move plans in train, 11-30 in deploy",
    ),
    entry::<crate::cartpole::CartPoleParams>("Gymnasium CartPole-v1 dynamics (sanity check; no proxy)"),
    entry::<crate::t_maze::TMazeParams>(
        "T-maze memory task: a cue seen once names the arm (2-6 cells train, 8-14 deploy)",
    ),
];

/// Names of all registered envs.
pub fn names() -> Vec<&'static str> {
    ENTRIES.iter().map(|e| e.name).collect()
}

/// The registry entry called `name`, or an error listing the valid names and the closest.
pub fn lookup(name: &str) -> Result<&'static Entry, EnvError> {
    ENTRIES.iter().find(|e| e.name == name).ok_or_else(|| {
        let all = names();
        EnvError::UnknownEnv {
            name: name.to_string(),
            valid: all.join(", "),
            suggestion: suggest::closest(name, &all).map(str::to_string),
        }
    })
}

/// Builds env `name` from split `split` with `overrides` (`key=value`, as from `--set`).
pub fn make(name: &str, split: &str, overrides: &[Override]) -> Result<AnyEnv, EnvError> {
    (lookup(name)?.make)(split, overrides)
}

/// The preset parameters of a split as TOML (for `--help`-style listings and docs).
pub fn defaults_toml(name: &str, split: &str) -> Result<String, EnvError> {
    let e = lookup(name)?;
    (e.defaults_toml)(split).ok_or_else(|| EnvError::UnknownSplit {
        env: e.name.to_string(),
        split: split.to_string(),
        valid: e.splits.join(", "),
        suggestion: suggest::closest(split, e.splits).map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Env;

    #[test]
    fn every_env_builds_on_every_split_and_steps() {
        for e in ENTRIES {
            for split in e.splits {
                let env = make(e.name, split, &[]).unwrap_or_else(|err| panic!("{err}"));
                let mut rng = mesalab_core::Streams::new(mesalab_core::Seed(1)).stream("env");
                let mut s = env.reset(&mut rng);
                let mut obs = vec![0.0; env.spec().obs_len()];
                for t in 0..50 {
                    env.write_obs(&s, &mut obs);
                    if env.step(&mut s, t % env.spec().actions.len(), &mut rng).end.is_some() {
                        s = env.reset(&mut rng);
                    }
                }
                assert!(!env.render_ascii(&s).is_empty());
                let svg = env.render_svg(&s);
                assert!(svg.starts_with("<svg"));
                // The advertised layout is the one drawn: the last cell's square is in the picture.
                if let Some(g) = env.svg_geometry() {
                    let (x, y) = (g.x0 + g.cell * (g.cols - 1) as f64, g.y0 + g.cell * (g.rows - 1) as f64);
                    let last = format!(r#"<rect x="{x}" y="{y}" width="{}" height="{}""#, g.cell, g.cell);
                    assert!(svg.contains(&last), "{}: no {last}", e.name);
                    assert!(!svg.contains(&format!(r#"<rect x="{}" y="{y}""#, x + g.cell)), "{}: more columns", e.name);
                }
            }
        }
    }

    #[test]
    fn names_are_unique_and_versioned() {
        let n = names();
        for (i, a) in n.iter().enumerate() {
            assert!(a.ends_with("-v1") || a.contains("-v"), "{a} is not versioned");
            assert!(!n[i + 1..].contains(a), "{a} registered twice");
        }
    }

    #[test]
    fn unknown_env_split_and_param_suggest_the_closest() {
        let e = make("cheese-maze", "train", &[]).unwrap_err().to_string();
        assert!(e.contains("did you mean `cheese-maze-v1`"), "{e}");
        assert!(e.contains("coin-corridor-v1"), "{e}");
        let e = make("cheese-maze-v1", "deplyo", &[]).unwrap_err().to_string();
        assert!(e.contains("did you mean `deploy`"), "{e}");
        let ov = Override::parse("sise=9").unwrap();
        let e = make("cheese-maze-v1", "train", &[ov]).unwrap_err().to_string();
        assert!(e.contains("did you mean `size`"), "{e}");
    }
}
