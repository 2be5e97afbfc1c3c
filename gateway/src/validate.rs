//! Validation at the edge: request fields to engine values, or an error naming the field.
//!
//! Everything a client sends is checked here against the symbol's rules before it reaches a
//! log, so the engine (which checks again) only ever sees well-formed commands.

use crate::dto::{AmendOrderRequest, PlaceOrderRequest};
use crate::error::ApiError;
use exchange_core::num::parse_decimal;
use exchange_core::{
    AccountId, AmendOrder, Asset, ClientOrderId, ErrorCode, Hold, HoldError, MarketSize, NewOrder,
    Notional, NumError, OrderId, OrderRef, OrderType, Price, Qty, Side, StpMode, SymbolId,
    SymbolSpec, SymbolTable, TimeInForce,
};

/// Largest number of rows a list query returns.
pub const MAX_LIMIT: usize = 1_000;
/// Rows a list query returns when it does not say.
pub const DEFAULT_LIMIT: usize = 100;

#[derive(Clone, Copy)]
enum Amount {
    Price,
    Qty,
    Quote,
}

fn number_error(field: &str, kind: Amount, e: NumError) -> ApiError {
    let code = match (&e, kind) {
        (NumError::OffStep { .. }, Amount::Price) => ErrorCode::PriceOffTick,
        (NumError::OffStep { .. }, Amount::Qty) => ErrorCode::QtyOffLot,
        (NumError::AboveMax { .. }, Amount::Price) => ErrorCode::PriceOutOfRange,
        (NumError::AboveMax { .. } | NumError::BelowMin { .. }, Amount::Qty) => {
            ErrorCode::QtyOutOfRange
        }
        (NumError::BelowMin { .. }, Amount::Quote) => ErrorCode::BelowMinNotional,
        (NumError::AboveMax { .. }, Amount::Quote) => ErrorCode::InvalidField,
        _ => ErrorCode::InvalidNumber,
    };
    ApiError::field(code, field, e)
}

fn required<'a, T>(v: &'a Option<T>, field: &str) -> Result<&'a T, ApiError> {
    v.as_ref()
        .ok_or_else(|| ApiError::field(ErrorCode::MissingField, field, "is required"))
}

fn forbidden<T>(v: &Option<T>, field: &str, why: &str) -> Result<(), ApiError> {
    match v {
        Some(_) => Err(ApiError::field(ErrorCode::InvalidField, field, why)),
        None => Ok(()),
    }
}

/// An account id from a JSON body: a positive integer, as a number or a digit string.
pub fn account_from_json(v: &Option<serde_json::Value>) -> Result<AccountId, ApiError> {
    let v = required(v, "account")?;
    let id = match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse::<u64>().ok(),
        _ => None,
    };
    match id {
        Some(id) if id > 0 => Ok(AccountId(id)),
        _ => Err(ApiError::field(
            ErrorCode::InvalidField,
            "account",
            "must be a positive integer",
        )),
    }
}

/// An account id from a path (0 is the fee account).
pub fn account_from_str(s: &str) -> Result<AccountId, ApiError> {
    s.parse::<u64>().map(AccountId).map_err(|_| {
        ApiError::field(
            ErrorCode::InvalidField,
            "account",
            "must be a non-negative integer",
        )
    })
}

/// An optional `symbol` filter: the listed symbol's id, or `None` when absent.
pub fn symbol_filter(
    table: &SymbolTable,
    v: &Option<String>,
) -> Result<Option<SymbolId>, ApiError> {
    v.as_deref()
        .map(|s| symbol(table, s).map(|s| s.id))
        .transpose()
}

/// A listed asset.
pub fn asset<'a>(table: &'a SymbolTable, name: &str) -> Result<&'a Asset, ApiError> {
    table.assets().by_name(name).ok_or_else(|| {
        ApiError::field(
            ErrorCode::UnknownAsset,
            "asset",
            format!("{name:?} is not an asset of any listed symbol"),
        )
    })
}

/// A positive amount of `asset`, at most its scale's digits.
pub fn amount(asset: &Asset, s: &str) -> Result<u128, ApiError> {
    let d = parse_decimal(s).map_err(|e| ApiError::field(ErrorCode::InvalidNumber, "amount", e))?;
    asset
        .from_decimal(d)
        .map_err(|e| ApiError::field(ErrorCode::InvalidNumber, "amount", e))
}

