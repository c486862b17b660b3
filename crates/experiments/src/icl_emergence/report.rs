//! The `icl-emergence` HTML report, drawn from the store alone (`mesalab report` regenerates it).

use super::{ModelResult, m_label};
use crate::report_common::{metric_curves, run_header};
use anyhow::Context as _;
use mesalab_report::fmt::number;
use mesalab_report::html::{Cell, Page};
use mesalab_report::svg::{LineChart, RefLine, Series};
use mesalab_store::{RunId, Store};
use serde_json::Value;

pub fn report(store: &Store, run: RunId) -> anyhow::Result<String> {
    let record = store.run(run)?.context("no such run in the store")?;
    let summary: Value = store.get_json(run, "summary")?.unwrap_or(Value::Null);
    let mut page = Page::new("icl-emergence: how much task diversity makes a general in-context learner?");
    page.subtitle(format!("run {} · {}", run.0, record.run_dir.display()));

    let s = page.section("Verdict");
    let verdict = crate::verdict::Verdict::from_summary(&summary);
    crate::verdict::section(s, verdict.as_ref(), record.status.as_str());
    run_header(s, &record);
    crate::report_common::attempts_and_analyses(s, store, run)?;

    let results: Vec<ModelResult> = serde_json::from_value(summary["results"].clone()).unwrap_or_default();
    let b = &summary["baselines"];
    let (ridge, gd) = (b["ridge_loss"].as_f64().unwrap_or(f64::NAN), b["gd_loss"].as_f64().unwrap_or(f64::NAN));
    let mut sizes: Vec<u64> = results.iter().filter_map(|r| r.m).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let at_inf: Vec<&ModelResult> = results.iter().filter(|r| r.m.is_none()).collect();

    // M* per seed.
    if let Some(v) = &verdict {
        let rows: Vec<Vec<Cell>> = v.context["transitions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                let m = |k: &str| t[k].as_u64().map(|m| m.to_string());
                let star = m("m_star").unwrap_or_else(|| "none in the sweep".into());
                let bracket = match (m("below"), m("m_star")) {
                    (Some(lo), Some(hi)) => format!("({lo}, {hi}]"),
                    (None, Some(hi)) => format!("≤ {hi}"),
                    _ => format!("> {}", sizes.last().map_or("?".into(), u64::to_string)),
                };
                vec![Cell::int(t["seed"].as_i64().unwrap_or(-1)), Cell::text(star), Cell::text(bracket)]
            })
            .collect();
        let spread = &v.context["log2_m_star"];
        let f = |k: &str| spread[k].as_f64().unwrap_or(f64::NAN);
        page.section("The transition M*")
            .paragraph(format!(
                "M* is the smallest pool size from which on (at it and at every larger finite M of the sweep) the model's \
                 predictions on fresh tasks are closer (mean squared prediction difference) to ridge or one-step GD than to \
                 dMMSE. Over the converged seeds: log₂ M* = {} (min {}, max {}).",
                number(f("mean")),
                number(f("min")),
                number(f("max"))
            ))
            .table_captioned(
                "Per seed: M* and the interval the sweep's grid puts it in.",
                vec!["seed", "M*", "M* lies in"],
                rows,
            );
    }

    // The headline figure: fresh-task loss against M.
    let band = |f: &dyn Fn(&ModelResult) -> f64, name: &str| -> Series {
        let (mut mean, mut spread) = (Vec::new(), Vec::new());
        for &m in &sizes {
            let v: Vec<f64> = results.iter().filter(|r| r.m == Some(m)).map(f).filter(|x| x.is_finite()).collect();
            if v.is_empty() {
                continue;
            }
            let avg = v.iter().sum::<f64>() / v.len() as f64;
            let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(*x), b.max(*x)));
            mean.push((m as f64, avg));
            spread.push((m as f64, lo, hi));
        }
        Series::new(name, mean).band(spread).markers()
    };
    let inf_mean = |f: &dyn Fn(&ModelResult) -> f64| {
        let v: Vec<f64> = at_inf.iter().map(|r| f(r)).collect();
        if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }
    };
    let mut fresh = LineChart::new("Loss on fresh tasks (teachers from the full prior)")
        .x_label("pool size M (pretraining task diversity)")
        .y_label("loss (0.5·MSE)")
        .log_x(true)
        .log_y(true)
        .series(band(&|r| r.fresh_loss, "model"))
        .series(band(&|r| r.dmmse_fresh_loss, "dMMSE (the pool's Bayes estimator)").dashed())
        .hline(RefLine::new("ridge λ = σ²", ridge).dashed())
        .hline(RefLine::new("one-step GD", gd).dashed());
    if !at_inf.is_empty() {
        fresh = fresh.hline(RefLine::new("model, M = ∞", inf_mean(&|r| r.fresh_loss)));
    }
    let pool = LineChart::new("Loss on pool tasks (teachers from the model's own pool)")
        .x_label("pool size M")
        .y_label("loss (0.5·MSE)")
        .log_x(true)
        .log_y(true)
        .series(band(&|r| r.pool_loss, "model"))
        .series(band(&|r| r.dmmse_pool_loss, "dMMSE").dashed())
        .series(band(&|r| r.ridge_pool_loss, "ridge λ = σ²").dashed())
        .series(band(&|r| r.gd_pool_loss, "one-step GD").dashed());
    let distance = LineChart::new("Distance of the model's fresh-task predictions to each algorithm")
        .x_label("pool size M")
        .y_label("mean (ŷ_model − ŷ_algorithm)²")
        .log_x(true)
        .log_y(true)
        .series(band(&|r| r.spd_dmmse_fresh, "to dMMSE"))
        .series(band(&|r| r.spd_ridge_fresh, "to ridge"))
        .series(band(&|r| r.spd_gd_fresh, "to one-step GD"));
    page.section("Task diversity against loss")
        .figure(
            fresh.to_svg(),
            "Raventós et al.'s headline plot: the model's loss on fresh tasks against the number M of pretraining teachers \
             (mean over seeds, min–max band), beside dMMSE for each seed's pool and the two general algorithms (ridge at \
             the Bayes-optimal λ = σ², one-step GD with η fitted on fresh tasks). The solid line is the model trained on \
             fresh teachers every step.",
        )
        .figure_row(vec![
            (pool.to_svg(), "The same models on held-out tasks from their own pool.".into()),
            (
                distance.to_svg(),
                "Prediction distance (SPD) on fresh tasks: a memoriser sits near dMMSE, a general learner near ridge / GD."
                    .into(),
            ),
        ]);

    // The table per M with the seeds' spread.
    let per_m = &summary["per_m"];
    let mut labels: Vec<Option<u64>> = sizes.iter().map(|m| Some(*m)).collect();
    if !at_inf.is_empty() {
        labels.push(None);
    }
    let cell = |m: Option<u64>, k: &str| {
        let a = &per_m[m_label(m)][k];
        let f = |n: &str| a[n].as_f64().unwrap_or(f64::NAN);
        Cell::text(format!("{} ± {} [{}, {}]", number(f("mean")), number(f("std")), number(f("min")), number(f("max"))))
    };
    let rows = labels
        .iter()
        .map(|&m| {
            let e = &per_m[m_label(m)];
            vec![
                Cell::text(m.map_or("∞".into(), |m| m.to_string())),
                cell(m, "fresh_loss"),
                cell(m, "pool_loss"),
                cell(m, "dmmse_fresh_loss"),
                cell(m, "dmmse_pool_loss"),
                cell(m, "fresh_distance_ratio"),
                cell(m, "pool_distance_ratio"),
                Cell::text(format!("{} / {}", e["seeds_closer_to_general"], e["seeds"])),
            ]
        })
        .collect();
    page.section("Per pool size, across seeds")
        .paragraph(format!(
            "Mean ± std [min, max] over seeds. Fresh-task baselines (one set for all): ridge {}, one-step GD {}, zero \
             predictor {}. Distance ratio: SPD to the nearer of ridge and one-step GD ÷ SPD to dMMSE (below 1: closer to a \
             general learner). At M = ∞ dMMSE is ridge itself and the pool tasks are the fresh tasks.",
            number(ridge),
            number(gd),
            number(b["zero_loss"].as_f64().unwrap_or(f64::NAN))
        ))
        .table(
            vec![
                "M",
                "fresh loss",
                "pool loss",
                "dMMSE fresh loss",
                "dMMSE pool loss",
                "fresh distance ratio",
                "pool distance ratio",
                "seeds closer to ridge/GD (fresh)",
            ],
            rows,
        );

    // Training curves of the smallest, a middle and the largest pool.
    let mut curves = LineChart::new("Training loss (pool tasks)").x_label("step").y_label("loss (0.5·MSE)").log_y(true);
    let mut shown: Vec<String> = Vec::new();
    if let (Some(first), Some(last)) = (sizes.first(), sizes.last()) {
        shown.push(first.to_string());
        shown.push(sizes[sizes.len() / 2].to_string());
        shown.push(last.to_string());
        shown.dedup();
    }
    if !at_inf.is_empty() {
        shown.push("inf".into());
    }
    for m in &shown {
        let label = if m == "inf" { "M = ∞".to_string() } else { format!("M = {m}") };
        for s in metric_curves(store, run, &format!("train_loss/{m}"), &label)? {
            curves = curves.series(s);
        }
    }
    page.section("Training").figure(curves.to_svg(), "Training loss (mean over seeds, min–max band).");

    page.section("Configuration").details("resolved config (TOML)", record.config_toml.clone());
    Ok(page.render())
}
