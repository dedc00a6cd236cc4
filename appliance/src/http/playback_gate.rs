//! The origin's gate for private channels: every request under
//! `/hls/{channel}/` of a private channel (live and DVR playlists, parts,
//! segments, init segments, catchup, the thumbnail) needs a valid playback token in its
//! `token` query parameter, or gets 403 problem+json (never cached). What
//! it lets through is answered as for a public channel, with the token
//! carried on: added to every URI of a playlist (`packager::with_query`,
//! one pass over the cached rendering), to the sprite sheets a catchup
//! scrubbing track (WebVTT) names, and to a redirect's `Location` (the DVR
//! window's old segments), so players and CDNs that drop cookies keep it. Public channels pass untouched; their tokens are ignored.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use packager::cache_control::NO_STORE;

use crate::http::client_address;
use crate::http::problem::{ApiError, ProblemKind};
use crate::playback::PlaybackAccess;
use crate::playback::token::{self, Refusal};
use crate::state::clock;

const PLAYLIST: &str = "application/vnd.apple.mpegurl";
const WEBVTT: &str = "text/vtt";
/// Longest playlist rewritten (a 24 h DVR playlist is a few MB); a longer body is refused, not buffered.
const MAX_PLAYLIST_BYTES: usize = 32 * 1024 * 1024;

/// The channel a path of the origin names (`/hls/{channel}/...`).
pub fn channel_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/hls/")?;
    let (channel, _) = rest.split_once('/')?;
    (!channel.is_empty()).then_some(channel)
}

/// The `token` query parameter, as sent (tokens are query-safe).
fn token_of(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|pair| pair.strip_prefix(token::PARAM)?.strip_prefix('='))
}

/// The middleware over the origin's routes.
pub async fn gate(State(access): State<Arc<PlaybackAccess>>, mut request: Request, next: Next) -> Response {
    let Some(channel) = channel_of(request.uri().path()).filter(|c| access.is_private(c)) else {
        return next.run(request).await;
    };
    if request.method() == Method::OPTIONS {
        return next.run(request).await;
    }
    let client = client_address::of(request.extensions()).unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
    let token = token_of(request.uri().query());
    if let Err(refusal) = access.check(token, channel, client, clock::now_ms()) {
        return denied(refusal);
    }
    let param = format!("{}={}", token::PARAM, token.unwrap_or_default());
    // Playlists are rewritten per token: ask for them uncompressed (see the README).
    request.headers_mut().remove(header::ACCEPT_ENCODING);
    let response = next.run(request).await;
    carry_token(response, &param).await
}

fn denied(refusal: Refusal) -> Response {
    let mut response = ApiError::new(ProblemKind::PlaybackDenied, refusal.detail()).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
    // Browser players read the refusal too.
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

/// Adds `param` to a playlist's URIs and to a redirect's target.
async fn carry_token(mut response: Response, param: &str) -> Response {
    if let Some(location) = response.headers().get(header::LOCATION).and_then(|l| l.to_str().ok())
        && let Ok(value) = HeaderValue::from_str(&packager::uri_with_query(location, param))
    {
        response.headers_mut().insert(header::LOCATION, value);
    }
    let content_type = response.headers().get(header::CONTENT_TYPE).and_then(|t| t.to_str().ok()).unwrap_or("");
    let is_playlist = content_type == PLAYLIST;
    let is_track = content_type.split(';').next() == Some(WEBVTT);
    if !(is_playlist || is_track) || response.headers().contains_key(header::CONTENT_ENCODING) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match http_body_util::Limited::new(body, MAX_PLAYLIST_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return ApiError::new(ProblemKind::Internal, "the playlist could not be read").into_response(),
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return ApiError::new(ProblemKind::Internal, "the playlist is not text").into_response();
    };
    let rewritten = if is_playlist { packager::with_query(text, param) } else { track_with_query(text, param) };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(rewritten))
}

