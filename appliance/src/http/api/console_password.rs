//! The console admin's password as an API route (write scope): `appliance
//! admin set-password` calls it while the appliance runs. A new password
//! ends every signed-in console session at once, in memory: nothing looks at
//! the password file per request.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::api_state::ApiState;
use super::errors::WriteErrors;
use super::json_body::ApiJson;
use crate::http::access::caller::Caller;
use crate::http::console::password::{self, MAX_CHARS, MIN_CHARS};
use crate::http::problem::{ApiError, ProblemKind};

/// A new admin password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    /// 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
}

/// Set the console's admin password; every signed-in console session ends.
#[utoipa::path(put, path = "/console/password", tag = "console", request_body = SetPassword,
    responses((status = 204, description = "Set; every console session has ended"), WriteErrors),
    security(("bearer" = [])))]
pub async fn set_console_password(
    State(api): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<SetPassword>,
) -> Result<StatusCode, ApiError> {
    if !(MIN_CHARS..=MAX_CHARS).contains(&body.password.chars().count()) {
        return Err(ApiError::field("password", format!("use {MIN_CHARS} to {MAX_CHARS} characters")));
    }
    let data_dir = api.data_dir.clone();
    // Hashing (argon2id: 19 MiB, tens of milliseconds) runs on the password workers, off the runtime.
    let Ok(setting) = api.password_workers.try_run(move || password::set(&data_dir, &body.password)) else {
        return Err(ApiError::new(
            ProblemKind::TooManyRequests,
            "the appliance is hashing too many passwords at once; try again in a second",
        ));
    };
    match setting.await {
        Ok(Ok(())) => {}
        Ok(Err(e))
            if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull) =>
        {
            tracing::error!(alert = "disk-full", error = %e, "api: cannot write the admin password");
            return Err(ApiError::new(
                ProblemKind::InsufficientStorage,
                "the appliance's data disk is full; nothing was changed",
            ));
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "api: cannot write the admin password");
            return Err(ApiError::new(
                ProblemKind::Internal,
                "the password could not be stored; see the appliance log",
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "api: the password job failed");
            return Err(ApiError::new(
                ProblemKind::Internal,
                "the password could not be stored; see the appliance log",
            ));
        }
    }
    api.console.end_all();
    tracing::info!(by = %caller.id, "api: console admin password changed; every console session ended");
    Ok(StatusCode::NO_CONTENT)
}
