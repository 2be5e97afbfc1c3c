//! The order store: every order of the shard, live or finished, for queries and idempotency.
//!
//! It is built from the engine's events, so it is exactly as deterministic as the engine and is
//! saved in the shard's snapshot. Finished orders are kept up to a configured number (oldest
//! finished first out); within that window a repeated client order id returns the first order.

use exchange_core::{
    AccountId, ClientOrderId, Event, EventKind, MarketSize, NewOrder, Notional, OrderId,
    OrderRecord, OrderStatus, OrderType, Price, Qty, StatusFilter, SymbolId, Timestamp,
};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};

/// Orders by id, by client order id and by account.
#[derive(Clone, Debug)]
pub struct OrderStore {
    /// Boxed: a record is about 160 bytes, and when the map grows it moves every entry while
    /// the shard waits (50 to 100 ms at 200,000 orders, inline); boxed entries are 16 bytes.
    orders: FxHashMap<OrderId, Box<OrderRecord>>,
    by_client: FxHashMap<(AccountId, ClientOrderId), OrderId>,
    /// Per account, (log offset, id): the offset orders them by time across symbols.
    by_account: FxHashMap<AccountId, BTreeSet<(u64, OrderId)>>,
    finished: VecDeque<OrderId>,
    retain_finished: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct OrderStoreSnapshot {
    orders: Vec<OrderRecord>,
    finished: Vec<OrderId>,
}

impl OrderStoreSnapshot {
    /// In id order, so equal stores give equal bytes whatever their hash maps' history.
    pub(crate) fn sorted(mut self) -> Self {
        self.orders.sort_unstable_by_key(|o| o.id);
        self
    }
}

impl OrderStore {
    /// An empty store keeping at most `retain_finished` finished orders.
    pub fn new(retain_finished: usize) -> Self {
        Self {
            orders: FxHashMap::default(),
            by_client: FxHashMap::default(),
            by_account: FxHashMap::default(),
            finished: VecDeque::new(),
            retain_finished,
        }
    }

    /// An order by id.
    pub fn get(&self, id: OrderId) -> Option<&OrderRecord> {
        self.orders.get(&id).map(|r| &**r)
    }

    /// An account's order by its client order id (live, or finished within the window).
    pub fn by_client_id(
        &self,
        account: AccountId,
        client_id: &ClientOrderId,
    ) -> Option<&OrderRecord> {
        self.by_client
            .get(&(account, *client_id))
            .and_then(|id| self.orders.get(id))
            .map(|r| &**r)
    }

    /// An account's orders, newest first.
    pub fn for_account(
        &self,
        account: AccountId,
        symbol: Option<SymbolId>,
        status: StatusFilter,
        limit: usize,
    ) -> Vec<OrderRecord> {
        let Some(ids) = self.by_account.get(&account) else {
            return Vec::new();
        };
        ids.iter()
            .rev()
            .filter_map(|(_, id)| self.orders.get(id).map(|r| &**r))
            .filter(|o| symbol.is_none_or(|s| o.symbol == s) && status.accepts(o.status))
            .take(limit)
            .copied()
            .collect()
    }

    /// How many orders the store holds.
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    fn insert(&mut self, r: OrderRecord) {
        if let Some(c) = r.client_order_id {
            self.by_client.insert((r.account, c), r.id);
        }
        self.by_account
            .entry(r.account)
            .or_default()
            .insert((r.id.local(), r.id));
        self.orders.insert(r.id, Box::new(r));
    }

    /// Records an accepted new order.
    pub(crate) fn placed(&mut self, ts: Timestamp, o: &NewOrder) {
        let (price, qty) = match o.order_type {
            OrderType::Limit { price, qty, .. } => (price, qty),
            OrderType::Market {
                size: MarketSize::Base(q),
            } => (Price(0), q),
            OrderType::Market {
                size: MarketSize::Quote(_),
            } => (Price(0), Qty(0)),
        };
        self.insert(OrderRecord {
            id: o.order_id,
            symbol: o.symbol,
            account: o.account,
            client_order_id: o.client_order_id,
            side: o.side,
            order_type: o.order_type,
            stp: o.stp,
            status: OrderStatus::New,
            price,
            qty,
            filled: Qty(0),
            remaining: qty,
            quote_filled: Notional(0),
            created: ts,
            updated: ts,
        });
    }

    /// Folds one engine event into the records.
    pub(crate) fn apply_event(&mut self, e: &Event) {
        match e.kind {
            EventKind::Trade(t) => {
                for id in [t.maker_order_id, t.taker_order_id] {
                    if let Some(r) = self.orders.get_mut(&id) {
                        r.quote_filled.0 += t.price.notional(t.qty).0;
                        r.updated = e.ts;
                    }
                }
            }
            EventKind::Order(u) => {
                let Some(r) = self.orders.get_mut(&u.order_id) else {
                    return;
                };
                r.status = u.status;
                r.filled = u.filled;
                r.remaining = u.remaining;
                r.updated = e.ts;
                if !matches!(r.order_type, OrderType::Market { .. }) {
                    r.price = u.price;
                    if !u.status.is_final() {
                        r.qty = Qty(u.filled.0 + u.remaining.0);
                    }
                } else if r.qty.0 == 0 {
                    // A quote-sized market order's quantity is what it bought or sold.
                    r.qty = u.filled;
                }
                if u.status.is_final() {
                    self.finished.push_back(u.order_id);
                }
            }
            _ => {}
        }
    }

    /// Lets go of the oldest finished orders beyond the retention limit.
    pub(crate) fn evict(&mut self) {
        while self.finished.len() > self.retain_finished {
            let Some(id) = self.finished.pop_front() else {
                break;
            };
            let Some(r) = self.orders.remove(&id) else {
                continue;
            };
            if let Some(c) = r.client_order_id
                && self.by_client.get(&(r.account, c)) == Some(&id)
            {
                self.by_client.remove(&(r.account, c));
            }
            if let Some(set) = self.by_account.get_mut(&r.account) {
                set.remove(&(id.local(), id));
                if set.is_empty() {
                    self.by_account.remove(&r.account);
                }
            }
        }
    }

    /// What a snapshot needs, copied flat (the indexes are rebuilt on restore). Cheap enough
    /// to take under the shard's lock; [`OrderStoreSnapshot::sorted`] finishes it elsewhere.
    pub(crate) fn snapshot(&self) -> OrderStoreSnapshot {
        OrderStoreSnapshot {
            orders: self.orders.values().map(|r| **r).collect(),
            finished: self.finished.iter().copied().collect(),
        }
    }

    pub(crate) fn restore(s: OrderStoreSnapshot, retain_finished: usize) -> Self {
        let mut store = Self::new(retain_finished);
        for r in s.orders {
            store.insert(r);
        }
        store.finished = s.finished.into();
        store.evict();
        store
    }
}
