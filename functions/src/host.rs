//! The host that runs the functions inside an exchange or shard process: settle and rollup
//! workers over every shard's event journal and the accounts' transfers, on a runtime of their
//! own scheduled as idle work, and the stores they write (the embedded SQLite store by default;
//! PostgreSQL and MongoDB when configured).

use crate::mongo::MongoStore;
use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::worker::{
    self, Checkpoints, EventSource, JournalSource, Rollup, Settle, SourceError, WorkerConfig,
};
use crate::{RollupStore, SettleStore, StoreError};
use async_trait::async_trait;
use exchange_accounts::{EmbeddedAccounts, Transfer, TransferKind};
use exchange_core::stream::{LedgerEvent, LedgerKind, StreamEvent, StreamRecord};
use exchange_core::{ShardId, SymbolTable};
use exchange_shard::EventJournal;
use exchange_shard::events::source_name;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why the host could not start or stop its workers.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("starting the functions' thread: {0}")]
    Thread(std::io::Error),
    #[error("building the functions' runtime: {0}")]
    Runtime(std::io::Error),
    #[error("the functions' thread stopped at once")]
    ThreadStopped,
    #[error("a background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("{what}: {source}")]
    Store { what: String, source: StoreError },
    #[error("reading the workers' checkpoints: {0}")]
    Checkpoints(#[from] std::io::Error),
    #[error("a worker failed: {0}")]
    Worker(#[from] SourceError),
}

fn store_error(what: impl Into<String>) -> impl FnOnce(StoreError) -> HostError {
    let what = what.into();
    move |source| HostError::Store { what, source }
}

/// Where the functions' stores are: the embedded store in `data_dir` for whatever has no URL.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    /// PostgreSQL/TimescaleDB for rollup.
    pub database_url: Option<String>,
    /// MongoDB for settlement, and its database.
    pub mongodb_url: Option<String>,
    pub mongodb_database: String,
}

/// The accounts' transfers as an event source: deposit and withdrawal ledger entries, at
/// positions 1, 2, ... in the accounts log's order. The log is kept whole, so acknowledging
/// lets nothing go.
pub struct AccountsSource {
    accounts: Arc<EmbeddedAccounts>,
    symbols: Arc<SymbolTable>,
    closed: AtomicBool,
}

impl AccountsSource {
    pub fn new(accounts: Arc<EmbeddedAccounts>, symbols: Arc<SymbolTable>) -> Self {
        Self {
            accounts,
            symbols,
            closed: AtomicBool::new(false),
        }
    }

    /// No more transfers: readers finish what there is and stop.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    fn record(&self, position: u64, t: &Transfer) -> StreamRecord {
        let asset = self.symbols.assets().get(t.asset);
        let (kind, prefix) = match t.kind {
            TransferKind::Deposit => (LedgerKind::Deposit, "deposit"),
            TransferKind::Withdrawal => (LedgerKind::Withdrawal, "withdrawal"),
        };
        StreamRecord {
            source: "accounts".into(),
            seq: position,
            time: t.ts.0,
            events: vec![StreamEvent::Ledger(LedgerEvent {
                entry_id: format!("{prefix}:{}", t.id),
                account: t.account.0,
                asset: asset.map_or_else(String::new, |a| a.name.clone()),
                amount: asset.map_or_else(Default::default, |a| a.signed_to_decimal(t.signed())),
                kind,
                reference: t.id.clone(),
                symbol: None,
                time: t.ts.0,
            })],
        }
    }
}

#[async_trait]
impl EventSource for AccountsSource {
    fn name(&self) -> &str {
        "accounts"
    }

    async fn read(
        &self,
        after: u64,
        max: usize,
        wait: Duration,
    ) -> Result<Option<Vec<(u64, StreamRecord)>>, SourceError> {
        let notified = self.accounts.transferred();
        let (transfers, _) = self.accounts.transfers_after(after as usize, max);
        if transfers.is_empty() {
            if self.closed.load(Ordering::SeqCst) {
                return Ok(None);
            }
            let _ = tokio::time::timeout(wait, notified).await;
            return Ok(Some(Vec::new()));
        }
        Ok(Some(
            transfers
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let position = after + i as u64 + 1;
                    (position, self.record(position, t))
                })
                .collect(),
        ))
    }

    fn last(&self) -> u64 {
        self.accounts.transfers_after(usize::MAX, 0).1 as u64
    }

    fn ack(&self, _consumer: &str, _position: u64) {}
}

