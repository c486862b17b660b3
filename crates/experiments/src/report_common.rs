//! Report pieces every experiment shares: the run header and metric curves across seeds.

use mesalab_report::html::Section;
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
