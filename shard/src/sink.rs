//! The event sink: where a shard sends the outcomes of the commands it applied.
//!
//! The embedded default delivers them in process (to the gateway waiting on each command, and
//! to market-data subscribers); a cluster deployment publishes them on its bus.

use crate::state::Outcome;
use exchange_core::ShardId;

/// Receives every batch of outcomes a shard produces, in log order.
pub trait EventSink: Send + Sync + 'static {
    /// Called once per applied batch, on the shard's task: it must not block for long.
    fn publish(&self, shard: ShardId, outcomes: Vec<Outcome>);
}
