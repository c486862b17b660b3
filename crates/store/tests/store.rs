//! The store through its public API: round trips, invariants, concurrency, crashes, bad files.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};

use mesalab_store::{
    Artifact, ArtifactKind, MetricRow, NewRun, ResultTable, RunId, RunOutcome, RunStatus, SCHEMA_VERSION, Store,
    StoreError,
};
use serde_json::json;

fn new_run(run_dir: &Path) -> NewRun {
    NewRun {
        experiment: "icl-linear-regression".into(),
        config_toml: "[train]\nsteps = 100\n".into(),
        seeds: vec![0, 1, u64::MAX],
        code_revision: Some("abc1234-dirty".into()),
        run_dir: run_dir.to_path_buf(),
        quick: true,
    }
}

fn temp_store() -> (tempfile::TempDir, PathBuf, Store) {
    let dir = tempfile::tempdir().expect("create temp dir");
    let path = dir.path().join("nested/deeper/mesalab.sqlite");
    let store = Store::open(&path).expect("open store");
    (dir, path, store)
}

#[test]
fn runs_round_trip_and_finish() {
    let (dir, path, store) = temp_store();
    let run_dir = dir.path().join("run-a");
    std::fs::create_dir(&run_dir).expect("mkdir run dir");
    let id = store.begin_run(&new_run(&run_dir)).expect("begin run");

    let run = store.run(id).expect("read run").expect("run exists");
    assert_eq!(run.id, id);
    assert_eq!(run.experiment, "icl-linear-regression");
    assert_eq!(run.config_toml, "[train]\nsteps = 100\n");
    assert_eq!(run.seeds, vec![0, 1, u64::MAX]);
    assert_eq!(run.code_revision.as_deref(), Some("abc1234-dirty"));
    assert_eq!(run.run_dir, std::fs::canonicalize(&run_dir).expect("canonicalize"));
    assert!(run.quick);
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.error, None);
    assert_eq!(run.pid, Some(std::process::id()));
    assert!(run.started_at_ms > 1_600_000_000_000, "{}", run.started_at_ms);
    assert_eq!(run.ended_at_ms, None);

    store.finish_run(id, RunOutcome::Finished).expect("finish");
    let run = store.run(id).expect("read run").expect("run exists");
    assert_eq!(run.status, RunStatus::Finished);
    let ended = run.ended_at_ms.expect("ended_at set");
    assert!(ended >= run.started_at_ms);

    let failed = store.begin_run(&new_run(&run_dir)).expect("begin run");
    store.finish_run(failed, RunOutcome::Failed("loss diverged at step 7".into())).expect("fail run");
    let interrupted = store.begin_run(&new_run(&run_dir)).expect("begin run");
    store.finish_run(interrupted, RunOutcome::Interrupted).expect("interrupt run");

    let runs = store.runs().expect("list runs");
    let ids: Vec<RunId> = runs.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![interrupted, failed, id], "newest first");
    assert_eq!(runs[0].status, RunStatus::Interrupted);
    assert_eq!(runs[1].status, RunStatus::Failed);
    assert_eq!(runs[1].error.as_deref(), Some("loss diverged at step 7"));

    // Reopened from disk, everything is still there.
    drop(store);
    let store = Store::open(&path).expect("reopen");
    assert_eq!(store.runs().expect("list runs"), runs);
    assert_eq!(store.run(RunId(9999)).expect("read"), None);
}

#[test]
fn metrics_round_trip() {
    let store = Store::open_in_memory().expect("open");
    let id = store.begin_run(&new_run(Path::new("/tmp/x"))).expect("begin");
    let name = String::from("deploy/intended_return");
    store
        .log_metrics(
            id,
            &[
                MetricRow::new(Some(1), 10, "train/loss", 0.5),
                MetricRow::new(Some(1), 0, "train/loss", 2.0),
                MetricRow::new(Some(2), 0, "train/loss", 3.0),
                MetricRow::new(None, 0, "train/loss", 2.5),
                MetricRow::new(Some(u64::MAX), 5, "train/loss", -1.0),
                MetricRow::new(Some(1), 3, name.clone(), f64::NAN),
                MetricRow::new(Some(1), 4, name.as_str(), f64::INFINITY),
            ],
        )
        .expect("log");
    store.log_metrics(id, &[MetricRow::new(Some(1), 20, "train/loss", 0.25)]).expect("log more");

    assert_eq!(
        store.metric_series(id, Some(1), "train/loss").expect("series"),
        vec![(0, 2.0), (10, 0.5), (20, 0.25)],
        "ordered by step"
    );
    assert_eq!(
        store.metric_series(id, None, "train/loss").expect("series"),
        vec![(0, 2.5)],
        "None selects the aggregates only"
    );
    assert_eq!(store.metric_series(id, Some(u64::MAX), "train/loss").expect("series"), vec![(5, -1.0)]);
    let special = store.metric_series(id, Some(1), &name).expect("series");
    assert_eq!(special.len(), 2);
    assert!(special[0].1.is_nan(), "NaN round-trips");
    assert_eq!(special[1], (4, f64::INFINITY));
    assert!(store.metric_series(id, Some(3), "train/loss").expect("series").is_empty());
    assert_eq!(
        store.metric_names(id).expect("names"),
        vec!["deploy/intended_return".to_string(), "train/loss".to_string()]
    );
    assert_eq!(store.metric_seeds(id).expect("seeds"), vec![1, 2, u64::MAX]);
    assert!(matches!(
        store.metric_series(RunId(77), None, "train/loss"),
        Err(StoreError::UnknownRun { id: RunId(77), .. })
    ));
}

