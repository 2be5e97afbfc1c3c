//! The exchange as a cluster on a real local Redis Cluster (`infra/redis-cluster.sh up`; the
//! test run starts it and sets `EXCHANGE_TEST_REDIS_CLUSTER_URL`): two `exchange shard`
//! processes and two gateways. An order placed through one gateway trades with an order placed
//! through the other, each gateway reads what the other did, a shard killed with SIGKILL loses
//! nothing (not even a command logged while it was down) and applies no balance move twice, and
//! money is conserved.

use exchange::config::Config;
use exchange_client::{Client, Credentials, read_credentials};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SHARDS: u32 = 2;

fn cluster() -> Option<String> {
    match std::env::var("EXCHANGE_TEST_REDIS_CLUSTER_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            eprintln!(
                "SKIPPED: cluster tests (run infra/redis-cluster.sh up and set \
                 EXCHANGE_TEST_REDIS_CLUSTER_URL=redis://127.0.0.1:7100)"
            );
            None
        }
    }
}

/// A shard process; killed if the test fails.
struct ShardProcess(Child);

impl Drop for ShardProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_shard(id: u32, dir: &Path, url: &str, ns: &str) -> ShardProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args(["--listen", "127.0.0.1:0", "--shards", &SHARDS.to_string()])
        .args(["--snapshot-every", "5", "--log", "warn"])
        .args(["--redis-url", url, "--redis-namespace", ns])
        .arg("--data-dir")
        .arg(dir)
        .args(["shard", "--id", &id.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the exchange binary starts");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    loop {
        let line = lines
            .next()
            .expect("the shard prints its address")
            .expect("readable stdout");
        if line.starts_with(&format!("shard {id} listening on ")) {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    ShardProcess(child)
}

fn gateway_config(dir: &Path, url: &str, ns: &str) -> Config {
    let mut c = Config::for_tests(dir.to_path_buf());
    c.shards = SHARDS;
    c.redis_url = Some(url.to_owned());
    c.redis_namespace = ns.to_owned();
    c.request_timeout_ms = 1_500;
    c
}

/// `c`, sending to `base`.
fn at(c: &Client, base: &str) -> Client {
    c.clone().with_base(base)
}

async fn call(client: &Client, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    client
        .send(method, path, body.as_ref())
        .await
        .expect("answered")
}

/// A funded trader with a read+trade key, as a client of `base`.
async fn trader(admin: &Client, base: &str) -> Client {
    let (s, acct) = call(admin, Method::POST, "/admin/accounts", None).await;
    assert_eq!(s, 201, "{acct}");
    let account = acct["account"].as_str().unwrap().to_owned();
    for (asset, amount) in [("USD", "1000000"), ("BTC", "100")] {
        let body = json!({"id": format!("fund-{account}-{asset}"), "account": account, "asset": asset, "amount": amount});
        let (s, t) = call(admin, Method::POST, "/admin/deposits", Some(body)).await;
        assert_eq!(s, 201, "{t}");
    }
    let (s, key) = call(
        admin,
        Method::POST,
        &format!("/admin/accounts/{account}/keys"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 201, "{key}");
    at(admin, base).with_key(Credentials {
        account: account.parse().unwrap(),
        key_id: key["key_id"].as_str().unwrap().into(),
        secret: key["secret"].as_str().unwrap().into(),
    })
}

/// An account's balances as asset -> (available, reserved).
async fn balances(c: &Client) -> BTreeMap<String, (String, String)> {
    let (s, a) = call(c, Method::GET, "/account", None).await;
    assert_eq!(s, 200, "{a}");
    a["balances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["asset"].as_str().unwrap().to_owned(),
                (
                    b["available"].as_str().unwrap().to_owned(),
                    b["reserved"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect()
}

fn limit(side: &str, price: &str, qty: &str, client_id: &str) -> Value {
    json!({"symbol": "BTC-USD", "side": side, "type": "LIMIT", "price": price,
           "quantity": qty, "client_order_id": client_id})
}

/// The seller rests 0.5 BTC at 65,000 (`s1`) and the buyer takes 0.2 of it (`b1`); returns
/// both execution reports.
async fn first_trade(seller: &Client, buyer: &Client) -> (Value, Value) {
    let (s, sell) = call(
        seller,
        Method::POST,
        "/orders",
        Some(limit("SELL", "65000.00", "0.50000", "s1")),
    )
    .await;
    assert_eq!((s, sell["status"].as_str()), (201, Some("NEW")), "{sell}");
    let (s, buy) = call(
        buyer,
        Method::POST,
        "/orders",
        Some(limit("BUY", "65000.00", "0.20000", "b1")),
    )
    .await;
    assert_eq!((s, buy["status"].as_str()), (201, Some("FILLED")), "{buy}");
    assert_eq!(buy["fills"].as_array().unwrap().len(), 1, "{buy}");
    (sell, buy)
}

/// Polls `f` until it answers `Some`, for at most 20 s.
async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, mut f: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_and_shards_in_separate_processes_trade_and_survive_a_shard_kill() {
    let Some(url) = cluster() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ns = format!(
        "c{}-{}-",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let btc_shard = exchange_core::shard_for("BTC-USD", SHARDS).0;
    let mut shards: Vec<ShardProcess> = (0..SHARDS)
        .map(|id| spawn_shard(id, dir.path(), &url, &ns))
        .collect();
    // The first gateway creates the admin key; the second shares the master key (same data
    // directory here; EXCHANGE_MASTER_KEY in a real deployment).
    let never = std::future::pending::<()>;
    let a = exchange::cluster::run_gateway(gateway_config(dir.path(), &url, &ns), never())
        .await
        .unwrap();
    let b = exchange::cluster::run_gateway(gateway_config(dir.path(), &url, &ns), never())
        .await
        .unwrap();
    let (base_a, base_b) = (format!("http://{}", a.addr), format!("http://{}", b.addr));
    let admin = Client::new(
        &base_a,
        read_credentials(&dir.path().join("admin-key.json")).unwrap(),
    );
    let seller = trader(&admin, &base_a).await;
    let buyer = trader(&admin, &base_b).await;

    // A resting sell through gateway A, a crossing buy through gateway B.
    let (sell, _) = first_trade(&seller, &buyer).await;

    // Each gateway reads what went through the other.
    let sell_id = sell["order_id"].as_str().unwrap().to_owned();
    let (s, read) = call(
        &at(&seller, &base_b),
        Method::GET,
        &format!("/orders/{sell_id}"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{read}");
    assert_eq!(read["status"], "PARTIALLY_FILLED");
    assert_eq!(read["filled_quantity"], "0.20000");
    let (s, depth) = call(
        &at(&buyer, &base_a),
        Method::GET,
        "/market-data/BTC-USD/depth",
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(depth["asks"][0], json!(["65000.00", "0.30000"]), "{depth}");
    let (s, health) = call(&admin, Method::GET, "/health", None).await;
    assert_eq!(s, 200);
    assert_eq!(health["shards"].as_array().unwrap().len(), SHARDS as usize);
    let buyer_before = balances(&buyer).await;
    let seller_before = balances(&seller).await;
    assert_eq!(
        buyer_before["USD"],
        ("987000.0000000".into(), "0.0000000".into()),
        "paid 13,000 USD for 0.2 BTC"
    );
    assert_eq!(
        seller_before["BTC"],
        ("99.50000000".into(), "0.30000000".into()),
        "0.3 BTC still reserved for the resting rest"
    );

    // SIGKILL the shard of BTC-USD: reads of it fail with a clear 503, and an order sent now
    // is logged (it is in the shard's Redis Stream) though nobody applies it yet.
    let killed = &mut shards[btc_shard as usize];
    killed.0.kill().unwrap();
    killed.0.wait().unwrap();
    let (s, err) = call(&seller, Method::GET, &format!("/orders/{sell_id}"), None).await;
    assert_eq!(s, 503, "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("not answering"),
        "{err}"
    );
    let (s, late) = call(
        &seller,
        Method::POST,
        "/orders",
        Some(limit("SELL", "70000.00", "1.00000", "during-outage")),
    )
    .await;
    assert_eq!(s, 504, "logged, but not applied in time: {late}");

    // Restarted, the shard recovers from its snapshot and the log, and applies the order that
    // came while it was down, exactly once.
    shards[btc_shard as usize] = spawn_shard(btc_shard, dir.path(), &url, &ns);
    let during = eventually("the order logged during the outage", || async {
        let (s, o) = call(&seller, Method::GET, "/orders/client/during-outage", None).await;
        (s == 200).then_some(o)
    })
    .await;
    assert_eq!(during["status"], "NEW", "{during}");
    let (_, read) = call(&seller, Method::GET, &format!("/orders/{sell_id}"), None).await;
    assert_eq!(read["status"], "PARTIALLY_FILLED", "{read}");
    assert_eq!(
        balances(&buyer).await,
        buyer_before,
        "no move applied twice"
    );
    let seller_after = balances(&seller).await;
    assert_eq!(
        seller_after["BTC"],
        ("98.50000000".into(), "1.30000000".into()),
        "the outage order reserved 1 BTC, once"
    );
    assert_eq!(seller_after["USD"], seller_before["USD"]);

    // The rest of the resting sell trades through gateway B after the restart.
    let (s, buy2) = call(
        &buyer,
        Method::POST,
        "/orders",
        Some(limit("BUY", "65000.00", "0.30000", "b2")),
    )
    .await;
    assert_eq!(
        (s, buy2["status"].as_str()),
        (201, Some("FILLED")),
        "{buy2}"
    );

    // Money is conserved across every account, the fee account included.
    let (s, totals) = call(&admin, Method::GET, "/admin/totals", None).await;
    assert_eq!(s, 200, "{totals}");
    for t in totals.as_array().unwrap() {
        assert_eq!(
            t["held"], t["transferred"],
            "{} is conserved: {totals}",
            t["asset"]
        );
    }

    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    // SIGTERM: each shard drains its log, writes a final snapshot and exits 0.
    for shard in &mut shards {
        let pid = shard.0.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = shard.0.wait().unwrap();
        assert!(status.success(), "a shard exits cleanly: {status}");
    }
}

/// A Redis Cluster of this test's own (`infra/redis-cluster.sh` on other ports), stopped and
/// deleted when dropped.
struct OwnRedis {
    env: Vec<(&'static str, String)>,
    dir: tempfile::TempDir,
    base: u16,
}

impl OwnRedis {
    fn up(base: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let env = vec![
            ("EXCHANGE_REDIS_CLUSTER_PORT", base.to_string()),
            (
                "EXCHANGE_REDIS_CLUSTER_DIR",
                dir.path().display().to_string(),
            ),
        ];
        let status = Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/infra/redis-cluster.sh"
        ))
        .arg("up")
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .stdout(Stdio::null())
        .status()
        .unwrap();
        assert!(status.success(), "a Redis Cluster of the test's own starts");
        Self { env, dir, base }
    }

    fn seeds(&self) -> String {
        (self.base..self.base + 6)
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn cli(&self, port: u16, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The port of the master serving `key`'s slot, as `via` sees the cluster.
    fn master_of(&self, via: u16, key: &str) -> Option<u16> {
        let slot: u16 = self
            .cli(via, &["cluster", "keyslot", key])
            .trim()
            .parse()
            .ok()?;
        self.cli(via, &["cluster", "nodes"]).lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let serves = f.get(8..)?.iter().any(|r| serves_slot(r, slot));
            let port = f.get(1)?.split(['@', ':']).nth(1)?.parse().ok()?;
            (f.get(2)?.contains("master") && !f[2].contains("fail") && serves).then_some(port)
        })
    }
}

/// Whether a `cluster nodes` slot field (`5461-10922` or `42`) covers `slot`.
fn serves_slot(range: &str, slot: u16) -> bool {
    let bound = |s: &str| s.parse::<u16>().ok();
    match range.split_once('-') {
        Some((a, b)) => {
            matches!((bound(a), bound(b)), (Some(a), Some(b)) if (a..=b).contains(&slot))
        }
        None => bound(range) == Some(slot),
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/infra/redis-cluster.sh"
        ))
        .arg("down")
        .envs(self.env.iter().map(|(k, v)| (*k, v)))
        .stdout(Stdio::null())
        .status();
        let _ = &self.dir;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_rides_out_a_redis_master_failover() {
    // Needs redis-server as the other cluster tests do; runs on a cluster of its own, as it
    // kills one of its masters.
    if cluster().is_none() {
        return;
    }
    let redis = OwnRedis::up(7400);
    // Replicas must have synced before a master dies, or none can be promoted.
    eventually("every master's replica online", || async {
        let all = (7400..7406).all(|p| {
            let info = redis.cli(p, &["info", "replication"]);
            !info.contains("role:master") || info.contains("state=online")
        });
        all.then_some(())
    })
    .await;
    let seeds = redis.seeds();
    let dir = tempfile::tempdir().unwrap();
    let ns = "f-";
    let mut shards: Vec<ShardProcess> = (0..SHARDS)
        .map(|id| spawn_shard(id, dir.path(), &seeds, ns))
        .collect();
    let gw = exchange::cluster::run_gateway(
        gateway_config(dir.path(), &seeds, ns),
        std::future::pending(),
    )
    .await
    .unwrap();
    let base = format!("http://{}", gw.addr);
    let admin = Client::new(
        &base,
        read_credentials(&dir.path().join("admin-key.json")).unwrap(),
    );
    let seller = trader(&admin, &base).await;
    let buyer = trader(&admin, &base).await;
    first_trade(&seller, &buyer).await;

    // SIGKILL the master holding BTC-USD's shard (its log, outcomes and questions).
    let btc = exchange_core::shard_for("BTC-USD", SHARDS).0;
    let key = format!("{{{ns}shard-{btc}}}:commands");
    let victim = redis.master_of(7400, &key).unwrap();
    let pid = std::fs::read_to_string(redis.dir.path().join(victim.to_string()).join("redis.pid"))
        .unwrap();
    assert!(
        Command::new("kill")
            .args(["-KILL", pid.trim()])
            .status()
            .unwrap()
            .success()
    );
    let survivor = if victim == 7400 { 7401 } else { 7400 };
    let promoted = eventually("a replica promoted", || async {
        redis.master_of(survivor, &key).filter(|p| *p != victim)
    })
    .await;
    assert_ne!(promoted, victim);

    // Trading resumes by itself: a new order is answered, the old ones read back the same.
    let mut attempt = 0;
    let placed = eventually("an order answered after the failover", || {
        attempt += 1;
        let order = limit("SELL", "70000.00", "0.10000", &format!("after-{attempt}"));
        let seller = seller.clone();
        async move {
            let (s, o) = call(&seller, Method::POST, "/orders", Some(order)).await;
            (s == 201).then_some(o)
        }
    })
    .await;
    assert_eq!(placed["status"], "NEW", "{placed}");
    let (s, read) = call(&seller, Method::GET, "/orders/client/s1", None).await;
    assert_eq!(s, 200, "{read}");
    assert_eq!(read["status"], "PARTIALLY_FILLED");
    assert_eq!(read["filled_quantity"], "0.20000");
    let (s, b) = call(&buyer, Method::GET, "/orders/client/b1", None).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("FILLED")), "{b}");
    let totals = eventually("balances conserved", || async {
        let (s, t) = call(&admin, Method::GET, "/admin/totals", None).await;
        (s == 200
            && t.as_array()
                .is_some_and(|a| a.iter().all(|x| x["held"] == x["transferred"])))
        .then_some(t)
    })
    .await;
    assert!(!totals.as_array().unwrap().is_empty());

    gw.shutdown().await.unwrap();
    for shard in &mut shards {
        let _ = shard.0.kill();
        let _ = shard.0.wait();
    }
}
