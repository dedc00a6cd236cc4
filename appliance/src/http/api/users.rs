//! Console users (admin only): list, create with a role and a password,
//! change the role or disable, and reset the password. Disabling a user,
//! changing its role or its password ends its console sessions at once. The
//! built-in `admin` is listed first; its password is reset here or with
//! `PUT /console/password`, and it cannot be disabled or demoted.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::api_state::ApiState;
use super::audit::record_after_change;
use super::errors::WriteErrors;
use super::json_body::ApiJson;
use super::pagination::{Page, PageQuery};
use super::password_jobs;
use crate::http::access::caller::Caller;
use crate::http::console::password::{self, MAX_CHARS, MIN_CHARS};
use crate::http::problem::{ApiError, ProblemKind, blocking};
use crate::state::AuditAction;
use crate::state::clock::rfc3339;
use crate::state::{ADMIN_USER, Role, User, UserPatch};

/// A console user (never its password or hash).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserResource {
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    /// The built-in `admin` (cannot be disabled or demoted).
    pub builtin: bool,
    /// When it was created (absent for the built-in admin).
    #[schema(format = DateTime)]
    pub created_at: Option<String>,
}

impl From<User> for UserResource {
    fn from(u: User) -> Self {
        UserResource {
            name: u.name,
            role: u.role,
            disabled: u.disabled,
            builtin: false,
            created_at: Some(rfc3339(u.created_ms)),
        }
    }
}

fn builtin_admin() -> UserResource {
    UserResource { name: ADMIN_USER.into(), role: Role::Admin, disabled: false, builtin: true, created_at: None }
}

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,31}$")]
    pub name: String,
    pub role: Role,
    /// 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
}

/// A change of a user (absent fields stay).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// A new password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    /// 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
}

fn check_password_length(password: &str) -> Result<(), ApiError> {
    if !(MIN_CHARS..=MAX_CHARS).contains(&password.chars().count()) {
        return Err(ApiError::field("password", format!("use {MIN_CHARS} to {MAX_CHARS} characters")));
    }
    Ok(())
}

/// What a change sets, for the audit log.
fn user_change(body: &UpdateUser) -> String {
    let role = body.role.map(|r| format!("role {}", r.as_str()));
    let disabled = body.disabled.map(|d| if d { "disabled".to_string() } else { "enabled".to_string() });
    [role, disabled].into_iter().flatten().collect::<Vec<_>>().join(", ")
}

fn builtin_refused() -> ApiError {
    ApiError::new(ProblemKind::Conflict, "the built-in admin cannot be disabled or given another role")
}

/// List console users by name, the built-in admin first.
#[utoipa::path(get, path = "/users", tag = "users", params(PageQuery),
    responses((status = 200, description = "A page of users", body = Page<UserResource>), WriteErrors),
    security(("bearer" = [])))]
pub async fn list_users(
    State(api): State<ApiState>,
    _: Caller,
    page: PageQuery,
) -> Result<Json<Page<UserResource>>, ApiError> {
    let store = api.store.clone();
    let (limit, first) = (page.limit(), page.cursor.is_none());
    let list = blocking(move || store.list_users(page.cursor.as_deref(), limit)).await?;
    let mut page = Page::from_state(list, UserResource::from);
    if first {
        page.items.insert(0, builtin_admin());
    }
    Ok(Json(page))
}

/// Create a console user.
#[utoipa::path(post, path = "/users", tag = "users", request_body = CreateUser,
    responses((status = 201, description = "Created", body = UserResource), WriteErrors),
    security(("bearer" = [])))]
pub async fn create_user(
    State(api): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<UserResource>), ApiError> {
    check_password_length(&body.password)?;
    let store = api
        .store
        .acting(caller.note(AuditAction::UserCreated, &body.name).with_detail(format!("role {}", body.role.as_str())));
    let job = move || Ok(store.create_user(&body.name, body.role, password::hash(&body.password)?)?);
    let user = password_jobs::run(&api.password_workers, "create a user", job).await?;
    tracing::info!(user = %user.name, role = user.role.as_str(), by = %caller.id, "api: console user created");
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// Change a user's role or disable (enable) it; its console sessions end.
#[utoipa::path(patch, path = "/users/{name}", tag = "users", request_body = UpdateUser,
    params(("name" = String, Path, description = "User name", max_length = 64)),
    responses((status = 200, description = "Changed", body = UserResource), WriteErrors),
    security(("bearer" = [])))]
pub async fn update_user(
    State(api): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> Result<Json<UserResource>, ApiError> {
    if name == ADMIN_USER {
        return Err(builtin_refused());
    }
    let store = api.store.acting(caller.note(AuditAction::UserUpdated, &name).with_detail(user_change(&body)));
    let patch = UserPatch { role: body.role, disabled: body.disabled, password_hash: None };
    let (before, after) = blocking(move || store.update_user(&name, patch)).await?;
    if before.role != after.role || before.disabled != after.disabled {
        let ended = api.console.end_user(&after.name);
        tracing::info!(user = %after.name, role = after.role.as_str(), disabled = after.disabled, ended, by = %caller.id,
            "api: console user changed; its sessions ended");
    }
    Ok(Json(after.into()))
}

/// Set a user's password; its console sessions end.
#[utoipa::path(put, path = "/users/{name}/password", tag = "users", request_body = ResetPassword,
    params(("name" = String, Path, description = "User name", max_length = 64)),
    responses((status = 204, description = "Set; the user's console sessions have ended"), WriteErrors),
    security(("bearer" = [])))]
pub async fn reset_password(
    State(api): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ResetPassword>,
) -> Result<StatusCode, ApiError> {
    check_password_length(&body.password)?;
    let note = caller.note(AuditAction::UserPasswordReset, &name);
    if name == ADMIN_USER {
        let data_dir = api.data_dir.clone();
        let job = move || password::set(&data_dir, &body.password);
        password_jobs::run(&api.password_workers, "write the admin password", job).await?;
        // The password is a file: its entry follows the change.
        record_after_change(&api, note).await;
    } else {
        let (store, user) = (api.store.acting(note), name.clone());
        let job = move || {
            let patch = UserPatch { password_hash: Some(password::hash(&body.password)?), ..UserPatch::default() };
            Ok(store.update_user(&user, patch)?)
        };
        password_jobs::run(&api.password_workers, "reset a password", job).await?;
    }
    let ended = api.console.end_user(&name);
    tracing::info!(user = %name, ended, by = %caller.id, "api: console user's password reset; its sessions ended");
    Ok(StatusCode::NO_CONTENT)
}
