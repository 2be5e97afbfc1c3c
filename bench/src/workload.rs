//! The orders a run sends: limit orders spread around a mid on several symbols, or market
//! making around a moving mid.

use super::*;

/// The next order of `client`, and which of the `accounts` places it.
pub(crate) fn order(
    symbols: &[(String, u64)],
    accounts: u64,
    client: usize,
    n: u64,
) -> (usize, Value) {
    // A deterministic spread of prices within ±0.5% of the mid; buyers and sellers overlap, so
    // many orders trade.
    let (name, mid) = &symbols[(n as usize + client) % symbols.len()];
    let h = (n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ client as u64).rotate_left(17);
    let side = if h.is_multiple_of(2) { "BUY" } else { "SELL" };
    let offset = (h >> 8) % 100;
    let price = mid * 1000 - mid * 5 + mid * offset / 10;
    let trader = ((h >> 20) % accounts) as usize;
    let body = json!({
        "symbol": name,
        "side": side,
        "type": "LIMIT",
        "price": format!("{}.{:02}", price / 1000, (price % 1000) / 10),
        "quantity": "0.0100",
    });
    (trader, body)
}

/// A quote a market-making client has resting: who placed it and its index among the acks.
pub(crate) struct Quote {
    pub(crate) trader: usize,
    pub(crate) order_id: String,
    pub(crate) side: &'static str,
    pub(crate) ack: Option<usize>,
}

/// The mid of `mid` (whole units) at `t`, moving ±0.2% over a 30-second cycle, in hundredths.
pub(crate) fn moving_mid(mid: u64, t: Duration) -> u64 {
    let phase = (t.as_secs_f64() / 30.0 * std::f64::consts::TAU).sin();
    // The float only shapes the load; every price sent is a whole number of cents.
    ((mid * 100) as f64 * (1.0 + 0.002 * phase)).round() as u64
}

pub(crate) fn cents(c: u64) -> String {
    format!("{}.{:02}", c / 100, c % 100)
}

/// What to send next in a market-making flow.
pub(crate) enum MmStep {
    Place(usize, Value, &'static str),
    Amend(usize, String, Value),
    Cancel(usize, String),
}

pub(crate) fn mm_step(
    o: &Options,
    mix: (u8, u8, u8),
    quotes: &[Quote],
    client: usize,
    n: u64,
    elapsed: Duration,
) -> (MmStep, Option<usize>) {
    let (amend, place, ioc) = mix;
    let h = (n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ client as u64).rotate_left(29);
    let roll = (h % 100) as u8;
    let (name, mid) = &o.symbols[(h >> 8) as usize % o.symbols.len()];
    let mid = moving_mid(*mid, elapsed);
    // Quotes a few ticks off the mid; takers cross it.
    let off = mid / 10_000 * (1 + (h >> 16) % 20);
    let buy = (h >> 40).is_multiple_of(2);
    let trader = ((h >> 20) % o.accounts) as usize;
    let pick = (h >> 32) as usize;
    let quote = |side: &'static str| {
        let price = if side == "BUY" { mid - off } else { mid + off };
        json!({"symbol": name, "side": side, "type": "LIMIT", "price": cents(price), "quantity": "0.0100"})
    };
    if quotes.is_empty() || (roll >= amend && roll < amend + place) {
        let side = if buy { "BUY" } else { "SELL" };
        return (MmStep::Place(trader, quote(side), side), None);
    }
    if roll >= amend + place && roll < amend + place + ioc {
        let (side, price) = if buy {
            ("BUY", mid + off)
        } else {
            ("SELL", mid - off)
        };
        let body = json!({"symbol": name, "side": side, "type": "LIMIT", "time_in_force": "IOC", "price": cents(price), "quantity": "0.0100"});
        return (MmStep::Place(trader, body, ""), None);
    }
    let i = pick % quotes.len();
    let q = &quotes[i];
    if roll < amend {
        let price = quote(q.side)["price"].clone();
        (
            MmStep::Amend(q.trader, q.order_id.clone(), json!({"price": price})),
            Some(i),
        )
    } else {
        (MmStep::Cancel(q.trader, q.order_id.clone()), Some(i))
    }
}
