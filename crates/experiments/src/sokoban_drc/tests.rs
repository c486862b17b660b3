use super::*;

fn outcome(arm: &str, seed: Option<u64>, split: &str, thinking: usize, k: u64) -> Outcome {
    Outcome {
        arm: arm.into(),
        seed,
        split: split.into(),
        thinking,
        solved: Rate::new(k, 200),
        excess_moves: 1.0,
        pacing: Rate::new(10, 200),
    }
}

fn probe(seed: u64, features: &str, auroc: f64) -> ProbeResult {
    ProbeResult {
        seed,
        features: features.into(),
        hook: "drc.1.hook_h".into(),
        target: TARGET_LATER.into(),
        auroc,
        f1: 0.5,
        shuffled: 0.5,
        positives: 0.2,
        n_test: 1000,
    }
}

/// Three seeds where the DRC solves the levels, beats the MLP, gains from thinking and its state
/// predicts its path.
fn good() -> Results {
    let mut r = Results {
        outcomes: vec![outcome("solver", None, "train", 0, 200), outcome("solver", None, "deploy", 0, 200)],
        probes: Vec::new(),
        optimal_len: vec![("train".into(), 6.0), ("deploy".into(), 14.0)],
    };
    for seed in 0..3 {
        r.outcomes.push(outcome("drc", Some(seed), "train", 0, 190));
        r.outcomes.push(outcome("mlp", Some(seed), "train", 0, 150));
        r.outcomes.push(outcome("drc", Some(seed), "deploy", 0, 80));
        r.outcomes.push(outcome("drc", Some(seed), "deploy", 4, 90));
        r.probes.extend([probe(seed, "trained", 0.9), probe(seed, "untrained", 0.7), probe(seed, "observation", 0.75)]);
    }
    r
}

fn set(r: &mut Results, arm: &str, seed: u64, split: &str, thinking: usize, k: u64) {
    (r.outcomes.iter_mut())
        .filter(|o| o.arm == arm && o.seed == Some(seed) && o.split == split && o.thinking == thinking)
        .for_each(|o| o.solved = Rate::new(k, 200));
}

#[test]
fn the_verdict_says_yes_to_planning_and_no_when_any_part_fails() {
    let cfg = Config::default();
    assert!(verdict(&cfg, &good()).holds, "{:?}", verdict(&cfg, &good()));
    // One DRC seed that did not learn: no.
    let mut r = good();
    set(&mut r, "drc", 1, "train", 0, 100);
    assert!(!verdict(&cfg, &r).holds);
    // An MLP as good as the DRC: no.
    let mut r = good();
    set(&mut r, "mlp", 2, "train", 0, 189);
    assert!(!verdict(&cfg, &r).holds);
    // Thinking steps that do not help on one seed: no.
    let mut r = good();
    set(&mut r, "drc", 0, "deploy", 4, 80);
    assert!(!verdict(&cfg, &r).holds);
    // A probe no better than the observation window: no.
    let mut r = good();
    r.probes.iter_mut().filter(|p| p.seed == 1 && p.features == "observation").for_each(|p| p.auroc = 0.88);
    assert!(!verdict(&cfg, &r).holds);
    // A level the solver cannot solve means the env is broken: no.
    let mut r = good();
    r.outcomes[1].solved = Rate::new(199, 200);
    assert!(!verdict(&cfg, &r).holds);
}

#[test]
fn missing_or_nan_measurements_fail_closed() {
    let cfg = Config::default();
    // A probe that could not be scored (NaN) fails the probe check.
    let mut r = good();
    r.probes.iter_mut().filter(|p| p.seed == 2 && p.features == "untrained").for_each(|p| p.auroc = f64::NAN);
    assert!(!verdict(&cfg, &r).holds);
    // No MLP row for a seed: the gain is NaN.
    let mut r = good();
    r.outcomes.retain(|o| !(o.arm == "mlp" && o.seed == Some(0)));
    assert!(!verdict(&cfg, &r).holds);
    // No thinking row: NaN.
    let mut r = good();
    r.outcomes.retain(|o| o.thinking == 0);
    assert!(!verdict(&cfg, &r).holds);
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
    assert_eq!(bad(&|c| c.thinking.steps = vec![0, 2, 2]), "thinking.steps");
    assert_eq!(bad(&|c| c.verdict.thinking_k = 3), "verdict.thinking_k");
    assert_eq!(bad(&|c| c.deploy.size = 8), "deploy.size");
    assert_eq!(bad(&|c| c.ppo.num_minibatches = 5), "ppo.num_minibatches");
    assert_eq!(bad(&|c| c.drc.layers = 0), "drc.layers");
    assert_eq!(bad(&|c| c.inside.levels = 1000), "inside.levels");
    assert_eq!(bad(&|c| c.inside.horizons = vec![0]), "inside.horizons");
    assert!(Config::default().validate().is_ok());
}

