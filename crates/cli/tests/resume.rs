//! `mesalab resume`: a real `mesalab run` process killed with SIGKILL at several points (during
//! training, at the next seed, during evaluation) and resumed each time ends with exactly the
//! results of an uninterrupted run of the same config — `summary.json`, every logged curve and
//! every result table — apart from wall-clock fields. A finished run is refused with exit 2.

use mesalab_store::{RunStatus, Store};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn mesalab(store: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mesalab"));
    c.arg("--store").arg(store).env_remove("MESALAB_STORE");
    c
}

fn run_to_end(cmd: &mut Command) -> Output {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output().expect("the binary runs")
}

/// Starts `args` and SIGKILLs it as soon as `when(run_dir)` holds (polled). Returns false when
/// the process ended first (nothing was killed).
fn kill_when(store: &Path, args: &[String], run_dir: &Path, when: &dyn Fn(&Path) -> bool) -> bool {
    let mut child = mesalab(store).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if child.try_wait().expect("wait").is_some() {
            return false;
        }
        if when(run_dir) {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
            return true;
        }
        assert!(Instant::now() < deadline, "the kill point never came");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Drops wall-clock and identity fields, which no two runs share.
fn without_clock(v: &Value) -> Value {
    const CLOCK: &[&str] =
        &["started_at", "ended_at", "run_id", "wall_seconds", "seconds", "steps_per_second", "train_steps_per_second"];
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !CLOCK.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), without_clock(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_clock).collect()),
        other => other.clone(),
    }
}

/// Everything a run produced that must not depend on interruptions.
#[derive(Debug, PartialEq)]
struct Outcome {
    summary: Value,
    /// `(name, seed, step, value bits)`, sorted; wall-clock curves (`…sps`) left out.
    metrics: Vec<(String, Option<u64>, i64, u64)>,
    tables: Vec<(String, String)>,
    json: Vec<(String, Value)>,
}

fn outcome(store: &Path, run_dir: &Path) -> Outcome {
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap()).unwrap();
    let store = Store::open(store).unwrap();
    let run = store.run_by_dir(run_dir).unwrap().expect("the run is in the store");
    assert_eq!(run.status, RunStatus::Finished);
    let mut metrics: Vec<_> = store
        .metrics(run.id)
        .unwrap()
        .into_iter()
        .filter(|m| !m.name.ends_with("sps"))
        .map(|m| (m.name.to_string(), m.seed, m.step, m.value.to_bits()))
        .collect();
    metrics.sort();
    let tables = store
        .table_names(run.id)
        .unwrap()
        .into_iter()
        .map(|n| {
            let (columns, rows) = store.table_text(run.id, &n).unwrap().unwrap();
            (n, format!("{columns}{rows}"))
        })
        .collect();
    let json = store
        .json_names(run.id)
        .unwrap()
        .into_iter()
        .map(|n| {
            let v: Value = serde_json::from_str(&store.json_text(run.id, &n).unwrap().unwrap()).unwrap();
            (n, without_clock(&v))
        })
        .collect();
    Outcome { summary: without_clock(&summary), metrics, tables, json }
}

fn exists(rel: &'static str) -> impl Fn(&Path) -> bool {
    move |dir: &Path| dir.join(rel).exists()
}

/// Runs `args` once uninterrupted and once killed at each of `kill_points` in turn (resuming
/// after each kill), and checks the two end the same.
/// A named moment to SIGKILL the run at: it comes when the predicate on the run directory holds.
type KillPoint<'a> = (&'a str, &'a dyn Fn(&Path) -> bool);

fn killed_and_resumed_equals_uninterrupted(name: &str, args: &[&str], kill_points: &[KillPoint]) {
    killed_and_resumed_with(name, args, &[], kill_points)
}

/// [`killed_and_resumed_equals_uninterrupted`], every `resume` given `resume_args` too.
fn killed_and_resumed_with(name: &str, args: &[&str], resume_args: &[&str], kill_points: &[KillPoint]) {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store.sqlite");
    let args_for = |dir: &PathBuf| -> Vec<String> {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.extend(["--out".to_string(), dir.display().to_string()]);
        a
    };
    let clean = tmp.path().join("clean");
    let out = run_to_end(mesalab(&store).args(args_for(&clean)));
    assert!(out.status.success(), "{name}: the uninterrupted run failed: {}", String::from_utf8_lossy(&out.stderr));

    let killed = tmp.path().join("killed");
    let mut kills = 0;
    for (i, (what, when)) in kill_points.iter().enumerate() {
        let hit = if i == 0 {
            kill_when(&store, &args_for(&killed), &killed, when)
        } else {
            let mut resume = vec!["resume".to_string(), killed.display().to_string()];
            resume.extend(resume_args.iter().map(|s| s.to_string()));
            kill_when(&store, &resume, &killed, when)
        };
        assert!(hit, "{name}: the run ended before the kill point `{what}`");
        kills += 1;
        let s = Store::open(&store).unwrap();
        s.mark_orphans_crashed().unwrap();
        let run = s.run_by_dir(&killed).unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Crashed, "{name}: after the kill `{what}`");
    }
    let out = run_to_end(mesalab(&store).args(["resume", &killed.display().to_string()]).args(resume_args));
    assert!(out.status.success(), "{name}: the last resume failed: {}", String::from_utf8_lossy(&out.stderr));

    let (a, b) = (outcome(&store, &clean), outcome(&store, &killed));
    // Something to compare: curves, and result tables or JSON results (sokoban-drc stores JSON).
    let has_results = !a.tables.is_empty() || !a.json.is_empty();
    assert!(!a.metrics.is_empty() && has_results, "{name}: nothing stored");
    assert_eq!(a.metrics, b.metrics, "{name}: logged curves differ after resuming");
    assert_eq!(a.tables, b.tables, "{name}: result tables differ after resuming");
    assert_eq!(a.json, b.json, "{name}: JSON results differ after resuming");
    assert_eq!(a.summary, b.summary, "{name}: summary.json differs after resuming");

    // The store recorded every attempt: the first run, one per resume, each crash as such.
    let s = Store::open(&store).unwrap();
    let run = s.run_by_dir(&killed).unwrap().unwrap();
    let attempts = s.attempts(run.id).unwrap();
    assert_eq!(attempts.len(), kills + 1, "{name}: {attempts:?}");
    assert!(attempts[..kills].iter().all(|a| a.status == RunStatus::Crashed), "{name}: {attempts:?}");
    assert_eq!(attempts[kills].status, RunStatus::Finished);

    // A finished run is refused with exit 2, and nothing changes.
    let before = std::fs::read(killed.join("summary.json")).unwrap();
    let out = run_to_end(mesalab(&store).args(["resume".to_string(), killed.display().to_string()]));
    assert_eq!(out.status.code(), Some(2), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("finished"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(killed.join("summary.json")).unwrap(), before);
    let s = Store::open(&store).unwrap();
    assert_eq!(s.attempts(run.id).unwrap().len(), kills + 1);
    assert_eq!(outcome(&store, &killed), b);
}

