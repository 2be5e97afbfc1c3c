//! Money is conserved: a property test drives random multi-account order flow (places of every
//! kind, amendments, cancels, cancel-alls, deposits and withdrawals) through the real pieces the
//! embedded exchange is made of (the accounts store with its check-and-reserve, and two shards'
//! states), the way the gateway and the shard runtime drive them, and checks after every step:
//!
//! - for every asset, deposits - withdrawals = the sum over accounts of available + reserved,
//!   the fee account included;
//! - no live balance is negative;
//! - each account's reserved balance is exactly what its open orders hold, and each order holds
//!   exactly what its remaining quantity needs (no order can spend another's funds);
//! - within each shard, every asset's changes sum to zero;
//!
//! and at the end, after a crash (the live balances thrown away, each shard restored from a
//! snapshot taken midway plus a replay of its log after it, the accounts store reopened from
//! disk), the rebuilt balances equal the ones before the crash.

use exchange_accounts::{EmbeddedAccounts, Live};
use exchange_accounts::{Transfer, TransferKind};
use exchange_core::{
    AccountId, AmendOrder, AssetId, CancelAll, CancelOrder, Command, Hold, MarketSize, NewOrder,
    OrderId, OrderRef, OrderType, Price, Qty, ShardId, Side, StpMode, SymbolId, SymbolTable,
    TimeInForce, Timestamp, shard_for,
};
use exchange_gateway::Accounts;
use exchange_shard::{LogRecord, ShardState};
use proptest::prelude::*;
use std::collections::HashMap;

const SHARDS: u32 = 2;
const TRADERS: u64 = 3;

#[derive(Clone, Debug)]
enum Step {
    Limit {
        trader: u64,
        symbol: u16,
        buy: bool,
        /// Ticks from the symbol's mid.
        offset: i64,
        lots: u64,
        tif: u8,
        post_only: bool,
    },
    MarketBuy {
        trader: u64,
        symbol: u16,
        /// In notional units.
        quote: u64,
    },
    MarketSell {
        trader: u64,
        symbol: u16,
        lots: u64,
    },
    Amend {
        pick: usize,
        offset: Option<i64>,
        lots: Option<u64>,
    },
    Cancel {
        pick: usize,
    },
    CancelAll {
        trader: u64,
        symbol: Option<u16>,
    },
    Deposit {
        trader: u64,
        asset: u16,
        units: u64,
    },
    Withdraw {
        trader: u64,
        asset: u16,
        units: u64,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let trader = 1..=TRADERS;
    let symbol = 0u16..4;
    prop_oneof![
        6 => (trader.clone(), symbol.clone(), any::<bool>(), -5i64..=5, 1u64..40, 0u8..6, any::<bool>())
            .prop_map(|(trader, symbol, buy, offset, lots, tif, post_only)| Step::Limit {
                trader, symbol, buy, offset, lots, tif, post_only
            }),
        1 => (trader.clone(), symbol.clone(), 1u64..2_000_000).prop_map(|(trader, symbol, quote)| Step::MarketBuy { trader, symbol, quote }),
        1 => (trader.clone(), symbol.clone(), 1u64..30).prop_map(|(trader, symbol, lots)| Step::MarketSell { trader, symbol, lots }),
        2 => (any::<usize>(), proptest::option::of(-5i64..=5), proptest::option::of(1u64..60))
            .prop_map(|(pick, offset, lots)| Step::Amend { pick, offset, lots }),
        2 => any::<usize>().prop_map(|pick| Step::Cancel { pick }),
        1 => (trader.clone(), proptest::option::of(symbol.clone())).prop_map(|(trader, symbol)| Step::CancelAll { trader, symbol }),
        1 => (trader.clone(), 0u16..4, 1u64..10_000_000_000).prop_map(|(trader, asset, units)| Step::Deposit { trader, asset, units }),
        1 => (trader.clone(), 0u16..4, 1u64..10_000_000_000).prop_map(|(trader, asset, units)| Step::Withdraw { trader, asset, units }),
    ]
}

/// The mid price of each symbol, in ticks, near which orders are placed.
fn mid(symbol: u16) -> i64 {
    [6_500_000, 300_000, 150_000, 5_000][symbol as usize]
}

struct World {
    symbols: SymbolTable,
    accounts: EmbeddedAccounts,
    shards: Vec<ShardState>,
    /// Each shard's log, for the replay after the crash.
    logs: Vec<Vec<(u64, LogRecord)>>,
    snapshots: Vec<Option<Vec<u8>>>,
    orders: Vec<(OrderId, AccountId)>,
    ts: u64,
    transfers: u64,
}

impl World {
    async fn new(dir: &std::path::Path) -> Self {
        let symbols = SymbolTable::default_symbols();
        let accounts = EmbeddedAccounts::open(dir, [9; 32]).unwrap();
        for _ in 0..TRADERS {
            accounts.create_account(Timestamp(1)).await.unwrap();
        }
        let shards = (0..SHARDS)
            .map(|n| ShardState::new(ShardId(n), SHARDS, &symbols, 1_000))
            .collect();
        let mut w = Self {
            symbols,
            accounts,
            shards,
            logs: vec![Vec::new(); SHARDS as usize],
            snapshots: vec![None; SHARDS as usize],
            orders: Vec::new(),
            ts: 1_000,
            transfers: 0,
        };
        // Everyone starts with something of everything.
        for trader in 1..=TRADERS {
            for asset in 0..4 {
                w.transfer(TransferKind::Deposit, trader, asset, 1_000_000_000_000)
                    .await;
            }
        }
        w
    }

