//! One suite per store trait, run against every implementation: the embedded SQLite store,
//! PostgreSQL (a fresh database on the machine's server), and MongoDB when
//! `EXCHANGE_MONGODB_URL` is set.

mod common;

use common::*;
use exchange_core::stream::{StreamEvent, StreamRecord};
use exchange_functions::candles::{Interval, fold};
use exchange_functions::mongo::MongoStore;
use exchange_functions::postgres::PgStore;
use exchange_functions::sqlite::SqliteStore;
use exchange_functions::{CandleQuery, RollupStore, SettleStore, TradeQuery, rollup, settle};
use std::future::Future;

fn trades_of(records: &[StreamRecord]) -> Vec<exchange_core::stream::TradeEvent> {
    records
        .iter()
        .flat_map(|r| &r.events)
        .filter_map(|e| match e {
            StreamEvent::Trade(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

fn query(interval: Interval) -> CandleQuery {
    CandleQuery {
        symbol: "BTC-USD".into(),
        interval,
        start: None,
        end: None,
        limit: 1_000,
    }
}

/// Candles from a known trade sequence, redelivery, overlapping batches, reads.
async fn rollup_suite(store: &dyn RollupStore) {
    store.prepare().await.unwrap();
    store.prepare().await.unwrap(); // migrations are idempotent
    // Three trades in the first minute of a 5m bucket, two in the next minute, one 5m later.
    let m = |i: u64| T0 + i * MINUTE;
    let trades = [
        trade("BTC-USD", 1, m(0) + 1_000, "100.5", "1"),
        trade("BTC-USD", 2, m(0) + 2_000, "101", "0.5"),
        trade("BTC-USD", 3, m(0) + 3_000, "99.25", "0.25"),
        trade("BTC-USD", 4, m(1), "102", "2"),
        trade("BTC-USD", 5, m(1) + 5, "98", "1"),
        trade("BTC-USD", 6, m(6), "103", "0.1"),
        trade("ETH-USD", 7, m(0), "2000", "1"),
    ];
    let records: Vec<StreamRecord> = trades
        .iter()
        .enumerate()
        .map(|(i, t)| record("shard-0", i as u64 + 1, vec![StreamEvent::Trade(t.clone())]))
        .collect();
    // Out of order and overlapping: trades 3.. first, then 1..=4 again, then all again.
    let first = rollup(store, &records[2..]).await.unwrap();
    assert_eq!(first.trades, 5);
    let second = rollup(store, &records[..4]).await.unwrap();
    assert_eq!(second.trades, 2, "only trades 1 and 2 are new");
    let again = rollup(store, &records).await.unwrap();
    assert_eq!(again.trades, 0, "a redelivered batch writes nothing");

    // Hand-computed: T0 is 22:13:20, so minute 0 is the 22:13 bucket, minute 1 the 22:14 one,
    // minutes 0 and 1 share the 22:10 5m bucket, minute 6 (22:19:20) is in the 22:15 one.
    let b = |i: u64| Interval::M1.bucket(m(i));
    let one = store.candles(&query(Interval::M1)).await.unwrap();
    assert_eq!(one.len(), 3);
    let c0 = &one[0];
    assert_eq!(c0.start, b(0));
    assert_eq!(
        (c0.open, c0.high, c0.low, c0.close),
        (d("100.5"), d("101"), d("99.25"), d("99.25"))
    );
    assert_eq!((c0.volume, c0.trades), (d("1.75"), 3));
    assert_eq!(c0.quote_volume, d("100.5") + d("50.5") + d("24.8125"));
    let c1 = &one[1];
    assert_eq!(
        (c1.open, c1.high, c1.low, c1.close, c1.volume),
        (d("102"), d("102"), d("98"), d("98"), d("3"))
    );
    let five = store.candles(&query(Interval::M5)).await.unwrap();
    assert_eq!(five.len(), 2);
    assert_eq!(five[0].start, 1_699_999_800_000); // 22:10
    assert_eq!(
        (
            five[0].open,
            five[0].high,
            five[0].low,
            five[0].close,
            five[0].trades
        ),
        (d("100.5"), d("102"), d("98"), d("98"), 5)
    );
    assert_eq!((five[1].open, five[1].trades), (d("103"), 1));
    // Every interval equals a fold of all the trades at once.
    let whole = fold(trades.iter().filter(|t| t.symbol == "BTC-USD"));
    for interval in Interval::ALL {
        let stored = store.candles(&query(interval)).await.unwrap();
        let expected: Vec<_> = whole
            .values()
            .filter(|c| c.interval == interval)
            .cloned()
            .collect();
        assert_eq!(stored, expected, "{interval:?}");
    }

    // Ranges and limits: without a start, the newest; with one, from it.
    let newest = store
        .candles(&CandleQuery {
            limit: 2,
            ..query(Interval::M1)
        })
        .await
        .unwrap();
    assert_eq!(
        newest.iter().map(|c| c.start).collect::<Vec<_>>(),
        [b(1), b(6)]
    );
    let from = store
        .candles(&CandleQuery {
            start: Some(b(1)),
            limit: 1,
            ..query(Interval::M1)
        })
        .await
        .unwrap();
    assert_eq!(from[0].start, b(1));
    let upto = store
        .candles(&CandleQuery {
            end: Some(b(1)),
            ..query(Interval::M1)
        })
        .await
        .unwrap();
    assert_eq!(upto.len(), 2);

    let history = store
        .trades(&TradeQuery {
            symbol: "BTC-USD".into(),
            start: Some(m(1) / 1_000_000),
            end: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        history.iter().map(|t| t.trade_id).collect::<Vec<_>>(),
        [4, 5, 6]
    );
    assert_eq!((history[0].price, history[0].quantity), (d("102"), d("2")));
    assert_eq!(history[0].time, trades[3].time);
    let last = store
        .trades(&TradeQuery {
            symbol: "ETH-USD".into(),
            start: None,
            end: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].taker_side, trades[6].taker_side);
}

/// Trades, order versions, ledger and balances, with redelivery in other batches.
async fn settle_suite(store: &dyn SettleStore) {
    store.prepare().await.unwrap();
    let records: Vec<StreamRecord> = (1..=20).map(|n| trade_record("shard-1", n, n)).collect();
    let first = settle(store, &records[..12]).await.unwrap();
    assert_eq!((first.trades, first.ledger), (12, 72));
    // Redelivered in other batches, overlapping what was written.
    settle(store, &records[5..15]).await.unwrap();
    settle(store, &records).await.unwrap();
    settle(store, &records[19..]).await.unwrap();
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.trades, counts.orders, counts.ledger), (20, 20, 120));

    let balances = store.balances().await.unwrap();
    assert_eq!(balances, store.ledger_totals().await.unwrap());
    let total = |account: u64, asset: &str| {
        balances
            .iter()
            .find(|b| b.account == account && b.asset == asset)
            .map(|b| b.total)
            .unwrap()
    };
    // Account 1 paid 0.5 × (101 + ... + 120) USD and got 10 BTC; account 2 the reverse, less
    // 0.20 USD of fees, which account 0 holds.
    let paid = d("0.5") * rust_decimal::Decimal::from((101..=120).sum::<u64>());
    assert_eq!(total(1, "USD"), -paid);
    assert_eq!(total(1, "BTC"), d("10"));
    assert_eq!(total(2, "USD"), paid - d("0.20"));
    assert_eq!(total(2, "BTC"), d("-10"));
    assert_eq!(total(0, "USD"), d("0.20"));

    // Orders keep their newest version whatever order the versions arrive in.
    let newer = record(
        "shard-1",
        30,
        vec![StreamEvent::Order(order(10, 30, "CANCELLED", "0.5"))],
    );
    let older = record(
        "shard-1",
        25,
        vec![StreamEvent::Order(order(10, 25, "PARTIALLY_FILLED", "0.5"))],
    );
    settle(store, &[newer]).await.unwrap();
    settle(store, &[older]).await.unwrap();
    let o = store.order(10).await.unwrap().unwrap();
    assert_eq!((o.status.as_str(), o.version), ("CANCELLED", 30));
    assert_eq!(o.price, Some(d("100")));
    assert_eq!(store.order(999_999).await.unwrap(), None);
}

async fn sqlite<F, Fut>(run: F)
where
    F: Fn(SqliteStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    run(SqliteStore::open(&dir.path().join("functions.db"))
        .await
        .unwrap())
    .await;
}

#[tokio::test]
async fn rollup_on_the_embedded_store() {
    sqlite(|s| async move { rollup_suite(&s).await }).await;
}

#[tokio::test]
async fn settle_on_the_embedded_store() {
    sqlite(|s| async move { settle_suite(&s).await }).await;
}

#[tokio::test]
async fn rollup_on_postgres() {
    let db = FreshDb::create("rollup").await;
    let store = PgStore::connect(&db.url).await.unwrap();
    rollup_suite(&store).await;
    // Without TimescaleDB the migrations leave a plain table; with it, a hypertable.
    let timescale: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(store.is_hypertable().await.unwrap(), timescale);
    store.pool().close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn stores_keep_their_history_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("functions.db");
    let records: Vec<StreamRecord> = (1..=5).map(|n| trade_record("shard-0", n, n)).collect();
    {
        let s = SqliteStore::open(&path).await.unwrap();
        rollup(&s, &records).await.unwrap();
        settle(&s, &records).await.unwrap();
    }
    let s = SqliteStore::open(&path).await.unwrap();
    assert_eq!(rollup(&s, &records).await.unwrap().trades, 0);
    assert_eq!(
        RollupStore::trades(
            &s,
            &TradeQuery {
                symbol: "BTC-USD".into(),
                start: None,
                end: None,
                limit: 100,
            }
        )
        .await
        .unwrap()
        .len(),
        5
    );
    assert_eq!(s.counts().await.unwrap().ledger, 30);

    let db = FreshDb::create("restart").await;
    {
        let pg = PgStore::connect(&db.url).await.unwrap();
        pg.prepare().await.unwrap();
        rollup(&pg, &records).await.unwrap();
        pg.pool().close().await;
    }
    let pg = PgStore::connect(&db.url).await.unwrap();
    pg.prepare().await.unwrap();
    assert_eq!(rollup(&pg, &records).await.unwrap().trades, 0);
    let candles = pg.candles(&query(Interval::D1)).await.unwrap();
    assert_eq!((candles.len(), candles[0].trades), (1, 5));
    assert_eq!(trades_of(&records).len(), 5);
    pg.pool().close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn settle_on_mongodb_when_configured() {
    let Ok(url) = std::env::var("EXCHANGE_MONGODB_URL") else {
        eprintln!("SKIPPED: settle on MongoDB (EXCHANGE_MONGODB_URL is not set)");
        return;
    };
    let name = format!("exchange_test_{}", std::process::id());
    let store = MongoStore::connect(&url, &name).await.unwrap();
    settle_suite(&store).await;
    store.database().drop().await.unwrap();
}

#[tokio::test]
async fn timescale_hypertable_when_configured() {
    let Ok(url) = std::env::var("EXCHANGE_DATABASE_URL") else {
        eprintln!("SKIPPED: TimescaleDB (EXCHANGE_DATABASE_URL is not set)");
        return;
    };
    let store = PgStore::connect(&url).await.unwrap();
    let available: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    if !available {
        eprintln!("SKIPPED: TimescaleDB (the server at EXCHANGE_DATABASE_URL does not have it)");
        return;
    }
    store.prepare().await.unwrap();
    assert!(
        store.is_hypertable().await.unwrap(),
        "trades is a hypertable"
    );
}
