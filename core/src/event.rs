//! Events: the closed set of outputs of the engine, published by the shard as they are.
//!
//! Every event of a symbol carries that symbol's sequence number, counting from 1 without gaps,
//! so a consumer that sees a gap knows it missed something and re-syncs from a snapshot.
//! (A command naming a symbol the engine does not hold is rejected with `seq` 0: it belongs to
//! no symbol's stream.)

use crate::codes::ErrorCode;
use crate::command::CommandKind;
use crate::num::{Price, Qty};
use crate::types::{AccountId, OrderId, Side, SymbolId, Timestamp, TradeId};
use serde::{Deserialize, Serialize};

/// One output of the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub symbol: SymbolId,
    /// The symbol's sequence number: 1, 2, 3, ... with no gaps.
    pub seq: u64,
    /// The timestamp of the command that caused the event.
    pub ts: Timestamp,
    pub kind: EventKind,
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// The command passed validation and is being applied; its effects follow.
    Accepted {
        command: CommandKind,
        order_id: OrderId,
        account: AccountId,
    },
    /// The command was refused and changed nothing.
    Rejected {
        command: CommandKind,
        /// The order named by the command, when it named one by id.
        order_id: Option<OrderId>,
        account: AccountId,
        reason: RejectReason,
    },
    /// Two orders traded.
    Trade(Trade),
    /// An order's state changed.
    Order(OrderUpdate),
    /// A price level's total quantity changed.
    Level(LevelUpdate),
}

/// A fill between a resting (maker) order and an incoming (taker) order, at the maker's price.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    pub trade_id: TradeId,
    pub maker_order_id: OrderId,
    pub taker_order_id: OrderId,
    pub maker_account: AccountId,
    pub taker_account: AccountId,
    pub price: Price,
    pub qty: Qty,
    pub taker_side: Side,
}

/// An order's state after a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderUpdate {
    pub order_id: OrderId,
    pub account: AccountId,
    pub side: Side,
    /// The order's limit price; 0 for a market order.
    pub price: Price,
    pub status: OrderStatus,
    /// Quantity filled so far.
    pub filled: Qty,
    /// Quantity still open on the book (0 once the order is done).
    pub remaining: Qty,
}

/// Where an order is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Resting on the book, nothing filled.
    New,
    /// Resting on the book, partly filled.
    PartiallyFilled,
    /// Done: completely filled.
    Filled,
    /// Done: cancelled, possibly after partial fills.
    Cancelled(CancelReason),
}

impl OrderStatus {
    /// Whether the order is done and off the book.
    pub fn is_final(self) -> bool {
        matches!(self, OrderStatus::Filled | OrderStatus::Cancelled(_))
    }
}

/// Why an order was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CancelReason {
    /// The account asked for it.
    User,
    /// The part of an IOC or market order that could not trade at once.
    IocRemainder,
    /// A FOK order that could not be filled completely at once.
    FokUnfillable,
    /// Self-trade prevention.
    SelfTrade,
    /// A post-only order that an amendment would have made take liquidity.
    PostOnly,
}

impl CancelReason {
    /// The wire name (`USER`, `IOC_REMAINDER`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::User => "USER",
            CancelReason::IocRemainder => "IOC_REMAINDER",
            CancelReason::FokUnfillable => "FOK_UNFILLABLE",
            CancelReason::SelfTrade => "SELF_TRADE",
            CancelReason::PostOnly => "POST_ONLY",
        }
    }
}

/// A price level's new total quantity (0: the level is gone).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelUpdate {
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
}

/// Why the engine refused a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectReason {
    UnknownSymbol,
    SymbolNotOwned,
    QtyOutOfRange,
    PriceOutOfRange,
    BelowMinNotional,
    InvalidOrderType,
    UnknownOrder,
    DuplicateOrderId,
    DuplicateClientOrderId,
    PostOnlyWouldTake,
    InvalidAmend,
    /// Not decided by the engine: an amendment that needs more funds than were set aside.
    InsufficientBalance,
}

impl RejectReason {
    /// This reason's place in the exchange-wide numbering.
    pub fn code(self) -> ErrorCode {
        match self {
            RejectReason::UnknownSymbol => ErrorCode::UnknownSymbol,
            RejectReason::SymbolNotOwned => ErrorCode::SymbolNotOwned,
            RejectReason::QtyOutOfRange => ErrorCode::QtyOutOfRange,
            RejectReason::PriceOutOfRange => ErrorCode::PriceOutOfRange,
            RejectReason::BelowMinNotional => ErrorCode::BelowMinNotional,
            RejectReason::InvalidOrderType => ErrorCode::InvalidOrderType,
            RejectReason::UnknownOrder => ErrorCode::UnknownOrder,
            RejectReason::DuplicateOrderId => ErrorCode::DuplicateOrderId,
            RejectReason::DuplicateClientOrderId => ErrorCode::DuplicateClientOrderId,
            RejectReason::PostOnlyWouldTake => ErrorCode::PostOnlyWouldTake,
            RejectReason::InvalidAmend => ErrorCode::InvalidAmend,
            RejectReason::InsufficientBalance => ErrorCode::InsufficientBalance,
        }
    }

    /// A sentence for the client.
    pub fn message(self) -> &'static str {
        match self {
            RejectReason::UnknownSymbol => "the symbol is not listed",
            RejectReason::SymbolNotOwned => "the symbol is not traded by this shard",
            RejectReason::QtyOutOfRange => "the quantity is outside the symbol's limits",
            RejectReason::PriceOutOfRange => "the price is outside the symbol's limits",
            RejectReason::BelowMinNotional => "price × quantity is below the minimum notional",
            RejectReason::InvalidOrderType => {
                "post-only orders must be GTC limit orders; market orders take no time in force"
            }
            RejectReason::UnknownOrder => "no live order with this id for this account",
            RejectReason::DuplicateOrderId => "an order with this id is already live",
            RejectReason::DuplicateClientOrderId => {
                "a live order with this client order id already exists"
            }
            RejectReason::PostOnlyWouldTake => "the post-only order would take liquidity",
            RejectReason::InvalidAmend => {
                "an amendment must change the price or quantity, and keep the quantity above what is filled"
            }
            RejectReason::InsufficientBalance => {
                "the available balance cannot cover the amended order"
            }
        }
    }
}
