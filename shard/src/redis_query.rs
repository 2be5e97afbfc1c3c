//! Reads of a shard's state across processes, over sharded Pub/Sub.
//!
//! A shard subscribes to `{shard-N}:queries`; a gateway subscribes to a reply channel of its
//! own (`{gw-<random>}:answers`) and publishes each [`Query`] with its reply channel and a
//! request id; the shard answers from its state under the read lock ([`query::answer`]) on
//! the reply channel. Pub/Sub keeps nothing, which is what reads want: a question asked while
//! the shard is down is not answered late (the gateway learns at once that nobody listens and
//! says the shard is unavailable), and a lost answer is a timeout the client can retry.
//!
//! Commands never take this path: they go through the log.

use crate::query::{self, Answer, Query};
use crate::redis_log::shard_tag;
use crate::redis_sink::ssubscribe;
use crate::state::ShardState;
use exchange_core::ShardId;
use parking_lot::{Mutex, RwLock};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncCommands, ProtocolVersion};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The channel shard `shard` takes questions on.
pub fn queries_channel(namespace: &str, shard: ShardId) -> String {
    format!("{}:queries", shard_tag(namespace, shard))
}

#[derive(Serialize, Deserialize)]
struct Request {
    id: u64,
    reply: String,
    query: Query,
}

#[derive(Serialize, Deserialize)]
struct Reply {
    id: u64,
    answer: Answer,
}

/// Why a question got no answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0} is not answering (no process serves it)")]
    NotServed(ShardId),
    #[error("{0} did not answer in time")]
    Timeout(ShardId),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Answers the questions for shard `shard` from `state` until the returned task is aborted.
/// `logged` gives the last offset of the shard's command log (for health).
pub async fn serve(
    urls: &[String],
    namespace: &str,
    shard: ShardId,
    state: Arc<RwLock<ShardState>>,
    logged: impl Fn() -> u64 + Send + Sync + 'static,
) -> redis::RedisResult<JoinHandle<()>> {
    let mut requests = ssubscribe(urls, &[queries_channel(namespace, shard)], |_, payload| {
        postcard::from_bytes::<Request>(payload)
            .inspect_err(|e| tracing::warn!(error = %e, "undecodable question"))
            .ok()
    })
    .await?;
    let mut conn = connect(urls).await?;
    Ok(tokio::spawn(async move {
        while let Some(req) = requests.recv().await {
            let answer = query::answer(&state.read(), &req.query, logged());
            let reply = postcard::to_stdvec(&Reply { id: req.id, answer })
                .expect("answers always serialise");
            if let Err(e) = conn.spublish::<_, _, usize>(&req.reply, reply).await {
                tracing::warn!(%shard, error = %e, "could not answer a question");
            }
        }
    }))
}

async fn connect(urls: &[String]) -> redis::RedisResult<ClusterConnection> {
    ClusterClient::builder(urls.to_vec())
        .use_protocol(ProtocolVersion::RESP3)
        .build()?
        .get_async_connection()
        .await
}

type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<Answer>>>>;

/// A gateway's side: asks any shard a question and waits for its answer.
pub struct QueryClient {
    namespace: String,
    reply: String,
    conn: ClusterConnection,
    next: AtomicU64,
    waiting: Waiting,
    timeout: Duration,
}

impl QueryClient {
    /// Subscribes to a reply channel of its own on the cluster at `urls`.
    pub async fn connect(
        urls: &[String],
        namespace: &str,
        timeout: Duration,
    ) -> redis::RedisResult<Self> {
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(|e| {
            redis::RedisError::from(std::io::Error::other(format!("random source: {e}")))
        })?;
        let reply = format!("{{{namespace}gw-{:016x}}}:answers", u64::from_le_bytes(id));
        let waiting: Waiting = Arc::default();
        let to_waiters = Arc::clone(&waiting);
        let mut replies = ssubscribe(urls, std::slice::from_ref(&reply), |_, payload| {
            postcard::from_bytes::<Reply>(payload).ok()
        })
        .await?;
        tokio::spawn(async move {
            while let Some(r) = replies.recv().await {
                if let Some(tx) = to_waiters.lock().remove(&r.id) {
                    let _ = tx.send(r.answer);
                }
            }
        });
        Ok(Self {
            namespace: namespace.to_owned(),
            reply,
            conn: connect(urls).await?,
            next: AtomicU64::new(1),
            waiting,
            timeout,
        })
    }

    /// Asks shard `shard` and waits for the answer.
    pub async fn ask(&self, shard: ShardId, query: Query) -> Result<Answer, QueryError> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().insert(id, tx);
        let request = postcard::to_stdvec(&Request {
            id,
            reply: self.reply.clone(),
            query,
        })
        .expect("questions always serialise");
        let sent = self
            .conn
            .clone()
            .spublish::<_, _, usize>(queries_channel(&self.namespace, shard), request)
            .await;
        let result = match sent {
            Err(e) => Err(QueryError::Redis(e)),
            Ok(0) => Err(QueryError::NotServed(shard)),
            Ok(_) => match tokio::time::timeout(self.timeout, rx).await {
                Ok(Ok(answer)) => return Ok(answer),
                _ => Err(QueryError::Timeout(shard)),
            },
        };
        self.waiting.lock().remove(&id);
        result
    }
}
