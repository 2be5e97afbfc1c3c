//! Market-data endpoints: tickers, depth and recent trades.

use crate::dto::{
    CandleResponse, CandlesQuery, DepthResponse, HistoryQuery, LimitQuery, TickerResponse,
    TradeResponse, depth_response, millis, ticker_response, trade_response,
};
use crate::error::{ApiError, ErrorBody};
use crate::history::{self, Range};
use crate::{AppState, now, validate};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use exchange_core::{ErrorCode, Interval, SymbolSpec};
use exchange_functions::RollupStore;
use std::sync::Arc;

fn listed<'a>(app: &'a AppState, symbol: &str) -> Result<&'a SymbolSpec, ApiError> {
    validate::symbol(app.exchange.symbols(), symbol)
        .map_err(|e| e.with_status(StatusCode::NOT_FOUND))
}

fn unavailable(spec: &SymbolSpec) -> ApiError {
    ApiError::new(
        ErrorCode::Unavailable,
        format!("no shard is serving {} right now", spec.name),
    )
}

async fn ticker_of(app: &AppState, spec: &SymbolSpec) -> Result<TickerResponse, ApiError> {
    let view = app
        .exchange
        .ticker(spec.id, now())
        .await?
        .ok_or_else(|| unavailable(spec))?;
    Ok(ticker_response(spec, &view))
}

/// Live market data for every symbol: one ticker each.
#[utoipa::path(get, path = "/market-data", tag = "market data",
    responses((status = 200, description = "A ticker per symbol", body = Vec<TickerResponse>)))]
pub async fn all_market_data(
    State(app): State<AppState>,
) -> Result<Json<Vec<TickerResponse>>, ApiError> {
    let mut out = Vec::with_capacity(app.exchange.symbols().len());
    for spec in app.exchange.symbols().iter() {
        out.push(ticker_of(&app, spec).await?);
    }
    Ok(Json(out))
}

/// A symbol's ticker: last price, best bid and ask, 24-hour open, high, low, volume and change.
#[utoipa::path(get, path = "/market-data/{symbol}", tag = "market data",
    params(("symbol" = String, Path, description = "For example BTC-USD")),
    responses(
        (status = 200, description = "The ticker", body = TickerResponse),
        (status = 404, description = "The symbol is not listed", body = ErrorBody),
    ))]
pub async fn ticker(
    State(app): State<AppState>,
    Path(symbol): Path<String>,
) -> Result<Json<TickerResponse>, ApiError> {
    let spec = listed(&app, &symbol)?;
    Ok(Json(ticker_of(&app, spec).await?))
}

/// A symbol's order book, aggregated by price level, best first.
#[utoipa::path(get, path = "/market-data/{symbol}/depth", tag = "market data",
    params(("symbol" = String, Path, description = "For example BTC-USD"), LimitQuery),
    responses(
        (status = 200, description = "The book", body = DepthResponse),
        (status = 404, description = "The symbol is not listed", body = ErrorBody),
    ))]
pub async fn depth(
    State(app): State<AppState>,
    Path(symbol): Path<String>,
    Query(q): Query<LimitQuery>,
) -> Result<Json<DepthResponse>, ApiError> {
    let spec = listed(&app, &symbol)?;
    let limit = validate::limit(&q.limit)?;
    let view = app
        .exchange
        .depth(spec.id, limit)
        .await?
        .ok_or_else(|| unavailable(spec))?;
    Ok(Json(depth_response(spec, &view)))
}

/// A symbol's most recent trades, newest first.
#[utoipa::path(get, path = "/market-data/{symbol}/trades", tag = "market data",
    params(("symbol" = String, Path, description = "For example BTC-USD"), LimitQuery),
    responses(
        (status = 200, description = "The trades", body = Vec<TradeResponse>),
        (status = 404, description = "The symbol is not listed", body = ErrorBody),
    ))]
pub async fn trades(
    State(app): State<AppState>,
    Path(symbol): Path<String>,
    Query(q): Query<LimitQuery>,
) -> Result<Json<Vec<TradeResponse>>, ApiError> {
    let spec = listed(&app, &symbol)?;
    let limit = validate::limit(&q.limit)?;
    let trades = app
        .exchange
        .trades(spec.id, limit)
        .await?
        .ok_or_else(|| unavailable(spec))?;
    Ok(Json(
        trades.iter().map(|t| trade_response(spec, t)).collect(),
    ))
}

fn time_param(field: &str, v: &Option<String>) -> Result<Option<u64>, ApiError> {
    v.as_deref()
        .map(|s| {
            s.parse::<u64>().map_err(|_| {
                ApiError::field(
                    ErrorCode::InvalidField,
                    field,
                    "must be milliseconds since the epoch (a whole number)",
                )
            })
        })
        .transpose()
}

