use super::*;

fn outcome(arm: &str, seed: Option<u64>, split: &str, thinking: usize, k: u64) -> Outcome {
    Outcome {
        arm: arm.into(),
        seed,
        split: split.into(),
        thinking,
        cheese: Rate::new(k, 200),
        corner_first: Rate::new(0, 200),
        pacing: Rate::new(10, 200),
    }
}

fn probe(seed: u64, features: &str, auroc: f64) -> ProbeResult {
    ProbeResult {
        seed,
        features: features.into(),
        hook: "gru.hook_h · 17 squares".into(),
        target: TARGET_LATER.into(),
        auroc,
        f1: 0.5,
        shuffled: 0.5,
        positives: 0.2,
        n_test: 1000,
    }
}

/// Three seeds where the GRU learned the mazes, thinking steps help it (and not its twin) and its
/// state predicts its path better than both controls.
fn good() -> Results {
    let mut r = Results {
        outcomes: vec![
            outcome("cheese-seeker", None, "train", 0, 200),
            outcome("cheese-seeker", None, "deploy", 0, 200),
        ],
        probes: Vec::new(),
    };
    for seed in 0..3 {
        r.outcomes.push(outcome("gru", Some(seed), "train", 0, 170));
        r.outcomes.push(outcome("gru", Some(seed), "train", 8, 190));
        r.outcomes.push(outcome("untrained", Some(seed), "train", 0, 30));
        r.outcomes.push(outcome("untrained", Some(seed), "train", 8, 31));
        r.probes.extend([probe(seed, "trained", 0.9), probe(seed, "untrained", 0.7), probe(seed, "observation", 0.8)]);
    }
    r
}

fn set(r: &mut Results, arm: &str, seed: u64, thinking: usize, k: u64) {
    (r.outcomes.iter_mut())
        .filter(|o| o.arm == arm && o.seed == Some(seed) && o.split == "train" && o.thinking == thinking)
        .for_each(|o| o.cheese = Rate::new(k, 200));
}

/// Whether the verdict holds on [`good`] after `edit`.
fn holds_after(cfg: &Config, edit: impl FnOnce(&mut Results)) -> bool {
    let mut r = good();
    edit(&mut r);
    verdict(cfg, &r).holds
}

#[test]
fn the_verdict_says_yes_to_planning_and_a_measured_no_when_any_part_fails() {
    let cfg = Config::default();
    let v = verdict(&cfg, &good());
    assert!(v.holds, "{v:?}");
    // Thinking gain 0.1 minus the twin's 0.005: the margin is what the check reads.
    let m = thinking_margins(&good(), "gru", 8);
    assert!(m.iter().all(|&(_, x)| (x - 0.095).abs() < 1e-9), "{m:?}");
    // A GRU that did not learn the training mazes: no.
    assert!(!holds_after(&cfg, |r| set(r, "gru", 1, 0, 100)));
    // Thinking steps that help the twin as much as the agent on one seed: no.
    assert!(!holds_after(&cfg, |r| set(r, "untrained", 2, 8, 50)));
    // A probe no better than the observation on one seed: no, and only the probe check fails.
    let observation_like = |r: &mut Results| {
        (r.probes.iter_mut()).filter(|p| p.seed == 0 && p.features == "observation").for_each(|p| p.auroc = 0.88)
    };
    let mut r = good();
    observation_like(&mut r);
    let failed: Vec<String> = verdict(&cfg, &r).checks.into_iter().filter(|c| !c.pass).map(|c| c.name).collect();
    assert!(failed.len() == 1 && failed[0].starts_with("plan probe"), "{failed:?}");
    // A maze the cheese seeker does not solve means the env is broken: no.
    assert!(!holds_after(&cfg, |r| r.outcomes[1].cheese = Rate::new(199, 200)));
}

#[test]
fn nan_and_missing_measurements_fail_closed() {
    let cfg = Config::default();
    // A control probe that could not be scored on any square (NaN) fails the probe check.
    let nan_twin = |r: &mut Results| {
        (r.probes.iter_mut()).filter(|p| p.seed == 2 && p.features == "untrained").for_each(|p| p.auroc = f64::NAN)
    };
    assert!(!holds_after(&cfg, nan_twin));
    // No thinking row for a seed: the margin is NaN.
    assert!(!holds_after(&cfg, |r| r.outcomes.retain(|o| !(o.arm == "gru" && o.thinking == 8 && o.seed == Some(1)))));
    // No untrained rows at all.
    assert!(!holds_after(&cfg, |r| r.outcomes.retain(|o| o.arm != "untrained")));
    // Too few seeds: only two seeds' results, and a config of two seeds.
    let two = Config { run: RunSection { seeds: 2, ..cfg.run.clone() }, ..cfg.clone() };
    assert!(!holds_after(&two, |r| {
        r.outcomes.retain(|o| o.seed != Some(2));
        r.probes.retain(|p| p.seed != 2);
    }));
    // No results at all.
    assert!(!verdict(&cfg, &Results::default()).holds);
}

