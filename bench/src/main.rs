//! `loadgen`: places orders on a running exchange and prints orders per second and latency
//! percentiles; with `--verify`, reads every acknowledged order back and fails on any mismatch.
//! The work is in the library (`exchange_bench::run`); this parses flags and prints.

use anyhow::Context;
use clap::Parser;
use std::time::Duration;

/// mimalloc: the load generator allocates per request too.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// How long to measure, in seconds (after a one-second warm-up).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Symbols to trade, with their mid price (SYMBOL=MID).
    #[arg(long = "symbol", default_values_t = ["BTC-USD=65000".to_string(), "ETH-USD=3000".to_string(), "SOL-USD=150".to_string()])]
    symbols: Vec<String>,
    /// Accounts to create, fund and spread the orders over.
    #[arg(long, default_value_t = 100)]
    accounts: u64,
    /// The exchange's admin key file (it writes one to its data directory on first start).
    #[arg(long, default_value = "./data/admin-key.json")]
    admin_key_file: std::path::PathBuf,
    /// Read every acknowledged order back afterwards; exit 1 on any mismatch.
    #[arg(long)]
    verify: bool,
    /// Open loop: offer this many orders per second in total (latency counted from when each
    /// order was due). Without it, closed loop: each client sends as soon as it is answered.
    #[arg(long)]
    rate: Option<f64>,
    /// Speak HTTP/2 (cleartext, prior knowledge) instead of HTTP/1.1 keep-alive.
    #[arg(long)]
    http2: bool,
    /// Place orders over WebSocket (`order.place`): each client one socket, one account.
    #[arg(long)]
    websocket: bool,
    /// WebSocket subscribers to every symbol's trades, measuring the time from each order's
    /// acceptance to its trade's receipt.
    #[arg(long, default_value_t = 0)]
    md_subscribers: usize,
    /// `limit` (limit orders around a fixed mid) or `mm` (market making around a moving mid:
    /// re-quotes, new quotes, IOC takers, cancels; see --mix).
    #[arg(long, default_value = "limit")]
    workload: String,
    /// For `--workload mm`: percentages of amend, place and IOC (the rest cancel). The default
    /// is exchange-core's published benchmark mix.
    #[arg(long, default_value = "82,9,3")]
    mix: String,
    /// No progress line on stderr.
    #[arg(long)]
    quiet: bool,
    /// Write the summary as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Threads the load generator runs on. It shares the machine with the exchange it
    /// measures: one thread wakes no other, and drives 50,000 orders/s in about half a core.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Run on these CPUs only (a comma-separated list, for example `1`), to keep off the CPU
    /// of an exchange started with `--pin-workers` (which takes the first ones).
    #[arg(long, value_delimiter = ',')]
    cpus: Vec<usize>,
}

fn workload(name: &str, mix: &str) -> anyhow::Result<exchange_bench::Workload> {
    match name {
        "limit" => Ok(exchange_bench::Workload::Limit),
        "mm" => {
            let parts: Vec<u8> = mix
                .split(',')
                .map(|p| p.trim().parse())
                .collect::<Result<_, _>>()
                .context("--mix takes three percentages: amend,place,ioc")?;
            let [amend, place, ioc] = parts[..] else {
                anyhow::bail!("--mix takes three percentages: amend,place,ioc");
            };
            if u16::from(amend) + u16::from(place) + u16::from(ioc) > 100 {
                anyhow::bail!("--mix adds up to more than 100");
            }
            Ok(exchange_bench::Workload::MarketMaking { amend, place, ioc })
        }
        other => anyhow::bail!("--workload is limit or mm, not {other:?}"),
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.cpus.is_empty() {
        // Before the runtime starts, so that its threads inherit it.
        exchange_client::cpus::set_cpus(&args.cpus)
            .with_context(|| format!("running on CPUs {:?}", args.cpus))?;
    }
    let runtime = match args.threads {
        0 | 1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    }
    .enable_all()
    .build()
    .context("starting the runtime")?;
    runtime.block_on(load(args))
}

async fn load(args: Args) -> anyhow::Result<()> {
    let symbols = args
        .symbols
        .iter()
        .map(|s| {
            let (name, mid) = s.split_once('=').context("--symbol takes SYMBOL=MID")?;
            Ok((
                name.to_owned(),
                mid.parse().context("the mid is a whole number")?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let summary = exchange_bench::run(exchange_bench::Options {
        urls: args.urls,
        clients: args.clients,
        duration: Duration::from_secs(args.duration),
        warmup: Duration::from_secs(1),
        symbols,
        accounts: args.accounts.max(1),
        admin: exchange_client::read_credentials(&args.admin_key_file)?,
        verify: args.verify,
        rate: args.rate,
        progress: !args.quiet,
        http2: args.http2,
        websocket: args.websocket,
        md_subscribers: args.md_subscribers,
        workload: workload(&args.workload, &args.mix)?,
    })
    .await?;
    println!("{}", summary.line());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut failed = false;
    if let Some(v) = &summary.verification
        && v.mismatches > 0
    {
        for e in &v.examples {
            eprintln!("mismatch: {e}");
        }
        failed = true;
    }
    for d in &summary.conservation.differences {
        eprintln!("not conserved: {d}");
        failed = true;
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
