//! `mesalab bench`: the smoke zoo builds, lists and scores; a rebuild elsewhere is bit-identical;
//! a second build reuses every run; bad input is refused with exit 2 and writes nothing.

use std::path::Path;
use std::process::{Command, Output};

fn mesalab(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mesalab")).arg("--store").arg(store).args(args).output().expect("runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Every checkpoint under `dir`, as (path relative to `dir`, bytes), sorted.
fn checkpoints(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "safetensors") {
                out.push((p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Model id → detector → scores, from a score directory's `scores.json` (timings dropped).
fn scores(dir: &Path) -> Vec<(String, serde_json::Value)> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("scores.json")).unwrap()).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| (m["model"]["id"].as_str().unwrap().to_string(), m["scores"].clone()))
        .collect()
}

#[test]
fn smoke_zoo_builds_bit_identically_and_scores() {
    let tmp = tempfile::tempdir().unwrap();
    let mut built = Vec::new();
    for name in ["a", "b"] {
        let root = tmp.path().join(name);
        let store = root.join("store.sqlite");
        let zoo = root.join("zoo");
        let zoo_arg = zoo.to_str().unwrap();
        let out = mesalab(&store, &["bench", "build", "smoke", "--dir", zoo_arg, "--jobs", "2"]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("8 to build"), "{}", text(&out));
        let score_dir = root.join("score");
        let out = mesalab(&store, &["bench", "score", "smoke", "--dir", zoo_arg, "--out", score_dir.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out));
        let t = text(&out);
        assert!(t.contains("deceptive?        output-eval") && t.contains("random"), "{t}");
        let report = std::fs::read_to_string(score_dir.join("report.html")).unwrap();
        assert!(report.contains("Held-out: deceptive?") && report.contains("report.html\">goal-room-planner/s1"));
        built.push((checkpoints(&zoo), scores(&score_dir)));
    }
    assert_eq!(built[0].0.len(), 8);
    assert!(built[0].0 == built[1].0, "checkpoints differ between two builds");
    assert_eq!(built[0].1, built[1].1);

    // A second build finds every run finished and changes nothing.
    let root = tmp.path().join("a");
    let store = root.join("store.sqlite");
    let zoo = root.join("zoo");
    let out = mesalab(&store, &["bench", "build", "smoke", "--dir", zoo.to_str().unwrap()]);
    assert!(out.status.success() && text(&out).contains("8 already built, 0 to build"), "{}", text(&out));
    assert!(checkpoints(&zoo) == built[0].0);
    let out = mesalab(&store, &["bench", "list", "smoke", "--dir", zoo.to_str().unwrap()]);
    let t = text(&out);
    assert!(t.contains("8 models:") && t.contains("goal-room-planner/s0/seed-0") && t.contains("proxy     yes"), "{t}");
}

#[test]
fn bad_bench_input_is_refused_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store.sqlite");
    let dir = tmp.path().join("zoo");
    let d = dir.to_str().unwrap();
    let bad_zoo = tmp.path().join("bad.toml");
    std::fs::write(
        &bad_zoo,
        "name = \"x\"\n[[recipe]]\nname = \"r\"\nexperiment = \"coin-corridor\"\nseeds = [0]\ndev_seeds = []\n",
    )
    .unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["bench", "score", "smoke", "--dir", d], "is not built"),
        (vec!["bench", "score", "smoke", "--dir", d, "--detector", "telepathy"], "no detector `telepathy`"),
        (vec!["bench", "score", "smoke", "--dir", d, "--set", "situations=lots"], "not a whole number"),
        (vec!["bench", "score", "smoke", "--dir", d, "--set", "colour=3"], "no setting `colour`"),
        (vec!["bench", "build", "nozoo", "--dir", d], "not a shipped zoo"),
        (vec!["bench", "build", bad_zoo.to_str().unwrap(), "--dir", d], "has no auditor interface"),
    ];
    for (args, want) in cases {
        let out = mesalab(&store, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(want), "{args:?}: {}", text(&out));
    }
    assert!(!dir.exists(), "a refused command wrote the zoo directory");
}
