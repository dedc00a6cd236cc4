//! The problem responses each kind of route declares in the OpenAPI document.

use utoipa::IntoResponses;

use crate::http::problem::Problem;

/// Problem responses of read routes.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum ReadErrors {
    /// A path or query parameter is not valid.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// No valid bearer token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// A token restricted to channels on a route about the whole appliance, or the caller's role
    /// is below the route's.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// No such resource.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// Too many requests from this token, console session or address, or too many failed
    /// authentications from this address; wait `Retry-After` seconds.
    #[response(status = 429, content_type = "application/problem+json",
        headers(("Retry-After" = u64, description = "Seconds to wait before retrying")))]
    TooManyRequests(Problem),
    /// The state database is busy; retry.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// The problem response of the route that needs no token.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum LimitErrors {
    /// Too many requests from this address (or too many failed authentications from it); wait
    /// `Retry-After` seconds.
    #[response(status = 429, content_type = "application/problem+json",
        headers(("Retry-After" = u64, description = "Seconds to wait before retrying")))]
    TooManyRequests(Problem),
}

/// Problem responses of write routes.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum WriteErrors {
    /// The body, a field, or a path parameter is not valid; `field` names it.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// No valid bearer token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The caller's role is below the route's, or its channel restriction excludes the route.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// No such resource.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// Conflicts with the resource's state (duplicate name, already active, ...).
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// The body is larger than 64 KiB.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The body is not `application/json`.
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
    /// Too many requests from this token, console session or address, or too many failed
    /// authentications from this address; wait `Retry-After` seconds.
    #[response(status = 429, content_type = "application/problem+json",
        headers(("Retry-After" = u64, description = "Seconds to wait before retrying")))]
    TooManyRequests(Problem),
    /// The data disk is full; nothing was changed. Retry once there is room.
    #[response(status = 507, content_type = "application/problem+json")]
    InsufficientStorage(Problem),
    /// The state database is busy; retry.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}
