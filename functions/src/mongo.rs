//! Settlement's store in a cluster: MongoDB.
//!
//! Collections: `trades` (`_id` = trade id), `orders` (`_id` = order id, keeps the highest
//! version), `ledger` (`_id` = `{account}/{entry id}`), `balances` (`_id` = `{account}/{asset}`).
//! Amounts are `Decimal128`, never doubles.
//!
//! # Balances and ledger without a transaction
//! Transactions need a replica set; this store works on any deployment with idempotent writes
//! in a fixed order instead:
//! 1. trades and ledger entries are inserted unordered; a duplicate key (written before) is
//!    success;
//! 2. orders are replaced only by a higher version;
//! 3. each balance touched is updated once per batch with a pipeline update that adds only the
//!    entries whose position in their source (`seq << 20 | index`) is above the position the
//!    balance has recorded for that source, and records the highest.
//!
//! A crash anywhere leaves each step either done or not; the batch is not acknowledged, so it
//! is delivered again, steps 1 and 2 change nothing the second time, and step 3 adds exactly
//! the entries it had not added, because a single-document update is atomic and the recorded
//! position says which ones those are. A balance may lag its ledger entries by one batch
//! between steps 1 and 3; `reconcile` reports that as a difference until the redelivery.

use crate::{BalanceRow, Counts, Posted, SettleBatch, SettleStore, StoreError, Written};
use async_trait::async_trait;
use exchange_core::Side;
use exchange_core::stream::{LedgerEvent, OrderEvent, TradeEvent};
use futures_util::{StreamExt, TryStreamExt};
use mongodb::bson::{Bson, DateTime, Decimal128, Document, doc};
use mongodb::error::ErrorKind;
use mongodb::options::{IndexOptions, UpdateModifications};
use mongodb::{Client, Collection, Database, IndexModel};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::str::FromStr;

/// Duplicate key.
const DUPLICATE: i32 = 11000;

/// Updates in flight at once.
const CONCURRENCY: usize = 32;

/// A decimal as BSON `Decimal128`.
pub fn dec(d: Decimal) -> Bson {
    Bson::Decimal128(Decimal128::from_str(&d.to_string()).expect("a decimal fits Decimal128"))
}

