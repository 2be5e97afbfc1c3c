//! One client's connection: its messages, the market frames and private updates it follows,
//! heartbeats, the message rate, and orders over the socket through the same functions as REST.

use super::frames::{Frame, candle_frame, text, ticker_frame};
use super::hub::Topic;
use super::policy::{Action, Wants, on_frame, on_lag};
use super::protocol::{Channel, ClientMessage, ServerMessage};
use super::{
    CLOSE_DEAD, CLOSE_FLOOD, CLOSE_PRIVATE_UNDELIVERABLE, CLOSE_SEND_TIMEOUT, CLOSE_SLOW_TRADES,
};
use crate::AppState;
use crate::auth::{Caller, check_signature};
use crate::dto::{PlaceOrderRequest, depth_response, fill_response, order_response};
use crate::error::ApiError;
use crate::feed::PrivateUpdate;
use crate::routes::orders;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use exchange_core::{ErrorCode, SymbolId};
use futures_util::SinkExt;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::broadcast::{self, error::RecvError};

/// An error for the client, with the channel at fault when there is one.
type ClientError = (ApiError, Option<String>);

/// Why a connection ends: with a close code and reason, or (`None`) because it is gone.
type Closing = Option<(u16, &'static str)>;

/// The channels a subscribe or unsubscribe names, parsed; or the error naming the bad one.
fn parse_channels<'a>(
    app: &AppState,
    names: &'a Option<Vec<String>>,
) -> Result<(&'a [String], Vec<Channel>), ClientError> {
    let names = names.as_ref().ok_or_else(|| {
        (
            ApiError::field(ErrorCode::MissingField, "channels", "is required"),
            None,
        )
    })?;
    let parsed = names
        .iter()
        .map(|n| {
            Channel::parse(app, n).map_err(|why| {
                (
                    ApiError::field(ErrorCode::InvalidField, "channels", why),
                    Some(n.clone()),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((names, parsed))
}

/// One symbol a connection follows.
struct Followed {
    /// Held, not read: the symbol's topic (and its upstream subscription) lives while any
    /// connection follows the symbol.
    _topic: Arc<Topic>,
    rx: broadcast::Receiver<Arc<Frame>>,
    wants: Wants,
    /// Last book sequence number sent.
    book_seq: u64,
}

/// One client's connection. See the module docs of [`super`].
pub struct Connection {
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
    /// A connection over `socket`, with a full bucket of message tokens.
    pub fn new(app: AppState, socket: WebSocket) -> Self {
        let now = Instant::now();
        let burst = f64::from(app.ws.messages.burst);
        Self {
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
    }

    /// Serves the client until it goes or is closed.
    pub async fn run(mut self) {
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

    async fn send_message(&mut self, m: &ServerMessage<'_>) -> Result<(), Closing> {
        self.send(text(m)).await
    }

    async fn error(
        &mut self,
        id: &Option<Value>,
        e: ApiError,
        channel: Option<&str>,
    ) -> Result<(), Closing> {
        self.send_message(&ServerMessage::error(id, e, channel))
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
        let m = match ClientMessage::parse(&raw) {
            Ok(m) => m,
            Err(refused) => return self.error(&refused.id, refused.error, None).await,
        };
        let result = match &m {
            ClientMessage::Ping { id } => self
                .send_message(&ServerMessage::Pong { id })
                .await
                .map(|_| Ok(())),
            ClientMessage::Subscribe { id, channels } => self.subscribe(id, channels).await,
            ClientMessage::Unsubscribe { id, channels } => self.unsubscribe(id, channels).await,
            ClientMessage::Auth {
                id,
                key,
                timestamp,
                recv_window,
                signature,
            } => self.auth(id, key, timestamp, recv_window, signature).await,
            ClientMessage::PlaceOrder { id, order } => self.place(id, order).await,
            ClientMessage::CancelOrder {
                id,
                order_id,
                client_order_id,
            } => self.cancel(id, order_id, client_order_id).await,
        }?;
        match result {
            Ok(()) => Ok(()),
            Err((e, channel)) => self.error(m.id(), e, channel.as_deref()).await,
        }
    }

    /// Answers a client message; the inner error is for the client (with the channel at fault),
    /// the outer one ends the connection.
    async fn subscribe(
        &mut self,
        id: &Option<Value>,
        channels: &Option<Vec<String>>,
    ) -> Result<Result<(), ClientError>, Closing> {
        let (names, parsed) = match parse_channels(&self.app, channels) {
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
        self.send_message(&ServerMessage::Subscribed {
            id,
            channels: names,
        })
        .await?;
        for c in parsed {
            self.follow(c).await?;
        }
        Ok(Ok(()))
    }

    async fn follow(&mut self, c: Channel) -> Result<(), Closing> {
        let Some(symbol) = c.symbol() else {
            if self.private.is_none() {
                let account = self.caller.as_ref().map(|c| c.account).expect("checked");
                self.private = Some(self.app.feed.private(account));
            }
            return Ok(());
        };
        let app = self.app.clone();
        let f = self.followed.entry(symbol).or_insert_with(|| {
            let topic = app.hub.topic(&app, symbol);
            let rx = topic.subscribe();
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
        self.send_message(&ServerMessage::Snapshot {
            channel: format!("book.{}", spec.name),
            seq: depth.seq,
            bids: d.bids,
            asks: d.asks,
        })
        .await
    }

    async fn unsubscribe(
        &mut self,
        id: &Option<Value>,
        channels: &Option<Vec<String>>,
    ) -> Result<Result<(), ClientError>, Closing> {
        let (names, parsed) = match parse_channels(&self.app, channels) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        for c in parsed {
            let Some(symbol) = c.symbol() else {
                self.private = None;
                continue;
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
        self.send_message(&ServerMessage::Unsubscribed {
            id,
            channels: names,
        })
        .await?;
        Ok(Ok(()))
    }

    async fn auth(
        &mut self,
        id: &Option<Value>,
        key: &Option<String>,
        timestamp: &Option<Value>,
        recv_window: &Option<Value>,
        signature: &Option<String>,
    ) -> Result<Result<(), ClientError>, Closing> {
        let field = |v: &Option<Value>| {
            v.as_ref().map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        let (Some(key), Some(ts), Some(sig)) = (key, field(timestamp), signature) else {
            return Ok(Err((
                ApiError::new(
                    ErrorCode::Unauthenticated,
                    "auth needs key, timestamp and signature (signed as GET /ws?timestamp=...)",
                ),
                None,
            )));
        };
        let mut query = format!("timestamp={ts}");
        if let Some(w) = field(recv_window) {
            query.push_str(&format!("&recvWindow={w}"));
        }
        query.push_str(&format!("&signature={sig}"));
        match check_signature(&self.app, key, "GET", "/ws", &query, b"").await {
            Ok(caller) => {
                let account = caller.account;
                let names = caller.permissions.names();
                self.caller = Some(caller);
                self.send_message(&ServerMessage::Authenticated {
                    id,
                    account: account.0.to_string(),
                    permissions: names,
                })
                .await?;
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

    async fn place(
        &mut self,
        id: &Option<Value>,
        order: &Option<Value>,
    ) -> Result<Result<(), ClientError>, Closing> {
        let caller = match self.caller() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        let Some(order) = order else {
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
                self.send_message(&ServerMessage::OrderPlaced {
                    id,
                    status: status.as_u16(),
                    report: report.0,
                })
                .await?;
                Ok(Ok(()))
            }
            Err(e) => Ok(Err((e, None))),
        }
    }

    async fn cancel(
        &mut self,
        id: &Option<Value>,
        order_id: &Option<String>,
        client_order_id: &Option<String>,
    ) -> Result<Result<(), ClientError>, Closing> {
        let caller = match self.caller() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        let result = match (order_id, client_order_id) {
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
                self.send_message(&ServerMessage::OrderCancelled {
                    id,
                    status: 200,
                    report,
                })
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
            self.send_message(&ServerMessage::ExecutionReport {
                channel: "orders",
                order: order_response(&spec, record, fills),
            })
            .await?;
        }
        for b in &u.balances {
            let Some(asset) = self.app.exchange.symbols().assets().get(b.asset).cloned() else {
                continue;
            };
            self.send_message(&ServerMessage::Balance {
                channel: "orders",
                asset: asset.name.clone(),
                available: asset.to_decimal(b.available).to_string(),
                reserved: asset.to_decimal(b.reserved).to_string(),
                total: asset.to_decimal(b.available + b.reserved).to_string(),
            })
            .await?;
        }
        Ok(())
    }
}