/// A transfer id: 1 to 64 of `A-Z a-z 0-9 . _ : -`.
pub fn transfer_id(v: &Option<String>) -> Result<String, ApiError> {
    let s = required(v, "id")?;
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(s.clone())
    } else {
        Err(ApiError::field(
            ErrorCode::InvalidField,
            "id",
            "must be 1 to 64 of A-Z a-z 0-9 . _ : -",
        ))
    }
}

/// A client order id from a path.
pub fn client_order_id(s: &str) -> Result<ClientOrderId, ApiError> {
    ClientOrderId::new(s)
        .map_err(|e| ApiError::field(ErrorCode::InvalidField, "client_order_id", e))
}

/// A listed symbol.
pub fn symbol<'a>(table: &'a SymbolTable, name: &str) -> Result<&'a SymbolSpec, ApiError> {
    table.by_name(name).map_err(|_| {
        ApiError::field(
            ErrorCode::UnknownSymbol,
            "symbol",
            format!("{name:?} is not listed (see GET /symbols)"),
        )
    })
}

/// An order id from a path.
pub fn order_id(table: &SymbolTable, s: &str) -> Result<OrderId, ApiError> {
    let not_found = || {
        ApiError::field(
            ErrorCode::UnknownOrder,
            "id",
            format!("{s:?} is not a known order"),
        )
    };
    let id = s.parse::<u64>().map(OrderId).map_err(|_| {
        ApiError::field(
            ErrorCode::InvalidField,
            "id",
            "must be an order id (digits)",
        )
    })?;
    table.get(id.symbol()).map(|_| id).ok_or_else(not_found)
}

/// A row limit: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub fn limit(v: &Option<String>) -> Result<usize, ApiError> {
    match v {
        None => Ok(DEFAULT_LIMIT),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::field(
                ErrorCode::InvalidField,
                "limit",
                format!("must be an integer from 1 to {MAX_LIMIT}"),
            )),
        },
    }
}

/// One of the documented values, spelled as documented (upper case): `buy` is refused with the
/// list, so that the API has one spelling and its document says which.
fn choice<T: Copy>(field: &str, value: &str, options: &[(&str, T)]) -> Result<T, ApiError> {
    options
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            ApiError::field(
                ErrorCode::InvalidField,
                field,
                format!("must be one of {}", names.join(", ")),
            )
        })
}

fn decimal_field(field: &str, s: &str, kind: Amount) -> Result<rust_decimal::Decimal, ApiError> {
    parse_decimal(s).map_err(|e| number_error(field, kind, e))
}

fn price(spec: &SymbolSpec, s: &str) -> Result<Price, ApiError> {
    let d = decimal_field("price", s, Amount::Price)?;
    spec.price_from_decimal(d)
        .map_err(|e| number_error("price", Amount::Price, e))
}

fn qty(spec: &SymbolSpec, s: &str) -> Result<Qty, ApiError> {
    let d = decimal_field("quantity", s, Amount::Qty)?;
    spec.qty_from_decimal(d)
        .map_err(|e| number_error("quantity", Amount::Qty, e))
}

fn quote(spec: &SymbolSpec, s: &str) -> Result<Notional, ApiError> {
    let d = decimal_field("quote_quantity", s, Amount::Quote)?;
    spec.notional_from_decimal(d)
        .map_err(|e| number_error("quote_quantity", Amount::Quote, e))
}

