//! Merging stores: copies, idempotence, conflicts refused with nothing written, running runs left out.

use std::path::Path;

use mesalab_store::{
    Artifact, ArtifactKind, MetricRow, NewRun, ResultTable, RunDump, RunId, RunOutcome, Store, StoreError,
};
use serde_json::json;

fn new_run(dir: &Path, experiment: &str) -> NewRun {
    NewRun {
        experiment: experiment.into(),
        config_toml: format!("experiment = \"{experiment}\"\n"),
        seeds: vec![3, u64::MAX],
        code_revision: Some("abc".into()),
        run_dir: dir.to_path_buf(),
        quick: true,
    }
}

/// A finished run with a bit of everything (a NaN metric, an aggregate, a table, JSON, an artifact).
fn finished_run(store: &Store, dir: &Path, experiment: &str, value: f64) -> RunId {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("summary.json"), "{}").unwrap();
    let id = store.begin_run(&new_run(dir, experiment)).unwrap();
    store
        .log_metrics(
            id,
            &[
                MetricRow::new(Some(3), 0, "loss", value),
                MetricRow::new(Some(u64::MAX), 0, "loss", f64::NAN),
                MetricRow::new(None, 1, "final/loss", value / 2.0),
            ],
        )
        .unwrap();
    // Many awkward floats: parsing and re-printing JSON numbers does not always give back the same
    // bits, so a merge must copy tables as stored.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ value.to_bits();
    let mut rows = vec![vec![json!(value)]];
    for _ in 0..2000 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        rows.push(vec![json!(f64::from_bits((x >> 2) | 0x3000_0000_0000_0000) * 1e-3)]);
    }
    let table = ResultTable { name: "t".into(), columns: vec!["a".into()], rows };
    store.put_table(id, &table).unwrap();
    store.put_json(id, "extra", &json!({"k": [1, 2]})).unwrap();
    store
        .add_artifact(id, &Artifact::new("summary", ArtifactKind::Summary, "summary.json").with_size_from(dir).unwrap())
        .unwrap();
    store.finish_run(id, RunOutcome::Finished).unwrap();
    id
}

fn dumps(store: &Store) -> Vec<RunDump> {
    let mut runs = store.runs().unwrap();
    runs.sort_by_key(|r| r.id);
    runs.iter().map(|r| store.dump(r.id).unwrap()).collect()
}

#[test]
fn merge_copies_ended_runs_and_merging_again_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Store::open(&tmp.path().join("a.sqlite")).unwrap();
    let b = Store::open(&tmp.path().join("b.sqlite")).unwrap();
    let ra = finished_run(&a, &tmp.path().join("ra"), "x", 1.5);
    let rb = finished_run(&b, &tmp.path().join("rb"), "y", 2.5);
    let still_running = b.begin_run(&new_run(&tmp.path().join("rc"), "z")).unwrap();
    // Both sources number their first run 1: ids are local, uids are not.
    assert_eq!((ra, rb), (RunId(1), RunId(1)));
    assert_ne!(a.run(ra).unwrap().unwrap().uid, b.run(rb).unwrap().unwrap().uid);

    let target = Store::open(&tmp.path().join("merged.sqlite")).unwrap();
    let first = target.merge(&[&a, &b]).unwrap();
    assert_eq!(first.imported.len(), 2, "{first:?}");
    assert_eq!(first.already_present, 0);
    assert_eq!(first.skipped_running, vec![(b.path().to_path_buf(), still_running)]);
    let merged = dumps(&target);
    assert_eq!(merged.len(), 2);
    for (source, id) in [(&a, ra), (&b, rb)] {
        let original = source.dump(id).unwrap();
        let copy = merged.iter().find(|d| d.run.uid == original.run.uid).expect("copied");
        assert_eq!(original.difference(copy), None, "{copy:?}");
        assert!(copy.metrics[1].value.is_nan());
        assert_eq!(copy.run.seeds, vec![3, u64::MAX]);
    }

    let again = target.merge(&[&a, &b, &target]).unwrap();
    assert!(again.imported.is_empty(), "{again:?}");
    assert_eq!(again.already_present, 2);
    let after = dumps(&target);
    assert_eq!(after.len(), merged.len());
    for (x, y) in merged.iter().zip(&after) {
        assert_eq!(x.run.id, y.run.id);
        assert_eq!(x.difference(y), None);
    }
}

#[test]
fn a_diverged_copy_of_a_run_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let a_path = tmp.path().join("a.sqlite");
    let b_path = tmp.path().join("b.sqlite");
    let id = {
        let a = Store::open(&a_path).unwrap();
        let id = a.begin_run(&new_run(&tmp.path().join("r"), "x")).unwrap();
        a.log_metrics(id, &[MetricRow::new(Some(3), 0, "loss", 1.0)]).unwrap();
        id
    };
    // A copy taken while the run was still going: later the two copies end differently.
    std::fs::copy(&a_path, &b_path).unwrap();
    let a = Store::open(&a_path).unwrap();
    let b = Store::open(&b_path).unwrap();
    a.log_metrics(id, &[MetricRow::new(Some(3), 1, "loss", 0.5)]).unwrap();
    a.finish_run(id, RunOutcome::Finished).unwrap();
    b.finish_run(id, RunOutcome::Failed("copy".into())).unwrap();
    let other = finished_run(&b, &tmp.path().join("other"), "y", 4.0);
    assert_eq!(a.run(id).unwrap().unwrap().uid, b.run(id).unwrap().unwrap().uid);

    let target = Store::open(&tmp.path().join("t.sqlite")).unwrap();
    target.merge(&[&a]).unwrap();
    let before = dumps(&target);
    let err = target.merge(&[&b]).unwrap_err();
    match &err {
        StoreError::MergeConflict { differs_in, from, .. } => {
            assert_eq!(*differs_in, "status");
            assert_eq!(from, b.path());
        }
        other => panic!("expected a merge conflict, got {other:?}"),
    }
    assert!(err.to_string().contains("nothing was merged"), "{err}");
    // The conflicting source's other run was not copied either: all or nothing.
    let after = dumps(&target);
    assert_eq!(after.len(), before.len());
    assert!(after.iter().all(|d| d.run.uid != b.run(other).unwrap().unwrap().uid));

    // Two sources that disagree are refused before the target is touched.
    let fresh = Store::open(&tmp.path().join("fresh.sqlite")).unwrap();
    assert!(matches!(fresh.merge(&[&a, &b]), Err(StoreError::MergeConflict { .. })));
    assert!(fresh.runs().unwrap().is_empty());
}

#[test]
fn uids_are_distinct_hex_and_survive_reopening() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s.sqlite");
    let uids: Vec<String> = {
        let s = Store::open(&path).unwrap();
        for i in 0..5 {
            s.begin_run(&new_run(&tmp.path().join(format!("r{i}")), "x")).unwrap();
        }
        s.runs().unwrap().into_iter().map(|r| r.uid).collect()
    };
    assert!(uids.iter().all(|u| u.len() == 32 && u.bytes().all(|b| b.is_ascii_hexdigit())), "{uids:?}");
    let mut unique = uids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5);
    let again: Vec<String> = Store::open(&path).unwrap().runs().unwrap().into_iter().map(|r| r.uid).collect();
    assert_eq!(again, uids);
}
