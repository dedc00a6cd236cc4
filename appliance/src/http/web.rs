//! The pages the appliance serves besides the origin: the live preview at
//! `/?channel=<name>` with hls.js embedded in the binary (`/` alone leads to
//! the console), the viewers' watch page `/watch/{channel}` (embeddable in an
//! iframe), the broadcasters' go-live page `/golive/{channel}` (camera and
//! microphone sent over WHIP), and a health probe.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("../../../webui/index.html");
const HLS_JS: &[u8] = include_bytes!("../../../webui/vendor/hls.min.js");
const WATCH_HTML: &str = include_str!("../../../webui/watch.html");
const WATCH_JS: &str = include_str!("../../../webui/watch.js");
const GOLIVE_HTML: &str = include_str!("../../../webui/golive.html");
const GOLIVE_JS: &str = include_str!("../../../webui/golive.js");
const PART_GUARD_JS: &[u8] = include_bytes!("../../../webui/hls-part-guard.js");

pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/hls.min.js", get(hls_js))
        .route("/assets/hls-part-guard.js", get(part_guard_js))
        .route("/watch/{channel}", get(watch))
        .route("/assets/watch.js", get(watch_js))
        .route("/golive/{channel}", get(golive))
        .route("/assets/golive.js", get(golive_js))
}

/// The live preview of `?channel=`; without one, the operator's console.
async fn index(axum::extract::RawQuery(query): axum::extract::RawQuery) -> Response {
    if !query.as_deref().unwrap_or("").split('&').any(|pair| pair.starts_with("channel=")) {
        return axum::response::Redirect::to("/console/").into_response();
    }
    page(
        INDEX_HTML,
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; media-src 'self' blob:; worker-src 'self' blob:; img-src 'self' data:",
    )
}

/// An HTML page, never cached without revalidation, under `csp`.
fn page(html: &'static str, csp: &'static str) -> Response {
    let mut response = Html(html).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// A script with its `Cache-Control`.
fn script(body: &'static [u8], cache_control: &'static str) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    response
}

async fn hls_js() -> Response {
    script(HLS_JS, "public, max-age=86400")
}

async fn part_guard_js() -> Response {
    script(PART_GUARD_JS, "no-cache")
}

/// The watch page of a channel (it reads the channel from its own path).
/// Other sites may frame it: that is what the embed snippet is for.
async fn watch() -> Response {
    page(
        WATCH_HTML,
        "default-src 'self'; script-src 'self'; style-src 'unsafe-inline'; media-src 'self' blob:; worker-src 'self' blob:; img-src 'self' data:; frame-ancestors *",
    )
}

async fn watch_js() -> Response {
    script(WATCH_JS.as_bytes(), "no-cache")
}

/// The go-live page of a channel: this browser's camera and microphone sent
/// to `/whip/{channel}`. Only this origin may frame it, and only it may ask
/// for the camera.
async fn golive() -> Response {
    let mut response = page(
        GOLIVE_HTML,
        "default-src 'self'; script-src 'self'; style-src 'unsafe-inline'; media-src 'self' blob: mediastream:; connect-src 'self'; img-src 'self' data:; frame-ancestors 'self'",
    );
    let permissions = HeaderValue::from_static("camera=(self), microphone=(self)");
    response.headers_mut().insert(HeaderName::from_static("permissions-policy"), permissions);
    response
}

async fn golive_js() -> Response {
    script(GOLIVE_JS.as_bytes(), "no-cache")
}
