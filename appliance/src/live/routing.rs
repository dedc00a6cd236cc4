//! The appliance's answer to ingest: checks a publish's stream key, refuses
//! publishes to channels that are not active and a second publisher on a live
//! channel (the session record is created in the same transaction), and wires
//! each granted publish to a new live stream in the origin (passthrough: one
//! "source" rendition; a ladder: one rendition per rung, transcoded by
//! `transcode`) through the session supervisor's relay.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ingest::{IngestHandler, PublishGrant, PublishRequest, Refusal, RefusalKind, StreamMetadata};
use packager::{LatencyStats, LiveStream, OriginStore, Rendition, SegmenterConfig, WindowConfig};

use crate::config::Config;
use crate::live::supervisor::{Ending, SessionSupervisor};
use crate::live::transcode::Transcoder;
use crate::state::Store;
use crate::state::lifecycle::Event;
use crate::state::{Refusal as LifecycleRefusal, SessionStats, StoreError};

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
    store: Store,
    origin: Arc<OriginStore>,
    part_target: Duration,
    window_seconds: u64,
    next_id: AtomicU64,
    live: Mutex<HashMap<u64, LivePublish>>,
    supervisor: Arc<SessionSupervisor>,
    transcoder: Arc<Transcoder>,
}

impl PublishRouting {
    pub fn new(store: Store, origin: Arc<OriginStore>, config: &Config) -> Self {
        let transcoder = Transcoder::new(&config.data_dir);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            // Probe the encoders at start (on a blocking thread), not at the first ladder publish.
            let probing = transcoder.clone();
            runtime.spawn(async move {
                probing.ready().await;
            });
        }
        Self {
            transcoder,
            supervisor: SessionSupervisor::new(store.clone()),
            store,
            origin,
            part_target: config.part_target(),
            window_seconds: config.hls.window_seconds,
            next_id: AtomicU64::new(1),
            live: Mutex::new(HashMap::new()),
        }
    }

    /// The owner of the sessions in progress (ends them on stop, delete, shutdown).
    pub fn supervisor(&self) -> &Arc<SessionSupervisor> {
        &self.supervisor
    }

    /// The encoder probe and slots (for the API's encoder route).
    pub fn transcoder(&self) -> &Arc<Transcoder> {
        &self.transcoder
    }

    /// Publishes live now.
    pub fn live(&self) -> Vec<LivePublish> {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// Ends every live stream (ENDLIST published, waiters released); used at shutdown.
    pub fn end_all(&self) {
        for publish in self.live() {
            publish.stream.end();
            tracing::info!(channel = %publish.channel, session = %publish.session, "session ended at shutdown (ENDLIST published)");
        }
    }
}

impl IngestHandler for PublishRouting {
    async fn on_publish(&self, req: PublishRequest) -> Result<PublishGrant, Refusal> {
        // Session ids are part of media URIs: unique across restarts so no cache ever mixes two sessions.
        let store = self.store.clone();
        let (key, peer) = (req.stream_key.clone(), req.peer.to_string());
        let begun = tokio::task::spawn_blocking(move || store.begin_session(&key, &peer)).await;
        let (channel, record) = match begun {
            Ok(Ok(begun)) => begun,
            Ok(Err(StoreError::NotFound { .. })) => {
                return Err(Refusal::new(RefusalKind::UnknownKey, "unknown stream key"));
            }
            Ok(Err(StoreError::Refused { id, refusal: LifecycleRefusal::SessionInProgress, .. })) => {
                return Err(Refusal::new(RefusalKind::AlreadyLive, format!("channel {id} is already live")));
            }
            Ok(Err(StoreError::Refused { id, refusal, .. })) => {
                return Err(Refusal::new(RefusalKind::Unavailable, format!("channel {id}: {refusal}")));
            }
            Ok(Err(e @ StoreError::StorageFull { .. })) => {
                tracing::error!(alert = "disk-full", error = %e, "publish refused: the session cannot be recorded");
                return Err(Refusal::new(
                    RefusalKind::Unavailable,
                    "the appliance's data disk is full; live channels go on, new publishes wait for room",
                ));
            }
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
        let session = record.id.clone();
        let segment_target = mode.segment_target();
        let window_segments = (self.window_seconds as f64 / segment_target.as_secs_f64()).ceil().max(8.0) as usize;
        let window = WindowConfig { mode, window_segments, segment_target };
        let renditions: Vec<Arc<Rendition>> = crate::live::transcode::rendition_names(&channel.output)
            .into_iter()
            .map(|name| Arc::new(Rendition::new(name, window)))
            .collect();
        let stream = Arc::new(LiveStream::new(channel.name.clone(), session.clone(), renditions.clone()));
        let latency = Arc::new(LatencyStats::new());
        let publish_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sink, events) = self.supervisor.attach(&channel, &record, stream.clone(), UNIT_QUEUE);
        // A ladder is transcoded (keyframes forced on the segment target); passthrough is packaged as is.
        let inputs = match self.transcoder.start(&channel, &session, events, segment_target, &self.supervisor).await {
            Ok(inputs) => inputs,
            Err(reason) => {
                tracing::error!(channel = %channel.name, session = %session, %reason, "publish refused: no encoder slot");
                // Recorded while the publisher's queue is open, so the relay cannot record "publisher left" first.
                let (store, name, id, text) =
                    (self.store.clone(), channel.name.clone(), session.clone(), reason.clone());
                let stats = SessionStats::default();
                let _ =
                    tokio::task::spawn_blocking(move || store.end_session(&name, &id, Event::Fail, stats, Some(text)))
                        .await;
                self.supervisor.end(&channel.name, Some(&session), Ending::Fail(reason.clone()));
                drop(sink);
                return Err(Refusal::new(RefusalKind::Unavailable, reason));
            }
        };
        {
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
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
        let part_target = if mode.has_parts() { self.part_target } else { Duration::from_secs(1) };
        let config = SegmenterConfig { part_target, segment_target };
        tokio::spawn(async move {
            let tasks: Vec<_> = renditions
                .into_iter()
                .zip(inputs)
                .map(|(rendition, events)| tokio::spawn(packager::package(events, rendition, config, latency.clone())))
                .collect();
            for task in tasks {
                let _ = task.await;
            }
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
