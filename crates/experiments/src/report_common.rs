//! Report pieces every experiment shares: the run header and metric curves across seeds.

use mesalab_report::html::{Cell, Page, Section};
use mesalab_report::svg::Series;
use mesalab_store::{RunId, RunRecord, Store, rfc3339};
use std::collections::BTreeMap;

/// Run metadata as a key–value list.
pub fn run_header(section: &mut Section, record: &RunRecord) {
    let seeds: Vec<String> = record.seeds.iter().map(u64::to_string).collect();
    let wall = record.ended_at_ms.map(|end| format!("{:.1} s", (end - record.started_at_ms) as f64 / 1000.0));
    section.key_values([
        ("experiment", record.experiment.clone()),
        ("run", format!("{} ({})", record.id.0, record.status.as_str())),
        ("seeds", seeds.join(", ")),
        ("mode", if record.quick { "quick".into() } else { "full".into() }),
        ("code revision", record.code_revision.clone().unwrap_or_else(|| "unknown".into())),
        ("started", rfc3339(record.started_at_ms)),
        ("wall time", wall.unwrap_or_else(|| "still running".into())),
        ("run directory", record.run_dir.display().to_string()),
    ]);
}

/// The metric `name` across seeds as one series: the mean at each step, with a min–max band.
pub fn metric_curves(store: &Store, run: RunId, name: &str, label: &str) -> anyhow::Result<Vec<Series>> {
    let mut by_step: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for seed in store.metric_seeds(run)? {
        for (step, value) in store.metric_series(run, Some(seed), name)? {
            by_step.entry(step).or_default().push(value);
        }
    }
    if by_step.is_empty() {
        return Ok(Vec::new());
    }
    let mean: Vec<(f64, f64)> =
        by_step.iter().map(|(s, v)| (*s as f64, v.iter().sum::<f64>() / v.len() as f64)).collect();
    let band: Vec<(f64, f64, f64)> = by_step
        .iter()
        .map(|(s, v)| {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (*s as f64, lo, hi)
        })
        .collect();
    Ok(vec![Series::new(label, mean).band(band)])
}

/// The run's attempts (first run, then each `mesalab resume`) and its analyses (`mesalab
/// analyze`), with links to the analysis pages.
pub fn attempts_and_analyses(section: &mut Section, store: &Store, run: RunId) -> anyhow::Result<()> {
    let attempts = store.attempts(run)?;
    if attempts.len() > 1 {
        let rows = attempts
            .iter()
            .map(|a| {
                vec![
                    Cell::int(i64::from(a.attempt)),
                    Cell::text(a.status.as_str()),
                    Cell::text(rfc3339(a.started_at_ms)),
                    Cell::text(a.error.clone().unwrap_or_default()),
                ]
            })
            .collect();
        section.table_captioned(
            "Attempts: the run was resumed from its saved training states after each interruption.",
            vec!["attempt", "ended as", "started", "error"],
            rows,
        );
    }
    let analyses = store.analyses(run)?;
    if !analyses.is_empty() {
        let mut html = String::from("<p>Analyses of this run's checkpoints (<code>mesalab analyze</code>):</p><ul>");
        for a in &analyses {
            let settings = if a.settings.is_empty() { "the run's own settings".into() } else { a.settings.join(" ") };
            html.push_str(&format!(
                "<li><a href=\"analysis-{id}.html\">analysis {id}</a> ({}) with {}</li>",
                rfc3339(a.created_at_ms),
                mesalab_report::escape::text(&settings),
                id = a.id
            ));
        }
        html.push_str("</ul>");
        section.raw_html(html);
    }
    Ok(())
}

/// The page of one analysis: its settings and every table it computed (`result["tables"]`:
/// `{name: {columns, rows}}`), then its whole JSON.
pub fn analysis_page(record: &RunRecord, id: i64, settings: &[String], result: &serde_json::Value) -> String {
    let mut page = Page::new(format!("Analysis {id} of run {} ({})", record.id.0, record.experiment));
    page.subtitle("Look-inside results recomputed from the run's checkpoints; the run itself is unchanged.");
    let s = page.section("Settings");
    s.key_values([
        ("run directory", record.run_dir.display().to_string()),
        ("settings", if settings.is_empty() { "the run's own".to_string() } else { settings.join(" ") }),
    ]);
    s.raw_html("<p><a href=\"report.html\">back to the run's report</a></p>");
    if let Some(tables) = result.get("tables").and_then(|t| t.as_object()) {
        for (name, table) in tables {
            let columns: Vec<String> = table["columns"]
                .as_array()
                .map(|c| c.iter().map(|v| v.as_str().unwrap_or("").to_string()).collect())
                .unwrap_or_default();
            let rows: Vec<Vec<Cell>> = table["rows"]
                .as_array()
                .map(|rows| {
                    rows.iter()
                        .map(|r| {
                            r.as_array()
                                .map(|cells| {
                                    cells
                                        .iter()
                                        .map(|v| match v {
                                            serde_json::Value::Number(n) => Cell::num(n.as_f64().unwrap_or(f64::NAN)),
                                            serde_json::Value::String(t) => Cell::text(t.clone()),
                                            serde_json::Value::Null => Cell::text("—"),
                                            other => Cell::text(other.to_string()),
                                        })
                                        .collect()
                                })
                                .unwrap_or_default()
                        })
                        .collect()
                })
                .unwrap_or_default();
            page.section(name.clone()).table(columns, rows);
        }
    }
    page.section("Result").details_json("the analysis as stored", result);
    page.render()
}

/// The start every run report shares: the page titled `title`, the verdict section with the run
/// header, and the summary's `results` parsed as `R` (`None`, with a paragraph saying so, when
/// the run has none: it failed or was interrupted before the end).
pub fn report_page<R: serde::de::DeserializeOwned>(
    store: &Store,
    run: RunId,
    title: &str,
) -> anyhow::Result<(Page, RunRecord, Option<R>)> {
    use anyhow::Context as _;
    let record = store.run(run)?.context("no such run in the store")?;
    let summary: serde_json::Value = store.get_json(run, "summary")?.unwrap_or(serde_json::Value::Null);
    let mut page = Page::new(title);
    page.subtitle(format!("run {} · {}", run.0, record.run_dir.display()));
    let s = page.section("Verdict");
    crate::verdict::section(s, crate::verdict::Verdict::from_summary(&summary).as_ref(), record.status.as_str());
    run_header(s, &record);
    let results = serde_json::from_value::<R>(summary["results"].clone()).ok();
    if results.is_none() {
        page.section("Results").paragraph("The run has no results (it failed or was interrupted before the end).");
    }
    Ok((page, record, results))
}
