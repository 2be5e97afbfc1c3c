//! Admin endpoints (admin permission): accounts, keys, deposits and withdrawals.

use crate::auth::Caller;
use crate::dto::{
    AccountResponse, AssetTotalResponse, CreateKeyRequest, CreatedAccountResponse, KeyResponse,
    SignedQuery, TransferRequest, TransferResponse, millis,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::JsonBody;
use crate::routes::account::account_view;
use crate::{AppState, now, validate};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use exchange_accounts::{Permission, Permissions, Transfer, TransferKind};
use exchange_core::ErrorCode;

/// Create an account (no keys, no balance).
#[utoipa::path(post, path = "/admin/accounts", tag = "admin", params(SignedQuery),
    responses(
        (status = 201, description = "Created", body = CreatedAccountResponse),
        (status = 403, description = "The key is not an admin key", body = ErrorBody),
    ))]
pub async fn create_account(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<(StatusCode, Json<CreatedAccountResponse>), ApiError> {
    caller.require(Permission::Admin)?;
    let id = app.accounts.create_account(now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedAccountResponse {
            account: id.0.to_string(),
        }),
    ))
}

/// Create an API key for an account. The secret is in this answer only.
#[utoipa::path(post, path = "/admin/accounts/{account}/keys", tag = "admin",
    request_body = CreateKeyRequest,
    params(("account" = String, Path, description = "The account id"), SignedQuery),
    responses(
        (status = 201, description = "Created; keep the secret", body = KeyResponse),
        (status = 404, description = "No such account", body = ErrorBody),
    ))]
pub async fn create_key(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(account): Path<String>,
    JsonBody(req): JsonBody<CreateKeyRequest>,
) -> Result<(StatusCode, Json<KeyResponse>), ApiError> {
    caller.require(Permission::Admin)?;
    let account = validate::account_from_str(&account)?;
    let permissions = match &req.permissions {
        None => Permissions {
            read: true,
            trade: true,
            admin: false,
        },
        Some(names) => Permissions::from_names(names.iter().map(String::as_str))
            .map_err(|e| ApiError::field(ErrorCode::InvalidField, "permissions", e))?,
    };
    let key = app.accounts.create_key(account, permissions, now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(KeyResponse {
            account: account.0.to_string(),
            key_id: key.key_id,
            secret: String::from_utf8_lossy(&key.secret.0).into_owned(),
            permissions: key
                .permissions
                .names()
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }),
    ))
}

/// Disable an API key: requests signed with it are refused from now on.
#[utoipa::path(delete, path = "/admin/keys/{key_id}", tag = "admin",
    params(("key_id" = String, Path, description = "The key id"), SignedQuery),
    responses(
        (status = 204, description = "Disabled"),
        (status = 404, description = "No such key", body = ErrorBody),
    ))]
pub async fn disable_key(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Permission::Admin)?;
    app.accounts
        .set_key_enabled(&key_id, false)
        .await
        .map_err(|e| ApiError::from(e).with_status(StatusCode::NOT_FOUND))?;
    Ok(StatusCode::NO_CONTENT)
}

/// An account's balances, for operators.
#[utoipa::path(get, path = "/admin/accounts/{account}", tag = "admin",
    params(("account" = String, Path, description = "The account id"), SignedQuery),
    responses(
        (status = 200, description = "The balances", body = AccountResponse),
        (status = 404, description = "No such account", body = ErrorBody),
    ))]
pub async fn balances(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(account): Path<String>,
) -> Result<Json<AccountResponse>, ApiError> {
    caller.require(Permission::Admin)?;
    let account = validate::account_from_str(&account)?;
    Ok(Json(account_view(&app, account, Vec::new()).await?))
}

async fn transfer(
    app: &AppState,
    caller: &Caller,
    kind: TransferKind,
    req: &TransferRequest,
) -> Result<(StatusCode, Json<TransferResponse>), ApiError> {
    caller.require(Permission::Admin)?;
    let symbols = app.exchange.symbols();
    let id = validate::transfer_id(&req.id)?;
    let account = validate::account_from_json(&req.account)?;
    let asset = validate::asset(
        symbols,
        req.asset
            .as_deref()
            .ok_or_else(|| ApiError::field(ErrorCode::MissingField, "asset", "is required"))?,
    )?;
    let amount = validate::amount(
        asset,
        req.amount
            .as_deref()
            .ok_or_else(|| ApiError::field(ErrorCode::MissingField, "amount", "is required"))?,
    )?;
    let (t, applied) = app
        .accounts
        .transfer(Transfer {
            id,
            kind,
            account,
            asset: asset.id,
            amount,
            ts: now(),
        })
        .await?;
    let status = if applied {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(TransferResponse {
            id: t.id,
            kind: match t.kind {
                TransferKind::Deposit => "DEPOSIT",
                TransferKind::Withdrawal => "WITHDRAWAL",
            }
            .into(),
            account: t.account.0.to_string(),
            asset: asset.name.clone(),
            amount: asset.to_decimal(t.amount).to_string(),
            time: millis(t.ts),
        }),
    ))
}

/// Credit a deposit. Applied once per id: a retry answers 200 with the first transfer.
#[utoipa::path(post, path = "/admin/deposits", tag = "admin", request_body = TransferRequest,
    params(SignedQuery),
    responses(
        (status = 201, description = "Credited", body = TransferResponse),
        (status = 200, description = "Already credited under this id", body = TransferResponse),
        (status = 409, description = "The id was used for another transfer", body = ErrorBody),
    ))]
pub async fn deposit(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(req): JsonBody<TransferRequest>,
) -> Result<(StatusCode, Json<TransferResponse>), ApiError> {
    transfer(&app, &caller, TransferKind::Deposit, &req).await
}

/// Debit a withdrawal from the available balance. Applied once per id.
#[utoipa::path(post, path = "/admin/withdrawals", tag = "admin", request_body = TransferRequest,
    params(SignedQuery),
    responses(
        (status = 201, description = "Debited", body = TransferResponse),
        (status = 200, description = "Already debited under this id", body = TransferResponse),
        (status = 400, description = "Not enough available", body = ErrorBody),
        (status = 409, description = "The id was used for another transfer", body = ErrorBody),
    ))]
pub async fn withdraw(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(req): JsonBody<TransferRequest>,
) -> Result<(StatusCode, Json<TransferResponse>), ApiError> {
    transfer(&app, &caller, TransferKind::Withdrawal, &req).await
}

/// Reconciliation: per asset, deposits minus withdrawals against the sum of all balances.
#[utoipa::path(get, path = "/admin/totals", tag = "admin", params(SignedQuery),
    responses(
        (status = 200, description = "Per asset", body = Vec<AssetTotalResponse>),
        (status = 403, description = "The key is not an admin key", body = ErrorBody),
    ))]
pub async fn totals(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<AssetTotalResponse>>, ApiError> {
    caller.require(Permission::Admin)?;
    let assets = app.exchange.symbols().assets();
    Ok(Json(
        app.accounts
            .totals()
            .await
            .into_iter()
            .filter_map(|(id, transferred, held)| {
                let a = assets.get(id)?;
                Some(AssetTotalResponse {
                    asset: a.name.clone(),
                    transferred: a.signed_to_decimal(transferred).to_string(),
                    held: a.signed_to_decimal(held).to_string(),
                    difference: a.signed_to_decimal(held - transferred).to_string(),
                })
            })
            .collect(),
    ))
}
