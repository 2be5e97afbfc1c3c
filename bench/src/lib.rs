//! exchange-bench: the load generator behind the `loadgen` binary.
//!
//! [`run`] places orders on a running exchange over HTTP/1.1 keep-alive from many concurrent
//! clients and measures orders per second and latency percentiles (HDR histogram).
//!
//! Closed loop (the default): each client sends its next order as soon as the previous one is
//! answered, so the figure is the exchange's capacity at that concurrency. Open loop (`rate`):
//! orders are due at a fixed offered rate, and latency is measured from when each order was
//! due, not when it was sent, so a slow answer counts against every order it delayed (no
//! coordinated omission, as wrk2 measures). Every order is a limit order near a mid on
//! several symbols from many accounts, so orders rest, cross and trade.
//!
//! Before the load, `accounts` accounts are created with the admin key, funded and given a
//! trading key each; every order is signed by its account's key, as any API client signs.
//!
//! With `verify`, every acknowledged order is read back afterwards and must match what was
//! sent and what was acknowledged: nothing acknowledged may be lost or changed.

pub mod fanout;
pub mod http1;

use anyhow::{Context, bail};
use exchange_client::{Client as Signer, Credentials};
use hdrhistogram::Histogram;
use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Base URLs of gateways; clients are spread over them.
    pub urls: Vec<String>,
    /// Concurrent clients (each keeps one request in flight).
    pub clients: usize,
    /// Measured time, after a warm-up.
    pub duration: Duration,
    pub warmup: Duration,
    /// Symbols with their mid price.
    pub symbols: Vec<(String, u64)>,
    /// Accounts to create, fund and spread the orders over.
    pub accounts: u64,
    /// The admin key that creates and funds them.
    pub admin: Credentials,
    /// Read every acknowledged order back after the run.
    pub verify: bool,
    /// Open loop at this many orders per second in total; `None` for closed loop.
    pub rate: Option<f64>,
    /// Print a progress line to stderr every second.
    pub progress: bool,
    /// Speak HTTP/2 (cleartext, prior knowledge) instead of HTTP/1.1 keep-alive.
    pub http2: bool,
    /// Place orders over WebSocket (`order.place`) instead of REST: each client one socket,
    /// authenticated as one account.
    pub websocket: bool,
    /// WebSocket subscribers to every symbol's trades, measuring acceptance to receipt.
    pub md_subscribers: usize,
    /// What the clients send.
    pub workload: Workload,
}

/// The order flow.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Workload {
    /// Limit orders within ±0.5% of a fixed mid: many rest, many cross.
    Limit,
    /// Market making around a mid that moves: of every 100 operations, `amend` re-quote a
    /// resting order of the client's to the moving mid, `place` add a GTC quote, `ioc` take
    /// liquidity with an IOC order across the mid, and the rest cancel a quote. The default mix
    /// (82 amend, 9 place, 3 IOC, 6 cancel) is exchange-core's published benchmark mix.
    MarketMaking { amend: u8, place: u8, ioc: u8 },
}

impl Workload {
    /// exchange-core's benchmark mix.
    pub const EXCHANGE_CORE: Workload = Workload::MarketMaking {
        amend: 82,
        place: 9,
        ioc: 3,
    };
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// What reading the acknowledged orders back found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Verification {
    pub checked: u64,
    /// Orders that were missing or differed, with why (at most 20 listed).
    pub mismatches: u64,
    pub examples: Vec<String>,
}

/// The result of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// `closed` or `open` loop.
    pub mode: String,
    /// `HTTP/1.1`, `HTTP/2` or `WebSocket`.
    pub protocol: String,
    /// The offered rate in open loop.
    pub offered_per_s: Option<f64>,
    pub clients: usize,
    pub duration_s: f64,
    pub sent: u64,
    pub accepted: u64,
    pub orders_per_s: f64,
    pub latency_ms: Latency,
    /// Answers by HTTP status (or `timeout`, `connection error`).
    pub outcomes: BTreeMap<String, u64>,
    pub verification: Option<Verification>,
    /// With market-data subscribers: from each order's acceptance to its trade's receipt on a
    /// WebSocket subscriber, and how many trade receipts were measured.
    pub market_data_latency_ms: Option<Latency>,
    pub market_data_trades: u64,
    /// After the run, the exchange's reconciliation: per asset, deposits minus withdrawals
    /// against the sum of every balance, fees included. Assets that differ are listed.
    pub conservation: Conservation,
}