/// A place request as a `NewOrder` (its id is assigned by the log).
/// With it, what the order must hold (market buys must be sized in quote, market sells in base,
/// so that the cost is known before the order trades).
pub fn new_order(
    table: &SymbolTable,
    r: &PlaceOrderRequest,
    account: AccountId,
) -> Result<(NewOrder, Hold), ApiError> {
    let spec = symbol(table, required(&r.symbol, "symbol")?)?;
    let side = choice(
        "side",
        required(&r.side, "side")?,
        &[("BUY", Side::Buy), ("SELL", Side::Sell)],
    )?;
    let is_limit = choice(
        "type",
        required(&r.order_type, "type")?,
        &[("LIMIT", true), ("MARKET", false)],
    )?;
    let stp = match &r.self_trade_prevention {
        None => StpMode::None,
        Some(s) => choice(
            "self_trade_prevention",
            s,
            &[
                ("NONE", StpMode::None),
                ("EXPIRE_TAKER", StpMode::ExpireTaker),
                ("EXPIRE_MAKER", StpMode::ExpireMaker),
                ("EXPIRE_BOTH", StpMode::ExpireBoth),
            ],
        )?,
    };
    let client_order_id = r
        .client_order_id
        .as_deref()
        .map(ClientOrderId::new)
        .transpose()
        .map_err(|e| ApiError::field(ErrorCode::InvalidField, "client_order_id", e))?;
    let order_type = if is_limit {
        forbidden(
            &r.quote_quantity,
            "quote_quantity",
            "is for market orders; a limit order takes quantity",
        )?;
        let price = price(spec, required(&r.price, "price")?)?;
        let qty = qty(spec, required(&r.quantity, "quantity")?)?;
        let tif = match &r.time_in_force {
            None => TimeInForce::Gtc,
            Some(s) => choice(
                "time_in_force",
                s,
                &[
                    ("GTC", TimeInForce::Gtc),
                    ("IOC", TimeInForce::Ioc),
                    ("FOK", TimeInForce::Fok),
                ],
            )?,
        };
        let post_only = r.post_only.unwrap_or(false);
        if post_only && tif != TimeInForce::Gtc {
            return Err(ApiError::field(
                ErrorCode::InvalidOrderType,
                "post_only",
                "is only for GTC orders",
            ));
        }
        if price.notional(qty) < spec.limits.min_notional {
            return Err(ApiError::field(
                ErrorCode::BelowMinNotional,
                "quantity",
                format!(
                    "× price must be at least {} {}",
                    spec.min_notional, spec.quote
                ),
            ));
        }
        OrderType::Limit {
            price,
            qty,
            tif,
            post_only,
        }
    } else {
        forbidden(
            &r.price,
            "price",
            "is for limit orders; a market order trades at any price",
        )?;
        forbidden(
            &r.time_in_force,
            "time_in_force",
            "is for limit orders; a market order is immediate-or-cancel",
        )?;
        if r.post_only == Some(true) {
            return Err(ApiError::field(
                ErrorCode::InvalidOrderType,
                "post_only",
                "is for limit orders",
            ));
        }
        let size = match (&r.quantity, &r.quote_quantity) {
            (Some(q), None) => MarketSize::Base(qty(spec, q)?),
            (None, Some(q)) => MarketSize::Quote(quote(spec, q)?),
            (Some(_), Some(_)) => {
                return Err(ApiError::field(
                    ErrorCode::InvalidField,
                    "quote_quantity",
                    "cannot be given together with quantity",
                ));
            }
            (None, None) => {
                return Err(ApiError::field(
                    ErrorCode::MissingField,
                    "quantity",
                    "or quote_quantity is required for a market order",
                ));
            }
        };
        OrderType::Market { size }
    };
    let order = NewOrder {
        symbol: spec.id,
        order_id: OrderId(0),
        account,
        client_order_id,
        side,
        order_type,
        stp,
    };
    let hold = spec.funding.order_hold(&order).map_err(|e| {
        let field = match e {
            HoldError::MarketBuyByBase => "quantity",
            HoldError::MarketSellByQuote => "quote_quantity",
        };
        ApiError {
            field: Some(field.into()),
            ..ApiError::new(ErrorCode::InvalidOrderType, e.to_string())
        }
    })?;
    Ok((order, hold))
}

