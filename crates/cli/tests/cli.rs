//! The `mesalab` binary: bad input gives a clear message and exit code 2 and writes nothing to the
//! store; a small run works end to end from the command line.

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

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn bad_input_exits_2_with_a_clear_message_and_no_store_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store.sqlite");
    let cases: &[(&[&str], &str)] = &[
        (&["run", "icl-dg"], "did you mean `icl-gd`"),
        (&["run", "icl-gd", "--set", "task.d=0"], "task.d"),
        (&["run", "icl-gd", "--set", "task.n_context=0"], "task.n_context"),
        (&["run", "icl-gd", "--set", "train.learning_rate=-0.1"], "train.learning_rate"),
        (&["run", "icl-gd", "--set", "task.x_dist=cauchy"], "unknown variant `cauchy`"),
        (&["run", "icl-gd", "--set", "model.layres=2"], "did you mean `layers`"),
        (&["run", "icl-gd", "--set", "nonsense"], "KEY=VALUE"),
        (&["run", "icl-gd", "--seeds", "0"], "run.seeds"),
        (&["run", "missing.toml"], "cannot read config missing.toml"),
        (&["render", "cheese-maz"], "cheese-maze"),
    ];
    for (args, needle) in cases {
        let out = mesalab(&store, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: expected `{needle}` in: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{args:?} panicked");
    }
    assert!(!store.exists(), "bad input must not create or touch the store");
}

#[test]
fn config_file_errors_name_file_line_and_closest_key() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("my.toml");
    std::fs::write(&cfg, "experiment = \"icl-gd\"\n\n[train]\nlearning_rat = 0.01\n").unwrap();
    let out = mesalab(&tmp.path().join("s.sqlite"), &["run", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let msg = stderr(&out);
    assert!(msg.contains("my.toml:4") && msg.contains("train.learning_rat") && msg.contains("learning_rate"), "{msg}");
}

#[test]
fn unwritable_store_path_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let out = mesalab(&file.join("store.sqlite"), &["run", "icl-gd", "--set", "train.steps=1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("plain-file"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"));
}

#[test]
fn list_shows_experiments_and_envs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = mesalab(&tmp.path().join("s.sqlite"), &["list"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["icl-gd", "icl-gd-2layer", "coin-corridor-v1", "cartpole-v1"] {
        assert!(text.contains(name), "{name} missing from `list`");
    }
}

#[test]
fn a_closed_stdout_pipe_exits_141_without_a_panic() {
    // The reader end is closed before the binary starts, so its first write gets EPIPE every time
    // (what `mesalab merge DIR | grep -q ...` does once grep has matched).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mesalab"))
        .arg("list")
        .arg("--store")
        .arg(tmp.path().join("s.sqlite"))
        .env_remove("MESALAB_STORE")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(141), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn small_run_then_report_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s.sqlite");
    let dir = tmp.path().join("run");
    let args = [
        "run",
        "icl-gd",
        "--seeds",
        "1",
        "--out",
        dir.to_str().unwrap(),
        "--set",
        "train.steps=30",
        "--set",
        "train.batch_size=64",
        "--set",
        "eval.validation_tasks=200",
        "--set",
        "eval.fit_tasks=200",
        "--set",
        "eval.ood_tasks=20",
        "--set",
        "eval.sensitivity_tasks=20",
        "--set",
        "eval.gd_steps_max=1",
    ];
    let out = mesalab(&store, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("report.html"));
    assert!(dir.join("summary.json").is_file());
    // The same --out again is refused rather than overwriting a finished run.
    let again = mesalab(&store, &args);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("already exists"), "{}", stderr(&again));

    std::fs::remove_file(dir.join("report.html")).unwrap();
    let out = mesalab(&store, &["report", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.join("report.html").is_file());
}

#[test]
fn hooks_lists_every_hook_point_with_its_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s.sqlite");
    let out = mesalab(&store, &["hooks", "icl-gd", "--set", "model.layers=2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    // d = 10, N = 10: tokens of width 11, 11 positions, 10 keys (the query is not a key).
    assert!(text.contains("blocks.1.hook_resid_post") && text.contains("[2, 11, 11]"), "{text}");
    assert!(text.contains("blocks.0.attn.hook_k") && text.contains("[2, 1, 10, 11]"), "{text}");
    assert_eq!(text.lines().count(), 18, "9 hooks per layer: {text}");
    let bad = mesalab(&store, &["hooks", "icl-gdd"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("icl-gd"), "{}", stderr(&bad));
}

/// The runs recorded in `store` (none if the file does not exist; opening it would create it).
fn runs(store: &Path) -> Vec<mesalab_store::RunRecord> {
    if !store.exists() {
        return Vec::new();
    }
    mesalab_store::Store::open(store).unwrap().runs().unwrap()
}

/// A few-second icl-gd run.
const SMALL: &[&str] = &[
    "--seeds",
    "1",
    "--set",
    "train.steps=30",
    "--set",
    "train.batch_size=64",
    "--set",
    "eval.validation_tasks=200",
    "--set",
    "eval.fit_tasks=200",
    "--set",
    "eval.ood_tasks=20",
    "--set",
    "eval.sensitivity_tasks=20",
    "--set",
    "eval.gd_steps_max=1",
];

#[test]
fn bad_input_exits_2_and_creates_neither_run_nor_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s.sqlite");
    let out_dir = tmp.path().join("out");
    let out = out_dir.to_str().unwrap();
    // An unknown key: the plan fails before the store is opened.
    let o = mesalab(&store, &["run", "icl-gd", "--set", "train.stepz=5", "--out", out]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("train.stepz") && stderr(&o).contains("steps"), "{}", stderr(&o));
    assert!(!store.exists(), "the store must not be created");
    assert!(!out_dir.exists(), "the run directory must not be created");

    // Setup errors once the store is open record no run and leave no directory behind.
    mesalab_store::Store::open(&store).unwrap();
    let file = tmp.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let occupied = tmp.path().join("occupied");
    std::fs::create_dir(&occupied).unwrap();
    std::fs::write(occupied.join("notes.txt"), "mine").unwrap();
    for dir in [file.join("run"), occupied.clone()] {
        let mut args = vec!["run", "icl-gd", "--out", dir.to_str().unwrap()];
        args.extend(SMALL);
        let o = mesalab(&store, &args);
        assert_eq!(o.status.code(), Some(2), "{}: {}", dir.display(), stderr(&o));
        assert!(!stderr(&o).contains("panicked"));
    }
    assert!(runs(&store).is_empty(), "no run may be recorded on bad input");
    assert_eq!(std::fs::read_dir(&occupied).unwrap().count(), 1, "an occupied --out is left as it was");
}

#[test]
fn a_run_that_fails_after_it_started_exits_1_and_is_marked_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s.sqlite");
    let dir = tmp.path().join("run");
    // Valid values that make training diverge: the run starts, logs, then fails.
    let mut args = vec!["run", "icl-gd", "--out", dir.to_str().unwrap()];
    args.extend(SMALL);
    args.extend(["--set", "train.learning_rate=1e6", "--set", "model.init_std=1.0", "--set", "train.grad_clip_norm=0"]);
    let o = mesalab(&store, &args);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("failed") && stderr(&o).contains("diverged"), "{}", stderr(&o));
    let runs = runs(&store);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, mesalab_store::RunStatus::Failed);
    assert!(runs[0].error.as_deref().is_some_and(|e| e.contains("diverged")), "{:?}", runs[0].error);
    assert!(dir.join("config.toml").is_file(), "a failed run keeps its config.toml");
    assert!(!dir.join("summary.json").exists(), "only a finished run has a summary.json");
}

