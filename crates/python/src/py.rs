//! The PyO3 module `mesalab._native`: [`NativeEnv`] (a [`Batch`] whose output buffers are NumPy
//! arrays it owns), registry look-ups, and [`StoreReader`] (a read-only store handle).
//!
//! Errors: bad env names, splits, parameters, actions or seeds raise `ValueError` with the CLI's
//! message; store failures raise `mesalab.StoreError` with the store's message.

use crate::batch::{Autoreset, Batch, StepOut};
use crate::raster;
use mesalab_envs::registry;
use mesalab_store::{RunId, Store};
use numpy::{PyArray1, PyArray2, PyArray3, PyArrayDyn, PyArrayMethods, PyReadonlyArray1};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use std::path::PathBuf;

create_exception!(_native, StoreError, PyException, "A mesalab store could not be read.");

fn value_error(e: String) -> PyErr {
    PyValueError::new_err(e)
}

fn store_error(e: mesalab_store::StoreError) -> PyErr {
    StoreError::new_err(e.to_string())
}

/// N slots of one env; step results land in NumPy arrays owned by this object (one write each).
#[pyclass(module = "mesalab._native")]
struct NativeEnv {
    batch: Batch,
    obs: Py<PyArrayDyn<f32>>,
    final_obs: Py<PyArrayDyn<f32>>,
    rewards: Py<PyArray1<f32>>,
    performance: Py<PyArray1<f32>>,
    terminated: Py<PyArray1<bool>>,
    truncated: Py<PyArray1<bool>>,
    events: Py<PyArray1<u32>>,
    stepped: Py<PyArray1<bool>>,
    episode_return: Py<PyArray1<f64>>,
    episode_performance: Py<PyArray1<f64>>,
    episode_length: Py<PyArray1<u32>>,
    episode_events: Py<PyArray2<u32>>,
}

fn borrow_err(name: &str) -> impl Fn(numpy::BorrowError) -> PyErr + '_ {
    move |e| PyRuntimeError::new_err(format!("buffer `{name}` is borrowed elsewhere: {e}"))
}

macro_rules! slice_mut {
    ($py:expr, $self:ident . $field:ident) => {
        $self.$field.bind($py).try_readwrite().map_err(borrow_err(stringify!($field)))?
    };
}

#[pymethods]
impl NativeEnv {
    /// `indices[i]`: env index (stream) of slot `i`; `autoreset`: next_step, same_step, disabled.
    #[new]
    fn new(
        py: Python<'_>,
        name: &str,
        split: &str,
        overrides: Vec<String>,
        indices: Vec<u64>,
        autoreset: &str,
    ) -> PyResult<Self> {
        let mode = Autoreset::parse(autoreset).map_err(value_error)?;
        let env = crate::batch::make_env(name, split, &overrides).map_err(value_error)?;
        if indices.is_empty() {
            return Err(value_error("num_envs must be at least 1".into()));
        }
        let batch = Batch::new(env, &indices, mode);
        let n = batch.len();
        let [c, h, w] = batch.spec().obs_shape;
        let ne = batch.spec().events.len();
        let obs_dims = vec![n, c, h, w];
        Ok(Self {
            obs: PyArrayDyn::zeros(py, obs_dims.clone(), false).unbind(),
            final_obs: PyArrayDyn::zeros(py, obs_dims, false).unbind(),
            rewards: PyArray1::zeros(py, n, false).unbind(),
            performance: PyArray1::zeros(py, n, false).unbind(),
            terminated: PyArray1::zeros(py, n, false).unbind(),
            truncated: PyArray1::zeros(py, n, false).unbind(),
            events: PyArray1::zeros(py, n, false).unbind(),
            stepped: PyArray1::zeros(py, n, false).unbind(),
            episode_return: PyArray1::zeros(py, n, false).unbind(),
            episode_performance: PyArray1::zeros(py, n, false).unbind(),
            episode_length: PyArray1::zeros(py, n, false).unbind(),
            episode_events: PyArray2::zeros(py, [n, ne], false).unbind(),
            batch,
        })
    }

    /// Resets the slots in `mask` (all when None); `seeds` (one per slot) restarts their streams.
    #[pyo3(signature = (seeds=None, mask=None))]
    fn reset(&mut self, py: Python<'_>, seeds: Option<Vec<Option<u64>>>, mask: Option<Vec<bool>>) -> PyResult<()> {
        let mut obs = slice_mut!(py, self.obs);
        let obs = obs.as_slice_mut().map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        self.batch.reset(seeds.as_deref(), mask.as_deref(), obs).map_err(value_error)
    }

