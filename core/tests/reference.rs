//! Property test: the engine against a deliberately simple reference book.
//!
//! The reference keeps every resting order in one `Vec` and finds the best maker by scanning it
//! linearly (best price, then earliest time). Long random command sequences go through both;
//! they must agree on every trade, every command's outcome and the final book. After every
//! command the engine's own invariants are checked too: the book is never crossed, sequence
//! numbers have no gaps, and for every order placed = filled + cancelled + resting. Halfway
//! through, the engine is snapshotted and restored, and the copy must then emit exactly the
//! same events as the original.

mod common;

use common::*;
use exchange_core::*;
use proptest::prelude::*;
use std::collections::HashMap;

#[derive(Clone, Debug)]
struct RefOrder {
    id: OrderId,
    account: AccountId,
    side: Side,
    price: u64,
    remaining: u64,
    filled: u64,
    time: u64,
    stp: StpMode,
    post_only: bool,
}

#[derive(Clone, Debug, Default)]
struct RefBook {
    orders: Vec<RefOrder>,
    clock: u64,
    trades: Vec<(OrderId, OrderId, u64, u64)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Done,
    SelfTrade,
    QuoteSpent,
}

/// What a command came to: its rejection, or the final status of the order it acted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Rejected(RejectReason),
    Status(OrderStatus),
    CancelledAll,
}

fn crosses(side: Side, limit: u64, maker: u64) -> bool {
    match side {
        Side::Buy => maker <= limit,
        Side::Sell => maker >= limit,
    }
}