#[test]
fn an_interrupted_run_exits_130_and_is_marked_interrupted() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s.sqlite");
    let dir = tmp.path().join("run");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesalab"))
        .args(["run", "icl-gd", "--quick", "--seeds", "1", "--set", "train.steps=100000", "--out"])
        .arg(&dir)
        .arg("--store")
        .arg(&store)
        .env_remove("MESALAB_STORE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    // `config.toml` is written once the Ctrl-C handler is installed, just before the run is recorded.
    let start = std::time::Instant::now();
    while !dir.join("config.toml").exists() {
        assert!(start.elapsed().as_secs() < 60, "the run never started");
        assert!(child.try_wait().unwrap().is_none(), "the run exited before it started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    let killed = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed().as_secs() > 180 {
            let _ = child.kill();
            panic!("the run did not stop after SIGINT");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let runs = runs(&store);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, mesalab_store::RunStatus::Interrupted);
    assert!(dir.join("config.toml").is_file() && !dir.join("summary.json").exists());
}

#[test]
fn a_finished_run_has_its_outputs_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s.sqlite");
    let dir = tmp.path().join("run");
    let mut args = vec!["run", "icl-gd", "--out", dir.to_str().unwrap()];
    args.extend(SMALL);
    let o = mesalab(&store, &args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = mesalab_store::Store::open(&store).unwrap();
    let run = s.runs().unwrap().remove(0);
    assert_eq!(run.status, mesalab_store::RunStatus::Finished);
    let artifacts = s.artifacts(run.id).unwrap();
    for file in ["config.toml", "summary.json", "report.html"] {
        assert!(dir.join(file).is_file(), "{file}");
        assert!(artifacts.iter().any(|a| a.artifact.path == Path::new(file)), "{file} not recorded");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["status"], "finished");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("(finished)"), "the report's header shows the final status");
}

#[test]
fn render_and_play_with_an_experiment_need_exactly_one_source() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s.sqlite");
    let cases: &[(&[&str], &str)] = &[
        (&["render", "--experiment", "icl-gd"], "no environment"),
        (&["render", "--experiment", "icl-gd"], "mesalab render ENV"),
        (&["render", "--experiment", "icl-dg"], "did you mean `icl-gd`"),
        (&["render", "--experiment", "coin-corridor", "--split", "test"], "`train`"),
        (&["render", "--experiment", "icl-gd", "--set", "model.layrs=2"], "did you mean `layers`"),
        (&["render"], "--experiment"),
        (&["render", "coin-corridor-v1", "--experiment", "coin-corridor"], "cannot be used with"),
        (&["render", "coin-corridor-v1", "--quick"], "--experiment"),
        (&["play", "--experiment", "icl-gd"], "interactive terminal"),
        (&["play"], "--experiment"),
    ];
    for (args, needle) in cases {
        let out = mesalab(&store, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: expected `{needle}` in: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{args:?} panicked");
    }
    assert!(!store.exists(), "render and play never touch the store");
}

