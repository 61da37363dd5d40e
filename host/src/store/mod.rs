//! Persistence of runs in an embedded database (redb) in the data folder:
//! each run's summary, the DAG text it was submitted with, its events in
//! order and its final record.
//!
//! Writes go through one writer thread that commits whatever has queued up
//! in a single durable transaction (group commit), so many small writes cost
//! one `fsync` between them. A write is reported done only once committed.
//!
//! When a commit fails for want of disk space (or any I/O error), redb
//! refuses every later write until the database is opened again: the writer
//! then reports the store unwritable, fails queued writes at once rather than
//! holding their callers, opens the database again and tries a small commit
//! every second, and takes writes again once one goes through.

mod meta;
pub mod redis;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{mpsc, oneshot};

pub use meta::{Api, RunMeta, RunOptions};

use crate::engine::RunRecord;

/// Run id → [`RunMeta`] as JSON.
const RUNS: TableDefinition<&str, &[u8]> = TableDefinition::new("runs");
/// Run id → the DAG text as submitted.
const SOURCES: TableDefinition<&str, &str> = TableDefinition::new("sources");
/// (run id, sequence number of the first event in the row) → consecutive
/// events of the run as JSON, one per line. Events committed together share
/// a row, so a short run costs one or two B-tree inserts, not one per event.
const EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("events");
/// Run id → the final [`RunRecord`] as JSON.
const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");

/// How many writes may wait for the writer before writers wait in turn.
const QUEUE: usize = 16 * 1024;
/// How many queued writes go into one transaction at most.
const GROUP: usize = 4096;
/// How long the writer waits for more writes when several came at once.
const LINGER: Duration = Duration::from_micros(1000);
/// How often an unwritable store tries again.
const RETRY: Duration = Duration::from_secs(1);
/// How long the writer waits for readers to let go of a database it must
/// open again.
const LET_GO: Duration = Duration::from_secs(5);
/// A key the writer writes to learn whether the store takes writes again.
const PROBE: TableDefinition<&str, &[u8]> = TableDefinition::new("probe");

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: redb::Error,
    },
    #[error("database error: {0}")]
    Database(#[from] redb::Error),
    #[error("a stored {what} is corrupt: {message}")]
    Corrupt { what: &'static str, message: String },
    #[error("the store's writer has stopped")]
    Stopped,
    /// Redis failed or refused a command.
    #[error("redis: {0}")]
    Redis(String),
    /// Writes fail: the disk is full (`full`) or the database's file cannot
    /// be written; the store takes writes again by itself once it can.
    #[error("the store cannot write now: {reason}")]
    Unwritable { reason: String, full: bool },
    /// The database is being opened again after writes failed: nothing can
    /// be read until it is.
    #[error("the store is being opened again ({reason})")]
    Reopening { reason: String },
    /// Another leader schedules the run now: this one must stop it.
    #[error("run `{run}` is scheduled by another leader now (its lease was lost)")]
    LeaseLost { run: String },
}

impl StoreError {
    fn db(e: impl Into<redb::Error>) -> Self {
        StoreError::Database(e.into())
    }
}

/// One change to the store.
#[derive(Debug)]
pub enum Write {
    /// A new run: its summary and DAG text.
    Submit {
        meta: Vec<u8>,
        source: String,
        id: String,
    },
    /// The summary of a run, replaced.
    Meta { id: String, meta: Vec<u8> },
    /// One event of a run, as one line of JSON (no newline in it). A run's
    /// events must be written in `seq` order, from 1, with no gaps.
    Event {
        run: String,
        seq: u64,
        event: Vec<u8>,
    },
    /// The final record of a run.
    Record { id: String, record: Vec<u8> },
}

impl Write {
    /// A new run.
    pub fn submit(meta: &RunMeta, source: &str) -> Self {
        Write::Submit {
            id: meta.id.clone(),
            meta: meta.to_json(),
            source: source.to_owned(),
        }
    }

    /// A run's summary, replaced.
    pub fn meta(meta: &RunMeta) -> Self {
        Write::Meta {
            id: meta.id.clone(),
            meta: meta.to_json(),
        }
    }

    /// A run's final record.
    pub fn record(record: &RunRecord) -> Self {
        Write::Record {
            id: record.id.clone(),
            // A record is plain data; serializing it cannot fail.
            record: serde_json::to_vec(record).unwrap_or_default(),
        }
    }
}

/// Called on the writer thread once a write is committed (or failed).
pub type Then = Box<dyn FnOnce(Result<(), Arc<StoreError>>) + Send>;

struct Job {
    writes: Vec<Write>,
    then: Then,
}

/// The database, shared: cheap to clone.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Job>,
    path: Arc<Path>,
}

