//! The `icl-autoregressive` HTML report, drawn from the store alone (`mesalab report` regenerates it).

use crate::report_common::{metric_curves, run_header};
use anyhow::Context as _;
use mesalab_report::fmt::number;
use mesalab_report::html::{Cell, Page};
use mesalab_report::svg::{LineChart, Series};
use mesalab_store::{RunId, Store};
use serde_json::Value;
use std::collections::BTreeMap;

pub fn report(store: &Store, run: RunId) -> anyhow::Result<String> {
    let record = store.run(run)?.context("no such run in the store")?;
    let summary: Value = store.get_json(run, "summary")?.unwrap_or(Value::Null);
    let mut page = Page::new("icl-autoregressive: does a causal model learn the dynamics in context, and how?");
    page.subtitle(format!("run {} · {}", run.0, record.run_dir.display()));
    let s = page.section("Verdict");
    crate::verdict::section(s, crate::verdict::Verdict::from_summary(&summary).as_ref(), record.status.as_str());
    run_header(s, &record);
    crate::report_common::attempts_and_analyses(s, store, run)?;

    // Per-seed numbers.
    let per_seed: Vec<Value> = summary["per_seed"].as_array().cloned().unwrap_or_default();
    let rows = per_seed
        .iter()
        .map(|r| {
            let f = |k: &str| Cell::num(r[k].as_f64().unwrap_or(f64::NAN));
            vec![
                Cell::int(r["seed"].as_i64().unwrap_or(-1)),
                f("early_loss"),
                f("late_loss"),
                f("zero_late_loss"),
                f("oracle_late_loss"),
                f("progress"),
                Cell::text(r["identified"].as_str().unwrap_or("?")),
                f("identified_loss_ratio"),
                f("identified_cosine"),
            ]
        })
        .collect();
    page.section("Per seed, on the held-out sequences").table_captioned(
        "Losses are 0.5·squared error summed over the d state coordinates, averaged over sequences and positions \
         (early: the first positions, late: from eval.late_from on). Progress = (zero − model) / (zero − one-step GD), \
         late positions. The closest candidate is by squared prediction difference at the late positions.",
        vec![
            "seed",
            "early loss",
            "late loss",
            "zero predictor, late",
            "oracle (true W), late",
            "progress",
            "closest candidate",
            "loss / its",
            "prediction cosine",
        ],
        rows,
    );

    // Loss by context position.
    if let Some(t) = store.table(run, "position_losses")? {
        let mut model: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
        let mut baselines: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for r in &t.rows {
            let (Some(pos), Some(loss)) = (r[2].as_i64(), r[3].as_f64()) else { continue };
            if r[1].is_null() {
                baselines.entry(r[0].as_str().unwrap_or("?").to_string()).or_default().push((pos as f64, loss));
            } else {
                model.entry(pos).or_default().push(loss);
            }
        }
        let mean: Vec<(f64, f64)> =
            model.iter().map(|(p, v)| (*p as f64, v.iter().sum::<f64>() / v.len() as f64)).collect();
        let band: Vec<(f64, f64, f64)> = model
            .iter()
            .map(|(p, v)| {
                let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                (*p as f64, lo, hi)
            })
            .collect();
        let mut chart = LineChart::new("Next-state loss by context position")
            .x_label("position t (pairs seen)")
            .y_label("loss")
            .log_y(true)
            .series(Series::new("model (mean, min–max over seeds)", mean).band(band).markers());
        for (name, points) in baselines {
            chart = chart.series(Series::new(name, points).dashed());
        }
        let mut curves = LineChart::new("Training loss").x_label("Adam step").y_label("loss").log_y(true);
        for series in metric_curves(store, run, "train_loss", "model")? {
            curves = curves.series(series);
        }
        page.section("Learning in context").figure_row(vec![
            (
                chart.to_svg(),
                "Held-out sequences, every position. A model that does not learn in context stays on the zero \
                 predictor's line; an in-context learner falls with t like the algorithms it may run."
                    .into(),
            ),
            (curves.to_svg(), "Training loss per seed (fresh sequences every step).".into()),
        ]);
    }

    // Every candidate.
    if let Some(t) = store.table(run, "identification")? {
        let mut by: BTreeMap<String, Vec<&Vec<Value>>> = BTreeMap::new();
        for r in &t.rows {
            by.entry(r[1].as_str().unwrap_or("?").to_string()).or_default().push(r);
        }
        let spread = |rows: &[&Vec<Value>], col: usize| {
            let v: Vec<f64> = rows.iter().map(|r| r[col].as_f64().unwrap_or(f64::NAN)).collect();
            let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            Cell::text(format!("{} [{}, {}]", number(mean), number(lo), number(hi)))
        };
        let rows = by
            .iter()
            .map(|(name, rows)| {
                vec![Cell::text(name.clone()), spread(rows, 2), spread(rows, 3), spread(rows, 4), spread(rows, 5)]
            })
            .collect();
        page.section("Which algorithm?").table_captioned(
            "Mean [min, max] over seeds at the late positions. η (GD) and λ (least squares) are fitted on separate sequences.",
            vec!["candidate", "its late loss", "model / candidate loss", "SPD", "prediction cosine"],
            rows,
        );
    }

    // Probes.
    if let Some(inside) = summary["inside"].as_object() {
        let mut rows = Vec::new();
        for (model, targets) in inside {
            for (target, layers) in targets.as_object().into_iter().flatten() {
                let mut row = vec![Cell::text(model.clone()), Cell::text(target.clone())];
                for (_, s) in layers.as_object().into_iter().flatten() {
                    row.push(Cell::text(format!(
                        "{} [{}, {}]",
                        number(s["mean"].as_f64().unwrap_or(f64::NAN)),
                        number(s["min"].as_f64().unwrap_or(f64::NAN)),
                        number(s["max"].as_f64().unwrap_or(f64::NAN))
                    )));
                }
                rows.push(row);
            }
        }
        let layers = inside
            .values()
            .next()
            .and_then(|t| t.as_object())
            .and_then(|t| t.values().next())
            .and_then(|l| l.as_object())
            .map_or(0, |l| l.len());
        let mut headers = vec!["model".to_string(), "probe target".into()];
        headers
            .extend((0..layers).map(|l| if l == 0 { "input tokens".to_string() } else { format!("after layer {l}") }));
        page.section("Looking inside: what is linearly readable from each token").table_captioned(
            "Held-out R² of ridge probes from the token at each late position (half of the probe rows fit, half test); \
             mean [min, max] over seeds. The untrained model is each seed's own initialisation.",
            headers,
            rows,
        );
    }
    page.section("Configuration").details("resolved config (TOML)", record.config_toml.clone());
    Ok(page.render())
}
