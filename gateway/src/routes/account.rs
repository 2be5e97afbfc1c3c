//! The signing key's own account: balances, fills and the ledger.

use crate::auth::Caller;
use crate::dto::{
    AccountResponse, AccountTradeResponse, AccountTradesQuery, BalanceResponse,
    LedgerEntryResponse, LedgerQuery, SignedQuery, millis,
};
use crate::error::{ApiError, ErrorBody};
use crate::{AppState, validate};
use axum::extract::{Query, State};
use axum::{Extension, Json};
use exchange_accounts::{Balance, Permission, TransferKind};
use exchange_core::stream::fill_legs;
use exchange_core::{AccountId, AssetId, Fill, Side, Timestamp};
use std::collections::HashMap;

/// Every listed asset's balance for `account`, zeros included.
pub(crate) async fn account_view(
    app: &AppState,
    account: AccountId,
    permissions: Vec<String>,
) -> Result<AccountResponse, ApiError> {
    let held: HashMap<AssetId, Balance> = app
        .accounts
        .balances(account)
        .await?
        .into_iter()
        .map(|b| (b.asset, b))
        .collect();
    let balances = app
        .exchange
        .symbols()
        .assets()
        .iter()
        .map(|a| {
            let b = held.get(&a.id).copied().unwrap_or_default();
            BalanceResponse {
                asset: a.name.clone(),
                available: a.to_decimal(b.available).to_string(),
                reserved: a.to_decimal(b.reserved).to_string(),
                total: a.to_decimal(b.available + b.reserved).to_string(),
            }
        })
        .collect();
    Ok(AccountResponse {
        account: account.0.to_string(),
        permissions,
        balances,
    })
}

/// The account's balances: per asset, available, reserved by open orders, and total.
#[utoipa::path(get, path = "/account", tag = "account", params(SignedQuery),
    responses(
        (status = 200, description = "The balances", body = AccountResponse),
        (status = 401, description = "Not signed, or badly", body = ErrorBody),
    ))]
pub async fn account(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<AccountResponse>, ApiError> {
    caller.require(Permission::Read)?;
    let names = caller
        .permissions
        .names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    Ok(Json(account_view(&app, caller.account, names).await?))
}

/// The account's own fills, newest first, with their fees.
#[utoipa::path(get, path = "/account/trades", tag = "account", params(AccountTradesQuery, SignedQuery),
    responses(
        (status = 200, description = "The fills", body = Vec<AccountTradeResponse>),
        (status = 400, description = "A bad parameter", body = ErrorBody),
    ))]
pub async fn trades(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<AccountTradesQuery>,
) -> Result<Json<Vec<AccountTradeResponse>>, ApiError> {
    caller.require(Permission::Read)?;
    let symbol = validate::symbol_filter(app.exchange.symbols(), &q.symbol)?;
    let limit = validate::limit(&q.limit)?;
    let mut fills: Vec<Fill> = app
        .exchange
        .account_funds(caller.account, symbol, limit)
        .await?
        .into_iter()
        .flat_map(|f| f.fills)
        .collect();
    fills.sort_unstable_by_key(|f| std::cmp::Reverse((f.ts, f.trade_id)));
    fills.truncate(limit);
    Ok(Json(fills.iter().map(|f| fill_view(&app, f)).collect()))
}

fn fill_view(app: &AppState, f: &Fill) -> AccountTradeResponse {
    let spec = app.spec(f.symbol);
    let assets = app.exchange.symbols().assets();
    let asset = |id| assets.get(id).expect("symbols name listed assets");
    let (received, quote) = match f.side {
        Side::Buy => (spec.funding.base, f.paid),
        Side::Sell => (spec.funding.quote, f.received),
    };
    AccountTradeResponse {
        trade_id: f.trade_id.0.to_string(),
        order_id: f.order_id.0.to_string(),
        symbol: spec.name.clone(),
        side: f.side.as_str().into(),
        price: spec.price_to_decimal(f.price).to_string(),
        quantity: spec.qty_to_decimal(f.qty).to_string(),
        quote_quantity: asset(spec.funding.quote).to_decimal(quote).to_string(),
        fee: asset(received).to_decimal(f.fee).to_string(),
        fee_asset: asset(received).name.clone(),
        liquidity: if f.maker { "MAKER" } else { "TAKER" }.into(),
        time: millis(f.ts),
    }
}