#[test]
fn a_bad_row_rolls_back_the_whole_batch() {
    let store = Store::open_in_memory().expect("open");
    let id = store.begin_run(&new_run(Path::new("/tmp/x"))).expect("begin");
    store.log_metrics(id, &[MetricRow::new(Some(0), 0, "loss", 1.0)]).expect("log");
    let mut batch: Vec<MetricRow<'_>> =
        (1..100).map(|step| MetricRow::new(Some(0), step, "loss", 1.0 / step as f64)).collect();
    batch.push(MetricRow::new(Some(0), 100, "", 0.0));
    let err = store.log_metrics(id, &batch).expect_err("empty name");
    assert!(matches!(err, StoreError::InvalidInput { what: "metric name", .. }), "{err}");
    assert!(err.to_string().contains("row 99"), "{err}");
    assert_eq!(
        store.metric_series(id, Some(0), "loss").expect("series"),
        vec![(0, 1.0)],
        "none of the 99 good rows before the bad one was kept"
    );
}

#[test]
fn tables_and_json_round_trip_and_replace() {
    let store = Store::open_in_memory().expect("open");
    let id = store.begin_run(&new_run(Path::new("/tmp/x"))).expect("begin");
    let table = ResultTable {
        name: "baselines".into(),
        columns: vec!["model".into(), "mse".into(), "ci95".into()],
        rows: vec![
            vec![json!("transformer"), json!(0.125), json!([0.1, 0.15])],
            vec![json!("gd"), json!(0.25), json!(null)],
        ],
    };
    store.put_table(id, &table).expect("put table");
    assert_eq!(store.table(id, "baselines").expect("get"), Some(table.clone()));
    assert_eq!(store.table(id, "missing").expect("get"), None);

    let replaced = ResultTable { rows: vec![vec![json!("ols"), json!(0.0), json!(null)]], ..table.clone() };
    store.put_table(id, &replaced).expect("replace table");
    assert_eq!(store.table(id, "baselines").expect("get"), Some(replaced));
    let heatmap = ResultTable { name: "heatmap".into(), columns: vec![], rows: vec![] };
    store.put_table(id, &heatmap).expect("put empty table");
    assert_eq!(store.table(id, "heatmap").expect("get"), Some(heatmap));
    assert_eq!(store.table_names(id).expect("names"), vec!["baselines".to_string(), "heatmap".to_string()]);

    let ragged =
        ResultTable { name: "ragged".into(), columns: vec!["a".into(), "b".into()], rows: vec![vec![json!(1)]] };
    let err = store.put_table(id, &ragged).expect_err("ragged rows");
    assert!(err.to_string().contains("row 0 has 1 cells"), "{err}");
    assert_eq!(store.table(id, "ragged").expect("get"), None);

    let blob = json!({"curve": [1.0, 0.5, 0.25], "label": "ood", "nested": {"k": true}});
    store.put_json(id, "ood_curve", &blob).expect("put json");
    assert_eq!(store.get_json::<serde_json::Value>(id, "ood_curve").expect("get json"), Some(blob));
    // Typed values too; replacing keeps one value per name.
    store.put_json(id, "ood_curve", &vec![3u32, 2, 1]).expect("replace json");
    assert_eq!(store.get_json::<Vec<u32>>(id, "ood_curve").expect("get"), Some(vec![3, 2, 1]));
    let err = store.get_json::<String>(id, "ood_curve").expect_err("wrong shape");
    assert!(matches!(err, StoreError::Json { .. }), "{err}");
    assert_eq!(store.get_json::<u8>(id, "missing").expect("get"), None);
    assert_eq!(store.json_names(id).expect("names"), vec!["ood_curve".to_string()]);
}