/// What the reconciliation after a run found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Conservation {
    pub assets_checked: usize,
    /// `ASSET: held H, transferred T` for each asset whose totals differ.
    pub differences: Vec<String>,
}

/// Whether a decimal string is anything but zero.
fn nonzero(d: &str) -> bool {
    d.bytes().any(|b| (b'1'..=b'9').contains(&b))
}

/// Asks the exchange to reconcile every asset (admin key).
async fn reconcile(o: &Options) -> anyhow::Result<Conservation> {
    let admin = Signer::new(o.urls[0].clone(), o.admin.clone());
    let (status, body) = admin.send(Method::GET, "/admin/totals", None).await?;
    if status != 200 {
        bail!("reconciliation: {status} {body}");
    }
    let rows = body.as_array().context("a list of assets")?;
    Ok(Conservation {
        assets_checked: rows.len(),
        differences: rows
            .iter()
            .filter(|r| r["difference"].as_str().is_none_or(nonzero))
            .map(|r| {
                format!(
                    "{}: held {}, transferred {}",
                    r["asset"], r["held"], r["transferred"]
                )
            })
            .collect(),
    })
}

impl Summary {
    /// One line for people.
    pub fn line(&self) -> String {
        let l = &self.latency_ms;
        let mut line = format!(
            "loadgen: {} loop, {}, {} clients, {} s: {} orders accepted of {} sent = {:.0} orders/s | latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms | outcomes {:?}",
            self.mode,
            self.protocol,
            self.clients,
            self.duration_s,
            self.accepted,
            self.sent,
            self.orders_per_s,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            self.outcomes
        );
        if let Some(v) = &self.verification {
            line.push_str(&format!(
                " | verified {} orders, {} mismatches",
                v.checked, v.mismatches
            ));
        }
        if let Some(l) = &self.market_data_latency_ms {
            line.push_str(&format!(
                " | trade on a WebSocket subscriber: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms over {} receipts",
                l.p50, l.p99, l.p999, self.market_data_trades
            ));
        }
        line.push_str(&format!(
            " | balances conserved in {} of {} assets",
            self.conservation.assets_checked - self.conservation.differences.len(),
            self.conservation.assets_checked
        ));
        line
    }
}

/// An order as acknowledged, kept for verification.
struct Ack {
    /// Index of the account (and key) that placed it.
    trader: usize,
    request: Value,
    response: Value,
}

struct Tally {
    latency: Histogram<u64>,
    outcomes: BTreeMap<String, u64>,
    acks: Vec<Ack>,
}

/// The next order of `client`, and which of the `accounts` places it.
fn order(symbols: &[(String, u64)], accounts: u64, client: usize, n: u64) -> (usize, Value) {
    // A deterministic spread of prices within ±0.5% of the mid; buyers and sellers overlap, so
    // many orders trade.
    let (name, mid) = &symbols[(n as usize + client) % symbols.len()];
    let h = (n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ client as u64).rotate_left(17);
    let side = if h.is_multiple_of(2) { "BUY" } else { "SELL" };
    let offset = (h >> 8) % 100;
    let price = mid * 1000 - mid * 5 + mid * offset / 10;
    let trader = ((h >> 20) % accounts) as usize;
    let body = json!({
        "symbol": name,
        "side": side,
        "type": "LIMIT",
        "price": format!("{}.{:02}", price / 1000, (price % 1000) / 10),
        "quantity": "0.0100",
    });
    (trader, body)
}

/// A quote a market-making client has resting: who placed it and its index among the acks.
struct Quote {
    trader: usize,
    order_id: String,
    side: &'static str,
    ack: Option<usize>,
}

