//! The first admin key, a small signing HTTP client, and the `exchange admin` commands.
//!
//! On first start (no admin key in the accounts store) the exchange creates an admin account
//! and key and writes them to `admin-key.json` in the data directory, readable by its owner
//! only. `exchange admin ...` reads that file and calls the admin API of the running exchange
//! with signed requests, exactly as any API client would.

use crate::accounts::{EmbeddedAccounts, write_private};
use crate::config::{AdminAction, AdminArgs, Config, TransferArgs};
use anyhow::{Context, bail};
use exchange_gateway::Accounts;
use exchange_gateway::accounts::Permissions;
use exchange_gateway::auth::{KEY_HEADER, payload, sign};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The admin key file's name in the data directory.
pub const KEY_FILE: &str = "admin-key.json";

/// An API key and its secret, as the admin key file holds them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Credentials {
    pub account: u64,
    pub key_id: String,
    pub secret: String,
}

/// Creates the admin account and key if the store has no admin key yet, and writes the key
/// file.
pub async fn bootstrap(accounts: &EmbeddedAccounts, dir: &Path) -> anyhow::Result<()> {
    if accounts.has_admin_key() {
        return Ok(());
    }
    create_admin(accounts, dir).await
}

/// Creates an admin account and key in `accounts` and writes them to the key file in `dir`.
pub async fn create_admin(accounts: &dyn Accounts, dir: &Path) -> anyhow::Result<()> {
    let now = exchange_gateway::now();
    let account = accounts.create_account(now).await?;
    let all = Permissions {
        read: true,
        trade: true,
        admin: true,
    };
    let key = accounts.create_key(account, all, now).await?;
    let creds = Credentials {
        account: account.0,
        key_id: key.key_id,
        secret: String::from_utf8(key.secret.0).context("secrets are hex")?,
    };
    let path = dir.join(KEY_FILE);
    write_private(&path, serde_json::to_string_pretty(&creds)?.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(path = %path.display(), "created the admin account and API key");
    Ok(())
}

/// Reads a key file.
pub fn read_credentials(path: &Path) -> anyhow::Result<Credentials> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading {} (the exchange writes it to its data directory on first start)",
            path.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// An HTTP client that signs every request with one API key.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    creds: Credentials,
}

impl Client {
    /// A client for the exchange at `base` (for example `http://127.0.0.1:8080`).
    pub fn new(base: impl Into<String>, creds: Credentials) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("a plain HTTP client builds");
        Self::with_http(http, base, creds)
    }

    /// The same over a given HTTP client (for example one that speaks HTTP/2).
    pub fn with_http(http: reqwest::Client, base: impl Into<String>, creds: Credentials) -> Self {
        Self {
            http,
            base: base.into().trim_end_matches('/').to_owned(),
            creds,
        }
    }

    /// The same key against another URL (after a restart on a new port).
    pub fn with_base(self, base: impl Into<String>) -> Self {
        Self::new(base, self.creds)
    }

    /// Another key over the same connections.
    pub fn with_key(&self, creds: Credentials) -> Self {
        Self {
            http: self.http.clone(),
            base: self.base.clone(),
            creds,
        }
    }

    /// The key and its secret.
    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }

    /// The key's id.
    pub fn key_id(&self) -> &str {
        &self.creds.key_id
    }

    /// The key's account.
    pub fn account(&self) -> u64 {
        self.creds.account
    }

    /// Sends a signed request with a JSON body (or none); `path` may carry a query string.
    /// Returns status and JSON body (`null` when empty).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let ct = body.map(|_| "application/json");
        self.send_raw(method, path, bytes, ct).await
    }

    /// `path` (which may carry a query string) with the query a request of `method` with
    /// `body` is signed with: a timestamp, a nonce and the signature.
    pub fn signed_target(&self, method: &str, path: &str, body: &[u8]) -> String {
        static NONCE: AtomicU64 = AtomicU64::new(0);
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        // The nonce tells apart identical requests signed in the same millisecond, which the
        // exchange would otherwise refuse as a replay.
        let nonce = NONCE.fetch_add(1, Ordering::Relaxed);
        let query = if query.is_empty() {
            format!("timestamp={ms}&nonce={nonce}")
        } else {
            format!("{query}&timestamp={ms}&nonce={nonce}")
        };
        let signature = sign(
            self.creds.secret.as_bytes(),
            &payload(method, path, &query, body),
        );
        format!("{path}?{query}&signature={signature}")
    }

    /// Sends a signed request with these body bytes and content type.
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
        content_type: Option<&str>,
    ) -> anyhow::Result<(u16, Value)> {
        let url = format!(
            "{}{}",
            self.base,
            self.signed_target(method.as_str(), path, &body)
        );
        let mut req = self
            .http
            .request(method, url)
            .header(KEY_HEADER, &self.creds.key_id);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.body(body).send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, json))
    }
}

