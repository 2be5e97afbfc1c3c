//! A shard's event stream: a record of each command that changed something, which settlement
//! and rollup consume as [`StreamRecord`]s.
//!
//! The embedded default keeps it in a [`Journal`] of its own beside the command log
//! (`events/`). It need not be synced with every batch: the events are a function of the
//! commands, so what a crash loses is written again from the replay after the snapshot. What
//! must hold is that a snapshot never covers commands whose events are not durable, so the
//! runtime waits for the event journal before it writes one.
//!
//! The shard writes what the command did as it has it, in integers ([`CommandEvents`]: the
//! trades, the orders it changed, the fills); the reader turns that into a [`StreamRecord`]
//! (names, decimals, ledger entries) with the symbol table. So the formatting, which is most of
//! the cost of a record, is done by the consumers in their own time, not on the order path.
//!
//! On disk a record's payload is a zero byte and then the postcard encoding of an
//! [`EventRecord`], whose variant says what follows. Journals written before 2026-12-06 hold
//! bare postcard [`StreamRecord`]s, which never start with a zero byte (their first field is
//! the source's name, `shard-N`, and postcard starts a string with its length): they are read
//! as [`EventRecord::Stream`], so a journal written by an older version is consumed as it was.

use crate::journal::{Journal, Record};
use crate::state::{CommandResult, Outcome};
use exchange_core::stream::{StreamEvent, StreamRecord, fill_ledger, order_event, trade_event};
use exchange_core::{
    AccountId, Event, EventKind, Fill, OrderRecord, ShardId, SymbolTable, Timestamp,
};
use serde::{Deserialize, Serialize};

/// One record of a shard's event journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventRecord {
    /// A record already in its stream form (what journals written before 2026-12-06 hold).
    Stream(StreamRecord),
    /// What one command did, as the shard has it.
    Command(CommandEvents),
}

/// What one command changed, in the shard's integers: turned into its [`StreamRecord`] by
/// [`CommandEvents::to_stream`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandEvents {
    /// The command's log offset.
    pub offset: u64,
    pub ts: Timestamp,
    /// Its trade events.
    pub trades: Vec<Event>,
    /// Every order it changed, as it stands after it.
    pub orders: Vec<OrderRecord>,
    /// Each side of every trade, with its account.
    pub fills: Vec<(AccountId, Fill)>,
}

/// The marker that starts every payload written since journals held bare [`StreamRecord`]s.
const MARKER: u8 = 0;

impl Record for EventRecord {
    /// A cancel-all of many orders is one record.
    const MAX_BYTES: u32 = 64 << 20;

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(MARKER);
        crate::frame::postcard_into(self, out);
    }

    fn decode(payload: &[u8]) -> Result<Self, String> {
        match payload.split_first() {
            Some((&MARKER, rest)) => crate::frame::from_postcard(rest),
            _ => crate::frame::from_postcard(payload).map(EventRecord::Stream),
        }
    }
}

impl From<StreamRecord> for EventRecord {
    fn from(r: StreamRecord) -> Self {
        EventRecord::Stream(r)
    }
}

impl EventRecord {
    /// Its place in the shard's stream: the command's offset.
    pub fn seq(&self) -> u64 {
        match self {
            EventRecord::Stream(r) => r.seq,
            EventRecord::Command(c) => c.offset,
        }
    }

    /// The record as the consumers read it.
    pub fn into_stream(self, shard: ShardId, symbols: &SymbolTable) -> StreamRecord {
        match self {
            EventRecord::Stream(r) => r,
            EventRecord::Command(c) => c.to_stream(shard, symbols),
        }
    }
}

/// A shard's event journal.
pub type EventJournal = Journal<EventRecord>;

/// The source name of shard `shard`'s stream.
pub fn source_name(shard: ShardId) -> String {
    format!("shard-{}", shard.0)
}

impl CommandEvents {
    /// What an outcome changed, if it changed anything.
    pub fn of(o: &Outcome) -> Option<Self> {
        let CommandResult::Applied { events, .. } = &o.result else {
            return None;
        };
        let trades: Vec<Event> = events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Trade(_)))
            .copied()
            .collect();
        (!trades.is_empty() || !o.updated.is_empty() || !o.fills.is_empty()).then(|| Self {
            offset: o.offset,
            ts: o.ts,
            trades,
            orders: o.updated.clone(),
            fills: o.fills.clone(),
        })
    }

    /// The stream record: its trades, the orders it changed (with the command's offset as
    /// their version) and the ledger entries of its fills.
    pub fn to_stream(&self, shard: ShardId, symbols: &SymbolTable) -> StreamRecord {
        let mut out = Vec::new();
        for e in &self.trades {
            if let EventKind::Trade(t) = &e.kind
                && let Some(spec) = symbols.get(e.symbol)
            {
                out.push(StreamEvent::Trade(trade_event(spec, t, e.ts.0)));
            }
        }
        for order in &self.orders {
            if let Some(spec) = symbols.get(order.symbol) {
                out.push(StreamEvent::Order(order_event(spec, order, self.offset)));
            }
        }
        for (account, fill) in &self.fills {
            if let Some(spec) = symbols.get(fill.symbol) {
                out.extend(
                    fill_ledger(spec, *account, fill, symbols.assets())
                        .into_iter()
                        .map(StreamEvent::Ledger),
                );
            }
        }
        StreamRecord {
            source: source_name(shard),
            seq: self.offset,
            time: self.ts.0,
            events: out,
        }
    }
}

/// The `seq` of the last record in an event journal (0 when it has none).
pub async fn last_seq(events: &EventJournal) -> Result<u64, crate::LogError> {
    let last = events.last_offset();
    if last == 0 {
        return Ok(0);
    }
    Ok(events
        .read(last - 1, 1)
        .await?
        .first()
        .map_or(0, |(_, r)| r.seq()))
}
