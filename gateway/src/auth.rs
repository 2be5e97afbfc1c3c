//! Signed requests and rate limits.
//!
//! # Signing
//! A private request carries its API key in the `X-API-KEY` header and, in the query string,
//! `timestamp` (milliseconds since the epoch), an optional `recvWindow` (milliseconds, default
//! 5,000, at most 60,000) and `signature`: the lowercase hex HMAC-SHA256, keyed with the key's
//! secret, of
//!
//! ```text
//! METHOD \n PATH \n QUERY \n BODY
//! ```
//!
//! where QUERY is the query string exactly as sent with the `signature` parameter taken out and
//! BODY the raw body (empty for none). The request is refused (401) if the key is unknown or
//! disabled, the timestamp is more than one second ahead of the server or older than the
//! window, the signature does not match, or the same signature was already used. Every query
//! parameter is signed; a client that may send byte-identical requests within one millisecond
//! adds a `nonce` parameter (any value) to tell them apart.
//!
//! # Rate limits
//! Token buckets per client IP and per API key; past either, a 429 with `Retry-After`.

use crate::error::ApiError;
use crate::{AppState, MAX_BODY_BYTES, now};
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use exchange_accounts::{Permission, Permissions};
use exchange_core::{AccountId, ErrorCode, Timestamp};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The signing scheme is defined once, in the client crate; the gateway checks it.
pub use exchange_client::signing::{KEY_HEADER, payload, sign};
/// Default and largest `recvWindow`, in milliseconds.
pub const DEFAULT_RECV_WINDOW_MS: u64 = 5_000;
pub const MAX_RECV_WINDOW_MS: u64 = 60_000;
/// How far a timestamp may be ahead of the server's clock, in milliseconds.
const CLOCK_SKEW_MS: u64 = 1_000;

/// Who is calling: set on a request once its signature checks out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub account: AccountId,
    pub key_id: String,
    pub permissions: Permissions,
}

impl Caller {
    /// Refuses (403) unless the key holds `p`.
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if self.permissions.allows(p) {
            Ok(())
        } else {
            let name = match p {
                Permission::Read => "read",
                Permission::Trade => "trade",
                Permission::Admin => "admin",
            };
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("this API key lacks the {name} permission"),
            ))
        }
    }
}

fn unauthenticated(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Unauthenticated, message)
}

/// The signing parameters of a query string, and the string without `signature`.
struct Signed {
    timestamp: u64,
    recv_window: u64,
    signature: Vec<u8>,
    unsigned_query: String,
}

fn signed_params(query: &str) -> Result<Signed, ApiError> {
    let mut timestamp = None;
    let mut recv_window = None;
    let mut signature = None;
    let mut rest: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "signature" => {
                signature = Some(v);
                continue;
            }
            "timestamp" => timestamp = Some(v),
            "recvWindow" => recv_window = Some(v),
            _ => {}
        }
        rest.push(pair);
    }
    let number = |field: &str, v: &str| {
        v.parse::<u64>().map_err(|_| {
            ApiError::field(
                ErrorCode::Unauthenticated,
                field,
                "must be a whole number of milliseconds",
            )
        })
    };
    let timestamp = number(
        "timestamp",
        timestamp.ok_or_else(|| {
            ApiError::field(
                ErrorCode::Unauthenticated,
                "timestamp",
                "is required on a signed request (milliseconds since the epoch)",
            )
        })?,
    )?;
    let recv_window = match recv_window {
        None => DEFAULT_RECV_WINDOW_MS,
        Some(v) => number("recvWindow", v)?,
    };
    if recv_window == 0 || recv_window > MAX_RECV_WINDOW_MS {
        return Err(ApiError::field(
            ErrorCode::Unauthenticated,
            "recvWindow",
            format!("must be between 1 and {MAX_RECV_WINDOW_MS} milliseconds"),
        ));
    }
    let signature = signature.ok_or_else(|| {
        ApiError::field(
            ErrorCode::Unauthenticated,
            "signature",
            "is required on a signed request",
        )
    })?;
    let signature = hex::decode(signature).map_err(|_| {
        ApiError::field(
            ErrorCode::Unauthenticated,
            "signature",
            "must be the hex HMAC-SHA256 of the request",
        )
    })?;
    Ok(Signed {
        timestamp,
        recv_window,
        signature,
        unsigned_query: rest.join("&"),
    })
}

/// Middleware for private routes: checks the signature and sets the [`Caller`].
pub async fn authenticate(State(app): State<AppState>, req: Request, next: Next) -> Response {
    match verify(&app, req).await {
        Ok(req) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn verify(app: &AppState, req: Request) -> Result<Request, ApiError> {
    let key_id = req
        .headers()
        .get(KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| {
            unauthenticated(
                "this endpoint needs a signed request: an X-API-KEY header and timestamp and signature parameters",
            )
        })?;
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        )
    })?;
    let caller = check_signature(
        app,
        &key_id,
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query().unwrap_or(""),
        &bytes,
    )
    .await?;
    let mut req = Request::from_parts(parts, Body::from(bytes));
    req.extensions_mut().insert(caller);
    Ok(req)
}

