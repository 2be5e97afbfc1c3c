//! Secrets: the master key, and the API keys' secrets derived from it (never stored).
//!
//! A key's secret is HMAC-SHA256 of the key id and a random salt under the master key
//! (`master.key` in the data directory, mode 0600, or `EXCHANGE_MASTER_KEY`); the stores keep
//! key ids, salts and permissions only. Both stores derive it the same way, so a key made by
//! one process is checked by any other holding the same master key.

use crate::Secret;
use std::path::{Path, PathBuf};

/// Why the master key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("master key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("master key: {0}")]
    Invalid(String),
}

/// Loads the master key: the hex in `configured`, or `master.key` in `dir` (created, mode
/// 0600, on first start).
pub fn master_key(dir: &Path, configured: Option<&str>) -> Result<[u8; 32], MasterKeyError> {
    let parse = |hex_text: &str| {
        let bytes = hex::decode(hex_text.trim())
            .map_err(|e| MasterKeyError::Invalid(format!("not hex: {e}")))?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| MasterKeyError::Invalid("must be 32 bytes (64 hex digits)".into()))
    };
    if let Some(text) = configured {
        return parse(text);
    }
    let path = dir.join("master.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = random();
            write_private(&path, hex::encode(key).as_bytes())
                .map_err(|source| MasterKeyError::Io { path, source })?;
            Ok(key)
        }
        Err(source) => Err(MasterKeyError::Io { path, source }),
    }
}

pub use exchange_client::write_private;

pub fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the OS random source is available");
    b
}

pub fn derive_secret(master: &[u8; 32], key_id: &str, salt: &[u8; 16]) -> Secret {
    let payload = format!("exchange-api-secret/v1\n{key_id}\n{}", hex::encode(salt));
    Secret(exchange_client::signing::sign(master, payload.as_bytes()).into_bytes())
}
