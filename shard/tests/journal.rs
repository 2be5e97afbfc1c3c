//! The embedded journal: offsets and ids, durability across reopen, torn and corrupt tails,
//! group commit under concurrent appends, and readers that wait.

use exchange_core::*;
use exchange_shard::{Journal, JournalConfig, LogRecord};
use std::sync::Arc;

fn place(symbol: u16, account: u64) -> LogRecord {
    LogRecord {
        ts: Timestamp(1),
        cmd: Command::Place(NewOrder {
            symbol: SymbolId(symbol),
            order_id: OrderId(0),
            account: AccountId(account),
            client_order_id: None,
            side: Side::Buy,
            order_type: OrderType::Limit {
                price: Price(100),
                qty: Qty(1),
                tif: TimeInForce::Gtc,
                post_only: false,
            },
            stp: StpMode::None,
        }),
        hold: Hold::default(),
    }
}

/// Where the records of a segment's bytes end: the writer preallocates zeros after them, so
/// this is where a power cut would tear the next write.
fn records_end(bytes: &[u8]) -> usize {
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        at += 8 + len;
    }
    at
}

fn order_id(rec: &LogRecord) -> OrderId {
    match rec.cmd {
        Command::Place(o) => o.order_id,
        _ => panic!("not a place"),
    }
}

#[tokio::test]
async fn appends_assign_offsets_and_order_ids_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    {
        let (j, report) = Journal::<LogRecord>::open(&path, JournalConfig::default()).unwrap();
        assert_eq!(report.records, 0);
        let a = j.append(vec![place(2, 1), place(3, 1)]).await.unwrap();
        assert_eq!(a.iter().map(|e| e.0).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(order_id(&a[0].1), OrderId::compose(SymbolId(2), 1));
        assert_eq!(order_id(&a[1].1), OrderId::compose(SymbolId(3), 2));
        let b = j.append(vec![place(2, 9)]).await.unwrap();
        assert_eq!(b[0].0, 3);
        assert_eq!(j.read(1, 10).await.unwrap(), [a[1], b[0]]);
    }
    let (j, report) = Journal::<LogRecord>::open(&path, JournalConfig::default()).unwrap();
    assert_eq!((report.records, report.truncated_bytes), (3, 0));
    assert_eq!(j.last_offset(), 3);
    let all = j.read(0, 10).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(order_id(&all[2].1), OrderId::compose(SymbolId(2), 3));
    assert_eq!(j.read(0, 2).await.unwrap().len(), 2, "max is honoured");
    let c = j.append(vec![place(2, 1)]).await.unwrap();
    assert_eq!(c[0].0, 4, "offsets continue after a reopen");
}

#[tokio::test]
async fn a_torn_tail_is_truncated_and_nothing_before_it_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    {
        let (j, _) = Journal::<LogRecord>::open(&path, JournalConfig::default()).unwrap();
        j.append(vec![place(1, 1), place(1, 2), place(1, 3)])
            .await
            .unwrap();
    }
    let segment = path.join("00000000000000000001.log");
    let mut bytes = std::fs::read(&segment).unwrap();
    let clean = records_end(&bytes);
    assert!(
        bytes.len() > clean,
        "space is preallocated after the records"
    );
    // A power cut in the middle of the next record: a header promising more than was written.
    let torn = [&40u32.to_le_bytes()[..], &[1, 2, 3, 4, 5, 6]].concat();
    bytes[clean..clean + torn.len()].copy_from_slice(&torn);
    std::fs::write(&segment, &bytes).unwrap();
    let (j, report) = Journal::<LogRecord>::open(&path, JournalConfig::default()).unwrap();
    assert_eq!(report.records, 3);
    assert_eq!(report.truncated_bytes, (bytes.len() - clean) as u64);
    // Its promised 40 bytes are there, but zeros where the write stopped: the checksum fails.
    assert!(report.reason.unwrap().contains("checksum"));
    // Cut back to the records: nothing of the torn write is left to be read as a record later.
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), clean as u64);
    assert_eq!(j.read(0, 10).await.unwrap().len(), 3);
    assert_eq!(j.append(vec![place(1, 4)]).await.unwrap()[0].0, 4);
}

