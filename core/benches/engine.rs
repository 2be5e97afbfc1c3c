//! Matching-engine benchmarks: `cargo bench -p exchange-core`.
//!
//! Replays exchange-core's published benchmark mix on one symbol: about 1,000 resting orders over
//! about 750 price levels from 1,000 accounts, with 82% amends (price moves), 9% GTC places, 3%
//! IOC places and 6% cancels. The same mix runs on a deep book (100,000 resting orders) to show
//! that cost grows no faster than O(log n), and a book of 1,000,000 resting orders is built to
//! measure resident memory per order.
//!
//! Criterion reports the throughput; after it, a second pass times every operation into an HDR
//! histogram and prints operations per second and latency percentiles. The commands are generated
//! before timing starts (by driving a scratch engine), so only `Engine::apply` is measured.

use criterion::{Criterion, Throughput};
use exchange_core::*;
use hdrhistogram::Histogram;
use std::hint::black_box;
use std::time::{Duration, Instant};

const SYMBOL: SymbolId = SymbolId(0);
const MID: u64 = 1_000_000;

/// xorshift64*: a deterministic generator, so every run replays the same commands.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn symbols() -> SymbolTable {
    SymbolTable::from_toml(
        r#"[[symbol]]
name = "BTC-USD"
base = "BTC"
quote = "USD"
tick_size = "0.01"
lot_size = "0.00001"
min_qty = "0.00001"
max_qty = "1000"
max_price = "10000000"
min_notional = "0""#,
    )
    .expect("bench symbol is valid")
}

/// Live orders of the scratch engine, with O(1) random pick and removal.
#[derive(Default)]
struct Live {
    ids: Vec<(OrderId, AccountId, Side)>,
    pos: rustc_hash::FxHashMap<OrderId, usize>,
}

impl Live {
    fn add(&mut self, id: OrderId, account: AccountId, side: Side) {
        self.pos.insert(id, self.ids.len());
        self.ids.push((id, account, side));
    }
    fn remove(&mut self, id: OrderId) {
        if let Some(i) = self.pos.remove(&id) {
            self.ids.swap_remove(i);
            if let Some(moved) = self.ids.get(i) {
                self.pos.insert(moved.0, i);
            }
        }
    }
    fn pick(&self, rng: &mut Rng) -> (OrderId, AccountId, Side) {
        self.ids[rng.below(self.ids.len() as u64) as usize]
    }
}

/// A prepared workload: the engine state to start from and the commands to replay on it.
struct Workload {
    start: Engine,
    commands: Vec<(Timestamp, Command)>,
}

/// A price on `side`'s half of the book, `spread` levels wide, never at or through the mid.
fn passive_price(rng: &mut Rng, side: Side, spread: u64) -> Price {
    let off = 1 + rng.below(spread);
    Price(match side {
        Side::Buy => MID - off,
        Side::Sell => MID + off,
    })
}

/// Drives a scratch engine to generate commands that make sense for the book as it is.
struct Generator {
    engine: Engine,
    live: Live,
    rng: Rng,
    out: Vec<Event>,
    next: u64,
    ts: u64,
    spread: u64,
}

impl Generator {
    fn run(&mut self, cmd: Command) -> (Timestamp, Command) {
        self.ts += 1;
        let ts = Timestamp(self.ts);
        apply(&mut self.engine, &mut self.live, &mut self.out, ts, &cmd);
        (ts, cmd)
    }

    fn place(
        &mut self,
        side: Side,
        tif: TimeInForce,
        price: Option<Price>,
    ) -> (Timestamp, Command) {
        self.next += 1;
        let price = price.unwrap_or_else(|| passive_price(&mut self.rng, side, self.spread));
        let cmd = Command::Place(NewOrder {
            symbol: SYMBOL,
            order_id: OrderId::compose(SYMBOL, self.next),
            account: AccountId(self.rng.below(1_000)),
            client_order_id: None,
            side,
            order_type: OrderType::Limit {
                price,
                qty: Qty(1 + self.rng.below(100)),
                tif,
                post_only: false,
            },
            stp: StpMode::None,
        });
        self.run(cmd)
    }

    fn side(&mut self) -> Side {
        if self.rng.below(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        }
    }
}

fn workload(resting: usize, spread: u64, ops: usize, seed: u64) -> Workload {
    let mut g = Generator {
        engine: Engine::new(&symbols()),
        live: Live::default(),
        rng: Rng(seed),
        out: Vec::new(),
        next: 0,
        ts: 0,
        spread,
    };
    for _ in 0..resting {
        let side = g.side();
        g.place(side, TimeInForce::Gtc, None);
    }
    let start = g.engine.clone();
    let mut commands = Vec::with_capacity(ops);
    while commands.len() < ops {
        let roll = g.rng.below(100);
        let side = g.side();
        // Keep the book near its size: a place when it is short, a cancel when it is long.
        let roll = match g.live.ids.len() {
            n if n < resting * 9 / 10 && roll >= 94 => 85,
            n if n > resting * 11 / 10 && (82..91).contains(&roll) => 95,
            _ => roll,
        };
        let step = if roll < 82 {
            let (id, account, side) = g.live.pick(&mut g.rng);
            let new_price = Some(passive_price(&mut g.rng, side, spread));
            g.run(Command::Amend(AmendOrder {
                symbol: SYMBOL,
                account,
                target: OrderRef::Id(id),
                new_price,
                new_qty: None,
            }))
        } else if roll < 91 {
            g.place(side, TimeInForce::Gtc, None)
        } else if roll < 94 {
            // An IOC that crosses a few levels into the other side.
            let off = 1 + g.rng.below(5);
            let through = Price(match side {
                Side::Buy => MID + off,
                Side::Sell => MID - off,
            });
            g.place(side, TimeInForce::Ioc, Some(through))
        } else {
            let (id, account, _) = g.live.pick(&mut g.rng);
            g.run(Command::Cancel(CancelOrder {
                symbol: SYMBOL,
                account,
                target: OrderRef::Id(id),
            }))
        };
        commands.push(step);
    }
    Workload { start, commands }
}

