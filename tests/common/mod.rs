//! The test exchange: the embedded exchange on a port of its own, with test traders that sign
//! their requests. Shared by the HTTP test files (each uses part of it).
#![allow(dead_code)]

use exchange::config::Config;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;

pub struct TestExchange {
    pub base: String,
    http: Client,
    running: Option<exchange::Running>,
    pub dir: tempfile::TempDir,
    admin: exchange_client::Client,
    /// The tests name accounts 1, 2, 3, ...; each gets a real account, funded, and a key.
    traders: tokio::sync::Mutex<HashMap<u64, exchange_client::Client>>,
}

/// What every test trader is funded with.
const FUNDING: &[(&str, &str)] = &[
    ("USD", "100000000"),
    ("BTC", "1000"),
    ("ETH", "100000"),
    ("SOL", "10000000"),
];

impl TestExchange {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts with the test configuration changed by `tweak`.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut config = Config::for_tests(dir.path().to_owned());
        tweak(&mut config);
        Self::start_in(dir, config, HashMap::new()).await
    }

    async fn start_in(
        dir: tempfile::TempDir,
        config: Config,
        traders: HashMap<u64, exchange_client::Client>,
    ) -> Self {
        let running = exchange::start(config, std::future::pending())
            .await
            .expect("the exchange starts");
        let base = format!("http://{}", running.addr);
        let creds = exchange_client::read_credentials(&dir.path().join(exchange_client::KEY_FILE))
            .expect("the admin key file");
        let rebase = |c: exchange_client::Client| c.with_base(base.clone());
        Self {
            admin: exchange_client::Client::new(base.clone(), creds),
            traders: tokio::sync::Mutex::new(
                traders.into_iter().map(|(k, c)| (k, rebase(c))).collect(),
            ),
            base,
            http: Client::new(),
            running: Some(running),
            dir,
        }
    }

    /// The running exchange.
    pub fn running(&self) -> &exchange::Running {
        self.running.as_ref().expect("running")
    }

    /// Shuts down gracefully and starts again on the same data directory.
    pub async fn restart(mut self) -> Self {
        self.running
            .take()
            .expect("running")
            .shutdown()
            .await
            .expect("clean shutdown");
        let traders = std::mem::take(&mut *self.traders.lock().await);
        let config = Config::for_tests(self.dir.path().to_owned());
        Self::start_in(self.dir, config, traders).await
    }

    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (s, v) = self
            .admin
            .send(method, path, body.as_ref())
            .await
            .expect("answered");
        (StatusCode::from_u16(s).unwrap(), v)
    }

    /// The signing client of test trader `n`: on first use an account is created, funded and
    /// given a read+trade key.
    pub async fn trader(&self, n: u64) -> exchange_client::Client {
        let mut traders = self.traders.lock().await;
        if let Some(c) = traders.get(&n) {
            return c.clone();
        }
        let (_, acct) = self.admin(Method::POST, "/admin/accounts", None).await;
        let account = acct["account"].as_str().unwrap().to_owned();
        for (asset, amount) in FUNDING {
            let (s, body) = self
                .admin(
                    Method::POST,
                    "/admin/deposits",
                    Some(json!({"id": format!("fund-{account}-{asset}"), "account": account, "asset": asset, "amount": amount})),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{body}");
        }
        let (s, key) = self
            .admin(
                Method::POST,
                &format!("/admin/accounts/{account}/keys"),
                Some(json!({})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{key}");
        let client = exchange_client::Client::new(
            self.base.clone(),
            exchange_client::Credentials {
                account: account.parse().unwrap(),
                key_id: key["key_id"].as_str().unwrap().into(),
                secret: key["secret"].as_str().unwrap().into(),
            },
        );
        traders.insert(n, client.clone());
        client
    }

    /// The real account id of test trader `n`.
    pub async fn account_of(&self, n: u64) -> String {
        self.trader(n).await.account().to_string()
    }

    /// A request as test trader `n` would send it: signed with its key. The trader is named by
    /// an `account` field of the body or an `account=` query parameter (taken out of the
    /// request); private paths without one act as trader 1; public paths go unsigned.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (path, trader) = take_account(path, body.as_ref());
        let body = body.map(|mut b| {
            if let Some(o) = b.as_object_mut() {
                o.remove("account");
            }
            b
        });
        let private = path.starts_with("/order") || path.starts_with("/account");
        match (trader, private) {
            (None, false) => self.unsigned(method, &path, body).await,
            (t, _) => {
                let client = self.trader(t.unwrap_or(1)).await;
                let (s, v) = client
                    .send(method, &path, body.as_ref())
                    .await
                    .expect("answered");
                (StatusCode::from_u16(s).unwrap(), v)
            }
        }
    }

    pub async fn unsigned(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("the request is answered");
        let status = resp.status();
        let text = resp.text().await.expect("a body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }

    pub async fn limit(&self, account: u64, side: &str, price: &str, qty: &str) -> Value {
        let (status, body) = self
            .post("/orders", json!({"account": account, "symbol": "BTC-USD", "side": side, "type": "LIMIT", "price": price, "quantity": qty}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }
}

/// Splits the test trader out of a request: `account=N` in the query, or `account` in the body.
fn take_account(path: &str, body: Option<&Value>) -> (String, Option<u64>) {
    let from_body = body.and_then(|b| b.get("account")).and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    });
    let Some((p, q)) = path.split_once('?') else {
        return (path.to_owned(), from_body);
    };
    let mut trader = from_body;
    let rest: Vec<&str> = q
        .split('&')
        .filter(|kv| match kv.strip_prefix("account=") {
            Some(n) => {
                trader = n.parse().ok();
                false
            }
            None => true,
        })
        .collect();
    if rest.is_empty() {
        (p.to_owned(), trader)
    } else {
        (format!("{p}?{}", rest.join("&")), trader)
    }
}

pub fn assert_error(
    resp: &(StatusCode, Value),
    status: StatusCode,
    code: u64,
    field: Option<&str>,
) {
    assert_eq!(resp.0, status, "{}", resp.1);
    assert_eq!(resp.1["code"], code, "{}", resp.1);
    assert!(
        resp.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        resp.1
    );
    assert_eq!(resp.1["field"].as_str(), field, "{}", resp.1);
}
