//! `historybench`: feeds trades through rollup (into PostgreSQL) and settle (into the embedded
//! store) with the real worker over a real event journal, and prints trades per second and the
//! end-to-end lag (from the journal append until the batch is durable in the store).
//!
//! Two phases per handler: a backlog of `--trades` records drained as fast as the store takes
//! them (throughput), then `--seconds` of records appended at `--rate` per second (the lag at a
//! steady rate, measured per record, open loop).

use async_trait::async_trait;
use clap::Parser;
use exchange_core::stream::StreamRecord;
use exchange_core::{
    AccountId, Command, NewOrder, OrderId, OrderType, Price, Qty, ShardId, Side, StpMode, SymbolId,
    SymbolSpec, SymbolTable, TimeInForce, Timestamp,
};
use exchange_functions::postgres::PgStore;
use exchange_functions::sqlite::SqliteStore;
use exchange_functions::worker::{self, Checkpoints, Handler, JournalSource, WorkerConfig};
use exchange_functions::{RollupStore, SettleStore, StoreError, Written};
use exchange_shard::{
    CommandEvents, EventJournal, EventRecord, JournalConfig, LogRecord, ShardState,
};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about = "Throughput and lag of settle and rollup")]
struct Args {
    /// Trades in the backlog phase.
    #[arg(long, default_value_t = 1_000_000)]
    trades: u64,
    /// Trades per second in the steady phase.
    #[arg(long, default_value_t = 20_000)]
    rate: u64,
    /// Length of the steady phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// PostgreSQL server for rollup (a fresh database is created and dropped).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres: String,
    /// Records per worker batch.
    #[arg(long, default_value_t = 8_192)]
    batch: usize,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Trades as a shard writes them to its event journal: trade `n` is a resting sell and the buy
/// that fills it, applied by a real shard state, so each trade is two records (the sell's new
/// order; the buy's trade, both orders and both sides' fills with their fees), which the
/// worker's source formats into stream records as it reads them.
struct Trades {
    state: ShardState,
    spec: SymbolSpec,
    offset: u64,
}

/// Event records per trade.
const RECORDS_PER_TRADE: u64 = 2;

impl Trades {
    fn new() -> Self {
        let symbols = SymbolTable::default_symbols();
        Self {
            state: ShardState::new(ShardId(0), 1, &symbols, 1_000),
            spec: symbols.get(SymbolId(0)).expect("a first symbol").clone(),
            offset: 0,
        }
    }

