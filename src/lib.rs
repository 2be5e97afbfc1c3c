//! exchange: the composition root.
//!
//! Wires the roles together on the embedded default: one journal file and one matcher task per
//! shard under the data directory, in-process delivery of outcomes, and the gateway's HTTP API
//! in front. `cargo run --release` runs it; nothing else (Redis, MongoDB, PostgreSQL) is needed.
//!
//! Every part it wires lives in the crate whose job it is: the accounts stores in
//! `exchange-accounts`, the shards' runtime and logs in `exchange-shard`, the `Exchange` over
//! them, the delivery of outcomes and the in-process feed in `exchange-gateway`, the workers and
//! their host in `exchange-functions`, the signing client in `exchange-client`.
//!
//! # Layout
//! - [`config`]: the typed configuration (flags and `EXCHANGE_*` variables).
//! - [`cluster`]: the cluster roles, `exchange shard` and `exchange gateway`, on Redis Cluster.
//! - [`admin`]: the first admin key and the `exchange admin` commands.
//! - [`telemetry`]: logging set up in one place.
//! - [`affinity`]: `--pin-workers`, each request worker on a CPU of its own.
//! - [`start`]: brings everything up and returns a handle; shutting down stops accepting,
//!   drains every shard's log, writes final snapshots and returns.

pub mod admin;
pub mod affinity;
pub mod cluster;
pub mod config;
pub mod telemetry;

use anyhow::{Context, bail};
use axum::serve::ListenerExt;
use config::Config;
use exchange_accounts::EmbeddedAccounts;
use exchange_core::{ShardId, SymbolTable};
use exchange_functions::host::{self, Background};
use exchange_functions::worker::Checkpoints;
use exchange_gateway::dashboard::DemoCredentials;
use exchange_gateway::feed::Bus;
use exchange_gateway::shards::{Delivery, Pending, PendingSink, Reader, ShardHandle, Shards};
use exchange_gateway::{AppState, app};
use exchange_shard::{
    CommandLog, EventJournal, Journal, JournalConfig, Shard, ShardConfig, SnapshotStore,
};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long shutdown waits for the settle and rollup workers to catch up.
pub(crate) const WORKER_DRAIN: Duration = Duration::from_secs(10);

/// Updates each feed channel holds for its slowest receiver (a gateway's per-symbol task).
pub(crate) const FEED_CAPACITY: usize = 4_096;

/// A running process: where it listens, and how to stop it.
pub struct Service {
    /// Where its HTTP API listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Service {
    /// Shuts down gracefully: stop accepting, finish requests, drain, flush.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.context("the exchange task panicked")?
    }

    /// Waits until it stops (after the shutdown signal it was started with).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("the exchange task panicked")?
    }
}

/// A running exchange.
pub struct Running {
    /// Where the REST API listens.
    pub addr: SocketAddr,
    /// The accounts store (for invariant checks in tests).
    pub accounts: Arc<EmbeddedAccounts>,
    /// The feeds (for tests: who listens to what).
    pub bus: Arc<Bus>,
    /// The demo key the dashboard's "try the demo account" button gets (`--demo`).
    pub demo: Arc<OnceLock<DemoCredentials>>,
    service: Service,
}

impl Running {
    /// Shuts down gracefully: stop accepting, finish requests, drain the logs, final snapshots.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.service.shutdown().await
    }

    /// Waits until the exchange stops (after the shutdown signal given to [`start`]).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.service.wait().await
    }
}

/// Runs `work` (the process's own shutdown, after HTTP has stopped) as a [`Service`]: HTTP
/// is served on `config.listen` until `signal` resolves or [`Service::shutdown`] is called,
/// then every request in flight is answered, then `after` runs.
pub(crate) async fn serve<F>(
    config: &Config,
    router: axum::Router,
    signal: impl Future<Output = ()> + Send + 'static,
    after: F,
) -> anyhow::Result<Service>
where
    F: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    // Each connection's kernel send buffer is bounded, so a client that stops reading holds
    // little of the server's memory before the send timeout cuts it off; no delayed ACK games.
    let send_buffer = config.send_buffer_kb.max(4) as usize * 1024;
    let listener = listener.tap_io(move |tcp| {
        let _ = tcp.set_nodelay(true);
        let _ = socket2::SockRef::from(&*tcp).set_send_buffer_size(send_buffer);
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async move {
            tokio::select! {
                _ = signal => {}
                _ = stopped => {}
            }
            tracing::info!("shutting down: no new requests");
        };
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP")?;
        after.await?;
        tracing::info!("stopped cleanly");
        Ok(())
    });
    Ok(Service {
        addr,
        stop: Some(stop),
        task,
    })
}

