//! The shard's share of every balance: what its commands reserved, paid, received and charged.
//!
//! Balances live with the accounts layer (see `ARCHITECTURE.md`, "Balances"); a shard keeps, per
//! account and asset, the *change* its own commands made, in the same state and the same
//! [`crate::ShardState::apply`] step as the engine events that caused it. So the change is as
//! durable as the shard (snapshot + log replay) and an account's balance is always
//! `deposits - withdrawals + the sum of every shard's change`.
//!
//! Within one shard the changes of each asset sum to zero across accounts (fills move funds
//! between the two sides and the fee account; holds move them within an account), which the
//! tests check.

use exchange_core::{
    AccountFunds, AccountId, AssetId, Delta, Fill, Funding, Hold, OrderId, OrderUpdate, Side,
    SymbolId, Timestamp, Trade,
};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A change to one account's balance of one asset, in units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    pub account: AccountId,
    pub asset: AssetId,
    pub available: i128,
    pub reserved: i128,
}

/// An account's recent fills on this shard.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct FillLog {
    fills: VecDeque<Fill>,
    /// The time of the newest fill dropped to stay within the limit: the log is complete after it.
    dropped_through: Option<Timestamp>,
}

/// The funds side of a shard's state. Serialised with its maps sorted, so that equal states
/// give equal snapshot bytes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(into = "SortedFunds", from = "SortedFunds")]
pub struct FundsState {
    deltas: FxHashMap<(AccountId, AssetId), Delta>,
    holds: FxHashMap<OrderId, Hold>,
    fills: FxHashMap<AccountId, FillLog>,
    fills_per_account: usize,
}

impl FundsState {
    /// Empty, keeping at most `fills_per_account` fills per account.
    pub fn new(fills_per_account: usize) -> Self {
        Self {
            fills_per_account,
            ..Self::default()
        }
    }

    fn change(&mut self, m: Move, live: Option<&mut Vec<Move>>) {
        let d = self.deltas.entry((m.account, m.asset)).or_default();
        d.available += m.available;
        d.reserved += m.reserved;
        if let Some(live) = live {
            live.push(m);
        }
    }

    /// A placed order takes over the hold the gateway reserved for it. The reservation is
    /// already in the live balances, so it is recorded here only.
    pub(crate) fn placed(&mut self, order: OrderId, account: AccountId, hold: Hold) {
        let amount = hold.amount as i128;
        self.change(reserve(account, hold.asset, amount), None);
        self.holds.insert(order, hold);
    }

    /// An amendment took `extra` more (reserved by the gateway, so recorded here only).
    pub(crate) fn topped_up(&mut self, order: OrderId, account: AccountId, extra: u128) {
        if let Some(h) = self.holds.get_mut(&order) {
            h.amount += extra;
            let asset = h.asset;
            self.change(reserve(account, asset, extra as i128), None);
        }
    }

    /// What order `id` holds now.
    pub fn hold(&self, id: OrderId) -> Option<Hold> {
        self.holds.get(&id).copied()
    }

    /// Moves a trade's funds: each side pays out of its order's hold and is credited what it
    /// received less the fee, which goes to the fee account.
    pub(crate) fn traded(
        &mut self,
        f: &Funding,
        ts: Timestamp,
        symbol: SymbolId,
        t: &Trade,
        live: &mut Vec<Move>,
        fills: &mut Vec<(AccountId, Fill)>,
    ) {
        let buyer_is_maker = t.taker_side == Side::Sell;
        let (buyer, seller) = f.fill_legs(t.price, t.qty, buyer_is_maker);
        let (maker_leg, taker_leg) = if buyer_is_maker {
            (buyer, seller)
        } else {
            (seller, buyer)
        };
        for (order, account, leg, side, maker) in [
            (
                t.maker_order_id,
                t.maker_account,
                maker_leg,
                if buyer_is_maker {
                    Side::Buy
                } else {
                    Side::Sell
                },
                true,
            ),
            (
                t.taker_order_id,
                t.taker_account,
                taker_leg,
                t.taker_side,
                false,
            ),
        ] {
            let hold = self
                .holds
                .get_mut(&order)
                .expect("every order on the book holds funds");
            assert!(
                hold.asset == leg.paid.asset && hold.amount >= leg.paid.amount,
                "order {order:?} pays {:?} out of a hold of {hold:?}",
                leg.paid
            );
            hold.amount -= leg.paid.amount;
            let paid = leg.paid.amount as i128;
            let net = (leg.received.amount - leg.fee) as i128;
            self.change(
                Move {
                    account,
                    asset: leg.paid.asset,
                    available: 0,
                    reserved: -paid,
                },
                Some(live),
            );
            self.change(
                Move {
                    account,
                    asset: leg.received.asset,
                    available: net,
                    reserved: 0,
                },
                Some(live),
            );
            if leg.fee > 0 {
                self.change(
                    Move {
                        account: AccountId::FEES,
                        asset: leg.received.asset,
                        available: leg.fee as i128,
                        reserved: 0,
                    },
                    Some(live),
                );
            }
            let fill = Fill {
                ts,
                symbol,
                trade_id: t.trade_id,
                order_id: order,
                side,
                price: t.price,
                qty: t.qty,
                paid: leg.paid.amount,
                received: leg.received.amount,
                fee: leg.fee,
                maker,
            };
            self.record(account, fill);
            fills.push((account, fill));
        }
    }

