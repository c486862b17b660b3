//! Folding a sweep's point stores into one store, and the sweep report drawn from that store.
//!
//! The report is a view of the merged store alone (plus the plan, which says which run is which
//! point): every point's metric is the last sample of that metric for the point's seed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use mesalab_report::html::{Cell, Page};
use mesalab_report::svg::{BarChart, BarSeries, LineChart, Series};
use mesalab_store::{MergeSummary, RunId, RunStatus, Store};

use crate::point::PlannedPoint;
use crate::spec::Goal;
use crate::sweep::{MERGED_STORE, POINT_RUN_DIR, REPORT_FILE, Sweep, write_atomic};

/// What merging a sweep did.
#[derive(Debug)]
pub struct SweepMerge {
    pub store: PathBuf,
    pub summary: MergeSummary,
    /// Points with a finished run (merged now or before).
    pub merged_points: usize,
    /// Keys of points without a finished run (not in the merged store).
    pub missing: Vec<String>,
    pub report: PathBuf,
}

/// Merges every finished point of `sweep` into `into` (default `DIR/merged.sqlite`) and writes
/// `DIR/report.html`.
pub fn merge_sweep(sweep: &Sweep, into: Option<&Path>) -> anyhow::Result<SweepMerge> {
    let target_path = into.map(Path::to_path_buf).unwrap_or_else(|| sweep.dir.join(MERGED_STORE));
    let finished = sweep.finished_stores();
    let sources: Vec<Store> = finished
        .iter()
        .map(|(p, path)| Store::open(path).with_context(|| format!("point {} ({})", p.index, p.label())))
        .collect::<anyhow::Result<_>>()?;
    let target = Store::open(&target_path)?;
    let summary = target.merge(&sources.iter().collect::<Vec<_>>())?;
    let missing: Vec<String> = sweep
        .plan
        .points
        .iter()
        .filter(|p| !finished.iter().any(|(f, _)| f.key == p.key))
        .map(|p| p.key.clone())
        .collect();
    let html = report(sweep, &target)?;
    let report_path = sweep.dir.join(REPORT_FILE);
    write_atomic(&report_path, html.as_bytes())?;
    Ok(SweepMerge { store: target_path, summary, merged_points: finished.len(), missing, report: report_path })
}

/// The run of each point in `store` (a finished run whose directory is the point's run directory).
pub fn point_runs(sweep: &Sweep, store: &Store) -> anyhow::Result<BTreeMap<String, RunId>> {
    let by_dir: BTreeMap<PathBuf, RunId> = store
        .runs()?
        .into_iter()
        .filter(|r| r.status == RunStatus::Finished)
        .map(|r| (r.run_dir.clone(), r.id))
        .collect();
    let mut out = BTreeMap::new();
    for p in &sweep.plan.points {
        let dir = sweep.point_dir(&p.key).join(POINT_RUN_DIR);
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        if let Some(id) = by_dir.get(&dir) {
            out.insert(p.key.clone(), *id);
        }
    }
    Ok(out)
}

/// The last sample of `metric` for the point's seed (or the cross-seed value when the run logged
/// it only so).
fn point_value(store: &Store, run: RunId, seed: u64, metric: &str) -> anyhow::Result<Option<f64>> {
    let series = store.metric_series(run, Some(seed), metric)?;
    let series = if series.is_empty() { store.metric_series(run, None, metric)? } else { series };
    Ok(series.last().map(|(_, v)| *v))
}

/// Metrics with one sample per seed in the first point's run (its summary values), `final/` first.
fn default_metrics(store: &Store, run: RunId, seed: u64) -> anyhow::Result<Vec<String>> {
    let mut single = Vec::new();
    for name in store.metric_names(run)? {
        if store.metric_series(run, Some(seed), &name)?.len() == 1 {
            single.push(name);
        }
    }
    single.sort_by_key(|n| (!n.starts_with("final/"), n.clone()));
    single.truncate(6);
    Ok(single)
}

