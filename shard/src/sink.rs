//! The event sink: where a shard sends the outcomes of the commands it applied.
//!
//! The embedded default delivers them in process (to the gateway waiting on each command, and
//! to market-data subscribers); a cluster deployment publishes them on its bus.

use crate::balances::Move;
use crate::state::Outcome;
use exchange_core::ShardId;

/// Receives every batch of outcomes a shard produces, in log order.
pub trait EventSink: Send + Sync + 'static {
    /// Called once per applied batch, on the shard's task: it must not block for long.
    fn publish(&self, shard: ShardId, outcomes: Vec<Outcome>);

    /// Called at recovery with the outcomes of the commands replayed after the snapshot. They
    /// were answered before the restart, so nothing is published; a sink that keeps state of
    /// its own outside the shard (the cluster's live balances) brings it up to date, once.
    fn replayed(&self, _shard: ShardId, _outcomes: &[Outcome]) {}
}

/// The live balances a sink in another process applies each batch's balance moves to: the
/// cluster's, in Redis (`exchange_accounts::RedisBalances`). Applying is idempotent per
/// (account, shard, offset), so a batch may be applied again after a failure or a replay.
#[async_trait::async_trait]
pub trait BalanceMoves: Send + Sync + 'static {
    /// Applies shard `shard`'s moves at each offset of `batch` (increasing), each once per
    /// account.
    async fn apply_moves(
        &self,
        shard: ShardId,
        batch: &[(u64, &[Move])],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}