#[test]
fn artifacts_round_trip() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_in_memory().expect("open");
    let run_dir = dir.path().join("run");
    std::fs::create_dir_all(run_dir.join("checkpoints")).expect("mkdir");
    std::fs::write(run_dir.join("checkpoints/final.safetensors"), [0u8; 1234]).expect("write");
    let id = store.begin_run(&new_run(&run_dir)).expect("begin");

    let checkpoint = Artifact::new("final", ArtifactKind::Checkpoint, "checkpoints/final.safetensors")
        .with_size_from(&run_dir)
        .expect("stat")
        .with_sha256("AB".repeat(32));
    store.add_artifact(id, &checkpoint).expect("add");
    let report = Artifact::new("report", ArtifactKind::Report, "./report.html");
    store.add_artifact(id, &report).expect("add");
    let other = Artifact::new("trace", ArtifactKind::Other("trace".into()), "trace.jsonl");
    store.add_artifact(id, &other).expect("add");

    let records = store.artifacts(id).expect("list");
    assert_eq!(records.len(), 3);
    let find = |name: &str| records.iter().find(|r| r.artifact.name == name).expect("artifact listed");
    let stored = &find("final").artifact;
    assert_eq!(stored.kind, ArtifactKind::Checkpoint);
    assert_eq!(stored.path, Path::new("checkpoints/final.safetensors"));
    assert_eq!(stored.size_bytes, Some(1234));
    assert_eq!(stored.sha256, Some("ab".repeat(32)), "stored lowercase");
    assert_eq!(find("report").artifact.path, Path::new("report.html"));
    assert_eq!(find("report").artifact.size_bytes, None);
    assert_eq!(find("trace").artifact.kind, ArtifactKind::Other("trace".into()));
    assert!(records.iter().all(|r| r.created_at_ms > 1_600_000_000_000));

    // Same name replaces.
    let moved = Artifact::new("report", ArtifactKind::Report, "html/index.html");
    store.add_artifact(id, &moved).expect("replace");
    let records = store.artifacts(id).expect("list");
    assert_eq!(records.len(), 3);
    assert!(records.iter().any(|r| r.artifact == moved));

    for bad in [
        Artifact::new("abs", ArtifactKind::Summary, "/etc/passwd"),
        Artifact::new("up", ArtifactKind::Summary, "../other-run/summary.json"),
        Artifact::new("empty", ArtifactKind::Summary, ""),
        Artifact::new("", ArtifactKind::Summary, "a.json"),
        Artifact::new("hash", ArtifactKind::Summary, "a.json").with_sha256("xyz"),
    ] {
        let err = store.add_artifact(id, &bad).expect_err("rejected");
        assert!(matches!(err, StoreError::InvalidInput { .. }), "{err}");
    }
    assert_eq!(store.artifacts(id).expect("list").len(), 3);
    let missing = Artifact::new("gone", ArtifactKind::Plot, "nope.svg").with_size_from(&run_dir);
    assert!(missing.is_err());
}

