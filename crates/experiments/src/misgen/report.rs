//! The report every goal-misgeneralization experiment shares, drawn from the store alone: the
//! verdict, the trained agent beside its baselines on the same levels, rates against the knob,
//! learning curves, visits, example trajectories and the per-seed spread. An experiment passes a
//! closure that adds its own sections.

use super::{EpisodeClass, PolicyResult, Results, Role, SPLITS, Stat, TRAJECTORIES_KEY, Trajectory, metric_name};
use crate::report_common::{metric_curves, run_header};
use crate::verdict::{self, Verdict};
use anyhow::Context as _;
use mesalab_analysis::stats::Rate;
use mesalab_report::html::{Cell, Page};
use mesalab_report::svg::{BarChart, BarSeries, Heatmap, LineChart, Series, overlay_path};
use mesalab_store::{RunId, Store};
use serde_json::Value;

/// Width the level pictures are enlarged towards (small grids would otherwise be thumbnails).
const TRAJECTORY_WIDTH_PX: f64 = 240.0;

/// Extra sections of one experiment, given the page, the store, the run and its summary.
pub type Extra<'a> = &'a dyn Fn(&mut Page, &Store, RunId, &Value) -> anyhow::Result<()>;

/// The report of a goal-misgeneralization run: `title`, what the splits mean (`about`), the
/// metrics to tabulate (`(metric, label)`), then `extra`.
pub fn report(
    store: &Store,
    run: RunId,
    title: &str,
    about: &str,
    metrics: &[(&str, &str)],
    extra: Extra,
) -> anyhow::Result<String> {
    let record = store.run(run)?.context("no such run in the store")?;
    let summary: Value = store.get_json(run, "summary")?.unwrap_or(Value::Null);
    let results: Option<Results> = serde_json::from_value(summary.clone()).ok();
    let mut page = Page::new(title);
    page.subtitle(format!("run {} · {}", run.0, record.run_dir.display()));
    let s = page.section("Verdict");
    verdict::section(s, Verdict::from_summary(&summary).as_ref(), record.status.as_str());
    run_header(s, &record);
    crate::report_common::attempts_and_analyses(s, store, run)?;
    if let Some(r) = &results {
        outcomes_section(&mut page, r, about, metrics);
        if r.variants.len() > 1 {
            knob_section(&mut page, r);
        }
        learning_section(&mut page, store, run, r)?;
        convergence_section(&mut page, r);
        visits_section(&mut page, store, run, r)?;
    }
    trajectories_section(&mut page, store, run, results.as_ref())?;
    // A result the report cannot read is left out, not fatal: the report is drawn from what exists.
    if let Some(measured) =
        store.get_json::<Vec<crate::goal_preference::Measured>>(run, crate::goal_preference::KEY).ok().flatten()
    {
        crate::goal_preference::report_section(&mut page, &measured, "variant");
    }
    extra(&mut page, store, run, &summary)?;
    aggregate_section(&mut page, &summary);
    page.section("Resolved config").details("config.toml", record.config_toml.clone());
    Ok(page.render())
}

/// `12.3% [8.1, 17.0]` for a rate with its Wilson interval.
pub fn rate_cell(r: &Rate) -> Cell {
    if r.n == 0 {
        return Cell::text("–");
    }
    Cell::text(format!(
        "{} [{}, {}]",
        mesalab_report::fmt::percent(r.rate, 1),
        mesalab_report::fmt::percent(r.ci_lo, 1),
        mesalab_report::fmt::percent(r.ci_hi, 1)
    ))
    .tooltip(format!("{} of {} episodes; Wilson 95% interval", r.k, r.n))
}

fn stat_cell(s: Option<&Stat>) -> Cell {
    match s {
        Some(Stat::Rate(r)) => rate_cell(r),
        Some(Stat::Mean { mean, .. }) => Cell::num(*mean),
        None => Cell::text("–"),
    }
}

fn variant_title(r: &Results, variant: &str) -> String {
    r.variants.iter().find(|v| v.name == variant).map(|v| v.label.clone()).filter(|l| !l.is_empty()).unwrap_or_default()
}

