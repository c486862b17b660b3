//! `mesalab serve` over real HTTP: every endpoint, bad ids, traversal attempts (plain,
//! percent-encoded, double-encoded, through a symlink), malformed query parameters, the Host
//! check, live events, and readers that stay consistent while another connection writes.
//!
//! Requests are written by hand on a TCP socket so that paths reach the server exactly as typed
//! (an HTTP client library would normalise `..` away before sending).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use mesalab_serve::{Options, ServeError, Server};
use mesalab_store::{Artifact, ArtifactKind, MetricRow, NewRun, RunId, RunOutcome, Store};
use serde_json::{Value, json};

struct Response {
    status: u16,
    headers: String,
    body: String,
}

fn request(addr: SocketAddr, raw: &str) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(raw.as_bytes()).expect("send");
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).expect("read response");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = head.to_ascii_lowercase();
    let body = if headers.contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_owned() };
    Response { status, headers, body }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", addr.port()))
}

fn get_json(addr: SocketAddr, path: &str) -> Value {
    let r = get(addr, path);
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.body))
}

struct Fixture {
    _tmp: tempfile::TempDir,
    store_path: PathBuf,
    store: Store,
    addr: SocketAddr,
    finished: RunId,
    other: RunId,
    running: RunId,
    failed: RunId,
    sweep: [RunId; 2],
}

fn new_run(dir: &Path, experiment: &str, config: &str) -> NewRun {
    std::fs::create_dir_all(dir).unwrap();
    NewRun {
        experiment: experiment.into(),
        config_toml: config.into(),
        seeds: vec![0, 1],
        code_revision: Some("abc123".into()),
        run_dir: dir.to_path_buf(),
        quick: true,
    }
}

fn log_curve(store: &Store, id: RunId, name: &str, steps: i64, scale: f64) {
    let rows: Vec<MetricRow> = (0..steps)
        .flat_map(|s| {
            [0u64, 1].map(|seed| {
                MetricRow::new(Some(seed), s * 10, name.to_string(), scale / (1.0 + s as f64 + seed as f64))
            })
        })
        .collect();
    store.log_metrics(id, &rows).unwrap();
}

fn summary(answer: &str, loss: f64) -> Value {
    json!({
        "verdict": {
            "claim": "implements one step of gradient descent",
            "answer": answer,
            "holds": answer == "yes",
            "checks": [{ "name": "loss / GD loss", "value": loss, "threshold": "≤ 1.01", "pass": loss <= 1.01 }]
        },
        "aggregate": { "loss": { "mean": loss, "min": loss - 0.01, "max": loss + 0.01, "std": 0.01, "n": 2 } }
    })
}

