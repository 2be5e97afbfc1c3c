//! The demo's accounts: created and funded once through the admin API, kept in `demo.json`.

use crate::{DemoError, Symbol};
use exchange_client::{Client, Credentials};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;

/// The file in the data directory that keeps the demo's keys.
pub const STATE_FILE: &str = "demo.json";

/// The demo's keys: the market maker, the takers, and the trader the dashboard signs in as.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DemoAccounts {
    pub maker: Credentials,
    pub takers: Vec<Credentials>,
    pub trader: Credentials,
}

/// What the trader starts with: enough to try every market, not enough to move it much.
fn trader_funds(asset: &str) -> &'static str {
    match asset {
        "USD" | "USDT" | "USDC" | "EUR" => "100000",
        "BTC" => "2",
        "ETH" => "25",
        _ => "500",
    }
}

/// What each bot starts with: deep enough to quote and take for days.
const BOT_FUNDS: &str = "1000000";

/// A signed request; an answer other than 2xx is an error that carries it.
pub(crate) async fn call(
    admin: &Client,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, DemoError> {
    let (status, answer) = admin.send(method, path, body.as_ref()).await?;
    if status >= 300 {
        return Err(DemoError::Refused {
            what: path.to_owned(),
            status,
            body: answer,
        });
    }
    Ok(answer)
}

fn text(v: &Value, field: &str, what: &str) -> Result<String, DemoError> {
    v[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| DemoError::Unexpected {
            what: what.to_owned(),
            body: v.clone(),
        })
}

/// Creates an account with a read-and-trade key, funded with `amount(asset)` of every asset.
async fn account(
    admin: &Client,
    assets: &BTreeSet<String>,
    amount: impl Fn(&str) -> &'static str,
    tag: &str,
) -> Result<Credentials, DemoError> {
    let created = call(admin, Method::POST, "/admin/accounts", Some(json!({}))).await?;
    let id = text(&created, "account", "/admin/accounts")?;
    let key = call(
        admin,
        Method::POST,
        &format!("/admin/accounts/{id}/keys"),
        Some(json!({"permissions": ["read", "trade"]})),
    )
    .await?;
    for asset in assets {
        call(
            admin,
            Method::POST,
            "/admin/deposits",
            Some(json!({"id": format!("demo-{tag}-{id}-{asset}"), "account": id, "asset": asset, "amount": amount(asset)})),
        )
        .await?;
    }
    Ok(Credentials {
        account: id.parse().map_err(|_| DemoError::Unexpected {
            what: "/admin/accounts".into(),
            body: created.clone(),
        })?,
        key_id: text(&key, "key_id", "create key")?,
        secret: text(&key, "secret", "create key")?,
    })
}

/// The demo's accounts: the ones `data_dir/demo.json` names when they still work, otherwise
/// new ones, created and funded with the admin key and saved there.
pub async fn seed(
    admin: &Client,
    symbols: &[Symbol],
    data_dir: &Path,
) -> Result<DemoAccounts, DemoError> {
    let path = data_dir.join(STATE_FILE);
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(saved) = serde_json::from_str::<DemoAccounts>(&text)
    {
        let (status, _) = admin
            .with_key(saved.maker.clone())
            .send(Method::GET, "/account", None)
            .await?;
        if status == 200 {
            return Ok(saved);
        }
        tracing::warn!(
            status,
            "the saved demo keys no longer work: creating new demo accounts"
        );
    }
    let assets: BTreeSet<String> = symbols
        .iter()
        .flat_map(|s| [s.base.clone(), s.quote.clone()])
        .collect();
    let accounts = DemoAccounts {
        maker: account(admin, &assets, |_| BOT_FUNDS, "maker").await?,
        takers: vec![
            account(admin, &assets, |_| BOT_FUNDS, "taker").await?,
            account(admin, &assets, |_| BOT_FUNDS, "taker").await?,
        ],
        trader: account(admin, &assets, trader_funds, "trader").await?,
    };
    let json = serde_json::to_string_pretty(&accounts).expect("credentials serialise");
    exchange_client::write_private(&path, json.as_bytes())
        .map_err(|source| DemoError::State { path, source })?;
    Ok(accounts)
}
