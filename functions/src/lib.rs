//! exchange-functions: the handlers that turn the shards' event streams into history.
//!
//! - **settle** writes trades, order states and the ledger (with the balances it moves) to a
//!   [`SettleStore`]: MongoDB in a cluster ([`mongo`]), the embedded store otherwise.
//! - **rollup** writes trade history and OHLCV candles to a [`RollupStore`]:
//!   PostgreSQL/TimescaleDB ([`postgres`], migrations in `migrations/`), the embedded store
//!   otherwise.
//!
//! Each handler is one async function over a batch of [`StreamRecord`]s ([`settle`],
//! [`rollup`]), with two entry points: a Lambda binary each (`src/bin/`, see [`lambda`]) and a
//! local [`worker`] that consumes the streams of the running exchange.
//!
//! Delivery is at least once and in per-source order, so every write is idempotent: trades are
//! keyed by trade id, orders keep their highest version, ledger entries are keyed by account
//! and entry id, and a balance only takes the entries it has not taken (see each store).
//!
//! The embedded store ([`sqlite`]) implements both traits; `tests/stores.rs` runs one suite
//! against every implementation.
//!
//! [`host`] runs the workers inside an exchange or shard process, as idle work, over the
//! stores chosen by configuration; its `AccountsSource` feeds the embedded accounts' transfers
//! to settlement.

pub mod candles;
pub mod host;
pub mod lambda;
pub mod mongo;
pub mod postgres;
pub mod reconcile;
pub mod sqlite;
pub mod worker;

use async_trait::async_trait;
pub use candles::{Candle, Interval};
use exchange_core::stream::{LedgerEvent, OrderEvent, StreamEvent, StreamRecord, TradeEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Why a store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("mongodb: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error("stored data does not read back: {0}")]
    Corrupt(String),
}

/// A ledger entry with its position in its source: `seq << 20 | index in the record`. A
/// balance remembers, per source, the highest position it took, so a redelivered entry is
/// never added twice whatever the batches it comes in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posted {
    pub source: String,
    pub pos: i64,
    pub entry: LedgerEvent,
}

/// What settle writes for a batch of records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettleBatch {
    pub trades: Vec<TradeEvent>,
    /// The newest state of each order in the batch.
    pub orders: Vec<OrderEvent>,
    pub ledger: Vec<Posted>,
}

impl SettleBatch {
    /// Sorts a batch's events out of its records.
    pub fn of(records: &[StreamRecord]) -> Self {
        let mut batch = SettleBatch::default();
        let mut orders: HashMap<u64, OrderEvent> = HashMap::new();
        for r in records {
            let mut index = 0i64;
            for e in &r.events {
                match e {
                    StreamEvent::Trade(t) => batch.trades.push(t.clone()),
                    StreamEvent::Order(o) => {
                        if orders
                            .get(&o.order_id)
                            .is_none_or(|have| have.version < o.version)
                        {
                            orders.insert(o.order_id, o.clone());
                        }
                    }
                    StreamEvent::Ledger(l) => {
                        batch.ledger.push(Posted {
                            source: r.source.clone(),
                            pos: ((r.seq as i64) << 20) | index,
                            entry: l.clone(),
                        });
                        index += 1;
                    }
                }
            }
        }
        batch.orders = orders.into_values().collect();
        batch.orders.sort_unstable_by_key(|o| o.order_id);
        batch
    }
}

/// How many of a batch's writes were new (the rest had been written before).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    pub trades: u64,
    pub orders: u64,
    pub ledger: u64,
    pub candles: u64,
}

/// An account's total balance of an asset.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BalanceRow {
    pub account: u64,
    pub asset: String,
    pub total: Decimal,
}

/// How many of each a settle store holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub trades: u64,
    pub orders: u64,
    pub ledger: u64,
}

/// Where settle writes.
#[async_trait]
pub trait SettleStore: Send + Sync + 'static {
    /// Creates what the store needs (collections, indexes, tables). Idempotent.
    async fn prepare(&self) -> Result<(), StoreError>;

    /// Writes a batch idempotently: once it returns, it is durable.
    async fn settle(&self, batch: &SettleBatch) -> Result<Written, StoreError>;

    /// Every balance, sorted by account and asset.
    async fn balances(&self) -> Result<Vec<BalanceRow>, StoreError>;

    /// The sum of the ledger per account and asset, sorted likewise.
    async fn ledger_totals(&self) -> Result<Vec<BalanceRow>, StoreError>;

    /// An order's stored state.
    async fn order(&self, order_id: u64) -> Result<Option<OrderEvent>, StoreError>;

    /// How much it holds.
    async fn counts(&self) -> Result<Counts, StoreError>;
}