/// The mid of `mid` (whole units) at `t`, moving ±0.2% over a 30-second cycle, in hundredths.
fn moving_mid(mid: u64, t: Duration) -> u64 {
    let phase = (t.as_secs_f64() / 30.0 * std::f64::consts::TAU).sin();
    // The float only shapes the load; every price sent is a whole number of cents.
    ((mid * 100) as f64 * (1.0 + 0.002 * phase)).round() as u64
}

fn cents(c: u64) -> String {
    format!("{}.{:02}", c / 100, c % 100)
}

/// What to send next in a market-making flow.
enum MmStep {
    Place(usize, Value, &'static str),
    Amend(usize, String, Value),
    Cancel(usize, String),
}

fn mm_step(
    o: &Options,
    mix: (u8, u8, u8),
    quotes: &[Quote],
    client: usize,
    n: u64,
    elapsed: Duration,
) -> (MmStep, Option<usize>) {
    let (amend, place, ioc) = mix;
    let h = (n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ client as u64).rotate_left(29);
    let roll = (h % 100) as u8;
    let (name, mid) = &o.symbols[(h >> 8) as usize % o.symbols.len()];
    let mid = moving_mid(*mid, elapsed);
    // Quotes a few ticks off the mid; takers cross it.
    let off = mid / 10_000 * (1 + (h >> 16) % 20);
    let buy = (h >> 40).is_multiple_of(2);
    let trader = ((h >> 20) % o.accounts) as usize;
    let pick = (h >> 32) as usize;
    let quote = |side: &'static str| {
        let price = if side == "BUY" { mid - off } else { mid + off };
        json!({"symbol": name, "side": side, "type": "LIMIT", "price": cents(price), "quantity": "0.0100"})
    };
    if quotes.is_empty() || (roll >= amend && roll < amend + place) {
        let side = if buy { "BUY" } else { "SELL" };
        return (MmStep::Place(trader, quote(side), side), None);
    }
    if roll >= amend + place && roll < amend + place + ioc {
        let (side, price) = if buy {
            ("BUY", mid + off)
        } else {
            ("SELL", mid - off)
        };
        let body = json!({"symbol": name, "side": side, "type": "LIMIT", "time_in_force": "IOC", "price": cents(price), "quantity": "0.0100"});
        return (MmStep::Place(trader, body, ""), None);
    }
    let i = pick % quotes.len();
    let q = &quotes[i];
    if roll < amend {
        let price = quote(q.side)["price"].clone();
        (
            MmStep::Amend(q.trader, q.order_id.clone(), json!({"price": price})),
            Some(i),
        )
    } else {
        (MmStep::Cancel(q.trader, q.order_id.clone()), Some(i))
    }
}

/// What each account is funded with: far more than a run's resting orders can hold.
const FUNDING: &[(&str, &str)] = &[
    ("USD", "1000000000"),
    ("BTC", "100000"),
    ("ETH", "1000000"),
    ("SOL", "100000000"),
];

/// Creates and funds `n` accounts, each with a read+trade key.
async fn traders(o: &Options) -> anyhow::Result<Vec<Credentials>> {
    let admin = Signer::new(o.urls[0].clone(), o.admin.clone());
    let tag = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let mut out = Vec::new();
    for i in 0..o.accounts {
        let ok = |(s, body): (u16, Value), what: &str| {
            if s >= 300 {
                bail!("{what}: the exchange answered {s} {body}");
            }
            Ok(body)
        };
        let a = ok(
            admin.send(Method::POST, "/admin/accounts", None).await?,
            "creating an account (is the admin key file the exchange's?)",
        )?;
        let account = a["account"].as_str().context("an account id")?.to_owned();
        for (asset, amount) in FUNDING {
            let id = format!("loadgen-{tag}-{i}-{asset}");
            ok(
                admin
                    .send(
                        Method::POST,
                        "/admin/deposits",
                        Some(&json!({"id": id, "account": account, "asset": asset, "amount": amount})),
                    )
                    .await?,
                "funding an account",
            )?;
        }
        let key = ok(
            admin
                .send(
                    Method::POST,
                    &format!("/admin/accounts/{account}/keys"),
                    Some(&json!({"permissions": ["read", "trade"]})),
                )
                .await?,
            "creating a key",
        )?;
        out.push(Credentials {
            account: account.parse()?,
            key_id: key["key_id"].as_str().context("a key id")?.into(),
            secret: key["secret"].as_str().context("a secret")?.into(),
        });
    }
    Ok(out)
}

