//! The appliance's answer to ingest: checks a publish's stream key and
//! refuses publishes to channels that are not active (the session record is
//! created in the same transaction), then hands the granted publish to the
//! supervisor, whose new session gives the sink ingest feeds. A publish on
//! a live channel joins its session as its other input (primary or backup,
//! by the key it used) when that input is free, and is refused otherwise.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ingest::{IngestHandler, PublishGrant, PublishRequest, Refusal, RefusalKind, SrtAccess, StreamMetadata};

use super::srt_links::SrtLinks;
use super::supervisor::Supervisor;
use crate::state::{Refusal as LifecycleRefusal, Store, StoreError};

/// Routes publishes to channels; the RTMP server's handler.
#[derive(Debug)]
pub struct PublishRouting {
    store: Store,
    supervisor: Supervisor,
    next_id: AtomicU64,
    srt_links: Arc<SrtLinks>,
}

impl PublishRouting {
    pub fn new(store: Store, supervisor: Supervisor) -> Self {
        Self { store, supervisor, next_id: AtomicU64::new(1), srt_links: Arc::default() }
    }

    /// The SRT publishes' link figures, for the API.
    pub fn srt_links(&self) -> Arc<SrtLinks> {
        self.srt_links.clone()
    }
}

impl PublishRouting {
    /// A publish on a live channel: its session takes it as the input its key
    /// names, unless that input is already publishing.
    async fn join_live(&self, channel: String, req: &PublishRequest) -> Result<PublishGrant, Refusal> {
        let already = || Refusal::new(RefusalKind::AlreadyLive, format!("channel {channel} is already live"));
        let store = self.store.clone();
        let key = req.stream_key.clone();
        let found = tokio::task::spawn_blocking(move || store.by_stream_key(&key)).await;
        let Ok(Ok(Some(record))) = found else { return Err(already()) };
        let Some(role) = record.input_role(&req.stream_key) else { return Err(already()) };
        if record.backup_stream_key.is_none() {
            return Err(already());
        }
        let sink = self.supervisor.attach_input(&channel, role, req.peer).await?;
        tracing::info!(%channel, input = %role, peer = %req.peer, "publish joined the live session");
        let keyframe_interval = Some(record.latency_mode.segment_target());
        Ok(PublishGrant {
            sink,
            label: channel,
            publish_id: self.next_id.fetch_add(1, Ordering::Relaxed),
            keyframe_interval,
        })
    }

    /// The key check and the session: a new one, or the live one's other input.
    async fn route(&self, req: PublishRequest) -> Result<PublishGrant, Refusal> {
        // A session lives in the state file and is recorded on the data partition: with no room
        // left there it could not be kept, so new publishes wait (live sessions go on). The state
        // file may still have free pages inside, so its own write is not the only check.
        if data_partition_full(self.store.path()) {
            tracing::error!(alert = "disk-full", "publish refused: the data partition has no room for a session");
            return Err(disk_full_refusal());
        }
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
                return self.join_live(id, &req).await;
            }
            Ok(Err(StoreError::Refused { id, refusal, .. })) => {
                return Err(Refusal::new(RefusalKind::Unavailable, format!("channel {id}: {refusal}")));
            }
            Ok(Err(e @ StoreError::StorageFull { .. })) => {
                tracing::error!(alert = "disk-full", error = %e, "publish refused: the session cannot be recorded");
                return Err(disk_full_refusal());
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
        let (label, keyframe_interval) = (channel.name.clone(), Some(channel.latency_mode.segment_target()));
        let sink = self.supervisor.start(channel, record, req.stream_key.clone(), req.peer).await?;
        Ok(PublishGrant { sink, label, publish_id: self.next_id.fetch_add(1, Ordering::Relaxed), keyframe_interval })
    }
}

/// Below this much free space on the data partition a new session is refused.
const MIN_FREE_FOR_A_SESSION: u64 = 1024 * 1024;

/// Whether the partition holding the state file `state_file` is full (unknown counts as not).
fn data_partition_full(state_file: &std::path::Path) -> bool {
    let dir = state_file.parent().unwrap_or(state_file);
    crate::recordings::retention::disk_space(dir).is_ok_and(|space| space.available < MIN_FREE_FOR_A_SESSION)
}

fn disk_full_refusal() -> Refusal {
    Refusal::new(
        RefusalKind::Unavailable,
        "the appliance's data disk is full; live channels go on, new publishes wait for room",
    )
}

impl IngestHandler for PublishRouting {
    async fn on_publish(&self, req: PublishRequest) -> Result<PublishGrant, Refusal> {
        let (srt, peer) = (req.app == ingest::SRT_APP, req.peer);
        let grant = self.route(req).await?;
        if srt {
            self.srt_links.started(grant.publish_id, peer);
        }
        Ok(grant)
    }

    fn on_link_stats(&self, publish_id: u64, stats: &ingest::SrtLinkStats) {
        self.srt_links.update(publish_id, stats);
    }

    fn on_metadata(&self, _publish_id: u64, meta: &StreamMetadata) {
        // Logged in the connection's span, which names the channel.
        tracing::info!(metadata = ?meta, "stream metadata");
    }

    /// The channel's SRT passphrase; unknown keys, and a second publisher on a
    /// channel with one input, are refused before the SRT handshake is answered.
    async fn srt_access(&self, stream_key: &str) -> Result<SrtAccess, Refusal> {
        let store = self.store.clone();
        let key = stream_key.to_owned();
        match tokio::task::spawn_blocking(move || store.by_stream_key(&key)).await {
            Ok(Ok(Some(channel))) => {
                if channel.current_session.is_some() && channel.backup_stream_key.is_none() {
                    let reason = format!("channel {} is already live", channel.name);
                    return Err(Refusal::new(RefusalKind::AlreadyLive, reason));
                }
                Ok(SrtAccess { passphrase: channel.srt_passphrase })
            }
            Ok(Ok(None)) => Err(Refusal::new(RefusalKind::UnknownKey, "unknown stream key")),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "channel lookup failed");
                Err(Refusal::new(RefusalKind::Unavailable, "the appliance cannot read its channels"))
            }
            Err(e) => {
                tracing::error!(error = %e, "channel lookup task failed");
                Err(Refusal::new(RefusalKind::Unavailable, "the appliance cannot read its channels"))
            }
        }
    }

    fn on_unpublish(&self, publish_id: u64) {
        self.srt_links.ended(publish_id);
        // The session sees its input end and ends itself (`publisher-left`).
    }
}
