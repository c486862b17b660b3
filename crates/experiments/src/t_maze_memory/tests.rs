use super::*;
use crate::probe_score::ProbeScore;

fn outcome(arm: &str, seed: Option<u64>, split: &str, k: u64) -> Outcome {
    Outcome { arm: arm.into(), seed, split: split.into(), success: Rate::new(k, 400), truncated: Rate::new(0, 400) }
}

fn inside(arm: &str, seed: u64, auroc: f64, follow: u64) -> Inside {
    Inside {
        arm: arm.into(),
        seed,
        model: "trained".into(),
        probe: ProbeScore {
            seed,
            model: "trained".into(),
            hook: format!("{arm}.hook_h"),
            target: "cue (up)".into(),
            auroc,
            shuffled: 0.5,
            null_p95: 0.7,
        },
        patched_decisions: 10,
        follow: Rate::new(follow, 10),
        null_flip: Rate::new(1, 80),
    }
}

/// Three seeds where the recurrent arms solve the maze, the MLP is at chance and the state
/// carries the cue.
fn good() -> Results {
    let mut r = Results { outcomes: vec![outcome("oracle", None, "train", 400)], inside: Vec::new() };
    for seed in 0..3 {
        for arm in ["gru", "lstm"] {
            r.outcomes.push(outcome(arm, Some(seed), "train", 400));
            r.inside.push(inside(arm, seed, 1.0, 10));
        }
        r.outcomes.push(outcome("mlp", Some(seed), "train", 200));
    }
    r
}

#[test]
fn the_verdict_says_yes_to_memory_and_no_when_any_part_fails() {
    let cfg = Config::default();
    let v = verdict(&cfg, &good());
    assert!(v.holds, "{v:?}");
    // An MLP above chance means the task leaks the cue: no.
    let mut r = good();
    r.outcomes.iter_mut().filter(|o| o.arm == "mlp" && o.seed == Some(1)).for_each(|o| o.success = Rate::new(300, 400));
    assert!(!verdict(&cfg, &r).holds);
    // One recurrent seed that did not learn: no.
    let mut r = good();
    r.outcomes
        .iter_mut()
        .filter(|o| o.arm == "lstm" && o.seed == Some(2))
        .for_each(|o| o.success = Rate::new(300, 400));
    assert!(!verdict(&cfg, &r).holds);
    // A probe below the AUROC bar, or patching that does not move the decision: no.
    let mut r = good();
    r.inside[3].probe.auroc = 0.65;
    assert!(!verdict(&cfg, &r).holds);
    let mut r = good();
    r.inside[0].follow = Rate::new(2, 10);
    assert!(!verdict(&cfg, &r).holds);
    // NaN fails closed (a probe that could not be fitted), and so does a seed with nothing patched.
    let mut r = good();
    r.inside[1].probe.auroc = f64::NAN;
    assert!(!verdict(&cfg, &r).holds);
    let mut r = good();
    r.inside[1].patched_decisions = 0;
    assert!(!verdict(&cfg, &r).holds);
    // Too few seeds: no.
    let mut r = good();
    r.outcomes.retain(|o| o.seed != Some(2));
    r.inside.retain(|i| i.seed != 2);
    let two = Config { run: RunSection { seeds: 2, ..cfg.run.clone() }, ..cfg.clone() };
    assert!(!verdict(&two, &r).holds);
}

#[test]
fn bad_configs_name_the_key() {
    use mesalab_core::config::Validate;
    let cfg =
        Config { ppo: PpoConfig { num_envs: 6, num_minibatches: 4, ..Config::default().ppo }, ..Config::default() };
    assert_eq!(cfg.validate().unwrap_err().key, "ppo.num_minibatches");
    let cfg =
        Config { deploy: TMazeParams { width: 20, max_length: 14, ..TMazeParams::deploy() }, ..Config::default() };
    assert_eq!(cfg.validate().unwrap_err().key, "deploy.width");
    let cfg = Config { cells: vec![Cell::Gru, Cell::Gru], ..Config::default() };
    assert_eq!(cfg.validate().unwrap_err().key, "cells");
    assert!(Config::default().validate().is_ok());
}
