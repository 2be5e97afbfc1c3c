//! The embedded store: SQLite through sqlx, one file under the data directory, implementing
//! both [`SettleStore`] and [`RollupStore`].
//!
//! Every batch is one transaction: the rows it inserts (`ON CONFLICT DO NOTHING ... RETURNING`
//! tells which are new) and exactly those rows' effect on candles and balances commit together
//! or not at all, so a redelivered batch changes nothing. The database runs in WAL mode with
//! `synchronous=FULL`: a commit that returned survives a power cut.

use crate::candles::{self, Candle, CandleKey, Interval};
use crate::{
    BalanceRow, CandleQuery, Counts, RollupStore, SettleBatch, SettleStore, StoreError, TradeQuery,
    Written, micros,
};
use async_trait::async_trait;
use exchange_core::Side;
use exchange_core::stream::{OrderEvent, TradeEvent};
use rust_decimal::Decimal;
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// Rows per multi-row statement (SQLite allows 32,766 parameters; a ledger row binds 8).
const CHUNK: usize = 2_000;

/// The embedded store.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// The candles query, oldest (`ASC`) or newest (`DESC`) first.
macro_rules! candles_sql {
    ($order:literal) => {
        concat!(
            "SELECT symbol, interval, bucket_ms, open, high, low, close, volume, quote_volume, \
             trades, first_trade_id, last_trade_id FROM candles \
             WHERE symbol = ? AND interval = ? AND bucket_ms >= ? AND bucket_ms <= ? \
             ORDER BY bucket_ms ",
            $order,
            " LIMIT ?"
        )
    };
}

/// The trades query, oldest (`ASC`) or newest (`DESC`) first.
macro_rules! trades_sql {
    ($order:literal) => {
        concat!(
            "SELECT symbol, trade_id, time_us, price, quantity, taker_side FROM trades \
             WHERE symbol = ? AND time_us >= ? AND time_us <= ? ORDER BY trade_id ",
            $order,
            " LIMIT ?"
        )
    };
}

fn decimal(s: &str) -> Result<Decimal, StoreError> {
    Decimal::from_str(s).map_err(|e| StoreError::Corrupt(format!("{s:?} is not a decimal: {e}")))
}

fn json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

fn side(s: &str) -> Result<Side, StoreError> {
    match s {
        "BUY" => Ok(Side::Buy),
        "SELL" => Ok(Side::Sell),
        other => Err(StoreError::Corrupt(format!("{other:?} is not a side"))),
    }
}

impl SqliteStore {
    /// Opens (or creates) the store at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            // A batch is one statement of up to thousands of rows: logging it whole as a slow
            // statement (sqlx's default, at WARN) floods the log while the workers catch up.
            // Their lag is a metric instead (`exchange_worker_lag_records`).
            .disable_statement_logging();
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./sqlite").run(&self.pool).await?;
        Ok(())
    }

    /// Inserts the trades not stored yet; returns those it inserted.
    async fn insert_trades(
        tx: &mut Transaction<'_, Sqlite>,
        trades: &[TradeEvent],
    ) -> Result<Vec<TradeEvent>, StoreError> {
        let mut new = Vec::new();
        for chunk in trades.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO trades (symbol, trade_id, time_us, price, quantity, taker_side) ",
            );
            q.push_values(chunk, |mut row, t| {
                row.push_bind(t.symbol.clone())
                    .push_bind(t.trade_id as i64)
                    .push_bind(micros(t.time))
                    .push_bind(t.price.to_string())
                    .push_bind(t.quantity.to_string())
                    .push_bind(side_name(t.taker_side));
            });
            q.push(" ON CONFLICT DO NOTHING RETURNING symbol, trade_id");
            let inserted: HashSet<(String, i64)> = q
                .build()
                .fetch_all(&mut **tx)
                .await?
                .iter()
                .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
                .collect();
            new.extend(
                chunk
                    .iter()
                    .filter(|t| inserted.contains(&(t.symbol.clone(), t.trade_id as i64)))
                    .cloned(),
            );
        }
        Ok(new)
    }

    async fn stored_candle(
        tx: &mut Transaction<'_, Sqlite>,
        key: &CandleKey,
    ) -> Result<Option<Candle>, StoreError> {
        let row = sqlx::query(
            "SELECT symbol, interval, bucket_ms, open, high, low, close, volume, quote_volume, \
             trades, first_trade_id, last_trade_id FROM candles \
             WHERE symbol = ? AND interval = ? AND bucket_ms = ?",
        )
        .bind(&key.0)
        .bind(key.1.name())
        .bind(key.2 as i64)
        .fetch_optional(&mut **tx)
        .await?;
        row.map(|r| candle(&r)).transpose()
    }
}

