//! The embedded accounts store: accounts, API keys, deposits and withdrawals in an append-only
//! log under the data directory, and the live balances the gateway reserves against.
//!
//! # Where balances live
//! An account's balance of an asset is `deposits - withdrawals + the change every shard's
//! commands made to it`. Deposits and withdrawals are in this store's log (fsynced before they
//! are acknowledged); each shard keeps its change in its own state, applied in the same step
//! as the engine events that cause it and recovered with it (snapshot + log replay). So the
//! durable truth needs no cross-process transaction.
//!
//! The live balances here are that sum kept current in memory, for the gateway's atomic
//! check-and-reserve (one lock; in a cluster, a Redis script on the account's slot). An order's
//! hold is reserved here *before* its command is logged, so the shard only takes it over; what
//! the shard then pays, credits and releases comes back as moves and is applied here. After a
//! restart the live balances are rebuilt from the log and the recovered shards, so a reservation
//! whose command never reached a shard simply disappears.
//!
//! # Secrets
//! A key's secret is never stored: it is derived as HMAC-SHA256 of the key id and a random salt
//! under the store's master key (`master.key` in the data directory, mode 0600, or
//! `EXCHANGE_MASTER_KEY`). The log holds key ids, salts and permissions only.

use crate::secrets::{derive_secret, random};
use crate::{
    Accounts, AccountsError, Balance, KeyRecord, Live, NewKey, Permissions, Secret, Transfer,
    TransferKind,
};
use async_trait::async_trait;
use exchange_core::{AccountId, AssetId, Hold, Timestamp};
use exchange_shard::{Move, ShardState, frame};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest record in the accounts log.
const MAX_RECORD: u32 = 4 * 1024;

/// One entry of the accounts log.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Op {
    Account {
        id: AccountId,
        ts: Timestamp,
    },
    Key {
        key_id: String,
        account: AccountId,
        permissions: Permissions,
        salt: [u8; 16],
        ts: Timestamp,
    },
    KeyEnabled {
        key_id: String,
        enabled: bool,
    },
    Transfer(Transfer),
}

#[derive(Clone, Debug)]
struct KeyEntry {
    account: AccountId,
    permissions: Permissions,
    salt: [u8; 16],
    enabled: bool,
    /// Derived from the master key on the key's first use, then kept: deriving it is an HMAC
    /// and a few allocations, on every signed request otherwise.
    secret: Option<Secret>,
}

#[derive(Default)]
struct State {
    accounts: BTreeMap<AccountId, Timestamp>,
    keys: HashMap<String, KeyEntry>,
    transfers: HashMap<String, Transfer>,
    /// Every transfer in log order: the accounts' event stream for settlement.
    in_order: Vec<Transfer>,
    by_account: HashMap<AccountId, Vec<String>>,
    balances: HashMap<(AccountId, AssetId), Live>,
}

impl State {
    fn apply(&mut self, op: &Op) {
        match op {
            Op::Account { id, ts } => {
                self.accounts.insert(*id, *ts);
            }
            Op::Key {
                key_id,
                account,
                permissions,
                salt,
                ..
            } => {
                self.keys.insert(
                    key_id.clone(),
                    KeyEntry {
                        account: *account,
                        permissions: *permissions,
                        salt: *salt,
                        enabled: true,
                        secret: None,
                    },
                );
            }
            Op::KeyEnabled { key_id, enabled } => {
                if let Some(k) = self.keys.get_mut(key_id) {
                    k.enabled = *enabled;
                }
            }
            Op::Transfer(t) => {
                self.transfers.insert(t.id.clone(), t.clone());
                self.in_order.push(t.clone());
                self.by_account
                    .entry(t.account)
                    .or_default()
                    .push(t.id.clone());
                self.balances
                    .entry((t.account, t.asset))
                    .or_default()
                    .available += t.signed();
            }
        }
    }

    fn next_account(&self) -> AccountId {
        // Account 0 is the fee account; traders start at 1.
        AccountId(self.accounts.keys().next_back().map_or(1, |a| a.0 + 1))
    }
}

/// Why the store could not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("accounts log {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("accounts log {path} cannot be read by this version: {reason}")]
    Format { path: PathBuf, reason: String },
}

