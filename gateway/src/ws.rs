//! The WebSocket tier: `GET /ws`, live market data and private order updates.
//!
//! # Fan-out
//! A gateway follows a symbol's upstream feed only while one of its clients wants it: the
//! [`Hub`] keeps one [`Topic`] per symbol, shared (reference counted) by the connections
//! subscribed to any of its channels, and dropped, upstream subscription and all, with the last
//! of them. A topic's task turns each upstream update into JSON once and broadcasts the frames
//! to its connections over a bounded ring.
//!
//! # Slow consumers
//! A connection that falls a whole ring behind never holds up the matcher or other clients:
//! it is conflated (a book subscriber gets a fresh snapshot instead of the diffs it missed;
//! tickers and candles are state, the next one replaces the missed one), except that trades
//! cannot be conflated, so a trades subscriber that fell behind is closed (code 4001) and knows
//! to re-sync. Private updates are never dropped silently: a connection that cannot take them
//! is closed (code 4002) so that the client re-syncs over REST. A send that the client does
//! not take within the send timeout closes the connection too (4003).
//!
//! # Client messages
//! `{"op": "subscribe" | "unsubscribe", "channels": [...]}`, `{"op": "ping"}`,
//! `{"op": "auth", "key": ..., "timestamp": ..., "recvWindow": ..., "signature": ...}` (signed
//! like `GET /ws?timestamp=...&recvWindow=...` with an empty body), and with the trade
//! permission `{"op": "order.place", "order": {...}}` and `{"op": "order.cancel", "order_id" |
//! "client_order_id": ...}`. Any may carry an `id`, echoed in the answer. A bad message gets an
//! error naming what is wrong; a client that floods past its message rate gets errors, then is
//! closed (1008).

use crate::auth::{Caller, Rate, check_signature};
use crate::dto::{
    PlaceOrderRequest, depth_response, fill_response, millis, order_response, ticker_response,
};
use crate::error::ApiError;
use crate::feed::{MarketUpdate, PrivateUpdate};
use crate::routes::orders;
use crate::{AppState, now};
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use exchange_core::{ErrorCode, Interval, SymbolId, SymbolSpec};
use futures_util::SinkExt;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::task::JoinHandle;

/// Close codes.
pub const CLOSE_SLOW_TRADES: u16 = 4001;
pub const CLOSE_PRIVATE_UNDELIVERABLE: u16 = 4002;
pub const CLOSE_SEND_TIMEOUT: u16 = 4003;
pub const CLOSE_DEAD: u16 = 4004;
pub const CLOSE_FLOOD: u16 = 1008;

/// The WebSocket tier's limits.
#[derive(Clone, Debug)]
pub struct WsConfig {
    /// Ping a connection that has been quiet this long.
    pub ping_after: Duration,
    /// Close a connection that has sent nothing (not even a pong) for this long.
    pub dead_after: Duration,
    /// Close a connection that does not take a message within this time.
    pub send_timeout: Duration,
    /// Frames a topic's ring holds for its slowest connection.
    pub ring: usize,
    /// Channels one connection may hold.
    pub max_channels: usize,
    /// Largest client message answered (larger ones get an error); the transport refuses
    /// anything over 16 times this.
    pub max_message_bytes: usize,
    /// Client messages per second and burst; past it, errors (0 per second: no limit).
    pub messages: Rate,
    /// Messages refused for the rate before the connection is closed.
    pub flood_strikes: u32,
    /// Ticker and candle updates per symbol are coalesced to one per this period.
    pub coalesce: Duration,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            ping_after: Duration::from_secs(20),
            dead_after: Duration::from_secs(60),
            send_timeout: Duration::from_secs(5),
            ring: 1_024,
            max_channels: 64,
            max_message_bytes: 16 * 1024,
            messages: Rate {
                per_second: 50,
                burst: 100,
            },
            flood_strikes: 50,
            coalesce: Duration::from_millis(100),
        }
    }
}

/// One frame for the connections of a topic, serialised once.
#[derive(Debug)]
enum Frame {
    Diff {
        first: u64,
        last: u64,
        text: Utf8Bytes,
    },
    Trades(Utf8Bytes),
    Ticker(Utf8Bytes),
    Candle {
        interval: usize,
        text: Utf8Bytes,
    },
    /// The topic itself fell behind its upstream: diffs and trades were lost.
    Gap,
}

/// One symbol's feed at this gateway, while anyone here follows it.
pub struct Topic {
    tx: broadcast::Sender<Arc<Frame>>,
    task: JoinHandle<()>,
}

