//! What a run reports: latency percentiles, the verification, the reconciliation of money
//! after the run, and the summary line.

use super::*;

/// Latency percentiles in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// What reading the acknowledged orders back found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Verification {
    pub checked: u64,
    /// Orders that were missing or differed, with why (at most 20 listed).
    pub mismatches: u64,
    pub examples: Vec<String>,
}

/// The result of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// `closed` or `open` loop.
    pub mode: String,
    /// `HTTP/1.1`, `HTTP/2` or `WebSocket`.
    pub protocol: String,
    /// The offered rate in open loop.
    pub offered_per_s: Option<f64>,
    pub clients: usize,
    pub duration_s: f64,
    pub sent: u64,
    pub accepted: u64,
    pub orders_per_s: f64,
    pub latency_ms: Latency,
    /// Answers by HTTP status (or `timeout`, `connection error`).
    pub outcomes: BTreeMap<String, u64>,
    pub verification: Option<Verification>,
    /// With market-data subscribers: from each order's acceptance to its trade's receipt on a
    /// WebSocket subscriber, and how many trade receipts were measured.
    pub market_data_latency_ms: Option<Latency>,
    pub market_data_trades: u64,
    /// After the run, the exchange's reconciliation: per asset, deposits minus withdrawals
    /// against the sum of every balance, fees included. Assets that differ are listed.
    pub conservation: Conservation,
}

/// What the reconciliation after a run found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Conservation {
    pub assets_checked: usize,
    /// `ASSET: held H, transferred T` for each asset whose totals differ.
    pub differences: Vec<String>,
}

/// Whether a decimal string is anything but zero.
pub(crate) fn nonzero(d: &str) -> bool {
    d.bytes().any(|b| (b'1'..=b'9').contains(&b))
}

/// Asks the exchange to reconcile every asset (admin key).
pub(crate) async fn reconcile(o: &Options) -> anyhow::Result<Conservation> {
    let admin = Signer::new(o.urls[0].clone(), o.admin.clone());
    let (status, body) = admin.send(Method::GET, "/admin/totals", None).await?;
    if status != 200 {
        bail!("reconciliation: {status} {body}");
    }
    let rows = body.as_array().context("a list of assets")?;
    Ok(Conservation {
        assets_checked: rows.len(),
        differences: rows
            .iter()
            .filter(|r| r["difference"].as_str().is_none_or(nonzero))
            .map(|r| {
                format!(
                    "{}: held {}, transferred {}",
                    r["asset"], r["held"], r["transferred"]
                )
            })
            .collect(),
    })
}

impl Summary {
    /// One line for people.
    pub fn line(&self) -> String {
        let l = &self.latency_ms;
        let mut line = format!(
            "loadgen: {} loop, {}, {} clients, {} s: {} orders accepted of {} sent = {:.0} orders/s | latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms | outcomes {:?}",
            self.mode,
            self.protocol,
            self.clients,
            self.duration_s,
            self.accepted,
            self.sent,
            self.orders_per_s,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            self.outcomes
        );
        if let Some(v) = &self.verification {
            line.push_str(&format!(
                " | verified {} orders, {} mismatches",
                v.checked, v.mismatches
            ));
        }
        if let Some(l) = &self.market_data_latency_ms {
            line.push_str(&format!(
                " | trade on a WebSocket subscriber: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms over {} receipts",
                l.p50, l.p99, l.p999, self.market_data_trades
            ));
        }
        line.push_str(&format!(
            " | balances conserved in {} of {} assets",
            self.conservation.assets_checked - self.conservation.differences.len(),
            self.conservation.assets_checked
        ));
        line
    }
}