#[test]
fn ended_runs_are_never_modified() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("s.sqlite")).expect("open");
    let run_dir = dir.path().join("run");
    let done = store.begin_run(&new_run(&run_dir)).expect("begin");
    store.log_metrics(done, &[MetricRow::new(Some(0), 1, "loss", 1.0)]).expect("log");
    let table = ResultTable { name: "t".into(), columns: vec!["x".into()], rows: vec![vec![json!(1)]] };
    store.put_table(done, &table).expect("table");
    store.put_json(done, "j", &json!(1)).expect("json");
    let artifact = Artifact::new("a", ArtifactKind::Summary, "a.json");
    store.add_artifact(done, &artifact).expect("artifact");
    store.finish_run(done, RunOutcome::Finished).expect("finish");
    let before = store.run(done).expect("read").expect("exists");
    let artifacts_before = store.artifacts(done).expect("artifacts");

    // A later run in the same directory, with the same names, that fails.
    let later = store.begin_run(&new_run(&run_dir)).expect("begin");
    store.log_metrics(later, &[MetricRow::new(Some(0), 1, "loss", 9.0)]).expect("log");
    store.put_table(later, &ResultTable { rows: vec![vec![json!(9)]], ..table.clone() }).expect("table");
    store.put_json(later, "j", &json!(9)).expect("json");
    store.finish_run(later, RunOutcome::Failed("boom".into())).expect("fail");

    // Every write aimed at an ended run is refused, naming the run and its status.
    let refused = |result: Result<(), StoreError>| match result {
        Err(StoreError::RunEnded { id, status }) => (id, status),
        other => panic!("expected RunEnded, got {other:?}"),
    };
    assert_eq!(refused(store.finish_run(done, RunOutcome::Failed("late error".into()))), (done, RunStatus::Finished));
    assert_eq!(refused(store.finish_run(done, RunOutcome::Finished)), (done, RunStatus::Finished));
    assert_eq!(refused(store.finish_run(later, RunOutcome::Finished)), (later, RunStatus::Failed));
    refused(store.log_metrics(done, &[MetricRow::new(Some(0), 2, "loss", 2.0)]));
    refused(store.put_table(done, &ResultTable { rows: vec![], ..table.clone() }));
    refused(store.put_json(done, "j", &json!(2)));
    refused(store.add_artifact(done, &Artifact::new("b", ArtifactKind::Plot, "b.svg")));
    let err = store.finish_run(done, RunOutcome::Interrupted).expect_err("ended");
    assert!(err.to_string().contains("never modified"), "{err}");

    assert_eq!(store.run(done).expect("read").expect("exists"), before);
    assert_eq!(store.metric_series(done, Some(0), "loss").expect("series"), vec![(1, 1.0)]);
    assert_eq!(store.table(done, "t").expect("table"), Some(table));
    assert_eq!(store.get_json::<i32>(done, "j").expect("json"), Some(1));
    assert_eq!(store.artifacts(done).expect("artifacts"), artifacts_before);

    assert!(matches!(store.finish_run(RunId(12345), RunOutcome::Finished), Err(StoreError::UnknownRun { .. })));
}

#[test]
fn run_by_dir_compares_canonical_paths() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("s.sqlite")).expect("open");
    let real = dir.path().join("runs/exp-1");
    std::fs::create_dir_all(&real).expect("mkdir");
    let link = dir.path().join("latest");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");

    let first = store.begin_run(&new_run(&real)).expect("begin");
    let second = store.begin_run(&new_run(&link)).expect("begin");
    for query in [real.clone(), link.clone(), real.join("."), dir.path().join("runs/../runs/exp-1")] {
        let found = store.run_by_dir(&query).expect("lookup").expect("found");
        assert_eq!(found.id, second, "newest run in {}", query.display());
    }
    assert!(store.run(first).expect("read").is_some());

    // A directory that did not exist when its run began is found once it exists, via a symlink.
    let later = dir.path().join("runs/exp-2");
    let third = store.begin_run(&new_run(&later)).expect("begin");
    std::fs::create_dir_all(&later).expect("mkdir");
    let link2 = dir.path().join("link2");
    std::os::unix::fs::symlink(&later, &link2).expect("symlink");
    assert_eq!(store.run_by_dir(&link2).expect("lookup").map(|r| r.id), Some(third));
    assert_eq!(store.run_by_dir(&dir.path().join("nothing")).expect("lookup"), None);
}

#[test]
fn two_handles_write_concurrently() {
    const BATCHES: i64 = 60;
    const ROWS: i64 = 50;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = Arc::new(dir.path().join("shared.sqlite"));
    let barrier = Arc::new(Barrier::new(2));
    let workers: Vec<_> = (0..2u64)
        .map(|worker| {
            let path = Arc::clone(&path);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || -> Result<RunId, StoreError> {
                // Both open (and race to create and migrate) the fresh file at once.
                barrier.wait();
                let store = Store::open(&path);
                // Wait for the other worker even if this open failed, so a failure is reported
                // instead of deadlocking the barrier.
                barrier.wait();
                let store = store?;
                let id = store.begin_run(&new_run(Path::new("/tmp/concurrent")))?;
                for batch in 0..BATCHES {
                    let rows: Vec<_> =
                        (0..ROWS).map(|i| MetricRow::new(Some(worker), batch * ROWS + i, "loss", i as f64)).collect();
                    store.log_metrics(id, &rows)?;
                    if batch % 10 == 0 {
                        store.put_json(id, "progress", &batch)?;
                        let _ = store.runs()?;
                    }
                }
                store.finish_run(id, RunOutcome::Finished)?;
                Ok(id)
            })
        })
        .collect();
    let ids: Vec<RunId> =
        workers.into_iter().map(|w| w.join().expect("worker panicked").expect("worker failed")).collect();
    assert_ne!(ids[0], ids[1]);

    let store = Store::open(&path).expect("reopen");
    for (worker, id) in ids.into_iter().enumerate() {
        let series = store.metric_series(id, Some(worker as u64), "loss").expect("series");
        assert_eq!(series.len(), (BATCHES * ROWS) as usize);
        assert_eq!(store.run(id).expect("read").expect("exists").status, RunStatus::Finished);
    }
}

