//! `/hls/{channel}/thumb.jpg`: the latest picture of a live channel (see
//! `live::thumbnails`), beside the origin with the same CORS. A cache may
//! keep it about one thumbnail interval; a channel not live (or with no
//! picture yet) answers 404, stored nowhere.
//!
//! Headers besides the JPEG's: `X-Thumbnail-Pts`, the keyframe's
//! presentation time in the rendition's 90 kHz timeline (the recording's
//! timeline too), `X-Thumbnail-Session` and `X-Thumbnail-Rendition`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use packager::cache_control::NO_STORE;
use tower_http::cors::{Any, CorsLayer};

use crate::live::thumbnails::LatestThumbnails;

const PTS: HeaderName = HeaderName::from_static("x-thumbnail-pts");
const SESSION: HeaderName = HeaderName::from_static("x-thumbnail-session");
const RENDITION: HeaderName = HeaderName::from_static("x-thumbnail-rendition");

/// The thumbnail route over `latest`.
pub fn router(latest: Arc<LatestThumbnails>) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([axum::http::Method::GET, axum::http::Method::HEAD, axum::http::Method::OPTIONS])
        .expose_headers([PTS, SESSION, RENDITION])
        .vary([] as [HeaderName; 0]);
    Router::new().route("/hls/{channel}/thumb.jpg", get(thumbnail)).layer(cors).with_state(latest)
}

async fn thumbnail(State(latest): State<Arc<LatestThumbnails>>, Path(channel): Path<String>) -> Response {
    let Some(picture) = latest.get(&channel) else {
        let headers = [(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE))];
        return (StatusCode::NOT_FOUND, headers, "no thumbnail: the channel is not live").into_response();
    };
    let max_age = latest.settings().interval.as_secs().max(1);
    let text = |value: String| HeaderValue::try_from(value).unwrap_or_else(|_| HeaderValue::from_static(""));
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
        (header::CACHE_CONTROL, text(format!("public, max-age={max_age}"))),
        (header::LAST_MODIFIED, text(httpdate::fmt_http_date(picture.made_at))),
        (PTS, text(picture.thumbnail.pts.to_string())),
        (SESSION, text(picture.session.clone())),
        (RENDITION, text(picture.rendition.clone())),
    ];
    (headers, picture.thumbnail.jpeg.clone()).into_response()
}
