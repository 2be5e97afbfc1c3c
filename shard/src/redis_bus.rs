//! Outcomes across processes on Redis Cluster: a shard publishes each applied batch's outcomes
//! on the sharded Pub/Sub channel `{shard-N}:outcomes` (the shard's hash tag, so the channel
//! lives on the node that holds its log), and every gateway subscribes to the channels of the
//! shards it sends to, to answer the requests waiting on them.
//!
//! Pub/Sub delivers to whoever listens at that moment and keeps nothing: it carries answers,
//! never commands (those go through the log). A gateway that misses an outcome (disconnected at
//! that moment) times its request out, and the order, which is in the log, can be read back.

use crate::redis_log::shard_tag;
use crate::sink::EventSink;
use crate::state::Outcome;
use exchange_core::ShardId;
use redis::cluster::ClusterClient;
use redis::{AsyncCommands, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::mpsc;

/// The channel shard `shard` publishes its outcomes on.
pub fn outcomes_channel(namespace: &str, shard: ShardId) -> String {
    format!("{}:outcomes", shard_tag(namespace, shard))
}

/// An [`EventSink`] that publishes every batch of outcomes with `SPUBLISH`, from a task of its
/// own so the shard never waits on the network.
pub struct RedisSink {
    batches: mpsc::UnboundedSender<(ShardId, Vec<Outcome>)>,
}

impl RedisSink {
    /// Connects to the cluster at `urls`; outcomes go to the channels under `namespace`.
    pub async fn connect(urls: &[String], namespace: &str) -> redis::RedisResult<Self> {
        let client = ClusterClient::builder(urls.to_vec())
            .use_protocol(ProtocolVersion::RESP3)
            .build()?;
        let mut conn = client.get_async_connection().await?;
        let (batches, mut rx) = mpsc::unbounded_channel::<(ShardId, Vec<Outcome>)>();
        let namespace = namespace.to_owned();
        tokio::spawn(async move {
            while let Some((shard, outcomes)) = rx.recv().await {
                let payload = postcard::to_stdvec(&outcomes).expect("outcomes always serialise");
                let channel = outcomes_channel(&namespace, shard);
                if let Err(e) = conn.spublish::<_, _, usize>(&channel, payload).await {
                    metrics::counter!("exchange_outcome_publish_failures_total").increment(1);
                    tracing::warn!(%shard, error = %e, "could not publish outcomes; the waiting requests will time out");
                }
            }
        });
        Ok(Self { batches })
    }
}

impl EventSink for RedisSink {
    fn publish(&self, shard: ShardId, outcomes: Vec<Outcome>) {
        if !outcomes.is_empty() {
            let _ = self.batches.send((shard, outcomes));
        }
    }
}

/// Subscribes to the outcomes of `shards`; each batch arrives with the shard it came from.
/// The subscription lives as long as the receiver is read (the connection is kept by the task
/// that decodes the pushes).
pub async fn subscribe_outcomes(
    urls: &[String],
    namespace: &str,
    shards: &[ShardId],
) -> redis::RedisResult<mpsc::UnboundedReceiver<(ShardId, Vec<Outcome>)>> {
    let (push_tx, mut push_rx) = mpsc::unbounded_channel::<PushInfo>();
    let client = ClusterClient::builder(urls.to_vec())
        .use_protocol(ProtocolVersion::RESP3)
        .push_sender(push_tx)
        .build()?;
    let mut conn = client.get_async_connection().await?;
    let mut by_channel = Vec::new();
    for &shard in shards {
        let channel = outcomes_channel(namespace, shard);
        conn.ssubscribe(&channel).await?;
        by_channel.push((channel.into_bytes(), shard));
    }
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _conn = conn;
        while let Some(push) = push_rx.recv().await {
            if push.kind != PushKind::SMessage {
                continue;
            }
            let [Value::BulkString(channel), Value::BulkString(payload)] = &push.data[..] else {
                continue;
            };
            let Some(&(_, shard)) = by_channel.iter().find(|(c, _)| c == channel) else {
                continue;
            };
            match postcard::from_bytes::<Vec<Outcome>>(payload) {
                Ok(outcomes) => {
                    if tx.send((shard, outcomes)).is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!(%shard, error = %e, "undecodable outcomes on the bus"),
            }
        }
    });
    Ok(rx)
}
