//! The load generator against the embedded exchange, briefly: it must place orders, get only
//! 201s, write a well-formed summary, and read every acknowledged order back unchanged.

use exchange::config::Config;
use exchange_bench::{Options, Workload, run};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_verified_run_against_the_embedded_exchange() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut config = Config::for_tests(dir.path().to_owned());
    // Order entry over WebSocket at full speed: no per-connection message limit.
    config.ws_message_rate = 0;
    let exchange = exchange::start(config, std::future::pending())
        .await
        .expect("the exchange starts");
    let admin =
        exchange_client::read_credentials(&dir.path().join(exchange_client::KEY_FILE)).unwrap();
    // What every run below shares; each changes what it is about.
    let base = Options {
        urls: vec![format!("http://{}", exchange.addr)],
        clients: 8,
        duration: Duration::from_secs(2),
        warmup: Duration::from_millis(200),
        symbols: vec![
            ("BTC-USD".into(), 65_000),
            ("ETH-USD".into(), 3_000),
            ("SOL-USD".into(), 150),
        ],
        accounts: 20,
        admin,
        verify: true,
        rate: None,
        progress: false,
        http2: false,
        websocket: false,
        md_subscribers: 0,
        workload: Workload::Limit,
    };
    let summary = run(Options {
        md_subscribers: 2,
        ..base.clone()
    })
    .await
    .expect("the run completes");
    assert!(
        summary.accepted > 100,
        "only {} orders accepted",
        summary.accepted
    );
    assert_eq!(
        summary.outcomes.keys().collect::<Vec<_>>(),
        vec!["201"],
        "{:?}",
        summary.outcomes
    );
    assert!(summary.orders_per_s > 0.0);
    assert!(summary.latency_ms.p50 > 0.0 && summary.latency_ms.p50 <= summary.latency_ms.p99);
    let v = summary.verification.as_ref().expect("verification ran");
    assert!(
        v.checked >= summary.accepted,
        "checked {} of {} accepted",
        v.checked,
        summary.accepted
    );
    assert_eq!(v.mismatches, 0, "{:?}", v.examples);
    assert!(summary.conservation.assets_checked >= 3);
    assert_eq!(
        summary.conservation.differences,
        Vec::<String>::new(),
        "balances are conserved"
    );
    // The JSON summary carries what the README's table needs.
    let json: serde_json::Value = serde_json::to_value(&summary).expect("serialisable");
    for key in [
        "clients",
        "duration_s",
        "sent",
        "accepted",
        "orders_per_s",
        "latency_ms",
        "outcomes",
        "verification",
        "conservation",
    ] {
        assert!(json.get(key).is_some(), "summary lacks {key}");
    }
    for key in ["p50", "p90", "p99", "p999", "max"] {
        assert!(json["latency_ms"][key].is_number(), "latency lacks {key}");
    }
    assert!(summary.line().contains("orders/s"));
    // Two subscribers saw the trades on WebSocket, with latencies from acceptance.
    let md = summary.market_data_latency_ms.as_ref().expect("measured");
    assert!(summary.market_data_trades > 0 && md.p50 > 0.0 && md.p50 <= md.p99);

    // Open loop at a modest rate, over HTTP/2: about rate × duration orders, latency from when
    // each was due.
    let open = run(Options {
        clients: 4,
        symbols: vec![("BTC-USD".into(), 65_000)],
        accounts: 5,
        rate: Some(200.0),
        http2: true,
        ..base.clone()
    })
    .await
    .expect("the open-loop run completes");
    assert_eq!(
        (open.mode.as_str(), open.protocol.as_str()),
        ("open", "HTTP/2")
    );
    assert!(
        (300..=500).contains(&open.accepted),
        "{} accepted at 200/s for 2 s",
        open.accepted
    );
    assert_eq!(open.verification.as_ref().map(|v| v.mismatches), Some(0));

    // Orders over WebSocket, closed loop: answered, verified, conserved.
    let ws = run(Options {
        clients: 4,
        symbols: vec![("ETH-USD".into(), 3_000)],
        accounts: 4,
        websocket: true,
        ..base.clone()
    })
    .await
    .expect("the WebSocket run completes");
    assert_eq!(ws.protocol, "WebSocket");
    assert!(ws.accepted > 100, "{}", ws.line());
    assert_eq!(
        ws.outcomes.keys().collect::<Vec<_>>(),
        vec!["201"],
        "{:?}",
        ws.outcomes
    );
    assert_eq!(ws.verification.as_ref().map(|v| v.mismatches), Some(0));
    assert!(ws.conservation.differences.is_empty());

    // Market making with exchange-core's mix: amendments, quotes, IOC takers and cancels, all
    // taken (2xx or, for a quote filled meanwhile, 404), verified and conserved.
    let mm = run(Options {
        symbols: vec![("BTC-USD".into(), 65_000), ("SOL-USD".into(), 150)],
        accounts: 8,
        workload: Workload::EXCHANGE_CORE,
        ..base
    })
    .await
    .expect("the market-making run completes");
    assert!(mm.accepted > 100, "{}", mm.line());
    assert!(
        mm.outcomes.contains_key("200") && mm.outcomes.contains_key("201"),
        "amendments or cancels (200) and places (201): {:?}",
        mm.outcomes
    );
    assert!(
        mm.outcomes
            .keys()
            .all(|k| ["200", "201", "404"].contains(&k.as_str())),
        "{:?}",
        mm.outcomes
    );
    assert_eq!(
        mm.verification.as_ref().map(|v| v.mismatches),
        Some(0),
        "{:?}",
        mm.verification
    );
    assert!(mm.conservation.differences.is_empty());
    exchange.shutdown().await.expect("clean shutdown");
}
