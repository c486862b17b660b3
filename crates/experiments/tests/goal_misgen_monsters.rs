//! Smoke run of the shipped `monster-shield` config in quick mode with tiny sizes, through the library:
//! plan → execute → store → summary and report. Run in release mode.

mod common;

const TINY: &[&str] =
    &["ppo.num_envs=8", "ppo.num_steps=64", "ppo.num_minibatches=2", "ppo.total_timesteps=2048", "eval.episodes=20"];

#[test]
fn quick_run_writes_summary_verdict_aggregate_and_report() {
    let run = common::quick_run("monster-shield", TINY);
    common::assert_one_seed_run(&run);
}
