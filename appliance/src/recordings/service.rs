//! The recordings of this appliance as one handle that the live sessions
//! (their recorder), the HTTP side (catchup, API) and the retention sweeper
//! share: the catalog on disk, the notifier of `recording.*` events, and
//! the quota in force.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::catalog::{Catalog, RecordingError};
use super::layout::Layout;
use super::notify::Notifier;
use super::retention::{self, Deletion, Quota};
use crate::state::Store;

/// The recordings folder, its events, and the quota.
#[derive(Debug, Clone)]
pub struct Recordings {
    catalog: Catalog,
    notifier: Notifier,
    store: Store,
    quota: Quota,
}

impl Recordings {
    pub fn new(data_dir: &Path, store: Store, quota: Quota) -> Recordings {
        let catalog = Catalog::new(Layout::new(data_dir));
        Recordings { notifier: Notifier::new(store.clone(), catalog.clone()), catalog, store, quota }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// Closes the recordings a crash left open (blocking; at start-up, before any publish).
    pub fn recover(&self) -> Result<usize, RecordingError> {
        super::recovery::recover(&self.catalog, &self.notifier)
    }

    /// Each channel's retention in days, for those that set one.
    pub fn retain_days(&self) -> HashMap<String, u32> {
        match self.store.list() {
            Ok(channels) => channels.into_iter().filter_map(|c| Some((c.name, c.recording.retain_days?))).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "retention cannot read the channels; applying the quota alone");
                HashMap::new()
            }
        }
    }

    /// Enforces retention with `quota` once (blocking); returns what was deleted.
    pub fn sweep_with(&self, quota: Quota) -> Result<Vec<Deletion>, RecordingError> {
        retention::sweep(&self.catalog, &self.notifier, &self.retain_days(), quota)
    }

    /// Enforces retention every `every` until shutdown.
    pub fn spawn_sweeper(&self, every: Duration, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        let recordings = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.wait_for(|s| *s) => return,
                }
                let sweeping = recordings.clone();
                match tokio::task::spawn_blocking(move || sweeping.sweep_with(sweeping.quota)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "retention sweep failed; trying again at the next interval")
                    }
                    Err(e) => tracing::warn!(error = %e, "retention sweep task failed"),
                }
            }
        })
    }
}
