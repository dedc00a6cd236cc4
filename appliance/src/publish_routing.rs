//! The appliance's answer to ingest: checks a publish's stream key, refuses a
//! second publisher on a live channel, and wires each granted publish to a new
//! live stream in the origin (passthrough: one "source" rendition).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ingest::{IngestHandler, PublishGrant, PublishRequest, Refusal, RefusalKind, StreamMetadata};
use media::unit_channel;
use packager::{LatencyStats, LiveStream, OriginStore, Rendition, SegmenterConfig, WindowConfig};

use crate::channel_store::ChannelStore;
use crate::config::Config;

/// Events buffered between ingest and packaging (about 6 s of 30 fps video with audio).
const UNIT_QUEUE: usize = 512;

/// A publish that is live now.
#[derive(Debug, Clone)]
pub struct LivePublish {
    pub channel: String,
    pub session: String,
    pub stream: Arc<LiveStream>,
    pub latency: Arc<LatencyStats>,
    pub peer: std::net::SocketAddr,
}

/// Routes publishes to channels; shared by the RTMP server and the HTTP side.
#[derive(Debug)]
pub struct PublishRouting {
    store: ChannelStore,
    origin: Arc<OriginStore>,
    part_target: Duration,
    window_seconds: u64,
    next_id: AtomicU64,
    live: Mutex<HashMap<u64, LivePublish>>,
}

impl PublishRouting {
    pub fn new(store: ChannelStore, origin: Arc<OriginStore>, config: &Config) -> Self {
        Self {
            store,
            origin,
            part_target: config.part_target(),
            window_seconds: config.hls.window_seconds,
            next_id: AtomicU64::new(1),
            live: Mutex::new(HashMap::new()),
        }
    }

    /// Publishes live now.
    pub fn live(&self) -> Vec<LivePublish> {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// Ends every live stream (ENDLIST published, waiters released); used at shutdown.
    pub fn end_all(&self) {
        for publish in self.live() {
            publish.stream.end();
        }
    }
}

/// Session ids are part of media URIs: unique across restarts so no cache ever mixes two sessions.
fn new_session_id() -> String {
    let millis = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    format!("{millis:x}")
}

impl IngestHandler for PublishRouting {
    async fn on_publish(&self, req: PublishRequest) -> Result<PublishGrant, Refusal> {
        let store = self.store.clone();
        let key = req.stream_key.clone();
        let lookup = tokio::task::spawn_blocking(move || store.by_stream_key(&key)).await;
        let channel = match lookup {
            Ok(Ok(Some(channel))) => channel,
            Ok(Ok(None)) => return Err(Refusal::new(RefusalKind::UnknownKey, "unknown stream key")),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "channel lookup failed");
                return Err(Refusal::new(RefusalKind::Unavailable, "the appliance cannot read its channels"));
            }
            Err(e) => {
                tracing::error!(error = %e, "channel lookup task failed");
                return Err(Refusal::new(RefusalKind::Unavailable, "the appliance cannot read its channels"));
            }
        };
        let mode = channel.latency_mode;
        let session = new_session_id();
        let segment_target = mode.segment_target();
        let window_segments = (self.window_seconds as f64 / segment_target.as_secs_f64()).ceil().max(8.0) as usize;
        let rendition = Arc::new(Rendition::new("source", WindowConfig { mode, window_segments, segment_target }));
        let stream = Arc::new(LiveStream::new(channel.name.clone(), session.clone(), vec![rendition.clone()]));
        let latency = Arc::new(LatencyStats::new());
        let publish_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            if live.values().any(|p| p.channel == channel.name) {
                return Err(Refusal::new(
                    RefusalKind::AlreadyLive,
                    format!("channel {} is already live", channel.name),
                ));
            }
            live.insert(
                publish_id,
                LivePublish {
                    channel: channel.name.clone(),
                    session: session.clone(),
                    stream: stream.clone(),
                    latency: latency.clone(),
                    peer: req.peer,
                },
            );
        }
        self.origin.insert(stream.clone());
        let (sink, events) = unit_channel(UNIT_QUEUE);
        let part_target = if mode.has_parts() { self.part_target } else { Duration::from_secs(1) };
        let config = SegmenterConfig { part_target, segment_target };
        tokio::spawn(async move {
            packager::package(events, rendition, config, latency).await;
            stream.end();
        });
        tracing::info!(channel = %channel.name, session = %session, peer = %req.peer, mode = %mode, "publish accepted");
        Ok(PublishGrant { sink, label: channel.name, publish_id })
    }

    fn on_metadata(&self, publish_id: u64, meta: &StreamMetadata) {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(publish) = live.get(&publish_id) {
            tracing::info!(channel = %publish.channel, session = %publish.session, metadata = ?meta, "stream metadata");
        }
    }

    fn on_unpublish(&self, publish_id: u64) {
        let removed = self.live.lock().unwrap_or_else(|e| e.into_inner()).remove(&publish_id);
        if let Some(publish) = removed {
            tracing::info!(channel = %publish.channel, session = %publish.session, latency = %publish.latency.summary(), "publish ended");
        }
    }
}
