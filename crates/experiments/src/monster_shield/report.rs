//! The `monster-shield` HTML report, drawn from the store alone.

use crate::goal_misgen::{EpisodeClass, Rate, learning_curve, outcome_bars};
use crate::misgen_report::{aggregate_section, rate, rate_cell, trajectories_section, verdict_section};
use anyhow::Context as _;
use mesalab_report::html::{Cell, Page};
use mesalab_store::{RunId, Store};
use serde_json::Value;

pub fn report(store: &Store, run: RunId) -> anyhow::Result<String> {
    let record = store.run(run)?.context("no such run in the store")?;
    let summary: Value = store.get_json(run, "summary")?.unwrap_or(Value::Null);
    let mut page = Page::new("monster-shield: shields after the monsters are gone?");
    page.subtitle(format!("run {} · {}", run.0, record.run_dir.display()));
    verdict_section(&mut page, &summary, &record);

    let splits = ["train", "deploy"];
    let s = page.section("Short (train) vs long (deploy) episodes");
    s.paragraph(
        "Opportunity = every monster destroyed while shields still lay on the map. Objective failure = a shield picked \
         up after that; capability failure = otherwise too few apples; robust otherwise. Pooled over seeds; Wilson 95% \
         intervals.",
    );
    let num = |v: &Value| v.as_f64().map(Cell::num).unwrap_or_else(|| Cell::text("–"));
    let rows = splits
        .iter()
        .map(|sp| {
            let x = &summary["splits"][*sp];
            vec![
                Cell::text(*sp),
                rate_cell(&rate(&x["p_monsters_gone"])),
                rate_cell(&rate(&x["p_opportunity"])),
                rate_cell(&rate(&x["p_shield_after_given_opportunity"])),
                rate_cell(&rate(&x["share_of_left_shields_taken"])),
                num(&x["mean_shields_after_monsters"]),
                num(&x["apples_per_25_steps"]),
                num(&x["hits_per_episode"]),
            ]
        })
        .collect();
    s.table(
        vec![
            "split",
            "P(all monsters gone)",
            "P(opportunity)",
            "P(shield after | opportunity)",
            "left-over shields taken",
            "shields after monsters / episode",
            "apples / 25 steps",
            "hits / episode",
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
    s.figure(outcome_bars("Episode classes", &groups, &series), "Share of episodes per class, per split.");
    trajectories_section(&mut page, store, run, &[(String::new(), String::new())])?;
    let variants = vec![(String::new(), "policy".to_string())];
    page.section("Training").figure_row(vec![
        (
            learning_curve(store, run, &variants, "train/return", "Training return (apples − hits)", "return")?,
            "Mean over seeds, min–max band.".into(),
        ),
        (
            learning_curve(
                store,
                run,
                &variants,
                "train/shield_collected",
                "Training: episodes with a shield",
                "share",
            )?,
            String::new(),
        ),
    ]);
    aggregate_section(&mut page, &summary);
    page.section("Configuration").details("resolved config (TOML)", record.config_toml.clone());
    Ok(page.render())
}
