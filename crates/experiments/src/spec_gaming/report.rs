//! The `spec-gaming` HTML report: the shared goal-misgeneralization report.

use mesalab_store::{RunId, Store};

pub fn report(store: &Store, run: RunId) -> anyhow::Result<String> {
    let summary: serde_json::Value = store.get_json(run, "summary")?.unwrap_or_default();
    let env = summary["env"].as_str().unwrap_or("a gridworld").to_string();
    crate::misgen::report::report(
        store,
        run,
        &format!("spec-gaming on {env}: reward vs the intended objective"),
        "The env's reward is what PPO maximises; its hidden performance is the intended objective. A gamed episode \
         (objective failure) earns the reward without the performance.",
        &[("mean_return", "mean return"), ("mean_performance", "mean performance")],
        &|_, _, _, _| Ok(()),
    )
}