/// A decimal from BSON (`Decimal128`, or an integer).
pub fn undec(b: Option<&Bson>) -> Result<Decimal, StoreError> {
    match b {
        Some(Bson::Decimal128(d)) => {
            let s = d.to_string();
            Decimal::from_str(&s)
                .or_else(|_| Decimal::from_scientific(&s))
                .map_err(|e| StoreError::Corrupt(format!("{s} is not a decimal: {e}")))
        }
        Some(Bson::Int32(i)) => Ok(Decimal::from(*i)),
        Some(Bson::Int64(i)) => Ok(Decimal::from(*i)),
        other => Err(StoreError::Corrupt(format!("{other:?} is not a decimal"))),
    }
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

fn ms(ns: u64) -> DateTime {
    DateTime::from_millis((ns / 1_000_000) as i64)
}

/// A trade's document.
pub fn trade_doc(t: &TradeEvent) -> Document {
    doc! {
        "_id": t.trade_id as i64,
        "symbol": &t.symbol,
        "price": dec(t.price),
        "quantity": dec(t.quantity),
        "taker_side": side_name(t.taker_side),
        "maker_order_id": t.maker_order_id as i64,
        "taker_order_id": t.taker_order_id as i64,
        "maker_account": t.maker_account as i64,
        "taker_account": t.taker_account as i64,
        "time": ms(t.time),
        "time_ns": t.time as i64,
    }
}

/// An order's document.
pub fn order_doc(o: &OrderEvent) -> Document {
    doc! {
        "_id": o.order_id as i64,
        "account": o.account as i64,
        "symbol": &o.symbol,
        "client_order_id": o.client_order_id.clone(),
        "side": side_name(o.side),
        "type": &o.order_type,
        "price": o.price.map(dec),
        "quantity": o.quantity.map(dec),
        "status": &o.status,
        "cancel_reason": o.cancel_reason.clone(),
        "filled_quantity": dec(o.filled_quantity),
        "filled_quote": dec(o.filled_quote),
        "created": o.created as i64,
        "updated": o.updated as i64,
        "version": o.version as i64,
    }
}

fn int(d: &Document, key: &str) -> Result<u64, StoreError> {
    match d.get(key) {
        Some(Bson::Int64(i)) => Ok(*i as u64),
        Some(Bson::Int32(i)) => Ok(*i as u64),
        other => Err(StoreError::Corrupt(format!(
            "{key}: {other:?} is not an integer"
        ))),
    }
}

fn text(d: &Document, key: &str) -> Result<String, StoreError> {
    d.get_str(key)
        .map(str::to_owned)
        .map_err(|e| StoreError::Corrupt(format!("{key}: {e}")))
}

fn opt_text(d: &Document, key: &str) -> Option<String> {
    d.get_str(key).ok().map(str::to_owned)
}

fn opt_dec(d: &Document, key: &str) -> Result<Option<Decimal>, StoreError> {
    match d.get(key) {
        None | Some(Bson::Null) => Ok(None),
        b => undec(b).map(Some),
    }
}

/// An order read back from its document.
pub fn order_of(d: &Document) -> Result<OrderEvent, StoreError> {
    Ok(OrderEvent {
        order_id: int(d, "_id")?,
        account: int(d, "account")?,
        symbol: text(d, "symbol")?,
        client_order_id: opt_text(d, "client_order_id"),
        side: if text(d, "side")? == "BUY" {
            Side::Buy
        } else {
            Side::Sell
        },
        order_type: text(d, "type")?,
        price: opt_dec(d, "price")?,
        quantity: opt_dec(d, "quantity")?,
        status: text(d, "status")?,
        cancel_reason: opt_text(d, "cancel_reason"),
        filled_quantity: undec(d.get("filled_quantity"))?,
        filled_quote: undec(d.get("filled_quote"))?,
        created: int(d, "created")?,
        updated: int(d, "updated")?,
        version: int(d, "version")?,
    })
}

/// The update that replaces an order's document only with a higher version (upserting it).
pub fn order_update(o: &OrderEvent) -> (Document, UpdateModifications) {
    let new = order_doc(o);
    let pipeline = vec![doc! {
        "$replaceWith": {
            "$cond": [
                { "$gt": [o.version as i64, { "$ifNull": ["$version", -1_i64] }] },
                { "$literal": new },
                "$$ROOT",
            ]
        }
    }];
    (
        doc! { "_id": o.order_id as i64 },
        UpdateModifications::Pipeline(pipeline),
    )
}

/// The `_id` of a ledger entry.
pub fn ledger_id(e: &LedgerEvent) -> String {
    format!("{}/{}", e.account, e.entry_id)
}

/// A ledger entry's document.
pub fn ledger_doc(p: &Posted) -> Document {
    let e = &p.entry;
    doc! {
        "_id": ledger_id(e),
        "account": e.account as i64,
        "entry_id": &e.entry_id,
        "asset": &e.asset,
        "amount": dec(e.amount),
        "kind": e.kind.as_str(),
        "reference": &e.reference,
        "symbol": e.symbol.clone(),
        "time": ms(e.time),
        "source": &p.source,
        "pos": p.pos,
    }
}

/// The update of one balance by the entries of one source in a batch (see the module docs).
/// `entries` are `(position, amount)`.
pub fn balance_update(
    account: u64,
    asset: &str,
    source: &str,
    entries: &[(i64, Decimal)],
) -> (Document, UpdateModifications) {
    let applied = format!("$applied.{source}");
    let literal: Vec<Bson> = entries
        .iter()
        .map(|(pos, amount)| Bson::Document(doc! { "pos": *pos, "amount": dec(*amount) }))
        .collect();
    let highest = entries.iter().map(|e| e.0).max().unwrap_or(-1);
    let pipeline = vec![doc! {
        "$set": {
            "account": account as i64,
            "asset": asset,
            "total": {
                "$add": [
                    { "$ifNull": ["$total", dec(Decimal::ZERO)] },
                    { "$sum": {
                        "$map": {
                            "input": {
                                "$filter": {
                                    "input": { "$literal": literal },
                                    "as": "e",
                                    "cond": { "$gt": ["$$e.pos", { "$ifNull": [&applied, -1_i64] }] },
                                }
                            },
                            "as": "e",
                            "in": "$$e.amount",
                        }
                    } },
                ]
            },
            format!("applied.{source}"): { "$max": [{ "$ifNull": [&applied, -1_i64] }, highest] },
        }
    }];
    (
        doc! { "_id": format!("{account}/{asset}") },
        UpdateModifications::Pipeline(pipeline),
    )
}

/// Whether an insert failed only on keys written before.
fn only_duplicates(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::InsertMany(m) => {
            m.write_concern_error.is_none()
                && m.write_errors
                    .as_ref()
                    .is_some_and(|w| w.iter().all(|w| w.code == DUPLICATE))
        }
        _ => false,
    }
}

/// Settlement's MongoDB store.
#[derive(Clone)]
pub struct MongoStore {
    db: Database,
}

impl MongoStore {
    /// Connects to `url` and uses database `db`.
    pub async fn connect(url: &str, db: &str) -> Result<Self, StoreError> {
        let client = Client::with_uri_str(url).await?;
        Ok(Self {
            db: client.database(db),
        })
    }

