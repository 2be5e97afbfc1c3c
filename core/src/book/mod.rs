//! One symbol's order book and its price-time-priority matching.
//!
//! Layout, chosen for speed and memory:
//! - Orders live in a slab (`Vec<Node>` plus a free list) and are linked twice: into a FIFO per
//!   price level, and into a list per account (for cancel-all and open-order queries).
//! - Levels live in a second slab; each side maps price → level in a `BTreeMap` (O(log n) insert
//!   and remove) and caches its best level, so best bid/ask is O(1).
//! - `by_id` maps order id → slot; client order ids sit in two side maps, paid for only by the
//!   orders that have one.
//!
//! Nothing in here depends on slot numbers, hash-map order or anything else a snapshot does not
//! restore: events depend only on prices, queue order and ids.
//!
//! # Layout
//! - this file: the book's types, its queries and how it emits events.
//! - [`slab`]: the slab orders and levels live in.
//! - [`levels`]: linking orders into levels, sides and the account and id indexes.
//! - [`matching`]: placing an order: checks, fillability (FOK) and the matcher.
//! - [`amend`]: cancel, cancel-all and amend.
//! - [`snapshot`]: snapshot, restore and the invariant checks.

mod amend;
mod levels;
mod matching;
mod slab;
mod snapshot;

use slab::Slab;
pub use snapshot::BookSnapshot;

use crate::command::{AmendOrder, CommandKind, MarketSize, NewOrder, OrderRef, OrderType};
use crate::event::{
    CancelReason, Event, EventKind, LevelUpdate, OrderStatus, OrderUpdate, RejectReason, Trade,
};
use crate::num::{Notional, Price, Qty};
use crate::symbol::Limits;
use crate::types::{
    AccountId, ClientOrderId, OrderId, Side, StpMode, SymbolId, TimeInForce, Timestamp, TradeId,
};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const NIL: u32 = u32::MAX;

/// A resting order. 72 bytes.
#[derive(Clone, Debug)]
struct Node {
    id: OrderId,
    account: AccountId,
    price: Price,
    remaining: Qty,
    filled: Qty,
    /// When the order took its place in the queue.
    ts: Timestamp,
    prev: u32,
    next: u32,
    level: u32,
    acct_prev: u32,
    acct_next: u32,
    side: Side,
    stp: StpMode,
    post_only: bool,
    has_client_id: bool,
}

/// A price level: a FIFO of orders. 32 bytes.
#[derive(Clone, Debug)]
struct Level {
    price: Price,
    total: Qty,
    head: u32,
    tail: u32,
    count: u32,
}

/// One side of the book: price → level, ordered (for best, depth and walking) and hashed (for
/// O(1) lookup of an existing level), with the best non-empty level cached.
///
/// A level that empties stays in both maps, so that an order arriving at that price again (the
/// common case: prices hover) costs no tree insert or remove. Empty levels are swept out once
/// they outnumber [`MIN_EMPTY_LEVELS`] and the live ones, which keeps memory bounded and the
/// cost amortised O(1) per level.
#[derive(Clone, Debug, Default)]
struct BookSide {
    levels: BTreeMap<Price, u32>,
    index: FxHashMap<Price, u32>,
    best: Option<(Price, u32)>,
    empty: usize,
}

/// Empty levels a side may keep before a sweep.
const MIN_EMPTY_LEVELS: usize = 256;

#[derive(Clone, Copy, Debug)]
struct AccountList {
    head: u32,
    count: u32,
}

/// A live order as the queries and snapshots show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestingOrder {
    pub id: OrderId,
    pub account: AccountId,
    pub client_order_id: Option<ClientOrderId>,
    pub side: Side,
    pub price: Price,
    pub remaining: Qty,
    pub filled: Qty,
    pub ts: Timestamp,
    pub stp: StpMode,
    pub post_only: bool,
}

