//! The local worker over a real event journal: at-least-once delivery with idempotent writes
//! (kill mid-batch, redeliver), retries while the store fails, and the Lambda entry points.

mod common;

use async_trait::async_trait;
use common::*;
use exchange_core::stream::StreamRecord;
use exchange_core::{ShardId, SymbolTable};
use exchange_functions::lambda::{self, Batch};
use exchange_functions::sqlite::SqliteStore;
use exchange_functions::worker::{
    self, Checkpoints, EventSource, Handler, JournalSource, Rollup, Settle, WorkerConfig,
};
use exchange_functions::{RollupStore, SettleStore, StoreError, TradeQuery, Written};
use exchange_shard::{EventJournal, EventRecord, JournalConfig};
use lambda_runtime::{Context, LambdaEvent};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::watch;

const TRADES: u64 = 400;

/// Shard 0's source over `journal`.
fn shard_0(journal: Arc<EventJournal>, consumers: &[(&str, u64)]) -> JournalSource {
    JournalSource::new(
        ShardId(0),
        Arc::new(SymbolTable::default_symbols()),
        journal,
        consumers,
    )
}

fn config() -> WorkerConfig {
    WorkerConfig {
        batch: 7,
        poll: Duration::from_millis(20),
        backoff: (Duration::from_millis(1), Duration::from_millis(20)),
        linger: Duration::ZERO,
    }
}

async fn journal(dir: &std::path::Path) -> Arc<EventJournal> {
    let (j, _) = EventJournal::open(&dir.join("events"), JournalConfig::default()).unwrap();
    let j = Arc::new(j);
    let records: Vec<EventRecord> = (1..=TRADES)
        .map(|n| trade_record("shard-0", n, n).into())
        .collect();
    j.append(records).await.unwrap();
    j
}

async fn check_exactly_once(store: &SqliteStore) {
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.trades, counts.orders, counts.ledger),
        (TRADES, TRADES, 6 * TRADES)
    );
    assert_eq!(
        store.balances().await.unwrap(),
        store.ledger_totals().await.unwrap()
    );
    let history = RollupStore::trades(
        store,
        &TradeQuery {
            symbol: "BTC-USD".into(),
            start: None,
            end: None,
            limit: 10_000,
        },
    )
    .await
    .unwrap();
    assert_eq!(history.len() as u64, TRADES);
    let day = store
        .candles(&exchange_functions::CandleQuery {
            symbol: "BTC-USD".into(),
            interval: exchange_functions::Interval::D1,
            start: None,
            end: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        day.iter().map(|c| c.trades).sum::<u64>(),
        TRADES,
        "each trade folded once"
    );
}

#[tokio::test]
async fn killed_workers_redeliver_and_the_stores_hold_each_trade_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("functions.db"))
            .await
            .unwrap(),
    );
    let journal = journal(dir.path()).await;
    let checkpoints = Arc::new(Checkpoints::open(&dir.path().join("consumers")).unwrap());
    let source: Arc<dyn EventSource> =
        Arc::new(shard_0(journal.clone(), &[("settle", 0), ("rollup", 0)]));
    let handlers: [Arc<dyn Handler>; 2] = [
        Arc::new(Settle(store.clone())),
        Arc::new(Rollup(store.clone())),
    ];
    // Kill both workers at staggered moments, again and again, mid-batch, until both are
    // through; every restart resumes from the checkpoint.
    let mut kills = 0;
    for round in 0..200u64 {
        let (_stop, stopped) = watch::channel(false);
        let tasks: Vec<_> = handlers
            .iter()
            .map(|h| {
                tokio::spawn(worker::run(
                    h.clone(),
                    source.clone(),
                    checkpoints.clone(),
                    config(),
                    stopped.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_micros(300 + (round * 769) % 3_000)).await;
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
        kills += 1;
        let done = ["settle", "rollup"]
            .iter()
            .all(|c| checkpoints.get(c, "shard-0").unwrap() == journal.last_offset());
        if done {
            break;
        }
    }
    assert!(kills > 1, "the workers were killed before they were done");
    // Finish whatever is left with workers that run to the end of the closed source.
    journal.close();
    for h in &handlers {
        let (_stop, stopped) = watch::channel(false);
        worker::run(
            h.clone(),
            source.clone(),
            checkpoints.clone(),
            config(),
            stopped,
        )
        .await
        .unwrap();
    }
    check_exactly_once(&store).await;

    // Redelivering everything from the start (the journal reopened: its one segment is still
    // there) changes nothing.
    drop(source);
    drop(journal);
    let (reopened, _) =
        EventJournal::open(&dir.path().join("events"), JournalConfig::default()).unwrap();
    reopened.close();
    let source: Arc<dyn EventSource> =
        Arc::new(shard_0(Arc::new(reopened), &[("settle", 0), ("rollup", 0)]));
    let fresh = Arc::new(Checkpoints::open(&dir.path().join("again")).unwrap());
    for h in &handlers {
        let (_stop, stopped) = watch::channel(false);
        worker::run(h.clone(), source.clone(), fresh.clone(), config(), stopped)
            .await
            .unwrap();
    }
    check_exactly_once(&store).await;
}

/// A store that fails its first writes, as an unreachable database does.
struct Flaky {
    inner: Arc<SqliteStore>,
    failures: AtomicU32,
}

#[async_trait]
impl Handler for Flaky {
    fn name(&self) -> &str {
        "settle"
    }
    async fn handle(&self, records: &[StreamRecord]) -> Result<Written, StoreError> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| f.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::Corrupt("the store is unreachable".into()));
        }
        exchange_functions::settle(&*self.inner, records).await
    }
}