/// A runtime on a thread of its own, scheduled as idle work (Linux `SCHED_IDLE`), for the
/// settle and rollup workers and the stores they write. Matching and answering orders come
/// first: the workers run in the time those leave (which the order path always leaves, as it
/// waits on the disk and the network), and when orders take every core their lag grows
/// (`exchange_worker_lag_records`; the events wait in the event journals) and is made up after,
/// instead of slowing every answer down. At nice 10 they still took about a third of the
/// machine during a burst (30,000 against 38,000 orders/s, 2026-12-04). Threads it starts
/// (SQLite's connection threads, its blocking tasks) inherit the policy. It stops when dropped.
pub struct Background {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Background {
    /// Starts the thread and its runtime.
    pub fn start() -> Result<Self, HostError> {
        let (ready, handle) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("functions".into())
            .spawn(move || {
                // On Linux a scheduling policy belongs to one thread, and threads it starts
                // inherit it.
                let idle = libc::sched_param { sched_priority: 0 };
                // SAFETY: sched_setscheduler reads the parameter we pass and nothing else.
                if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &idle) } != 0 {
                    tracing::warn!(error = %std::io::Error::last_os_error(), "could not lower the functions' priority");
                }
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .thread_name("functions-blocking")
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(runtime.handle().clone()));
                runtime.block_on(async {
                    let _ = stopped.await;
                });
                runtime.shutdown_timeout(Duration::from_secs(5));
            })
            .map_err(HostError::Thread)?;
        let handle = handle
            .recv()
            .map_err(|_| HostError::ThreadStopped)?
            .map_err(HostError::Runtime)?;
        Ok(Self {
            handle,
            stop: Some(stop),
        })
    }

    /// Runs `work` on the background runtime and waits for it.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, HostError> {
        Ok(self.handle.spawn(work).await?)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Where settle and rollup write.
#[derive(Clone)]
pub struct Stores {
    pub settle: Arc<dyn SettleStore>,
    pub rollup: Arc<dyn RollupStore>,
}

/// Opens the configured stores on `background` (their connections belong to it): MongoDB for
/// settlement when `EXCHANGE_MONGODB_URL` is set, PostgreSQL for rollup when
/// `EXCHANGE_DATABASE_URL` is set, the embedded store (`functions.db` in the data directory)
/// for whatever is not.
pub async fn open_stores_on(
    background: &Background,
    config: &StoreConfig,
) -> Result<Stores, HostError> {
    let config = config.clone();
    background
        .run(async move { open_stores(&config).await })
        .await?
}

/// Opens the configured stores (see [`open_stores_on`]) on the current runtime.
pub async fn open_stores(config: &StoreConfig) -> Result<Stores, HostError> {
    let embedded = if config.mongodb_url.is_none() || config.database_url.is_none() {
        let path = config.data_dir.join("functions.db");
        Some(Arc::new(SqliteStore::open(&path).await.map_err(
            store_error(format!(
                "opening the embedded history store {}",
                path.display()
            )),
        )?))
    } else {
        None
    };
    let settle: Arc<dyn SettleStore> = match &config.mongodb_url {
        Some(url) => {
            let store = MongoStore::connect(url, &config.mongodb_database)
                .await
                .map_err(store_error("connecting to MongoDB"))?;
            store
                .prepare()
                .await
                .map_err(store_error("preparing MongoDB"))?;
            Arc::new(store)
        }
        None => embedded
            .clone()
            .expect("opened when a store is not configured"),
    };
    let rollup: Arc<dyn RollupStore> = match &config.database_url {
        Some(url) => connect_postgres(url).await?,
        None => embedded.expect("opened when a store is not configured"),
    };
    Ok(Stores { settle, rollup })
}

