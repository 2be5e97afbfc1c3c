//! The bots: a market maker per symbol and two takers, trading through the signed public API.
//! Prices and sizes are whole ticks and lots, turned into decimal strings at the edge.

use crate::seed::DemoAccounts;
use crate::{DemoError, Symbol};
use exchange_client::{Client, Credentials};
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Levels the maker quotes on each side.
const LEVELS: u64 = 6;

/// A small, seedable random source (xorshift64*): the demo needs variety, not secrecy.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// Where a symbol's price starts when it has never traded.
fn reference_price(s: &Symbol) -> Decimal {
    let known = match s.symbol.as_str() {
        "BTC-USD" => Some("65000"),
        "ETH-USD" => Some("3500"),
        "SOL-USD" => Some("150"),
        "ETH-BTC" => Some("0.054"),
        _ => None,
    };
    known
        .and_then(|p| p.parse().ok())
        .unwrap_or(s.tick_size * Decimal::from(10_000))
}

/// A symbol in integer steps: the price in ticks, sizes in lots.
#[derive(Clone)]
struct Market {
    rules: Symbol,
    /// Where the price wanders back to, in ticks.
    home: u64,
}

impl Market {
    fn price(&self, ticks: u64) -> String {
        (self.rules.tick_size * Decimal::from(ticks))
            .normalize()
            .to_string()
    }
    fn qty(&self, lots: u64) -> String {
        (self.rules.lot_size * Decimal::from(lots))
            .normalize()
            .to_string()
    }
    /// The lots of an order worth between 20 and 400 times the minimum notional at `ticks`.
    fn lots(&self, rng: &mut Rng, ticks: u64) -> u64 {
        let r = &self.rules;
        let notional =
            r.min_notional.max(r.tick_size * r.lot_size) * Decimal::from(rng.range(20, 400));
        let per_lot = r.tick_size * Decimal::from(ticks) * r.lot_size;
        let min_lots = (r.min_quantity / r.lot_size).ceil();
        let lots = (notional / per_lot).floor().max(min_lots);
        u64::try_from(lots).unwrap_or(1).max(1)
    }
    /// A quote amount worth `lots` at `ticks`, in whole notional units (tick × lot).
    fn quote(&self, ticks: u64, lots: u64) -> String {
        let unit = self.rules.tick_size * self.rules.lot_size;
        (unit * Decimal::from(ticks) * Decimal::from(lots))
            .normalize()
            .to_string()
    }
}

/// The running bots.
pub struct Bots {
    tasks: JoinSet<()>,
}

impl Bots {
    /// Starts the bots against the exchange at `base`; they stop when `stop` turns true.
    pub async fn start(
        base: &str,
        symbols: &[Symbol],
        accounts: &DemoAccounts,
        stop: watch::Receiver<bool>,
    ) -> Result<Self, DemoError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(exchange_client::ClientError::Http)?;
        let client = |c: &Credentials| Client::with_http(http.clone(), base, c.clone());
        let mut markets = Vec::new();
        for s in symbols {
            let (_, ticker) = client(&accounts.maker)
                .send(Method::GET, &format!("/market-data/{}", s.symbol), None)
                .await?;
            let last = ticker["last_price"]
                .as_str()
                .and_then(|p| p.parse::<Decimal>().ok());
            let price = last.unwrap_or_else(|| reference_price(s));
            let home = u64::try_from((price / s.tick_size).round())
                .unwrap_or(10_000)
                .max(100);
            markets.push(Market {
                rules: s.clone(),
                home,
            });
        }
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(7, |d| d.as_nanos() as u64);
        let mut tasks = JoinSet::new();
        for (i, m) in markets.iter().enumerate() {
            let maker = client(&accounts.maker);
            tasks.spawn(make(
                maker,
                m.clone(),
                Rng::new(seed ^ (i as u64 + 1) << 8),
                stop.clone(),
            ));
        }
        for (i, t) in accounts.takers.iter().enumerate() {
            tasks.spawn(take(
                client(t),
                markets.clone(),
                Rng::new(seed ^ (0x1000 + i as u64)),
                stop.clone(),
            ));
        }
        Ok(Self { tasks })
    }

    /// Waits for every bot to finish (after the stop signal).
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Sleeps for `ms`, or returns false as soon as the demo is told to stop.
async fn pause(stop: &mut watch::Receiver<bool>, ms: u64) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = stop.changed() => !*stop.borrow(),
        _ = tokio::time::sleep(Duration::from_millis(ms)) => true,
    }
}

fn id_of(answer: &Value) -> Option<String> {
    answer["order_id"].as_str().map(str::to_owned)
}