#[test]
fn probe_rows_label_the_future_path_and_split_by_level() {
    let cfg = Config { inside: InsideSection { horizons: vec![1], ..InsideSection::default() }, ..Config::default() };
    let env = Sokoban::new(cfg.env.clone()).unwrap();
    let (_, levels) = held_out_levels(&cfg, "train", 6).unwrap();
    // The solver's moves as the "agent": its path is known, so the labels can be checked.
    let episodes: Vec<Episode> = (levels.iter())
        .map(|s| {
            let path = sokoban::solve(&s.level).unwrap();
            let mut st = s.clone();
            let mut e = Episode { positions: vec![st.board.player], optimal: path.len() as u32, ..Episode::default() };
            let mut rng = Streams::new(Seed(0)).stream("x");
            for &a in &path {
                let mut o = vec![0.0; env.spec().obs_len()];
                env.write_obs(&st, &mut o);
                e.obs.push(o);
                e.states.push(Vec::new());
                let before = st.board;
                env.step(&mut st, a, &mut rng);
                e.positions.push(st.board.player);
                e.pushes.push(before.boxes().iter().find(|b| !st.board.has_box(**b)).copied());
                e.moves += 1;
            }
            e.solved = true;
            e
        })
        .collect();
    let rows = probe_rows(&cfg, &env, &episodes, 0);
    let (_, within1) = &rows.labels[0];
    // Exactly one square per move is the next position: positives per move = 1.
    let per_move: usize = within1.iter().filter(|&&l| l).count();
    let moves: usize = episodes.iter().map(|e| e.moves as usize).sum();
    assert_eq!(per_move, moves.min(rows.keys.len()));
    for (i, &(ei, t, y, x)) in rows.keys.iter().enumerate() {
        let next = episodes[ei].positions[t + 1];
        assert_eq!(within1[i], next.y == y as i32 && next.x == x as i32);
    }
    // Every solved episode pushed boxes, so some rows are positive for the box target.
    assert!(rows.labels.last().unwrap().1.iter().any(|&l| l));
    // The split is by level: no level on both sides.
    let level_of = |i: usize| rows.keys[i].0;
    let train: std::collections::BTreeSet<usize> = rows.split.train.iter().map(|&i| level_of(i)).collect();
    assert!(rows.split.test.iter().all(|&i| !train.contains(&level_of(i))));
    assert!(!rows.split.test.is_empty());
}

#[test]
fn thinking_steps_advance_the_state_without_moving() {
    let cfg = Config {
        drc: DrcPolicyConfig { encoder_channels: 4, hidden_channels: 4, ..DrcPolicyConfig::default() },
        ..Config::default()
    };
    let (env, levels) = held_out_levels(&cfg, "deploy", 3).unwrap();
    let drc = drc_init(&cfg, &env, &Streams::new(Seed(1))).valid();
    let a = play(&env, &levels, &RecurrentStepper(&drc), 0, true, None);
    let b = play(&env, &levels, &RecurrentStepper(&drc), 3, true, None);
    for (x, y) in a.iter().zip(&b) {
        // Same start cell and the same first observation: thinking moved nothing.
        assert_eq!(x.positions[0], y.positions[0]);
        assert_eq!(x.obs[0], y.obs[0]);
        assert_eq!(x.optimal, y.optimal);
        // But the state the first move reads differs.
        assert_ne!(x.states[0], y.states[0]);
    }
    // Episodes end solved or at the time limit.
    assert!(a.iter().all(|e| e.solved || e.moves == cfg.deploy.max_steps));
}