/// An order-entry WebSocket, authenticated as one account.
struct WsOrders {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
}

impl WsOrders {
    async fn open(base: &str, key: &Credentials) -> anyhow::Result<Self> {
        use futures_util::SinkExt;
        let url = format!("{}/ws", base.replacen("http", "ws", 1));
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
            .to_string();
        let signature = exchange_client::signing::sign(
            key.secret.as_bytes(),
            &exchange_client::signing::payload("GET", "/ws", &format!("timestamp={ts}"), b""),
        );
        let auth =
            json!({"op": "auth", "key": key.key_id, "timestamp": ts, "signature": signature});
        ws.send(WsMessage::text(auth.to_string())).await?;
        let mut s = Self { ws, next_id: 0 };
        let answer = s.answer(None).await?;
        if answer["type"] != "authenticated" {
            bail!("WebSocket auth refused: {answer}");
        }
        Ok(s)
    }

    /// The next answer (to request `id`, when given), skipping anything else.
    async fn answer(&mut self, id: Option<u64>) -> anyhow::Result<Value> {
        use futures_util::StreamExt;
        loop {
            match self.ws.next().await {
                Some(Ok(WsMessage::Text(t))) => {
                    let v: Value = serde_json::from_str(&t)?;
                    // An error the server could not tie to a request (a refused message: rate
                    // limit, size) answers the one request in flight.
                    let untied_error = v["type"] == "error" && v["id"].is_null();
                    if id.is_none() || v["id"].as_u64() == id || untied_error {
                        return Ok(v);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => bail!("the WebSocket closed"),
            }
        }
    }

    /// Places an order; the answer as (HTTP-like status, report or error).
    async fn place(&mut self, body: &Value) -> anyhow::Result<(u16, Value)> {
        use futures_util::SinkExt;
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"op": "order.place", "id": id, "order": body});
        self.ws.send(WsMessage::text(msg.to_string())).await?;
        let answer = self.answer(Some(id)).await?;
        match answer["type"].as_str() {
            Some("order.place") => Ok((
                answer["status"].as_u64().unwrap_or(0) as u16,
                answer["report"].clone(),
            )),
            _ => Ok((if answer["code"] == 2201 { 429 } else { 400 }, answer)),
        }
    }
}

/// A client's REST connection and the keys it signs with: HTTP/1.1 over the bare client
/// ([`http1`]), HTTP/2 over reqwest.
struct Rest {
    signers: Vec<Signer>,
    http1: Option<http1::Http1>,
}

impl Rest {
    /// Sends a request signed by `trader`'s key; the status and the JSON answer.
    async fn send(
        &mut self,
        trader: usize,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        self.send_reading(trader, method, path, body, true).await
    }

    /// [`Rest::send`], parsing the answer only when `read` (otherwise it is `Null`): the load
    /// generator shares the exchange's cores, and an execution report parsed into a `Value`
    /// costs more than signing the order.
    async fn send_reading(
        &mut self,
        trader: usize,
        method: Method,
        path: &str,
        body: Option<&Value>,
        read: bool,
    ) -> anyhow::Result<(u16, Value)> {
        let signer = &self.signers[trader];
        let Some(http1) = &mut self.http1 else {
            return Ok(signer.send(method, path, body).await?);
        };
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let target = signer.signed_target(method.as_str(), path, &body);
        let mut headers = vec![(exchange_client::signing::KEY_HEADER, signer.key_id())];
        if !body.is_empty() {
            headers.push(("content-type", "application/json"));
        }
        let (status, answer) = tokio::time::timeout(
            REQUEST_TIMEOUT,
            http1.send(method.as_str(), &target, &headers, &body),
        )
        .await??;
        let json = if answer.is_empty() || !read {
            Value::Null
        } else {
            serde_json::from_slice(&answer)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&answer).into_owned()))
        };
        Ok((status, json))
    }
}

