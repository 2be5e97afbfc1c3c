//! The accounts store of a cluster: accounts, API keys, deposits and withdrawals and the live
//! balances in Redis, shared by every gateway.
//!
//! # Keys
//! - `{accounts}:next` (the last account id), `{accounts}:all` (every account id),
//!   `{accounts}:key:<key id>` (a hash: account, permissions, salt, enabled),
//!   `{accounts}:master-check` (proof of the master key, so a gateway started with another
//!   master key refuses to run instead of failing every signature), `{accounts}:bootstrap`.
//! - Per account, under its own hash tag `{acct-N}` (so one script can check and change them
//!   together): `:balances` (see `crate::redis_balances`), `:transfers` (a list, oldest
//!   first) and `:transfer-ids` (id to transfer), so a transfer is applied once per id and a
//!   withdrawal only if the balance covers it, atomically with the order reservations.
//! - `sig:<hex>`: a request signature seen, expiring when its window closes (spread over the
//!   cluster, no hash tag).
//!
//! Keys carry a namespace prefix inside the hash tag (empty in production; tests use their own).
//! Secrets are derived from the master key as in the embedded store; Redis holds salts only.

use crate::redis_balances::{LiveBalance, RedisBalances};
use crate::secrets::{derive_secret, random};
use crate::{
    Accounts, AccountsError, Balance, KeyRecord, NewKey, Permissions, Transfer, TransferKind,
};
use async_trait::async_trait;
use exchange_core::{AccountId, AssetId, Hold, Timestamp};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncCommands, ProtocolVersion, RedisError, Script};
use std::collections::{BTreeMap, HashMap};

/// Creates an account: the next id, recorded in the set of all.
const CREATE_ACCOUNT: &str = r"
local id = redis.call('INCR', KEYS[1])
redis.call('SADD', KEYS[2], id)
return id
";

/// Applies a transfer once per id: KEYS = balances, transfer ids, transfers; ARGV = id, the
/// transfer as JSON, asset, amount, 'd' or 'w'. Answers {0, first} for a known id, {2,
/// available} for a withdrawal the balance does not cover, {1, ''} when applied.
const TRANSFER: &str = r"
local function ge(x, y)
    if #x ~= #y then return #x > #y end
    return x >= y
end
local first = redis.call('HGET', KEYS[2], ARGV[1])
if first then
    return {0, first}
end
local field = ARGV[3] .. ':available'
if ARGV[5] == 'w' then
    local available = redis.call('HGET', KEYS[1], field) or '0'
    if string.sub(available, 1, 1) == '-' or not ge(available, ARGV[4]) then
        return {2, available}
    end
    redis.call('HINCRBY', KEYS[1], field, '-' .. ARGV[4])
else
    redis.call('HINCRBY', KEYS[1], field, ARGV[4])
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('RPUSH', KEYS[3], ARGV[2])
return {1, ''}
";

fn unavailable(e: RedisError) -> AccountsError {
    AccountsError::Unavailable(format!("redis: {e}"))
}

/// Why the store could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connecting to Redis Cluster: {0}")]
    Redis(#[from] RedisError),
    #[error(
        "this cluster's API keys were created under another master key: give every gateway the same EXCHANGE_MASTER_KEY"
    )]
    OtherMasterKey,
}

/// The cluster's accounts store. See the module docs.
pub struct RedisAccounts {
    conn: ClusterConnection,
    balances: RedisBalances,
    namespace: String,
    master: [u8; 32],
    create_account: Script,
    transfer: Script,
}

impl RedisAccounts {
    /// Connects to the cluster at `urls`. Fails if the cluster's accounts were created under
    /// another master key.
    pub async fn connect(
        urls: &[String],
        namespace: &str,
        master: [u8; 32],
    ) -> Result<Self, ConnectError> {
        let client = ClusterClient::builder(urls.to_vec())
            .use_protocol(ProtocolVersion::RESP3)
            .build()?;
        let s = Self {
            conn: client.get_async_connection().await?,
            balances: RedisBalances::connect(urls, namespace).await?,
            namespace: namespace.to_owned(),
            master,
            create_account: Script::new(CREATE_ACCOUNT),
            transfer: Script::new(TRANSFER),
        };
        let proof = exchange_client::signing::sign(&master, b"exchange-master-key-check/v1");
        let check = s.key("master-check");
        let _: Option<String> = redis::cmd("SET")
            .arg(&check)
            .arg(&proof)
            .arg("NX")
            .query_async(&mut s.conn.clone())
            .await?;
        let stored: String = s.conn.clone().get(&check).await?;
        if stored != proof {
            return Err(ConnectError::OtherMasterKey);
        }
        Ok(s)
    }