/// An amend request for order `id`.
pub fn amend(
    table: &SymbolTable,
    id: OrderId,
    r: &AmendOrderRequest,
    account: AccountId,
) -> Result<AmendOrder, ApiError> {
    let spec = table
        .get(id.symbol())
        .ok_or_else(|| ApiError::field(ErrorCode::UnknownOrder, "id", "is not a known order"))?;
    if r.price.is_none() && r.quantity.is_none() {
        return Err(ApiError::field(
            ErrorCode::MissingField,
            "price",
            "or quantity is required",
        ));
    }
    Ok(AmendOrder {
        symbol: spec.id,
        account,
        target: OrderRef::Id(id),
        new_price: r.price.as_deref().map(|p| price(spec, p)).transpose()?,
        new_qty: r.quantity.as_deref().map(|q| qty(spec, q)).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> PlaceOrderRequest {
        PlaceOrderRequest {
            symbol: Some("BTC-USD".into()),
            side: Some("BUY".into()),
            order_type: Some("LIMIT".into()),
            price: Some("65000.10".into()),
            quantity: Some("0.01000".into()),
            ..Default::default()
        }
    }

    fn err(r: PlaceOrderRequest) -> (ErrorCode, Option<String>) {
        let e = new_order(&SymbolTable::default_symbols(), &r, AccountId(7)).unwrap_err();
        (e.code, e.field)
    }

    #[test]
    fn a_valid_limit_order_becomes_ticks_and_lots() {
        let (o, hold) = new_order(&SymbolTable::default_symbols(), &req(), AccountId(7)).unwrap();
        assert_eq!(o.account, AccountId(7));
        // 65000.10 × 0.01 = 650.001 USD, at USD's 7 decimal places.
        assert_eq!(hold.amount, 6_500_010_000);
        assert_eq!(o.side, Side::Buy);
        assert_eq!(
            o.order_type,
            OrderType::Limit {
                price: Price(6_500_010),
                qty: Qty(1_000),
                tif: TimeInForce::Gtc,
                post_only: false
            }
        );
    }

    #[test]
    fn enum_values_have_one_spelling_the_documented_upper_case() {
        for (field, set) in [
            (
                "side",
                (|r: &mut PlaceOrderRequest| r.side = Some("buy".into())) as fn(&mut _),
            ),
            ("type", |r| r.order_type = Some("limit".into())),
            ("time_in_force", |r| r.time_in_force = Some("gtc".into())),
            ("self_trade_prevention", |r| {
                r.self_trade_prevention = Some("expire_taker".into())
            }),
        ] {
            let mut r = req();
            set(&mut r);
            assert_eq!(
                err(r),
                (ErrorCode::InvalidField, Some(field.to_owned())),
                "{field}"
            );
        }
    }

    #[test]
    fn each_bad_field_is_named() {
        let f = |s: &str| Some(s.to_owned());
        assert_eq!(
            err(PlaceOrderRequest {
                symbol: f("DOGE-EUR"),
                ..req()
            }),
            (ErrorCode::UnknownSymbol, f("symbol"))
        );
        assert_eq!(
            err(PlaceOrderRequest {
                side: f("up"),
                ..req()
            }),
            (ErrorCode::InvalidField, f("side"))
        );
        assert_eq!(
            err(PlaceOrderRequest {
                price: f("65000.001"),
                ..req()
            }),
            (ErrorCode::PriceOffTick, f("price"))
        );
        assert_eq!(
            err(PlaceOrderRequest {
                price: f("1e5"),
                ..req()
            }),
            (ErrorCode::InvalidNumber, f("price"))
        );
        assert_eq!(
            err(PlaceOrderRequest {
                price: f("-5"),
                ..req()
            }),
            (ErrorCode::InvalidNumber, f("price"))
        );
        assert_eq!(
            err(PlaceOrderRequest {
                quantity: f("0.000001"),
                ..req()
            }),
            (ErrorCode::QtyOffLot, f("quantity"))
        );
        assert_eq!(
            err(PlaceOrderRequest {
                quantity: f("5000"),
                ..req()
            }),
            (ErrorCode::QtyOutOfRange, f("quantity"))
        );
        assert_eq!(
            err(PlaceOrderRequest {
                price: f("1.00"),
                quantity: f("0.00001"),
                ..req()
            }),
            (ErrorCode::BelowMinNotional, f("quantity"))
        );
        assert_eq!(
            err(PlaceOrderRequest {
                time_in_force: f("DAY"),
                ..req()
            }),
            (ErrorCode::InvalidField, f("time_in_force"))
        );
        assert_eq!(
            err(PlaceOrderRequest {
                post_only: Some(true),
                time_in_force: f("IOC"),
                ..req()
            }),
            (ErrorCode::InvalidOrderType, f("post_only"))
        );
        assert_eq!(
            err(PlaceOrderRequest {
                client_order_id: f("has space"),
                ..req()
            }),
            (ErrorCode::InvalidField, f("client_order_id"))
        );
        let market = || PlaceOrderRequest {
            order_type: f("MARKET"),
            price: None,
            ..req()
        };
        assert_eq!(
            err(PlaceOrderRequest {
                price: f("1"),
                ..market()
            }),
            (ErrorCode::InvalidField, f("price"))
        );
        assert_eq!(
            err(PlaceOrderRequest {
                quantity: None,
                ..market()
            }),
            (ErrorCode::MissingField, f("quantity"))
        );
        assert_eq!(
            err(PlaceOrderRequest {
                quote_quantity: f("10"),
                ..market()
            }),
            (ErrorCode::InvalidField, f("quote_quantity"))
        );
        assert_eq!(
            err(PlaceOrderRequest {
                quantity: None,
                quote_quantity: f("0.5"),
                ..market()
            }),
            (ErrorCode::BelowMinNotional, f("quote_quantity"))
        );
        assert_eq!(
            err(market()),
            (ErrorCode::InvalidOrderType, f("quantity")),
            "a market buy's cost must be known: it is sized in quote"
        );
        assert_eq!(
            err(PlaceOrderRequest {
                side: f("SELL"),
                quantity: None,
                quote_quantity: f("100"),
                ..market()
            }),
            (ErrorCode::InvalidOrderType, f("quote_quantity"))
        );
    }
}