#[test]
fn one_handle_shared_across_threads() {
    let store = Arc::new(Store::open_in_memory().expect("open"));
    let id = store.begin_run(&new_run(Path::new("/tmp/x"))).expect("begin");
    let threads: Vec<_> = (0..4u64)
        .map(|seed| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for step in 0..100 {
                    store.log_metrics(id, &[MetricRow::new(Some(seed), step, "loss", 0.0)]).expect("log");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread panicked");
    }
    assert_eq!(store.metric_seeds(id).expect("seeds"), vec![0, 1, 2, 3]);
}

/// Environment variable that turns [`crash_child`] into the helper process of
/// [`a_killed_process_leaves_a_crashed_run`].
const CRASH_CHILD_ENV: &str = "MESALAB_STORE_TEST_CRASH_CHILD";

/// Helper process: begins a run, reports its id, then waits to be killed.
#[test]
#[ignore = "helper process, started by a_killed_process_leaves_a_crashed_run"]
fn crash_child() {
    let Some(path) = std::env::var_os(CRASH_CHILD_ENV) else {
        return;
    };
    let store = Store::open(Path::new(&path)).expect("child: open");
    let id = store.begin_run(&new_run(Path::new("/tmp/crashing"))).expect("child: begin");
    store.log_metrics(id, &[MetricRow::new(Some(0), 0, "loss", 1.0)]).expect("child: log");
    println!("RUN_ID={}", id.0);
    std::thread::sleep(std::time::Duration::from_secs(120));
}

#[test]
fn a_killed_process_leaves_a_crashed_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crash.sqlite");
    let store = Store::open(&path).expect("open");
    let finished = store.begin_run(&new_run(Path::new("/tmp/ok"))).expect("begin");
    store.finish_run(finished, RunOutcome::Finished).expect("finish");
    let finished_before = store.run(finished).expect("read").expect("exists");
    // A run of this (live) process whose handle is dropped without finishing stays running.
    let ours = {
        let other = Store::open(&path).expect("open second handle");
        other.begin_run(&new_run(Path::new("/tmp/ours"))).expect("begin")
    };

    let mut child = Command::new(std::env::current_exe().expect("test binary path"))
        .args(["crash_child", "--exact", "--ignored", "--nocapture"])
        .env(CRASH_CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let child_run = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("RUN_ID=").map(str::to_owned))
        .and_then(|id| id.trim().parse().ok())
        .map(RunId);
    let Some(child_run) = child_run else {
        let _ = child.kill();
        panic!("child did not report a run id");
    };
    assert_eq!(store.mark_orphans_crashed().expect("mark"), 0, "child still alive");
    child.kill().expect("kill child");
    child.wait().expect("reap child");

    assert_eq!(store.mark_orphans_crashed().expect("mark"), 1);
    let crashed = store.run(child_run).expect("read").expect("exists");
    assert_eq!(crashed.status, RunStatus::Crashed);
    assert!(crashed.ended_at_ms.is_some());
    assert!(crashed.error.as_deref().is_some_and(|e| e.contains("exited without ending")), "{:?}", crashed.error);
    assert_eq!(
        store.metric_series(child_run, Some(0), "loss").expect("series"),
        vec![(0, 1.0)],
        "what the crashed run logged is kept"
    );
    assert_eq!(store.run(finished).expect("read").expect("exists"), finished_before, "a finished run stays untouched");
    assert_eq!(
        store.run(ours).expect("read").expect("exists").status,
        RunStatus::Running,
        "a run of a live process is not an orphan"
    );
    assert_eq!(store.mark_orphans_crashed().expect("mark"), 0, "idempotent");
    assert!(matches!(
        store.finish_run(child_run, RunOutcome::Finished),
        Err(StoreError::RunEnded { status: RunStatus::Crashed, .. })
    ));
}

