//! The WebSocket fan-out benchmark behind the `wsfanout` binary.
//!
//! Opens many subscribers to one symbol's `book` and `trades` channels, then drives crossing
//! orders through the exchange at a fixed rate (two funded accounts, one resting a sell, the
//! other buying it, so every pair is a trade), and measures, for every message each subscriber
//! receives, the time from the order's acceptance by the gateway (`accepted_at_us`, stamped on
//! the message) to its receipt: p50, p99, p99.9, max, and messages delivered per second. With
//! the server's pid it also reports the server's resident memory per idle connection.

use crate::Latency;
use anyhow::{Context, bail};
use exchange_client::{Client as Signer, Credentials};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use reqwest::Method;
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::Message;

/// What to run.
#[derive(Clone, Debug)]
pub struct FanoutOptions {
    /// The gateway's base URL (`http://...`).
    pub url: String,
    pub subscribers: usize,
    pub symbol: String,
    /// The symbol's price to trade at.
    pub price: String,
    pub quantity: String,
    /// Orders per second (half sells, half buys that take them).
    pub rate: f64,
    pub duration: Duration,
    pub admin: Credentials,
    /// The server's pid, to read its resident memory.
    pub server_pid: Option<u32>,
}

/// The result.
#[derive(Clone, Debug, Serialize)]
pub struct FanoutSummary {
    pub subscribers: usize,
    pub orders: u64,
    pub duration_s: f64,
    pub messages: u64,
    pub messages_per_s: f64,
    /// Acceptance to receipt, per message, in milliseconds.
    pub latency_ms: Latency,
    /// Server resident memory added per idle connection, in KiB.
    pub server_kib_per_idle_connection: Option<f64>,
    /// Subscribers that lost their connection during the run.
    pub dropped: u64,
}

impl FanoutSummary {
    pub fn line(&self) -> String {
        let l = &self.latency_ms;
        format!(
            "wsfanout: {} subscribers, {} orders in {:.0} s: {} messages = {:.0} messages/s | acceptance to receipt p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms | server memory {} | dropped {}",
            self.subscribers,
            self.orders,
            self.duration_s,
            self.messages,
            self.messages_per_s,
            l.p50,
            l.p99,
            l.p999,
            l.max,
            self.server_kib_per_idle_connection
                .map_or("not measured".into(), |k| format!(
                    "{k:.1} KiB per idle connection"
                )),
            self.dropped
        )
    }
}

pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Every `"accepted_at_us":N` in a message, without parsing the whole JSON.
pub(crate) fn accepted_times(text: &str) -> impl Iterator<Item = u64> + '_ {
    const KEY: &str = "\"accepted_at_us\":";
    text.match_indices(KEY).filter_map(|(i, _)| {
        let rest = &text[i + KEY.len()..];
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    })
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

struct Shared {
    histogram: parking_lot::Mutex<Histogram<u64>>,
    messages: AtomicU64,
    dropped: AtomicU64,
    measuring: std::sync::atomic::AtomicBool,
}

async fn subscriber(
    url: String,
    symbol: String,
    ready: tokio::sync::mpsc::Sender<()>,
    shared: Arc<Shared>,
    stop: Arc<tokio::sync::Notify>,
) -> anyhow::Result<()> {
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await?;
    let sub = json!({"op": "subscribe", "channels": [format!("book.{symbol}"), format!("trades.{symbol}")]});
    ws.send(Message::text(sub.to_string())).await?;
    // Ready once the book snapshot is here.
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"snapshot\"") => break,
            Some(Ok(_)) => continue,
            _ => bail!("the connection ended before the snapshot"),
        }
    }
    ready.send(()).await.ok();
    let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut count = 0u64;
    loop {
        tokio::select! {
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    if shared.measuring.load(Ordering::Relaxed) {
                        let now = now_us();
                        for at in accepted_times(&t) {
                            local.saturating_record(now.saturating_sub(at).max(1));
                            count += 1;
                        }
                    }
                }
                Some(Ok(_)) => {}
                _ => {
                    shared.dropped.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            },
            _ = stop.notified() => break,
        }
    }
    shared.histogram.lock().add(&local)?;
    shared.messages.fetch_add(count, Ordering::Relaxed);
    Ok(())
}