#[test]
fn render_an_experiments_deploy_levels_to_svg() {
    let tmp = tempfile::tempdir().unwrap();
    let svg = tmp.path().join("x.svg");
    let out = mesalab(
        &tmp.path().join("s.sqlite"),
        &["render", "--experiment", "coin-corridor", "--split", "deploy", "-o", svg.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("<svg"), "{text}");
    assert!(stderr(&out).contains("experiment coin-corridor, split deploy"), "{}", stderr(&out));
    let ascii = mesalab(&tmp.path().join("s.sqlite"), &["render", "--experiment", "coin-corridor", "--quick"]);
    assert_eq!(ascii.status.code(), Some(0), "{}", stderr(&ascii));
    assert!(!ascii.stdout.is_empty());
}

/// Removes, at any depth, what differs between any two runs of the same plan: ids, clocks and
/// durations, the binary's revision.
fn strip_clocks(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for key in [
                "run_id",
                "started_at",
                "ended_at",
                "wall_seconds",
                "seconds",
                "steps_per_second",
                "train_steps_per_second",
                "code_revision",
            ] {
                map.remove(key);
            }
            map.values_mut().for_each(strip_clocks);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_clocks),
        _ => {}
    }
}

#[test]
fn demo_jobs_run_experiments_in_parallel_with_results_identical_to_one_job() {
    let tmp = tempfile::tempdir().unwrap();
    let only = "alignment-faking,absent-supervisor";
    let summaries = |jobs: &str| {
        let out_dir = tmp.path().join(format!("jobs-{jobs}"));
        let store = tmp.path().join(format!("jobs-{jobs}.sqlite"));
        let out = mesalab(&store, &["demo", "--only", only, "--jobs", jobs, "--out", out_dir.to_str().unwrap()]);
        assert!(out.status.success(), "--jobs {jobs}: {}", stderr(&out));
        assert!(stderr(&out).contains(&format!("2 experiments, {jobs} at a time")), "{}", stderr(&out));
        let index = std::fs::read_to_string(out_dir.join("index.html")).unwrap();
        let read = |name: &str| {
            let text = std::fs::read_to_string(out_dir.join(name).join("summary.json")).unwrap();
            let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
            strip_clocks(&mut v);
            v
        };
        (read("alignment-faking"), read("absent-supervisor"), index)
    };
    let (one, two) = (summaries("1"), summaries("2"));
    assert_eq!(one.0, two.0, "alignment-faking differs between --jobs 1 and --jobs 2");
    assert_eq!(one.1, two.1, "absent-supervisor differs between --jobs 1 and --jobs 2");
    assert_eq!(one.2, two.2, "the index page differs");
    assert!(one.1["verdict"]["checks"].as_array().is_some_and(|c| !c.is_empty()));
}

/// Every `*.safetensors` under `dir`, as (path relative to `dir`, bytes), sorted.
fn checkpoints(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "safetensors") {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                found.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn run_jobs_train_seeds_side_by_side_with_results_identical_to_one_job() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |jobs: &str| {
        let out_dir = tmp.path().join(format!("jobs-{jobs}"));
        let store = tmp.path().join(format!("jobs-{jobs}.sqlite"));
        let args = [
            "run",
            "boat-race",
            "--quick",
            "--seeds",
            "3",
            "--set",
            "ppo.total_timesteps=16384",
            "--jobs",
            jobs,
            "--out",
            out_dir.to_str().unwrap(),
        ];
        let out = mesalab(&store, &args);
        assert!(out.status.success(), "--jobs {jobs}: {}", stderr(&out));
        let text = std::fs::read_to_string(out_dir.join("summary.json")).unwrap();
        let mut summary: serde_json::Value = serde_json::from_str(&text).unwrap();
        strip_clocks(&mut summary);
        (summary, checkpoints(&out_dir))
    };
    let (one, three) = (run("1"), run("3"));
    assert_eq!(one.1.len(), 3, "one policy per seed: {:?}", one.1.iter().map(|c| &c.0).collect::<Vec<_>>());
    assert_eq!(one.1, three.1, "checkpoints differ between --jobs 1 and --jobs 3");
    assert_eq!(one.0, three.0, "summaries differ between --jobs 1 and --jobs 3");
    let out = mesalab(&tmp.path().join("x.sqlite"), &["run", "boat-race", "--jobs", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn demo_only_with_an_unknown_experiment_exits_2_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s.sqlite");
    let out = mesalab(&store, &["demo", "--only", "icl-gd,icl-dg", "--out", tmp.path().join("d").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no experiment `icl-dg`") && stderr(&out).contains("icl-gd"), "{}", stderr(&out));
    assert!(!store.exists() && !tmp.path().join("d").exists());
    let out = mesalab(&store, &["demo", "--jobs", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