/// Which candles to read. Without `start`, the newest `limit` up to `end`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CandleQuery {
    pub symbol: String,
    pub interval: Interval,
    /// Milliseconds since the epoch: buckets starting at or after it.
    pub start: Option<u64>,
    /// Milliseconds since the epoch: buckets starting at or before it.
    pub end: Option<u64>,
    pub limit: usize,
}

/// Which trades to read. Without `start`, the newest `limit` up to `end`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TradeQuery {
    pub symbol: String,
    /// Milliseconds since the epoch, inclusive.
    pub start: Option<u64>,
    /// Milliseconds since the epoch, inclusive.
    pub end: Option<u64>,
    pub limit: usize,
}

/// The newest millisecond a read can name. An open end reads as this, not `i64::MAX`:
/// PostgreSQL multiplies milliseconds into an interval and the embedded store keeps trade times
/// in microseconds, and both must read an open range alike.
pub const OPEN_END_MS: i64 = i64::MAX / 1_000_000;

/// A history read as every store runs it: an inclusive range in milliseconds (open ends as the
/// epoch and [`OPEN_END_MS`]), at most `limit` rows, the newest first when no start was given
/// (the store sorts them back to oldest first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadWindow {
    pub start_ms: i64,
    pub end_ms: i64,
    pub newest_first: bool,
    pub limit: i64,
}

impl ReadWindow {
    fn new(start: Option<u64>, end: Option<u64>, limit: usize) -> Self {
        let ms = |t: u64| t.min(OPEN_END_MS as u64) as i64;
        Self {
            start_ms: start.map_or(0, ms),
            end_ms: end.map_or(OPEN_END_MS, ms),
            newest_first: start.is_none(),
            limit: limit.min(i64::MAX as usize) as i64,
        }
    }
}

impl CandleQuery {
    /// The read every store runs.
    pub fn window(&self) -> ReadWindow {
        ReadWindow::new(self.start, self.end, self.limit)
    }
}

impl TradeQuery {
    /// The read every store runs.
    pub fn window(&self) -> ReadWindow {
        ReadWindow::new(self.start, self.end, self.limit)
    }
}

/// Where rollup writes, and where the history endpoints read.
#[async_trait]
pub trait RollupStore: Send + Sync + 'static {
    /// Runs the migrations. Idempotent.
    async fn prepare(&self) -> Result<(), StoreError>;

    /// Stores the trades not stored yet and folds exactly those into the candles, atomically:
    /// a redelivered trade changes nothing.
    async fn roll(&self, trades: &[TradeEvent]) -> Result<Written, StoreError>;

    /// Candles in ascending order of their start.
    async fn candles(&self, q: &CandleQuery) -> Result<Vec<Candle>, StoreError>;

    /// Trades in ascending order of their id.
    async fn trades(&self, q: &TradeQuery) -> Result<Vec<TradeEvent>, StoreError>;
}

/// The settle handler: writes a batch's trades, order states and ledger.
pub async fn settle(
    store: &dyn SettleStore,
    records: &[StreamRecord],
) -> Result<Written, StoreError> {
    let batch = SettleBatch::of(records);
    store.settle(&batch).await
}

/// The rollup handler: writes a batch's trades and folds them into candles.
pub async fn rollup(
    store: &dyn RollupStore,
    records: &[StreamRecord],
) -> Result<Written, StoreError> {
    let trades: Vec<TradeEvent> = records
        .iter()
        .flat_map(|r| &r.events)
        .filter_map(|e| match e {
            StreamEvent::Trade(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    if trades.is_empty() {
        return Ok(Written::default());
    }
    store.roll(&trades).await
}

/// Microseconds since the epoch of a time in nanoseconds (what SQL timestamps hold).
pub fn micros(ns: u64) -> i64 {
    (ns / 1_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_store_reads_the_same_window() {
        let q = |start, end| TradeQuery {
            symbol: "BTC-USD".into(),
            start,
            end,
            limit: 10,
        };
        assert_eq!(
            q(None, None).window(),
            ReadWindow {
                start_ms: 0,
                end_ms: OPEN_END_MS,
                newest_first: true,
                limit: 10
            }
        );
        let from = q(Some(5), Some(9)).window();
        assert_eq!(
            (from.start_ms, from.end_ms, from.newest_first),
            (5, 9, false)
        );
        // No end past what a store can multiply into microseconds.
        assert_eq!(q(None, Some(u64::MAX)).window().end_ms, OPEN_END_MS);
        assert!(OPEN_END_MS.checked_mul(1_000).is_some());
    }
}
