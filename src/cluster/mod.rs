//! The cluster roles: `exchange shard` and `exchange gateway`, each a process of its own, on
//! Redis Cluster.
//!
//! - A shard reads its command log (`{shard-N}:commands`, a Redis Stream any gateway appends
//!   to), applies it with the same runtime as the embedded exchange, applies each command's
//!   balance moves to the live balances in Redis and then publishes the outcomes on
//!   `{shard-N}:outcomes` (sharded Pub/Sub), answers reads on `{shard-N}:queries`, and keeps its
//!   snapshots, its event stream and its settle/rollup workers in its data directory.
//! - A gateway is stateless: accounts, keys and live balances are in Redis (`RedisAccounts`),
//!   commands go to the shards' logs, outcomes come back from every shard's channel (answering
//!   the waiting requests and feeding the WebSocket tier), and reads are asked of the shards.
//!
//! Every process of one cluster must be started with the same shard count and symbols; the
//! count is recorded in Redis by the first process and checked by the rest.

use crate::config::Config;
use crate::{
    FEED_CAPACITY, Service, WORKER_DRAIN, check_shard_count, load_symbols, metrics_upkeep,
    recover_shard, serve,
};
use anyhow::{Context, bail};
use axum::Json;
use axum::routing::get;
use exchange_accounts::{RedisAccounts, RedisBalances};
use exchange_core::ShardId;
use exchange_functions::host::{self, Background};
use exchange_functions::worker::Checkpoints;
use exchange_gateway::feed::Bus;
use exchange_gateway::shards::{Delivery, Pending, Reader, ShardHandle, Shards, relay};
use exchange_gateway::{AppState, app};
use exchange_shard::redis_log::record_shard_count;
use exchange_shard::redis_query::{self, QueryClient};
use exchange_shard::redis_sink::{RedisSink, subscribe_outcomes};
use exchange_shard::{CommandLog, RedisLog};
use std::sync::Arc;
use std::time::Duration;

/// Outcomes a gateway parks per shard for requests whose append has not returned yet.
const PARKED_IN_GATEWAY: u64 = 4_096;

/// Records the shard count in the cluster, or checks it against the recorded one.
async fn check_cluster_layout(urls: &[String], namespace: &str, shards: u32) -> anyhow::Result<()> {
    let recorded = record_shard_count(urls, namespace, shards)
        .await
        .context("recording the shard count in Redis Cluster")?;
    check_shard_count("this cluster", recorded, shards)
}

