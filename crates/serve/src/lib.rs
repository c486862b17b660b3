//! `mesalab serve`: a read-only live dashboard over the store.
//!
//! Pages: the runs table (`/`: filter, sort, sweeps grouped), a run (`/runs/{id}`: status, verdict,
//! curves that grow while it logs, its report), a comparison (`/compare?runs=3,7`: curves overlaid,
//! metrics and configs side by side with differences highlighted) and the MesaBench leaderboard
//! slot (`/leaderboard`). The same data as JSON under `/api/…`; `/api/runs/{id}/events` is a
//! server-sent-event stream of a run's progress. HTML, CSS, script and charts (the report crate's
//! SVG) all come from this binary: no CDN, works offline.
//!
//! # Invariants
//! - **Read-only.** The store is opened with [`Store::open_read_only`]; no endpoint writes, and
//!   every route is `GET` (or `HEAD`).
//! - **Consistent reads of a live store.** Each response is built inside one snapshot
//!   ([`Store::snapshot`]) of the WAL store, so it shows one committed state, never half a batch.
//! - **No paths from requests.** URLs carry run ids (positive integers) and artifact names; a file
//!   is served only if the store records it for that run and it resolves (symlinks followed) inside
//!   the run's directory. Anything else is a 4xx.
//! - **Bad requests are answered, never crash the server.** Malformed ids and query parameters
//!   (unknown, repeated, out of range) are 400 with a message; a panic in a handler becomes a 500
//!   for that request only (store reads and rendering run on blocking tasks whose panics are
//!   caught).
//! - **Loopback by default.** Bound to 127.0.0.1 unless a host is given; on a loopback address only
//!   requests addressed to `localhost` / `127.0.0.1` / `[::1]` are answered (a web page cannot
//!   DNS-rebind its way into the store).

mod error;
mod pages;
mod query;
mod view;

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path as UrlPath, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use mesalab_store::{RunId, RunProgress, Store, StoreError};

pub use error::HttpError;
pub use query::parse_run_id;
pub use view::RunsQuery;

use query::Params;

/// Port used when none is given.
pub const DEFAULT_PORT: u16 = 8765;

/// How `mesalab serve` is asked to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The store file (must exist).
    pub store: PathBuf,
    /// Address to bind; [`Ipv4Addr::LOCALHOST`] unless the user chose one.
    pub host: IpAddr,
    /// Port; 0 picks a free one ([`Server::url`] says which).
    pub port: u16,
    /// How often live views look for new rows in the store.
    pub poll: Duration,
}

impl Options {
    /// Loopback, [`DEFAULT_PORT`], polling every 500 ms.
    pub fn new(store: PathBuf) -> Options {
        Options { store, host: IpAddr::V4(Ipv4Addr::LOCALHOST), port: DEFAULT_PORT, poll: Duration::from_millis(500) }
    }
}

/// Whether binding `host` exposes the store beyond this machine (the CLI warns).
pub fn is_exposed(host: IpAddr) -> bool {
    !host.is_loopback()
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store could not be opened read-only (missing, not a store, newer schema, …).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The address could not be bound (port in use, no permission, address not on this machine).
    #[error("cannot listen on {addr}: {source}. Pick another --port (0 picks a free one) or --host.")]
    Bind { addr: SocketAddr, source: std::io::Error },
    /// The server failed while running.
    #[error("the server stopped: {0}")]
    Io(#[from] std::io::Error),
}

/// Read-only store handles, reused across requests; each request takes one for its snapshot.
struct Pool {
    path: PathBuf,
    free: Mutex<Vec<Store>>,
}

/// Handles kept for reuse; more are opened under load and dropped afterwards.
const POOL_KEEP: usize = 8;

impl Pool {
    fn with<T>(&self, f: impl FnOnce(&Store) -> Result<T, HttpError>) -> Result<T, HttpError> {
        let taken = self.free.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let store = match taken {
            Some(store) => store,
            None => Store::open_read_only(&self.path)?,
        };
        let result = store.snapshot(f)?;
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < POOL_KEEP {
            free.push(store);
        }
        result
    }
}

struct App {
    pool: Pool,
    /// The store's directory, canonical: runs directly inside it are not a sweep.
    store_dir: PathBuf,
    poll: Duration,
    /// Answer only requests whose Host is a loopback name (set when bound to loopback).
    loopback_only: bool,
}

type Shared = Arc<App>;

/// Runs `f` on a blocking thread inside one snapshot of the store; a panic becomes a 500.
async fn read<T: Send + 'static>(
    app: &Shared,
    f: impl FnOnce(&Store) -> Result<T, HttpError> + Send + 'static,
) -> Result<T, HttpError> {
    let app = app.clone();
    match tokio::task::spawn_blocking(move || app.pool.with(f)).await {
        Ok(result) => result,
        Err(join) if join.is_panic() => Err(HttpError::internal(
            "the server hit a bug answering this request (a panic, caught); it keeps serving other \
             requests — please report the URL",
        )),
        Err(_) => Err(HttpError::internal("the request was cancelled")),
    }
}

