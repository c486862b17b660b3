//! Fuzzing the store with files it did not write: arbitrary bytes, a real store truncated at any
//! length, and a real store with bits flipped. Each is opened read-write and read-only, and every
//! read the CLI, the dashboard and the merge make is run on what opened. Nothing may panic: a bad
//! file is a `StoreError`.
//!
//! CI runs a short fixed-seed pass; `MESALAB_FUZZ_CASES=20000 cargo test --release --workspace
//! --test fuzz_store` runs a long one (the closing note of issue 10 reports the count).

use mesalab_store::{Artifact, ArtifactKind, MetricRow, NewRun, ResultTable, RunOutcome, Store};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::path::Path;

fn runner(default_cases: u32) -> TestRunner {
    let cases = std::env::var("MESALAB_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default_cases);
    let seed: u64 = std::env::var("MESALAB_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRunner::new_with_rng(
        Config { cases, failure_persistence: None, ..Config::default() },
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

/// A store with two runs and something in every table, checkpointed into one file.
fn real_store(dir: &Path) -> Vec<u8> {
    let path = dir.join("real.sqlite");
    {
        let store = Store::open(&path).unwrap();
        for (i, outcome) in [RunOutcome::Finished, RunOutcome::Failed("boom".into())].into_iter().enumerate() {
            let run_dir = dir.join(format!("run-{i}"));
            std::fs::create_dir_all(&run_dir).unwrap();
            let id = store
                .begin_run(&NewRun {
                    experiment: "icl-gd".into(),
                    config_toml: "experiment = \"icl-gd\"\n[train]\nsteps = 3\n".into(),
                    seeds: vec![0, 1],
                    code_revision: Some("abc".into()),
                    run_dir,
                    quick: true,
                })
                .unwrap();
            let rows: Vec<MetricRow> =
                (0..200).map(|s| MetricRow::new(Some(s % 2), s as i64, "loss", 1.0 / (1 + s) as f64)).collect();
            store.log_metrics(id, &rows).unwrap();
            let table = ResultTable {
                name: "episodes".into(),
                columns: vec!["seed".into(), "return".into()],
                rows: (0..50).map(|r| vec![serde_json::json!(r), serde_json::json!(r as f64 * 0.5)]).collect(),
            };
            store.put_table(id, &table).unwrap();
            store.put_json(id, "summary", &serde_json::json!({ "verdict": { "answer": "yes" } })).unwrap();
            store.add_artifact(id, &Artifact::new("report", ArtifactKind::Report, "report.html")).unwrap();
            store.finish_run(id, outcome).unwrap();
        }
    }
    // Every page in the main file (the WAL is checkpointed when the last connection closes).
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 4096, "the real store is {} bytes", bytes.len());
    bytes
}

/// Every read on an opened store; each may fail, none may panic.
fn exercise(store: &Store) {
    let _ = store.run_overviews();
    let _ = store.snapshot(|s| s.runs().map(|r| r.len()));
    if let Ok(runs) = store.runs() {
        for r in runs.iter().take(4) {
            let id = r.id;
            let _ = store.run(id);
            let _ = store.metrics(id);
            let _ = store.run_progress(id);
            if let Ok(names) = store.metric_names(id) {
                for name in names.iter().take(3) {
                    let _ = store.metric_series(id, None, name);
                    let _ = store.metric_series(id, Some(0), name);
                }
            }
            let _ = store.metric_seeds(id);
            if let Ok(tables) = store.table_names(id) {
                for t in tables.iter().take(3) {
                    let _ = store.table(id, t);
                    let _ = store.table_text(id, t);
                }
            }
            if let Ok(names) = store.json_names(id) {
                for n in names.iter().take(3) {
                    let _ = store.json_text(id, n);
                    let _ = store.get_json::<serde_json::Value>(id, n);
                }
            }
            let _ = store.artifacts(id);
            let _ = store.run_by_dir(&r.run_dir);
            let _ = store.dump(id);
        }
    }
}

/// Opens `bytes` as a store file both ways, reads everything, and merges it into a fresh store.
fn open_all_ways(dir: &Path, bytes: &[u8]) {
    let path = dir.join("fuzzed.sqlite");
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    std::fs::write(&path, bytes).unwrap();
    if let Ok(store) = Store::open_read_only(&path) {
        exercise(&store);
        if let Ok(target) = Store::open_in_memory() {
            let _ = target.merge(&[&store]);
        }
    }
    if let Ok(store) = Store::open(&path) {
        exercise(&store);
        let _ = store.mark_orphans_crashed();
    }
}

#[test]
fn the_store_survives_arbitrary_truncated_and_bit_flipped_files() {
    let tmp = tempfile::tempdir().unwrap();
    let real = real_store(tmp.path());
    let header = real[..100].to_vec();
    let total = std::cell::Cell::new(0u64);

    // Arbitrary bytes, half of them behind a valid SQLite header (so the parser gets past it).
    let arbitrary = (any::<bool>(), prop::collection::vec(any::<u8>(), 0..9000));
    runner(64)
        .run(&arbitrary, |(with_header, mut bytes)| {
            total.set(total.get() + 1);
            if with_header {
                let mut b = header.clone();
                b.append(&mut bytes);
                bytes = b;
            }
            open_all_ways(tmp.path(), &bytes);
            Ok(())
        })
        .unwrap();

    // The real store cut at any length.
    runner(64)
        .run(&(0..real.len()), |len| {
            total.set(total.get() + 1);
            open_all_ways(tmp.path(), &real[..len]);
            Ok(())
        })
        .unwrap();

    // The real store with 1–16 bits flipped anywhere, or bytes overwritten in the header.
    let flips = prop::collection::vec((0..real.len() * 8, any::<bool>(), any::<u8>()), 1..16);
    runner(128)
        .run(&flips, |flips| {
            total.set(total.get() + 1);
            let mut bytes = real.clone();
            for (bit, in_header, value) in flips {
                if in_header {
                    bytes[bit % 100] = value;
                } else {
                    bytes[bit / 8] ^= 1 << (bit % 8);
                }
            }
            open_all_ways(tmp.path(), &bytes);
            Ok(())
        })
        .unwrap();
    eprintln!("fuzz_store: {} inputs, 0 panics", total.get());
}
