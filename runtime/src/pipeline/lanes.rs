//! The plugin instances a pipeline feeds side by side. An instance takes one call at a time
//! (a call that sends waits for the destination's answer); while one sends, the next
//! messages go to another, so that several requests are in flight and the source is read
//! meanwhile. A message stays with the instance it was handed to (its lane in the ledger)
//! until it is settled, and the ledger still releases receipts in arrival order.

use anyhow::{anyhow, Result};
use tokio::task::JoinSet;

pub(super) use super::ledger::Lane as LaneIndex;
use super::Then;
use crate::plugin::{Message, Outcome, PluginFailure, PluginSink, SinkOpener, Statistics};

/// The most lanes a pipeline keeps (the ledger numbers them in a byte).
pub const MAX_LANES: usize = 64;

/// One of the pipeline's plugin instances and its number in the ledger.
pub(super) struct Lane {
    pub index: LaneIndex,
    pub sink: PluginSink,
    /// Which sink of this lane it is (a swap opens new ones): with the sink's restarts, it
    /// tells the metrics when statistics start over.
    generation: u32,
}

impl Lane {
    /// Names the instance for the metrics: another value whenever its statistics start over.
    pub fn instance(&self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.sink.restarts)
    }
}

/// A call a lane makes on a task of its own.
pub(super) enum Call {
    Accept(Vec<Message>),
    Flush,
    Close,
}

/// A lane back from its call, with what the call was (to do it again on a fresh instance).
pub(super) struct Returned {
    pub lane: Lane,
    pub then: Then,
    pub result: Result<Outcome, PluginFailure>,
}

pub(super) struct Lanes {
    /// By index; `None` while the lane is out on a call.
    home: Vec<Option<Lane>>,
    away: JoinSet<Returned>,
    /// By index: whether the lane's last call was a flush or a close (so it sends).
    flushing: Vec<bool>,
    /// Where new messages go while it is home.
    current: LaneIndex,
    limit: usize,
    opener: SinkOpener,
    generation: u32,
    /// Whether the plugin's last accept sent something (it had a full batch, or no latency
    /// to wait for): only then is it worth handing the next messages to another lane rather
    /// than waiting for the current one. Otherwise batches would be split for nothing.
    accepts_send: bool,
}

impl Lanes {
    /// `sink` as the first lane; more, up to `limit`, are opened when they are needed.
    pub fn new(sink: PluginSink, limit: usize) -> Self {
        Self {
            opener: sink.opener(),
            home: vec![Some(Lane {
                index: 0,
                sink,
                generation: 0,
            })],
            away: JoinSet::new(),
            flushing: vec![false],
            current: 0,
            limit: limit.clamp(1, MAX_LANES),
            generation: 0,
            accepts_send: false,
        }
    }

    /// The lane to hand new messages to: the current one if it is home; else, if the current
    /// one is sending, another one that is home or a new one while there are fewer than the
    /// limit; `None` when the messages should wait.
    pub async fn feedable(&mut self) -> Option<LaneIndex> {
        if self.home[usize::from(self.current)].is_some() {
            return Some(self.current);
        }
        let current_sends = self.accepts_send || self.current_flushes();
        if !current_sends {
            return None;
        }
        if let Some(index) = self.home.iter().position(Option::is_some) {
            self.current = index as LaneIndex;
            return Some(self.current);
        }
        if self.home.len() >= self.limit {
            return None;
        }
        match self.opener.open().await {
            Ok(sink) => {
                let index = self.home.len() as LaneIndex;
                self.home.push(Some(Lane {
                    index,
                    sink,
                    generation: self.generation,
                }));
                self.flushing.push(false);
                self.current = index;
                Some(index)
            }
            Err(error) => {
                // The lanes there are go on; only side by side sending is given up.
                tracing::warn!(
                    "could not open another plugin instance (keeping {}): {error:#}",
                    self.home.len()
                );
                self.limit = self.home.len();
                None
            }
        }
    }

    /// Whether the current lane is out on a flush or close (the pipeline sent it to send).
    fn current_flushes(&self) -> bool {
        self.flushing.get(usize::from(self.current)).copied() == Some(true)
    }