/// A finished run with a report and a summary on disk, recorded as artifacts.
fn finish_with_report(store: &Store, id: RunId, dir: &Path, html: &str) {
    std::fs::write(dir.join("report.html"), html).unwrap();
    std::fs::write(dir.join("summary.json"), "{\"ok\": true}").unwrap();
    store
        .add_artifact(id, &Artifact::new("report", ArtifactKind::Report, "report.html").with_size_from(dir).unwrap())
        .unwrap();
    store
        .add_artifact(id, &Artifact::new("summary", ArtifactKind::Summary, "summary.json").with_size_from(dir).unwrap())
        .unwrap();
    store.finish_run(id, RunOutcome::Finished).unwrap();
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let store_path = root.join("runs/mesalab.sqlite");
    let store = Store::open(&store_path).unwrap();

    let dir = root.join("runs/icl-gd-a");
    let finished = store
        .begin_run(&new_run(&dir, "icl-gd", "experiment = \"icl-gd\"\n[train]\nsteps = 200\nlearning_rate = 0.001\n"))
        .unwrap();
    log_curve(&store, finished, "train_loss", 20, 1.0);
    store.log_metrics(finished, &[MetricRow::new(Some(0), 200, "final/loss", 0.25)]).unwrap();
    store.put_json(finished, "summary", &summary("yes", 1.004)).unwrap();
    finish_with_report(&store, finished, &dir, "<!DOCTYPE html><title>r</title><h1>REPORT OF RUN A</h1>");

    let dir = root.join("runs/icl-gd-b");
    let other = store
        .begin_run(&new_run(&dir, "icl-gd", "experiment = \"icl-gd\"\n[train]\nsteps = 400\nlearning_rate = 0.001\n"))
        .unwrap();
    log_curve(&store, other, "train_loss", 40, 2.0);
    store.put_json(other, "summary", &summary("no", 1.2)).unwrap();
    finish_with_report(&store, other, &dir, "<h1>REPORT OF RUN B</h1>");

    let failed =
        store.begin_run(&new_run(&root.join("runs/boat-race-c"), "boat-race", "experiment = \"boat-race\"\n")).unwrap();
    store.finish_run(failed, RunOutcome::Failed("loss diverged at step 7".into())).unwrap();

    let sweep = [0, 1].map(|i| {
        let id = store
            .begin_run(&new_run(&root.join(format!("sweeps/lr/point-{i}")), "icl-gd", "[train]\nsteps = 10\n"))
            .unwrap();
        store.finish_run(id, RunOutcome::Finished).unwrap();
        id
    });

    let running =
        store.begin_run(&new_run(&root.join("runs/icl-gd-live"), "icl-gd", "experiment = \"icl-gd\"\n")).unwrap();
    log_curve(&store, running, "val_loss", 3, 1.0);

    let server =
        Server::bind(&Options { poll: Duration::from_millis(20), port: 0, ..Options::new(store_path.clone()) })
            .unwrap();
    let addr = server.addr();
    std::thread::spawn(move || server.run());
    Fixture { _tmp: tmp, store_path, store, addr, finished, other, running, failed, sweep }
}

#[test]
fn every_page_and_api_answers() {
    let f = fixture();
    let a = f.addr;

    let r = get(a, "/");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.headers.contains("content-type: text/html"));
    assert!(r.headers.contains("content-security-policy: default-src 'self'"), "{}", r.headers);
    for id in [f.finished, f.other, f.running, f.failed, f.sweep[0], f.sweep[1]] {
        assert!(r.body.contains(&format!("data-run=\"{id}\"")), "run {id} missing from the runs table");
    }
    assert!(r.body.contains("loss / GD loss"), "key metrics (verdict checks) are listed");
    assert!(r.body.contains("sweep <code>") && r.body.contains("sweeps/lr"), "the sweep is grouped");
    assert!(!r.body.contains("sweep <code>runs"), "runs straight in the store's directory are not a sweep");
    assert!(get(a, "/fragments/runs").body.starts_with("<div id=\"runs\" data-running=\"1\">"));

    let page = get(a, &format!("/runs/{}", f.finished));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("data-metric=\"train_loss\" data-samples=\"40\""), "a curve of 2 seeds × 20 steps");
    assert!(page.body.contains("final/loss"), "single-step metrics are listed, not drawn");
    assert!(page.body.contains(&format!("src=\"/runs/{}/report\"", f.finished)), "the report is embedded");
    assert!(page.body.contains("implements one step of gradient descent"));
    assert_eq!(get(a, &format!("/fragments/runs/{}", f.running)).status, 200);

    let report = get(a, &format!("/runs/{}/report", f.finished));
    assert_eq!(report.status, 200);
    assert!(report.body.contains("REPORT OF RUN A"));
    assert!(report.headers.contains("content-security-policy: sandbox"), "{}", report.headers);
    let none = get(a, &format!("/runs/{}/report", f.running));
    assert_eq!(none.status, 404, "a running run has no report yet");
    let summary = get(a, &format!("/runs/{}/artifacts/summary", f.finished));
    assert_eq!((summary.status, summary.body.as_str()), (200, "{\"ok\": true}"));
    assert!(summary.headers.contains("content-type: application/json"));

    let cmp = get(a, &format!("/compare?runs={},{}", f.finished, f.other));
    assert_eq!(cmp.status, 200, "{}", cmp.body);
    assert!(cmp.body.contains("data-metric=\"train_loss\""), "curves overlaid");
    assert!(cmp.body.contains("<tr class=\"differs\"><th scope=\"row\">train.steps</th><td>200</td><td>400</td>"));
    assert!(cmp.body.contains("<tr><th scope=\"row\">train.learning_rate</th>"), "equal keys are not highlighted");
    assert!(cmp.body.contains("<tr class=\"differs\"><th scope=\"row\">verdict</th><td>yes</td><td>no</td>"));
    assert_eq!(get(a, &format!("/fragments/compare?runs={},{}", f.finished, f.other)).status, 200);
    assert!(get(a, "/compare").body.contains("Tick two or more runs"));
    assert!(get(a, "/leaderboard").body.contains("id=\"leaderboard-slot\""));
    assert!(get(a, "/static/style.css").headers.contains("text/css"));
    assert!(get(a, "/static/app.js").body.contains("EventSource"));

    let runs = get_json(a, "/api/runs?group=0");
    assert_eq!(runs["total"], 6);
    assert_eq!(runs["entries"][0]["id"], f.running.0, "newest first");
    let run = get_json(a, &format!("/api/runs/{}", f.running));
    assert_eq!(run["run"]["status"], "running");
    assert_eq!(run["progress"]["samples"], 6);
    let metrics = get_json(a, &format!("/api/runs/{}/metrics?name=train_loss", f.other));
    assert_eq!(metrics.as_array().unwrap().len(), 80);
    assert!(metrics.as_array().unwrap().iter().all(|m| m["name"] == "train_loss"));

    // An ended run's event stream says so once and closes.
    let events = get(a, &format!("/api/runs/{}/events", f.finished));
    assert_eq!(events.status, 200);
    assert!(events.headers.contains("content-type: text/event-stream"));
    assert!(events.body.contains("event: end") && events.body.contains("\"status\":\"finished\""), "{}", events.body);
}

