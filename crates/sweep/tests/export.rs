//! Export round trips: every format gives back exactly what the store holds (NaN as null, u64
//! seeds, awkward strings), Parquet read with the parquet crate's own reader.

use std::path::Path;

use mesalab_store::{MetricRow, NewRun, ResultTable, RunOutcome, Store};
use mesalab_sweep::export::{Format, export};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde_json::json;

fn store_with_awkward_values(dir: &Path) -> Store {
    let store = Store::open(&dir.join("s.sqlite")).unwrap();
    let run_dir = dir.join("run");
    let id = store
        .begin_run(&NewRun {
            experiment: "x".into(),
            config_toml: "a = \"comma, \\\"quote\\\"\"\n[b]\nc = 1\n".into(),
            seeds: vec![u64::MAX],
            code_revision: None,
            run_dir,
            quick: false,
        })
        .unwrap();
    store
        .log_metrics(
            id,
            &[
                MetricRow::new(Some(u64::MAX), 0, "loss", 0.1 + 0.2),
                MetricRow::new(Some(u64::MAX), 1, "loss", f64::NAN),
                MetricRow::new(None, 1, "mean, \"all\"", -1e-300),
            ],
        )
        .unwrap();
    let table = ResultTable {
        name: "t".into(),
        columns: vec!["name".into(), "v".into()],
        rows: vec![vec![json!("line\nbreak, \"[x]\""), json!(2.5)], vec![json!(null), json!([1, {"a": "]"}])]],
    };
    store.put_table(id, &table).unwrap();
    store.finish_run(id, RunOutcome::Finished).unwrap();
    let second = store.begin_run(&NewRun {
        experiment: "y".into(),
        config_toml: String::new(),
        seeds: vec![0],
        code_revision: Some("r".into()),
        run_dir: dir.join("run2"),
        quick: true,
    });
    store.finish_run(second.unwrap(), RunOutcome::Failed("boom".into())).unwrap();
    store
}

#[test]
fn jsonl_and_parquet_hold_exactly_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_with_awkward_values(tmp.path());
    let out = tmp.path().join("out");
    for f in [Format::Csv, Format::Jsonl, Format::Parquet] {
        let written = export(&store, None, f, &out).unwrap();
        let rows: Vec<usize> = written.iter().map(|(_, n)| *n).collect();
        assert_eq!(rows, vec![2, 3, 4], "{f:?}");
    }

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0], json!({"run_id": 1, "seed": u64::MAX, "step": 0, "name": "loss", "value": 0.1 + 0.2}));
    assert_eq!(lines[1]["value"], json!(null), "NaN is null");
    assert_eq!(lines[2]["seed"], json!(null));
    assert_eq!(lines[2]["value"].as_f64(), Some(-1e-300));
    let first_line = std::fs::read_to_string(out.join("runs.jsonl")).unwrap().lines().next().unwrap().to_string();
    assert!(first_line.starts_with("{\"run_id\":1,\"uid\":"), "schema column order: {first_line}");

    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let csv_lines: Vec<&str> = csv.lines().collect();
    assert_eq!(csv_lines[0], "run_id,seed,step,name,value");
    assert_eq!(csv_lines[1], format!("1,{},0,loss,0.30000000000000004", u64::MAX));
    assert_eq!(csv_lines[2], format!("1,{},1,loss,", u64::MAX), "NaN is an empty field");
    assert_eq!(csv_lines[3], "1,,1,\"mean, \"\"all\"\"\",-1e-300");
    let tables = std::fs::read_to_string(out.join("tables.csv")).unwrap();
    assert!(tables.contains("1,t,0,name,\"\"\"line\\nbreak, \\\"\"[x]\\\"\"\"\"\","), "JSON text quoted: {tables}");
    assert!(tables.contains("1,t,1,v,\"[1,{\"\"a\"\":\"\"]\"\"}]\","), "nested cell kept whole: {tables}");
    assert!(tables.contains("1,t,0,v,2.5,2.5\n"), "{tables}");

    let reader = SerializedFileReader::new(std::fs::File::open(out.join("metrics.parquet")).unwrap()).unwrap();
    let rows: Vec<Vec<(String, Field)>> = reader
        .get_row_iter(None)
        .unwrap()
        .map(|r| r.unwrap().get_column_iter().map(|(n, f)| (n.clone(), f.clone())).collect())
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0][1], ("seed".to_string(), Field::ULong(u64::MAX)));
    assert_eq!(rows[0][4], ("value".to_string(), Field::Double(0.1 + 0.2)));
    assert_eq!(rows[1][4].1, Field::Null);
    assert_eq!(rows[2][1].1, Field::Null);
    assert_eq!(rows[2][3].1, Field::Str("mean, \"all\"".into()));

    let reader = SerializedFileReader::new(std::fs::File::open(out.join("runs.parquet")).unwrap()).unwrap();
    let runs: Vec<Vec<(String, Field)>> = reader
        .get_row_iter(None)
        .unwrap()
        .map(|r| r.unwrap().get_column_iter().map(|(n, f)| (n.clone(), f.clone())).collect())
        .collect();
    let record = store.runs().unwrap().into_iter().find(|r| r.id.0 == 1).unwrap();
    assert_eq!(runs[0][1].1, Field::Str(record.uid));
    assert_eq!(runs[0][4].1, Field::Bool(false));
    assert_eq!(runs[0][6].1, Field::Null, "no code revision");
    assert_eq!(runs[1][11].1, Field::Str("boom".into()));
    assert_eq!(runs[0][12].1, Field::Str(record.config_toml));
}

#[test]
fn selected_runs_only_and_unknown_ids_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_with_awkward_values(tmp.path());
    let out = tmp.path().join("out");
    let written = export(&store, Some(&[2]), Format::Jsonl, &out).unwrap();
    assert_eq!(written.iter().map(|(_, n)| *n).collect::<Vec<_>>(), vec![1, 0, 0]);
    let err = export(&store, Some(&[7]), Format::Csv, &tmp.path().join("o2")).unwrap_err();
    assert!(err.to_string().contains("run 7 is not in the store"), "{err}");
    assert!(!tmp.path().join("o2").exists(), "nothing written");
    assert!(Format::parse("parqet").unwrap_err().to_string().contains("did you mean `parquet`"));
}