    /// The lane `index`, which must be home.
    pub fn home_mut(&mut self, index: LaneIndex) -> &mut Lane {
        self.home[usize::from(index)]
            .as_mut()
            .expect("the lane is home")
    }

    /// Sends the lane `index` (home) out on `call`.
    pub fn send(&mut self, index: LaneIndex, call: Call) {
        let mut lane = self.home[usize::from(index)]
            .take()
            .expect("the lane is home");
        self.flushing[usize::from(index)] = !matches!(call, Call::Accept(_));
        self.away.spawn(async move {
            let (then, result) = match call {
                Call::Accept(messages) => (Then::Nothing, lane.sink.accept(&messages).await),
                Call::Flush => (Then::Flush, lane.sink.flush().await),
                Call::Close => (Then::Close, lane.sink.close().await),
            };
            Returned { lane, then, result }
        });
    }

    /// Takes the lane `index` (home) out, to call it here; `put_back` returns it.
    pub fn take(&mut self, index: LaneIndex) -> Lane {
        self.home[usize::from(index)]
            .take()
            .expect("the lane is home")
    }

    pub fn put_back(&mut self, lane: Lane) {
        let index = usize::from(lane.index);
        self.home[index] = Some(lane);
    }

    /// Notes what a returned accept did (see `accepts_send`).
    pub fn note(&mut self, returned: &Returned) {
        if let (Then::Nothing, Ok(outcome)) = (returned.then, &returned.result) {
            self.accepts_send = !outcome.ingested.is_empty() || outcome.failure.is_some();
        }
    }

    pub fn any_away(&self) -> bool {
        !self.away.is_empty()
    }

    /// The next lane back from its call (waits; only while one is away).
    pub async fn returned(&mut self) -> Result<Returned> {
        match self.away.join_next().await {
            Some(joined) => joined.map_err(|e| anyhow!("a plugin call's task failed: {e}")),
            None => Err(anyhow!("no plugin call is out")),
        }
    }

    /// A lane back from its call, if one is (does not wait).
    pub fn try_returned(&mut self) -> Option<Result<Returned>> {
        self.away
            .try_join_next()
            .map(|joined| joined.map_err(|e| anyhow!("a plugin call's task failed: {e}")))
    }

    /// The lanes that are home.
    pub fn home(&self) -> Vec<LaneIndex> {
        self.home.iter().flatten().map(|lane| lane.index).collect()
    }

    /// `sink` is the only lane from now on (every lane must be home); the old ones are
    /// returned, to be dropped once the new one took over.
    pub fn replace_with(&mut self, sink: PluginSink) -> Vec<PluginSink> {
        debug_assert!(self.away.is_empty());
        self.generation += 1;
        self.opener = sink.opener();
        self.current = 0;
        self.flushing = vec![false];
        let old = std::mem::replace(
            &mut self.home,
            vec![Some(Lane {
                index: 0,
                sink,
                generation: self.generation,
            })],
        );
        old.into_iter().flatten().map(|lane| lane.sink).collect()
    }

    /// The statistics of the lanes' current instances, added up.
    pub async fn statistics(&mut self) -> Option<Statistics> {
        let mut total: Option<Statistics> = None;
        for lane in self.home.iter_mut().flatten() {
            if let Ok(statistics) = lane.sink.statistics().await {
                match &mut total {
                    Some(total) => crate::metrics::add_statistics(total, &statistics),
                    None => total = Some(statistics),
                }
            }
        }
        total
    }

    /// The largest linear memories the lanes' current instances grew to, added up.
    pub fn peak_memory_bytes(&self) -> usize {
        self.home
            .iter()
            .flatten()
            .map(|lane| lane.sink.peak_memory_bytes())
            .sum()
    }

    /// The lanes opened so far.
    pub fn count(&self) -> usize {
        self.home.len()
    }

    /// Fresh instances that replaced failed ones, in all lanes.
    pub fn restarts(&self) -> u32 {
        self.home
            .iter()
            .flatten()
            .map(|lane| lane.sink.restarts)
            .sum()
    }
}
