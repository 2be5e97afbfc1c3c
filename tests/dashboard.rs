//! The dashboard as the gateway serves it, and `--demo`: the embedded exchange on a port of its
//! own, over HTTP.

use reqwest::{StatusCode, header};
use serde_json::Value;
use std::time::{Duration, Instant};

mod common;

use common::TestExchange;

async fn page(ex: &TestExchange, path: &str, accept: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path}", ex.base))
        .header(header::ACCEPT, accept)
        .send()
        .await
        .expect("answered")
}

fn head(r: &reqwest::Response, name: header::HeaderName) -> &str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_served_at_the_root_with_its_types_and_caching() {
    let ex = TestExchange::start().await;
    let html = "text/html,application/xhtml+xml";
    let built = exchange_gateway::dashboard::built();
    if std::env::var("EXCHANGE_DASHBOARD_REQUIRED").as_deref() == Ok("1") {
        assert!(
            built,
            "the dashboard was not built into this exchange (is npm installed?)"
        );
    }
    let root = page(&ex, "/", html).await;
    assert_eq!(root.status(), StatusCode::OK);
    assert_eq!(
        head(&root, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    let body = root.text().await.unwrap();
    if !built {
        assert!(body.contains("dashboard was not built"), "{body}");
        return;
    }
    assert!(body.contains("<html"), "{body}");
    // A hashed asset the page loads: cached for good, typed, revalidated by its ETag.
    let script = body
        .split('"')
        .find(|s| s.starts_with("/_next/static/") && s.ends_with(".js"))
        .expect("the page loads a script")
        .to_owned();
    let js = page(&ex, &script, "*/*").await;
    assert_eq!(js.status(), StatusCode::OK);
    assert_eq!(
        head(&js, header::CONTENT_TYPE),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        head(&js, header::CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );
    let etag = head(&js, header::ETAG).to_owned();
    assert!(etag.starts_with('"') && etag.len() > 2, "{etag}");
    let again = reqwest::Client::new()
        .get(format!("{}{script}", ex.base))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    // The page itself is revalidated every time.
    let root = page(&ex, "/", html).await;
    assert_eq!(head(&root, header::CACHE_CONTROL), "no-cache");

    // A page address of the screen's own answers with the screen.
    let spa = page(&ex, "/markets/BTC-USD", html).await;
    assert_eq!(spa.status(), StatusCode::OK);
    assert_eq!(spa.text().await.unwrap(), body);
    // The API keeps precedence, and what is neither stays a JSON 404.
    let symbols = page(&ex, "/symbols", html).await;
    assert_eq!(head(&symbols, header::CONTENT_TYPE), "application/json");
    for (path, accept) in [
        ("/no-such-route", "*/*"),
        ("/missing.js", html),
        ("/_next/static/none.js", "*/*"),
    ] {
        let r = page(&ex, path, accept).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "NOT_FOUND", "{path}: {v}");
    }
    let post = reqwest::Client::new()
        .post(format!("{}/", ex.base))
        .header(header::ACCEPT, html)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_key_is_offered_only_in_demo_mode_and_its_bots_trade_and_stop() {
    let ex = TestExchange::start().await;
    let (status, v) = ex.get("/demo/credentials").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert!(v["message"].as_str().unwrap().contains("--demo"), "{v}");

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let bots = exchange::start_demo(ex.running(), ex.dir.path(), stopped)
        .await
        .expect("the demo starts");
    let (status, key) = ex.get("/demo/credentials").await;
    assert_eq!(status, StatusCode::OK, "{key}");
    // The key works for the funded trader, signed like any client.
    let trader = exchange_client::Client::new(
        ex.base.clone(),
        exchange_client::Credentials {
            account: 0,
            key_id: key["key"].as_str().unwrap().into(),
            secret: key["secret"].as_str().unwrap().into(),
        },
    );
    let (status, account) = trader
        .send(reqwest::Method::GET, "/account", None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{account}");
    let usd = account["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["asset"] == "USD")
        .unwrap();
    assert_eq!(
        usd["available"].as_str().unwrap().split('.').next(),
        Some("100000")
    );
    // The bots make a market: quotes on both sides and trades, within a bounded wait.
    let deadline = Instant::now() + Duration::from_secs(30);
    let traded = loop {
        let (_, tickers) = ex.get("/market-data").await;
        let busy = tickers
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| {
                t["trades_24h"].as_u64().unwrap_or(0) > 0
                    && !t["best_bid"].is_null()
                    && !t["best_ask"].is_null()
            })
            .count();
        if busy >= 2 || Instant::now() > deadline {
            break busy;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(traded >= 2, "markets with quotes and trades: {traded}");
    let file = ex.dir.path().join("demo.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the demo keys are the owner's only");
    }
    // They stop when told to, promptly.
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(15), bots.wait())
        .await
        .expect("the bots stop within 15 s");

    // A restart in demo mode trades on with the same accounts: no money minted twice.
    let ex = ex.restart().await;
    let (_, totals_before) = ex.admin(reqwest::Method::GET, "/admin/totals", None).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let bots = exchange::start_demo(ex.running(), ex.dir.path(), stopped)
        .await
        .unwrap();
    let (_, again) = ex.get("/demo/credentials").await;
    assert_eq!(again["key"], key["key"]);
    let (_, totals_after) = ex.admin(reqwest::Method::GET, "/admin/totals", None).await;
    let deposits = |t: &Value| {
        t.as_array()
            .unwrap()
            .iter()
            .map(|a| (a["asset"].clone(), a["transferred"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(deposits(&totals_before), deposits(&totals_after));
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(15), bots.wait())
        .await
        .unwrap();
}
