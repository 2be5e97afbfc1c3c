//! exchange-shard: the matcher runtime.
//!
//! A shard owns the order books of the symbols that route to it (`shard_for(symbol, shards)`).
//! It reads its command log in batches, applies each record to its [`ShardState`] (the engine,
//! the order store and market data) in log order, and hands the outcomes to its [`EventSink`].
//! Every so often it writes a snapshot; on start it loads the newest valid snapshot and replays
//! the log after it.
//!
//! The log and the sink are traits, so the same runtime runs on the embedded default (a
//! [`Journal`] file per shard, in-process delivery) and in a cluster.
//!
//! # Layout
//! - [`log`]: the `CommandLog` trait and `LogRecord`.
//! - [`redis_sink`]: outcomes to gateways over sharded Pub/Sub.
//! - [`redis_log`]: the cluster log: a Redis Stream per shard with dense offsets.
//! - [`query`]: the reads of a shard's state a gateway asks for; [`redis_query`] carries them
//!   between processes.
//! - [`journal`]: the embedded log: an append-only file with CRC-framed records and group commit.
//! - [`state`]: `ShardState::apply`, pure and deterministic; snapshot and restore.
//! - [`frame`]: CRC-framed records for append-only files.
//! - [`balances`]: the shard's change to every balance, order holds and fills (`FundsState`).
//! - [`orders`], [`market`]: the order store and per-symbol market data, built from events.
//! - [`snapshot`]: snapshot files.
//! - [`sink`]: the `EventSink` trait, and `BalanceMoves`, the live balances a cluster sink
//!   applies moves to (`exchange_accounts::RedisBalances`).
//! - [`events`]: the shard's event journal (what each command did, for settlement and history).
//! - [`runtime`]: the async loop: recover, apply, publish, snapshot.

pub mod balances;
pub mod events;
pub mod frame;
pub mod journal;
pub mod log;
pub mod market;
pub mod orders;
pub mod query;
pub mod redis_log;
pub mod redis_query;
pub mod redis_sink;
pub mod runtime;
pub mod sink;
pub mod snapshot;
pub mod state;

pub use balances::{FundsState, Move};
pub use events::{CommandEvents, EventJournal, EventRecord};
pub use journal::{Appended, Journal, JournalConfig, OpenReport, Record};
pub use log::{CommandLog, Entry, LogError, LogRecord};
pub use orders::OrderStore;
pub use redis_log::RedisLog;
pub use runtime::{Recovery, Shard, ShardConfig, ShardError};
pub use sink::{BalanceMoves, EventSink};
pub use snapshot::SnapshotStore;
pub use state::{CommandResult, FILLS_PER_ACCOUNT, Outcome, ShardState, StateCopy, StateError};
