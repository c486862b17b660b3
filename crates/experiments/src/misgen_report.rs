//! Report pieces shared by the goal-misgeneralization reports: the verdict table and the per-seed
//! aggregate table (cheese-maze, keys-chests, monster-shield; read from a run's `summary` JSON), and
//! the example trajectories drawn over their levels (every goal-misgeneralization report).

use crate::goal_misgen::{Rate, TRAJECTORIES_KEY, Trajectory};
use crate::report_common::run_header;
use mesalab_report::html::{Cell, Page};
use mesalab_report::svg::overlay_path;
use mesalab_store::{RunId, RunRecord, Store};
use serde_json::Value;

/// Example trajectories drawn per (variant, split), which keeps a report to at most a dozen of them
/// with two variants and two splits.
const TRAJECTORIES_PER_SPLIT: usize = 3;
/// Width the level pictures are enlarged towards (small grids would otherwise be thumbnails).
const TRAJECTORY_WIDTH_PX: f64 = 240.0;

/// The verdict callout and checks ([`crate::verdict::section`]), then the run header.
pub fn verdict_section(page: &mut Page, summary: &Value, record: &RunRecord) {
    let s = page.section("Verdict");
    crate::verdict::section(s, crate::verdict::Verdict::from_summary(summary).as_ref(), record.status.as_str());
    run_header(s, record);
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

/// A [`Rate`] stored in the summary JSON (NaN rate when absent).
pub fn rate(v: &Value) -> Rate {
    serde_json::from_value(v.clone()).unwrap_or(Rate { rate: f64::NAN, ..Rate::default() })
}

/// `12.3% [8.1, 17.0]` for a rate with its Wilson interval, as a table cell.
pub fn rate_cell(r: &Rate) -> Cell {
    if r.n == 0 {
        return Cell::text("–");
    }
    Cell::text(format!(
        "{} [{}, {}] (n={})",
        mesalab_report::fmt::percent(r.rate, 1),
        mesalab_report::fmt::percent(r.ci_lo, 1),
        mesalab_report::fmt::percent(r.ci_hi, 1),
        r.n
    ))
}

/// The "Example trajectories" section: for each `(variant id, label)` of `variants` and each split,
/// up to three stored [`Trajectory`] records, drawn as the level at the episode's start with the
/// agent's path on top in its class colour. Omitted when the run stored none (older runs).
pub fn trajectories_section(
    page: &mut Page,
    store: &Store,
    run: RunId,
    variants: &[(String, String)],
) -> anyhow::Result<()> {
    let stored: Option<Value> = store.get_json(run, TRAJECTORIES_KEY)?;
    let all: Vec<Trajectory> = stored.and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default();
    if all.is_empty() {
        return Ok(());
    }
    let mut splits: Vec<&str> = Vec::new();
    for t in &all {
        if !splits.contains(&t.split.as_str()) {
            splits.push(&t.split);
        }
    }
    let s = page.section("Example trajectories");
    s.paragraph(
        "The level as it looked when the episode began, with the agent's path through the cell centres: circle = \
         start, square = end, colour = the episode's class (green robust, red objective failure, grey capability \
         failure). Examples of the first seed's policy, played on the split's levels separately from the counted \
         evaluation episodes and chosen to show each class that occurred.",
    );
    for (variant, label) in variants {
        for split in &splits {
            let figs: Vec<(String, String)> = all
                .iter()
                .filter(|t| &t.variant == variant && t.split == *split)
                .take(TRAJECTORIES_PER_SPLIT)
                .map(|t| (trajectory_figure(t), trajectory_caption(t)))
                .collect();
            if figs.is_empty() {
                continue;
            }
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
    let mut c = format!(
        "{} levels, seed {}: {} · return {} · {} steps",
        t.split,
        t.seed,
        t.class.label(),
        mesalab_report::fmt::number(t.episode_return),
        t.length
    );
    if t.geometry.is_none() {
        c.push_str(" (path not drawn: the render is not a grid)");
    }
    c
}