    fn shard_of(&self, symbol: SymbolId) -> usize {
        shard_for(&self.symbols.get(symbol).unwrap().name, SHARDS).0 as usize
    }

    async fn transfer(&mut self, kind: TransferKind, trader: u64, asset: u16, units: u64) {
        self.transfers += 1;
        let _ = self
            .accounts
            .transfer(Transfer {
                id: format!("t{}", self.transfers),
                kind,
                account: AccountId(trader),
                asset: AssetId(asset),
                amount: units as u128,
                ts: Timestamp(self.ts),
            })
            .await;
    }

    /// What the gateway and the shard runtime do with a command: reserve, log, apply, publish
    /// the moves. A reservation that fails refuses the command before it is logged.
    async fn submit(&mut self, cmd: Command, hold: Hold) {
        let account = cmd.account();
        if hold.amount > 0 && self.accounts.reserve(account, hold).await.is_err() {
            return;
        }
        self.ts += 1_000_000;
        let targets: Vec<usize> = match cmd.symbol() {
            Some(s) => vec![self.shard_of(s)],
            None => (0..SHARDS as usize).collect(),
        };
        for (i, n) in targets.into_iter().enumerate() {
            let hold = if i == 0 { hold } else { Hold::default() };
            let offset = self.logs[n].len() as u64 + 1;
            let mut rec = LogRecord {
                ts: Timestamp(self.ts),
                cmd,
                hold,
            };
            rec.assign(offset);
            if let Command::Place(o) = rec.cmd {
                self.orders.push((o.order_id, account));
            }
            let outcome = self.shards[n].apply(offset, &rec).expect("a new offset");
            self.accounts.apply_moves(&outcome.moves);
            self.logs[n].push((offset, rec));
            if offset == 40 {
                self.snapshots[n] = Some(self.shards[n].snapshot());
            }
        }
    }

