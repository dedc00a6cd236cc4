//! The origin's index of live and recently ended streams, by channel and session.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::live_stream::LiveStream;

/// Every stream the origin serves. Ended streams stay for `retention` so
/// players and CDNs can finish them, then their memory is freed.
#[derive(Debug)]
pub struct OriginStore {
    channels: RwLock<HashMap<String, Vec<Arc<LiveStream>>>>,
    retention: Duration,
}

impl OriginStore {
    pub fn new(retention: Duration) -> Self {
        Self { channels: RwLock::new(HashMap::new()), retention }
    }

    /// Makes `stream` its channel's current stream.
    pub fn insert(&self, stream: Arc<LiveStream>) {
        self.sweep(Instant::now());
        let mut channels = self.channels.write().unwrap_or_else(|e| e.into_inner());
        channels.entry(stream.channel.clone()).or_default().push(stream);
    }

    /// The channel's newest stream.
    pub fn current(&self, channel: &str) -> Option<Arc<LiveStream>> {
        let channels = self.channels.read().unwrap_or_else(|e| e.into_inner());
        channels.get(channel)?.last().cloned()
    }

    /// Every channel's newest stream (live or ended and retained).
    pub fn current_streams(&self) -> Vec<Arc<LiveStream>> {
        let channels = self.channels.read().unwrap_or_else(|e| e.into_inner());
        channels.values().filter_map(|streams| streams.last().cloned()).collect()
    }

    pub fn stream(&self, channel: &str, session: &str) -> Option<Arc<LiveStream>> {
        let channels = self.channels.read().unwrap_or_else(|e| e.into_inner());
        channels.get(channel)?.iter().rev().find(|s| s.session == session).cloned()
    }

    /// Ends and forgets every stream of a channel (the channel was removed).
    pub fn remove_channel(&self, channel: &str) {
        let removed = self.channels.write().unwrap_or_else(|e| e.into_inner()).remove(channel);
        for stream in removed.into_iter().flatten() {
            stream.end();
        }
    }

    /// Frees streams that ended more than the retention ago.
    pub fn sweep(&self, now: Instant) {
        let mut channels = self.channels.write().unwrap_or_else(|e| e.into_inner());
        for streams in channels.values_mut() {
            streams.retain(|s| s.ended_at().is_none_or(|at| now.duration_since(at) < self.retention));
        }
        channels.retain(|_, streams| !streams.is_empty());
    }

    /// Number of streams held (live and retained).
    pub fn len(&self) -> usize {
        self.channels.read().unwrap_or_else(|e| e.into_inner()).values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
