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

/// A slab: a vector with a free list, so slots are reused and never move.
#[derive(Clone, Debug)]
struct Slab<T> {
    items: Vec<T>,
    free: Vec<u32>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Slab<T> {
    fn insert(&mut self, item: T) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.items[i as usize] = item;
                i
            }
            None => {
                self.items.push(item);
                u32::try_from(self.items.len() - 1).expect("fewer than 2^32 resting orders")
            }
        }
    }
    fn remove(&mut self, i: u32) {
        self.free.push(i);
    }
    fn capacity_bytes(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<T>() + self.free.capacity() * 4
    }
}

impl<T> std::ops::Index<u32> for Slab<T> {
    type Output = T;
    #[inline]
    fn index(&self, i: u32) -> &T {
        &self.items[i as usize]
    }
}

impl<T> std::ops::IndexMut<u32> for Slab<T> {
    #[inline]
    fn index_mut(&mut self, i: u32) -> &mut T {
        &mut self.items[i as usize]
    }
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

/// A book's state in a form that restores to an identical book (see [`OrderBook::snapshot`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookSnapshot {
    pub symbol: SymbolId,
    pub seq: u64,
    pub trades: u64,
    /// Every resting order in queue order: bids best level first, then asks best first.
    pub orders: Vec<RestingOrder>,
}

/// An incoming order while it matches.
struct Taker {
    id: OrderId,
    account: AccountId,
    side: Side,
    /// `None` for a market order.
    limit: Option<Price>,
    /// Lots still wanted (`u64::MAX` for a quote-sized market order).
    remaining: u64,
    /// Quote still to spend, for a quote-sized market order.
    quote_left: Option<u128>,
    filled: u64,
    stp: StpMode,
}

/// How matching ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MatchEnd {
    /// Nothing more crosses (or the taker is fully filled).
    Done,
    /// Self-trade prevention expired the taker.
    SelfTrade,
    /// A quote-sized order's money cannot buy one more lot at the best price.
    QuoteSpent,
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

