//! SQLite store: runs, metrics, result tables, artifacts. The only crate that runs SQL.
//!
//! A **run** is one `mesalab run` invocation of one experiment: one run directory, one report, one or
//! more seeds. The store is one SQLite file (WAL mode), by default [`DEFAULT_PATH`]; see
//! [`resolve_path`]. Times are unix milliseconds UTC ([`rfc3339`] formats them). The schema is in
//! `schema.rs`; its version is `PRAGMA user_version`, and migrations only go forward.
//!
//! # Invariants
//! - Only a `running` run accepts writes. Once a run has ended (finished, failed, interrupted,
//!   crashed) its rows are never modified: writing to it, or ending it again, is
//!   [`StoreError::RunEnded`].
//! - Every write is one transaction, taken with `BEGIN IMMEDIATE`: a batch is stored whole or not at
//!   all, and the "is the run still running" check is atomic with the write.
//! - Several handles (threads or processes) may write to one file at once; a writer waits up to
//!   [`BUSY_TIMEOUT`] for the lock instead of failing with "database is locked".
//! - Opening never modifies a file that is not a mesalab store (not SQLite, corrupt, another
//!   program's database) or whose schema is newer than [`SCHEMA_VERSION`].

mod error;
mod merge;
mod schema;
mod types;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::StoreError;
pub use merge::{MergeSummary, MetricSample, RawTable, RunDump};
pub use schema::SCHEMA_VERSION;
pub use types::{
    AnalysisRecord, Artifact, ArtifactKind, ArtifactRecord, AttemptRecord, MetricRow, NewRun, Progress, ResultTable,
    RunId, RunOutcome, RunOverview, RunProgress, RunRecord, RunStatus,
};

/// Store path used when neither the CLI flag nor [`ENV_VAR`] names one (relative to the working
/// directory).
pub const DEFAULT_PATH: &str = "runs/mesalab.sqlite";

/// Environment variable that overrides [`DEFAULT_PATH`].
pub const ENV_VAR: &str = "MESALAB_STORE";

/// How long a write waits for another handle's lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The store path to use: `flag` if given, else [`ENV_VAR`] if set and non-empty, else
/// [`DEFAULT_PATH`].
pub fn resolve_path(flag: Option<&Path>) -> PathBuf {
    resolve_path_from(flag, std::env::var_os(ENV_VAR))
}

fn resolve_path_from(flag: Option<&Path>, env: Option<OsString>) -> PathBuf {
    match (flag, env) {
        (Some(flag), _) => flag.to_path_buf(),
        (None, Some(env)) if !env.is_empty() => PathBuf::from(env),
        _ => PathBuf::from(DEFAULT_PATH),
    }
}

/// A handle on one store file. `Send + Sync`; calls from several threads on one handle are
/// serialised, while separate handles (or processes) on one file write concurrently.
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
    /// Opened with [`Store::open_read_only`]: SQLite refuses every write on this handle.
    read_only: bool,
}

/// A failure inside a store operation, before it is given the store's path and the operation name.
enum Fail {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Fail {
    fn from(err: rusqlite::Error) -> Self {
        Fail::Sql(err)
    }
}

impl From<StoreError> for Fail {
    fn from(err: StoreError) -> Self {
        Fail::Store(err)
    }
}

const RUN_COLUMNS: &str = "id, experiment, config_toml, seeds, code_revision, run_dir, quick, \
                           status, error, pid, started_at, ended_at, uid";

/// A `runs` row as SQLite hands it over, before its JSON and enum columns are parsed.
struct RawRun {
    id: i64,
    experiment: String,
    config_toml: String,
    seeds: String,
    code_revision: Option<String>,
    run_dir: String,
    quick: bool,
    status: String,
    error: Option<String>,
    pid: Option<i64>,
    started_at: i64,
    ended_at: Option<i64>,
    uid: String,
}

impl RawRun {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRun> {
        Ok(RawRun {
            id: row.get(0)?,
            experiment: row.get(1)?,
            config_toml: row.get(2)?,
            seeds: row.get(3)?,
            code_revision: row.get(4)?,
            run_dir: row.get(5)?,
            quick: row.get(6)?,
            status: row.get(7)?,
            error: row.get(8)?,
            pid: row.get(9)?,
            started_at: row.get(10)?,
            ended_at: row.get(11)?,
            uid: row.get(12)?,
        })
    }