/// What the writer and the readers share.
struct Shared {
    /// `None` while the writer opens the database again.
    db: RwLock<Option<Arc<Database>>>,
    /// Why writes fail now; `None` while they go through.
    trouble: Mutex<Option<StoreError>>,
}

impl Shared {
    fn db(&self) -> Result<Arc<Database>, StoreError> {
        let db = self.db.read().unwrap_or_else(PoisonError::into_inner);
        db.clone().ok_or_else(|| StoreError::Reopening {
            reason: self.unwritable().to_string(),
        })
    }

    fn unwritable(&self) -> StoreError {
        let trouble = self.trouble.lock().unwrap_or_else(PoisonError::into_inner);
        match &*trouble {
            Some(StoreError::Unwritable { reason, full }) => StoreError::Unwritable {
                reason: reason.clone(),
                full: *full,
            },
            _ => StoreError::Unwritable {
                reason: "the database is being opened again".into(),
                full: false,
            },
        }
    }

    fn set_trouble(&self, trouble: Option<StoreError>) {
        *self.trouble.lock().unwrap_or_else(PoisonError::into_inner) = trouble;
    }

    fn troubled(&self) -> bool {
        self.trouble
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (or creates) the database at `path` and starts its writer.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: path.to_owned(),
                source: redb::Error::Io(e),
            })?;
        }
        let db = Database::create(path).map_err(|e| StoreError::Open {
            path: path.to_owned(),
            source: e.into(),
        })?;
        // Make the tables exist, so that readers never see them missing.
        let txn = db.begin_write().map_err(StoreError::db)?;
        txn.open_table(RUNS).map_err(StoreError::db)?;
        txn.open_table(SOURCES).map_err(StoreError::db)?;
        txn.open_table(EVENTS).map_err(StoreError::db)?;
        txn.open_table(RECORDS).map_err(StoreError::db)?;
        txn.commit().map_err(StoreError::db)?;

        let shared = Arc::new(Shared {
            db: RwLock::new(Some(Arc::new(db))),
            trouble: Mutex::new(None),
        });
        let (jobs, rx) = mpsc::channel(QUEUE);
        let writer_shared = Arc::clone(&shared);
        let writer_path = path.to_owned();
        std::thread::Builder::new()
            .name("drover-store".into())
            .spawn(move || writer(&writer_shared, &writer_path, rx))
            .map_err(|e| StoreError::Open {
                path: path.to_owned(),
                source: redb::Error::Io(e),
            })?;
        Ok(Store {
            shared,
            jobs,
            path: path.into(),
        })
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the writer thread still takes writes.
    pub fn writer_alive(&self) -> bool {
        !self.jobs.is_closed()
    }

    /// Why writes fail now, if they do (a full disk, say).
    pub fn unwritable(&self) -> Option<StoreError> {
        self.shared.troubled().then(|| self.shared.unwritable())
    }

    /// Queues `writes` (committed together, in order after every write
    /// queued before) and calls `then` on the writer thread once they are
    /// durable. Waits only while the queue is full.
    pub async fn write_then(&self, writes: Vec<Write>, then: Then) -> Result<(), StoreError> {
        self.jobs
            .send(Job { writes, then })
            .await
            .map_err(|_| StoreError::Stopped)
    }

    /// Writes `writes` and waits until they are durable.
    pub async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        let then: Then = Box::new(move |result| {
            let _ = tx.send(result);
        });
        self.write_then(writes, then).await?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(copy(&e)),
            Err(_) => Err(StoreError::Stopped),
        }
    }

    /// The summary of run `id`.
    pub fn run(&self, id: &str) -> Result<Option<RunMeta>, StoreError> {
        let txn = self.shared.db()?.begin_read().map_err(StoreError::db)?;
        let table = txn.open_table(RUNS).map_err(StoreError::db)?;
        let Some(bytes) = table.get(id).map_err(StoreError::db)? else {
            return Ok(None);
        };
        RunMeta::from_json(bytes.value()).map(Some)
    }

    /// Up to `limit` run summaries, newest first, starting after run
    /// `before` (exclusive) and keeping those `keep` accepts.
    pub fn runs(
        &self,
        before: Option<&str>,
        limit: usize,
        keep: impl Fn(&RunMeta) -> bool,
    ) -> Result<Vec<RunMeta>, StoreError> {
        let txn = self.shared.db()?.begin_read().map_err(StoreError::db)?;
        let table = txn.open_table(RUNS).map_err(StoreError::db)?;
        let range = match before {
            Some(before) => table.range::<&str>(..before),
            None => table.range::<&str>(..),
        }
        .map_err(StoreError::db)?;
        let mut found = Vec::new();
        for entry in range.rev() {
            if found.len() >= limit {
                break;
            }
            let (_, bytes) = entry.map_err(StoreError::db)?;
            let meta = RunMeta::from_json(bytes.value())?;
            if keep(&meta) {
                found.push(meta);
            }
        }
        Ok(found)
    }

    /// Every run not finished, oldest first: the runs to carry on after a restart.
    pub fn unfinished(&self) -> Result<Vec<RunMeta>, StoreError> {
        let txn = self.shared.db()?.begin_read().map_err(StoreError::db)?;
        let table = txn.open_table(RUNS).map_err(StoreError::db)?;
        let mut found = Vec::new();
        for entry in table.iter().map_err(StoreError::db)? {
            let (_, bytes) = entry.map_err(StoreError::db)?;
            let meta = RunMeta::from_json(bytes.value())?;
            if meta.finished_at.is_none() {
                found.push(meta);
            }
        }
        Ok(found)
    }

    /// The DAG text run `id` was submitted with.
    pub fn source(&self, id: &str) -> Result<Option<String>, StoreError> {
        let txn = self.shared.db()?.begin_read().map_err(StoreError::db)?;
        let table = txn.open_table(SOURCES).map_err(StoreError::db)?;
        Ok(table
            .get(id)
            .map_err(StoreError::db)?
            .map(|text| text.value().to_owned()))
    }

    /// The final record of run `id`, once it has one.
    pub fn record(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        let txn = self.shared.db()?.begin_read().map_err(StoreError::db)?;
        let table = txn.open_table(RECORDS).map_err(StoreError::db)?;
        let Some(bytes) = table.get(id).map_err(StoreError::db)? else {
            return Ok(None);
        };
        serde_json::from_slice(bytes.value())
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                what: "run record",
                message: e.to_string(),
            })
    }

    /// Up to `limit` events of run `run` with sequence numbers above
    /// `after`, in order, as (sequence number, JSON).
    pub fn events(
        &self,
        run: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let txn = self.shared.db()?.begin_read().map_err(StoreError::db)?;
        let table = txn.open_table(EVENTS).map_err(StoreError::db)?;
        let Some(wanted) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        // The row holding event `wanted` starts at or before it.
        let start = table
            .range((run, 0)..=(run, wanted))
            .map_err(StoreError::db)?
            .next_back()
            .transpose()
            .map_err(StoreError::db)?
            .map_or(wanted, |(key, _)| key.value().1);
        let mut found = Vec::new();
        for entry in table
            .range((run, start)..=(run, u64::MAX))
            .map_err(StoreError::db)?
        {
            let (key, bytes) = entry.map_err(StoreError::db)?;
            let first = key.value().1;
            for (i, line) in bytes.value().split(|&b| b == b'\n').enumerate() {
                let seq = first + i as u64;
                if seq <= after {
                    continue;
                }
                if found.len() >= limit {
                    return Ok(found);
                }
                found.push((seq, line.to_vec()));
            }
        }
        Ok(found)
    }
}

