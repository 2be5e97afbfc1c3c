//! Before the load: the traders' accounts, created, funded and keyed with the admin key.

use super::*;

/// What each account is funded with: far more than a run's resting orders can hold.
pub(crate) const FUNDING: &[(&str, &str)] = &[
    ("USD", "1000000000"),
    ("BTC", "100000"),
    ("ETH", "1000000"),
    ("SOL", "100000000"),
];

/// Creates and funds `n` accounts, each with a read+trade key.
pub(crate) async fn traders(o: &Options) -> anyhow::Result<Vec<Credentials>> {
    let admin = Signer::new(o.urls[0].clone(), o.admin.clone());
    let tag = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let mut out = Vec::new();
    for i in 0..o.accounts {
        let ok = |(s, body): (u16, Value), what: &str| {
            if s >= 300 {
                bail!("{what}: the exchange answered {s} {body}");
            }
            Ok(body)
        };
        let a = ok(
            admin.send(Method::POST, "/admin/accounts", None).await?,
            "creating an account (is the admin key file the exchange's?)",
        )?;
        let account = a["account"].as_str().context("an account id")?.to_owned();
        for (asset, amount) in FUNDING {
            let id = format!("loadgen-{tag}-{i}-{asset}");
            ok(
                admin
                    .send(
                        Method::POST,
                        "/admin/deposits",
                        Some(&json!({"id": id, "account": account, "asset": asset, "amount": amount})),
                    )
                    .await?,
                "funding an account",
            )?;
        }
        let key = ok(
            admin
                .send(
                    Method::POST,
                    &format!("/admin/accounts/{account}/keys"),
                    Some(&json!({"permissions": ["read", "trade"]})),
                )
                .await?,
            "creating a key",
        )?;
        out.push(Credentials {
            account: account.parse()?,
            key_id: key["key_id"].as_str().context("a key id")?.into(),
            secret: key["secret"].as_str().context("a secret")?.into(),
        });
    }
    Ok(out)
}
