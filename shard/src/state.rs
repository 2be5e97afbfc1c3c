//! A shard's whole state and the one function that advances it: [`ShardState::apply`].
//!
//! Pure like the engine: no I/O and no clock. Applying the same log records gives the same
//! outcomes, and a snapshot restores a state that behaves identically.

use crate::balances::{self, FundsState, Move};
use crate::log::LogRecord;
use crate::market::MarketState;
use crate::orders::{OrderStore, OrderStoreSnapshot};
use exchange_core::{
    AccountId, Command, CommandKind, DepthView, Engine, Event, EventKind, Fill, Funding, OrderId,
    OrderRecord, OrderRef, OrderStatus, RejectReason, ShardId, SymbolId, SymbolTable, TickerView,
    Timestamp, shard_for,
};
use serde::{Deserialize, Serialize};

/// Fills kept per account per shard for `GET /account/trades` and the ledger.
pub const FILLS_PER_ACCOUNT: usize = 1_000;

/// What applying one log record came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub offset: u64,
    pub ts: Timestamp,
    pub result: CommandResult,
    /// The balance changes to apply to the live balances, in order.
    pub moves: Vec<Move>,
    /// Every order whose state the command changed (makers it filled included), as it stands
    /// after it: for the accounts' private feeds.
    pub updated: Vec<OrderRecord>,
    /// Each side of every trade, with its account: for the ledger.
    pub fills: Vec<(AccountId, Fill)>,
}

/// The result of one command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Refused before the engine saw it (an amendment the funds set aside cannot cover, a
    /// place whose hold does not match the order): nothing changed.
    Refused { reason: RejectReason },
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
    funds: FundsState,
}

/// A shard's state copied for a snapshot (see [`ShardState::copy_for_snapshot`]).
pub struct StateCopy {
    shard: ShardId,
    shards: u32,
    applied: u64,
    engine: Engine,
    orders: OrderStoreSnapshot,
    market: MarketState,
    funds: FundsState,
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
            funds: self.funds,
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
    funds: FundsState,
    funding: Vec<Funding>,
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
            funds: FundsState::new(FILLS_PER_ACCOUNT),
            funding: symbols.iter().map(|s| s.funding).collect(),
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

    /// The shard's balance changes, holds and fills, for queries.
    pub fn funds(&self) -> &FundsState {
        &self.funds
    }

    /// Whether a place's hold covers the order, or an amendment's top-up its new size.
    fn funded(&self, rec: &LogRecord) -> bool {
        match &rec.cmd {
            Command::Place(o) => self
                .funding
                .get(o.symbol.0 as usize)
                .and_then(|f| f.order_hold(o).ok())
                .is_some_and(|h| h.asset == rec.hold.asset && h.amount <= rec.hold.amount),
            Command::Amend(a) => {
                let target = match a.target {
                    OrderRef::Id(id) => self.orders.get(id),
                    OrderRef::Client(c) => self.orders.by_client_id(a.account, &c),
                };
                // An amendment of an order that is not live is the engine's to reject.
                let Some(o) = target.filter(|o| !o.status.is_final() && o.account == a.account)
                else {
                    return true;
                };
                // The order holds exactly what its remaining quantity needs at its price
                // (`FundsState::updated` keeps it so), which is what `amend_extra` assumes.
                self.funding.get(o.symbol.0 as usize).is_none_or(|f| {
                    f.amend_extra(o, a.new_price, a.new_qty).amount <= rec.hold.amount
                })
            }
            Command::Cancel(_) | Command::CancelAll(_) => true,
        }
    }

    /// Applies the record at `offset`. Records at or below the last applied offset were applied
    /// already and are skipped (`None`), so a replay that overlaps a snapshot changes nothing.
    pub fn apply(&mut self, offset: u64, rec: &LogRecord) -> Option<Outcome> {
        if offset <= self.applied {
            return None;
        }
        self.applied = offset;
        let account = rec.cmd.account();
        let give_back = |moves: &mut Vec<Move>| {
            if rec.hold.amount > 0 {
                moves.push(balances::release(
                    account,
                    rec.hold.asset,
                    rec.hold.amount as i128,
                ));
            }
        };
        let mut moves = Vec::new();
        let mut fills = Vec::new();
        if let Command::Place(o) = &rec.cmd
            && let Some(c) = o.client_order_id
            && let Some(first) = self.orders.by_client_id(o.account, &c)
        {
            give_back(&mut moves);
            return Some(Outcome {
                offset,
                ts: rec.ts,
                result: CommandResult::Duplicate { order: *first },
                moves,
                updated: Vec::new(),
                fills: Vec::new(),
            });
        }
        if !self.funded(rec) {
            give_back(&mut moves);
            return Some(Outcome {
                offset,
                ts: rec.ts,
                result: CommandResult::Refused {
                    reason: RejectReason::InsufficientBalance,
                },
                moves,
                updated: Vec::new(),
                fills: Vec::new(),
            });
        }
        let mut events = Vec::new();
        self.engine.apply(rec.ts, &rec.cmd, &mut events);
        let mut touched: Vec<OrderId> = Vec::new();
        let mut changed: Vec<OrderId> = Vec::new();
        for e in &events {
            if let EventKind::Order(u) = e.kind
                && !changed.contains(&u.order_id)
            {
                changed.push(u.order_id);
            }
            let funding = self
                .funding
                .get(e.symbol.0 as usize)
                .copied()
                .unwrap_or_default();
            match e.kind {
                EventKind::Accepted {
                    command: CommandKind::Place,
                    order_id,
                    ..
                } => {
                    if let Command::Place(o) = &rec.cmd {
                        self.orders.placed(rec.ts, o);
                        self.funds.placed(order_id, account, rec.hold);
                    }
                }
                EventKind::Accepted {
                    command: CommandKind::Amend,
                    order_id,
                    ..
                } => self.funds.topped_up(order_id, account, rec.hold.amount),
                EventKind::Rejected { .. } => give_back(&mut moves),
                EventKind::Trade(t) => {
                    self.market.apply_event(e);
                    self.funds
                        .traded(&funding, e.ts, e.symbol, &t, &mut moves, &mut fills);
                }
                EventKind::Order(u) => self.funds.updated(&funding, &u, &mut moves),
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
        let records = |ids: &[OrderId]| {
            ids.iter()
                .filter_map(|id| self.orders.get(*id).copied())
                .collect::<Vec<_>>()
        };
        let orders = records(&touched);
        let updated = records(&changed);
        self.orders.evict();
        Some(Outcome {
            offset,
            ts: rec.ts,
            result: CommandResult::Applied { events, orders },
            moves,
            updated,
            fills,
        })
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

    /// A symbol's current candle of `minutes` minutes as of `now`: its start and OHLCV so far.
    pub fn candle(
        &self,
        symbol: SymbolId,
        minutes: u64,
        now: Timestamp,
    ) -> Option<(Timestamp, exchange_core::Ohlcv)> {
        self.engine.book(symbol)?;
        Some(self.market.symbol(symbol)?.candle(minutes, now))
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
            funds: self.funds.clone(),
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
            funds: snap.funds,
            funding: symbols.iter().map(|s| s.funding).collect(),
            applied: snap.applied,
        })
    }
}
