//! Accounts over HTTP: signed requests and every way they are refused, permissions, accounts
//! that cannot see or touch each other's orders, exact balances and fees, the ledger, deposits
//! and withdrawals applied once, and rate limits.

mod common;

use common::{TestExchange, assert_error};
use exchange_client::signing::{KEY_HEADER, payload, sign};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// A hand-built signed GET, to vary each part.
async fn get_signed(
    ex: &TestExchange,
    key: &str,
    secret: &str,
    path: &str,
    query: &str,
) -> (StatusCode, Value) {
    let sig = sign(secret.as_bytes(), &payload("GET", path, query, b""));
    let url = format!("{}{path}?{query}&signature={sig}", ex.base);
    let resp = reqwest::Client::new()
        .get(url)
        .header(KEY_HEADER, key)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

async fn new_key(ex: &TestExchange, account: &str, permissions: Value) -> (String, String) {
    let (s, key) = ex
        .admin(
            Method::POST,
            &format!("/admin/accounts/{account}/keys"),
            Some(json!({ "permissions": permissions })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{key}");
    (
        key["key_id"].as_str().unwrap().into(),
        key["secret"].as_str().unwrap().into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_refused_unless_signed_right() {
    let ex = TestExchange::start().await;
    let account = ex.account_of(1).await;
    let (key, secret) = new_key(&ex, &account, json!(["read"])).await;
    let ts = now_ms();
    let ok = get_signed(&ex, &key, &secret, "/account", &format!("timestamp={ts}")).await;
    assert_eq!(ok.0, StatusCode::OK, "{}", ok.1);
    assert_eq!(ok.1["account"], account);
    let unauthorized = |r: &(StatusCode, Value), why: &str| {
        assert_eq!(
            (r.0, r.1["code"].as_u64()),
            (StatusCode::UNAUTHORIZED, Some(2001)),
            "{}",
            r.1
        );
        let message = r.1["message"].as_str().unwrap();
        assert!(message.contains(why), "{message:?} should say {why:?}");
    };
    // The same signature again: a replay.
    unauthorized(
        &get_signed(&ex, &key, &secret, "/account", &format!("timestamp={ts}")).await,
        "already used",
    );
    // A wrong secret, an unknown key, no key.
    unauthorized(
        &get_signed(
            &ex,
            &key,
            "not-the-secret",
            "/account",
            &format!("timestamp={}", ts + 1),
        )
        .await,
        "does not match",
    );
    unauthorized(
        &get_signed(
            &ex,
            "k-nope",
            &secret,
            "/account",
            &format!("timestamp={}", ts + 2),
        )
        .await,
        "unknown API key",
    );
    unauthorized(
        &ex.unsigned(Method::GET, "/account", None).await,
        "X-API-KEY",
    );
    // Outside the window, ahead of the clock, a window too wide, no timestamp.
    unauthorized(
        &get_signed(
            &ex,
            &key,
            &secret,
            "/account",
            &format!("timestamp={}", ts - 6_000),
        )
        .await,
        "receive window",
    );
    assert_eq!(
        get_signed(
            &ex,
            &key,
            &secret,
            "/account",
            &format!("timestamp={}&recvWindow=20000", ts - 6_000)
        )
        .await
        .0,
        StatusCode::OK,
        "a wider window accepts it"
    );
    unauthorized(
        &get_signed(
            &ex,
            &key,
            &secret,
            "/account",
            &format!("timestamp={}", ts + 60_000),
        )
        .await,
        "ahead",
    );
    unauthorized(
        &get_signed(
            &ex,
            &key,
            &secret,
            "/account",
            &format!("timestamp={ts}&recvWindow=60001"),
        )
        .await,
        "recvWindow",
    );
    unauthorized(
        &get_signed(&ex, &key, &secret, "/account", "recvWindow=100").await,
        "timestamp",
    );
    // A signature for another path does not carry over.
    let sig = sign(
        secret.as_bytes(),
        &payload("GET", "/orders", &format!("timestamp={}", ts + 3), b""),
    );
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/account?timestamp={}&signature={sig}",
            ex.base,
            ts + 3
        ))
        .header(KEY_HEADER, &key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // A read-only key cannot trade; a trading key cannot administer.
    let read_only = exchange_client::Client::new(
        ex.base.clone(),
        exchange_client::Credentials {
            account: account.parse().unwrap(),
            key_id: key.clone(),
            secret: secret.clone(),
        },
    );
    let (s, body) = read_only
        .send(
            Method::POST,
            "/orders",
            Some(&json!({"symbol": "BTC-USD", "side": "BUY", "type": "LIMIT", "price": "1.00", "quantity": "1.00000"})),
        )
        .await
        .unwrap();
    assert_eq!((s, body["code"].clone()), (403, json!(2002)), "{body}");
    let trader = ex.trader(1).await;
    let (s, body) = trader
        .send(Method::POST, "/admin/accounts", None)
        .await
        .unwrap();
    assert_eq!((s, body["code"].clone()), (403, json!(2002)), "{body}");
    // A disabled key is refused.
    let (s, _) = ex
        .admin(Method::DELETE, &format!("/admin/keys/{key}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    unauthorized(
        &get_signed(
            &ex,
            &key,
            &secret,
            "/account",
            &format!("timestamp={}", now_ms()),
        )
        .await,
        "disabled",
    );
    // Public data needs no signature.
    assert_eq!(
        ex.unsigned(Method::GET, "/market-data/BTC-USD", None)
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_can_never_see_or_touch_another_accounts_orders() {
    let ex = TestExchange::start().await;
    let (s, mine) = ex
        .post("/orders", json!({"account": 1, "symbol": "ETH-USD", "side": "BUY", "type": "LIMIT", "price": "2000.00", "quantity": "1.0000", "client_order_id": "secret-1"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{mine}");
    let id = mine["order_id"].as_str().unwrap();
    // Trader 2 tries every private endpoint on trader 1's order.
    for (method, path, body) in [
        (Method::GET, format!("/orders/{id}?account=2"), None),
        (Method::GET, format!("/order/{id}?account=2"), None),
        (
            Method::PATCH,
            format!("/orders/{id}"),
            Some(json!({"account": 2, "price": "1000.00"})),
        ),
        (Method::DELETE, format!("/orders/{id}?account=2"), None),
        (
            Method::GET,
            "/orders/client/secret-1?account=2".into(),
            None,
        ),
        (
            Method::DELETE,
            "/orders/client/secret-1?account=2".into(),
            None,
        ),
    ] {
        let r = ex.call(method.clone(), &path, body).await;
        assert!(
            r.0 == StatusCode::NOT_FOUND || r.0 == StatusCode::FORBIDDEN,
            "{method} {path}: {} {}",
            r.0,
            r.1
        );
    }
    let (_, listed) = ex.get("/orders?account=2").await;
    assert_eq!(listed, json!([]), "trader 2 lists only its own orders");
    let (_, cancelled) = ex.delete("/orders?account=2").await;
    assert_eq!(cancelled["cancelled"], json!([]));
    let (_, trades) = ex.get("/account/trades?account=2").await;
    assert_eq!(trades, json!([]));
    // Trader 1's order is untouched.
    let (s, still) = ex.get(&format!("/orders/{id}?account=1")).await;
    assert_eq!((s, still["status"].as_str()), (StatusCode::OK, Some("NEW")));
    assert_eq!(still["price"], "2000.00");
}

fn balance(account: &Value, asset: &str) -> (String, String) {
    let b = account["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["asset"] == asset)
        .unwrap();
    (
        b["available"].as_str().unwrap().into(),
        b["reserved"].as_str().unwrap().into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balances_holds_fees_and_the_ledger_are_exact() {
    let ex = TestExchange::start().await;
    // Two fresh accounts with exactly what this test gives them.
    let mut accounts = Vec::new();
    for (asset, amount) in [("USD", "70000"), ("BTC", "1.5")] {
        let (_, a) = ex.admin(Method::POST, "/admin/accounts", None).await;
        let account = a["account"].as_str().unwrap().to_owned();
        let (s, d) = ex
            .admin(
                Method::POST,
                "/admin/deposits",
                Some(json!({"id": format!("d-{account}"), "account": account, "asset": asset, "amount": amount})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{d}");
        let (key_id, secret) = new_key(&ex, &account, json!(["read", "trade"])).await;
        accounts.push(exchange_client::Client::new(
            ex.base.clone(),
            exchange_client::Credentials {
                account: account.parse().unwrap(),
                key_id,
                secret,
            },
        ));
    }
    let (buyer, seller) = (&accounts[0], &accounts[1]);
    let send = |c: &exchange_client::Client, m: Method, p: &str, b: Option<Value>| {
        let c = c.clone();
        let p = p.to_owned();
        async move { c.send(m, &p, b.as_ref()).await.unwrap() }
    };
    // The seller rests 1 BTC at 65000: 1 BTC reserved.
    let (s, ask) = send(seller, Method::POST, "/orders", Some(json!({"symbol": "BTC-USD", "side": "SELL", "type": "LIMIT", "price": "65000.00", "quantity": "1.00000"}))).await;
    assert_eq!(s, 201, "{ask}");
    let (_, acct) = send(seller, Method::GET, "/account", None).await;
    assert_eq!(
        balance(&acct, "BTC"),
        ("0.50000000".into(), "1.00000000".into())
    );
    // The buyer cannot buy 1.1 BTC at 65000 with 70000 USD.
    let (s, refused) = send(buyer, Method::POST, "/orders", Some(json!({"symbol": "BTC-USD", "side": "BUY", "type": "LIMIT", "price": "65000.00", "quantity": "1.10000"}))).await;
    assert_eq!(
        (s, refused["code"].clone()),
        (400, json!(2101)),
        "{refused}"
    );
    // It buys 0.4 at up to 66000: it trades at the maker's 65000, and the price improvement
    // is released at once.
    let (s, bought) = send(buyer, Method::POST, "/orders", Some(json!({"symbol": "BTC-USD", "side": "BUY", "type": "LIMIT", "price": "66000.00", "quantity": "0.40000"}))).await;
    assert_eq!(
        (s, bought["status"].as_str()),
        (201, Some("FILLED")),
        "{bought}"
    );
    // Taker fee 10 bps of 0.4 BTC = 0.0004 BTC; maker fee 5 bps of 26000 USD = 13 USD.
    let (_, acct) = send(buyer, Method::GET, "/account", None).await;
    assert_eq!(
        balance(&acct, "USD"),
        ("44000.0000000".into(), "0.0000000".into())
    );
    assert_eq!(
        balance(&acct, "BTC"),
        ("0.39960000".into(), "0.00000000".into())
    );
    let (_, acct) = send(seller, Method::GET, "/account", None).await;
    assert_eq!(
        balance(&acct, "USD"),
        ("25987.0000000".into(), "0.0000000".into())
    );
    assert_eq!(
        balance(&acct, "BTC"),
        ("0.50000000".into(), "0.60000000".into())
    );
    let (_, fees) = ex.admin(Method::GET, "/admin/accounts/0", None).await;
    assert_eq!(balance(&fees, "BTC").0, "0.00040000");
    assert_eq!(balance(&fees, "USD").0, "13.0000000");
    // A resting buy reserves its cost; cancelling gives it back.
    let (_, bid) = send(buyer, Method::POST, "/orders", Some(json!({"symbol": "BTC-USD", "side": "BUY", "type": "LIMIT", "price": "40000.00", "quantity": "0.50000"}))).await;
    let (_, acct) = send(buyer, Method::GET, "/account", None).await;
    assert_eq!(
        balance(&acct, "USD"),
        ("24000.0000000".into(), "20000.0000000".into())
    );
    let bid_id = bid["order_id"].as_str().unwrap();
    // Raising it past what is available is refused and changes nothing.
    let (s, r) = send(
        buyer,
        Method::PATCH,
        &format!("/orders/{bid_id}"),
        Some(json!({"price": "90000.00"})),
    )
    .await;
    assert_eq!((s, r["code"].clone()), (400, json!(2101)), "{r}");
    let (s, _) = send(buyer, Method::DELETE, &format!("/orders/{bid_id}"), None).await;
    assert_eq!(s, 200);
    let (_, acct) = send(buyer, Method::GET, "/account", None).await;
    assert_eq!(
        balance(&acct, "USD"),
        ("44000.0000000".into(), "0.0000000".into())
    );
    // The buyer's fill, with its fee.
    let (_, trades) = send(buyer, Method::GET, "/account/trades?symbol=BTC-USD", None).await;
    assert_eq!(trades.as_array().unwrap().len(), 1, "{trades}");
    let t = &trades[0];
    assert_eq!(
        (
            t["side"].as_str(),
            t["price"].as_str(),
            t["quantity"].as_str(),
            t["quote_quantity"].as_str(),
            t["fee"].as_str(),
            t["fee_asset"].as_str(),
            t["liquidity"].as_str()
        ),
        (
            Some("BUY"),
            Some("65000.00"),
            Some("0.40000"),
            Some("26000.0000000"),
            Some("0.00040000"),
            Some("BTC"),
            Some("TAKER")
        )
    );
    // The ledger, newest first, with running balances.
    let (_, ledger) = send(buyer, Method::GET, "/account/ledger", None).await;
    let rows: Vec<(String, String, String, String)> = ledger
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().into(),
                e["asset"].as_str().unwrap().into(),
                e["amount"].as_str().unwrap().into(),
                e["balance"].as_str().unwrap().into(),
            )
        })
        .collect();
    let row = |k: &str, a: &str, amt: &str, bal: &str| (k.into(), a.into(), amt.into(), bal.into());
    assert_eq!(
        rows,
        vec![
            row("FEE", "BTC", "-0.00040000", "0.39960000"),
            row("TRADE", "BTC", "0.40000000", "0.40000000"),
            row("TRADE", "USD", "-26000.0000000", "44000.0000000"),
            row("DEPOSIT", "USD", "70000.0000000", "70000.0000000"),
        ]
    );
    let (_, usd_only) = send(
        buyer,
        Method::GET,
        "/account/ledger?asset=USD&limit=1",
        None,
    )
    .await;
    assert_eq!(usd_only.as_array().unwrap().len(), 1);
    assert_eq!(usd_only[0]["type"], "TRADE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposits_and_withdrawals_apply_once() {
    let ex = TestExchange::start().await;
    let (_, a) = ex.admin(Method::POST, "/admin/accounts", None).await;
    let account = a["account"].as_str().unwrap().to_owned();
    let deposit = json!({"id": "dep-1", "account": account, "asset": "ETH", "amount": "2.5"});
    let first = ex
        .admin(Method::POST, "/admin/deposits", Some(deposit.clone()))
        .await;
    assert_eq!(first.0, StatusCode::CREATED, "{}", first.1);
    let retry = ex
        .admin(Method::POST, "/admin/deposits", Some(deposit))
        .await;
    assert_eq!(
        (retry.0, &retry.1),
        (StatusCode::OK, &first.1),
        "a retry is the first"
    );
    for (path, id, acct, asset, amount, status, code, field) in [
        (
            "/admin/deposits",
            "dep-1",
            account.as_str(),
            "ETH",
            "3",
            StatusCode::CONFLICT,
            2103,
            None,
        ),
        (
            "/admin/withdrawals",
            "w-1",
            &account,
            "ETH",
            "2.5001",
            StatusCode::BAD_REQUEST,
            2101,
            None,
        ),
        (
            "/admin/deposits",
            "d-2",
            &account,
            "DOGE",
            "1",
            StatusCode::BAD_REQUEST,
            2102,
            Some("asset"),
        ),
        (
            "/admin/deposits",
            "d-2",
            &account,
            "ETH",
            "0.00001",
            StatusCode::BAD_REQUEST,
            1006,
            Some("amount"),
        ),
        (
            "/admin/deposits",
            "d-2",
            "999",
            "ETH",
            "1",
            StatusCode::NOT_FOUND,
            2003,
            None,
        ),
    ] {
        let body = json!({"id": id, "account": acct, "asset": asset, "amount": amount});
        assert_error(
            &ex.admin(Method::POST, path, Some(body)).await,
            status,
            code,
            field,
        );
    }
    let w = ex
        .admin(
            Method::POST,
            "/admin/withdrawals",
            Some(json!({"id": "w-1", "account": account, "asset": "ETH", "amount": "1.25"})),
        )
        .await;
    assert_eq!(w.0, StatusCode::CREATED, "{}", w.1);
    let ex = ex.restart().await;
    let (_, acct) = ex
        .admin(Method::GET, &format!("/admin/accounts/{account}"), None)
        .await;
    assert_eq!(
        balance(&acct, "ETH"),
        ("1.2500".into(), "0.0000".into()),
        "{acct}"
    );
    let again = ex
        .admin(
            Method::POST,
            "/admin/withdrawals",
            Some(json!({"id": "w-1", "account": account, "asset": "ETH", "amount": "1.25"})),
        )
        .await;
    assert_eq!(again.0, StatusCode::OK, "applied once, across a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after() {
    let ex = TestExchange::start_with(|c| {
        c.rate_limit_key = 1;
        c.rate_limit_key_burst = 8;
    })
    .await;
    // (Setting up the trader takes six admin requests, within the admin key's burst.)
    let trader = ex.trader(1).await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(trader.send(Method::GET, "/account", None).await.unwrap());
    }
    let limited = statuses
        .iter()
        .find(|(s, _)| *s == 429)
        .expect("the burst of 8 runs out within 12 quick requests");
    assert_eq!(limited.1["code"], 2201);
    // The header, on a raw request with the same key.
    let resp = reqwest::Client::new()
        .get(format!("{}/account", ex.base))
        .header(KEY_HEADER, "whatever-key")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "another key has its own bucket"
    );
    let mut retry_after = None;
    for _ in 0..5 {
        let (s, _) = trader.send(Method::GET, "/account", None).await.unwrap();
        if s == 429 {
            let resp = reqwest::Client::new()
                .get(format!("{}/account", ex.base))
                .header(KEY_HEADER, trader_key(&trader))
                .send()
                .await
                .unwrap();
            if resp.status() == StatusCode::TOO_MANY_REQUESTS {
                retry_after = resp.headers().get("retry-after").cloned();
                break;
            }
        }
    }
    let secs: u64 = retry_after
        .expect("a 429 carries Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&secs), "{secs}");
}

fn trader_key(c: &exchange_client::Client) -> String {
    c.key_id().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_ip_limit_covers_public_requests_too() {
    let ex = TestExchange::start_with(|c| {
        c.rate_limit_ip = 1;
        c.rate_limit_ip_burst = 3;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(ex.unsigned(Method::GET, "/health", None).await);
    }
    let ok = statuses
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .count();
    assert!(
        (3..=4).contains(&ok),
        "the burst of 3 (plus at most one refill): {ok}"
    );
    let limited = statuses.last().unwrap();
    assert_error(limited, StatusCode::TOO_MANY_REQUESTS, 2201, None);
    assert!(limited.1["message"].as_str().unwrap().contains("IP"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_cli_creates_funds_and_keys_accounts() {
    let ex = TestExchange::start().await;
    let key_file = ex.dir.path().join(exchange_client::KEY_FILE);
    let cli = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_exchange"));
        cmd.arg("admin")
            .arg("--url")
            .arg(&ex.base)
            .arg("--key-file")
            .arg(&key_file)
            .args(args);
        async move {
            let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
                .await
                .unwrap();
            let json: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            (out.status.success(), json)
        }
    };
    let (ok, created) = cli(&["create-account"]).await;
    assert!(ok, "{created}");
    let account = created["account"].as_str().unwrap().to_owned();
    let (ok, dep) = cli(&[
        "deposit",
        "--account",
        &account,
        "--asset",
        "SOL",
        "--amount",
        "12.5",
        "--id",
        "cli-1",
    ])
    .await;
    assert!(ok, "{dep}");
    assert_eq!(dep["amount"], "12.50");
    let (ok, key) = cli(&["create-key", "--account", &account, "--permissions", "read"]).await;
    assert!(ok, "{key}");
    assert_eq!(key["permissions"], json!(["read"]));
    let (ok, balances) = cli(&["balances", "--account", &account]).await;
    assert!(ok);
    assert_eq!(balance(&balances, "SOL"), ("12.50".into(), "0.00".into()));
    let (ok, refused) = cli(&[
        "withdraw",
        "--account",
        &account,
        "--asset",
        "SOL",
        "--amount",
        "13",
        "--id",
        "cli-2",
    ])
    .await;
    assert!(!ok, "a refused withdrawal exits non-zero");
    assert_eq!(refused["code"], 2101);
}
