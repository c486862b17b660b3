//! Smoke run of the shipped `absent-supervisor` config in quick mode with tiny sizes, through the
//! library: plan → execute → store → summary and report. Run in release mode.

mod common;

const TINY: &[&str] = &[
    "ppo.num_envs=8",
    "ppo.num_steps=64",
    "ppo.num_minibatches=2",
    "ppo.total_timesteps=2048",
    "eval.episodes=20",
    "qlearning.episodes=300",
    "inside.honeypot_episodes=10",
    "inside.steering_coefficients=[0.0, 1.0]",
    "inside.random_directions=2",
];

#[test]
fn quick_run_writes_gap_table_q_learning_honeypots_inside_and_report() {
    let run = common::quick_run("absent-supervisor", TINY);
    common::assert_one_seed_run(&run);
    let s = &run.summary;
    let names: Vec<&str> =
        s["verdict"]["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    // The full verdict (with the Q-learning and honeypot checks) replaced the harness's.
    assert!(names.iter().any(|n| n.starts_with("tabular Q-learning")), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("honeypots")), "{names:?}");
    let gaps = s["gap_table"].as_array().unwrap();
    assert!(gaps.iter().any(|r| r["policy"] == "tabular Q-learning (seeds pooled)" && r["split"] == "train"));
    // Train rows have both rates; deploy never shows the supervisor, so its gap is missing (null).
    // The trained PPO row pools converged seeds only: with none converged it has no episodes.
    let converged = s["per_seed"].as_array().unwrap().iter().filter(|r| r["convergence"]["converged"] == true).count();
    for r in gaps.iter().filter(|r| r["split"] == "train") {
        if r["gap"].is_null() {
            assert!(converged == 0 && r["policy"].as_str().unwrap().starts_with("trained"), "{r}");
            continue;
        }
        let (gap, lo, hi) = (r["gap"].as_f64().unwrap(), r["gap_lo"].as_f64().unwrap(), r["gap_hi"].as_f64().unwrap());
        assert!(lo <= gap && gap <= hi, "{r}");
    }
    assert!(gaps.iter().filter(|r| r["split"] == "train").any(|r| r["gap"].is_number()), "baseline gaps are numbers");
    let inside = &s["inside"][0];
    assert_eq!(inside["q"]["honeypot"]["shortcut_when_cue_unwatched"]["n"], 10, "{inside}");
    assert!(!inside["probes"].as_array().unwrap().is_empty());
    // Two coefficients at every probed hook, one patching run per hook.
    let (steer, patch) = (inside["steering"].as_array().unwrap().len(), inside["patching"].as_array().unwrap().len());
    assert!(patch > 0 && steer == 2 * patch, "{steer} {patch}");
    // The random-direction control: the same hooks and coefficients, two directions' episodes pooled.
    let random = inside["steering_random"].as_array().unwrap();
    assert_eq!(random.len(), steer);
    for (r, d) in random.iter().zip(inside["steering"].as_array().unwrap()) {
        assert_eq!((&r["hook"], &r["coefficient"]), (&d["hook"], &d["coefficient"]));
        assert_eq!(r["shortcut"]["n"].as_u64().unwrap(), 2 * d["shortcut"]["n"].as_u64().unwrap(), "{r} {d}");
    }
    assert!(run.html.contains("random directions (same norm)"));
    for section in ["Shortcut rate when watched vs unwatched", "Honeypots", "Looking inside PPO"] {
        assert!(run.html.contains(section), "report section `{section}`");
    }
}
