//! The audit log route (admin): who changed what and when, oldest first,
//! paginated like the event log; and the entry of a change made outside
//! the state file, written once the change is made.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::api_state::ApiState;
use super::errors::WriteErrors;
use super::pagination::{Page, SequencePageQuery};
use crate::http::access::caller::Caller;
use crate::http::problem::{ApiError, blocking};
use crate::state::clock::rfc3339;
use crate::state::{AuditAction, AuditEntry, AuditNote};

/// One entry of the audit log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditResource {
    pub sequence: u64,
    #[schema(format = DateTime)]
    pub at: String,
    /// Who: an API token's id, `user:<name>` for a console user, `local` for the control socket.
    pub actor: String,
    pub action: AuditAction,
    /// What: a channel name, `channel/id` of a restream or a recording, a token or webhook id or
    /// name, a user name.
    pub target: String,
    pub detail: Option<String>,
}

impl From<AuditEntry> for AuditResource {
    fn from(e: AuditEntry) -> Self {
        AuditResource {
            sequence: e.sequence,
            at: rfc3339(e.at_ms),
            actor: e.actor,
            action: e.action,
            target: e.target,
            detail: e.detail,
        }
    }
}

/// List the audit log, oldest first (entries past the retention, `audit.max_entries` and
/// `audit.max_age_days`, are gone).
#[utoipa::path(get, path = "/audit", tag = "audit", params(SequencePageQuery),
    responses((status = 200, description = "A page of the audit log", body = Page<AuditResource>), WriteErrors),
    security(("bearer" = [])))]
pub async fn list_audit(
    State(api): State<ApiState>,
    _: Caller,
    page: SequencePageQuery,
) -> Result<Json<Page<AuditResource>>, ApiError> {
    let (after, limit) = (page.after(), page.limit());
    let store = api.store.clone();
    let list = blocking(move || store.list_audit(after, limit)).await?;
    Ok(Json(Page::from_state(list, AuditResource::from)))
}

/// Writes the entry of a change already made outside the state file (a
/// password file, a recording on disk). The change stands whatever happens
/// here, so a failure is logged as an error, not answered as one.
pub async fn record_after_change(api: &ApiState, note: AuditNote) {
    let store = api.store.clone();
    let (action, target) = (note.action, note.target.clone());
    if let Err(e) = blocking(move || store.record_audit(note)).await {
        tracing::error!(error = ?e, ?action, %target, "api: the change was made but its audit entry could not be written");
    }
}
