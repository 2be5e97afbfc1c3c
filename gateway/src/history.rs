//! Market history: candles and trades read from the rollup store (`exchange_functions::
//! RollupStore`: the embedded store or PostgreSQL alike), as the API's JSON types.

use crate::dto::{CandleResponse, TradeResponse};
use exchange_core::Interval;
use exchange_functions::{CandleQuery, RollupStore, StoreError, TradeQuery};

/// Which rows to read: times in milliseconds since the epoch, inclusive. Without `start`, the
/// newest `limit` up to `end`; with it, the first `limit` from it. Rows come oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    pub start: Option<u64>,
    pub end: Option<u64>,
    pub limit: usize,
}

/// Candles of `symbol` for `interval`.
pub async fn candles(
    store: &dyn RollupStore,
    symbol: &str,
    interval: Interval,
    range: Range,
) -> Result<Vec<CandleResponse>, StoreError> {
    let candles = store
        .candles(&CandleQuery {
            symbol: symbol.into(),
            interval,
            start: range.start,
            end: range.end,
            limit: range.limit,
        })
        .await?;
    Ok(candles
        .into_iter()
        .map(|c| CandleResponse {
            open_time: c.start,
            close_time: c.start + interval.millis() - 1,
            open: c.open.to_string(),
            high: c.high.to_string(),
            low: c.low.to_string(),
            close: c.close.to_string(),
            volume: c.volume.to_string(),
            quote_volume: c.quote_volume.normalize().to_string(),
            trades: c.trades,
        })
        .collect())
}

/// Trades of `symbol`.
pub async fn trades(
    store: &dyn RollupStore,
    symbol: &str,
    range: Range,
) -> Result<Vec<TradeResponse>, StoreError> {
    let trades = store
        .trades(&TradeQuery {
            symbol: symbol.into(),
            start: range.start,
            end: range.end,
            limit: range.limit,
        })
        .await?;
    Ok(trades
        .into_iter()
        .map(|t| TradeResponse {
            trade_id: t.trade_id.to_string(),
            price: t.price.to_string(),
            quantity: t.quantity.to_string(),
            taker_side: t.taker_side.as_str().into(),
            time: t.time / 1_000_000,
        })
        .collect())
}
