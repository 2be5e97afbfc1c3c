//! The book's structure: linking an order into its price level, its side and the account and
//! id indexes, and unlinking it; levels kept for reuse and swept.

use super::*;

impl OrderBook {
    //
    // An order is linked in two ways that change independently: into its price level (which a
    // price move changes) and into the indexes (id, account, client id), which hold for the
    // order's whole life. Keeping them apart lets an amendment move an order between levels
    // without touching the hash maps.

    #[inline]
    pub(super) fn side(&self, side: Side) -> &BookSide {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    #[inline]
    pub(super) fn side_mut(&mut self, side: Side) -> &mut BookSide {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// The level at `price` on `side`, created (and made best if it is) when missing.
    pub(super) fn level_for(&mut self, side: Side, price: Price) -> u32 {
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
    pub(super) fn level_filled(&mut self, side: Side, price: Price, l: u32) {
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
    pub(super) fn level_emptied(&mut self, side: Side, l: u32) {
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
    pub(super) fn link_level(&mut self, slot: u32) -> Qty {
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
    pub(super) fn unlink_level(&mut self, slot: u32) -> bool {
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
    pub(super) fn detach(&mut self, slot: u32) -> Qty {
        let (side, l) = (self.nodes[slot].side, self.nodes[slot].level);
        if self.unlink_level(slot) {
            self.level_emptied(side, l);
        }
        self.levels[l].total
    }

    /// Adds an order (already in the slab) to the id, account and client-id indexes.
    pub(super) fn link_indexes(&mut self, slot: u32, client_id: Option<ClientOrderId>) {
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
    pub(super) fn release(&mut self, slot: u32) -> Option<ClientOrderId> {
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
    pub(super) fn insert_order(
        &mut self,
        node: Node,
        client_id: Option<ClientOrderId>,
    ) -> (u32, Qty) {
        let slot = self.nodes.insert(node);
        let total = self.link_level(slot);
        self.link_indexes(slot, client_id);
        (slot, total)
    }

    /// Cancels a resting order: its final update, then its level's new total.
    pub(super) fn cancel_resting(
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
}
