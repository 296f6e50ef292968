//! Background jobs: work that would freeze the window (loading, detecting, evaluating) runs on
//! its own thread; the status bar lists what is running with its progress and a cancel button.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError, bounded};

/// Progress and cancellation shared between a job's thread and the UI.
#[derive(Debug, Default)]
pub struct Progress {
    done: AtomicUsize,
    total: AtomicUsize,
    cancelled: AtomicBool,
    finished: AtomicBool,
}

impl Progress {
    pub fn set_total(&self, total: usize) {
        self.total.store(total, Ordering::Relaxed);
    }

    pub fn advance(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Jobs check this between items and stop early when it is set.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// `(done, total)`; total 0 while unknown.
    pub fn counts(&self) -> (usize, usize) {
        (self.done.load(Ordering::Relaxed), self.total.load(Ordering::Relaxed))
    }

    fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Relaxed)
    }
}

/// Sets `finished` and wakes the UI when the job's thread ends.
struct Finished {
    progress: Arc<Progress>,
    ctx: egui::Context,
}

impl Drop for Finished {
    fn drop(&mut self) {
        self.progress.finished.store(true, Ordering::Relaxed);
        self.ctx.request_repaint();
    }
}

/// A running job as the status bar shows it.
struct Entry {
    label: String,
    progress: Arc<Progress>,
    started: Instant,
}

impl Entry {
    /// Time left at the rate so far; `None` before the first item or without a total.
    fn remaining(&self) -> Option<Duration> {
        let (done, total) = self.progress.counts();
        if done == 0 || total <= done {
            return None;
        }
        Some(self.started.elapsed().mul_f64((total - done) as f64 / done as f64))
    }
}

/// "40 s", "3 min", "2 h 5 min": an estimate needs no more precision.
pub fn format_remaining(left: Duration) -> String {
    let seconds = left.as_secs();
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds.div_ceil(60)),
        _ => format!("{} h {} min", seconds / 3600, (seconds % 3600) / 60),
    }
}

/// The list of running jobs, shared by every panel (cloning shares the list).
#[derive(Clone, Default)]
pub struct Jobs {
    entries: Arc<Mutex<Vec<Entry>>>,
}

/// The result of a job, delivered once.
pub struct Task<T> {
    pub progress: Arc<Progress>,
    result: Receiver<T>,
}

impl<T> Task<T> {
    /// The result when the job has ended; `None` while it runs. A job whose thread panicked
    /// yields `None` forever, but stops counting as running and leaves the status bar.
    pub fn poll(&self) -> Option<T> {
        match self.result.try_recv() {
            Ok(value) => Some(value),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => None,
        }
    }

    pub fn is_running(&self) -> bool {
        !self.progress.is_finished()
    }
}

