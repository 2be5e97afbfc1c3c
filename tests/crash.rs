//! Crash recovery: SIGKILL the real binary in the middle of a stream of orders, restart it, and
//! check that nothing acknowledged was lost or applied twice.
//!
//! After the restart every acknowledged order is there with a state consistent with its
//! acknowledgement, a repeated client order id still returns the first order, and the books,
//! trades and order states equal a reference that replays the journals from the first record,
//! and money is conserved: every account's balance is its deposits plus what the reference
//! replay says the shards changed, and across accounts (fee account included) each asset sums
//! to what was deposited.

use exchange_client::{Client as Signer, Credentials, KEY_FILE, read_credentials};
use exchange_core::{AccountId, OrderId, ShardId, SymbolTable, Timestamp, shard_for};
use exchange_shard::{Journal, JournalConfig, ShardState};
use reqwest::{Client, Method};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

const SHARDS: u32 = 2;

struct Process {
    child: Child,
    base: String,
}

impl Drop for Process {
    /// A failing test must not leave an exchange running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(dir: &std::path::Path) -> Process {
    let mut child = Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--shards",
            &SHARDS.to_string(),
            "--snapshot-every",
            "150",
            "--log",
            "warn",
        ])
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the exchange binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("the exchange prints its address")
            .expect("readable stdout");
        if let Some(url) = line.strip_prefix("exchange listening on ") {
            break url.trim().to_owned();
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Process { child, base }
}

/// What each trader is funded with.
const FUNDING: &[(&str, &str)] = &[("USD", "100000000"), ("BTC", "10000"), ("ETH", "100000")];

/// One acknowledged order, as its acknowledgement described it.
#[derive(Clone, Debug)]
struct Ack {
    worker: u64,
    request: Value,
    order_id: String,
    status: String,
    filled: String,
}