#[tokio::test]
async fn a_corrupt_last_record_is_detected_by_its_crc() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    {
        let (j, _) = Journal::<LogRecord>::open(&path, JournalConfig::default()).unwrap();
        j.append(vec![place(1, 1), place(1, 2)]).await.unwrap();
    }
    let segment = path.join("00000000000000000001.log");
    let mut bytes = std::fs::read(&segment).unwrap();
    let last = records_end(&bytes) - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&segment, &bytes).unwrap();
    let (j, report) = Journal::<LogRecord>::open(&path, JournalConfig::default()).unwrap();
    assert_eq!(report.records, 1);
    assert!(report.reason.unwrap().contains("checksum"));
    assert_eq!(j.read(0, 10).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_record_of_another_format_is_refused_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    {
        let (j, _) = Journal::<LogRecord>::open(&path, JournalConfig::default()).unwrap();
        j.append(vec![place(1, 1)]).await.unwrap();
    }
    // A record written whole (its checksum holds) that this version cannot decode.
    let segment = path.join("00000000000000000001.log");
    let mut bytes = std::fs::read(&segment).unwrap();
    let payload = [0xff_u8; 12];
    let end = records_end(&bytes);
    let whole = [
        &(payload.len() as u32).to_le_bytes()[..],
        &crc32fast::hash(&payload).to_le_bytes(),
        &payload,
    ]
    .concat();
    bytes[end..end + whole.len()].copy_from_slice(&whole);
    std::fs::write(&segment, &bytes).unwrap();
    let err = Journal::<LogRecord>::open(&path, JournalConfig::default())
        .err()
        .expect("the journal refuses to open");
    assert!(err.to_string().contains("does not decode"), "{err}");
    assert_eq!(
        std::fs::read(&segment).unwrap(),
        bytes,
        "nothing was cut away"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_are_group_committed_with_unique_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(&dir.path().join("journal"), JournalConfig::default()).unwrap();
    let j = Arc::new(j);
    let tasks: Vec<_> = (0..200u64)
        .map(|i| {
            let j = Arc::clone(&j);
            tokio::spawn(async move { j.append(vec![place(1, i)]).await.unwrap()[0] })
        })
        .collect();
    let mut offsets = Vec::new();
    for t in tasks {
        let (offset, rec) = t.await.unwrap();
        assert_eq!(order_id(&rec).local(), offset);
        offsets.push(offset);
    }
    offsets.sort_unstable();
    assert_eq!(offsets, (1..=200).collect::<Vec<_>>());
    let read = j.read(0, 1000).await.unwrap();
    assert_eq!(read.len(), 200);
    assert!(read.windows(2).all(|w| w[0].0 + 1 == w[1].0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_wait_for_appends_and_see_the_close() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(&dir.path().join("journal"), JournalConfig::default()).unwrap();
    let j = Arc::new(j);
    let reader = {
        let j = Arc::clone(&j);
        tokio::spawn(async move { j.read(0, 10).await.unwrap() })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!reader.is_finished(), "nothing to read yet");
    j.append(vec![place(1, 1)]).await.unwrap();
    let got = tokio::time::timeout(std::time::Duration::from_secs(5), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 1);
    let waiting = {
        let j = Arc::clone(&j);
        tokio::spawn(async move { j.read(1, 10).await.unwrap() })
    };
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    j.close();
    let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    assert!(got.is_empty(), "a closed, drained log reads empty");
    assert!(j.append(vec![place(1, 1)]).await.is_err());
    assert_eq!(
        j.read(0, 10).await.unwrap().len(),
        1,
        "what was appended stays readable"
    );
}

#[tokio::test]
async fn acknowledged_records_are_let_go() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(&dir.path().join("journal"), JournalConfig::default()).unwrap();
    j.append(vec![place(1, 1), place(1, 2), place(1, 3)])
        .await
        .unwrap();
    j.ack(2);
    assert_eq!(j.read(2, 10).await.unwrap().len(), 1);
    assert!(j.read(0, 10).await.is_err(), "offset 1 was acknowledged");
}

#[tokio::test]
async fn a_reader_behind_the_records_in_memory_reads_the_rest_from_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig {
        memory_records: 4,
        ..JournalConfig::default()
    };
    let (j, _) = Journal::<LogRecord>::open(&dir.path().join("journal"), config).unwrap();
    for i in 0..10 {
        j.append(vec![place(1, i), place(2, i)]).await.unwrap();
    }
    assert_eq!(
        j.held_in_memory(),
        4,
        "memory holds only the newest records"
    );
    // From the files, then from memory, in pieces that cross from one to the other.
    let mut read = Vec::new();
    while read.len() < 20 {
        read.extend(j.read(read.len() as u64, 3).await.unwrap());
    }
    assert_eq!(
        read.iter().map(|e| e.0).collect::<Vec<_>>(),
        (1..=20).collect::<Vec<_>>()
    );
    for (offset, rec) in &read {
        let i = (offset - 1) / 2;
        let symbol = if offset % 2 == 1 { 1 } else { 2 };
        let Command::Place(o) = rec.cmd else {
            panic!("not a place")
        };
        assert_eq!((o.account, o.symbol), (AccountId(i), SymbolId(symbol)));
    }
    // What is read from the files is what memory held: every order id once, in offset order.
    let ids: Vec<OrderId> = read.iter().map(|e| order_id(&e.1)).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 20);
    j.ack(20);
    assert_eq!(j.held_in_memory(), 0);
}