fn stats(v: &[f64]) -> (f64, f64, f64) {
    let finite: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if finite.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mean = finite.iter().sum::<f64>() / finite.len() as f64;
    let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, lo, hi)
}

/// The sweep report: for each metric, the metric against each swept key (mean over seeds, band
/// from the lowest to the highest seed), the best points, and every point.
pub fn report(sweep: &Sweep, store: &Store) -> anyhow::Result<String> {
    let plan = &sweep.plan;
    let runs = point_runs(sweep, store)?;
    let mut page = Page::new(format!("Sweep {}", plan.name));
    page.subtitle(format!("{} — {} of {} points finished", plan.experiment, runs.len(), plan.points.len()));
    let metrics =
        match (plan.metrics.is_empty(), plan.points.iter().find_map(|p| runs.get(&p.key).map(|r| (*r, p.seed)))) {
            (false, _) => plan.metrics.clone(),
            (true, Some((run, seed))) => default_metrics(store, run, seed)?,
            (true, None) => Vec::new(),
        };
    // values[metric][point key]
    let mut values: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for m in &metrics {
        let per = values.entry(m.clone()).or_default();
        for p in &plan.points {
            if let Some(run) = runs.get(&p.key)
                && let Some(v) = point_value(store, *run, p.seed, m)?
            {
                per.insert(p.key.clone(), v);
            }
        }
    }
    page.section("Sweep").key_values(vec![
        ("experiment".to_string(), plan.experiment.clone()),
        ("quick".to_string(), plan.quick.to_string()),
        ("fixed overrides".to_string(), if plan.fixed.is_empty() { "none".into() } else { plan.fixed.join(", ") }),
        ("swept keys".to_string(), plan.keys.iter().map(|k| k.key.clone()).collect::<Vec<_>>().join(", ")),
        ("points".to_string(), format!("{} ({} finished and merged)", plan.points.len(), runs.len())),
        ("seeds".to_string(), {
            let mut s: Vec<u64> = plan.points.iter().map(|p| p.seed).collect();
            s.sort_unstable();
            s.dedup();
            s.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
        }),
        ("metrics".to_string(), if metrics.is_empty() { "none found".into() } else { metrics.join(", ") }),
        ("store".to_string(), store.path().display().to_string()),
    ]);
    if metrics.is_empty() || runs.is_empty() {
        page.section("Results").paragraph("No finished point has the requested metrics yet.");
        return Ok(page.render());
    }

    // Groups: points that differ only in their seed.
    let mut groups: BTreeMap<String, Vec<&PlannedPoint>> = BTreeMap::new();
    for p in &plan.points {
        groups.entry(p.label()).or_default().push(p);
    }
    let ranking = &metrics[0];
    let mut ranked: Vec<(String, Vec<f64>)> = groups
        .iter()
        .map(|(label, ps)| (label.clone(), ps.iter().filter_map(|p| values[ranking].get(&p.key).copied()).collect()))
        .filter(|(_, v): &(String, Vec<f64>)| !v.is_empty())
        .collect();
    ranked.sort_by(|a, b| {
        let (ma, mb) = (stats(&a.1).0, stats(&b.1).0);
        let ord = ma.total_cmp(&mb);
        if plan.goal == Goal::Max { ord.reverse() } else { ord }
    });
    let rows: Vec<Vec<Cell>> = ranked
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, (label, v))| {
            let (mean, lo, hi) = stats(v);
            vec![
                Cell::int(i as i64 + 1),
                Cell::code(label.clone()),
                Cell::mean_range(mean, lo, hi),
                Cell::int(v.len() as i64),
            ]
        })
        .collect();
    let goal = if plan.goal == Goal::Max { "highest" } else { "lowest" };
    page.section("Best points")
        .paragraph(format!("Ranked by the mean of `{ranking}` over seeds ({goal} first); [min, max] over the seeds."))
        .table(vec!["rank", "point", ranking.as_str(), "seeds"], rows);

    for m in &metrics {
        let mut figures = Vec::new();
        for (ki, key) in plan.keys.iter().enumerate() {
            figures.push((
                chart(plan, &values[m], m, ki, key.log_scale),
                format!("{m} against {}: mean over seeds, band from the lowest to the highest seed.", key.key),
            ));
        }
        if !figures.is_empty() {
            page.section(format!("{m} against each swept key")).figure_row(figures);
        }
    }

    let mut headers: Vec<String> = vec!["point".into(), "seed".into()];
    headers.extend(plan.keys.iter().map(|k| k.key.clone()));
    headers.extend(metrics.iter().cloned());
    let rows: Vec<Vec<Cell>> = plan
        .points
        .iter()
        .map(|p| {
            let mut row = vec![Cell::int(p.index as i64), Cell::int(p.seed as i64)];
            row.extend(p.values.iter().map(|(_, v)| Cell::code(v.clone())));
            row.extend(metrics.iter().map(|m| match values[m].get(&p.key) {
                Some(v) => Cell::num(*v),
                None => Cell::text("—"),
            }));
            row
        })
        .collect();
    page.section("Every point").table(headers, rows);
    Ok(page.render())
}