/// The embedded accounts store. See the module docs.
pub struct EmbeddedAccounts {
    master: [u8; 32],
    state: Mutex<State>,
    log: Arc<Mutex<File>>,
    /// Serialises the slow admin operations (each writes and syncs the log).
    admin: tokio::sync::Mutex<()>,
    seen: Mutex<Seen>,
    /// Woken when a transfer is logged.
    transferred: tokio::sync::Notify,
}

/// Signatures used recently, until their window closes, in generations by the second in which
/// their window closes. A signature always comes with the same window (its timestamp and
/// window are part of what it signs), so it is looked up in its own generation only; a
/// generation goes whole once every window in it closed, and its table is kept for the next
/// one. Nothing is removed one entry at a time, so no table rehashes to clear tombstones, and
/// once the longest window has passed the tables stop allocating (a per-entry expiry queue
/// cost about 4% of the request thread at 40,000 orders/s, most of it growing and rehashing).
#[derive(Default)]
struct Seen {
    /// `(generation, signature -> until)`, oldest generation first.
    generations: VecDeque<(u64, FxHashMap<[u8; 32], Timestamp>)>,
    /// Tables of generations that went, cleared, for reuse.
    spare: Vec<FxHashMap<[u8; 32], Timestamp>>,
}

impl Seen {
    /// The nanoseconds one generation spans.
    const SPAN: u64 = 1_000_000_000;

    /// Records `key` until `until`, unless it is already recorded for a window still open at
    /// `now`.
    fn first_use(&mut self, key: [u8; 32], until: Timestamp, now: Timestamp) -> bool {
        while let Some((g, _)) = self.generations.front()
            && (g + 1) * Self::SPAN <= now.0
        {
            let (_, mut table) = self.generations.pop_front().expect("a front");
            table.clear();
            self.spare.push(table);
        }
        if until <= now {
            // Its window closed: the timestamp check refuses it again anyway.
            return true;
        }
        let generation = until.0 / Self::SPAN;
        let i = self.generations.partition_point(|(g, _)| *g < generation);
        if self
            .generations
            .get(i)
            .is_none_or(|(g, _)| *g != generation)
        {
            // A new table starts as large as the newest generation's, not growing one rehash
            // at a time.
            let table = self.spare.pop().unwrap_or_else(|| {
                let newest = self.generations.back().map_or(0, |(_, t)| t.len());
                FxHashMap::with_capacity_and_hasher(newest, Default::default())
            });
            self.generations.insert(i, (generation, table));
        }
        let table = &mut self.generations[i].1;
        match table.get(&key) {
            Some(t) if *t > now => false,
            _ => {
                table.insert(key, until);
                true
            }
        }
    }

    /// Signatures recorded (some of them perhaps with closed windows, until their generation
    /// goes).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.generations.iter().map(|(_, t)| t.len()).sum()
    }
}

