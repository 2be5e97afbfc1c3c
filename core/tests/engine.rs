//! Behaviour of the engine, one test per order type, time in force, self-trade mode, amend and
//! cancel path and reject reason, driven through `Engine::apply` as the shard drives it.

mod common;

use Side::{Buy, Sell};
use common::*;
use exchange_core::*;

#[test]
fn limit_order_rests_and_reports_new() {
    let mut h = Harness::new();
    let (id, ev) = h.limit(1, Buy, 100, 5);
    let kinds: Vec<_> = ev.iter().map(|e| e.kind).collect();
    assert!(
        matches!(kinds[0], EventKind::Accepted { command: CommandKind::Place, order_id, .. } if order_id == id)
    );
    assert_eq!(
        kinds[1],
        EventKind::Level(LevelUpdate {
            side: Buy,
            price: Price(100),
            qty: Qty(5)
        })
    );
    assert_eq!(status(&ev, id), OrderStatus::New);
    assert_eq!(ev.len(), 3);
    assert_eq!(h.book().best_bid(), Some((Price(100), Qty(5))));
    assert_eq!(h.book().best_ask(), None);
}

#[test]
fn trades_at_the_makers_price_best_price_first_then_time() {
    let mut h = Harness::new();
    let (a, _) = h.limit(1, Sell, 101, 5);
    let (b, _) = h.limit(2, Sell, 100, 5);
    let (c, _) = h.limit(3, Sell, 100, 5);
    let (t, ev) = h.limit(4, Buy, 105, 12);
    assert_eq!(fills(&ev), vec![(b, 100, 5), (c, 100, 5), (a, 101, 2)]);
    assert_eq!(status(&ev, b), OrderStatus::Filled);
    assert_eq!(status(&ev, a), OrderStatus::PartiallyFilled);
    assert_eq!(status(&ev, t), OrderStatus::Filled);
    assert_eq!(h.depth(), (vec![], vec![(101, 3)]));
    let tr = trades(&ev);
    assert!(
        tr.iter().all(|x| x.taker_order_id == t
            && x.taker_side == Buy
            && x.taker_account == AccountId(4))
    );
    assert_eq!(
        tr.iter().map(|x| x.trade_id.0 & 0xffff).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
}

#[test]
fn partially_filled_taker_rests_its_remainder() {
    let mut h = Harness::new();
    h.limit(1, Sell, 100, 3);
    let (t, ev) = h.limit(2, Buy, 100, 10);
    let u = last_update(&ev, t).unwrap();
    assert_eq!(
        (u.status, u.filled, u.remaining),
        (OrderStatus::PartiallyFilled, Qty(3), Qty(7))
    );
    assert_eq!(h.depth(), (vec![(100, 7)], vec![]));
    assert!(ev.iter().any(|e| e.kind
        == EventKind::Level(LevelUpdate {
            side: Sell,
            price: Price(100),
            qty: Qty(0)
        })));
}

#[test]
fn market_order_without_liquidity_is_cancelled_never_rests() {
    let mut h = Harness::new();
    let (id, ev) = h.market(1, Buy, MarketSize::Base(Qty(5)));
    assert_eq!(
        status(&ev, id),
        OrderStatus::Cancelled(CancelReason::IocRemainder)
    );
    assert_eq!(h.book().order_count(), 0);
    let (id, ev) = h.market(1, Sell, MarketSize::Quote(Notional(500)));
    assert_eq!(
        status(&ev, id),
        OrderStatus::Cancelled(CancelReason::IocRemainder)
    );
    assert_eq!(h.book().order_count(), 0);
}

#[test]
fn market_order_sweeps_levels_and_cancels_what_is_left() {
    let mut h = Harness::new();
    let (a, _) = h.limit(1, Buy, 100, 2);
    let (b, _) = h.limit(1, Buy, 99, 2);
    let (id, ev) = h.market(2, Sell, MarketSize::Base(Qty(5)));
    assert_eq!(fills(&ev), vec![(a, 100, 2), (b, 99, 2)]);
    let u = last_update(&ev, id).unwrap();
    assert_eq!(
        (u.status, u.filled),
        (OrderStatus::Cancelled(CancelReason::IocRemainder), Qty(4))
    );
    let (id, ev) = h.market(2, Sell, MarketSize::Base(Qty(1)));
    assert!(fills(&ev).is_empty());
    assert_eq!(
        status(&ev, id),
        OrderStatus::Cancelled(CancelReason::IocRemainder)
    );
}

#[test]
fn quote_sized_market_buy_spends_at_most_its_amount() {
    let mut h = Harness::new();
    let (a, _) = h.limit(1, Sell, 10, 3);
    let (b, _) = h.limit(1, Sell, 20, 10);
    // 30 at 10, then 70 buys 3 at 20 (60), 10 left cannot buy a lot at 20.
    let (id, ev) = h.market(2, Buy, MarketSize::Quote(Notional(100)));
    assert_eq!(fills(&ev), vec![(a, 10, 3), (b, 20, 3)]);
    let u = last_update(&ev, id).unwrap();
    assert_eq!((u.status, u.filled), (OrderStatus::Filled, Qty(6)));
    // Exactly spent.
    let (id, ev) = h.market(2, Buy, MarketSize::Quote(Notional(40)));
    assert_eq!(fills(&ev), vec![(b, 20, 2)]);
    assert_eq!(status(&ev, id), OrderStatus::Filled);
    // The book runs out before the money does.
    let (id, ev) = h.market(2, Buy, MarketSize::Quote(Notional(1000)));
    assert_eq!(fills(&ev), vec![(b, 20, 5)]);
    let u = last_update(&ev, id).unwrap();
    assert_eq!(
        (u.status, u.filled),
        (OrderStatus::Cancelled(CancelReason::IocRemainder), Qty(5))
    );
}

#[test]
fn quote_sized_order_stops_at_a_maker_it_cannot_afford_more_of() {
    // Found by the property test: after a partial fill limited by money, the maker keeps the
    // front of the queue; the taker must not skip to the next order (here its own, which with
    // EXPIRE_TAKER would have wrongly ended it as a self-trade).
    let mut h = Harness::new();
    let (m, _) = h.limit(1, Sell, 104, 13);
    h.limit(2, Sell, 104, 1);
    let (id, ev) = h.order(
        TST,
        2,
        Buy,
        OrderType::Market {
            size: MarketSize::Quote(Notional(210)),
        },
        StpMode::ExpireTaker,
        None,
    );
    assert_eq!(fills(&ev), vec![(m, 104, 2)]);
    assert_eq!(status(&ev, id), OrderStatus::Filled);
    assert_eq!(h.book().order(m).unwrap().remaining, Qty(11));
}

#[test]
fn quote_sized_market_sell_sells_what_the_amount_is_worth() {
    let mut h = Harness::new();
    let (a, _) = h.limit(1, Buy, 25, 10);
    let (id, ev) = h.market(2, Sell, MarketSize::Quote(Notional(100)));
    assert_eq!(fills(&ev), vec![(a, 25, 4)]);
    assert_eq!(status(&ev, id), OrderStatus::Filled);
}

#[test]
fn ioc_trades_what_it_can_and_cancels_the_rest() {
    let mut h = Harness::new();
    h.limit(1, Sell, 100, 3);
    h.limit(1, Sell, 102, 3);
    let (id, ev) = h.limit_tif(2, Buy, 101, 5, TimeInForce::Ioc);
    let u = last_update(&ev, id).unwrap();
    assert_eq!(
        (u.status, u.filled),
        (OrderStatus::Cancelled(CancelReason::IocRemainder), Qty(3))
    );
    assert_eq!(h.depth(), (vec![], vec![(102, 3)]));
    let (id, ev) = h.limit_tif(2, Buy, 102, 3, TimeInForce::Ioc);
    assert_eq!(status(&ev, id), OrderStatus::Filled);
}

#[test]
fn fok_fills_completely_or_not_at_all() {
    let mut h = Harness::new();
    h.limit(1, Sell, 100, 3);
    h.limit(1, Sell, 101, 3);
    let (id, ev) = h.limit_tif(2, Buy, 101, 7, TimeInForce::Fok);
    assert!(fills(&ev).is_empty());
    assert_eq!(
        status(&ev, id),
        OrderStatus::Cancelled(CancelReason::FokUnfillable)
    );
    assert_eq!(h.depth(), (vec![], vec![(100, 3), (101, 3)]));
    let (id, ev) = h.limit_tif(2, Buy, 100, 4, TimeInForce::Fok);
    assert_eq!(
        status(&ev, id),
        OrderStatus::Cancelled(CancelReason::FokUnfillable)
    );
    let (id, ev) = h.limit_tif(2, Buy, 101, 6, TimeInForce::Fok);
    assert_eq!(fills(&ev).len(), 2);
    assert_eq!(status(&ev, id), OrderStatus::Filled);
    assert_eq!(h.book().order_count(), 0);
}

#[test]
fn fok_counts_only_what_self_trade_prevention_lets_it_take() {
    let mut h = Harness::new();
    h.limit(1, Sell, 100, 3);
    h.limit(2, Sell, 100, 3);
    // Account 1 buying with EXPIRE_MAKER can only get account 2's 3.
    let (id, ev) = h.order(
        TST,
        1,
        Buy,
        lim(100, 4, TimeInForce::Fok),
        StpMode::ExpireMaker,
        None,
    );
    assert_eq!(
        status(&ev, id),
        OrderStatus::Cancelled(CancelReason::FokUnfillable)
    );
    assert_eq!(h.depth().1, vec![(100, 6)]);
    // With EXPIRE_TAKER it stops at its own order, which comes first.
    let (id, ev) = h.order(
        TST,
        1,
        Buy,
        lim(100, 1, TimeInForce::Fok),
        StpMode::ExpireTaker,
        None,
    );
    assert_eq!(
        status(&ev, id),
        OrderStatus::Cancelled(CancelReason::FokUnfillable)
    );
    let (id, ev) = h.order(
        TST,
        1,
        Buy,
        lim(100, 3, TimeInForce::Fok),
        StpMode::ExpireMaker,
        None,
    );
    assert_eq!(status(&ev, id), OrderStatus::Filled);
    assert_eq!(trades(&ev)[0].maker_account, AccountId(2));
}

#[test]
fn post_only_is_rejected_if_it_would_take_and_rests_otherwise() {
    let mut h = Harness::new();
    h.limit(1, Sell, 100, 3);
    let post = |price| OrderType::Limit {
        price: Price(price),
        qty: Qty(1),
        tif: TimeInForce::Gtc,
        post_only: true,
    };
    let (_, ev) = h.order(TST, 2, Buy, post(100), StpMode::None, None);
    assert_eq!(rejection(&ev), Some(RejectReason::PostOnlyWouldTake));
    assert_eq!(ev.len(), 1);
    let (id, ev) = h.order(TST, 2, Buy, post(99), StpMode::None, None);
    assert_eq!(status(&ev, id), OrderStatus::New);
    let (_, ev) = h.order(
        TST,
        2,
        Buy,
        OrderType::Limit {
            price: Price(99),
            qty: Qty(1),
            tif: TimeInForce::Ioc,
            post_only: true,
        },
        StpMode::None,
        None,
    );
    assert_eq!(rejection(&ev), Some(RejectReason::InvalidOrderType));
}

#[test]
fn stp_none_lets_an_account_trade_with_itself() {
    let mut h = Harness::new();
    let (m, _) = h.limit(1, Sell, 100, 2);
    let (_, ev) = h.limit_stp(1, Buy, 100, 2, StpMode::None);
    assert_eq!(fills(&ev), vec![(m, 100, 2)]);
}

#[test]
fn stp_expire_taker_cancels_the_incoming_remainder() {
    let mut h = Harness::new();
    let (other, _) = h.limit(2, Sell, 100, 1);
    let (own, _) = h.limit(1, Sell, 100, 5);
    let (t, ev) = h.limit_stp(1, Buy, 100, 4, StpMode::ExpireTaker);
    assert_eq!(fills(&ev), vec![(other, 100, 1)]);
    let u = last_update(&ev, t).unwrap();
    assert_eq!(
        (u.status, u.filled),
        (OrderStatus::Cancelled(CancelReason::SelfTrade), Qty(1))
    );
    assert!(h.book().order(own).is_some(), "the resting order stays");
    assert_eq!(h.book().order_count(), 1);
}

#[test]
fn stp_expire_maker_cancels_own_resting_orders_and_goes_on() {
    let mut h = Harness::new();
    let (own, _) = h.limit(1, Sell, 100, 5);
    let (other, _) = h.limit(2, Sell, 100, 5);
    let (t, ev) = h.limit_stp(1, Buy, 100, 4, StpMode::ExpireMaker);
    assert_eq!(
        status(&ev, own),
        OrderStatus::Cancelled(CancelReason::SelfTrade)
    );
    assert_eq!(fills(&ev), vec![(other, 100, 4)]);
    assert_eq!(status(&ev, t), OrderStatus::Filled);
    assert_eq!(h.depth().1, vec![(100, 1)]);
}

#[test]
fn stp_expire_both_cancels_both() {
    let mut h = Harness::new();
    let (own, _) = h.limit(1, Sell, 100, 5);
    h.limit(2, Sell, 100, 5);
    let (t, ev) = h.limit_stp(1, Buy, 100, 4, StpMode::ExpireBoth);
    assert!(fills(&ev).is_empty());
    assert_eq!(
        status(&ev, own),
        OrderStatus::Cancelled(CancelReason::SelfTrade)
    );
    assert_eq!(
        status(&ev, t),
        OrderStatus::Cancelled(CancelReason::SelfTrade)
    );
    assert_eq!(h.depth(), (vec![], vec![(100, 5)]));
}

#[test]
fn the_takers_stp_mode_wins() {
    let mut h = Harness::new();
    let (m, _) = h.limit_stp(1, Sell, 100, 2, StpMode::ExpireBoth);
    let (_, ev) = h.limit_stp(1, Buy, 100, 2, StpMode::None);
    assert_eq!(fills(&ev), vec![(m, 100, 2)]);
}

#[test]
fn amend_reducing_quantity_keeps_time_priority() {
    let mut h = Harness::new();
    let (a, _) = h.limit(1, Sell, 100, 5);
    let (b, _) = h.limit(2, Sell, 100, 5);
    let ev = h.amend(1, a, None, Some(3));
    let u = last_update(&ev, a).unwrap();
    assert_eq!((u.status, u.remaining), (OrderStatus::New, Qty(3)));
    assert!(ev.contains(&Event {
        kind: EventKind::Level(LevelUpdate {
            side: Sell,
            price: Price(100),
            qty: Qty(8)
        }),
        ..ev[1]
    }));
    let (_, ev) = h.limit(3, Buy, 100, 2);
    assert_eq!(fills(&ev), vec![(a, 100, 2)]);
    let _ = b;
}

#[test]
fn amend_increasing_quantity_or_moving_price_loses_priority() {
    let mut h = Harness::new();
    let (a, _) = h.limit(1, Sell, 100, 5);
    let (b, _) = h.limit(2, Sell, 100, 5);
    h.amend(1, a, None, Some(6));
    let (_, ev) = h.limit(3, Buy, 100, 2);
    assert_eq!(fills(&ev), vec![(b, 100, 2)]);
    // Moving away and back puts it behind b again.
    let (c, _) = h.limit(4, Sell, 101, 1);
    h.amend(4, c, Some(100), None);
    let (_, ev) = h.limit(3, Buy, 100, 10);
    assert_eq!(fills(&ev), vec![(b, 100, 3), (a, 100, 6), (c, 100, 1)]);
}

#[test]
fn amend_that_crosses_trades_like_a_new_order_and_keeps_its_fills() {
    let mut h = Harness::new();
    let (m, _) = h.limit(2, Sell, 101, 3);
    let (a, _) = h.limit(1, Buy, 99, 5);
    h.limit(3, Sell, 99, 1); // a fills 1
    let ev = h.amend(1, a, Some(101), None);
    assert_eq!(fills(&ev), vec![(m, 101, 3)]);
    let u = last_update(&ev, a).unwrap();
    assert_eq!(
        (u.status, u.filled, u.remaining, u.price),
        (OrderStatus::PartiallyFilled, Qty(4), Qty(1), Price(101))
    );
    assert_eq!(h.depth(), (vec![(101, 1)], vec![]));
    let ev = h.amend(1, a, None, Some(4));
    assert_eq!(
        rejection(&ev),
        Some(RejectReason::InvalidAmend),
        "cannot cut below what is filled"
    );
}

#[test]
fn amend_that_would_make_a_post_only_order_take_cancels_it() {
    let mut h = Harness::new();
    h.limit(2, Sell, 101, 3);
    let (id, _) = h.order(
        TST,
        1,
        Buy,
        OrderType::Limit {
            price: Price(99),
            qty: Qty(1),
            tif: TimeInForce::Gtc,
            post_only: true,
        },
        StpMode::None,
        None,
    );
    let ev = h.amend(1, id, Some(101), None);
    assert_eq!(
        status(&ev, id),
        OrderStatus::Cancelled(CancelReason::PostOnly)
    );
    assert!(fills(&ev).is_empty());
    assert_eq!(h.depth(), (vec![], vec![(101, 3)]));
}

#[test]
fn amend_rejections() {
    let mut h = Harness::new();
    let (a, _) = h.limit(1, Sell, 100, 5);
    assert_eq!(
        rejection(&h.amend(2, a, None, Some(1))),
        Some(RejectReason::UnknownOrder),
        "another account's order"
    );
    assert_eq!(
        rejection(&h.amend(1, OrderId::compose(TST, 999), None, Some(1))),
        Some(RejectReason::UnknownOrder)
    );
    assert_eq!(
        rejection(&h.amend(1, a, None, None)),
        Some(RejectReason::InvalidAmend)
    );
    assert_eq!(
        rejection(&h.amend(1, a, Some(2_000_000), None)),
        Some(RejectReason::PriceOutOfRange)
    );
    assert_eq!(
        rejection(&h.amend(1, a, None, Some(2_000_000))),
        Some(RejectReason::QtyOutOfRange)
    );
    assert_eq!(
        h.book().order(a).unwrap().remaining,
        Qty(5),
        "rejections change nothing"
    );
}

#[test]
fn cancel_by_id_and_by_client_id() {
    let mut h = Harness::new();
    let (a, _) = h.limit(1, Buy, 100, 5);
    let (b, _) = h.order(
        TST,
        1,
        Buy,
        lim(99, 5, TimeInForce::Gtc),
        StpMode::None,
        Some("mine-1"),
    );
    let ev = h.cancel(1, OrderRef::Id(a));
    assert_eq!(status(&ev, a), OrderStatus::Cancelled(CancelReason::User));
    assert!(ev.iter().any(|e| e.kind
        == EventKind::Level(LevelUpdate {
            side: Buy,
            price: Price(100),
            qty: Qty(0)
        })));
    let coid = ClientOrderId::new("mine-1").unwrap();
    assert_eq!(
        h.book()
            .order_by_client_id(AccountId(1), &coid)
            .map(|o| o.id),
        Some(b)
    );
    let ev = h.cancel(1, OrderRef::Client(coid));
    assert_eq!(status(&ev, b), OrderStatus::Cancelled(CancelReason::User));
    assert_eq!(h.book().order_count(), 0);
    assert_eq!(
        rejection(&h.cancel(1, OrderRef::Id(a))),
        Some(RejectReason::UnknownOrder),
        "twice"
    );
    assert_eq!(
        rejection(&h.cancel(1, OrderRef::Client(coid))),
        Some(RejectReason::UnknownOrder)
    );
    // The client id is free again once its order is gone.
    let (_, ev) = h.order(
        TST,
        1,
        Buy,
        lim(99, 5, TimeInForce::Gtc),
        StpMode::None,
        Some("mine-1"),
    );
    assert_eq!(rejection(&ev), None);
}

#[test]
fn an_account_cannot_cancel_another_accounts_order() {
    let mut h = Harness::new();
    let (a, _) = h.order(
        TST,
        1,
        Buy,
        lim(100, 5, TimeInForce::Gtc),
        StpMode::None,
        Some("x"),
    );
    assert_eq!(
        rejection(&h.cancel(2, OrderRef::Id(a))),
        Some(RejectReason::UnknownOrder)
    );
    assert_eq!(
        rejection(&h.cancel(2, OrderRef::Client(ClientOrderId::new("x").unwrap()))),
        Some(RejectReason::UnknownOrder)
    );
    assert!(h.book().order(a).is_some());
}

#[test]
fn cancel_all_for_one_symbol_or_every_symbol() {
    let mut h = Harness::new();
    let (a, _) = h.limit(1, Buy, 100, 5);
    let (b, _) = h.limit(1, Sell, 110, 5);
    let (keep, _) = h.limit(2, Buy, 101, 5);
    let (o, _) = h.order(
        OTH,
        1,
        Buy,
        lim(10, 1, TimeInForce::Gtc),
        StpMode::None,
        None,
    );
    let ev = h.apply(Command::CancelAll(CancelAll {
        account: AccountId(1),
        symbol: Some(TST),
    }));
    assert_eq!(status(&ev, a), OrderStatus::Cancelled(CancelReason::User));
    assert_eq!(status(&ev, b), OrderStatus::Cancelled(CancelReason::User));
    assert!(h.book().order(keep).is_some());
    assert!(h.engine.book(OTH).unwrap().order(o).is_some());
    h.limit(1, Buy, 100, 5);
    let ev = h.apply(Command::CancelAll(CancelAll {
        account: AccountId(1),
        symbol: None,
    }));
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e.kind, EventKind::Order(_)))
            .count(),
        2
    );
    assert_eq!(h.engine.book(OTH).unwrap().order_count(), 0);
    assert_eq!(h.book().open_orders(AccountId(1)), vec![]);
    assert_eq!(h.book().order_count(), 1);
}

