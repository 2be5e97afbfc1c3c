//! Placing an order: its checks, whether a fill-or-kill can fill, and the matcher that walks
//! the opposite side in price-time priority.

use super::*;

/// An incoming order while it matches.
pub(super) struct Taker {
    pub(super) id: OrderId,
    pub(super) account: AccountId,
    pub(super) side: Side,
    /// `None` for a market order.
    pub(super) limit: Option<Price>,
    /// Lots still wanted (`u64::MAX` for a quote-sized market order).
    pub(super) remaining: u64,
    /// Quote still to spend, for a quote-sized market order.
    pub(super) quote_left: Option<u128>,
    pub(super) filled: u64,
    pub(super) stp: StpMode,
}

/// How matching ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MatchEnd {
    /// Nothing more crosses (or the taker is fully filled).
    Done,
    /// Self-trade prevention expired the taker.
    SelfTrade,
    /// A quote-sized order's money cannot buy one more lot at the best price.
    QuoteSpent,
}

#[inline]
pub(super) fn crosses(taker_side: Side, limit: Price, maker_price: Price) -> bool {
    match taker_side {
        Side::Buy => maker_price <= limit,
        Side::Sell => maker_price >= limit,
    }
}

impl OrderBook {
    pub(super) fn check_limit_order(&self, price: Price, qty: Qty) -> Result<(), RejectReason> {
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

    pub(super) fn check_place(&self, o: &NewOrder) -> Result<(), RejectReason> {
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
    pub(super) fn fillable(&self, t: &Taker) -> bool {
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
    pub(super) fn match_taker(
        &mut self,
        ts: Timestamp,
        t: &mut Taker,
        out: &mut Vec<Event>,
    ) -> MatchEnd {
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
}
