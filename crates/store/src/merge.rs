//! Whole-run dumps ([`RunDump`]) and merging stores ([`Store::merge`]).
//!
//! A run's identity across stores is its `uid`; its [`RunId`] is local to one store. Merging copies
//! every ended run of the sources that the target lacks (it gets a new id there) and checks that a
//! uid the target already has carries exactly the same contents.
//!
//! Invariants: a merge is one transaction on the target — on any conflict nothing is written;
//! merging the same sources again writes nothing (idempotent); runs still `running` in a source are
//! never copied (they may still change) and are listed in [`MergeSummary::skipped_running`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    Artifact, ArtifactKind, ArtifactRecord, AttemptRecord, Fail, RUN_COLUMNS, RawRun, ResultTable, RunId, RunRecord,
    Store, StoreError, seed_from_sql, seed_to_sql,
};

/// One metric sample as stored (`seed: None` for a cross-seed aggregate; NaN for a stored NULL).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MetricSample {
    pub seed: Option<u64>,
    pub step: i64,
    pub name: String,
    pub value: f64,
}

/// Everything the store holds about one run, read in one snapshot.
#[derive(Debug, Clone)]
pub struct RunDump {
    pub run: RunRecord,
    /// In the order they were logged.
    pub metrics: Vec<MetricSample>,
    /// Sorted by name, as stored (JSON text), so that copies are exact: parsing and re-printing
    /// JSON numbers is not guaranteed to give back the same bits.
    pub tables: Vec<RawTable>,
    /// `(name, JSON text)`, sorted by name.
    pub json: Vec<(String, String)>,
    /// Sorted by name.
    pub artifacts: Vec<ArtifactRecord>,
    /// Every attempt, first first (pids are store-local and not compared).
    pub attempts: Vec<AttemptRecord>,
}

impl RunDump {
    /// The first part in which two dumps of one run differ, ignoring the store-local id and pid
    /// (`None`: the same run, the same contents).
    pub fn difference(&self, other: &RunDump) -> Option<&'static str> {
        let (a, b) = (&self.run, &other.run);
        if a.uid != b.uid {
            return Some("uid");
        }
        if a.status != b.status || a.error != b.error || a.ended_at_ms != b.ended_at_ms {
            return Some("status");
        }
        if (&a.experiment, &a.config_toml, &a.seeds, &a.quick) != (&b.experiment, &b.config_toml, &b.seeds, &b.quick) {
            return Some("config");
        }
        if (&a.code_revision, &a.run_dir, a.started_at_ms) != (&b.code_revision, &b.run_dir, b.started_at_ms) {
            return Some("run metadata");
        }
        let same_metric = |x: &MetricSample, y: &MetricSample| {
            (x.seed, x.step, &x.name) == (y.seed, y.step, &y.name)
                && (x.value.to_bits() == y.value.to_bits() || (x.value.is_nan() && y.value.is_nan()))
        };
        if self.metrics.len() != other.metrics.len()
            || !self.metrics.iter().zip(&other.metrics).all(|(x, y)| same_metric(x, y))
        {
            return Some("metrics");
        }
        if self.tables != other.tables {
            return Some("result tables");
        }
        if self.json != other.json {
            return Some("JSON results");
        }
        if self.artifacts != other.artifacts {
            return Some("artifacts");
        }
        let without_pid =
            |v: &[AttemptRecord]| v.iter().map(|a| AttemptRecord { pid: None, ..a.clone() }).collect::<Vec<_>>();
        if without_pid(&self.attempts) != without_pid(&other.attempts) {
            return Some("attempts");
        }
        None
    }
}

/// A result table as the store holds it: name, columns and rows as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTable {
    pub name: String,
    pub columns: String,
    pub rows: String,
}

impl RawTable {
    /// The table parsed.
    pub fn parse(&self) -> Result<ResultTable, serde_json::Error> {
        Ok(ResultTable {
            name: self.name.clone(),
            columns: serde_json::from_str(&self.columns)?,
            rows: serde_json::from_str(&self.rows)?,
        })
    }
}