#[test]
fn icl_gd_killed_three_times_and_resumed_equals_an_uninterrupted_run() {
    killed_and_resumed_equals_uninterrupted(
        "icl-gd",
        &[
            "run",
            "icl-gd",
            "--quick",
            "--seeds",
            "2",
            "--set",
            "train.steps=900",
            "--set",
            "train.checkpoint_every=100",
            "--set",
            "inside.enabled=true",
        ],
        &[
            ("during the first seed's training", &exists("seed-0/train-state.bin")),
            ("during the first seed's evaluation", &exists("seed-0/model.safetensors")),
            ("during the second seed's training", &exists("seed-1/train-state.bin")),
        ],
    );
}

/// A short quick coin-corridor run of 2 seeds, `jobs` of them training at once.
fn coin_corridor_args(jobs: &'static str) -> [&'static str; 11] {
    let steps = "ppo.total_timesteps=40960";
    [
        "run",
        "coin-corridor",
        "--quick",
        "--seeds",
        "2",
        "--set",
        steps,
        "--set",
        "run.checkpoint_every=3",
        "--jobs",
        jobs,
    ]
}

#[test]
fn coin_corridor_killed_three_times_and_resumed_equals_an_uninterrupted_run() {
    // One seed at a time, so the kill points come in this order.
    killed_and_resumed_with(
        "coin-corridor",
        &coin_corridor_args("1"),
        &["--jobs", "1"],
        &[
            ("during the first policy's training", &exists("rp-0/seed-0/train-state.bin")),
            ("during the first policy's evaluation", &exists("rp-0/seed-0/policy.safetensors")),
            ("during the second policy's training", &exists("rp-0/seed-1/train-state.bin")),
        ],
    );
}

#[test]
fn coin_corridor_with_seeds_side_by_side_killed_and_resumed_equals_an_uninterrupted_run() {
    killed_and_resumed_with(
        "coin-corridor --jobs 2",
        &coin_corridor_args("2"),
        &["--jobs", "2"],
        &[("while both seeds train", &|dir: &Path| {
            dir.join("rp-0/seed-0/train-state.bin").exists() && dir.join("rp-0/seed-1/train-state.bin").exists()
        })],
    );
}

#[test]
fn sokoban_drc_killed_twice_and_resumed_equals_an_uninterrupted_run() {
    // One seed, two PPO updates per arm, a state after every update; the DRC trains first.
    killed_and_resumed_with(
        "sokoban-drc",
        &[
            "run",
            "sokoban-drc",
            "--quick",
            "--seeds",
            "1",
            "--set",
            "ppo.total_timesteps=2048",
            "--set",
            "run.checkpoint_every=1",
            "--jobs",
            "1",
        ],
        &["--jobs", "1"],
        &[
            ("during the DRC's training", &exists("seed-0/drc-train-state.bin")),
            // Evaluation and probes run inside each arm's job, right after its training.
            ("during the DRC's evaluation", &exists("seed-0/drc.safetensors")),
        ],
    );
}

#[test]
fn t_maze_memory_killed_and_resumed_equals_an_uninterrupted_run() {
    // One seed; the GRU trains first, then the LSTM, then the MLP.
    killed_and_resumed_with(
        "t-maze-memory",
        &[
            "run",
            "t-maze-memory",
            "--quick",
            "--seeds",
            "1",
            "--set",
            "ppo.total_timesteps=8192",
            "--set",
            "run.checkpoint_every=1",
            "--jobs",
            "1",
        ],
        &["--jobs", "1"],
        &[
            ("during the GRU's training", &exists("seed-0/gru-train-state.bin")),
            ("during the LSTM's training", &exists("seed-0/lstm-train-state.bin")),
        ],
    );
}

#[test]
fn gru_cheese_maze_killed_and_resumed_equals_an_uninterrupted_run() {
    // One seed; the GRU trains first (8 updates), then the MLP.
    killed_and_resumed_with(
        "gru-cheese-maze",
        &[
            "run",
            "gru-cheese-maze",
            "--quick",
            "--seeds",
            "1",
            "--set",
            "ppo.total_timesteps=8192",
            "--set",
            "run.checkpoint_every=1",
            "--jobs",
            "1",
        ],
        &["--jobs", "1"],
        &[("during the GRU's training", &exists("seed-0/gru-train-state.bin"))],
    );
}