#[test]
fn corrupt_file_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: [(&str, Vec<u8>); 3] = [
        ("text.sqlite", b"this is a CSV file, not a database\n".repeat(200)),
        ("random.sqlite", (0..8192u32).map(|i| (i * 7919 % 251) as u8).collect()),
        // A valid SQLite header followed by garbage pages.
        ("damaged.sqlite", {
            let mut bytes = b"SQLite format 3\0".to_vec();
            bytes.extend(std::iter::repeat_n(0xA5u8, 8192 - bytes.len()));
            bytes
        }),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).expect("write file");
        let err = match Store::open(&path) {
            Err(err) => err,
            Ok(_) => panic!("{name}: opened a file that is not a store"),
        };
        assert!(matches!(err, StoreError::NotADatabase { .. }), "{name}: {err:?}");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("untouched"), "{message}");
        assert_eq!(std::fs::read(&path).expect("read back"), bytes, "{name}");
        for suffix in ["-wal", "-shm", "-journal"] {
            let side = PathBuf::from(format!("{}{suffix}", path.display()));
            assert!(!side.exists(), "{name}: created {}", side.display());
        }
    }

    let err = match Store::open(dir.path()) {
        Err(err) => err,
        Ok(_) => panic!("opened a directory"),
    };
    assert!(err.to_string().contains("directory"), "{err}");
}

#[test]
fn another_programs_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("other.db");
    {
        let conn = rusqlite::Connection::open(&path).expect("create");
        conn.execute_batch("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT);").expect("create table");
    }
    let bytes = std::fs::read(&path).expect("read");
    let err = match Store::open(&path) {
        Err(err) => err,
        Ok(_) => panic!("opened a foreign database"),
    };
    assert!(matches!(err, StoreError::ForeignDatabase { .. }), "{err:?}");
    assert!(err.to_string().contains("other.db"), "{err}");
    assert_eq!(std::fs::read(&path).expect("read"), bytes);
}

#[test]
fn unwritable_locations_give_clear_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").expect("write");
    let under_file = file.join("sub/mesalab.sqlite");
    let proc_path = Path::new("/proc/mesalab-no-such-dir/mesalab.sqlite");
    let proc_root = Path::new("/proc/mesalab.sqlite");
    for path in [under_file.as_path(), proc_path, proc_root] {
        if path.starts_with("/proc") && !Path::new("/proc/self").exists() {
            continue;
        }
        let err = match Store::open(path) {
            Err(err) => err,
            Ok(_) => panic!("opened a store at {}", path.display()),
        };
        assert!(
            matches!(err, StoreError::CreateDir { .. } | StoreError::Open { .. } | StoreError::ReadOnly { .. }),
            "{}: {err:?}",
            path.display()
        );
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("MESALAB_STORE"), "{message}");
    }
    let err = match Store::open(&under_file) {
        Err(err) => err,
        Ok(_) => panic!("opened under a file"),
    };
    assert!(err.to_string().contains("is a file, not a directory"), "{err}");
    assert_eq!(std::fs::read(&file).expect("read"), b"x");
}