#[test]
fn every_reject_reason_of_a_place() {
    let mut h = Harness::new();
    let place = |h: &mut Harness, symbol, ot| h.order(symbol, 1, Buy, ot, StpMode::None, None).1;
    let ev = place(&mut h, SymbolId(99), lim(10, 1, TimeInForce::Gtc));
    assert_eq!(rejection(&ev), Some(RejectReason::UnknownSymbol));
    assert_eq!(ev[0].seq, 0, "no symbol stream for an unknown symbol");
    assert_eq!(
        rejection(&place(&mut h, MIN, lim(10, 1, TimeInForce::Gtc))),
        Some(RejectReason::QtyOutOfRange)
    );
    assert_eq!(
        rejection(&place(&mut h, MIN, lim(10, 101, TimeInForce::Gtc))),
        Some(RejectReason::QtyOutOfRange)
    );
    assert_eq!(
        rejection(&place(&mut h, MIN, lim(1001, 2, TimeInForce::Gtc))),
        Some(RejectReason::PriceOutOfRange)
    );
    assert_eq!(
        rejection(&place(&mut h, MIN, lim(0, 2, TimeInForce::Gtc))),
        Some(RejectReason::PriceOutOfRange)
    );
    assert_eq!(
        rejection(&place(&mut h, MIN, lim(24, 2, TimeInForce::Gtc))),
        Some(RejectReason::BelowMinNotional)
    );
    assert_eq!(
        rejection(&place(&mut h, MIN, lim(25, 2, TimeInForce::Gtc))),
        None
    );
    assert_eq!(
        rejection(&place(
            &mut h,
            MIN,
            OrderType::Market {
                size: MarketSize::Quote(Notional(49))
            }
        )),
        Some(RejectReason::BelowMinNotional)
    );
    assert_eq!(
        rejection(&place(
            &mut h,
            MIN,
            OrderType::Market {
                size: MarketSize::Base(Qty(1))
            }
        )),
        Some(RejectReason::QtyOutOfRange)
    );
    let id = h.next_id(TST);
    let new = |id, c: Option<&str>| {
        Command::Place(NewOrder {
            symbol: TST,
            order_id: id,
            account: AccountId(1),
            client_order_id: c.map(|c| ClientOrderId::new(c).unwrap()),
            side: Buy,
            order_type: lim(10, 1, TimeInForce::Gtc),
            stp: StpMode::None,
        })
    };
    assert_eq!(rejection(&h.apply(new(id, Some("c")))), None);
    assert_eq!(
        rejection(&h.apply(new(id, None))),
        Some(RejectReason::DuplicateOrderId)
    );
    let id2 = h.next_id(TST);
    assert_eq!(
        rejection(&h.apply(new(id2, Some("c")))),
        Some(RejectReason::DuplicateClientOrderId)
    );
    let mut other = Harness::new();
    other.engine = Engine::with_symbols(&symbols(), |s| s.id != TST);
    let (_, ev) = other.limit(1, Buy, 10, 1);
    assert_eq!(rejection(&ev), Some(RejectReason::SymbolNotOwned));
    for r in [
        RejectReason::UnknownSymbol,
        RejectReason::PostOnlyWouldTake,
        RejectReason::InvalidAmend,
    ] {
        assert!(!r.message().is_empty());
        assert!(matches!(r.code().as_u16() / 1000, 1 | 3));
    }
}