/// Renders the metrics for Prometheus every few seconds (histogram upkeep).
pub(crate) fn metrics_upkeep() -> JoinHandle<()> {
    let metrics = exchange_gateway::metrics_handle();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            metrics.run_upkeep();
        }
    })
}

/// The symbols file's contents: the configured one, or the shipped default.
pub(crate) fn load_symbols(config: &Config) -> anyhow::Result<SymbolTable> {
    match &config.symbols_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading symbols file {}", path.display()))?;
            SymbolTable::from_toml(&text)
                .with_context(|| format!("loading symbols file {}", path.display()))
        }
        None => Ok(SymbolTable::default_symbols()),
    }
}

/// Refuses a shard count other than the `recorded` one of `what` (a data directory, a
/// cluster): symbols are routed by shard count, so it cannot change under existing logs.
pub(crate) fn check_shard_count(
    what: &str,
    recorded: Option<u64>,
    asked: u32,
) -> anyhow::Result<()> {
    if recorded != Some(asked as u64) {
        bail!(
            "{what} was created with {} shards, and {asked} were asked for; every process needs the same --shards (or start {what} anew)",
            recorded.map_or("an unknown number of".into(), |n| n.to_string())
        );
    }
    Ok(())
}

/// Records the shard count in the data directory, or checks it against the recorded one.
fn check_layout(data_dir: &Path, shards: u32) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let path = data_dir.join("layout.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let layout: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("reading {}", path.display()))?;
            check_shard_count(
                &data_dir.display().to_string(),
                layout["shards"].as_u64(),
                shards,
            )?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&path, serde_json::json!({ "shards": shards }).to_string())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    Ok(())
}

/// How each shard's command journal writes (and its event journal, but for the syncs).
pub(crate) fn journal_config(config: &Config) -> JournalConfig {
    JournalConfig {
        fsync: config.fsync,
        segment_bytes: config.journal_segment_mb.max(1) << 20,
        ..JournalConfig::default()
    }
}

/// Opens shard `id`'s event journal and snapshots under `dir` and recovers the shard over
/// `log` (the embedded journal or the cluster's stream) and `sink`.
pub(crate) async fn recover_shard(
    config: &Config,
    symbols: &SymbolTable,
    id: ShardId,
    dir: &Path,
    log: Arc<dyn CommandLog>,
    sink: Arc<dyn exchange_shard::EventSink>,
) -> anyhow::Result<(Shard, exchange_shard::Recovery, Arc<EventJournal>)> {
    // The event journal is synced before each snapshot, not with every batch (its records are
    // written again from the replay after a crash). Its writer gathers each millisecond's
    // records rather than being woken by the shard for every batch.
    let events_config = JournalConfig {
        sync_each_batch: false,
        poll_every: Some(std::time::Duration::from_millis(1)),
        ..journal_config(config)
    };
    let (events, _) = EventJournal::open(&dir.join("events"), events_config)
        .with_context(|| format!("opening the event journal of {id}"))?;
    let events = Arc::new(events);
    let snapshots = SnapshotStore::open(&dir.join("snapshots"))
        .with_context(|| format!("opening the snapshots of {id}"))?;
    let shard_config = ShardConfig {
        shard: id,
        shards: config.shards,
        snapshot_every: config.snapshot_every.max(1),
        batch: 1024,
        retain_finished: config.retain_finished,
    };
    let (shard, recovery) = Shard::recover(
        shard_config,
        symbols,
        log,
        sink,
        snapshots,
        Some(events.clone()),
    )
    .await
    .with_context(|| format!("recovering {id}"))?;
    Ok((shard, recovery, events))
}