impl RefBook {
    fn best(&self, side: Side) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, o) in self.orders.iter().enumerate() {
            if o.side != side {
                continue;
            }
            best = match best {
                None => Some(i),
                Some(b) => {
                    let ob = &self.orders[b];
                    let better = match side {
                        Side::Buy => o.price > ob.price,
                        Side::Sell => o.price < ob.price,
                    };
                    if better || (o.price == ob.price && o.time < ob.time) {
                        Some(i)
                    } else {
                        Some(b)
                    }
                }
            };
        }
        best
    }

    /// Matches a taker; returns (how it ended, lots filled).
    #[allow(clippy::too_many_arguments)]
    fn take(
        &mut self,
        id: OrderId,
        account: AccountId,
        side: Side,
        limit: Option<u64>,
        mut want: u64,
        mut quote: Option<u128>,
        stp: StpMode,
    ) -> (End, u64) {
        let mut filled = 0;
        loop {
            if want == 0 {
                return (End::Done, filled);
            }
            let Some(i) = self.best(side.opposite()) else {
                return (End::Done, filled);
            };
            let m = self.orders[i].clone();
            if limit.is_some_and(|l| !crosses(side, l, m.price)) {
                return (End::Done, filled);
            }
            if m.account == account && stp != StpMode::None {
                if matches!(stp, StpMode::ExpireMaker | StpMode::ExpireBoth) {
                    self.orders.remove(i);
                }
                if matches!(stp, StpMode::ExpireTaker | StpMode::ExpireBoth) {
                    return (End::SelfTrade, filled);
                }
                continue;
            }
            let mut q = want.min(m.remaining);
            if let Some(left) = quote.as_mut() {
                q = q.min((*left / m.price as u128) as u64);
                if q == 0 {
                    return (End::QuoteSpent, filled);
                }
                *left -= (q * m.price) as u128;
            }
            self.trades.push((m.id, id, m.price, q));
            want -= q;
            filled += q;
            self.orders[i].remaining -= q;
            self.orders[i].filled += q;
            if self.orders[i].remaining == 0 {
                self.orders.remove(i);
            }
            if quote == Some(0) {
                return (End::QuoteSpent, filled);
            }
        }
    }

    fn rest(&mut self, mut o: RefOrder) {
        self.clock += 1;
        o.time = self.clock;
        self.orders.push(o);
    }

    fn place(
        &mut self,
        id: OrderId,
        account: AccountId,
        side: Side,
        ot: OrderType,
        stp: StpMode,
    ) -> Outcome {
        let (limit, qty, tif, post_only, quote) = match ot {
            OrderType::Limit {
                price,
                qty,
                tif,
                post_only,
            } => (Some(price.0), qty.0, tif, post_only, None),
            OrderType::Market {
                size: MarketSize::Base(q),
            } => (None, q.0, TimeInForce::Ioc, false, None),
            OrderType::Market {
                size: MarketSize::Quote(n),
            } => (None, u64::MAX, TimeInForce::Ioc, false, Some(n.0)),
        };
        if post_only
            && self
                .best(side.opposite())
                .is_some_and(|i| crosses(side, limit.unwrap(), self.orders[i].price))
        {
            return Outcome::Rejected(RejectReason::PostOnlyWouldTake);
        }
        if tif == TimeInForce::Fok {
            let mut sim = self.clone();
            let (_, got) = sim.take(id, account, side, limit, qty, None, stp);
            if got < qty {
                return Outcome::Status(OrderStatus::Cancelled(CancelReason::FokUnfillable));
            }
        }
        let (end, filled) = self.take(id, account, side, limit, qty, quote, stp);
        Outcome::Status(match end {
            End::SelfTrade => OrderStatus::Cancelled(CancelReason::SelfTrade),
            End::QuoteSpent if filled > 0 => OrderStatus::Filled,
            End::QuoteSpent => OrderStatus::Cancelled(CancelReason::IocRemainder),
            End::Done if filled == qty => OrderStatus::Filled,
            End::Done if tif == TimeInForce::Gtc => {
                self.rest(RefOrder {
                    id,
                    account,
                    side,
                    price: limit.unwrap(),
                    remaining: qty - filled,
                    filled,
                    time: 0,
                    stp,
                    post_only,
                });
                if filled == 0 {
                    OrderStatus::New
                } else {
                    OrderStatus::PartiallyFilled
                }
            }
            End::Done => OrderStatus::Cancelled(CancelReason::IocRemainder),
        })
    }

    fn find(&self, account: AccountId, id: OrderId) -> Option<usize> {
        self.orders
            .iter()
            .position(|o| o.id == id && o.account == account)
    }

    fn cancel(&mut self, account: AccountId, id: OrderId) -> Outcome {
        match self.find(account, id) {
            None => Outcome::Rejected(RejectReason::UnknownOrder),
            Some(i) => {
                self.orders.remove(i);
                Outcome::Status(OrderStatus::Cancelled(CancelReason::User))
            }
        }
    }

    fn amend(
        &mut self,
        account: AccountId,
        id: OrderId,
        price: Option<u64>,
        qty: Option<u64>,
    ) -> Outcome {
        let Some(i) = self.find(account, id) else {
            return Outcome::Rejected(RejectReason::UnknownOrder);
        };
        let o = self.orders[i].clone();
        let total = o.filled + o.remaining;
        let (new_price, new_total) = (price.unwrap_or(o.price), qty.unwrap_or(total));
        if (price.is_none() && qty.is_none()) || new_total <= o.filled {
            return Outcome::Rejected(RejectReason::InvalidAmend);
        }
        let status = |o: &RefOrder| {
            if o.filled == 0 {
                OrderStatus::New
            } else {
                OrderStatus::PartiallyFilled
            }
        };
        if new_price == o.price && new_total <= total {
            self.orders[i].remaining = new_total - o.filled;
            return Outcome::Status(status(&self.orders[i]));
        }
        self.orders.remove(i);
        let takes = self
            .best(o.side.opposite())
            .is_some_and(|b| crosses(o.side, new_price, self.orders[b].price));
        if o.post_only && takes {
            return Outcome::Status(OrderStatus::Cancelled(CancelReason::PostOnly));
        }
        let (end, got) = self.take(
            o.id,
            o.account,
            o.side,
            Some(new_price),
            new_total - o.filled,
            None,
            o.stp,
        );
        let filled = o.filled + got;
        Outcome::Status(match end {
            End::SelfTrade => OrderStatus::Cancelled(CancelReason::SelfTrade),
            _ if filled == new_total => OrderStatus::Filled,
            _ => {
                let r = RefOrder {
                    price: new_price,
                    remaining: new_total - filled,
                    filled,
                    ..o
                };
                let s = status(&r);
                self.rest(r);
                s
            }
        })
    }

    fn cancel_all(&mut self, account: AccountId) -> Outcome {
        self.orders.retain(|o| o.account != account);
        Outcome::CancelledAll
    }

    fn depth(&self) -> Levels {
        let mut bids: Vec<(u64, u64)> = Vec::new();
        let mut asks: Vec<(u64, u64)> = Vec::new();
        for o in &self.orders {
            let side = if o.side == Side::Buy {
                &mut bids
            } else {
                &mut asks
            };
            match side.iter_mut().find(|(p, _)| *p == o.price) {
                Some(l) => l.1 += o.remaining,
                None => side.push((o.price, o.remaining)),
            }
        }
        bids.sort_by_key(|l| std::cmp::Reverse(l.0));
        asks.sort_by_key(|l| l.0);
        (bids, asks)
    }
}