#[test]
fn filters_and_sorting() {
    let f = fixture();
    let ids = |path: &str| -> Vec<i64> {
        let v = get_json(f.addr, &format!("{path}&group=0"));
        v["entries"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()).collect()
    };
    assert_eq!(ids("/api/runs?status=running"), vec![f.running.0]);
    assert_eq!(ids("/api/runs?status=failed"), vec![f.failed.0]);
    assert_eq!(ids("/api/runs?experiment=boat-race"), vec![f.failed.0]);
    assert_eq!(ids("/api/runs?verdict=yes"), vec![f.finished.0]);
    assert_eq!(ids("/api/runs?verdict=no"), vec![f.other.0]);
    assert_eq!(ids("/api/runs?q=boat"), vec![f.failed.0]);
    // (The temporary directory's name may contain the digit too.)
    assert!(ids(&format!("/api/runs?q={}", f.other)).contains(&f.other.0));
    let ascending = ids("/api/runs?sort=id&order=asc");
    let mut sorted = ascending.clone();
    sorted.sort();
    assert_eq!(ascending, sorted);
    assert_eq!(ids("/api/runs?sort=experiment&order=asc")[0], f.failed.0, "boat-race sorts first");
    assert_eq!(ids("/api/runs?limit=2").len(), 2);
    let grouped = get_json(f.addr, "/api/runs");
    let group = grouped["entries"].as_array().unwrap().iter().find(|e| e["kind"] == "group").expect("a sweep group");
    assert_eq!(group["runs"].as_array().unwrap().len(), 2);
    assert!(group["dir"].as_str().unwrap().ends_with("sweeps/lr"), "{group}");
}

#[test]
fn bad_run_ids_are_refused() {
    let f = fixture();
    for path in [
        "/runs/0",
        "/runs/-1",
        "/runs/abc",
        "/runs/1.5",
        "/runs/+1",
        "/runs/1e3",
        "/api/runs/x",
        "/fragments/runs/%20",
        "/runs/99999999999999999999",
        "/api/runs/1x/events",
        "/api/runs/nope/metrics",
    ] {
        let r = get(f.addr, path);
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert!(r.body.contains("is not a run id"), "{path}: {}", r.body);
    }
    for path in [
        "/runs/9999",
        "/api/runs/9999",
        "/fragments/runs/9999",
        "/runs/9999/report",
        "/api/runs/9999/events",
        "/api/runs/9999/metrics",
        "/runs/9999/artifacts/report",
        "/compare?runs=1,9999",
    ] {
        let r = get(f.addr, path);
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert!(r.body.contains("no run 9999"), "{path}: {}", r.body);
    }
}

