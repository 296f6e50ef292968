//! A background thread that computes only the newest of the requests queued for it: what the
//! Evaluate panel's error list and model comparison use while a slider moves. The previous
//! result stays shown until the newer one arrives; the UI thread never waits.

use crossbeam_channel::{Receiver, Sender, TryRecvError, unbounded};

/// One request: its key (what it is for) and the work.
pub trait LatestJob: Send + 'static {
    type Key: Clone + PartialEq + Send + 'static;
    type Done: Send + 'static;

    fn key(&self) -> &Self::Key;
    /// The work; `stale()` turns true when a newer request waits, and the work may then stop
    /// early with `None`.
    fn run(self, stale: &dyn Fn() -> bool) -> Option<Self::Done>;
    /// The key of a finished result.
    fn done_key(done: &Self::Done) -> &Self::Key;
}

/// The thread ends when the worker is dropped, once the request it is computing, if any, is done.
pub struct LatestWorker<J: LatestJob> {
    requests: Sender<J>,
    results: Receiver<J::Done>,
    /// The key last asked for, until its result arrives.
    pending: Option<J::Key>,
}

impl<J: LatestJob> LatestWorker<J> {
    /// Starts the thread; `ctx` is repainted when a result is ready.
    pub fn spawn(ctx: &egui::Context) -> LatestWorker<J> {
        let (requests, inbox) = unbounded::<J>();
        let (outbox, results) = unbounded::<J::Done>();
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            while let Ok(mut job) = inbox.recv() {
                // Only the newest of the queued requests is worth computing.
                while let Ok(newer) = inbox.try_recv() {
                    job = newer;
                }
                let stale = || !inbox.is_empty();
                let Some(done) = job.run(&stale) else { continue };
                if outbox.send(done).is_err() {
                    break;
                }
                ctx.request_repaint();
            }
        });
        LatestWorker { requests, results, pending: None }
    }

    /// Asks for `job`; one asked for before and not yet started is dropped. `false` when the
    /// thread is gone (it panicked): the caller starts another.
    pub fn request(&mut self, job: J) -> bool {
        let key = job.key().clone();
        let sent = self.requests.send(job).is_ok();
        self.pending = sent.then_some(key);
        sent
    }

    /// The key asked for whose result has not arrived yet.
    pub fn pending(&self) -> Option<&J::Key> {
        self.pending.as_ref()
    }

    /// The newest result that has arrived since the last call, if any (older ones are dropped).
    pub fn poll(&mut self) -> Option<J::Done> {
        let mut newest = None;
        loop {
            match self.results.try_recv() {
                Ok(done) => newest = Some(done),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        if let Some(done) = &newest
            && self.pending.as_ref() == Some(J::done_key(done))
        {
            self.pending = None;
        }
        newest
    }

    /// Forgets the pending request (a new evaluation replaced the one it was for).
    pub fn forget_pending(&mut self) {
        self.pending = None;
    }
}
