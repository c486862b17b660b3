//! The read model: what each page shows, computed from the store alone (no HTML here).
//!
//! Everything is read through one [`Store`] handle inside one snapshot (see `lib.rs`), so a page
//! never mixes two states of a store that a running experiment is writing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use mesalab_store::{
    ArtifactKind, ArtifactRecord, MetricRow, Progress, RunId, RunOverview, RunRecord, RunStatus, Store,
};
use serde::Serialize;
use serde_json::Value;

use crate::error::HttpError;
use crate::query::Params;

/// Sort keys of the runs table, as they appear in `?sort=`.
pub const SORT_KEYS: [&str; 6] = ["id", "experiment", "status", "verdict", "started", "duration"];
/// `?verdict=` filter values.
pub const VERDICT_FILTERS: [&str; 3] = ["yes", "no", "none"];
/// Most runs one runs-table response lists.
pub const MAX_LIMIT: u64 = 10_000;
/// Runs listed when `?limit=` is not given.
pub const DEFAULT_LIMIT: u64 = 1000;

/// The runs table's filter, sort and grouping, from its query string.
#[derive(Debug, Clone, PartialEq)]
pub struct RunsQuery {
    pub experiment: Option<String>,
    pub status: Option<RunStatus>,
    pub verdict: Option<&'static str>,
    /// Case-insensitive substring of the experiment, run directory or id.
    pub text: Option<String>,
    pub sort: &'static str,
    pub descending: bool,
    /// Group runs that share a run-directory parent (a sweep, a demo) under one heading.
    pub grouped: bool,
    pub limit: usize,
}

impl RunsQuery {
    /// The query-string names [`RunsQuery::from_params`] reads.
    pub const PARAMS: [&'static str; 8] = ["experiment", "status", "verdict", "q", "sort", "order", "group", "limit"];

    pub fn from_params(p: &Params) -> Result<RunsQuery, HttpError> {
        let status = p
            .get("status")
            .map(|s| s.parse::<RunStatus>().map_err(|e| HttpError::bad_request(format!("`status`: {e}"))))
            .transpose()?;
        let sort = p.choice("sort", &SORT_KEYS)?.unwrap_or("id");
        // Newest first by default; names read best A to Z.
        let default_desc = !matches!(sort, "experiment" | "status" | "verdict");
        let descending = match p.choice("order", &["asc", "desc"])? {
            Some(order) => order == "desc",
            None => default_desc,
        };
        let grouped = p.choice("group", &["0", "1"])?.is_none_or(|g| g == "1");
        let limit = p.integer("limit", 1, MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
        Ok(RunsQuery {
            experiment: p.get("experiment").map(str::to_owned),
            status,
            verdict: p.choice("verdict", &VERDICT_FILTERS)?,
            text: p.get("q").map(str::to_lowercase),
            sort,
            descending,
            grouped,
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
        })
    }
}

/// One check of a verdict, as the tables show it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckCell {
    pub name: String,
    pub value: Option<f64>,
    pub threshold: String,
    pub pass: bool,
}

/// One row of the runs table.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub experiment: String,
    pub status: RunStatus,
    pub error: Option<String>,
    pub quick: bool,
    pub seeds: Vec<u64>,
    pub started_at_ms: i64,
    /// Until the end, or until now for a running run.
    pub duration_ms: i64,
    /// `yes`, `no` (or another answer the experiment gave); `None` without a stored verdict.
    pub answer: Option<String>,
    pub claim: Option<String>,
    pub checks: Vec<CheckCell>,
    pub progress: Option<Progress>,
    pub run_dir: String,
}

/// A run, or the runs of one sweep (a run-directory parent shared by several runs).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Entry {
    Run(RunRow),
    Group { dir: String, runs: Vec<RunRow> },
}

