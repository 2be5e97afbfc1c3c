//! Rollup's store in a cluster: PostgreSQL, with TimescaleDB where the server has it.
//!
//! A batch is one transaction of two statements, each over whole arrays (`UNNEST`), so a batch
//! of ten thousand trades costs two round trips: the trades are inserted with
//! `ON CONFLICT DO NOTHING RETURNING`, and only the ones that came back (new) are folded into
//! candles, which are upserted with a merge that keeps the open of the earliest trade and the
//! close of the latest (by trade id). A redelivered trade therefore changes nothing.

use crate::candles::{self, Candle, Interval};
use crate::{CandleQuery, RollupStore, StoreError, TradeQuery, Written, micros};
use async_trait::async_trait;
use exchange_core::Side;
use exchange_core::stream::TradeEvent;
use rust_decimal::Decimal;
use sqlx::ConnectOptions;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use std::collections::HashSet;

/// Trades per statement (arrays have no parameter limit; this bounds one statement's memory).
const CHUNK: usize = 20_000;

/// Rollup's PostgreSQL/TimescaleDB store.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

const INSERT_TRADES: &str = "\
INSERT INTO trades (time, symbol, trade_id, price, quantity, taker_side)
SELECT 'epoch'::timestamptz + t.us * interval '1 microsecond', t.symbol, t.trade_id, t.price,
       t.quantity, t.taker_side
FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::numeric[], $5::numeric[], $6::text[])
     AS t(symbol, trade_id, us, price, quantity, taker_side)
ON CONFLICT DO NOTHING
RETURNING symbol, trade_id";

const UPSERT_CANDLES: &str = "\
INSERT INTO candles (symbol, interval, bucket, open, high, low, close, volume, quote_volume,
                     trade_count, first_trade_id, last_trade_id)
SELECT c.symbol, c.interval, 'epoch'::timestamptz + c.ms * interval '1 millisecond', c.open,
       c.high, c.low, c.close, c.volume, c.quote_volume, c.trade_count, c.first_trade_id,
       c.last_trade_id
FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::numeric[], $5::numeric[], $6::numeric[],
            $7::numeric[], $8::numeric[], $9::numeric[], $10::bigint[], $11::bigint[],
            $12::bigint[])
     AS c(symbol, interval, ms, open, high, low, close, volume, quote_volume, trade_count,
          first_trade_id, last_trade_id)
ON CONFLICT (symbol, interval, bucket) DO UPDATE SET
    open = CASE WHEN excluded.first_trade_id < candles.first_trade_id
                THEN excluded.open ELSE candles.open END,
    close = CASE WHEN excluded.last_trade_id > candles.last_trade_id
                 THEN excluded.close ELSE candles.close END,
    high = GREATEST(candles.high, excluded.high),
    low = LEAST(candles.low, excluded.low),
    volume = candles.volume + excluded.volume,
    quote_volume = candles.quote_volume + excluded.quote_volume,
    trade_count = candles.trade_count + excluded.trade_count,
    first_trade_id = LEAST(candles.first_trade_id, excluded.first_trade_id),
    last_trade_id = GREATEST(candles.last_trade_id, excluded.last_trade_id)";

/// The candles query, oldest (`ASC`) or newest (`DESC`) first.
macro_rules! candles_sql {
    ($order:literal) => {
        concat!(
            "SELECT symbol, interval, (extract(epoch FROM bucket) * 1000)::bigint, open, high, \
             low, close, volume, quote_volume, trade_count, first_trade_id, last_trade_id \
             FROM candles WHERE symbol = $1 AND interval = $2 \
             AND bucket >= 'epoch'::timestamptz + $3 * interval '1 millisecond' \
             AND bucket <= 'epoch'::timestamptz + $4 * interval '1 millisecond' \
             ORDER BY bucket ",
            $order,
            " LIMIT $5"
        )
    };
}

/// The trades query, oldest (`ASC`) or newest (`DESC`) first.
macro_rules! trades_sql {
    ($order:literal) => {
        concat!(
            "SELECT symbol, trade_id, (extract(epoch FROM time) * 1000000)::bigint, price, \
             quantity, taker_side FROM trades WHERE symbol = $1 \
             AND time >= 'epoch'::timestamptz + $2 * interval '1 millisecond' \
             AND time < 'epoch'::timestamptz + ($3 + 1) * interval '1 millisecond' \
             ORDER BY trade_id ",
            $order,
            " LIMIT $4"
        )
    };
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

impl PgStore {
    /// Connects to `url` (for example `postgres://127.0.0.1/exchange`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        // Batches are large statements: no statement logging (see the SQLite store).
        let options = url.parse::<PgConnectOptions>()?.disable_statement_logging();
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// The pool, for tests and the `migrate` command.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Whether `trades` is a TimescaleDB hypertable here.
    pub async fn is_hypertable(&self) -> Result<bool, StoreError> {
        let timescale: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')",
        )
        .fetch_one(&self.pool)
        .await?;
        if !timescale {
            return Ok(false);
        }
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables \
             WHERE hypertable_name = 'trades')",
        )
        .fetch_one(&self.pool)
        .await?)
    }
}