impl EmbeddedAccounts {
    /// Opens (or creates) `accounts.log` in `dir`, truncating a torn tail.
    pub fn open(dir: &Path, master: [u8; 32]) -> Result<Self, OpenError> {
        let path = dir.join("accounts.log");
        let io = |source| OpenError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io)?;
        let mut state = State::default();
        let (end, stopped) =
            frame::read_frames::<Op>(BufReader::new(&file), MAX_RECORD, 1, |_, op| {
                state.apply(&op)
            })
            .map_err(io)?;
        match stopped {
            None => {}
            Some(frame::Stop::Torn(reason)) => {
                tracing::warn!(path = %path.display(), %reason, "accounts log has a torn tail; truncating it");
                file.set_len(end).map_err(io)?;
                file.sync_all().map_err(io)?;
            }
            // Written whole by another format: refuse rather than cut accepted transfers away.
            Some(frame::Stop::Undecodable(reason)) => {
                return Err(OpenError::Format { path, reason });
            }
        }
        Ok(Self {
            master,
            state: Mutex::new(state),
            log: Arc::new(Mutex::new(file)),
            admin: tokio::sync::Mutex::new(()),
            seen: Mutex::new(Seen::default()),
            transferred: tokio::sync::Notify::new(),
        })
    }

    /// Adds each recovered shard's balance changes to the live balances (once, at start).
    pub fn add_shard(&self, shard: &ShardState) {
        let mut st = self.state.lock();
        for (account, asset, d) in shard.funds().deltas() {
            let b = st.balances.entry((account, asset)).or_default();
            b.available += d.available;
            b.reserved += d.reserved;
        }
    }

    /// Applies a shard's moves to the live balances.
    pub fn apply_moves(&self, moves: &[Move]) {
        if moves.is_empty() {
            return;
        }
        let mut st = self.state.lock();
        for m in moves {
            let b = st.balances.entry((m.account, m.asset)).or_default();
            b.available += m.available;
            b.reserved += m.reserved;
        }
    }

    /// One live balance.
    pub fn balance(&self, account: AccountId, asset: AssetId) -> Live {
        self.state
            .lock()
            .balances
            .get(&(account, asset))
            .copied()
            .unwrap_or_default()
    }

    /// Every live balance, for invariant checks.
    pub fn live(&self) -> HashMap<(AccountId, AssetId), Live> {
        self.state.lock().balances.clone()
    }

    /// Per asset, deposits minus withdrawals.
    pub fn net_transfers(&self) -> HashMap<AssetId, i128> {
        let mut out = HashMap::new();
        for t in self.state.lock().transfers.values() {
            *out.entry(t.asset).or_default() += t.signed();
        }
        out
    }

    /// Up to `max` transfers after the first `after`, in log order, and how many there are.
    pub fn transfers_after(&self, after: usize, max: usize) -> (Vec<Transfer>, usize) {
        let st = self.state.lock();
        let from = after.min(st.in_order.len());
        let to = (from + max).min(st.in_order.len());
        (st.in_order[from..to].to_vec(), st.in_order.len())
    }

    /// Resolves at the next transfer logged.
    pub fn transferred(&self) -> tokio::sync::futures::Notified<'_> {
        self.transferred.notified()
    }

    /// Whether some key has the admin permission.
    pub fn has_admin_key(&self) -> bool {
        self.state
            .lock()
            .keys
            .values()
            .any(|k| k.permissions.admin && k.enabled)
    }

    async fn append(&self, op: &Op) -> Result<(), AccountsError> {
        let mut buf = Vec::new();
        frame::encode(op, &mut buf);
        let log = Arc::clone(&self.log);
        tokio::task::spawn_blocking(move || {
            let mut f = log.lock();
            f.write_all(&buf)?;
            f.sync_data()
        })
        .await
        .map_err(|e| AccountsError::Unavailable(e.to_string()))?
        .map_err(|e| AccountsError::Unavailable(format!("writing the accounts log: {e}")))?;
        self.state.lock().apply(op);
        Ok(())
    }

    /// Refuses accounts that were never created (the fee account always exists).
    fn require_account(&self, account: AccountId) -> Result<(), AccountsError> {
        if account == AccountId::FEES || self.state.lock().accounts.contains_key(&account) {
            Ok(())
        } else {
            Err(AccountsError::UnknownAccount(account.0))
        }
    }
}

#[async_trait]
impl Accounts for EmbeddedAccounts {
    async fn key(&self, key_id: &str) -> Option<KeyRecord> {
        let mut st = self.state.lock();
        let k = st.keys.get_mut(key_id)?;
        let secret = k
            .secret
            .get_or_insert_with(|| derive_secret(&self.master, key_id, &k.salt))
            .clone();
        Some(KeyRecord {
            key_id: key_id.to_owned(),
            account: k.account,
            permissions: k.permissions,
            enabled: k.enabled,
            secret,
        })
    }

    async fn first_use(&self, signature: &[u8], until: Timestamp, now: Timestamp) -> bool {
        // A checked signature is an HMAC-SHA256: 32 bytes, and unpredictable without the key,
        // so a fast hash of it is safe. Anything longer is kept by its digest.
        let key: [u8; 32] = signature
            .try_into()
            .unwrap_or_else(|_| Sha256::digest(signature).into());
        self.seen.lock().first_use(key, until, now)
    }

    async fn reserve(&self, account: AccountId, hold: Hold) -> Result<(), AccountsError> {
        let mut st = self.state.lock();
        let b = st.balances.entry((account, hold.asset)).or_default();
        b.take(hold)?;
        b.reserved += hold.amount as i128;
        Ok(())
    }

    async fn release(&self, account: AccountId, hold: Hold) {
        let mut st = self.state.lock();
        let b = st.balances.entry((account, hold.asset)).or_default();
        b.available += hold.amount as i128;
        b.reserved -= hold.amount as i128;
    }