/// What [`Store::merge`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MergeSummary {
    /// Runs copied into the target: (source store, id there, new id in the target).
    pub imported: Vec<(PathBuf, RunId, RunId)>,
    /// Runs the target already held with identical contents.
    pub already_present: usize,
    /// Runs still `running` in a source, not copied: (source store, id there).
    pub skipped_running: Vec<(PathBuf, RunId)>,
}

impl Store {
    /// Everything about run `id`, read in one snapshot.
    pub fn dump(&self, id: RunId) -> Result<RunDump, StoreError> {
        let conn = self.lock();
        let result = (|| {
            let tx = conn.unchecked_transaction()?;
            let dump = dump_on(&tx, &self.path, id)?;
            tx.commit()?;
            Ok(dump)
        })();
        result.map_err(|fail| self.fail("reading a whole run", fail))
    }

    /// Folds the ended runs of `sources` into this store, in one transaction: runs it lacks (by
    /// uid) are copied with new ids; runs it has must match exactly. A uid whose contents differ
    /// (between a source and the target, or between two sources) is
    /// [`StoreError::MergeConflict`], and then nothing is written.
    pub fn merge(&self, sources: &[&Store]) -> Result<MergeSummary, StoreError> {
        let mut summary = MergeSummary::default();
        // uid → (source path, dump), checked for agreement between sources first.
        let mut incoming: BTreeMap<String, (PathBuf, RunDump)> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for source in sources {
            let mut runs = source.runs()?;
            runs.sort_by_key(|r| r.id);
            for run in runs {
                if !run.status.is_ended() {
                    summary.skipped_running.push((source.path.clone(), run.id));
                    continue;
                }
                let dump = source.dump(run.id)?;
                match incoming.get(&run.uid) {
                    Some((first_path, first)) => {
                        if let Some(what) = first.difference(&dump) {
                            return Err(StoreError::MergeConflict {
                                uid: run.uid.clone(),
                                from: source.path.clone(),
                                source_id: run.id,
                                other: first_path.clone(),
                                other_id: first.run.id,
                                differs_in: what,
                            });
                        }
                    }
                    None => {
                        order.push(run.uid.clone());
                        incoming.insert(run.uid.clone(), (source.path.clone(), dump));
                    }
                }
            }
        }
        let target = self.path.clone();
        let written = self.write("merging stores", |tx| {
            let mut imported = Vec::new();
            let mut already = 0;
            for uid in &order {
                let (source, dump) = &incoming[uid];
                let existing: Option<i64> =
                    tx.query_row("SELECT id FROM runs WHERE uid = ?1", [uid], |r| r.get(0)).optional()?;
                match existing {
                    Some(id) => {
                        let held = dump_on(tx, &target, RunId(id))?;
                        if let Some(what) = dump.difference(&held) {
                            return Err(StoreError::MergeConflict {
                                uid: uid.clone(),
                                from: source.clone(),
                                source_id: dump.run.id,
                                other: target.clone(),
                                other_id: RunId(id),
                                differs_in: what,
                            }
                            .into());
                        }
                        already += 1;
                    }
                    None => imported.push((source.clone(), dump.run.id, insert_dump(tx, dump)?)),
                }
            }
            Ok((imported, already))
        })?;
        summary.imported = written.0;
        summary.already_present = written.1;
        Ok(summary)
    }
}