#[inline]
fn crosses(taker_side: Side, limit: Price, maker_price: Price) -> bool {
    match taker_side {
        Side::Buy => maker_price <= limit,
        Side::Sell => maker_price >= limit,
    }
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

    // ----- structure -----------------------------------------------------------------------
    //
    // An order is linked in two ways that change independently: into its price level (which a
    // price move changes) and into the indexes (id, account, client id), which hold for the
    // order's whole life. Keeping them apart lets an amendment move an order between levels
    // without touching the hash maps.

    #[inline]
    fn side(&self, side: Side) -> &BookSide {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    #[inline]
    fn side_mut(&mut self, side: Side) -> &mut BookSide {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// The level at `price` on `side`, created (and made best if it is) when missing.
    fn level_for(&mut self, side: Side, price: Price) -> u32 {
        let (book_side, levels) = match side {
            Side::Buy => (&mut self.bids, &mut self.levels),
            Side::Sell => (&mut self.asks, &mut self.levels),
        };
        if let Some(&l) = book_side.index.get(&price) {
            return l;
        }
        let l = levels.insert(Level {
            price,
            total: Qty(0),
            head: NIL,
            tail: NIL,
            count: 0,
        });
        book_side.index.insert(price, l);
        book_side.levels.insert(price, l);
        book_side.empty += 1;
        l
    }

    /// A level just got its first order: it may be the new best.
    fn level_filled(&mut self, side: Side, price: Price, l: u32) {
        let s = self.side_mut(side);
        s.empty -= 1;
        let better = match (side, s.best) {
            (_, None) => true,
            (Side::Buy, Some((b, _))) => price > b,
            (Side::Sell, Some((b, _))) => price < b,
        };
        if better {
            s.best = Some((price, l));
        }
    }

    /// A level just lost its last order: it stays for reuse, the best moves on if it was the
    /// best, and empty levels are swept when there are too many.
    fn level_emptied(&mut self, side: Side, l: u32) {
        let price = self.levels[l].price;
        let (s, levels) = match side {
            Side::Buy => (&mut self.bids, &mut self.levels),
            Side::Sell => (&mut self.asks, &mut self.levels),
        };
        s.empty += 1;
        if s.best.is_some_and(|(p, _)| p == price) {
            let live = |&(_, &l): &(&Price, &u32)| levels[l].count > 0;
            s.best = match side {
                Side::Buy => s.levels.range(..price).rev().find(live),
                Side::Sell => s.levels.range(price..).find(live),
            }
            .map(|(&p, &l)| (p, l));
        }
        if s.empty > MIN_EMPTY_LEVELS.max(s.levels.len() - s.empty) {
            let index = &mut s.index;
            s.levels.retain(|p, &mut l| {
                let keep = levels[l].count > 0;
                if !keep {
                    index.remove(p);
                    levels.remove(l);
                }
                keep
            });
            s.empty = 0;
        }
    }

    /// Puts an order (already in the slab) at the back of the level for its price.
    /// Returns the level's new total.
    fn link_level(&mut self, slot: u32) -> Qty {
        let (side, price, remaining) = {
            let n = &self.nodes[slot];
            (n.side, n.price, n.remaining)
        };
        let l = self.level_for(side, price);
        let level = &mut self.levels[l];
        let tail = level.tail;
        level.tail = slot;
        if tail == NIL {
            level.head = slot;
        }
        level.total.0 += remaining.0;
        level.count += 1;
        let (total, first) = (level.total, level.count == 1);
        if tail != NIL {
            self.nodes[tail].next = slot;
        }
        if first {
            self.level_filled(side, price, l);
        }
        let n = &mut self.nodes[slot];
        n.prev = tail;
        n.next = NIL;
        n.level = l;
        total
    }

    /// Takes an order out of its level and returns whether the level is now empty. The caller
    /// reports an emptied level with `level_emptied` (the matcher does so after its walk, so the
    /// best does not move under it).
    fn unlink_level(&mut self, slot: u32) -> bool {
        let (prev, next, l, remaining) = {
            let n = &self.nodes[slot];
            (n.prev, n.next, n.level, n.remaining)
        };
        if prev != NIL {
            self.nodes[prev].next = next;
        }
        if next != NIL {
            self.nodes[next].prev = prev;
        }
        let level = &mut self.levels[l];
        if level.head == slot {
            level.head = next;
        }
        if level.tail == slot {
            level.tail = prev;
        }
        level.total.0 -= remaining.0;
        level.count -= 1;
        level.count == 0
    }

    /// Takes an order out of its level. Returns the level's new total.
    fn detach(&mut self, slot: u32) -> Qty {
        let (side, l) = (self.nodes[slot].side, self.nodes[slot].level);
        if self.unlink_level(slot) {
            self.level_emptied(side, l);
        }
        self.levels[l].total
    }

    /// Adds an order (already in the slab) to the id, account and client-id indexes.
    fn link_indexes(&mut self, slot: u32, client_id: Option<ClientOrderId>) {
        let (id, account) = (self.nodes[slot].id, self.nodes[slot].account);
        let acct_head = match self.accounts.get_mut(&account) {
            Some(list) => {
                let old = list.head;
                list.head = slot;
                list.count += 1;
                old
            }
            None => {
                self.accounts.insert(
                    account,
                    AccountList {
                        head: slot,
                        count: 1,
                    },
                );
                NIL
            }
        };
        if acct_head != NIL {
            self.nodes[acct_head].acct_prev = slot;
        }
        let n = &mut self.nodes[slot];
        n.acct_prev = NIL;
        n.acct_next = acct_head;
        n.has_client_id = client_id.is_some();
        self.by_id.insert(id, slot);
        if let Some(c) = client_id {
            self.client_ids.insert(id, c);
            self.by_client_id.insert((account, c), id);
        }
    }

    /// Removes an order from the indexes and frees its slot; returns its client id.
    fn release(&mut self, slot: u32) -> Option<ClientOrderId> {
        let n = &self.nodes[slot];
        let (ap, an, id, account, has_client_id) =
            (n.acct_prev, n.acct_next, n.id, n.account, n.has_client_id);
        if ap != NIL {
            self.nodes[ap].acct_next = an;
        }
        if an != NIL {
            self.nodes[an].acct_prev = ap;
        }
        let list = self
            .accounts
            .get_mut(&account)
            .expect("a live order's account has a list");
        if list.head == slot {
            list.head = an;
        }
        list.count -= 1;
        if list.count == 0 {
            self.accounts.remove(&account);
        }
        self.by_id.remove(&id);
        let client_id = if has_client_id {
            let c = self.client_ids.remove(&id);
            if let Some(c) = c {
                self.by_client_id.remove(&(account, c));
            }
            c
        } else {
            None
        };
        self.nodes.remove(slot);
        client_id
    }

    /// Adds a new order to the slab, its level and the indexes. Returns its slot and the level's
    /// new total.
    fn insert_order(&mut self, node: Node, client_id: Option<ClientOrderId>) -> (u32, Qty) {
        let slot = self.nodes.insert(node);
        let total = self.link_level(slot);
        self.link_indexes(slot, client_id);
        (slot, total)
    }

    /// Cancels a resting order: its final update, then its level's new total.
    fn cancel_resting(
        &mut self,
        out: &mut Vec<Event>,
        ts: Timestamp,
        slot: u32,
        why: CancelReason,
    ) {
        self.emit_order(out, ts, slot, OrderStatus::Cancelled(why));
        let (side, price) = (self.nodes[slot].side, self.nodes[slot].price);
        let total = self.detach(slot);
        self.release(slot);
        self.emit_level(out, ts, side, price, total);
    }

    // ----- commands ------------------------------------------------------------------------

    fn check_limit_order(&self, price: Price, qty: Qty) -> Result<(), RejectReason> {
        if price.0 == 0 || price > self.limits.max_price {
            return Err(RejectReason::PriceOutOfRange);
        }
        if qty < self.limits.min_qty || qty > self.limits.max_qty || qty.0 == 0 {
            return Err(RejectReason::QtyOutOfRange);
        }
        if price.notional(qty) < self.limits.min_notional {
            return Err(RejectReason::BelowMinNotional);
        }
        Ok(())
    }

    fn check_place(&self, o: &NewOrder) -> Result<(), RejectReason> {
        match o.order_type {
            OrderType::Limit {
                price,
                qty,
                tif,
                post_only,
            } => {
                self.check_limit_order(price, qty)?;
                if post_only && tif != TimeInForce::Gtc {
                    return Err(RejectReason::InvalidOrderType);
                }
                if post_only
                    && let Some((best, _)) = self.side(o.side.opposite()).best
                    && crosses(o.side, price, best)
                {
                    return Err(RejectReason::PostOnlyWouldTake);
                }
            }
            OrderType::Market {
                size: MarketSize::Base(qty),
            } => {
                if qty < self.limits.min_qty || qty > self.limits.max_qty || qty.0 == 0 {
                    return Err(RejectReason::QtyOutOfRange);
                }
            }
            OrderType::Market {
                size: MarketSize::Quote(amount),
            } => {
                if amount.0 == 0 || amount < self.limits.min_notional {
                    return Err(RejectReason::BelowMinNotional);
                }
            }
        }
        if self.by_id.contains_key(&o.order_id) {
            return Err(RejectReason::DuplicateOrderId);
        }
        if let Some(c) = o.client_order_id
            && self.by_client_id.contains_key(&(o.account, c))
        {
            return Err(RejectReason::DuplicateClientOrderId);
        }
        Ok(())
    }

    /// Places a new order: validates, matches what crosses, rests or cancels the remainder.
    pub fn place(&mut self, ts: Timestamp, o: &NewOrder, out: &mut Vec<Event>) {
        if let Err(reason) = self.check_place(o) {
            return self.reject(
                out,
                ts,
                CommandKind::Place,
                Some(o.order_id),
                o.account,
                reason,
            );
        }
        let (limit, qty, tif, post_only, quote) = match o.order_type {
            OrderType::Limit {
                price,
                qty,
                tif,
                post_only,
            } => (Some(price), qty.0, tif, post_only, None),
            OrderType::Market {
                size: MarketSize::Base(q),
            } => (None, q.0, TimeInForce::Ioc, false, None),
            OrderType::Market {
                size: MarketSize::Quote(Notional(n)),
            } => (None, u64::MAX, TimeInForce::Ioc, false, Some(n)),
        };
        let accepted = EventKind::Accepted {
            command: CommandKind::Place,
            order_id: o.order_id,
            account: o.account,
        };
        self.emit(out, ts, accepted);
        let mut taker = Taker {
            id: o.order_id,
            account: o.account,
            side: o.side,
            limit,
            remaining: qty,
            quote_left: quote,
            filled: 0,
            stp: o.stp,
        };
        let status = if tif == TimeInForce::Fok && !self.fillable(&taker) {
            OrderStatus::Cancelled(CancelReason::FokUnfillable)
        } else {
            match self.match_taker(ts, &mut taker, out) {
                MatchEnd::SelfTrade => OrderStatus::Cancelled(CancelReason::SelfTrade),
                MatchEnd::Done if taker.remaining == 0 => OrderStatus::Filled,
                // A quote-sized order is filled once what is left cannot buy one more lot; if the
                // book ran out first (or it never bought a lot), the rest is cancelled.
                MatchEnd::QuoteSpent if taker.filled > 0 => OrderStatus::Filled,
                MatchEnd::QuoteSpent => OrderStatus::Cancelled(CancelReason::IocRemainder),
                MatchEnd::Done if tif == TimeInForce::Gtc => {
                    let node = Node {
                        id: o.order_id,
                        account: o.account,
                        price: limit.expect("GTC orders are limit orders"),
                        remaining: Qty(taker.remaining),
                        filled: Qty(taker.filled),
                        ts,
                        prev: NIL,
                        next: NIL,
                        level: NIL,
                        acct_prev: NIL,
                        acct_next: NIL,
                        side: o.side,
                        stp: o.stp,
                        post_only,
                        has_client_id: false,
                    };
                    let price = node.price;
                    let (slot, total) = self.insert_order(node, o.client_order_id);
                    self.emit_level(out, ts, o.side, price, total);
                    let status = self.resting_status(slot);
                    return self.emit_order(out, ts, slot, status);
                }
                MatchEnd::Done => OrderStatus::Cancelled(CancelReason::IocRemainder),
            }
        };
        let update = OrderUpdate {
            order_id: o.order_id,
            account: o.account,
            side: o.side,
            price: limit.unwrap_or(Price(0)),
            status,
            filled: Qty(taker.filled),
            remaining: Qty(0),
        };
        self.emit(out, ts, EventKind::Order(update));
    }

    /// Whether a FOK taker can be filled completely right now, honouring self-trade prevention.
    fn fillable(&self, t: &Taker) -> bool {
        let want = t.remaining;
        let opposite = self.side(t.side.opposite());
        let self_orders = t.stp != StpMode::None && self.accounts.contains_key(&t.account);
        let mut got: u64 = 0;
        let mut levels: Box<dyn Iterator<Item = (&Price, &u32)>> = match t.side {
            Side::Buy => Box::new(opposite.levels.iter()),
            Side::Sell => Box::new(opposite.levels.iter().rev()),
        };
        let limit = t.limit;
        levels.all(|(&price, &l)| {
            if limit.is_some_and(|lim| !crosses(t.side, lim, price)) {
                return false;
            }
            if !self_orders {
                got = got.saturating_add(self.levels[l].total.0);
                return got < want;
            }
            let mut cur = self.levels[l].head;
            while cur != NIL {
                let n = &self.nodes[cur];
                if n.account == t.account {
                    match t.stp {
                        StpMode::ExpireMaker => {
                            cur = n.next;
                            continue;
                        }
                        // The taker would be expired here: nothing further counts.
                        _ => return false,
                    }
                }
                got = got.saturating_add(n.remaining.0);
                if got >= want {
                    return false;
                }
                cur = n.next;
            }
            true
        });
        got >= want
    }

    /// Matches a taker against the opposite side while prices cross, at the makers' prices.
    fn match_taker(&mut self, ts: Timestamp, t: &mut Taker, out: &mut Vec<Event>) -> MatchEnd {
        let maker_side = t.side.opposite();
        let mut end = MatchEnd::Done;
        'levels: while t.remaining > 0 {
            let Some((price, l)) = self.side(maker_side).best else {
                break;
            };
            if t.limit.is_some_and(|lim| !crosses(t.side, lim, price)) {
                break;
            }
            let mut cur = self.levels[l].head;
            let (mut stop, mut touched) = (false, false);
            while cur != NIL && t.remaining > 0 {
                let (next, account, remaining, maker_id) = {
                    let n = &self.nodes[cur];
                    (n.next, n.account, n.remaining.0, n.id)
                };
                if account == t.account && t.stp != StpMode::None {
                    if matches!(t.stp, StpMode::ExpireMaker | StpMode::ExpireBoth) {
                        self.emit_order(
                            out,
                            ts,
                            cur,
                            OrderStatus::Cancelled(CancelReason::SelfTrade),
                        );
                        self.unlink_level(cur);
                        self.release(cur);
                        touched = true;
                    }
                    if matches!(t.stp, StpMode::ExpireTaker | StpMode::ExpireBoth) {
                        end = MatchEnd::SelfTrade;
                        stop = true;
                        break;
                    }
                    cur = next;
                    continue;
                }
                let mut q = t.remaining.min(remaining);
                if let Some(left) = t.quote_left.as_mut() {
                    let afford = (*left / price.0 as u128).min(u64::MAX as u128) as u64;
                    q = q.min(afford);
                    if q == 0 {
                        end = MatchEnd::QuoteSpent;
                        stop = true;
                        break;
                    }
                    *left -= price.0 as u128 * q as u128;
                    if *left == 0 {
                        end = MatchEnd::QuoteSpent;
                        stop = true;
                    }
                }
                touched = true;
                self.trades += 1;
                let trade = Trade {
                    trade_id: TradeId::compose(self.symbol, self.trades),
                    maker_order_id: maker_id,
                    taker_order_id: t.id,
                    maker_account: account,
                    taker_account: t.account,
                    price,
                    qty: Qty(q),
                    taker_side: t.side,
                };
                self.emit(out, ts, EventKind::Trade(trade));
                t.remaining -= q;
                t.filled += q;
                {
                    let n = &mut self.nodes[cur];
                    n.remaining.0 -= q;
                    n.filled.0 += q;
                }
                self.levels[l].total.0 -= q;
                if remaining == q {
                    self.emit_order(out, ts, cur, OrderStatus::Filled);
                    self.unlink_level(cur);
                    self.release(cur);
                    cur = next;
                } else {
                    // The maker keeps the front of the queue: the taker is done, or (quote-sized)
                    // comes back to it and finds it cannot afford another lot.
                    self.emit_order(out, ts, cur, OrderStatus::PartiallyFilled);
                }
                if stop {
                    break;
                }
            }
            let total = self.levels[l].total;
            if self.levels[l].count == 0 {
                self.level_emptied(maker_side, l);
            }
            if touched {
                self.emit_level(out, ts, maker_side, price, total);
            }
            if stop {
                break 'levels;
            }
        }
        end
    }

    /// Cancels one live order of the account.
    pub fn cancel(
        &mut self,
        ts: Timestamp,
        account: AccountId,
        target: &OrderRef,
        out: &mut Vec<Event>,
    ) {
        let Some(slot) = self.find(account, target) else {
            let id = match target {
                OrderRef::Id(id) => Some(*id),
                OrderRef::Client(_) => None,
            };
            return self.reject(
                out,
                ts,
                CommandKind::Cancel,
                id,
                account,
                RejectReason::UnknownOrder,
            );
        };
        let accepted = EventKind::Accepted {
            command: CommandKind::Cancel,
            order_id: self.nodes[slot].id,
            account,
        };
        self.emit(out, ts, accepted);
        self.cancel_resting(out, ts, slot, CancelReason::User);
    }

    /// Cancels every live order of the account on this book, oldest id first. Returns how many.
    pub fn cancel_all(&mut self, ts: Timestamp, account: AccountId, out: &mut Vec<Event>) -> usize {
        let mut slots = self.account_slots(account);
        slots.sort_unstable_by_key(|&s| self.nodes[s].id);
        for &slot in &slots {
            self.cancel_resting(out, ts, slot, CancelReason::User);
        }
        slots.len()
    }

    /// Amends a live order (see [`AmendOrder`] for the rules).
    pub fn amend(&mut self, ts: Timestamp, a: &AmendOrder, out: &mut Vec<Event>) {
        let Some(slot) = self.find(a.account, &a.target) else {
            let id = match a.target {
                OrderRef::Id(id) => Some(id),
                OrderRef::Client(_) => None,
            };
            let reason = RejectReason::UnknownOrder;
            return self.reject(out, ts, CommandKind::Amend, id, a.account, reason);
        };
        let n = &self.nodes[slot];
        let (id, side, old_price, filled, post_only) =
            (n.id, n.side, n.price, n.filled.0, n.post_only);
        let total = filled + n.remaining.0;
        let new_price = a.new_price.unwrap_or(old_price);
        let new_total = a.new_qty.map_or(total, |q| q.0);
        let invalid = if a.new_price.is_none() && a.new_qty.is_none() {
            Some(RejectReason::InvalidAmend)
        } else if new_price.0 == 0 || new_price > self.limits.max_price {
            Some(RejectReason::PriceOutOfRange)
        } else if new_total > self.limits.max_qty.0 {
            Some(RejectReason::QtyOutOfRange)
        } else if new_total <= filled {
            Some(RejectReason::InvalidAmend)
        } else {
            None
        };
        if let Some(reason) = invalid {
            return self.reject(out, ts, CommandKind::Amend, Some(id), a.account, reason);
        }
        let accepted = EventKind::Accepted {
            command: CommandKind::Amend,
            order_id: id,
            account: a.account,
        };
        self.emit(out, ts, accepted);
        if new_price == old_price && new_total <= total {
            // Reduce in place: the order keeps its place in the queue.
            let cut = total - new_total;
            let l = self.nodes[slot].level;
            self.nodes[slot].remaining.0 -= cut;
            self.levels[l].total.0 -= cut;
            let level_total = self.levels[l].total;
            self.emit_level(out, ts, side, old_price, level_total);
            let status = self.resting_status(slot);
            return self.emit_order(out, ts, slot, status);
        }
        // Cancel-and-replace: the order leaves its level (keeping its id, fills and indexes),
        // may trade like an incoming order, and rests at the back of its new level.
        let level_total = self.detach(slot);
        self.emit_level(out, ts, side, old_price, level_total);
        {
            let n = &mut self.nodes[slot];
            n.price = new_price;
            n.remaining = Qty(new_total - filled);
            n.ts = ts;
        }
        let would_take = self
            .side(side.opposite())
            .best
            .is_some_and(|(best, _)| crosses(side, new_price, best));
        let end = if post_only && would_take {
            Some(OrderStatus::Cancelled(CancelReason::PostOnly))
        } else if would_take {
            let n = &self.nodes[slot];
            let mut taker = Taker {
                id,
                account: n.account,
                side,
                limit: Some(new_price),
                remaining: n.remaining.0,
                quote_left: None,
                filled,
                stp: n.stp,
            };
            let end = self.match_taker(ts, &mut taker, out);
            let n = &mut self.nodes[slot];
            n.remaining = Qty(taker.remaining);
            n.filled = Qty(taker.filled);
            match end {
                MatchEnd::SelfTrade => Some(OrderStatus::Cancelled(CancelReason::SelfTrade)),
                _ if taker.remaining == 0 => Some(OrderStatus::Filled),
                _ => None,
            }
        } else {
            None
        };
        match end {
            Some(status) => {
                self.emit_order(out, ts, slot, status);
                self.release(slot);
            }
            None => {
                let level_total = self.link_level(slot);
                self.emit_level(out, ts, side, new_price, level_total);
                let status = self.resting_status(slot);
                self.emit_order(out, ts, slot, status);
            }
        }
    }

    // ----- snapshots -----------------------------------------------------------------------

    /// The book's state: sequence, trade counter and every resting order in queue order.
    pub fn snapshot(&self) -> BookSnapshot {
        let mut orders = Vec::with_capacity(self.by_id.len());
        let levels = self
            .bids
            .levels
            .values()
            .rev()
            .chain(self.asks.levels.values());
        for &l in levels {
            let mut cur = self.levels[l].head;
            while cur != NIL {
                orders.push(self.view(cur));
                cur = self.nodes[cur].next;
            }
        }
        BookSnapshot {
            symbol: self.symbol,
            seq: self.seq,
            trades: self.trades,
            orders,
        }
    }

    /// Rebuilds a book from a snapshot. The result behaves exactly as the book that was saved.
    pub fn restore(s: &BookSnapshot, limits: Limits) -> Self {
        let mut book = Self::new(s.symbol, limits);
        book.seq = s.seq;
        book.trades = s.trades;
        for o in &s.orders {
            let node = Node {
                id: o.id,
                account: o.account,
                price: o.price,
                remaining: o.remaining,
                filled: o.filled,
                ts: o.ts,
                prev: NIL,
                next: NIL,
                level: NIL,
                acct_prev: NIL,
                acct_next: NIL,
                side: o.side,
                stp: o.stp,
                post_only: o.post_only,
                has_client_id: false,
            };
            book.insert_order(node, o.client_order_id);
        }
        book
    }

    /// Checks the book's internal consistency; returns the first problem found.
    /// Used by tests and by the shard after restoring a snapshot.
    pub fn check_invariants(&self) -> Result<(), String> {
        if let (Some((b, _)), Some((a, _))) = (self.best_bid(), self.best_ask())
            && b >= a
        {
            return Err(format!("book is crossed: bid {b:?} >= ask {a:?}"));
        }
        let mut seen = 0usize;
        for (side, s) in [(Side::Buy, &self.bids), (Side::Sell, &self.asks)] {
            let live = |&(_, &l): &(&Price, &u32)| self.levels[l].count > 0;
            let expected_best = match side {
                Side::Buy => s.levels.iter().rev().find(live),
                Side::Sell => s.levels.iter().find(live),
            }
            .map(|(&p, &l)| (p, l));
            let empty = s
                .levels
                .values()
                .filter(|&&l| self.levels[l].count == 0)
                .count();
            if empty != s.empty {
                return Err(format!(
                    "{side:?} counts {} empty levels, has {empty}",
                    s.empty
                ));
            }
            if s.best != expected_best {
                return Err(format!(
                    "{side:?} best cache {:?} != {expected_best:?}",
                    s.best
                ));
            }
            if s.index.len() != s.levels.len() {
                return Err(format!(
                    "{side:?} level index holds {} of {} levels",
                    s.index.len(),
                    s.levels.len()
                ));
            }
            for (&price, &l) in &s.levels {
                if s.index.get(&price) != Some(&l) {
                    return Err(format!(
                        "{side:?} level {price:?} is missing from the index"
                    ));
                }
                let level = &self.levels[l];
                if level.price != price || (level.count == 0 && level.total.0 != 0) {
                    return Err(format!("{side:?} level {price:?} is stale"));
                }
                let (mut sum, mut count, mut cur, mut prev) = (0u64, 0u32, level.head, NIL);
                while cur != NIL {
                    let n = &self.nodes[cur];
                    if n.price != price || n.side != side || n.prev != prev || n.level != l {
                        return Err(format!("order {:?} is mislinked", n.id));
                    }
                    if n.remaining.0 == 0 {
                        return Err(format!("order {:?} rests with nothing left", n.id));
                    }
                    if self.by_id.get(&n.id) != Some(&cur) {
                        return Err(format!("order {:?} is missing from the id index", n.id));
                    }
                    sum += n.remaining.0;
                    count += 1;
                    prev = cur;
                    cur = n.next;
                }
                if level.tail != prev || sum != level.total.0 || count != level.count {
                    return Err(format!("{side:?} level {price:?} totals disagree"));
                }
                seen += count as usize;
            }
        }
        if seen != self.by_id.len() {
            return Err(format!(
                "{seen} orders on levels, {} indexed",
                self.by_id.len()
            ));
        }
        let listed: usize = self.accounts.values().map(|a| a.count as usize).sum();
        if listed != seen {
            return Err(format!(
                "{listed} orders in account lists, {seen} on levels"
            ));
        }
        Ok(())
    }
}
