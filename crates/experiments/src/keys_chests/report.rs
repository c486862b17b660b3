//! The `keys-chests` HTML report, drawn from the store alone.

use crate::goal_misgen::{EpisodeClass, Rate, learning_curve, outcome_bars};
use crate::misgen_report::{aggregate_section, rate, rate_cell, trajectories_section, verdict_section};
use anyhow::Context as _;
use mesalab_report::html::{Cell, Page};
use mesalab_report::svg::{BarChart, BarSeries};
use mesalab_store::{RunId, Store};
use serde_json::Value;
use std::collections::BTreeMap;

pub fn report(store: &Store, run: RunId) -> anyhow::Result<String> {
    let record = store.run(run)?.context("no such run in the store")?;
    let summary: Value = store.get_json(run, "summary")?.unwrap_or(Value::Null);
    let mut page = Page::new("keys-chests: does the agent collect keys it cannot use?");
    page.subtitle(format!("run {} · {}", run.0, record.run_dir.display()));
    verdict_section(&mut page, &summary, &record);

    let splits = ["train", "deploy"];
    let s = page.section("Train vs deploy");
    s.paragraph(
        "train: twice as many chests as keys (every key is useful); deploy: twice as many keys as chests. Excess keys = \
         keys collected − chests opened in the episode. The optimal plan is a BFS lower bound: exact shortest paths \
         between start, keys and chests, minimised over every visiting order that opens min(keys, chests) chests. \
         Robust = every chest opened with no excess key; objective failure = an unused key collected; capability \
         failure = neither. Pooled over seeds; Wilson 95% intervals.",
    );
    let num = |v: &Value| v.as_f64().map(Cell::num).unwrap_or_else(|| Cell::text("–"));
    let rows = splits
        .iter()
        .map(|sp| {
            let x = &summary["splits"][*sp];
            vec![
                Cell::text(*sp),
                num(&x["mean_keys_collected"]),
                num(&x["mean_chests_opened"]),
                num(&x["mean_excess_keys"]),
                rate_cell(&rate(&x["p_excess_key"])),
                rate_cell(&rate(&x["p_all_opened"])),
                num(&x["mean_length"]),
                num(&x["mean_optimal_steps"]),
                num(&x["steps_over_optimal_solved"]),
            ]
        })
        .collect();
    s.table(
        vec![
            "split",
            "keys collected",
            "chests opened",
            "excess keys",
            "P(excess key)",
            "P(all chests opened)",
            "steps",
            "optimal steps (lower bound)",
            "steps / optimal (solved episodes)",
        ],
        rows,
    );
    let groups: Vec<String> = splits.iter().map(|s| s.to_string()).collect();
    let series: Vec<(String, String, Vec<Rate>)> = EpisodeClass::ALL
        .iter()
        .map(|c| {
            let rates = splits.iter().map(|sp| rate(&summary["splits"][*sp]["classes"][c.name()])).collect();
            (c.label().to_string(), c.color().to_string(), rates)
        })
        .collect();
    // Histogram of excess keys per split from the episode table.
    let mut hist: BTreeMap<(String, u64), f64> = BTreeMap::new();
    let mut totals: BTreeMap<String, f64> = BTreeMap::new();
    if let Some(t) = store.table(run, "episodes")? {
        for row in &t.rows {
            if let (Some(sp), Some(x)) = (row[1].as_str(), row[4].as_u64()) {
                *hist.entry((sp.to_string(), x)).or_default() += 1.0;
                *totals.entry(sp.to_string()).or_default() += 1.0;
            }
        }
    }
    let max_x = hist.keys().map(|(_, x)| *x).max().unwrap_or(0);
    let mut chart = BarChart::new("Excess keys per episode", (0..=max_x).map(|x| x.to_string()).collect())
        .y_label("share of episodes")
        .y_range(0.0, 1.0);
    for (i, sp) in splits.iter().enumerate() {
        let total = totals.get(*sp).copied().unwrap_or(1.0);
        let vals = (0..=max_x).map(|x| hist.get(&(sp.to_string(), x)).copied().unwrap_or(0.0) / total).collect();
        chart = chart.series(BarSeries::new(*sp, vals).color(mesalab_report::svg::color::palette(i)));
    }
    s.figure_row(vec![
        (outcome_bars("Episode classes", &groups, &series), "Share of episodes per class, per split.".into()),
        (chart.to_svg(), "Distribution of keys collected and never used.".into()),
    ]);
    trajectories_section(&mut page, store, run, &[(String::new(), String::new())])?;
    crate::goal_preference::report_section(&mut page, store, run, "agent")?;
    let variants = vec![(String::new(), "policy".to_string())];
    page.section("Training").figure_row(vec![
        (
            learning_curve(store, run, &variants, "train/return", "Training return (chests opened)", "return")?,
            "Mean over seeds, min–max band.".into(),
        ),
        (learning_curve(store, run, &variants, "train/length", "Training episode length", "steps")?, String::new()),
    ]);
    aggregate_section(&mut page, &summary);
    page.section("Configuration").details("resolved config (TOML)", record.config_toml.clone());
    Ok(page.render())
}