fn candle(r: &sqlx::sqlite::SqliteRow) -> Result<Candle, StoreError> {
    let interval: String = r.get(1);
    Ok(Candle {
        symbol: r.get(0),
        interval: Interval::parse(&interval)
            .ok_or_else(|| StoreError::Corrupt(format!("{interval:?} is not an interval")))?,
        start: r.get::<i64, _>(2) as u64,
        open: decimal(r.get(3))?,
        high: decimal(r.get(4))?,
        low: decimal(r.get(5))?,
        close: decimal(r.get(6))?,
        volume: decimal(r.get(7))?,
        quote_volume: decimal(r.get(8))?,
        trades: r.get::<i64, _>(9) as u64,
        first_trade_id: r.get::<i64, _>(10) as u64,
        last_trade_id: r.get::<i64, _>(11) as u64,
    })
}

#[async_trait]
impl RollupStore for SqliteStore {
    async fn prepare(&self) -> Result<(), StoreError> {
        self.migrate().await
    }

    async fn roll(&self, trades: &[TradeEvent]) -> Result<Written, StoreError> {
        let mut tx = self.pool.begin().await?;
        let new = Self::insert_trades(&mut tx, trades).await?;
        let folded = candles::fold(&new);
        for (key, mut c) in folded.clone() {
            if let Some(have) = Self::stored_candle(&mut tx, &key).await? {
                c.merge(&have);
            }
            sqlx::query(
                "INSERT OR REPLACE INTO candles (symbol, interval, bucket_ms, open, high, low, \
                 close, volume, quote_volume, trades, first_trade_id, last_trade_id) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&c.symbol)
            .bind(c.interval.name())
            .bind(c.start as i64)
            .bind(c.open.to_string())
            .bind(c.high.to_string())
            .bind(c.low.to_string())
            .bind(c.close.to_string())
            .bind(c.volume.to_string())
            .bind(c.quote_volume.to_string())
            .bind(c.trades as i64)
            .bind(c.first_trade_id as i64)
            .bind(c.last_trade_id as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Written {
            trades: new.len() as u64,
            candles: folded.len() as u64,
            ..Written::default()
        })
    }

    async fn candles(&self, q: &CandleQuery) -> Result<Vec<Candle>, StoreError> {
        let w = q.window();
        let sql = if w.newest_first {
            candles_sql!("DESC")
        } else {
            candles_sql!("ASC")
        };
        let rows = sqlx::query(sql)
            .bind(&q.symbol)
            .bind(q.interval.name())
            .bind(w.start_ms)
            .bind(w.end_ms)
            .bind(w.limit)
            .fetch_all(&self.pool)
            .await?;
        let mut out = rows.iter().map(candle).collect::<Result<Vec<_>, _>>()?;
        out.sort_unstable_by_key(|c| c.start);
        Ok(out)
    }

    async fn trades(&self, q: &TradeQuery) -> Result<Vec<TradeEvent>, StoreError> {
        // Trade times are kept in microseconds; the window's ends are whole milliseconds.
        let w = q.window();
        let sql = if w.newest_first {
            trades_sql!("DESC")
        } else {
            trades_sql!("ASC")
        };
        let rows = sqlx::query(sql)
            .bind(&q.symbol)
            .bind(w.start_ms * 1_000)
            .bind(w.end_ms * 1_000 + 999)
            .bind(w.limit)
            .fetch_all(&self.pool)
            .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(TradeEvent {
                    symbol: r.get(0),
                    trade_id: r.get::<i64, _>(1) as u64,
                    time: r.get::<i64, _>(2) as u64 * 1_000,
                    price: decimal(r.get(3))?,
                    quantity: decimal(r.get(4))?,
                    taker_side: side(r.get(5))?,
                    maker_order_id: 0,
                    taker_order_id: 0,
                    maker_account: 0,
                    taker_account: 0,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort_unstable_by_key(|t| t.trade_id);
        Ok(out)
    }
}

#[async_trait]
impl SettleStore for SqliteStore {
    async fn prepare(&self) -> Result<(), StoreError> {
        self.migrate().await
    }

    async fn settle(&self, batch: &SettleBatch) -> Result<Written, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut written = Written::default();
        for chunk in batch.trades.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO settled_trades (trade_id, doc) ");
            q.push_values(chunk, |mut row, t| {
                row.push_bind(t.trade_id as i64)
                    .push_bind(serde_json::to_string(t).expect("trades serialise"));
            });
            q.push(" ON CONFLICT DO NOTHING");
            written.trades += q.build().execute(&mut *tx).await?.rows_affected();
        }
        for chunk in batch.orders.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO orders (order_id, account, version, doc) ",
            );
            q.push_values(chunk, |mut row, o| {
                row.push_bind(o.order_id as i64)
                    .push_bind(o.account as i64)
                    .push_bind(o.version as i64)
                    .push_bind(serde_json::to_string(o).expect("orders serialise"));
            });
            q.push(
                " ON CONFLICT (order_id) DO UPDATE SET version = excluded.version, \
                 doc = excluded.doc WHERE excluded.version > orders.version",
            );
            written.orders += q.build().execute(&mut *tx).await?.rows_affected();
        }
        // The balances take exactly the ledger entries this transaction inserts.
        let mut moved: BTreeMap<(i64, String), Decimal> = BTreeMap::new();
        for chunk in batch.ledger.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO ledger (account, entry_id, asset, amount, kind, reference, symbol, \
                 time_ns) ",
            );
            q.push_values(chunk, |mut row, p| {
                let e = &p.entry;
                row.push_bind(e.account as i64)
                    .push_bind(e.entry_id.clone())
                    .push_bind(e.asset.clone())
                    .push_bind(e.amount.to_string())
                    .push_bind(e.kind.as_str())
                    .push_bind(e.reference.clone())
                    .push_bind(e.symbol.clone())
                    .push_bind(e.time as i64);
            });
            q.push(" ON CONFLICT DO NOTHING RETURNING account, asset, amount");
            for r in q.build().fetch_all(&mut *tx).await? {
                written.ledger += 1;
                *moved.entry((r.get(0), r.get(1))).or_default() += decimal(r.get(2))?;
            }
        }
        for ((account, asset), amount) in moved {
            let have: Option<String> =
                sqlx::query_scalar("SELECT total FROM balances WHERE account = ? AND asset = ?")
                    .bind(account)
                    .bind(&asset)
                    .fetch_optional(&mut *tx)
                    .await?;
            let total = have
                .as_deref()
                .map(decimal)
                .transpose()?
                .unwrap_or_default()
                + amount;
            sqlx::query("INSERT OR REPLACE INTO balances (account, asset, total) VALUES (?, ?, ?)")
                .bind(account)
                .bind(&asset)
                .bind(total.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(written)
    }

    async fn balances(&self) -> Result<Vec<BalanceRow>, StoreError> {
        let rows = sqlx::query("SELECT account, asset, total FROM balances")
            .fetch_all(&self.pool)
            .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(BalanceRow {
                    account: r.get::<i64, _>(0) as u64,
                    asset: r.get(1),
                    total: decimal(r.get(2))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort();
        Ok(out)
    }

    async fn ledger_totals(&self) -> Result<Vec<BalanceRow>, StoreError> {
        let rows = sqlx::query("SELECT account, asset, amount FROM ledger")
            .fetch_all(&self.pool)
            .await?;
        let mut sums: BTreeMap<(u64, String), Decimal> = BTreeMap::new();
        for r in &rows {
            *sums
                .entry((r.get::<i64, _>(0) as u64, r.get(1)))
                .or_default() += decimal(r.get(2))?;
        }
        Ok(sums
            .into_iter()
            .map(|((account, asset), total)| BalanceRow {
                account,
                asset,
                total,
            })
            .collect())
    }

    async fn order(&self, order_id: u64) -> Result<Option<OrderEvent>, StoreError> {
        let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM orders WHERE order_id = ?")
            .bind(order_id as i64)
            .fetch_optional(&self.pool)
            .await?;
        doc.as_deref().map(json).transpose()
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT count(*) FROM settled_trades), (SELECT count(*) FROM orders), \
             (SELECT count(*) FROM ledger)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Counts {
            trades: row.get::<i64, _>(0) as u64,
            orders: row.get::<i64, _>(1) as u64,
            ledger: row.get::<i64, _>(2) as u64,
        })
    }
}
