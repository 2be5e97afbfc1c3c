//! The shard runtime: outcomes in log order, client-order-id idempotency, and recovery from
//! snapshot + journal that reproduces exactly the state of a run that never stopped.

mod common;

use common::place;
use exchange_core::*;
use exchange_shard::*;
use parking_lot::Mutex;
use std::sync::Arc;

#[derive(Default)]
struct Collect(Mutex<Vec<Outcome>>);

impl EventSink for Collect {
    fn publish(&self, _shard: ShardId, outcomes: Vec<Outcome>) {
        self.0.lock().extend(outcomes);
    }
}

fn config(snapshot_every: u64) -> ShardConfig {
    ShardConfig {
        shard: ShardId(0),
        shards: 1,
        snapshot_every,
        batch: 64,
        retain_finished: 1_000,
    }
}

async fn start(
    dir: &std::path::Path,
    snapshot_every: u64,
) -> (Arc<Journal>, Arc<Collect>, Shard, Recovery) {
    let (journal, _) = Journal::open(
        &dir.join("journal"),
        JournalConfig {
            segment_bytes: 2048,
            ..JournalConfig::default()
        },
    )
    .unwrap();
    let journal = Arc::new(journal);
    let sink = Arc::new(Collect::default());
    let (shard, rec) = Shard::recover(
        config(snapshot_every),
        &SymbolTable::default_symbols(),
        journal.clone(),
        sink.clone(),
        SnapshotStore::open(&dir.join("snapshots")).unwrap(),
        None,
    )
    .await
    .unwrap();
    (journal, sink, shard, rec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_follow_the_log_and_duplicates_return_the_first_order() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, sink, shard, _) = start(dir.path(), 1_000).await;
    let run = tokio::spawn(shard.run());
    // Offsets 1 and 3 are the same account (1 and 6 are both account 1) with the same client id.
    journal
        .append(vec![
            place(1, Some("a")),
            place(2, None),
            place(6, Some("a")),
        ])
        .await
        .unwrap();
    journal.close();
    run.await.unwrap().unwrap();
    let outcomes = sink.0.lock().clone();
    assert_eq!(
        outcomes.iter().map(|o| o.offset).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let first = match &outcomes[0].result {
        CommandResult::Applied { orders, .. } => orders[0],
        other => panic!("{other:?}"),
    };
    match &outcomes[2].result {
        CommandResult::Duplicate { order } => assert_eq!(order.id, first.id),
        other => panic!("expected a duplicate, got {other:?}"),
    }
}

/// The offset of the newest snapshot on disk.
fn shard_applied(dir: &std::path::Path) -> u64 {
    SnapshotStore::open(dir)
        .unwrap()
        .load()
        .unwrap()
        .next()
        .map_or(0, |s| s.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_from_snapshot_and_journal_reproduces_the_state() {
    let dir = tempfile::tempdir().unwrap();
    // A reference run that applies everything straight through, in memory.
    let symbols = SymbolTable::default_symbols();
    let mut reference = ShardState::new(ShardId(0), 1, &symbols, 1_000);
    {
        let (journal, _, shard, _) = start(dir.path(), 50).await;
        let run = tokio::spawn(shard.run());
        for i in 0..300u64 {
            let coid = format!("c{}", i % 40);
            for (offset, rec) in journal
                .append(vec![place(i, i.is_multiple_of(3).then_some(coid.as_str()))])
                .await
                .unwrap()
            {
                reference.apply(offset, &rec);
            }
        }
        // Let the shard catch up before it "crashes".
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while shard_applied(&dir.path().join("snapshots")) < 250 {
            assert!(
                std::time::Instant::now() < deadline,
                "the shard did not snapshot in time"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        // Stop without the final snapshot: a crash after the last periodic one.
        run.abort();
    }
    let snaps: Vec<_> = SnapshotStore::open(&dir.path().join("snapshots"))
        .unwrap()
        .load()
        .unwrap()
        .collect();
    assert!(!snaps.is_empty(), "periodic snapshots were written");
    let (journal, _, shard, recovery) = start(dir.path(), 50).await;
    assert_eq!(recovery.snapshot_offset + recovery.replayed, 300);
    let state = shard.state();
    let state = state.read();
    assert_eq!(state.applied(), 300);
    assert_eq!(
        state.snapshot(),
        reference.snapshot(),
        "recovered state equals the straight run"
    );
    assert_funds_balance(&state);
    drop(journal);
}

/// Within one shard, every asset's changes sum to zero across accounts (fills move funds
/// between the sides and the fee account) and each account's reserved change is exactly what
/// its open orders hold.
fn assert_funds_balance(state: &ShardState) {
    use std::collections::HashMap;
    let mut per_asset: HashMap<AssetId, i128> = HashMap::new();
    let mut reserved: HashMap<(AccountId, AssetId), i128> = HashMap::new();
    for (account, asset, d) in state.funds().deltas() {
        *per_asset.entry(asset).or_default() += d.total();
        if d.reserved != 0 {
            reserved.insert((account, asset), d.reserved);
        }
    }
    assert!(per_asset.values().all(|v| *v == 0), "{per_asset:?}");
    let mut held: HashMap<(AccountId, AssetId), i128> = HashMap::new();
    for (id, h) in state.funds().holds() {
        let account = state.orders().get(id).unwrap().account;
        *held.entry((account, h.asset)).or_default() += h.amount as i128;
    }
    held.retain(|_, v| *v != 0);
    assert_eq!(reserved, held);
    assert!(
        state
            .funds()
            .deltas()
            .any(|(a, _, d)| a == AccountId::FEES && d.available > 0),
        "fees were charged"
    );
}

/// An event journal as the exchange opens it: synced when a snapshot needs it, not per batch.
async fn open_events(dir: &std::path::Path) -> Arc<EventJournal> {
    let config = JournalConfig {
        sync_each_batch: false,
        ..JournalConfig::default()
    };
    let (events, _) = EventJournal::open(&dir.join("events"), config).unwrap();
    Arc::new(events)
}

async fn all_events(events: &EventJournal) -> Vec<EventRecord> {
    let mut out = Vec::new();
    while (out.len() as u64) < events.last_offset() {
        out.extend(
            events
                .read(out.len() as u64, 10_000)
                .await
                .unwrap()
                .into_iter()
                .map(|(_, r)| r),
        );
    }
    out
}

/// Runs a shard over `records` with an event journal, recovering from what `dir` holds.
async fn run_with_events(
    dir: &std::path::Path,
    records: Vec<LogRecord>,
    kill: bool,
) -> Vec<EventRecord> {
    let (journal, _) = Journal::open(&dir.join("journal"), JournalConfig::default()).unwrap();
    let journal = Arc::new(journal);
    let events = open_events(dir).await;
    let (shard, _) = Shard::recover(
        config(1_000_000),
        &SymbolTable::default_symbols(),
        journal.clone(),
        Arc::new(Collect::default()),
        SnapshotStore::open(&dir.join("snapshots")).unwrap(),
        Some(events.clone()),
    )
    .await
    .unwrap();
    let run = tokio::spawn(shard.run());
    let n = records.len() as u64;
    journal.append(records).await.unwrap();
    if kill {
        // Killed once everything is applied, before any snapshot: recovery replays it all.
        while events.last_offset() == 0 || journal.last_offset() < n {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        run.abort();
        let _ = run.await;
    } else {
        journal.close();
        run.await.unwrap().unwrap();
    }
    let out = all_events(&events).await;
    events.close();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_writes_the_stream_records_a_crash_lost_exactly_once() {
    let orders: Vec<LogRecord> = (0..300).map(|i| place(i, None)).collect();
    // The reference: one run that never stopped.
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = run_with_events(reference_dir.path(), orders.clone(), false).await;
    let symbols = SymbolTable::default_symbols();
    assert!(
        reference
            .iter()
            .flat_map(|r| r.clone().into_stream(ShardId(0), &symbols).events)
            .any(|e| matches!(e, exchange_core::stream::StreamEvent::Trade(_))),
        "the orders trade"
    );
    let seqs: Vec<u64> = reference.iter().map(EventRecord::seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "one record per command, in log order"
    );

    // A run killed before its first snapshot, whose event journal then lost everything after
    // its first 40 records (the event journal is not synced per batch).
    let dir = tempfile::tempdir().unwrap();
    let killed = run_with_events(dir.path(), orders, true).await;
    assert_eq!(killed, reference, "killed after writing them all");
    std::fs::remove_dir_all(dir.path().join("events")).unwrap();
    {
        let events = open_events(dir.path()).await;
        events.append(reference[..40].to_vec()).await.unwrap();
        events.close();
    }
    // Recovery replays the journal and writes the records after the 40th, once each.
    let recovered = run_with_events(dir.path(), Vec::new(), false).await;
    assert_eq!(recovered, reference);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_journal_is_synced_before_each_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) =
        Journal::open(&dir.path().join("journal"), JournalConfig::default()).unwrap();
    let journal = Arc::new(journal);
    let events = open_events(dir.path()).await;
    let snapshots = SnapshotStore::open(&dir.path().join("snapshots")).unwrap();
    let (shard, _) = Shard::recover(
        config(100),
        &SymbolTable::default_symbols(),
        journal.clone(),
        Arc::new(Collect::default()),
        snapshots.clone(),
        Some(events.clone()),
    )
    .await
    .unwrap();
    let run = tokio::spawn(shard.run());
    for i in 0..300 {
        journal.append(vec![place(i, None)]).await.unwrap();
    }
    journal.close();
    run.await.unwrap().unwrap();
    assert!(
        snapshots.load().unwrap().next().is_some(),
        "snapshots were taken"
    );
    // Still open: every sync so far was asked for by a snapshot, none by the batches.
    let syncs = events.sync_count();
    assert!(
        syncs >= 1,
        "the event journal was synced before the snapshots"
    );
    assert!(
        syncs <= 5,
        "{syncs} syncs: the event journal is not synced per batch"
    );
    events.close();
}

/// A record as event journals held them before 2026-12-06: a bare postcard `StreamRecord`.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Legacy(exchange_core::stream::StreamRecord);

impl Record for Legacy {
    const MAX_BYTES: u32 = 64 << 20;
}

#[tokio::test]
async fn an_event_journal_of_the_older_format_is_read_on_after_new_records() {
    let dir = tempfile::tempdir().unwrap();
    let symbols = SymbolTable::default_symbols();
    let mut state = ShardState::new(ShardId(0), 1, &symbols, 1_000);
    // Commands that trade: what each changed, as the shard now records it.
    let commands: Vec<CommandEvents> = (1..=20u64)
        .filter_map(|offset| {
            let mut rec = place(offset, None);
            rec.assign(offset);
            state.apply(offset, &rec)
        })
        .filter_map(|o| CommandEvents::of(&o))
        .collect();
    assert!(commands.iter().any(|c| !c.trades.is_empty()), "some trade");
    let streams: Vec<_> = commands
        .iter()
        .map(|c| c.to_stream(ShardId(0), &symbols))
        .collect();
    // An older version wrote the first ten as stream records.
    {
        let (old, _) =
            Journal::<Legacy>::open(&dir.path().join("events"), JournalConfig::default()).unwrap();
        old.append(streams[..10].iter().cloned().map(Legacy).collect())
            .await
            .unwrap();
        old.close();
    }
    // This version opens the same journal and appends the rest as they are now written.
    let (events, report) =
        EventJournal::open(&dir.path().join("events"), JournalConfig::default()).unwrap();
    assert_eq!((report.records, report.truncated_bytes), (10, 0));
    events
        .append(
            commands[10..]
                .iter()
                .cloned()
                .map(EventRecord::Command)
                .collect(),
        )
        .await
        .unwrap();
    events.close();
    let (events, report) =
        EventJournal::open(&dir.path().join("events"), JournalConfig::default()).unwrap();
    assert_eq!(report.records, commands.len() as u64);
    let read = events.read(0, 1_000).await.unwrap();
    assert!(matches!(read[0].1, EventRecord::Stream(_)));
    assert!(matches!(read[10].1, EventRecord::Command(_)));
    assert_eq!(
        exchange_shard::events::last_seq(&events).await.unwrap(),
        commands.last().unwrap().offset
    );
    // Both read as the same stream records.
    let as_streams: Vec<_> = read
        .into_iter()
        .map(|(_, r)| r.into_stream(ShardId(0), &symbols))
        .collect();
    assert_eq!(as_streams, streams);
    events.close();
}
