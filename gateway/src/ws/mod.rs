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
//! closed (1008). The messages both ways are [`protocol`]'s `ClientMessage` and
//! `ServerMessage`; the README lists them with examples.
//!
//! # Layout
//! - [`protocol`]: the client and server messages and the channel names.
//! - [`frames`]: market updates to the frames a topic broadcasts, serialised once.
//! - [`hub`]: the per-symbol topics and their tasks.
//! - [`policy`]: what a connection does with each frame, and when it fell behind.
//! - [`connection`]: one client's loop: its messages, the frames and private updates it
//!   follows, heartbeats, and orders over the socket through the same code as REST.

pub mod connection;
pub mod frames;
pub mod hub;
pub mod policy;
pub mod protocol;

pub use hub::Hub;

use crate::AppState;
use crate::auth::Rate;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::response::Response;
use std::time::Duration;

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
            connection::Connection::new(app, socket).run().await;
            metrics::gauge!("exchange_ws_connections").decrement(1.0);
        })
}
