//! Order endpoints: place, read, list, amend, cancel, cancel all; and the seed's `/order` pair.

use crate::auth::Caller;
use crate::dto::{
    AmendOrderRequest, CancelAllQuery, CancelAllResponse, FillResponse, OrderResponse, OrdersQuery,
    PlaceOrderRequest, SignedQuery, fill_response, order_response,
};
use crate::error::{ApiError, ErrorBody};
use crate::exchange::{ExchangeError, Submitted};
use crate::extract::JsonBody;
use crate::{AppState, now, validate};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use exchange_accounts::{AccountsError, Permission};
use exchange_core::{
    AccountId, CancelAll, CancelOrder, ClientOrderId, Command, ErrorCode, EventKind, Hold,
    OrderRecord, OrderRef, StatusFilter, StatusKind, SymbolId,
};
use tracing::Instrument;

/// The execution report of the order a command acted on, with its fills from this command.
fn report(app: &AppState, s: &Submitted) -> Result<OrderResponse, ApiError> {
    if let Some(reason) = s.refused {
        return Err(ApiError::rejected(reason));
    }
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

/// Reserves `hold` for `account` (refusing with what is available if it is short), submits the
/// command, and gives the reservation back if the command never reached a shard. Once the
/// command is logged, its shard takes the reservation over or gives it back.
///
/// Every order command passes here, in a span carrying its account, symbol and (once the log
/// gave it) order id. The span is at debug level: at the default `info` it costs one check of
/// the callsite's interest, not a span per order.
async fn funded_submit(
    app: &AppState,
    account: AccountId,
    cmd: Command,
    hold: Hold,
) -> Result<Submitted, ApiError> {
    let span = tracing::debug_span!(
        "command",
        kind = ?cmd.kind(),
        account = account.0,
        symbol = cmd.symbol().map(|s| s.0),
        order_id = tracing::field::Empty,
    );
    let submitted = submit_reserved(app, account, cmd, hold)
        .instrument(span.clone())
        .await;
    if let Ok(Some(order)) = submitted.as_ref().map(|s| s.orders.first()) {
        span.record("order_id", order.id.0);
    }
    submitted
}

async fn submit_reserved(
    app: &AppState,
    account: AccountId,
    cmd: Command,
    hold: Hold,
) -> Result<Submitted, ApiError> {
    if hold.amount > 0 {
        app.accounts
            .reserve(account, hold)
            .await
            .map_err(|e| insufficient(app, e))?;
    }
    match app.exchange.submit(cmd, hold, now()).await {
        Err(e @ ExchangeError::NotLogged(_)) => {
            if hold.amount > 0 {
                app.accounts.release(account, hold).await;
            }
            Err(e.into())
        }
        other => Ok(other?),
    }
}

fn insufficient(app: &AppState, e: AccountsError) -> ApiError {
    match e {
        AccountsError::Insufficient {
            asset,
            available,
            needed,
        } => {
            let a = app
                .exchange
                .symbols()
                .assets()
                .get(asset)
                .expect("holds name listed assets");
            ApiError::new(
                ErrorCode::InsufficientBalance,
                format!(
                    "insufficient balance: the order needs {} {} and {} {} is available",
                    a.to_decimal(needed),
                    a.name,
                    a.to_decimal(available),
                    a.name
                ),
            )
        }
        other => other.into(),
    }
}

pub(crate) async fn place(
    app: &AppState,
    caller: &Caller,
    req: &PlaceOrderRequest,
) -> Result<(StatusCode, Json<OrderResponse>), ApiError> {
    caller.require(Permission::Trade)?;
    let (order, hold) = validate::new_order(app.exchange.symbols(), req, caller.account)?;
    let submitted = funded_submit(app, caller.account, Command::Place(order), hold).await?;
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
#[utoipa::path(post, path = "/orders", tag = "orders", request_body = PlaceOrderRequest, params(SignedQuery),
    responses(
        (status = 201, description = "Placed; the execution report", body = OrderResponse),
        (status = 200, description = "The client order id was used before: the first order", body = OrderResponse),
        (status = "4XX", description = "Refused; nothing was placed", body = ErrorBody),
    ))]
pub async fn place_order(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(req): JsonBody<PlaceOrderRequest>,
) -> Result<(StatusCode, Json<OrderResponse>), ApiError> {
    place(&app, &caller, &req).await
}

