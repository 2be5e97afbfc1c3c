//! The first admin key, and the `exchange admin` commands.
//!
//! On first start (no admin key in the accounts store) the exchange creates an admin account
//! and key and writes them to `admin-key.json` in the data directory, readable by its owner
//! only. `exchange admin ...` reads that file and calls the admin API of the running exchange
//! with signed requests (`exchange_client::Client`), exactly as any API client would.

use crate::config::{AdminAction, AdminArgs, Config, TransferArgs};
use anyhow::{Context, bail};
use exchange_accounts::{Accounts, EmbeddedAccounts, Permissions, write_private};
use exchange_client::{Client, Credentials, KEY_FILE, read_credentials};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

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
    let stores = exchange_functions::host::open_stores(&config.stores()).await?;
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
