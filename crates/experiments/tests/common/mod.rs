//! Assertions shared by the goal-misgeneralization smoke tests.

use mesalab_store::{RunId, Store};

/// Example trajectories are stored for both splits and drawn over their levels (a dozen at most);
/// returns how many were drawn.
pub fn assert_example_trajectories(store: &Store, run: RunId, html: &str) -> usize {
    let examples: Vec<serde_json::Value> = store.get_json(run, "trajectories").unwrap().unwrap();
    assert!(
        ["train", "deploy"].iter().all(|sp| examples
            .iter()
            .any(|t| t["split"] == *sp && t["path"].as_array().is_some_and(|p| !p.is_empty()))),
        "trajectories of both splits are stored"
    );
    let drawn = html.matches(r#"aria-label="agent path""#).count();
    assert!(html.contains("Example trajectories") && (2..=12).contains(&drawn), "{drawn} trajectory figures");
    drawn
}