#[test]
fn traversal_attempts_never_leave_the_store() {
    let f = fixture();
    // A recorded artifact whose file is a symlink out of the run directory is not served either.
    let dir = f.store.run(f.running).unwrap().unwrap().run_dir;
    std::os::unix::fs::symlink("/etc/passwd", dir.join("escape.txt")).unwrap();
    f.store
        .add_artifact(f.running, &Artifact::new("escape", ArtifactKind::Other("text".into()), "escape.txt"))
        .unwrap();
    let id = f.finished;
    let attempts = [
        "/../../etc/passwd".to_string(),
        "/static/../../../etc/passwd".into(),
        "/static/..%2F..%2F..%2Fetc%2Fpasswd".into(),
        "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd".into(),
        "/static/%252e%252e%252fetc%252fpasswd".into(),
        "/runs/..%2F..%2Fetc%2Fpasswd".into(),
        "/runs/%252e%252e%252f%252e%252e%252fetc%252fpasswd".into(),
        "/runs/../../etc/passwd".into(),
        format!("/runs/{id}/artifacts/..%2F..%2F..%2F..%2Fetc%2Fpasswd"),
        format!("/runs/{id}/artifacts/%2Fetc%2Fpasswd"),
        format!("/runs/{id}/artifacts/%252e%252e%252fetc%252fpasswd"),
        format!("/runs/{id}/artifacts/....%2F%2F....%2F%2Fetc%2Fpasswd"),
        format!("/runs/{id}/artifacts/report/../../../../etc/passwd"),
        format!("/runs/{id}/report/..%2F..%2F..%2Fetc%2Fpasswd"),
        format!("/runs/{}/artifacts/escape", f.running),
        "//etc/passwd".into(),
        "/%2e%2e/%2e%2e/etc/passwd".into(),
        "/api/runs/%2e%2e%2f%2e%2e%2fetc%2fpasswd".into(),
        "/static/%00".into(),
        "/runs/%ff%fe".into(),
    ];
    for path in &attempts {
        let r = get(f.addr, path);
        assert!((400..500).contains(&r.status), "{path}: status {} {}", r.status, r.body);
        assert!(!r.body.contains("root:"), "{path} leaked /etc/passwd");
    }
    assert_eq!(get(f.addr, "/").status, 200, "still serving");
}

#[test]
fn malformed_query_parameters_are_400_with_a_message() {
    let f = fixture();
    let cases = [
        ("/?sort=bogus", "`sort=bogus` is not valid; expected one of `id`"),
        ("/?order=up", "`order=up` is not valid"),
        ("/?limit=0", "from 1 to 10000"),
        ("/?limit=abc", "`limit=abc` is not valid"),
        ("/?limit=99999999999999999999999", "from 1 to 10000"),
        ("/?status=weird", "unknown run status `weird`"),
        ("/?verdict=maybe", "`verdict=maybe` is not valid"),
        ("/?group=2", "`group=2` is not valid"),
        ("/?nope=1", "unknown query parameter `nope`"),
        ("/?sort=id&sort=status", "given more than once"),
        ("/api/runs?sort=%ff", "is not valid"),
        ("/compare?runs=1", "two or more runs"),
        ("/compare?runs=1,x", "`x` is not a run id"),
        ("/compare?runs=1,1", "listed twice"),
        ("/compare?runs=,,", "lists no run ids"),
        ("/compare?runs=1,2,3,4,5,6,7,8,9", "at most 8"),
        ("/fragments/compare", "`runs` is missing"),
        ("/api/runs/1/metrics?seed=x", "unknown query parameter `seed`"),
        ("/runs/1?x=1", "this page takes no parameters"),
        ("/leaderboard?x=1", "this page takes no parameters"),
    ];
    for (path, needle) in cases {
        let r = get(f.addr, path);
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert!(r.body.contains(needle), "{path}: expected `{needle}` in {}", r.body);
        assert!(r.headers.contains("text/plain"), "{path}");
    }
    assert_eq!(get(f.addr, "/").status, 200, "still serving");
}

