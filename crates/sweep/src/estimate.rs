//! Time and memory estimates for a sweep, always from something measured, and saying what.
//!
//! Sources, best first: points of this sweep that finished (their `attempt.json`: wall time and
//! peak RSS); one point run now (`sweep plan --calibrate`); a finished run in a store with the same
//! resolved config (wall time only: the store records no memory), or failing that of the same
//! experiment (a rough guide, said so). Without any, there is no estimate, and the plan says so.

use mesalab_store::{RunStatus, Store};

use crate::local::median;
use crate::sweep::{Attempt, PointState, Sweep};

/// Per-point cost and where it comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub per_point_s: f64,
    pub peak_rss_kib: Option<u64>,
    pub basis: String,
}

/// From the finished points of `sweep`: median wall time, largest peak RSS.
pub fn from_sweep(sweep: &Sweep) -> Option<Estimate> {
    let mut walls = Vec::new();
    let mut rss: Option<u64> = None;
    for p in &sweep.plan.points {
        if let PointState::Finished { wall_s: Some(w), peak_rss_kib, .. } = sweep.state(&p.key, false) {
            walls.push(w);
            rss = rss.max(peak_rss_kib);
        }
    }
    let m = median(&walls)?;
    Some(Estimate {
        per_point_s: m,
        peak_rss_kib: rss,
        basis: format!("{} finished point(s) of this sweep: median wall time, largest peak RSS", walls.len()),
    })
}

/// From one attempt just run to calibrate.
pub fn from_attempt(a: &Attempt, what: &str) -> Option<Estimate> {
    Some(Estimate { per_point_s: a.wall_s?, peak_rss_kib: a.peak_rss_kib, basis: format!("running {what} once now") })
}

/// From a finished run in `store`: one with exactly `resolved_toml` if any, else the newest of the
/// same experiment and quick flag.
pub fn from_store(store: &Store, experiment: &str, resolved_toml: &str, quick: bool) -> Option<Estimate> {
    let runs = store.runs().ok()?;
    let finished = |r: &&mesalab_store::RunRecord| r.status == RunStatus::Finished && r.ended_at_ms.is_some();
    let wall =
        |r: &mesalab_store::RunRecord| (r.ended_at_ms.unwrap_or(r.started_at_ms) - r.started_at_ms) as f64 / 1000.0;
    // Runs cover several seeds; a point runs one.
    let per_seed = |r: &mesalab_store::RunRecord| wall(r) / r.seeds.len().max(1) as f64;
    if let Some(r) = runs.iter().filter(finished).find(|r| r.config_toml == resolved_toml) {
        return Some(Estimate {
            per_point_s: per_seed(r),
            peak_rss_kib: None,
            basis: format!(
                "run {} in {} with the same resolved config: its wall time per seed",
                r.id,
                store.path().display()
            ),
        });
    }
    let r = runs.iter().filter(finished).find(|r| r.experiment == experiment && r.quick == quick)?;
    Some(Estimate {
        per_point_s: per_seed(r),
        peak_rss_kib: None,
        basis: format!(
            "run {} of {experiment} in {}: its wall time per seed, with a different config, so only a rough guide",
            r.id,
            store.path().display()
        ),
    })
}

/// Slurm `--time` (`M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`) in seconds.
pub fn slurm_time_s(t: &str) -> Option<f64> {
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) => (d.parse::<f64>().ok()?, r),
        None => (0.0, t),
    };
    let parts: Vec<f64> = rest.split(':').map(|p| p.parse::<f64>().ok()).collect::<Option<_>>()?;
    let with_days = t.contains('-');
    let s = match (with_days, parts.as_slice()) {
        (false, [m]) => m * 60.0,
        (false, [m, s]) => m * 60.0 + s,
        (_, [h, m, s]) => h * 3600.0 + m * 60.0 + s,
        (true, [h]) => h * 3600.0,
        (true, [h, m]) => h * 3600.0 + m * 60.0,
        _ => return None,
    };
    Some(days * 86_400.0 + s)
}

/// Slurm `--mem` (`500M`, `2G`, plain number = MiB) in KiB.
pub fn slurm_mem_kib(m: &str) -> Option<u64> {
    let (digits, unit) = m.split_at(m.find(|c: char| !c.is_ascii_digit()).unwrap_or(m.len()));
    let n: u64 = digits.parse().ok()?;
    let factor = match unit {
        "K" => 1,
        "" | "M" => 1024,
        "G" => 1024 * 1024,
        "T" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// Human text for an estimate of `points` points on `workers` parallel slots.
pub fn describe(e: &Estimate, points: usize, workers: usize) -> Vec<String> {
    let waves = points.div_ceil(workers.max(1));
    let mut lines = vec![
        format!("time per point: {:.1} s (based on {})", e.per_point_s, e.basis),
        format!(
            "sweep wall time: ~{:.0} s ({points} point(s) in {waves} wave(s) of up to {workers} at once; each point's own threads share the cores)",
            e.per_point_s * waves as f64
        ),
    ];
    match e.peak_rss_kib {
        Some(k) => lines.push(format!(
            "memory: {:.0} MiB peak per point, ~{:.0} MiB with {workers} at once",
            k as f64 / 1024.0,
            k as f64 / 1024.0 * workers.min(points).max(1) as f64
        )),
        None => lines
            .push("memory: not known from this source (the store records no memory; `--calibrate` measures it)".into()),
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_sizes() {
        assert_eq!(slurm_time_s("10"), Some(600.0));
        assert_eq!(slurm_time_s("00:10:00"), Some(600.0));
        assert_eq!(slurm_time_s("1-00:00:01"), Some(86_401.0));
        assert_eq!(slurm_time_s("2-3"), Some(2.0 * 86_400.0 + 3.0 * 3600.0));
        assert_eq!(slurm_time_s("ten"), None);
        assert_eq!(slurm_mem_kib("2G"), Some(2 * 1024 * 1024));
        assert_eq!(slurm_mem_kib("500"), Some(500 * 1024));
        assert_eq!(slurm_mem_kib("5X"), None);
    }
}
