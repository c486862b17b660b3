//! Snapshot tests of ASCII renders for fixed seeds (review changes with `INSTA_UPDATE=always` +
//! `git diff`). A changed snapshot means changed level generation: bump the env version.

use mesalab_core::{Seed, Streams};
use mesalab_envs::{Env, registry};

fn render(name: &str, split: &str, seed: u64, steps: usize) -> String {
    let env = registry::make(name, split, &[]).unwrap();
    let mut rng = Streams::new(Seed(seed)).indexed("env", 0);
    let mut s = env.reset(&mut rng);
    let mut out = env.render_ascii(&s);
    for t in 0..steps {
        let st = env.step(&mut s, (t * 5 + 2) % env.spec().actions.len(), &mut rng);
        if st.end.is_some() {
            break;
        }
    }
    if steps > 0 {
        out.push_str(&format!("-- after {steps} steps --\n{}", env.render_ascii(&s)));
    }
    out
}

#[test]
fn ascii_renders_of_fixed_seeds() {
    for name in ["coin-corridor-v1", "cheese-maze-v1", "keys-chests-v1", "monster-shield-v1", "sokoban-mini-v1"] {
        for split in ["train", "deploy"] {
            insta::assert_snapshot!(format!("{name}-{split}"), render(name, split, 7, 6));
        }
    }
}

#[test]
fn svg_is_standalone_and_well_formed() {
    for name in ["coin-corridor-v1", "cheese-maze-v1", "keys-chests-v1", "monster-shield-v1", "sokoban-mini-v1"] {
        let env = registry::make(name, "deploy", &[]).unwrap();
        let s = env.reset(&mut Streams::new(Seed(1)).stream("env"));
        let svg = env.render_svg(&s);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{name}");
        assert!(svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), svg.matches("/>").count(), "{name}: every rect closes");
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
    }
}

/// Golden `sokoban-mini-v1` levels: the first level of seeds 0..4 per split, with the solver's
/// optimal length and moves. A change here means a changed generator or solver: bump the version.
#[test]
fn sokoban_golden_levels() {
    use mesalab_envs::sokoban::{self, Sokoban, SokobanParams};
    for (split, params) in [("train", SokobanParams::train()), ("deploy", SokobanParams::deploy())] {
        let env = Sokoban::new(params).unwrap();
        let mut out = String::new();
        for seed in 0..4 {
            let s = env.reset(&mut Streams::new(Seed(seed)).indexed("env", 0));
            let path = sokoban::solve(&s.level).unwrap();
            let moves: String = path.iter().map(|&a| ['u', 'r', 'd', 'l'][a]).collect();
            out.push_str(&format!("seed {seed}: optimal {} moves: {moves}\n{}", path.len(), env.render_ascii(&s)));
        }
        insta::assert_snapshot!(format!("sokoban-mini-v1-golden-{split}"), out);
    }
}
