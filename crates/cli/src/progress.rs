//! Progress bars for long phases (training, evaluation); hidden when stdout is not a terminal,
//! where a one-line note per finished phase goes to stderr instead.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use mesalab_experiments::Progress;
use std::cell::{OnceCell, RefCell};
use std::time::Instant;

pub struct Bars {
    interactive: bool,
    current: RefCell<Option<(ProgressBar, String, Instant)>>,
    /// Several jobs at once (`demo --jobs`): their bars stack in one display, each label
    /// prefixed with the job's name (none when empty).
    shared: Option<(MultiProgress, String)>,
    /// The display of [`Progress::job`] bars when this one is not in a shared display already.
    jobs: OnceCell<MultiProgress>,
}

impl Bars {
    pub fn new(interactive: bool) -> Self {
        Self { interactive, current: RefCell::new(None), shared: None, jobs: OnceCell::new() }
    }

    /// A job's bars inside `multi`, labelled `job: phase`.
    pub fn in_multi(interactive: bool, multi: MultiProgress, job: &str) -> Self {
        Self { interactive, current: RefCell::new(None), shared: Some((multi, job.to_string())), jobs: OnceCell::new() }
    }
}

impl Progress for Bars {
    fn start(&self, label: &str, total: u64) {
        self.finish();
        let bar = if self.interactive {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template("{prefix:>26} [{bar:32}] {pos}/{len} {elapsed_precise} eta {eta} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar
        } else {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden())
        };
        let (bar, label) = match &self.shared {
            Some((multi, job)) => {
                let label = if job.is_empty() { label.to_string() } else { format!("{job}: {label}") };
                (if self.interactive { multi.add(bar) } else { bar }, label)
            }
            None => (bar, label.to_string()),
        };
        bar.set_prefix(label.clone());
        *self.current.borrow_mut() = Some((bar, label, Instant::now()));
    }

    fn advance(&self, units: u64) {
        if let Some((bar, _, _)) = self.current.borrow().as_ref() {
            bar.inc(units);
        }
    }

    fn message(&self, message: &str) {
        if let Some((bar, _, _)) = self.current.borrow().as_ref() {
            bar.set_message(message.to_string());
        }
    }

    fn job(&self) -> Box<dyn Progress + Send> {
        let (multi, job) = match &self.shared {
            Some((multi, job)) => (multi.clone(), job.clone()),
            None => (self.jobs.get_or_init(MultiProgress::new).clone(), String::new()),
        };
        Box::new(Bars::in_multi(self.interactive, multi, &job))
    }

    fn finish(&self) {
        if let Some((bar, label, started)) = self.current.borrow_mut().take() {
            bar.finish_and_clear();
            if !self.interactive {
                let msg = bar.message();
                let sep = if msg.is_empty() { "" } else { ", " };
                eprintln!("  {label}: done in {:.1} s{sep}{msg}", started.elapsed().as_secs_f64());
            }
        }
    }
}
