//! Market history: candles and trades from the rollup store, behind a small trait so that the
//! gateway reads the embedded store or PostgreSQL alike.

use crate::dto::{CandleResponse, TradeResponse};
use async_trait::async_trait;
use exchange_core::Interval;

/// Which rows to read: times in milliseconds since the epoch, inclusive. Without `start`, the
/// newest `limit` up to `end`; with it, the first `limit` from it. Rows come oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    pub start: Option<u64>,
    pub end: Option<u64>,
    pub limit: usize,
}

/// Where the history endpoints read.
#[async_trait]
pub trait History: Send + Sync + 'static {
    /// Candles of `symbol` for `interval`.
    async fn candles(
        &self,
        symbol: &str,
        interval: Interval,
        range: Range,
    ) -> Result<Vec<CandleResponse>, String>;

    /// Trades of `symbol`.
    async fn trades(&self, symbol: &str, range: Range) -> Result<Vec<TradeResponse>, String>;
}
