//! A book's snapshot and its restore (which behaves exactly as the book saved), and the
//! invariant checks run after a restore and by the tests.

use super::*;

/// A book's state in a form that restores to an identical book (see [`OrderBook::snapshot`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookSnapshot {
    pub symbol: SymbolId,
    pub seq: u64,
    pub trades: u64,
    /// Every resting order in queue order: bids best level first, then asks best first.
    pub orders: Vec<RestingOrder>,
}

impl OrderBook {
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
