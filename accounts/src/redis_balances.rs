//! Live balances on Redis Cluster: the check-and-reserve that gateways in separate processes
//! share, and the moves shards apply, each one atomic Lua script on the account's hash slot.
//!
//! An account's balances are one hash, `{acct-N}:balances`, with fields `<asset>:available`
//! and `<asset>:reserved` in units (integers). A reservation succeeds only if the available
//! balance covers it, in the same script that moves it to reserved, so no two gateways can
//! spend the same balance. A shard applies the moves of each command with the command's
//! offset, and the account remembers per shard the last offset applied
//! (`{acct-N}:applied`), so a shard that restarts and replays does not apply them twice.
//!
//! Amounts are compared as decimal strings, not Lua numbers (doubles, exact only to 2^53);
//! Redis's `HINCRBY` is exact 64-bit and refuses to overflow.

use exchange_core::{AccountId, AssetId, ShardId};
use exchange_shard::{BalanceMoves, Move};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{ProtocolVersion, RedisResult, Script};
use std::collections::BTreeMap;

/// `ge(x, y)` for non-negative integer strings, then the reservation.
const RESERVE: &str = r"
local function ge(x, y)
    if #x ~= #y then return #x > #y end
    return x >= y
end
local available = redis.call('HGET', KEYS[1], ARGV[1] .. ':available') or '0'
if string.sub(available, 1, 1) == '-' or not ge(available, ARGV[2]) then
    return 0
end
redis.call('HINCRBY', KEYS[1], ARGV[1] .. ':available', '-' .. ARGV[2])
redis.call('HINCRBY', KEYS[1], ARGV[1] .. ':reserved', ARGV[2])
return 1
";

/// Gives a reservation back: ARGV = asset, amount.
const RELEASE: &str = r"
redis.call('HINCRBY', KEYS[1], ARGV[1] .. ':reserved', '-' .. ARGV[2])
redis.call('HINCRBY', KEYS[1], ARGV[1] .. ':available', ARGV[2])
return 1
";

/// Applies one source's moves for one account, each position once: ARGV = source, then per
/// position in increasing order: position, n, and n (asset, available delta, reserved delta)
/// triples. Positions at or below the last one applied are skipped.
const APPLY: &str = r"
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local newest = last
local i = 2
while i <= #ARGV do
    local position = tonumber(ARGV[i])
    local n = tonumber(ARGV[i + 1])
    i = i + 2
    if position > newest then
        for k = i, i + 3 * (n - 1), 3 do
            if ARGV[k + 1] ~= '0' then
                redis.call('HINCRBY', KEYS[1], ARGV[k] .. ':available', ARGV[k + 1])
            end
            if ARGV[k + 2] ~= '0' then
                redis.call('HINCRBY', KEYS[1], ARGV[k] .. ':reserved', ARGV[k + 2])
            end
        end
        newest = position
    end
    i = i + 3 * n
end
if newest > last then
    redis.call('HSET', KEYS[2], ARGV[1], newest)
    return 1
end
return 0
";

/// The source name of shard `shard`'s moves.
pub fn shard_source(shard: ShardId) -> String {
    format!("shard-{}", shard.0)
}

/// An account's live balance of one asset, in units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveBalance {
    pub available: i64,
    pub reserved: i64,
}

/// The live balances on the cluster.
#[derive(Clone)]
pub struct RedisBalances {
    conn: ClusterConnection,
    namespace: String,
    reserve: Script,
    release: Script,
    apply: Script,
}

impl RedisBalances {
    /// Connects to the cluster at `urls`, with keys under `namespace` (empty in production).
    pub async fn connect(urls: &[String], namespace: &str) -> RedisResult<Self> {
        let client = ClusterClient::builder(urls.to_vec())
            .use_protocol(ProtocolVersion::RESP3)
            .build()?;
        Ok(Self {
            conn: client.get_async_connection().await?,
            namespace: namespace.to_owned(),
            reserve: Script::new(RESERVE),
            release: Script::new(RELEASE),
            apply: Script::new(APPLY),
        })
    }

    /// The hash tag of `account`'s keys: whatever else is kept per account under it (its
    /// transfers) sits in the same slot, so a script can change it with the balances.
    pub fn account_tag(&self, account: AccountId) -> String {
        format!("{{{}acct-{}}}", self.namespace, account.0)
    }

    /// The key of `account`'s balances hash.
    pub fn balances_key(&self, account: AccountId) -> String {
        format!("{}:balances", self.account_tag(account))
    }

    fn keys(&self, account: AccountId) -> (String, String) {
        let tag = self.account_tag(account);
        (format!("{tag}:balances"), format!("{tag}:applied"))
    }