    /// The database (tests drop it).
    pub fn database(&self) -> &Database {
        &self.db
    }

    fn coll(&self, name: &str) -> Collection<Document> {
        self.db.collection(name)
    }

    async fn insert_new(&self, name: &str, docs: Vec<Document>) -> Result<u64, StoreError> {
        if docs.is_empty() {
            return Ok(0);
        }
        let count = docs.len() as u64;
        match self.coll(name).insert_many(docs).ordered(false).await {
            Ok(r) => Ok(r.inserted_ids.len() as u64),
            Err(e) if only_duplicates(&e) => match e.kind.as_ref() {
                ErrorKind::InsertMany(m) => {
                    Ok(count - m.write_errors.as_ref().map_or(0, |w| w.len() as u64))
                }
                _ => Ok(0),
            },
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait]
impl SettleStore for MongoStore {
    async fn prepare(&self) -> Result<(), StoreError> {
        let index = |keys: Document| IndexModel::builder().keys(keys).build();
        self.coll("orders")
            .create_index(index(doc! { "account": 1, "version": -1 }))
            .await?;
        self.coll("ledger")
            .create_index(index(doc! { "account": 1, "time": -1 }))
            .await?;
        self.coll("trades")
            .create_index(index(doc! { "symbol": 1, "time": -1 }))
            .await?;
        self.coll("balances")
            .create_index(
                IndexModel::builder()
                    .keys(doc! { "account": 1, "asset": 1 })
                    .options(IndexOptions::builder().unique(true).build())
                    .build(),
            )
            .await?;
        Ok(())
    }

    async fn settle(&self, batch: &SettleBatch) -> Result<Written, StoreError> {
        let mut written = Written {
            trades: self
                .insert_new("trades", batch.trades.iter().map(trade_doc).collect())
                .await?,
            ledger: self
                .insert_new("ledger", batch.ledger.iter().map(ledger_doc).collect())
                .await?,
            ..Written::default()
        };
        // Each order and each balance appears once per batch, so their updates are independent:
        // they go out concurrently (a collection-level bulk update needs MongoDB 8's
        // client-wide bulkWrite; this works on every deployment).
        let orders = self.coll("orders");
        let mut updates = Vec::with_capacity(batch.orders.len());
        for o in &batch.orders {
            let (filter, update) = order_update(o);
            updates.push(orders.update_one(filter, update).upsert(true).into_future());
        }
        let results: Vec<_> = futures_util::stream::iter(updates)
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        written.orders = results
            .iter()
            .map(|r| r.modified_count + u64::from(r.upserted_id.is_some()))
            .sum();
        let mut per_balance: BTreeMap<(u64, String, String), Vec<(i64, Decimal)>> = BTreeMap::new();
        for p in &batch.ledger {
            per_balance
                .entry((p.entry.account, p.entry.asset.clone(), p.source.clone()))
                .or_default()
                .push((p.pos, p.entry.amount));
        }
        // One update per balance and source: entries of two sources for one balance would race
        // on the same document, which is still right (each update is atomic and adds only the
        // entries its source has not added), just not faster.
        let balances = self.coll("balances");
        let mut updates = Vec::with_capacity(per_balance.len());
        for ((account, asset, source), entries) in per_balance {
            let (filter, update) = balance_update(account, &asset, &source, &entries);
            updates.push(
                balances
                    .update_one(filter, update)
                    .upsert(true)
                    .into_future(),
            );
        }
        let _: Vec<_> = futures_util::stream::iter(updates)
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        Ok(written)
    }

    async fn balances(&self) -> Result<Vec<BalanceRow>, StoreError> {
        let docs: Vec<Document> = self
            .coll("balances")
            .find(doc! {})
            .await?
            .try_collect()
            .await?;
        let mut out = docs
            .iter()
            .map(|d| {
                Ok(BalanceRow {
                    account: int(d, "account")?,
                    asset: text(d, "asset")?,
                    total: undec(d.get("total"))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort();
        Ok(out)
    }

    async fn ledger_totals(&self) -> Result<Vec<BalanceRow>, StoreError> {
        let pipeline = vec![doc! {
            "$group": {
                "_id": { "account": "$account", "asset": "$asset" },
                "total": { "$sum": "$amount" },
            }
        }];
        let docs: Vec<Document> = self
            .coll("ledger")
            .aggregate(pipeline)
            .await?
            .try_collect()
            .await?;
        let mut out = docs
            .iter()
            .map(|d| {
                let id = d
                    .get_document("_id")
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                Ok(BalanceRow {
                    account: int(id, "account")?,
                    asset: text(id, "asset")?,
                    total: undec(d.get("total"))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort();
        Ok(out)
    }

    async fn order(&self, order_id: u64) -> Result<Option<OrderEvent>, StoreError> {
        self.coll("orders")
            .find_one(doc! { "_id": order_id as i64 })
            .await?
            .as_ref()
            .map(order_of)
            .transpose()
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        Ok(Counts {
            trades: self.coll("trades").count_documents(doc! {}).await?,
            orders: self.coll("orders").count_documents(doc! {}).await?,
            ledger: self.coll("ledger").count_documents(doc! {}).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exchange_core::stream::LedgerKind;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn order() -> OrderEvent {
        OrderEvent {
            order_id: 1 << 48 | 7,
            account: 42,
            symbol: "BTC-USD".into(),
            client_order_id: Some("$not-a-field-path".into()),
            side: Side::Sell,
            order_type: "LIMIT".into(),
            price: Some(d("65000.50")),
            quantity: Some(d("0.12345678")),
            status: "PARTIALLY_FILLED".into(),
            cancel_reason: None,
            filled_quantity: d("0.1"),
            filled_quote: d("6500.050"),
            created: 1_700_000_000_000_000_000,
            updated: 1_700_000_000_500_000_000,
            version: 99,
        }
    }

    #[test]
    fn decimals_round_trip_exactly_through_decimal128() {
        for s in [
            "0",
            "0.00000001",
            "-12.5",
            "65000.50",
            "79228162514264337593543950335",
        ] {
            assert_eq!(undec(Some(&dec(d(s)))).unwrap(), d(s), "{s}");
        }
        assert!(
            undec(Some(&Bson::Double(1.5))).is_err(),
            "doubles are refused"
        );
    }

    #[test]
    fn orders_round_trip_through_their_documents() {
        let o = order();
        let doc = order_doc(&o);
        assert_eq!(doc.get_i64("_id").unwrap(), o.order_id as i64);
        assert!(matches!(doc.get("price"), Some(Bson::Decimal128(_))));
        assert_eq!(order_of(&doc).unwrap(), o);
        let market = OrderEvent {
            price: None,
            quantity: None,
            order_type: "MARKET".into(),
            client_order_id: None,
            ..o
        };
        assert_eq!(order_of(&order_doc(&market)).unwrap(), market);
    }

    #[test]
    fn an_order_update_keeps_the_higher_version_and_quotes_the_document() {
        let (filter, update) = order_update(&order());
        assert_eq!(filter, doc! { "_id": (1_i64 << 48) | 7 });
        let UpdateModifications::Pipeline(stages) = update else {
            panic!("a pipeline update")
        };
        let cond = stages[0]
            .get_document("$replaceWith")
            .unwrap()
            .get_array("$cond")
            .unwrap();
        let gt = cond[0].as_document().unwrap().get_array("$gt").unwrap();
        assert_eq!(gt[0], Bson::Int64(99));
        // The new document is a literal: a client order id starting with `$` stays a string.
        let literal = cond[1]
            .as_document()
            .unwrap()
            .get_document("$literal")
            .unwrap();
        assert_eq!(
            literal.get_str("client_order_id").unwrap(),
            "$not-a-field-path"
        );
        assert_eq!(cond[2], Bson::String("$$ROOT".into()));
    }

    #[test]
    fn ledger_and_balance_documents_carry_their_positions() {
        let p = Posted {
            source: "shard-3".into(),
            pos: (17 << 20) | 2,
            entry: LedgerEvent {
                entry_id: "fee:5:taker".into(),
                account: 9,
                asset: "USD".into(),
                amount: d("-0.0650005"),
                kind: LedgerKind::Fee,
                reference: "5".into(),
                symbol: Some("BTC-USD".into()),
                time: 1_700_000_000_000_000_000,
            },
        };
        let doc = ledger_doc(&p);
        assert_eq!(doc.get_str("_id").unwrap(), "9/fee:5:taker");
        assert_eq!(undec(doc.get("amount")).unwrap(), d("-0.0650005"));
        assert_eq!(doc.get_i64("pos").unwrap(), (17 << 20) | 2);

        let (filter, update) = balance_update(
            9,
            "USD",
            "shard-3",
            &[(p.pos, p.entry.amount), (p.pos + 1, d("1"))],
        );
        assert_eq!(filter, doc! { "_id": "9/USD" });
        let UpdateModifications::Pipeline(stages) = update else {
            panic!("a pipeline update")
        };
        let set = stages[0].get_document("$set").unwrap();
        let max = set
            .get_document("applied.shard-3")
            .unwrap()
            .get_array("$max")
            .unwrap();
        assert_eq!(max[1], Bson::Int64(p.pos + 1));
        let text = format!("{set}");
        assert!(text.contains("$applied.shard-3"), "{text}");
    }
}
