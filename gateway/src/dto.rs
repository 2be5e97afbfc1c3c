//! The API's JSON: request and response types, and their conversion from engine integers.
//!
//! Money travels as decimal strings (`"65000.50"`), printed with the symbol's tick or lot scale.
//! Ids travel as strings too: order and trade ids carry their symbol in the top bits and exceed
//! what a JavaScript number holds exactly. Times are milliseconds since the Unix epoch.

use exchange_core::{
    DepthView, MarketSize, Notional, OrderRecord, OrderType, Price, Qty, SymbolSpec, TickerView,
    Timestamp, Trade, TradeRecord,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `POST /orders` (and the seed's `POST /order`).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    #[schema(example = "BTC-USD")]
    pub symbol: Option<String>,
    /// `BUY` or `SELL`.
    #[schema(example = "BUY")]
    pub side: Option<String>,
    /// `LIMIT` or `MARKET`.
    #[serde(rename = "type")]
    #[schema(example = "LIMIT")]
    pub order_type: Option<String>,
    /// Limit price, a multiple of the tick size. Limit orders only.
    #[schema(example = "65000.00")]
    pub price: Option<String>,
    /// Base quantity, a multiple of the lot size. Limit orders, and market orders sized in base.
    #[schema(example = "0.01000")]
    pub quantity: Option<String>,
    /// Quote amount to spend (buy) or receive (sell). Market orders only, instead of quantity.
    #[schema(example = "100.00")]
    pub quote_quantity: Option<String>,
    /// `GTC` (default), `IOC` or `FOK`. Limit orders only.
    #[schema(example = "GTC")]
    pub time_in_force: Option<String>,
    /// Rest only: rejected if it would take liquidity. GTC limit orders only.
    pub post_only: Option<bool>,
    /// `NONE` (default), `EXPIRE_TAKER`, `EXPIRE_MAKER` or `EXPIRE_BOTH`.
    #[schema(example = "NONE")]
    pub self_trade_prevention: Option<String>,
    /// Your own id for the order, 1 to 36 of `A-Z a-z 0-9 . _ : / -`. Sending the same one
    /// again returns the first order instead of placing another.
    #[schema(example = "my-order-1")]
    pub client_order_id: Option<String>,
}

/// `PATCH /orders/{id}`: a new price and/or total quantity.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendOrderRequest {
    /// The new limit price.
    #[schema(example = "64990.00")]
    pub price: Option<String>,
    /// The new total quantity, filled part included.
    #[schema(example = "0.00500")]
    pub quantity: Option<String>,
}

/// Query of `GET /orders`.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrdersQuery {
    /// Only this symbol's orders.
    pub symbol: Option<String>,
    /// `OPEN`, `CLOSED`, `NEW`, `PARTIALLY_FILLED`, `FILLED` or `CANCELLED`.
    pub status: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    pub limit: Option<String>,
}

/// The signing parameters every private request carries (see `auth` and the README).
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SignedQuery {
    /// Milliseconds since the epoch when the request was signed.
    #[serde(rename = "timestamp")]
    pub timestamp: Option<String>,
    /// How long after `timestamp` the request is valid, in ms (default 5000, at most 60000).
    #[serde(rename = "recvWindow")]
    #[param(rename = "recvWindow")]
    pub recv_window: Option<String>,
    /// Hex HMAC-SHA256 of `METHOD\nPATH\nQUERY\nBODY` (QUERY without `signature`) under the
    /// key's secret; the key id goes in the `X-API-KEY` header.
    pub signature: Option<String>,
}

/// Query of `DELETE /orders`.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CancelAllQuery {
    /// Only this symbol's orders (default: every symbol).
    pub symbol: Option<String>,
}

/// Query with a row limit.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// How many rows (default 100, at most 1000).
    pub limit: Option<String>,
}

/// One fill of an order, in the execution report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FillResponse {
    pub trade_id: String,
    pub price: String,
    pub quantity: String,
    /// `TAKER` or `MAKER`: which side of the trade this order was.
    pub liquidity: String,
}

