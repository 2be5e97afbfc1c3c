//! Commands: the closed set of inputs to the engine, as they are written to a shard's command log.
//!
//! Every command carries the ids it needs (order ids are assigned before the command is logged)
//! and is applied with the timestamp its log entry carries, so replaying a log is deterministic.

use crate::num::{Notional, Price, Qty};
use crate::types::{AccountId, ClientOrderId, OrderId, Side, StpMode, SymbolId, TimeInForce};
use serde::{Deserialize, Serialize};

/// One input to the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Place(NewOrder),
    Cancel(CancelOrder),
    CancelAll(CancelAll),
    Amend(AmendOrder),
}

/// Which command an `Accepted` or `Rejected` event answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommandKind {
    Place,
    Cancel,
    CancelAll,
    Amend,
}

impl Command {
    /// The kind of this command.
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::Place(_) => CommandKind::Place,
            Command::Cancel(_) => CommandKind::Cancel,
            Command::CancelAll(_) => CommandKind::CancelAll,
            Command::Amend(_) => CommandKind::Amend,
        }
    }

    /// The account the command acts for.
    pub fn account(&self) -> AccountId {
        match self {
            Command::Place(c) => c.account,
            Command::Cancel(c) => c.account,
            Command::CancelAll(c) => c.account,
            Command::Amend(c) => c.account,
        }
    }

    /// The symbol the command is about; `None` for a cancel-all across every symbol.
    pub fn symbol(&self) -> Option<SymbolId> {
        match self {
            Command::Place(c) => Some(c.symbol),
            Command::Cancel(c) => Some(c.symbol),
            Command::CancelAll(c) => c.symbol,
            Command::Amend(c) => Some(c.symbol),
        }
    }
}

/// Place a new order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    pub symbol: SymbolId,
    pub order_id: OrderId,
    pub account: AccountId,
    pub client_order_id: Option<ClientOrderId>,
    pub side: Side,
    pub order_type: OrderType,
    pub stp: StpMode,
}

/// What kind of order, with the fields that kind needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderType {
    /// Trades at `price` or better; what is left follows the time in force.
    Limit {
        price: Price,
        qty: Qty,
        tif: TimeInForce,
        /// Only ever rests: rejected if it would take liquidity on arrival. GTC only.
        post_only: bool,
    },
    /// Trades at any price against what rests now; never rests (what is left is cancelled).
    Market { size: MarketSize },
}

/// How much a market order trades.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MarketSize {
    /// This quantity of the base asset.
    Base(Qty),
    /// As much base as this amount of the quote asset buys or sells (Binance's `quoteOrderQty`).
    Quote(Notional),
}

/// Names an order by the exchange's id or by the client's own id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderRef {
    Id(OrderId),
    Client(ClientOrderId),
}

/// Cancel one live order of `account`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelOrder {
    pub symbol: SymbolId,
    pub account: AccountId,
    pub target: OrderRef,
}

/// Cancel every live order of `account`, on one symbol or on all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelAll {
    pub account: AccountId,
    pub symbol: Option<SymbolId>,
}

/// Change a live order's price and/or total quantity.
///
/// Lowering the quantity at the same price keeps the order's place in the queue. Any other change
/// (a new price, or more quantity) is cancel-and-replace: the order keeps its id and what it has
/// filled, may trade at once like a new order, and rests at the back of its price level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmendOrder {
    pub symbol: SymbolId,
    pub account: AccountId,
    pub target: OrderRef,
    pub new_price: Option<Price>,
    /// The new total quantity, filled part included (Binance's `newQty`).
    pub new_qty: Option<Qty>,
}