    /// Moves `amount` from available to reserved if available covers it; `false` otherwise.
    pub async fn reserve(
        &self,
        account: AccountId,
        asset: AssetId,
        amount: u64,
    ) -> RedisResult<bool> {
        if amount == 0 {
            return Ok(true);
        }
        let (balances, _) = self.keys(account);
        let done: i64 = self
            .reserve
            .key(balances)
            .arg(asset.0)
            .arg(amount.to_string())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(done == 1)
    }

    /// Gives back a reservation whose command never reached a log.
    pub async fn release(
        &self,
        account: AccountId,
        asset: AssetId,
        amount: u64,
    ) -> RedisResult<()> {
        if amount == 0 {
            return Ok(());
        }
        let (balances, _) = self.keys(account);
        let _: i64 = self
            .release
            .key(balances)
            .arg(asset.0)
            .arg(amount.to_string())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    /// Applies shard `shard`'s moves for the command at `offset`, once per account.
    pub async fn apply_shard(
        &self,
        shard: ShardId,
        offset: u64,
        moves: &[Move],
    ) -> RedisResult<usize> {
        self.apply(&shard_source(shard), offset, moves).await
    }

    /// Applies `source`'s moves at `position` (increasing per source: a command's offset, a
    /// transfer's number), once per account. Returns how many accounts took them (0 when every
    /// one had applied them before).
    pub async fn apply(&self, source: &str, position: u64, moves: &[Move]) -> RedisResult<usize> {
        self.apply_batch(source, &[(position, moves)]).await
    }

    /// Applies `source`'s moves at each position of `batch` (in increasing order), each position
    /// once per account: one script per account, the accounts' scripts sent at once. Returns how
    /// many accounts took some of them.
    pub async fn apply_batch(&self, source: &str, batch: &[(u64, &[Move])]) -> RedisResult<usize> {
        let mut by_account: BTreeMap<AccountId, Vec<(u64, Vec<&Move>)>> = BTreeMap::new();
        for &(position, moves) in batch {
            for m in moves {
                let positions = by_account.entry(m.account).or_default();
                match positions.last_mut() {
                    Some((p, ms)) if *p == position => ms.push(m),
                    _ => positions.push((position, vec![m])),
                }
            }
        }
        let calls: Vec<_> = by_account
            .into_iter()
            .map(|(account, positions)| {
                let (balances, marks) = self.keys(account);
                let mut call = self.apply.key(balances);
                call.key(marks).arg(source);
                for (position, moves) in positions {
                    call.arg(position).arg(moves.len());
                    for m in moves {
                        call.arg(m.asset.0)
                            .arg(m.available.to_string())
                            .arg(m.reserved.to_string());
                    }
                }
                let mut conn = self.conn.clone();
                async move { call.invoke_async::<i64>(&mut conn).await }
            })
            .collect();
        let mut applied = 0;
        for done in futures_util::future::join_all(calls).await {
            applied += done? as usize;
        }
        Ok(applied)
    }

    /// Every asset `account` has held, with its balance, by asset.
    pub async fn all(&self, account: AccountId) -> RedisResult<Vec<(AssetId, LiveBalance)>> {
        let fields: BTreeMap<String, i64> = redis::cmd("HGETALL")
            .arg(self.balances_key(account))
            .query_async(&mut self.conn.clone())
            .await?;
        let mut out: BTreeMap<AssetId, LiveBalance> = BTreeMap::new();
        for (field, value) in fields {
            let Some((asset, part)) = field.split_once(':') else {
                continue;
            };
            let Ok(asset) = asset.parse() else { continue };
            let b = out.entry(AssetId(asset)).or_default();
            match part {
                "available" => b.available = value,
                "reserved" => b.reserved = value,
                _ => {}
            }
        }
        Ok(out.into_iter().collect())
    }

    /// An account's balance of an asset.
    pub async fn balance(&self, account: AccountId, asset: AssetId) -> RedisResult<LiveBalance> {
        let (balances, _) = self.keys(account);
        let (available, reserved): (Option<i64>, Option<i64>) = redis::cmd("HMGET")
            .arg(balances)
            .arg(format!("{}:available", asset.0))
            .arg(format!("{}:reserved", asset.0))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(LiveBalance {
            available: available.unwrap_or(0),
            reserved: reserved.unwrap_or(0),
        })
    }
}

#[async_trait::async_trait]
impl BalanceMoves for RedisBalances {
    async fn apply_moves(
        &self,
        shard: ShardId,
        batch: &[(u64, &[Move])],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.apply_batch(&shard_source(shard), batch).await?;
        Ok(())
    }
}