impl RestingOrder {
    /// `New` or `PartiallyFilled`.
    pub fn status(&self) -> OrderStatus {
        if self.filled.0 == 0 {
            OrderStatus::New
        } else {
            OrderStatus::PartiallyFilled
        }
    }
    /// The order's total quantity, filled part included.
    pub fn qty(&self) -> Qty {
        Qty(self.filled.0 + self.remaining.0)
    }
}

/// Aggregated depth: (price, total quantity) per level, best first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Depth {
    pub bids: Vec<(Price, Qty)>,
    pub asks: Vec<(Price, Qty)>,
}

/// One symbol's order book.
#[derive(Clone, Debug)]
pub struct OrderBook {
    symbol: SymbolId,
    limits: Limits,
    seq: u64,
    trades: u64,
    nodes: Slab<Node>,
    levels: Slab<Level>,
    bids: BookSide,
    asks: BookSide,
    by_id: FxHashMap<OrderId, u32>,
    accounts: FxHashMap<AccountId, AccountList>,
    client_ids: FxHashMap<OrderId, ClientOrderId>,
    by_client_id: FxHashMap<(AccountId, ClientOrderId), OrderId>,
}

impl OrderBook {
    /// An empty book for `symbol` with the symbol's limits.
    pub fn new(symbol: SymbolId, limits: Limits) -> Self {
        Self {
            symbol,
            limits,
            seq: 0,
            trades: 0,
            nodes: Slab::default(),
            levels: Slab::default(),
            bids: BookSide::default(),
            asks: BookSide::default(),
            by_id: FxHashMap::default(),
            accounts: FxHashMap::default(),
            client_ids: FxHashMap::default(),
            by_client_id: FxHashMap::default(),
        }
    }

    /// The symbol of this book.
    pub fn symbol(&self) -> SymbolId {
        self.symbol
    }

    /// The sequence number of the last event this book emitted.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    // ----- queries -------------------------------------------------------------------------

    /// Best bid price and its total quantity. O(1).
    #[inline]
    pub fn best_bid(&self) -> Option<(Price, Qty)> {
        self.bids.best.map(|(p, l)| (p, self.levels[l].total))
    }

    /// Best ask price and its total quantity. O(1).
    #[inline]
    pub fn best_ask(&self) -> Option<(Price, Qty)> {
        self.asks.best.map(|(p, l)| (p, self.levels[l].total))
    }

    /// The top `n` levels of each side, best first.
    pub fn depth(&self, n: usize) -> Depth {
        let level = |(&p, &l): (&Price, &u32)| (p, self.levels[l].total);
        let live = |&(_, &l): &(&Price, &u32)| self.levels[l].count > 0;
        Depth {
            bids: self
                .bids
                .levels
                .iter()
                .rev()
                .filter(live)
                .take(n)
                .map(level)
                .collect(),
            asks: self
                .asks
                .levels
                .iter()
                .filter(live)
                .take(n)
                .map(level)
                .collect(),
        }
    }

    /// How many orders rest on the book.
    pub fn order_count(&self) -> usize {
        self.by_id.len()
    }

    /// How many price levels there are on each side: (bids, asks).
    pub fn level_count(&self) -> (usize, usize) {
        let live = |s: &BookSide| s.levels.len() - s.empty;
        (live(&self.bids), live(&self.asks))
    }

    /// A live order by id.
    pub fn order(&self, id: OrderId) -> Option<RestingOrder> {
        self.by_id.get(&id).map(|&slot| self.view(slot))
    }

    /// A live order of `account` by its client order id.
    pub fn order_by_client_id(
        &self,
        account: AccountId,
        client_id: &ClientOrderId,
    ) -> Option<RestingOrder> {
        let id = self.by_client_id.get(&(account, *client_id))?;
        self.order(*id)
    }

    /// An account's live orders, oldest id first.
    pub fn open_orders(&self, account: AccountId) -> Vec<RestingOrder> {
        let mut out: Vec<RestingOrder> = self
            .account_slots(account)
            .into_iter()
            .map(|s| self.view(s))
            .collect();
        out.sort_unstable_by_key(|o| o.id);
        out
    }