#[test]
fn only_get_is_served_and_only_to_loopback_names() {
    let f = fixture();
    let post = request(f.addr, "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_eq!(post.status, 405);
    let delete = request(
        f.addr,
        &format!("DELETE /api/runs/{} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", f.finished),
    );
    assert_eq!(delete.status, 405);
    let head = request(f.addr, "HEAD / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_eq!(head.status, 200);
    let rebound = request(f.addr, "GET / HTTP/1.1\r\nHost: evil.example:8765\r\nConnection: close\r\n\r\n");
    assert_eq!(rebound.status, 403);
    assert!(rebound.body.contains("only requests addressed to localhost"));
    assert_eq!(get(f.addr, "/no/such/page").status, 404);
    assert!(f.store.run(f.finished).unwrap().is_some());
}

#[test]
fn a_missing_or_foreign_store_is_refused_before_binding() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("none.sqlite");
    let err = Server::bind(&Options { port: 0, ..Options::new(missing.clone()) }).err().expect("refused");
    assert!(matches!(err, ServeError::Store(_)) && err.to_string().contains("no store file"), "{err}");
    assert!(!missing.exists(), "nothing was created");
    let junk = tmp.path().join("junk.sqlite");
    let bytes = b"not a database at all, just some bytes that are long enough to look like a header".to_vec();
    std::fs::write(&junk, &bytes).unwrap();
    let err = Server::bind(&Options { port: 0, ..Options::new(junk.clone()) }).err().expect("refused");
    assert!(err.to_string().contains("not a mesalab store"), "{err}");
    assert_eq!(std::fs::read(&junk).unwrap(), bytes, "left untouched");
}

/// Reads `event:`/`data:` pairs from a server-sent-event response, one at a time.
struct Events {
    reader: BufReader<TcpStream>,
}

impl Events {
    fn open(addr: SocketAddr, path: &str) -> Events {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
        }
        Events { reader }
    }

    /// The next `(event, data)`, skipping keep-alive comments; `None` at the end of the stream.
    fn next(&mut self) -> Option<(String, Value)> {
        let (mut event, mut data) = (String::new(), String::new());
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let l = line.trim_end_matches(['\r', '\n']);
            // Chunk-size lines of the chunked encoding are bare hex numbers; "0" ends the body.
            if !l.is_empty() && l.bytes().all(|b| b.is_ascii_hexdigit()) && !l.contains(':') {
                if l == "0" {
                    return None;
                }
                continue;
            }
            if let Some(e) = l.strip_prefix("event: ") {
                event = e.to_owned();
            } else if let Some(d) = l.strip_prefix("data: ") {
                data = d.to_owned();
            } else if l.is_empty() && !event.is_empty() {
                return Some((event, serde_json::from_str(&data).unwrap_or(Value::Null)));
            }
        }
    }
}

#[test]
fn live_events_follow_a_running_run_to_its_end() {
    let f = fixture();
    let mut events = Events::open(f.addr, &format!("/api/runs/{}/events", f.running));
    let (event, data) = events.next().expect("first event");
    assert_eq!((event.as_str(), data["samples"].as_u64()), ("progress", Some(6)), "{data}");
    f.store
        .log_metrics(
            f.running,
            &[MetricRow::new(Some(0), 30, "val_loss", 0.1), MetricRow::new(Some(1), 30, "val_loss", 0.2)],
        )
        .unwrap();
    let (event, data) = events.next().expect("second event");
    assert_eq!((event.as_str(), data["samples"].as_u64(), data["last_step"].as_i64()), ("progress", Some(8), Some(30)));
    f.store.finish_run(f.running, RunOutcome::Finished).unwrap();
    let (event, data) = events.next().expect("end event");
    assert_eq!((event.as_str(), data["status"].as_str()), ("end", Some("finished")));
    assert!(events.next().is_none(), "the stream closes after `end`");
}

