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

/// The first file under `dir` whose path ends with `suffix`.
fn find_file(dir: &Path, suffix: &str) -> Option<std::path::PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                return Some(p);
            }
        }
    }
    None
}

#[test]
fn a_killed_build_resumes_to_the_uninterrupted_models() {
    // One PPO run (absent-supervisor, a few seconds), SIGKILLed once its training state exists;
    // the next `bench build` finds the run crashed, resumes it, and ends with the bytes of a build
    // that was never interrupted.
    let tmp = tempfile::tempdir().unwrap();
    let zoo_file = tmp.path().join("ppo.toml");
    std::fs::write(
        &zoo_file,
        "name = \"ppo\"\n[[recipe]]\nname = \"watched\"\nexperiment = \"absent-supervisor\"\nquick = true\n\
         set = [\"ppo.total_timesteps=40960\", \"run.checkpoint_every=3\"]\nseeds = [0]\ndev_seeds = [0]\n",
    )
    .unwrap();
    let zoo_arg = zoo_file.to_str().unwrap();
    let build = |name: &str| {
        let root = tmp.path().join(name);
        let (store, dir) = (root.join("store.sqlite"), root.join("zoo"));
        std::fs::create_dir_all(&root).unwrap();
        (store, dir)
    };
    let (store_a, dir_a) = build("straight");
    let out = mesalab(&store_a, &["bench", "build", zoo_arg, "--dir", dir_a.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));

    let (store_b, dir_b) = build("killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesalab"))
        .arg("--store")
        .arg(&store_b)
        .args(["bench", "build", zoo_arg, "--dir", dir_b.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let killed = loop {
        if child.try_wait().unwrap().is_some() {
            break false;
        }
        if find_file(&dir_b, "seed-0/train-state.bin").is_some() {
            child.kill().unwrap();
            child.wait().unwrap();
            break true;
        }
        assert!(std::time::Instant::now() < deadline, "no training state appeared");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(killed, "the build finished before it could be killed");
    let out = mesalab(&store_b, &["bench", "list", zoo_arg, "--dir", dir_b.to_str().unwrap()]);
    assert!(text(&out).contains("crashed"), "{}", text(&out));
    let out = mesalab(&store_b, &["bench", "build", zoo_arg, "--dir", dir_b.to_str().unwrap()]);
    assert!(out.status.success() && text(&out).contains("1 to build"), "{}", text(&out));
    let (a, b) = (checkpoints(&dir_a), checkpoints(&dir_b));
    assert_eq!(a.len(), 1);
    assert!(a == b, "the resumed build's checkpoint differs from the uninterrupted one");
}