fn candle(r: &PgRow) -> Result<Candle, StoreError> {
    let interval: String = r.try_get(1)?;
    Ok(Candle {
        symbol: r.try_get(0)?,
        interval: Interval::parse(&interval)
            .ok_or_else(|| StoreError::Corrupt(format!("{interval:?} is not an interval")))?,
        start: r.try_get::<i64, _>(2)? as u64,
        open: r.try_get(3)?,
        high: r.try_get(4)?,
        low: r.try_get(5)?,
        close: r.try_get(6)?,
        volume: r.try_get(7)?,
        quote_volume: r.try_get(8)?,
        trades: r.try_get::<i64, _>(9)? as u64,
        first_trade_id: r.try_get::<i64, _>(10)? as u64,
        last_trade_id: r.try_get::<i64, _>(11)? as u64,
    })
}

#[async_trait]
impl RollupStore for PgStore {
    async fn prepare(&self) -> Result<(), StoreError> {
        sqlx::migrate!("../migrations").run(&self.pool).await?;
        Ok(())
    }

    async fn roll(&self, trades: &[TradeEvent]) -> Result<Written, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut new = Vec::new();
        for chunk in trades.chunks(CHUNK) {
            let inserted: HashSet<(String, i64)> = sqlx::query(INSERT_TRADES)
                .bind(chunk.iter().map(|t| t.symbol.clone()).collect::<Vec<_>>())
                .bind(chunk.iter().map(|t| t.trade_id as i64).collect::<Vec<_>>())
                .bind(chunk.iter().map(|t| micros(t.time)).collect::<Vec<_>>())
                .bind(chunk.iter().map(|t| t.price).collect::<Vec<Decimal>>())
                .bind(chunk.iter().map(|t| t.quantity).collect::<Vec<Decimal>>())
                .bind(
                    chunk
                        .iter()
                        .map(|t| side_name(t.taker_side))
                        .collect::<Vec<_>>(),
                )
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_, sqlx::Error>>()?;
            new.extend(
                chunk
                    .iter()
                    .filter(|t| inserted.contains(&(t.symbol.clone(), t.trade_id as i64))),
            );
        }
        let folded: Vec<Candle> = candles::fold(new.iter().copied()).into_values().collect();
        if !folded.is_empty() {
            let col = |f: fn(&Candle) -> Decimal| folded.iter().map(f).collect::<Vec<_>>();
            sqlx::query(UPSERT_CANDLES)
                .bind(folded.iter().map(|c| c.symbol.clone()).collect::<Vec<_>>())
                .bind(folded.iter().map(|c| c.interval.name()).collect::<Vec<_>>())
                .bind(folded.iter().map(|c| c.start as i64).collect::<Vec<_>>())
                .bind(col(|c| c.open))
                .bind(col(|c| c.high))
                .bind(col(|c| c.low))
                .bind(col(|c| c.close))
                .bind(col(|c| c.volume))
                .bind(col(|c| c.quote_volume))
                .bind(folded.iter().map(|c| c.trades as i64).collect::<Vec<_>>())
                .bind(
                    folded
                        .iter()
                        .map(|c| c.first_trade_id as i64)
                        .collect::<Vec<_>>(),
                )
                .bind(
                    folded
                        .iter()
                        .map(|c| c.last_trade_id as i64)
                        .collect::<Vec<_>>(),
                )
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
        let w = q.window();
        let sql = if w.newest_first {
            trades_sql!("DESC")
        } else {
            trades_sql!("ASC")
        };
        let rows = sqlx::query(sql)
            .bind(&q.symbol)
            .bind(w.start_ms)
            .bind(w.end_ms)
            .bind(w.limit)
            .fetch_all(&self.pool)
            .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                let side: String = r.try_get(5)?;
                Ok(TradeEvent {
                    symbol: r.try_get(0)?,
                    trade_id: r.try_get::<i64, _>(1)? as u64,
                    time: r.try_get::<i64, _>(2)? as u64 * 1_000,
                    price: r.try_get(3)?,
                    quantity: r.try_get(4)?,
                    taker_side: if side == "BUY" { Side::Buy } else { Side::Sell },
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

/// Runs one administrative statement built by the caller (`CREATE DATABASE ...`): for tools
/// and tests, never with user input.
pub async fn execute(store: &PgStore, sql: &str) -> Result<(), StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&store.pool)
        .await?;
    Ok(())
}