/// Applies a command to the scratch engine and follows which orders are live.
fn apply(engine: &mut Engine, live: &mut Live, out: &mut Vec<Event>, ts: Timestamp, cmd: &Command) {
    out.clear();
    engine.apply(ts, cmd, out);
    for e in out.iter() {
        if let EventKind::Order(u) = e.kind {
            if u.status.is_final() {
                live.remove(u.order_id);
            } else if u.status == OrderStatus::New && !live.pos.contains_key(&u.order_id) {
                live.add(u.order_id, u.account, u.side);
            }
        }
    }
}

fn replay(w: &Workload) -> Duration {
    let mut engine = w.start.clone();
    let mut out = Vec::with_capacity(256);
    let t = Instant::now();
    for (ts, cmd) in &w.commands {
        out.clear();
        engine.apply(*ts, cmd, &mut out);
        black_box(&out);
    }
    t.elapsed()
}

/// Times each command; prints ops/s (from an untimed-per-op run) and latency percentiles.
fn report(name: &str, w: &Workload) {
    let best = (0..5).map(|_| replay(w)).min().expect("five runs");
    let ops_per_sec = w.commands.len() as f64 / best.as_secs_f64();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).expect("valid bounds");
    let mut engine = w.start.clone();
    let mut out = Vec::with_capacity(256);
    for (ts, cmd) in &w.commands {
        out.clear();
        let t = Instant::now();
        engine.apply(*ts, cmd, &mut out);
        let ns = t.elapsed().as_nanos() as u64;
        black_box(&out);
        hist.saturating_record(ns.max(1));
    }
    let book = engine.book(SYMBOL).expect("the symbol is held");
    let (bids, asks) = book.level_count();
    println!(
        "{name}: {} ops, {} resting orders on {} levels at the end | {:.2} M ops/s | latency p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns (per-op timing adds ~20 ns)",
        w.commands.len(),
        book.order_count(),
        bids + asks,
        ops_per_sec / 1e6,
        hist.value_at_quantile(0.50),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
        hist.max(),
    );
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Builds a book of `n` resting orders and prints the memory it takes per order.
fn memory_report(n: usize) {
    let before = resident_bytes();
    let symbols = symbols();
    let mut engine = Engine::new(&symbols);
    let mut rng = Rng(7);
    let mut out = Vec::new();
    for i in 0..n as u64 {
        out.clear();
        let side = if rng.below(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        let cmd = Command::Place(NewOrder {
            symbol: SYMBOL,
            order_id: OrderId::compose(SYMBOL, i + 1),
            account: AccountId(rng.below(1_000)),
            client_order_id: None,
            side,
            order_type: OrderType::Limit {
                price: passive_price(&mut rng, side, 50_000),
                qty: Qty(1 + rng.below(100)),
                tif: TimeInForce::Gtc,
                post_only: false,
            },
            stp: StpMode::None,
        });
        engine.apply(Timestamp(i), &cmd, &mut out);
    }
    let after = resident_bytes();
    let book = engine.book(SYMBOL).expect("the symbol is held");
    let (bids, asks) = book.level_count();
    let rss = match (before, after) {
        (Some(b), Some(a)) => format!(
            "{:.1} MB resident, {} bytes/order",
            (a - b) as f64 / 1e6,
            (a - b) / n as u64
        ),
        _ => "resident memory unavailable".into(),
    };
    println!(
        "memory: {} resting orders on {} levels: {rss}; structures {} bytes/order",
        book.order_count(),
        bids + asks,
        book.approx_memory_bytes() / n,
    );
    black_box(engine);
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let ops = if full { 2_000_000 } else { 20_000 };
    // About 1,000 orders over about 750 occupied levels, as in exchange-core's benchmark.
    let standard = workload(1_000, 800, ops, 0x5eed);
    let deep = workload(100_000, 25_000, ops, 0xdee9);

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(standard.commands.len() as u64));
    g.sample_size(10);
    g.bench_function("exchange_core_mix_1k_orders", |b| {
        b.iter_custom(|n| (0..n).map(|_| replay(&standard)).sum())
    });
    g.throughput(Throughput::Elements(deep.commands.len() as u64));
    g.bench_function("exchange_core_mix_100k_orders", |b| {
        b.iter_custom(|n| (0..n).map(|_| replay(&deep)).sum())
    });
    g.finish();
    c.final_summary();

    if full {
        println!();
        report("standard book (1k orders, 750 levels)", &standard);
        report("book of 10k orders", &workload(10_000, 2_500, ops, 0x10c));
        report("deep book (100k orders)", &deep);
        memory_report(1_000_000);
    }
}
