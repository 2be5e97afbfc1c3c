//! The binary's one typed configuration: flags, each with an `EXCHANGE_*` environment variable.

use clap::{ArgAction, Parser};
use std::net::SocketAddr;
use std::path::PathBuf;

/// `exchange`: runs the whole exchange in one process on the embedded default.
#[derive(Clone, Debug, Parser)]
#[command(version, about)]
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

    /// Write a shard snapshot after this many commands.
    #[arg(long, env = "EXCHANGE_SNAPSHOT_EVERY", default_value_t = 100_000)]
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

    /// Log filter, for example `info` or `exchange=debug,tower_http=debug`.
    #[arg(long, env = "EXCHANGE_LOG", default_value = "info")]
    pub log: String,
}

impl Config {
    /// The defaults, with data under `data_dir` and a port picked by the OS (for tests).
    pub fn for_tests(data_dir: PathBuf) -> Self {
        let mut c = Self::parse_from(["exchange"]);
        c.listen = "127.0.0.1:0".parse().expect("a valid address");
        c.data_dir = data_dir;
        c.log = "warn".into();
        c
    }
}
