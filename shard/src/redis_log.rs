//! The command log on Redis Cluster: one stream per shard, `{shard-N}:commands`, with its
//! offset counter `{shard-N}:offset` in the same hash slot.
//!
//! An append is one Lua script: it takes as many offsets from the counter as it has records and
//! adds each record with the stream id `0-<offset>`, so offsets stay dense (1, 2, 3, ...) and in
//! the same order as in the stream, whichever gateway appends. The script answers with the
//! first offset; like the journal, the log stamps each `Place` with its order id
//! (`LogRecord::assign`) from its offset, on append and again on read, so every reader derives
//! the same ids. Records are the journal's postcard encoding.
//!
//! Durability is Redis's: run the nodes with `appendonly yes` and `appendfsync always` (as
//! `infra/redis-cluster.sh` does) and an acknowledged append survives a restart of its master.
//! Reads use a connection of their own, so a blocked `XREAD` never delays an append.
//! Acknowledging trims the stream below the offset (`XTRIM MINID`).

use crate::log::{CommandLog, Entry, LogError, LogRecord};
use async_trait::async_trait;
use exchange_core::ShardId;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, ProtocolVersion, Script, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

const APPEND: &str = r"
local n = #ARGV
local first = redis.call('INCRBY', KEYS[2], n) - n + 1
for i = 1, n do
    redis.call('XADD', KEYS[1], '0-' .. (first + i - 1), 'r', ARGV[i])
end
return first
";

/// How long one blocking read waits before checking whether the log was closed.
const BLOCK: Duration = Duration::from_millis(250);

fn redis_error(e: redis::RedisError) -> LogError {
    LogError::Io(std::io::Error::other(format!("redis: {e}")))
}

/// A shard's command log on Redis Cluster. See the module docs.
pub struct RedisLog {
    stream: String,
    counter: String,
    writer: ClusterConnection,
    reader: ClusterConnection,
    script: Script,
    last: AtomicU64,
    closed: AtomicBool,
}

/// The hash-tagged key prefix of shard `shard` under `namespace` (empty in production).
pub fn shard_tag(namespace: &str, shard: ShardId) -> String {
    format!("{{{namespace}shard-{}}}", shard.0)
}

/// Records `shards` as the cluster's shard count if none is recorded yet, and answers the one
/// recorded (symbols are routed by shard count, so every process must use the same).
pub async fn record_shard_count(
    urls: &[String],
    namespace: &str,
    shards: u32,
) -> redis::RedisResult<Option<u64>> {
    let mut conn = ClusterClient::builder(urls.to_vec())
        .use_protocol(ProtocolVersion::RESP3)
        .build()?
        .get_async_connection()
        .await?;
    let key = format!("{{{namespace}cluster}}:shards");
    let _: Option<String> = redis::cmd("SET")
        .arg(&key)
        .arg(shards)
        .arg("NX")
        .query_async(&mut conn)
        .await?;
    conn.get(&key).await
}

impl RedisLog {
    /// Connects to the cluster at `urls` and opens shard `shard`'s log under `namespace`
    /// (keys `{<namespace>shard-N}:...`; tests use a namespace of their own).
    pub async fn open(urls: &[String], namespace: &str, shard: ShardId) -> Result<Self, LogError> {
        let client = ClusterClient::builder(urls.to_vec())
            .use_protocol(ProtocolVersion::RESP3)
            .response_timeout(BLOCK * 8)
            .build()
            .map_err(redis_error)?;
        let mut writer = client.get_async_connection().await.map_err(redis_error)?;
        let reader = client.get_async_connection().await.map_err(redis_error)?;
        let tag = shard_tag(namespace, shard);
        let counter = format!("{tag}:offset");
        let last: Option<u64> = writer.get(&counter).await.map_err(redis_error)?;
        Ok(Self {
            stream: format!("{tag}:commands"),
            counter,
            writer,
            reader,
            script: Script::new(APPEND),
            last: AtomicU64::new(last.unwrap_or(0)),
            closed: AtomicBool::new(false),
        })
    }