/// One movement before it gets its running balance.
struct Movement {
    ts: Timestamp,
    /// Orders movements at the same time: (source, id, leg).
    tie: (u8, u64, u8),
    id: String,
    kind: &'static str,
    asset: AssetId,
    amount: i128,
    reference: String,
    symbol: Option<String>,
}

/// The account's ledger, newest first: deposits, withdrawals, both legs of every fill and its
/// fee, each with the asset's balance (available + reserved) after it.
///
/// Balances run backwards from the current total, so every entry shown is exact. Each shard
/// keeps an account's newest fills only; entries older than the oldest fill a shard still has
/// are not shown, because their running balance could not be exact.
#[utoipa::path(get, path = "/account/ledger", tag = "account", params(LedgerQuery, SignedQuery),
    responses(
        (status = 200, description = "The entries", body = Vec<LedgerEntryResponse>),
        (status = 400, description = "A bad parameter", body = ErrorBody),
    ))]
pub async fn ledger(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<LedgerQuery>,
) -> Result<Json<Vec<LedgerEntryResponse>>, ApiError> {
    caller.require(Permission::Read)?;
    let symbols = app.exchange.symbols();
    let only = q
        .asset
        .as_deref()
        .map(|a| validate::asset(symbols, a).map(|a| a.id))
        .transpose()?;
    let limit = validate::limit(&q.limit)?;
    let transfers = app.accounts.transfers(caller.account).await?;
    let shards = app
        .exchange
        .account_funds(caller.account, None, usize::MAX)
        .await?;
    let mut total: HashMap<AssetId, i128> = HashMap::new();
    let mut moves: Vec<Movement> = Vec::new();
    for t in &transfers {
        *total.entry(t.asset).or_default() += t.signed();
        let (kind, prefix) = match t.kind {
            TransferKind::Deposit => ("DEPOSIT", "deposit"),
            TransferKind::Withdrawal => ("WITHDRAWAL", "withdrawal"),
        };
        moves.push(Movement {
            ts: t.ts,
            tie: (0, 0, 0),
            id: format!("{prefix}:{}", t.id),
            kind,
            asset: t.asset,
            amount: t.signed(),
            reference: t.id.clone(),
            symbol: None,
        });
    }
    let mut complete_after: Option<Timestamp> = None;
    for shard in &shards {
        for (asset, d) in &shard.deltas {
            *total.entry(*asset).or_default() += d.total();
        }
        complete_after = complete_after.max(shard.complete_after);
        for f in &shard.fills {
            let spec = app.spec(f.symbol);
            let name = |a: AssetId| {
                symbols
                    .assets()
                    .get(a)
                    .expect("symbols name listed assets")
                    .name
                    .clone()
            };
            for (n, leg) in fill_legs(f, &spec.funding, name).into_iter().enumerate() {
                moves.push(Movement {
                    ts: f.ts,
                    tie: (1, f.trade_id.0, n as u8),
                    id: leg.entry_id,
                    kind: leg.kind.as_str(),
                    asset: leg.asset,
                    amount: leg.amount,
                    reference: f.trade_id.0.to_string(),
                    symbol: Some(spec.name.clone()),
                });
            }
        }
    }
    moves.sort_unstable_by_key(|m| std::cmp::Reverse((m.ts, m.tie)));
    let mut out = Vec::new();
    for m in moves {
        if complete_after.is_some_and(|c| m.ts <= c) {
            break;
        }
        let running = total.entry(m.asset).or_default();
        let after = *running;
        *running -= m.amount;
        if only.is_some_and(|a| a != m.asset) {
            continue;
        }
        let asset = symbols.assets().get(m.asset).expect("listed asset");
        out.push(LedgerEntryResponse {
            id: m.id,
            kind: m.kind.into(),
            asset: asset.name.clone(),
            amount: asset.signed_to_decimal(m.amount).to_string(),
            balance: asset.signed_to_decimal(after).to_string(),
            reference: m.reference,
            symbol: m.symbol,
            time: millis(m.ts),
        });
        if out.len() == limit {
            break;
        }
    }
    Ok(Json(out))
}
