//! One contract suite for every `Accounts` store: the embedded store over its log, and the
//! cluster's Redis store (on the local Redis Cluster the test run starts with
//! `infra/redis-cluster.sh`, at `EXCHANGE_TEST_REDIS_CLUSTER_URL`). Money is what they hold, so
//! each rule of the trait is checked on both: transfers apply once per id, a withdrawal or a
//! reservation never takes more than is available (not even when many race), a reservation
//! given back is available again, totals balance, keys and signatures behave alike.
//!
//! Below the suite, what only the Redis side has: its live balances' scripts (moves applied
//! once per shard offset, exact beyond 2^53) and its master-key check.

use exchange_accounts::{
    Accounts, AccountsError, EmbeddedAccounts, LiveBalance, Permissions, RedisAccounts,
    RedisBalances, Transfer, TransferKind,
};
use exchange_core::{AccountId, AssetId, Hold, ShardId, Timestamp};
use exchange_shard::Move;
use std::sync::Arc;

#[path = "../../shard/tests/support/redis_cluster.rs"]
mod redis_cluster;
use redis_cluster::namespace;

fn cluster() -> Option<Vec<String>> {
    redis_cluster::cluster("the Redis accounts store's contract tests")
}

/// A fresh store of each kind this machine can run: the embedded one always, the Redis one when
/// a cluster is there. The temporary directory lives as long as the stores.
async fn stores() -> (tempfile::TempDir, Vec<(&'static str, Arc<dyn Accounts>)>) {
    let dir = tempfile::tempdir().unwrap();
    let mut out: Vec<(&'static str, Arc<dyn Accounts>)> = vec![(
        "embedded",
        Arc::new(EmbeddedAccounts::open(dir.path(), [7; 32]).unwrap()),
    )];
    if let Some(urls) = cluster() {
        let redis = RedisAccounts::connect(&urls, &namespace(), [7; 32])
            .await
            .unwrap();
        out.push(("redis", Arc::new(redis)));
    }
    (dir, out)
}

fn deposit(id: &str, account: AccountId, amount: u128) -> Transfer {
    Transfer {
        id: id.into(),
        kind: TransferKind::Deposit,
        account,
        asset: AssetId(1),
        amount,
        ts: Timestamp(5),
    }
}