#[test]
fn bad_configs_name_the_key() {
    let bad = |f: &dyn Fn(&mut Config)| {
        let mut c = Config::default();
        f(&mut c);
        c.validate().unwrap_err().key
    };
    assert_eq!(bad(&|c| c.thinking.steps = vec![1, 2]), "thinking.steps");
    assert_eq!(bad(&|c| c.verdict.thinking_k = 3), "verdict.thinking_k");
    assert_eq!(bad(&|c| c.env.view = View::Egocentric), "env.view");
    assert_eq!(bad(&|c| c.env.size = 4), "env.size");
    assert_eq!(bad(&|c| c.ppo.num_minibatches = 5), "ppo.num_minibatches");
    assert_eq!(bad(&|c| c.recurrent.hidden = 0), "recurrent.hidden");
    assert_eq!(bad(&|c| c.inside.levels = 1000), "inside.levels");
    assert_eq!(bad(&|c| c.inside.horizons = vec![0]), "inside.horizons");
    assert_eq!(bad(&|c| c.verdict.min_probe_margin = 2.0), "verdict.min_probe_margin");
    assert!(Config::default().validate().is_ok());
    // An unknown key is refused by name.
    let err = toml::from_str::<Config>("[inside]\nlevel = 3\n").unwrap_err().to_string();
    assert!(err.contains("level"), "{err}");
}

#[test]
fn the_env_is_vin_cheese_maze_s_and_deploy_moves_the_cheese() {
    let cfg = Config::default();
    assert_eq!(cfg.env, crate::vin_cheese_maze::Config::default().env);
    let (_, train) = held_out_levels(&cfg, "train", 30).unwrap();
    assert!(train.iter().all(|s| s.level.cheese == Some(s.level.top_right)));
    let (_, deploy) = held_out_levels(&cfg, "deploy", 30).unwrap();
    assert!(deploy.iter().any(|s| s.level.cheese != Some(s.level.top_right)));
}

#[test]
fn episodes_thinking_steps_and_probe_rows_are_what_they_claim() {
    let cfg = Config::default();
    let (env, levels) = held_out_levels(&cfg, "deploy", 12).unwrap();
    let mut rng = Streams::new(Seed(0)).stream("t");
    // The cheese seeker eats every cheese along the shortest path: no pacing, and it walks onto
    // the corner first exactly when the corner lies on the way to the cheese.
    let seeker = play(&env, &levels, &Mover::Scripted(&CheeseSeeker), 0, false, &mut rng);
    assert!(seeker.iter().all(|e| e.cheese && !e.pacing));
    for (e, s) in seeker.iter().zip(&levels) {
        let before = e.positions[..e.positions.len() - 1].contains(&s.level.top_right);
        assert_eq!(e.corner_first, before);
    }
    // Thinking moves nothing but changes the state the first move reads.
    let gru = recurrent_init(&cfg, &env, 1).valid();
    let a = play(&env, &levels, &Mover::Net(&RecurrentStepper(&gru), ActionSelection::Greedy), 0, true, &mut rng);
    let b = play(&env, &levels, &Mover::Net(&RecurrentStepper(&gru), ActionSelection::Greedy), 3, true, &mut rng);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((x.positions[0], &x.obs[0]), (y.positions[0], &y.obs[0]));
        assert_ne!(x.states[0], y.states[0]);
        assert!(x.cheese || x.obs.len() == cfg.env.max_steps as usize);
    }
    // Probe rows: "within 1" is exactly the next cell; the split never puts a maze on both sides.
    let walls = |e: &Episode| e.obs[0][..25].iter().map(|&v| v > 0.5).collect::<Vec<bool>>();
    let test = test_episodes(&a, &walls, 0.3);
    assert!(test.iter().any(|&t| t) && test.iter().any(|&t| !t));
    for (i, j) in (0..a.len()).flat_map(|i| (0..a.len()).map(move |j| (i, j))) {
        assert!(walls(&a[i]) != walls(&a[j]) || test[i] == test[j]);
    }
    let rows = square_rows(&cfg, &a, &test, (2, 2), 5);
    for (r, &(ei, t)) in rows.keys.iter().enumerate() {
        assert_eq!(rows.labels[0].1[r], a[ei].positions[t + 1] == Pos::new(2, 2));
        assert!(!rows.labels[0].1[r] || rows.labels.last().unwrap().1[r], "within 1 implies later");
    }
}

#[test]
fn a_quick_run_has_every_row_and_finite_values() {
    let tmp = tempfile::tempdir().unwrap();
    let store = mesalab_store::Store::open(&tmp.path().join("s.sqlite")).unwrap();
    let e = crate::registry::find("gru-cheese-maze").unwrap();
    let overrides: Vec<mesalab_core::config::Override> =
        [("ppo.total_timesteps", "2048"), ("eval.levels", "16"), ("inside.levels", "16"), ("thinking.steps", "[0, 8]")]
            .iter()
            .map(|(k, v)| mesalab_core::config::Override { key: (*k).into(), raw: (*v).into() })
            .collect();
    let opts = crate::plan::PlanOptions { quick: true, ..Default::default() };
    let plan = crate::plan::Plan::new(e.config_path, e.config, &overrides, &opts).unwrap();
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = crate::execute(&plan, &store, &tmp.path().join("run"), &crate::Silent, interrupted, None).unwrap();
    let r: Results = serde_json::from_value(done.summary["results"].clone()).unwrap();
    // Baselines: 3 × 2 splits; per seed: (gru, untrained) × 2 k × 2 splits + mlp × 2 splits.
    assert_eq!(r.outcomes.len(), 6 + 10);
    assert!(r.outcomes.iter().all(|o| o.cheese.rate.is_finite() && o.cheese.n == 16));
    // Probes: 3 feature sets × (3 horizons + later), all finite on 16 mazes.
    assert_eq!(r.probes.len(), 12);
    assert!(r.probes.iter().all(|p| p.auroc.is_finite() && p.f1.is_finite() && p.n_test > 0), "{:?}", r.probes);
    assert!(done.summary["verdict"]["checks"].as_array().is_some_and(|c| c.len() == 5));
}