    async fn balances(&self, account: AccountId) -> Result<Vec<Balance>, AccountsError> {
        self.require_account(account)?;
        let st = self.state.lock();
        let mut out: Vec<Balance> = st
            .balances
            .iter()
            .filter(|((a, _), _)| *a == account)
            .map(|((_, asset), b)| Balance {
                asset: *asset,
                available: b.available.max(0) as u128,
                reserved: b.reserved.max(0) as u128,
            })
            .collect();
        out.sort_unstable_by_key(|b| b.asset);
        Ok(out)
    }

    async fn transfers(&self, account: AccountId) -> Result<Vec<Transfer>, AccountsError> {
        self.require_account(account)?;
        let st = self.state.lock();
        Ok(st
            .by_account
            .get(&account)
            .map(|ids| ids.iter().map(|id| st.transfers[id].clone()).collect())
            .unwrap_or_default())
    }

    async fn totals(&self) -> Vec<(AssetId, i128, i128)> {
        let net = self.net_transfers();
        let mut held: HashMap<AssetId, i128> = HashMap::new();
        for ((_, asset), b) in self.state.lock().balances.iter() {
            *held.entry(*asset).or_default() += b.available + b.reserved;
        }
        let mut assets: Vec<AssetId> = net.keys().chain(held.keys()).copied().collect();
        assets.sort_unstable();
        assets.dedup();
        assets
            .into_iter()
            .map(|a| {
                (
                    a,
                    net.get(&a).copied().unwrap_or(0),
                    held.get(&a).copied().unwrap_or(0),
                )
            })
            .collect()
    }

    async fn create_account(&self, now: Timestamp) -> Result<AccountId, AccountsError> {
        let _admin = self.admin.lock().await;
        let id = self.state.lock().next_account();
        self.append(&Op::Account { id, ts: now }).await?;
        Ok(id)
    }

    async fn create_key(
        &self,
        account: AccountId,
        permissions: Permissions,
        now: Timestamp,
    ) -> Result<NewKey, AccountsError> {
        let _admin = self.admin.lock().await;
        if account == AccountId::FEES {
            // Nobody trades from the fee account.
            return Err(AccountsError::UnknownAccount(account.0));
        }
        self.require_account(account)?;
        let key_id = format!("k{}", hex::encode(random::<12>()));
        let salt: [u8; 16] = random();
        self.append(&Op::Key {
            key_id: key_id.clone(),
            account,
            permissions,
            salt,
            ts: now,
        })
        .await?;
        Ok(NewKey {
            secret: derive_secret(&self.master, &key_id, &salt),
            key_id,
            permissions,
        })
    }

    async fn set_key_enabled(&self, key_id: &str, enabled: bool) -> Result<(), AccountsError> {
        let _admin = self.admin.lock().await;
        if !self.state.lock().keys.contains_key(key_id) {
            return Err(AccountsError::UnknownKey(key_id.to_owned()));
        }
        self.append(&Op::KeyEnabled {
            key_id: key_id.to_owned(),
            enabled,
        })
        .await
    }

