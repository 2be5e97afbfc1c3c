//! The WebSocket protocol, defined once: what a client sends ([`ClientMessage`], a closed set
//! of operations tagged by `op`), what the server sends ([`ServerMessage`], tagged by `type`),
//! and the channel names ([`Channel`]). Parsing does no I/O; the connection acts on the result.
//!
//! Fields some operations need are optional here and checked by the connection, so that a
//! missing one is answered with an error that names it (and the operation's own rules, such as
//! "auth first", come before the fields').

use crate::AppState;
use crate::dto::{OrderResponse, TickerResponse};
use crate::error::{ApiError, code_name};
use exchange_core::{ErrorCode, Interval, SymbolId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The operations a client may send.
pub const OPERATIONS: &[&str] = &[
    "subscribe",
    "unsubscribe",
    "ping",
    "auth",
    "order.place",
    "order.cancel",
];

/// A message from a client. Any may carry an `id` (any JSON value), echoed in the answer.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "op", deny_unknown_fields)]
pub enum ClientMessage {
    #[serde(rename = "ping")]
    Ping { id: Option<Value> },
    /// `channels`: `book.SYMBOL`, `trades.SYMBOL`, `ticker.SYMBOL`, `candles.SYMBOL.INTERVAL`,
    /// `orders`.
    #[serde(rename = "subscribe")]
    Subscribe {
        id: Option<Value>,
        channels: Option<Vec<String>>,
    },
    #[serde(rename = "unsubscribe")]
    Unsubscribe {
        id: Option<Value>,
        channels: Option<Vec<String>>,
    },
    /// Signed like `GET /ws?timestamp=...&recvWindow=...` with an empty body; the timestamp
    /// and window may be numbers or strings.
    #[serde(rename = "auth")]
    Auth {
        id: Option<Value>,
        key: Option<String>,
        timestamp: Option<Value>,
        #[serde(rename = "recvWindow")]
        recv_window: Option<Value>,
        signature: Option<String>,
    },
    /// `order`: the body of `POST /orders`.
    #[serde(rename = "order.place")]
    PlaceOrder {
        id: Option<Value>,
        order: Option<Value>,
    },
    /// One of `order_id` and `client_order_id`.
    #[serde(rename = "order.cancel")]
    CancelOrder {
        id: Option<Value>,
        order_id: Option<String>,
        client_order_id: Option<String>,
    },
}

/// A client message refused: why, and the id it came with when that could be read.
#[derive(Debug)]
pub struct Refused {
    pub id: Option<Value>,
    pub error: ApiError,
}

/// Just enough of a message to answer an unknown operation with its id.
#[derive(Deserialize)]
struct Envelope {
    op: Option<Value>,
    id: Option<Value>,
}

impl ClientMessage {
    /// Parses a client message; an error names what is wrong, with the message's id when it
    /// could be read.
    pub fn parse(raw: &[u8]) -> Result<Self, Box<Refused>> {
        if let Ok(Envelope {
            op: Some(Value::String(op)),
            id,
        }) = serde_json::from_slice::<Envelope>(raw)
            && !OPERATIONS.contains(&op.as_str())
        {
            let e = ApiError::field(
                ErrorCode::InvalidField,
                "op",
                format!(
                    "{op:?} is not an operation: subscribe, unsubscribe, ping, auth, order.place, order.cancel"
                ),
            );
            return Err(Box::new(Refused { id, error: e }));
        }
        crate::extract::parse(raw).map_err(|error| Box::new(Refused { id: None, error }))
    }

    /// The id to echo.
    pub fn id(&self) -> &Option<Value> {
        match self {
            Self::Ping { id }
            | Self::Subscribe { id, .. }
            | Self::Unsubscribe { id, .. }
            | Self::Auth { id, .. }
            | Self::PlaceOrder { id, .. }
            | Self::CancelOrder { id, .. } => id,
        }
    }
}

/// A parsed channel name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Book(SymbolId),
    Trades(SymbolId),
    Ticker(SymbolId),
    /// A symbol and the index of its interval in `Interval::ALL`.
    Candles(SymbolId, usize),
    Orders,
}

impl Channel {
    /// The symbol a market channel is about (none for `orders`).
    pub fn symbol(self) -> Option<SymbolId> {
        match self {
            Channel::Book(s) | Channel::Trades(s) | Channel::Ticker(s) | Channel::Candles(s, _) => {
                Some(s)
            }
            Channel::Orders => None,
        }
    }

    /// Parses a channel name against the listed symbols.
    pub fn parse(app: &AppState, s: &str) -> Result<Channel, String> {
        let unknown = || {
            format!(
                "unknown channel {s:?}: book.SYMBOL, trades.SYMBOL, ticker.SYMBOL, candles.SYMBOL.INTERVAL or orders"
            )
        };
        if s == "orders" {
            return Ok(Channel::Orders);
        }
        let (kind, rest) = s.split_once('.').ok_or_else(unknown)?;
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
            _ => Err(unknown()),
        }
    }
}

/// One trade of a `trades` message.
#[derive(Clone, Debug, Serialize)]
pub struct TradeItem {
    pub trade_id: String,
    pub price: String,
    pub quantity: String,
    pub taker_side: &'static str,
    pub time: u64,
    pub accepted_at_us: u64,
}