#[test]
fn reopening_is_idempotent_and_newer_schemas_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("s.sqlite");
    let id = {
        let store = Store::open(&path).expect("first open");
        store.begin_run(&new_run(Path::new("/tmp/x"))).expect("begin")
    };
    for _ in 0..3 {
        let store = Store::open(&path).expect("reopen");
        assert_eq!(store.runs().expect("runs").len(), 1);
        assert!(store.run(id).expect("read").is_some());
    }
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).expect("user_version");
    assert_eq!(version, SCHEMA_VERSION);
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).expect("journal_mode");
    assert_eq!(mode, "wal");
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'runs'", [], |r| r.get(0))
        .expect("count");
    assert_eq!(tables, 1);

    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).expect("bump version");
    drop(conn);
    let err = match Store::open(&path) {
        Err(err) => err,
        Ok(_) => panic!("opened a newer schema"),
    };
    match &err {
        StoreError::NewerSchema { found, supported, .. } => {
            assert_eq!(*found, SCHEMA_VERSION + 1);
            assert_eq!(*supported, SCHEMA_VERSION);
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert!(err.to_string().contains("Upgrade mesalab"), "{err}");
}

#[test]
fn read_only_handle_reads_everything_and_writes_nothing() {
    let (dir, path, store) = temp_store();
    let run_dir = dir.path().join("run-ro");
    std::fs::create_dir(&run_dir).expect("mkdir run dir");
    let id = store.begin_run(&new_run(&run_dir)).expect("begin run");
    let rows = [
        MetricRow::new(Some(u64::MAX), 0, "loss", 1.5),
        MetricRow::new(None, 0, "loss", f64::NAN),
        MetricRow::new(Some(0), 3, "acc", 0.25),
    ];
    store.log_metrics(id, &rows).expect("log");
    store.finish_run(id, RunOutcome::Finished).expect("finish");
    drop(store);
    let before = std::fs::read(&path).expect("read store bytes");

    let ro = Store::open_read_only(&path).expect("open read-only");
    assert_eq!(ro.runs().expect("runs").len(), 1);
    let got = ro.metrics(id).expect("metrics");
    assert_eq!(got.len(), 3);
    let find = |seed: Option<u64>, name: &str| got.iter().find(|m| m.seed == seed && m.name == name).expect("row");
    assert_eq!((find(Some(u64::MAX), "loss").step, find(Some(u64::MAX), "loss").value), (0, 1.5));
    assert!(find(None, "loss").value.is_nan(), "NULL comes back as NaN");
    assert_eq!((find(Some(0), "acc").step, find(Some(0), "acc").value), (3, 0.25));
    assert!(ro.begin_run(&new_run(&run_dir)).is_err(), "a read-only handle refuses writes");
    assert_eq!(ro.json_text(id, "absent").expect("json text"), None);
    assert_eq!(ro.table_text(id, "absent").expect("table text"), None);
    assert!(matches!(ro.metrics(RunId(77)), Err(StoreError::UnknownRun { .. })));
    drop(ro);
    assert_eq!(std::fs::read(&path).expect("read store bytes"), before, "the file is unchanged");

    let missing = dir.path().join("nope.sqlite");
    let err = Store::open_read_only(&missing).err().expect("no file is an error");
    assert!(err.to_string().contains("no store file"), "{err}");
    assert!(!missing.exists(), "nothing was created");
    let foreign = dir.path().join("foreign.sqlite");
    std::fs::write(&foreign, b"not sqlite at all, just text that is long enough to be a header....").expect("write");
    assert!(matches!(Store::open_read_only(&foreign), Err(StoreError::NotADatabase { .. })));
}

#[test]
fn a_read_only_handle_reads_everything_and_writes_nothing() {
    let (dir, path, store) = temp_store();
    let id = store.begin_run(&new_run(&dir.path().join("ro-run"))).expect("begin run");
    store.log_metrics(id, &[MetricRow::new(Some(0), 0, "loss", 1.0), MetricRow::new(Some(0), 5, "loss", 0.5)]).unwrap();
    store.put_json(id, "summary", &json!({ "verdict": { "answer": "yes", "checks": [] } })).unwrap();

    let ro = Store::open_read_only(&path).expect("open read-only");
    assert!(ro.is_read_only() && !store.is_read_only());
    assert_eq!(ro.run(id).unwrap().unwrap().status, RunStatus::Running);
    let overviews = ro.run_overviews().unwrap();
    assert_eq!(overviews.len(), 1);
    assert_eq!(overviews[0].verdict.as_ref().unwrap()["answer"], "yes");
    let progress = overviews[0].progress.expect("a running run has progress");
    assert_eq!((progress.samples, progress.last_step), (2, Some(5)));
    assert_eq!(ro.metrics(id).unwrap().len(), 2);
    let p = ro.run_progress(id).unwrap().unwrap();
    assert_eq!((p.status, p.progress.samples), (RunStatus::Running, 2));
    assert!(ro.run_progress(RunId(999)).unwrap().is_none());

    // SQLite itself refuses writes through the handle.
    let err = ro.log_metrics(id, &[MetricRow::new(Some(0), 9, "loss", 0.1)]).unwrap_err();
    assert!(err.to_string().contains("readonly") || err.to_string().contains("read-only"), "{err}");
    assert!(ro.begin_run(&new_run(&dir.path().join("other"))).is_err());
    assert_eq!(store.metrics(id).unwrap().len(), 2);

    store.finish_run(id, RunOutcome::Finished).unwrap();
    assert!(ro.run_overviews().unwrap()[0].progress.is_none(), "ended runs are not counted");
}

#[test]
fn a_snapshot_keeps_one_view_while_another_handle_writes() {
    let (dir, path, store) = temp_store();
    let id = store.begin_run(&new_run(&dir.path().join("snap"))).expect("begin run");
    store.log_metrics(id, &[MetricRow::new(Some(0), 0, "loss", 1.0)]).unwrap();
    let ro = Store::open_read_only(&path).unwrap();
    let (inside, after_write) = ro
        .snapshot(|s| {
            let first = s.metrics(id).unwrap().len();
            store.log_metrics(id, &[MetricRow::new(Some(0), 1, "loss", 0.9)]).unwrap();
            (first, s.metrics(id).unwrap().len())
        })
        .unwrap();
    assert_eq!((inside, after_write), (1, 1), "the snapshot does not see a commit made during it");
    assert_eq!(ro.metrics(id).unwrap().len(), 2, "after the snapshot the new row is visible");
    assert!(store.snapshot(|_| ()).is_err(), "writable handles take no snapshots");
}

#[test]
fn read_only_opening_refuses_missing_and_foreign_files_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope/mesalab.sqlite");
    let err = Store::open_read_only(&missing).err().expect("refused");
    assert!(err.to_string().contains("no store file"), "{err}");
    assert!(!missing.parent().unwrap().exists(), "nothing was created");
    let junk = dir.path().join("junk.sqlite");
    std::fs::write(&junk, vec![7u8; 4096]).unwrap();
    assert!(matches!(Store::open_read_only(&junk), Err(StoreError::NotADatabase { .. })));
    assert_eq!(std::fs::read(&junk).unwrap(), vec![7u8; 4096]);
}