/// A scrubbing track with `param` added to each cue's sheet URL (the line after a `-->` timing line).
fn track_with_query(text: &str, param: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16 * (param.len() + 1));
    let mut after_timing = false;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        if after_timing && !body.is_empty() {
            out.push_str(&packager::uri_with_query(body, param));
            out.push_str(&line[body.len()..]);
        } else {
            out.push_str(line);
        }
        after_timing = body.contains("-->");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_channel_and_the_token() {
        assert_eq!(channel_of("/hls/studio/index.m3u8"), Some("studio"));
        assert_eq!(channel_of("/hls/studio/123/source/seg1.m4s"), Some("studio"));
        assert_eq!(channel_of("/hls//index.m3u8"), None);
        assert_eq!(channel_of("/api/v1/channels"), None);
        assert_eq!(token_of(Some("_HLS_msn=3&token=pk_a.b.c&_HLS_part=1")), Some("pk_a.b.c"));
        assert_eq!(token_of(Some("tokens=x")), None);
        assert_eq!(token_of(None), None);
    }

    /// A stand-in origin behind the gate: a playlist (gzipped when asked), a
    /// redirect and a segment, for the channels `vip` (private) and `open`.
    fn gated() -> (axum::Router, String) {
        use axum::routing::get;
        let playlist = |headers: axum::http::HeaderMap| async move {
            let gzip = headers.contains_key(header::ACCEPT_ENCODING);
            let mut response = "#EXTM3U\n#EXT-X-MAP:URI=\"init0.mp4\"\nseg1.m4s\n".into_response();
            let h = response.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PLAYLIST));
            if gzip {
                h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            response
        };
        let moved = || async {
            ([(header::LOCATION, "../../recordings/s/r/seg1.m4s")], axum::http::StatusCode::MOVED_PERMANENTLY)
        };
        let access = Arc::new(PlaybackAccess::default());
        let key = crate::state::PlaybackKey {
            id: "pk_t".into(),
            secret_hex: "11".repeat(32),
            created_ms: 0,
            retired_at_ms: None,
        };
        access.set_keys(&[key]);
        access.set_private("vip", true);
        let claims = token::Claims { channel: "vip".into(), expires: u64::MAX / 2000, network: None };
        let (text, _) = access.sign(&claims).unwrap();
        let router = axum::Router::new()
            .route("/hls/{channel}/index.m3u8", get(playlist))
            .route("/hls/{channel}/seg1.m4s", get(|| async { "media" }))
            .route("/hls/{channel}/old.m4s", get(moved))
            .layer(axum::middleware::from_fn_with_state(access, gate));
        (router, text)
    }

    async fn call(router: &axum::Router, uri: &str) -> (u16, axum::http::HeaderMap, String) {
        use tower::ServiceExt;
        let request = Request::get(uri).header(header::ACCEPT_ENCODING, "gzip").body(Body::empty()).unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (parts.status.as_u16(), parts.headers, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn the_gate_refuses_without_a_token_and_carries_a_valid_one_on() {
        let (router, good) = gated();
        let (status, headers, body) = call(&router, "/hls/vip/index.m3u8").await;
        assert_eq!(status, 403);
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
        assert_eq!(headers[header::CACHE_CONTROL], NO_STORE);
        assert!(body.contains("playback-denied") && body.contains("token is required"), "{body}");
        let (status, _, body) = call(&router, "/hls/vip/seg1.m4s?token=pk_t.AAAA.BBBB").await;
        assert!(status == 403 && body.contains("malformed"), "{body}");

        let (status, headers, body) = call(&router, &format!("/hls/vip/index.m3u8?_HLS_msn=1&token={good}")).await;
        assert_eq!(status, 200);
        assert!(!headers.contains_key(header::CONTENT_ENCODING), "asked uncompressed, answered as text");
        let want = format!("#EXTM3U\n#EXT-X-MAP:URI=\"init0.mp4?token={good}\"\nseg1.m4s?token={good}\n");
        assert_eq!(body, want);
        assert_eq!(call(&router, &format!("/hls/vip/seg1.m4s?token={good}")).await.2, "media");
        let (status, headers, _) = call(&router, &format!("/hls/vip/old.m4s?token={good}")).await;
        assert_eq!(status, 301);
        assert_eq!(headers[header::LOCATION], format!("../../recordings/s/r/seg1.m4s?token={good}").as_str());

        // A public channel: untouched, its playlist gzipped as asked, tokens ignored.
        let (status, headers, body) = call(&router, "/hls/open/index.m3u8?token=garbage").await;
        assert_eq!((status, headers[header::CONTENT_ENCODING].to_str().unwrap()), (200, "gzip"));
        assert!(!body.contains("token"), "{body}");
    }

    #[test]
    fn a_scrubbing_tracks_sheets_carry_the_token() {
        let track = "WEBVTT\n\n00:00:00.000 --> 00:00:05.000\nthumbnails/sprite-0.jpg#xywh=0,0,320,180\n";
        let want = "WEBVTT\n\n00:00:00.000 --> 00:00:05.000\nthumbnails/sprite-0.jpg?token=t#xywh=0,0,320,180\n";
        assert_eq!(track_with_query(track, "token=t"), want);
    }
}