/// Place an order (the seed's path; the same as `POST /orders`).
#[utoipa::path(post, path = "/order", tag = "orders", request_body = PlaceOrderRequest, params(SignedQuery),
    responses(
        (status = 201, description = "Placed; the execution report", body = OrderResponse),
        (status = 200, description = "The client order id was used before: the first order", body = OrderResponse),
        (status = "4XX", description = "Refused; nothing was placed", body = ErrorBody),
    ))]
pub async fn place_order_seed(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(req): JsonBody<PlaceOrderRequest>,
) -> Result<(StatusCode, Json<OrderResponse>), ApiError> {
    place(&app, &caller, &req).await
}

/// The caller's order `id`; another account's order is as unknown as one that does not exist.
async fn own_order(app: &AppState, caller: &Caller, id: &str) -> Result<OrderRecord, ApiError> {
    let id = validate::order_id(app.exchange.symbols(), id)?;
    let unknown = || ApiError::field(ErrorCode::UnknownOrder, "id", "is not a known order");
    let order = app.exchange.order(id).await?.ok_or_else(unknown)?;
    if order.account != caller.account {
        return Err(unknown());
    }
    Ok(order)
}

async fn read(app: &AppState, caller: &Caller, id: &str) -> Result<Json<OrderResponse>, ApiError> {
    caller.require(Permission::Read)?;
    Ok(Json(view(app, &own_order(app, caller, id).await?)))
}

/// Read an order.
#[utoipa::path(get, path = "/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "The order id"), SignedQuery),
    responses(
        (status = 200, description = "The order", body = OrderResponse),
        (status = 404, description = "No such order (for this account)", body = ErrorBody),
    ))]
pub async fn get_order(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<OrderResponse>, ApiError> {
    read(&app, &caller, &id).await
}

/// Read an order (the seed's path; the same as `GET /orders/{id}`).
#[utoipa::path(get, path = "/order/{id}", tag = "orders",
    params(("id" = String, Path, description = "The order id"), SignedQuery),
    responses(
        (status = 200, description = "The order", body = OrderResponse),
        (status = 404, description = "No such order", body = ErrorBody),
    ))]
pub async fn get_order_seed(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<OrderResponse>, ApiError> {
    read(&app, &caller, &id).await
}

async fn by_client_id(
    app: &AppState,
    client_id: &str,
    account: AccountId,
) -> Result<(ClientOrderId, OrderRecord), ApiError> {
    let client_id = validate::client_order_id(client_id)?;
    let order = app.exchange.order_by_client_id(account, client_id).await?;
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
    params(("client_order_id" = String, Path, description = "The id the client gave the order"), SignedQuery),
    responses(
        (status = 200, description = "The order", body = OrderResponse),
        (status = 404, description = "No order with this client order id for this account", body = ErrorBody),
    ))]
pub async fn get_order_by_client_id(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(client_id): Path<String>,
) -> Result<Json<OrderResponse>, ApiError> {
    caller.require(Permission::Read)?;
    let (_, order) = by_client_id(&app, &client_id, caller.account).await?;
    Ok(Json(view(&app, &order)))
}

/// Cancel an order by its client order id.
#[utoipa::path(delete, path = "/orders/client/{client_order_id}", tag = "orders",
    params(("client_order_id" = String, Path, description = "The id the client gave the order"), SignedQuery),
    responses(
        (status = 200, description = "Cancelled; the order's final state", body = OrderResponse),
        (status = 404, description = "No live order with this client order id for this account", body = ErrorBody),
    ))]
pub async fn cancel_order_by_client_id(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(client_id): Path<String>,
) -> Result<Json<OrderResponse>, ApiError> {
    Ok(Json(cancel_by_client_id(&app, &caller, &client_id).await?))
}

/// Cancels the caller's order with this client order id; its final state.
pub(crate) async fn cancel_by_client_id(
    app: &AppState,
    caller: &Caller,
    client_id: &str,
) -> Result<OrderResponse, ApiError> {
    caller.require(Permission::Trade)?;
    let (client_id, order) = by_client_id(app, client_id, caller.account).await?;
    cancel(app, caller, order.symbol, OrderRef::Client(client_id)).await
}

/// An account's orders, newest first.
#[utoipa::path(get, path = "/orders", tag = "orders", params(OrdersQuery, SignedQuery),
    responses(
        (status = 200, description = "The orders", body = Vec<OrderResponse>),
        (status = 400, description = "A bad parameter", body = ErrorBody),
    ))]