/// The runs table.
#[derive(Debug, Clone, Serialize)]
pub struct RunsView {
    pub entries: Vec<Entry>,
    /// Runs in the store.
    pub total: usize,
    /// Runs that passed the filter.
    pub matched: usize,
    /// Runs listed (at most the limit).
    pub listed: usize,
    pub running: usize,
    /// Every experiment in the store, for the filter.
    pub experiments: Vec<String>,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn checks_of(verdict: &Value) -> Vec<CheckCell> {
    verdict["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| CheckCell {
            name: c["name"].as_str().unwrap_or("?").to_owned(),
            value: c["value"].as_f64(),
            threshold: c["threshold"].as_str().unwrap_or("").to_owned(),
            pass: c["pass"].as_bool().unwrap_or(false),
        })
        .collect()
}

fn row_of(o: RunOverview, now: i64) -> RunRow {
    let RunOverview { run, verdict, progress } = o;
    let verdict = verdict.unwrap_or(Value::Null);
    RunRow {
        id: run.id.0,
        duration_ms: run.ended_at_ms.unwrap_or(now).saturating_sub(run.started_at_ms).max(0),
        experiment: run.experiment,
        status: run.status,
        error: run.error,
        quick: run.quick,
        seeds: run.seeds,
        started_at_ms: run.started_at_ms,
        answer: verdict["answer"].as_str().map(str::to_owned),
        claim: verdict["claim"].as_str().map(str::to_owned),
        checks: checks_of(&verdict),
        progress,
        run_dir: run.run_dir.display().to_string(),
    }
}

/// The runs table for `query`. `store_dir` is the directory holding the store file: runs written
/// straight into it (the default `runs/<experiment>-<time>`) are never grouped.
pub fn runs(store: &Store, query: &RunsQuery, store_dir: &Path) -> Result<RunsView, HttpError> {
    let now = now_ms();
    let overviews = store.run_overviews()?;
    let total = overviews.len();
    let experiments: BTreeSet<String> = overviews.iter().map(|o| o.run.experiment.clone()).collect();
    let running = overviews.iter().filter(|o| o.run.status == RunStatus::Running).count();
    let mut rows: Vec<RunRow> = overviews
        .into_iter()
        .map(|o| row_of(o, now))
        .filter(|r| query.experiment.as_ref().is_none_or(|e| *e == r.experiment))
        .filter(|r| query.status.is_none_or(|s| s == r.status))
        .filter(|r| match query.verdict {
            None => true,
            Some("none") => r.answer.is_none(),
            Some(answer) => r.answer.as_deref() == Some(answer),
        })
        .filter(|r| {
            query.text.as_ref().is_none_or(|t| {
                r.experiment.to_lowercase().contains(t)
                    || r.run_dir.to_lowercase().contains(t)
                    || r.id.to_string() == *t
            })
        })
        .collect();
    let matched = rows.len();
    sort_rows(&mut rows, query.sort, query.descending);
    rows.truncate(query.limit);
    let listed = rows.len();
    let entries = if query.grouped { group(rows, store_dir) } else { rows.into_iter().map(Entry::Run).collect() };
    Ok(RunsView { entries, total, matched, listed, running, experiments: experiments.into_iter().collect() })
}

fn sort_rows(rows: &mut [RunRow], key: &str, descending: bool) {
    let status_rank = |s: RunStatus| RunStatus::ALL.iter().position(|x| *x == s).unwrap_or(0);
    rows.sort_by(|a, b| {
        let order = match key {
            "experiment" => a.experiment.cmp(&b.experiment),
            "status" => status_rank(a.status).cmp(&status_rank(b.status)),
            // Runs without a verdict sort after every answer.
            "verdict" => (a.answer.is_none(), &a.answer).cmp(&(b.answer.is_none(), &b.answer)),
            "started" => a.started_at_ms.cmp(&b.started_at_ms),
            "duration" => a.duration_ms.cmp(&b.duration_ms),
            _ => a.id.cmp(&b.id),
        };
        // Ties: newest first, whatever the direction.
        let order = if descending { order.reverse() } else { order };
        order.then(b.id.cmp(&a.id))
    });
}

