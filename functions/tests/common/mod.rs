//! Stream records for the functions' tests, and the stores to run them against.
#![allow(dead_code)]

use exchange_core::Side;
use exchange_core::stream::{
    LedgerEvent, LedgerKind, OrderEvent, StreamEvent, StreamRecord, TradeEvent,
};
use exchange_functions::postgres::PgStore;
use rust_decimal::Decimal;
use std::str::FromStr;

pub fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// 2023-11-14T22:13:20Z, in nanoseconds: a whole hour minus 40 minutes.
pub const T0: u64 = 1_700_000_000_000_000_000;
pub const MINUTE: u64 = 60_000_000_000;

pub fn trade(symbol: &str, id: u64, time: u64, price: &str, qty: &str) -> TradeEvent {
    TradeEvent {
        symbol: symbol.into(),
        trade_id: id,
        price: d(price),
        quantity: d(qty),
        taker_side: if id.is_multiple_of(2) {
            Side::Buy
        } else {
            Side::Sell
        },
        maker_order_id: id * 10,
        taker_order_id: id * 10 + 1,
        maker_account: 1,
        taker_account: 2,
        time,
    }
}

pub fn order(id: u64, version: u64, status: &str, filled: &str) -> OrderEvent {
    OrderEvent {
        order_id: id,
        account: 1,
        symbol: "BTC-USD".into(),
        client_order_id: Some(format!("c{id}")),
        side: Side::Buy,
        order_type: "LIMIT".into(),
        price: Some(d("100")),
        quantity: Some(d("2")),
        status: status.into(),
        cancel_reason: None,
        filled_quantity: d(filled),
        filled_quote: d(filled) * d("100"),
        created: T0,
        updated: T0 + version,
        version,
    }
}

pub fn ledger(account: u64, entry: &str, asset: &str, amount: &str) -> LedgerEvent {
    LedgerEvent {
        entry_id: entry.into(),
        account,
        asset: asset.into(),
        amount: d(amount),
        kind: if entry.starts_with("fee") {
            LedgerKind::Fee
        } else {
            LedgerKind::Trade
        },
        reference: entry.into(),
        symbol: Some("BTC-USD".into()),
        time: T0,
    }
}

/// A record of `source` at `seq`.
pub fn record(source: &str, seq: u64, events: Vec<StreamEvent>) -> StreamRecord {
    StreamRecord {
        source: source.into(),
        seq,
        time: T0 + seq,
        events,
    }
}

/// The record of trade `n` on BTC-USD: the trade, the maker's order, and the ledger of both
/// sides (account 1 buys 0.5 BTC at 100 + n from account 2, who pays a 0.01 USD fee).
pub fn trade_record(source: &str, seq: u64, n: u64) -> StreamRecord {
    let price = Decimal::from(100 + n);
    let quote = price * d("0.5");
    let t = trade("BTC-USD", n, T0 + n * MINUTE / 4, &price.to_string(), "0.5");
    record(
        source,
        seq,
        vec![
            StreamEvent::Trade(t),
            StreamEvent::Order(order(n * 10, seq, "FILLED", "0.5")),
            StreamEvent::Ledger(ledger(
                1,
                &format!("trade:{n}:maker:USD"),
                "USD",
                &(-quote).to_string(),
            )),
            StreamEvent::Ledger(ledger(1, &format!("trade:{n}:maker:BTC"), "BTC", "0.5")),
            StreamEvent::Ledger(ledger(2, &format!("trade:{n}:taker:BTC"), "BTC", "-0.5")),
            StreamEvent::Ledger(ledger(
                2,
                &format!("trade:{n}:taker:USD"),
                "USD",
                &quote.to_string(),
            )),
            StreamEvent::Ledger(ledger(2, &format!("fee:{n}:taker"), "USD", "-0.01")),
            StreamEvent::Ledger(ledger(0, &format!("fee:{n}:taker"), "USD", "0.01")),
        ],
    )
}

/// The server the PostgreSQL tests use: `EXCHANGE_TEST_POSTGRES_URL`, or the machine's own.
pub fn postgres_server() -> String {
    std::env::var("EXCHANGE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A fresh database on the PostgreSQL server, dropped by [`FreshDb::drop_now`].
pub struct FreshDb {
    pub url: String,
    name: String,
}

impl FreshDb {
    pub async fn create(tag: &str) -> Self {
        let name = format!(
            "exchange_test_{tag}_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let admin = PgStore::connect(&format!("{}/test", postgres_server()))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL at {} is needed for these tests (set EXCHANGE_TEST_POSTGRES_URL): {e}",
                    postgres_server()
                )
            });
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(admin.pool())
            .await
            .unwrap();
        admin.pool().close().await;
        Self {
            url: format!("{}/{name}", postgres_server()),
            name,
        }
    }

    pub async fn drop_now(self) {
        let admin = PgStore::connect(&format!("{}/test", postgres_server()))
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(admin.pool())
        .await
        .unwrap();
        admin.pool().close().await;
    }
}
