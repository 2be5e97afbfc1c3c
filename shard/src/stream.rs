//! A shard's event stream: the [`StreamRecord`] of each command that changed something, which
//! settlement and rollup consume.
//!
//! The embedded default keeps it in a [`Journal`] of its own beside the command log
//! (`events/`). It need not be synced with every batch: the events are a function of the
//! commands, so what a crash loses is written again from the replay after the snapshot. What
//! must hold is that a snapshot never covers commands whose events are not durable, so the
//! runtime waits for the event journal before it writes one.

use crate::journal::{Journal, Record};
use crate::state::{CommandResult, Outcome};
use exchange_core::stream::{StreamEvent, StreamRecord, fill_ledger, order_event, trade_event};
use exchange_core::{EventKind, ShardId, SymbolTable};

impl Record for StreamRecord {
    /// A cancel-all of many orders is one record.
    const MAX_BYTES: u32 = 64 << 20;
}

/// A shard's event journal.
pub type EventJournal = Journal<StreamRecord>;

/// The source name of shard `shard`'s stream.
pub fn source_name(shard: ShardId) -> String {
    format!("shard-{}", shard.0)
}

/// The record of one outcome, if the command changed anything: its trades, the orders it
/// changed (with the command's offset as their version) and the ledger entries of its fills.
pub fn record(shard: ShardId, symbols: &SymbolTable, o: &Outcome) -> Option<StreamRecord> {
    let CommandResult::Applied { events, .. } = &o.result else {
        return None;
    };
    let mut out = Vec::new();
    for e in events {
        if let EventKind::Trade(t) = &e.kind
            && let Some(spec) = symbols.get(e.symbol)
        {
            out.push(StreamEvent::Trade(trade_event(spec, t, e.ts.0)));
        }
    }
    for order in &o.updated {
        if let Some(spec) = symbols.get(order.symbol) {
            out.push(StreamEvent::Order(order_event(spec, order, o.offset)));
        }
    }
    for (account, fill) in &o.fills {
        if let Some(spec) = symbols.get(fill.symbol) {
            out.extend(
                fill_ledger(spec, *account, fill, symbols.assets())
                    .into_iter()
                    .map(StreamEvent::Ledger),
            );
        }
    }
    (!out.is_empty()).then(|| StreamRecord {
        source: source_name(shard),
        seq: o.offset,
        time: o.ts.0,
        events: out,
    })
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
        .map_or(0, |(_, r)| r.seq))
}
