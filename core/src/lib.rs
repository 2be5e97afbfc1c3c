//! exchange-core: the domain model and the matching engine every other crate stands on.
//!
//! Pure by design: no I/O, no async, no clock, no randomness. Time and ids come in with each
//! [`Command`]; [`Event`]s come out as values. The shard crate owns the loop, the log and the
//! sockets; the gateway owns HTTP. That is what lets the same engine run in the embedded
//! single-process exchange and in the cluster, and what makes replay exact.
//!
//! # Layout
//! - [`types`]: ids (`OrderId`, `AccountId`, `SymbolId`, ...) and small enums (`Side`, `StpMode`).
//! - [`num`]: fixed-point `Price` (ticks), `Qty` (lots), `Notional`; strict decimal parsing.
//! - [`symbol`]: symbols and their trading rules, loaded from `config/symbols.toml`.
//! - [`command`] and [`event`]: the closed enums going into and coming out of the engine.
//! - [`funds`]: assets, balances' units, order holds, fill legs and fees.
//! - [`interval`]: candle intervals (`1m` ... `1d`) and their buckets.
//! - [`book`]: one symbol's order book and the price-time-priority matching.
//! - [`engine`]: the books a shard owns, the one dispatcher, snapshot and restore.
//! - [`codes`]: the exchange-wide numbering of errors and reject reasons.
//! - [`routing`]: which shard owns a symbol (jump consistent hash).
//! - [`stream`]: the event stream the functions consume: trades, order states, ledger entries.
//! - [`views`]: read models of orders and markets, shared by the shard and the gateway.

pub mod book;
pub mod codes;
pub mod command;
pub mod engine;
pub mod event;
pub mod funds;
pub mod interval;
pub mod num;
pub mod routing;
pub mod stream;
pub mod symbol;
pub mod types;
pub mod views;

pub use book::{Depth, OrderBook, RestingOrder};
pub use codes::ErrorCode;
pub use command::{
    AmendOrder, CancelAll, CancelOrder, Command, CommandKind, MarketSize, NewOrder, OrderRef,
    OrderType,
};
pub use engine::{Engine, SnapshotError};
pub use event::{
    CancelReason, Event, EventKind, LevelUpdate, OrderStatus, OrderUpdate, RejectReason, Trade,
};
pub use funds::{Asset, AssetId, Assets, FillLeg, Funding, Hold, HoldError};
pub use interval::Interval;
pub use num::{Notional, NumError, Price, Qty};
pub use routing::{ShardId, shard_for};
pub use symbol::{Limits, SymbolSpec, SymbolTable};
pub use types::{
    AccountId, ClientOrderId, OrderId, Side, StpMode, SymbolId, TimeInForce, Timestamp, TradeId,
};
pub use views::{
    AccountFunds, Delta, DepthView, Fill, Ohlcv, OrderRecord, StatusFilter, StatusKind, TickerView,
    TradeRecord,
};