/// A message from the server. Market and private updates carry the `channel` they belong to;
/// answers carry the `id` of the client message they answer.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type")]
pub enum ServerMessage<'a> {
    #[serde(rename = "pong")]
    Pong { id: &'a Option<Value> },
    #[serde(rename = "subscribed")]
    Subscribed {
        id: &'a Option<Value>,
        channels: &'a [String],
    },
    #[serde(rename = "unsubscribed")]
    Unsubscribed {
        id: &'a Option<Value>,
        channels: &'a [String],
    },
    #[serde(rename = "authenticated")]
    Authenticated {
        id: &'a Option<Value>,
        account: String,
        permissions: Vec<&'static str>,
    },
    /// An order placed: its HTTP-equivalent status and execution report.
    #[serde(rename = "order.place")]
    OrderPlaced {
        id: &'a Option<Value>,
        status: u16,
        report: OrderResponse,
    },
    #[serde(rename = "order.cancel")]
    OrderCancelled {
        id: &'a Option<Value>,
        status: u16,
        report: OrderResponse,
    },
    /// A client message that could not be done, in the REST error's shape, with the channel at
    /// fault when there is one.
    #[serde(rename = "error")]
    Error {
        id: &'a Option<Value>,
        code: u16,
        error: String,
        message: String,
        field: Option<String>,
        channel: Option<&'a str>,
    },
    /// The whole book, as of `seq`; diffs up to it are not sent.
    #[serde(rename = "snapshot")]
    Snapshot {
        channel: String,
        seq: u64,
        bids: Vec<[String; 2]>,
        asks: Vec<[String; 2]>,
    },
    /// The book's changes from `first_seq` to `last_seq`, each `[side, price, quantity]`
    /// (quantity 0: the level is gone).
    #[serde(rename = "diff")]
    Diff {
        channel: String,
        first_seq: u64,
        last_seq: u64,
        changes: Vec<(&'static str, String, String)>,
        accepted_at_us: u64,
    },
    #[serde(rename = "trades")]
    Trades {
        channel: String,
        trades: Vec<TradeItem>,
    },
    #[serde(rename = "ticker")]
    Ticker {
        channel: String,
        #[serde(flatten)]
        ticker: TickerResponse,
    },
    /// The candle forming; prices are null while it has no trade.
    #[serde(rename = "candle")]
    Candle {
        channel: String,
        interval: &'static str,
        start: u64,
        open: Option<String>,
        high: Option<String>,
        low: Option<String>,
        close: Option<String>,
        volume: String,
        quote_volume: String,
        trades: u64,
    },
    /// One of the account's orders changed (`orders` channel).
    #[serde(rename = "execution_report")]
    ExecutionReport {
        channel: &'static str,
        order: OrderResponse,
    },
    /// One of the account's balances changed (`orders` channel).
    #[serde(rename = "balance")]
    Balance {
        channel: &'static str,
        asset: String,
        available: String,
        reserved: String,
        total: String,
    },
}

impl<'a> ServerMessage<'a> {
    /// The error message for `e`, answering `id`.
    pub fn error(id: &'a Option<Value>, e: ApiError, channel: Option<&'a str>) -> Self {
        ServerMessage::Error {
            id,
            code: e.code.as_u16(),
            error: code_name(e.code),
            message: e.message,
            field: e.field,
            channel,
        }
    }

    /// The message as JSON text.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<ClientMessage, Box<Refused>> {
        ClientMessage::parse(v.to_string().as_bytes())
    }

    #[test]
    fn each_operation_parses_into_its_message() {
        assert_eq!(
            parse(json!({"op": "ping", "id": 1})).unwrap(),
            ClientMessage::Ping { id: Some(json!(1)) }
        );
        assert_eq!(
            parse(json!({"op": "subscribe", "channels": ["book.BTC-USD"]})).unwrap(),
            ClientMessage::Subscribe {
                id: None,
                channels: Some(vec!["book.BTC-USD".into()])
            }
        );
        let auth = parse(json!({"op": "auth", "key": "k", "timestamp": 5, "signature": "s"}));
        assert!(matches!(
            auth.unwrap(),
            ClientMessage::Auth { key: Some(k), timestamp: Some(t), recv_window: None, .. }
                if k == "k" && t == json!(5)
        ));
        assert!(matches!(
            parse(json!({"op": "order.cancel", "id": "c", "order_id": "7"})).unwrap(),
            ClientMessage::CancelOrder { order_id: Some(o), client_order_id: None, .. } if o == "7"
        ));
    }

    #[test]
    fn an_unknown_operation_is_named_with_the_id_it_came_with() {
        let r = parse(json!({"op": "fly", "id": 3})).unwrap_err();
        let (id, e) = (r.id, r.error);
        assert_eq!(id, Some(json!(3)));
        assert_eq!(e.field.as_deref(), Some("op"));
        assert!(
            e.message.contains("\"fly\" is not an operation"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_field_the_operation_does_not_have_is_refused() {
        let e = parse(json!({"op": "subscribe", "chanels": []}))
            .unwrap_err()
            .error;
        assert_eq!(e.field.as_deref(), Some("chanels"));
        let e = ClientMessage::parse(b"[1]").unwrap_err().error;
        assert_eq!(e.code, ErrorCode::MalformedRequest);
        let e = parse(json!({"id": 1})).unwrap_err().error;
        assert!(e.message.contains("op"), "{}", e.message);
    }

    #[test]
    fn server_messages_carry_their_type_and_fields() {
        let id = Some(json!("a"));
        let v: Value = serde_json::from_str(
            &ServerMessage::Subscribed {
                id: &id,
                channels: &["book.BTC-USD".into()],
            }
            .to_text(),
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"type": "subscribed", "id": "a", "channels": ["book.BTC-USD"]})
        );
        let e = ApiError::field(ErrorCode::InvalidField, "channels", "bad");
        let v: Value =
            serde_json::from_str(&ServerMessage::error(&None, e, Some("x")).to_text()).unwrap();
        assert_eq!(
            v,
            json!({"type": "error", "id": null, "code": 1005, "error": "INVALID_FIELD",
                   "message": "channels bad", "field": "channels", "channel": "x"})
        );
    }
}
