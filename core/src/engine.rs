//! The engine: the books of the symbols one shard owns, and the one dispatcher for commands.
//!
//! [`Engine::apply`] is the only way state changes. It reads no clock and draws no random
//! number: the same commands with the same timestamps always give the same events, byte for
//! byte, which is what makes recovery (snapshot + replay of the log) exact.

use crate::book::{BookSnapshot, OrderBook};
use crate::command::Command;
use crate::event::{Event, EventKind, RejectReason};
use crate::symbol::{SymbolSpec, SymbolTable};
use crate::types::{SymbolId, Timestamp};
use serde::{Deserialize, Serialize};

/// First bytes of every engine snapshot, with the format version.
const SNAPSHOT_MAGIC: &[u8; 8] = b"EXSNAP01";

/// Why a snapshot could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("not an engine snapshot (bad magic or version)")]
    BadMagic,
    #[error("snapshot is corrupt: {0}")]
    Decode(#[from] postcard::Error),
    #[error("snapshot holds symbol {name:?} as id {id}, which the symbols file does not match")]
    SymbolMismatch { name: String, id: u16 },
    #[error("restored book {0:?} is inconsistent: {1}")]
    Inconsistent(String, String),
}

#[derive(Serialize, Deserialize)]
struct EngineSnapshot {
    books: Vec<(String, BookSnapshot)>,
}

/// The books of the symbols one shard owns.
#[derive(Clone, Debug)]
pub struct Engine {
    /// Indexed by symbol id; `None` for symbols another shard owns.
    books: Vec<Option<OrderBook>>,
    names: Vec<String>,
}

impl Engine {
    /// An engine holding every symbol of the table (the single-shard case).
    pub fn new(symbols: &SymbolTable) -> Self {
        Self::with_symbols(symbols, |_| true)
    }

    /// An engine holding the symbols for which `owns` is true.
    pub fn with_symbols(symbols: &SymbolTable, owns: impl Fn(&SymbolSpec) -> bool) -> Self {
        Self {
            books: symbols
                .iter()
                .map(|s| owns(s).then(|| OrderBook::new(s.id, s.limits)))
                .collect(),
            names: symbols.iter().map(|s| s.name.clone()).collect(),
        }
    }

    /// Applies one command, appending the events it causes to `out`.
    pub fn apply(&mut self, ts: Timestamp, cmd: &Command, out: &mut Vec<Event>) {
        let account = cmd.account();
        let Some(symbol) = cmd.symbol() else {
            // Cancel-all on every symbol this engine holds, in symbol order.
            for book in self.books.iter_mut().flatten() {
                book.cancel_all(ts, account, out);
            }
            return;
        };
        let book = match self.books.get_mut(symbol.0 as usize) {
            Some(Some(book)) => book,
            unowned => {
                let reason = if unowned.is_some() {
                    RejectReason::SymbolNotOwned
                } else {
                    RejectReason::UnknownSymbol
                };
                let order_id = match cmd {
                    Command::Place(o) => Some(o.order_id),
                    _ => None,
                };
                // No book, so no sequence: this event belongs to no symbol's stream.
                out.push(Event {
                    symbol,
                    seq: 0,
                    ts,
                    kind: EventKind::Rejected {
                        command: cmd.kind(),
                        order_id,
                        account,
                        reason,
                    },
                });
                return;
            }
        };
        match cmd {
            Command::Place(o) => book.place(ts, o, out),
            Command::Cancel(c) => book.cancel(ts, c.account, &c.target, out),
            Command::CancelAll(c) => {
                book.cancel_all(ts, c.account, out);
            }
            Command::Amend(a) => book.amend(ts, a, out),
        }
    }

    /// The book of a symbol this engine holds.
    pub fn book(&self, symbol: SymbolId) -> Option<&OrderBook> {
        self.books.get(symbol.0 as usize)?.as_ref()
    }

    /// Every book this engine holds, in symbol order.
    pub fn books(&self) -> impl Iterator<Item = &OrderBook> {
        self.books.iter().flatten()
    }

    /// The whole engine state as bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        let snap = EngineSnapshot {
            books: self
                .books()
                .map(|b| (self.names[b.symbol().0 as usize].clone(), b.snapshot()))
                .collect(),
        };
        let mut bytes = SNAPSHOT_MAGIC.to_vec();
        bytes.extend(postcard::to_stdvec(&snap).expect("engine snapshots always serialise"));
        bytes
    }

    /// Restores an engine from [`Engine::snapshot`] bytes. The symbols file may have grown (new
    /// symbols start empty), but every symbol in the snapshot must keep its id.
    pub fn restore(
        bytes: &[u8],
        symbols: &SymbolTable,
        owns: impl Fn(&SymbolSpec) -> bool,
    ) -> Result<Self, SnapshotError> {
        let body = bytes
            .strip_prefix(SNAPSHOT_MAGIC.as_slice())
            .ok_or(SnapshotError::BadMagic)?;
        let snap: EngineSnapshot = postcard::from_bytes(body)?;
        let mut engine = Self::with_symbols(symbols, owns);
        for (name, book) in snap.books {
            let spec = symbols
                .get(book.symbol)
                .filter(|s| s.name == name)
                .ok_or_else(|| SnapshotError::SymbolMismatch {
                    name: name.clone(),
                    id: book.symbol.0,
                })?;
            let restored = OrderBook::restore(&book, spec.limits);
            restored
                .check_invariants()
                .map_err(|e| SnapshotError::Inconsistent(name, e))?;
            engine.books[spec.id.0 as usize] = Some(restored);
        }
        Ok(engine)
    }
}