/// How long a request may take before it counts as timed out.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How a client places its orders.
enum Transport {
    Rest(Rest),
    /// One socket, so one account for all of the client's orders.
    Ws(Box<WsOrders>, usize),
}

/// A market-data subscriber: trades of every symbol, acceptance to receipt while measuring.
async fn md_subscriber(
    o: Arc<Options>,
    id: usize,
    measure_from: Instant,
    stop: Instant,
) -> anyhow::Result<Histogram<u64>> {
    use futures_util::{SinkExt, StreamExt};
    let base = &o.urls[id % o.urls.len()];
    let url = format!("{}/ws", base.replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    let channels: Vec<String> = o
        .symbols
        .iter()
        .map(|(s, _)| format!("trades.{s}"))
        .collect();
    ws.send(WsMessage::text(
        json!({"op": "subscribe", "channels": channels}).to_string(),
    ))
    .await?;
    let mut h = Histogram::new_with_bounds(1, 60_000_000, 3)?;
    while let Ok(Some(msg)) = tokio::time::timeout_at(stop.into(), ws.next()).await {
        if let WsMessage::Text(t) = msg?
            && Instant::now() >= measure_from
        {
            let now = fanout::now_us();
            for at in fanout::accepted_times(&t) {
                h.saturating_record(now.saturating_sub(at).max(1));
            }
        }
    }
    Ok(h)
}

async fn client(
    o: Arc<Options>,
    keys: Arc<Vec<Credentials>>,
    id: usize,
    start: Instant,
    stop: Instant,
    done: Arc<AtomicU64>,
) -> anyhow::Result<Tally> {
    let base = &o.urls[id % o.urls.len()];
    // One connection per client, shared by the keys it signs with.
    let mut http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT);
    if o.http2 {
        http = http.http2_prior_knowledge();
    }
    let mut transport = if o.websocket {
        let trader = id % keys.len();
        Transport::Ws(Box::new(WsOrders::open(base, &keys[trader]).await?), trader)
    } else {
        let first = Signer::with_http(http.build()?, base.clone(), keys[0].clone());
        Transport::Rest(Rest {
            signers: keys.iter().map(|k| first.with_key(k.clone())).collect(),
            http1: if o.http2 {
                None
            } else {
                Some(http1::Http1::new(base)?)
            },
        })
    };
    let mut tally = Tally {
        latency: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        outcomes: BTreeMap::new(),
        acks: Vec::new(),
    };
    // In open loop, this client's share of the rate, its first order offset so that the clients
    // do not fire together.
    let interval = o
        .rate
        .map(|r| Duration::from_secs_f64(o.clients as f64 / r.max(0.001)));
    let mut due =
        start + interval.map_or(Duration::ZERO, |i| i.mul_f64(id as f64 / o.clients as f64));
    let mut n = 0u64;
    let mut quotes: Vec<Quote> = Vec::new();
    while Instant::now() < stop {
        n += 1;
        if let (Workload::MarketMaking { amend, place, ioc }, Transport::Rest(rest)) =
            (o.workload, &mut transport)
        {
            let sent = Instant::now();
            let (step, index) = mm_step(&o, (amend, place, ioc), &quotes, id, n, start.elapsed());
            let (trader, result) = match &step {
                MmStep::Place(t, body, _) => {
                    (*t, rest.send(*t, Method::POST, "/orders", Some(body)).await)
                }
                MmStep::Amend(t, oid, body) => (
                    *t,
                    rest.send(*t, Method::PATCH, &format!("/orders/{oid}"), Some(body))
                        .await,
                ),
                MmStep::Cancel(t, oid) => (
                    *t,
                    rest.send(*t, Method::DELETE, &format!("/orders/{oid}"), None)
                        .await,
                ),
            };
            let (status, response) = match result {
                Ok(r) => r,
                Err(_) => (0, Value::Null),
            };
            let outcome = if status == 0 {
                "connection error".to_string()
            } else {
                status.to_string()
            };
            if sent.duration_since(start) >= o.warmup {
                tally
                    .latency
                    .saturating_record(sent.elapsed().as_micros() as u64);
                *tally.outcomes.entry(outcome).or_default() += 1;
            }
            done.fetch_add(1, Ordering::Relaxed);
            let live = matches!(
                response["status"].as_str(),
                Some("NEW" | "PARTIALLY_FILLED")
            );
            match step {
                MmStep::Place(_, body, side) => {
                    let ack = (o.verify && status == 201).then(|| {
                        tally.acks.push(Ack {
                            trader,
                            request: body,
                            response: response.clone(),
                        });
                        tally.acks.len() - 1
                    });
                    if status == 201 && live && !side.is_empty() {
                        let order_id = response["order_id"].as_str().unwrap_or_default().to_owned();
                        quotes.push(Quote {
                            trader,
                            order_id,
                            side,
                            ack,
                        });
                    }
                }
                MmStep::Amend(_, _, body) => {
                    let i = index.expect("an amendment names a quote");
                    if status == 200
                        && let Some(a) = quotes[i].ack.and_then(|a| tally.acks.get_mut(a))
                    {
                        a.request["price"] = body["price"].clone();
                        a.response = response.clone();
                    }
                    if !(status == 200 && live) {
                        quotes.swap_remove(i);
                    }
                }
                MmStep::Cancel(..) => {
                    let i = index.expect("a cancel names a quote");
                    if status == 200
                        && let Some(a) = quotes[i].ack.and_then(|a| tally.acks.get_mut(a))
                    {
                        a.response = response.clone();
                    }
                    quotes.swap_remove(i);
                }
            }
            continue;
        }
        let (mut trader, body) = order(&o.symbols, o.accounts, id, n);
        let sent = match interval {
            Some(interval) => {
                tokio::time::sleep_until(due.into()).await;
                let intended = due;
                due += interval;
                intended
            }
            None => Instant::now(),
        };
        if sent >= stop {
            break;
        }
        let placed = match &mut transport {
            Transport::Rest(rest) => {
                rest.send_reading(trader, Method::POST, "/orders", Some(&body), o.verify)
                    .await
            }
            Transport::Ws(ws, account) => {
                trader = *account;
                ws.place(&body).await
            }
        };
        let (outcome, response) = match placed {
            Ok((status, response)) => (status.to_string(), (status == 201).then_some(response)),
            Err(e) if is_timeout(&e) => ("timeout".into(), None),
            Err(_) => ("connection error".into(), None),
        };
        if sent.duration_since(start) >= o.warmup {
            tally
                .latency
                .saturating_record(sent.elapsed().as_micros() as u64);
            *tally.outcomes.entry(outcome).or_default() += 1;
        }
        done.fetch_add(1, Ordering::Relaxed);
        if o.verify
            && let Some(response) = response
        {
            tally.acks.push(Ack {
                trader,
                request: body,
                response,
            });
        }
    }
    Ok(tally)
}