fn outcomes_section(page: &mut Page, r: &Results, about: &str, metrics: &[(&str, &str)]) {
    let s = page.section("The trained agent beside its baselines, on the same levels");
    s.paragraph(format!(
        "{about} Every policy — each trained seed and each baseline — plays the same {} levels per split, drawn from \
         the evaluation seed. The intended-goal oracle and the proxy-goal policy are scripted shortest-path \
         planners; the random policy picks actions uniformly. Rates of the trained agent pool the episodes of all \
         seeds; brackets are Wilson 95% intervals.",
        r.pooled.first().map_or(0, |p| p.deploy.episodes)
    ));
    for v in &r.variants {
        let policies: Vec<&PolicyResult> = r.pooled.iter().filter(|p| p.variant == v.name).collect();
        let label = variant_title(r, &v.name);
        if !label.is_empty() {
            s.heading(label.clone());
        }
        let mut headers = vec!["policy".to_string(), "split".to_string()];
        headers.extend(EpisodeClass::ALL.iter().map(|c| c.label().to_string()));
        headers.extend(metrics.iter().map(|(_, l)| l.to_string()));
        let mut rows = Vec::new();
        for split in SPLITS {
            for p in &policies {
                let sr = p.split(split);
                let mut row = vec![Cell::text(format!("{} ({})", p.role.label(), p.name)), Cell::text(split)];
                row.extend(EpisodeClass::ALL.iter().map(|c| rate_cell(&sr.classes.rate(*c))));
                row.extend(metrics.iter().map(|(m, _)| stat_cell(sr.metrics.get(*m))));
                rows.push(row);
            }
        }
        s.table(headers, rows);
        let groups: Vec<String> = policies.iter().map(|p| p.role.label().to_string()).collect();
        let mut chart = BarChart::new(format!("deploy outcomes {label}").trim_end(), groups)
            .y_label("share of episodes")
            .y_range(0.0, 1.0)
            .stacked();
        for c in EpisodeClass::ALL {
            let rates: Vec<Rate> = policies.iter().map(|p| p.deploy.classes.rate(c)).collect();
            chart = chart.series(BarSeries::new(c.label(), rates.iter().map(|x| x.rate).collect()).color(c.color()));
        }
        s.figure(chart.to_svg(), "Deploy episodes by class, per policy (same levels).");
    }
}