fn transfer(t: &TransferArgs) -> Value {
    json!({ "id": t.id, "account": t.account, "asset": t.asset, "amount": t.amount })
}

/// Runs one `exchange admin` command against the running exchange and prints its answer.
pub async fn run(config: &Config, args: AdminArgs) -> anyhow::Result<()> {
    let key_file: PathBuf = args
        .key_file
        .unwrap_or_else(|| config.data_dir.join(KEY_FILE));
    let url = args
        .url
        .unwrap_or_else(|| format!("http://{}", config.listen));
    let client = Client::new(url, read_credentials(&key_file)?);
    use reqwest::Method;
    let (method, path, body) = match args.action {
        AdminAction::CreateAccount => (Method::POST, "/admin/accounts".to_owned(), None),
        AdminAction::CreateKey {
            account,
            permissions,
        } => (
            Method::POST,
            format!("/admin/accounts/{account}/keys"),
            Some(
                json!({ "permissions": permissions.split(',').map(str::trim).collect::<Vec<_>>() }),
            ),
        ),
        AdminAction::DisableKey { key_id } => {
            (Method::DELETE, format!("/admin/keys/{key_id}"), None)
        }
        AdminAction::Deposit(t) => (
            Method::POST,
            "/admin/deposits".to_owned(),
            Some(transfer(&t)),
        ),
        AdminAction::Withdraw(t) => (
            Method::POST,
            "/admin/withdrawals".to_owned(),
            Some(transfer(&t)),
        ),
        AdminAction::Balances { account } => {
            (Method::GET, format!("/admin/accounts/{account}"), None)
        }
        AdminAction::Reconcile => return reconcile(config, &client).await,
    };
    let (status, answer) = client.send(method, &path, body.as_ref()).await?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    if status >= 400 {
        bail!("the exchange answered {status}");
    }
    Ok(())
}

/// `exchange admin reconcile`: settled balances against their ledger and the live balances of
/// every account the store knows.
async fn reconcile(config: &Config, client: &Client) -> anyhow::Result<()> {
    use exchange_functions::BalanceRow;
    use std::str::FromStr;
    let stores = crate::functions::open_stores(config).await?;
    let balances = stores.settle.balances().await?;
    let ledger = stores.settle.ledger_totals().await?;
    let mut accounts: Vec<u64> = balances.iter().map(|b| b.account).collect();
    accounts.dedup();
    let mut live = Vec::new();
    for account in accounts {
        let (status, answer) = client
            .send(
                reqwest::Method::GET,
                &format!("/admin/accounts/{account}"),
                None,
            )
            .await?;
        if status >= 400 {
            bail!("reading account {account}: the exchange answered {status}: {answer}");
        }
        for b in answer["balances"].as_array().into_iter().flatten() {
            let total = rust_decimal::Decimal::from_str(b["total"].as_str().unwrap_or("0"))?;
            if !total.is_zero() {
                live.push(BalanceRow {
                    account,
                    asset: b["asset"].as_str().unwrap_or_default().to_owned(),
                    total,
                });
            }
        }
    }
    // Zero balances are absent from the live side; compare like with like.
    let settled: Vec<BalanceRow> = balances
        .into_iter()
        .filter(|b| !b.total.is_zero())
        .collect();
    let ledger: Vec<BalanceRow> = ledger.into_iter().filter(|b| !b.total.is_zero()).collect();
    let report = exchange_functions::reconcile::compare(&settled, &ledger, Some(&live));
    println!("{}", serde_json::to_string_pretty(&report)?);
    if !report.clean() {
        bail!(
            "{} differences (events not yet settled show up here too: compare with the metric exchange_worker_lag_records)",
            report.differences.len()
        );
    }
    Ok(())
}
