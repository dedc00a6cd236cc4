//! API errors as RFC 9457 problem details (`application/problem+json`): one
//! `ApiError` with a stable `type` URI per kind of failure, the offending
//! field for invalid input, and never an internal detail in the body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::StoreError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The kinds of problem; each has a stable `type` URI (`urn:appliance:problem:<slug>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The body is not JSON, or not JSON of the expected shape at a field.
    InvalidBody,
    /// A field or query parameter has a value the API does not accept.
    InvalidField,
    Unauthorized,
    Forbidden,
    /// A private channel's playlist or media without a valid playback token (missing, forged, expired, another channel's).
    PlaybackDenied,
    NotFound,
    MethodNotAllowed,
    /// A duplicate name, or a state change the resource's state refuses.
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    /// The client spent its request budget (per token, console session or address); retry after `Retry-After`.
    TooManyRequests,
    /// Too many failed authentications from the client's address; retry after `Retry-After`.
    TooManyAttempts,
    /// The state database is busy (`StoreError::Busy`: another process holds it); retry.
    Unavailable,
    /// The data disk is full: nothing was changed; retry once there is room.
    InsufficientStorage,
    Internal,
}

impl ProblemKind {
    pub fn slug(self) -> &'static str {
        match self {
            ProblemKind::InvalidBody => "invalid-body",
            ProblemKind::InvalidField => "invalid-field",
            ProblemKind::Unauthorized => "unauthorized",
            ProblemKind::Forbidden => "forbidden",
            ProblemKind::PlaybackDenied => "playback-denied",
            ProblemKind::NotFound => "not-found",
            ProblemKind::MethodNotAllowed => "method-not-allowed",
            ProblemKind::Conflict => "conflict",
            ProblemKind::PayloadTooLarge => "payload-too-large",
            ProblemKind::UnsupportedMediaType => "unsupported-media-type",
            ProblemKind::TooManyRequests => "too-many-requests",
            ProblemKind::TooManyAttempts => "too-many-attempts",
            ProblemKind::Unavailable => "unavailable",
            ProblemKind::InsufficientStorage => "insufficient-storage",
            ProblemKind::Internal => "internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ProblemKind::InvalidBody | ProblemKind::InvalidField => StatusCode::BAD_REQUEST,
            ProblemKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ProblemKind::Forbidden | ProblemKind::PlaybackDenied => StatusCode::FORBIDDEN,
            ProblemKind::NotFound => StatusCode::NOT_FOUND,
            ProblemKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ProblemKind::Conflict => StatusCode::CONFLICT,
            ProblemKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProblemKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ProblemKind::TooManyRequests | ProblemKind::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            ProblemKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ProblemKind::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            ProblemKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ProblemKind::InvalidBody => "The request body is not valid JSON for this operation",
            ProblemKind::InvalidField => "A field has a value that is not accepted",
            ProblemKind::Unauthorized => "A valid bearer token is required",
            ProblemKind::Forbidden => "The caller's role does not allow this operation",
            ProblemKind::PlaybackDenied => "This private channel needs a valid playback token",
            ProblemKind::NotFound => "No such resource",
            ProblemKind::MethodNotAllowed => "The resource does not support this method",
            ProblemKind::Conflict => "The request conflicts with the resource's state",
            ProblemKind::PayloadTooLarge => "The request body is too large",
            ProblemKind::UnsupportedMediaType => "The request body must be application/json",
            ProblemKind::TooManyRequests => "Too many requests; retry after the time in Retry-After",
            ProblemKind::TooManyAttempts => "Too many failed authentications from this address",
            ProblemKind::Unavailable => "The appliance is busy; retry shortly",
            ProblemKind::InsufficientStorage => "The appliance's data disk is full",
            ProblemKind::Internal => "The appliance failed to handle the request",
        }
    }

    pub fn type_uri(self) -> String {
        format!("urn:appliance:problem:{}", self.slug())
    }

    /// The kind a bare status maps to (responses made outside the handlers).
    pub fn for_status(status: StatusCode) -> ProblemKind {
        match status {
            StatusCode::BAD_REQUEST => ProblemKind::InvalidBody,
            StatusCode::UNAUTHORIZED => ProblemKind::Unauthorized,
            StatusCode::FORBIDDEN => ProblemKind::Forbidden,
            StatusCode::NOT_FOUND => ProblemKind::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ProblemKind::MethodNotAllowed,
            StatusCode::CONFLICT => ProblemKind::Conflict,
            StatusCode::PAYLOAD_TOO_LARGE => ProblemKind::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ProblemKind::UnsupportedMediaType,
            StatusCode::TOO_MANY_REQUESTS => ProblemKind::TooManyRequests,
            StatusCode::SERVICE_UNAVAILABLE => ProblemKind::Unavailable,
            StatusCode::INSUFFICIENT_STORAGE => ProblemKind::InsufficientStorage,
            s if s.is_client_error() => ProblemKind::InvalidBody,
            _ => ProblemKind::Internal,
        }
    }
}

