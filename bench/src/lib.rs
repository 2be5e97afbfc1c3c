//! exchange-bench: the load generator behind the `loadgen` binary.
//!
//! [`run`] places orders on a running exchange over HTTP/1.1 keep-alive from many concurrent
//! clients and measures orders per second and latency percentiles (HDR histogram).
//!
//! Closed loop (the default): each client sends its next order as soon as the previous one is
//! answered, so the figure is the exchange's capacity at that concurrency. Open loop (`rate`):
//! orders are due at a fixed offered rate, and latency is measured from when each order was
//! due, not when it was sent, so a slow answer counts against every order it delayed (no
//! coordinated omission, as wrk2 measures). Every order is a limit order near a mid on
//! several symbols from many accounts, so orders rest, cross and trade.
//!
//! Before the load, `accounts` accounts are created with the admin key, funded and given a
//! trading key each; every order is signed by its account's key, as any API client signs.
//!
//! With `verify`, every acknowledged order is read back afterwards and must match what was
//! sent and what was acknowledged: nothing acknowledged may be lost or changed.
//!
//! # Layout
//! [`options`] (what to run), [`workload`] (the orders), [`setup`] (the traders), [`transport`]
//! (REST or WebSocket order entry, market-data subscribers), [`run`] (the clients, the timing,
//! the verification), [`report`] (the summary); [`http1`] is the bare HTTP/1.1 client and
//! [`fanout`] the WebSocket fan-out benchmark.

pub mod fanout;
pub mod http1;
mod options;
mod report;
mod run;
mod setup;
mod transport;
mod workload;

pub use options::{Options, Workload};
use report::*;
pub use report::{Conservation, Latency, Summary, Verification};
pub use run::run;
use setup::*;
use transport::*;
use workload::*;

use anyhow::{Context, bail};
use exchange_client::{Client as Signer, Credentials};
use hdrhistogram::Histogram;
use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::*;

    fn ack(status: &str, filled: &str) -> Ack {
        Ack {
            trader: 0,
            request: json!({"symbol": "BTC-USD", "side": "BUY", "type": "LIMIT", "price": "65000.00", "quantity": "0.0100"}),
            response: json!({"order_id": "1", "status": status, "filled_quantity": filled}),
        }
    }

    fn read(status: &str, filled: &str) -> Value {
        json!({"order_id": "1", "account": "7", "symbol": "BTC-USD", "side": "BUY", "price": "65000.00", "quantity": "0.01000", "status": status, "filled_quantity": filled})
    }

    #[test]
    fn only_zero_differences_count_as_conserved() {
        assert!(!nonzero("0.0000000"));
        assert!(!nonzero("-0.00"));
        assert!(nonzero("-0.0000001"));
        assert!(nonzero("10.0"));
    }

    #[test]
    fn matching_reads_pass_at_any_scale() {
        assert_eq!(
            mismatch(&ack("NEW", "0.00000"), 7, &read("NEW", "0.00000")),
            None
        );
        assert_eq!(
            mismatch(&ack("NEW", "0.00000"), 7, &read("FILLED", "0.01000")),
            None,
            "later fills are fine"
        );
        assert_eq!(
            mismatch(&ack("FILLED", "0.01000"), 7, &read("FILLED", "0.01000")),
            None
        );
    }

    #[test]
    fn each_kind_of_divergence_is_caught() {
        assert!(
            mismatch(
                &ack("PARTIALLY_FILLED", "0.00500"),
                7,
                &read("NEW", "0.00000")
            )
            .unwrap()
            .contains("lost fills")
        );
        assert!(mismatch(&ack("FILLED", "0.01000"), 7, &read("CANCELLED", "0.01000")).is_some());
        let mut other = read("NEW", "0.00000");
        other["price"] = json!("65000.01");
        assert!(
            mismatch(&ack("NEW", "0.00000"), 7, &other)
                .unwrap()
                .contains("price")
        );
        let mut other = read("NEW", "0.00000");
        other["account"] = json!("8");
        assert!(
            mismatch(&ack("NEW", "0.00000"), 7, &other)
                .unwrap()
                .contains("account")
        );
    }
}