/// Groups rows whose run directories share a parent other than `store_dir`, keeping the sort:
/// a group sits where its first row would, its runs in sorted order.
fn group(rows: Vec<RunRow>, store_dir: &Path) -> Vec<Entry> {
    let parent = |r: &RunRow| Path::new(&r.run_dir).parent().map(Path::to_path_buf);
    let mut counts: BTreeMap<PathBuf, usize> = BTreeMap::new();
    for r in &rows {
        if let Some(p) = parent(r) {
            *counts.entry(p).or_default() += 1;
        }
    }
    let is_group = |p: &PathBuf| counts.get(p).is_some_and(|n| *n >= 2) && p != store_dir;
    let mut entries: Vec<Entry> = Vec::new();
    let mut slot: BTreeMap<PathBuf, usize> = BTreeMap::new();
    for r in rows {
        match parent(&r).filter(is_group) {
            Some(p) => match slot.get(&p) {
                Some(&i) => {
                    if let Entry::Group { runs, .. } = &mut entries[i] {
                        runs.push(r);
                    }
                }
                None => {
                    slot.insert(p.clone(), entries.len());
                    let dir = p.strip_prefix(store_dir).unwrap_or(&p).display().to_string();
                    entries.push(Entry::Group { dir, runs: vec![r] });
                }
            },
            None => entries.push(Entry::Run(r)),
        }
    }
    entries
}

/// One line of a chart: a seed (or the cross-seed aggregate) of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// `(step, min, max)` over seeds, for a line that is a mean over several seeds.
    pub band: Vec<(f64, f64, f64)>,
    /// Which run the line belongs to (its index in a comparison; 0 on a run page).
    pub run_index: usize,
}

/// A metric logged at two or more steps: a curve.
#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    pub metric: String,
    pub lines: Vec<Line>,
    /// Samples drawn (the end-to-end test watches this grow).
    pub samples: usize,
}

/// A metric of a run by seed: `seed (None = aggregate) → [(step, value)]`, in logged order.
type BySeed = BTreeMap<Option<u64>, Vec<(i64, f64)>>;

fn by_metric(rows: Vec<MetricRow<'static>>) -> BTreeMap<String, BySeed> {
    let mut out: BTreeMap<String, BySeed> = BTreeMap::new();
    for r in rows {
        out.entry(r.name.into_owned()).or_default().entry(r.seed).or_default().push((r.step, r.value));
    }
    out
}

fn is_curve(seeds: &BySeed) -> bool {
    seeds.values().any(|points| points.first().map(|p| p.0) != points.last().map(|p| p.0))
}

/// `(metric, mean, min, max, n)` of a summary's `aggregate`.
pub type AggregateRow = (String, Option<f64>, Option<f64>, Option<f64>, Option<f64>);

/// A run's page.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    pub run: RunRecord,
    pub progress: Progress,
    pub answer: Option<String>,
    pub claim: Option<String>,
    pub checks: Vec<CheckCell>,
    /// `aggregate` of the summary, flattened: `(metric, mean, min, max, n)`.
    pub aggregate: Vec<AggregateRow>,
    pub curves: Vec<Curve>,
    /// Metrics logged at a single step: `(metric, seed, step, value)`.
    pub finals: Vec<(String, Option<u64>, i64, f64)>,
    pub artifacts: Vec<ArtifactRow>,
    pub has_report: bool,
}

/// An artifact as a run page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ArtifactRow {
    pub name: String,
    pub kind: String,
    pub path: String,
    pub size_bytes: Option<u64>,
}

fn summary_of(store: &Store, id: RunId) -> Result<Value, HttpError> {
    Ok(store.get_json::<Value>(id, "summary").unwrap_or(None).unwrap_or(Value::Null))
}