    /// After an order changed, gives back what it holds beyond what it still needs: everything
    /// once it is done, else the surplus over its remaining quantity at its limit price (a fill
    /// at a better price, a smaller amended quantity).
    pub(crate) fn updated(&mut self, f: &Funding, u: &OrderUpdate, live: &mut Vec<Move>) {
        let Some(hold) = self.holds.get(&u.order_id).copied() else {
            return;
        };
        let needed = if u.status.is_final() {
            0
        } else if u.price.0 == 0 {
            // A market order in the middle of its command: it holds until it is done.
            return;
        } else {
            f.limit_hold(u.side, u.price, u.remaining).amount
        };
        assert!(
            hold.amount >= needed,
            "order {:?} holds {hold:?} but needs {needed}",
            u.order_id
        );
        let surplus = hold.amount - needed;
        if surplus > 0 {
            self.change(release(u.account, hold.asset, surplus as i128), Some(live));
        }
        if u.status.is_final() {
            self.holds.remove(&u.order_id);
        } else if let Some(h) = self.holds.get_mut(&u.order_id) {
            h.amount = needed;
        }
    }

    fn record(&mut self, account: AccountId, fill: Fill) {
        if account == AccountId::FEES || self.fills_per_account == 0 {
            return;
        }
        let log = self.fills.entry(account).or_default();
        log.fills.push_back(fill);
        while log.fills.len() > self.fills_per_account {
            if let Some(old) = log.fills.pop_front() {
                log.dropped_through = Some(old.ts);
            }
        }
    }

    /// An account's changes and its newest `limit` fills (optionally on one symbol).
    pub fn account(
        &self,
        account: AccountId,
        symbol: Option<SymbolId>,
        limit: usize,
    ) -> AccountFunds {
        let mut deltas: Vec<(AssetId, Delta)> = self
            .deltas
            .iter()
            .filter(|((a, _), _)| *a == account)
            .map(|((_, asset), d)| (*asset, *d))
            .collect();
        deltas.sort_unstable_by_key(|(asset, _)| *asset);
        let log = self.fills.get(&account);
        let fills = log
            .map(|l| {
                l.fills
                    .iter()
                    .rev()
                    .filter(|f| symbol.is_none_or(|s| s == f.symbol))
                    .take(limit)
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        AccountFunds {
            deltas,
            fills,
            complete_after: log.and_then(|l| l.dropped_through),
        }
    }

    /// Every (account, asset) change.
    pub fn deltas(&self) -> impl Iterator<Item = (AccountId, AssetId, Delta)> + '_ {
        self.deltas.iter().map(|((a, s), d)| (*a, *s, *d))
    }

    /// Every open order's hold.
    pub fn holds(&self) -> impl Iterator<Item = (OrderId, Hold)> + '_ {
        self.holds.iter().map(|(o, h)| (*o, *h))
    }
}

#[derive(Serialize, Deserialize)]
struct SortedFunds {
    deltas: Vec<((AccountId, AssetId), Delta)>,
    holds: Vec<(OrderId, Hold)>,
    fills: Vec<(AccountId, FillLog)>,
    fills_per_account: usize,
}

fn sorted<K: Ord + Copy, V>(map: FxHashMap<K, V>) -> Vec<(K, V)> {
    let mut v: Vec<(K, V)> = map.into_iter().collect();
    v.sort_unstable_by_key(|(k, _)| *k);
    v
}

impl From<FundsState> for SortedFunds {
    fn from(f: FundsState) -> Self {
        Self {
            deltas: sorted(f.deltas),
            holds: sorted(f.holds),
            fills: sorted(f.fills),
            fills_per_account: f.fills_per_account,
        }
    }
}

impl From<SortedFunds> for FundsState {
    fn from(s: SortedFunds) -> Self {
        Self {
            deltas: s.deltas.into_iter().collect(),
            holds: s.holds.into_iter().collect(),
            fills: s.fills.into_iter().collect(),
            fills_per_account: s.fills_per_account,
        }
    }
}

/// Moves `amount` from available to reserved.
pub fn reserve(account: AccountId, asset: AssetId, amount: i128) -> Move {
    Move {
        account,
        asset,
        available: -amount,
        reserved: amount,
    }
}

/// Moves `amount` from reserved back to available.
pub fn release(account: AccountId, asset: AssetId, amount: i128) -> Move {
    reserve(account, asset, -amount)
}
