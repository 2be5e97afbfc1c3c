//! The slow-consumer policy, apart from the socket: what a connection does with each frame of a
//! symbol it follows, given what it wants of the symbol and the last book sequence it sent, and
//! what it does when it fell a whole ring behind.

use super::CLOSE_SLOW_TRADES;
use super::frames::Frame;
use axum::extract::ws::Utf8Bytes;

/// What a connection follows of one symbol.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wants {
    pub book: bool,
    pub trades: bool,
    pub ticker: bool,
    /// Bit i: candles of `Interval::ALL[i]`.
    pub candles: u8,
}

impl Wants {
    /// Whether it follows anything of the symbol.
    pub fn any(&self) -> bool {
        self.book || self.trades || self.ticker || self.candles != 0
    }

    /// How many channels of the symbol it follows.
    pub fn count(&self) -> usize {
        self.book as usize
            + self.trades as usize
            + self.ticker as usize
            + self.candles.count_ones() as usize
    }
}

/// What to do after a frame or a lag.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Send(Utf8Bytes),
    Skip,
    /// Send a fresh book snapshot.
    Resnapshot,
    Close(u16, &'static str),
}

/// The policy for one frame of a symbol a connection follows, given what it wants and the last
/// book sequence number it was sent.
pub fn on_frame(frame: &Frame, wants: Wants, book_seq: u64) -> Action {
    match frame {
        Frame::Diff { first, last, text } if wants.book => {
            if *last <= book_seq {
                Action::Skip
            } else if *first == book_seq + 1 {
                Action::Send(text.clone())
            } else {
                // A hole (only after a lag upstream): the snapshot is the way back.
                Action::Resnapshot
            }
        }
        Frame::Trades(t) if wants.trades => Action::Send(t.clone()),
        Frame::Ticker(t) if wants.ticker => Action::Send(t.clone()),
        Frame::Candle { interval, text } if wants.candles & (1 << interval) != 0 => {
            Action::Send(text.clone())
        }
        Frame::Gap => on_lag(wants),
        _ => Action::Skip,
    }
}

/// The policy when a connection fell a whole ring behind on a symbol: a book is conflated (a
/// fresh snapshot), tickers and candles are state (the next replaces the missed), trades cannot
/// be conflated (the connection is closed, and the client knows to re-sync).
pub fn on_lag(wants: Wants) -> Action {
    if wants.trades {
        Action::Close(
            CLOSE_SLOW_TRADES,
            "slow consumer: trades were dropped; reconnect and re-sync",
        )
    } else if wants.book {
        Action::Resnapshot
    } else {
        Action::Skip
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(first: u64, last: u64) -> Frame {
        Frame::Diff {
            first,
            last,
            text: Utf8Bytes::from("d"),
        }
    }

    #[test]
    fn diffs_follow_the_snapshot_without_gaps() {
        let book = Wants {
            book: true,
            ..Wants::default()
        };
        assert_eq!(
            on_frame(&diff(3, 5), book, 5),
            Action::Skip,
            "covered by the snapshot"
        );
        assert_eq!(
            on_frame(&diff(6, 9), book, 5),
            Action::Send(Utf8Bytes::from("d"))
        );
        assert_eq!(on_frame(&diff(8, 9), book, 5), Action::Resnapshot, "a hole");
        assert_eq!(on_frame(&diff(6, 9), Wants::default(), 5), Action::Skip);
    }

    #[test]
    fn a_lagging_consumer_is_conflated_or_closed() {
        let book = Wants {
            book: true,
            ..Wants::default()
        };
        let trades = Wants {
            trades: true,
            book: true,
            ..Wants::default()
        };
        let ticker = Wants {
            ticker: true,
            ..Wants::default()
        };
        assert_eq!(on_lag(book), Action::Resnapshot);
        assert!(matches!(
            on_lag(trades),
            Action::Close(CLOSE_SLOW_TRADES, _)
        ));
        assert_eq!(
            on_lag(ticker),
            Action::Skip,
            "the next ticker replaces the missed one"
        );
        assert_eq!(on_frame(&Frame::Gap, book, 1), Action::Resnapshot);
    }
}