/// Runs the benchmark.
pub async fn run_fanout(o: FanoutOptions) -> anyhow::Result<FanoutSummary> {
    let admin = Signer::new(o.url.clone(), o.admin.clone());
    // Two funded traders with keys.
    let mut traders = Vec::new();
    let tag = now_us();
    for i in 0..2 {
        let (_, a) = admin.send(Method::POST, "/admin/accounts", None).await?;
        let account = a["account"].as_str().context("an account")?.to_owned();
        for (asset, amount) in [
            ("USD", "1000000000"),
            ("BTC", "100000"),
            ("ETH", "1000000"),
            ("SOL", "100000000"),
        ] {
            let (s, body) = admin
                .send(
                    Method::POST,
                    "/admin/deposits",
                    Some(&json!({"id": format!("fanout-{tag}-{i}-{asset}"), "account": account, "asset": asset, "amount": amount})),
                )
                .await?;
            if s >= 300 {
                bail!("funding: {s} {body}");
            }
        }
        let (_, key) = admin
            .send(
                Method::POST,
                &format!("/admin/accounts/{account}/keys"),
                Some(&json!({})),
            )
            .await?;
        traders.push(admin.with_key(Credentials {
            account: account.parse()?,
            key_id: key["key_id"].as_str().context("a key")?.into(),
            secret: key["secret"].as_str().context("a secret")?.into(),
        }));
    }

    let rss_before = o.server_pid.and_then(rss_kib);
    let shared = Arc::new(Shared {
        histogram: parking_lot::Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
        messages: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        measuring: false.into(),
    });
    let stop = Arc::new(tokio::sync::Notify::new());
    let ws_url = format!("{}/ws", o.url.replacen("http", "ws", 1));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(o.subscribers.max(1));
    let mut tasks = Vec::with_capacity(o.subscribers);
    // Connect in waves, so the accept queue does not overflow.
    for wave in (0..o.subscribers).collect::<Vec<_>>().chunks(500) {
        for _ in wave {
            tasks.push(tokio::spawn(subscriber(
                ws_url.clone(),
                o.symbol.clone(),
                ready_tx.clone(),
                Arc::clone(&shared),
                Arc::clone(&stop),
            )));
        }
        for _ in wave {
            tokio::time::timeout(Duration::from_secs(30), ready_rx.recv())
                .await
                .context("subscribers did not get their snapshot within 30 s")?;
        }
    }
    drop(ready_tx);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = o.server_pid.and_then(rss_kib);
    let per_connection = match (rss_before, rss_idle) {
        (Some(b), Some(a)) if o.subscribers > 0 => {
            Some(a.saturating_sub(b) as f64 / o.subscribers as f64)
        }
        _ => None,
    };

    shared.measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / o.rate.max(0.1));
    let mut due = Instant::now();
    let mut orders = 0u64;
    let mut sent = Vec::new();
    // Open loop: each order goes at its time, whether or not the one before was answered.
    while started.elapsed() < o.duration {
        tokio::time::sleep_until(due.into()).await;
        due += interval;
        let (trader, side) = if orders.is_multiple_of(2) {
            (traders[0].clone(), "SELL")
        } else {
            (traders[1].clone(), "BUY")
        };
        let order = json!({"symbol": o.symbol, "side": side, "type": "LIMIT", "price": o.price, "quantity": o.quantity});
        sent.push(tokio::spawn(async move {
            trader.send(Method::POST, "/orders", Some(&order)).await
        }));
        orders += 1;
    }
    for s in sent {
        let (status, body) = s.await??;
        if status != 201 {
            bail!("an order was refused: {status} {body}");
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Let the last messages arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    shared.measuring.store(false, Ordering::Relaxed);
    stop.notify_waiters();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    let h = shared.histogram.lock();
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let messages = shared.messages.load(Ordering::Relaxed);
    Ok(FanoutSummary {
        subscribers: o.subscribers,
        orders,
        duration_s: elapsed,
        messages,
        messages_per_s: messages as f64 / elapsed,
        latency_ms: Latency {
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            p999: ms(0.999),
            max: h.max() as f64 / 1000.0,
        },
        server_kib_per_idle_connection: per_connection,
        dropped: shared.dropped.load(Ordering::Relaxed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acceptance_times_are_read_from_the_text() {
        let t = r#"{"trades":[{"accepted_at_us":12,"x":1},{"accepted_at_us":345}]}"#;
        assert_eq!(accepted_times(t).collect::<Vec<_>>(), vec![12, 345]);
        assert_eq!(accepted_times("{}").count(), 0);
    }
}
