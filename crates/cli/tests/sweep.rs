//! Sweeps through the real binary: plan, local run on 2 workers, merge (idempotent) and report,
//! resuming after a killed worker or a killed sweep, bad sweep files, export.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mesalab")
}

fn mesalab(cwd: &Path, args: &[&str]) -> Output {
    Command::new(bin()).args(args).current_dir(cwd).env_remove("MESALAB_STORE").output().expect("the binary runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A sweep of icl-gd so small that a point takes about a second; `slow_steps` makes the point with
/// that many training steps take several seconds.
fn sweep_file(dir: &Path, steps: &[u32], seeds: u32) -> PathBuf {
    let steps: Vec<String> = steps.iter().map(u32::to_string).collect();
    let text = format!(
        "name = \"t\"\nexperiment = \"icl-gd\"\nquick = true\nseeds = {seeds}\nmetrics = [\"final/loss\"]\n\
         set = [\"eval.validation_tasks=200\", \"eval.fit_tasks=200\", \"eval.ood_tasks=100\", \
         \"eval.sensitivity_tasks=100\", \"inside.enabled=false\", \"eval.ood_alphas=[1.0]\"]\n\n\
         [grid]\n\"train.steps\" = [{}]\n",
        steps.join(", ")
    );
    let path = dir.join("sweep.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn point_dirs(sweep: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(sweep.join("points")).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

/// The uid of the newest run in each point's store (`None`: no finished run).
fn finished_uids(sweep: &Path) -> Vec<(String, Option<String>)> {
    point_dirs(sweep)
        .into_iter()
        .map(|d| {
            let key = d.file_name().unwrap().to_string_lossy().to_string();
            let store = d.join("store.sqlite");
            let uid = store.is_file().then(|| mesalab_store::Store::open(&store).unwrap()).and_then(|s| {
                s.runs()
                    .unwrap()
                    .into_iter()
                    .next()
                    .filter(|r| r.status == mesalab_store::RunStatus::Finished)
                    .map(|r| r.uid)
            });
            (key, uid)
        })
        .collect()
}

#[test]
fn local_sweep_runs_merges_idempotently_and_skips_finished_points() {
    let tmp = tempfile::tempdir().unwrap();
    let file = sweep_file(tmp.path(), &[20, 40], 2);
    let dir = tmp.path().join("sw");
    let d = dir.to_str().unwrap();

    let plan = mesalab(tmp.path(), &["sweep", "plan", file.to_str().unwrap(), "--dir", d]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert!(text(&plan).contains("4 point(s)"), "{}", text(&plan));
    assert!(text(&plan).contains("estimate: none"), "no timing exists yet: {}", text(&plan));
    assert!(!dir.exists(), "plan writes nothing");

    let run = mesalab(tmp.path(), &["sweep", "run", file.to_str().unwrap(), "--dir", d, "--workers", "2"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert!(text(&run).contains("4 ran (4 finished, 0 failed)"), "{}", text(&run));
    let uids = finished_uids(&dir);
    assert_eq!(uids.len(), 4);
    assert!(uids.iter().all(|(_, u)| u.is_some()), "{uids:?}");

    // Now the plan's estimate comes from the finished points.
    let plan = mesalab(tmp.path(), &["sweep", "plan", file.to_str().unwrap(), "--dir", d]);
    assert!(text(&plan).contains("4 finished point(s) of this sweep"), "{}", text(&plan));
    assert!(text(&plan).contains("MiB peak per point"), "{}", text(&plan));

    let again = mesalab(tmp.path(), &["sweep", "run", file.to_str().unwrap(), "--dir", d, "--workers", "2"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).contains("4 finished already, 0 to run"), "{}", text(&again));
    assert_eq!(finished_uids(&dir), uids, "finished points are never run again");

    let merge = mesalab(tmp.path(), &["merge", d]);
    assert_eq!(merge.status.code(), Some(0), "{}", text(&merge));
    assert!(text(&merge).contains("4 run(s) copied, 0 already there"), "{}", text(&merge));
    let merged = mesalab_store::Store::open(&dir.join("merged.sqlite")).unwrap();
    let mut merged_uids: Vec<String> = merged.runs().unwrap().into_iter().map(|r| r.uid).collect();
    merged_uids.sort();
    let mut point_uids: Vec<String> = uids.iter().filter_map(|(_, u)| u.clone()).collect();
    point_uids.sort();
    assert_eq!(merged_uids, point_uids);
    drop(merged);
    let twice = mesalab(tmp.path(), &["merge", d]);
    assert!(text(&twice).contains("0 run(s) copied, 4 already there"), "{}", text(&twice));
    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(report.contains("final/loss vs train.steps") && report.contains("<svg"), "the report has the curve");
    assert!(report.contains("Best points"));

    let status = mesalab(tmp.path(), &["sweep", "status", d]);
    assert!(text(&status).contains("4 finished"), "{}", text(&status));
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spawn_sweep(cwd: &Path, file: &Path, dir: &Path) -> Child {
    use std::os::unix::process::CommandExt;
    Command::new(bin())
        .args(["sweep", "run", file.to_str().unwrap(), "--dir", dir.to_str().unwrap(), "--workers", "2"])
        .current_dir(cwd)
        .env_remove("MESALAB_STORE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap()
}

/// The pid of the `mesalab run` of the point whose store has begun a run with `steps` training
/// steps, once there is one.
fn running_point_pid(dir: &Path, steps: u32) -> Option<(String, u32)> {
    for d in point_dirs(dir) {
        let attempt: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("attempt.json")).ok()?).ok()?;
        if attempt["ended_at_ms"].is_number() {
            continue;
        }
        let store = d.join("store.sqlite");
        if !store.is_file() {
            continue;
        }
        let s = mesalab_store::Store::open(&store).ok()?;
        if let Some(run) = s.runs().ok()?.into_iter().next()
            && run.config_toml.contains(&format!("steps = {steps}\n"))
        {
            return Some((d.file_name()?.to_string_lossy().to_string(), attempt["pid"].as_u64()? as u32));
        }
    }
    None
}

#[test]
fn killing_a_worker_fails_only_its_point_and_rerunning_completes_only_that_point() {
    let tmp = tempfile::tempdir().unwrap();
    let file = sweep_file(tmp.path(), &[20, 1500, 30], 1);
    let dir = tmp.path().join("sw");
    let child = spawn_sweep(tmp.path(), &file, &dir);
    let mut found = None;
    wait_for("the slow point to begin its run", Duration::from_secs(60), || {
        found = dir.join("points").is_dir().then(|| running_point_pid(&dir, 1500)).flatten();
        found.is_some()
    });
    let (slow_key, pid) = found.unwrap();
    assert!(Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("2 finished, 1 failed"), "{}", text(&out));
    assert!(text(&out).contains("killed by signal 9") || text(&out).contains("crashed"), "{}", text(&out));
    let before = finished_uids(&dir);
    assert_eq!(before.iter().filter(|(_, u)| u.is_some()).count(), 2, "{before:?}");

    let again = mesalab(
        tmp.path(),
        &["sweep", "run", file.to_str().unwrap(), "--dir", dir.to_str().unwrap(), "--workers", "2"],
    );
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).contains("2 finished already, 1 to run"), "{}", text(&again));
    let after = finished_uids(&dir);
    for ((k, u), (k2, u2)) in before.iter().zip(&after) {
        assert_eq!(k, k2);
        if *k == slow_key {
            assert!(u.is_none() && u2.is_some(), "the killed point ran again and finished");
        } else {
            assert_eq!(u, u2, "a point that had finished was not run again");
        }
    }
    // The killed attempt is kept, whole, beside the new one.
    let kept = dir.join("attempts").join(format!("{slow_key}-1"));
    assert!(kept.join("log.txt").is_file() && kept.join("store.sqlite").is_file(), "{}", kept.display());
}

#[test]
fn killing_the_whole_sweep_and_rerunning_runs_only_the_missing_points() {
    let tmp = tempfile::tempdir().unwrap();
    let file = sweep_file(tmp.path(), &[20, 30, 1500, 1501], 1);
    let dir = tmp.path().join("sw");
    let child = spawn_sweep(tmp.path(), &file, &dir);
    let pgid = child.id();
    let mut finished = 0;
    wait_for("two short points to finish and a slow one to start", Duration::from_secs(90), || {
        if !dir.join("points").is_dir() {
            return false;
        }
        finished = finished_uids(&dir).iter().filter(|(_, u)| u.is_some()).count();
        finished >= 2 && running_point_pid(&dir, 1500).or_else(|| running_point_pid(&dir, 1501)).is_some()
    });
    // The sweep and its `mesalab run` children, all at once, as a lost terminal or an OOM kill would.
    assert!(Command::new("kill").args(["-KILL", "--", &format!("-{pgid}")]).status().unwrap().success());
    let _ = child.wait_with_output();
    let before = finished_uids(&dir);
    let done_before = before.iter().filter(|(_, u)| u.is_some()).count();
    assert!((2..4).contains(&done_before), "{before:?}");

    let again = mesalab(
        tmp.path(),
        &["sweep", "run", file.to_str().unwrap(), "--dir", dir.to_str().unwrap(), "--workers", "2"],
    );
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains(&format!("{done_before} finished already, {} to run", 4 - done_before)),
        "{}",
        text(&again)
    );
    let after = finished_uids(&dir);
    assert!(after.iter().all(|(_, u)| u.is_some()));
    for ((_, u), (_, u2)) in before.iter().zip(&after) {
        if u.is_some() {
            assert_eq!(u, u2, "finished points are kept");
        }
    }
}

#[test]
fn bad_sweep_files_exit_2_naming_file_line_and_closest_key_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        (
            "experiment = \"icl-gd\"\n\n[grid]\n\"train.learnin_rate\" = [1e-3, 1e-2]\n",
            "sweep.toml:4: key `grid.train.learnin_rate`",
        ),
        ("experiment = \"icl-gd\"\n\n[grid]\n\"train.learnin_rate\" = [1e-3, 1e-2]\n", "did you mean `learning_rate`"),
        ("experiment = \"icl-gd\"\nseeeds = 3\n", "sweep.toml:2: key `seeeds`"),
        ("experiment = \"icl-dg\"\n", "sweep.toml:1: key `experiment`"),
        ("experiment = \"icl-gd\"\n[grid]\n\"task.d\" = [3, 0]\n", "sweep.toml:3: key `grid.task.d`"),
        (
            "experiment = \"icl-gd\"\n[random]\nsamples = 2\n\"train.learning_rate\" = { log_unifrom = [1e-4, 1e-2] }\n",
            "did you mean `log_uniform`",
        ),
    ];
    for (content, needle) in cases {
        let file = tmp.path().join("sweep.toml");
        std::fs::write(&file, content).unwrap();
        for sub in ["plan", "run"] {
            let out = mesalab(tmp.path(), &["sweep", sub, "sweep.toml", "--dir", "sw"]);
            assert_eq!(out.status.code(), Some(2), "{content}: {}", text(&out));
            assert!(text(&out).contains(needle), "expected `{needle}` in: {}", text(&out));
            assert!(!tmp.path().join("sw").exists(), "bad input writes nothing");
        }
    }
    let out = mesalab(tmp.path(), &["sweep", "status", "nowhere"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = mesalab(tmp.path(), &["export", "--format", "xls", "--out", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("valid: csv, jsonl, parquet"), "{}", text(&out));
}
