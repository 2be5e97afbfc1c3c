//! Market data the shard keeps per symbol: recent trades and per-minute OHLCV for 24 hours.
//!
//! Built from trade events (deterministic, saved in snapshots). The 24-hour ticker merges the
//! minute buckets of the last 1,440 minutes as of the time it is asked.

use exchange_core::{Event, EventKind, Ohlcv, SymbolId, Timestamp, TradeRecord};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Trades kept per symbol for the recent-trades query.
pub const RECENT_TRADES: usize = 1_000;
const MINUTE_NS: u64 = 60_000_000_000;
const DAY_MINUTES: u64 = 24 * 60;

/// One symbol's market data.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SymbolMarket {
    trades: VecDeque<TradeRecord>,
    /// (minute since the epoch, what traded in it), oldest first, at most a day's worth.
    minutes: VecDeque<(u64, Ohlcv)>,
}

impl SymbolMarket {
    fn add(&mut self, t: TradeRecord) {
        if self.trades.len() == RECENT_TRADES {
            self.trades.pop_front();
        }
        self.trades.push_back(t);
        let minute = t.ts.0 / MINUTE_NS;
        match self.minutes.back_mut() {
            // A timestamp from a gateway whose clock is a little behind lands in the newest bucket.
            Some((m, bucket)) if *m >= minute => bucket.add(t.price, t.qty),
            _ => {
                let mut bucket = Ohlcv::default();
                bucket.add(t.price, t.qty);
                self.minutes.push_back((minute, bucket));
            }
        }
        while self
            .minutes
            .front()
            .is_some_and(|(m, _)| m + DAY_MINUTES < minute)
        {
            self.minutes.pop_front();
        }
    }

    /// The most recent trades, newest first.
    pub fn recent(&self, limit: usize) -> Vec<TradeRecord> {
        self.trades.iter().rev().take(limit).copied().collect()
    }

    /// The last trade.
    pub fn last(&self) -> Option<TradeRecord> {
        self.trades.back().copied()
    }

    /// The candle of `minutes` minutes (at most a day) that `now` falls in: its start (aligned
    /// to the epoch) and what traded in it so far.
    pub fn candle(&self, minutes: u64, now: Timestamp) -> (Timestamp, Ohlcv) {
        let minutes = minutes.clamp(1, DAY_MINUTES);
        let now_minute = now.0 / MINUTE_NS;
        let start = now_minute - now_minute % minutes;
        let mut candle = Ohlcv::default();
        for (m, bucket) in &self.minutes {
            if *m >= start {
                candle.merge(bucket);
            }
        }
        (Timestamp(start * MINUTE_NS), candle)
    }

    /// What traded in the 24 hours up to `now`.
    pub fn day(&self, now: Timestamp) -> Ohlcv {
        let now_minute = now.0 / MINUTE_NS;
        let mut day = Ohlcv::default();
        for (m, bucket) in &self.minutes {
            if m + DAY_MINUTES > now_minute {
                day.merge(bucket);
            }
        }
        day
    }
}

/// Market data of every symbol a shard holds, indexed by symbol id.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MarketState {
    symbols: Vec<SymbolMarket>,
}

impl MarketState {
    /// Market data for `count` symbols.
    pub fn new(count: usize) -> Self {
        Self {
            symbols: vec![SymbolMarket::default(); count],
        }
    }

    /// Folds one engine event in (only trades matter).
    pub fn apply_event(&mut self, e: &Event) {
        if let EventKind::Trade(t) = e.kind
            && let Some(m) = self.symbols.get_mut(e.symbol.0 as usize)
        {
            m.add(TradeRecord {
                trade_id: t.trade_id,
                price: t.price,
                qty: t.qty,
                taker_side: t.taker_side,
                ts: e.ts,
            });
        }
    }

    /// One symbol's market data.
    pub fn symbol(&self, symbol: SymbolId) -> Option<&SymbolMarket> {
        self.symbols.get(symbol.0 as usize)
    }

    /// Grows to hold symbols added to the symbols file since a snapshot.
    pub(crate) fn ensure(&mut self, count: usize) {
        if self.symbols.len() < count {
            self.symbols.resize(count, SymbolMarket::default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exchange_core::{Price, Qty, Side, TradeId};

    fn trade(n: u64, price: u64, minute: u64) -> TradeRecord {
        TradeRecord {
            trade_id: TradeId(n),
            price: Price(price),
            qty: Qty(1),
            taker_side: Side::Buy,
            ts: Timestamp(minute * MINUTE_NS + 5),
        }
    }

    #[test]
    fn day_stats_cover_the_last_24_hours_only() {
        let mut m = SymbolMarket::default();
        m.add(trade(1, 50, 0));
        m.add(trade(2, 100, 4));
        m.add(trade(3, 90, 1_000));
        m.add(trade(4, 95, 1_445));
        let day = m.day(Timestamp(1_445 * MINUTE_NS));
        // Minutes 0 and 4 are more than a day before minute 1445 and drop out.
        assert_eq!(
            (day.open, day.high, day.low, day.close, day.trades),
            (Price(90), Price(95), Price(90), Price(95), 2)
        );
        assert_eq!(
            m.recent(2).iter().map(|t| t.trade_id.0).collect::<Vec<_>>(),
            vec![4, 3]
        );
        assert_eq!(m.last().unwrap().trade_id, TradeId(4));
        assert!(m.minutes.len() <= 3);
    }

    #[test]
    fn recent_trades_are_bounded() {
        let mut m = SymbolMarket::default();
        for i in 0..(RECENT_TRADES as u64 + 10) {
            m.add(trade(i, 1, 0));
        }
        assert_eq!(m.recent(usize::MAX).len(), RECENT_TRADES);
        assert_eq!(m.recent(1)[0].trade_id.0, RECENT_TRADES as u64 + 9);
    }
}
