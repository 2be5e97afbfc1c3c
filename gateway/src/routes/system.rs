//! Exchange information, health and metrics.

use crate::AppState;
use crate::dto::{HealthResponse, ShardHealthResponse, SymbolResponse, symbol_response};
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

/// Every listed symbol with its trading rules.
#[utoipa::path(get, path = "/symbols", tag = "exchange",
    responses((status = 200, description = "The symbols", body = Vec<SymbolResponse>)))]
pub async fn symbols(State(app): State<AppState>) -> Json<Vec<SymbolResponse>> {
    Json(app.exchange.symbols().iter().map(symbol_response).collect())
}

/// Whether the exchange is up, with each shard's progress through its log.
#[utoipa::path(get, path = "/health", tag = "exchange",
    responses(
        (status = 200, description = "Up", body = HealthResponse),
        (status = 503, description = "A shard is not answering", body = crate::error::ErrorBody),
    ))]
pub async fn health(State(app): State<AppState>) -> Result<Json<HealthResponse>, ApiError> {
    let shards = app
        .exchange
        .health()
        .await?
        .into_iter()
        .map(|h| ShardHealthResponse {
            shard: h.shard.0,
            logged: h.logged,
            applied: h.applied,
        })
        .collect();
    Ok(Json(HealthResponse {
        status: "ok".into(),
        shards,
    }))
}

/// Metrics in Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "exchange",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain")))]
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
}
