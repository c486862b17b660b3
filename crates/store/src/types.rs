//! The values that go into and come out of the store.

use std::borrow::Cow;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::StoreError;

/// The id of a run in one store (SQLite rowid; ids are never reused within a store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub i64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a run is in its life. Only `Running` runs accept writes; the other four are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Begun and not yet ended (or its process died and nobody has noticed yet).
    Running,
    /// Ended normally.
    Finished,
    /// Ended with an error; [`RunRecord::error`] says which.
    Failed,
    /// Stopped by the user (Ctrl-C).
    Interrupted,
    /// Its process died without ending it; set by [`crate::Store::mark_orphans_crashed`].
    Crashed,
}

impl RunStatus {
    /// Every status, in life order.
    pub const ALL: [RunStatus; 5] =
        [RunStatus::Running, RunStatus::Finished, RunStatus::Failed, RunStatus::Interrupted, RunStatus::Crashed];

    /// The name stored in the `runs.status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Crashed => "crashed",
        }
    }

    /// Whether the run has ended (every status but `Running`).
    pub fn is_ended(self) -> bool {
        self != RunStatus::Running
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunStatus::ALL.into_iter().find(|status| status.as_str() == s).ok_or_else(|| {
            format!("unknown run status `{s}` (expected running, finished, failed, interrupted or crashed)")
        })
    }
}

/// What [`crate::Store::begin_run`] records about a new run. The store adds the status (`running`), the
/// pid of the calling process and the start time.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    /// Registry name of the experiment, e.g. `icl-linear-regression`.
    pub experiment: String,
    /// The fully resolved config (defaults, file and `--set` overrides applied), as TOML.
    pub config_toml: String,
    /// The seeds this run covers.
    pub seeds: Vec<u64>,
    /// Code revision (e.g. `git describe --always --dirty`), if known.
    pub code_revision: Option<String>,
    /// The run directory. Stored absolute, canonicalised if it exists when the run begins.
    pub run_dir: PathBuf,
    /// Whether the run used `--quick` sizes.
    pub quick: bool,
}

/// How a run ended; see [`crate::Store::finish_run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Ended normally.
    Finished,
    /// Ended with this error message.
    Failed(String),
    /// Stopped by the user.
    Interrupted,
}

impl RunOutcome {
    /// The status the run gets.
    pub fn status(&self) -> RunStatus {
        match self {
            RunOutcome::Finished => RunStatus::Finished,
            RunOutcome::Failed(_) => RunStatus::Failed,
            RunOutcome::Interrupted => RunStatus::Interrupted,
        }
    }
}

/// One row of `runs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run's id.
    pub id: RunId,
    /// Registry name of the experiment.
    pub experiment: String,
    /// The resolved config, as TOML.
    pub config_toml: String,
    /// The seeds the run covers.
    pub seeds: Vec<u64>,
    /// Code revision, if it was known.
    pub code_revision: Option<String>,
    /// Absolute run directory.
    pub run_dir: PathBuf,
    /// Whether the run used `--quick` sizes.
    pub quick: bool,
    /// Current status.
    pub status: RunStatus,
    /// Error message of a `failed` run (or why a run was marked `crashed`).
    pub error: Option<String>,
    /// Pid of the process that began the run.
    pub pid: Option<u32>,
    /// Start time, unix milliseconds UTC (format with [`crate::rfc3339`]).
    pub started_at_ms: i64,
    /// End time, unix milliseconds UTC; `None` while running.
    pub ended_at_ms: Option<i64>,
    /// Identity of the run across stores (32 hex digits, random at `begin_run`); kept when the run
    /// is merged into another store, where it gets a new [`RunId`].
    pub uid: String,
}

/// One analysis of a finished run (`mesalab analyze`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisRecord {
    pub id: i64,
    /// The `--set` overrides it ran with.
    pub settings: Vec<String>,
    pub code_revision: Option<String>,
    pub created_at_ms: i64,
    pub result: serde_json::Value,
}

/// One attempt at a run: the first `mesalab run`, then one per `mesalab resume`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// 1 for the first attempt.
    pub attempt: u32,
    pub pid: Option<u32>,
    pub code_revision: Option<String>,
    /// How this attempt ended (`running` while it runs).
    pub status: RunStatus,
    pub error: Option<String>,
    pub started_at_ms: i64,
    pub ended_at_ms: Option<i64>,
}

/// One metric sample. `seed: None` marks a cross-seed aggregate (mean, CI bound, ...).
///
/// `NaN` values are stored as SQL `NULL` and come back as `NaN`; infinities round-trip as is.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow<'a> {
    /// The seed this sample belongs to; `None` for an aggregate over seeds.
    pub seed: Option<u64>,
    /// Training step (or episode, or any monotone x-axis the experiment chooses).
    pub step: i64,
    /// Metric name, e.g. `train/loss`, `deploy/intended_return`. Must not be empty.
    pub name: Cow<'a, str>,
    /// The value.
    pub value: f64,
}

impl<'a> MetricRow<'a> {
    /// A sample; `name` can be a `&str` or a `String`.
    pub fn new(seed: Option<u64>, step: i64, name: impl Into<Cow<'a, str>>, value: f64) -> Self {
        MetricRow { seed, step, name: name.into(), value }
    }
}