#[test]
fn resume_wipes_the_runs_results_records_attempts_and_refuses_finished_or_running_runs() {
    let (_dir, _path, store) = temp_store();
    let id = store.begin_run(&new_run(Path::new("/tmp/mesalab-resume-a"))).unwrap();
    store.log_metrics(id, &[MetricRow::new(Some(0), 0, "loss", 1.0)]).unwrap();
    store.put_json(id, "summary", &json!({ "x": 1 })).unwrap();
    // Running: refused, nothing changed.
    assert!(matches!(store.resume_run(id, None), Err(StoreError::RunStillRunning { .. })));
    assert_eq!(store.metrics(id).unwrap().len(), 1);
    store.finish_run(id, RunOutcome::Interrupted).unwrap();
    let first = store.attempts(id).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!((first[0].attempt, first[0].status), (1, RunStatus::Interrupted));
    assert!(first[0].ended_at_ms.is_some());

    assert_eq!(store.resume_run(id, Some("rev2")).unwrap(), 2);
    let run = store.run(id).unwrap().unwrap();
    assert_eq!((run.status, run.error, run.ended_at_ms), (RunStatus::Running, None, None));
    assert!(store.metrics(id).unwrap().is_empty() && store.json_names(id).unwrap().is_empty());
    let attempts = store.attempts(id).unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!((attempts[1].attempt, attempts[1].status), (2, RunStatus::Running));
    assert_eq!(attempts[1].code_revision.as_deref(), Some("rev2"));
    store.finish_run(id, RunOutcome::Failed("boom".into())).unwrap();
    assert_eq!(store.resume_run(id, None).unwrap(), 3);
    store.finish_run(id, RunOutcome::Finished).unwrap();
    let attempts = store.attempts(id).unwrap();
    let statuses: Vec<_> = attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, vec![RunStatus::Interrupted, RunStatus::Failed, RunStatus::Finished]);
    assert_eq!(attempts[1].error.as_deref(), Some("boom"));
    // Finished: refused, nothing changed.
    store.put_json(id, "late", &1).unwrap_err();
    assert!(matches!(store.resume_run(id, None), Err(StoreError::RunFinished { .. })));
    assert_eq!(store.attempts(id).unwrap().len(), 3);
    assert!(matches!(store.resume_run(RunId(999), None), Err(StoreError::UnknownRun { .. })));
}

/// Found by `mesalab analyze` (coin-corridor): without serde_json's `float_roundtrip`, a stored
/// probe score came back one ulp off (-0.056201233285029684 read as -0.05620123328502968).
#[test]
fn stored_floats_read_back_bit_identical() {
    let store = Store::open_in_memory().expect("open");
    let id = store.begin_run(&new_run(Path::new("/tmp/x"))).expect("begin");
    let mut values: Vec<f64> =
        vec![-0.056201233285029684, 0.1 + 0.2, f64::MIN_POSITIVE, 5e-324, 1.7976931348623157e308];
    // Values with 17 significant digits, the hard case for a parser that is not correctly rounded.
    let mut x = 0.123456789f64;
    for _ in 0..2000 {
        x = (x * 7.0 + std::f64::consts::FRAC_1_PI).fract();
        values.push(x / 3.0 - 0.05);
    }
    let table = ResultTable {
        name: "floats".into(),
        columns: vec!["v".into()],
        rows: values.iter().map(|v| vec![json!(v)]).collect(),
    };
    store.put_table(id, &table).expect("put table");
    let back = store.table(id, "floats").expect("get").expect("stored");
    for (v, row) in values.iter().zip(&back.rows) {
        assert_eq!(row[0].as_f64().map(f64::to_bits), Some(v.to_bits()), "{v:e} came back as {}", row[0]);
    }
    store.put_json(id, "floats", &json!(values)).expect("put json");
    let json: Vec<f64> = store.get_json(id, "floats").expect("get").expect("stored");
    assert!(json.iter().zip(&values).all(|(a, b)| a.to_bits() == b.to_bits()));
}