#[derive(Clone, Debug)]
enum Op {
    Limit {
        account: u64,
        side: Side,
        price: u64,
        qty: u64,
        tif: TimeInForce,
        post_only: bool,
        stp: StpMode,
    },
    Market {
        account: u64,
        side: Side,
        qty: u64,
        stp: StpMode,
    },
    MarketQuote {
        account: u64,
        side: Side,
        amount: u128,
        stp: StpMode,
    },
    Cancel {
        pick: usize,
        wrong_account: bool,
    },
    Amend {
        pick: usize,
        price: Option<u64>,
        qty: Option<u64>,
    },
    CancelAll {
        account: u64,
    },
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}

fn stp() -> impl Strategy<Value = StpMode> {
    prop_oneof![4 => Just(StpMode::None), 1 => Just(StpMode::ExpireTaker), 1 => Just(StpMode::ExpireMaker), 1 => Just(StpMode::ExpireBoth)]
}

fn op() -> impl Strategy<Value = Op> {
    let tif = prop_oneof![6 => Just(TimeInForce::Gtc), 1 => Just(TimeInForce::Ioc), 1 => Just(TimeInForce::Fok)];
    prop_oneof![
        10 => (0..4u64, side(), 90..111u64, 1..20u64, tif, any::<bool>(), stp()).prop_map(|(account, side, price, qty, tif, post, stp)| Op::Limit {
            account, side, price, qty, tif, post_only: post && tif == TimeInForce::Gtc && price % 3 == 0, stp
        }),
        1 => (0..4u64, side(), 1..40u64, stp()).prop_map(|(account, side, qty, stp)| Op::Market { account, side, qty, stp }),
        1 => (0..4u64, side(), 1..4000u128, stp()).prop_map(|(account, side, amount, stp)| Op::MarketQuote { account, side, amount, stp }),
        3 => (any::<usize>(), prop::bool::weighted(0.1)).prop_map(|(pick, wrong_account)| Op::Cancel { pick, wrong_account }),
        4 => (any::<usize>(), prop::option::of(90..111u64), prop::option::of(1..25u64)).prop_map(|(pick, price, qty)| Op::Amend { pick, price, qty }),
        1 => (0..4u64).prop_map(|account| Op::CancelAll { account }),
    ]
}

/// Reads the outcome of one command off its events, for the order it acted on.
fn outcome(events: &[Event], id: Option<OrderId>, cancel_all: bool) -> Outcome {
    if cancel_all {
        return Outcome::CancelledAll;
    }
    if let Some(r) = rejection(events) {
        return Outcome::Rejected(r);
    }
    Outcome::Status(status(events, id.expect("a command about one order")))
}

/// Per-order bookkeeping for the conservation check, built only from commands and events.
#[derive(Default)]
struct Ledger {
    placed: HashMap<OrderId, u64>,
    traded: HashMap<OrderId, u64>,
    finished: HashMap<OrderId, OrderStatus>,
    seq: u64,
}