/// An order, as placing, reading, amending or cancelling it returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderResponse {
    #[schema(example = "1")]
    pub order_id: String,
    pub client_order_id: Option<String>,
    pub account: String,
    pub symbol: String,
    pub side: String,
    /// `LIMIT` or `MARKET`.
    #[serde(rename = "type")]
    pub order_type: String,
    /// Limit orders only.
    pub time_in_force: Option<String>,
    pub post_only: bool,
    pub self_trade_prevention: String,
    /// The current limit price (limit orders).
    pub price: Option<String>,
    /// The current total quantity (absent for a quote-sized market order until it trades).
    pub quantity: Option<String>,
    /// The quote amount a quote-sized market order was given.
    pub quote_quantity: Option<String>,
    /// `NEW`, `PARTIALLY_FILLED`, `FILLED` or `CANCELLED`.
    pub status: String,
    /// Why it was cancelled: `USER`, `IOC_REMAINDER`, `FOK_UNFILLABLE`, `SELF_TRADE`, `POST_ONLY`.
    pub cancel_reason: Option<String>,
    pub filled_quantity: String,
    pub remaining_quantity: String,
    /// Sum of price × quantity over the fills.
    pub cumulative_quote_quantity: String,
    pub average_price: Option<String>,
    /// The trades this request caused for the order (empty when only reading it).
    pub fills: Vec<FillResponse>,
    pub created_at: u64,
    pub updated_at: u64,
}

/// `DELETE /orders`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CancelAllResponse {
    pub cancelled: Vec<OrderResponse>,
}

/// A symbol and its trading rules (`GET /symbols`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SymbolResponse {
    #[schema(example = "BTC-USD")]
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub tick_size: String,
    pub lot_size: String,
    pub min_quantity: String,
    pub max_quantity: String,
    pub max_price: String,
    pub min_notional: String,
    /// Fee of the resting side, in basis points of what it receives.
    pub maker_fee_bps: u32,
    /// Fee of the incoming side, in basis points of what it receives.
    pub taker_fee_bps: u32,
}

/// A symbol's market summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TickerResponse {
    pub symbol: String,
    /// The symbol's event sequence number this summary is as of.
    pub sequence: u64,
    pub last_price: Option<String>,
    pub last_quantity: Option<String>,
    pub last_trade_at: Option<u64>,
    pub best_bid: Option<String>,
    pub best_bid_quantity: Option<String>,
    pub best_ask: Option<String>,
    pub best_ask_quantity: Option<String>,
    pub open_24h: Option<String>,
    pub high_24h: Option<String>,
    pub low_24h: Option<String>,
    pub volume_24h: String,
    pub quote_volume_24h: String,
    /// Last price minus the 24-hour open.
    pub change_24h: Option<String>,
    /// That change as a percentage of the open, to two decimals.
    pub change_percent_24h: Option<String>,
    pub trades_24h: u64,
}

/// A symbol's aggregated book: `[price, quantity]` per level, best first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DepthResponse {
    pub symbol: String,
    pub sequence: u64,
    pub bids: Vec<[String; 2]>,
    pub asks: Vec<[String; 2]>,
}

/// A trade in the market's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TradeResponse {
    pub trade_id: String,
    pub price: String,
    pub quantity: String,
    /// The side of the incoming order: `BUY` means a buyer took an ask.
    pub taker_side: String,
    pub time: u64,
}

/// One OHLCV candle (`GET /market-data/{symbol}/candles`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CandleResponse {
    /// Start of the bucket, milliseconds since the epoch (UTC).
    pub open_time: u64,
    /// Last millisecond of the bucket.
    pub close_time: u64,
    pub open: String,
    pub high: String,
    pub low: String,
    pub close: String,
    /// Base volume.
    pub volume: String,
    /// Quote volume: the sum of price × quantity.
    pub quote_volume: String,
    pub trades: u64,
}

