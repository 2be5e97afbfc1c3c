//! What a run is asked to do: the options and the workloads.

use super::*;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Base URLs of gateways; clients are spread over them.
    pub urls: Vec<String>,
    /// Concurrent clients (each keeps one request in flight).
    pub clients: usize,
    /// Measured time, after a warm-up.
    pub duration: Duration,
    pub warmup: Duration,
    /// Symbols with their mid price.
    pub symbols: Vec<(String, u64)>,
    /// Accounts to create, fund and spread the orders over.
    pub accounts: u64,
    /// The admin key that creates and funds them.
    pub admin: Credentials,
    /// Read every acknowledged order back after the run.
    pub verify: bool,
    /// Open loop at this many orders per second in total; `None` for closed loop.
    pub rate: Option<f64>,
    /// Print a progress line to stderr every second.
    pub progress: bool,
    /// Speak HTTP/2 (cleartext, prior knowledge) instead of HTTP/1.1 keep-alive.
    pub http2: bool,
    /// Place orders over WebSocket (`order.place`) instead of REST: each client one socket,
    /// authenticated as one account.
    pub websocket: bool,
    /// WebSocket subscribers to every symbol's trades, measuring acceptance to receipt.
    pub md_subscribers: usize,
    /// What the clients send.
    pub workload: Workload,
}

/// The order flow.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Workload {
    /// Limit orders within ±0.5% of a fixed mid: many rest, many cross.
    Limit,
    /// Market making around a mid that moves: of every 100 operations, `amend` re-quote a
    /// resting order of the client's to the moving mid, `place` add a GTC quote, `ioc` take
    /// liquidity with an IOC order across the mid, and the rest cancel a quote. The default mix
    /// (82 amend, 9 place, 3 IOC, 6 cancel) is exchange-core's published benchmark mix.
    MarketMaking { amend: u8, place: u8, ioc: u8 },
}

impl Workload {
    /// exchange-core's benchmark mix.
    pub const EXCHANGE_CORE: Workload = Workload::MarketMaking {
        amend: 82,
        place: 9,
        ioc: 3,
    };
}
