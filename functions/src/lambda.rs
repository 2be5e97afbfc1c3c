//! The Lambda entry points: each function is a binary (`settle`, `rollup`) that runs
//! [`lambda_runtime`] over one of these handlers. A payload is a batch of stream records, as a
//! queue or stream trigger delivers it; the answer is what the batch wrote.
//!
//! Configuration comes from the environment: `EXCHANGE_MONGODB_URL` (and
//! `EXCHANGE_MONGODB_DATABASE`, default `exchange`) for settle, `EXCHANGE_DATABASE_URL` for
//! rollup.

use crate::{RollupStore, SettleStore, Written};
use exchange_core::stream::StreamRecord;
use lambda_runtime::{Error, LambdaEvent};
use serde::{Deserialize, Serialize};

/// A Lambda payload: a batch of records, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub records: Vec<StreamRecord>,
}

/// The settle function.
pub async fn settle(store: &dyn SettleStore, event: LambdaEvent<Batch>) -> Result<Written, Error> {
    let written = crate::settle(store, &event.payload.records).await?;
    tracing::info!(request = %event.context.request_id, records = event.payload.records.len(), ?written, "settled");
    Ok(written)
}

/// The rollup function.
pub async fn rollup(store: &dyn RollupStore, event: LambdaEvent<Batch>) -> Result<Written, Error> {
    let written = crate::rollup(store, &event.payload.records).await?;
    tracing::info!(request = %event.context.request_id, records = event.payload.records.len(), ?written, "rolled up");
    Ok(written)
}

/// An environment variable the function needs.
pub fn required(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| format!("{name} must be set").into())
}

/// Logs as JSON lines to stdout (CloudWatch), at `RUST_LOG` or `info`.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .without_time()
        .try_init();
}