/// `GET /market-data/{symbol}/candles`.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CandlesQuery {
    /// `1m`, `5m`, `15m`, `1h`, `4h` or `1d`.
    pub interval: Option<String>,
    /// Milliseconds since the epoch: candles starting at or after it.
    pub start: Option<String>,
    /// Milliseconds since the epoch: candles starting at or before it.
    pub end: Option<String>,
    /// How many (default 100, at most 1000). Without `start`, the newest ones.
    pub limit: Option<String>,
}

/// `GET /market-data/{symbol}/trades/history`.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Milliseconds since the epoch, inclusive.
    pub start: Option<String>,
    /// Milliseconds since the epoch, inclusive.
    pub end: Option<String>,
    /// How many (default 100, at most 1000). Without `start`, the newest ones.
    pub limit: Option<String>,
}

/// One shard's progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShardHealthResponse {
    pub shard: u32,
    /// Commands in its log.
    pub logged: u64,
    /// Commands it has applied.
    pub applied: u64,
}

/// `GET /health`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthResponse {
    /// `ok`.
    pub status: String,
    pub shards: Vec<ShardHealthResponse>,
}

/// Milliseconds since the epoch.
pub fn millis(ts: Timestamp) -> u64 {
    ts.0 / 1_000_000
}

/// The average of `quote / qty` in price units, to the tick's scale plus six digits.
fn average(spec: &SymbolSpec, quote: Notional, qty: Qty) -> Option<String> {
    if qty.0 == 0 {
        return None;
    }
    let q = spec.notional_to_decimal(quote);
    let n = spec.qty_to_decimal(qty);
    let avg = q
        .checked_div(n)?
        .round_dp(spec.tick_size.scale() + 6)
        .normalize();
    let mut avg = avg;
    if avg.scale() < spec.tick_size.scale() {
        avg.rescale(spec.tick_size.scale());
    }
    Some(avg.to_string())
}

/// An order with the fills this request caused.
pub fn order_response(
    spec: &SymbolSpec,
    o: &OrderRecord,
    fills: Vec<FillResponse>,
) -> OrderResponse {
    let (status, cancel_reason) = exchange_core::stream::status_names(o.status);
    let (order_type, time_in_force, post_only, quote_quantity) = match o.order_type {
        OrderType::Limit { tif, post_only, .. } => {
            ("LIMIT", Some(tif.as_str().into()), post_only, None)
        }
        OrderType::Market {
            size: MarketSize::Base(_),
        } => ("MARKET", None, false, None),
        OrderType::Market {
            size: MarketSize::Quote(n),
        } => (
            "MARKET",
            None,
            false,
            Some(spec.notional_to_decimal(n).to_string()),
        ),
    };
    let is_limit = order_type == "LIMIT";
    OrderResponse {
        order_id: o.id.0.to_string(),
        client_order_id: o.client_order_id.map(|c| c.to_string()),
        account: o.account.0.to_string(),
        symbol: spec.name.clone(),
        side: o.side.as_str().into(),
        order_type: order_type.into(),
        time_in_force,
        post_only,
        self_trade_prevention: o.stp.as_str().into(),
        price: is_limit.then(|| spec.price_to_decimal(o.price).to_string()),
        quantity: (o.qty.0 > 0).then(|| spec.qty_to_decimal(o.qty).to_string()),
        quote_quantity,
        status: status.into(),
        cancel_reason,
        filled_quantity: spec.qty_to_decimal(o.filled).to_string(),
        remaining_quantity: spec.qty_to_decimal(o.remaining).to_string(),
        cumulative_quote_quantity: decimal_quote(spec, o.quote_filled),
        average_price: average(spec, o.quote_filled, o.filled),
        fills,
        created_at: millis(o.created),
        updated_at: millis(o.updated),
    }
}

