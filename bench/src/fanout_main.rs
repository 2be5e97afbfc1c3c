//! `wsfanout`: opens many WebSocket subscribers to one symbol, drives trades through the
//! exchange and prints the acceptance-to-receipt latency of what they receive. The work is in
//! the library (`exchange_bench::fanout`).

use anyhow::Context;
use clap::Parser;
use std::time::Duration;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// WebSocket fan-out benchmark.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The gateway's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Concurrent subscribers to the symbol's book and trades.
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    #[arg(long, default_value = "BTC-USD")]
    symbol: String,
    /// Price the orders trade at.
    #[arg(long, default_value = "65000.00")]
    price: String,
    #[arg(long, default_value = "0.00100")]
    quantity: String,
    /// Orders per second (every second one takes the one before: a trade).
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Seconds of orders.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// The exchange's admin key file.
    #[arg(long, default_value = "./data/admin-key.json")]
    admin_key_file: std::path::PathBuf,
    /// The exchange's pid, to report its memory per idle connection.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Write the summary as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let summary = exchange_bench::fanout::run_fanout(exchange_bench::fanout::FanoutOptions {
        url: args.url,
        subscribers: args.subscribers,
        symbol: args.symbol,
        price: args.price,
        quantity: args.quantity,
        rate: args.rate,
        duration: Duration::from_secs(args.duration),
        admin: exchange_client::read_credentials(&args.admin_key_file)?,
        server_pid: args.server_pid,
    })
    .await?;
    println!("{}", summary.line());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
