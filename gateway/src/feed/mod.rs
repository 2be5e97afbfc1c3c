//! The gateway's seam to the live feeds: each symbol's market updates and each account's
//! private updates, as the shards publish them.
//!
//! A gateway subscribes to a symbol's feed only while one of its WebSocket clients wants it
//! (see `ws`); in the embedded default the feeds are in-process broadcast channels filled by the
//! shards' sink, in a cluster they are sharded Pub/Sub channels.

use exchange_accounts::Balance;
use exchange_core::{AccountId, LevelUpdate, OrderRecord, SymbolId, Timestamp, Trade};
use std::sync::Arc;
use tokio::sync::broadcast;

/// What one shard batch did to one symbol's market.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarketUpdate {
    pub symbol: SymbolId,
    /// The symbol's sequence numbers the update covers, first to last, with no gap: every
    /// event of the symbol in the batch, not only the level changes.
    pub first_seq: u64,
    pub last_seq: u64,
    /// Level changes in order (a later change of the same level supersedes an earlier one).
    pub levels: Vec<LevelUpdate>,
    /// Trades in order, with the time of the command that caused each.
    pub trades: Vec<(Trade, Timestamp)>,
    /// When the last command of the update was accepted by its gateway.
    pub accepted: Timestamp,
}

/// What one shard batch did for one account: its orders that changed, with their fills in the
/// batch, and its balances that changed, as they stand after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivateUpdate {
    pub account: AccountId,
    pub orders: Vec<(OrderRecord, Vec<Trade>)>,
    pub balances: Vec<Balance>,
}

/// The live feeds behind a gateway.
pub trait Feed: Send + Sync + 'static {
    /// Subscribes to a symbol's market updates (the subscription ends when the receiver drops).
    fn market(&self, symbol: SymbolId) -> broadcast::Receiver<Arc<MarketUpdate>>;

    /// Subscribes to an account's private updates.
    fn private(&self, account: AccountId) -> broadcast::Receiver<Arc<PrivateUpdate>>;
}

mod local;
pub use local::Bus;
