//! exchange-demo: a market to look at. `exchange --demo` seeds demo accounts (through the
//! admin API, with the admin key) and runs bots that trade through the public, signed API like
//! any client: a market maker per symbol quoting both sides around a wandering price, and
//! takers sending market orders. It also makes a funded demo trader whose key the dashboard's
//! "try the demo account" button uses.
//!
//! The accounts and keys are kept in `demo.json` in the data directory, so a restart trades on
//! with the same accounts instead of minting money again.

mod bots;
mod seed;

pub use bots::Bots;
pub use seed::{DemoAccounts, seed};

use exchange_client::ClientError;

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{what} was refused ({status}): {body}")]
    Refused {
        what: String,
        status: u16,
        body: serde_json::Value,
    },
    #[error("the exchange answered {what} with an unexpected body: {body}")]
    Unexpected {
        what: String,
        body: serde_json::Value,
    },
    #[error("{path}: {source}")]
    State {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// A symbol's rules, as `GET /symbols` gives them.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Symbol {
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub tick_size: rust_decimal::Decimal,
    pub lot_size: rust_decimal::Decimal,
    pub min_quantity: rust_decimal::Decimal,
    pub min_notional: rust_decimal::Decimal,
}

use exchange_client::{Client, Credentials};
use std::path::Path;
use tokio::sync::watch;

/// Seeds the demo accounts (or finds them in `data_dir`) with the admin key, and starts the
/// bots against the exchange at `base`. They stop when `stop` turns true.
pub async fn start(
    base: &str,
    admin: Credentials,
    data_dir: &Path,
    stop: watch::Receiver<bool>,
) -> Result<(DemoAccounts, Bots), DemoError> {
    let admin = Client::new(base, admin);
    let body = seed::call(&admin, reqwest::Method::GET, "/symbols", None).await?;
    let symbols: Vec<Symbol> =
        serde_json::from_value(body.clone()).map_err(|_| DemoError::Unexpected {
            what: "/symbols".into(),
            body,
        })?;
    let accounts = seed(&admin, &symbols, data_dir).await?;
    let bots = Bots::start(base, &symbols, &accounts, stop).await?;
    Ok((accounts, bots))
}
