//! Order endpoints: place, read, list, amend, cancel, cancel all; and the seed's `/order` pair.

use crate::dto::{
    AccountQuery, AmendOrderRequest, CancelAllQuery, CancelAllResponse, FillResponse,
    OrderResponse, OrdersQuery, PlaceOrderRequest, fill_response, order_response,
};
use crate::error::{ApiError, ErrorBody};
use crate::exchange::Submitted;
use crate::extract::JsonBody;
use crate::{AppState, now, validate};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use exchange_core::{
    AccountId, CancelAll, CancelOrder, ClientOrderId, Command, ErrorCode, EventKind, OrderRecord,
    OrderRef, StatusFilter, StatusKind,
};

/// The execution report of the order a command acted on, with its fills from this command.
fn report(app: &AppState, s: &Submitted) -> Result<OrderResponse, ApiError> {
    if let Some(reason) = s.events.iter().find_map(|e| match e.kind {
        EventKind::Rejected { reason, .. } => Some(reason),
        _ => None,
    }) {
        return Err(ApiError::rejected(reason));
    }
    let order = s
        .orders
        .first()
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "the command returned no order"))?;
    Ok(with_fills(app, order, s))
}

fn with_fills(app: &AppState, order: &OrderRecord, s: &Submitted) -> OrderResponse {
    let spec = app.spec(order.symbol);
    let fills: Vec<FillResponse> = s
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Trade(t) if t.taker_order_id == order.id => {
                Some(fill_response(spec, &t, true))
            }
            EventKind::Trade(t) if t.maker_order_id == order.id => {
                Some(fill_response(spec, &t, false))
            }
            _ => None,
        })
        .collect();
    order_response(spec, order, fills)
}

/// An order as it stands, without fills (reads and listings).
fn view(app: &AppState, order: &OrderRecord) -> OrderResponse {
    order_response(app.spec(order.symbol), order, Vec::new())
}

async fn place(
    app: &AppState,
    req: &PlaceOrderRequest,
) -> Result<(StatusCode, Json<OrderResponse>), ApiError> {
    let order = validate::new_order(app.exchange.symbols(), req)?;
    let submitted = app.exchange.submit(Command::Place(order), now()).await?;
    if submitted.duplicate {
        let first = submitted.orders.first().ok_or_else(|| {
            ApiError::new(
                ErrorCode::Internal,
                "a duplicate came back without its order",
            )
        })?;
        return Ok((StatusCode::OK, Json(view(app, first))));
    }
    Ok((StatusCode::CREATED, Json(report(app, &submitted)?)))
}

/// Place an order.
///
/// Answers with the execution report once the order is matched: its status, what filled at
/// what average price, and the fills. A repeated `client_order_id` returns the first order.
#[utoipa::path(post, path = "/orders", tag = "orders", request_body = PlaceOrderRequest,
    responses(
        (status = 201, description = "Placed; the execution report", body = OrderResponse),
        (status = 200, description = "The client order id was used before: the first order", body = OrderResponse),
        (status = "4XX", description = "Refused; nothing was placed", body = ErrorBody),
    ))]
pub async fn place_order(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<PlaceOrderRequest>,
) -> Result<(StatusCode, Json<OrderResponse>), ApiError> {
    place(&app, &req).await
}

/// Place an order (the seed's path; the same as `POST /orders`).
#[utoipa::path(post, path = "/order", tag = "orders", request_body = PlaceOrderRequest,
    responses(
        (status = 201, description = "Placed; the execution report", body = OrderResponse),
        (status = 200, description = "The client order id was used before: the first order", body = OrderResponse),
        (status = "4XX", description = "Refused; nothing was placed", body = ErrorBody),
    ))]
pub async fn place_order_seed(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<PlaceOrderRequest>,
) -> Result<(StatusCode, Json<OrderResponse>), ApiError> {
    place(&app, &req).await
}