/// Whether a request failed by taking too long.
fn is_timeout(e: &anyhow::Error) -> bool {
    e.is::<tokio::time::error::Elapsed>()
        || e.downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_timeout)
}

/// Why an order read back does not match its acknowledgement, if it does not.
fn mismatch(ack: &Ack, account: u64, now: &Value) -> Option<String> {
    let id = ack.response["order_id"].as_str().unwrap_or("?");
    // Decimals come back at the symbol's scale ("0.01000" for "0.0100"): compare them trimmed.
    let trimmed = |v: &Value| {
        let s = v.as_str().unwrap_or_default();
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s.to_owned()
        }
    };
    for field in ["symbol", "side", "price", "quantity"] {
        if trimmed(&now[field]) != trimmed(&ack.request[field]) {
            return Some(format!(
                "order {id}: {field} is {} but {} was sent",
                now[field], ack.request[field]
            ));
        }
    }
    if now["account"].as_str() != Some(account.to_string().as_str()) {
        return Some(format!("order {id}: account is {}", now["account"]));
    }
    let lots = |v: &Value| {
        v.as_str()
            .and_then(|s| s.replace('.', "").parse::<u64>().ok())
    };
    let (before, after) = (
        lots(&ack.response["filled_quantity"]),
        lots(&now["filled_quantity"]),
    );
    let acked_final = matches!(
        ack.response["status"].as_str(),
        Some("FILLED" | "CANCELLED")
    );
    match (before, after) {
        (Some(b), Some(a))
            if acked_final && (a != b || now["status"] != ack.response["status"]) =>
        {
            Some(format!(
                "order {id} was acknowledged {} {b}, reads {} {a}",
                ack.response["status"], now["status"]
            ))
        }
        (Some(b), Some(a)) if a < b => Some(format!("order {id} lost fills: {b} then {a}")),
        (Some(_), Some(_)) => None,
        _ => Some(format!("order {id}: filled quantity unreadable")),
    }
}