async fn connect_postgres(url: &str) -> Result<Arc<dyn RollupStore>, HostError> {
    let store = PgStore::connect(url)
        .await
        .map_err(store_error("connecting to PostgreSQL"))?;
    store
        .prepare()
        .await
        .map_err(store_error("migrating PostgreSQL"))?;
    Ok(Arc::new(store))
}

/// The history a gateway of a cluster reads: PostgreSQL when `EXCHANGE_DATABASE_URL` is set,
/// else the embedded store the shards write in a shared data directory, if there is one.
pub async fn open_history(config: &StoreConfig) -> Result<Option<Arc<dyn RollupStore>>, HostError> {
    if let Some(url) = &config.database_url {
        return connect_postgres(url).await.map(Some);
    }
    let path = config.data_dir.join("functions.db");
    if !path.exists() {
        tracing::warn!(path = %path.display(), "no history store: set EXCHANGE_DATABASE_URL (the candles and trade history endpoints answer 503 meanwhile)");
        return Ok(None);
    }
    let store = SqliteStore::open(&path).await.map_err(store_error(format!(
        "opening the embedded history store {}",
        path.display()
    )))?;
    Ok(Some(Arc::new(store)))
}

/// The workers running in the process, on their background runtime.
pub struct Workers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Result<(), SourceError>>>,
    accounts: Option<Arc<AccountsSource>>,
    /// Dropped (stopped) after the workers.
    _background: Background,
}

/// Starts a settle and a rollup worker on every shard's event journal, and a settle worker on
/// the accounts' transfers when given, each from its checkpoint, on `background`.
pub fn start_workers(
    background: Background,
    stores: &Stores,
    journals: &[(ShardId, Arc<EventJournal>)],
    accounts: Option<Arc<EmbeddedAccounts>>,
    symbols: Arc<SymbolTable>,
    checkpoints: Arc<Checkpoints>,
) -> Result<Workers, HostError> {
    let (stop, stopped) = watch::channel(false);
    let settle: Arc<dyn worker::Handler> = Arc::new(Settle(stores.settle.clone()));
    let rollup: Arc<dyn worker::Handler> = Arc::new(Rollup(stores.rollup.clone()));
    let mut tasks = Vec::new();
    let spawn = |handler: &Arc<dyn worker::Handler>, source: Arc<dyn EventSource>| {
        background.handle.spawn(worker::run(
            handler.clone(),
            source,
            checkpoints.clone(),
            WorkerConfig::default(),
            stopped.clone(),
        ))
    };
    for (shard, journal) in journals {
        let name = source_name(*shard);
        let positions = [
            ("settle", checkpoints.get("settle", &name)?),
            ("rollup", checkpoints.get("rollup", &name)?),
        ];
        let source: Arc<dyn EventSource> = Arc::new(JournalSource::new(
            *shard,
            Arc::clone(&symbols),
            journal.clone(),
            &positions,
        ));
        tasks.push(spawn(&settle, source.clone()));
        tasks.push(spawn(&rollup, source));
    }
    let accounts = accounts.map(|a| Arc::new(AccountsSource::new(a, symbols)));
    if let Some(accounts) = &accounts {
        tasks.push(spawn(&settle, accounts.clone()));
    }
    Ok(Workers {
        stop,
        tasks,
        accounts,
        _background: background,
    })
}