/// `aggregate` entries `name → {mean, min, max, n}` (other shapes: a plain number as the mean).
fn aggregate_of(summary: &Value) -> Vec<AggregateRow> {
    let Some(map) = summary["aggregate"].as_object() else { return Vec::new() };
    map.iter()
        .filter_map(|(k, v)| match v {
            Value::Number(n) => Some((k.clone(), n.as_f64(), None, None, None)),
            Value::Object(_) => {
                Some((k.clone(), v["mean"].as_f64(), v["min"].as_f64(), v["max"].as_f64(), v["n"].as_f64()))
            }
            _ => None,
        })
        .collect()
}

pub fn run(store: &Store, id: RunId) -> Result<RunView, HttpError> {
    let record = store
        .run(id)?
        .ok_or_else(|| HttpError::from(mesalab_store::StoreError::UnknownRun { path: store.path().into(), id }))?;
    let progress = store.run_progress(id)?.map(|p| p.progress).unwrap_or(Progress { samples: 0, last_step: None });
    let summary = summary_of(store, id)?;
    let verdict = &summary["verdict"];
    let mut curves = Vec::new();
    let mut finals = Vec::new();
    for (metric, seeds) in by_metric(store.metrics(id)?) {
        if is_curve(&seeds) {
            let samples = seeds.values().map(Vec::len).sum();
            let lines = seeds
                .into_iter()
                .map(|(seed, points)| Line {
                    label: seed.map_or("all seeds".to_string(), |s| format!("seed {s}")),
                    points: points.into_iter().map(|(s, v)| (s as f64, v)).collect(),
                    band: Vec::new(),
                    run_index: 0,
                })
                .collect();
            curves.push(Curve { metric, lines, samples });
        } else {
            for (seed, points) in seeds {
                for (step, value) in points {
                    finals.push((metric.clone(), seed, step, value));
                }
            }
        }
    }
    let artifacts = store.artifacts(id)?;
    let has_report = artifacts.iter().any(|a| a.artifact.kind == ArtifactKind::Report);
    let artifacts = artifacts
        .into_iter()
        .map(|a| ArtifactRow {
            name: a.artifact.name,
            kind: a.artifact.kind.as_str().to_owned(),
            path: a.artifact.path.display().to_string(),
            size_bytes: a.artifact.size_bytes,
        })
        .collect();
    Ok(RunView {
        answer: verdict["answer"].as_str().map(str::to_owned),
        claim: verdict["claim"].as_str().map(str::to_owned),
        checks: checks_of(verdict),
        aggregate: aggregate_of(&summary),
        run: record,
        progress,
        curves,
        finals,
        artifacts,
        has_report,
    })
}

/// One row of a side-by-side table: a name and one cell per run; `differs` when the cells are not
/// all equal (a missing cell counts as different).
#[derive(Debug, Clone, Serialize)]
pub struct SideBySide {
    pub name: String,
    pub cells: Vec<Option<String>>,
    pub differs: bool,
}

fn side_row(name: String, cells: Vec<Option<String>>) -> SideBySide {
    let differs = cells.windows(2).any(|w| w[0] != w[1]);
    SideBySide { name, cells, differs }
}

/// The comparison of two or more runs.
#[derive(Debug, Clone, Serialize)]
pub struct CompareView {
    pub runs: Vec<RunRecord>,
    /// Curves overlaid, one line per run (mean over its seeds, band = min–max); metrics every
    /// run has come first.
    pub curves: Vec<Curve>,
    pub overview: Vec<SideBySide>,
    pub metrics: Vec<SideBySide>,
    pub config: Vec<SideBySide>,
}

