//! exchange-accounts: accounts, API keys, live balances and the atomic check-and-reserve,
//! deposits and withdrawals; the [`Accounts`] trait and both of its stores.
//!
//! The embedded store ([`EmbeddedAccounts`]) keeps them in process over an append-only log; in
//! a cluster ([`RedisAccounts`]) the same calls are Redis scripts on the account's hash slot.
//! Either way [`Accounts::reserve`] is atomic per account: two orders can never spend the same
//! balance, whichever gateways they came through. `tests/contract.rs` runs one suite against
//! both stores.
//!
//! # Layout
//! - this file: the trait and its types.
//! - [`secrets`]: the master key and the keys' secrets derived from it.
//! - [`embedded`]: the embedded store: the accounts log, live balances in memory, used
//!   signatures.
//! - [`redis`]: the cluster's store (accounts, keys, transfers, signatures in Redis).
//! - [`redis_balances`]: the cluster's live balances: reserve, release and applying a shard's
//!   moves once, as Lua scripts on the account's slot.

pub mod embedded;
pub mod redis;
pub mod redis_balances;
pub mod secrets;

pub use embedded::{EmbeddedAccounts, OpenError};
pub use redis::RedisAccounts;
pub use redis_balances::{LiveBalance, RedisBalances};
pub use secrets::{MasterKeyError, master_key, write_private};

use async_trait::async_trait;
use exchange_core::{AccountId, AssetId, Hold, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a key may do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    /// Read the account's orders, balances, fills and ledger.
    pub read: bool,
    /// Place, amend and cancel orders.
    pub trade: bool,
    /// Create accounts and keys, deposit and withdraw for any account.
    pub admin: bool,
}

/// One permission, for checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    Read,
    Trade,
    Admin,
}

impl Permissions {
    /// Whether these permissions include `p`.
    pub fn allows(&self, p: Permission) -> bool {
        match p {
            Permission::Read => self.read,
            Permission::Trade => self.trade,
            Permission::Admin => self.admin,
        }
    }

    /// Parses names like `["read", "trade"]`.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut p = Self::default();
        for n in names {
            match n {
                "read" => p.read = true,
                "trade" => p.trade = true,
                "admin" => p.admin = true,
                other => return Err(format!("unknown permission {other:?} (read, trade, admin)")),
            }
        }
        Ok(p)
    }

    /// The names of the permissions held.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.read, "read"),
            (self.trade, "trade"),
            (self.admin, "admin"),
        ]
        .into_iter()
        .filter_map(|(on, n)| on.then_some(n))
        .collect()
    }
}

/// A key's secret. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// An API key as the gateway needs it to check a signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub key_id: String,
    pub account: AccountId,
    pub permissions: Permissions,
    pub enabled: bool,
    pub secret: Secret,
}

/// A key just created: the only time its secret is shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewKey {
    pub key_id: String,
    pub secret: Secret,
    pub permissions: Permissions,
}

/// One asset of an account's live balance, in units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Balance {
    pub asset: AssetId,
    pub available: u128,
    pub reserved: u128,
}

/// One account's live balance of one asset. Signed so that a bug shows as a negative number
/// in the invariant checks instead of wrapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Live {
    pub available: i128,
    pub reserved: i128,
}

impl Live {
    /// Takes `hold` out of available, or says how much is there.
    pub(crate) fn take(&mut self, hold: Hold) -> Result<(), AccountsError> {
        let amount = hold.amount as i128;
        if self.available < amount {
            return Err(AccountsError::Insufficient {
                asset: hold.asset,
                available: self.available.max(0) as u128,
                needed: hold.amount,
            });
        }
        self.available -= amount;
        Ok(())
    }
}

/// Money in or out of the exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TransferKind {
    Deposit,
    Withdrawal,
}

/// A deposit or withdrawal, identified by the id its requester gave it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub id: String,
    pub kind: TransferKind,
    pub account: AccountId,
    pub asset: AssetId,
    pub amount: u128,
    pub ts: Timestamp,
}

impl Transfer {
    /// The signed change to the account's balance.
    pub fn signed(&self) -> i128 {
        match self.kind {
            TransferKind::Deposit => self.amount as i128,
            TransferKind::Withdrawal => -(self.amount as i128),
        }
    }

    /// Whether `other` asks for the same thing (a retry), whatever its time.
    pub fn same_request(&self, other: &Transfer) -> bool {
        (self.kind, self.account, self.asset, self.amount)
            == (other.kind, other.account, other.asset, other.amount)
    }
}

/// Why an accounts call failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("no account {0}")]
    UnknownAccount(u64),
    #[error("no API key {0:?}")]
    UnknownKey(String),
    #[error("available balance is {available} units, {needed} needed")]
    Insufficient {
        asset: AssetId,
        available: u128,
        needed: u128,
    },
    #[error("transfer id {0:?} was already used for a different transfer")]
    TransferConflict(String),
    #[error("the accounts store is unavailable: {0}")]
    Unavailable(String),
}

/// Accounts, keys and live balances.
#[async_trait]
pub trait Accounts: Send + Sync + 'static {
    /// A key by id (enabled or not).
    async fn key(&self, key_id: &str) -> Option<KeyRecord>;

    /// Records a request signature as used until `until`; false if it was used before (a
    /// replay). Signatures are forgotten once `until` passes, when the timestamp window would
    /// refuse them anyway.
    async fn first_use(&self, signature: &[u8], until: Timestamp, now: Timestamp) -> bool;

    /// Atomically checks that `account` has `hold` available and moves it to reserved.
    async fn reserve(&self, account: AccountId, hold: Hold) -> Result<(), AccountsError>;

    /// Gives back a reservation whose command never reached a shard.
    async fn release(&self, account: AccountId, hold: Hold);

    /// The account's live balance of every asset it has held.
    async fn balances(&self, account: AccountId) -> Result<Vec<Balance>, AccountsError>;

    /// The account's deposits and withdrawals, oldest first.
    async fn transfers(&self, account: AccountId) -> Result<Vec<Transfer>, AccountsError>;

    /// Creates an account.
    async fn create_account(&self, now: Timestamp) -> Result<AccountId, AccountsError>;

    /// Creates a key for `account`.
    async fn create_key(
        &self,
        account: AccountId,
        permissions: Permissions,
        now: Timestamp,
    ) -> Result<NewKey, AccountsError>;

    /// Enables or disables a key.
    async fn set_key_enabled(&self, key_id: &str, enabled: bool) -> Result<(), AccountsError>;

    /// Per asset: deposits minus withdrawals, and the sum of every account's live balance
    /// (available + reserved, the fee account included). Equal when money is conserved and no
    /// command is in flight.
    async fn totals(&self) -> Vec<(AssetId, i128, i128)>;

    /// Applies a deposit or withdrawal once: a retry with the same id and the same content
    /// returns the first (`false`: not applied again); the same id with other content is a
    /// conflict. A withdrawal needs the amount available.
    async fn transfer(&self, t: Transfer) -> Result<(Transfer, bool), AccountsError>;
}