    /// Steps every slot with `actions` (int64, one per slot), writing every output buffer.
    fn step(&mut self, py: Python<'_>, actions: PyReadonlyArray1<'_, i64>) -> PyResult<()> {
        let actions = actions.as_slice().map_err(|e| value_error(format!("actions: {e}")))?;
        let (mut obs, mut final_obs) = (slice_mut!(py, self.obs), slice_mut!(py, self.final_obs));
        let (mut rewards, mut performance) = (slice_mut!(py, self.rewards), slice_mut!(py, self.performance));
        let (mut terminated, mut truncated) = (slice_mut!(py, self.terminated), slice_mut!(py, self.truncated));
        let (mut events, mut stepped) = (slice_mut!(py, self.events), slice_mut!(py, self.stepped));
        let mut episode_return = slice_mut!(py, self.episode_return);
        let mut episode_performance = slice_mut!(py, self.episode_performance);
        let mut episode_length = slice_mut!(py, self.episode_length);
        let mut episode_events = slice_mut!(py, self.episode_events);
        let contiguous = |e: numpy::AsSliceError| PyRuntimeError::new_err(e.to_string());
        let out = StepOut {
            obs: obs.as_slice_mut().map_err(contiguous)?,
            rewards: rewards.as_slice_mut().map_err(contiguous)?,
            performance: performance.as_slice_mut().map_err(contiguous)?,
            terminated: terminated.as_slice_mut().map_err(contiguous)?,
            truncated: truncated.as_slice_mut().map_err(contiguous)?,
            events: events.as_slice_mut().map_err(contiguous)?,
            stepped: stepped.as_slice_mut().map_err(contiguous)?,
            final_obs: final_obs.as_slice_mut().map_err(contiguous)?,
            episode_return: episode_return.as_slice_mut().map_err(contiguous)?,
            episode_performance: episode_performance.as_slice_mut().map_err(contiguous)?,
            episode_length: episode_length.as_slice_mut().map_err(contiguous)?,
            episode_events: episode_events.as_slice_mut().map_err(contiguous)?,
        };
        self.batch.step(actions, out).map_err(value_error)
    }

    fn render_ascii(&self, i: usize) -> PyResult<String> {
        self.batch.render_ascii(i).map_err(value_error)
    }

    fn render_svg(&self, i: usize) -> PyResult<String> {
        self.batch.render_svg(i).map_err(value_error)
    }

    /// `[H, W, 3]` uint8: the SVG render rasterized at `scale` pixels per SVG unit.
    #[pyo3(signature = (i, scale=1.0))]
    fn render_rgb<'py>(&self, py: Python<'py>, i: usize, scale: f64) -> PyResult<Bound<'py, PyArray3<u8>>> {
        let svg = self.batch.render_svg(i).map_err(value_error)?;
        let img = raster::rasterize(&svg, scale).map_err(value_error)?;
        PyArray1::from_vec(py, img.pixels).reshape([img.height, img.width, 3])
    }

    #[getter]
    fn num_envs(&self) -> usize {
        self.batch.len()
    }
    #[getter]
    fn name(&self) -> &'static str {
        self.batch.env().name()
    }
    #[getter]
    fn split(&self) -> String {
        self.batch.env().split().to_string()
    }
    #[getter]
    fn params_toml(&self) -> String {
        self.batch.env().params_toml().to_string()
    }
    #[getter]
    fn obs_shape(&self) -> (usize, usize, usize) {
        let [c, h, w] = self.batch.spec().obs_shape;
        (c, h, w)
    }
    #[getter]
    fn actions(&self) -> Vec<&'static str> {
        self.batch.spec().actions.to_vec()
    }
    #[getter]
    fn event_names(&self) -> Vec<&'static str> {
        self.batch.spec().events.to_vec()
    }
    #[getter]
    fn channels(&self) -> Vec<&'static str> {
        self.batch.spec().channels.clone()
    }
    /// `(low, high)` of every observation value.
    #[getter]
    fn obs_bounds(&self) -> (f32, f32) {
        crate::batch::obs_bounds(self.batch.env())
    }
    #[getter]
    fn max_steps(&self) -> u32 {
        self.batch.spec().max_steps
    }
    #[getter]
    fn autoreset(&self) -> &'static str {
        match self.batch.mode() {
            Autoreset::NextStep => "next_step",
            Autoreset::SameStep => "same_step",
            Autoreset::Disabled => "disabled",
        }
    }
    #[getter]
    fn obs<'py>(&self, py: Python<'py>) -> Bound<'py, PyArrayDyn<f32>> {
        self.obs.bind(py).clone()
    }
    #[getter]
    fn final_obs<'py>(&self, py: Python<'py>) -> Bound<'py, PyArrayDyn<f32>> {
        self.final_obs.bind(py).clone()
    }
    #[getter]
    fn rewards<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        self.rewards.bind(py).clone()
    }
    #[getter]
    fn performance<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        self.performance.bind(py).clone()
    }
    #[getter]
    fn terminated<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<bool>> {
        self.terminated.bind(py).clone()
    }
    #[getter]
    fn truncated<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<bool>> {
        self.truncated.bind(py).clone()
    }
    #[getter]
    fn events<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        self.events.bind(py).clone()
    }
    #[getter]
    fn stepped<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<bool>> {
        self.stepped.bind(py).clone()
    }
    #[getter]
    fn episode_return<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.episode_return.bind(py).clone()
    }
    #[getter]
    fn episode_performance<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.episode_performance.bind(py).clone()
    }
    #[getter]
    fn episode_length<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        self.episode_length.bind(py).clone()
    }
    #[getter]
    fn episode_events<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<u32>> {
        self.episode_events.bind(py).clone()
    }
}