fn dump_on(conn: &Connection, store: &std::path::Path, id: RunId) -> Result<RunDump, Fail> {
    let raw = conn
        .query_row(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"), [id.0], RawRun::from_row)
        .optional()?;
    let Some(raw) = raw else {
        return Err(StoreError::UnknownRun { path: store.to_path_buf(), id }.into());
    };
    let run = raw.into_record(store)?;
    let malformed = |detail: String| StoreError::Malformed { path: store.to_path_buf(), detail };

    let mut query =
        conn.prepare_cached("SELECT seed, step, name, value FROM metrics WHERE run_id = ?1 ORDER BY rowid")?;
    let metrics = query
        .query_map([id.0], |r| {
            Ok(MetricSample {
                seed: r.get::<_, Option<i64>>(0)?.map(seed_from_sql),
                step: r.get(1)?,
                name: r.get(2)?,
                value: r.get::<_, Option<f64>>(3)?.unwrap_or(f64::NAN),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;

    let mut query =
        conn.prepare_cached("SELECT name, columns, rows FROM result_tables WHERE run_id = ?1 ORDER BY name")?;
    let raw_tables = query
        .query_map([id.0], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let tables = raw_tables.into_iter().map(|(name, columns, rows)| RawTable { name, columns, rows }).collect();

    let mut query = conn.prepare_cached("SELECT name, value FROM result_json WHERE run_id = ?1 ORDER BY name")?;
    let json = query.query_map([id.0], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;

    let mut query = conn.prepare_cached(
        "SELECT name, kind, path, size_bytes, sha256, created_at FROM artifacts WHERE run_id = ?1 ORDER BY name",
    )?;
    let raw_artifacts = query
        .query_map([id.0], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut artifacts = Vec::with_capacity(raw_artifacts.len());
    for (name, kind, path, size, sha256, created_at_ms) in raw_artifacts {
        let size_bytes = size
            .map(u64::try_from)
            .transpose()
            .map_err(|err| malformed(format!("artifact `{name}` of run {id}: size: {err}")))?;
        artifacts.push(ArtifactRecord {
            artifact: Artifact {
                name,
                kind: ArtifactKind::parse(&kind),
                path: PathBuf::from(path),
                size_bytes,
                sha256,
            },
            created_at_ms,
        });
    }
    let attempts = crate::read_attempts(conn, store, id)?;
    Ok(RunDump { run, metrics, tables, json, artifacts, attempts })
}

/// Inserts a dumped run (new id, same uid and contents); returns the new id.
fn insert_dump(tx: &rusqlite::Transaction<'_>, dump: &RunDump) -> Result<RunId, Fail> {
    let r = &dump.run;
    let seeds = serde_json::to_string(&r.seeds)
        .map_err(|source| StoreError::Json { what: "serialising the seeds".into(), source })?;
    let run_dir = r.run_dir.to_str().ok_or_else(|| StoreError::InvalidInput {
        what: "run directory",
        reason: format!("{} is not valid UTF-8", r.run_dir.display()),
    })?;
    tx.execute(
        "INSERT INTO runs (experiment, config_toml, seeds, code_revision, run_dir, quick, status, error, pid, \
         started_at, ended_at, uid) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            r.experiment,
            r.config_toml,
            seeds,
            r.code_revision,
            run_dir,
            r.quick,
            r.status.as_str(),
            r.error,
            r.pid,
            r.started_at_ms,
            r.ended_at_ms,
            r.uid
        ],
    )?;
    let id = tx.last_insert_rowid();
    let mut insert =
        tx.prepare_cached("INSERT INTO metrics (run_id, seed, step, name, value) VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for m in &dump.metrics {
        let value = (!m.value.is_nan()).then_some(m.value);
        insert.execute(params![id, m.seed.map(seed_to_sql), m.step, m.name, value])?;
    }
    for t in &dump.tables {
        tx.execute(
            "INSERT INTO result_tables (run_id, name, columns, rows) VALUES (?1, ?2, ?3, ?4)",
            params![id, t.name, t.columns, t.rows],
        )?;
    }
    for (name, value) in &dump.json {
        tx.execute("INSERT INTO result_json (run_id, name, value) VALUES (?1, ?2, ?3)", params![id, name, value])?;
    }
    for a in &dump.artifacts {
        let size = a.artifact.size_bytes.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
        tx.execute(
            "INSERT INTO artifacts (run_id, name, kind, path, size_bytes, sha256, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                a.artifact.name,
                a.artifact.kind.as_str(),
                a.artifact.path.to_string_lossy(),
                size,
                a.artifact.sha256,
                a.created_at_ms
            ],
        )?;
    }
    for a in &dump.attempts {
        tx.execute(
            "INSERT INTO attempts (run_id, attempt, pid, code_revision, status, error, started_at, ended_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![id, a.attempt, a.pid, a.code_revision, a.status.as_str(), a.error, a.started_at_ms, a.ended_at_ms],
        )?;
    }
    Ok(RunId(id))
}