fn small_segments() -> JournalConfig {
    // About three records per segment.
    JournalConfig {
        segment_bytes: 150,
        ..JournalConfig::default()
    }
}

#[tokio::test]
async fn segments_rotate_reopen_and_go_once_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    {
        let (j, _) = Journal::<LogRecord>::open(&path, small_segments()).unwrap();
        for i in 0..20 {
            j.append(vec![place(1, i)]).await.unwrap();
        }
        assert!(j.segment_count() > 3, "only {} segments", j.segment_count());
        let all = j.read(0, 100).await.unwrap();
        assert_eq!(
            all.iter().map(|e| e.0).collect::<Vec<_>>(),
            (1..=20).collect::<Vec<_>>()
        );
    }
    let (j, report) = Journal::<LogRecord>::open(&path, small_segments()).unwrap();
    assert_eq!(report.records, 20);
    assert!(report.segments > 3);
    // Reading from the files crosses segment boundaries batch by batch.
    let mut after = 0;
    while after < 20 {
        let batch = j.read(after, 100).await.unwrap();
        assert_eq!(batch[0].0, after + 1);
        after = batch.last().unwrap().0;
    }
    let before = j.segment_count();
    j.ack(15);
    assert!(j.segment_count() < before, "covered segments are deleted");
    assert_eq!(
        j.read(15, 100).await.unwrap().len(),
        5,
        "what is not covered stays"
    );
    drop(j);
    let (j, report) = Journal::<LogRecord>::open(&path, small_segments()).unwrap();
    assert_eq!(j.last_offset(), 20);
    assert_eq!(
        report.records as usize,
        j.read(20 - report.records, 100).await.unwrap().len()
    );
    assert_eq!(j.append(vec![place(1, 99)]).await.unwrap()[0].0, 21);
}

#[tokio::test]
async fn damage_before_the_last_segment_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    {
        let (j, _) = Journal::<LogRecord>::open(&path, small_segments()).unwrap();
        for i in 0..10 {
            j.append(vec![place(1, i)]).await.unwrap();
        }
    }
    let first = path.join("00000000000000000001.log");
    let mut bytes = std::fs::read(&first).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&first, &bytes).unwrap();
    match Journal::<LogRecord>::open(&path, small_segments()) {
        Err(exchange_shard::LogError::Corrupt { reason, .. }) => {
            assert!(reason.contains("not the last segment"), "{reason}")
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a damaged middle segment must not open"),
    }
}

