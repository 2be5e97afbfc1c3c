//! The `exchange` binary: parses the configuration and runs the exchange until Ctrl-C or
//! SIGTERM, then shuts down gracefully (stop accepting, drain, flush, exit 0).

use clap::Parser;

/// mimalloc: the server allocates per request, and glibc malloc showed at ~12% of its time.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use exchange::config::{Cli, Command};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let admin = matches!(cli.command, Some(Command::Admin(_)));
    if !admin {
        exchange::telemetry::init(&cli.config.log);
    }
    let workers = cli.config.worker_threads();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.worker_threads(workers).enable_all();
    if cli.config.pin_workers && !admin {
        exchange::affinity::pin_workers(&mut runtime, workers);
    }
    runtime.build()?.block_on(run(cli))
}

async fn run(Cli { config, command }: Cli) -> anyhow::Result<()> {
    if config.demo && command.is_some() {
        anyhow::bail!("--demo runs with the one-process exchange (no subcommand)");
    }
    if let Some(Command::Admin(args)) = command {
        return exchange::admin::run(&config, args).await;
    }
    // Tests and scripts read the "listening" line to find the port.
    match command {
        Some(Command::Gateway) => {
            let gateway = exchange::cluster::run_gateway(config, shutdown_signal()).await?;
            println!("gateway listening on http://{}", gateway.addr);
            gateway.wait().await
        }
        Some(Command::Shard(args)) => {
            let shard = exchange::cluster::run_shard(config, args.id, shutdown_signal()).await?;
            println!("shard {} listening on http://{}", args.id, shard.addr);
            shard.wait().await
        }
        _ => {
            let (demo, data_dir) = (config.demo, config.data_dir.clone());
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let signal = async move {
                shutdown_signal().await;
                let _ = stop.send(true);
            };
            let running = exchange::start(config, signal).await?;
            println!("exchange listening on http://{}", running.addr);
            let bots = if demo {
                Some(exchange::start_demo(&running, &data_dir, stopped).await?)
            } else {
                None
            };
            running.wait().await?;
            if let Some(bots) = bots {
                bots.wait().await;
            }
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