    /// A key of the accounts' slot.
    fn key(&self, name: &str) -> String {
        format!("{{{}accounts}}:{name}", self.namespace)
    }

    /// Whether this caller is the first to ask: the gateway that wins creates the admin key.
    pub async fn claim_bootstrap(&self) -> Result<bool, AccountsError> {
        let won: Option<String> = redis::cmd("SET")
            .arg(self.key("bootstrap"))
            .arg(1)
            .arg("NX")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(won.is_some())
    }

    async fn require_account(&self, account: AccountId) -> Result<(), AccountsError> {
        if account == AccountId::FEES {
            return Ok(());
        }
        let known: bool = self
            .conn
            .clone()
            .sismember(self.key("all"), account.0)
            .await
            .map_err(unavailable)?;
        if known {
            Ok(())
        } else {
            Err(AccountsError::UnknownAccount(account.0))
        }
    }

    async fn accounts(&self) -> Result<Vec<AccountId>, AccountsError> {
        let mut ids: Vec<u64> = self
            .conn
            .clone()
            .smembers(self.key("all"))
            .await
            .map_err(unavailable)?;
        ids.push(AccountId::FEES.0);
        ids.sort_unstable();
        Ok(ids.into_iter().map(AccountId).collect())
    }

    /// One live balance.
    pub async fn balance(
        &self,
        account: AccountId,
        asset: AssetId,
    ) -> Result<LiveBalance, AccountsError> {
        self.balances
            .balance(account, asset)
            .await
            .map_err(unavailable)
    }
}

fn balance(asset: AssetId, b: LiveBalance) -> Balance {
    Balance {
        asset,
        available: b.available.max(0) as u128,
        reserved: b.reserved.max(0) as u128,
    }
}