/// The market maker of one symbol: every second or so the price takes a step (drawn back
/// toward home), new quotes go in on both sides, then the previous ones are cancelled. The
/// new quotes expire any of its old ones they would cross, so it never trades with itself.
async fn make(client: Client, m: Market, mut rng: Rng, mut stop: watch::Receiver<bool>) {
    let path = format!("/orders?symbol={}", m.rules.symbol);
    // Quotes a previous run left.
    let _ = client.send(Method::DELETE, &path, None).await;
    let mut mid = m.home;
    let mut live: Vec<String> = Vec::new();
    while pause(&mut stop, rng.range(700, 1500)).await {
        let step = (mid / 4000).max(1);
        let drift = rng.range(0, 6) as i64 - 3;
        let pull = if mid > m.home + 50 * step {
            -1
        } else if mid + 50 * step < m.home {
            1
        } else {
            0
        };
        mid = mid
            .saturating_add_signed((drift + pull) * step as i64)
            .max(LEVELS * step + 1);
        let mut placed = Vec::new();
        for level in 1..=LEVELS {
            for (side, ticks) in [("BUY", mid - level * step), ("SELL", mid + level * step)] {
                let order = json!({
                    "symbol": m.rules.symbol, "side": side, "type": "LIMIT",
                    "price": m.price(ticks), "quantity": m.qty(m.lots(&mut rng, ticks)),
                    "self_trade_prevention": "EXPIRE_MAKER",
                });
                match client.send(Method::POST, "/orders", Some(&order)).await {
                    Ok((status, answer)) if status < 300 => placed.extend(id_of(&answer)),
                    Ok((status, answer)) => tracing::debug!(status, %answer, "demo quote refused"),
                    Err(e) if *stop.borrow() => return drop(e),
                    Err(e) => tracing::warn!(error = %e, "demo maker"),
                }
            }
        }
        for id in live.drain(..) {
            let _ = client
                .send(Method::DELETE, &format!("/orders/{id}"), None)
                .await;
        }
        live = placed;
    }
}

/// A taker: now and then a market order on a random symbol and side.
async fn take(client: Client, markets: Vec<Market>, mut rng: Rng, mut stop: watch::Receiver<bool>) {
    while pause(&mut stop, rng.range(300, 1200)).await {
        let m = &markets[rng.range(0, markets.len() as u64 - 1) as usize];
        let lots = m.lots(&mut rng, m.home).div_ceil(3).max(1);
        let order = if rng.range(0, 1) == 0 {
            json!({"symbol": m.rules.symbol, "side": "BUY", "type": "MARKET", "quote_quantity": m.quote(m.home, lots)})
        } else {
            json!({"symbol": m.rules.symbol, "side": "SELL", "type": "MARKET", "quantity": m.qty(lots)})
        };
        match client.send(Method::POST, "/orders", Some(&order)).await {
            Ok((status, answer)) if status >= 300 => {
                tracing::debug!(status, %answer, "demo taker refused")
            }
            Ok(_) => {}
            Err(_) if *stop.borrow() => return,
            Err(e) => tracing::warn!(error = %e, "demo taker"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn btc() -> Market {
        Market {
            rules: Symbol {
                symbol: "BTC-USD".into(),
                base: "BTC".into(),
                quote: "USD".into(),
                tick_size: "0.01".parse().unwrap(),
                lot_size: "0.00001".parse().unwrap(),
                min_quantity: "0.00001".parse().unwrap(),
                min_notional: "1".parse().unwrap(),
            },
            home: 6_500_000,
        }
    }

    #[test]
    fn prices_and_sizes_are_whole_ticks_and_lots_within_the_rules() {
        let m = btc();
        assert_eq!(m.price(6_500_001), "65000.01");
        assert_eq!(m.qty(150), "0.0015");
        let mut rng = Rng::new(42);
        for _ in 0..1000 {
            let lots = m.lots(&mut rng, m.home);
            let notional =
                m.rules.tick_size * Decimal::from(m.home) * m.rules.lot_size * Decimal::from(lots);
            assert!(
                notional >= m.rules.min_notional,
                "{lots} lots is {notional}"
            );
            assert!(notional <= Decimal::from(401), "{lots} lots is {notional}");
        }
        // 0.01 × 0.00001 per unit: a quote amount is a whole number of them.
        let q: Decimal = m.quote(6_500_000, 3).parse().unwrap();
        assert_eq!(q, "1.95".parse::<Decimal>().unwrap());
    }

    #[test]
    fn the_random_source_stays_in_range_and_varies() {
        let mut rng = Rng::new(1);
        let draws: Vec<u64> = (0..200).map(|_| rng.range(3, 5)).collect();
        assert!(draws.iter().all(|d| (3..=5).contains(d)));
        assert!((3..=5).all(|v| draws.contains(&v)));
    }
}
