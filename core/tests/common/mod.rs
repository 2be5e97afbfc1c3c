//! Helpers shared by the engine's integration tests: a small symbol table with whole-number
//! ticks and lots, and a harness that stamps commands with ids and times.
#![allow(dead_code)]

use exchange_core::*;

pub const TST: SymbolId = SymbolId(0);
pub const OTH: SymbolId = SymbolId(1);
pub const MIN: SymbolId = SymbolId(2);

pub fn symbols() -> SymbolTable {
    SymbolTable::from_toml(
        r#"
[[symbol]]
name = "TST-USD"
base = "TST"
quote = "USD"
tick_size = "1"
lot_size = "1"
min_qty = "1"
max_qty = "1000000"
max_price = "1000000"
min_notional = "0"

[[symbol]]
name = "OTH-USD"
base = "OTH"
quote = "USD"
tick_size = "1"
lot_size = "1"
min_qty = "1"
max_qty = "1000000"
max_price = "1000000"
min_notional = "0"

[[symbol]]
name = "MIN-USD"
base = "MIN"
quote = "USD"
tick_size = "1"
lot_size = "1"
min_qty = "2"
max_qty = "100"
max_price = "1000"
min_notional = "50"
"#,
    )
    .expect("test symbols are valid")
}

/// Bids and asks as (price, quantity), best first.
pub type Levels = (Vec<(u64, u64)>, Vec<(u64, u64)>);

pub struct Harness {
    pub engine: Engine,
    pub ts: u64,
    next_local: u64,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    pub fn new() -> Self {
        Self {
            engine: Engine::new(&symbols()),
            ts: 1_000,
            next_local: 0,
        }
    }

    pub fn next_id(&mut self, symbol: SymbolId) -> OrderId {
        self.next_local += 1;
        OrderId::compose(symbol, self.next_local)
    }

    pub fn apply(&mut self, cmd: Command) -> Vec<Event> {
        self.ts += 1;
        let mut out = Vec::new();
        self.engine.apply(Timestamp(self.ts), &cmd, &mut out);
        out
    }

    pub fn order(
        &mut self,
        symbol: SymbolId,
        account: u64,
        side: Side,
        order_type: OrderType,
        stp: StpMode,
        client: Option<&str>,
    ) -> (OrderId, Vec<Event>) {
        let id = self.next_id(symbol);
        let cmd = Command::Place(NewOrder {
            symbol,
            order_id: id,
            account: AccountId(account),
            client_order_id: client.map(|c| ClientOrderId::new(c).unwrap()),
            side,
            order_type,
            stp,
        });
        (id, self.apply(cmd))
    }

    /// A GTC limit order on TST-USD.
    pub fn limit(
        &mut self,
        account: u64,
        side: Side,
        price: u64,
        qty: u64,
    ) -> (OrderId, Vec<Event>) {
        self.limit_tif(account, side, price, qty, TimeInForce::Gtc)
    }

    pub fn limit_tif(
        &mut self,
        account: u64,
        side: Side,
        price: u64,
        qty: u64,
        tif: TimeInForce,
    ) -> (OrderId, Vec<Event>) {
        self.order(
            TST,
            account,
            side,
            lim(price, qty, tif),
            StpMode::None,
            None,
        )
    }

    pub fn limit_stp(
        &mut self,
        account: u64,
        side: Side,
        price: u64,
        qty: u64,
        stp: StpMode,
    ) -> (OrderId, Vec<Event>) {
        self.order(
            TST,
            account,
            side,
            lim(price, qty, TimeInForce::Gtc),
            stp,
            None,
        )
    }

    pub fn market(&mut self, account: u64, side: Side, size: MarketSize) -> (OrderId, Vec<Event>) {
        self.order(
            TST,
            account,
            side,
            OrderType::Market { size },
            StpMode::None,
            None,
        )
    }

    pub fn cancel(&mut self, account: u64, target: OrderRef) -> Vec<Event> {
        self.apply(Command::Cancel(CancelOrder {
            symbol: TST,
            account: AccountId(account),
            target,
        }))
    }

    pub fn amend(
        &mut self,
        account: u64,
        id: OrderId,
        price: Option<u64>,
        qty: Option<u64>,
    ) -> Vec<Event> {
        self.apply(Command::Amend(AmendOrder {
            symbol: TST,
            account: AccountId(account),
            target: OrderRef::Id(id),
            new_price: price.map(Price),
            new_qty: qty.map(Qty),
        }))
    }

    pub fn book(&self) -> &OrderBook {
        self.engine.book(TST).expect("TST is held")
    }

    pub fn depth(&self) -> Levels {
        let d = self.book().depth(usize::MAX);
        let f = |v: Vec<(Price, Qty)>| v.into_iter().map(|(p, q)| (p.0, q.0)).collect();
        (f(d.bids), f(d.asks))
    }
}

pub fn lim(price: u64, qty: u64, tif: TimeInForce) -> OrderType {
    OrderType::Limit {
        price: Price(price),
        qty: Qty(qty),
        tif,
        post_only: false,
    }
}

pub fn trades(events: &[Event]) -> Vec<Trade> {
    events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Trade(t) => Some(t),
            _ => None,
        })
        .collect()
}

/// (maker order, price, qty) of each trade.
pub fn fills(events: &[Event]) -> Vec<(OrderId, u64, u64)> {
    trades(events)
        .iter()
        .map(|t| (t.maker_order_id, t.price.0, t.qty.0))
        .collect()
}

/// The last update of `id` among the events.
pub fn last_update(events: &[Event], id: OrderId) -> Option<OrderUpdate> {
    events.iter().rev().find_map(|e| match e.kind {
        EventKind::Order(u) if u.order_id == id => Some(u),
        _ => None,
    })
}

pub fn status(events: &[Event], id: OrderId) -> OrderStatus {
    last_update(events, id)
        .expect("the order has an update")
        .status
}

pub fn rejection(events: &[Event]) -> Option<RejectReason> {
    events.iter().find_map(|e| match e.kind {
        EventKind::Rejected { reason, .. } => Some(reason),
        _ => None,
    })
}
