//! A shard's whole state and the one function that advances it: [`ShardState::apply`].
//!
//! Pure like the engine: no I/O and no clock. Applying the same log records gives the same
//! outcomes, and a snapshot restores a state that behaves identically.

use crate::log::LogRecord;
use crate::market::MarketState;
use crate::orders::{OrderStore, OrderStoreSnapshot};
use exchange_core::{
    Command, CommandKind, DepthView, Engine, Event, EventKind, OrderId, OrderRecord, OrderStatus,
    ShardId, SymbolId, SymbolTable, TickerView, Timestamp, shard_for,
};
use serde::{Deserialize, Serialize};

/// What applying one log record came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub offset: u64,
    pub ts: Timestamp,
    pub result: CommandResult,
}

/// The result of one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandResult {
    /// The engine ran the command: its events, and the records of the orders it acted on (the
    /// order placed, cancelled or amended; every order a cancel-all cancelled).
    Applied {
        events: Vec<Event>,
        orders: Vec<OrderRecord>,
    },
    /// A place whose client order id the account already used: nothing was placed; this is the
    /// first order, as it stands now.
    Duplicate { order: OrderRecord },
}

/// Why a snapshot could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("shard snapshot is corrupt: {0}")]
    Decode(#[from] postcard::Error),
    #[error(transparent)]
    Engine(#[from] exchange_core::SnapshotError),
    #[error("snapshot belongs to {found} of {found_shards}, not {shard} of {shards}")]
    WrongShard {
        found: ShardId,
        found_shards: u32,
        shard: ShardId,
        shards: u32,
    },
}

#[derive(Serialize, Deserialize)]
struct StateSnapshot {
    shard: ShardId,
    shards: u32,
    applied: u64,
    engine: Vec<u8>,
    orders: OrderStoreSnapshot,
    market: MarketState,
}

/// A shard's state copied for a snapshot (see [`ShardState::copy_for_snapshot`]).
pub struct StateCopy {
    shard: ShardId,
    shards: u32,
    applied: u64,
    engine: Engine,
    orders: OrderStoreSnapshot,
    market: MarketState,
}

impl StateCopy {
    /// The offset the copy is as of.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// The snapshot bytes ([`ShardState::restore`] reads them).
    pub fn encode(self) -> Vec<u8> {
        let snap = StateSnapshot {
            shard: self.shard,
            shards: self.shards,
            applied: self.applied,
            engine: self.engine.snapshot(),
            orders: self.orders.sorted(),
            market: self.market,
        };
        postcard::to_stdvec(&snap).expect("shard snapshots always serialise")
    }
}

/// Everything a shard knows: the engine, the order store and market data.
#[derive(Clone, Debug)]
pub struct ShardState {
    shard: ShardId,
    shards: u32,
    engine: Engine,
    orders: OrderStore,
    market: MarketState,
    applied: u64,
}

impl ShardState {
    /// A fresh state for shard `shard` of `shards`, holding the symbols that route to it.
    pub fn new(shard: ShardId, shards: u32, symbols: &SymbolTable, retain_finished: usize) -> Self {
        let engine = Engine::with_symbols(symbols, |s| shard_for(&s.name, shards) == shard);
        Self {
            shard,
            shards,
            market: MarketState::new(symbols.len()),
            engine,
            orders: OrderStore::new(retain_finished),
            applied: 0,
        }
    }

    /// The offset of the last record applied.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// The engine, for queries.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The order store, for queries.
    pub fn orders(&self) -> &OrderStore {
        &self.orders
    }

    /// Applies the record at `offset`. Records at or below the last applied offset were applied
    /// already and are skipped (`None`), so a replay that overlaps a snapshot changes nothing.
    pub fn apply(&mut self, offset: u64, rec: &LogRecord) -> Option<Outcome> {
        if offset <= self.applied {
            return None;
        }
        self.applied = offset;
        let outcome = |result| {
            Some(Outcome {
                offset,
                ts: rec.ts,
                result,
            })
        };
        if let Command::Place(o) = &rec.cmd
            && let Some(c) = o.client_order_id
            && let Some(first) = self.orders.by_client_id(o.account, &c)
        {
            metrics::counter!("exchange_orders_total", "outcome" => "duplicate").increment(1);
            return outcome(CommandResult::Duplicate { order: *first });
        }
        let mut events = Vec::new();
        self.engine.apply(rec.ts, &rec.cmd, &mut events);
        let mut touched: Vec<OrderId> = Vec::new();
        for e in &events {
            match e.kind {
                EventKind::Accepted {
                    command: CommandKind::Place,
                    ..
                } => {
                    if let Command::Place(o) = &rec.cmd {
                        self.orders.placed(rec.ts, o);
                    }
                }
                EventKind::Trade(_) => self.market.apply_event(e),
                _ => {}
            }
            self.orders.apply_event(e);
            match (rec.cmd.kind(), e.kind) {
                (CommandKind::CancelAll, EventKind::Order(u))
                    if matches!(u.status, OrderStatus::Cancelled(_)) =>
                {
                    touched.push(u.order_id)
                }
                (_, EventKind::Accepted { order_id, .. }) => touched.push(order_id),
                _ => {}
            }
        }
        count_outcome(&rec.cmd, &events);
        let orders = touched
            .iter()
            .filter_map(|id| self.orders.get(*id).copied())
            .collect();
        self.orders.evict();
        outcome(CommandResult::Applied { events, orders })
    }

    /// A symbol's ticker as of `now` (for the 24-hour window).
    pub fn ticker(&self, symbol: SymbolId, now: Timestamp) -> Option<TickerView> {
        let book = self.engine.book(symbol)?;
        let market = self.market.symbol(symbol)?;
        Some(TickerView {
            symbol,
            seq: book.seq(),
            last: market.last(),
            best_bid: book.best_bid(),
            best_ask: book.best_ask(),
            day: market.day(now),
        })
    }

    /// A symbol's top `limit` levels per side.
    pub fn depth(&self, symbol: SymbolId, limit: usize) -> Option<DepthView> {
        let book = self.engine.book(symbol)?;
        let d = book.depth(limit);
        Some(DepthView {
            symbol,
            seq: book.seq(),
            bids: d.bids,
            asks: d.asks,
        })
    }

    /// A symbol's most recent trades, newest first.
    pub fn trades(
        &self,
        symbol: SymbolId,
        limit: usize,
    ) -> Option<Vec<exchange_core::TradeRecord>> {
        self.engine.book(symbol)?;
        Some(self.market.symbol(symbol)?.recent(limit))
    }

    /// The whole state as bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        self.copy_for_snapshot().encode()
    }

    /// A copy of what a snapshot holds, taken quickly (the shard holds its lock meanwhile):
    /// the engine and flat order records, without the order store's indexes. [`StateCopy::encode`]
    /// does the slow part, off the matching path.
    pub fn copy_for_snapshot(&self) -> StateCopy {
        StateCopy {
            shard: self.shard,
            shards: self.shards,
            applied: self.applied,
            engine: self.engine.clone(),
            orders: self.orders.snapshot(),
            market: self.market.clone(),
        }
    }

    /// Restores a state saved by [`ShardState::snapshot`] for the same shard layout.
    pub fn restore(
        bytes: &[u8],
        shard: ShardId,
        shards: u32,
        symbols: &SymbolTable,
        retain_finished: usize,
    ) -> Result<Self, StateError> {
        let snap: StateSnapshot = postcard::from_bytes(bytes)?;
        if snap.shard != shard || snap.shards != shards {
            return Err(StateError::WrongShard {
                found: snap.shard,
                found_shards: snap.shards,
                shard,
                shards,
            });
        }
        let engine = Engine::restore(&snap.engine, symbols, |s| {
            shard_for(&s.name, shards) == shard
        })?;
        let mut market = snap.market;
        market.ensure(symbols.len());
        Ok(Self {
            shard,
            shards,
            engine,
            orders: OrderStore::restore(snap.orders, retain_finished),
            market,
            applied: snap.applied,
        })
    }
}

fn count_outcome(cmd: &Command, events: &[Event]) {
    let label = match (cmd.kind(), events.first().map(|e| e.kind)) {
        (_, Some(EventKind::Rejected { .. })) => "rejected",
        (CommandKind::Place, _) => "accepted",
        (CommandKind::Cancel | CommandKind::CancelAll, _) => "cancel",
        (CommandKind::Amend, _) => "amend",
    };
    metrics::counter!("exchange_orders_total", "outcome" => label).increment(1);
    let trades = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Trade(_)))
        .count();
    if trades > 0 {
        metrics::counter!("exchange_trades_total").increment(trades as u64);
    }
}
