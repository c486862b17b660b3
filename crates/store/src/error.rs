//! [`StoreError`]: every failure of the store, each message saying what to do about it.

use std::path::PathBuf;

use crate::{ENV_VAR, RunId, RunStatus};

/// How to point mesalab at another store; appended to errors about the store's location.
const ELSEWHERE: &str = "use another store (the CLI's store flag or the MESALAB_STORE environment variable)";

/// Every failure of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory that should hold the store file could not be created.
    #[error(
        "cannot create the directory {dir} for the store {path}: {source}. Make every parent of it \
         a writable directory, or {ELSEWHERE}."
    )]
    CreateDir {
        /// The store file that was asked for.
        path: PathBuf,
        /// The directory that could not be created.
        dir: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },

    /// SQLite could not open (or first write to) the store file.
    #[error(
        "cannot open the store {path}: {source}{hint}",
        hint = open_hint(source, path)
    )]
    Open {
        /// The store file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },

    /// The store file exists but can only be opened read-only.
    #[error("the store {path} is read-only. Make it writable (chmod u+w), or {ELSEWHERE}.")]
    ReadOnly {
        /// The store file.
        path: PathBuf,
    },

    /// The file is not an SQLite database at all (or is damaged). It was left untouched.
    #[error(
        "{path} is not a mesalab store: {detail}. The file was left untouched; move it away, or \
         {ELSEWHERE}."
    )]
    NotADatabase {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },

    /// The file is an SQLite database that belongs to some other program. It was left untouched.
    #[error(
        "{path} is an SQLite database of another program ({detail}), not a mesalab store. The file \
         was left untouched; {ELSEWHERE}."
    )]
    ForeignDatabase {
        /// The file.
        path: PathBuf,
        /// Why it was judged foreign.
        detail: String,
    },

    /// The store was written by a newer mesalab whose schema this build does not know.
    #[error(
        "the store {path} has schema version {found}, but this mesalab understands versions up to \
         {supported}. Upgrade mesalab, or {ELSEWHERE}."
    )]
    NewerSchema {
        /// The store file.
        path: PathBuf,
        /// The version found in the file.
        found: i64,
        /// The newest version this build can read and write.
        supported: i64,
    },

    /// An SQL statement failed after the store was opened.
    #[error(
        "store {path}: {op} failed: {source}{hint}",
        hint = busy_hint(source)
    )]
    Sqlite {
        /// The store file (`:memory:` for an in-memory store).
        path: PathBuf,
        /// What the store was doing.
        op: &'static str,
        /// What SQLite said.
        source: rusqlite::Error,
    },

    /// No run has this id.
    #[error("run {id} does not exist in the store {path}; list the runs in the store to find the right id")]
    UnknownRun {
        /// The store file.
        path: PathBuf,
        /// The id asked for.
        id: RunId,
    },

    /// A write was aimed at a run that has already ended.
    #[error(
        "run {id} has already ended with status `{status}`; an ended run is never modified — \
         start a new run to record new results"
    )]
    RunEnded {
        /// The run.
        id: RunId,
        /// Its final status.
        status: RunStatus,
    },

    /// `resume` was asked for a finished run.
    #[error("run {id} is finished; a finished run is never resumed or changed (start a new run instead)")]
    RunFinished {
        /// The run.
        id: RunId,
    },

    /// `resume` was asked for a run that is still running (its process is alive).
    #[error("run {id} is still running in another process; wait for it, or stop it (Ctrl-C) and resume then")]
    RunStillRunning {
        /// The run.
        id: RunId,
    },

    /// An argument was rejected before anything was written.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// What was invalid (e.g. `metric name`, `artifact path`).
        what: &'static str,
        /// Why, and what would be valid.
        reason: String,
    },

    /// A value could not be converted to or from JSON.
    #[error("{what}: {source}")]
    Json {
        /// What was being converted.
        what: String,
        /// What serde_json said.
        source: serde_json::Error,
    },

    /// Two stores hold a run with the same uid but different contents; a merge refused it and
    /// wrote nothing.
    #[error(
        "cannot merge: run {source_id} of {from} and run {other_id} of {other} are the same run \
         (uid {uid}) but their {differs_in} differ; nothing was merged. One of the two is a modified \
         or half-finished copy: keep the store that holds the run you trust and merge without the other."
    )]
    MergeConflict {
        /// The run's uid.
        uid: String,
        /// The store being merged in.
        from: PathBuf,
        /// The run's id there.
        source_id: RunId,
        /// The store that already holds that uid (the target or an earlier source).
        other: PathBuf,
        /// The run's id there.
        other_id: RunId,
        /// What differs (`status`, `metrics`, …).
        differs_in: &'static str,
    },

    /// A stored row does not have the shape this build expects (edited by hand, or a bug).
    #[error(
        "the store {path} holds a malformed row: {detail}; the file may have been edited by hand — \
         inspect it with `sqlite3 {path}`"
    )]
    Malformed {
        /// The store file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
}

fn busy_hint(err: &rusqlite::Error) -> String {
    match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => format!(
            ". Another process held the store locked for longer than {} s; retry when it is done, \
             or give this run its own store with {ENV_VAR}.",
            crate::BUSY_TIMEOUT.as_secs()
        ),
        _ => String::new(),
    }
}

fn open_hint(err: &rusqlite::Error, path: &std::path::Path) -> String {
    let busy = busy_hint(err);
    if !busy.is_empty() {
        return busy;
    }
    let path = path.display();
    format!(
        ". Check that the file and its directory are writable (SQLite also creates {path}-wal and \
         {path}-shm next to it), or {ELSEWHERE}."
    )
}
