//! The binary's one typed configuration: flags, each with an `EXCHANGE_*` environment variable.

use clap::{ArgAction, Args, Parser};
use std::net::SocketAddr;
use std::path::PathBuf;

/// `exchange`: runs the whole exchange in one process on the embedded default.
#[derive(Clone, Debug, Args)]
pub struct Config {
    /// Address the REST API listens on (port 0 picks a free port).
    #[arg(long, env = "EXCHANGE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Where journals and snapshots live.
    #[arg(long, env = "EXCHANGE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Number of shards (matcher tasks). Fixed for a data directory once it is created.
    #[arg(long, env = "EXCHANGE_SHARDS", default_value_t = 2)]
    pub shards: u32,

    /// Symbols file (default: the shipped config/symbols.toml).
    #[arg(long, env = "EXCHANGE_SYMBOLS_FILE")]
    pub symbols_file: Option<PathBuf>,

    /// Write a shard snapshot after this many commands. A snapshot copies the shard's whole
    /// state (every live order and the retained finished ones), so it costs in proportion to
    /// the state; recovery replays at most this many commands (about 600,000 a second here).
    #[arg(long, env = "EXCHANGE_SNAPSHOT_EVERY", default_value_t = 1_000_000)]
    pub snapshot_every: u64,

    /// fdatasync the journal on every group commit (turn off only for throwaway data).
    #[arg(long, env = "EXCHANGE_FSYNC", default_value_t = true, action = ArgAction::Set)]
    pub fsync: bool,

    /// Size of a journal segment file in MiB; segments a snapshot covers are deleted.
    #[arg(long, env = "EXCHANGE_JOURNAL_SEGMENT_MB", default_value_t = 256)]
    pub journal_segment_mb: u64,

    /// Finished orders each shard keeps for queries and client-order-id idempotency (live orders
    /// are always kept). Larger windows cost memory and latency spikes as the maps grow; the full
    /// history belongs to the settlement store.
    #[arg(
        long,
        env = "EXCHANGE_RETAIN_FINISHED_ORDERS",
        default_value_t = 100_000
    )]
    pub retain_finished: usize,

    /// How long a request waits for its command's outcome before answering 504.
    #[arg(long, env = "EXCHANGE_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub request_timeout_ms: u64,

    /// PostgreSQL (with TimescaleDB where available) for trade history and candles, for
    /// example `postgres://127.0.0.1/exchange`; by default the embedded store in the data
    /// directory.
    #[arg(long, env = "EXCHANGE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// MongoDB for settlement (trades, orders, ledger, balances), for example
    /// `mongodb://127.0.0.1:27017`; by default the embedded store in the data directory.
    #[arg(long, env = "EXCHANGE_MONGODB_URL", hide_env_values = true)]
    pub mongodb_url: Option<String>,

    /// The MongoDB database settlement writes to.
    #[arg(long, env = "EXCHANGE_MONGODB_DATABASE", default_value = "exchange")]
    pub mongodb_database: String,

    /// Master key (64 hex digits) from which API key secrets are derived; by default
    /// `master.key` in the data directory, created on first start.
    #[arg(long, env = "EXCHANGE_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,

    /// Requests per second allowed from one client IP (0: no limit).
    #[arg(long, env = "EXCHANGE_RATE_LIMIT_IP", default_value_t = 50_000)]
    pub rate_limit_ip: u32,

    /// Burst allowed from one client IP.
    #[arg(long, env = "EXCHANGE_RATE_LIMIT_IP_BURST", default_value_t = 100_000)]
    pub rate_limit_ip_burst: u32,

    /// Requests per second allowed for one API key (0: no limit).
    #[arg(long, env = "EXCHANGE_RATE_LIMIT_KEY", default_value_t = 5_000)]
    pub rate_limit_key: u32,

    /// Burst allowed for one API key.
    #[arg(long, env = "EXCHANGE_RATE_LIMIT_KEY_BURST", default_value_t = 10_000)]
    pub rate_limit_key_burst: u32,

    /// Kernel send buffer per connection, in KiB: what a client that stops reading can hold of
    /// the server's memory before it is cut off.
    #[arg(long, env = "EXCHANGE_SEND_BUFFER_KB", default_value_t = 64)]
    pub send_buffer_kb: u32,

    /// Seconds a WebSocket may be quiet before the server pings it.
    #[arg(long, env = "EXCHANGE_WS_PING_SECS", default_value_t = 20)]
    pub ws_ping_secs: u64,

    /// Seconds a WebSocket may send nothing (not even a pong) before it is closed.
    #[arg(long, env = "EXCHANGE_WS_DEAD_SECS", default_value_t = 60)]
    pub ws_dead_secs: u64,

    /// Milliseconds a WebSocket client has to take a message before it is closed as too slow.
    #[arg(long, env = "EXCHANGE_WS_SEND_TIMEOUT_MS", default_value_t = 5_000)]
    pub ws_send_timeout_ms: u64,

    /// Messages a symbol's WebSocket ring holds for its slowest client before that client is
    /// conflated (book) or closed (trades).
    #[arg(long, env = "EXCHANGE_WS_RING", default_value_t = 1_024)]
    pub ws_ring: usize,

    /// Messages per second a WebSocket client may send (burst twice that; 0: no limit).
    #[arg(long, env = "EXCHANGE_WS_MESSAGE_RATE", default_value_t = 50)]
    pub ws_message_rate: u32,

    /// Redis Cluster seed nodes, comma-separated, for example `redis://127.0.0.1:7100`: where
    /// `exchange gateway` and `exchange shard` keep the command logs, live balances and
    /// accounts, and exchange outcomes and reads. Not used by the one-process exchange.
    #[arg(long, env = "EXCHANGE_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// A prefix for every Redis key and channel, so several exchanges (or test runs) can share
    /// one cluster.
    #[arg(long, env = "EXCHANGE_REDIS_NAMESPACE", default_value = "")]
    pub redis_namespace: String,

    /// Log filter, for example `info` or `exchange=debug,tower_http=debug`.
    #[arg(long, env = "EXCHANGE_LOG", default_value = "info")]
    pub log: String,

    /// Threads that serve requests and run the shards (the async runtime's workers). By
    /// default one fewer than the machine's cores, at least one: the journal writer's thread
    /// and the settlement workers use the core left (on 2 cores, one worker served as many
    /// orders as two with a lower p99, see the README).
    #[arg(long, env = "EXCHANGE_WORKERS")]
    pub workers: Option<usize>,

    /// Give each request worker a CPU of its own and run every other thread (journal writers,
    /// settlement, blocking work) on the CPUs left; off when that would leave none. For a
    /// machine the exchange has to itself (a load generator on the same machine goes on the CPUs
    /// left: `loadgen --cpus 1`); not for processes that share the machine, which would all pin
    /// to the same first CPUs.
    #[arg(long, env = "EXCHANGE_PIN_WORKERS", default_value_t = false, action = ArgAction::Set,
        num_args = 0..=1, default_missing_value = "true")]
    pub pin_workers: bool,

    /// Demo mode (the one-process exchange only): seed demo accounts and run market-making and
    /// taker bots against the exchange's public API, and offer a demo key to the dashboard.
    #[arg(long, env = "EXCHANGE_DEMO", default_value_t = false, action = ArgAction::Set,
        num_args = 0..=1, default_missing_value = "true")]
    pub demo: bool,
}

