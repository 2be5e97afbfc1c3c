//! Market-data endpoints: tickers, depth and recent trades.

use crate::dto::{
    DepthResponse, LimitQuery, TickerResponse, TradeResponse, depth_response, ticker_response,
    trade_response,
};
use crate::error::{ApiError, ErrorBody};
use crate::{AppState, now, validate};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use exchange_core::{ErrorCode, SymbolSpec};

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
        .await
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
        .await
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
        .await
        .ok_or_else(|| unavailable(spec))?;
    Ok(Json(
        trades.iter().map(|t| trade_response(spec, t)).collect(),
    ))
}