impl Drop for Topic {
    fn drop(&mut self) {
        // Stops the task, which drops the upstream receiver: the upstream subscription ends.
        self.task.abort();
    }
}

/// The topics of this gateway.
#[derive(Default)]
pub struct Hub {
    topics: Mutex<HashMap<SymbolId, Weak<Topic>>>,
}

impl Hub {
    /// The topic of `symbol`, started (and subscribed upstream) if nobody here follows it yet.
    /// The upstream subscription is in place when this returns, so a snapshot read afterwards
    /// misses no update.
    fn topic(&self, app: &AppState, symbol: SymbolId) -> Arc<Topic> {
        let mut topics = self.topics.lock();
        if let Some(t) = topics.get(&symbol).and_then(Weak::upgrade) {
            return t;
        }
        let upstream = app.feed.market(symbol);
        let (tx, _) = broadcast::channel(app.ws.ring.max(1));
        let task = tokio::spawn(run_topic(app.clone(), symbol, upstream, tx.clone()));
        let topic = Arc::new(Topic { tx, task });
        topics.retain(|_, t| t.strong_count() > 0);
        topics.insert(symbol, Arc::downgrade(&topic));
        metrics::gauge!("exchange_ws_topics").set(topics.len() as f64);
        topic
    }

    /// How many symbols this gateway follows now.
    pub fn followed(&self) -> usize {
        self.topics
            .lock()
            .values()
            .filter(|t| t.strong_count() > 0)
            .count()
    }
}

fn text(v: Value) -> Utf8Bytes {
    Utf8Bytes::from(v.to_string())
}

fn diff_frame(spec: &SymbolSpec, u: &MarketUpdate) -> Frame {
    let changes: Vec<Value> = u
        .levels
        .iter()
        .map(|l| {
            json!([
                l.side.as_str(),
                spec.price_to_decimal(l.price).to_string(),
                spec.qty_to_decimal(l.qty).to_string()
            ])
        })
        .collect();
    Frame::Diff {
        first: u.first_seq,
        last: u.last_seq,
        text: text(json!({
            "channel": format!("book.{}", spec.name),
            "type": "diff",
            "first_seq": u.first_seq,
            "last_seq": u.last_seq,
            "changes": changes,
            "accepted_at_us": u.accepted.0 / 1_000,
        })),
    }
}

fn trades_frame(spec: &SymbolSpec, u: &MarketUpdate) -> Frame {
    let trades: Vec<Value> = u
        .trades
        .iter()
        .map(|(t, ts)| {
            json!({
                "trade_id": t.trade_id.0.to_string(),
                "price": spec.price_to_decimal(t.price).to_string(),
                "quantity": spec.qty_to_decimal(t.qty).to_string(),
                "taker_side": t.taker_side.as_str(),
                "time": millis(*ts),
                "accepted_at_us": ts.0 / 1_000,
            })
        })
        .collect();
    Frame::Trades(text(json!({
        "channel": format!("trades.{}", spec.name),
        "type": "trades",
        "trades": trades,
    })))
}

async fn ticker_frame(app: &AppState, spec: &SymbolSpec) -> Option<Frame> {
    let t = app.exchange.ticker(spec.id, now()).await.ok()??;
    let mut v = serde_json::to_value(ticker_response(spec, &t)).ok()?;
    v["channel"] = json!(format!("ticker.{}", spec.name));
    v["type"] = json!("ticker");
    Some(Frame::Ticker(text(v)))
}

async fn candle_frame(app: &AppState, spec: &SymbolSpec, interval: usize) -> Option<Frame> {
    let i = Interval::ALL[interval];
    let (label, minutes) = (i.name(), i.minutes());
    let (start, c) = app.exchange.candle(spec.id, minutes, now()).await.ok()??;
    let price = |p| (c.trades > 0).then(|| spec.price_to_decimal(p).to_string());
    Some(Frame::Candle {
        interval,
        text: text(json!({
            "channel": format!("candles.{}.{label}", spec.name),
            "type": "candle",
            "interval": label,
            "start": millis(start),
            "open": price(c.open),
            "high": price(c.high),
            "low": price(c.low),
            "close": price(c.close),
            "volume": spec.qty_to_decimal(exchange_core::Qty(c.volume as u64)).to_string(),
            "quote_volume": spec.notional_to_decimal(exchange_core::Notional(c.quote_volume)).to_string(),
            "trades": c.trades,
        })),
    })
}