#[tokio::test]
async fn a_journal_synced_on_request_syncs_only_when_asked_and_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events");
    let config = JournalConfig {
        sync_each_batch: false,
        ..JournalConfig::default()
    };
    let (j, _) = Journal::<LogRecord>::open(&path, config).unwrap();
    for i in 0..5 {
        j.append(vec![place(1, i)]).await.unwrap();
    }
    assert_eq!(j.sync_count(), 0, "appends alone do not sync");
    j.sync().await.unwrap();
    assert_eq!(j.sync_count(), 1);
    j.sync().await.unwrap();
    assert_eq!(j.sync_count(), 1, "nothing written since the last sync");
    j.append(vec![place(1, 9)]).await.unwrap();
    j.close();
    assert_eq!(j.sync_count(), 2, "closing syncs what was written");
    let (j, report) = Journal::<LogRecord>::open(&path, config).unwrap();
    assert_eq!(report.records, 6);
    assert_eq!(j.read(0, 10).await.unwrap().len(), 6);

    // Leaving a segment syncs what it holds: later syncs reach only the new file.
    let small = JournalConfig {
        segment_bytes: 150,
        ..config
    };
    let (j, _) = Journal::<LogRecord>::open(&dir.path().join("rotating"), small).unwrap();
    j.append(vec![place(1, 1)]).await.unwrap();
    assert_eq!(j.sync_count(), 0);
    while j.segment_count() < 2 {
        j.append(vec![place(1, 2)]).await.unwrap();
    }
    assert_eq!(
        j.sync_count(),
        1,
        "the first segment was synced as it was left"
    );
    j.close();

    // A command log syncs every batch; sync() then has nothing left to do.
    let (j, _) =
        Journal::<LogRecord>::open(&dir.path().join("commands"), JournalConfig::default()).unwrap();
    for i in 0..3 {
        j.append(vec![place(1, i)]).await.unwrap();
    }
    assert_eq!(j.sync_count(), 3);
    j.sync().await.unwrap();
    j.close();
    assert_eq!(j.sync_count(), 3);

    // Without fsync nothing is ever synced.
    let off = JournalConfig {
        fsync: false,
        ..JournalConfig::default()
    };
    let (j, _) = Journal::<LogRecord>::open(&dir.path().join("off"), off).unwrap();
    j.append(vec![place(1, 1)]).await.unwrap();
    j.sync().await.unwrap();
    j.close();
    assert_eq!(j.sync_count(), 0);
}

#[tokio::test]
async fn preallocated_space_reopens_clean_and_appends_continue_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    let segment = path.join("00000000000000000001.log");
    {
        let (j, _) = Journal::<LogRecord>::open(&path, JournalConfig::default()).unwrap();
        j.append(vec![place(1, 1), place(1, 2)]).await.unwrap();
    }
    let bytes = std::fs::read(&segment).unwrap();
    let end = records_end(&bytes);
    assert_eq!(
        bytes.len() as u64,
        JournalConfig::default().preallocate_bytes,
        "zeros follow the records"
    );
    assert!(bytes[end..].iter().all(|&b| b == 0));
    for round in 0..2 {
        let (j, report) = Journal::<LogRecord>::open(&path, JournalConfig::default()).unwrap();
        assert_eq!(
            report.truncated_bytes, 0,
            "preallocated zeros are not a torn tail"
        );
        assert_eq!(report.reason, None);
        assert_eq!(report.records, 2 + round);
        let a = j.append(vec![place(1, 3 + round)]).await.unwrap();
        assert_eq!(
            a[0].0,
            3 + round,
            "appends continue after the records, not the zeros"
        );
        assert_eq!(j.read(2 + round, 10).await.unwrap(), a);
    }
    let (j, _) = Journal::<LogRecord>::open(&path, JournalConfig::default()).unwrap();
    let all = j.read(0, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(order_id(&all[3].1), OrderId::compose(SymbolId(1), 4));
}

#[tokio::test]
async fn a_polling_writer_answers_appends_while_busy_and_after_it_has_gone_idle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    let every = std::time::Duration::from_millis(1);
    let config = JournalConfig {
        poll_every: Some(every),
        ..JournalConfig::default()
    };
    async fn answered<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(std::time::Duration::from_secs(10), f)
            .await
            .expect("the append is answered")
    }
    {
        let (j, _) = Journal::<LogRecord>::open(&path, config).unwrap();
        // Busy: submitted back to back, gathered by the polling writer, answered in order.
        let pending: Vec<_> = (0..50)
            .map(|i| j.submit(vec![place(1, i)]).unwrap())
            .collect();
        let mut firsts = Vec::new();
        for p in pending {
            firsts.push(answered(p).await.unwrap().unwrap());
        }
        assert_eq!(firsts, (1..=50).collect::<Vec<u64>>());
        assert!(
            j.sync_count() < 50,
            "the writer gathered appends into batches ({} syncs)",
            j.sync_count()
        );
        // Idle long enough for the writer to stop looking and wait to be woken.
        tokio::time::sleep(every * (exchange_shard::journal::IDLE_POLLS * 3)).await;
        for i in 50..60 {
            answered(j.append(vec![place(1, i)])).await.unwrap();
        }
        answered(j.sync()).await.unwrap();
    }
    let (j, report) = Journal::<LogRecord>::open(&path, JournalConfig::default()).unwrap();
    assert_eq!(report.records, 60);
    let read = j.read(0, 100).await.unwrap();
    assert_eq!(
        read.iter().map(|e| e.0).collect::<Vec<_>>(),
        (1..=60).collect::<Vec<_>>()
    );
}
