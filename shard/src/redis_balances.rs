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

use crate::funds::Move;
use exchange_core::{AccountId, AssetId, ShardId};
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

/// Applies one source's moves for one account, once: ARGV = source, position, then
/// (asset, available delta, reserved delta) triples.
const APPLY: &str = r"
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if last >= tonumber(ARGV[2]) then
    return 0
end
for i = 3, #ARGV, 3 do
    if ARGV[i + 1] ~= '0' then
        redis.call('HINCRBY', KEYS[1], ARGV[i] .. ':available', ARGV[i + 1])
    end
    if ARGV[i + 2] ~= '0' then
        redis.call('HINCRBY', KEYS[1], ARGV[i] .. ':reserved', ARGV[i + 2])
    end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
";

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

    fn keys(&self, account: AccountId) -> (String, String) {
        let tag = format!("{{{}acct-{}}}", self.namespace, account.0);
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
        self.apply(&format!("shard-{}", shard.0), offset, moves)
            .await
    }

    /// Applies `source`'s moves at `position` (increasing per source: a command's offset, a
    /// transfer's number), once per account. Returns how many accounts took them (0 when every
    /// one had applied them before).
    pub async fn apply(&self, source: &str, position: u64, moves: &[Move]) -> RedisResult<usize> {
        let mut by_account: BTreeMap<AccountId, Vec<&Move>> = BTreeMap::new();
        for m in moves {
            by_account.entry(m.account).or_default().push(m);
        }
        let mut applied = 0;
        for (account, moves) in by_account {
            let (balances, marks) = self.keys(account);
            let mut call = self.apply.key(balances);
            call.key(marks).arg(source).arg(position);
            for m in moves {
                call.arg(m.asset.0)
                    .arg(m.available.to_string())
                    .arg(m.reserved.to_string());
            }
            let done: i64 = call.invoke_async(&mut self.conn.clone()).await?;
            applied += done as usize;
        }
        Ok(applied)
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