    async fn run(&mut self, s: &Step) {
        let new = |trader: u64, symbol: u16, side, order_type| NewOrder {
            symbol: SymbolId(symbol),
            order_id: OrderId(0),
            account: AccountId(trader),
            client_order_id: None,
            side,
            order_type,
            stp: StpMode::None,
        };
        let side = |buy: bool| if buy { Side::Buy } else { Side::Sell };
        match *s {
            Step::Limit {
                trader,
                symbol,
                buy,
                offset,
                lots,
                tif,
                post_only,
            } => {
                let tif = match tif {
                    0 => TimeInForce::Ioc,
                    1 => TimeInForce::Fok,
                    _ => TimeInForce::Gtc,
                };
                let o = new(
                    trader,
                    symbol,
                    side(buy),
                    OrderType::Limit {
                        price: Price((mid(symbol) + offset) as u64),
                        qty: Qty(lots * 100),
                        tif,
                        post_only: post_only && tif == TimeInForce::Gtc,
                    },
                );
                self.place(o).await;
            }
            Step::MarketBuy {
                trader,
                symbol,
                quote,
            } => {
                let size = MarketSize::Quote(exchange_core::Notional(quote as u128 * 10_000));
                self.place(new(trader, symbol, Side::Buy, OrderType::Market { size }))
                    .await;
            }
            Step::MarketSell {
                trader,
                symbol,
                lots,
            } => {
                let size = MarketSize::Base(Qty(lots * 100));
                self.place(new(trader, symbol, Side::Sell, OrderType::Market { size }))
                    .await;
            }
            Step::Amend { pick, offset, lots } => {
                if self.orders.is_empty() || (offset.is_none() && lots.is_none()) {
                    return;
                }
                let (id, account) = self.orders[pick % self.orders.len()];
                let n = self.shard_of(id.symbol());
                let Some(order) = self.shards[n].orders().get(id).copied() else {
                    return;
                };
                let new_price = offset.map(|o| Price((mid(id.symbol().0) + o) as u64));
                let new_qty = lots.map(|l| Qty(l * 100));
                let extra = self
                    .symbols
                    .get(id.symbol())
                    .unwrap()
                    .funding
                    .amend_extra(&order, new_price, new_qty);
                let cmd = Command::Amend(AmendOrder {
                    symbol: id.symbol(),
                    account,
                    target: OrderRef::Id(id),
                    new_price,
                    new_qty,
                });
                self.submit(cmd, extra).await;
            }
            Step::Cancel { pick } => {
                if self.orders.is_empty() {
                    return;
                }
                let (id, account) = self.orders[pick % self.orders.len()];
                let cmd = Command::Cancel(CancelOrder {
                    symbol: id.symbol(),
                    account,
                    target: OrderRef::Id(id),
                });
                self.submit(cmd, Hold::default()).await;
            }
            Step::CancelAll { trader, symbol } => {
                let cmd = Command::CancelAll(CancelAll {
                    account: AccountId(trader),
                    symbol: symbol.map(SymbolId),
                });
                self.submit(cmd, Hold::default()).await;
            }
            Step::Deposit {
                trader,
                asset,
                units,
            } => {
                self.transfer(TransferKind::Deposit, trader, asset, units)
                    .await
            }
            Step::Withdraw {
                trader,
                asset,
                units,
            } => {
                self.transfer(TransferKind::Withdrawal, trader, asset, units)
                    .await
            }
        }
    }

    async fn place(&mut self, o: NewOrder) {
        let spec = self.symbols.get(o.symbol).unwrap();
        let hold = spec
            .funding
            .order_hold(&o)
            .expect("sized as the gateway requires");
        self.submit(Command::Place(o), hold).await;
    }

    /// The invariants of the module docs.
    fn check(&self) -> Result<(), String> {
        let live = self.accounts.live();
        let mut sums: HashMap<AssetId, i128> = HashMap::new();
        for ((account, asset), b) in &live {
            if b.available < 0 || b.reserved < 0 {
                return Err(format!("{account:?} {asset:?} is negative: {b:?}"));
            }
            *sums.entry(*asset).or_default() += b.available + b.reserved;
        }
        let net = self.accounts.net_transfers();
        for asset in self.symbols.assets().iter().map(|a| a.id) {
            let (have, put_in) = (
                sums.get(&asset).copied().unwrap_or(0),
                net.get(&asset).copied().unwrap_or(0),
            );
            if have != put_in {
                return Err(format!(
                    "{asset:?}: balances + fees = {have}, deposits - withdrawals = {put_in}"
                ));
            }
        }
        let mut held: HashMap<(AccountId, AssetId), i128> = HashMap::new();
        for shard in &self.shards {
            let mut per_asset: HashMap<AssetId, i128> = HashMap::new();
            for (_, asset, d) in shard.funds().deltas() {
                *per_asset.entry(asset).or_default() += d.total();
            }
            if per_asset.values().any(|v| *v != 0) {
                return Err(format!(
                    "a shard's changes do not sum to zero: {per_asset:?}"
                ));
            }
            for (id, h) in shard.funds().holds() {
                let o = shard.orders().get(id).expect("a holding order is known");
                let spec = self.symbols.get(o.symbol).unwrap();
                let needed = spec.funding.limit_hold(o.side, o.price, o.remaining);
                if o.status.is_final() || needed != h {
                    return Err(format!(
                        "order {id:?} ({:?}) holds {h:?}, needs {needed:?}",
                        o.status
                    ));
                }
                *held.entry((o.account, h.asset)).or_default() += h.amount as i128;
            }
        }
        for ((account, asset), b) in &live {
            let h = held.get(&(*account, *asset)).copied().unwrap_or(0);
            if b.reserved != h {
                return Err(format!(
                    "{account:?} {asset:?} reserves {} but its orders hold {h}",
                    b.reserved
                ));
            }
        }
        Ok(())
    }