    async fn transfer(&self, t: Transfer) -> Result<(Transfer, bool), AccountsError> {
        let _admin = self.admin.lock().await;
        self.require_account(t.account)?;
        if let Some(first) = self.state.lock().transfers.get(&t.id) {
            return if first.same_request(&t) {
                Ok((first.clone(), false))
            } else {
                Err(AccountsError::TransferConflict(t.id))
            };
        }
        let amount = t.amount as i128;
        if t.kind == TransferKind::Withdrawal {
            // Take it out of available first, so no order can reserve it meanwhile; the log
            // replay debits it again from scratch, so put it back before appending.
            let mut st = self.state.lock();
            let b = st.balances.entry((t.account, t.asset)).or_default();
            b.take(Hold {
                asset: t.asset,
                amount: t.amount,
            })?;
        }
        let logged = self.append(&Op::Transfer(t.clone())).await;
        if t.kind == TransferKind::Withdrawal {
            // `append` applied the withdrawal (on success); undo the provisional debit.
            self.state
                .lock()
                .balances
                .entry((t.account, t.asset))
                .or_default()
                .available += amount;
        }
        if logged.is_ok() {
            self.transferred.notify_waiters();
        }
        logged.map(|()| (t, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> EmbeddedAccounts {
        EmbeddedAccounts::open(dir, [7; 32]).unwrap()
    }

    fn deposit(id: &str, account: AccountId, amount: u128) -> Transfer {
        Transfer {
            id: id.into(),
            kind: TransferKind::Deposit,
            account,
            asset: AssetId(1),
            amount,
            ts: Timestamp(1),
        }
    }

    #[tokio::test]
    async fn transfers_apply_once_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let a = s.create_account(Timestamp(1)).await.unwrap();
        assert_eq!(a, AccountId(1));
        assert!(s.transfer(deposit("d1", a, 500)).await.unwrap().1);
        assert!(
            !s.transfer(deposit("d1", a, 500)).await.unwrap().1,
            "a retry"
        );
        assert!(matches!(
            s.transfer(deposit("d1", a, 400)).await,
            Err(AccountsError::TransferConflict(_))
        ));
        let w = Transfer {
            kind: TransferKind::Withdrawal,
            ..deposit("w1", a, 501)
        };
        assert!(matches!(
            s.transfer(w.clone()).await,
            Err(AccountsError::Insufficient { .. })
        ));
        s.transfer(Transfer { amount: 200, ..w }).await.unwrap();
        let hold = Hold {
            asset: AssetId(1),
            amount: 250,
        };
        s.reserve(a, hold).await.unwrap();
        assert!(s.reserve(a, hold).await.is_err(), "only 50 left available");
        let key = s
            .create_key(a, Permissions::default(), Timestamp(2))
            .await
            .unwrap();
        drop(s);
        let s = store(dir.path());
        let b = s.balances(a).await.unwrap();
        assert_eq!(
            (b[0].available, b[0].reserved),
            (300, 0),
            "a reservation is not durable"
        );
        assert_eq!(s.key(&key.key_id).await.unwrap().secret, key.secret);
        assert_eq!(s.create_account(Timestamp(3)).await.unwrap(), AccountId(2));
    }

    #[tokio::test]
    async fn a_signature_is_accepted_once_within_its_window() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        assert!(s.first_use(b"sig", Timestamp(10), Timestamp(1)).await);
        assert!(!s.first_use(b"sig", Timestamp(10), Timestamp(2)).await);
        assert!(s.first_use(b"sig", Timestamp(20), Timestamp(11)).await);
    }

    #[tokio::test]
    async fn used_signatures_are_let_go_once_their_windows_close() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let sig = |i: u32| {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&i.to_le_bytes());
            b
        };
        const MS: u64 = 1_000_000;
        // Signature i comes at i ms, its window closing at 5 s + i × 10 ms: from 5 s to 15 s.
        let until = |i: u32| Timestamp(5_000 * MS + i as u64 * 10 * MS);
        for i in 0..1000 {
            assert!(
                s.first_use(&sig(i), until(i), Timestamp(i as u64 * MS))
                    .await
            );
        }
        assert!(
            !s.first_use(&sig(999), until(999), Timestamp(1_000 * MS))
                .await,
            "still open"
        );
        assert_eq!(s.seen.lock().len(), 1000);
        // Just after 10 s every window that closed before it (those of 0..500) is gone.
        let now = Timestamp(10_000 * MS + 1);
        assert!(s.first_use(&sig(5000), Timestamp(20_000 * MS), now).await);
        assert_eq!(s.seen.lock().len(), 1000 - 500 + 1);
        assert!(
            !s.first_use(&sig(600), until(600), now).await,
            "600's is open"
        );
        assert!(s.first_use(&sig(0), until(0), now).await, "0's closed");
        assert!(
            s.first_use(&sig(500), until(500), now).await,
            "500's closed at 10 s, though its generation is still kept"
        );
        assert!(
            !s.first_use(&sig(5000), Timestamp(20_000 * MS), now).await,
            "a signature is refused again within its window"
        );
        let (long_until, now) = (Timestamp(20_000 * MS), Timestamp(10_502 * MS));
        // A signature of another length is kept by its digest, not cut to 32 bytes.
        let long = [7u8; 40];
        let mut other = long;
        other[39] = 8;
        assert!(s.first_use(&long, long_until, now).await);
        assert!(s.first_use(&other, long_until, now).await);
        assert!(!s.first_use(&long, long_until, now).await);
    }

    #[test]
    fn secrets_depend_on_the_master_key_and_are_not_logged() {
        let a = derive_secret(&[1; 32], "k1", &[0; 16]);
        assert_ne!(a, derive_secret(&[2; 32], "k1", &[0; 16]));
        assert_eq!(a.0.len(), 64);
        assert_eq!(format!("{a:?}"), "Secret(<redacted>)");
    }
}