/// A quote amount printed with the quote's natural scale (the tick's), exact.
fn decimal_quote(spec: &SymbolSpec, n: Notional) -> String {
    let mut d = spec.notional_to_decimal(n).normalize();
    if d.scale() < spec.tick_size.scale() {
        d.rescale(spec.tick_size.scale());
    }
    d.to_string()
}

/// The fill a trade was for `order`.
pub fn fill_response(spec: &SymbolSpec, t: &Trade, taker: bool) -> FillResponse {
    FillResponse {
        trade_id: t.trade_id.0.to_string(),
        price: spec.price_to_decimal(t.price).to_string(),
        quantity: spec.qty_to_decimal(t.qty).to_string(),
        liquidity: if taker { "TAKER" } else { "MAKER" }.into(),
    }
}

/// A symbol's rules.
pub fn symbol_response(s: &SymbolSpec) -> SymbolResponse {
    SymbolResponse {
        symbol: s.name.clone(),
        base: s.base.clone(),
        quote: s.quote.clone(),
        tick_size: s.tick_size.to_string(),
        lot_size: s.lot_size.to_string(),
        min_quantity: s.min_qty.to_string(),
        max_quantity: s.max_qty.to_string(),
        max_price: s.max_price.to_string(),
        min_notional: s.min_notional.to_string(),
        maker_fee_bps: s.maker_fee_bps,
        taker_fee_bps: s.taker_fee_bps,
    }
}

/// A symbol's ticker.
pub fn ticker_response(spec: &SymbolSpec, t: &TickerView) -> TickerResponse {
    let price = |p: Price| spec.price_to_decimal(p).to_string();
    let qty = |q: Qty| spec.qty_to_decimal(q).to_string();
    let day = &t.day;
    let has_day = day.trades > 0;
    let (change, percent) = match (t.last, has_day) {
        (Some(last), true) => {
            let open = spec.price_to_decimal(day.open);
            let change = spec.price_to_decimal(last.price) - open;
            let percent = (change * Decimal::ONE_HUNDRED).checked_div(open).map(|p| {
                let mut p = p.round_dp(2);
                p.rescale(2);
                p.to_string()
            });
            (Some(change.to_string()), percent)
        }
        _ => (None, None),
    };
    TickerResponse {
        symbol: spec.name.clone(),
        sequence: t.seq,
        last_price: t.last.map(|l| price(l.price)),
        last_quantity: t.last.map(|l| qty(l.qty)),
        last_trade_at: t.last.map(|l| millis(l.ts)),
        best_bid: t.best_bid.map(|(p, _)| price(p)),
        best_bid_quantity: t.best_bid.map(|(_, q)| qty(q)),
        best_ask: t.best_ask.map(|(p, _)| price(p)),
        best_ask_quantity: t.best_ask.map(|(_, q)| qty(q)),
        open_24h: has_day.then(|| price(day.open)),
        high_24h: has_day.then(|| price(day.high)),
        low_24h: has_day.then(|| price(day.low)),
        volume_24h: spec
            .qty_to_decimal(Qty(day.volume.min(u64::MAX as u128) as u64))
            .to_string(),
        quote_volume_24h: decimal_quote(spec, Notional(day.quote_volume)),
        change_24h: change,
        change_percent_24h: percent,
        trades_24h: day.trades,
    }
}

/// A symbol's depth.
pub fn depth_response(spec: &SymbolSpec, d: &DepthView) -> DepthResponse {
    let level = |&(p, q): &(Price, Qty)| {
        [
            spec.price_to_decimal(p).to_string(),
            spec.qty_to_decimal(q).to_string(),
        ]
    };
    DepthResponse {
        symbol: spec.name.clone(),
        sequence: d.seq,
        bids: d.bids.iter().map(level).collect(),
        asks: d.asks.iter().map(level).collect(),
    }
}

