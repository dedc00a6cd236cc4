//! The console admin's password as an API route (admin): `appliance
//! admin set-password` calls it while the appliance runs. A new password
//! ends the admin's signed-in console sessions at once, in memory: nothing
//! looks at the password file per request.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::api_state::ApiState;
use super::audit::record_after_change;
use super::errors::WriteErrors;
use super::json_body::ApiJson;
use super::password_jobs;
use crate::http::access::caller::Caller;
use crate::http::console::password::{self, MAX_CHARS, MIN_CHARS};
use crate::http::problem::ApiError;
use crate::state::{ADMIN_USER, AuditAction};

/// A new admin password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    /// 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
}

/// Set the console's admin password; the admin's signed-in console sessions end.
#[utoipa::path(put, path = "/console/password", tag = "console", request_body = SetPassword,
    responses((status = 204, description = "Set; the admin's console sessions have ended"), WriteErrors),
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
    let job = move || password::set(&data_dir, &body.password);
    password_jobs::run(&api.password_workers, "write the admin password", job).await?;
    // The password is a file: its entry follows the change.
    record_after_change(&api, caller.note(AuditAction::UserPasswordReset, ADMIN_USER)).await;
    let ended = api.console.end_user(ADMIN_USER);
    tracing::info!(by = %caller.id, ended, "api: console admin password changed; the admin's console sessions ended");
    Ok(StatusCode::NO_CONTENT)
}
