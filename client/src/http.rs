//! The signing HTTP client and the key file it reads.

use crate::signing::{KEY_HEADER, payload, sign};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The admin key file's name in the data directory.
pub const KEY_FILE: &str = "admin-key.json";

/// An API key and its secret, as the admin key file holds them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Credentials {
    pub account: u64,
    pub key_id: String,
    pub secret: String,
}

/// Why a key file could not be read or a request not made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "reading {path} (the exchange writes it to its data directory on first start): {source}"
    )]
    ReadKeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    ParseKeyFile {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("HTTP request failed: {0}")]
    Http(#[from] reqwest::Error),
}

/// Reads a key file.
pub fn read_credentials(path: &Path) -> Result<Credentials, ClientError> {
    let text = std::fs::read_to_string(path).map_err(|source| ClientError::ReadKeyFile {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ClientError::ParseKeyFile {
        path: path.to_owned(),
        source,
    })
}

/// An HTTP client that signs every request with one API key.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    creds: Credentials,
}

impl Client {
    /// A client for the exchange at `base` (for example `http://127.0.0.1:8080`).
    pub fn new(base: impl Into<String>, creds: Credentials) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("a plain HTTP client builds");
        Self::with_http(http, base, creds)
    }

    /// The same over a given HTTP client (for example one that speaks HTTP/2).
    pub fn with_http(http: reqwest::Client, base: impl Into<String>, creds: Credentials) -> Self {
        Self {
            http,
            base: base.into().trim_end_matches('/').to_owned(),
            creds,
        }
    }

    /// The same key against another URL (after a restart on a new port).
    pub fn with_base(self, base: impl Into<String>) -> Self {
        Self::new(base, self.creds)
    }

    /// Another key over the same connections.
    pub fn with_key(&self, creds: Credentials) -> Self {
        Self {
            http: self.http.clone(),
            base: self.base.clone(),
            creds,
        }
    }

    /// The key and its secret.
    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }

    /// The key's id.
    pub fn key_id(&self) -> &str {
        &self.creds.key_id
    }

    /// The key's account.
    pub fn account(&self) -> u64 {
        self.creds.account
    }

    /// Sends a signed request with a JSON body (or none); `path` may carry a query string.
    /// Returns status and JSON body (`null` when empty).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), ClientError> {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let ct = body.map(|_| "application/json");
        self.send_raw(method, path, bytes, ct).await
    }

    /// `path` (which may carry a query string) with the query a request of `method` with
    /// `body` is signed with: a timestamp, a nonce and the signature.
    pub fn signed_target(&self, method: &str, path: &str, body: &[u8]) -> String {
        static NONCE: AtomicU64 = AtomicU64::new(0);
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        // The nonce tells apart identical requests signed in the same millisecond, which the
        // exchange would otherwise refuse as a replay.
        let nonce = NONCE.fetch_add(1, Ordering::Relaxed);
        let query = if query.is_empty() {
            format!("timestamp={ms}&nonce={nonce}")
        } else {
            format!("{query}&timestamp={ms}&nonce={nonce}")
        };
        let signature = sign(
            self.creds.secret.as_bytes(),
            &payload(method, path, &query, body),
        );
        format!("{path}?{query}&signature={signature}")
    }

    /// Sends a signed request with these body bytes and content type.
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
        content_type: Option<&str>,
    ) -> Result<(u16, Value), ClientError> {
        let url = format!(
            "{}{}",
            self.base,
            self.signed_target(method.as_str(), path, &body)
        );
        let mut req = self
            .http
            .request(method, url)
            .header(KEY_HEADER, &self.creds.key_id);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.body(body).send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, json))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client::new(
            "http://127.0.0.1:1/",
            Credentials {
                account: 7,
                key_id: "k".into(),
                secret: "s3cret".into(),
            },
        )
    }

    #[test]
    fn a_signed_target_carries_a_timestamp_a_nonce_and_the_signature_of_what_it_signs() {
        let target = client().signed_target("GET", "/orders?symbol=BTC-USD", b"");
        let (path, query) = target.split_once('?').unwrap();
        assert_eq!(path, "/orders");
        let (signed, signature) = query.rsplit_once("&signature=").unwrap();
        assert!(signed.starts_with("symbol=BTC-USD&timestamp="), "{signed}");
        assert!(signed.contains("&nonce="), "{signed}");
        assert_eq!(
            signature,
            sign(b"s3cret", &payload("GET", "/orders", signed, b""))
        );
        let again = client().signed_target("GET", "/orders?symbol=BTC-USD", b"");
        assert_ne!(again, target, "the nonce tells two requests apart");
    }

    #[test]
    fn a_missing_key_file_says_where_the_exchange_writes_it() {
        let err = read_credentials(Path::new("/nonexistent/admin-key.json")).unwrap_err();
        assert!(err.to_string().contains("on first start"), "{err}");
    }
}
