//! The gateway's `Exchange` over shards, in this process or in others.
//!
//! A command is appended to the owning shard's log (the shard's journal file in the embedded
//! default, its Redis Stream in a cluster; durable when the append returns), and the shard's
//! outcome comes back through [`Pending`], keyed by (shard, offset): handed over in process by
//! [`PendingSink`], or from the cluster's outcome channels. A client that hangs up after its
//! command was submitted loses nothing: the command is applied, and its outcome waits in
//! [`Pending`] until its window passes.
//!
//! Outcomes reach their requests and the feeds through one [`Delivery`], in both modes: in
//! process the shard's sink ([`PendingSink`]) applies each batch's balance moves to the live
//! balances and delivers; in a cluster the [`relay`] takes every shard's published batches
//! (whose moves the shard already applied in Redis), reads the balances the private feeds
//! carry, and delivers.
//!
//! Reads are [`Query`]s: answered from the shard's state under its read lock when the shard
//! runs here, or asked of the shard's process over the bus ([`QueryClient`]) when it does not.
//! Each read asks for one kind of [`Answer`] and takes it apart once ([`Payload`]).

use crate::exchange::{Exchange, ExchangeError, Read, ShardHealth, Submitted};
use crate::feed::Bus;
use async_trait::async_trait;
use exchange_accounts::{EmbeddedAccounts, Live, RedisAccounts};
use exchange_core::{
    AccountFunds, AccountId, AssetId, ClientOrderId, Command, DepthView, Hold, Ohlcv, OrderId,
    OrderRecord, ShardId, StatusFilter, SymbolId, SymbolTable, TickerView, Timestamp, TradeRecord,
    shard_for,
};
use exchange_shard::query::{self, Answer, Query};
use exchange_shard::redis_query::QueryClient;
use exchange_shard::{CommandLog, CommandResult, EventSink, LogRecord, Outcome, ShardState};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

enum Slot {
    Waiting(oneshot::Sender<Outcome>),
    Ready(Box<Outcome>),
}

/// Outcomes parked for a waiter are dropped once they are this far behind the newest outcome
/// of their shard: a waiter comes microseconds after its append, so such an outcome belongs to
/// a request that timed out.
const PARKED_WINDOW: u64 = 65_536;

/// Outcomes on their way to the requests that caused them.
pub struct Pending {
    slots: Mutex<HashMap<(ShardId, u64), Slot>>,
    /// How far behind its shard's newest outcome a parked outcome is kept.
    window: u64,
}

impl Default for Pending {
    fn default() -> Self {
        Self::with_window(PARKED_WINDOW)
    }
}

impl Pending {
    /// Parks outcomes nobody waits for yet up to `window` offsets behind their shard's newest.
    /// A gateway of a cluster hears every shard's outcomes, most of them for other gateways'
    /// requests, so it keeps a small window: its own waiter registers as soon as its append
    /// returns, several round trips before the outcome can come.
    pub fn with_window(window: u64) -> Self {
        Self {
            slots: Mutex::default(),
            window: window.max(1),
        }
    }

    /// Hands an outcome to its waiter, or keeps it until the waiter comes.
    pub fn complete(&self, shard: ShardId, outcome: Outcome) {
        let mut slots = self.slots.lock();
        let offset = outcome.offset;
        match slots.remove(&(shard, offset)) {
            Some(Slot::Waiting(tx)) => {
                let _ = tx.send(outcome);
            }
            _ => {
                slots.insert((shard, offset), Slot::Ready(Box::new(outcome)));
                // Sweep at twice the window, down to one window: amortised O(1) per outcome.
                if slots.len() as u64 > 2 * self.window {
                    slots.retain(|&(s, o), slot| {
                        matches!(slot, Slot::Waiting(_)) || s != shard || o + self.window > offset
                    });
                }
            }
        }
    }

    /// The outcome of the command at `offset`, now or when it comes.
    pub fn wait(&self, shard: ShardId, offset: u64) -> oneshot::Receiver<Outcome> {
        let (tx, rx) = oneshot::channel();
        let mut slots = self.slots.lock();
        match slots.entry((shard, offset)) {
            Entry::Occupied(e) => {
                if let Slot::Ready(outcome) = e.remove() {
                    let _ = tx.send(*outcome);
                }
            }
            Entry::Vacant(e) => {
                e.insert(Slot::Waiting(tx));
            }
        }
        rx
    }

    /// Drops a waiter that gave up.
    fn forget(&self, shard: ShardId, offset: u64) {
        self.slots.lock().remove(&(shard, offset));
    }
}

