//! exchange-client: the API's request signing and a signing HTTP client.
//!
//! The gateway checks signatures with [`signing`] and the accounts store derives secrets with
//! it, so the scheme is defined once; they take this crate without its `http` feature. The
//! [`Client`] (feature `http`, on by default) signs every request with one API key, exactly as
//! any API client would: `exchange admin`, the load generators and the tests use it, and none of
//! them links the server to do so.
//!
//! # Layout
//! - [`signing`]: `sign`, `payload` and the key header.
//! - [`Credentials`], [`read_credentials`]: an API key and its secret, as key files hold them.
//! - [`Client`]: the signing HTTP client.
//! - [`cpus`]: CPU affinity, so a client on the exchange's machine keeps off its pinned CPUs.
//! - [`write_private`]: key files, readable by their owner only.

pub mod cpus;
pub mod signing;

#[cfg(feature = "http")]
mod http;

#[cfg(feature = "http")]
pub use http::{Client, ClientError, Credentials, KEY_FILE, read_credentials};

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

/// Writes a file only its owner can read, durably.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
