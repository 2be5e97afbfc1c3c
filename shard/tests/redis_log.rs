//! The command log on a real Redis Cluster (`infra/redis-cluster.sh up`; the test run starts
//! it and sets `EXCHANGE_TEST_REDIS_CLUSTER_URL`): dense offsets across appenders, order ids,
//! blocking reads, trimming, reopening, and the shard runtime over it giving exactly the
//! outcomes it gives over the embedded journal.

mod common;
#[path = "support/redis_cluster.rs"]
mod redis_cluster;

use common::place;
use exchange_core::*;
use exchange_shard::*;
use parking_lot::Mutex;
use redis_cluster::namespace;
use std::sync::Arc;

fn cluster() -> Option<Vec<String>> {
    redis_cluster::cluster("Redis Cluster log tests")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appenders_share_one_dense_ordered_log() {
    let Some(urls) = cluster() else { return };
    let ns = namespace();
    let a = Arc::new(RedisLog::open(&urls, &ns, ShardId(3)).await.unwrap());
    let b = Arc::new(RedisLog::open(&urls, &ns, ShardId(3)).await.unwrap());
    // A reader waiting before anything is appended gets the first batch when it comes.
    let reader = {
        let a = a.clone();
        tokio::spawn(async move { a.read(0, 10).await.unwrap() })
    };
    // Two gateways append concurrently.
    let tasks: Vec<_> = (0..20u64)
        .map(|i| {
            let log = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                log.append(vec![place(2 * i, None), place(2 * i + 1, None)])
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut appended = Vec::new();
    for t in tasks {
        let entries = t.await.unwrap();
        assert_eq!(
            entries[1].0,
            entries[0].0 + 1,
            "a batch takes consecutive offsets"
        );
        appended.extend(entries);
    }
    appended.sort_by_key(|e| e.0);
    assert_eq!(
        appended.iter().map(|e| e.0).collect::<Vec<_>>(),
        (1..=40).collect::<Vec<_>>()
    );
    for (offset, rec) in &appended {
        let Command::Place(o) = rec.cmd else { panic!() };
        assert_eq!(
            o.order_id,
            OrderId::compose(SymbolId(0), *offset),
            "ids come from offsets"
        );
    }
    assert!(!reader.await.unwrap().is_empty());

    // Every reader sees the same records, in offset order, with the same ids.
    let mut read = Vec::new();
    while read.len() < 40 {
        read.extend(b.read(read.len() as u64, 7).await.unwrap());
    }
    assert_eq!(read, appended);

    // A new connection (a restarted shard) knows where the log ends.
    let c = RedisLog::open(&urls, &ns, ShardId(3)).await.unwrap();
    assert_eq!(c.last_offset(), 40);
    // Acknowledged records are let go; the rest stay readable; offsets go on from 41.
    c.ack(30).await.unwrap();
    let rest = c.read(0, 100).await.unwrap();
    assert_eq!(rest.first().map(|e| e.0), Some(31));
    assert_eq!(c.append(vec![place(99, None)]).await.unwrap()[0].0, 41);
    // Another shard's log is separate.
    let other = RedisLog::open(&urls, &ns, ShardId(4)).await.unwrap();
    assert_eq!(other.append(vec![place(0, None)]).await.unwrap()[0].0, 1);
    // Closing wakes readers at the end of the log with an empty batch.
    c.close();
    assert!(c.read(41, 10).await.unwrap().is_empty());
}

#[derive(Default)]
struct Collect(Mutex<Vec<Outcome>>);

impl EventSink for Collect {
    fn publish(&self, _shard: ShardId, outcomes: Vec<Outcome>) {
        self.0.lock().extend(outcomes);
    }
}

/// Recovers a one-shard exchange over `log` and `sink` and runs it.
async fn spawn_shard(
    log: Arc<dyn CommandLog>,
    sink: Arc<dyn EventSink>,
    snapshots: &std::path::Path,
) -> tokio::task::JoinHandle<Result<(), ShardError>> {
    let (shard, _) = Shard::recover(
        ShardConfig {
            shard: ShardId(0),
            shards: 1,
            snapshot_every: 50,
            batch: 16,
            retain_finished: 1_000,
        },
        &SymbolTable::default_symbols(),
        log,
        sink,
        SnapshotStore::open(snapshots).unwrap(),
        None,
    )
    .await
    .unwrap();
    tokio::spawn(shard.run())
}

async fn run(
    log: Arc<dyn CommandLog>,
    dir: &std::path::Path,
    records: Vec<LogRecord>,
) -> Vec<Outcome> {
    let sink = Arc::new(Collect::default());
    let task = spawn_shard(log.clone(), sink.clone(), &dir.join("snapshots")).await;
    for chunk in records.chunks(10) {
        log.append(chunk.to_vec()).await.unwrap();
    }
    log.close();
    task.await.unwrap().unwrap();
    sink.0.lock().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shard_runs_the_same_over_redis_as_over_its_journal() {
    let Some(urls) = cluster() else { return };
    let records: Vec<LogRecord> = (0..200).map(|i| place(i, None)).collect();
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) =
        Journal::<LogRecord>::open(&dir.path().join("journal"), JournalConfig::default()).unwrap();
    let embedded = run(Arc::new(journal), &dir.path().join("a"), records.clone()).await;
    let redis = RedisLog::open(&urls, &namespace(), ShardId(0))
        .await
        .unwrap();
    let clustered = run(Arc::new(redis), &dir.path().join("b"), records).await;
    assert_eq!(clustered.len(), 200);
    assert!(
        clustered.iter().any(|o| !o.fills.is_empty()),
        "the orders trade"
    );
    assert_eq!(clustered, embedded, "the same outcomes, byte for byte");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_reach_a_subscribed_gateway_over_sharded_pubsub() {
    let Some(urls) = cluster() else { return };
    let ns = namespace();
    let records: Vec<LogRecord> = (0..100).map(|i| place(i, None)).collect();
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) =
        Journal::<LogRecord>::open(&dir.path().join("journal"), JournalConfig::default()).unwrap();
    let expected = run(Arc::new(journal), &dir.path().join("a"), records.clone()).await;

    // The gateway subscribes first; then the shard runs over the cluster log and bus.
    let mut outcomes = exchange_shard::redis_sink::subscribe_outcomes(&urls, &ns, &[ShardId(0)])
        .await
        .unwrap();
    let log: Arc<dyn CommandLog> = Arc::new(RedisLog::open(&urls, &ns, ShardId(0)).await.unwrap());
    let sink = Arc::new(
        exchange_shard::redis_sink::RedisSink::connect(&urls, &ns, None)
            .await
            .unwrap(),
    );
    let task = spawn_shard(log.clone(), sink, &dir.path().join("b")).await;
    for chunk in records.chunks(10) {
        log.append(chunk.to_vec()).await.unwrap();
    }
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while received.len() < 100 {
        let (shard, batch) = tokio::time::timeout_at(deadline, outcomes.recv())
            .await
            .expect("every outcome arrives in time")
            .unwrap();
        assert_eq!(shard, ShardId(0));
        received.extend(batch);
    }
    log.close();
    task.await.unwrap().unwrap();
    assert_eq!(
        received, expected,
        "the gateway gets every outcome, in log order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_reads_a_shard_in_another_process_over_the_bus() {
    use exchange_shard::query::{Answer, Query};
    use exchange_shard::redis_query::{QueryClient, QueryError, serve};
    let Some(urls) = cluster() else { return };
    let ns = namespace();
    let symbols = SymbolTable::default_symbols();
    let mut state = ShardState::new(ShardId(0), 1, &symbols, 100);
    for (i, rec) in (0..4).map(|i| (i + 1, place(i, None))) {
        let mut rec = rec;
        rec.assign(i);
        state.apply(i, &rec);
    }
    let expected_depth = state.depth(SymbolId(0), 5);
    let some_order = OrderId::compose(SymbolId(0), 1);
    let expected_order = state.orders().get(some_order).copied();
    assert!(expected_order.is_some());
    let state = Arc::new(parking_lot::RwLock::new(state));
    let server = serve(&urls, &ns, ShardId(1), state, || 9).await.unwrap();
    let client = QueryClient::connect(&urls, &ns, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    // Sharded subscriptions take effect when the subscribe returns; ask until served anyway.
    let mut health = None;
    for _ in 0..50 {
        match client.ask(ShardId(1), Query::Health).await {
            Ok(a) => {
                health = Some(a);
                break;
            }
            Err(QueryError::NotServed(_)) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(
        health,
        Some(Answer::Health {
            logged: 9,
            applied: 4
        })
    );
    assert_eq!(
        client
            .ask(ShardId(1), Query::Order(some_order))
            .await
            .unwrap(),
        Answer::Order(expected_order)
    );
    assert_eq!(
        client
            .ask(ShardId(1), Query::Depth(SymbolId(0), 5))
            .await
            .unwrap(),
        Answer::Depth(expected_depth)
    );
    // Many questions at once each get their own answer.
    let asks: Vec<_> = (1..=4u64)
        .map(|o| client.ask(ShardId(1), Query::Order(OrderId::compose(SymbolId(0), o))))
        .collect();
    for (o, answer) in (1..=4u64).zip(futures_util::future::join_all(asks).await) {
        let Answer::Order(Some(rec)) = answer.unwrap() else {
            panic!("order {o} is there")
        };
        assert_eq!(rec.id, OrderId::compose(SymbolId(0), o));
    }
    // Nobody serves shard 2: the client knows at once.
    assert!(matches!(
        client.ask(ShardId(2), Query::Health).await,
        Err(QueryError::NotServed(ShardId(2)))
    ));
    server.abort();
}
