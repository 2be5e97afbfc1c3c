//! The command log: the durable, ordered input of a shard.
//!
//! Orders travel through a log, never through fire-and-forget messaging, because an exchange
//! never drops an accepted order. The log assigns each record its offset (1, 2, 3, ... per
//! shard) and each `Place` its order id, `symbol << 48 | offset`: the id is durable the moment
//! the append returns, and a replay derives exactly the same ids.

use async_trait::async_trait;
use exchange_core::{Command, Hold, OrderId, Timestamp};
use serde::{Deserialize, Serialize};

/// One entry of a shard's command log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// When the gateway accepted the command; the engine uses it as the command's time.
    pub ts: Timestamp,
    pub cmd: Command,
    /// What the gateway reserved for the command in the account's live balance: a place's
    /// whole hold, an amendment's top-up; nothing for a cancel. The shard takes it over or
    /// gives it back.
    pub hold: Hold,
}

impl LogRecord {
    /// Stamps the record with its place in the log: a `Place` gets the order id for `offset`.
    pub fn assign(&mut self, offset: u64) {
        if let Command::Place(o) = &mut self.cmd {
            o.order_id = OrderId::compose(o.symbol, offset);
        }
    }
}

/// A record with its offset.
pub type Entry = (u64, LogRecord);

/// Why the log could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("journal I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the log is closed")]
    Closed,
    #[error("the log failed earlier and refuses writes until restarted: {0}")]
    Failed(String),
    #[error("record at offset {offset} is corrupt: {reason}")]
    Corrupt { offset: u64, reason: String },
}

/// A shard's command log. The embedded default is [`crate::Journal`], a file per shard.
#[async_trait]
pub trait CommandLog: Send + Sync + 'static {
    /// Appends durably (it returns once the records are on disk or replicated), assigning
    /// consecutive offsets after the last one, and order ids (see [`LogRecord::assign`]).
    /// Returns the records as stored, with their offsets.
    async fn append(&self, records: Vec<LogRecord>) -> Result<Vec<Entry>, LogError>;

    /// Up to `max` records with offsets above `after`, in order. Waits until there is at least
    /// one; returns an empty batch only once the log is closed.
    async fn read(&self, after: u64, max: usize) -> Result<Vec<Entry>, LogError>;

    /// Everything up to `offset` is covered by a snapshot: the log may let it go.
    async fn ack(&self, offset: u64) -> Result<(), LogError>;

    /// The offset of the last record appended (0 when empty).
    fn last_offset(&self) -> u64;

    /// Stops taking appends and wakes readers; records already appended stay readable.
    fn close(&self);
}