    fn into_record(self, store: &Path) -> Result<RunRecord, StoreError> {
        let malformed = |detail: String| StoreError::Malformed { path: store.to_path_buf(), detail };
        let id = self.id;
        let status = self.status.parse().map_err(|err| malformed(format!("run {id}: {err}")))?;
        let seeds = serde_json::from_str(&self.seeds)
            .map_err(|err| malformed(format!("run {id}: seeds `{}`: {err}", self.seeds)))?;
        let pid = self.pid.map(u32::try_from).transpose().map_err(|err| malformed(format!("run {id}: pid: {err}")))?;
        Ok(RunRecord {
            id: RunId(id),
            experiment: self.experiment,
            config_toml: self.config_toml,
            seeds,
            code_revision: self.code_revision,
            run_dir: PathBuf::from(self.run_dir),
            quick: self.quick,
            status,
            error: self.error,
            pid,
            started_at_ms: self.started_at,
            ended_at_ms: self.ended_at,
            uid: self.uid,
        })
    }
}

impl Store {
    /// Opens the store at `path`, creating it (and its parent directories) if needed, and brings its
    /// schema up to [`SCHEMA_VERSION`].
    ///
    /// Errors name the path and say what to do: [`StoreError::CreateDir`] / [`StoreError::Open`] /
    /// [`StoreError::ReadOnly`] for a location that cannot be written, [`StoreError::NotADatabase`]
    /// and [`StoreError::ForeignDatabase`] for a file that is not a mesalab store (left untouched),
    /// [`StoreError::NewerSchema`] for a store written by a newer mesalab (left untouched).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if path.as_os_str().is_empty() {
            return Err(StoreError::InvalidInput {
                what: "store path",
                reason: format!("it is empty; leave it unset to use {DEFAULT_PATH}"),
            });
        }
        if path.is_dir() {
            return Err(StoreError::InvalidInput {
                what: "store path",
                reason: format!(
                    "{} is a directory; name a file inside it, e.g. {}",
                    path.display(),
                    path.join("mesalab.sqlite").display()
                ),
            });
        }
        create_parent(path)?;
        // A handle opening the file while another one creates, migrates, switches it to WAL or
        // checkpoints it on close can get SQLITE_BUSY where SQLite does not call the busy handler;
        // the whole open is retried until BUSY_TIMEOUT.
        let deadline = Instant::now() + BUSY_TIMEOUT;
        let mut pause = Duration::from_millis(2);
        loop {
            match Store::try_open(path) {
                Err(StoreError::Open { source, .. }) if is_busy(&source) && Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                result => return result,
            }
        }
    }

    fn try_open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open { path: path.to_path_buf(), source };
        // No SQLITE_OPEN_URI: the path is always a plain file name.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;

        // Everything up to the journal-mode switch only reads (one snapshot), so a file that is
        // refused stays untouched.
        let probe = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let objects: i64 = tx.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
            let app_id: i32 = tx.pragma_query_value(None, "application_id", |r| r.get(0))?;
            let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            tx.commit()?;
            Ok((objects, app_id, version))
        })();
        let (objects, app_id, version) = match probe {
            Ok(probe) => probe,
            Err(err) if is_not_a_database(&err) => {
                return Err(StoreError::NotADatabase {
                    path: path.to_path_buf(),
                    detail: format!("SQLite says \"{err}\""),
                });
            }
            Err(err) => return Err(open_err(err)),
        };
        if app_id != schema::APPLICATION_ID && app_id != 0 {
            return Err(StoreError::ForeignDatabase {
                path: path.to_path_buf(),
                detail: format!("its application_id is {app_id:#x}"),
            });
        }
        if app_id == 0 && (objects > 0 || version != 0) {
            return Err(StoreError::ForeignDatabase {
                path: path.to_path_buf(),
                detail: format!("it has {objects} tables or indexes but no mesalab mark"),
            });
        }
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if conn.is_readonly(rusqlite::DatabaseName::Main).map_err(open_err)? {
            return Err(StoreError::ReadOnly { path: path.to_path_buf() });
        }

        let _mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).map_err(open_err)?;
        // With WAL, NORMAL never corrupts the file; a power cut may lose the last commits.
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", true).map_err(open_err)?;
        migrate(&mut conn, path)?;
        Ok(Store { conn: Mutex::new(conn), path: path.to_path_buf(), read_only: false })
    }

    /// Opens an existing store for reading only (`mesalab serve`): nothing is created, migrated or
    /// switched to WAL, and SQLite refuses every write through this handle. A store another process
    /// is writing is read consistently: each call sees only committed transactions, and
    /// [`Store::snapshot`] keeps one view across several calls.
    ///
    /// Errors: [`StoreError::InvalidInput`] when there is no file at `path`, and the same refusals
    /// as [`Store::open`] for a file that is not a mesalab store or is newer than this build. An
    /// older schema than [`SCHEMA_VERSION`] is refused too (it cannot be migrated read-only).
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        if !path.is_file() {
            return Err(StoreError::InvalidInput {
                what: "store path",
                reason: format!(
                    "there is no store file at {}; run an experiment first (it creates the store), or point \
                     at an existing store with --store or {ENV_VAR}",
                    path.display()
                ),
            });
        }
        let open_err = |source| StoreError::Open { path: path.to_path_buf(), source };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        let probe = (|| {
            let app_id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
            let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
            Ok((app_id, version))
        })();
        let (app_id, version) = match probe {
            Ok(probe) => probe,
            Err(err) if is_not_a_database(&err) => {
                return Err(StoreError::NotADatabase {
                    path: path.to_path_buf(),
                    detail: format!("SQLite says \"{err}\""),
                });
            }
            Err(err) => return Err(open_err(err)),
        };
        if app_id != schema::APPLICATION_ID {
            return Err(StoreError::ForeignDatabase {
                path: path.to_path_buf(),
                detail: format!("its application_id is {app_id:#x}, not a mesalab store's"),
            });
        }
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version < SCHEMA_VERSION {
            return Err(StoreError::InvalidInput {
                what: "store",
                reason: format!(
                    "{} has schema version {version}, older than this build's {SCHEMA_VERSION}; open it once \
                     with a writing command (e.g. `mesalab run`) to migrate it, then read it",
                    path.display()
                ),
            });
        }
        Ok(Store { conn: Mutex::new(conn), path: path.to_path_buf(), read_only: true })
    }

    /// Whether this handle was opened with [`Store::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Runs `f` with every read it makes through this handle seeing one snapshot of the store
    /// (one read transaction), however many commits other processes make meanwhile. Only for
    /// read-only handles, so no write can ever join the transaction; on a writable handle it is
    /// [`StoreError::InvalidInput`]. Calls made by other threads on the same handle during `f` see
    /// the same snapshot.
    pub fn snapshot<T>(&self, f: impl FnOnce(&Store) -> T) -> Result<T, StoreError> {
        if !self.read_only {
            return Err(StoreError::InvalidInput {
                what: "snapshot",
                reason: "snapshots are only taken on read-only handles (Store::open_read_only)".into(),
            });
        }
        let sql_err = |op, source| StoreError::Sqlite { path: self.path.clone(), op, source };
        {
            let conn = self.lock();
            // A deferred transaction takes its snapshot at the first read; read one row now so the
            // snapshot starts here.
            conn.execute_batch("BEGIN DEFERRED").map_err(|e| sql_err("beginning a snapshot", e))?;
            if let Err(e) = conn.query_row("SELECT count(*) FROM runs", [], |r| r.get::<_, i64>(0)) {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(sql_err("beginning a snapshot", e));
            }
        }
        // Ends the transaction however `f` leaves (a panic included).
        struct End<'a>(&'a Store);
        impl Drop for End<'_> {
            fn drop(&mut self) {
                let conn = self.0.lock();
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("COMMIT");
                }
            }
        }
        let _end = End(self);
        Ok(f(self))
    }

    /// A fresh store that lives in memory only (for tests and dry runs).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let path = PathBuf::from(":memory:");
        let open_err = |source| StoreError::Open { path: path.clone(), source };
        let mut conn = Connection::open_in_memory().map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", true).map_err(open_err)?;
        migrate(&mut conn, &path)?;
        Ok(Store { conn: Mutex::new(conn), path, read_only: false })
    }

    /// The path this store was opened at (`:memory:` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a new run with status `running`, the calling process's pid and the current time.
    pub fn begin_run(&self, new: &NewRun) -> Result<RunId, StoreError> {
        if new.experiment.is_empty() {
            return Err(StoreError::InvalidInput { what: "experiment name", reason: "it is empty".into() });
        }
        let run_dir = dir_key(&new.run_dir)?;
        let seeds = serde_json::to_string(&new.seeds)
            .map_err(|source| StoreError::Json { what: "serialising the seeds".into(), source })?;
        self.write("beginning a run", |tx| {
            tx.execute(
                "INSERT INTO runs (experiment, config_toml, seeds, code_revision, run_dir, quick, \
                 status, pid, started_at, uid) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', ?7, ?8, lower(hex(randomblob(16))))",
                params![
                    new.experiment,
                    new.config_toml,
                    seeds,
                    new.code_revision,
                    run_dir,
                    new.quick,
                    std::process::id(),
                    now_ms(),
                ],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO attempts (run_id, attempt, pid, code_revision, status, started_at) \
                 SELECT id, 1, pid, code_revision, status, started_at FROM runs WHERE id = ?1",
                [id],
            )?;
            Ok(RunId(id))
        })
    }

    /// Ends a `running` run. Ending a run that has already ended is [`StoreError::RunEnded`]; the
    /// stored outcome is kept.
    pub fn finish_run(&self, id: RunId, outcome: RunOutcome) -> Result<(), StoreError> {
        let status = outcome.status();
        let error = match outcome {
            RunOutcome::Failed(message) => Some(message),
            RunOutcome::Finished | RunOutcome::Interrupted => None,
        };
        self.write("ending a run", |tx| {
            require_running(tx, &self.path, id)?;
            tx.execute(
                "UPDATE runs SET status = ?2, error = ?3, ended_at = ?4 \
                 WHERE id = ?1 AND status = 'running'",
                params![id.0, status.as_str(), error, now_ms()],
            )?;
            end_attempt(tx, id)?;
            Ok(())
        })
    }

    /// Begins another attempt at an ended, unfinished run (`interrupted`, `crashed` or `failed`),
    /// for `mesalab resume`: in one transaction, removes everything the run logged (metrics,
    /// tables, JSON, artifacts — the resumed experiment writes them again from its checkpoints),
    /// adds an attempt, and marks the run `running` under this process. Returns the attempt number.
    /// A finished run is refused ([`StoreError::RunFinished`]) and a running one too
    /// ([`StoreError::RunStillRunning`]); neither is changed.
    pub fn resume_run(&self, id: RunId, code_revision: Option<&str>) -> Result<u32, StoreError> {
        self.write("resuming a run", |tx| {
            let status: Option<String> =
                tx.query_row("SELECT status FROM runs WHERE id = ?1", [id.0], |r| r.get(0)).optional()?;
            let Some(status) = status else {
                return Err(StoreError::UnknownRun { path: self.path.clone(), id }.into());
            };
            match status.parse::<RunStatus>() {
                Ok(RunStatus::Finished) => return Err(StoreError::RunFinished { id }.into()),
                Ok(RunStatus::Running) => return Err(StoreError::RunStillRunning { id }.into()),
                Ok(_) => {}
                Err(detail) => {
                    return Err(StoreError::Malformed {
                        path: self.path.clone(),
                        detail: format!("run {id}: {detail}"),
                    }
                    .into());
                }
            }
            for table in ["metrics", "result_tables", "result_json", "artifacts"] {
                tx.execute(&format!("DELETE FROM {table} WHERE run_id = ?1"), [id.0])?;
            }
            let attempt: i64 =
                tx.query_row("SELECT COALESCE(MAX(attempt), 0) + 1 FROM attempts WHERE run_id = ?1", [id.0], |r| {
                    r.get(0)
                })?;
            let now = now_ms();
            tx.execute(
                "INSERT INTO attempts (run_id, attempt, pid, code_revision, status, started_at) \
                 VALUES (?1, ?2, ?3, ?4, 'running', ?5)",
                params![id.0, attempt, std::process::id(), code_revision, now],
            )?;
            tx.execute(
                "UPDATE runs SET status = 'running', error = NULL, ended_at = NULL, pid = ?2 WHERE id = ?1",
                params![id.0, std::process::id()],
            )?;
            Ok(u32::try_from(attempt).unwrap_or(u32::MAX))
        })
    }

    /// Records an analysis of the finished run `id` (one transaction) and returns its id. The run
    /// itself is not modified; a run that is not finished is refused.
    pub fn add_analysis(
        &self,
        id: RunId,
        settings: &[String],
        code_revision: Option<&str>,
        result: &serde_json::Value,
    ) -> Result<i64, StoreError> {
        let settings = serde_json::to_string(settings)
            .map_err(|source| StoreError::Json { what: "serialising the analysis settings".into(), source })?;
        let result = serde_json::to_string(result)
            .map_err(|source| StoreError::Json { what: "serialising the analysis".into(), source })?;
        self.write("recording an analysis", |tx| {
            let status: Option<String> =
                tx.query_row("SELECT status FROM runs WHERE id = ?1", [id.0], |r| r.get(0)).optional()?;
            match status.as_deref().map(str::parse::<RunStatus>) {
                None => return Err(StoreError::UnknownRun { path: self.path.clone(), id }.into()),
                Some(Ok(RunStatus::Finished)) => {}
                Some(Ok(status)) => {
                    return Err(StoreError::InvalidInput {
                        what: "analysis",
                        reason: format!("run {id} is {status}, not finished; only finished runs are analysed"),
                    }
                    .into());
                }
                Some(Err(detail)) => {
                    return Err(StoreError::Malformed { path: self.path.clone(), detail: format!("run {id}: {detail}") }
                        .into());
                }
            }
            tx.execute(
                "INSERT INTO analyses (run_id, settings, code_revision, created_at, result) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id.0, settings, code_revision, now_ms(), result],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// The analyses of run `id`, oldest first: `(analysis id, settings, created_at_ms, result)`.
    pub fn analyses(&self, id: RunId) -> Result<Vec<AnalysisRecord>, StoreError> {
        let rows = self.read("listing analyses", |conn| {
            require_exists(conn, &self.path, id)?;
            let mut query = conn.prepare_cached(
                "SELECT id, settings, code_revision, created_at, result FROM analyses WHERE run_id = ?1 ORDER BY id",
            )?;
            let rows = query
                .query_map([id.0], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })?;
        rows.into_iter()
            .map(|(analysis, settings, code_revision, created_at_ms, result)| {
                let bad = |what: &str, e: serde_json::Error| StoreError::Malformed {
                    path: self.path.clone(),
                    detail: format!("analysis {analysis} of run {id}: {what}: {e}"),
                };
                Ok(AnalysisRecord {
                    id: analysis,
                    settings: serde_json::from_str(&settings).map_err(|e| bad("settings", e))?,
                    code_revision,
                    created_at_ms,
                    result: serde_json::from_str(&result).map_err(|e| bad("result", e))?,
                })
            })
            .collect()
    }

    /// Every attempt at run `id`, first first.
    pub fn attempts(&self, id: RunId) -> Result<Vec<AttemptRecord>, StoreError> {
        self.read("listing attempts", |conn| {
            require_exists(conn, &self.path, id)?;
            read_attempts(conn, &self.path, id)
        })
    }

    /// Appends metric samples to a `running` run, all in one transaction: if any row is rejected
    /// (e.g. an empty name) nothing from the batch is stored.
    pub fn log_metrics(&self, id: RunId, rows: &[MetricRow<'_>]) -> Result<(), StoreError> {
        self.write("logging metrics", |tx| {
            require_running(tx, &self.path, id)?;
            let mut insert =
                tx.prepare_cached("INSERT INTO metrics (run_id, seed, step, name, value) VALUES (?1, ?2, ?3, ?4, ?5)")?;
            for (i, row) in rows.iter().enumerate() {
                // Checked row by row inside the transaction: a bad row rolls back the rows before it.
                if row.name.is_empty() {
                    return Err(StoreError::InvalidInput {
                        what: "metric name",
                        reason: format!(
                            "row {i} of the batch (step {}) has an empty name; nothing from the \
                             batch was stored",
                            row.step
                        ),
                    }
                    .into());
                }
                let value = (!row.value.is_nan()).then_some(row.value);
                insert.execute(params![id.0, row.seed.map(seed_to_sql), row.step, row.name.as_ref(), value])?;
            }
            Ok(())
        })
    }

    /// The `(step, value)` samples of metric `name` for one seed (`None`: the cross-seed
    /// aggregates), ordered by step, then by the order they were logged.
    pub fn metric_series(&self, id: RunId, seed: Option<u64>, name: &str) -> Result<Vec<(i64, f64)>, StoreError> {
        self.read("reading a metric series", |conn| {
            require_exists(conn, &self.path, id)?;
            let mut query = conn.prepare_cached(
                "SELECT step, value FROM metrics WHERE run_id = ?1 AND name = ?2 AND seed IS ?3 \
                 ORDER BY step, rowid",
            )?;
            let rows = query.query_map(params![id.0, name, seed.map(seed_to_sql)], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<f64>>(1)?))
            })?;
            let mut series = Vec::new();
            for row in rows {
                let (step, value) = row?;
                series.push((step, value.unwrap_or(f64::NAN)));
            }
            Ok(series)
        })
    }

    /// The distinct metric names of a run, sorted.
    pub fn metric_names(&self, id: RunId) -> Result<Vec<String>, StoreError> {
        self.read("listing metric names", |conn| {
            require_exists(conn, &self.path, id)?;
            let mut query = conn.prepare_cached("SELECT DISTINCT name FROM metrics WHERE run_id = ?1 ORDER BY name")?;
            let names = query.query_map([id.0], |r| r.get(0))?.collect::<Result<_, _>>()?;
            Ok(names)
        })
    }

    /// The distinct seeds that have samples in a run (aggregates excluded), sorted.
    pub fn metric_seeds(&self, id: RunId) -> Result<Vec<u64>, StoreError> {
        self.read("listing metric seeds", |conn| {
            require_exists(conn, &self.path, id)?;
            let mut query =
                conn.prepare_cached("SELECT DISTINCT seed FROM metrics WHERE run_id = ?1 AND seed IS NOT NULL")?;
            let mut seeds =
                query.query_map([id.0], |r| r.get::<_, i64>(0).map(seed_from_sql))?.collect::<Result<Vec<_>, _>>()?;
            seeds.sort_unstable();
            Ok(seeds)
        })
    }

    /// Stores a result table on a `running` run, replacing any table of the same name.
    pub fn put_table(&self, id: RunId, table: &ResultTable) -> Result<(), StoreError> {
        if table.name.is_empty() {
            return Err(StoreError::InvalidInput { what: "table name", reason: "it is empty".into() });
        }
        for (i, row) in table.rows.iter().enumerate() {
            if row.len() != table.columns.len() {
                return Err(StoreError::InvalidInput {
                    what: "result table",
                    reason: format!(
                        "table `{}` has {} columns but row {i} has {} cells",
                        table.name,
                        table.columns.len(),
                        row.len()
                    ),
                });
            }
        }
        let json = |what: &str, result: Result<String, serde_json::Error>| {
            result.map_err(|source| StoreError::Json {
                what: format!("serialising the {what} of table `{}`", table.name),
                source,
            })
        };
        let columns = json("columns", serde_json::to_string(&table.columns))?;
        let rows = json("rows", serde_json::to_string(&table.rows))?;
        self.write("storing a result table", |tx| {
            require_running(tx, &self.path, id)?;
            tx.execute(
                "INSERT INTO result_tables (run_id, name, columns, rows) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (run_id, name) DO UPDATE SET columns = excluded.columns, \
                 rows = excluded.rows",
                params![id.0, table.name, columns, rows],
            )?;
            Ok(())
        })
    }

    /// The result table `name` of a run, if it was stored.
    pub fn table(&self, id: RunId, name: &str) -> Result<Option<ResultTable>, StoreError> {
        let raw = self.read("reading a result table", |conn| {
            require_exists(conn, &self.path, id)?;
            Ok(conn
                .query_row(
                    "SELECT columns, rows FROM result_tables WHERE run_id = ?1 AND name = ?2",
                    params![id.0, name],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()?)
        })?;
        let Some((columns, rows)) = raw else {
            return Ok(None);
        };
        let malformed = |err: serde_json::Error| StoreError::Malformed {
            path: self.path.clone(),
            detail: format!("result table `{name}` of run {id}: {err}"),
        };
        Ok(Some(ResultTable {
            name: name.to_owned(),
            columns: serde_json::from_str(&columns).map_err(malformed)?,
            rows: serde_json::from_str(&rows).map_err(malformed)?,
        }))
    }

    /// Result table `name` as stored: its columns and rows as JSON text, for readers that parse it
    /// themselves (re-serialising parsed rows can change the last digit of a float).
    pub fn table_text(&self, id: RunId, name: &str) -> Result<Option<(String, String)>, StoreError> {
        self.read("reading a result table", |conn| {
            require_exists(conn, &self.path, id)?;
            Ok(conn
                .query_row(
                    "SELECT columns, rows FROM result_tables WHERE run_id = ?1 AND name = ?2",
                    params![id.0, name],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()?)
        })
    }

    /// The names of a run's result tables, sorted.
    pub fn table_names(&self, id: RunId) -> Result<Vec<String>, StoreError> {
        self.names("listing result tables", "result_tables", id)
    }

    /// Stores any serialisable value as JSON under `name` on a `running` run, replacing any value of
    /// the same name.
    pub fn put_json<T: Serialize + ?Sized>(&self, id: RunId, name: &str, value: &T) -> Result<(), StoreError> {
        if name.is_empty() {
            return Err(StoreError::InvalidInput { what: "JSON result name", reason: "it is empty".into() });
        }
        let text = serde_json::to_string(value)
            .map_err(|source| StoreError::Json { what: format!("serialising JSON result `{name}`"), source })?;
        self.write("storing a JSON result", |tx| {
            require_running(tx, &self.path, id)?;
            tx.execute(
                "INSERT INTO result_json (run_id, name, value) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (run_id, name) DO UPDATE SET value = excluded.value",
                params![id.0, name, text],
            )?;
            Ok(())
        })
    }

    /// The JSON value stored under `name`, deserialised as `T` (use `serde_json::Value` for
    /// anything), if it was stored.
    pub fn get_json<T: DeserializeOwned>(&self, id: RunId, name: &str) -> Result<Option<T>, StoreError> {
        let text: Option<String> = self.read("reading a JSON result", |conn| {
            require_exists(conn, &self.path, id)?;
            Ok(conn
                .query_row("SELECT value FROM result_json WHERE run_id = ?1 AND name = ?2", params![id.0, name], |r| {
                    r.get(0)
                })
                .optional()?)
        })?;
        text.map(|text| {
            serde_json::from_str(&text).map_err(|source| StoreError::Json {
                what: format!(
                    "JSON result `{name}` of run {id} does not have the requested shape ({})",
                    std::any::type_name::<T>()
                ),
                source,
            })
        })
        .transpose()
    }

    /// The JSON result `name` exactly as stored (text), if it was stored: for readers that parse
    /// it themselves (re-serialising a parsed value can change the last digit of a float).
    pub fn json_text(&self, id: RunId, name: &str) -> Result<Option<String>, StoreError> {
        self.read("reading a JSON result", |conn| {
            require_exists(conn, &self.path, id)?;
            Ok(conn
                .query_row("SELECT value FROM result_json WHERE run_id = ?1 AND name = ?2", params![id.0, name], |r| {
                    r.get(0)
                })
                .optional()?)
        })
    }

    /// The names of a run's JSON results, sorted.
    pub fn json_names(&self, id: RunId) -> Result<Vec<String>, StoreError> {
        self.names("listing JSON results", "result_json", id)
    }

    /// Records a file of a `running` run, replacing any artifact of the same name.
    pub fn add_artifact(&self, id: RunId, artifact: &Artifact) -> Result<(), StoreError> {
        let path = artifact.validate()?;
        let size = artifact.size_bytes.map(i64::try_from).transpose().map_err(|_| StoreError::InvalidInput {
            what: "artifact size",
            reason: format!("artifact `{}` is larger than 2^63 bytes", artifact.name),
        })?;
        let sha256 = artifact.sha256.as_ref().map(|h| h.to_ascii_lowercase());
        self.write("recording an artifact", |tx| {
            require_running(tx, &self.path, id)?;
            tx.execute(
                "INSERT INTO artifacts (run_id, name, kind, path, size_bytes, sha256, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (run_id, name) DO UPDATE SET kind = excluded.kind, \
                 path = excluded.path, size_bytes = excluded.size_bytes, sha256 = excluded.sha256, \
                 created_at = excluded.created_at",
                params![id.0, artifact.name, artifact.kind.as_str(), path, size, sha256, now_ms()],
            )?;
            Ok(())
        })
    }

    /// The artifacts of a run, oldest first.
    pub fn artifacts(&self, id: RunId) -> Result<Vec<ArtifactRecord>, StoreError> {
        let rows = self.read("listing artifacts", |conn| {
            require_exists(conn, &self.path, id)?;
            let mut query = conn.prepare_cached(
                "SELECT name, kind, path, size_bytes, sha256, created_at FROM artifacts \
                 WHERE run_id = ?1 ORDER BY created_at, name",
            )?;
            let rows = query
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
            Ok(rows)
        })?;
        rows.into_iter()
            .map(|(name, kind, path, size, sha256, created_at_ms)| {
                let size_bytes = size.map(u64::try_from).transpose().map_err(|err| StoreError::Malformed {
                    path: self.path.clone(),
                    detail: format!("artifact `{name}` of run {id}: size: {err}"),
                })?;
                Ok(ArtifactRecord {
                    artifact: Artifact {
                        name,
                        kind: ArtifactKind::parse(&kind),
                        path: PathBuf::from(path),
                        size_bytes,
                        sha256,
                    },
                    created_at_ms,
                })
            })
            .collect()
    }

    /// The run with this id, if any.
    pub fn run(&self, id: RunId) -> Result<Option<RunRecord>, StoreError> {
        let raw = self.read("reading a run", |conn| {
            Ok(conn
                .query_row(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"), [id.0], RawRun::from_row)
                .optional()?)
        })?;
        raw.map(|raw| raw.into_record(&self.path)).transpose()
    }

    /// Every run, newest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let raws = self.read("listing runs", |conn| {
            let mut query = conn.prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC"))?;
            let raws = query.query_map([], RawRun::from_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(raws)
        })?;
        raws.into_iter().map(|raw| raw.into_record(&self.path)).collect()
    }

    /// Every metric sample of a run, ordered by name, seed (aggregates first), step, then the
    /// order they were logged. One query, for drawing all of a run's curves at once.
    pub fn metrics(&self, id: RunId) -> Result<Vec<MetricRow<'static>>, StoreError> {
        self.read("reading a run's metrics", |conn| {
            require_exists(conn, &self.path, id)?;
            let mut query = conn.prepare_cached(
                "SELECT seed, step, name, value FROM metrics WHERE run_id = ?1 ORDER BY name, seed, step, rowid",
            )?;
            let rows = query
                .query_map([id.0], |r| {
                    Ok(MetricRow::new(
                        r.get::<_, Option<i64>>(0)?.map(seed_from_sql),
                        r.get(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<f64>>(3)?.unwrap_or(f64::NAN),
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// Status and metric progress of a run, `None` if there is no such run.
    pub fn run_progress(&self, id: RunId) -> Result<Option<RunProgress>, StoreError> {
        let raw = self.read("reading a run's progress", |conn| {
            Ok(conn
                .query_row(
                    "SELECT status, ended_at, \
                     (SELECT count(*) FROM metrics WHERE run_id = ?1), \
                     (SELECT max(step) FROM metrics WHERE run_id = ?1) \
                     FROM runs WHERE id = ?1",
                    [id.0],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, Option<i64>>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, Option<i64>>(3)?,
                        ))
                    },
                )
                .optional()?)
        })?;
        raw.map(|(status, ended_at_ms, samples, last_step)| {
            let status = status.parse().map_err(|detail| StoreError::Malformed {
                path: self.path.clone(),
                detail: format!("run {id}: {detail}"),
            })?;
            Ok(RunProgress {
                status,
                ended_at_ms,
                progress: Progress { samples: u64::try_from(samples).unwrap_or(0), last_step },
            })
        })
        .transpose()
    }

    /// Every run, newest first, with its verdict (from the `summary` JSON result) and, for running
    /// runs, its metric progress — in one query, so a list of thousands stays fast.
    pub fn run_overviews(&self) -> Result<Vec<RunOverview>, StoreError> {
        let rows = self.read("listing runs", |conn| {
            let columns = RUN_COLUMNS.split(", ").map(|c| format!("r.{c}")).collect::<Vec<_>>().join(", ");
            let mut query = conn.prepare_cached(&format!(
                "SELECT {columns}, \
                 (SELECT json_extract(j.value, '$.verdict') FROM result_json j \
                  WHERE j.run_id = r.id AND j.name = 'summary'), \
                 CASE WHEN r.status = 'running' THEN (SELECT count(*) FROM metrics m WHERE m.run_id = r.id) END, \
                 CASE WHEN r.status = 'running' THEN (SELECT max(step) FROM metrics m WHERE m.run_id = r.id) END \
                 FROM runs r ORDER BY r.id DESC"
            ))?;
            // The extra columns follow the run's own, however many those are.
            let n = RUN_COLUMNS.split(", ").count();
            let rows = query
                .query_map([], |r| {
                    Ok((
                        RawRun::from_row(r)?,
                        r.get::<_, Option<String>>(n)?,
                        r.get::<_, Option<i64>>(n + 1)?,
                        r.get::<_, Option<i64>>(n + 2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })?;
        rows.into_iter()
            .map(|(raw, verdict, samples, last_step)| {
                let run = raw.into_record(&self.path)?;
                // A verdict that is not valid JSON (hand-edited row) is shown as no verdict rather
                // than hiding every run.
                let verdict = verdict.and_then(|text| serde_json::from_str(&text).ok());
                let progress =
                    samples.map(|samples| Progress { samples: u64::try_from(samples).unwrap_or(0), last_step });
                Ok(RunOverview { run, verdict, progress })
            })
            .collect()
    }

    /// The newest run whose run directory is `dir`. Both sides are compared canonicalised, so a
    /// relative path, a symlink or a trailing `/.` finds the run too.
    pub fn run_by_dir(&self, dir: &Path) -> Result<Option<RunRecord>, StoreError> {
        let key = dir_key(dir)?;
        let exact = self.read("finding a run by directory", |conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_dir = ?1 ORDER BY id DESC LIMIT 1"),
                    [&key],
                    RawRun::from_row,
                )
                .optional()?)
        })?;
        if let Some(raw) = exact {
            return raw.into_record(&self.path).map(Some);
        }
        // A directory that did not exist when its run began was stored uncanonicalised; compare
        // again now that it may exist.
        for run in self.runs()? {
            if dir_key(&run.run_dir).is_ok_and(|stored| stored == key) {
                return Ok(Some(run));
            }
        }
        Ok(None)
    }

    /// Marks as `crashed` every `running` run whose process is gone (on Linux: no `/proc/<pid>`, or a
    /// zombie), and returns how many it marked. Runs of live processes, runs without a pid and ended
    /// runs are untouched. Where liveness cannot be checked (no `/proc`), nothing is marked.
    ///
    /// Pids are only meaningful on the machine (and in the pid namespace) that began the run.
    pub fn mark_orphans_crashed(&self) -> Result<usize, StoreError> {
        self.write("marking crashed runs", |tx| {
            let candidates = {
                let mut query =
                    tx.prepare_cached("SELECT id, pid FROM runs WHERE status = 'running' AND pid IS NOT NULL")?;
                query
                    .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?
            };
            let now = now_ms();
            let mut marked = 0;
            for (id, pid) in candidates {
                let Ok(pid) = u32::try_from(pid) else {
                    continue;
                };
                if process_alive(pid) != Some(false) {
                    continue;
                }
                let n = tx.execute(
                    "UPDATE runs SET status = 'crashed', ended_at = ?2, error = ?3 \
                     WHERE id = ?1 AND status = 'running'",
                    params![id, now, format!("process {pid} exited without ending the run")],
                )?;
                if n > 0 {
                    end_attempt(tx, RunId(id))?;
                }
                marked += n;
            }
            Ok(marked)
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no transaction open (Transaction rolls back on
        // drop), so the connection is still sound.
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction; commits if it returns `Ok`, else rolls back.
    fn write<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, Fail>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })();
        result.map_err(|fail| self.fail(op, fail))
    }

    fn read<T>(&self, op: &'static str, f: impl FnOnce(&Connection) -> Result<T, Fail>) -> Result<T, StoreError> {
        let conn = self.lock();
        f(&conn).map_err(|fail| self.fail(op, fail))
    }

    fn fail(&self, op: &'static str, fail: Fail) -> StoreError {
        match fail {
            Fail::Store(err) => err,
            Fail::Sql(source) => StoreError::Sqlite { path: self.path.clone(), op, source },
        }
    }

    fn names(&self, op: &'static str, table: &'static str, id: RunId) -> Result<Vec<String>, StoreError> {
        self.read(op, |conn| {
            require_exists(conn, &self.path, id)?;
            let mut query =
                conn.prepare_cached(&format!("SELECT name FROM {table} WHERE run_id = ?1 ORDER BY name"))?;
            let names = query.query_map([id.0], |r| r.get(0))?.collect::<Result<_, _>>()?;
            Ok(names)
        })
    }
}

/// Applies the migrations the store lacks, in one transaction.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let open_err = |source| StoreError::Open { path: path.to_path_buf(), source };
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(open_err)?;
    // Read again under the write lock: another process may have migrated in the meantime.
    let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(open_err)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema { path: path.to_path_buf(), found: version, supported: SCHEMA_VERSION });
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    let pending = usize::try_from(version).map_or(&[][..], |v| &schema::MIGRATIONS[v..]);
    for migration in pending {
        tx.execute_batch(migration).map_err(open_err)?;
    }
    tx.pragma_update(None, "application_id", schema::APPLICATION_ID).map_err(open_err)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(open_err)?;
    tx.commit().map_err(open_err)
}

/// Creates the directory that will hold `path`, with an error that names a file in the way.
fn create_parent(path: &Path) -> Result<(), StoreError> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.is_dir() {
        return Ok(());
    }
    let create_err = |source| StoreError::CreateDir { path: path.to_path_buf(), dir: dir.to_path_buf(), source };
    if let Some(blocker) = dir.ancestors().find(|a| a.exists()).filter(|a| !a.is_dir()) {
        return Err(create_err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            format!("{} is a file, not a directory", blocker.display()),
        )));
    }
    std::fs::create_dir_all(dir).map_err(create_err)
}

fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(err.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

fn is_not_a_database(err: &rusqlite::Error) -> bool {
    matches!(err.sqlite_error_code(), Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt))
}

fn require_exists(conn: &Connection, store: &Path, id: RunId) -> Result<(), Fail> {
    let found = conn.query_row("SELECT 1 FROM runs WHERE id = ?1", [id.0], |_| Ok(())).optional()?;
    match found {
        Some(()) => Ok(()),
        None => Err(StoreError::UnknownRun { path: store.to_path_buf(), id }.into()),
    }
}

/// Fails unless run `id` exists and is `running`. Called inside the write transaction, so the
/// answer holds until it commits.
/// The `attempts` rows of run `id`, first first (shared by [`Store::attempts`] and merging).
pub(crate) fn read_attempts(conn: &Connection, store: &Path, id: RunId) -> Result<Vec<AttemptRecord>, Fail> {
    let mut query = conn.prepare_cached(
        "SELECT attempt, pid, code_revision, status, error, started_at, ended_at FROM attempts \
         WHERE run_id = ?1 ORDER BY attempt",
    )?;
    let rows = query
        .query_map([id.0], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<i64>>(6)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let malformed = |detail: String| StoreError::Malformed { path: store.to_path_buf(), detail };
    let mut out = Vec::with_capacity(rows.len());
    for (attempt, pid, code_revision, status, error, started_at_ms, ended_at_ms) in rows {
        let status = status.parse().map_err(|detail| malformed(format!("attempt {attempt} of run {id}: {detail}")))?;
        out.push(AttemptRecord {
            attempt: u32::try_from(attempt).map_err(|e| malformed(format!("attempt number of run {id}: {e}")))?,
            pid: pid.and_then(|p| u32::try_from(p).ok()),
            code_revision,
            status,
            error,
            started_at_ms,
            ended_at_ms,
        });
    }
    Ok(out)
}

/// Copies the run's (just ended) status, error and end time onto its latest attempt.
fn end_attempt(conn: &Connection, id: RunId) -> Result<(), rusqlite::Error> {
    conn.execute(
        "UPDATE attempts SET (status, error, ended_at) = (SELECT status, error, ended_at FROM runs WHERE id = ?1) \
         WHERE run_id = ?1 AND attempt = (SELECT MAX(attempt) FROM attempts WHERE run_id = ?1)",
        [id.0],
    )?;
    Ok(())
}

fn require_running(conn: &Connection, store: &Path, id: RunId) -> Result<(), Fail> {
    let status: Option<String> =
        conn.query_row("SELECT status FROM runs WHERE id = ?1", [id.0], |r| r.get(0)).optional()?;
    let Some(status) = status else {
        return Err(StoreError::UnknownRun { path: store.to_path_buf(), id }.into());
    };
    match status.parse::<RunStatus>() {
        Ok(RunStatus::Running) => Ok(()),
        Ok(status) => Err(StoreError::RunEnded { id, status }.into()),
        Err(detail) => {
            Err(StoreError::Malformed { path: store.to_path_buf(), detail: format!("run {id}: {detail}") }.into())
        }
    }
}

/// The form a run directory is stored and compared in: absolute, canonical if it exists, UTF-8.
fn dir_key(dir: &Path) -> Result<String, StoreError> {
    let invalid = |reason: String| StoreError::InvalidInput { what: "run directory", reason };
    if dir.as_os_str().is_empty() {
        return Err(invalid("it is empty".into()));
    }
    let absolute = match std::fs::canonicalize(dir) {
        Ok(canonical) => canonical,
        Err(_) => {
            std::path::absolute(dir).map_err(|err| invalid(format!("cannot make {} absolute: {err}", dir.display())))?
        }
    };
    absolute.into_os_string().into_string().map_err(|raw| {
        invalid(format!(
            "{} is not valid UTF-8; choose a run directory with a UTF-8 name",
            PathBuf::from(raw).display()
        ))
    })
}

/// Seeds are u64; SQLite integers are i64. Stored bit for bit, so every seed round-trips.
fn seed_to_sql(seed: u64) -> i64 {
    i64::from_ne_bytes(seed.to_ne_bytes())
}

fn seed_from_sql(stored: i64) -> u64 {
    u64::from_ne_bytes(stored.to_ne_bytes())
}

fn now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// Whether process `pid` is alive: `Some(true)`, `Some(false)` (gone or a zombie), or `None` where
/// this platform offers no way to tell.
fn process_alive(pid: u32) -> Option<bool> {
    if cfg!(target_os = "linux") && Path::new("/proc/self/stat").exists() {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // The state is the first field after the parenthesised command name.
            Ok(stat) => {
                let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
                Some(!matches!(state, Some('Z' | 'X' | 'x')))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Some(false),
            Err(_) => None,
        }
    } else {
        None
    }
}

/// Formats unix milliseconds as RFC 3339 UTC with millisecond precision, e.g.
/// `2024-02-29T13:05:09.042Z`.
pub fn rfc3339(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let millis = unix_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let secs_of_day = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        secs_of_day / 3600,
        secs_of_day % 3600 / 60,
        secs_of_day % 60
    )
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn resolve_path_prefers_flag_then_env_then_default() {
        let flag = Path::new("/tmp/flag.sqlite");
        let env = || Some(OsString::from("/tmp/env.sqlite"));
        assert_eq!(resolve_path_from(Some(flag), env()), flag);
        assert_eq!(resolve_path_from(None, env()), Path::new("/tmp/env.sqlite"));
        assert_eq!(resolve_path_from(None, Some(OsString::new())), Path::new(DEFAULT_PATH));
        assert_eq!(resolve_path_from(None, None), Path::new(DEFAULT_PATH));
    }

    #[test]
    fn rfc3339_matches_known_dates() {
        // Expected values from `date -u -d @<secs> +%Y-%m-%dT%H:%M:%S`.
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_709_211_909_042), "2024-02-29T13:05:09.042Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(4_102_444_800_000), "2100-01-01T00:00:00.000Z");
    }

    #[test]
    fn seeds_round_trip_through_i64() {
        for seed in [0, 1, 42, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX] {
            assert_eq!(seed_from_sql(seed_to_sql(seed)), seed);
        }
    }

    #[test]
    fn process_alive_sees_self_and_not_a_reaped_child() {
        if !cfg!(target_os = "linux") {
            return;
        }
        assert_eq!(process_alive(std::process::id()), Some(true));
        let mut child = std::process::Command::new("true").spawn().expect("spawn `true`");
        let pid = child.id();
        child.wait().expect("wait for `true`");
        assert_eq!(process_alive(pid), Some(false));
    }

    #[test]
    fn store_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Store>();
    }
}
