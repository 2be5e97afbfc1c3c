//! Identifiers and the small closed enums every layer shares.
//!
//! Ids are plain integers wrapped in newtypes so that an `OrderId` can never be passed where an
//! `AccountId` is expected. Order and trade ids carry their symbol in the top 16 bits, so any
//! process can route a request about an order to the shard that owns it without a lookup.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Index of a symbol in the [`crate::SymbolTable`]; stable as long as the symbols file only grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SymbolId(pub u16);

/// An account (a trader). Assigned by the accounts layer; the engine only compares them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(pub u64);

impl AccountId {
    /// The exchange's own account, credited with every fee. Never given to a trader.
    pub const FEES: AccountId = AccountId(0);
}

/// Bits of an [`OrderId`] or [`TradeId`] below the symbol.
const LOCAL_BITS: u32 = 48;
const LOCAL_MASK: u64 = (1 << LOCAL_BITS) - 1;

/// An order id: `symbol << 48 | local`, where `local` is unique within the symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(pub u64);

impl OrderId {
    /// The largest local part an id can carry.
    pub const MAX_LOCAL: u64 = LOCAL_MASK;

    /// Builds the id of the `local`-th order of `symbol` (`local` is truncated to 48 bits).
    pub fn compose(symbol: SymbolId, local: u64) -> Self {
        Self(((symbol.0 as u64) << LOCAL_BITS) | (local & LOCAL_MASK))
    }
    /// The symbol this order belongs to.
    pub fn symbol(self) -> SymbolId {
        SymbolId((self.0 >> LOCAL_BITS) as u16)
    }
    /// The part of the id below the symbol.
    pub fn local(self) -> u64 {
        self.0 & LOCAL_MASK
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A trade id: `symbol << 48 | n`, `n` counting the symbol's trades from 1 without gaps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TradeId(pub u64);

impl TradeId {
    /// Builds the id of the `n`-th trade of `symbol`.
    pub fn compose(symbol: SymbolId, n: u64) -> Self {
        Self(((symbol.0 as u64) << LOCAL_BITS) | (n & LOCAL_MASK))
    }
    /// The symbol the trade happened on.
    pub fn symbol(self) -> SymbolId {
        SymbolId((self.0 >> LOCAL_BITS) as u16)
    }
}

/// Nanoseconds since the Unix epoch. The engine never reads a clock: this comes in with each command.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

/// Which side of the book an order is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    /// Its name in the API (as serde writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }

    /// The side an order of this side trades against.
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

/// How long a limit order stays on the book.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TimeInForce {
    /// Good till cancelled: the remainder rests on the book.
    #[default]
    Gtc,
    /// Immediate or cancel: what does not fill at once is cancelled.
    Ioc,
    /// Fill or kill: fills completely at once or not at all.
    Fok,
}

impl TimeInForce {
    /// Its name in the API (as serde writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            TimeInForce::Gtc => "GTC",
            TimeInForce::Ioc => "IOC",
            TimeInForce::Fok => "FOK",
        }
    }
}

/// Self-trade prevention, Binance's names. The taker's mode decides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StpMode {
    /// Orders of the same account may trade with each other.
    #[default]
    None,
    /// The incoming order's remainder is cancelled when it would trade with its own account.
    ExpireTaker,
    /// The resting order of the same account is cancelled and matching goes on.
    ExpireMaker,
    /// Both the resting order and the incoming remainder are cancelled.
    ExpireBoth,
}

impl StpMode {
    /// Its name in the API (as serde writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            StpMode::None => "NONE",
            StpMode::ExpireTaker => "EXPIRE_TAKER",
            StpMode::ExpireMaker => "EXPIRE_MAKER",
            StpMode::ExpireBoth => "EXPIRE_BOTH",
        }
    }
}

/// Longest client order id, as on Binance.
pub const CLIENT_ORDER_ID_MAX: usize = 36;

/// A client's own id for an order: 1 to 36 characters of `[A-Za-z0-9._:/-]`, stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientOrderId {
    len: u8,
    bytes: [u8; CLIENT_ORDER_ID_MAX],
}

/// Why a string is not a valid [`ClientOrderId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientOrderIdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {CLIENT_ORDER_ID_MAX} characters")]
    TooLong,
    #[error("may only contain letters, digits and . _ : / -")]
    BadCharacter,
}

impl ClientOrderId {
    /// Validates and stores `s`.
    pub fn new(s: &str) -> Result<Self, ClientOrderIdError> {
        let raw = s.as_bytes();
        if raw.is_empty() {
            return Err(ClientOrderIdError::Empty);
        }
        if raw.len() > CLIENT_ORDER_ID_MAX {
            return Err(ClientOrderIdError::TooLong);
        }
        if !raw
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'-'))
        {
            return Err(ClientOrderIdError::BadCharacter);
        }
        let mut bytes = [0u8; CLIENT_ORDER_ID_MAX];
        bytes[..raw.len()].copy_from_slice(raw);
        Ok(Self {
            len: raw.len() as u8,
            bytes,
        })
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (checked in `new`).
        std::str::from_utf8(&self.bytes[..self.len as usize]).expect("client order ids are ASCII")
    }
}

impl fmt::Debug for ClientOrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for ClientOrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ClientOrderId {
    type Err = ClientOrderIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl Serialize for ClientOrderId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ClientOrderId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_id_carries_its_symbol() {
        let id = OrderId::compose(SymbolId(7), 123_456);
        assert_eq!(id.symbol(), SymbolId(7));
        assert_eq!(id.local(), 123_456);
        assert_eq!(TradeId::compose(SymbolId(3), 9).symbol(), SymbolId(3));
    }

    #[test]
    fn client_order_id_rules() {
        assert_eq!(
            ClientOrderId::new("abc-1.x:y/z_").unwrap().as_str(),
            "abc-1.x:y/z_"
        );
        assert_eq!(ClientOrderId::new(""), Err(ClientOrderIdError::Empty));
        assert_eq!(
            ClientOrderId::new(&"a".repeat(37)),
            Err(ClientOrderIdError::TooLong)
        );
        assert!(ClientOrderId::new(&"a".repeat(36)).is_ok());
        assert_eq!(
            ClientOrderId::new("a b"),
            Err(ClientOrderIdError::BadCharacter)
        );
        assert_eq!(
            ClientOrderId::new("é"),
            Err(ClientOrderIdError::BadCharacter)
        );
    }

    #[test]
    fn enum_names_are_the_serde_names() {
        fn serde_name<T: Serialize>(v: T) -> String {
            serde_json::to_value(v)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        }
        for s in [Side::Buy, Side::Sell] {
            assert_eq!(s.as_str(), serde_name(s));
        }
        for t in [TimeInForce::Gtc, TimeInForce::Ioc, TimeInForce::Fok] {
            assert_eq!(t.as_str(), serde_name(t));
        }
        for m in [
            StpMode::None,
            StpMode::ExpireTaker,
            StpMode::ExpireMaker,
            StpMode::ExpireBoth,
        ] {
            assert_eq!(m.as_str(), serde_name(m));
        }
    }

    #[test]
    fn client_order_id_round_trips_through_json() {
        let id = ClientOrderId::new("my-order-1").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"my-order-1\"");
        assert_eq!(serde_json::from_str::<ClientOrderId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<ClientOrderId>("\"bad id\"").is_err());
    }
}
