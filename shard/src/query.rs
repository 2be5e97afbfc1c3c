//! The questions a gateway asks a shard about its state, and their answers.
//!
//! In one process the gateway reads a shard's state under its read lock; a gateway in another
//! process asks the same questions over the bus (`redis_query`) and the shard answers each from
//! its state with [`answer`]. One enum of questions keeps the two paths the same reads.

use crate::state::ShardState;
use exchange_core::{
    AccountFunds, AccountId, ClientOrderId, DepthView, Ohlcv, OrderId, OrderRecord, StatusFilter,
    SymbolId, TickerView, Timestamp, TradeRecord,
};
use serde::{Deserialize, Serialize};

/// A read of one shard's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    Order(OrderId),
    ByClientId(AccountId, ClientOrderId),
    Orders {
        account: AccountId,
        symbol: Option<SymbolId>,
        status: StatusFilter,
        limit: usize,
    },
    Ticker(SymbolId, Timestamp),
    Candle {
        symbol: SymbolId,
        minutes: u64,
        now: Timestamp,
    },
    Depth(SymbolId, usize),
    Trades(SymbolId, usize),
    Funds {
        account: AccountId,
        symbol: Option<SymbolId>,
        limit: usize,
    },
    /// The shard's progress: the last offset in its log and the last it applied.
    Health,
}

/// What the shard answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    Order(Option<OrderRecord>),
    Orders(Vec<OrderRecord>),
    Ticker(Option<TickerView>),
    Candle(Option<(Timestamp, Ohlcv)>),
    Depth(Option<DepthView>),
    Trades(Option<Vec<TradeRecord>>),
    Funds(AccountFunds),
    Health { logged: u64, applied: u64 },
}

/// Answers `query` from `state`; `logged` is the last offset of the shard's command log.
pub fn answer(state: &ShardState, query: &Query, logged: u64) -> Answer {
    match query {
        Query::Order(id) => Answer::Order(state.orders().get(*id).copied()),
        Query::ByClientId(account, client_id) => {
            Answer::Order(state.orders().by_client_id(*account, client_id).copied())
        }
        Query::Orders {
            account,
            symbol,
            status,
            limit,
        } => Answer::Orders(
            state
                .orders()
                .for_account(*account, *symbol, *status, *limit),
        ),
        Query::Ticker(symbol, now) => Answer::Ticker(state.ticker(*symbol, *now)),
        Query::Candle {
            symbol,
            minutes,
            now,
        } => Answer::Candle(state.candle(*symbol, *minutes, *now)),
        Query::Depth(symbol, limit) => Answer::Depth(state.depth(*symbol, *limit)),
        Query::Trades(symbol, limit) => Answer::Trades(state.trades(*symbol, *limit)),
        Query::Funds {
            account,
            symbol,
            limit,
        } => Answer::Funds(state.funds().account(*account, *symbol, *limit)),
        Query::Health => Answer::Health {
            logged: logged.max(state.applied()),
            applied: state.applied(),
        },
    }
}