/// Checks a signed request (or a WebSocket `auth` message, signed as `GET /ws` with its query):
/// the key, the timestamp window, the signature, and that the signature is new.
pub async fn check_signature(
    app: &AppState,
    key_id: &str,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
) -> Result<Caller, ApiError> {
    let signed = signed_params(query)?;
    let key = app
        .accounts
        .key(key_id)
        .await
        .ok_or_else(|| unauthenticated("unknown API key"))?;
    if !key.enabled {
        return Err(unauthenticated("this API key is disabled"));
    }
    let now_ms = now().0 / 1_000_000;
    if signed.timestamp > now_ms + CLOCK_SKEW_MS {
        return Err(unauthenticated(format!(
            "timestamp {} is ahead of the server's clock ({now_ms})",
            signed.timestamp
        )));
    }
    if now_ms - signed.timestamp.min(now_ms) > signed.recv_window {
        return Err(unauthenticated(format!(
            "timestamp {} is outside the receive window of {} ms (server time {now_ms})",
            signed.timestamp, signed.recv_window
        )));
    }
    let payload = payload(method, path, &signed.unsigned_query, body);
    // verify compares in constant time.
    if !exchange_client::signing::verify(&key.secret.0, &payload, &signed.signature) {
        return Err(unauthenticated(
            "signature does not match the request (see the README: METHOD\\nPATH\\nQUERY\\nBODY)",
        ));
    }
    let until = Timestamp((signed.timestamp + signed.recv_window + CLOCK_SKEW_MS) * 1_000_000);
    if !app
        .accounts
        .first_use(&signed.signature, until, now())
        .await
    {
        return Err(unauthenticated(
            "this signature was already used: sign each request anew",
        ));
    }
    Ok(Caller {
        account: key.account,
        key_id: key.key_id,
        permissions: key.permissions,
    })
}

/// A rate: `per_second` tokens a second, at most `burst` at once. Zero `per_second` is no limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

/// The gateway's rate limits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimits {
    pub per_ip: Rate,
    pub per_key: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_ip: Rate {
                per_second: 50_000,
                burst: 100_000,
            },
            per_key: Rate {
                per_second: 5_000,
                burst: 10_000,
            },
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key.
struct Buckets<K> {
    rate: Rate,
    map: Mutex<HashMap<K, Bucket>>,
}

/// Buckets kept before idle ones are swept.
const MAX_BUCKETS: usize = 100_000;

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(rate: Rate) -> Self {
        Self {
            rate,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token, or says how long until one is there.
    fn take(&self, key: &K, now: Instant) -> Result<(), Duration> {
        if self.rate.per_second == 0 {
            return Ok(());
        }
        let per_second = f64::from(self.rate.per_second);
        let burst = f64::from(self.rate.burst.max(1));
        let mut map = self.map.lock();
        if map.len() >= MAX_BUCKETS {
            // A bucket idle long enough to be full again says nothing: drop it.
            let full_after = Duration::from_secs_f64(burst / per_second);
            map.retain(|_, b| now.duration_since(b.at) < full_after);
        }
        let b = map.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * per_second).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / per_second))
        }
    }
}

/// The per-IP and per-key limiters.
pub struct RateLimiter {
    per_ip: Buckets<IpAddr>,
    per_key: Buckets<String>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            per_ip: Buckets::new(limits.per_ip),
            per_key: Buckets::new(limits.per_key),
        }
    }
}

/// Takes one token for the request from the client's IP bucket and, if it names an API key,
/// from that key's bucket; the 429 to answer instead when either is empty.
pub fn rate_limit(app: &AppState, req: &Request) -> Option<Response> {
    let now = Instant::now();
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let key = req.headers().get(KEY_HEADER).and_then(|v| v.to_str().ok());
    let limited = ip
        .map(|ip| {
            app.limiter
                .per_ip
                .take(&ip, now)
                .map_err(|d| (d, "this IP address"))
        })
        .transpose()
        .and_then(|_| {
            key.map(|k| {
                app.limiter
                    .per_key
                    .take(&k.to_owned(), now)
                    .map_err(|d| (d, "this API key"))
            })
            .transpose()
        });
    match limited {
        Ok(_) => None,
        Err((wait, who)) => {
            let secs = (wait.as_secs_f64().ceil() as u64).max(1);
            let mut resp = ApiError::new(
                ErrorCode::RateLimited,
                format!("too many requests from {who}; retry after {secs} s"),
            )
            .into_response();
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&secs.to_string()).expect("digits are a valid header"),
            );
            Some(resp)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_params_are_parsed_and_signature_taken_out() {
        let s =
            signed_params("symbol=BTC-USD&timestamp=1700000000000&signature=ab01&recvWindow=100")
                .unwrap();
        assert_eq!(s.timestamp, 1_700_000_000_000);
        assert_eq!(s.recv_window, 100);
        assert_eq!(s.signature, vec![0xab, 0x01]);
        assert_eq!(
            s.unsigned_query,
            "symbol=BTC-USD&timestamp=1700000000000&recvWindow=100"
        );
        for bad in [
            "signature=ab",
            "timestamp=x&signature=ab",
            "timestamp=1&recvWindow=60001&signature=ab",
            "timestamp=1&signature=zz",
            "timestamp=1",
        ] {
            assert!(signed_params(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn known_signature() {
        // echo -n "key" | openssl dgst -sha256 -hmac ... : RFC 4231-style check against a
        // value computed independently with openssl.
        assert_eq!(
            sign(b"key", b"The quick brown fox jumps over the lazy dog"),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn buckets_refill_at_their_rate() {
        let b = Buckets::new(Rate {
            per_second: 10,
            burst: 2,
        });
        let t = Instant::now();
        assert!(b.take(&1, t).is_ok());
        assert!(b.take(&1, t).is_ok());
        let wait = b.take(&1, t).unwrap_err();
        assert!(wait <= Duration::from_millis(100) && wait > Duration::ZERO);
        assert!(b.take(&2, t).is_ok(), "buckets are per key");
        assert!(b.take(&1, t + Duration::from_millis(100)).is_ok());
    }
}