/// Where runs are kept: the embedded database ([`Store`]), or Redis shared
/// by several leaders ([`redis::RedisStore`]).
#[async_trait::async_trait]
pub trait RunStore: Send + Sync + 'static {
    /// Queues `writes` (committed together, in order after every write
    /// queued before) and calls `then` once they are durable.
    async fn write_then(&self, writes: Vec<Write>, then: Then) -> Result<(), StoreError>;

    /// Writes `writes` and waits until they are durable.
    async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError>;

    /// The summary of run `id`.
    async fn run(&self, id: &str) -> Result<Option<RunMeta>, StoreError>;

    /// Up to `limit` run summaries, newest first, starting after run
    /// `before` (exclusive) and keeping those `keep` accepts.
    async fn runs(
        &self,
        before: Option<&str>,
        limit: usize,
        keep: &(dyn for<'m> Fn(&'m RunMeta) -> bool + Send + Sync),
    ) -> Result<Vec<RunMeta>, StoreError>;

    /// Every run not finished, oldest first.
    async fn unfinished(&self) -> Result<Vec<RunMeta>, StoreError>;

    /// The DAG text run `id` was submitted with.
    async fn source(&self, id: &str) -> Result<Option<String>, StoreError>;

    /// The final record of run `id`, once it has one.
    async fn record(&self, id: &str) -> Result<Option<RunRecord>, StoreError>;

    /// Up to `limit` events of run `run` after `after`, in order, as
    /// (sequence number, JSON).
    async fn events(
        &self,
        run: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
}