    fn seen(&self, offset: u64) {
        self.last.fetch_max(offset, Ordering::SeqCst);
    }
}

fn offset_of(id: &str) -> Result<u64, LogError> {
    id.strip_prefix("0-")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| LogError::Corrupt {
            offset: 0,
            reason: format!("stream id {id} is not 0-<offset>"),
        })
}

#[async_trait]
impl CommandLog for RedisLog {
    async fn append(&self, records: Vec<LogRecord>) -> Result<Vec<Entry>, LogError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        if self.closed.load(Ordering::SeqCst) {
            return Err(LogError::Closed);
        }
        let encoded: Vec<Vec<u8>> = records
            .iter()
            .map(|r| postcard::to_stdvec(r).expect("log records always serialise"))
            .collect();
        let (script, stream, counter, mut writer) = (
            self.script.clone(),
            self.stream.clone(),
            self.counter.clone(),
            self.writer.clone(),
        );
        // In a task of its own, so it runs to its end even if the caller goes away (a client
        // that hangs up): the gateway reserved the order's funds before appending, and the
        // shard takes them over only once the command is in the log.
        let first: u64 = tokio::spawn(async move {
            let mut invocation = script.key(&stream);
            invocation.key(&counter);
            for r in &encoded {
                invocation.arg(r);
            }
            invocation.invoke_async(&mut writer).await
        })
        .await
        .map_err(|e| LogError::Io(std::io::Error::other(e)))?
        .map_err(redis_error)?;
        let entries: Vec<Entry> = records
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                let offset = first + i as u64;
                r.assign(offset);
                (offset, r)
            })
            .collect();
        if let Some((last, _)) = entries.last() {
            self.seen(*last);
        }
        Ok(entries)
    }

    async fn read(&self, after: u64, max: usize) -> Result<Vec<Entry>, LogError> {
        let options = StreamReadOptions::default()
            .count(max.max(1))
            .block(BLOCK.as_millis() as usize);
        loop {
            let read = self
                .reader
                .clone()
                .xread_options(&[&self.stream], &[format!("0-{after}")], &options)
                .await;
            let reply: Option<StreamReadReply> = match read {
                Ok(reply) => reply,
                // A master failing over: the client finds the new one; the log is still there.
                Err(e) if !self.closed.load(Ordering::SeqCst) => {
                    metrics::counter!("exchange_log_read_retries_total").increment(1);
                    tracing::warn!(stream = %self.stream, error = %e, "reading the command log failed; retrying");
                    tokio::time::sleep(BLOCK).await;
                    continue;
                }
                Err(e) => return Err(redis_error(e)),
            };
            let ids = reply
                .into_iter()
                .flat_map(|r| r.keys)
                .flat_map(|k| k.ids)
                .collect::<Vec<_>>();
            if ids.is_empty() {
                if self.closed.load(Ordering::SeqCst) {
                    return Ok(Vec::new());
                }
                continue;
            }
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let offset = offset_of(&id.id)?;
                let bytes = match id.map.get("r") {
                    Some(Value::BulkString(b)) => b,
                    other => {
                        return Err(LogError::Corrupt {
                            offset,
                            reason: format!("no record payload: {other:?}"),
                        });
                    }
                };
                let mut record: LogRecord =
                    postcard::from_bytes(bytes).map_err(|e| LogError::Corrupt {
                        offset,
                        reason: e.to_string(),
                    })?;
                record.assign(offset);
                out.push((offset, record));
            }
            if let Some((last, _)) = out.last() {
                self.seen(*last);
            }
            return Ok(out);
        }
    }

    async fn ack(&self, offset: u64) -> Result<(), LogError> {
        redis::cmd("XTRIM")
            .arg(&self.stream)
            .arg("MINID")
            .arg(format!("0-{}", offset + 1))
            .query_async::<u64>(&mut self.writer.clone())
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    fn last_offset(&self) -> u64 {
        self.last.load(Ordering::SeqCst)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }
}
