//! The WebSocket tier end to end, with a real WebSocket client: book snapshot + diffs rebuild
//! exactly the book REST shows, a gap forces a re-sync, trades arrive in order, private updates
//! reach only their account, orders over the socket, tickers and candles, bad messages, floods,
//! dead connections, and upstream subscriptions that follow the clients.

mod common;

use common::TestExchange;
use exchange_client::signing::{payload, sign};
use exchange_core::SymbolId;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(ex: &TestExchange) -> Ws {
    let url = format!("{}/ws", ex.base.replacen("http", "ws", 1));
    tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade")
        .0
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.expect("sent");
}

/// The next JSON message, within two seconds.
async fn next(ws: &mut Ws) -> Value {
    try_next(ws, Duration::from_secs(2))
        .await
        .expect("a message within 2 s")
}

async fn try_next(ws: &mut Ws, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.ok()??;
        match msg.ok()? {
            Message::Text(t) => return Some(serde_json::from_str(&t).expect("JSON")),
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

/// The next message of `channel` (or with `type`), skipping others.
async fn next_where(ws: &mut Ws, key: &str, value: &str) -> Value {
    for _ in 0..1_000 {
        let m = next(ws).await;
        if m[key] == value {
            return m;
        }
    }
    panic!("no {key} = {value}");
}

/// A local copy of one side of the book: price → quantity, as decimal strings.
type Side = BTreeMap<String, String>;

fn levels(v: &Value) -> Side {
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| (l[0].as_str().unwrap().into(), l[1].as_str().unwrap().into()))
        .collect()
}

fn apply(bids: &mut Side, asks: &mut Side, changes: &Value) {
    for c in changes.as_array().unwrap() {
        let side = if c[0] == "BUY" {
            &mut *bids
        } else {
            &mut *asks
        };
        let (price, qty) = (c[1].as_str().unwrap(), c[2].as_str().unwrap());
        if qty.trim_start_matches(['0', '.']).is_empty() {
            side.remove(price);
        } else {
            side.insert(price.into(), qty.into());
        }
    }
}

async fn place(ex: &TestExchange, trader: u64, side: &str, price: &str, qty: &str) -> Value {
    let (s, body) = ex
        .post("/orders", json!({"account": trader, "symbol": "BTC-USD", "side": side, "type": "LIMIT", "price": price, "quantity": qty}))
        .await;
    assert!(s.is_success(), "{body}");
    body
}

async fn rest_depth(ex: &TestExchange) -> (u64, Side, Side) {
    let (_, d) = ex.get("/market-data/BTC-USD/depth?limit=1000").await;
    (
        d["sequence"].as_u64().unwrap(),
        levels(&d["bids"]),
        levels(&d["asks"]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_and_diffs_rebuild_the_book_rest_shows_and_trades_arrive_in_order() {
    let ex = TestExchange::start().await;
    place(&ex, 1, "BUY", "64990.00", "0.30000").await;
    place(&ex, 2, "SELL", "65010.00", "0.20000").await;
    let mut ws = connect(&ex).await;
    send(
        &mut ws,
        json!({"op": "subscribe", "id": 1, "channels": ["book.BTC-USD", "trades.BTC-USD"]}),
    )
    .await;
    let ack = next(&mut ws).await;
    assert_eq!(
        (ack["type"].as_str(), ack["id"].as_u64()),
        (Some("subscribed"), Some(1)),
        "{ack}"
    );
    let snap = next_where(&mut ws, "type", "snapshot").await;
    let (mut bids, mut asks) = (levels(&snap["bids"]), levels(&snap["asks"]));
    let mut seq = snap["seq"].as_u64().unwrap();
    assert_eq!(bids.get("64990.00").map(String::as_str), Some("0.30000"));
    // Orders that rest, cross, and trade at several levels.
    for i in 0..40u64 {
        let side = if i % 2 == 0 { "BUY" } else { "SELL" };
        let price = format!("{}.00", 64_985 + (i * 7) % 30);
        place(&ex, 1 + i % 3, side, &price, "0.01000").await;
    }
    let (rest_seq, rest_bids, rest_asks) = rest_depth(&ex).await;
    let mut trade_ids = Vec::new();
    while seq < rest_seq {
        let m = next(&mut ws).await;
        match m["type"].as_str() {
            Some("diff") => {
                assert_eq!(m["first_seq"].as_u64(), Some(seq + 1), "no gap: {m}");
                apply(&mut bids, &mut asks, &m["changes"]);
                seq = m["last_seq"].as_u64().unwrap();
                assert!(m["accepted_at_us"].as_u64().unwrap() > 0);
            }
            Some("trades") => {
                for t in m["trades"].as_array().unwrap() {
                    trade_ids.push(t["trade_id"].as_str().unwrap().parse::<u64>().unwrap());
                }
            }
            _ => {}
        }
    }
    assert_eq!(seq, rest_seq);
    assert_eq!(
        (bids, asks),
        (rest_bids, rest_asks),
        "the rebuilt book is REST's book"
    );
    // Trades in order, none missing: ids count up by one.
    let (_, recent) = ex.get("/market-data/BTC-USD/trades?limit=1000").await;
    let traded = recent.as_array().unwrap().len();
    assert!(traded > 0, "the orders traded");
    while trade_ids.len() < traded {
        let m = next_where(&mut ws, "type", "trades").await;
        for t in m["trades"].as_array().unwrap() {
            trade_ids.push(t["trade_id"].as_str().unwrap().parse::<u64>().unwrap());
        }
    }
    assert!(
        trade_ids.windows(2).all(|w| w[1] == w[0] + 1),
        "{trade_ids:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sees_a_gap_resyncs_from_a_fresh_snapshot() {
    let ex = TestExchange::start().await;
    let mut ws = connect(&ex).await;
    send(
        &mut ws,
        json!({"op": "subscribe", "channels": ["book.BTC-USD"]}),
    )
    .await;
    let snap = next_where(&mut ws, "type", "snapshot").await;
    let mut seq = snap["seq"].as_u64().unwrap();
    place(&ex, 1, "BUY", "60000.00", "0.10000").await;
    place(&ex, 1, "BUY", "60001.00", "0.10000").await;
    // The client loses the first diff (as a client would after a hiccup)...
    let lost = next_where(&mut ws, "type", "diff").await;
    assert_eq!(lost["first_seq"].as_u64(), Some(seq + 1));
    let d = next_where(&mut ws, "type", "diff").await;
    // ...sees that the next one does not follow on, and re-subscribes.
    assert_ne!(d["first_seq"].as_u64(), Some(seq + 1));
    send(
        &mut ws,
        json!({"op": "unsubscribe", "channels": ["book.BTC-USD"]}),
    )
    .await;
    next_where(&mut ws, "type", "unsubscribed").await;
    send(
        &mut ws,
        json!({"op": "subscribe", "channels": ["book.BTC-USD"]}),
    )
    .await;
    let fresh = next_where(&mut ws, "type", "snapshot").await;
    seq = fresh["seq"].as_u64().unwrap();
    let (rest_seq, rest_bids, rest_asks) = rest_depth(&ex).await;
    assert_eq!(seq, rest_seq);
    assert_eq!(
        (levels(&fresh["bids"]), levels(&fresh["asks"])),
        (rest_bids, rest_asks)
    );
}

fn auth_message(creds: &exchange_client::Credentials) -> Value {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let sig = sign(
        creds.secret.as_bytes(),
        &payload("GET", "/ws", &format!("timestamp={ts}"), b""),
    );
    json!({"op": "auth", "id": "a", "key": creds.key_id, "timestamp": ts, "signature": sig})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_updates_reach_only_their_account_and_orders_go_over_the_socket() {
    let ex = TestExchange::start().await;
    let (one, two) = (ex.trader(1).await, ex.trader(2).await);
    let mut a = connect(&ex).await;
    let mut b = connect(&ex).await;
    // The orders channel needs auth.
    send(
        &mut a,
        json!({"op": "subscribe", "id": 9, "channels": ["orders"]}),
    )
    .await;
    let refused = next(&mut a).await;
    assert_eq!(
        (
            refused["type"].as_str(),
            refused["code"].as_u64(),
            refused["channel"].as_str()
        ),
        (Some("error"), Some(2001), Some("orders"))
    );
    // A bad signature is refused, the right one accepted.
    let mut bad = auth_message(one.credentials());
    bad["signature"] = json!("00");
    send(&mut a, bad).await;
    assert_eq!(next(&mut a).await["code"], 2001);
    for (ws, c) in [(&mut a, &one), (&mut b, &two)] {
        send(ws, auth_message(c.credentials())).await;
        let ok = next(ws).await;
        assert_eq!(ok["type"], "authenticated", "{ok}");
        assert_eq!(ok["account"], c.account().to_string());
        send(ws, json!({"op": "subscribe", "channels": ["orders"]})).await;
        next_where(ws, "type", "subscribed").await;
    }
    // Trader 1 places over REST: its socket gets the execution report and the balance.
    let placed = place(&ex, 1, "BUY", "50000.00", "0.10000").await;
    let report = next_where(&mut a, "type", "execution_report").await;
    assert_eq!(report["order"]["order_id"], placed["order_id"]);
    assert_eq!(report["order"]["status"], "NEW");
    let balance = loop {
        let m = next_where(&mut a, "type", "balance").await;
        if m["asset"] == "USD" {
            break m;
        }
    };
    assert_eq!(
        (balance["asset"].as_str(), balance["reserved"].as_str()),
        (Some("USD"), Some("5000.0000000"))
    );
    assert!(
        try_next(&mut b, Duration::from_millis(300)).await.is_none(),
        "trader 2 hears nothing of it"
    );
    // Over the socket: place (crossing trader 1's bid), with the report correlated by id.
    send(&mut b, json!({"op": "order.place", "id": "r1", "order": {"symbol": "BTC-USD", "side": "SELL", "type": "LIMIT", "price": "50000.00", "quantity": "0.04000"}})).await;
    let answer = next_where(&mut b, "type", "order.place").await;
    assert_eq!(
        (answer["id"].as_str(), answer["status"].as_u64()),
        (Some("r1"), Some(201)),
        "{answer}"
    );
    assert_eq!(answer["report"]["status"], "FILLED");
    // Both sides hear of the fill on their own socket.
    let maker = next_where(&mut a, "type", "execution_report").await;
    assert_eq!(
        (
            maker["order"]["status"].as_str(),
            maker["order"]["filled_quantity"].as_str()
        ),
        (Some("PARTIALLY_FILLED"), Some("0.04000"))
    );
    assert_eq!(maker["order"]["fills"][0]["liquidity"], "MAKER");
    // Cancel over the socket; a bad cancel is an error that names the field.
    let id = placed["order_id"].as_str().unwrap();
    send(
        &mut a,
        json!({"op": "order.cancel", "id": "c1", "order_id": id}),
    )
    .await;
    let cancelled = next_where(&mut a, "type", "order.cancel").await;
    assert_eq!(cancelled["report"]["status"], "CANCELLED");
    send(&mut a, json!({"op": "order.cancel", "id": "c2"})).await;
    let e = next_where(&mut a, "type", "error").await;
    assert_eq!(
        (e["id"].as_str(), e["field"].as_str()),
        (Some("c2"), Some("order_id"))
    );
    // Trader 2 cannot cancel trader 1's order.
    send(
        &mut b,
        json!({"op": "order.cancel", "id": "c3", "order_id": id}),
    )
    .await;
    let e = next_where(&mut b, "type", "error").await;
    assert_eq!(e["code"], 3001);
    // Without the trade permission, no orders over the socket.
    let (s, key) = ex
        .admin(
            reqwest::Method::POST,
            &format!("/admin/accounts/{}/keys", one.account()),
            Some(json!({"permissions": ["read"]})),
        )
        .await;
    assert!(s.is_success());
    let mut c = connect(&ex).await;
    let read_only = exchange_client::Credentials {
        account: one.account(),
        key_id: key["key_id"].as_str().unwrap().into(),
        secret: key["secret"].as_str().unwrap().into(),
    };
    send(&mut c, auth_message(&read_only)).await;
    let m = next(&mut c).await;
    assert_eq!(m["type"], "authenticated", "{m}");
    send(&mut c, json!({"op": "order.place", "id": "r2", "order": {"symbol": "BTC-USD", "side": "BUY", "type": "LIMIT", "price": "1.00", "quantity": "1.00000"}})).await;
    assert_eq!(next(&mut c).await["code"], 2002);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickers_and_candles_follow_trades() {
    let ex = TestExchange::start().await;
    let mut ws = connect(&ex).await;
    send(&mut ws, json!({"op": "subscribe", "channels": ["ticker.BTC-USD", "candles.BTC-USD.1m", "candles.BTC-USD.1d"]})).await;
    next_where(&mut ws, "type", "subscribed").await;
    let first = next_where(&mut ws, "type", "ticker").await;
    assert_eq!(first["last_price"], Value::Null);
    let candle = next_where(&mut ws, "type", "candle").await;
    assert_eq!(candle["trades"], 0);
    place(&ex, 1, "SELL", "65000.00", "0.10000").await;
    place(&ex, 2, "BUY", "65000.00", "0.10000").await;
    let mut seen_ticker = false;
    let mut intervals = Vec::new();
    while !(seen_ticker && intervals.len() >= 2) {
        let m = next(&mut ws).await;
        match m["type"].as_str() {
            Some("ticker") if m["last_price"] == "65000.00" => seen_ticker = true,
            Some("candle") if m["trades"] == 1 => {
                assert_eq!(
                    (
                        m["open"].as_str(),
                        m["close"].as_str(),
                        m["volume"].as_str()
                    ),
                    (Some("65000.00"), Some("65000.00"), Some("0.10000"))
                );
                if !intervals.contains(&m["interval"]) {
                    intervals.push(m["interval"].clone());
                }
            }
            _ => {}
        }
    }
    assert!(intervals.contains(&json!("1m")) && intervals.contains(&json!("1d")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_get_errors_and_the_connection_stays() {
    let ex = TestExchange::start().await;
    let mut ws = connect(&ex).await;
    ws.send(Message::text("not json")).await.unwrap();
    assert_eq!(next(&mut ws).await["code"], 1001);
    send(&mut ws, json!({"op": "fly", "id": 3})).await;
    let e = next(&mut ws).await;
    assert_eq!(
        (e["id"].as_u64(), e["field"].as_str()),
        (Some(3), Some("op"))
    );
    send(
        &mut ws,
        json!({"op": "subscribe", "channels": ["book.BTC-USD", "book.NOPE-USD"]}),
    )
    .await;
    let e = next(&mut ws).await;
    assert_eq!(
        (e["type"].as_str(), e["channel"].as_str()),
        (Some("error"), Some("book.NOPE-USD"))
    );
    send(
        &mut ws,
        json!({"op": "subscribe", "channels": ["candles.BTC-USD.7m"]}),
    )
    .await;
    assert_eq!(next(&mut ws).await["channel"], "candles.BTC-USD.7m");
    let many: Vec<String> = (0..100).map(|_| "ticker.BTC-USD".to_string()).collect();
    send(&mut ws, json!({"op": "subscribe", "channels": many})).await;
    let e = next(&mut ws).await;
    assert!(e["message"].as_str().unwrap().contains("too many"), "{e}");
    ws.send(Message::text(format!(
        "{{\"op\":\"ping\",\"id\":\"{}\"}}",
        "x".repeat(20_000)
    )))
    .await
    .unwrap();
    assert_eq!(next(&mut ws).await["code"], 1003);
    send(&mut ws, json!({"op": "ping", "id": "still-here"})).await;
    let pong = next(&mut ws).await;
    assert_eq!(
        (pong["type"].as_str(), pong["id"].as_str()),
        (Some("pong"), Some("still-here"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_is_limited_then_closed() {
    let ex = TestExchange::start().await;
    let mut ws = connect(&ex).await;
    for i in 0..400 {
        if ws
            .send(Message::text(json!({"op": "ping", "id": i}).to_string()))
            .await
            .is_err()
        {
            break;
        }
    }
    let (mut limited, mut close) = (0, None);
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(2), ws.next()).await {
        match m {
            Message::Text(t) if t.contains("RATE_LIMITED") => limited += 1,
            Message::Close(f) => {
                close = f.map(|f| u16::from(f.code));
                break;
            }
            _ => {}
        }
    }
    assert!(limited > 0, "errors before the close");
    assert_eq!(close, Some(1008));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_connection_is_pinged_then_closed() {
    let ex = TestExchange::start_with(|c| {
        c.ws_ping_secs = 1;
        c.ws_dead_secs = 3;
    })
    .await;
    let ws = connect(&ex).await;
    // The client reads nothing, so it never answers the pings. (It starts reading after the
    // server has given up on it at 3 s, and before the server stops waiting for its close reply
    // 5 s later.)
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let mut ws = ws;
    let (mut pinged, mut close) = (false, None);
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(2), ws.next()).await {
        match m {
            Message::Ping(_) => pinged = true,
            Message::Close(f) => {
                close = f.map(|f| u16::from(f.code));
                break;
            }
            _ => {}
        }
    }
    assert!(pinged, "the server pinged the idle connection");
    assert_eq!(close, Some(4004));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_follows_a_symbol_only_while_a_client_wants_it() {
    let ex = TestExchange::start().await;
    let bus = &ex.running().bus;
    let btc = SymbolId(0);
    assert_eq!(bus.listeners(btc), 0);
    let mut a = connect(&ex).await;
    let mut b = connect(&ex).await;
    for ws in [&mut a, &mut b] {
        send(
            ws,
            json!({"op": "subscribe", "channels": ["book.BTC-USD", "trades.BTC-USD"]}),
        )
        .await;
        next_where(ws, "type", "snapshot").await;
    }
    assert_eq!(
        bus.listeners(btc),
        1,
        "one upstream subscription for both clients"
    );
    send(
        &mut a,
        json!({"op": "unsubscribe", "channels": ["book.BTC-USD", "trades.BTC-USD"]}),
    )
    .await;
    next_where(&mut a, "type", "unsubscribed").await;
    assert_eq!(bus.listeners(btc), 1, "b still follows it");
    drop(b);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while bus.listeners(btc) != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the upstream subscription ends"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_stops_reading_is_cut_off_without_holding_anyone_up() {
    let ex = TestExchange::start_with(|c| {
        c.ws_ring = 64;
        c.ws_send_timeout_ms = 200;
        c.send_buffer_kb = 8;
    })
    .await;
    // A client with a tiny receive buffer that subscribes and then never reads.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let addr = ex.running().addr;
    let stream = socket.connect(addr).await.unwrap();
    let (mut slow, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws"), stream)
        .await
        .unwrap();
    slow.send(Message::text(
        json!({"op": "subscribe", "channels": ["book.BTC-USD", "trades.BTC-USD"]}).to_string(),
    ))
    .await
    .unwrap();
    // A healthy client on the same symbol, reading as it should, all along.
    let mut healthy = connect(&ex).await;
    send(
        &mut healthy,
        json!({"op": "subscribe", "channels": ["trades.BTC-USD"]}),
    )
    .await;
    next_where(&mut healthy, "type", "subscribed").await;
    const ROUNDS: u64 = 12;
    let reader = tokio::spawn(async move {
        let mut got = 0;
        while got < ROUNDS as usize * 40 {
            let m = next_where(&mut healthy, "type", "trades").await;
            got += m["trades"].as_array().unwrap().len();
        }
        got
    });
    // Rounds of many resting sells swept by one buy: large trade messages, quickly.
    for round in 0..ROUNDS {
        for i in 0..40u64 {
            let price = format!("{}.00", 65_000 + round * 100 + i);
            place(&ex, 1, "SELL", &price, "0.00100").await;
        }
        let top = format!("{}.00", 65_000 + round * 100 + 40);
        let (s, body) = ex
            .post("/orders", json!({"account": 2, "symbol": "BTC-USD", "side": "BUY", "type": "LIMIT", "price": top, "quantity": "0.04000"}))
            .await;
        assert!(s.is_success(), "{body}");
    }
    // The healthy client got every trade: nobody was held up.
    assert_eq!(reader.await.unwrap(), ROUNDS as usize * 40);
    // The slow one was closed as a slow consumer (on the send timeout or on falling a ring
    // behind on trades), which the server counts.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, metrics) = ex.get("/metrics").await;
        let text = metrics.as_str().unwrap_or_default().to_owned();
        if text.contains("exchange_ws_closed_total{code=\"4003\"}")
            || text.contains("exchange_ws_closed_total{code=\"4001\"}")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow consumer was not cut off"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // What it reads now ends with the connection closing.
    let mut ended = false;
    while let Ok(m) = tokio::time::timeout(Duration::from_secs(5), slow.next()).await {
        match m {
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                ended = true;
                break;
            }
            _ => {}
        }
    }
    assert!(ended, "the slow connection ends");
}