impl Ledger {
    fn check(&mut self, events: &[Event], book: &OrderBook) -> Result<(), TestCaseError> {
        for e in events {
            prop_assert_eq!(e.seq, self.seq + 1, "sequence gap");
            self.seq = e.seq;
            match e.kind {
                EventKind::Trade(t) => {
                    *self.traded.entry(t.maker_order_id).or_default() += t.qty.0;
                    *self.traded.entry(t.taker_order_id).or_default() += t.qty.0;
                }
                EventKind::Order(u) if u.status.is_final() => {
                    prop_assert_eq!(
                        u.filled.0,
                        self.traded.get(&u.order_id).copied().unwrap_or(0)
                    );
                    self.finished.insert(u.order_id, u.status);
                }
                _ => {}
            }
        }
        book.check_invariants().map_err(TestCaseError::fail)?;
        for (id, &placed) in &self.placed {
            let filled = self.traded.get(id).copied().unwrap_or(0);
            let resting = book.order(*id).map_or(0, |o| o.remaining.0);
            if let Some(o) = book.order(*id) {
                prop_assert_eq!(o.filled.0, filled);
            }
            // placed = filled + cancelled + resting, with cancelled >= 0 and 0 when filled.
            prop_assert!(filled + resting <= placed, "order {:?} over-filled", id);
            let cancelled = placed - filled - resting;
            match self.finished.get(id) {
                Some(OrderStatus::Filled) => prop_assert_eq!(cancelled, 0),
                Some(_) => prop_assert_eq!(resting, 0),
                None if book.order(*id).is_some() => prop_assert_eq!(cancelled, 0),
                None => {}
            }
        }
        Ok(())
    }
}

/// Places the same new order on the engine (as a command to apply) and on the reference.
fn place(
    h: &mut Harness,
    r: &mut RefBook,
    account: u64,
    side: Side,
    order_type: OrderType,
    stp: StpMode,
) -> (Command, Outcome, OrderId) {
    let id = h.next_id(TST);
    let account = AccountId(account);
    let cmd = Command::Place(NewOrder {
        symbol: TST,
        order_id: id,
        account,
        client_order_id: None,
        side,
        order_type,
        stp,
    });
    (cmd, r.place(id, account, side, order_type, stp), id)
}