/// The dashboard as an axum router over the store at `store` (opened read-only; it must exist).
pub fn router(store: &Path, poll: Duration, loopback_only: bool) -> Result<Router, ServeError> {
    // Opening once up front turns a missing or foreign store into an error before binding.
    let first = Store::open_read_only(store)?;
    let store_dir = std::fs::canonicalize(store)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| store.parent().map(Path::to_path_buf).unwrap_or_default());
    let app = Arc::new(App {
        pool: Pool { path: store.to_path_buf(), free: Mutex::new(vec![first]) },
        store_dir,
        poll,
        loopback_only,
    });
    Ok(Router::new()
        .route("/", get(runs_page))
        .route("/fragments/runs", get(runs_fragment))
        .route("/runs/{id}", get(run_page))
        .route("/fragments/runs/{id}", get(run_fragment))
        .route("/runs/{id}/report", get(run_report))
        .route("/runs/{id}/artifacts/{name}", get(run_artifact))
        .route("/compare", get(compare_page))
        .route("/fragments/compare", get(compare_fragment))
        .route("/leaderboard", get(leaderboard))
        .route("/api/runs", get(api_runs))
        .route("/api/runs/{id}", get(api_run))
        .route("/api/runs/{id}/metrics", get(api_metrics))
        .route("/api/runs/{id}/events", get(api_events))
        .route("/static/{file}", get(asset))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app))
}

/// A bound server, not yet answering.
pub struct Server {
    runtime: tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    app: Router,
    addr: SocketAddr,
}

impl Server {
    /// Opens the store read-only and binds the address; nothing is served until [`Server::run`].
    pub fn bind(opts: &Options) -> Result<Server, ServeError> {
        let app = router(&opts.store, opts.poll, opts.host.is_loopback())?;
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        let addr = SocketAddr::new(opts.host, opts.port);
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(|source| ServeError::Bind { addr, source })?;
        let addr = listener.local_addr()?;
        Ok(Server { runtime, listener, app, addr })
    }

    /// The address actually bound (the port is real even when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:8765/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Serves until the process is stopped (Ctrl-C); returns only on an I/O failure.
    pub fn run(self) -> Result<(), ServeError> {
        let Server { runtime, listener, app, .. } = self;
        runtime.block_on(async move { axum::serve(listener, app).await })?;
        Ok(())
    }
}

/// Security headers on every response, and the Host check on loopback.
async fn guard(State(app): State<Shared>, request: Request, next: Next) -> Response {
    if app.loopback_only
        && let Some(host) = request.headers().get(header::HOST)
        && !is_loopback_host(host.to_str().unwrap_or(""))
    {
        return HttpError {
            status: StatusCode::FORBIDDEN,
            message: "this server answers only requests addressed to localhost, 127.0.0.1 or [::1] \
                      (it is bound to loopback); to serve other names, start it with --host"
                .into(),
        }
        .into_response();
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                 frame-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'",
            ),
        );
    }
    response
}

/// `localhost`, `127.0.0.1`, `[::1]`, each with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The report of a run is its own HTML; it may show but never script anything.
const SANDBOX_CSP: &str = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:";

fn html(body: String) -> Response {
    Html(body).into_response()
}

