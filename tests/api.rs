//! The REST API end to end: the embedded exchange on a port of its own, driven over HTTP.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

mod common;

use common::{TestExchange, assert_error};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_api_places_reads_and_shows_market_data() {
    let ex = TestExchange::start().await;
    let (status, placed) = ex
        .post("/order", json!({"account": 1, "symbol": "ETH-USD", "side": "BUY", "type": "LIMIT", "price": "3000.00", "quantity": "1.5000"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    assert_eq!(placed["status"], "NEW");
    let id = placed["order_id"].as_str().unwrap();
    let (status, read) = ex.get(&format!("/order/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["order_id"], id);
    assert_eq!(read["price"], "3000.00");
    assert_eq!(read["quantity"], "1.5000");
    let (status, all) = ex.get("/market-data").await;
    assert_eq!(status, StatusCode::OK);
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 4, "one ticker per listed symbol");
    let eth = all.iter().find(|t| t["symbol"] == "ETH-USD").unwrap();
    assert_eq!(eth["best_bid"], "3000.00");
    assert_eq!(eth["best_bid_quantity"], "1.5000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_orders_match_at_the_makers_price_with_fills_and_average() {
    let ex = TestExchange::start().await;
    ex.limit(1, "SELL", "65000.00", "0.10000").await;
    ex.limit(1, "SELL", "65010.00", "0.10000").await;
    let taker = ex.limit(2, "BUY", "65100.00", "0.15000").await;
    assert_eq!(taker["status"], "FILLED");
    assert_eq!(taker["filled_quantity"], "0.15000");
    assert_eq!(taker["cumulative_quote_quantity"], "9750.50");
    assert_eq!(taker["average_price"], "65003.33333333");
    let fills = taker["fills"].as_array().unwrap();
    assert_eq!(fills.len(), 2);
    assert_eq!(
        (fills[0]["price"].as_str(), fills[0]["quantity"].as_str()),
        (Some("65000.00"), Some("0.10000"))
    );
    assert_eq!(
        (fills[1]["price"].as_str(), fills[1]["quantity"].as_str()),
        (Some("65010.00"), Some("0.05000"))
    );
    assert!(fills.iter().all(|f| f["liquidity"] == "TAKER"));
    let resting = ex.limit(3, "BUY", "64000.00", "0.01000").await;
    assert_eq!(resting["status"], "NEW");
    assert_eq!(resting["remaining_quantity"], "0.01000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_ioc_fok_post_only_and_stp_through_the_api() {
    let ex = TestExchange::start().await;
    ex.limit(1, "SELL", "100.00", "1.00000").await;
    ex.limit(1, "SELL", "101.00", "1.00000").await;
    let order = |extra: Value| {
        let mut base = json!({"account": 2, "symbol": "BTC-USD", "side": "BUY"});
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        base
    };
    // FOK that cannot fill: nothing trades.
    let (s, fok) = ex.post("/orders", order(json!({"type": "LIMIT", "price": "101.00", "quantity": "3.00000", "time_in_force": "FOK"}))).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        (fok["status"].as_str(), fok["cancel_reason"].as_str()),
        (Some("CANCELLED"), Some("FOK_UNFILLABLE"))
    );
    // IOC: trades what crosses, cancels the rest.
    let (_, ioc) = ex.post("/orders", order(json!({"type": "LIMIT", "price": "100.00", "quantity": "1.50000", "time_in_force": "IOC"}))).await;
    assert_eq!(
        (
            ioc["status"].as_str(),
            ioc["cancel_reason"].as_str(),
            ioc["filled_quantity"].as_str()
        ),
        (Some("CANCELLED"), Some("IOC_REMAINDER"), Some("1.00000"))
    );
    // Post-only that would take is refused.
    let r = ex.post("/orders", order(json!({"type": "LIMIT", "price": "101.00", "quantity": "0.10000", "post_only": true}))).await;
    assert_error(&r, StatusCode::BAD_REQUEST, 3004, None);
    // Market order sized in quote: 50.50 buys 0.5 at 101.00.
    let (_, m) = ex
        .post(
            "/orders",
            order(json!({"type": "MARKET", "quote_quantity": "50.50"})),
        )
        .await;
    assert_eq!(
        (
            m["status"].as_str(),
            m["filled_quantity"].as_str(),
            m["quote_quantity"].as_str()
        ),
        (Some("FILLED"), Some("0.50000"), Some("50.5000000"))
    );
    // A market buy's cost must be known before it trades: it is sized in quote.
    assert_error(
        &ex.post(
            "/orders",
            order(json!({"type": "MARKET", "quantity": "2.00000"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        1013,
        Some("quantity"),
    );
    // A market buy for more than the book holds: the rest is cancelled.
    let (_, m) = ex
        .post(
            "/orders",
            order(json!({"type": "MARKET", "quote_quantity": "100000.00"})),
        )
        .await;
    assert_eq!(
        (m["status"].as_str(), m["filled_quantity"].as_str()),
        (Some("CANCELLED"), Some("0.50000"))
    );
    let (_, depth) = ex.get("/market-data/BTC-USD/depth").await;
    assert_eq!(depth["asks"], json!([]));
    // Self-trade prevention: account 1 crossing its own order with EXPIRE_TAKER.
    ex.limit(1, "SELL", "200.00", "1.00000").await;
    let (_, stp) = ex
        .post("/orders", json!({"account": 1, "symbol": "BTC-USD", "side": "BUY", "type": "LIMIT", "price": "200.00", "quantity": "1.00000", "self_trade_prevention": "EXPIRE_TAKER"}))
        .await;
    assert_eq!(
        (stp["status"].as_str(), stp["cancel_reason"].as_str()),
        (Some("CANCELLED"), Some("SELF_TRADE"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_client_order_id_returns_the_first_order() {
    let ex = TestExchange::start().await;
    let body = json!({"account": 5, "symbol": "SOL-USD", "side": "BUY", "type": "LIMIT", "price": "150.000", "quantity": "2.00", "client_order_id": "abc-1"});
    let (s1, first) = ex.post("/orders", body.clone()).await;
    let (s2, second) = ex.post("/orders", body.clone()).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(first["order_id"], second["order_id"]);
    let (_, depth) = ex.get("/market-data/SOL-USD/depth").await;
    assert_eq!(depth["bids"], json!([["150.000", "2.00"]]), "placed once");
    // Another account may use the same client order id.
    let (s3, other) = ex.post("/orders", json!({"account": 6, "symbol": "SOL-USD", "side": "BUY", "type": "LIMIT", "price": "150.000", "quantity": "2.00", "client_order_id": "abc-1"})).await;
    assert_eq!(s3, StatusCode::CREATED);
    assert_ne!(other["order_id"], first["order_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_json_with_a_code_and_the_right_status() {
    let ex = TestExchange::start().await;
    let good = json!({"account": 1, "symbol": "BTC-USD", "side": "BUY", "type": "LIMIT", "price": "65000.00", "quantity": "0.01000"});
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    assert_error(
        &ex.post("/orders", with("symbol", json!("DOGE-EUR"))).await,
        StatusCode::BAD_REQUEST,
        1007,
        Some("symbol"),
    );
    assert_error(
        &ex.post("/orders", with("price", json!("6.5e4"))).await,
        StatusCode::BAD_REQUEST,
        1006,
        Some("price"),
    );
    assert_error(
        &ex.post("/orders", with("price", json!(65000.5))).await,
        StatusCode::BAD_REQUEST,
        1006,
        Some("price"),
    );
    assert_error(
        &ex.post("/orders", with("price", json!("65000.005"))).await,
        StatusCode::BAD_REQUEST,
        1008,
        Some("price"),
    );
    assert_error(
        &ex.post("/orders", with("quantity", json!("0.000001")))
            .await,
        StatusCode::BAD_REQUEST,
        1009,
        Some("quantity"),
    );
    assert_error(
        &ex.post("/orders", with("quantity", json!("0.00001"))).await,
        StatusCode::BAD_REQUEST,
        1010,
        Some("quantity"),
    );
    assert_error(
        &ex.post("/orders", with("quantity", json!("1000000"))).await,
        StatusCode::BAD_REQUEST,
        1011,
        Some("quantity"),
    );
    assert_error(
        &ex.post("/orders", with("qty", json!("1"))).await,
        StatusCode::BAD_REQUEST,
        1005,
        Some("qty"),
    );
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("side");
    assert_error(
        &ex.post("/orders", missing).await,
        StatusCode::BAD_REQUEST,
        1004,
        Some("side"),
    );
    assert_error(
        &ex.get("/orders/999999").await,
        StatusCode::NOT_FOUND,
        3001,
        Some("id"),
    );
    assert_error(
        &ex.get("/orders/not-a-number").await,
        StatusCode::BAD_REQUEST,
        1005,
        Some("id"),
    );
    assert_error(
        &ex.delete("/orders/12345?account=1").await,
        StatusCode::NOT_FOUND,
        3001,
        None,
    );
    assert_error(
        &ex.get("/market-data/NOPE-USD").await,
        StatusCode::NOT_FOUND,
        1007,
        Some("symbol"),
    );
    assert_error(
        &ex.get("/market-data/BTC-USD/depth?limit=0").await,
        StatusCode::BAD_REQUEST,
        1005,
        Some("limit"),
    );
    assert_error(
        &ex.unsigned(Method::GET, "/orders", None).await,
        StatusCode::UNAUTHORIZED,
        2001,
        None,
    );
    assert_error(
        &ex.get("/no-such-route").await,
        StatusCode::NOT_FOUND,
        1014,
        None,
    );
    assert_error(
        &ex.call(Method::PUT, "/orders", None).await,
        StatusCode::METHOD_NOT_ALLOWED,
        1015,
        None,
    );
    // A method a signed route does not have is 405 before any signature is asked for (it was
    // 401: authentication wrapped the route's method check).
    let trace = Method::from_bytes(b"TRACE").unwrap();
    for (method, path) in [
        (trace.clone(), "/orders"),
        (trace, "/account"),
        (Method::PUT, "/account/trades"),
        (Method::PATCH, "/admin/deposits"),
    ] {
        assert_error(
            &ex.unsigned(method.clone(), path, None).await,
            StatusCode::METHOD_NOT_ALLOWED,
            1015,
            None,
        );
    }
    // The methods it has still need the signature.
    assert_error(
        &ex.unsigned(Method::GET, "/account", None).await,
        StatusCode::UNAUTHORIZED,
        2001,
        None,
    );
    // Malformed JSON, wrong content type, too large: raw requests.
    // A client per raw request: the server closes a connection whose body it refused (413), and
    // a pooled client could race to reuse it for the next request.
    let signer = ex.trader(1).await;
    let raw = |body: Vec<u8>, ct: &'static str| {
        let fresh = signer.clone().with_base(ex.base.clone());
        async move {
            let (s, v) = fresh
                .send_raw(Method::POST, "/orders", body, Some(ct))
                .await
                .expect("answered");
            (StatusCode::from_u16(s).unwrap(), v)
        }
    };
    assert_error(
        &raw(b"{\"symbol\": \"BTC-USD\",".to_vec(), "application/json").await,
        StatusCode::BAD_REQUEST,
        1001,
        None,
    );
    assert_error(
        &raw(b"[1, 2]".to_vec(), "application/json").await,
        StatusCode::BAD_REQUEST,
        1001,
        None,
    );
    let mut unsigned_good = good.clone();
    unsigned_good.as_object_mut().unwrap().remove("account");
    assert_error(
        &raw(unsigned_good.to_string().into_bytes(), "text/plain").await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        1002,
        None,
    );
    assert_error(
        &raw(vec![b' '; 70_000], "application/json").await,
        StatusCode::PAYLOAD_TOO_LARGE,
        1003,
        None,
    );
    // Nothing of that reached the book.
    let (_, depth) = ex.get("/market-data/BTC-USD/depth").await;
    assert_eq!(
        (depth["bids"].clone(), depth["asks"].clone()),
        (json!([]), json!([]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_amend_cancel_and_cancel_all() {
    let ex = TestExchange::start().await;
    let a = ex.limit(7, "BUY", "60000.00", "0.10000").await;
    let b = ex.limit(7, "BUY", "60001.00", "0.10000").await;
    let (_, eth) = ex.post("/orders", json!({"account": 7, "symbol": "ETH-USD", "side": "SELL", "type": "LIMIT", "price": "4000.00", "quantity": "1.0000"})).await;
    ex.limit(8, "BUY", "60002.00", "0.10000").await;
    let (s, mine) = ex.get("/orders?account=7").await;
    assert_eq!(s, StatusCode::OK);
    let ids: Vec<&str> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "only account 7's orders");
    assert_eq!(ids[0], eth["order_id"].as_str().unwrap(), "newest first");
    let (_, btc_only) = ex.get("/orders?account=7&symbol=BTC-USD&status=OPEN").await;
    assert_eq!(btc_only.as_array().unwrap().len(), 2);
    // Amend: a new price.
    let a_id = a["order_id"].as_str().unwrap();
    let (s, amended) = ex
        .call(
            Method::PATCH,
            &format!("/orders/{a_id}"),
            Some(json!({"account": 7, "price": "59000.00"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{amended}");
    assert_eq!(amended["price"], "59000.00");
    let (s, _) = ex
        .call(
            Method::PATCH,
            &format!("/orders/{a_id}"),
            Some(json!({"account": 8, "price": "59000.00"})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "another account's order is unknown to it"
    );
    // Cancel one; another account cannot.
    let b_id = b["order_id"].as_str().unwrap();
    assert_eq!(
        ex.delete(&format!("/orders/{b_id}?account=8")).await.0,
        StatusCode::NOT_FOUND
    );
    let (s, cancelled) = ex.delete(&format!("/orders/{b_id}?account=7")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            cancelled["status"].as_str(),
            cancelled["cancel_reason"].as_str()
        ),
        (Some("CANCELLED"), Some("USER"))
    );
    let (_, read) = ex.get(&format!("/orders/{b_id}?account=7")).await;
    assert_eq!(read["status"], "CANCELLED", "finished orders stay readable");
    // Cancel all on every symbol.
    let (s, all) = ex.delete("/orders?account=7").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(all["cancelled"].as_array().unwrap().len(), 2, "{all}");
    let (_, open) = ex.get("/orders?account=7&status=OPEN").await;
    assert_eq!(open, json!([]));
    // One spelling, the documented one.
    let (s, refused) = ex.get("/orders?account=7&status=open").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["field"], "status");
    let (_, depth) = ex.get("/market-data/BTC-USD/depth").await;
    assert_eq!(
        depth["bids"],
        json!([["60002.00", "0.10000"]]),
        "account 8's order stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_can_be_read_and_cancelled_by_client_order_id() {
    let ex = TestExchange::start().await;
    let (_, placed) = ex
        .post("/orders", json!({"account": 4, "symbol": "ETH-USD", "side": "BUY", "type": "LIMIT", "price": "2000.00", "quantity": "1.0000", "client_order_id": "mine/42"}))
        .await;
    let (s, read) = ex.get("/orders/client/mine%2F42?account=4").await;
    assert_eq!(s, StatusCode::OK, "{read}");
    assert_eq!(read["order_id"], placed["order_id"]);
    assert_error(
        &ex.get("/orders/client/mine%2F42?account=5").await,
        StatusCode::NOT_FOUND,
        3001,
        Some("client_order_id"),
    );
    assert_error(
        &ex.get("/orders/client/bad%20id?account=4").await,
        StatusCode::BAD_REQUEST,
        1005,
        Some("client_order_id"),
    );
    assert_error(
        &ex.delete("/orders/client/mine%2F42?account=5").await,
        StatusCode::NOT_FOUND,
        3001,
        Some("client_order_id"),
    );
    let (s, cancelled) = ex.delete("/orders/client/mine%2F42?account=4").await;
    assert_eq!(s, StatusCode::OK, "{cancelled}");
    assert_eq!(
        (cancelled["status"].as_str(), cancelled["order_id"].clone()),
        (Some("CANCELLED"), placed["order_id"].clone())
    );
    let (_, depth) = ex.get("/market-data/ETH-USD/depth").await;
    assert_eq!(depth["bids"], json!([]));
    // Still readable once finished; cancelling again finds no live order.
    assert_eq!(
        ex.get("/orders/client/mine%2F42?account=4").await.1["status"],
        "CANCELLED"
    );
    assert_error(
        &ex.delete("/orders/client/mine%2F42?account=4").await,
        StatusCode::NOT_FOUND,
        3001,
        None,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_data_follows_trades() {
    let ex = TestExchange::start().await;
    ex.limit(1, "SELL", "65000.00", "0.10000").await;
    ex.limit(2, "BUY", "65000.00", "0.04000").await;
    ex.limit(1, "SELL", "66000.00", "0.10000").await;
    ex.limit(2, "BUY", "66000.00", "0.15000").await;
    let (_, t) = ex.get("/market-data/BTC-USD").await;
    assert_eq!(t["last_price"], "66000.00");
    assert_eq!(t["open_24h"], "65000.00");
    assert_eq!(t["high_24h"], "66000.00");
    assert_eq!(t["low_24h"], "65000.00");
    // 0.04 at 65000, then the second buyer takes the 0.06 left at 65000 and 0.09 at 66000.
    assert_eq!(t["last_quantity"], "0.09000");
    assert_eq!(t["volume_24h"], "0.19000");
    assert_eq!(t["quote_volume_24h"], "12440.00");
    assert_eq!(t["change_24h"], "1000.00");
    assert_eq!(t["change_percent_24h"], "1.54");
    assert_eq!(t["trades_24h"], 3);
    assert_eq!(t["best_bid"], Value::Null);
    assert_eq!(
        (t["best_ask"].as_str(), t["best_ask_quantity"].as_str()),
        (Some("66000.00"), Some("0.01000"))
    );
    let (_, trades) = ex.get("/market-data/BTC-USD/trades?limit=2").await;
    let trades = trades.as_array().unwrap();
    assert_eq!(trades.len(), 2);
    assert_eq!(
        (
            trades[0]["price"].as_str(),
            trades[0]["quantity"].as_str(),
            trades[0]["taker_side"].as_str()
        ),
        (Some("66000.00"), Some("0.09000"), Some("BUY"))
    );
    assert_eq!(
        (trades[1]["price"].as_str(), trades[1]["quantity"].as_str()),
        (Some("65000.00"), Some("0.06000"))
    );
    let (_, depth) = ex.get("/market-data/BTC-USD/depth?limit=10").await;
    assert_eq!(
        (depth["bids"].clone(), depth["asks"].clone()),
        (json!([]), json!([["66000.00", "0.01000"]]))
    );
    assert!(depth["sequence"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symbols_health_metrics_and_openapi() {
    let ex = TestExchange::start().await;
    let (_, symbols) = ex.get("/symbols").await;
    let btc = symbols
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["symbol"] == "BTC-USD")
        .unwrap()
        .clone();
    assert_eq!(
        (
            btc["tick_size"].as_str(),
            btc["lot_size"].as_str(),
            btc["min_notional"].as_str()
        ),
        (Some("0.01"), Some("0.00001"), Some("1"))
    );
    ex.limit(1, "BUY", "100.00", "1.00000").await;
    let (_, health) = ex.get("/health").await;
    assert_eq!(health["status"], "ok");
    let applied: u64 = health["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["applied"].as_u64().unwrap())
        .sum();
    assert_eq!(applied, 1);
    let (s, metrics) = ex.get("/metrics").await;
    assert_eq!(s, StatusCode::OK);
    let metrics = metrics.as_str().unwrap().to_owned();
    for name in [
        "exchange_orders_total",
        "exchange_http_requests_total",
        "exchange_match_seconds_per_command",
        "exchange_shard_queue_depth",
        "exchange_journal_commit_seconds",
        "exchange_worker_lag_records",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}");
    }
    // Counted, not only registered (tests share the process's recorder, so at least).
    let accepted = metrics
        .lines()
        .find_map(|l| l.strip_prefix("exchange_orders_total{outcome=\"accepted\"} "))
        .and_then(|v| v.parse::<f64>().ok());
    assert!(
        accepted.is_some_and(|n| n >= 1.0),
        "accepted orders counted: {accepted:?}"
    );
    let (_, spec) = ex.get("/openapi.json").await;
    let paths = spec["paths"].as_object().unwrap();
    let expected = [
        ("/order", "post"),
        ("/order/{id}", "get"),
        ("/orders", "post"),
        ("/orders", "get"),
        ("/orders", "delete"),
        ("/orders/{id}", "get"),
        ("/orders/{id}", "patch"),
        ("/orders/{id}", "delete"),
        ("/orders/client/{client_order_id}", "get"),
        ("/orders/client/{client_order_id}", "delete"),
        ("/symbols", "get"),
        ("/market-data", "get"),
        ("/market-data/{symbol}", "get"),
        ("/market-data/{symbol}/depth", "get"),
        ("/market-data/{symbol}/trades", "get"),
        ("/market-data/{symbol}/trades/history", "get"),
        ("/market-data/{symbol}/candles", "get"),
        ("/health", "get"),
        ("/metrics", "get"),
        ("/account", "get"),
        ("/account/trades", "get"),
        ("/account/ledger", "get"),
        ("/admin/accounts", "post"),
        ("/admin/accounts/{account}", "get"),
        ("/admin/accounts/{account}/keys", "post"),
        ("/admin/keys/{key_id}", "delete"),
        ("/admin/deposits", "post"),
        ("/admin/withdrawals", "post"),
        ("/ws", "get"),
        ("/admin/totals", "get"),
        // Tested in tests/dashboard.rs.
        ("/demo/credentials", "get"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "openapi.json lacks {method} {path}"
        );
    }
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        documented,
        expected.len(),
        "every documented route is tested here, and only those"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_survive_a_graceful_restart() {
    let ex = TestExchange::start().await;
    let resting = ex.limit(1, "BUY", "50000.00", "0.20000").await;
    ex.limit(2, "SELL", "50000.00", "0.05000").await;
    let ex = ex.restart().await;
    let id = resting["order_id"].as_str().unwrap();
    let (s, read) = ex.get(&format!("/orders/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (read["status"].as_str(), read["filled_quantity"].as_str()),
        (Some("PARTIALLY_FILLED"), Some("0.05000"))
    );
    let (_, depth) = ex.get("/market-data/BTC-USD/depth").await;
    assert_eq!(depth["bids"], json!([["50000.00", "0.15000"]]));
    let (_, trades) = ex.get("/market-data/BTC-USD/trades").await;
    assert_eq!(trades.as_array().unwrap().len(), 1);
    // New orders continue with new ids.
    let next = ex.limit(3, "BUY", "49000.00", "0.01000").await;
    assert_ne!(next["order_id"], resting["order_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_browsers_from_other_origins_and_compresses_when_asked() {
    let ex = TestExchange::start().await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", ex.base);
    let origin = "https://app.example";
    // A preflight for a signed order placement.
    let pre = http
        .request(Method::OPTIONS, url("/orders"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), StatusCode::OK);
    let allowed =
        |r: &reqwest::Response, h: &str| r.headers().get(h).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        allowed(&pre, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert!(allowed(&pre, "access-control-allow-methods").is_some());
    // Answers, errors included, carry the header that lets the page read them.
    for path in ["/symbols", "/no-such-route", "/orders"] {
        let r = http
            .get(url(path))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(
            allowed(&r, "access-control-allow-origin").as_deref(),
            Some("*"),
            "GET {path} ({})",
            r.status()
        );
    }
    // Compressed when the client asks for it, plain otherwise.
    let gz = http
        .get(url("/openapi.json"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed(&gz, "content-encoding").as_deref(), Some("gzip"));
    let body = gz.bytes().await.unwrap();
    assert_eq!(&body[..2], &[0x1f, 0x8b], "a gzip stream");
    let plain = http.get(url("/openapi.json")).send().await.unwrap();
    assert_eq!(allowed(&plain, "content-encoding"), None);
    let spec: Value = plain.json().await.unwrap();
    assert!(spec["paths"].is_object());
}