#[test]
fn sequence_numbers_are_gap_free_per_symbol() {
    let mut h = Harness::new();
    let mut all = Vec::new();
    all.extend(h.limit(1, Sell, 100, 5).1);
    all.extend(
        h.order(
            OTH,
            1,
            Buy,
            lim(10, 1, TimeInForce::Gtc),
            StpMode::None,
            None,
        )
        .1,
    );
    all.extend(h.limit(2, Buy, 100, 7).1);
    all.extend(h.limit(2, Buy, 0, 7).1); // rejected: still sequenced
    all.extend(h.cancel(3, OrderRef::Id(OrderId::compose(TST, 42))));
    for sym in [TST, OTH] {
        let seqs: Vec<u64> = all
            .iter()
            .filter(|e| e.symbol == sym)
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "{sym:?}");
    }
    assert_eq!(
        h.book().seq(),
        all.iter().filter(|e| e.symbol == TST).count() as u64
    );
}

#[test]
fn queries_depth_open_orders_and_lookups() {
    let mut h = Harness::new();
    for (acct, side, p, q) in [
        (1, Buy, 98, 1),
        (1, Buy, 99, 2),
        (2, Buy, 99, 3),
        (1, Sell, 101, 4),
        (2, Sell, 103, 5),
        (2, Sell, 102, 6),
    ] {
        h.limit(acct, side, p, q);
    }
    let d = h.book().depth(2);
    assert_eq!(d.bids, vec![(Price(99), Qty(5)), (Price(98), Qty(1))]);
    assert_eq!(d.asks, vec![(Price(101), Qty(4)), (Price(102), Qty(6))]);
    assert_eq!(h.book().best_bid(), Some((Price(99), Qty(5))));
    assert_eq!(h.book().best_ask(), Some((Price(101), Qty(4))));
    let mine = h.book().open_orders(AccountId(1));
    assert_eq!(
        mine.iter()
            .map(|o| (o.price.0, o.remaining.0))
            .collect::<Vec<_>>(),
        vec![(98, 1), (99, 2), (101, 4)]
    );
    assert!(
        mine.iter()
            .all(|o| o.account == AccountId(1) && o.status() == OrderStatus::New)
    );
    assert_eq!(h.book().order(mine[1].id), Some(mine[1]));
    assert_eq!(h.book().level_count(), (2, 3));
}