pub fn compare(store: &Store, ids: &[RunId]) -> Result<CompareView, HttpError> {
    let mut runs = Vec::new();
    let mut summaries = Vec::new();
    let mut metrics = Vec::new();
    for &id in ids {
        let record = store.run(id)?.ok_or_else(|| {
            HttpError::not_found(format!("there is no run {id} in this store; the runs page lists every run"))
        })?;
        runs.push(record);
        summaries.push(summary_of(store, id)?);
        metrics.push(by_metric(store.metrics(id)?));
    }

    // Curves: every metric that is a curve in some run; those all runs share first.
    let mut names: Vec<(usize, String)> = metrics
        .iter()
        .flat_map(|m| m.iter().filter(|(_, s)| is_curve(s)).map(|(name, _)| name.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|name| (metrics.iter().filter(|m| m.contains_key(&name)).count(), name))
        .collect();
    names.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let curves = names
        .into_iter()
        .map(|(_, metric)| {
            let lines: Vec<Line> = metrics
                .iter()
                .enumerate()
                .filter_map(|(i, m)| m.get(&metric).map(|seeds| mean_line(seeds, i, &runs[i])))
                .collect();
            let samples = lines.iter().map(|l| l.points.len()).sum();
            Curve { metric, lines, samples }
        })
        .collect();

    let fmt = |x: Option<f64>| x.map(mesalab_report::fmt::number);
    let mut overview = vec![
        side_row("experiment".into(), runs.iter().map(|r| Some(r.experiment.clone())).collect()),
        side_row("status".into(), runs.iter().map(|r| Some(r.status.to_string())).collect()),
        side_row(
            "verdict".into(),
            summaries.iter().map(|s| s["verdict"]["answer"].as_str().map(str::to_owned)).collect(),
        ),
        side_row(
            "seeds".into(),
            runs.iter().map(|r| Some(r.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))).collect(),
        ),
        side_row("quick".into(), runs.iter().map(|r| Some(r.quick.to_string())).collect()),
        side_row("code revision".into(), runs.iter().map(|r| r.code_revision.clone()).collect()),
    ];
    overview
        .push(side_row("started".into(), runs.iter().map(|r| Some(mesalab_store::rfc3339(r.started_at_ms))).collect()));

    // Metrics: the verdict's checks, then the summary's aggregate means.
    let mut metric_rows = Vec::new();
    let check_names: BTreeSet<String> =
        summaries.iter().flat_map(|s| checks_of(&s["verdict"]).into_iter().map(|c| c.name)).collect();
    for name in check_names {
        let cells = summaries
            .iter()
            .map(|s| {
                checks_of(&s["verdict"]).into_iter().find(|c| c.name == name).map(|c| {
                    format!(
                        "{} {} ({})",
                        fmt(c.value).unwrap_or_else(|| "NaN".into()),
                        if c.pass { "✓" } else { "✗" },
                        c.threshold
                    )
                })
            })
            .collect();
        metric_rows.push(side_row(format!("check: {name}"), cells));
    }
    let aggregates: Vec<BTreeMap<String, Option<f64>>> =
        summaries.iter().map(|s| aggregate_of(s).into_iter().map(|(k, mean, ..)| (k, mean)).collect()).collect();
    let agg_names: BTreeSet<&String> = aggregates.iter().flat_map(|a| a.keys()).collect();
    for name in agg_names {
        let cells = aggregates.iter().map(|a| a.get(name).map(|m| fmt(*m).unwrap_or_else(|| "NaN".into()))).collect();
        metric_rows.push(side_row(name.clone(), cells));
    }

    // Configs: every leaf key of the resolved TOML, dotted.
    let configs: Vec<BTreeMap<String, String>> = runs.iter().map(|r| flatten_toml(&r.config_toml)).collect();
    let keys: BTreeSet<&String> = configs.iter().flat_map(|c| c.keys()).collect();
    let config =
        keys.into_iter().map(|k| side_row(k.clone(), configs.iter().map(|c| c.get(k).cloned()).collect())).collect();
    Ok(CompareView { runs, curves, overview, metrics: metric_rows, config })
}