    /// Throws the live state away and rebuilds it the way a restart does.
    fn crash_and_recover(&self, dir: &std::path::Path) -> HashMap<(AccountId, AssetId), Live> {
        let accounts = EmbeddedAccounts::open(dir, [9; 32]).unwrap();
        for n in 0..SHARDS as usize {
            let mut state = match &self.snapshots[n] {
                Some(bytes) => {
                    ShardState::restore(bytes, ShardId(n as u32), SHARDS, &self.symbols, 1_000)
                        .unwrap()
                }
                None => ShardState::new(ShardId(n as u32), SHARDS, &self.symbols, 1_000),
            };
            for (offset, rec) in &self.logs[n] {
                state.apply(*offset, rec);
            }
            assert_eq!(
                state.snapshot(),
                self.shards[n].snapshot(),
                "replay is exact"
            );
            accounts.add_shard(&state);
        }
        accounts.live()
    }
}

fn nonzero(m: HashMap<(AccountId, AssetId), Live>) -> HashMap<(AccountId, AssetId), Live> {
    m.into_iter()
        .filter(|(_, l)| *l != Live::default())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn money_is_conserved_through_random_flow_and_a_crash(steps in proptest::collection::vec(step(), 1..150)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let mut w = World::new(dir.path()).await;
            for (i, s) in steps.iter().enumerate() {
                w.run(s).await;
                if let Err(e) = w.check() {
                    return Err(TestCaseError::fail(format!("after step {i} {s:?}: {e}")));
                }
            }
            let before = nonzero(w.accounts.live());
            let after = nonzero(w.crash_and_recover(dir.path()));
            prop_assert_eq!(before, after);
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn fees_are_charged_in_the_asset_received_and_credited_to_the_fee_account() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = World::new(dir.path()).await;
    // Trader 1 rests a sell of 1 BTC at 65000.00; trader 2 buys it: 1 is maker, 2 is taker.
    w.run(&Step::Limit {
        trader: 1,
        symbol: 0,
        buy: false,
        offset: 0,
        lots: 1_000,
        tif: 5,
        post_only: false,
    })
    .await;
    w.run(&Step::Limit {
        trader: 2,
        symbol: 0,
        buy: true,
        offset: 0,
        lots: 1_000,
        tif: 5,
        post_only: false,
    })
    .await;
    w.check().unwrap();
    let live = w.accounts.live();
    let (btc, usd) = (AssetId(0), AssetId(1));
    let start = 1_000_000_000_000i128;
    // 1 BTC = 10^8 units; 65000 USD = 65000 × 10^7 units.
    let (one_btc, price) = (100_000_000i128, 650_000_000_000i128);
    // Taker fee 10 bps of the 1 BTC the buyer receives; maker fee 5 bps of the seller's USD.
    let (taker_fee, maker_fee) = (one_btc / 1_000, price / 2_000);
    assert_eq!(
        live[&(AccountId(2), btc)].available,
        start + one_btc - taker_fee
    );
    assert_eq!(live[&(AccountId(2), usd)].available, start - price);
    assert_eq!(
        live[&(AccountId(1), usd)].available,
        start + price - maker_fee
    );
    assert_eq!(live[&(AccountId(1), btc)].available, start - one_btc);
    assert_eq!(live[&(AccountId::FEES, btc)].available, taker_fee);
    assert_eq!(live[&(AccountId::FEES, usd)].available, maker_fee);
}