#[tokio::test]
async fn a_failing_store_is_retried_and_nothing_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("functions.db"))
            .await
            .unwrap(),
    );
    let journal = journal(dir.path()).await;
    journal.close();
    let flaky = Arc::new(Flaky {
        inner: store.clone(),
        failures: AtomicU32::new(5),
    });
    let checkpoints = Arc::new(Checkpoints::open(&dir.path().join("consumers")).unwrap());
    let source = Arc::new(shard_0(journal, &[("settle", 0)]));
    let (_stop, stopped) = watch::channel(false);
    worker::run(
        flaky.clone(),
        source,
        checkpoints.clone(),
        config(),
        stopped,
    )
    .await
    .unwrap();
    assert_eq!(
        flaky.failures.load(Ordering::SeqCst),
        0,
        "it failed five times"
    );
    assert_eq!(store.counts().await.unwrap().trades, TRADES);
    assert_eq!(checkpoints.get("settle", "shard-0").unwrap(), TRADES);
}

#[tokio::test]
async fn a_stop_signal_ends_a_worker_that_waits_for_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("functions.db"))
            .await
            .unwrap(),
    );
    let (j, _) = EventJournal::open(&dir.path().join("events"), JournalConfig::default()).unwrap();
    let source = Arc::new(shard_0(Arc::new(j), &[("rollup", 0)]));
    let checkpoints = Arc::new(Checkpoints::open(&dir.path().join("consumers")).unwrap());
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(worker::run(
        Arc::new(Rollup(store)),
        source,
        checkpoints,
        config(),
        stopped,
    ));
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the worker stops")
        .unwrap()
        .unwrap();
}

/// A handler that keeps the sizes of the batches it was given and the records' sequence.
#[derive(Default)]
struct Batches(parking_lot::Mutex<Vec<Vec<u64>>>);

#[async_trait]
impl Handler for Batches {
    fn name(&self) -> &str {
        "settle"
    }
    async fn handle(&self, records: &[StreamRecord]) -> Result<Written, StoreError> {
        self.0.lock().push(records.iter().map(|r| r.seq).collect());
        Ok(Written::default())
    }
}

#[tokio::test]
async fn a_steady_trickle_is_handled_in_batches_that_linger() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = EventJournal::open(&dir.path().join("events"), JournalConfig::default()).unwrap();
    let journal = Arc::new(j);
    let source = Arc::new(shard_0(journal.clone(), &[("settle", 0)]));
    let checkpoints = Arc::new(Checkpoints::open(&dir.path().join("consumers")).unwrap());
    let batches = Arc::new(Batches::default());
    let linger = Duration::from_millis(50);
    let (_stop, stopped) = watch::channel(false);
    let task = tokio::spawn(worker::run(
        batches.clone(),
        source,
        checkpoints.clone(),
        WorkerConfig {
            batch: 10_000,
            linger,
            ..config()
        },
        stopped,
    ));
    // One record a millisecond: without lingering, nearly every record is a batch of its own.
    let started = std::time::Instant::now();
    for n in 1..=200 {
        journal
            .append(vec![trade_record("shard-0", n, n).into()])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    journal.close();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the worker drains the closed journal")
        .unwrap()
        .unwrap();
    let batches = batches.0.lock();
    let seen: Vec<u64> = batches.iter().flatten().copied().collect();
    assert_eq!(
        seen,
        (1..=200).collect::<Vec<_>>(),
        "each record once, in order"
    );
    let most = elapsed.as_millis() / linger.as_millis() + 3;
    assert!(
        batches.len() as u128 <= most,
        "{} batches in {elapsed:?}: at most one per {linger:?} (+3) expected",
        batches.len()
    );
    assert_eq!(checkpoints.get("settle", "shard-0").unwrap(), 200);
}

#[tokio::test]
async fn lambda_handlers_write_a_payload_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("functions.db"))
        .await
        .unwrap();
    let records: Vec<StreamRecord> = (1..=10).map(|n| trade_record("shard-2", n, n)).collect();
    // The payload as a trigger delivers it: JSON.
    let payload: Batch = serde_json::from_value(serde_json::json!({ "records": records })).unwrap();
    let event = || LambdaEvent::new(payload.clone(), Context::default());
    let settled = lambda::settle(&store, event()).await.unwrap();
    assert_eq!((settled.trades, settled.ledger), (10, 60));
    let rolled = lambda::rollup(&store, event()).await.unwrap();
    assert_eq!(rolled.trades, 10);
    assert!(rolled.candles >= 6);
    // Delivered twice: nothing new.
    assert_eq!(lambda::settle(&store, event()).await.unwrap().ledger, 0);
    assert_eq!(lambda::rollup(&store, event()).await.unwrap().trades, 0);
    assert_eq!(store.counts().await.unwrap().trades, 10);
    // A malformed payload is refused by its type.
    assert!(
        serde_json::from_value::<Batch>(serde_json::json!({ "records": [{ "seq": 1 }] })).is_err()
    );
}