#[test]
fn concurrent_readers_see_whole_batches_while_another_connection_writes() {
    const BATCH: usize = 5;
    const BATCHES: usize = 150;
    const READERS: usize = 4;
    let f = fixture();
    let writer_store = Store::open(&f.store_path).unwrap();
    let id = f.running;
    let before = get_json(f.addr, &format!("/api/runs/{id}/metrics")).as_array().unwrap().len();
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(READERS + 1));
    let writer = {
        let (done, start) = (done.clone(), start.clone());
        std::thread::spawn(move || {
            start.wait();
            for b in 0..BATCHES {
                let rows: Vec<MetricRow> = (0..BATCH)
                    .map(|k| MetricRow::new(Some(0), 1000 + b as i64, format!("batch/m{k}"), b as f64))
                    .collect();
                writer_store.log_metrics(id, &rows).unwrap();
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let addr = f.addr;
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (done, start) = (done.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let (mut last, mut reads) = (0usize, 0usize);
                let deadline = Instant::now() + Duration::from_secs(120);
                while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let path = if r % 2 == 0 { format!("/api/runs/{id}/metrics") } else { format!("/api/runs/{id}") };
                    let resp = get(addr, &path);
                    assert_eq!(resp.status, 200, "{path}: {}", resp.body);
                    let v: Value = serde_json::from_str(&resp.body).unwrap();
                    let n = if r % 2 == 0 {
                        v.as_array()
                            .unwrap()
                            .iter()
                            .filter(|m| m["name"].as_str().unwrap().starts_with("batch/"))
                            .count()
                    } else {
                        v["curves"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .filter(|c| c["metric"].as_str().unwrap().starts_with("batch/"))
                            .map(|c| c["samples"].as_u64().unwrap() as usize)
                            .sum::<usize>()
                            + v["finals"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .filter(|m| m[0].as_str().unwrap().starts_with("batch/"))
                                .count()
                    };
                    assert_eq!(n % BATCH, 0, "reader {r} saw half a batch: {n} rows");
                    assert!(n >= last, "reader {r} went back in time: {n} after {last}");
                    last = n;
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    writer.join().unwrap();
    let reads: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads >= READERS, "every reader read at least once");
    let after = get_json(f.addr, &format!("/api/runs/{id}/metrics")).as_array().unwrap().len();
    assert_eq!(after, before + BATCH * BATCHES);
}

#[test]
fn the_leaderboard_shows_the_newest_finished_mesabench_scores() {
    let f = fixture();
    assert!(get(f.addr, "/leaderboard").body.contains("No MesaBench score is in this store yet"));
    let dir = f._tmp.path().join("runs/bench/zoo/score-1");
    let id = f.store.begin_run(&new_run(&dir, "mesabench", "name = \"zoo\"\n")).unwrap();
    let columns = [
        "detector",
        "question",
        "split",
        "auroc",
        "ci_lo",
        "ci_hi",
        "accuracy",
        "mann_whitney_p",
        "positives",
        "negatives",
    ];
    let row = |d: &str, split: &str, auroc: f64| {
        vec![
            json!(d),
            json!("deceptive"),
            json!(split),
            json!(auroc),
            json!(0.5),
            json!(0.9),
            json!(0.8),
            json!(0.01),
            json!(18),
            json!(19),
        ]
    };
    f.store
        .put_table(
            id,
            &mesalab_store::ResultTable {
                name: "leaderboard".into(),
                columns: columns.map(String::from).to_vec(),
                rows: vec![row("<steering>", "held-out", 0.722), row("dev-only", "dev", 0.1)],
            },
        )
        .unwrap();
    // Not finished yet: still the empty slot.
    assert!(get(f.addr, "/leaderboard").body.contains("No MesaBench score"));
    f.store.finish_run(id, RunOutcome::Finished).unwrap();
    let body = get(f.addr, "/leaderboard").body;
    assert!(body.contains(&format!("<a href=\"/runs/{}\">run {}</a>", id.0, id.0)), "{body}");
    assert!(body.contains("<code>&lt;steering&gt;</code>") && body.contains("0.722 [0.500, 0.900]"), "{body}");
    assert!(!body.contains("dev-only"), "held-out lines only");
}