#[async_trait]
impl Accounts for RedisAccounts {
    async fn key(&self, key_id: &str) -> Option<KeyRecord> {
        let fields: HashMap<String, String> = self
            .conn
            .clone()
            .hgetall(self.key(&format!("key:{key_id}")))
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "reading an API key"))
            .ok()?;
        let salt: [u8; 16] = hex::decode(fields.get("salt")?).ok()?.try_into().ok()?;
        Some(KeyRecord {
            key_id: key_id.to_owned(),
            account: AccountId(fields.get("account")?.parse().ok()?),
            permissions: Permissions::from_names(fields.get("permissions")?.split(',')).ok()?,
            enabled: fields.get("enabled").map(String::as_str) == Some("1"),
            secret: derive_secret(&self.master, key_id, &salt),
        })
    }

    async fn first_use(&self, signature: &[u8], until: Timestamp, now: Timestamp) -> bool {
        let ms = (until.0.saturating_sub(now.0) / 1_000_000).max(1);
        let set: Result<Option<String>, _> = redis::cmd("SET")
            .arg(format!("{}sig:{}", self.namespace, hex::encode(signature)))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ms)
            .query_async(&mut self.conn.clone())
            .await;
        // Unreachable store: refuse (a replay must never pass because Redis was down).
        set.inspect_err(|e| tracing::warn!(error = %e, "recording a signature"))
            .is_ok_and(|s| s.is_some())
    }

    async fn reserve(&self, account: AccountId, hold: Hold) -> Result<(), AccountsError> {
        let amount = u64::try_from(hold.amount).map_err(|_| AccountsError::Insufficient {
            asset: hold.asset,
            available: 0,
            needed: hold.amount,
        })?;
        if self
            .balances
            .reserve(account, hold.asset, amount)
            .await
            .map_err(unavailable)?
        {
            return Ok(());
        }
        let b = self.balance(account, hold.asset).await?;
        Err(AccountsError::Insufficient {
            asset: hold.asset,
            available: b.available.max(0) as u128,
            needed: hold.amount,
        })
    }

    async fn release(&self, account: AccountId, hold: Hold) {
        let Ok(amount) = u64::try_from(hold.amount) else {
            return;
        };
        if let Err(e) = self.balances.release(account, hold.asset, amount).await {
            tracing::error!(account = account.0, asset = hold.asset.0, amount, error = %e, "could not give a reservation back");
        }
    }

    async fn balances(&self, account: AccountId) -> Result<Vec<Balance>, AccountsError> {
        self.require_account(account).await?;
        Ok(self
            .balances
            .all(account)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|(asset, b)| balance(asset, b))
            .collect())
    }

    async fn transfers(&self, account: AccountId) -> Result<Vec<Transfer>, AccountsError> {
        self.require_account(account).await?;
        let list: Vec<String> = self
            .conn
            .clone()
            .lrange(
                format!("{}:transfers", self.balances.account_tag(account)),
                0,
                -1,
            )
            .await
            .map_err(unavailable)?;
        list.iter()
            .map(|t| {
                serde_json::from_str(t)
                    .map_err(|e| AccountsError::Unavailable(format!("a stored transfer: {e}")))
            })
            .collect()
    }

    async fn create_account(&self, _now: Timestamp) -> Result<AccountId, AccountsError> {
        let id: u64 = self
            .create_account
            .key(self.key("next"))
            .key(self.key("all"))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(AccountId(id))
    }

    async fn create_key(
        &self,
        account: AccountId,
        permissions: Permissions,
        _now: Timestamp,
    ) -> Result<NewKey, AccountsError> {
        if account == AccountId::FEES {
            // Nobody trades from the fee account.
            return Err(AccountsError::UnknownAccount(account.0));
        }
        self.require_account(account).await?;
        let key_id = format!("k{}", hex::encode(random::<12>()));
        let salt: [u8; 16] = random();
        let _: () = self
            .conn
            .clone()
            .hset_multiple(
                self.key(&format!("key:{key_id}")),
                &[
                    ("account", account.0.to_string()),
                    ("permissions", permissions.names().join(",")),
                    ("salt", hex::encode(salt)),
                    ("enabled", "1".to_owned()),
                ],
            )
            .await
            .map_err(unavailable)?;
        Ok(NewKey {
            secret: derive_secret(&self.master, &key_id, &salt),
            key_id,
            permissions,
        })
    }

    async fn set_key_enabled(&self, key_id: &str, enabled: bool) -> Result<(), AccountsError> {
        // HSET only where the key exists (HSETEX-free: one script would do, a check is enough
        // as keys are never deleted).
        let key = self.key(&format!("key:{key_id}"));
        let exists: bool = self.conn.clone().exists(&key).await.map_err(unavailable)?;
        if !exists {
            return Err(AccountsError::UnknownKey(key_id.to_owned()));
        }
        let _: () = self
            .conn
            .clone()
            .hset(&key, "enabled", if enabled { "1" } else { "0" })
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn totals(&self) -> Vec<(AssetId, i128, i128)> {
        let mut net: BTreeMap<AssetId, (i128, i128)> = BTreeMap::new();
        let Ok(accounts) = self.accounts().await else {
            return Vec::new();
        };
        for account in accounts {
            if let Ok(transfers) = self.transfers(account).await {
                for t in transfers {
                    net.entry(t.asset).or_default().0 += t.signed();
                }
            }
            if let Ok(held) = self.balances.all(account).await {
                for (asset, b) in held {
                    net.entry(asset).or_default().1 += b.available as i128 + b.reserved as i128;
                }
            }
        }
        net.into_iter().map(|(a, (n, h))| (a, n, h)).collect()
    }

    async fn transfer(&self, t: Transfer) -> Result<(Transfer, bool), AccountsError> {
        self.require_account(t.account).await?;
        let amount = i64::try_from(t.amount).map_err(|_| {
            AccountsError::Unavailable(format!(
                "{} units is more than one balance can hold",
                t.amount
            ))
        })?;
        let tag = self.balances.account_tag(t.account);
        let json = serde_json::to_string(&t).expect("transfers serialise");
        let (code, detail): (i64, String) = self
            .transfer
            .key(self.balances.balances_key(t.account))
            .key(format!("{tag}:transfer-ids"))
            .key(format!("{tag}:transfers"))
            .arg(&t.id)
            .arg(&json)
            .arg(t.asset.0)
            .arg(amount)
            .arg(match t.kind {
                TransferKind::Deposit => "d",
                TransferKind::Withdrawal => "w",
            })
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        match code {
            1 => Ok((t, true)),
            0 => {
                let first: Transfer = serde_json::from_str(&detail)
                    .map_err(|e| AccountsError::Unavailable(format!("a stored transfer: {e}")))?;
                if first.same_request(&t) {
                    Ok((first, false))
                } else {
                    Err(AccountsError::TransferConflict(t.id))
                }
            }
            _ => Err(AccountsError::Insufficient {
                asset: t.asset,
                available: detail.parse::<i128>().unwrap_or(0).max(0) as u128,
                needed: t.amount,
            }),
        }
    }
}
