//! The frames a topic broadcasts to its connections: each upstream update turned into the
//! server's JSON once, whatever number of connections send it.

use super::protocol::{ServerMessage, TradeItem};
use crate::dto::millis;
use crate::dto::ticker_response;
use crate::feed::MarketUpdate;
use crate::{AppState, now};
use axum::extract::ws::Utf8Bytes;
use exchange_core::{Interval, Notional, Qty, SymbolSpec};

/// One frame for the connections of a topic, serialised once.
#[derive(Debug)]
pub enum Frame {
    Diff {
        first: u64,
        last: u64,
        text: Utf8Bytes,
    },
    Trades(Utf8Bytes),
    Ticker(Utf8Bytes),
    Candle {
        interval: usize,
        text: Utf8Bytes,
    },
    /// The topic itself fell behind its upstream: diffs and trades were lost.
    Gap,
}

/// A server message as the text a WebSocket frame carries.
pub fn text(m: &ServerMessage) -> Utf8Bytes {
    Utf8Bytes::from(m.to_text())
}

/// The book's level changes of an update.
pub fn diff_frame(spec: &SymbolSpec, u: &MarketUpdate) -> Frame {
    let changes = u
        .levels
        .iter()
        .map(|l| {
            (
                l.side.as_str(),
                spec.price_to_decimal(l.price).to_string(),
                spec.qty_to_decimal(l.qty).to_string(),
            )
        })
        .collect();
    Frame::Diff {
        first: u.first_seq,
        last: u.last_seq,
        text: text(&ServerMessage::Diff {
            channel: format!("book.{}", spec.name),
            first_seq: u.first_seq,
            last_seq: u.last_seq,
            changes,
            accepted_at_us: u.accepted.0 / 1_000,
        }),
    }
}

/// The trades of an update.
pub fn trades_frame(spec: &SymbolSpec, u: &MarketUpdate) -> Frame {
    let trades = u
        .trades
        .iter()
        .map(|(t, ts)| TradeItem {
            trade_id: t.trade_id.0.to_string(),
            price: spec.price_to_decimal(t.price).to_string(),
            quantity: spec.qty_to_decimal(t.qty).to_string(),
            taker_side: t.taker_side.as_str(),
            time: millis(*ts),
            accepted_at_us: ts.0 / 1_000,
        })
        .collect();
    Frame::Trades(text(&ServerMessage::Trades {
        channel: format!("trades.{}", spec.name),
        trades,
    }))
}

/// The symbol's 24-hour ticker now, read from its shard.
pub async fn ticker_frame(app: &AppState, spec: &SymbolSpec) -> Option<Frame> {
    let t = app.exchange.ticker(spec.id, now()).await.ok()??;
    Some(Frame::Ticker(text(&ServerMessage::Ticker {
        channel: format!("ticker.{}", spec.name),
        ticker: ticker_response(spec, &t),
    })))
}

/// The candle forming for `Interval::ALL[interval]`, read from the symbol's shard.
pub async fn candle_frame(app: &AppState, spec: &SymbolSpec, interval: usize) -> Option<Frame> {
    let i = Interval::ALL[interval];
    let (label, minutes) = (i.name(), i.minutes());
    let (start, c) = app.exchange.candle(spec.id, minutes, now()).await.ok()??;
    let price = |p| (c.trades > 0).then(|| spec.price_to_decimal(p).to_string());
    Some(Frame::Candle {
        interval,
        text: text(&ServerMessage::Candle {
            channel: format!("candles.{}.{label}", spec.name),
            interval: label,
            start: millis(start),
            open: price(c.open),
            high: price(c.high),
            low: price(c.low),
            close: price(c.close),
            volume: spec.qty_to_decimal(Qty(c.volume as u64)).to_string(),
            quote_volume: spec
                .notional_to_decimal(Notional(c.quote_volume))
                .to_string(),
            trades: c.trades,
        }),
    })
}
