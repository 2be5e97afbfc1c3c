//! Outcomes across processes on Redis Cluster: a shard publishes each applied batch's outcomes
//! on the sharded Pub/Sub channel `{shard-N}:outcomes` (the shard's hash tag, so the channel
//! lives on the node that holds its log), and every gateway subscribes to the channels of the
//! shards it sends to, to answer the requests waiting on them.
//!
//! Pub/Sub delivers to whoever listens at that moment and keeps nothing: it carries answers,
//! never commands (those go through the log). A gateway that misses an outcome (disconnected at
//! that moment) times its request out, and the order, which is in the log, can be read back.

use crate::balances::Move;
use crate::redis_log::shard_tag;
use crate::sink::{BalanceMoves, EventSink};
use crate::state::Outcome;
use exchange_core::ShardId;
use redis::cluster::ClusterClient;
use redis::{AsyncCommands, ProtocolVersion, PushInfo, PushKind, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The channel shard `shard` publishes its outcomes on.
pub fn outcomes_channel(namespace: &str, shard: ShardId) -> String {
    format!("{}:outcomes", shard_tag(namespace, shard))
}

/// What the sink's task does with one batch.
struct Batch {
    shard: ShardId,
    outcomes: Vec<Outcome>,
    /// False for outcomes replayed at recovery: their moves are applied (once), but they were
    /// answered before the restart.
    publish: bool,
}

/// An [`EventSink`] for a shard in a cluster. From a task of its own (the shard never waits on
/// the network), in log order: applies each batch's balance moves to the live balances (once
/// per account and offset, retrying while Redis fails, so none is lost), then publishes the
/// outcomes with `SPUBLISH`, so a gateway that answers a client has the balances current.
pub struct RedisSink {
    batches: mpsc::UnboundedSender<Batch>,
}

/// How long the sink waits before retrying a batch whose moves Redis did not take.
const RETRY: Duration = Duration::from_millis(200);

impl RedisSink {
    /// Connects to the cluster at `urls`; outcomes go to the channels under `namespace`, and
    /// their moves to `balances` when given.
    pub async fn connect(
        urls: &[String],
        namespace: &str,
        balances: Option<Arc<dyn BalanceMoves>>,
    ) -> redis::RedisResult<Self> {
        let client = ClusterClient::builder(urls.to_vec())
            .use_protocol(ProtocolVersion::RESP3)
            .build()?;
        let mut conn = client.get_async_connection().await?;
        let (batches, mut rx) = mpsc::unbounded_channel::<Batch>();
        let namespace = namespace.to_owned();
        tokio::spawn(async move {
            while let Some(batch) = rx.recv().await {
                let shard = batch.shard;
                if let Some(balances) = &balances {
                    let moves: Vec<(u64, &[Move])> = batch
                        .outcomes
                        .iter()
                        .filter(|o| !o.moves.is_empty())
                        .map(|o| (o.offset, o.moves.as_slice()))
                        .collect();
                    while let Err(e) = balances.apply_moves(shard, &moves).await {
                        metrics::counter!("exchange_balance_apply_failures_total").increment(1);
                        tracing::warn!(%shard, error = %e, "could not apply balance moves; retrying");
                        tokio::time::sleep(RETRY).await;
                    }
                }
                if !batch.publish {
                    continue;
                }
                let payload =
                    postcard::to_stdvec(&batch.outcomes).expect("outcomes always serialise");
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
            let _ = self.batches.send(Batch {
                shard,
                outcomes,
                publish: true,
            });
        }
    }

    fn replayed(&self, shard: ShardId, outcomes: &[Outcome]) {
        if outcomes.iter().any(|o| !o.moves.is_empty()) {
            let _ = self.batches.send(Batch {
                shard,
                outcomes: outcomes.to_vec(),
                publish: false,
            });
        }
    }
}

/// How often a subscriber checks that each of its subscriptions still delivers.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// A subscription silent this long (heartbeats included) is made again on a new connection.
const SILENCE: Duration = Duration::from_secs(3);

/// A connection subscribed to `channels`, and the pushes it receives.
async fn subscribed(
    urls: &[String],
    channels: &[String],
) -> redis::RedisResult<(
    redis::cluster_async::ClusterConnection,
    mpsc::UnboundedReceiver<PushInfo>,
)> {
    let (push_tx, push_rx) = mpsc::unbounded_channel::<PushInfo>();
    let client = ClusterClient::builder(urls.to_vec())
        .use_protocol(ProtocolVersion::RESP3)
        .push_sender(push_tx)
        .build()?;
    let mut conn = client.get_async_connection().await?;
    for channel in channels {
        conn.ssubscribe(channel).await?;
    }
    Ok((conn, push_rx))
}

/// Subscribes to the sharded Pub/Sub `channels`; each message is decoded by `decode` (from its
/// channel and payload; `None` skips it) and sent to the receiver. The subscription lives as
/// long as the receiver is read (the connection is kept by the task that decodes the pushes).
///
/// A sharded subscription lives on the node that holds its channel's slot, and dies with it
/// (a master failing over). So every second the task publishes an empty heartbeat on each of
/// its channels (receivers never see it), and a channel silent for three seconds makes it
/// subscribe again, on a new connection, until that succeeds. What was published meanwhile is
/// lost, as Pub/Sub always may lose it: the requests waiting on it time out.
pub async fn ssubscribe<T, F>(
    urls: &[String],
    channels: &[String],
    decode: F,
) -> redis::RedisResult<mpsc::UnboundedReceiver<T>>
where
    T: Send + 'static,
    F: Fn(&[u8], &[u8]) -> Option<T> + Send + 'static,
{
    let (mut conn, mut push_rx) = subscribed(urls, channels).await?;
    let (urls, channels) = (urls.to_vec(), channels.to_vec());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let mut heard = vec![tokio::time::Instant::now(); channels.len()];
            let mut beat = tokio::time::interval(HEARTBEAT);
            loop {
                tokio::select! {
                    push = push_rx.recv() => {
                        let Some(push) = push else { break };
                        if push.kind == PushKind::Disconnection {
                            break;
                        }
                        if push.kind != PushKind::SMessage {
                            continue;
                        }
                        let [Value::BulkString(channel), Value::BulkString(payload)] = &push.data[..]
                        else {
                            continue;
                        };
                        if let Some(i) = channels.iter().position(|c| c.as_bytes() == &channel[..]) {
                            heard[i] = tokio::time::Instant::now();
                        }
                        if payload.is_empty() {
                            continue;
                        }
                        if let Some(message) = decode(channel, payload)
                            && tx.send(message).is_err()
                        {
                            return;
                        }
                    }
                    _ = beat.tick() => {
                        if tx.is_closed() {
                            return;
                        }
                        if heard.iter().any(|h| h.elapsed() > SILENCE) {
                            break;
                        }
                        for channel in &channels {
                            let _ = conn.spublish::<_, _, usize>(channel, &[] as &[u8]).await;
                        }
                    }
                }
            }
            metrics::counter!("exchange_resubscriptions_total").increment(1);
            tracing::warn!(?channels, "a subscription went silent; subscribing again");
            loop {
                match subscribed(&urls, &channels).await {
                    Ok(fresh) => {
                        (conn, push_rx) = fresh;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "subscribing again failed; retrying");
                        tokio::time::sleep(HEARTBEAT).await;
                    }
                }
            }
        }
    });
    Ok(rx)
}

/// Subscribes to the outcomes of `shards`; each batch arrives with the shard it came from.
pub async fn subscribe_outcomes(
    urls: &[String],
    namespace: &str,
    shards: &[ShardId],
) -> redis::RedisResult<mpsc::UnboundedReceiver<(ShardId, Vec<Outcome>)>> {
    let channels: Vec<String> = shards
        .iter()
        .map(|&s| outcomes_channel(namespace, s))
        .collect();
    let by_channel: Vec<(Vec<u8>, ShardId)> = channels
        .iter()
        .map(|c| c.as_bytes().to_vec())
        .zip(shards.iter().copied())
        .collect();
    ssubscribe(urls, &channels, move |channel, payload| {
        let &(_, shard) = by_channel.iter().find(|(c, _)| c == channel)?;
        match postcard::from_bytes::<Vec<Outcome>>(payload) {
            Ok(outcomes) => Some((shard, outcomes)),
            Err(e) => {
                tracing::warn!(%shard, error = %e, "undecodable outcomes on the bus");
                None
            }
        }
    })
    .await
}