fn range(
    start: &Option<String>,
    end: &Option<String>,
    limit: &Option<String>,
) -> Result<Range, ApiError> {
    let (start, end) = (time_param("start", start)?, time_param("end", end)?);
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        return Err(ApiError::field(
            ErrorCode::InvalidField,
            "end",
            "must not be before start",
        ));
    }
    Ok(Range {
        start,
        end,
        limit: validate::limit(limit)?,
    })
}

fn history_unavailable(why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::Unavailable,
        format!("market history cannot be read right now: {why}"),
    )
}

/// The history store, or 503 when the exchange has none.
fn history_store(app: &AppState) -> Result<&Arc<dyn RollupStore>, ApiError> {
    app.history
        .as_ref()
        .ok_or_else(|| history_unavailable("no history store is configured"))
}

/// A symbol's OHLCV candles from the history store, oldest first, with the current candle
/// (as the matcher has it, up to the last trade) in place of the stored one.
#[utoipa::path(get, path = "/market-data/{symbol}/candles", tag = "market data",
    params(("symbol" = String, Path, description = "For example BTC-USD"), CandlesQuery),
    responses(
        (status = 200, description = "The candles", body = Vec<CandleResponse>),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        (status = 404, description = "The symbol is not listed", body = ErrorBody),
        (status = 503, description = "The history store cannot be read", body = ErrorBody),
    ))]
pub async fn candles(
    State(app): State<AppState>,
    Path(symbol): Path<String>,
    Query(q): Query<CandlesQuery>,
) -> Result<Json<Vec<CandleResponse>>, ApiError> {
    let spec = listed(&app, &symbol)?;
    let interval = q.interval.as_deref().ok_or_else(|| {
        ApiError::field(
            ErrorCode::InvalidField,
            "interval",
            "is required: 1m, 5m, 15m, 1h, 4h or 1d",
        )
    })?;
    let interval = Interval::parse(interval).ok_or_else(|| {
        ApiError::field(
            ErrorCode::InvalidField,
            "interval",
            "must be one of 1m, 5m, 15m, 1h, 4h, 1d",
        )
    })?;
    let minutes = interval.minutes();
    let range = range(&q.start, &q.end, &q.limit)?;
    let store = history_store(&app)?;
    let mut out = history::candles(store.as_ref(), &spec.name, interval, range.clone())
        .await
        .map_err(history_unavailable)?;
    // The store lags the matcher by a batch; the current bucket comes from the matcher.
    if let Some((start, c)) = app.exchange.candle(spec.id, minutes, now()).await?
        && c.trades > 0
    {
        let start = millis(start);
        let in_range =
            range.start.is_none_or(|s| start >= s) && range.end.is_none_or(|e| start <= e);
        let price = |p| spec.price_to_decimal(p).to_string();
        let live = CandleResponse {
            open_time: start,
            close_time: start + minutes * 60_000 - 1,
            open: price(c.open),
            high: price(c.high),
            low: price(c.low),
            close: price(c.close),
            volume: spec
                .qty_to_decimal(exchange_core::Qty(c.volume as u64))
                .to_string(),
            quote_volume: spec
                .notional_to_decimal(exchange_core::Notional(c.quote_volume))
                .normalize()
                .to_string(),
            trades: c.trades,
        };
        let newest = out.last().map(|c| c.open_time);
        if newest == Some(start) {
            *out.last_mut().expect("there is a newest") = live;
        } else if newest.is_none_or(|n| n < start)
            && in_range
            && (range.start.is_none() || out.len() < range.limit)
        {
            out.push(live);
            if out.len() > range.limit {
                out.remove(0);
            }
        }
    }
    Ok(Json(out))
}

/// A symbol's trades from the history store, oldest first, by time range.
#[utoipa::path(get, path = "/market-data/{symbol}/trades/history", tag = "market data",
    params(("symbol" = String, Path, description = "For example BTC-USD"), HistoryQuery),
    responses(
        (status = 200, description = "The trades", body = Vec<TradeResponse>),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        (status = 404, description = "The symbol is not listed", body = ErrorBody),
        (status = 503, description = "The history store cannot be read", body = ErrorBody),
    ))]
pub async fn trade_history(
    State(app): State<AppState>,
    Path(symbol): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Vec<TradeResponse>>, ApiError> {
    let spec = listed(&app, &symbol)?;
    let range = range(&q.start, &q.end, &q.limit)?;
    let store = history_store(&app)?;
    Ok(Json(
        history::trades(store.as_ref(), &spec.name, range)
            .await
            .map_err(history_unavailable)?,
    ))
}
