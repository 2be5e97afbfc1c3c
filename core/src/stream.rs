//! The event stream: what the shards and the accounts layer tell the functions (settlement and
//! rollup), as self-describing records.
//!
//! A source (a shard, the accounts layer) writes one [`StreamRecord`] per command or transfer
//! that changed something, numbered by its place in the source (`seq`: the command's log offset,
//! the transfer's number). Every event carries the key that makes writing it idempotent: trade
//! id, order id with its version, ledger entry id. Amounts are exact decimals (strings in JSON),
//! never floats, so a record reads the same in a Lambda payload, MongoDB and PostgreSQL.
//! (Decimals are (de)serialised as strings explicitly, so that the event journal's compact
//! binary encoding, which cannot guess types, reads them back.)

use crate::event::OrderStatus;
use crate::funds::{AssetId, Funding};
use crate::symbol::SymbolSpec;
use crate::types::{AccountId, Side};
use crate::views::{Fill, OrderRecord};
use crate::{MarketSize, OrderType, Trade};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One command's or transfer's events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRecord {
    /// `shard-{n}` or `accounts`.
    pub source: String,
    /// Its place in the source, increasing without repeats (gaps allowed).
    pub seq: u64,
    /// Nanoseconds since the epoch.
    pub time: u64,
    pub events: Vec<StreamEvent>,
}

/// What happened: `{"trade": {...}}`, `{"order": {...}}` or `{"ledger": {...}}` in JSON.
/// (Externally tagged, so that the compact binary encoding of the event journal reads it too.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamEvent {
    Trade(TradeEvent),
    Order(OrderEvent),
    Ledger(LedgerEvent),
}

/// A trade.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeEvent {
    pub symbol: String,
    /// Unique across the exchange.
    pub trade_id: u64,
    #[serde(with = "rust_decimal::serde::str")]
    pub price: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub quantity: Decimal,
    pub taker_side: Side,
    pub maker_order_id: u64,
    pub taker_order_id: u64,
    pub maker_account: u64,
    pub taker_account: u64,
    /// Nanoseconds since the epoch.
    pub time: u64,
}

/// An order as it stands after a command changed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub order_id: u64,
    pub account: u64,
    pub symbol: String,
    pub client_order_id: Option<String>,
    pub side: Side,
    /// `LIMIT` or `MARKET`.
    pub order_type: String,
    /// The limit price (limit orders).
    #[serde(with = "rust_decimal::serde::str_option")]
    pub price: Option<Decimal>,
    /// The total quantity (absent for a quote-sized market order).
    #[serde(with = "rust_decimal::serde::str_option")]
    pub quantity: Option<Decimal>,
    /// `NEW`, `PARTIALLY_FILLED`, `FILLED` or `CANCELLED`.
    pub status: String,
    pub cancel_reason: Option<String>,
    #[serde(with = "rust_decimal::serde::str")]
    pub filled_quantity: Decimal,
    /// Sum of price × quantity over the fills.
    #[serde(with = "rust_decimal::serde::str")]
    pub filled_quote: Decimal,
    pub created: u64,
    pub updated: u64,
    /// Increases with every change (the command's offset): a store keeps the highest.
    pub version: u64,
}

/// Why a balance moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LedgerKind {
    Trade,
    Fee,
    Deposit,
    Withdrawal,
}

impl LedgerKind {
    /// The wire name (`TRADE`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Trade => "TRADE",
            LedgerKind::Fee => "FEE",
            LedgerKind::Deposit => "DEPOSIT",
            LedgerKind::Withdrawal => "WITHDRAWAL",
        }
    }

    /// The kind for a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Trade, Self::Fee, Self::Deposit, Self::Withdrawal]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One movement of one account's total balance of one asset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEvent {
    /// Unique per account (see [`fill_legs`]; `deposit:{id}`, `withdrawal:{id}`).
    pub entry_id: String,
    pub account: u64,
    pub asset: String,
    /// Signed: negative when the balance went down.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub kind: LedgerKind,
    /// The trade id or transfer id.
    pub reference: String,
    pub symbol: Option<String>,
    /// Nanoseconds since the epoch.
    pub time: u64,
}

/// A movement of one fill, in units of its asset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerLeg {
    /// Unique per account: `trade:{trade}:{maker|taker}:{asset}`, `fee:{trade}:{maker|taker}`.
    pub entry_id: String,
    pub kind: LedgerKind,
    pub asset: AssetId,
    pub amount: i128,
}

/// What a fill moved for its account: what it paid, what it received and the fee taken from
/// that. The ids name the side of the trade, so an account trading with itself has distinct
/// entries.
pub fn fill_legs(
    f: &Fill,
    funding: &Funding,
    asset_name: impl Fn(AssetId) -> String,
) -> Vec<LedgerLeg> {
    let (paid, received) = match f.side {
        Side::Buy => (funding.quote, funding.base),
        Side::Sell => (funding.base, funding.quote),
    };
    let role = if f.maker { "maker" } else { "taker" };
    let trade = f.trade_id.0;
    let mut legs = vec![
        LedgerLeg {
            entry_id: format!("trade:{trade}:{role}:{}", asset_name(paid)),
            kind: LedgerKind::Trade,
            asset: paid,
            amount: -(f.paid as i128),
        },
        LedgerLeg {
            entry_id: format!("trade:{trade}:{role}:{}", asset_name(received)),
            kind: LedgerKind::Trade,
            asset: received,
            amount: f.received as i128,
        },
    ];
    if f.fee > 0 {
        legs.push(LedgerLeg {
            entry_id: format!("fee:{trade}:{role}"),
            kind: LedgerKind::Fee,
            asset: received,
            amount: -(f.fee as i128),
        });
    }
    legs
}

