//! Independent jobs on a few threads: each thread takes the next job index until none is left.
//!
//! Invariants: every job runs at most once; results come back in job order whatever order the
//! jobs finished in, so the caller's output does not depend on `threads`; after the first
//! failure no new job starts (running ones finish) and that failure is returned.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Runs `job(0..count)` on `threads` threads (at least one, at most `count`).
pub fn run_jobs<T: Send, E: Send>(
    count: usize,
    threads: usize,
    job: impl Fn(usize) -> Result<T, E> + Sync,
) -> Result<Vec<T>, E> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..count).map(|_| None).collect());
    let failure: Mutex<Option<E>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, count.max(1)) {
            scope.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= count {
                        break;
                    }
                    match job(i) {
                        Ok(value) => results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(value),
                        Err(e) => {
                            stop.store(true, Ordering::SeqCst);
                            failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    Ok(results.into_inner().unwrap_or_else(|p| p.into_inner()).into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn results_come_back_in_job_order_for_any_thread_count() {
        // Later jobs finish first (shorter sleeps), yet the order is the jobs'.
        let job = |i: usize| -> Result<usize, ()> {
            std::thread::sleep(Duration::from_millis((10 - i as u64) * 3));
            Ok(i * i)
        };
        let sequential = run_jobs(10, 1, job).unwrap();
        assert_eq!(sequential, (0..10).map(|i| i * i).collect::<Vec<_>>());
        for threads in [2, 3, 16] {
            assert_eq!(run_jobs(10, threads, job).unwrap(), sequential);
        }
        assert_eq!(run_jobs(0, 4, job).unwrap(), Vec::<usize>::new());
    }

    #[test]
    fn every_job_runs_once_and_they_overlap() {
        let ran = Mutex::new(Vec::new());
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        run_jobs(8, 4, |i| -> Result<(), ()> {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(20));
            running.fetch_sub(1, Ordering::SeqCst);
            ran.lock().unwrap().push(i);
            Ok(())
        })
        .unwrap();
        let mut ran = ran.into_inner().unwrap();
        ran.sort();
        assert_eq!(ran, (0..8).collect::<Vec<_>>());
        assert!(most.load(Ordering::SeqCst) > 1, "jobs never ran at the same time");
    }

    #[test]
    fn a_failure_stops_new_jobs_and_is_returned() {
        let started = AtomicUsize::new(0);
        let out = run_jobs(100, 2, |i| {
            started.fetch_add(1, Ordering::SeqCst);
            if i == 3 { Err(format!("job {i} failed")) } else { Ok(i) }
        });
        assert_eq!(out, Err("job 3 failed".to_string()));
        // Only the jobs already taken when job 3 failed can still start: far fewer than 100.
        assert!(started.load(Ordering::SeqCst) < 10, "{} jobs started", started.load(Ordering::SeqCst));
    }
}