/// Reads every acknowledged order back, `clients` at a time.
async fn verify(
    o: &Options,
    keys: &Arc<Vec<Credentials>>,
    acks: Vec<Ack>,
) -> anyhow::Result<Verification> {
    let acks = Arc::new(acks);
    let workers = o.clients.clamp(1, 64);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (acks, keys, base) = (
            Arc::clone(&acks),
            Arc::clone(keys),
            o.urls[w % o.urls.len()].clone(),
        );
        tasks.push(tokio::spawn(async move {
            let first = Signer::new(base, keys[0].clone());
            let mut v = Verification::default();
            for ack in acks.iter().skip(w).step_by(workers) {
                v.checked += 1;
                let id = ack.response["order_id"].as_str().unwrap_or_default();
                let key = &keys[ack.trader];
                let signer = first.with_key(key.clone());
                let problem = match signer
                    .send(Method::GET, &format!("/orders/{id}"), None)
                    .await
                {
                    Ok((200, now)) => mismatch(ack, key.account, &now),
                    Ok((status, body)) => Some(format!("order {id}: read back as {status} {body}")),
                    Err(e) => Some(format!("order {id}: {e}")),
                };
                if let Some(p) = problem {
                    v.mismatches += 1;
                    if v.examples.len() < 20 {
                        v.examples.push(p);
                    }
                }
            }
            v
        }));
    }
    let mut total = Verification::default();
    for t in tasks {
        let v = t.await.context("a verification worker panicked")?;
        total.checked += v.checked;
        total.mismatches += v.mismatches;
        total.examples.extend(
            v.examples
                .into_iter()
                .take(20usize.saturating_sub(total.examples.len())),
        );
    }
    Ok(total)
}