/// A trade of the market's history.
pub fn trade_response(spec: &SymbolSpec, t: &TradeRecord) -> TradeResponse {
    TradeResponse {
        trade_id: t.trade_id.0.to_string(),
        price: spec.price_to_decimal(t.price).to_string(),
        quantity: spec.qty_to_decimal(t.qty).to_string(),
        taker_side: t.taker_side.as_str().into(),
        time: millis(t.ts),
    }
}

/// One asset of an account's balance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BalanceResponse {
    #[schema(example = "USD")]
    pub asset: String,
    /// Free to spend or withdraw.
    #[schema(example = "1000.0000000")]
    pub available: String,
    /// Held by open orders.
    #[schema(example = "0.0000000")]
    pub reserved: String,
    /// Available plus reserved.
    pub total: String,
}

/// `GET /account`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountResponse {
    pub account: String,
    /// The permissions of the key that asked.
    pub permissions: Vec<String>,
    /// Every listed asset, zero balances included.
    pub balances: Vec<BalanceResponse>,
}

/// Query of `GET /account/trades`.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountTradesQuery {
    /// Only this symbol's fills.
    pub symbol: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    pub limit: Option<String>,
}

/// One of the account's fills (`GET /account/trades`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountTradeResponse {
    pub trade_id: String,
    pub order_id: String,
    pub symbol: String,
    pub side: String,
    pub price: String,
    pub quantity: String,
    /// Price × quantity, in the quote asset.
    pub quote_quantity: String,
    /// The fee, charged in the asset received.
    pub fee: String,
    pub fee_asset: String,
    /// `MAKER` or `TAKER`.
    pub liquidity: String,
    pub time: u64,
}

/// Query of `GET /account/ledger`.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LedgerQuery {
    /// Only this asset's entries.
    pub asset: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    pub limit: Option<String>,
}

/// One balance movement (`GET /account/ledger`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LedgerEntryResponse {
    /// Unique per account: `deposit:{id}`, `withdrawal:{id}`,
    /// `trade:{trade_id}:{maker|taker}:{asset}`,
    /// `fee:{trade_id}:{maker|taker}`.
    pub id: String,
    /// `DEPOSIT`, `WITHDRAWAL`, `TRADE` or `FEE`.
    #[serde(rename = "type")]
    pub kind: String,
    pub asset: String,
    /// Signed change of the balance (available + reserved).
    pub amount: String,
    /// The balance (available + reserved) of the asset after this entry.
    pub balance: String,
    /// The trade id or the transfer id.
    pub reference: String,
    pub symbol: Option<String>,
    pub time: u64,
}

/// `POST /admin/accounts/{account}/keys`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// Any of `read`, `trade`, `admin` (default: read and trade).
    pub permissions: Option<Vec<String>>,
}

/// A new API key; the secret is shown this once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyResponse {
    pub account: String,
    pub key_id: String,
    pub secret: String,
    pub permissions: Vec<String>,
}

/// A new account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedAccountResponse {
    pub account: String,
}

/// `POST /admin/deposits` and `POST /admin/withdrawals`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// Your id for the transfer, 1 to 64 characters: a retry with the same id is applied once.
    #[schema(example = "dep-2026-0001")]
    pub id: Option<String>,
    #[schema(value_type = Option<String>, example = "2")]
    pub account: Option<serde_json::Value>,
    #[schema(example = "USD")]
    pub asset: Option<String>,
    #[schema(example = "1000.00")]
    pub amount: Option<String>,
}

/// A deposit or withdrawal as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TransferResponse {
    pub id: String,
    /// `DEPOSIT` or `WITHDRAWAL`.
    #[serde(rename = "type")]
    pub kind: String,
    pub account: String,
    pub asset: String,
    pub amount: String,
    pub time: u64,
}

/// One asset's reconciliation (`GET /admin/totals`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AssetTotalResponse {
    pub asset: String,
    /// Deposits minus withdrawals.
    pub transferred: String,
    /// The sum of every account's available + reserved, the fee account included.
    pub held: String,
    /// `held - transferred`: zero when money is conserved (and no command is in flight).
    pub difference: String,
}
