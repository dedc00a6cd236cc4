//! What every connection of one RTMP server shares: its limits, the memory
//! budget of unauthenticated connections, and the refusal log.

use std::sync::Arc;

use crate::ingest_config::IngestConfig;
use crate::memory_budget::MemoryBudget;
use crate::refusal_log::{MAX_ADDRESSES, RefusalLog};

/// What every connection of one server shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: IngestConfig,
    /// Unfinished messages of unauthenticated connections.
    pub budget: Arc<MemoryBudget>,
    pub refusals: RefusalLog,
}

impl Shared {
    pub fn new(config: IngestConfig) -> Arc<Self> {
        Arc::new(Self {
            budget: MemoryBudget::new(config.unauthenticated_buffer),
            refusals: RefusalLog::new(config.refusal_log_interval, MAX_ADDRESSES),
            config,
        })
    }
}
