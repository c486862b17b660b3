//! SQLite store: runs, metrics, result tables, artifacts. The only crate that runs SQL.