    /// Bytes held by the book's structures (vectors and maps at capacity; B-tree nodes estimated).
    pub fn approx_memory_bytes(&self) -> usize {
        fn map_bytes<K, V>(m: &FxHashMap<K, V>) -> usize {
            // hashbrown: one (K, V) bucket plus one control byte per slot.
            m.capacity() * (std::mem::size_of::<(K, V)>() + 1)
        }
        // A B-tree leaf holds up to 11 entries; count nodes as if 2/3 full, plus node headers.
        let btree = |s: &BookSide| {
            s.levels.len() * (std::mem::size_of::<(Price, u32)>() * 3 / 2 + 8) + map_bytes(&s.index)
        };
        self.nodes.capacity_bytes()
            + self.levels.capacity_bytes()
            + btree(&self.bids)
            + btree(&self.asks)
            + map_bytes(&self.by_id)
            + map_bytes(&self.accounts)
            + map_bytes(&self.client_ids)
            + map_bytes(&self.by_client_id)
    }

    fn view(&self, slot: u32) -> RestingOrder {
        let n = &self.nodes[slot];
        RestingOrder {
            id: n.id,
            account: n.account,
            client_order_id: if n.has_client_id {
                self.client_ids.get(&n.id).copied()
            } else {
                None
            },
            side: n.side,
            price: n.price,
            remaining: n.remaining,
            filled: n.filled,
            ts: n.ts,
            stp: n.stp,
            post_only: n.post_only,
        }
    }

    fn account_slots(&self, account: AccountId) -> Vec<u32> {
        let mut out = Vec::new();
        if let Some(list) = self.accounts.get(&account) {
            out.reserve(list.count as usize);
            let mut cur = list.head;
            while cur != NIL {
                out.push(cur);
                cur = self.nodes[cur].acct_next;
            }
        }
        out
    }

    fn find(&self, account: AccountId, target: &OrderRef) -> Option<u32> {
        let id = match target {
            OrderRef::Id(id) => *id,
            OrderRef::Client(c) => *self.by_client_id.get(&(account, *c))?,
        };
        let slot = *self.by_id.get(&id)?;
        // Another account's order is reported as unknown: its existence is not revealed.
        (self.nodes[slot].account == account).then_some(slot)
    }

    // ----- events --------------------------------------------------------------------------

    #[inline]
    fn emit(&mut self, out: &mut Vec<Event>, ts: Timestamp, kind: EventKind) {
        self.seq += 1;
        out.push(Event {
            symbol: self.symbol,
            seq: self.seq,
            ts,
            kind,
        });
    }

    /// Emits a rejection of a command about this book.
    pub(crate) fn reject(
        &mut self,
        out: &mut Vec<Event>,
        ts: Timestamp,
        command: CommandKind,
        order_id: Option<OrderId>,
        account: AccountId,
        reason: RejectReason,
    ) {
        self.emit(
            out,
            ts,
            EventKind::Rejected {
                command,
                order_id,
                account,
                reason,
            },
        );
    }

    #[inline]
    fn emit_level(
        &mut self,
        out: &mut Vec<Event>,
        ts: Timestamp,
        side: Side,
        price: Price,
        qty: Qty,
    ) {
        self.emit(out, ts, EventKind::Level(LevelUpdate { side, price, qty }));
    }

    fn emit_order(&mut self, out: &mut Vec<Event>, ts: Timestamp, slot: u32, status: OrderStatus) {
        let n = &self.nodes[slot];
        let update = OrderUpdate {
            order_id: n.id,
            account: n.account,
            side: n.side,
            price: n.price,
            status,
            filled: n.filled,
            remaining: if status.is_final() {
                Qty(0)
            } else {
                n.remaining
            },
        };
        self.emit(out, ts, EventKind::Order(update));
    }

    /// `New` or `PartiallyFilled`, for a resting order.
    #[inline]
    fn resting_status(&self, slot: u32) -> OrderStatus {
        if self.nodes[slot].filled.0 == 0 {
            OrderStatus::New
        } else {
            OrderStatus::PartiallyFilled
        }
    }
}
