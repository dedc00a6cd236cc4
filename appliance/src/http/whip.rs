//! WHIP (RFC 9725) over HTTP: `POST /whip/{channel}` with an SDP offer and
//! the channel's stream key as the bearer token answers `201 Created` with
//! the SDP answer and the resource's `Location`; `DELETE` on that location
//! ends the publish. ICE is lite with the candidates in the answer, so
//! trickle (`PATCH`) gets 405. Refusals are problem+json: no or a wrong key
//! 401, a channel already live 409, a full box 503, a bad offer 400.
//! Browsers may call it from another origin (CORS, `Location` exposed).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use ingest::{RefusalKind, WhipError, WhipOffer, WhipServer};
use tower_http::cors::{Any, CorsLayer};

use crate::http::problem::{ApiError, ProblemKind};
use crate::http::server::connection::LocalAddr;
use crate::live::routing::PublishRouting;
use crate::state::Store;

/// The WHIP ingest the routes hand offers to.
pub type Whip = Arc<WhipServer<PublishRouting>>;

/// What the routes need: the ingest, and the channels (a key must be the URL's channel's).
#[derive(Clone)]
struct Routes {
    whip: Whip,
    store: Store,
}

/// SDP offers are a few kilobytes; this leaves room for many candidates.
const MAX_OFFER: usize = 64 * 1024;

/// The WHIP routes over `whip`.
pub fn router(whip: Whip, store: Store) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::LOCATION, HeaderName::from_static("accept-post")]);
    Router::new()
        .route("/whip/{channel}", post(offer).patch(no_trickle))
        .route("/whip/{channel}/{resource}", delete(end).patch(no_trickle))
        .layer(DefaultBodyLimit::max(MAX_OFFER))
        .layer(cors)
        .with_state(Routes { whip, store })
}

async fn offer(
    State(Routes { whip, store }): State<Routes>,
    Path(channel): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    local: Option<axum::Extension<LocalAddr>>,
    client: Option<axum::Extension<crate::http::client_address::ClientAddress>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(stream_key) = bearer(&headers) else {
        return ApiError::new(ProblemKind::Unauthorized, "send the channel's stream key as a bearer token")
            .into_response();
    };
    let sdp_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !sdp_type.trim().eq_ignore_ascii_case("application/sdp") {
        return ApiError::new(ProblemKind::UnsupportedMediaType, "the offer must be application/sdp").into_response();
    }
    let Ok(sdp) = String::from_utf8(body.to_vec()) else {
        return ApiError::new(ProblemKind::InvalidBody, "the offer is not UTF-8 text").into_response();
    };
    // The key must be this channel's (checked before a session begins for whichever channel it is).
    let key = stream_key.clone();
    let owner = tokio::task::spawn_blocking(move || store.by_stream_key(&key)).await;
    match owner {
        Ok(Ok(Some(found))) if found.name == channel => {}
        Ok(Ok(_)) => {
            return ApiError::new(ProblemKind::Unauthorized, "the stream key is not this channel's").into_response();
        }
        Ok(Err(err)) => return ApiError::from(err).into_response(),
        Err(_) => return ApiError::new(ProblemKind::Internal, "the channel lookup failed").into_response(),
    }
    // The client as the limits see it (behind a trusted proxy, its forwarded address).
    let peer = client.map_or(peer, |c| SocketAddr::new(c.0.0, peer.port()));
    let offer = WhipOffer { stream_key, channel: channel.clone(), sdp, peer, reached: local.map(|l| l.0.0.ip()) };
    match whip.offer(offer).await {
        Ok(answer) => {
            let location = format!("/whip/{channel}/{}", answer.resource);
            let mut response = (StatusCode::CREATED, answer.sdp).into_response();
            let h = response.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/sdp"));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if let Ok(location) = HeaderValue::from_str(&location) {
                h.insert(header::LOCATION, location);
            }
            response
        }
        Err(error) => problem(error).into_response(),
    }
}

/// The status and text of a refused offer.
fn problem(error: WhipError) -> ApiError {
    match error {
        WhipError::Refused(refusal) => {
            let kind = match refusal.kind {
                RefusalKind::UnknownKey => ProblemKind::Unauthorized,
                RefusalKind::AlreadyLive => ProblemKind::Conflict,
                RefusalKind::Unavailable => ProblemKind::Unavailable,
            };
            ApiError::new(kind, refusal.reason)
        }
        WhipError::BadOffer(reason) => ApiError::new(ProblemKind::InvalidBody, format!("the SDP offer: {reason}")),
        WhipError::Busy => ApiError::new(ProblemKind::Unavailable, "too many WHIP publishers; retry later"),
        WhipError::Io(err) => {
            tracing::error!(%err, "whip: cannot open a UDP socket for a publisher");
            ApiError::new(ProblemKind::Internal, "the appliance could not open a media socket")
        }
    }
}

async fn end(
    State(Routes { whip, .. }): State<Routes>,
    Path((_channel, resource)): Path<(String, String)>,
) -> Response {
    if whip.delete(&resource) {
        StatusCode::OK.into_response()
    } else {
        ApiError::not_found("no WHIP session at this location (it ended, or never was)").into_response()
    }
}

async fn no_trickle() -> Response {
    let mut response =
        ApiError::new(ProblemKind::MethodNotAllowed, "ICE is lite here: every candidate is in the answer")
            .into_response();
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST, DELETE, OPTIONS"));
    response
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            bearer(&h)
        };
        assert_eq!(with("Bearer abc123").as_deref(), Some("abc123"));
        assert_eq!(with("bearer  abc123 ").as_deref(), Some("abc123"));
        assert_eq!(with("Basic abc123"), None);
        assert_eq!(with("Bearer "), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