    /// The records of trades `from..=to`, stamped `time`.
    fn records(&mut self, from: u64, to: u64, time: u64) -> Vec<EventRecord> {
        let mut out = Vec::with_capacity(((to + 1 - from) * RECORDS_PER_TRADE) as usize);
        for n in from..=to {
            for (side, account) in [(Side::Sell, 1 + n % 100), (Side::Buy, 101 + n % 100)] {
                let order = NewOrder {
                    symbol: SymbolId(0),
                    order_id: OrderId(0),
                    account: AccountId(account),
                    client_order_id: None,
                    side,
                    order_type: OrderType::Limit {
                        price: Price(6_500_000 + n % 1_000),
                        qty: Qty(1_000 + (n % 50) * 100),
                        tif: TimeInForce::Gtc,
                        post_only: false,
                    },
                    stp: StpMode::None,
                };
                let hold = self
                    .spec
                    .funding
                    .order_hold(&order)
                    .expect("a limit order has a hold");
                self.offset += 1;
                let mut rec = LogRecord {
                    ts: Timestamp(time),
                    cmd: Command::Place(order),
                    hold,
                };
                rec.assign(self.offset);
                let outcome = self.state.apply(self.offset, &rec);
                out.extend(
                    outcome
                        .as_ref()
                        .and_then(CommandEvents::of)
                        .map(EventRecord::Command),
                );
            }
        }
        out
    }
}

/// Runs the inner handler and records, per record, the time from its append to now.
struct Timed {
    inner: Arc<dyn Handler>,
    lag: Mutex<Histogram<u64>>,
    done: std::sync::atomic::AtomicU64,
}

#[async_trait]
impl Handler for Timed {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn handle(&self, records: &[StreamRecord]) -> Result<Written, StoreError> {
        let w = self.inner.handle(records).await?;
        let now = now_ns();
        let mut lag = self.lag.lock();
        for r in records {
            let _ = lag.record(now.saturating_sub(r.time) / 1_000);
        }
        self.done
            .fetch_add(records.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(w)
    }
}

async fn phase(args: &Args, label: &str, handler: Arc<dyn Handler>) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let (journal, _) = EventJournal::open(&dir.join("events"), JournalConfig::default())?;
    let journal = Arc::new(journal);
    let timed = Arc::new(Timed {
        inner: handler,
        lag: Mutex::new(Histogram::new(3)?),
        done: Default::default(),
    });
    let checkpoints = Arc::new(Checkpoints::open(&dir.join("consumers"))?);
    let source = Arc::new(JournalSource::new(
        ShardId(0),
        Arc::new(SymbolTable::default_symbols()),
        journal.clone(),
        &[(timed.name(), 0)],
    ));
    let config = WorkerConfig {
        batch: args.batch,
        ..WorkerConfig::default()
    };
    // Backlog: append everything, then drain it.
    let mut trades = Trades::new();
    let t = now_ns();
    for from in (1..=args.trades).step_by(50_000) {
        let to = (from + 49_999).min(args.trades);
        journal.append(trades.records(from, to, t)).await?;
    }
    let (stop, stopped) = watch::channel(false);
    let started = Instant::now();
    let task = tokio::spawn(worker::run(
        timed.clone(),
        source,
        checkpoints,
        config,
        stopped,
    ));
    while timed.done.load(std::sync::atomic::Ordering::Relaxed) < args.trades * RECORDS_PER_TRADE {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained = started.elapsed();
    println!(
        "{label}: backlog of {} trades in {:.2} s = {:.0} trades/s",
        args.trades,
        drained.as_secs_f64(),
        args.trades as f64 / drained.as_secs_f64()
    );
    // Steady: append at the rate, in 10 ms ticks, stamped with their append time.
    timed.lag.lock().reset();
    let per_tick = (args.rate / 100).max(1);
    let mut n = args.trades;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let end = Instant::now() + Duration::from_secs(args.seconds);
    while Instant::now() < end {
        tick.tick().await;
        let t = now_ns();
        journal
            .append(trades.records(n + 1, n + per_tick, t))
            .await?;
        n += per_tick;
    }
    while timed.done.load(std::sync::atomic::Ordering::Relaxed) < n * RECORDS_PER_TRADE {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let lag = timed.lag.lock().clone();
    println!(
        "{label}: steady {} trades/s for {} s: lag p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        args.rate,
        args.seconds,
        lag.value_at_quantile(0.5) as f64 / 1e3,
        lag.value_at_quantile(0.99) as f64 / 1e3,
        lag.max() as f64 / 1e3
    );
    let _ = stop.send(true);
    journal.close();
    task.await??;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir =
        std::env::temp_dir().join(format!("historybench-{}-{}", std::process::id(), now_ns()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Rollup into a fresh PostgreSQL database.
    let name = format!("exchange_bench_{}", std::process::id());
    let admin = PgStore::connect(&format!("{}/test", args.postgres)).await?;
    sqlx_exec(&admin, &format!("CREATE DATABASE {name}")).await?;
    let pg = PgStore::connect(&format!("{}/{name}", args.postgres)).await?;
    pg.prepare().await?;
    let rollup = phase(
        &args,
        "rollup -> PostgreSQL",
        Arc::new(worker::Rollup(Arc::new(pg.clone()))),
    )
    .await;
    pg.pool().close().await;
    sqlx_exec(&admin, &format!("DROP DATABASE {name} WITH (FORCE)")).await?;
    rollup?;
    // Settle into the embedded store.
    let dir = tempfile_dir()?;
    let sqlite = SqliteStore::open(&dir.join("functions.db")).await?;
    SettleStore::prepare(&sqlite).await?;
    phase(
        &args,
        "settle -> embedded store",
        Arc::new(worker::Settle(Arc::new(sqlite))),
    )
    .await?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

async fn sqlx_exec(store: &PgStore, sql: &str) -> anyhow::Result<()> {
    exchange_functions::postgres::execute(store, sql).await?;
    Ok(())
}
