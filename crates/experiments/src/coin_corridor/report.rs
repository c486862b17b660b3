//! The `coin-corridor` HTML report, drawn from the store alone.

use crate::goal_misgen::{
    EpisodeClass, Rate, learning_curve, outcome_bars, rate_curve, verdict_section, visit_heatmap,
};
use crate::report_common::run_header;
use anyhow::Context as _;
use mesalab_report::html::{Cell, Page};
use mesalab_store::{RunId, Store};
use serde_json::Value;

fn rate(v: &Value) -> Rate {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

fn rate_cell(r: Rate) -> Cell {
    if r.n == 0 {
        return Cell::text("–");
    }
    Cell::text(format!("{:.1}% [{:.1}, {:.1}]", 100.0 * r.rate, 100.0 * r.ci_lo, 100.0 * r.ci_hi))
        .tooltip(format!("{} of {} episodes; Wilson 95% interval", r.k, r.n))
}

pub fn report(store: &Store, run: RunId) -> anyhow::Result<String> {
    let record = store.run(run)?.context("no such run in the store")?;
    let summary: Value = store.get_json(run, "summary")?.unwrap_or(Value::Null);
    let mut page = Page::new("coin-corridor: does the agent go for the coin, or for the end of the level?");
    page.subtitle(format!("run {} · {}", run.0, record.run_dir.display()));

    let s = page.section("Verdict");
    verdict_section(s, &summary["verdict"], record.status.as_str(), "objective misgeneralization");
    if let Some(t) = summary["verdict"]["trend"].as_object() {
        s.paragraph(format!(
            "P(end without coin) on deploy levels: {:.1}% at random_percent = {} → {:.1}% at random_percent = {} ({}).",
            100.0 * t["objective_failure_from"].as_f64().unwrap_or(f64::NAN),
            t["from_random_percent"],
            100.0 * t["objective_failure_to"].as_f64().unwrap_or(f64::NAN),
            t["to_random_percent"],
            if t["falls"].as_bool().unwrap_or(false) {
                "the 95% intervals do not overlap"
            } else {
                "the 95% intervals overlap"
            }
        ));
    }
    run_header(s, &record);

    let knobs: Vec<Value> = summary["by_random_percent"].as_array().cloned().unwrap_or_default();
    let s = page.section("Outcomes by training random_percent");
    s.paragraph(
        "Each policy plays the same evaluation levels. Train levels: coin at the end. Deploy levels: the coin \
         anywhere but the end; an invisible marker at the end records whether the agent got there. Rates pool \
         the episodes of all seeds; brackets are Wilson 95% intervals.",
    );
    let rows: Vec<Vec<Cell>> = knobs
        .iter()
        .map(|k| {
            vec![
                Cell::int(k["random_percent"].as_i64().unwrap_or(-1)),
                rate_cell(rate(&k["train"]["p_coin"])),
                rate_cell(rate(&k["deploy"]["p_coin"])),
                rate_cell(rate(&k["deploy"]["p_end_without_coin"])),
                rate_cell(rate(&k["deploy"]["p_died"])),
                rate_cell(rate(&k["deploy"]["p_timeout"])),
            ]
        })
        .collect();
    s.table(
        vec![
            "random_percent",
            "train: P(coin)",
            "deploy: P(coin)",
            "deploy: P(end, no coin)",
            "deploy: P(died)",
            "deploy: P(timeout)",
        ],
        rows,
    );
    let xs: Vec<f64> = knobs.iter().map(|k| k["random_percent"].as_f64().unwrap_or(f64::NAN)).collect();
    let series = |name: &str, color: &str, split: &str, key: &str| {
        (
            name.to_string(),
            color.to_string(),
            knobs.iter().zip(&xs).map(|(k, x)| (*x, rate(&k[split][key]))).collect::<Vec<_>>(),
        )
    };
    let curve = rate_curve(
        "Deploy outcomes vs training random_percent",
        "random_percent in training",
        &[
            series("P(coin) on deploy (intended)", EpisodeClass::Robust.color(), "deploy", "p_coin"),
            series(
                "P(end without coin) on deploy (proxy)",
                EpisodeClass::ObjectiveFailure.color(),
                "deploy",
                "p_end_without_coin",
            ),
            series("P(coin) on train levels", "#1f77b4", "train", "p_coin"),
        ],
    );
    let groups: Vec<String> = knobs.iter().map(|k| format!("rp {}", k["random_percent"])).collect();
    let bars: Vec<(String, String, Vec<Rate>)> = EpisodeClass::ALL
        .iter()
        .map(|c| {
            (
                c.label().to_string(),
                c.color().to_string(),
                knobs.iter().map(|k| rate(&k["deploy_classes"][c.name()])).collect(),
            )
        })
        .collect();
    s.figure_row(vec![
        (curve, "Rates with Wilson 95% bands, pooled over seeds.".into()),
        (outcome_bars("Deploy episode classes", &groups, &bars), "Per training random_percent.".into()),
    ]);
    if let Some(first) = knobs.first() {
        let rp = &first["random_percent"];
        let groups = vec!["train levels".to_string(), "deploy levels".to_string()];
        let pair = |key: &str| vec![rate(&first["train"][key]), rate(&first["deploy"][key])];
        let bars = vec![
            ("got the coin".to_string(), EpisodeClass::Robust.color().to_string(), pair("p_coin")),
            (
                "end without coin".to_string(),
                EpisodeClass::ObjectiveFailure.color().to_string(),
                pair("p_end_without_coin"),
            ),
            ("died".to_string(), "#555555".to_string(), pair("p_died")),
            ("timeout".to_string(), "#bbbbbb".to_string(), pair("p_timeout")),
        ];
        s.figure(
            outcome_bars(&format!("Train vs deploy, random_percent = {rp}"), &groups, &bars),
            "Same policies, two level distributions: competence is kept, the goal is not.",
        );
    }

    let s = page.section("Where the agents go on deploy levels");
    let mut figs = Vec::new();
    for k in [knobs.first(), knobs.last()].into_iter().flatten() {
        let rp = k["random_percent"].as_u64().unwrap_or(0);
        if let Some(v) = store.get_json::<Value>(run, &format!("visits/rp-{rp}"))? {
            let counts: Vec<Vec<f64>> = v["counts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|row| row.as_array().into_iter().flatten().filter_map(Value::as_f64).collect())
                .collect();
            figs.push((
                visit_heatmap(&format!("Visits, random_percent = {rp}"), &counts),
                "Share of agent steps per cell, all seeds.".to_string(),
            ));
        }
        if knobs.len() == 1 {
            break;
        }
    }
    if !figs.is_empty() {
        s.figure_row(figs);
    }

    let shown: Vec<(String, String)> = [knobs.first(), knobs.last()]
        .into_iter()
        .flatten()
        .take(if knobs.len() > 1 { 2 } else { 1 })
        .map(|k| (format!("rp-{}", k["random_percent"]), format!("random_percent = {}", k["random_percent"])))
        .collect();
    crate::misgen_report::trajectories_section(&mut page, store, run, &shown)?;
    crate::goal_preference::report_section(&mut page, store, run, "variant")?;
    super::inside::probe_section(&mut page, store, run)?;

    let s = page.section("Learning curves");
    let variants: Vec<(String, String)> = knobs
        .iter()
        .map(|k| (format!("rp-{}", k["random_percent"]), format!("random_percent {}", k["random_percent"])))
        .collect();
    s.figure_row(vec![
        (
            learning_curve(store, run, &variants, "train/return", "Training return", "mean episode return")?,
            "Mean over seeds, min–max band; x = environment steps.".into(),
        ),
        (
            learning_curve(store, run, &variants, "train/got_coin", "Training P(coin)", "share of episodes")?,
            "On the training distribution of each variant.".into(),
        ),
    ]);

    let s = page.section("Per seed");
    if let Some(t) = store.table(run, "outcomes")? {
        let rows = t
            .rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|v| match v {
                        Value::Number(n) if n.is_f64() => Cell::fixed(n.as_f64().unwrap_or(f64::NAN), 3),
                        Value::Number(n) => Cell::int(n.as_i64().unwrap_or(0)),
                        other => Cell::text(other.to_string()),
                    })
                    .collect()
            })
            .collect();
        s.table(t.columns.clone(), rows);
    }
    s.details_json("summary.json", &summary);
    Ok(page.render())
}
