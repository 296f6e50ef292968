//! Background jobs: work that would freeze the window (loading, detecting, evaluating) runs on
//! its own thread; the status bar lists what is running with its progress and a cancel button.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
        self.lock().push(Entry { label: label.into(), progress: progress.clone() });
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

    /// One line per running job: label, progress bar, cancel button.
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
