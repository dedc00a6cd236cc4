//! Store operations from async code: each runs on the blocking pool, never
//! on the runtime's workers (a write waits for the disk).

use super::StoreError;

/// Runs `f` (a store operation) on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(StoreError::Database { path: String::new(), reason: format!("task failed: {e}") }))
}