/// The fee account's credit for the fee of one side of a fill.
pub fn fee_credit(f: &Fill, funding: &Funding) -> Option<LedgerLeg> {
    let received = match f.side {
        Side::Buy => funding.base,
        Side::Sell => funding.quote,
    };
    (f.fee > 0).then(|| LedgerLeg {
        entry_id: format!(
            "fee:{}:{}",
            f.trade_id.0,
            if f.maker { "maker" } else { "taker" }
        ),
        kind: LedgerKind::Fee,
        asset: received,
        amount: f.fee as i128,
    })
}

/// The ledger events of one fill: the account's legs and the fee account's credit.
pub fn fill_ledger(
    spec: &SymbolSpec,
    account: AccountId,
    f: &Fill,
    assets: &crate::Assets,
) -> Vec<LedgerEvent> {
    let name = |a: AssetId| assets.get(a).map_or_else(String::new, |a| a.name.clone());
    let event = |account: AccountId, leg: LedgerLeg| {
        let asset = assets.get(leg.asset);
        LedgerEvent {
            entry_id: leg.entry_id,
            account: account.0,
            asset: name(leg.asset),
            amount: asset.map_or(Decimal::ZERO, |a| a.signed_to_decimal(leg.amount)),
            kind: leg.kind,
            reference: f.trade_id.0.to_string(),
            symbol: Some(spec.name.clone()),
            time: f.ts.0,
        }
    };
    let mut out: Vec<LedgerEvent> = fill_legs(f, &spec.funding, name)
        .into_iter()
        .map(|leg| event(account, leg))
        .collect();
    out.extend(fee_credit(f, &spec.funding).map(|leg| event(AccountId::FEES, leg)));
    out
}

/// The trade event of an engine trade.
pub fn trade_event(spec: &SymbolSpec, t: &Trade, time: u64) -> TradeEvent {
    TradeEvent {
        symbol: spec.name.clone(),
        trade_id: t.trade_id.0,
        price: spec.price_to_decimal(t.price),
        quantity: spec.qty_to_decimal(t.qty),
        taker_side: t.taker_side,
        maker_order_id: t.maker_order_id.0,
        taker_order_id: t.taker_order_id.0,
        maker_account: t.maker_account.0,
        taker_account: t.taker_account.0,
        time,
    }
}

/// An order's status as its wire names: status and cancel reason.
pub fn status_names(s: OrderStatus) -> (&'static str, Option<String>) {
    match s {
        OrderStatus::New => ("NEW", None),
        OrderStatus::PartiallyFilled => ("PARTIALLY_FILLED", None),
        OrderStatus::Filled => ("FILLED", None),
        OrderStatus::Cancelled(r) => ("CANCELLED", Some(r.as_str().to_owned())),
    }
}

/// The order event of an order record at `version`.
pub fn order_event(spec: &SymbolSpec, o: &OrderRecord, version: u64) -> OrderEvent {
    let (status, cancel_reason) = status_names(o.status);
    let is_limit = matches!(o.order_type, OrderType::Limit { .. });
    let quote_sized = matches!(
        o.order_type,
        OrderType::Market {
            size: MarketSize::Quote(_)
        }
    );
    OrderEvent {
        order_id: o.id.0,
        account: o.account.0,
        symbol: spec.name.clone(),
        client_order_id: o.client_order_id.map(|c| c.to_string()),
        side: o.side,
        order_type: if is_limit { "LIMIT" } else { "MARKET" }.into(),
        price: is_limit.then(|| spec.price_to_decimal(o.price)),
        quantity: (!quote_sized || o.qty.0 > 0).then(|| spec.qty_to_decimal(o.qty)),
        status: status.into(),
        cancel_reason,
        filled_quantity: spec.qty_to_decimal(o.filled),
        filled_quote: spec.notional_to_decimal(o.quote_filled),
        created: o.created.0,
        updated: o.updated.0,
        version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn records_round_trip_through_the_journal_encoding_and_json() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        let record = StreamRecord {
            source: "shard-1".into(),
            seq: 7,
            time: 1_700_000_000_000_000_001,
            events: vec![
                StreamEvent::Trade(TradeEvent {
                    symbol: "BTC-USD".into(),
                    trade_id: 1 << 48 | 3,
                    price: d("65000.50"),
                    quantity: d("0.00000001"),
                    taker_side: Side::Sell,
                    maker_order_id: 1,
                    taker_order_id: 2,
                    maker_account: 3,
                    taker_account: 4,
                    time: 5,
                }),
                StreamEvent::Order(OrderEvent {
                    order_id: 9,
                    account: 3,
                    symbol: "BTC-USD".into(),
                    client_order_id: None,
                    side: Side::Buy,
                    order_type: "MARKET".into(),
                    price: None,
                    quantity: Some(d("1.5")),
                    status: "FILLED".into(),
                    cancel_reason: Some("IOC_REMAINDER".into()),
                    filled_quantity: d("1.5"),
                    filled_quote: d("97500.75"),
                    created: 1,
                    updated: 2,
                    version: 7,
                }),
                StreamEvent::Ledger(LedgerEvent {
                    entry_id: "fee:3:taker".into(),
                    account: 0,
                    asset: "USD".into(),
                    amount: d("-0.0650005"),
                    kind: LedgerKind::Fee,
                    reference: "3".into(),
                    symbol: None,
                    time: 5,
                }),
            ],
        };
        let bytes = postcard::to_stdvec(&record).unwrap();
        assert_eq!(
            postcard::from_bytes::<StreamRecord>(&bytes).unwrap(),
            record
        );
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["events"][0]["trade"]["price"], "65000.50");
        assert_eq!(json["events"][2]["ledger"]["kind"], "FEE");
        assert_eq!(
            serde_json::from_value::<StreamRecord>(json).unwrap(),
            record
        );
    }
}
