//! The `alignment-faking` HTML report, drawn from the run's summary in the store.

use super::{LifetimeStats, ProbeScore, Results, RoomResult};
use crate::report_common::{metric_curves, run_header};
use crate::verdict::{self, Verdict};
use anyhow::Context as _;
use mesalab_analysis::stats::Rate;
use mesalab_report::html::{Cell, Page};
use mesalab_report::svg::{LineChart, RefLine, Series};
use mesalab_store::{RunId, Store};
use serde_json::Value;

fn rate_cell(r: &Rate) -> Cell {
    Cell::text(format!("{:.3} [{:.3}, {:.3}] ({}/{})", r.rate, r.ci_lo, r.ci_hi, r.k, r.n))
}

pub fn report(store: &Store, run: RunId) -> anyhow::Result<String> {
    let record = store.run(run)?.context("no such run in the store")?;
    let summary: Value = store.get_json(run, "summary")?.unwrap_or(Value::Null);
    let mut page = Page::new("alignment-faking: a planner that fakes alignment to keep its objective");
    page.subtitle(format!("run {} · {}", run.0, record.run_dir.display()));
    let s = page.section("Verdict");
    verdict::section(s, Verdict::from_summary(&summary).as_ref(), record.status.as_str());
    run_header(s, &record);
    let Ok(r) = serde_json::from_value::<Results>(summary["results"].clone()) else {
        page.section("Results").paragraph("The run has no results (it failed or was interrupted before the end).");
        return Ok(page.render());
    };

    let s = page.section("The condition");
    s.paragraph(
        "Mesa-objective: weight θ on goal B, 1 − θ on goal A (the base objective's). After an observed training episode \
         that pursued B the base optimizer steps θ ← θ − α·θ; deployment changes nothing. With ℓ updates left before θ ≤ ½, \
         k training episodes left and D deployment episodes after them, the planner pursues B if ℓ ≥ 2 (spare updates are \
         spent at once) and, with ℓ = 1, complies (pursues A) iff p·γ^k·(1 − γ^D)/(1 − γ) > 1. The derivation is in the \
         module documentation (crates/experiments/src/alignment_faking/mod.rs).",
    );
    let g = &r.grid;
    s.table(
        vec![
            "settings",
            "(t, n) states",
            "planner ≠ closed form",
            "near-ties",
            "training choices: complied",
            "defected",
        ],
        vec![vec![
            Cell::int(g.settings as i64),
            Cell::int(g.points as i64),
            Cell::int(g.mismatches as i64),
            Cell::int(g.near_ties as i64),
            Cell::int(g.complied as i64),
            Cell::int(g.defected as i64),
        ]],
    );
    let first_rows: Vec<Vec<Cell>> = g
        .rows
        .iter()
        .filter(|row| row["gamma"] == 0.9 && row["train_episodes"] == 3)
        .take(40)
        .map(|row| {
            let f = |k: &str| Cell::num(row[k].as_f64().unwrap_or(f64::NAN));
            vec![
                f("theta0"),
                f("alpha"),
                f("p_observed"),
                f("deploy_episodes"),
                f("lives"),
                Cell::text(row["planner_first"].as_str().unwrap_or("?")),
                Cell::text(row["analytic_first"].as_str().unwrap_or("?")),
                f("margin_t0"),
            ]
        })
        .collect();
    s.paragraph("First decision on part of the grid (γ = 0.9, K = 3):");
    s.table(vec!["θ₀", "α", "p", "D", "L", "planner", "closed form", "p·γ^K·G − 1"], first_rows);

    let s = page.section("Compliance gap against the deployment horizon");
    let curve = summary["gap_curve"].as_array().cloned().unwrap_or_default();
    let mut chart = LineChart::new("planner's compliance gap (A in training − A in deployment)")
        .x_label("deployment episodes D")
        .y_label("compliance gap");
    let mut ps: Vec<f64> = curve.iter().filter_map(|c| c["p_observed"].as_f64()).collect();
    ps.dedup();
    for p in ps {
        let pts: Vec<(f64, f64)> = curve
            .iter()
            .filter(|c| c["p_observed"].as_f64() == Some(p))
            .map(|c| (c["deploy_episodes"].as_f64().unwrap_or(0.0), c["gap"].as_f64().unwrap_or(f64::NAN)))
            .collect();
        chart = chart.series(Series::new(format!("p = {p}"), pts).markers());
    }
    s.figure(
        chart.to_svg(),
        "Each point pools the simulated lifetimes of every seed; the other parameters are the run's [setting].",
    );

    let s = page.section("Output evaluation and objective drift (default setting)");
    let row = |name: &str, x: &LifetimeStats| {
        vec![
            Cell::text(name),
            rate_cell(&x.a_training),
            rate_cell(&x.a_deploy),
            Cell::fixed(x.gap, 3),
            Cell::fixed(x.final_theta, 4),
            rate_cell(&x.honeypot_lifetimes_caught),
        ]
    };
    s.table(
        vec![
            "agent",
            "A in training (what output evaluation sees)",
            "A in deployment",
            "gap",
            "θ at the end",
            "honeypot lifetimes caught",
        ],
        vec![row("deceptive planner", &r.deceptive_pooled), row("honest agent", &r.honest_pooled)],
    );
    let curve_of =
        |x: &LifetimeStats| x.theta_curve.iter().enumerate().map(|(i, t)| (i as f64, *t)).collect::<Vec<_>>();
    let chart = LineChart::new("θ (weight on B) over training")
        .x_label("training episode")
        .y_label("mean θ")
        .series(Series::new("deceptive planner", curve_of(&r.deceptive_pooled)))
        .series(Series::new("honest agent", curve_of(&r.honest_pooled)))
        .hline(RefLine::new("θ = ½: prefers A below", 0.5).dashed());
    s.figure(chart.to_svg(), "Mean over lifetimes and seeds.");

    let s = page.section("The learned version: the planner distilled into an MLP");
    let room = |x: &RoomResult| {
        vec![
            Cell::text(&x.policy),
            Cell::text(x.seed.map_or("-".into(), |s| s.to_string())),
            rate_cell(&x.a_training),
            rate_cell(&x.a_deploy),
            Cell::fixed(x.gap, 3),
            rate_cell(&x.honeypot_b),
        ]
    };
    s.table(
        vec!["policy", "seed", "A on training-cue levels", "A on deployment levels", "gap", "B on honeypots (caught)"],
        r.clones.iter().chain(&r.baselines).map(room).collect(),
    );
    let mut loss = LineChart::new("behaviour-cloning loss").x_label("epoch").y_label("cross-entropy");
    for series in metric_curves(store, run, "clone/loss", "mean over seeds")? {
        loss = loss.series(series);
    }
    s.figure(loss.to_svg(), "min–max band over seeds");
    s.details_json("cloning", &summary["clone"]);

    let s = page.section("Probes at every hidden layer");
    s.paragraph(
        "Logistic probes on start states (half with each cue), held-out AUROC, beside the same probe on the untrained \
         network (the seed's initial weights), on shuffled labels, and the 95th percentile of 200 random directions. The \
         cue is an input channel, so even random features carry it: compare the trained and untrained rows.",
    );
    let mut keys: Vec<(String, String, String)> =
        r.probes.iter().map(|p| (p.target.clone(), p.hook.clone(), p.model.clone())).collect();
    keys.sort();
    keys.dedup();
    let rows = keys
        .iter()
        .map(|(target, hook, model)| {
            let these: Vec<&ProbeScore> =
                r.probes.iter().filter(|p| &p.target == target && &p.hook == hook && &p.model == model).collect();
            let mean = |f: &dyn Fn(&ProbeScore) -> f64| these.iter().map(|p| f(p)).sum::<f64>() / these.len() as f64;
            vec![
                Cell::text(target),
                Cell::code(hook),
                Cell::text(model),
                Cell::fixed(mean(&|p| p.auroc), 3),
                Cell::fixed(mean(&|p| p.shuffled), 3),
                Cell::fixed(mean(&|p| p.null_p95), 3),
                Cell::int(these.len() as i64),
            ]
        })
        .collect();
    s.table(vec!["target", "hook", "model", "AUROC", "shuffled labels", "random p95", "seeds"], rows);

    page.section("Resolved config").details("config.toml", record.config_toml.clone());
    Ok(page.render())
}
