//! Benchmark (not a timed test): the runs table of a store with 1000 runs, over real HTTP.
//!
//! Builds a scratch store of 1000 finished runs, each with a realistic summary (~20 KB of JSON:
//! per-seed metrics, aggregates, a verdict with checks) and 300 metric samples, then times
//! `GET /` (the full page, every run listed), the table fragment the page polls, and `/api/runs`;
//! prints the median and the 90th percentile of 30 requests each. Target: median < 200 ms.
//!
//! `cargo bench --workspace --bench runs_table` (or with `-- 5000` for another run count).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use mesalab_serve::{Options, Server};
use mesalab_store::{MetricRow, NewRun, RunOutcome, Store};
use serde_json::json;

fn summary(i: usize) -> serde_json::Value {
    let metrics: serde_json::Map<String, serde_json::Value> =
        (0..30).map(|k| (format!("metric_{k}"), json!(0.1 * k as f64 + i as f64 * 1e-4))).collect();
    let aggregate: serde_json::Map<String, serde_json::Value> = (0..30)
        .map(|k| (format!("metric_{k}"), json!({ "mean": 0.5, "min": 0.4, "max": 0.6, "std": 0.05, "n": 3 })))
        .collect();
    json!({
        "experiment": "icl-gd",
        "seeds": [0, 1, 2],
        "per_seed": (0..3).map(|s| { let mut m = metrics.clone(); m.insert("seed".into(), json!(s)); m }).collect::<Vec<_>>(),
        "aggregate": aggregate,
        "baselines": (0..12).map(|k| (format!("baseline {k}"), json!(0.2 + k as f64))).collect::<serde_json::Map<_, _>>(),
        "verdict": {
            "claim": "implements one step of gradient descent",
            "answer": if i.is_multiple_of(3) { "no" } else { "yes" },
            "holds": !i.is_multiple_of(3),
            "compared_with": ["one-step GD", "OLS"],
            "checks": (0..4).map(|k| json!({
                "name": format!("check {k}"), "value": 1.0 + k as f64 * 0.01, "threshold": "≤ 1.01",
                "bound": { "at_most": 1.01 }, "aggregation": "worst_seed", "worst_seed": 2, "pass": k < 2
            })).collect::<Vec<_>>(),
        },
        "inside": { "probe_test_r2": (0..40).map(|k| (format!("target {k}"), json!({"layer 0": {"mean": 0.9}, "layer 1": {"mean": 0.8}}))).collect::<serde_json::Map<_, _>>() },
    })
}

fn get(addr: SocketAddr, path: &str) -> (u16, usize) {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut body = Vec::new();
    s.read_to_end(&mut body).unwrap();
    let status = String::from_utf8_lossy(&body[..12.min(body.len())]).split(' ').nth(1).and_then(|c| c.parse().ok());
    (status.unwrap_or(0), body.len())
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1000);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("runs/mesalab.sqlite");
    let store = Store::open(&path).unwrap();
    let t = Instant::now();
    for i in 0..n {
        // Every tenth run in a sweep directory, so grouping has work to do.
        let dir = if i % 10 == 0 {
            tmp.path().join(format!("sweeps/s{}/p{i}", i / 100))
        } else {
            tmp.path().join(format!("runs/icl-gd-{i}"))
        };
        let id = store
            .begin_run(&NewRun {
                experiment: ["icl-gd", "coin-corridor", "cheese-maze"][i % 3].into(),
                config_toml: format!("experiment = \"icl-gd\"\n[train]\nsteps = {}\n", 100 + i),
                seeds: vec![0, 1, 2],
                code_revision: Some("abc1234".into()),
                run_dir: dir,
                quick: i % 2 == 0,
            })
            .unwrap();
        let rows: Vec<MetricRow> = (0..100)
            .flat_map(|s| {
                (0..3u64).map(move |seed| MetricRow::new(Some(seed), s * 20, "train_loss", 1.0 / (1.0 + s as f64)))
            })
            .collect();
        store.log_metrics(id, &rows).unwrap();
        store.put_json(id, "summary", &summary(i)).unwrap();
        store.finish_run(id, RunOutcome::Finished).unwrap();
    }
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!("store: {n} runs, {:.1} MB, built in {:.1} s", bytes as f64 / 1e6, t.elapsed().as_secs_f64());

    // The store query alone (one read-only handle), to split the page's time.
    let ro = Store::open_read_only(&path).unwrap();
    let mut ms: Vec<f64> = (0..15)
        .map(|_| {
            let t = Instant::now();
            assert_eq!(ro.run_overviews().unwrap().len(), n);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    println!("{:24} median {:7.1} ms", "store.run_overviews()", ms[ms.len() / 2]);

    let server = Server::bind(&Options { port: 0, poll: Duration::from_millis(500), ..Options::new(path) }).unwrap();
    let addr = server.addr();
    std::thread::spawn(move || server.run());

    for (label, path) in
        [("GET / (runs page)", "/"), ("GET /fragments/runs", "/fragments/runs"), ("GET /api/runs", "/api/runs")]
    {
        let (status, size) = get(addr, path); // warm-up
        assert_eq!(status, 200, "{path}");
        let mut ms: Vec<f64> = (0..30)
            .map(|_| {
                let t = Instant::now();
                let (status, _) = get(addr, path);
                assert_eq!(status, 200);
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        println!(
            "{label:24} median {:7.1} ms   p90 {:7.1} ms   min {:7.1} ms   ({:.0} KB)",
            ms[ms.len() / 2],
            ms[ms.len() * 9 / 10],
            ms[0],
            size as f64 / 1e3
        );
    }
}