pub async fn list_orders(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<OrdersQuery>,
) -> Result<Json<Vec<OrderResponse>>, ApiError> {
    caller.require(Permission::Read)?;
    let account = caller.account;
    let symbol = validate::symbol_filter(app.exchange.symbols(), &q.symbol)?;
    let status = match q.status.as_deref() {
        None => StatusFilter::Any,
        Some(s) => match s {
            "OPEN" => StatusFilter::Open,
            "CLOSED" => StatusFilter::Closed,
            "NEW" => StatusFilter::Is(StatusKind::New),
            "PARTIALLY_FILLED" => StatusFilter::Is(StatusKind::PartiallyFilled),
            "FILLED" => StatusFilter::Is(StatusKind::Filled),
            "CANCELLED" => StatusFilter::Is(StatusKind::Cancelled),
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
    let orders = app.exchange.orders(account, symbol, status, limit).await?;
    Ok(Json(orders.iter().map(|o| view(&app, o)).collect()))
}

/// Change an order's price and/or total quantity.
///
/// Lowering the quantity at the same price keeps the order's place in the queue; a new price or
/// more quantity sends it to the back (and it may trade at once, like a new order).
#[utoipa::path(patch, path = "/orders/{id}", tag = "orders", request_body = AmendOrderRequest,
    params(("id" = String, Path, description = "The order id"), SignedQuery),
    responses(
        (status = 200, description = "Amended; the execution report", body = OrderResponse),
        (status = "4XX", description = "Refused; the order is unchanged", body = ErrorBody),
    ))]
pub async fn amend_order(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<AmendOrderRequest>,
) -> Result<Json<OrderResponse>, ApiError> {
    caller.require(Permission::Trade)?;
    let order = own_order(&app, &caller, &id).await?;
    let amend = validate::amend(app.exchange.symbols(), order.id, &req, caller.account)?;
    // Reserve what the amended order needs beyond what it holds now; the shard checks it
    // again against the order as it stands when the amendment is applied.
    let extra = app
        .spec(order.symbol)
        .funding
        .amend_extra(&order, amend.new_price, amend.new_qty);
    let submitted = funded_submit(&app, caller.account, Command::Amend(amend), extra).await?;
    Ok(Json(report(&app, &submitted)?))
}

/// Cancel an order.
#[utoipa::path(delete, path = "/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "The order id"), SignedQuery),
    responses(
        (status = 200, description = "Cancelled; the order's final state", body = OrderResponse),
        (status = 404, description = "No live order with this id for this account", body = ErrorBody),
    ))]
pub async fn cancel_order(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<OrderResponse>, ApiError> {
    Ok(Json(cancel_by_id(&app, &caller, &id).await?))
}

/// Cancels the caller's order `id`; its final state.
pub(crate) async fn cancel_by_id(
    app: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<OrderResponse, ApiError> {
    caller.require(Permission::Trade)?;
    let id = validate::order_id(app.exchange.symbols(), id)?;
    cancel(app, caller, id.symbol(), OrderRef::Id(id)).await
}

/// Cancels the caller's order `target` on `symbol`; its final state.
async fn cancel(
    app: &AppState,
    caller: &Caller,
    symbol: SymbolId,
    target: OrderRef,
) -> Result<OrderResponse, ApiError> {
    let cmd = Command::Cancel(CancelOrder {
        symbol,
        account: caller.account,
        target,
    });
    let submitted = funded_submit(app, caller.account, cmd, Hold::default()).await?;
    report(app, &submitted)
}

/// Cancel all of an account's orders, on one symbol or on every symbol.
#[utoipa::path(delete, path = "/orders", tag = "orders", params(CancelAllQuery, SignedQuery),
    responses(
        (status = 200, description = "The orders cancelled", body = CancelAllResponse),
        (status = 400, description = "A bad parameter", body = ErrorBody),
    ))]
pub async fn cancel_all(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<CancelAllQuery>,
) -> Result<Json<CancelAllResponse>, ApiError> {
    caller.require(Permission::Trade)?;
    let account = caller.account;
    let symbol = validate::symbol_filter(app.exchange.symbols(), &q.symbol)?;
    let cmd = Command::CancelAll(CancelAll { account, symbol });
    let submitted = funded_submit(&app, account, cmd, Hold::default()).await?;
    let cancelled = submitted
        .orders
        .iter()
        .map(|o| with_fills(&app, o, &submitted))
        .collect();
    Ok(Json(CancelAllResponse { cancelled }))
}
