//! The local worker: runs a handler over event sources, at least once, in order.
//!
//! Per source, the worker reads a batch after its checkpoint, hands it to the handler
//! (retrying with backoff while the store is unreachable: the records wait in the source,
//! nothing is dropped), and only once the handler returned (its writes are durable) saves the
//! new checkpoint and acknowledges the source. A crash between the two redelivers the batch;
//! the handlers' writes are idempotent, so it changes nothing.
//!
//! Lag (records a source holds beyond the checkpoint) is `exchange_worker_lag_records`.

use crate::{RollupStore, SettleStore, StoreError, Written};
use async_trait::async_trait;
use exchange_core::stream::StreamRecord;
use exchange_core::{ShardId, SymbolTable};
use exchange_shard::events::source_name;
use exchange_shard::{EventJournal, LogError};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Why a source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("{0}")]
    Other(String),
}

/// A stream of records, each at a position (1, 2, ...; gaps allowed).
#[async_trait]
pub trait EventSource: Send + Sync + 'static {
    /// Its name (`shard-0`, `accounts`): the key of checkpoints and metrics.
    fn name(&self) -> &str;

    /// Up to `max` records after position `after`, waiting up to `wait` for one (an empty batch
    /// when none came). `None` once the source is closed and everything in it was read.
    async fn read(
        &self,
        after: u64,
        max: usize,
        wait: Duration,
    ) -> Result<Option<Vec<(u64, StreamRecord)>>, SourceError>;

    /// The position of the newest record.
    fn last(&self) -> u64;

    /// Consumer `consumer` has durably handled everything up to `position`.
    fn ack(&self, consumer: &str, position: u64);
}

/// A shard's event journal as a source: its records turned into stream records with the
/// symbol table as they are read (on the worker's time, not the shard's). Its segments are let
/// go once every registered consumer acknowledged them.
pub struct JournalSource {
    name: String,
    shard: ShardId,
    symbols: Arc<SymbolTable>,
    journal: Arc<EventJournal>,
    consumers: Mutex<HashMap<String, u64>>,
}

impl JournalSource {
    /// The source over shard `shard`'s `journal`, read by `consumers` (each from its
    /// checkpoint).
    pub fn new(
        shard: ShardId,
        symbols: Arc<SymbolTable>,
        journal: Arc<EventJournal>,
        consumers: &[(&str, u64)],
    ) -> Self {
        Self {
            name: source_name(shard),
            shard,
            symbols,
            journal,
            consumers: Mutex::new(
                consumers
                    .iter()
                    .map(|(c, p)| ((*c).to_owned(), *p))
                    .collect(),
            ),
        }
    }
}

#[async_trait]
impl EventSource for JournalSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn read(
        &self,
        after: u64,
        max: usize,
        wait: Duration,
    ) -> Result<Option<Vec<(u64, StreamRecord)>>, SourceError> {
        match tokio::time::timeout(wait, self.journal.read(after, max)).await {
            Err(_) => Ok(Some(Vec::new())),
            Ok(Ok(batch)) if batch.is_empty() => Ok(None),
            Ok(batch) => Ok(Some(
                batch?
                    .into_iter()
                    .map(|(at, r)| (at, r.into_stream(self.shard, &self.symbols)))
                    .collect(),
            )),
        }
    }

    fn last(&self) -> u64 {
        self.journal.last_offset()
    }

    fn ack(&self, consumer: &str, position: u64) {
        let low = {
            let mut c = self.consumers.lock();
            c.insert(consumer.to_owned(), position);
            c.values().copied().min().unwrap_or(0)
        };
        self.journal.ack(low);
    }
}

/// Where workers keep their checkpoints: a small JSON file per consumer, replaced atomically
/// (write, sync, rename) after every batch.
pub struct Checkpoints {
    dir: PathBuf,
    saved: Mutex<HashMap<String, BTreeMap<String, u64>>>,
}

impl Checkpoints {
    /// The checkpoints under `dir`.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            saved: Mutex::new(HashMap::new()),
        })
    }

    fn path(&self, consumer: &str) -> PathBuf {
        self.dir.join(format!("{consumer}.json"))
    }

    fn load_all(&self, consumer: &str) -> std::io::Result<BTreeMap<String, u64>> {
        match std::fs::read(self.path(consumer)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e),
        }
    }

    /// Where `consumer` is in `source` (0: at the start).
    pub fn get(&self, consumer: &str, source: &str) -> std::io::Result<u64> {
        let mut saved = self.saved.lock();
        if !saved.contains_key(consumer) {
            let all = self.load_all(consumer)?;
            saved.insert(consumer.to_owned(), all);
        }
        Ok(saved[consumer].get(source).copied().unwrap_or(0))
    }

    /// Records durably that `consumer` handled `source` up to `position`.
    pub fn set(&self, consumer: &str, source: &str, position: u64) -> std::io::Result<()> {
        let mut saved = self.saved.lock();
        if !saved.contains_key(consumer) {
            let all = self.load_all(consumer)?;
            saved.insert(consumer.to_owned(), all);
        }
        let all = saved.get_mut(consumer).expect("loaded above");
        all.insert(source.to_owned(), position);
        let path = self.path(consumer);
        let tmp = path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut file, &serde_json::to_vec(all)?)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(())
    }
}

