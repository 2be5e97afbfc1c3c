//! One contract suite for every `EventSink`, each with the gateway side that receives what it
//! sends: the embedded `PendingSink` (in process), and the cluster's `RedisSink` with a
//! gateway's outcome relay over the local Redis Cluster the test run starts (skipped, and said
//! so, without one). Both must hand every published outcome to the request waiting on it, in
//! log order, with its balance moves applied before the answer, and apply the moves of a
//! batch replayed at recovery at most once.

use exchange_accounts::{Accounts, EmbeddedAccounts, RedisAccounts, RedisBalances};
use exchange_core::{AccountId, AssetId, ShardId, SymbolTable, Timestamp};
use exchange_gateway::feed::Bus;
use exchange_gateway::shards::{Delivery, Pending, PendingSink, relay};
use exchange_shard::redis_sink::{RedisSink, subscribe_outcomes};
use exchange_shard::{CommandResult, EventSink, Move, Outcome};
use std::sync::Arc;
use std::time::Duration;

const SHARD: ShardId = ShardId(3);
const USD: AssetId = AssetId(1);

/// A sink, the requests' side of it, and the accounts whose live balances it moves.
struct Harness {
    name: &'static str,
    sink: Arc<dyn EventSink>,
    pending: Arc<Pending>,
    accounts: Arc<dyn Accounts>,
    /// Kept alive for the test (the relay task, the temporary directory).
    _keep: Vec<Box<dyn std::any::Any + Send>>,
}

fn delivery(pending: &Arc<Pending>) -> Delivery {
    Delivery {
        pending: Arc::clone(pending),
        bus: Arc::new(Bus::new(&SymbolTable::default_symbols(), 64)),
    }
}

async fn harnesses() -> Vec<Harness> {
    let dir = tempfile::tempdir().unwrap();
    let embedded = Arc::new(EmbeddedAccounts::open(dir.path(), [7; 32]).unwrap());
    let pending = Arc::new(Pending::default());
    let mut out = vec![Harness {
        name: "embedded",
        sink: Arc::new(PendingSink {
            delivery: delivery(&pending),
            accounts: embedded.clone(),
        }),
        pending,
        accounts: embedded,
        _keep: vec![Box::new(dir)],
    }];
    match std::env::var("EXCHANGE_TEST_REDIS_CLUSTER_URL") {
        Ok(url) => {
            let urls: Vec<String> = url.split(',').map(str::to_owned).collect();
            let ns = format!(
                "sink{}-{:?}-",
                std::process::id(),
                std::time::Instant::now()
            );
            let balances = Arc::new(RedisBalances::connect(&urls, &ns).await.unwrap());
            let sink = RedisSink::connect(&urls, &ns, Some(balances))
                .await
                .unwrap();
            let accounts = Arc::new(RedisAccounts::connect(&urls, &ns, [7; 32]).await.unwrap());
            let outcomes = subscribe_outcomes(&urls, &ns, &[SHARD]).await.unwrap();
            let pending = Arc::new(Pending::default());
            let relay = relay(outcomes, delivery(&pending), accounts.clone());
            out.push(Harness {
                name: "redis",
                sink: Arc::new(sink),
                pending,
                accounts,
                _keep: vec![Box::new(AbortOnDrop(relay))],
            });
        }
        Err(_) => eprintln!(
            "SKIPPED: the Redis event sink's contract test (run infra/redis-cluster.sh up and set \
             EXCHANGE_TEST_REDIS_CLUSTER_URL=redis://127.0.0.1:7100)"
        ),
    }
    out
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn outcome(offset: u64, moves: Vec<Move>) -> Outcome {
    Outcome {
        offset,
        ts: Timestamp(offset),
        result: CommandResult::Applied {
            events: Vec::new(),
            orders: Vec::new(),
        },
        moves,
        updated: Vec::new(),
        fills: Vec::new(),
    }
}

fn moved(account: AccountId, available: i128, reserved: i128) -> Move {
    Move {
        account,
        asset: USD,
        available,
        reserved,
    }
}

/// Waits for the outcome at `offset`, as a request does.
async fn answer(h: &Harness, offset: u64) -> Outcome {
    tokio::time::timeout(Duration::from_secs(10), h.pending.wait(SHARD, offset))
        .await
        .unwrap_or_else(|_| panic!("{}: the outcome at {offset} arrives", h.name))
        .expect("the sink is alive")
}

async fn usd(h: &Harness, account: AccountId) -> (u128, u128) {
    let b = h.accounts.balances(account).await.unwrap();
    b.iter()
        .find(|b| b.asset == USD)
        .map_or((0, 0), |b| (b.available, b.reserved))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_outcome_reaches_its_request_with_its_moves_applied_once() {
    for h in harnesses().await {
        let name = h.name;
        let (a, b) = (
            h.accounts.create_account(Timestamp(1)).await.unwrap(),
            h.accounts.create_account(Timestamp(1)).await.unwrap(),
        );
        let batch = vec![
            outcome(1, vec![moved(a, 100, 0)]),
            outcome(2, vec![moved(a, -30, 30)]),
            outcome(3, Vec::new()),
        ];
        h.sink.publish(SHARD, batch.clone());
        for expected in &batch {
            assert_eq!(&answer(&h, expected.offset).await, expected, "{name}");
        }
        assert_eq!(
            usd(&h, a).await,
            (70, 30),
            "{name}: moved before the answer"
        );

        // A recovery replays the batch: nothing is answered again, and nothing moves twice.
        h.sink.replayed(SHARD, &batch);
        h.sink
            .publish(SHARD, vec![outcome(4, vec![moved(b, 5, 0)])]);
        assert_eq!(answer(&h, 4).await.offset, 4, "{name}");
        assert_eq!(
            usd(&h, a).await,
            (70, 30),
            "{name}: the replay moved nothing again"
        );
        assert_eq!(usd(&h, b).await, (5, 0), "{name}");

        // A request that comes after its outcome still gets it.
        h.sink.publish(SHARD, vec![outcome(5, Vec::new())]);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(answer(&h, 5).await.offset, 5, "{name}: parked until asked");
    }
}