impl Workers {
    /// Lets the workers drain their sources (the shards' event journals must be closed
    /// first) and waits for them, for at most `patience`: a worker still retrying an
    /// unreachable store then stops after its batch in hand, and what it has not settled waits
    /// in the event journal for the next start.
    pub async fn drain(mut self, patience: Duration) -> Result<(), HostError> {
        if let Some(accounts) = &self.accounts {
            accounts.close();
        }
        let deadline = tokio::time::Instant::now() + patience;
        let mut stopped = false;
        for task in &mut self.tasks {
            let done = if stopped {
                task.await
            } else {
                match tokio::time::timeout_at(deadline, &mut *task).await {
                    Ok(done) => done,
                    Err(_) => {
                        tracing::warn!(
                            ?patience,
                            "workers did not drain in time; stopping them (their events wait for the next start)"
                        );
                        let _ = self.stop.send(true);
                        stopped = true;
                        task.await
                    }
                }
            };
            done??;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BalanceRow, Candle, CandleQuery, Counts, SettleBatch, TradeQuery, Written};
    use exchange_core::stream::{OrderEvent, TradeEvent};
    use exchange_shard::JournalConfig;

    /// A store that cannot be reached.
    struct Down;

    fn down<T>() -> Result<T, StoreError> {
        Err(StoreError::Corrupt("unreachable".into()))
    }

    #[async_trait]
    impl SettleStore for Down {
        async fn prepare(&self) -> Result<(), StoreError> {
            down()
        }
        async fn settle(&self, _: &SettleBatch) -> Result<Written, StoreError> {
            down()
        }
        async fn balances(&self) -> Result<Vec<BalanceRow>, StoreError> {
            down()
        }
        async fn ledger_totals(&self) -> Result<Vec<BalanceRow>, StoreError> {
            down()
        }
        async fn order(&self, _: u64) -> Result<Option<OrderEvent>, StoreError> {
            down()
        }
        async fn counts(&self) -> Result<Counts, StoreError> {
            down()
        }
    }

    #[async_trait]
    impl RollupStore for Down {
        async fn prepare(&self) -> Result<(), StoreError> {
            down()
        }
        async fn roll(&self, _: &[TradeEvent]) -> Result<Written, StoreError> {
            down()
        }
        async fn candles(&self, _: &CandleQuery) -> Result<Vec<Candle>, StoreError> {
            down()
        }
        async fn trades(&self, _: &TradeQuery) -> Result<Vec<TradeEvent>, StoreError> {
            down()
        }
    }

    #[tokio::test]
    async fn the_functions_run_as_idle_work_and_their_threads_inherit_it() {
        // SAFETY: sched_getscheduler takes a thread id (0: the calling thread) and nothing else.
        let policy = || unsafe { libc::sched_getscheduler(0) };
        let background = Background::start().unwrap();
        let (own, started) = background
            .run(async move {
                let started = std::thread::spawn(policy).join().unwrap();
                (policy(), started)
            })
            .await
            .unwrap();
        assert_eq!((own, started), (libc::SCHED_IDLE, libc::SCHED_IDLE));
        assert_eq!(
            policy(),
            libc::SCHED_OTHER,
            "the rest of the process is not idle work"
        );
    }

    #[tokio::test]
    async fn shutdown_does_not_wait_forever_for_an_unreachable_store() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Arc::new(EmbeddedAccounts::open(dir.path(), [7; 32]).unwrap());
        let (journal, _) =
            EventJournal::open(&dir.path().join("events"), JournalConfig::default()).unwrap();
        let journal = Arc::new(journal);
        journal
            .append(vec![
                StreamRecord {
                    source: "shard-0".into(),
                    seq: 1,
                    time: 1,
                    events: Vec::new(),
                }
                .into(),
            ])
            .await
            .unwrap();
        journal.close();
        let stores = Stores {
            settle: Arc::new(Down),
            rollup: Arc::new(Down),
        };
        let checkpoints = Arc::new(Checkpoints::open(&dir.path().join("consumers")).unwrap());
        let workers = start_workers(
            Background::start().unwrap(),
            &stores,
            &[(ShardId(0), journal)],
            Some(accounts),
            Arc::new(SymbolTable::default_symbols()),
            checkpoints.clone(),
        )
        .unwrap();
        let started = std::time::Instant::now();
        tokio::time::timeout(
            Duration::from_secs(10),
            workers.drain(Duration::from_millis(300)),
        )
        .await
        .expect("drain gives up on the store")
        .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
        // Nothing was acknowledged: the record waits for the next start.
        assert_eq!(checkpoints.get("settle", "shard-0").unwrap(), 0);
    }
}