/// A handler a worker runs.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// The consumer name (`settle`, `rollup`).
    fn name(&self) -> &str;

    /// Handles one batch; returns once its writes are durable.
    async fn handle(&self, records: &[StreamRecord]) -> Result<Written, StoreError>;
}

/// The settle handler over a store.
pub struct Settle(pub Arc<dyn SettleStore>);

#[async_trait]
impl Handler for Settle {
    fn name(&self) -> &str {
        "settle"
    }
    async fn handle(&self, records: &[StreamRecord]) -> Result<Written, StoreError> {
        crate::settle(&*self.0, records).await
    }
}

/// The rollup handler over a store.
pub struct Rollup(pub Arc<dyn RollupStore>);

#[async_trait]
impl Handler for Rollup {
    fn name(&self) -> &str {
        "rollup"
    }
    async fn handle(&self, records: &[StreamRecord]) -> Result<Written, StoreError> {
        crate::rollup(&*self.0, records).await
    }
}

/// How a worker runs.
#[derive(Clone, Copy, Debug)]
pub struct WorkerConfig {
    /// Most records per batch.
    pub batch: usize,
    /// How long a read waits for a record before checking for shutdown.
    pub poll: Duration,
    /// First and longest wait between retries of a failing batch.
    pub backoff: (Duration, Duration),
    /// After a batch that was not full, how long to let records gather before reading the
    /// next. Every batch is a transaction with its syncs (and the checkpoint's), so a steady
    /// stream handled one record at a time costs the store and the shard's cores far more
    /// than the same stream in batches; this is what records wait at most, beyond the write.
    /// A record after a quiet spell is read at once, and a backlog is read without pause.
    pub linger: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            batch: 2_048,
            poll: Duration::from_millis(200),
            backoff: (Duration::from_millis(50), Duration::from_secs(5)),
            linger: Duration::from_millis(20),
        }
    }
}

/// Runs `handler` over `source` from its checkpoint until the source closes and is drained, or
/// `stop` turns true (then it finishes the batch in hand first).
pub async fn run(
    handler: Arc<dyn Handler>,
    source: Arc<dyn EventSource>,
    checkpoints: Arc<Checkpoints>,
    config: WorkerConfig,
    mut stop: watch::Receiver<bool>,
) -> Result<(), SourceError> {
    let consumer = handler.name().to_owned();
    let name = source.name().to_owned();
    let io = |e: std::io::Error| SourceError::Other(format!("checkpoint of {consumer}: {e}"));
    let mut position = checkpoints.get(&consumer, &name).map_err(io)?;
    let lag = metrics::gauge!("exchange_worker_lag_records", "worker" => consumer.clone(), "source" => name.clone());
    let handled = metrics::counter!("exchange_worker_records_total", "worker" => consumer.clone(), "source" => name.clone());
    // When the last batch was read, if it was not full: the next one gathers until `linger`
    // after that.
    let mut gathering: Option<tokio::time::Instant> = None;
    loop {
        lag.set(source.last().saturating_sub(position) as f64);
        if *stop.borrow() {
            return Ok(());
        }
        if let Some(since) = gathering.take() {
            tokio::select! {
                _ = tokio::time::sleep_until(since + config.linger) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        let Some(batch) = source.read(position, config.batch, config.poll).await? else {
            tracing::info!(worker = %consumer, source = %name, position, "source closed and drained");
            return Ok(());
        };
        let Some(&(last, _)) = batch.last() else {
            continue;
        };
        let (full, read_at) = (batch.len() >= config.batch, tokio::time::Instant::now());
        let records: Vec<StreamRecord> = batch.into_iter().map(|(_, r)| r).collect();
        let mut wait = config.backoff.0;
        loop {
            match handler.handle(&records).await {
                Ok(_) => break,
                Err(e) => {
                    metrics::counter!("exchange_worker_failures_total", "worker" => consumer.clone())
                        .increment(1);
                    tracing::warn!(worker = %consumer, source = %name, error = %e, retry_in = ?wait, "batch failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => return Ok(()),
                    }
                    wait = (wait * 2).min(config.backoff.1);
                }
            }
        }
        checkpoints.set(&consumer, &name, last).map_err(io)?;
        source.ack(&consumer, last);
        handled.increment(records.len() as u64);
        position = last;
        if !full && !config.linger.is_zero() {
            gathering = Some(read_at);
        }
    }
}