async fn read(
    app: &AppState,
    id: &str,
    account: &Option<String>,
) -> Result<Json<OrderResponse>, ApiError> {
    let id = validate::order_id(app.exchange.symbols(), id)?;
    let account = account
        .as_ref()
        .map(|_| validate::account_from_query(account))
        .transpose()?;
    let unknown = || ApiError::field(ErrorCode::UnknownOrder, "id", "is not a known order");
    let order = app.exchange.order(id).await.ok_or_else(unknown)?;
    if account.is_some_and(|a| a != order.account) {
        return Err(unknown());
    }
    Ok(Json(view(app, &order)))
}

/// Read an order.
#[utoipa::path(get, path = "/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "The order id"), AccountQuery),
    responses(
        (status = 200, description = "The order", body = OrderResponse),
        (status = 404, description = "No such order (for this account)", body = ErrorBody),
    ))]
pub async fn get_order(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<AccountQuery>,
) -> Result<Json<OrderResponse>, ApiError> {
    read(&app, &id, &q.account).await
}

/// Read an order (the seed's path; the same as `GET /orders/{id}`).
#[utoipa::path(get, path = "/order/{id}", tag = "orders",
    params(("id" = String, Path, description = "The order id"), AccountQuery),
    responses(
        (status = 200, description = "The order", body = OrderResponse),
        (status = 404, description = "No such order", body = ErrorBody),
    ))]
pub async fn get_order_seed(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<AccountQuery>,
) -> Result<Json<OrderResponse>, ApiError> {
    read(&app, &id, &q.account).await
}

async fn by_client_id(
    app: &AppState,
    client_id: &str,
    account: &Option<String>,
) -> Result<(ClientOrderId, OrderRecord), ApiError> {
    let account = validate::account_from_query(account)?;
    let client_id = validate::client_order_id(client_id)?;
    let order = app.exchange.order_by_client_id(account, client_id).await;
    order.map(|o| (client_id, o)).ok_or_else(|| {
        ApiError::field(
            ErrorCode::UnknownOrder,
            "client_order_id",
            "is not a known order of this account",
        )
    })
}

/// Read an order by its client order id.
#[utoipa::path(get, path = "/orders/client/{client_order_id}", tag = "orders",
    params(("client_order_id" = String, Path, description = "The id the client gave the order"), AccountQuery),
    responses(
        (status = 200, description = "The order", body = OrderResponse),
        (status = 404, description = "No order with this client order id for this account", body = ErrorBody),
    ))]
pub async fn get_order_by_client_id(
    State(app): State<AppState>,
    Path(client_id): Path<String>,
    Query(q): Query<AccountQuery>,
) -> Result<Json<OrderResponse>, ApiError> {
    let (_, order) = by_client_id(&app, &client_id, &q.account).await?;
    Ok(Json(view(&app, &order)))
}

/// Cancel an order by its client order id.
#[utoipa::path(delete, path = "/orders/client/{client_order_id}", tag = "orders",
    params(("client_order_id" = String, Path, description = "The id the client gave the order"), AccountQuery),
    responses(
        (status = 200, description = "Cancelled; the order's final state", body = OrderResponse),
        (status = 404, description = "No live order with this client order id for this account", body = ErrorBody),
    ))]
pub async fn cancel_order_by_client_id(
    State(app): State<AppState>,
    Path(client_id): Path<String>,
    Query(q): Query<AccountQuery>,
) -> Result<Json<OrderResponse>, ApiError> {
    let (client_id, order) = by_client_id(&app, &client_id, &q.account).await?;
    let target = OrderRef::Client(client_id);
    let cmd = Command::Cancel(CancelOrder {
        symbol: order.symbol,
        account: order.account,
        target,
    });
    let submitted = app.exchange.submit(cmd, now()).await?;
    Ok(Json(report(&app, &submitted)?))
}

/// An account's orders, newest first.
#[utoipa::path(get, path = "/orders", tag = "orders", params(OrdersQuery),
    responses(
        (status = 200, description = "The orders", body = Vec<OrderResponse>),
        (status = 400, description = "A bad parameter", body = ErrorBody),
    ))]