// redb reads are short and local: they run on the caller's thread, as the
// inherent methods do.
#[async_trait::async_trait]
impl RunStore for Store {
    async fn write_then(&self, writes: Vec<Write>, then: Then) -> Result<(), StoreError> {
        Store::write_then(self, writes, then).await
    }

    async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        Store::write(self, writes).await
    }

    async fn run(&self, id: &str) -> Result<Option<RunMeta>, StoreError> {
        Store::run(self, id)
    }

    async fn runs(
        &self,
        before: Option<&str>,
        limit: usize,
        keep: &(dyn for<'m> Fn(&'m RunMeta) -> bool + Send + Sync),
    ) -> Result<Vec<RunMeta>, StoreError> {
        Store::runs(self, before, limit, keep)
    }

    async fn unfinished(&self) -> Result<Vec<RunMeta>, StoreError> {
        Store::unfinished(self)
    }

    async fn source(&self, id: &str) -> Result<Option<String>, StoreError> {
        Store::source(self, id)
    }

    async fn record(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        Store::record(self, id)
    }

    async fn events(
        &self,
        run: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        Store::events(self, run, after, limit)
    }
}

/// The writer thread: takes every job queued, commits them in one
/// transaction, then tells each job how it went.
fn writer(shared: &Shared, path: &Path, mut jobs: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(GROUP);
    while jobs.blocking_recv().map(|job| batch.push(job)).is_some() {
        drain(&mut jobs, &mut batch);
        if batch.len() > 1 && batch.len() < GROUP / 4 {
            // Writes are arriving steadily: wait a moment for more, so that
            // one commit (one fsync: a costly exit to the hypervisor on a
            // VM) carries more of them.
            std::thread::sleep(LINGER);
            drain(&mut jobs, &mut batch);
        }
        let result = shared
            .db()
            .and_then(|db| commit(&db, &batch))
            .map_err(|e| Arc::new(trouble_of(e)));
        if let Err(e) = &result {
            tracing::error!(error = %e, writes = batch.len(), "store commit failed");
        }
        let unwritable = match &result {
            Err(e) if matches!(**e, StoreError::Unwritable { .. }) => {
                shared.set_trouble(Some(copy(e)));
                true
            }
            _ => false,
        };
        for job in batch.drain(..) {
            (job.then)(result.clone());
        }
        if unwritable && !recover(shared, path, &mut jobs) {
            break;
        }
    }
    tracing::debug!("store writer stops");
}

/// The error a failed commit stands for: [`StoreError::Unwritable`] when
/// the file could not be written (redb then needs the database opened
/// again), else the error itself.
fn trouble_of(error: StoreError) -> StoreError {
    let io = match &error {
        StoreError::Database(redb::Error::Io(io)) => Some(io),
        StoreError::Database(redb::Error::PreviousIo | redb::Error::TransactionPoisoned) => None,
        _ => return error,
    };
    let full = io.is_some_and(|io| {
        io.kind() == std::io::ErrorKind::StorageFull
            || io.kind() == std::io::ErrorKind::QuotaExceeded
            || io.raw_os_error() == Some(libc::ENOSPC)
            || io.raw_os_error() == Some(libc::EDQUOT)
    });
    StoreError::Unwritable {
        reason: match io {
            Some(io) if full => format!("the data folder's disk is full ({io})"),
            Some(io) => format!("the database cannot be written ({io})"),
            None => "an earlier write failed".into(),
        },
        full,
    }
}

