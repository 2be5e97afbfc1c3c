//! One contract suite for every `CommandLog`: the embedded journal, and the cluster's Redis
//! Stream on the local Redis Cluster the test run starts (skipped, and said so, without one).
//! Each rule of the trait is checked on both: offsets dense and order ids derived from them
//! however many tasks append at once, a waiting reader woken by an append, closing waking
//! readers and refusing appends while what was logged stays readable, and acknowledging
//! letting go only what a snapshot covers.

mod common;
#[path = "support/redis_cluster.rs"]
mod redis_cluster;

use common::place;
use exchange_core::{Command, OrderId, ShardId};
use exchange_shard::{CommandLog, Entry, Journal, JournalConfig, RedisLog};
use std::sync::Arc;
use std::time::Duration;

/// A fresh, empty log of each kind this machine can run. The directory lives as long as the
/// logs.
async fn logs() -> (tempfile::TempDir, Vec<(&'static str, Arc<dyn CommandLog>)>) {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _): (Journal, _) =
        Journal::open(&dir.path().join("journal.log"), JournalConfig::default()).unwrap();
    let mut out: Vec<(&'static str, Arc<dyn CommandLog>)> = vec![("journal", Arc::new(journal))];
    if let Some(urls) = redis_cluster::cluster("the Redis command log's contract tests") {
        let log = RedisLog::open(&urls, &redis_cluster::namespace(), ShardId(0))
            .await
            .unwrap();
        out.push(("redis", Arc::new(log)));
    }
    (dir, out)
}

/// Reads everything after `after` (in as many reads as it takes) up to `until`.
async fn read_through(log: &dyn CommandLog, mut after: u64, until: u64) -> Vec<Entry> {
    let mut out = Vec::new();
    while after < until {
        let batch = tokio::time::timeout(Duration::from_secs(10), log.read(after, 1_000))
            .await
            .expect("records that were appended are readable")
            .unwrap();
        assert!(!batch.is_empty(), "an open log never reads empty");
        after = batch.last().unwrap().0;
        out.extend(batch);
    }
    out
}

fn order_id(e: &Entry) -> Option<OrderId> {
    match e.1.cmd {
        Command::Place(o) => Some(o.order_id),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_are_dense_and_every_place_gets_the_id_of_its_offset() {
    let (_dir, logs) = logs().await;
    for (name, log) in logs {
        // Eight tasks append five batches of two each, all at once.
        let tasks: Vec<_> = (0..8u64)
            .map(|t| {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    for b in 0..5u64 {
                        let i = t * 10 + b * 2;
                        got.extend(log.append(vec![place(i, None), place(i + 1, None)]).await?);
                    }
                    Ok::<_, exchange_shard::LogError>(got)
                })
            })
            .collect();
        let mut appended = Vec::new();
        for t in tasks {
            let batch = t.await.unwrap().unwrap();
            // A batch's records take consecutive offsets.
            for pair in batch.chunks(2) {
                assert_eq!(pair[1].0, pair[0].0 + 1, "{name}");
            }
            appended.extend(batch);
        }
        appended.sort_by_key(|e| e.0);
        let offsets: Vec<u64> = appended.iter().map(|e| e.0).collect();
        assert_eq!(
            offsets,
            (1..=80).collect::<Vec<_>>(),
            "{name}: dense, from 1"
        );
        for e in &appended {
            let symbol = match e.1.cmd {
                Command::Place(o) => o.symbol,
                _ => unreachable!("only places were appended"),
            };
            assert_eq!(order_id(e), Some(OrderId::compose(symbol, e.0)), "{name}");
        }
        assert_eq!(log.last_offset(), 80, "{name}");
        let read = read_through(log.as_ref(), 0, 80).await;
        assert_eq!(
            read, appended,
            "{name}: read back as appended, in offset order"
        );
        let tail = read_through(log.as_ref(), 75, 80).await;
        assert_eq!(
            tail,
            appended[75..],
            "{name}: a read starts after its offset"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_reader_wakes_when_records_come() {
    let (_dir, logs) = logs().await;
    for (name, log) in logs {
        let reader = {
            let log = log.clone();
            tokio::spawn(async move { log.read(0, 10).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!reader.is_finished(), "{name}: nothing to read yet");
        let appended = log.append(vec![place(0, None)]).await.unwrap();
        let read = tokio::time::timeout(Duration::from_secs(10), reader)
            .await
            .expect("the reader wakes")
            .unwrap()
            .unwrap();
        assert_eq!(read, appended, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_wakes_readers_and_refuses_appends_but_keeps_what_was_logged() {
    let (_dir, logs) = logs().await;
    for (name, log) in logs {
        let appended = log
            .append(vec![place(0, None), place(1, None), place(2, None)])
            .await
            .unwrap();
        let waiting = {
            let log = log.clone();
            tokio::spawn(async move { log.read(3, 10).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        log.close();
        let woken = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("closing wakes a waiting reader")
            .unwrap()
            .unwrap();
        assert!(
            woken.is_empty(),
            "{name}: a closed log reads empty at its end"
        );
        assert!(
            log.append(vec![place(3, None)]).await.is_err(),
            "{name}: no append after close"
        );
        assert_eq!(
            read_through(log.as_ref(), 0, 3).await,
            appended,
            "{name}: what was logged stays readable"
        );
        assert_eq!(log.last_offset(), 3, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledging_lets_go_only_what_a_snapshot_covers() {
    let (_dir, logs) = logs().await;
    for (name, log) in logs {
        let mut appended = Vec::new();
        for i in 0..10 {
            appended.extend(log.append(vec![place(i, None)]).await.unwrap());
        }
        log.ack(6).await.unwrap();
        assert_eq!(
            read_through(log.as_ref(), 6, 10).await,
            appended[6..],
            "{name}: what comes after the acknowledged offset stays"
        );
        let next = log.append(vec![place(10, None)]).await.unwrap();
        assert_eq!(
            next[0].0, 11,
            "{name}: offsets go on after an acknowledgement"
        );
        assert_eq!(log.last_offset(), 11, "{name}");
    }
}
