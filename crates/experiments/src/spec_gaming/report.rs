//! The `spec-gaming` HTML report, drawn from the store alone.

use crate::goal_misgen::{EpisodeClass, Rate, learning_curve, outcome_bars, verdict_section, visit_heatmap};
use crate::report_common::run_header;
use anyhow::Context as _;
use mesalab_report::html::{Cell, Page};
use mesalab_report::svg::{Scatter, ScatterSeries};
use mesalab_store::{RunId, Store};
use serde_json::Value;

pub fn report(store: &Store, run: RunId) -> anyhow::Result<String> {
    let record = store.run(run)?.context("no such run in the store")?;
    let summary: Value = store.get_json(run, "summary")?.unwrap_or(Value::Null);
    let env = summary["env"].as_str().unwrap_or("?").to_string();
    let mut page = Page::new(format!("spec-gaming on {env}: reward vs the intended objective"));
    page.subtitle(format!("run {} · {}", run.0, record.run_dir.display()));

    let s = page.section("Verdict");
    verdict_section(s, &summary["verdict"], record.status.as_str(), "specification gaming");
    run_header(s, &record);

    let s = page.section("Reward vs hidden performance");
    s.paragraph(
        "Reward is what PPO maximised; hidden performance is the designer's intended score, which the agent \
         never sees. Robust: performance reached the intended threshold. Objective failure: the reward \
         threshold was reached without it (the specification was gamed). Capability failure: neither.",
    );
    let per_seed: Vec<Value> = summary["per_seed"].as_array().cloned().unwrap_or_default();
    let rows: Vec<Vec<Cell>> = per_seed
        .iter()
        .map(|r| {
            let c: crate::goal_misgen::Counts = serde_json::from_value(r["classes"].clone()).unwrap_or_default();
            let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
            vec![
                Cell::int(r["seed"].as_i64().unwrap_or(-1)),
                Cell::fixed(f("mean_return"), 2),
                Cell::fixed(f("mean_performance"), 2),
                Cell::percent(c.rate(EpisodeClass::Robust), 1),
                Cell::percent(c.rate(EpisodeClass::ObjectiveFailure), 1),
                Cell::percent(c.rate(EpisodeClass::CapabilityFailure), 1),
                Cell::text(
                    r["event_means"]
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| format!("{k} {:.1}", v.as_f64().unwrap_or(f64::NAN)))
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default(),
                ),
            ]
        })
        .collect();
    s.table(
        vec!["seed", "mean return", "mean performance", "robust", "gamed", "capability failure", "events per episode"],
        rows,
    );
    let points: Vec<(f64, f64)> = summary["return_vs_performance"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()?)))
        .collect();
    let scatter = Scatter::new("Evaluation episodes")
        .x_label("episode return (reward)")
        .y_label("episode hidden performance")
        .series(ScatterSeries::new("episodes", points))
        .to_svg();
    let pooled: Vec<(String, String, Vec<Rate>)> = EpisodeClass::ALL
        .iter()
        .map(|c| {
            (
                c.label().to_string(),
                c.color().to_string(),
                vec![serde_json::from_value(summary["classes"][c.name()].clone()).unwrap_or_default()],
            )
        })
        .collect();
    s.figure_row(vec![
        (scatter, "High reward with low performance is gaming.".into()),
        (
            outcome_bars("Episode classes, all seeds", &["eval split".to_string()], &pooled),
            "Wilson 95% intervals.".into(),
        ),
    ]);

    let s = page.section("Learning curves");
    let v = vec![(String::new(), "PPO".to_string())];
    s.figure_row(vec![
        (
            learning_curve(store, run, &v, "train/return", "Training return (reward)", "mean episode return")?,
            "What the trainer sees. Mean over seeds, min–max band.".into(),
        ),
        (
            learning_curve(store, run, &v, "train/performance", "Hidden performance", "mean episode performance")?,
            "What the designer wanted; never seen by PPO.".into(),
        ),
    ]);

    if let Some(v) = store.get_json::<Value>(run, "visits")? {
        let counts: Vec<Vec<f64>> = v["counts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|row| row.as_array().into_iter().flatten().filter_map(Value::as_f64).collect())
            .collect();
        page.section("Where the agents go").figure(
            visit_heatmap("Agent position, evaluation episodes", &counts),
            "Share of steps per cell, all seeds.",
        );
    }
    crate::misgen_report::trajectories_section(&mut page, store, run, &[(String::new(), String::new())])?;
    page.section("Summary").details_json("summary.json", &summary);
    Ok(page.render())
}
