//! The one writer of pod and container records: a thread that takes every pending change,
//! applies them in one redb transaction and commits once (group commit), then answers each
//! caller. Callers on the async threads only enqueue and await; none of them waits for an
//! fsync on a tokio worker, and concurrent RunPodSandbox calls share commits.
//!
//! Changes to one record are enqueued under that record's lock (see [`super::Store`]), so they
//! reach the database in the order they were made.

use std::sync::mpsc;
use std::thread;

use tokio::sync::oneshot;

use super::StoreError;
use super::db::{Op, RecordStore};

/// Most changes one commit takes: bounds the latency of the first caller in a burst.
const MAX_BATCH: usize = 256;

struct Job {
    op: Op,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// The handle callers enqueue changes through.
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

/// A change on its way to disk; await it to know it is durable.
pub(super) struct Pending(oneshot::Receiver<Result<(), StoreError>>);

impl Pending {
    /// Waits until the change is committed.
    pub(super) async fn durable(self) -> Result<(), StoreError> {
        self.0
            .await
            .unwrap_or_else(|_| Err(StoreError::Db("the record writer stopped".into())))
    }
}

impl Writer {
    /// Starts the writer thread over `db`.
    pub(super) fn start(db: RecordStore) -> Result<Writer, StoreError> {
        let (jobs, rx) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("record-writer".into())
            .stack_size(256 << 10)
            .spawn(move || run(db, rx))
            .map_err(|e| StoreError::Db(format!("starting the record writer: {e}")))?;
        Ok(Writer { jobs })
    }

    /// Enqueues one change; never blocks.
    pub(super) fn enqueue(&self, op: Op) -> Pending {
        let (done, wait) = oneshot::channel();
        if let Err(mpsc::SendError(job)) = self.jobs.send(Job { op, done }) {
            let _ = job
                .done
                .send(Err(StoreError::Db("the record writer stopped".into())));
        }
        Pending(wait)
    }
}

fn run(db: RecordStore, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (ops, waiters): (Vec<Op>, Vec<_>) = batch.into_iter().map(|j| (j.op, j.done)).unzip();
        let result = db.apply(&ops);
        for done in waiters {
            let _ = done.send(result.clone());
        }
    }
}