/// A failed write's error as its own value: what a full disk says stays
/// that; anything else is reported as a failed write.
fn copy(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unwritable { reason, full } => StoreError::Unwritable {
            reason: reason.clone(),
            full: *full,
        },
        other => StoreError::Corrupt {
            what: "write",
            message: other.to_string(),
        },
    }
}

/// Opens the database again and waits until a small commit goes through,
/// failing every write queued meanwhile at once (a caller learns of the
/// full disk rather than waiting on it). `false` when the store is closing.
fn recover(shared: &Shared, path: &Path, jobs: &mut mpsc::Receiver<Job>) -> bool {
    let old = shared
        .db
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(old) = old {
        // Readers hold it for one read transaction at most.
        let since = Instant::now();
        while Arc::strong_count(&old) > 1 && since.elapsed() < LET_GO {
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(old);
    }
    let mut reopened: Option<Database> = None;
    loop {
        loop {
            match jobs.try_recv() {
                Ok(job) => (job.then)(Err(Arc::new(shared.unwritable()))),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return false,
            }
        }
        if reopened.is_none() {
            match Database::create(path) {
                Ok(db) => reopened = Some(db),
                Err(e) => tracing::debug!(error = %e, "the store cannot be opened again yet"),
            }
        }
        if let Some(db) = &reopened {
            match probe(db) {
                Ok(()) => {
                    *shared.db.write().unwrap_or_else(PoisonError::into_inner) =
                        reopened.take().map(Arc::new);
                    shared.set_trouble(None);
                    tracing::info!("the store takes writes again");
                    return true;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "the store still cannot write");
                    // redb refuses every write after an I/O error.
                    if matches!(trouble_of(e), StoreError::Unwritable { .. }) {
                        reopened = None;
                    }
                }
            }
        }
        std::thread::sleep(RETRY);
    }
}

/// A commit of a few kilobytes, to learn whether the disk takes writes.
fn probe(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(StoreError::db)?;
    {
        let mut table = txn.open_table(PROBE).map_err(StoreError::db)?;
        table
            .insert("probe", [0u8; 16 * 1024].as_slice())
            .map_err(StoreError::db)?;
    }
    txn.commit().map_err(StoreError::db)
}

/// Moves every queued job into `batch`, up to [`GROUP`].
fn drain(jobs: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>) {
    while batch.len() < GROUP {
        match jobs.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

fn commit(db: &Database, batch: &[Job]) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(StoreError::db)?;
    {
        let mut runs = txn.open_table(RUNS).map_err(StoreError::db)?;
        let mut sources = txn.open_table(SOURCES).map_err(StoreError::db)?;
        let mut events = txn.open_table(EVENTS).map_err(StoreError::db)?;
        let mut records = txn.open_table(RECORDS).map_err(StoreError::db)?;
        // Consecutive events of one run go into one row: (run, first seq, lines).
        let mut rows: Vec<(&str, u64, u64, Vec<u8>)> = Vec::new();
        let mut open: HashMap<&str, usize> = HashMap::new();
        for write in batch.iter().flat_map(|job| &job.writes) {
            match write {
                Write::Submit { id, meta, source } => {
                    runs.insert(id.as_str(), meta.as_slice())
                        .map_err(StoreError::db)?;
                    sources
                        .insert(id.as_str(), source.as_str())
                        .map_err(StoreError::db)?;
                }
                Write::Meta { id, meta } => {
                    runs.insert(id.as_str(), meta.as_slice())
                        .map_err(StoreError::db)?;
                }
                Write::Event { run, seq, event } => {
                    let row = open.get(run.as_str()).map(|&i| &mut rows[i]);
                    match row {
                        Some((_, _, last, lines)) if *last + 1 == *seq => {
                            lines.push(b'\n');
                            lines.extend_from_slice(event);
                            *last = *seq;
                        }
                        _ => {
                            open.insert(run.as_str(), rows.len());
                            rows.push((run.as_str(), *seq, *seq, event.clone()));
                        }
                    }
                }
                Write::Record { id, record } => {
                    records
                        .insert(id.as_str(), record.as_slice())
                        .map_err(StoreError::db)?;
                }
            }
        }
        for (run, first, _, lines) in &rows {
            events
                .insert((*run, *first), lines.as_slice())
                .map_err(StoreError::db)?;
        }
    }
    txn.commit().map_err(StoreError::db)
}

#[cfg(test)]
mod tests;
