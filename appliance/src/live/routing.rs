//! The appliance's answer to ingest: checks a publish's stream key and
//! refuses publishes to channels that are not active and a second publisher
//! on a live channel (the session record is created in the same
//! transaction), then hands the granted publish to the supervisor, whose new
//! session gives the sink ingest feeds.

use std::sync::atomic::{AtomicU64, Ordering};

use ingest::{IngestHandler, PublishGrant, PublishRequest, Refusal, RefusalKind, StreamMetadata};

use super::supervisor::Supervisor;
use crate::state::{Refusal as LifecycleRefusal, Store, StoreError};

/// Routes publishes to channels; the RTMP server's handler.
#[derive(Debug)]
pub struct PublishRouting {
    store: Store,
    supervisor: Supervisor,
    next_id: AtomicU64,
}

impl PublishRouting {
    pub fn new(store: Store, supervisor: Supervisor) -> Self {
        Self { store, supervisor, next_id: AtomicU64::new(1) }
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
        let label = channel.name.clone();
        let sink = self.supervisor.start(channel, record, req.peer).await?;
        Ok(PublishGrant { sink, label, publish_id: self.next_id.fetch_add(1, Ordering::Relaxed) })
    }

    fn on_metadata(&self, _publish_id: u64, meta: &StreamMetadata) {
        // Logged in the connection's span, which names the channel.
        tracing::info!(metadata = ?meta, "stream metadata");
    }

    fn on_unpublish(&self, _publish_id: u64) {
        // The session sees its input end and ends itself (`publisher-left`).
    }
}
