//! Password work for API routes (hashing a new console password, storing
//! it) on the console's bounded password workers, off the runtime
//! (argon2id: 19 MiB, tens of milliseconds), with its failures as problems:
//! 429 when every worker is busy, 507 on a full disk, 500 otherwise.

use crate::http::console::password_workers::PasswordWorkers;
use crate::http::problem::{ApiError, ProblemKind};

/// Runs `job` on the password workers; `what` names it in the log.
pub async fn run<T, J>(workers: &PasswordWorkers, what: &'static str, job: J) -> Result<T, ApiError>
where
    T: Send + 'static,
    J: FnOnce() -> anyhow::Result<T> + Send + 'static,
{
    let Ok(queued) = workers.try_run(job) else {
        return Err(ApiError::new(
            ProblemKind::TooManyRequests,
            "the appliance is hashing too many passwords at once; try again in a second",
        ));
    };
    let failed = || ApiError::new(ProblemKind::Internal, "the password could not be stored; see the appliance log");
    match queued.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e))
            if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull) =>
        {
            tracing::error!(alert = "disk-full", error = %e, "api: cannot {what}");
            Err(ApiError::new(
                ProblemKind::InsufficientStorage,
                "the appliance's data disk is full; nothing was changed",
            ))
        }
        Ok(Err(e)) => match e.downcast::<crate::state::StoreError>() {
            Ok(store) => Err(store.into()),
            Err(e) => {
                tracing::error!(error = %e, "api: cannot {what}");
                Err(failed())
            }
        },
        Err(e) => {
            tracing::error!(error = %e, "api: the password job to {what} failed");
            Err(failed())
        }
    }
}