/// Names of every registered env.
#[pyfunction]
fn env_names() -> Vec<&'static str> {
    registry::names()
}

/// `(summary, splits)` of env `name` (first split = default).
#[pyfunction]
fn env_entry(name: &str) -> PyResult<(&'static str, Vec<&'static str>)> {
    let e = registry::lookup(name).map_err(|e| value_error(e.to_string()))?;
    Ok((e.summary, e.splits.to_vec()))
}

/// The preset parameters of a split, as TOML.
#[pyfunction]
fn defaults_toml(name: &str, split: &str) -> PyResult<String> {
    registry::defaults_toml(name, split).map_err(|e| value_error(e.to_string()))
}

/// A read-only handle on a store file; values come back as plain Python data (JSON as text).
#[pyclass(module = "mesalab._native")]
struct StoreReader {
    store: Store,
}

/// One `runs` row: id, experiment, status, quick, seeds, code_revision, run_dir, started_at_ms,
/// ended_at_ms, error, pid, config_toml.
type RunRow = (
    i64,
    String,
    String,
    bool,
    Vec<u64>,
    Option<String>,
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<u32>,
    String,
);

#[pymethods]
impl StoreReader {
    #[new]
    fn new(path: PathBuf) -> PyResult<Self> {
        Ok(Self { store: Store::open_read_only(&path).map_err(store_error)? })
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.store.path().to_path_buf()
    }

    /// Every run, newest first.
    fn runs(&self) -> PyResult<Vec<RunRow>> {
        let runs = self.store.runs().map_err(store_error)?;
        Ok(runs
            .into_iter()
            .map(|r| {
                (
                    r.id.0,
                    r.experiment,
                    r.status.as_str().to_string(),
                    r.quick,
                    r.seeds,
                    r.code_revision,
                    r.run_dir.display().to_string(),
                    r.started_at_ms,
                    r.ended_at_ms,
                    r.error,
                    r.pid,
                    r.config_toml,
                )
            })
            .collect())
    }

    /// The id of the newest run whose directory is `dir`, if any.
    fn run_by_dir(&self, dir: PathBuf) -> PyResult<Option<i64>> {
        Ok(self.store.run_by_dir(&dir).map_err(store_error)?.map(|r| r.id.0))
    }

    /// Columns `(seed, step, name, value)` of every metric sample of run `id`, in logged order.
    #[allow(clippy::type_complexity)]
    fn metrics(&self, id: i64) -> PyResult<(Vec<Option<u64>>, Vec<i64>, Vec<String>, Vec<f64>)> {
        let rows = self.store.metrics(RunId(id)).map_err(store_error)?;
        let mut cols = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for r in rows {
            cols.0.push(r.seed);
            cols.1.push(r.step);
            cols.2.push(r.name.into_owned());
            cols.3.push(r.value);
        }
        Ok(cols)
    }

    fn table_names(&self, id: i64) -> PyResult<Vec<String>> {
        self.store.table_names(RunId(id)).map_err(store_error)
    }

    /// `(columns, rows)` of result table `name` as stored JSON text, or None.
    fn table(&self, id: i64, name: &str) -> PyResult<Option<(String, String)>> {
        self.store.table_text(RunId(id), name).map_err(store_error)
    }

    fn json_names(&self, id: i64) -> PyResult<Vec<String>> {
        self.store.json_names(RunId(id)).map_err(store_error)
    }

    /// The JSON result `name` as text, or None.
    fn json(&self, id: i64, name: &str) -> PyResult<Option<String>> {
        self.store.json_text(RunId(id), name).map_err(store_error)
    }

    /// `(name, kind, path, size_bytes, sha256, created_at_ms)` of every artifact of run `id`.
    #[allow(clippy::type_complexity)]
    fn artifacts(&self, id: i64) -> PyResult<Vec<(String, String, String, Option<u64>, Option<String>, i64)>> {
        let arts = self.store.artifacts(RunId(id)).map_err(store_error)?;
        Ok(arts
            .into_iter()
            .map(|a| {
                let x = a.artifact;
                (
                    x.name,
                    x.kind.as_str().to_string(),
                    x.path.display().to_string(),
                    x.size_bytes,
                    x.sha256,
                    a.created_at_ms,
                )
            })
            .collect())
    }
}

#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeEnv>()?;
    m.add_class::<StoreReader>()?;
    m.add("StoreError", m.py().get_type::<StoreError>())?;
    m.add_function(wrap_pyfunction!(env_names, m)?)?;
    m.add_function(wrap_pyfunction!(env_entry, m)?)?;
    m.add_function(wrap_pyfunction!(defaults_toml, m)?)?;
    Ok(())
}