fn order_request(worker: u64, n: u64) -> Value {
    // Prices around a fixed mid, so that buyers and sellers keep crossing.
    let symbol = if n.is_multiple_of(3) {
        "ETH-USD"
    } else {
        "BTC-USD"
    };
    let side = if (n + worker).is_multiple_of(2) {
        "BUY"
    } else {
        "SELL"
    };
    let offset = (n * 7 + worker * 13) % 21;
    let (price, qty) = if symbol == "BTC-USD" {
        (
            format!("{}.00", 65_000 - 10 + offset),
            format!("0.{:05}", 100 + (n * 31) % 900),
        )
    } else {
        (
            format!("{}.00", 3_000 - 10 + offset),
            format!("0.{:04}", 100 + (n * 17) % 900),
        )
    };
    json!({
        "symbol": symbol,
        "side": side,
        "type": "LIMIT",
        "price": price,
        "quantity": qty,
        "client_order_id": format!("w{worker}-{n}"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_nothing_acknowledged_and_applies_nothing_twice() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let http = Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    let mut first = spawn(dir.path());
    let admin = Signer::new(
        first.base.clone(),
        read_credentials(&dir.path().join(KEY_FILE)).expect("the admin key file"),
    );
    // Eight funded traders, each with a key.
    let mut traders = Vec::new();
    for worker in 0..8u64 {
        let (_, a) = admin
            .send(Method::POST, "/admin/accounts", None)
            .await
            .unwrap();
        let account = a["account"].as_str().unwrap().to_owned();
        for (asset, amount) in FUNDING {
            let (s, body) = admin
                .send(
                    Method::POST,
                    "/admin/deposits",
                    Some(&json!({"id": format!("{worker}-{asset}"), "account": account, "asset": asset, "amount": amount})),
                )
                .await
                .unwrap();
            assert_eq!(s, 201, "{body}");
        }
        let (_, key) = admin
            .send(
                Method::POST,
                &format!("/admin/accounts/{account}/keys"),
                Some(&json!({})),
            )
            .await
            .unwrap();
        traders.push(Credentials {
            account: account.parse().unwrap(),
            key_id: key["key_id"].as_str().unwrap().into(),
            secret: key["secret"].as_str().unwrap().into(),
        });
    }
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(20);

    // Eight clients place orders as fast as they are answered.
    let mut workers = Vec::new();
    for worker in 0..8u64 {
        let signer = Signer::new(first.base.clone(), traders[worker as usize].clone());
        let acks = Arc::clone(&acks);
        workers.push(tokio::spawn(async move {
            for n in 0..100_000u64 {
                if Instant::now() > deadline {
                    break;
                }
                let request = order_request(worker, n);
                let Ok((status, body)) = signer.send(Method::POST, "/orders", Some(&request)).await
                else {
                    break;
                };
                if status != 201 {
                    break;
                }
                acks.lock().await.push(Ack {
                    worker,
                    order_id: body["order_id"].as_str().expect("an id").to_owned(),
                    status: body["status"].as_str().expect("a status").to_owned(),
                    filled: body["filled_quantity"].as_str().expect("a fill").to_owned(),
                    request,
                });
            }
        }));
    }
    // Kill it hard once a good number of orders were acknowledged.
    while acks.lock().await.len() < 1_500 {
        assert!(
            Instant::now() < deadline,
            "too few orders were acknowledged before the deadline"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.child.kill().expect("SIGKILL");
    first.child.wait().expect("the killed process is reaped");
    drop(first);
    for w in workers {
        w.await.expect("a worker finished");
    }
    let acks = acks.lock().await.clone();

    let second = spawn(dir.path());
    let base = &second.base;
    let signers: Vec<Signer> = traders
        .iter()
        .map(|c| Signer::new(base.clone(), c.clone()))
        .collect();
    let signer_of = |ack: &Ack| &signers[ack.worker as usize];
    // Every acknowledged order is there, consistent with what was acknowledged.
    for ack in &acks {
        let (status, now) = signer_of(ack)
            .send(Method::GET, &format!("/orders/{}", ack.order_id), None)
            .await
            .expect("answered");
        assert_eq!(status, 200, "acknowledged order {} is lost", ack.order_id);
        if ack.status == "FILLED" || ack.status == "CANCELLED" {
            assert_eq!(
                (now["status"].as_str(), now["filled_quantity"].as_str()),
                (Some(ack.status.as_str()), Some(ack.filled.as_str())),
                "order {}",
                ack.order_id
            );
        } else {
            // Same scale on both sides: compare the digits as integers.
            let lots = |s: &str| {
                s.replace('.', "")
                    .parse::<u64>()
                    .expect("a decimal quantity")
            };
            let (before, after) = (
                lots(&ack.filled),
                lots(now["filled_quantity"].as_str().unwrap()),
            );
            assert!(
                after >= before,
                "order {} lost fills: {before} then {after}",
                ack.order_id
            );
        }
    }
    // A repeated client order id still returns the first order: nothing is placed twice.
    for ack in acks.iter().step_by(97) {
        let (status, body) = signer_of(ack)
            .send(Method::POST, "/orders", Some(&ack.request))
            .await
            .expect("answered");
        assert_eq!(
            status, 200,
            "a retry of {} placed a new order",
            ack.order_id
        );
        assert_eq!(body["order_id"].as_str(), Some(ack.order_id.as_str()));
    }
    // Read what the restarted exchange serves, then stop it cleanly (SIGTERM, exit 0).
    let mut served = Vec::new();
    let get_json = |path: String| {
        let http = http.clone();
        async move {
            http.get(path)
                .send()
                .await
                .expect("answered")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    for symbol in ["BTC-USD", "ETH-USD"] {
        let depth = get_json(format!("{base}/market-data/{symbol}/depth?limit=1000")).await;
        let ticker = get_json(format!("{base}/market-data/{symbol}")).await;
        served.push((symbol, depth, ticker));
    }
    // Every account's balances as served, the admin's and the fee account's included.
    let admin = Signer::new(
        base.clone(),
        read_credentials(&dir.path().join(KEY_FILE)).unwrap(),
    );
    let mut balances = Vec::new();
    for account in traders
        .iter()
        .map(|c| c.account)
        .chain([admin.account(), 0])
    {
        let (s, b) = admin
            .send(Method::GET, &format!("/admin/accounts/{account}"), None)
            .await
            .unwrap();
        assert_eq!(s, 200, "{b}");
        balances.push((account, b));
    }
    let mut second = second;
    let status = Command::new("kill")
        .args(["-TERM", &second.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = second.child.wait().expect("the exchange exits");
    assert!(exit.success(), "graceful shutdown exits 0, got {exit}");

    // A reference: every journal replayed from its first record into a fresh state.
    let symbols = SymbolTable::default_symbols();
    let mut reference = Vec::new();
    for n in 0..SHARDS {
        let (journal, _) = Journal::open(
            &dir.path().join(format!("shard-{n}/journal.log")),
            JournalConfig::default(),
        )
        .unwrap();
        let mut state = ShardState::new(ShardId(n), SHARDS, &symbols, usize::MAX);
        let mut after = 0;
        while after < journal.last_offset() {
            for (offset, rec) in journal.read(after, 4096).await.unwrap() {
                state.apply(offset, &rec);
                after = offset;
            }
        }
        reference.push(state);
    }
    for (symbol, depth, ticker) in served {
        let spec = symbols.by_name(symbol).unwrap();
        let state = &reference[shard_for(symbol, SHARDS).0 as usize];
        let want = state.depth(spec.id, 1000).unwrap();
        let level = |(p, q): &(exchange_core::Price, exchange_core::Qty)| {
            json!([
                spec.price_to_decimal(*p).to_string(),
                spec.qty_to_decimal(*q).to_string()
            ])
        };
        assert_eq!(
            depth["bids"],
            Value::Array(want.bids.iter().map(level).collect()),
            "{symbol} bids"
        );
        assert_eq!(
            depth["asks"],
            Value::Array(want.asks.iter().map(level).collect()),
            "{symbol} asks"
        );
        let day = state
            .ticker(spec.id, Timestamp(u64::MAX / 2))
            .map(|t| t.last.map(|l| l.trade_id));
        let trades = ticker["trades_24h"].as_u64().unwrap();
        // Trade ids count each symbol's trades from 1 without gaps: the last id is the count.
        let last_id = day.flatten().map_or(0, |id| id.0 & OrderId::MAX_LOCAL);
        assert_eq!(
            trades, last_id,
            "{symbol}: trades served vs trades in the reference"
        );
    }
    // Money is conserved, and each balance is its deposits plus the reference's changes.
    let mut sums: std::collections::HashMap<String, i128> = Default::default();
    for (account, served) in &balances {
        for b in served["balances"].as_array().unwrap() {
            let asset = b["asset"].as_str().unwrap();
            let spec = symbols.assets().by_name(asset).unwrap();
            let units = |s: &str| -> i128 { s.replace('.', "").parse().unwrap() };
            let total = units(b["total"].as_str().unwrap());
            let deposited = if traders.iter().any(|c| c.account == *account) {
                FUNDING
                    .iter()
                    .find(|(a, _)| *a == asset)
                    .map_or(0, |(_, amount)| {
                        spec.from_decimal(amount.parse().unwrap()).unwrap() as i128
                    })
            } else {
                0
            };
            let changed: i128 = reference
                .iter()
                .flat_map(|s| s.funds().deltas())
                .filter(|(a, s, _)| *a == AccountId(*account) && *s == spec.id)
                .map(|(_, _, d)| d.total())
                .sum();
            assert_eq!(total, deposited + changed, "account {account} {asset}");
            *sums.entry(asset.to_owned()).or_default() += total;
        }
    }
    for (asset, amount) in FUNDING {
        let spec = symbols.assets().by_name(asset).unwrap();
        let deposited = 8 * spec.from_decimal(amount.parse().unwrap()).unwrap() as i128;
        assert_eq!(sums[*asset], deposited, "{asset} is conserved");
    }
    for ack in &acks {
        let id = OrderId(ack.order_id.parse().unwrap());
        let state =
            &reference[shard_for(&symbols.get(id.symbol()).unwrap().name, SHARDS).0 as usize];
        assert!(
            state.orders().get(id).is_some(),
            "order {id} is not in the journal"
        );
    }
}
