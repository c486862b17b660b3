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