/// A topic's task: upstream updates to frames, tickers and candles coalesced.
async fn run_topic(
    app: AppState,
    symbol: SymbolId,
    mut upstream: broadcast::Receiver<Arc<MarketUpdate>>,
    tx: broadcast::Sender<Arc<Frame>>,
) {
    let spec = app.spec(symbol).clone();
    let mut tick = tokio::time::interval(app.ws.coalesce);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dirty = false;
    loop {
        tokio::select! {
            r = upstream.recv() => match r {
                Ok(u) => {
                    let _ = tx.send(Arc::new(diff_frame(&spec, &u)));
                    if !u.trades.is_empty() {
                        let _ = tx.send(Arc::new(trades_frame(&spec, &u)));
                    }
                    dirty = true;
                }
                Err(RecvError::Lagged(_)) => {
                    let _ = tx.send(Arc::new(Frame::Gap));
                    dirty = true;
                }
                Err(RecvError::Closed) => break,
            },
            _ = tick.tick(), if dirty => {
                dirty = false;
                if let Some(f) = ticker_frame(&app, &spec).await {
                    let _ = tx.send(Arc::new(f));
                }
                for i in 0..Interval::ALL.len() {
                    if let Some(f) = candle_frame(&app, &spec, i).await {
                        let _ = tx.send(Arc::new(f));
                    }
                }
            }
        }
    }
}

/// What a connection follows of one symbol.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
struct Wants {
    book: bool,
    trades: bool,
    ticker: bool,
    /// Bit i: candles of `Interval::ALL[i]`.
    candles: u8,
}

impl Wants {
    fn any(&self) -> bool {
        self.book || self.trades || self.ticker || self.candles != 0
    }

    fn count(&self) -> usize {
        self.book as usize
            + self.trades as usize
            + self.ticker as usize
            + self.candles.count_ones() as usize
    }
}

/// A parsed channel name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Channel {
    Book(SymbolId),
    Trades(SymbolId),
    Ticker(SymbolId),
    Candles(SymbolId, usize),
    Orders,
}

fn parse_channel(app: &AppState, s: &str) -> Result<Channel, String> {
    if s == "orders" {
        return Ok(Channel::Orders);
    }
    let (kind, rest) = s
        .split_once('.')
        .ok_or_else(|| format!("unknown channel {s:?}: book.SYMBOL, trades.SYMBOL, ticker.SYMBOL, candles.SYMBOL.INTERVAL or orders"))?;
    let symbol = |name: &str| {
        app.exchange
            .symbols()
            .by_name(name)
            .map(|s| s.id)
            .map_err(|_| format!("unknown symbol in channel {s:?}"))
    };
    match kind {
        "book" => Ok(Channel::Book(symbol(rest)?)),
        "trades" => Ok(Channel::Trades(symbol(rest)?)),
        "ticker" => Ok(Channel::Ticker(symbol(rest)?)),
        "candles" => {
            let (sym, interval) = rest
                .rsplit_once('.')
                .ok_or_else(|| format!("channel {s:?} needs an interval: candles.SYMBOL.1m"))?;
            let i = Interval::ALL
                .iter()
                .position(|i| i.name() == interval)
                .ok_or_else(|| {
                    format!("unknown interval in channel {s:?}: 1m, 5m, 15m, 1h, 4h or 1d")
                })?;
            Ok(Channel::Candles(symbol(sym)?, i))
        }
        _ => Err(format!(
            "unknown channel {s:?}: book.SYMBOL, trades.SYMBOL, ticker.SYMBOL, candles.SYMBOL.INTERVAL or orders"
        )),
    }
}

/// An error for the client, with the channel at fault when there is one.
type ClientError = (ApiError, Option<String>);