impl Config {
    /// How many runtime worker threads to start: `--workers`, or the cores less one.
    pub fn worker_threads(&self) -> usize {
        self.workers
            .unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1))
            })
            .max(1)
    }

    /// The WebSocket tier's limits.
    pub fn ws_config(&self) -> exchange_gateway::ws::WsConfig {
        use std::time::Duration;
        exchange_gateway::ws::WsConfig {
            ping_after: Duration::from_secs(self.ws_ping_secs.max(1)),
            dead_after: Duration::from_secs(self.ws_dead_secs.max(1)),
            send_timeout: Duration::from_millis(self.ws_send_timeout_ms.max(1)),
            ring: self.ws_ring.max(1),
            messages: exchange_gateway::auth::Rate {
                per_second: self.ws_message_rate,
                burst: self.ws_message_rate.saturating_mul(2),
            },
            ..exchange_gateway::ws::WsConfig::default()
        }
    }

    /// Where the functions' stores are.
    pub fn stores(&self) -> exchange_functions::host::StoreConfig {
        exchange_functions::host::StoreConfig {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            mongodb_url: self.mongodb_url.clone(),
            mongodb_database: self.mongodb_database.clone(),
        }
    }

    /// The shard count, if it is one every role can run with.
    pub fn checked_shards(&self) -> anyhow::Result<u32> {
        anyhow::ensure!(
            (1..=1024).contains(&self.shards),
            "shards must be between 1 and 1024, not {}",
            self.shards
        );
        Ok(self.shards)
    }

    /// The gateway's rate limits.
    pub fn rate_limits(&self) -> exchange_gateway::RateLimits {
        use exchange_gateway::auth::Rate;
        exchange_gateway::RateLimits {
            per_ip: Rate {
                per_second: self.rate_limit_ip,
                burst: self.rate_limit_ip_burst,
            },
            per_key: Rate {
                per_second: self.rate_limit_key,
                burst: self.rate_limit_key_burst,
            },
        }
    }

    /// The defaults, with data under `data_dir` and a port picked by the OS (for tests).
    pub fn for_tests(data_dir: PathBuf) -> Self {
        let mut c = Cli::parse_from(["exchange"]).config;
        c.listen = "127.0.0.1:0".parse().expect("a valid address");
        c.data_dir = data_dir;
        c.log = "warn".into();
        // The tests use the embedded stores whatever the environment says.
        c.database_url = None;
        c.mongodb_url = None;
        c.redis_url = None;
        c
    }
}