/// Where outcomes go once their balance moves are applied: the feeds, then each to the request
/// waiting on it (so a client that reads its balance after the answer sees the effect). The one
/// path both modes deliver through.
pub struct Delivery {
    pub pending: Arc<Pending>,
    pub bus: Arc<Bus>,
}

impl Delivery {
    /// Delivers a batch of shard `shard`'s outcomes; `balance` gives an account's live balance
    /// of an asset with the batch's moves applied, for the private feeds.
    pub fn deliver(
        &self,
        shard: ShardId,
        outcomes: Vec<Outcome>,
        balance: impl Fn(AccountId, AssetId) -> Live,
    ) {
        self.bus.publish(&outcomes, balance);
        for o in outcomes {
            self.pending.complete(shard, o);
        }
    }
}

/// The sink the embedded shards publish to: each outcome's balance moves go to the live
/// balances, then the batch is delivered.
pub struct PendingSink {
    pub delivery: Delivery,
    pub accounts: Arc<EmbeddedAccounts>,
}

impl EventSink for PendingSink {
    fn publish(&self, shard: ShardId, outcomes: Vec<Outcome>) {
        for o in &outcomes {
            self.accounts.apply_moves(&o.moves);
        }
        self.delivery.deliver(shard, outcomes, |account, asset| {
            self.accounts.balance(account, asset)
        });
    }
}

/// A cluster gateway's side of the outcomes: every shard's published batches (the shard applied
/// their moves to the balances in Redis before publishing), delivered in the order they come.
/// The balances the private feeds carry are read from Redis first.
pub fn relay(
    mut outcomes: mpsc::UnboundedReceiver<(ShardId, Vec<Outcome>)>,
    delivery: Delivery,
    accounts: Arc<RedisAccounts>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some((shard, batch)) = outcomes.recv().await {
            let mut live: HashMap<(AccountId, AssetId), Live> = HashMap::new();
            for (account, asset) in delivery.bus.private_touched(&batch) {
                if let Ok(b) = accounts.balance(account, asset).await {
                    let b = Live {
                        available: b.available as i128,
                        reserved: b.reserved as i128,
                    };
                    live.insert((account, asset), b);
                }
            }
            delivery.deliver(shard, batch, |account, asset| {
                live.get(&(account, asset)).copied().unwrap_or_default()
            });
        }
    })
}

/// Where a shard's state is read.
pub enum Reader {
    /// The shard runs in this process.
    Local(Arc<RwLock<ShardState>>),
    /// The shard runs in another process; it is asked over the bus.
    Remote(Arc<QueryClient>),
}

/// One shard as the gateway sees it: its log, and where its state is read.
pub struct ShardHandle {
    pub id: ShardId,
    pub log: Arc<dyn CommandLog>,
    pub reader: Reader,
}

impl ShardHandle {
    /// Answers `q` from the shard's state.
    async fn ask(&self, q: Query) -> Read<Answer> {
        match &self.reader {
            Reader::Local(state) => Ok(query::answer(&state.read(), &q, self.log.last_offset())),
            Reader::Remote(client) => client
                .ask(self.id, q)
                .await
                .map_err(|e| ExchangeError::ReadFailed(e.to_string())),
        }
    }
}

/// The gateway's `Exchange` over shards. See the module docs.
pub struct Shards {
    symbols: Arc<SymbolTable>,
    shards: Vec<ShardHandle>,
    pending: Arc<Pending>,
    timeout: Duration,
}

/// What a read takes out of its [`Answer`]: the one kind of answer its query asks for. Any other
/// kind comes from a shard of another version, and the read fails.
trait Payload: Sized {
    fn from_answer(a: Answer) -> Result<Self, Box<Answer>>;

    fn take(a: Answer) -> Read<Self> {
        Self::from_answer(a).map_err(|a| {
            ExchangeError::ReadFailed(format!("unexpected answer from a shard: {a:?}"))
        })
    }
}

macro_rules! payloads {
    ($($variant:ident => $t:ty),* $(,)?) => {$(
        impl Payload for $t {
            fn from_answer(a: Answer) -> Result<Self, Box<Answer>> {
                match a {
                    Answer::$variant(x) => Ok(x),
                    a => Err(Box::new(a)),
                }
            }
        }
    )*};
}

payloads! {
    Order => Option<OrderRecord>,
    Orders => Vec<OrderRecord>,
    Ticker => Option<TickerView>,
    Candle => Option<(Timestamp, Ohlcv)>,
    Depth => Option<DepthView>,
    Trades => Option<Vec<TradeRecord>>,
    Funds => AccountFunds,
}