/// Runs shard `id` of a cluster until `signal`; then it stops taking commands, applies what
/// its log holds, writes a final snapshot and lets its workers drain.
pub async fn run_shard(
    config: Config,
    id: u32,
    signal: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Service> {
    config.checked_shards()?;
    if id >= config.shards {
        bail!(
            "shard id {id} is not below the shard count {}",
            config.shards
        );
    }
    let urls = config.redis_urls()?;
    let ns = config.redis_namespace.clone();
    let symbols = Arc::new(load_symbols(&config)?);
    check_cluster_layout(&urls, &ns, config.shards).await?;
    let shard = ShardId(id);
    let dir = config.data_dir.join(format!("shard-{id}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let upkeep = metrics_upkeep();

    let log = Arc::new(
        RedisLog::open(&urls, &ns, shard)
            .await
            .context("opening the command log in Redis")?,
    );
    let balances = Arc::new(RedisBalances::connect(&urls, &ns).await?);
    let sink = Arc::new(RedisSink::connect(&urls, &ns, Some(balances)).await?);
    let as_log: Arc<dyn CommandLog> = log.clone();
    let (matcher, recovery, events) =
        recover_shard(&config, &symbols, shard, &dir, as_log, sink).await?;
    tracing::info!(%shard, snapshot_offset = recovery.snapshot_offset, replayed = recovery.replayed, "shard ready");
    let state = matcher.state();
    let logged = log.clone();
    let queries = redis_query::serve(&urls, &ns, shard, state.clone(), move || {
        logged.last_offset()
    })
    .await
    .context("serving reads")?;
    let running = tokio::spawn(matcher.run());

    let background = Background::start()?;
    let stores = host::open_stores_on(&background, &config.stores()).await?;
    let checkpoints = Arc::new(
        Checkpoints::open(&dir.join("consumers")).context("opening the workers' checkpoints")?,
    );
    let workers = host::start_workers(
        background,
        &stores,
        &[(shard, events.clone())],
        None,
        Arc::clone(&symbols),
        checkpoints,
    )?;

    // The shard's own HTTP: health and metrics for probes and Prometheus.
    let health_log = log.clone();
    let router = axum::Router::new()
        .route(
            "/health",
            get(move || {
                let (logged, applied) = (health_log.last_offset(), state.read().applied());
                async move {
                    Json(serde_json::json!({
                        "status": "ok",
                        "shard": id,
                        "logged": logged.max(applied),
                        "applied": applied,
                    }))
                }
            }),
        )
        .route(
            "/metrics",
            get(|| async { exchange_gateway::metrics_handle().render() }),
        );
    let after = async move {
        // No more reads; the log closes and the matcher applies what it holds, then stops.
        queries.abort();
        log.close();
        running
            .await
            .context("the shard task panicked")?
            .context("the shard failed")?;
        tokio::task::spawn_blocking(move || events.close())
            .await
            .context("closing the event journal")?;
        workers.drain(WORKER_DRAIN).await?;
        upkeep.abort();
        Ok(())
    };
    serve(&config, router, signal, after).await
}

/// Runs one gateway of a cluster until `signal`; then it stops accepting and answers every
/// request in flight.
pub async fn run_gateway(
    config: Config,
    signal: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Service> {
    config.checked_shards()?;
    let urls = config.redis_urls()?;
    let ns = config.redis_namespace.clone();
    let symbols = Arc::new(load_symbols(&config)?);
    check_cluster_layout(&urls, &ns, config.shards).await?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let upkeep = metrics_upkeep();

    let master = exchange_accounts::master_key(&config.data_dir, config.master_key.as_deref())?;
    let accounts = Arc::new(RedisAccounts::connect(&urls, &ns, master).await?);
    if accounts.claim_bootstrap().await? {
        crate::admin::create_admin(accounts.as_ref(), &config.data_dir).await?;
    }
    let timeout = Duration::from_millis(config.request_timeout_ms);
    let queries = Arc::new(QueryClient::connect(&urls, &ns, timeout).await?);
    let ids: Vec<ShardId> = (0..config.shards).map(ShardId).collect();
    let mut handles = Vec::new();
    for &id in &ids {
        let log: Arc<dyn CommandLog> = Arc::new(
            RedisLog::open(&urls, &ns, id)
                .await
                .with_context(|| format!("opening the command log of {id}"))?,
        );
        handles.push(ShardHandle {
            id,
            log,
            reader: Reader::Remote(queries.clone()),
        });
    }
    let pending = Arc::new(Pending::with_window(PARKED_IN_GATEWAY));
    let bus = Arc::new(Bus::new(&symbols, FEED_CAPACITY));
    let outcomes = subscribe_outcomes(&urls, &ns, &ids)
        .await
        .context("subscribing to the shards' outcomes")?;
    let delivery = Delivery {
        pending: pending.clone(),
        bus: bus.clone(),
    };
    let relay = relay(outcomes, delivery, accounts.clone());
    let exchange = Arc::new(Shards::new(symbols.clone(), handles, pending, timeout));
    let mut state = AppState::new(
        exchange,
        accounts,
        bus,
        config.rate_limits(),
        config.ws_config(),
    );
    if let Some(history) = host::open_history(&config.stores()).await? {
        state = state.with_history(history);
    }
    let after = async move {
        relay.abort();
        upkeep.abort();
        Ok(())
    };
    serve(&config, app(state), signal, after).await
}
