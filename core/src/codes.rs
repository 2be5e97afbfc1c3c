//! The one numbering scheme for every error and reject reason, across all layers.
//!
//! Like exchange-core's result codes, the thousands digit names the layer that owns the rule:
//!
//! | range | layer |
//! |-------|-------|
//! | 1xxx  | request: decoding and validation at the edge, including the symbol's trading rules |
//! | 2xxx  | accounts: authentication, permissions, balances and pre-trade risk, rate limits |
//! | 3xxx  | matching engine: order state and book rules |
//! | 5xxx  | service: the exchange could not take the request right now |
//!
//! A code keeps its number whichever layer happens to detect it (the engine re-checks the symbol
//! rules the gateway already checked; a violation is still a 1xxx). Codes are never renumbered;
//! retired ones are not reused. The same table is in `docs/error-codes.md`.

use serde::{Deserialize, Serialize};

macro_rules! codes {
    ($($(#[doc = $doc:literal])* $name:ident = $num:literal => $status:literal,)*) => {
        /// Every error code the exchange returns. See the module docs for the numbering.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        #[repr(u16)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $name = $num,)*
        }

        impl ErrorCode {
            /// Every code, in numeric order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name,)*];

            /// The HTTP status an API answer with this code carries.
            pub fn http_status(self) -> u16 {
                match self { $(ErrorCode::$name => $status,)* }
            }
        }
    };
}

codes! {
    /// The body is not valid JSON or does not have the expected shape.
    MalformedRequest = 1001 => 400,
    /// The request's content type is not `application/json`.
    UnsupportedContentType = 1002 => 415,
    /// The body is larger than the API accepts.
    PayloadTooLarge = 1003 => 413,
    /// A required field is missing.
    MissingField = 1004 => 400,
    /// A field has a value that is not allowed (the message says why).
    InvalidField = 1005 => 400,
    /// A number is not a plain decimal string, is negative, zero or has too many digits.
    InvalidNumber = 1006 => 400,
    /// The symbol is not listed.
    UnknownSymbol = 1007 => 400,
    /// The price is not a multiple of the symbol's tick size.
    PriceOffTick = 1008 => 400,
    /// The quantity is not a multiple of the symbol's lot size.
    QtyOffLot = 1009 => 400,
    /// Price × quantity (or a quote amount) is below the symbol's minimum notional.
    BelowMinNotional = 1010 => 400,
    /// The quantity is below the minimum or above the maximum.
    QtyOutOfRange = 1011 => 400,
    /// The price is above the symbol's maximum.
    PriceOutOfRange = 1012 => 400,
    /// The combination of order type, time in force and flags is not allowed.
    InvalidOrderType = 1013 => 400,
    /// No such route or resource.
    NotFound = 1014 => 404,
    /// The HTTP method is not allowed on this route.
    MethodNotAllowed = 1015 => 405,
    /// The request is not authenticated (missing, unknown or bad key or signature).
    Unauthenticated = 2001 => 401,
    /// The key may not do this, or the resource belongs to another account.
    Forbidden = 2002 => 403,
    /// No such account.
    UnknownAccount = 2003 => 404,
    /// The account's available balance cannot cover the order.
    InsufficientBalance = 2101 => 400,
    /// The asset is not one the exchange lists.
    UnknownAsset = 2102 => 400,
    /// A deposit or withdrawal id was already used for a different transfer.
    TransferConflict = 2103 => 409,
    /// Too many requests; retry after the time in `Retry-After`.
    RateLimited = 2201 => 429,
    /// No live order with this id (or client order id) for this account.
    UnknownOrder = 3001 => 404,
    /// An order with this id is already live.
    DuplicateOrderId = 3002 => 409,
    /// The account already has a live order with this client order id.
    DuplicateClientOrderId = 3003 => 409,
    /// A post-only order would have taken liquidity.
    PostOnlyWouldTake = 3004 => 400,
    /// The amendment is not valid (nothing to change, or quantity not above what is filled).
    InvalidAmend = 3005 => 400,
    /// The symbol is listed but not traded by this shard (routing mismatch).
    SymbolNotOwned = 3006 => 503,
    /// The exchange cannot take the request now (shutting down, overloaded, store unreachable).
    Unavailable = 5001 => 503,
    /// Something failed inside the exchange; the request may or may not have been applied.
    Internal = 5002 => 500,
}

impl ErrorCode {
    /// The numeric code.
    pub fn as_u16(self) -> u16 {
        self as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_sorted_and_in_their_layer() {
        let nums: Vec<u16> = ErrorCode::ALL.iter().map(|c| c.as_u16()).collect();
        let mut sorted = nums.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(nums, sorted, "codes must be unique and listed in order");
        for c in ErrorCode::ALL {
            let status = c.http_status();
            assert!((400..600).contains(&status), "{c:?}");
            assert!(matches!(c.as_u16() / 1000, 1 | 2 | 3 | 5), "{c:?}");
        }
    }

    #[test]
    fn documented_table_matches_the_code() {
        let doc = include_str!("../../docs/error-codes.md");
        for c in ErrorCode::ALL {
            let name = serde_json::to_string(c).unwrap();
            let row = format!(
                "| {} | {} | {} |",
                c.as_u16(),
                name.trim_matches('"'),
                c.http_status()
            );
            assert!(
                doc.contains(&row),
                "docs/error-codes.md lacks the row {row}"
            );
        }
    }
}
