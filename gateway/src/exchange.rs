//! The gateway's one seam to the shards: what HTTP needs from the exchange behind it.
//!
//! The embedded default implements it in process (the root crate's `embedded` module); a cluster
//! implementation appends to Redis Streams and reads Redis. The HTTP layer cannot tell them apart.

use async_trait::async_trait;
use exchange_core::{
    AccountFunds, AccountId, ClientOrderId, Command, DepthView, Event, Hold, Ohlcv, OrderId,
    OrderRecord, RejectReason, ShardId, StatusFilter, SymbolId, SymbolTable, TickerView, Timestamp,
    TradeRecord,
};
use std::sync::Arc;

/// What the exchange answered to one command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Submitted {
    /// The engine's events for the command (across shards for a cancel-all on every symbol).
    pub events: Vec<Event>,
    /// The orders the command acted on, as they stand after it.
    pub orders: Vec<OrderRecord>,
    /// The client order id was used before: nothing was placed and `orders` holds the first
    /// order.
    pub duplicate: bool,
    /// Refused by the shard before the engine saw it (an amendment the account cannot fund).
    pub refused: Option<RejectReason>,
}

/// A shard's progress, for the health check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardHealth {
    pub shard: ShardId,
    /// Last offset in its command log.
    pub logged: u64,
    /// Last offset it has applied.
    pub applied: u64,
}

/// Why the exchange could not take a command.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The command was not logged: nothing happened, and what was reserved for it can be
    /// given back.
    #[error("the exchange is not taking commands: {0}")]
    NotLogged(String),
    /// The command was logged (or may have been), but its outcome is not known here.
    #[error("the exchange is not taking commands: {0}")]
    Unavailable(String),
    #[error("the command was logged, but its result did not arrive in time")]
    Timeout,
    /// A read could not be answered (the shard that owns it is down or did not answer).
    #[error("{0}")]
    ReadFailed(String),
}

/// What a read of the shards answers.
pub type Read<T> = Result<T, ExchangeError>;

/// The exchange behind a gateway.
#[async_trait]
pub trait Exchange: Send + Sync + 'static {
    /// The symbols it lists.
    fn symbols(&self) -> &Arc<SymbolTable>;

    /// Logs the command, with what was reserved for it (`hold`), on the shard that owns its
    /// symbol (every shard for a cancel-all on all symbols), waits until it is applied and
    /// returns the outcome.
    async fn submit(
        &self,
        cmd: Command,
        hold: Hold,
        ts: Timestamp,
    ) -> Result<Submitted, ExchangeError>;

    /// An order by id.
    async fn order(&self, id: OrderId) -> Read<Option<OrderRecord>>;

    /// An account's order by its client order id (live, or finished within the retention window).
    async fn order_by_client_id(
        &self,
        account: AccountId,
        client_id: ClientOrderId,
    ) -> Read<Option<OrderRecord>>;

    /// An account's orders, newest first.
    async fn orders(
        &self,
        account: AccountId,
        symbol: Option<SymbolId>,
        status: StatusFilter,
        limit: usize,
    ) -> Read<Vec<OrderRecord>>;

    /// A symbol's ticker as of `now`.
    async fn ticker(&self, symbol: SymbolId, now: Timestamp) -> Read<Option<TickerView>>;

    /// A symbol's current candle of `minutes` minutes as of `now`: its start and OHLCV so far.
    async fn candle(
        &self,
        symbol: SymbolId,
        minutes: u64,
        now: Timestamp,
    ) -> Read<Option<(Timestamp, Ohlcv)>>;

    /// A symbol's top `limit` levels.
    async fn depth(&self, symbol: SymbolId, limit: usize) -> Read<Option<DepthView>>;

    /// A symbol's most recent trades, newest first.
    async fn trades(&self, symbol: SymbolId, limit: usize) -> Read<Option<Vec<TradeRecord>>>;

    /// Per shard, the account's balance changes and its newest `limit` fills (optionally on
    /// one symbol), each shard's read consistent in itself.
    async fn account_funds(
        &self,
        account: AccountId,
        symbol: Option<SymbolId>,
        limit: usize,
    ) -> Read<Vec<AccountFunds>>;

    /// Every shard's progress.
    async fn health(&self) -> Read<Vec<ShardHealth>>;
}