#[test]
fn the_same_commands_give_the_same_events() {
    let run = || {
        let mut h = Harness::new();
        let mut all = Vec::new();
        for i in 0..200u64 {
            let side = if i % 3 == 0 { Buy } else { Sell };
            all.extend(h.limit(i % 7, side, 95 + (i * 7) % 11, 1 + i % 5).1);
            if i % 5 == 0 {
                all.extend(h.market(i % 3, side.opposite(), MarketSize::Base(Qty(3))).1);
            }
        }
        postcard::to_stdvec(&all).unwrap()
    };
    assert_eq!(run(), run());
}

#[test]
fn emptied_levels_are_reused_and_swept_without_changing_behaviour() {
    // Levels that empty are kept for reuse and swept once there are too many; neither may show
    // in depth, best prices or matching.
    let mut h = Harness::new();
    for round in 0..3u64 {
        for i in 0..700u64 {
            let (id, _) = h.limit(1, Sell, 1_000 + i + round, 1);
            h.cancel(1, OrderRef::Id(id));
            h.book().check_invariants().unwrap();
        }
    }
    assert_eq!(h.depth(), (vec![], vec![]));
    assert_eq!(h.book().level_count(), (0, 0));
    assert_eq!(h.book().best_ask(), None);
    let (a, _) = h.limit(2, Sell, 1_500, 2);
    let (b, _) = h.limit(2, Sell, 1_200, 2);
    assert_eq!(h.book().best_ask(), Some((Price(1_200), Qty(2))));
    let (_, ev) = h.limit(3, Buy, 2_000, 3);
    assert_eq!(fills(&ev), vec![(b, 1_200, 2), (a, 1_500, 1)]);
    h.book().check_invariants().unwrap();
    assert_eq!(h.depth(), (vec![], vec![(1_500, 1)]));
}
