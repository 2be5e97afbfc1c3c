//! Reconciliation: settled balances against the ledger, and against the exchange's live
//! balances.

use crate::BalanceRow;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;

/// One account's asset where the figures disagree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub account: u64,
    pub asset: String,
    /// The settled balance.
    pub balance: Decimal,
    /// The sum of the settled ledger.
    pub ledger: Decimal,
    /// The exchange's live total (available + reserved), when compared with it.
    pub live: Option<Decimal>,
}

/// What reconciliation found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Account-asset pairs compared.
    pub compared: usize,
    pub differences: Vec<Difference>,
}

impl Report {
    /// Whether everything agreed.
    pub fn clean(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Compares settled balances, ledger sums and (when given) live totals; a pair missing on one
/// side counts as zero there.
pub fn compare(
    balances: &[BalanceRow],
    ledger: &[BalanceRow],
    live: Option<&[BalanceRow]>,
) -> Report {
    type Row = (Decimal, Decimal, Decimal);
    let mut all: BTreeMap<(u64, String), Row> = BTreeMap::new();
    for b in balances {
        all.entry((b.account, b.asset.clone())).or_default().0 = b.total;
    }
    for l in ledger {
        all.entry((l.account, l.asset.clone())).or_default().1 = l.total;
    }
    for l in live.unwrap_or_default() {
        all.entry((l.account, l.asset.clone())).or_default().2 = l.total;
    }
    let mut report = Report {
        compared: all.len(),
        differences: Vec::new(),
    };
    for ((account, asset), (balance, sum, now)) in all {
        if balance != sum || (live.is_some() && balance != now) {
            report.differences.push(Difference {
                account,
                asset,
                balance,
                ledger: sum,
                live: live.map(|_| now),
            });
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(account: u64, asset: &str, total: i64) -> BalanceRow {
        BalanceRow {
            account,
            asset: asset.into(),
            total: Decimal::from(total),
        }
    }

    #[test]
    fn agreeing_figures_are_clean_and_every_kind_of_difference_is_reported() {
        let b = [row(1, "USD", 10), row(2, "BTC", 1)];
        assert!(compare(&b, &b, Some(&b)).clean());
        assert_eq!(compare(&b, &b, None).compared, 2);

        let ledger = [row(1, "USD", 10), row(2, "BTC", 2)];
        let r = compare(&b, &ledger, None);
        assert_eq!(r.differences.len(), 1);
        assert_eq!(r.differences[0].ledger, Decimal::from(2));

        // Live money the store never saw is a difference too.
        let live = [row(1, "USD", 10), row(2, "BTC", 1), row(3, "ETH", 5)];
        let r = compare(&b, &b, Some(&live));
        assert_eq!(r.differences.len(), 1);
        assert_eq!(
            (r.differences[0].account, r.differences[0].live),
            (3, Some(Decimal::from(5)))
        );
    }
}