/// Brings the exchange up: recovers every shard, starts the matchers and the HTTP server.
/// `signal` resolving starts a graceful shutdown (as does [`Running::shutdown`]).
pub async fn start(
    config: Config,
    signal: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Running> {
    let symbols = Arc::new(load_symbols(&config)?);
    check_layout(&config.data_dir, config.checked_shards()?)?;
    let upkeep = metrics_upkeep();

    let master = exchange_accounts::master_key(&config.data_dir, config.master_key.as_deref())?;
    let accounts = Arc::new(EmbeddedAccounts::open(&config.data_dir, master)?);
    admin::bootstrap(&accounts, &config.data_dir).await?;
    let pending = Arc::new(Pending::default());
    let bus = Arc::new(Bus::new(&symbols, FEED_CAPACITY));
    let sink = Arc::new(PendingSink {
        delivery: Delivery {
            pending: Arc::clone(&pending),
            bus: Arc::clone(&bus),
        },
        accounts: Arc::clone(&accounts),
    });
    let mut handles = Vec::new();
    let mut journals = Vec::new();
    let mut event_journals = Vec::new();
    let mut matchers = Vec::new();
    let journal_config = journal_config(&config);
    for n in 0..config.shards {
        let id = ShardId(n);
        let dir = config.data_dir.join(format!("shard-{n}"));
        let (journal, report) = Journal::open(&dir.join("journal.log"), journal_config)
            .with_context(|| format!("opening the journal of {id}"))?;
        if let Some(reason) = &report.reason {
            tracing::warn!(shard = %id, truncated_bytes = report.truncated_bytes, %reason, "recovered from a torn journal tail");
        }
        let journal: Arc<Journal> = Arc::new(journal);
        let log: Arc<dyn CommandLog> = journal.clone();
        let (shard, recovery, events) =
            recover_shard(&config, &symbols, id, &dir, Arc::clone(&log), sink.clone()).await?;
        tracing::info!(shard = %id, records = report.records, snapshot_offset = recovery.snapshot_offset, replayed = recovery.replayed, "shard ready");
        // The live balances are the transfers plus what every recovered shard changed.
        accounts.add_shard(&shard.state().read());
        handles.push(ShardHandle {
            id,
            log,
            reader: Reader::Local(shard.state()),
        });
        journals.push(journal);
        event_journals.push((id, events));
        matchers.push(tokio::spawn(shard.run()));
    }

    let background = Background::start()?;
    let stores = host::open_stores_on(&background, &config.stores()).await?;
    let checkpoints = Arc::new(
        Checkpoints::open(&config.data_dir.join("consumers"))
            .context("opening the workers' checkpoints")?,
    );
    let workers = host::start_workers(
        background,
        &stores,
        &event_journals,
        Some(Arc::clone(&accounts)),
        Arc::clone(&symbols),
        checkpoints,
    )?;

    let timeout = Duration::from_millis(config.request_timeout_ms);
    let exchange = Arc::new(Shards::new(Arc::clone(&symbols), handles, pending, timeout));
    let state = AppState::new(
        exchange,
        accounts.clone(),
        bus.clone(),
        config.rate_limits(),
        config.ws_config(),
    )
    .with_history(stores.rollup.clone());
    let demo = Arc::clone(&state.demo);
    let router = app(state);
    let after = async move {
        // Every request has been answered; close the logs so the matchers drain and stop.
        // (Closing waits for the journal's writer thread: off the async workers.)
        tokio::task::spawn_blocking(move || journals.iter().for_each(|j| j.close()))
            .await
            .context("closing the journals")?;
        for matcher in matchers {
            matcher
                .await
                .context("a shard task panicked")?
                .context("a shard failed")?;
        }
        // The shards wrote their last events; the workers settle them and stop.
        tokio::task::spawn_blocking(move || event_journals.iter().for_each(|(_, j)| j.close()))
            .await
            .context("closing the event journals")?;
        workers.drain(WORKER_DRAIN).await?;
        upkeep.abort();
        Ok(())
    };
    let service = serve(&config, router, signal, after).await?;
    Ok(Running {
        addr: service.addr,
        accounts,
        bus,
        demo,
        service,
    })
}

/// `--demo`: seeds the demo accounts with the admin key (or finds them in the data directory),
/// offers the trader's key to the dashboard, prints it, and starts the bots, which stop when
/// `stop` turns true.
pub async fn start_demo(
    running: &Running,
    data_dir: &Path,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<exchange_demo::Bots> {
    let mut addr = running.addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let admin = exchange_client::read_credentials(&data_dir.join(exchange_client::KEY_FILE))?;
    let (accounts, bots) = exchange_demo::start(&format!("http://{addr}"), admin, data_dir, stop)
        .await
        .context("starting the demo")?;
    let trader = &accounts.trader;
    let _ = running.demo.set(DemoCredentials {
        key: trader.key_id.clone(),
        secret: trader.secret.clone(),
    });
    println!(
        "demo: bots are trading; open http://{addr}/ and press \"Try the demo account\", or sign in with key {} and secret {} (account {})",
        trader.key_id, trader.secret, trader.account
    );
    Ok(bots)
}