/// A shard's (logged, applied) offsets.
impl Payload for (u64, u64) {
    fn from_answer(a: Answer) -> Result<Self, Box<Answer>> {
        match a {
            Answer::Health { logged, applied } => Ok((logged, applied)),
            a => Err(Box::new(a)),
        }
    }
}

impl Shards {
    /// An exchange over these shards (indexed by shard id).
    pub fn new(
        symbols: Arc<SymbolTable>,
        shards: Vec<ShardHandle>,
        pending: Arc<Pending>,
        timeout: Duration,
    ) -> Self {
        Self {
            symbols,
            shards,
            pending,
            timeout,
        }
    }

    fn shard_of(&self, symbol: SymbolId) -> Option<&ShardHandle> {
        let spec = self.symbols.get(symbol)?;
        self.shards
            .get(shard_for(&spec.name, self.shards.len() as u32).0 as usize)
    }

    /// The shard of `symbol`, or every shard for none.
    fn shards_for(&self, symbol: Option<SymbolId>) -> Vec<&ShardHandle> {
        match symbol {
            Some(s) => self.shard_of(s).into_iter().collect(),
            None => self.shards.iter().collect(),
        }
    }

    /// Asks the shard of `symbol` (none for a symbol not listed).
    async fn ask_symbol<T>(&self, symbol: SymbolId, q: Query) -> Read<Option<T>>
    where
        Option<T>: Payload,
    {
        match self.shard_of(symbol) {
            Some(shard) => Payload::take(shard.ask(q).await?),
            None => Ok(None),
        }
    }

    /// Asks each of `shards` at once; answers in the same order.
    async fn ask_all<T: Payload>(&self, shards: &[&ShardHandle], q: &Query) -> Read<Vec<T>> {
        futures_util::future::join_all(shards.iter().map(|s| s.ask(q.clone())))
            .await
            .into_iter()
            .map(|a| T::take(a?))
            .collect()
    }

    /// Appends to one shard and waits for the outcome. A request dropped meanwhile (its client
    /// hung up) loses nothing: once submitted, the command is logged and applied, and an outcome
    /// nobody waits for is parked in [`Pending`] until its window passes.
    async fn submit_to(
        &self,
        shard: &ShardHandle,
        cmd: Command,
        hold: Hold,
        ts: Timestamp,
    ) -> Result<Outcome, ExchangeError> {
        let appended = shard
            .log
            .append(vec![LogRecord { ts, cmd, hold }])
            .await
            .map_err(|e| ExchangeError::NotLogged(e.to_string()))?;
        let offset = appended
            .first()
            .map(|e| e.0)
            .ok_or_else(|| ExchangeError::Unavailable("empty append".into()))?;
        match tokio::time::timeout(self.timeout, self.pending.wait(shard.id, offset)).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => Err(ExchangeError::Unavailable("the shard stopped".into())),
            Err(_) => {
                self.pending.forget(shard.id, offset);
                Err(ExchangeError::Timeout)
            }
        }
    }
}

fn merge(into: &mut Submitted, outcome: Outcome) {
    match outcome.result {
        CommandResult::Applied { events, orders } => {
            into.events.extend(events);
            into.orders.extend(orders);
        }
        CommandResult::Duplicate { order } => {
            into.duplicate = true;
            into.orders.push(order);
        }
        CommandResult::Refused { reason } => into.refused = Some(reason),
    }
}

#[async_trait]
impl Exchange for Shards {
    fn symbols(&self) -> &Arc<SymbolTable> {
        &self.symbols
    }

    async fn submit(
        &self,
        cmd: Command,
        hold: Hold,
        ts: Timestamp,
    ) -> Result<Submitted, ExchangeError> {
        let mut submitted = Submitted::default();
        match cmd.symbol() {
            Some(symbol) => {
                let shard = self.shard_of(symbol).ok_or_else(|| {
                    ExchangeError::NotLogged(format!("no shard for symbol {}", symbol.0))
                })?;
                merge(&mut submitted, self.submit_to(shard, cmd, hold, ts).await?);
            }
            None => {
                // A cancel-all on every symbol goes to every shard, all at once.
                let outcomes = futures_util::future::join_all(
                    self.shards
                        .iter()
                        .map(|s| self.submit_to(s, cmd, Hold::default(), ts)),
                )
                .await;
                for outcome in outcomes {
                    merge(&mut submitted, outcome?);
                }
            }
        }
        Ok(submitted)
    }

    async fn order(&self, id: OrderId) -> Read<Option<OrderRecord>> {
        self.ask_symbol(id.symbol(), Query::Order(id)).await
    }