/// x value (as written) → (its number, the metric of every point there).
type XValues = BTreeMap<String, (Option<f64>, Vec<f64>)>;

/// `metric` against swept key `ki`: one line (or bar set) per combination of the other keys (or
/// one, averaged over them, when there are more than six), each x the mean over its points.
fn chart(
    plan: &crate::sweep::SweepPlan,
    values: &BTreeMap<String, f64>,
    metric: &str,
    ki: usize,
    log_x: bool,
) -> String {
    let key = &plan.keys[ki].key;
    let others = |p: &PlannedPoint| -> String {
        p.values
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != ki)
            .map(|(_, (k, v))| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut series: BTreeMap<String, XValues> = BTreeMap::new();
    for p in &plan.points {
        let Some(v) = values.get(&p.key) else { continue };
        let x = &p.values[ki];
        let entry = series.entry(others(p)).or_default().entry(x.1.clone()).or_insert((p.numbers[ki], Vec::new()));
        entry.1.push(*v);
    }
    if series.len() > 6 {
        let mut all: XValues = BTreeMap::new();
        for s in series.values() {
            for (x, (n, v)) in s {
                all.entry(x.clone()).or_insert((*n, Vec::new())).1.extend(v);
            }
        }
        series = BTreeMap::from([("mean over the other keys".to_string(), all)]);
    }
    let numeric = series.values().all(|s| s.values().all(|(n, _)| n.is_some()));
    let title = format!("{metric} vs {key}");
    if numeric {
        let mut chart = LineChart::new(title).x_label(key.clone()).y_label(metric.to_string()).log_x(log_x);
        for (name, s) in &series {
            let mut pts: Vec<(f64, f64, f64, f64)> = s
                .values()
                .map(|(n, v)| {
                    let (m, lo, hi) = stats(v);
                    (n.unwrap_or(f64::NAN), m, lo, hi)
                })
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let label = if name.is_empty() { "mean over seeds".to_string() } else { name.clone() };
            chart = chart.series(
                Series::new(label, pts.iter().map(|p| (p.0, p.1)).collect())
                    .band(pts.iter().map(|p| (p.0, p.2, p.3)).collect())
                    .markers(),
            );
        }
        chart.to_svg()
    } else {
        let mut groups: Vec<String> = series.values().flat_map(|s| s.keys().cloned()).collect();
        groups.sort();
        groups.dedup();
        let mut chart = BarChart::new(title, groups.clone()).y_label(metric.to_string());
        for (name, s) in &series {
            let st: Vec<(f64, f64, f64)> = groups
                .iter()
                .map(|g| s.get(g).map(|(_, v)| stats(v)).unwrap_or((f64::NAN, f64::NAN, f64::NAN)))
                .collect();
            let label = if name.is_empty() { "mean over seeds".to_string() } else { name.clone() };
            chart = chart.series(
                BarSeries::new(label, st.iter().map(|s| s.0).collect()).errors(st.iter().map(|s| (s.1, s.2)).collect()),
            );
        }
        chart.to_svg()
    }
}