fn knob_section(page: &mut Page, r: &Results) {
    let s = page.section("Proxy pursuit against the training knob");
    let mut chart = LineChart::new("deploy: objective failure (proxy pursued)")
        .x_label(
            r.variants.first().map(|v| v.label.split(" = ").next().unwrap_or("knob").to_string()).unwrap_or_default(),
        )
        .y_label("share of deploy episodes");
    for role in [Role::Trained, Role::Oracle, Role::Proxy, Role::Random] {
        let points: Vec<(f64, Rate)> = r
            .variants
            .iter()
            .filter_map(|v| {
                r.pooled(&v.name, role).map(|p| (v.knob, p.deploy.classes.rate(EpisodeClass::ObjectiveFailure)))
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        let line = points.iter().map(|(x, p)| (*x, p.rate)).collect();
        let band = points.iter().map(|(x, p)| (*x, p.ci_lo, p.ci_hi)).collect();
        chart = chart.series(Series::new(role.label(), line).band(band).color(role.color()).markers());
    }
    s.figure(chart.to_svg(), "Trained agent (seeds pooled, Wilson band) and the baselines on the same deploy levels.");
}

/// Per trained seed: its mean train-level return beside the random policy's and the best
/// scripted baseline's (same levels), the progress between them and whether it converged.
fn convergence_section(page: &mut Page, r: &Results) {
    let num = |v: Option<f64>| v.map_or(Cell::text("—"), Cell::num);
    let mut rows = Vec::new();
    for p in r.per_seed.iter().filter(|p| p.convergence.is_some()) {
        let base = |role: Role| {
            r.pooled.iter().find(|b| b.variant == p.variant && b.role == role).and_then(|b| b.train.mean_return)
        };
        let best = [Role::Oracle, Role::Proxy].into_iter().filter_map(base).reduce(f64::max);
        let c = p.convergence.expect("filtered");
        rows.push(vec![
            Cell::text(variant_title(r, &p.variant)),
            Cell::int(p.seed.unwrap_or(0) as i64),
            num(p.train.mean_return),
            num(base(Role::Random)),
            num(best),
            Cell::num(c.progress),
            Cell::text(if c.converged { "yes" } else { "did not converge" }),
        ]);
    }
    if rows.is_empty() {
        return;
    }
    page.section("Did training converge?")
        .paragraph(
            "Progress = (the seed's mean return − the random policy's) / (the best scripted baseline's − the random \
             policy's), all on the same train levels. A seed below `eval.min_progress` did not leave the starting \
             plateau: the verdict leaves it out (neither evidence for nor against the claim), and the trained \
             agent's pooled rates above count converged seeds only.",
        )
        .table(vec!["variant", "seed", "train return", "random", "best baseline", "progress", "converged"], rows);
}

fn learning_section(page: &mut Page, store: &Store, run: RunId, r: &Results) -> anyhow::Result<()> {
    let s = page.section("Learning curves");
    for (metric, title, y) in [
        ("train/return", "training return (the base objective)", "mean episode return"),
        ("train/performance", "hidden performance (the intended objective)", "mean episode performance"),
    ] {
        let mut chart = LineChart::new(title).x_label("environment steps").y_label(y);
        for (i, v) in r.variants.iter().enumerate() {
            let label = if v.label.is_empty() { "trained agent".to_string() } else { v.label.clone() };
            for series in metric_curves(store, run, &metric_name(&v.name, metric), &label)? {
                chart = chart.series(series.color(mesalab_report::svg::color::palette(i)));
            }
        }
        s.figure(chart.to_svg(), "Mean over seeds with the min–max band.");
    }
    Ok(())
}

fn visits_section(page: &mut Page, store: &Store, run: RunId, r: &Results) -> anyhow::Result<()> {
    let mut figures = Vec::new();
    for v in [r.variants.first(), r.variants.last()].into_iter().flatten() {
        if figures.len() == 1 && r.variants.len() == 1 {
            break;
        }
        let Some(stored) = store.get_json::<Value>(run, &format!("visits/{}", v.name))? else { continue };
        let counts: Vec<Vec<f64>> = serde_json::from_value(stored["counts"].clone()).unwrap_or_default();
        let total: f64 = counts.iter().flatten().sum();
        if total <= 0.0 {
            continue;
        }
        let m: Vec<Vec<f64>> = counts.iter().map(|row| row.iter().map(|c| c / total).collect()).collect();
        let cell = if m.first().is_some_and(|r| r.len() > 24) { 14.0 } else { 22.0 };
        let title = format!("deploy visits {}", variant_title(r, &v.name));
        figures.push((
            Heatmap::new(title.trim_end(), m).x_label("column").y_label("row").cell_size(cell).to_svg(),
            "Share of all agent positions on the deploy levels (every seed).".to_string(),
        ));
    }
    if !figures.is_empty() {
        page.section("Where the agent goes on deployment").figure_row(figures);
    }
    Ok(())
}

fn trajectories_section(page: &mut Page, store: &Store, run: RunId, r: Option<&Results>) -> anyhow::Result<()> {
    let stored: Option<Value> = store.get_json(run, TRAJECTORIES_KEY)?;
    let all: Vec<Trajectory> = stored.and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default();
    if all.is_empty() {
        return Ok(());
    }
    let s = page.section("Example trajectories");
    s.paragraph(
        "The level as it looked when the episode began, with the agent's path through the cell centres: circle = \
         start, square = end, colour = the episode's class (green robust, red objective failure, grey capability \
         failure). Counted evaluation episodes of the first seed, chosen to show each class that occurred.",
    );
    let mut variants: Vec<&str> = Vec::new();
    for t in &all {
        if !variants.contains(&t.variant.as_str()) {
            variants.push(&t.variant);
        }
    }
    for variant in variants {
        for split in SPLITS {
            let figs: Vec<(String, String)> = all
                .iter()
                .filter(|t| t.variant == variant && t.split == split)
                .map(|t| (trajectory_figure(t), trajectory_caption(t)))
                .collect();
            if figs.is_empty() {
                continue;
            }
            let label = r.map(|r| variant_title(r, variant)).unwrap_or_default();
            s.heading(if label.is_empty() { format!("{split} levels") } else { format!("{label}, {split} levels") });
            s.figure_row(figs);
        }
    }
    Ok(())
}

/// The level picture with the path drawn over it (the bare picture when its layout is unknown).
pub fn trajectory_figure(t: &Trajectory) -> String {
    match &t.geometry {
        Some(g) => {
            let scale = (TRAJECTORY_WIDTH_PX / (g.cols as f64 * g.cell)).clamp(1.0, 3.0);
            overlay_path(&t.level_svg, g, &t.path, t.class.color(), scale)
        }
        None => t.level_svg.clone(),
    }
}

fn trajectory_caption(t: &Trajectory) -> String {
    format!(
        "{} levels, seed {}: {} · return {} · {} steps",
        t.split,
        t.seed,
        t.class.label(),
        mesalab_report::fmt::number(t.episode_return),
        t.length
    )
}

/// Every `aggregate` entry of the summary as a table (mean ± std, [min, max], n).
pub fn aggregate_section(page: &mut Page, summary: &Value) {
    let Some(agg) = summary["aggregate"].as_object() else { return };
    let rows = agg
        .iter()
        .filter(|(_, a)| a.is_object())
        .map(|(k, a)| {
            let f = |n: &str| a[n].as_f64().unwrap_or(f64::NAN);
            vec![
                Cell::code(k.clone()),
                Cell::mean_pm(f("mean"), f("std")),
                Cell::text(format!(
                    "[{}, {}]",
                    mesalab_report::fmt::number(f("min")),
                    mesalab_report::fmt::number(f("max"))
                )),
                Cell::int(a["n"].as_i64().unwrap_or(0)),
            ]
        })
        .collect();
    page.section("Per-seed metrics across seeds").table(vec!["metric", "mean ± std", "[min, max]", "seeds"], rows);
}