pub async fn list_orders(
    State(app): State<AppState>,
    Query(q): Query<OrdersQuery>,
) -> Result<Json<Vec<OrderResponse>>, ApiError> {
    let account = validate::account_from_query(&q.account)?;
    let symbols = app.exchange.symbols();
    let symbol = q
        .symbol
        .as_deref()
        .map(|s| validate::symbol(symbols, s).map(|s| s.id))
        .transpose()?;
    let status = match q.status.as_deref() {
        None => StatusFilter::Any,
        Some(s) => match s.to_ascii_uppercase().as_str() {
            "OPEN" => StatusFilter::Open,
            "CLOSED" => StatusFilter::Closed,
            "NEW" => StatusFilter::Is(StatusKind::New),
            "PARTIALLY_FILLED" => StatusFilter::Is(StatusKind::PartiallyFilled),
            "FILLED" => StatusFilter::Is(StatusKind::Filled),
            "CANCELLED" | "CANCELED" => StatusFilter::Is(StatusKind::Cancelled),
            _ => {
                return Err(ApiError::field(
                    ErrorCode::InvalidField,
                    "status",
                    "must be one of OPEN, CLOSED, NEW, PARTIALLY_FILLED, FILLED, CANCELLED",
                ));
            }
        },
    };
    let limit = validate::limit(&q.limit)?;
    let orders = app.exchange.orders(account, symbol, status, limit).await;
    Ok(Json(orders.iter().map(|o| view(&app, o)).collect()))
}

/// Change an order's price and/or total quantity.
///
/// Lowering the quantity at the same price keeps the order's place in the queue; a new price or
/// more quantity sends it to the back (and it may trade at once, like a new order).
#[utoipa::path(patch, path = "/orders/{id}", tag = "orders", request_body = AmendOrderRequest,
    params(("id" = String, Path, description = "The order id")),
    responses(
        (status = 200, description = "Amended; the execution report", body = OrderResponse),
        (status = "4XX", description = "Refused; the order is unchanged", body = ErrorBody),
    ))]
pub async fn amend_order(
    State(app): State<AppState>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<AmendOrderRequest>,
) -> Result<Json<OrderResponse>, ApiError> {
    let id = validate::order_id(app.exchange.symbols(), &id)?;
    let amend = validate::amend(app.exchange.symbols(), id, &req)?;
    let submitted = app.exchange.submit(Command::Amend(amend), now()).await?;
    Ok(Json(report(&app, &submitted)?))
}

/// Cancel an order.
#[utoipa::path(delete, path = "/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "The order id"), AccountQuery),
    responses(
        (status = 200, description = "Cancelled; the order's final state", body = OrderResponse),
        (status = 404, description = "No live order with this id for this account", body = ErrorBody),
    ))]
pub async fn cancel_order(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<AccountQuery>,
) -> Result<Json<OrderResponse>, ApiError> {
    let account = validate::account_from_query(&q.account)?;
    let id = validate::order_id(app.exchange.symbols(), &id)?;
    let cmd = Command::Cancel(CancelOrder {
        symbol: id.symbol(),
        account,
        target: OrderRef::Id(id),
    });
    let submitted = app.exchange.submit(cmd, now()).await?;
    Ok(Json(report(&app, &submitted)?))
}

/// Cancel all of an account's orders, on one symbol or on every symbol.
#[utoipa::path(delete, path = "/orders", tag = "orders", params(CancelAllQuery),
    responses(
        (status = 200, description = "The orders cancelled", body = CancelAllResponse),
        (status = 400, description = "A bad parameter", body = ErrorBody),
    ))]
pub async fn cancel_all(
    State(app): State<AppState>,
    Query(q): Query<CancelAllQuery>,
) -> Result<Json<CancelAllResponse>, ApiError> {
    let account: AccountId = validate::account_from_query(&q.account)?;
    let symbols = app.exchange.symbols();
    let symbol = q
        .symbol
        .as_deref()
        .map(|s| validate::symbol(symbols, s).map(|s| s.id))
        .transpose()?;
    let submitted = app
        .exchange
        .submit(Command::CancelAll(CancelAll { account, symbol }), now())
        .await?;
    let cancelled = submitted
        .orders
        .iter()
        .map(|o| with_fills(&app, o, &submitted))
        .collect();
    Ok(Json(CancelAllResponse { cancelled }))
}