/// The problem details body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Problem {
    /// Stable identifier of the kind of problem, e.g. `urn:appliance:problem:invalid-field`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// The field or query parameter at fault (a path such as `output.ladder.rungs[0].height`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An API failure; becomes a problem+json response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ProblemKind,
    pub detail: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> ApiError {
        ApiError { kind, detail: detail.into(), field: None }
    }

    pub fn field(field: impl Into<String>, detail: impl Into<String>) -> ApiError {
        ApiError { kind: ProblemKind::InvalidField, detail: detail.into(), field: Some(field.into()) }
    }

    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(ProblemKind::NotFound, detail)
    }

    pub fn problem(&self) -> Problem {
        Problem {
            kind: self.kind.type_uri(),
            title: self.kind.title().to_string(),
            status: self.kind.status().as_u16(),
            detail: self.detail.clone(),
            field: self.field.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).expect("a problem always serialises");
        let mut response = (self.kind.status(), body).into_response();
        let h = response.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.kind == ProblemKind::Unauthorized {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"appliance\""));
        }
        if matches!(self.kind, ProblemKind::Unavailable | ProblemKind::TooManyRequests | ProblemKind::TooManyAttempts) {
            // A default; the rate limits set their own.
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::InvalidName(_) => ApiError::field("name", e.to_string()),
            StoreError::Exists(_) | StoreError::Duplicate { .. } | StoreError::Refused { .. } => {
                ApiError::new(ProblemKind::Conflict, e.to_string())
            }
            StoreError::NotFound { .. } => ApiError::not_found(e.to_string()),
            StoreError::Invalid { field, reason } => ApiError::field(field, reason),
            StoreError::LiveChange { field, .. } => {
                ApiError { kind: ProblemKind::Conflict, detail: e.to_string(), field: Some(field.to_string()) }
            }
            StoreError::Busy { .. } => {
                tracing::warn!(error = %e, "api: state database busy");
                ApiError::new(ProblemKind::Unavailable, "the state database is busy")
            }
            StoreError::StorageFull { .. } => {
                tracing::error!(alert = "disk-full", error = %e, "api: the data disk is full");
                ApiError::new(
                    ProblemKind::InsufficientStorage,
                    "the appliance's data disk is full; nothing was changed",
                )
            }
            StoreError::Database { .. } | StoreError::Io { .. } => {
                tracing::error!(error = %e, "api: state database failure");
                ApiError::new(ProblemKind::Internal, "the state database failed; see the appliance log")
            }
        }
    }
}

/// Turns any error response that is not problem+json yet (a 405 from the
/// router, a 404 from the fallback) into one, keeping its headers (`Allow`).
pub async fn as_problem(response: Response) -> Response {
    let status = response.status();
    let is_problem =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (parts, _) = response.into_parts();
    let kind = ProblemKind::for_status(status);
    let detail = match kind {
        ProblemKind::MethodNotAllowed => "see the Allow header for the methods this resource supports".to_string(),
        ProblemKind::NotFound => "no API route has this path".to_string(),
        _ => status.canonical_reason().unwrap_or("error").to_string(),
    };
    let mut fresh = ApiError::new(kind, detail).into_response();
    *fresh.status_mut() = status;
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            fresh.headers_mut().entry(name).or_insert(value.clone());
        }
    }
    fresh
}

/// Runs a blocking store operation off the runtime.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => {
            tracing::error!(error = %e, "api: state task failed");
            Err(ApiError::new(ProblemKind::Internal, "the state operation failed; see the appliance log"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_state_database_is_a_503_with_a_stable_type_and_retry_after() {
        let busy = StoreError::Busy { path: "/data/appliance.redb".into() };
        let error = ApiError::from(busy);
        assert_eq!(error.problem().kind, "urn:appliance:problem:unavailable");
        assert!(!error.detail.contains("/data"), "no internal path in the body: {}", error.detail);
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
