//! The schema and its forward-only migrations.
//!
//! The schema version lives in `PRAGMA user_version`; `PRAGMA application_id` marks the file as a
//! mesalab store. `MIGRATIONS[i]` upgrades version `i` to `i + 1`. Migrations are append-only: never
//! edit a shipped one, add a new one instead (and bump nothing else — the version is the length of the
//! list).

/// `PRAGMA application_id` of a mesalab store: the ASCII bytes `MESL`.
pub(crate) const APPLICATION_ID: i32 = 0x4D45_534C;

/// The schema version this build writes; a store with a higher version is refused.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Times are unix milliseconds (UTC) in INTEGER columns. Seeds are u64 stored bit-for-bit as i64.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 0 -> 1: the initial schema.
    r#"
    CREATE TABLE runs (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        experiment    TEXT    NOT NULL,
        config_toml   TEXT    NOT NULL,
        seeds         TEXT    NOT NULL,             -- JSON array of u64
        code_revision TEXT,
        run_dir       TEXT    NOT NULL,             -- absolute, canonical where it existed
        quick         INTEGER NOT NULL CHECK (quick IN (0, 1)),
        status        TEXT    NOT NULL
                      CHECK (status IN ('running', 'finished', 'failed', 'interrupted', 'crashed')),
        error         TEXT,
        pid           INTEGER,
        started_at    INTEGER NOT NULL,             -- unix ms, UTC
        ended_at      INTEGER                       -- unix ms, UTC; NULL while running
    );
    CREATE INDEX runs_by_dir ON runs (run_dir);
    CREATE INDEX runs_by_status ON runs (status);

    CREATE TABLE metrics (
        run_id INTEGER NOT NULL REFERENCES runs (id),
        seed   INTEGER,                             -- NULL for cross-seed aggregates
        step   INTEGER NOT NULL,
        name   TEXT    NOT NULL,
        value  REAL                                 -- NULL encodes NaN
    );
    CREATE INDEX metrics_by_run_name ON metrics (run_id, name);

    CREATE TABLE result_tables (
        run_id  INTEGER NOT NULL REFERENCES runs (id),
        name    TEXT    NOT NULL,
        columns TEXT    NOT NULL,                   -- JSON array of strings
        rows    TEXT    NOT NULL,                   -- JSON array of arrays
        PRIMARY KEY (run_id, name)
    );

    CREATE TABLE result_json (
        run_id INTEGER NOT NULL REFERENCES runs (id),
        name   TEXT    NOT NULL,
        value  TEXT    NOT NULL,                    -- JSON
        PRIMARY KEY (run_id, name)
    );

    CREATE TABLE artifacts (
        run_id     INTEGER NOT NULL REFERENCES runs (id),
        name       TEXT    NOT NULL,
        kind       TEXT    NOT NULL,
        path       TEXT    NOT NULL,                -- relative to the run's run_dir
        size_bytes INTEGER,
        sha256     TEXT,                            -- lowercase hex
        created_at INTEGER NOT NULL,                -- unix ms, UTC
        PRIMARY KEY (run_id, name)
    );
    "#,
    // 1 -> 2: a run identity that survives merging stores (`mesalab merge`): the rowid is local to
    // one store, the uid is not. Existing runs get a fresh random uid.
    r#"
    ALTER TABLE runs ADD COLUMN uid TEXT;
    UPDATE runs SET uid = lower(hex(randomblob(16))) WHERE uid IS NULL;
    CREATE UNIQUE INDEX runs_by_uid ON runs (uid);
    "#,
    // 2 -> 3: every attempt at a run (`mesalab resume` adds one). Existing runs get their one
    // attempt from the run row.
    r#"
    CREATE TABLE attempts (
        run_id        INTEGER NOT NULL REFERENCES runs (id),
        attempt       INTEGER NOT NULL,             -- 1 for the first, then 2, 3, ...
        pid           INTEGER,
        code_revision TEXT,
        status        TEXT    NOT NULL
                      CHECK (status IN ('running', 'finished', 'failed', 'interrupted', 'crashed')),
        error         TEXT,
        started_at    INTEGER NOT NULL,             -- unix ms, UTC
        ended_at      INTEGER,                      -- unix ms, UTC; NULL while running
        PRIMARY KEY (run_id, attempt)
    );
    INSERT INTO attempts (run_id, attempt, pid, code_revision, status, error, started_at, ended_at)
        SELECT id, 1, pid, code_revision, status, error, started_at, ended_at FROM runs;
    "#,
    // 3 -> 4: analyses of finished runs (`mesalab analyze`): new look-inside results computed
    // from a run's checkpoints, linked to the run, which itself never changes.
    r#"
    CREATE TABLE analyses (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id        INTEGER NOT NULL REFERENCES runs (id),
        settings      TEXT    NOT NULL,             -- JSON array of the `--set` overrides
        code_revision TEXT,
        created_at    INTEGER NOT NULL,             -- unix ms, UTC
        result        TEXT    NOT NULL              -- JSON
    );
    CREATE INDEX analyses_by_run ON analyses (run_id);
    "#,
];