/// Runs the load and, if asked, the verification.
pub async fn run(o: Options) -> anyhow::Result<Summary> {
    if o.symbols.is_empty() || o.clients == 0 || o.urls.is_empty() {
        bail!("need at least one URL, one symbol and one client");
    }
    if o.workload != Workload::Limit && (o.websocket || o.rate.is_some()) {
        bail!(
            "the market-making workload runs closed loop over REST (it amends orders): drop --websocket and --rate"
        );
    }
    let keys = Arc::new(traders(&o).await?);
    let o = Arc::new(o);
    let start = Instant::now();
    let md: Vec<_> = (0..o.md_subscribers)
        .map(|i| {
            tokio::spawn(md_subscriber(
                Arc::clone(&o),
                i,
                start + o.warmup,
                start + o.warmup + o.duration + Duration::from_millis(500),
            ))
        })
        .collect();
    let stop = start + o.warmup + o.duration;
    let done = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..o.clients)
        .map(|id| {
            tokio::spawn(client(
                Arc::clone(&o),
                Arc::clone(&keys),
                id,
                start,
                stop,
                Arc::clone(&done),
            ))
        })
        .collect();
    let progress = o.progress.then(|| {
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let (mut last, mut seconds) = (0, 0);
            loop {
                tick.tick().await;
                seconds += 1;
                let now = done.load(Ordering::Relaxed);
                eprint!(
                    "\r{seconds:>4} s  {:>8} orders/s  {now:>10} answered",
                    now - last
                );
                last = now;
            }
        })
    });
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut outcomes = BTreeMap::<String, u64>::new();
    let mut acks = Vec::new();
    for t in tasks {
        let tally = t.await.context("a client panicked")??;
        latency.add(&tally.latency)?;
        for (k, v) in tally.outcomes {
            *outcomes.entry(k).or_default() += v;
        }
        acks.extend(tally.acks);
    }
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    let sent: u64 = outcomes.values().sum();
    // Every operation the exchange took: places (201), amendments and cancels (200).
    let accepted = outcomes
        .iter()
        .filter(|(k, _)| k.starts_with('2'))
        .map(|(_, v)| *v)
        .sum::<u64>();
    let seconds = o.duration.as_secs_f64();
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    let verification = if o.verify {
        Some(verify(&o, &keys, acks).await?)
    } else {
        None
    };
    let conservation = reconcile(&o).await?;
    let mut md_latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for t in md {
        md_latency.add(&t.await.context("a market-data subscriber panicked")??)?;
    }
    let md_ms = |q: f64| md_latency.value_at_quantile(q) as f64 / 1000.0;
    Ok(Summary {
        mode: if o.rate.is_some() { "open" } else { "closed" }.into(),
        protocol: if o.websocket {
            "WebSocket"
        } else if o.http2 {
            "HTTP/2"
        } else {
            "HTTP/1.1"
        }
        .into(),
        offered_per_s: o.rate,
        clients: o.clients,
        duration_s: seconds,
        sent,
        accepted,
        orders_per_s: accepted as f64 / seconds,
        latency_ms: Latency {
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            p999: ms(0.999),
            max: latency.max() as f64 / 1000.0,
        },
        outcomes,
        verification,
        market_data_latency_ms: (o.md_subscribers > 0).then(|| Latency {
            p50: md_ms(0.5),
            p90: md_ms(0.9),
            p99: md_ms(0.99),
            p999: md_ms(0.999),
            max: md_latency.max() as f64 / 1000.0,
        }),
        market_data_trades: md_latency.len(),
        conservation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(status: &str, filled: &str) -> Ack {
        Ack {
            trader: 0,
            request: json!({"symbol": "BTC-USD", "side": "BUY", "type": "LIMIT", "price": "65000.00", "quantity": "0.0100"}),
            response: json!({"order_id": "1", "status": status, "filled_quantity": filled}),
        }
    }

    fn read(status: &str, filled: &str) -> Value {
        json!({"order_id": "1", "account": "7", "symbol": "BTC-USD", "side": "BUY", "price": "65000.00", "quantity": "0.01000", "status": status, "filled_quantity": filled})
    }

    #[test]
    fn only_zero_differences_count_as_conserved() {
        assert!(!nonzero("0.0000000"));
        assert!(!nonzero("-0.00"));
        assert!(nonzero("-0.0000001"));
        assert!(nonzero("10.0"));
    }

    #[test]
    fn matching_reads_pass_at_any_scale() {
        assert_eq!(
            mismatch(&ack("NEW", "0.00000"), 7, &read("NEW", "0.00000")),
            None
        );
        assert_eq!(
            mismatch(&ack("NEW", "0.00000"), 7, &read("FILLED", "0.01000")),
            None,
            "later fills are fine"
        );
        assert_eq!(
            mismatch(&ack("FILLED", "0.01000"), 7, &read("FILLED", "0.01000")),
            None
        );
    }

    #[test]
    fn each_kind_of_divergence_is_caught() {
        assert!(
            mismatch(
                &ack("PARTIALLY_FILLED", "0.00500"),
                7,
                &read("NEW", "0.00000")
            )
            .unwrap()
            .contains("lost fills")
        );
        assert!(mismatch(&ack("FILLED", "0.01000"), 7, &read("CANCELLED", "0.01000")).is_some());
        let mut other = read("NEW", "0.00000");
        other["price"] = json!("65000.01");
        assert!(
            mismatch(&ack("NEW", "0.00000"), 7, &other)
                .unwrap()
                .contains("price")
        );
        let mut other = read("NEW", "0.00000");
        other["account"] = json!("8");
        assert!(
            mismatch(&ack("NEW", "0.00000"), 7, &other)
                .unwrap()
                .contains("account")
        );
    }
}
