//! The fan-out: one [`Topic`] per symbol this gateway follows, shared by the connections that
//! want any of its channels, and dropped, upstream subscription and all, with the last of them.
//! A topic's task turns each upstream update into frames once and broadcasts them on a bounded
//! ring; tickers and candles are re-read from the shard at most once per coalescing period.

use super::frames::{Frame, candle_frame, diff_frame, ticker_frame, trades_frame};
use crate::AppState;
use crate::feed::MarketUpdate;
use exchange_core::{Interval, SymbolId};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::task::JoinHandle;

/// One symbol's feed at this gateway, while anyone here follows it.
pub struct Topic {
    tx: broadcast::Sender<Arc<Frame>>,
    task: JoinHandle<()>,
}

impl Topic {
    /// A receiver of the topic's frames from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Frame>> {
        self.tx.subscribe()
    }
}

impl Drop for Topic {
    fn drop(&mut self) {
        // Stops the task, which drops the upstream receiver: the upstream subscription ends.
        self.task.abort();
    }
}

/// The topics of this gateway.
#[derive(Default)]
pub struct Hub {
    topics: Mutex<HashMap<SymbolId, Weak<Topic>>>,
}

impl Hub {
    /// The topic of `symbol`, started (and subscribed upstream) if nobody here follows it yet.
    /// The upstream subscription is in place when this returns, so a snapshot read afterwards
    /// misses no update.
    pub fn topic(&self, app: &AppState, symbol: SymbolId) -> Arc<Topic> {
        let mut topics = self.topics.lock();
        if let Some(t) = topics.get(&symbol).and_then(Weak::upgrade) {
            return t;
        }
        let upstream = app.feed.market(symbol);
        let (tx, _) = broadcast::channel(app.ws.ring.max(1));
        let task = tokio::spawn(run_topic(app.clone(), symbol, upstream, tx.clone()));
        let topic = Arc::new(Topic { tx, task });
        topics.retain(|_, t| t.strong_count() > 0);
        topics.insert(symbol, Arc::downgrade(&topic));
        metrics::gauge!("exchange_ws_topics").set(topics.len() as f64);
        topic
    }

    /// How many symbols this gateway follows now.
    pub fn followed(&self) -> usize {
        self.topics
            .lock()
            .values()
            .filter(|t| t.strong_count() > 0)
            .count()
    }
}

/// A topic's task: upstream updates to frames, tickers and candles coalesced.
async fn run_topic(
    app: AppState,
    symbol: SymbolId,
    mut upstream: broadcast::Receiver<Arc<MarketUpdate>>,
    tx: broadcast::Sender<Arc<Frame>>,
) {
    let spec = app.spec(symbol).clone();
    let mut tick = tokio::time::interval(app.ws.coalesce);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dirty = false;
    loop {
        tokio::select! {
            r = upstream.recv() => match r {
                Ok(u) => {
                    let _ = tx.send(Arc::new(diff_frame(&spec, &u)));
                    if !u.trades.is_empty() {
                        let _ = tx.send(Arc::new(trades_frame(&spec, &u)));
                    }
                    dirty = true;
                }
                Err(RecvError::Lagged(_)) => {
                    let _ = tx.send(Arc::new(Frame::Gap));
                    dirty = true;
                }
                Err(RecvError::Closed) => break,
            },
            _ = tick.tick(), if dirty => {
                dirty = false;
                if let Some(f) = ticker_frame(&app, &spec).await {
                    let _ = tx.send(Arc::new(f));
                }
                for i in 0..Interval::ALL.len() {
                    if let Some(f) = candle_frame(&app, &spec, i).await {
                        let _ = tx.send(Arc::new(f));
                    }
                }
            }
        }
    }
}
