//! Settlement and rollup inside the running exchange: the candles and trade-history endpoints
//! read the rollup store, the settle store reconciles with the live balances, and both survive
//! a restart.

mod common;

use common::{TestExchange, assert_error};
use exchange_functions::SettleStore;
use exchange_functions::reconcile::compare;
use exchange_functions::sqlite::SqliteStore;
use exchange_functions::{BalanceRow, Counts};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Polls `check` until it returns `Some`, for at most 20 seconds.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn trade_three_times(ex: &TestExchange) {
    ex.limit(1, "SELL", "65000.00", "0.10000").await;
    ex.limit(2, "BUY", "65000.00", "0.04000").await;
    ex.limit(1, "SELL", "66000.00", "0.10000").await;
    ex.limit(2, "BUY", "66000.00", "0.15000").await;
}

fn check_day_candle(candles: &Value) {
    let c = candles.as_array().unwrap();
    assert_eq!(c.len(), 1, "{candles}");
    let c = &c[0];
    assert_eq!(
        (&c["open"], &c["high"], &c["low"], &c["close"]),
        (
            &json!("65000.00"),
            &json!("66000.00"),
            &json!("65000.00"),
            &json!("66000.00")
        ),
        "{c}"
    );
    assert_eq!(
        (&c["volume"], &c["quote_volume"], &c["trades"]),
        (&json!("0.19000"), &json!("12440"), &json!(3))
    );
    let open = c["open_time"].as_u64().unwrap();
    assert_eq!(open % 86_400_000, 0);
    assert_eq!(c["close_time"].as_u64().unwrap(), open + 86_400_000 - 1);
}

fn live_rows(ex: &TestExchange) -> Vec<BalanceRow> {
    let assets = exchange_core::SymbolTable::default_symbols();
    let mut rows: Vec<BalanceRow> = ex
        .running()
        .accounts
        .live()
        .into_iter()
        .map(|((account, asset), live)| {
            let asset = assets.assets().get(asset).unwrap();
            BalanceRow {
                account: account.0,
                asset: asset.name.clone(),
                total: asset.signed_to_decimal(live.available + live.reserved),
            }
        })
        .filter(|r| !r.total.is_zero())
        .collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_rolled_up_settled_and_survives_a_restart() {
    let ex = TestExchange::start().await;
    trade_three_times(&ex).await;

    let history = eventually("three trades in the history store", || async {
        let (s, v) = ex.get("/market-data/BTC-USD/trades/history?limit=10").await;
        (s == StatusCode::OK && v.as_array().is_some_and(|a| a.len() == 3)).then_some(v)
    })
    .await;
    let prices: Vec<_> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["price"].clone(), t["quantity"].clone()))
        .collect();
    assert_eq!(
        prices,
        [
            (json!("65000.00"), json!("0.04000")),
            (json!("65000.00"), json!("0.06000")),
            (json!("66000.00"), json!("0.09000"))
        ]
    );
    let (_, recent) = ex.get("/market-data/BTC-USD/trades?limit=1").await;
    assert_eq!(
        recent[0]["trade_id"], history[2]["trade_id"],
        "the same ids as the live trades"
    );
    let (_, day) = ex.get("/market-data/BTC-USD/candles?interval=1d").await;
    check_day_candle(&day);

    // Settlement: 3 trades, the orders, and a ledger that adds up to the live balances.
    let store = SqliteStore::open(&ex.dir.path().join("functions.db"))
        .await
        .unwrap();
    let counts = eventually("settlement to catch up", || async {
        let c = store.counts().await.unwrap();
        let balances = store.balances().await.unwrap();
        let settled = balances
            .iter()
            .filter(|b| !b.total.is_zero())
            .cloned()
            .collect::<Vec<_>>();
        (c.trades == 3 && settled == live_rows(&ex)).then_some(c)
    })
    .await;
    assert_eq!(counts.orders, 4);
    let report = compare(
        &store.balances().await.unwrap(),
        &store.ledger_totals().await.unwrap(),
        None,
    );
    assert!(report.clean(), "{report:?}");
    // The command compares the same store with the live balances over the admin API.
    let reconcile = exchange::config::AdminArgs {
        url: Some(ex.base.clone()),
        key_file: None,
        action: exchange::config::AdminAction::Reconcile,
    };
    exchange::admin::run(
        &exchange::config::Config::for_tests(ex.dir.path().to_owned()),
        reconcile,
    )
    .await
    .expect("settled balances reconcile with the ledger and the live balances");

    let ex = ex.restart().await;
    // After a restart the store still has the history (and nothing was written twice).
    let (_, again) = ex.get("/market-data/BTC-USD/trades/history?limit=10").await;
    assert_eq!(again, history);
    let (_, day) = ex.get("/market-data/BTC-USD/candles?interval=1d").await;
    check_day_candle(&day);
    let (_, minutes) = ex
        .get("/market-data/BTC-USD/candles?interval=1m&limit=1000")
        .await;
    assert_eq!(
        minutes
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["trades"].as_u64().unwrap())
            .sum::<u64>(),
        3
    );
    let after: Counts = store.counts().await.unwrap();
    assert_eq!(after, counts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_parameters_are_checked() {
    let ex = TestExchange::start().await;
    let bad = StatusCode::BAD_REQUEST;
    assert_error(
        &ex.get("/market-data/BTC-USD/candles").await,
        bad,
        1005,
        Some("interval"),
    );
    assert_error(
        &ex.get("/market-data/BTC-USD/candles?interval=2m").await,
        bad,
        1005,
        Some("interval"),
    );
    assert_error(
        &ex.get("/market-data/BTC-USD/candles?interval=1m&start=yesterday")
            .await,
        bad,
        1005,
        Some("start"),
    );
    assert_error(
        &ex.get("/market-data/BTC-USD/candles?interval=1m&start=10&end=5")
            .await,
        bad,
        1005,
        Some("end"),
    );
    assert_error(
        &ex.get("/market-data/BTC-USD/candles?interval=1m&limit=0")
            .await,
        bad,
        1005,
        Some("limit"),
    );
    assert_error(
        &ex.get("/market-data/BTC-USD/trades/history?end=-1").await,
        bad,
        1005,
        Some("end"),
    );
    let (s, v) = ex.get("/market-data/NOPE-USD/candles?interval=1m").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    // Nothing traded yet: no candles, no history.
    let (s, v) = ex
        .get("/market-data/ETH-USD/candles?interval=1h&start=0")
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!([])));
}