/// A run's line for one metric: its aggregate series if it logged only that, else the mean over
/// seeds at each step with the min–max band.
fn mean_line(seeds: &BySeed, run_index: usize, run: &RunRecord) -> Line {
    let label = format!("run {} ({})", run.id, run.experiment);
    let per_seed: Vec<&Vec<(i64, f64)>> = seeds.iter().filter(|(s, _)| s.is_some()).map(|(_, p)| p).collect();
    let chosen: Vec<&Vec<(i64, f64)>> = if per_seed.is_empty() { seeds.values().collect() } else { per_seed };
    let mut at: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for points in &chosen {
        for (step, v) in points.iter() {
            at.entry(*step).or_default().push(*v);
        }
    }
    let mut points = Vec::new();
    let mut band = Vec::new();
    for (step, values) in at {
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        points.push((step as f64, mean));
        if chosen.len() > 1 {
            let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            band.push((step as f64, lo, hi));
        }
    }
    Line { label, points, band, run_index }
}

/// `a.b.c = value` for every leaf of a TOML document (arrays as written); unparsable text as one
/// `(config)` entry, so a comparison still shows it.
pub fn flatten_toml(text: &str) -> BTreeMap<String, String> {
    fn walk(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
        match value {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&key, v, out);
                }
            }
            toml::Value::String(s) => {
                out.insert(prefix.to_owned(), s.clone());
            }
            other => {
                out.insert(prefix.to_owned(), other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    match text.parse::<toml::Table>() {
        Ok(table) => walk("", &toml::Value::Table(table), &mut out),
        Err(_) => {
            out.insert("(config)".into(), text.to_owned());
        }
    }
    out
}

/// The file of artifact `name` of a run, resolved inside the run directory: `None` unless the
/// store records it and the file, symlinks resolved, lies inside the run directory. No part of
/// the request becomes part of the path except through the store's own record.
pub fn artifact_file(store: &Store, id: RunId, name: &str) -> Result<Option<(ArtifactRecord, PathBuf)>, HttpError> {
    let Some(record) = store.run(id)? else { return Ok(None) };
    let Some(artifact) = store.artifacts(id)?.into_iter().find(|a| a.artifact.name == name) else { return Ok(None) };
    let Ok(dir) = std::fs::canonicalize(&record.run_dir) else { return Ok(None) };
    let Ok(file) = std::fs::canonicalize(dir.join(&artifact.artifact.path)) else { return Ok(None) };
    if !file.starts_with(&dir) || !file.is_file() {
        return Ok(None);
    }
    Ok(Some((artifact, file)))
}

/// The report artifact of a run (the first of kind `report`), resolved like [`artifact_file`].
pub fn report_file(store: &Store, id: RunId) -> Result<Option<PathBuf>, HttpError> {
    let Some(name) =
        store.artifacts(id)?.into_iter().find(|a| a.artifact.kind == ArtifactKind::Report).map(|a| a.artifact.name)
    else {
        return Ok(None);
    };
    Ok(artifact_file(store, id, &name)?.map(|(_, file)| file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattened_configs_have_dotted_leaf_keys() {
        let flat = flatten_toml("experiment = \"icl-gd\"\n[train]\nsteps = 20\n[eval]\nood = [1, 2]\n");
        assert_eq!(flat["experiment"], "icl-gd");
        assert_eq!(flat["train.steps"], "20");
        assert_eq!(flat["eval.ood"], "[1, 2]");
        assert!(flatten_toml("= broken").contains_key("(config)"));
    }

    #[test]
    fn side_by_side_marks_differences_and_missing_cells() {
        assert!(!side_row("a".into(), vec![Some("1".into()), Some("1".into())]).differs);
        assert!(side_row("a".into(), vec![Some("1".into()), Some("2".into())]).differs);
        assert!(side_row("a".into(), vec![Some("1".into()), None]).differs);
    }
}