/// A small analysis table (baselines comparison, heatmap matrix, OOD curve, ...).
///
/// Every row has exactly `columns.len()` cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultTable {
    /// Name, unique within a run; putting a table with the same name replaces it.
    pub name: String,
    /// Column headers.
    pub columns: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// What an artifact file is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ArtifactKind {
    /// Model weights (safetensors).
    Checkpoint,
    /// The HTML report.
    Report,
    /// A machine-readable summary (JSON, CSV).
    Summary,
    /// A standalone figure.
    Plot,
    /// Anything else; the string is the stored kind.
    Other(String),
}

impl ArtifactKind {
    /// The name stored in `artifacts.kind`.
    pub fn as_str(&self) -> &str {
        match self {
            ArtifactKind::Checkpoint => "checkpoint",
            ArtifactKind::Report => "report",
            ArtifactKind::Summary => "summary",
            ArtifactKind::Plot => "plot",
            ArtifactKind::Other(other) => other,
        }
    }

    /// The kind named `s`; names other than the four known ones become [`ArtifactKind::Other`].
    pub fn parse(s: &str) -> ArtifactKind {
        match s {
            "checkpoint" => ArtifactKind::Checkpoint,
            "report" => ArtifactKind::Report,
            "summary" => ArtifactKind::Summary,
            "plot" => ArtifactKind::Plot,
            other => ArtifactKind::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A file a run produced, to be recorded with [`crate::Store::add_artifact`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// Name, unique within a run; adding an artifact with the same name replaces it.
    pub name: String,
    /// What it is.
    pub kind: ArtifactKind,
    /// Path relative to the run directory, without `..`.
    pub path: PathBuf,
    /// Size in bytes, if known.
    pub size_bytes: Option<u64>,
    /// SHA-256 of the contents as 64 hex digits, if known.
    pub sha256: Option<String>,
}

impl Artifact {
    /// An artifact with no size or hash recorded.
    pub fn new(name: impl Into<String>, kind: ArtifactKind, path: impl Into<PathBuf>) -> Self {
        Artifact { name: name.into(), kind, path: path.into(), size_bytes: None, sha256: None }
    }

    /// Records the size of the file as it is now, at `run_dir.join(self.path)`.
    pub fn with_size_from(mut self, run_dir: &Path) -> Result<Self, StoreError> {
        let file = run_dir.join(&self.path);
        let meta = std::fs::metadata(&file).map_err(|err| StoreError::InvalidInput {
            what: "artifact path",
            reason: format!("cannot read {}: {err}; write the file before recording it", file.display()),
        })?;
        self.size_bytes = Some(meta.len());
        Ok(self)
    }

    /// Records a SHA-256 computed by the caller (64 hex digits).
    pub fn with_sha256(mut self, hex: impl Into<String>) -> Self {
        self.sha256 = Some(hex.into());
        self
    }

    /// Checks name, path and hash; returns the path as stored (UTF-8, `/`-separated).
    pub(crate) fn validate(&self) -> Result<String, StoreError> {
        let invalid = |what, reason: String| StoreError::InvalidInput { what, reason };
        if self.name.is_empty() {
            return Err(invalid("artifact name", "it is empty".into()));
        }
        if self.kind.as_str().is_empty() {
            return Err(invalid("artifact kind", format!("artifact `{}` has an empty kind", self.name)));
        }
        let path_error = |why: &str| {
            invalid(
                "artifact path",
                format!(
                    "artifact `{}` has path `{}`, which {why}; give the path relative to the run \
                     directory, e.g. `checkpoints/final.safetensors`",
                    self.name,
                    self.path.display()
                ),
            )
        };
        let mut parts = Vec::new();
        for component in self.path.components() {
            match component {
                Component::Normal(part) => match part.to_str() {
                    Some(part) => parts.push(part),
                    None => return Err(path_error("is not valid UTF-8")),
                },
                Component::CurDir => {}
                Component::ParentDir => return Err(path_error("leaves the run directory (`..`)")),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(path_error("is absolute"));
                }
            }
        }
        if parts.is_empty() {
            return Err(path_error("is empty"));
        }
        if let Some(hash) = &self.sha256
            && (hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(invalid(
                "artifact sha256",
                format!("artifact `{}` has sha256 `{hash}`, which is not 64 hex digits", self.name),
            ));
        }
        Ok(parts.join("/"))
    }
}

/// An artifact as recorded, with the time it was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRecord {
    /// The artifact (sha256 in lowercase hex).
    pub artifact: Artifact,
    /// When it was recorded, unix milliseconds UTC.
    pub created_at_ms: i64,
}

/// A row of the runs table as a dashboard lists it: the run, its verdict, and how far it has
/// logged. Read by [`crate::Store::run_overviews`] in one query.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOverview {
    /// The run.
    pub run: RunRecord,
    /// `verdict` of the run's stored `summary` JSON result (claim, answer, checks), if it has one.
    pub verdict: Option<serde_json::Value>,
    /// Progress of a `running` run; `None` for an ended run (not counted, to keep the list cheap).
    pub progress: Option<Progress>,
}

/// How far a run has logged metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Metric samples stored so far (rows are only ever appended, so this grows iff it logs).
    pub samples: u64,
    /// The largest step logged so far.
    pub last_step: Option<i64>,
}

/// A run's status and progress, cheap enough to poll ([`crate::Store::run_progress`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunProgress {
    /// Current status.
    pub status: RunStatus,
    /// End time, unix ms UTC; `None` while running.
    pub ended_at_ms: Option<i64>,
    /// Metrics logged so far.
    pub progress: Progress,
}