/// The command line: the configuration, and what to run.
#[derive(Clone, Debug, Parser)]
#[command(
    version,
    about = "The exchange: with no command, every role in one process on the embedded default."
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to run.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum Command {
    /// Run one gateway of a cluster: the REST and WebSocket API over the shards in other
    /// processes (needs `--redis-url`; start as many as you like).
    Gateway,
    /// Run one shard of a cluster: the matcher of the symbols that hash to it, over its command
    /// log in Redis (needs `--redis-url`); snapshots and its event stream stay in the data
    /// directory, and its settle and rollup workers run beside it. `--listen` serves `/health`
    /// and `/metrics`.
    Shard(ShardArgs),
    /// Administer a running exchange over its admin API, signing with the admin key the
    /// exchange wrote to its data directory on first start.
    Admin(AdminArgs),
}

/// `exchange shard ...`.
#[derive(Clone, Debug, Args)]
pub struct ShardArgs {
    /// Which shard this process runs (0 to shards - 1).
    #[arg(long, env = "EXCHANGE_SHARD_ID")]
    pub id: u32,
}

impl Config {
    /// The Redis Cluster seed nodes, for the cluster roles.
    pub fn redis_urls(&self) -> anyhow::Result<Vec<String>> {
        let urls: Vec<String> = self
            .redis_url
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect();
        anyhow::ensure!(
            !urls.is_empty(),
            "the cluster roles need --redis-url (EXCHANGE_REDIS_URL), for example redis://127.0.0.1:7100"
        );
        Ok(urls)
    }
}

/// `exchange admin ...`.
#[derive(Clone, Debug, Args)]
pub struct AdminArgs {
    /// The exchange's URL (default: http:// and the listen address).
    #[arg(long, env = "EXCHANGE_URL")]
    pub url: Option<String>,
    /// The admin key file (default: admin-key.json in the data directory).
    #[arg(long, env = "EXCHANGE_ADMIN_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    #[command(subcommand)]
    pub action: AdminAction,
}

/// One admin action.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum AdminAction {
    /// Create an account; prints its id.
    CreateAccount,
    /// Create an API key for an account; prints the key id and secret (shown once).
    CreateKey {
        #[arg(long)]
        account: u64,
        /// Comma-separated: read, trade, admin.
        #[arg(long, default_value = "read,trade")]
        permissions: String,
    },
    /// Disable an API key.
    DisableKey {
        #[arg(long)]
        key_id: String,
    },
    /// Credit a deposit (applied once per id).
    Deposit(TransferArgs),
    /// Debit a withdrawal (applied once per id).
    Withdraw(TransferArgs),
    /// Show an account's balances.
    Balances {
        #[arg(long)]
        account: u64,
    },
    /// Compare the settled balances (the embedded store, or MongoDB with
    /// `EXCHANGE_MONGODB_URL`) with their ledger and with the exchange's live balances; exits 1
    /// on any difference.
    Reconcile,
}

/// A deposit or withdrawal.
#[derive(Clone, Debug, Args)]
pub struct TransferArgs {
    #[arg(long)]
    pub account: u64,
    #[arg(long)]
    pub asset: String,
    #[arg(long)]
    pub amount: String,
    /// Your id for the transfer, so that a retry is applied once.
    #[arg(long)]
    pub id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        let argv = std::iter::once("exchange").chain(args.iter().copied());
        Cli::parse_from(argv).config
    }

    fn workers(args: &[&str]) -> usize {
        config(args).worker_threads()
    }

    #[test]
    fn pinning_is_off_unless_asked_for() {
        if std::env::var_os("EXCHANGE_PIN_WORKERS").is_none() {
            assert!(!config(&[]).pin_workers);
        }
        assert!(config(&["--pin-workers"]).pin_workers);
        assert!(config(&["--pin-workers", "true"]).pin_workers);
        assert!(!config(&["--pin-workers", "false"]).pin_workers);
    }

    #[test]
    fn workers_are_the_flag_or_the_cores_less_one_and_never_none() {
        assert_eq!(workers(&["--workers", "3"]), 3);
        assert_eq!(workers(&["--workers", "0"]), 1);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if std::env::var_os("EXCHANGE_WORKERS").is_none() {
            assert_eq!(workers(&[]), cores.saturating_sub(1).max(1));
        }
    }
}
