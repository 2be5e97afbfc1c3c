//! The embedded feeds: per-symbol and per-account broadcast channels, filled from the shards'
//! outcomes by the sink (the gateway's `Feed` over in-process channels).
//!
//! Work is done only for what someone listens to: a symbol's update is built only while its
//! channel has a receiver, an account's only while it has a subscriber.

use super::{Feed, MarketUpdate, PrivateUpdate};
use exchange_accounts::{Balance, Live};
use exchange_core::{AccountId, AssetId, EventKind, SymbolId, SymbolTable, Trade};
use exchange_shard::{CommandResult, Outcome};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::broadcast;

/// The in-process feeds.
pub struct Bus {
    capacity: usize,
    /// Each symbol's (base, quote) assets.
    assets: Vec<(AssetId, AssetId)>,
    markets: Vec<broadcast::Sender<Arc<MarketUpdate>>>,
    accounts: Mutex<HashMap<AccountId, broadcast::Sender<Arc<PrivateUpdate>>>>,
}

impl Bus {
    /// Feeds for every symbol of the table, each channel holding at most `capacity` updates
    /// for its slowest receiver.
    pub fn new(symbols: &SymbolTable, capacity: usize) -> Self {
        Self {
            capacity,
            assets: symbols
                .iter()
                .map(|s| (s.funding.base, s.funding.quote))
                .collect(),
            markets: (0..symbols.len())
                .map(|_| broadcast::channel(capacity).0)
                .collect(),
            accounts: Mutex::new(HashMap::new()),
        }
    }

    /// How many subscribers a symbol's feed has (one per gateway following it).
    pub fn listeners(&self, symbol: SymbolId) -> usize {
        self.markets
            .get(symbol.0 as usize)
            .map_or(0, |tx| tx.receiver_count())
    }

    /// Publishes what a batch of outcomes did to the markets and accounts someone listens to.
    /// `balance` gives an account's live balance of an asset (available, reserved) with the
    /// batch's moves already applied, for the assets [`Bus::private_touched`] names.
    pub fn publish(&self, outcomes: &[Outcome], balance: impl Fn(AccountId, AssetId) -> Live) {
        self.publish_markets(outcomes);
        self.publish_private(outcomes, &balance);
    }

    /// The (account, asset) pairs whose balances a batch's private updates carry: those of the
    /// accounts someone listens to, that the batch moved or whose orders it changed.
    pub fn private_touched(&self, outcomes: &[Outcome]) -> Vec<(AccountId, AssetId)> {
        let subscribed = self.accounts.lock();
        if subscribed.is_empty() {
            return Vec::new();
        }
        self.touched(outcomes, |a| {
            subscribed.get(&a).is_some_and(|tx| tx.receiver_count() > 0)
        })
    }

    fn touched(
        &self,
        outcomes: &[Outcome],
        listened: impl Fn(AccountId) -> bool,
    ) -> Vec<(AccountId, AssetId)> {
        let mut touched: Vec<(AccountId, AssetId)> = Vec::new();
        let mut add = |pair| {
            if !touched.contains(&pair) {
                touched.push(pair);
            }
        };
        for o in outcomes {
            for record in o.updated.iter().filter(|r| listened(r.account)) {
                // The order's assets: what it holds may have changed without a move of the
                // shard's (the gateway reserved it when the order came in).
                if let Some(&(base, quote)) = self.assets.get(record.symbol.0 as usize) {
                    add((record.account, base));
                    add((record.account, quote));
                }
            }
            for m in o.moves.iter().filter(|m| listened(m.account)) {
                add((m.account, m.asset));
            }
        }
        touched
    }

    fn publish_markets(&self, outcomes: &[Outcome]) {
        let mut updates: HashMap<SymbolId, MarketUpdate> = HashMap::new();
        for o in outcomes {
            let CommandResult::Applied { events, .. } = &o.result else {
                continue;
            };
            for e in events {
                let listened = self
                    .markets
                    .get(e.symbol.0 as usize)
                    .is_some_and(|tx| tx.receiver_count() > 0);
                if e.seq == 0 || !listened {
                    continue;
                }
                let u = updates.entry(e.symbol).or_insert_with(|| MarketUpdate {
                    symbol: e.symbol,
                    first_seq: e.seq,
                    last_seq: e.seq,
                    levels: Vec::new(),
                    trades: Vec::new(),
                    accepted: o.ts,
                });
                u.last_seq = e.seq;
                u.accepted = o.ts;
                match e.kind {
                    EventKind::Level(l) => u.levels.push(l),
                    EventKind::Trade(t) => u.trades.push((t, o.ts)),
                    _ => {}
                }
            }
        }
        for (symbol, u) in updates {
            // No receiver left since the check: nothing to do.
            let _ = self.markets[symbol.0 as usize].send(Arc::new(u));
        }
    }

    fn publish_private(&self, outcomes: &[Outcome], balance: &dyn Fn(AccountId, AssetId) -> Live) {
        let mut subscribed = self.accounts.lock();
        if subscribed.is_empty() {
            return;
        }
        subscribed.retain(|_, tx| tx.receiver_count() > 0);
        let mut updates: HashMap<AccountId, PrivateUpdate> = HashMap::new();
        for o in outcomes {
            let trades: Vec<Trade> = match &o.result {
                CommandResult::Applied { events, .. } => events
                    .iter()
                    .filter_map(|e| match e.kind {
                        EventKind::Trade(t) => Some(t),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            for record in o
                .updated
                .iter()
                .filter(|r| subscribed.contains_key(&r.account))
            {
                let fills = trades
                    .iter()
                    .filter(|t| t.maker_order_id == record.id || t.taker_order_id == record.id)
                    .copied()
                    .collect();
                entry(&mut updates, record.account)
                    .orders
                    .push((*record, fills));
            }
        }
        for (account, asset) in self.touched(outcomes, |a| subscribed.contains_key(&a)) {
            let live = balance(account, asset);
            entry(&mut updates, account).balances.push(Balance {
                asset,
                available: live.available.max(0) as u128,
                reserved: live.reserved.max(0) as u128,
            });
        }
        for (account, u) in updates {
            if let Some(tx) = subscribed.get(&account) {
                let _ = tx.send(Arc::new(u));
            }
        }
    }
}

fn entry(
    updates: &mut HashMap<AccountId, PrivateUpdate>,
    account: AccountId,
) -> &mut PrivateUpdate {
    updates.entry(account).or_insert_with(|| PrivateUpdate {
        account,
        orders: Vec::new(),
        balances: Vec::new(),
    })
}

impl Feed for Bus {
    fn market(&self, symbol: SymbolId) -> broadcast::Receiver<Arc<MarketUpdate>> {
        match self.markets.get(symbol.0 as usize) {
            Some(tx) => tx.subscribe(),
            // An unknown symbol never publishes: a receiver of a channel nobody sends on.
            None => broadcast::channel(1).1,
        }
    }

    fn private(&self, account: AccountId) -> broadcast::Receiver<Arc<PrivateUpdate>> {
        self.accounts
            .lock()
            .entry(account)
            .or_insert_with(|| broadcast::channel(self.capacity).0)
            .subscribe()
    }
}
