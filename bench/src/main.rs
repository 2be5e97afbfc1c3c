//! `loadgen`: places orders on a running exchange over HTTP/1.1 keep-alive from many concurrent
//! clients and reports orders per second and latency percentiles (HDR histogram).
//!
//! Closed loop: each client sends its next order as soon as the previous one is answered, so
//! the figure is the exchange's capacity at that concurrency. Every order is a limit order near
//! a slowly moving mid, on several symbols, from many accounts, so orders rest, cross and trade.

use anyhow::{Context, bail};
use clap::Parser;

/// mimalloc: the server allocates per request, and glibc malloc showed at ~12% of its time.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use hdrhistogram::Histogram;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Load generator for the exchange's REST API.
#[derive(Parser, Debug, Clone)]
#[command(version, about)]
struct Args {
    /// Base URL of a gateway (repeat for several; clients are spread over them).
    #[arg(long = "url", default_value = "http://127.0.0.1:8080")]
    urls: Vec<String>,
    /// Concurrent clients (each keeps one request in flight).
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// How long to run, in seconds (after a one-second warm-up).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Symbols to trade, with their mid price (SYMBOL=MID).
    #[arg(long = "symbol", default_values_t = ["BTC-USD=65000".to_string(), "ETH-USD=3000".to_string(), "SOL-USD=150".to_string()])]
    symbols: Vec<String>,
    /// Accounts to spread the orders over.
    #[arg(long, default_value_t = 1000)]
    accounts: u64,
    /// Write the summary as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

struct Symbol {
    name: String,
    mid: u64,
}

/// What one client saw.
struct Tally {
    latency: Histogram<u64>,
    outcomes: BTreeMap<String, u64>,
}

fn order(symbols: &[Symbol], accounts: u64, client: usize, n: u64) -> serde_json::Value {
    // A deterministic spread of prices within ±0.5% of the mid; buyers and sellers overlap, so
    // about a third of the orders trade.
    let s = &symbols[(n as usize + client) % symbols.len()];
    let h = (n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ client as u64).rotate_left(17);
    let side = if h.is_multiple_of(2) { "BUY" } else { "SELL" };
    let offset = (h >> 8) % 100;
    let price = s.mid * 1000 - s.mid * 5 + s.mid * offset / 10;
    json!({
        "account": 1 + (h >> 20) % accounts,
        "symbol": s.name,
        "side": side,
        "type": "LIMIT",
        "price": format!("{}.{:02}", price / 1000, (price % 1000) / 10),
        "quantity": "0.0100",
    })
}

async fn client(
    args: Args,
    symbols: std::sync::Arc<Vec<Symbol>>,
    id: usize,
    start: Instant,
    warmup: Duration,
    stop: Instant,
) -> anyhow::Result<Tally> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(30))
        .build()?;
    let url = format!("{}/orders", args.urls[id % args.urls.len()]);
    let mut tally = Tally {
        latency: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        outcomes: BTreeMap::new(),
    };
    let mut n = 0u64;
    while Instant::now() < stop {
        n += 1;
        let body = order(&symbols, args.accounts, id, n);
        let sent = Instant::now();
        let outcome = match http.post(&url).json(&body).send().await {
            Ok(resp) => {
                let status = resp.status();
                let _ = resp.bytes().await;
                status.as_u16().to_string()
            }
            Err(e) if e.is_timeout() => "timeout".into(),
            Err(_) => "connection error".into(),
        };
        if sent.duration_since(start) >= warmup {
            tally
                .latency
                .saturating_record(sent.elapsed().as_micros() as u64);
            *tally.outcomes.entry(outcome).or_default() += 1;
        }
    }
    Ok(tally)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let symbols: Vec<Symbol> = args
        .symbols
        .iter()
        .map(|s| {
            let (name, mid) = s.split_once('=').context("--symbol takes SYMBOL=MID")?;
            Ok(Symbol {
                name: name.to_owned(),
                mid: mid.parse().context("the mid is a whole number")?,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    if symbols.is_empty() || args.clients == 0 {
        bail!("need at least one symbol and one client");
    }
    let symbols = std::sync::Arc::new(symbols);
    let warmup = Duration::from_secs(1);
    let start = Instant::now();
    let stop = start + warmup + Duration::from_secs(args.duration);
    let tasks: Vec<_> = (0..args.clients)
        .map(|id| {
            tokio::spawn(client(
                args.clone(),
                symbols.clone(),
                id,
                start,
                warmup,
                stop,
            ))
        })
        .collect();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut outcomes = BTreeMap::<String, u64>::new();
    for t in tasks {
        let tally = t.await??;
        latency.add(&tally.latency)?;
        for (k, v) in tally.outcomes {
            *outcomes.entry(k).or_default() += v;
        }
    }
    let total: u64 = outcomes.values().sum();
    let accepted = outcomes.get("201").copied().unwrap_or(0);
    let per_sec = accepted as f64 / args.duration as f64;
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "loadgen: {} clients, {} s: {accepted} orders accepted of {total} sent = {per_sec:.0} orders/s | latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms | outcomes {outcomes:?}",
        args.clients,
        args.duration,
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        latency.max() as f64 / 1000.0,
    );
    if let Some(path) = &args.json {
        let summary = json!({
            "clients": args.clients,
            "duration_s": args.duration,
            "sent": total,
            "accepted": accepted,
            "orders_per_s": per_sec,
            "latency_ms": { "p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99), "p999": ms(0.999), "max": latency.max() as f64 / 1000.0 },
            "outcomes": outcomes,
        });
        std::fs::write(path, serde_json::to_string_pretty(&summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