const USD: AssetId = AssetId(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_numbered_from_one_and_unknown_ones_are_refused() {
    let (_dir, stores) = stores().await;
    for (name, s) in stores {
        assert_eq!(
            s.create_account(Timestamp(1)).await.unwrap(),
            AccountId(1),
            "{name}"
        );
        assert_eq!(
            s.create_account(Timestamp(1)).await.unwrap(),
            AccountId(2),
            "{name}"
        );
        assert!(
            matches!(
                s.balances(AccountId(99)).await,
                Err(AccountsError::UnknownAccount(99))
            ),
            "{name}"
        );
        assert!(
            matches!(
                s.transfer(deposit("d-none", AccountId(99), 1)).await,
                Err(AccountsError::UnknownAccount(99))
            ),
            "{name}: no deposit into an account that does not exist"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_apply_once_per_id_and_a_withdrawal_needs_the_balance() {
    let (_dir, stores) = stores().await;
    for (name, s) in stores {
        let a = s.create_account(Timestamp(1)).await.unwrap();
        assert!(s.transfer(deposit("d1", a, 500)).await.unwrap().1, "{name}");
        let (first, applied) = s
            .transfer(Transfer {
                ts: Timestamp(9),
                ..deposit("d1", a, 500)
            })
            .await
            .unwrap();
        assert!(!applied, "{name}: a retry is not applied again");
        assert_eq!(first.ts, Timestamp(5), "{name}: a retry answers the first");
        assert!(
            matches!(
                s.transfer(deposit("d1", a, 400)).await,
                Err(AccountsError::TransferConflict(_))
            ),
            "{name}: the same id for another transfer"
        );
        let withdraw = Transfer {
            kind: TransferKind::Withdrawal,
            ..deposit("w1", a, 501)
        };
        assert!(
            matches!(
                s.transfer(withdraw.clone()).await,
                Err(AccountsError::Insufficient {
                    available: 500,
                    needed: 501,
                    ..
                })
            ),
            "{name}"
        );
        let (_, applied) = s
            .transfer(Transfer {
                amount: 200,
                ..withdraw
            })
            .await
            .unwrap();
        assert!(applied, "{name}");
        let b = s.balances(a).await.unwrap();
        assert_eq!(b.len(), 1, "{name}");
        assert_eq!(
            (b[0].asset, b[0].available, b[0].reserved),
            (USD, 300, 0),
            "{name}"
        );
        let listed = s.transfers(a).await.unwrap();
        assert_eq!(
            listed.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            ["d1", "w1"],
            "{name}: oldest first, the refused one absent"
        );
        assert_eq!(s.totals().await, vec![(USD, 300, 300)], "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_takes_only_what_is_available_and_a_release_gives_it_back() {
    let (_dir, stores) = stores().await;
    for (name, s) in stores {
        let a = s.create_account(Timestamp(1)).await.unwrap();
        s.transfer(deposit("d1", a, 300)).await.unwrap();
        let hold = Hold {
            asset: USD,
            amount: 250,
        };
        s.reserve(a, hold).await.unwrap();
        let b = s.balances(a).await.unwrap();
        assert_eq!((b[0].available, b[0].reserved), (50, 250), "{name}");
        assert!(
            matches!(
                s.reserve(a, hold).await,
                Err(AccountsError::Insufficient {
                    available: 50,
                    needed: 250,
                    ..
                })
            ),
            "{name}: only 50 left available"
        );
        assert!(
            matches!(
                s.transfer(Transfer {
                    kind: TransferKind::Withdrawal,
                    ..deposit("w1", a, 51)
                })
                .await,
                Err(AccountsError::Insufficient { available: 50, .. })
            ),
            "{name}: what is reserved cannot be withdrawn"
        );
        s.release(a, hold).await;
        let b = s.balances(a).await.unwrap();
        assert_eq!((b[0].available, b[0].reserved), (300, 0), "{name}");
        assert_eq!(s.totals().await, vec![(USD, 300, 300)], "{name}");
        // A hold of nothing always fits, even of an asset the account never had.
        let nothing = Hold {
            asset: AssetId(3),
            amount: 0,
        };
        s.reserve(a, nothing).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_reservations_never_spend_the_same_balance_twice() {
    let (_dir, stores) = stores().await;
    for (name, s) in stores {
        let a = s.create_account(Timestamp(1)).await.unwrap();
        s.transfer(deposit("d1", a, 1_000)).await.unwrap();
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move {
                    s.reserve(
                        a,
                        Hold {
                            asset: USD,
                            amount: 30,
                        },
                    )
                    .await
                    .is_ok()
                })
            })
            .collect();
        let mut granted = 0;
        for t in tasks {
            granted += usize::from(t.await.unwrap());
        }
        assert_eq!(granted, 33, "{name}: exactly 33 of 30 fit in 1,000");
        let b = s.balances(a).await.unwrap();
        assert_eq!((b[0].available, b[0].reserved), (10, 990), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_carry_their_account_permissions_and_secret_and_can_be_disabled() {
    let (_dir, stores) = stores().await;
    for (name, s) in stores {
        let a = s.create_account(Timestamp(1)).await.unwrap();
        let read_only = Permissions {
            read: true,
            ..Permissions::default()
        };
        let key = s.create_key(a, read_only, Timestamp(1)).await.unwrap();
        assert_eq!(key.permissions, read_only, "{name}");
        let other = s.create_key(a, read_only, Timestamp(1)).await.unwrap();
        assert_ne!(key.key_id, other.key_id, "{name}");
        assert_ne!(key.secret, other.secret, "{name}: every key its own secret");
        let record = s.key(&key.key_id).await.unwrap();
        assert_eq!((record.account, &record.secret), (a, &key.secret), "{name}");
        assert!(
            record.enabled && record.permissions.read && !record.permissions.trade,
            "{name}"
        );
        s.set_key_enabled(&key.key_id, false).await.unwrap();
        assert!(!s.key(&key.key_id).await.unwrap().enabled, "{name}");
        assert!(s.key(&other.key_id).await.unwrap().enabled, "{name}");
        assert!(
            matches!(
                s.set_key_enabled("k-none", true).await,
                Err(AccountsError::UnknownKey(_))
            ),
            "{name}"
        );
        assert!(s.key("k-none").await.is_none(), "{name}");
        assert!(
            matches!(
                s.create_key(AccountId(99), read_only, Timestamp(1)).await,
                Err(AccountsError::UnknownAccount(99))
            ),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_is_accepted_once_within_its_window() {
    let (_dir, stores) = stores().await;
    for (name, s) in stores {
        let now = Timestamp(1_000_000_000);
        let until = Timestamp(now.0 + 5_000_000_000);
        assert!(s.first_use(b"sig-1", until, now).await, "{name}");
        assert!(!s.first_use(b"sig-1", until, now).await, "{name}: a replay");
        let later = Timestamp(now.0 + 4_000_000_000);
        assert!(
            !s.first_use(b"sig-1", until, later).await,
            "{name}: still refused later in its window"
        );
        assert!(s.first_use(b"sig-2", until, now).await, "{name}");
    }
}

// What only the cluster's store has.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gateway_bootstraps_and_another_master_key_is_refused() {
    let Some(urls) = cluster() else { return };
    let ns = namespace();
    let s = RedisAccounts::connect(&urls, &ns, [7; 32]).await.unwrap();
    assert!(s.claim_bootstrap().await.unwrap());
    assert!(
        !s.claim_bootstrap().await.unwrap(),
        "only one gateway bootstraps"
    );
    // Another gateway with another master key would derive other secrets: it refuses to start.
    let other = RedisAccounts::connect(&urls, &ns, [8; 32]).await;
    assert!(other.is_err(), "a different master key is refused");
}

fn credit(account: u64, asset: u16, amount: i128) -> Move {
    Move {
        account: AccountId(account),
        asset: AssetId(asset),
        available: amount,
        reserved: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_never_reserve_the_same_balance_twice() {
    let Some(urls) = cluster() else { return };
    let ns = namespace();
    let (a, b) = (
        RedisBalances::connect(&urls, &ns).await.unwrap(),
        RedisBalances::connect(&urls, &ns).await.unwrap(),
    );
    let (acct, usd) = (AccountId(7), AssetId(1));
    assert_eq!(
        a.apply("transfers", 1, &[credit(7, 1, 1_000)])
            .await
            .unwrap(),
        1
    );
    // Fifty reservations of 30 from two gateways at once: exactly 33 fit in 1,000.
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let g = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { g.reserve(acct, usd, 30).await.unwrap() })
        })
        .collect();
    let mut granted = 0;
    for t in tasks {
        granted += usize::from(t.await.unwrap());
    }
    assert_eq!(granted, 33);
    assert_eq!(
        a.balance(acct, usd).await.unwrap(),
        LiveBalance {
            available: 10,
            reserved: 990
        }
    );
    // A reservation whose command never reached a log is given back.
    b.release(acct, usd, 30).await.unwrap();
    assert_eq!(a.balance(acct, usd).await.unwrap().available, 40);

    // A shard's moves apply once per offset, however often they are delivered.
    let fill = [
        Move {
            account: acct,
            asset: usd,
            available: 0,
            reserved: -960,
        },
        credit(7, 0, 5),
        credit(8, 1, 960),
    ];
    assert_eq!(a.apply_shard(ShardId(2), 17, &fill).await.unwrap(), 2);
    assert_eq!(
        b.apply_shard(ShardId(2), 17, &fill).await.unwrap(),
        0,
        "redelivered"
    );
    assert_eq!(
        b.apply_shard(ShardId(2), 16, &fill).await.unwrap(),
        0,
        "older"
    );
    assert_eq!(
        a.balance(acct, usd).await.unwrap(),
        LiveBalance {
            available: 40,
            reserved: 0
        }
    );
    assert_eq!(a.balance(acct, AssetId(0)).await.unwrap().available, 5);
    assert_eq!(a.balance(AccountId(8), usd).await.unwrap().available, 960);
    // Another shard's offsets are its own.
    assert_eq!(
        a.apply_shard(ShardId(3), 17, &[credit(7, 1, 1)])
            .await
            .unwrap(),
        1
    );

    // Exact beyond 2^53, where Lua numbers are not.
    // 2^53 + 3 rounds to 2^53 + 4 as a double, which would let 2^53 + 4 be reserved.
    let big = 9_007_199_254_740_995_i128;
    a.apply("transfers", 2, &[credit(9, 1, big)]).await.unwrap();
    assert!(!a.reserve(AccountId(9), usd, big as u64 + 1).await.unwrap());
    assert!(a.reserve(AccountId(9), usd, big as u64).await.unwrap());
    assert_eq!(
        a.balance(AccountId(9), usd).await.unwrap(),
        LiveBalance {
            available: 0,
            reserved: big as i64
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_moves_applies_each_offset_once_per_account() {
    use exchange_shard::BalanceMoves;
    let Some(urls) = cluster() else { return };
    let ns = namespace();
    let b = RedisBalances::connect(&urls, &ns).await.unwrap();
    let (a7, a8) = ([credit(7, 1, 1)], [credit(8, 1, 10)]);
    let both = [credit(7, 1, 100), credit(8, 1, 1_000)];
    let first: Vec<(u64, &[Move])> = vec![(3, &a7), (4, &both)];
    assert_eq!(b.apply_batch("shard-0", &first).await.unwrap(), 2);
    // Redelivered with more after it: only offsets 5 and 6 are new.
    let again: Vec<(u64, &[Move])> = vec![(3, &a7), (4, &both), (5, &a8), (6, &both)];
    assert_eq!(b.apply_batch("shard-0", &again).await.unwrap(), 2);
    assert_eq!(b.apply_batch("shard-0", &again).await.unwrap(), 0);
    assert_eq!(
        b.balance(AccountId(7), AssetId(1)).await.unwrap().available,
        201
    );
    assert_eq!(
        b.balance(AccountId(8), AssetId(1)).await.unwrap().available,
        2_010
    );
    // The shard's sink applies through the same scripts, as shard 0's source.
    b.apply_moves(ShardId(0), &again).await.unwrap();
    assert_eq!(
        b.balance(AccountId(8), AssetId(1)).await.unwrap().available,
        2_010,
        "the sink's redelivery changes nothing"
    );
    let next: Vec<(u64, &[Move])> = vec![(7, &a8)];
    b.apply_moves(ShardId(0), &next).await.unwrap();
    assert_eq!(
        b.balance(AccountId(8), AssetId(1)).await.unwrap().available,
        2_020
    );
}