impl Jobs {
    /// Runs `work` on a new thread, listed as `label` until it returns; the window repaints when
    /// it is done so the result shows without waiting for input.
    pub fn spawn<T: Send + 'static>(
        &self,
        label: impl Into<String>,
        ctx: &egui::Context,
        work: impl FnOnce(&Progress) -> T + Send + 'static,
    ) -> Task<T> {
        let progress = Arc::new(Progress::default());
        let (tx, result) = bounded(1);
        self.lock().push(Entry { label: label.into(), progress: progress.clone(), started: Instant::now() });
        let thread_progress = progress.clone();
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            // Marks the job finished however the thread ends, a panic included.
            let _finished = Finished { progress: thread_progress.clone(), ctx };
            let value = work(&thread_progress);
            let _ = tx.send(value);
        });
        Task { progress, result }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The jobs still running (finished ones are dropped from the list).
    fn running_entries(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        let mut entries = self.lock();
        entries.retain(|e| !e.progress.is_finished());
        entries
    }

    /// Labels of the jobs still running.
    #[cfg(test)]
    fn running(&self) -> Vec<String> {
        self.running_entries().iter().map(|e| e.label.clone()).collect()
    }

    /// The first running job with a known total, as the window title shows it in the
    /// background: "42% Detecting … (1 min left)"; `None` with no such job.
    pub fn summary(&self) -> Option<String> {
        let entries = self.running_entries();
        let entry = entries.iter().find(|e| e.progress.counts().1 > 0)?;
        let (done, total) = entry.progress.counts();
        let percent = (100 * done / total).min(100);
        let left = entry.remaining().map(|d| format!(" ({} left)", format_remaining(d))).unwrap_or_default();
        Some(format!("{percent}% {}{left}", entry.label))
    }

    /// One line per running job: label, progress bar, time left, cancel button.
    pub fn status_bar_ui(&self, ui: &mut egui::Ui) {
        let entries = self.running_entries();
        if entries.is_empty() {
            ui.weak("No background jobs");
            return;
        }
        for entry in entries.iter() {
            ui.label(&entry.label);
            let (done, total) = entry.progress.counts();
            let bar = if total > 0 {
                egui::ProgressBar::new(done as f32 / total as f32).text(format!("{done}/{total}"))
            } else {
                egui::ProgressBar::new(0.0).animate(true)
            };
            ui.add(bar.desired_width(140.0));
            if let Some(left) = entry.remaining() {
                ui.weak(format!("{} left", format_remaining(left)));
            }
            if entry.progress.is_cancelled() {
                ui.weak("cancelling…");
            } else if ui.small_button("Cancel").clicked() {
                entry.progress.cancel();
            }
            ui.separator();
        }
        ui.ctx().request_repaint_after(std::time::Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_the_first_job_with_a_total_and_its_estimate() {
        let jobs = Jobs::default();
        let ctx = egui::Context::default();
        let (go, wait) = bounded::<()>(0);
        let spinner = jobs.spawn("Opening", &ctx, |_| ());
        let counted = jobs.spawn("Detecting", &ctx, move |progress| {
            progress.set_total(4);
            progress.advance();
            let _ = wait.recv();
        });
        while counted.progress.counts() != (1, 4) || spinner.is_running() {
            std::thread::yield_now();
        }
        let summary = jobs.summary().expect("a job with a total");
        assert!(summary.starts_with("25% Detecting ("), "{summary}");
        assert!(summary.ends_with(" left)"), "{summary}");
        go.send(()).unwrap();
        while counted.is_running() {
            std::thread::yield_now();
        }
        assert_eq!(jobs.summary(), None);
    }

    #[test]
    fn estimates_read_in_the_unit_that_matters() {
        assert_eq!(format_remaining(Duration::from_secs(40)), "40 s");
        assert_eq!(format_remaining(Duration::from_secs(121)), "3 min");
        assert_eq!(format_remaining(Duration::from_secs(7500)), "2 h 5 min");
    }

    #[test]
    fn a_job_delivers_its_result_and_leaves_the_list() {
        let jobs = Jobs::default();
        let ctx = egui::Context::default();
        let task = jobs.spawn("sum", &ctx, |progress| {
            progress.set_total(3);
            (0..3).inspect(|_| progress.advance()).sum::<i32>()
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let value = loop {
            if let Some(v) = task.poll() {
                break v;
            }
            assert!(std::time::Instant::now() < deadline, "job never finished");
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(value, 3);
        while task.is_running() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(jobs.running().is_empty());
        assert_eq!(task.progress.counts(), (3, 3));
    }

    #[test]
    fn a_panicking_job_stops_running_and_leaves_the_list() {
        let jobs = Jobs::default();
        let ctx = egui::Context::default();
        let task: Task<()> = jobs.spawn("doomed", &ctx, |_| panic!("a bug in a job"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while task.is_running() {
            assert!(std::time::Instant::now() < deadline, "the job still counts as running");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(task.poll().is_none());
        assert!(jobs.running().is_empty());
    }

    #[test]
    fn cancelling_stops_a_job_between_items() {
        let jobs = Jobs::default();
        let ctx = egui::Context::default();
        let (go_tx, go) = bounded::<()>(0);
        let task = jobs.spawn("loop", &ctx, move |progress| {
            let _ = go.recv();
            let mut n = 0;
            while !progress.is_cancelled() && n < 1_000_000_000u64 {
                n += 1;
                std::hint::black_box(n);
            }
            n
        });
        assert_eq!(jobs.running(), vec!["loop".to_string()]);
        task.progress.cancel();
        go_tx.send(()).unwrap();
        let value = loop {
            if let Some(v) = task.poll() {
                break v;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert!(value < 1_000_000_000);
    }
}