    async fn order_by_client_id(
        &self,
        account: AccountId,
        client_id: ClientOrderId,
    ) -> Read<Option<OrderRecord>> {
        // The client id names no symbol, so every shard is asked. Client ids are unique per
        // shard; if the account reused one on another shard's symbol, the newest order wins.
        let shards: Vec<_> = self.shards.iter().collect();
        let mut newest: Option<OrderRecord> = None;
        let found: Vec<Option<OrderRecord>> = self
            .ask_all(&shards, &Query::ByClientId(account, client_id))
            .await?;
        for o in found.into_iter().flatten() {
            if newest.is_none_or(|n| (o.created, o.id.local()) > (n.created, n.id.local())) {
                newest = Some(o);
            }
        }
        Ok(newest)
    }

    async fn orders(
        &self,
        account: AccountId,
        symbol: Option<SymbolId>,
        status: StatusFilter,
        limit: usize,
    ) -> Read<Vec<OrderRecord>> {
        let q = Query::Orders {
            account,
            symbol,
            status,
            limit,
        };
        let mut out = Vec::new();
        for o in self
            .ask_all::<Vec<OrderRecord>>(&self.shards_for(symbol), &q)
            .await?
        {
            out.extend(o);
        }
        out.sort_unstable_by_key(|o| std::cmp::Reverse((o.created, o.id.local())));
        out.truncate(limit);
        Ok(out)
    }

    async fn ticker(&self, symbol: SymbolId, now: Timestamp) -> Read<Option<TickerView>> {
        self.ask_symbol(symbol, Query::Ticker(symbol, now)).await
    }

    async fn candle(
        &self,
        symbol: SymbolId,
        minutes: u64,
        now: Timestamp,
    ) -> Read<Option<(Timestamp, Ohlcv)>> {
        let q = Query::Candle {
            symbol,
            minutes,
            now,
        };
        self.ask_symbol(symbol, q).await
    }

    async fn depth(&self, symbol: SymbolId, limit: usize) -> Read<Option<DepthView>> {
        self.ask_symbol(symbol, Query::Depth(symbol, limit)).await
    }

    async fn trades(&self, symbol: SymbolId, limit: usize) -> Read<Option<Vec<TradeRecord>>> {
        self.ask_symbol(symbol, Query::Trades(symbol, limit)).await
    }

    async fn account_funds(
        &self,
        account: AccountId,
        symbol: Option<SymbolId>,
        limit: usize,
    ) -> Read<Vec<AccountFunds>> {
        let q = Query::Funds {
            account,
            symbol,
            limit,
        };
        self.ask_all(&self.shards_for(symbol), &q).await
    }

    async fn health(&self) -> Read<Vec<ShardHealth>> {
        let shards: Vec<_> = self.shards.iter().collect();
        let offsets: Vec<(u64, u64)> = self.ask_all(&shards, &Query::Health).await?;
        Ok(offsets
            .into_iter()
            .zip(&self.shards)
            .map(|((logged, applied), s)| ShardHealth {
                shard: s.id,
                logged,
                applied,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exchange_core::Timestamp;
    use exchange_shard::CommandResult;

    fn outcome(offset: u64) -> Outcome {
        Outcome {
            offset,
            ts: Timestamp(0),
            result: CommandResult::Applied {
                events: Vec::new(),
                orders: Vec::new(),
            },
            moves: Vec::new(),
            updated: Vec::new(),
            fills: Vec::new(),
        }
    }

    #[test]
    fn outcomes_meet_their_waiters_in_either_order() {
        let p = Pending::default();
        let mut early = p.wait(ShardId(0), 1);
        p.complete(ShardId(0), outcome(1));
        assert_eq!(early.try_recv().unwrap().offset, 1);
        p.complete(ShardId(0), outcome(2));
        let mut late = p.wait(ShardId(0), 2);
        assert_eq!(late.try_recv().unwrap().offset, 2);
        assert!(p.slots.lock().is_empty());
    }

    #[test]
    fn outcomes_nobody_collects_do_not_pile_up() {
        let p = Pending::default();
        let waiting = p.wait(ShardId(1), 10);
        for offset in 1..=3 * PARKED_WINDOW {
            p.complete(ShardId(0), outcome(offset));
        }
        let slots = p.slots.lock();
        assert!(
            slots.len() as u64 <= 2 * PARKED_WINDOW + 1,
            "{} parked",
            slots.len()
        );
        assert!(
            matches!(slots.get(&(ShardId(1), 10)), Some(Slot::Waiting(_))),
            "a waiter is never dropped"
        );
        drop(waiting);
    }
}
