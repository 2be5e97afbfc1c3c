//! Read models: what the shard keeps about orders and markets for queries, in engine integers.
//!
//! The shard produces them from the engine's events; the gateway turns them into the API's
//! decimal JSON. Defined once here so both sides agree.

use crate::command::OrderType;
use crate::event::OrderStatus;
use crate::funds::AssetId;
use crate::num::{Notional, Price, Qty};
use crate::types::{
    AccountId, ClientOrderId, OrderId, Side, StpMode, SymbolId, Timestamp, TradeId,
};
use serde::{Deserialize, Serialize};

/// Everything known about one order, live or finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    pub id: OrderId,
    pub symbol: SymbolId,
    pub account: AccountId,
    pub client_order_id: Option<ClientOrderId>,
    pub side: Side,
    /// The order as placed (limit price and quantity, or market size).
    pub order_type: OrderType,
    pub stp: StpMode,
    pub status: OrderStatus,
    /// The current limit price (changed by amendments); 0 for market orders.
    pub price: Price,
    /// The current total quantity (changed by amendments); 0 for quote-sized market orders.
    pub qty: Qty,
    pub filled: Qty,
    /// Still open on the book.
    pub remaining: Qty,
    /// Sum of price × quantity over the fills: the average price is `quote_filled / filled`.
    pub quote_filled: Notional,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// One trade as market data shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeRecord {
    pub trade_id: TradeId,
    pub price: Price,
    pub qty: Qty,
    pub taker_side: Side,
    pub ts: Timestamp,
}

/// Open, high, low, close and volume over a span of time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ohlcv {
    pub open: Price,
    pub high: Price,
    pub low: Price,
    pub close: Price,
    /// Base volume in lots.
    pub volume: u128,
    /// Quote volume in notional units.
    pub quote_volume: u128,
    pub trades: u64,
}

impl Ohlcv {
    /// Adds a trade at the end of the span.
    pub fn add(&mut self, price: Price, qty: Qty) {
        if self.trades == 0 {
            self.open = price;
            self.high = price;
            self.low = price;
        }
        self.high = self.high.max(price);
        self.low = self.low.min(price);
        self.close = price;
        self.volume += qty.0 as u128;
        self.quote_volume += price.notional(qty).0;
        self.trades += 1;
    }

    /// Appends a later span to this one.
    pub fn merge(&mut self, later: &Ohlcv) {
        if later.trades == 0 {
            return;
        }
        if self.trades == 0 {
            *self = *later;
            return;
        }
        self.high = self.high.max(later.high);
        self.low = self.low.min(later.low);
        self.close = later.close;
        self.volume += later.volume;
        self.quote_volume += later.quote_volume;
        self.trades += later.trades;
    }
}

/// A symbol's market summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickerView {
    pub symbol: SymbolId,
    /// The symbol's event sequence number this view is as of.
    pub seq: u64,
    pub last: Option<TradeRecord>,
    pub best_bid: Option<(Price, Qty)>,
    pub best_ask: Option<(Price, Qty)>,
    /// The last 24 hours, by minute.
    pub day: Ohlcv,
}

/// A symbol's aggregated depth as of a sequence number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepthView {
    pub symbol: SymbolId,
    pub seq: u64,
    pub bids: Vec<(Price, Qty)>,
    pub asks: Vec<(Price, Qty)>,
}

/// Which of an account's orders a query wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatusFilter {
    Any,
    /// New or partially filled.
    Open,
    /// Filled or cancelled.
    Closed,
    Is(StatusKind),
}

/// An order status without the cancel reason, for filtering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatusKind {
    New,
    PartiallyFilled,
    Filled,
    Cancelled,
}

impl StatusFilter {
    /// Whether an order with status `s` passes the filter.
    pub fn accepts(self, s: OrderStatus) -> bool {
        match self {
            StatusFilter::Any => true,
            StatusFilter::Open => !s.is_final(),
            StatusFilter::Closed => s.is_final(),
            StatusFilter::Is(k) => matches!(
                (k, s),
                (StatusKind::New, OrderStatus::New)
                    | (StatusKind::PartiallyFilled, OrderStatus::PartiallyFilled)
                    | (StatusKind::Filled, OrderStatus::Filled)
                    | (StatusKind::Cancelled, OrderStatus::Cancelled(_))
            ),
        }
    }
}

/// The running change of one account's asset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    pub available: i128,
    pub reserved: i128,
}

impl Delta {
    /// Available plus reserved.
    pub fn total(&self) -> i128 {
        self.available + self.reserved
    }
}

/// One side of a trade, as its account sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    pub ts: Timestamp,
    pub symbol: SymbolId,
    pub trade_id: TradeId,
    pub order_id: OrderId,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
    /// Paid out of the order's hold (quote for a buy, base for a sell), in units.
    pub paid: u128,
    /// Received before the fee (base for a buy, quote for a sell), in units.
    pub received: u128,
    /// Charged in the received asset, in units.
    pub fee: u128,
    pub maker: bool,
}

/// An account's fills and balance changes on one shard, read together.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountFunds {
    /// Per asset, the shard's change to the account's balance.
    pub deltas: Vec<(AssetId, Delta)>,
    /// Newest first.
    pub fills: Vec<Fill>,
    /// Fills at or before this time may be missing (older ones were dropped).
    pub complete_after: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ohlcv_adds_and_merges() {
        let mut a = Ohlcv::default();
        a.add(Price(10), Qty(2));
        a.add(Price(12), Qty(1));
        a.add(Price(9), Qty(3));
        assert_eq!(
            (a.open, a.high, a.low, a.close),
            (Price(10), Price(12), Price(9), Price(9))
        );
        assert_eq!((a.volume, a.quote_volume, a.trades), (6, 20 + 12 + 27, 3));
        let mut b = Ohlcv::default();
        b.add(Price(15), Qty(1));
        let mut m = a;
        m.merge(&b);
        assert_eq!(
            (m.open, m.high, m.low, m.close, m.trades),
            (Price(10), Price(15), Price(9), Price(15), 4)
        );
        let mut e = Ohlcv::default();
        e.merge(&a);
        assert_eq!(e, a);
        a.merge(&Ohlcv::default());
        assert_eq!(a.trades, 3);
    }
}