fn run(ops: Vec<Op>, snapshot_at: usize) -> Result<(), TestCaseError> {
    let mut h = Harness::new();
    let mut r = RefBook::default();
    let mut ledger = Ledger::default();
    let mut ids: Vec<(OrderId, u64)> = Vec::new();
    let mut twin: Option<Engine> = None;
    for (step, op) in ops.into_iter().enumerate() {
        if step == snapshot_at {
            let bytes = h.engine.snapshot();
            twin = Some(
                Engine::restore(&bytes, &symbols(), |_| true)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?,
            );
        }
        let ts = h.ts + 1;
        let trades_before = r.trades.len();
        let (cmd, expected, id, all) = match op {
            Op::Limit {
                account,
                side,
                price,
                qty,
                tif,
                post_only,
                stp,
            } => {
                let ot = OrderType::Limit {
                    price: Price(price),
                    qty: Qty(qty),
                    tif,
                    post_only,
                };
                let step = place(&mut h, &mut r, account, side, ot, stp);
                ids.push((step.2, account));
                ledger.placed.insert(step.2, qty);
                (step.0, step.1, Some(step.2), false)
            }
            Op::Market {
                account,
                side,
                qty,
                stp,
            } => {
                let ot = OrderType::Market {
                    size: MarketSize::Base(Qty(qty)),
                };
                let step = place(&mut h, &mut r, account, side, ot, stp);
                ledger.placed.insert(step.2, qty);
                (step.0, step.1, Some(step.2), false)
            }
            Op::MarketQuote {
                account,
                side,
                amount,
                stp,
            } => {
                let ot = OrderType::Market {
                    size: MarketSize::Quote(Notional(amount)),
                };
                let step = place(&mut h, &mut r, account, side, ot, stp);
                (step.0, step.1, Some(step.2), false)
            }
            Op::Cancel {
                pick,
                wrong_account,
            } => {
                if ids.is_empty() {
                    continue;
                }
                let (id, acct) = ids[pick % ids.len()];
                let acct = AccountId(if wrong_account { acct + 1 } else { acct });
                (
                    Command::Cancel(CancelOrder {
                        symbol: TST,
                        account: acct,
                        target: OrderRef::Id(id),
                    }),
                    r.cancel(acct, id),
                    Some(id),
                    false,
                )
            }
            Op::Amend { pick, price, qty } => {
                if ids.is_empty() {
                    continue;
                }
                let (id, acct) = ids[pick % ids.len()];
                let expected = r.amend(AccountId(acct), id, price, qty);
                if let (Outcome::Status(_), Some(o)) = (expected, h.book().order(id)) {
                    let new_total = qty.unwrap_or(o.qty().0);
                    *ledger.placed.get_mut(&id).unwrap() = new_total;
                }
                (
                    Command::Amend(AmendOrder {
                        symbol: TST,
                        account: AccountId(acct),
                        target: OrderRef::Id(id),
                        new_price: price.map(Price),
                        new_qty: qty.map(Qty),
                    }),
                    expected,
                    Some(id),
                    false,
                )
            }
            Op::CancelAll { account } => (
                Command::CancelAll(CancelAll {
                    account: AccountId(account),
                    symbol: None,
                }),
                r.cancel_all(AccountId(account)),
                None,
                true,
            ),
        };
        let events = h.apply(cmd);
        if std::env::var_os("REF_DEBUG").is_some() {
            eprintln!(
                "step {step}: {cmd:?}\n  expected {expected:?}\n  events {events:?}\n  ref book {:?}",
                r.orders
                    .iter()
                    .map(|o| (o.id.0, o.account.0, o.side, o.price, o.remaining))
                    .collect::<Vec<_>>()
            );
        }
        prop_assert_eq!(
            outcome(&events, id, all),
            expected,
            "step {}: {:?}",
            step,
            cmd
        );
        let got: Vec<_> = trades(&events)
            .iter()
            .map(|t| (t.maker_order_id, t.taker_order_id, t.price.0, t.qty.0))
            .collect();
        prop_assert_eq!(
            &got[..],
            &r.trades[trades_before..],
            "trades differ at step {}",
            step
        );
        prop_assert_eq!(h.depth(), r.depth(), "books differ at step {}", step);
        ledger.check(&events, h.book())?;
        if let Some(t) = twin.as_mut() {
            let mut twin_events = Vec::new();
            t.apply(Timestamp(ts), &cmd, &mut twin_events);
            prop_assert_eq!(
                twin_events,
                events,
                "restored engine diverged at step {}",
                step
            );
        }
    }
    // Final books agree order by order.
    let mut engine_orders: Vec<_> = h
        .book()
        .snapshot()
        .orders
        .iter()
        .map(|o| (o.id, o.price.0, o.remaining.0, o.filled.0))
        .collect();
    let mut ref_orders: Vec<_> = r
        .orders
        .iter()
        .map(|o| (o.id, o.price, o.remaining, o.filled))
        .collect();
    engine_orders.sort();
    ref_orders.sort();
    prop_assert_eq!(engine_orders, ref_orders);
    Ok(())
}

proptest! {
    // 256 cases by default; PROPTEST_CASES=N runs more.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn engine_matches_the_reference_book(ops in prop::collection::vec(op(), 1..600), at in 0usize..600) {
        let at = at % (ops.len() + 1);
        run(ops, at)?;
    }
}

#[test]
fn a_damaged_snapshot_is_refused() {
    let mut h = Harness::new();
    h.limit(1, Side::Buy, 100, 5);
    let bytes = h.engine.snapshot();
    assert!(matches!(
        Engine::restore(b"nonsense", &symbols(), |_| true),
        Err(SnapshotError::BadMagic)
    ));
    assert!(Engine::restore(&bytes[..bytes.len() - 3], &symbols(), |_| true).is_err());
    let renamed = SymbolTable::default_symbols();
    assert!(matches!(
        Engine::restore(&bytes, &renamed, |_| true),
        Err(SnapshotError::SymbolMismatch { .. })
    ));
    let back = Engine::restore(&bytes, &symbols(), |_| true).unwrap();
    assert_eq!(back.book(TST).unwrap().snapshot(), h.book().snapshot());
}
