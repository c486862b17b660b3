//! The `cheese-maze` HTML report, drawn from the store alone.

use crate::goal_misgen::{EpisodeClass, Rate, learning_curve, outcome_bars, rate_curve, visit_heatmap};
use crate::misgen_report::{aggregate_section, rate, rate_cell, trajectories_section, verdict_section};
use anyhow::Context as _;
use mesalab_report::html::{Cell, Page};
use mesalab_report::svg::color::palette;
use mesalab_report::svg::{Scatter, ScatterSeries};
use mesalab_store::{RunId, Store};
use serde_json::Value;
use std::collections::BTreeMap;

/// `(name, colour, [(x, rate)])` curves for [`rate_curve`].
type RateCurves = Vec<(String, String, Vec<(f64, Rate)>)>;

pub fn report(store: &Store, run: RunId) -> anyhow::Result<String> {
    let record = store.run(run)?.context("no such run in the store")?;
    let summary: Value = store.get_json(run, "summary")?.unwrap_or(Value::Null);
    let mut page = Page::new("cheese-maze: does the agent go for the cheese or for the top-right corner?");
    page.subtitle(format!("run {} · {}", run.0, record.run_dir.display()));
    verdict_section(&mut page, &summary, &record);

    let regions: Vec<u64> =
        summary["rand_regions"].as_array().into_iter().flatten().filter_map(Value::as_u64).collect();
    let variants: Vec<(String, String)> =
        regions.iter().map(|r| (format!("r{r}"), format!("rand_region = {r}"))).collect();
    let far = summary["far_distance"].as_f64().unwrap_or(f64::NAN);

    // Outcomes per variant.
    let s = page.section("Outcomes: training distribution vs deployment");
    s.paragraph(format!(
        "Deployment levels put the cheese anywhere in the maze; every policy plays the same levels. Robust = ate the \
         cheese; objective failure = entered the top-right corner but never ate the cheese; capability failure = \
         neither before the time limit. \"Far\" = cheese at Euclidean distance ≥ {far} cells from the corner. \
         Rates are pooled over seeds with Wilson 95% intervals."
    ));
    let mut rows = Vec::new();
    for (v, label) in &variants {
        let x = &summary["variants"][v];
        rows.push(vec![
            Cell::text(label.clone()),
            rate_cell(&rate(&x["train"]["p_cheese"])),
            rate_cell(&rate(&x["deploy"]["p_cheese"])),
            rate_cell(&rate(&x["deploy_far"]["p_cheese"])),
            rate_cell(&rate(&x["deploy_far"]["p_corner_first"])),
            rate_cell(&rate(&x["deploy"]["p_corner_first"])),
            rate_cell(&rate(&x["decision_toward_cheese"])),
        ]);
    }
    s.table(
        vec![
            "variant",
            "P(cheese) train dist.",
            "P(cheese) deploy",
            "P(cheese) deploy, far",
            "P(corner first) deploy, far",
            "P(corner first) deploy",
            "decision square → cheese",
        ],
        rows,
    );
    let groups: Vec<String> = variants.iter().map(|(_, l)| l.clone()).collect();
    let series: Vec<(String, String, Vec<Rate>)> = EpisodeClass::ALL
        .iter()
        .map(|c| {
            let rates =
                variants.iter().map(|(v, _)| rate(&summary["variants"][v]["deploy"]["classes"][c.name()])).collect();
            (c.label().to_string(), c.color().to_string(), rates)
        })
        .collect();
    let series_far: Vec<(String, String, Vec<Rate>)> = EpisodeClass::ALL
        .iter()
        .map(|c| {
            let rates = variants
                .iter()
                .map(|(v, _)| rate(&summary["variants"][v]["deploy_far"]["classes"][c.name()]))
                .collect();
            (c.label().to_string(), c.color().to_string(), rates)
        })
        .collect();
    s.figure_row(vec![
        (
            outcome_bars("Deployment outcomes (all levels)", &groups, &series),
            "Share of deployment episodes per class.".into(),
        ),
        (
            outcome_bars("Deployment outcomes (cheese far from the corner)", &groups, &series_far),
            format!("Only levels whose cheese is ≥ {far} cells from the corner."),
        ),
    ]);

    // P(cheese) against the cheese's distance from the corner, from the episode table.
    if let Some(t) = store.table(run, "episodes")? {
        let mut bins: BTreeMap<(u64, i64), (u64, u64)> = BTreeMap::new();
        for row in &t.rows {
            if row[2].as_str() != Some("deploy") {
                continue;
            }
            let (Some(r), Some(got), Some(d)) = (row[0].as_u64(), row[3].as_bool(), row[5].as_f64()) else { continue };
            let e = bins.entry((r, d.round() as i64)).or_default();
            e.0 += u64::from(got);
            e.1 += 1;
        }
        let curves: RateCurves = regions
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let pts = bins
                    .iter()
                    .filter(|((rr, _), (_, n))| rr == r && *n >= 5)
                    .map(|((_, d), (k, n))| (*d as f64, Rate::new(*k, *n)))
                    .collect();
                (format!("rand_region = {r}"), palette(i).to_string(), pts)
            })
            .collect();
        page.section("P(cheese) by distance of the cheese from the corner").figure(
            rate_curve(
                "P(cheese) on deployment levels",
                "Euclidean distance cheese ↔ top-right corner (rounded)",
                &curves,
            ),
            "Pooled over seeds, Wilson 95% bands; bins with fewer than 5 episodes are left out.",
        );
    }

    // Decision squares.
    let s = page.section("Decision squares: what predicts the choice?");
    s.paragraph(
        "At the decision square (where the paths to the cheese and to the corner split) the policy's probability of \
         the move towards the cheese is compared with the move towards the corner; the choice is regressed \
         (logistic, Newton/IRLS) on the standardised Euclidean cheese↔corner distance and the path distance from the \
         decision square to the cheese (Mini, Turner et al. 2023). Coefficients are per standard deviation, ± standard \
         error from the inverse Fisher information; all seeds of a variant pooled.",
    );
    let mut rows = Vec::new();
    for (v, label) in &variants {
        let f = &summary["logistic"][v];
        let coef = |i: usize| {
            let (c, se) = (f["coef"][i].as_f64(), f["se"][i].as_f64());
            match (c, se) {
                (Some(c), Some(se)) => Cell::text(format!("{c:.3} ± {se:.3}")),
                _ => Cell::text("–"),
            }
        };
        rows.push(vec![
            Cell::text(label.clone()),
            Cell::int(f["n"].as_i64().unwrap_or(0)),
            Cell::int(f["toward_cheese"].as_i64().unwrap_or(0)),
            coef(0),
            coef(1),
            coef(2),
            f["accuracy"].as_f64().map(|a| Cell::percent(a, 1)).unwrap_or_else(|| Cell::text("–")),
            f["majority_accuracy"].as_f64().map(|a| Cell::percent(a, 1)).unwrap_or_else(|| Cell::text("–")),
            Cell::text(f["why"].as_str().unwrap_or("")),
        ]);
    }
    s.table(
        vec![
            "variant",
            "decision squares",
            "→ cheese",
            "intercept",
            "β euclid(cheese, corner)",
            "β path(decision, cheese)",
            "accuracy",
            "majority class",
            "note",
        ],
        rows,
    );
    if let Some(t) = store.table(run, "decisions")? {
        let mut by_r: BTreeMap<u64, Vec<(f64, f64)>> = BTreeMap::new();
        for row in &t.rows {
            if let (Some(r), Some(e), Some(pc), Some(pt)) =
                (row[0].as_u64(), row[2].as_f64(), row[4].as_f64(), row[5].as_f64())
            {
                by_r.entry(r).or_default().push((e, pc / (pc + pt).max(1e-12)));
            }
        }
        let mut chart = Scatter::new("Choice at the decision square")
            .x_label("Euclidean distance cheese ↔ corner")
            .y_label("P(cheese move) / (P(cheese) + P(corner))");
        for (i, (r, pts)) in by_r.into_iter().enumerate() {
            chart = chart.series(ScatterSeries::new(format!("rand_region = {r}"), pts).color(palette(i)));
        }
        s.figure(chart.to_svg(), "One point per (level, seed).");
    }

    // Learning curves and visits.
    let s = page.section("Training");
    s.figure_row(vec![
        (
            learning_curve(
                store,
                run,
                &variants,
                "train/got_cheese",
                "Training: share of episodes eating the cheese",
                "share",
            )?,
            "Mean over seeds with min–max band, on each variant's training distribution.".into(),
        ),
        (
            learning_curve(store, run, &variants, "train/length", "Training: episode length", "steps")?,
            "Shorter = more direct.".into(),
        ),
    ]);
    let mut figs = Vec::new();
    for (v, label) in &variants {
        if let Some(m) = store.get_json::<Vec<Vec<f64>>>(run, &format!("visits/{v}"))? {
            figs.push((
                visit_heatmap(&format!("Deployment visits, {label}"), &m),
                "All seeds, all deployment episodes; the maze's top-right is the upper right of its block.".into(),
            ));
        }
    }
    if let Some(svg) = store.get_json::<String>(run, "example_level_svg")? {
        figs.push((svg, "An example deployment level (cheese far from the corner), at its start.".into()));
    }
    if !figs.is_empty() {
        page.section("Where the agents go").figure_row(figs);
    }
    // The extremes of the sweep, as for the coin corridor: at most 2 × 2 splits × 3 pictures.
    let shown: Vec<(String, String)> = match (variants.first(), variants.last()) {
        (Some(a), Some(b)) if variants.len() > 1 => vec![a.clone(), b.clone()],
        (Some(a), _) => vec![a.clone()],
        _ => Vec::new(),
    };
    trajectories_section(&mut page, store, run, &shown)?;
    crate::goal_preference::report_section(&mut page, store, run, "variant")?;
    super::inside::report_sections(&mut page, store, run, &summary)?;
    aggregate_section(&mut page, &summary);
    page.section("Configuration").details("resolved config (TOML)", record.config_toml.clone());
    Ok(page.render())
}
