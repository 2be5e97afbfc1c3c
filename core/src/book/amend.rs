//! Cancelling one order, all of an account's, and amending an order (in place when it keeps
//! its queue position, else cancel-and-replace under the same id).

use super::matching::{MatchEnd, Taker, crosses};
use super::*;

impl OrderBook {
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
}