/// `value` as a JSON response (NaN and infinities become `null`, as serde_json writes them).
fn json<T: serde::Serialize>(value: &T) -> Result<Response, HttpError> {
    let body = serde_json::to_string(value).map_err(|e| HttpError::internal(format!("cannot write JSON: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn not_found(request: Request) -> HttpError {
    HttpError::not_found(format!(
        "nothing is served at {}; the runs page is at /",
        query::shorten(request.uri().path())
    ))
}

async fn runs_page(State(app): State<Shared>, RawQuery(raw): RawQuery) -> Result<Response, HttpError> {
    let q = RunsQuery::from_params(&Params::parse(raw.as_deref(), &RunsQuery::PARAMS)?)?;
    let fragment = format!("/fragments/runs?{}", raw.unwrap_or_default());
    let store_label = app.pool.path.display().to_string();
    let dir = app.store_dir.clone();
    read(&app, move |s| {
        let v = view::runs(s, &q, &dir)?;
        Ok(html(pages::runs_page(&v, &q, &store_label, &fragment)))
    })
    .await
}

async fn runs_fragment(State(app): State<Shared>, RawQuery(raw): RawQuery) -> Result<Response, HttpError> {
    let q = RunsQuery::from_params(&Params::parse(raw.as_deref(), &RunsQuery::PARAMS)?)?;
    let dir = app.store_dir.clone();
    read(&app, move |s| Ok(html(pages::runs_table(&view::runs(s, &q, &dir)?, &q)))).await
}

async fn api_runs(State(app): State<Shared>, RawQuery(raw): RawQuery) -> Result<Response, HttpError> {
    let q = RunsQuery::from_params(&Params::parse(raw.as_deref(), &RunsQuery::PARAMS)?)?;
    let dir = app.store_dir.clone();
    read(&app, move |s| json(&view::runs(s, &q, &dir)?)).await
}

/// The run id of a URL segment, refusing any query string on the way.
fn run_id_of(segment: &str, raw: Option<&str>) -> Result<RunId, HttpError> {
    Params::parse(raw, &[])?;
    parse_run_id(segment)
}

async fn run_page(
    State(app): State<Shared>,
    UrlPath(id): UrlPath<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, HttpError> {
    let id = run_id_of(&id, raw.as_deref())?;
    read(&app, move |s| Ok(html(pages::run_page(&view::run(s, id)?)))).await
}

async fn run_fragment(
    State(app): State<Shared>,
    UrlPath(id): UrlPath<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, HttpError> {
    let id = run_id_of(&id, raw.as_deref())?;
    read(&app, move |s| Ok(html(pages::run_fragment(&view::run(s, id)?)))).await
}

async fn api_run(
    State(app): State<Shared>,
    UrlPath(id): UrlPath<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, HttpError> {
    let id = run_id_of(&id, raw.as_deref())?;
    read(&app, move |s| json(&view::run(s, id)?)).await
}

#[derive(serde::Serialize)]
struct Sample {
    name: String,
    seed: Option<u64>,
    step: i64,
    /// `null` for NaN (JSON has no NaN).
    value: Option<f64>,
}

async fn api_metrics(
    State(app): State<Shared>,
    UrlPath(id): UrlPath<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, HttpError> {
    let id = parse_run_id(&id)?;
    let p = Params::parse(raw.as_deref(), &["name"])?;
    let name = p.get("name").map(str::to_owned);
    read(&app, move |s| {
        let samples: Vec<Sample> = s
            .metrics(id)?
            .into_iter()
            .filter(|r| name.as_ref().is_none_or(|n| *n == r.name))
            .map(|r| Sample {
                name: r.name.into_owned(),
                seed: r.seed,
                step: r.step,
                value: Some(r.value).filter(|v| v.is_finite()),
            })
            .collect();
        json(&samples)
    })
    .await
}

/// Server-sent events: `progress` whenever the run's status or sample count changes, then one
/// `end` when it has ended (and the stream closes). The store is polled every `App::poll`.
async fn api_events(
    State(app): State<Shared>,
    UrlPath(id): UrlPath<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, HttpError> {
    let id = run_id_of(&id, raw.as_deref())?;
    let progress_of = move |s: &Store| -> Result<RunProgress, HttpError> {
        s.run_progress(id)?.ok_or_else(|| HttpError::from(StoreError::UnknownRun { path: s.path().into(), id }))
    };
    // An unknown run is a 404 before any stream starts.
    let first = read(&app, progress_of).await?;
    let state = (app, first, true);
    let stream = futures_util::stream::unfold(Some(state), move |state| async move {
        let (app, mut last, fresh) = state?;
        loop {
            if !fresh {
                tokio::time::sleep(app.poll).await;
                match read(&app, progress_of).await {
                    Ok(p) if p == last => continue,
                    Ok(p) => last = p,
                    Err(e) => {
                        let event = Event::default().event("error").data(e.message);
                        return Some((Ok::<_, Infallible>(event), None));
                    }
                }
            }
            let ended = last.status.is_ended();
            let data = serde_json::json!({
                "status": last.status,
                "samples": last.progress.samples,
                "last_step": last.progress.last_step,
            })
            .to_string();
            let event = Event::default().event(if ended { "end" } else { "progress" }).data(data);
            let next = if ended { None } else { Some((app, last, false)) };
            return Some((Ok(event), next));
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

async fn run_report(
    State(app): State<Shared>,
    UrlPath(id): UrlPath<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, HttpError> {
    let id = run_id_of(&id, raw.as_deref())?;
    read(&app, move |s| {
        s.run(id)?.ok_or_else(|| HttpError::from(StoreError::UnknownRun { path: s.path().into(), id }))?;
        let file = view::report_file(s, id)?.ok_or_else(|| {
            HttpError::not_found(format!(
                "run {id} has no report on disk (a running run gets one when it finishes; `mesalab report <run-dir>` redraws one)"
            ))
        })?;
        let bytes = std::fs::read(&file).map_err(|e| HttpError::not_found(format!("the report of run {id} cannot be read: {e}")))?;
        Ok((
            [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CONTENT_SECURITY_POLICY, SANDBOX_CSP)],
            bytes,
        )
            .into_response())
    })
    .await
}

async fn run_artifact(
    State(app): State<Shared>,
    UrlPath((id, name)): UrlPath<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, HttpError> {
    let id = run_id_of(&id, raw.as_deref())?;
    read(&app, move |s| {
        s.run(id)?.ok_or_else(|| HttpError::from(StoreError::UnknownRun { path: s.path().into(), id }))?;
        let (artifact, file) = view::artifact_file(s, id, &name)?.ok_or_else(|| {
            HttpError::not_found(format!(
                "run {id} has no artifact named `{}` on disk; its page lists the artifacts it has",
                query::shorten(&name)
            ))
        })?;
        let bytes =
            std::fs::read(&file).map_err(|e| HttpError::not_found(format!("artifact `{name}` cannot be read: {e}")))?;
        let ext = artifact.artifact.path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        let (kind, inline) = match ext.as_str() {
            "html" => ("text/html; charset=utf-8", true),
            "json" => ("application/json", true),
            "toml" | "txt" | "csv" | "md" => ("text/plain; charset=utf-8", true),
            "svg" => ("image/svg+xml", true),
            _ => ("application/octet-stream", false),
        };
        let mut response =
            ([(header::CONTENT_TYPE, kind), (header::CONTENT_SECURITY_POLICY, SANDBOX_CSP)], bytes).into_response();
        if !inline {
            let file_name: String = artifact
                .artifact
                .path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("artifact")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                .collect();
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
                response.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
        }
        Ok(response)
    })
    .await
}

/// Most runs one comparison shows.
const MAX_COMPARE: usize = 8;

async fn compare_page(State(app): State<Shared>, RawQuery(raw): RawQuery) -> Result<Response, HttpError> {
    let p = Params::parse(raw.as_deref(), &["runs"])?;
    if p.get("runs").is_none() {
        return Ok(html(pages::compare_help()));
    }
    let ids = compare_ids(&p)?;
    let fragment = format!("/fragments/compare?{}", raw.unwrap_or_default());
    read(&app, move |s| Ok(html(pages::compare_page(&view::compare(s, &ids)?, &fragment)))).await
}

async fn compare_fragment(State(app): State<Shared>, RawQuery(raw): RawQuery) -> Result<Response, HttpError> {
    let ids = compare_ids(&Params::parse(raw.as_deref(), &["runs"])?)?;
    read(&app, move |s| Ok(html(pages::compare_fragment(&view::compare(s, &ids)?)))).await
}

fn compare_ids(p: &Params) -> Result<Vec<RunId>, HttpError> {
    let ids = p.run_ids("runs", MAX_COMPARE)?;
    if ids.len() < 2 {
        return Err(HttpError::bad_request("a comparison needs two or more runs, e.g. `?runs=3,7`"));
    }
    Ok(ids)
}

async fn leaderboard(State(app): State<Shared>, RawQuery(raw): RawQuery) -> Result<Response, HttpError> {
    Params::parse(raw.as_deref(), &[])?;
    read(&app, move |s| {
        // The newest finished MesaBench score (`mesalab bench score` records it as a run).
        let latest = s
            .runs()?
            .into_iter()
            .filter(|r| r.experiment == "mesabench" && r.status == mesalab_store::RunStatus::Finished)
            .max_by_key(|r| r.id.0);
        let board = match &latest {
            Some(r) => s.table(r.id, "leaderboard")?.map(|t| (r.id.0, t)),
            None => None,
        };
        Ok(html(pages::leaderboard_page(board.as_ref())))
    })
    .await
}

const STYLE: &str = include_str!("../assets/style.css");
const SCRIPT: &str = include_str!("../assets/app.js");

/// The two static files, by exact name: nothing under `/static/` maps to the file system.
async fn asset(UrlPath(file): UrlPath<String>) -> Result<Response, HttpError> {
    let (kind, body) = match file.as_str() {
        "style.css" => ("text/css; charset=utf-8", STYLE),
        "app.js" => ("text/javascript; charset=utf-8", SCRIPT),
        _ => return Err(HttpError::not_found(format!("there is no static file `{}`", query::shorten(&file)))),
    };
    Ok(([(header::CONTENT_TYPE, kind)], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised() {
        for ok in ["localhost", "localhost:8765", "127.0.0.1:1", "[::1]:8765", "[::1]", "LOCALHOST"] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in ["evil.example:8765", "10.0.0.1", "localhost.evil.example", "", "[::2]:80"] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn only_non_loopback_hosts_are_exposed() {
        assert!(!is_exposed(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(is_exposed(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
    }
}