/// Why a connection ends: with a close code and reason, or (`None`) because it is gone.
type Closing = Option<(u16, &'static str)>;

/// The channels a subscribe or unsubscribe names, parsed; or the error naming the bad one.
fn channels<'a>(
    app: &AppState,
    m: &'a ClientMessage,
) -> Result<(&'a Vec<String>, Vec<Channel>), ClientError> {
    let names = m.channels.as_ref().ok_or_else(|| {
        (
            ApiError::field(ErrorCode::MissingField, "channels", "is required"),
            None,
        )
    })?;
    let parsed = names
        .iter()
        .map(|n| {
            parse_channel(app, n).map_err(|why| {
                (
                    ApiError::field(ErrorCode::InvalidField, "channels", why),
                    Some(n.clone()),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((names, parsed))
}

/// A client message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientMessage {
    op: String,
    id: Option<Value>,
    channels: Option<Vec<String>>,
    key: Option<String>,
    timestamp: Option<Value>,
    #[serde(rename = "recvWindow")]
    recv_window: Option<Value>,
    signature: Option<String>,
    order: Option<Value>,
    order_id: Option<String>,
    client_order_id: Option<String>,
}

/// What to do after a frame or a lag.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    Send(Utf8Bytes),
    Skip,
    /// Send a fresh book snapshot.
    Resnapshot,
    Close(u16, &'static str),
}

/// The policy for one frame of a symbol a connection follows, given what it wants and the last
/// book sequence number it was sent.
fn on_frame(frame: &Frame, wants: Wants, book_seq: u64) -> Action {
    match frame {
        Frame::Diff { first, last, text } if wants.book => {
            if *last <= book_seq {
                Action::Skip
            } else if *first == book_seq + 1 {
                Action::Send(text.clone())
            } else {
                // A hole (only after a lag upstream): the snapshot is the way back.
                Action::Resnapshot
            }
        }
        Frame::Trades(t) if wants.trades => Action::Send(t.clone()),
        Frame::Ticker(t) if wants.ticker => Action::Send(t.clone()),
        Frame::Candle { interval, text } if wants.candles & (1 << interval) != 0 => {
            Action::Send(text.clone())
        }
        Frame::Gap => on_lag(wants),
        _ => Action::Skip,
    }
}

/// The policy when a connection fell a whole ring behind on a symbol.
fn on_lag(wants: Wants) -> Action {
    if wants.trades {
        Action::Close(
            CLOSE_SLOW_TRADES,
            "slow consumer: trades were dropped; reconnect and re-sync",
        )
    } else if wants.book {
        Action::Resnapshot
    } else {
        Action::Skip
    }
}

struct Followed {
    /// Held, not read: the symbol's topic (and its upstream subscription) lives while any
    /// connection follows the symbol.
    _topic: Arc<Topic>,
    rx: broadcast::Receiver<Arc<Frame>>,
    wants: Wants,
    /// Last book sequence number sent.
    book_seq: u64,
}

struct Connection {
    app: AppState,
    socket: WebSocket,
    followed: HashMap<SymbolId, Followed>,
    caller: Option<Caller>,
    private: Option<broadcast::Receiver<Arc<PrivateUpdate>>>,
    tokens: f64,
    refill_at: Instant,
    strikes: u32,
    last_heard: Instant,
    last_sent: Instant,
}

/// `GET /ws`: upgrades to a WebSocket.
#[utoipa::path(get, path = "/ws", tag = "market data",
    responses((status = 101, description = "Switching to the WebSocket protocol (see the README for channels and messages)")))]
pub async fn ws(State(app): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    let max = app.ws.max_message_bytes;
    upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(8 * 1024)
        .max_message_size(16 * max)
        .max_frame_size(16 * max)
        .on_upgrade(move |socket| async move {
            metrics::gauge!("exchange_ws_connections").increment(1.0);
            let now = Instant::now();
            let burst = f64::from(app.ws.messages.burst);
            Connection {
                app,
                socket,
                followed: HashMap::new(),
                caller: None,
                private: None,
                tokens: burst,
                refill_at: now,
                strikes: 0,
                last_heard: now,
                last_sent: now,
            }
            .run()
            .await;
            metrics::gauge!("exchange_ws_connections").decrement(1.0);
        })
}

/// The next frame of any followed symbol, with its symbol; pending forever when none.
async fn next_frame(
    followed: &mut HashMap<SymbolId, Followed>,
) -> (SymbolId, Result<Arc<Frame>, RecvError>) {
    if followed.is_empty() {
        return std::future::pending().await;
    }
    let futures = followed.iter_mut().map(|(s, f)| {
        let s = *s;
        Box::pin(async move { (s, f.rx.recv().await) })
    });
    futures_util::future::select_all(futures).await.0
}

async fn next_private(
    rx: &mut Option<broadcast::Receiver<Arc<PrivateUpdate>>>,
) -> Result<Arc<PrivateUpdate>, RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Connection {
    async fn run(mut self) {
        let mut heartbeat =
            tokio::time::interval(self.app.ws.ping_after.min(self.app.ws.dead_after) / 2);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let step = tokio::select! {
                incoming = self.socket.recv() => match incoming {
                    Some(Ok(msg)) => {
                        self.last_heard = Instant::now();
                        self.on_message(msg).await
                    }
                    _ => Err(None),
                },
                (symbol, frame) = next_frame(&mut self.followed) => self.on_market(symbol, frame).await,
                update = next_private(&mut self.private) => match update {
                    Ok(u) => self.on_private(&u).await,
                    Err(RecvError::Lagged(_)) => Err(Some((
                        CLOSE_PRIVATE_UNDELIVERABLE,
                        "private updates could not be delivered; re-sync over REST",
                    ))),
                    Err(RecvError::Closed) => Err(Some((CLOSE_PRIVATE_UNDELIVERABLE, "the private feed ended"))),
                },
                _ = heartbeat.tick() => self.on_heartbeat().await,
            };
            if let Err(close) = step {
                if let Some((code, reason)) = close {
                    metrics::counter!("exchange_ws_closed_total", "code" => code.to_string())
                        .increment(1);
                    let frame = CloseFrame {
                        code,
                        reason: Utf8Bytes::from(reason),
                    };
                    let _ = tokio::time::timeout(
                        self.app.ws.send_timeout,
                        self.socket.send(Message::Close(Some(frame))),
                    )
                    .await;
                    // The closing handshake: read (and drop) what the client still sends until
                    // its close, so that the socket is not reset under the close frame.
                    let _ = tokio::time::timeout(self.app.ws.send_timeout, async {
                        while let Some(Ok(m)) = self.socket.recv().await {
                            if matches!(m, Message::Close(_)) {
                                break;
                            }
                        }
                    })
                    .await;
                }
                return;
            }
        }
    }

    /// Sends one message, or gives up on a client that does not take it in time.
    async fn send(&mut self, text: Utf8Bytes) -> Result<(), Closing> {
        self.send_all(vec![text]).await
    }

    async fn send_json(&mut self, v: Value) -> Result<(), Closing> {
        self.send(text(v)).await
    }

    async fn error(
        &mut self,
        id: &Option<Value>,
        e: ApiError,
        channel: Option<&str>,
    ) -> Result<(), Closing> {
        self.send_json(json!({
            "type": "error",
            "id": id,
            "code": e.code.as_u16(),
            "error": crate::error::code_name(e.code),
            "message": e.message,
            "field": e.field,
            "channel": channel,
        }))
        .await
    }

    async fn on_heartbeat(&mut self) -> Result<(), Closing> {
        let cfg = &self.app.ws;
        if self.last_heard.elapsed() >= cfg.dead_after {
            return Err(Some((CLOSE_DEAD, "no answer to pings")));
        }
        if self.last_heard.elapsed() >= cfg.ping_after
            && self.last_sent.elapsed() >= cfg.ping_after / 2
        {
            match tokio::time::timeout(
                cfg.send_timeout,
                self.socket.send(Message::Ping(Default::default())),
            )
            .await
            {
                Ok(Ok(())) => self.last_sent = Instant::now(),
                Ok(Err(_)) => return Err(None),
                Err(_) => {
                    return Err(Some((
                        CLOSE_SEND_TIMEOUT,
                        "slow consumer: a ping was not taken in time",
                    )));
                }
            }
        }
        Ok(())
    }

    /// Takes a token for a client message; false when the client is over its rate (a rate of
    /// zero is no limit).
    fn take_token(&mut self) -> bool {
        let rate = self.app.ws.messages;
        if rate.per_second == 0 {
            return true;
        }
        let now = Instant::now();
        let burst = f64::from(rate.burst.max(1));
        self.tokens = (self.tokens
            + now.duration_since(self.refill_at).as_secs_f64() * f64::from(rate.per_second))
        .min(burst);
        self.refill_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    async fn on_message(&mut self, msg: Message) -> Result<(), Closing> {
        let raw = match msg {
            Message::Text(t) => t.as_str().as_bytes().to_vec(),
            Message::Binary(b) => b.to_vec(),
            Message::Close(_) => return Err(None),
            Message::Ping(_) | Message::Pong(_) => return Ok(()),
        };
        if !self.take_token() {
            self.strikes += 1;
            if self.strikes >= self.app.ws.flood_strikes {
                return Err(Some((CLOSE_FLOOD, "flooding: too many messages")));
            }
            let e = ApiError::new(
                ErrorCode::RateLimited,
                format!(
                    "too many messages: at most {} a second",
                    self.app.ws.messages.per_second
                ),
            );
            return self.error(&None, e, None).await;
        }
        if raw.len() > self.app.ws.max_message_bytes {
            let e = ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the message is larger than {} bytes",
                    self.app.ws.max_message_bytes
                ),
            );
            return self.error(&None, e, None).await;
        }
        let m: ClientMessage = match crate::extract::parse(&raw) {
            Ok(m) => m,
            Err(e) => return self.error(&None, e, None).await,
        };
        let id = m.id.clone();
        let result = match m.op.as_str() {
            "ping" => self
                .send_json(json!({"type": "pong", "id": id}))
                .await
                .map(|_| Ok(())),
            "subscribe" => self.subscribe(&m).await,
            "unsubscribe" => self.unsubscribe(&m).await,
            "auth" => self.auth(&m).await,
            "order.place" => self.place(&m).await,
            "order.cancel" => self.cancel(&m).await,
            other => Ok(Err((
                ApiError::field(
                    ErrorCode::InvalidField,
                    "op",
                    format!(
                        "{other:?} is not an operation: subscribe, unsubscribe, ping, auth, order.place, order.cancel"
                    ),
                ),
                None,
            ))),
        }?;
        match result {
            Ok(()) => Ok(()),
            Err((e, channel)) => self.error(&id, e, channel.as_deref()).await,
        }
    }

    /// Answers a client message; the inner error is for the client (with the channel at fault),
    /// the outer one ends the connection.
    async fn subscribe(&mut self, m: &ClientMessage) -> Result<Result<(), ClientError>, Closing> {
        let (names, parsed) = match channels(&self.app, m) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        let held: usize = self
            .followed
            .values()
            .map(|f| f.wants.count())
            .sum::<usize>()
            + self.private.is_some() as usize;
        if held + parsed.len() > self.app.ws.max_channels {
            return Ok(Err((
                ApiError::field(
                    ErrorCode::InvalidField,
                    "channels",
                    format!(
                        "too many subscriptions: at most {} per connection",
                        self.app.ws.max_channels
                    ),
                ),
                None,
            )));
        }
        if parsed.contains(&Channel::Orders) && self.caller.is_none() {
            return Ok(Err((
                ApiError::new(
                    ErrorCode::Unauthenticated,
                    "the orders channel needs an auth message first",
                ),
                Some("orders".into()),
            )));
        }
        self.send_json(json!({"type": "subscribed", "id": m.id, "channels": names}))
            .await?;
        for c in parsed {
            self.follow(c).await?;
        }
        Ok(Ok(()))
    }

    async fn follow(&mut self, c: Channel) -> Result<(), Closing> {
        let symbol = match c {
            Channel::Orders => {
                if self.private.is_none() {
                    let account = self.caller.as_ref().map(|c| c.account).expect("checked");
                    self.private = Some(self.app.feed.private(account));
                }
                return Ok(());
            }
            Channel::Book(s) | Channel::Trades(s) | Channel::Ticker(s) | Channel::Candles(s, _) => {
                s
            }
        };
        let app = self.app.clone();
        let f = self.followed.entry(symbol).or_insert_with(|| {
            let topic = app.hub.topic(&app, symbol);
            let rx = topic.tx.subscribe();
            Followed {
                _topic: topic,
                rx,
                wants: Wants::default(),
                book_seq: 0,
            }
        });
        let spec = app.spec(symbol).clone();
        match c {
            Channel::Book(_) => {
                f.wants.book = true;
                self.snapshot(symbol).await?;
            }
            Channel::Trades(_) => f.wants.trades = true,
            Channel::Ticker(_) => {
                f.wants.ticker = true;
                if let Some(Frame::Ticker(t)) = ticker_frame(&app, &spec).await {
                    self.send(t).await?;
                }
            }
            Channel::Candles(_, i) => {
                f.wants.candles |= 1 << i;
                if let Some(Frame::Candle { text, .. }) = candle_frame(&app, &spec, i).await {
                    self.send(text).await?;
                }
            }
            Channel::Orders => {}
        }
        Ok(())
    }

    /// Sends the whole book of `symbol` with its sequence number; diffs up to it are skipped.
    async fn snapshot(&mut self, symbol: SymbolId) -> Result<(), Closing> {
        let spec = self.app.spec(symbol).clone();
        let Ok(Some(depth)) = self.app.exchange.depth(symbol, usize::MAX).await else {
            return Ok(());
        };
        if let Some(f) = self.followed.get_mut(&symbol) {
            f.book_seq = depth.seq;
        }
        let d = depth_response(&spec, &depth);
        self.send_json(json!({
            "channel": format!("book.{}", spec.name),
            "type": "snapshot",
            "seq": depth.seq,
            "bids": d.bids,
            "asks": d.asks,
        }))
        .await
    }

    async fn unsubscribe(&mut self, m: &ClientMessage) -> Result<Result<(), ClientError>, Closing> {
        let (names, parsed) = match channels(&self.app, m) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        for c in parsed {
            let symbol = match c {
                Channel::Orders => {
                    self.private = None;
                    continue;
                }
                Channel::Book(s)
                | Channel::Trades(s)
                | Channel::Ticker(s)
                | Channel::Candles(s, _) => s,
            };
            if let Some(f) = self.followed.get_mut(&symbol) {
                match c {
                    Channel::Book(_) => f.wants.book = false,
                    Channel::Trades(_) => f.wants.trades = false,
                    Channel::Ticker(_) => f.wants.ticker = false,
                    Channel::Candles(_, i) => f.wants.candles &= !(1 << i),
                    Channel::Orders => {}
                }
                if !f.wants.any() {
                    // The last channel of the symbol here: the topic reference goes with it.
                    self.followed.remove(&symbol);
                }
            }
        }
        self.send_json(json!({"type": "unsubscribed", "id": m.id, "channels": names}))
            .await?;
        Ok(Ok(()))
    }

    async fn auth(&mut self, m: &ClientMessage) -> Result<Result<(), ClientError>, Closing> {
        let field = |v: &Option<Value>| {
            v.as_ref().map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        let (Some(key), Some(ts), Some(sig)) = (&m.key, field(&m.timestamp), &m.signature) else {
            return Ok(Err((
                ApiError::new(
                    ErrorCode::Unauthenticated,
                    "auth needs key, timestamp and signature (signed as GET /ws?timestamp=...)",
                ),
                None,
            )));
        };
        let mut query = format!("timestamp={ts}");
        if let Some(w) = field(&m.recv_window) {
            query.push_str(&format!("&recvWindow={w}"));
        }
        query.push_str(&format!("&signature={sig}"));
        match check_signature(&self.app, key, "GET", "/ws", &query, b"").await {
            Ok(caller) => {
                let account = caller.account;
                let names = caller.permissions.names();
                self.caller = Some(caller);
                self.send_json(json!({"type": "authenticated", "id": m.id, "account": account.0.to_string(), "permissions": names})).await?;
                Ok(Ok(()))
            }
            Err(e) => Ok(Err((e, None))),
        }
    }

    fn caller(&self) -> Result<Caller, ClientError> {
        self.caller.clone().ok_or_else(|| {
            (
                ApiError::new(ErrorCode::Unauthenticated, "send an auth message first"),
                None,
            )
        })
    }

    async fn place(&mut self, m: &ClientMessage) -> Result<Result<(), ClientError>, Closing> {
        let caller = match self.caller() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        let Some(order) = &m.order else {
            return Ok(Err((
                ApiError::field(ErrorCode::MissingField, "order", "is required"),
                None,
            )));
        };
        let req: PlaceOrderRequest = match crate::extract::parse(order.to_string().as_bytes()) {
            Ok(r) => r,
            Err(e) => return Ok(Err((e, None))),
        };
        match orders::place(&self.app, &caller, &req).await {
            Ok((status, report)) => {
                self.send_json(json!({"type": "order.place", "id": m.id, "status": status.as_u16(), "report": report.0})).await?;
                Ok(Ok(()))
            }
            Err(e) => Ok(Err((e, None))),
        }
    }

    async fn cancel(&mut self, m: &ClientMessage) -> Result<Result<(), ClientError>, Closing> {
        let caller = match self.caller() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        let result = match (&m.order_id, &m.client_order_id) {
            (Some(id), None) => orders::cancel_by_id(&self.app, &caller, id).await,
            (None, Some(c)) => orders::cancel_by_client_id(&self.app, &caller, c).await,
            _ => Err(ApiError::field(
                ErrorCode::MissingField,
                "order_id",
                "or client_order_id is required (one of them)",
            )),
        };
        match result {
            Ok(report) => {
                self.send_json(
                    json!({"type": "order.cancel", "id": m.id, "status": 200, "report": report}),
                )
                .await?;
                Ok(Ok(()))
            }
            Err(e) => Ok(Err((e, None))),
        }
    }

    /// What to do with one frame (or lag) of `symbol`; a diff sent moves the book sequence on.
    fn decide(&mut self, symbol: SymbolId, frame: &Result<Arc<Frame>, RecvError>) -> Action {
        let Some(f) = self.followed.get_mut(&symbol) else {
            return Action::Skip;
        };
        let action = match frame {
            Ok(frame) => on_frame(frame, f.wants, f.book_seq),
            Err(RecvError::Lagged(_)) => {
                metrics::counter!("exchange_ws_lagged_total").increment(1);
                on_lag(f.wants)
            }
            Err(RecvError::Closed) => Action::Close(CLOSE_SLOW_TRADES, "the market feed ended"),
        };
        if let (Action::Send(_), Ok(frame)) = (&action, frame)
            && let Frame::Diff { last, .. } = frame.as_ref()
        {
            f.book_seq = *last;
        }
        action
    }

    /// Handles a frame and whatever else of the symbol is already waiting (up to a bound),
    /// writing the messages together: one flush, not one per message, when a client is behind.
    async fn on_market(
        &mut self,
        symbol: SymbolId,
        first: Result<Arc<Frame>, RecvError>,
    ) -> Result<(), Closing> {
        const BATCH: usize = 64;
        let mut texts = Vec::new();
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(frame) = next.take() {
            match self.decide(symbol, &frame) {
                Action::Send(t) => texts.push(t),
                Action::Skip => {}
                Action::Resnapshot => {
                    self.send_all(std::mem::take(&mut texts)).await?;
                    self.snapshot(symbol).await?;
                }
                Action::Close(code, reason) => return Err(Some((code, reason))),
            }
            handled += 1;
            if handled < BATCH
                && let Some(f) = self.followed.get_mut(&symbol)
            {
                next = match f.rx.try_recv() {
                    Ok(frame) => Some(Ok(frame)),
                    Err(broadcast::error::TryRecvError::Lagged(n)) => {
                        Some(Err(RecvError::Lagged(n)))
                    }
                    Err(_) => None,
                };
            }
        }
        self.send_all(texts).await
    }

    /// Writes several messages with one flush, or gives up on a client that does not take them.
    async fn send_all(&mut self, texts: Vec<Utf8Bytes>) -> Result<(), Closing> {
        if texts.is_empty() {
            return Ok(());
        }
        let socket = &mut self.socket;
        let write = async {
            for t in texts {
                socket.feed(Message::Text(t)).await?;
            }
            socket.flush().await
        };
        match tokio::time::timeout(self.app.ws.send_timeout, write).await {
            Ok(Ok(())) => {
                self.last_sent = Instant::now();
                Ok(())
            }
            Ok(Err(_)) => Err(None),
            Err(_) => Err(Some((
                CLOSE_SEND_TIMEOUT,
                "slow consumer: a message was not taken in time",
            ))),
        }
    }

    async fn on_private(&mut self, u: &PrivateUpdate) -> Result<(), Closing> {
        for (record, trades) in &u.orders {
            let spec = self.app.spec(record.symbol).clone();
            let fills = trades
                .iter()
                .map(|t| fill_response(&spec, t, t.taker_order_id == record.id))
                .collect();
            let report = order_response(&spec, record, fills);
            self.send_json(
                json!({"channel": "orders", "type": "execution_report", "order": report}),
            )
            .await?;
        }
        for b in &u.balances {
            let Some(asset) = self.app.exchange.symbols().assets().get(b.asset).cloned() else {
                continue;
            };
            self.send_json(json!({
                "channel": "orders",
                "type": "balance",
                "asset": asset.name,
                "available": asset.to_decimal(b.available).to_string(),
                "reserved": asset.to_decimal(b.reserved).to_string(),
                "total": asset.to_decimal(b.available + b.reserved).to_string(),
            }))
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(first: u64, last: u64) -> Frame {
        Frame::Diff {
            first,
            last,
            text: Utf8Bytes::from("d"),
        }
    }

    #[test]
    fn diffs_follow_the_snapshot_without_gaps() {
        let book = Wants {
            book: true,
            ..Wants::default()
        };
        assert_eq!(
            on_frame(&diff(3, 5), book, 5),
            Action::Skip,
            "covered by the snapshot"
        );
        assert_eq!(
            on_frame(&diff(6, 9), book, 5),
            Action::Send(Utf8Bytes::from("d"))
        );
        assert_eq!(on_frame(&diff(8, 9), book, 5), Action::Resnapshot, "a hole");
        assert_eq!(on_frame(&diff(6, 9), Wants::default(), 5), Action::Skip);
    }

    #[test]
    fn a_lagging_consumer_is_conflated_or_closed() {
        let book = Wants {
            book: true,
            ..Wants::default()
        };
        let trades = Wants {
            trades: true,
            book: true,
            ..Wants::default()
        };
        let ticker = Wants {
            ticker: true,
            ..Wants::default()
        };
        assert_eq!(on_lag(book), Action::Resnapshot);
        assert!(matches!(
            on_lag(trades),
            Action::Close(CLOSE_SLOW_TRADES, _)
        ));
        assert_eq!(
            on_lag(ticker),
            Action::Skip,
            "the next ticker replaces the missed one"
        );
        assert_eq!(on_frame(&Frame::Gap, book, 1), Action::Resnapshot);
    }
}
