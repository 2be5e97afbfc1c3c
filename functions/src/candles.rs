//! OHLCV candles: the six intervals, bucketing, and folding trades into candles.
//!
//! A candle remembers the ids of its first and last trades, so two partial candles of the same
//! bucket merge into the right one whatever order they are merged in (the open is the first
//! trade's price, the close the last's), and a store can merge what it has with a batch's.

pub use exchange_core::Interval;
use exchange_core::stream::TradeEvent;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One symbol's candle of one interval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candle {
    pub symbol: String,
    pub interval: Interval,
    /// Milliseconds since the epoch.
    pub start: u64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    /// Base volume.
    pub volume: Decimal,
    /// Quote volume: the sum of price × quantity.
    pub quote_volume: Decimal,
    pub trades: u64,
    pub first_trade_id: u64,
    pub last_trade_id: u64,
}

impl Candle {
    /// The candle of one trade.
    pub fn of(t: &TradeEvent, interval: Interval) -> Self {
        Self {
            symbol: t.symbol.clone(),
            interval,
            start: interval.bucket(t.time),
            open: t.price,
            high: t.price,
            low: t.price,
            close: t.price,
            volume: t.quantity,
            quote_volume: t.price * t.quantity,
            trades: 1,
            first_trade_id: t.trade_id,
            last_trade_id: t.trade_id,
        }
    }

    /// Folds `other` (the same symbol, interval and bucket, other trades) into this one.
    pub fn merge(&mut self, other: &Candle) {
        debug_assert_eq!(
            (&self.symbol, self.interval, self.start),
            (&other.symbol, other.interval, other.start)
        );
        if other.first_trade_id < self.first_trade_id {
            self.open = other.open;
            self.first_trade_id = other.first_trade_id;
        }
        if other.last_trade_id > self.last_trade_id {
            self.close = other.close;
            self.last_trade_id = other.last_trade_id;
        }
        self.high = self.high.max(other.high);
        self.low = self.low.min(other.low);
        self.volume += other.volume;
        self.quote_volume += other.quote_volume;
        self.trades += other.trades;
    }
}

/// The key of a candle: symbol, interval, bucket start.
pub type CandleKey = (String, Interval, u64);

/// The candles of every interval that `trades` make, keyed by symbol, interval and bucket.
pub fn fold<'a>(trades: impl IntoIterator<Item = &'a TradeEvent>) -> BTreeMap<CandleKey, Candle> {
    let mut out: BTreeMap<CandleKey, Candle> = BTreeMap::new();
    for t in trades {
        for interval in Interval::ALL {
            let c = Candle::of(t, interval);
            match out.get_mut(&(c.symbol.clone(), interval, c.start)) {
                Some(have) => have.merge(&c),
                None => {
                    out.insert((c.symbol.clone(), interval, c.start), c);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use exchange_core::Side;
    use std::str::FromStr;

    fn trade(id: u64, minute: u64, price: &str, qty: &str) -> TradeEvent {
        TradeEvent {
            symbol: "BTC-USD".into(),
            trade_id: id,
            price: Decimal::from_str(price).unwrap(),
            quantity: Decimal::from_str(qty).unwrap(),
            taker_side: Side::Buy,
            maker_order_id: 1,
            taker_order_id: 2,
            maker_account: 1,
            taker_account: 2,
            time: minute * 60_000_000_000 + 1,
        }
    }

    #[test]
    fn folding_gives_hand_computed_ohlcv() {
        let trades = [
            trade(1, 0, "100.5", "1"),
            trade(2, 0, "101", "0.5"),
            trade(3, 1, "99", "2"),
            trade(4, 5, "102", "1"),
        ];
        let c = fold(&trades);
        let m1 = &c[&("BTC-USD".into(), Interval::M1, 0)];
        assert_eq!(
            (m1.open, m1.high, m1.low, m1.close),
            (
                Decimal::from_str("100.5").unwrap(),
                Decimal::from(101),
                Decimal::from_str("100.5").unwrap(),
                Decimal::from(101)
            )
        );
        assert_eq!(m1.volume, Decimal::from_str("1.5").unwrap());
        assert_eq!(m1.quote_volume, Decimal::from_str("151").unwrap());
        let m5 = &c[&("BTC-USD".into(), Interval::M5, 0)];
        assert_eq!(
            (m5.open, m5.close, m5.low, m5.trades),
            (
                Decimal::from_str("100.5").unwrap(),
                Decimal::from(99),
                Decimal::from(99),
                3
            )
        );
        let m5b = &c[&("BTC-USD".into(), Interval::M5, 300_000)];
        assert_eq!((m5b.open, m5b.trades), (Decimal::from(102), 1));
        assert_eq!(c[&("BTC-USD".into(), Interval::D1, 0)].trades, 4);
        // 4 one-minute buckets (0, 1, 5), 2 five-minute, one each of the rest.
        assert_eq!(c.len(), 3 + 2 + 4);
    }

    #[test]
    fn merging_in_any_order_gives_the_same_candle() {
        let trades = [
            trade(7, 0, "10", "1"),
            trade(8, 0, "12", "1"),
            trade(9, 0, "9", "1"),
        ];
        let whole = fold(&trades);
        let key = ("BTC-USD".to_string(), Interval::M1, 0);
        let late = fold(&trades[1..]);
        let mut merged = late[&key].clone();
        merged.merge(&fold(&trades[..1])[&key]);
        assert_eq!(merged, whole[&key]);
        assert_eq!(
            (merged.open, merged.close),
            (Decimal::from(10), Decimal::from(9))
        );
    }
}
