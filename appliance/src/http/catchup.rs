//! Catchup: each finished recording served from disk as HLS VOD, beside the
//! live origin and with the same headers (CORS, immutable media for CDNs).
//!
//! URIs: `/hls/{channel}/recordings/{session}/master.m3u8` (multivariant),
//! `/hls/{channel}/recordings/{session}/{rendition}/index.m3u8` (media
//! playlist) and `.../{rendition}/{init<v>.mp4|seg<msn>.m4s}`; its
//! scrubbing track `.../thumbnails.vtt` (WebVTT, cues
//! `thumbnails/sprite-<n>.jpg#xywh=x,y,w,h`) and the sheets
//! `.../thumbnails/sprite-<n>.jpg`, once it is finished; and
//! `.../export.mp4?start=&duration=&rendition=`, one MP4 of it (see
//! `recordings::export`). Files are
//! streamed from disk (never read whole into memory) with range requests,
//! conditional requests and HEAD (tower-http's `ServeFile`). A recording
//! still in progress has no playlists yet (404); a recording never changes
//! once finished, so its playlists are immutable too.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use packager::cache_control::{Freshness, NO_STORE};
use tower::ServiceExt;
use tower_http::cors::{Any, CorsLayer};
use tower_http::services::ServeFile;

use crate::recordings::catchup::{media_playlist, multivariant};
use crate::recordings::export::{ExportError, ExportRequest, export};
use crate::recordings::layout::is_plain_name;
use crate::recordings::scrubbing::{self, THUMBNAILS_DIR, is_sprite_file};
use crate::recordings::{Recording, RecordingError, Recordings};

const PLAYLIST: &str = "application/vnd.apple.mpegurl";

/// The catchup routes over `recordings`.
pub fn router(recordings: Recordings) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([axum::http::Method::GET, axum::http::Method::HEAD, axum::http::Method::OPTIONS])
        .allow_headers(Any)
        .expose_headers([header::CONTENT_LENGTH, header::CONTENT_RANGE, header::ACCEPT_RANGES])
        .vary([] as [header::HeaderName; 0]);
    Router::new()
        .route("/hls/{channel}/recordings/{session}/master.m3u8", get(master))
        .route("/hls/{channel}/recordings/{session}/thumbnails.vtt", get(scrubbing_track))
        .route("/hls/{channel}/recordings/{session}/export.mp4", get(export_mp4))
        .route("/hls/{channel}/recordings/{session}/thumbnails/{file}", get(sprite_sheet))
        .route("/hls/{channel}/recordings/{session}/{rendition}/{file}", get(rendition_file))
        .layer(cors)
        .with_state(recordings)
}

async fn master(State(recordings): State<Recordings>, Path((channel, session)): Path<(String, String)>) -> Response {
    let read = tokio::task::spawn_blocking(move || {
        let recording = recordings.catalog().get(&channel, &session)?;
        let mut indexes = Vec::new();
        for rendition in &recording.meta.renditions {
            indexes.push(recordings.catalog().rendition(&channel, &session, &rendition.name)?.1.entries);
        }
        Ok::<_, RecordingError>((recording, indexes))
    })
    .await;
    match read {
        Ok(Ok((recording, indexes))) if finished(&recording) => playlist(multivariant(&recording, &indexes)),
        Ok(Ok(_)) | Ok(Err(RecordingError::NotFound { .. })) => not_found(),
        Ok(Err(e)) => failed(e),
        Err(e) => failed(e),
    }
}

async fn rendition_file(
    State(recordings): State<Recordings>,
    Path((channel, session, rendition, file)): Path<(String, String, String, String)>,
    request: Request,
) -> Response {
    if file == "index.m3u8" {
        let read =
            tokio::task::spawn_blocking(move || recordings.catalog().rendition(&channel, &session, &rendition)).await;
        return match read {
            Ok(Ok((meta, index))) if meta.state.is_finished() && !index.entries.is_empty() => {
                playlist(media_playlist(&index.entries))
            }
            Ok(Ok(_)) | Ok(Err(RecordingError::NotFound { .. })) => not_found(),
            Ok(Err(e)) => failed(e),
            Err(e) => failed(e),
        };
    }
    let Some(path) = recordings.catalog().media_path(&channel, &session, &rendition, &file) else {
        return not_found();
    };
    let content_type = if file.ends_with(".mp4") { "video/mp4" } else { "video/iso.segment" };
    serve_file(path, content_type, request).await
}

/// The WebVTT scrubbing track of a finished recording (404 without thumbnails).
async fn scrubbing_track(
    State(recordings): State<Recordings>,
    Path((channel, session)): Path<(String, String)>,
) -> Response {
    let read = tokio::task::spawn_blocking(move || {
        let recording = recordings.catalog().get(&channel, &session)?;
        let tiles = scrubbing::load(&recordings.catalog().layout().session_dir(&channel, &session))?;
        Ok::<_, RecordingError>((recording, tiles))
    })
    .await;
    match read {
        Ok(Ok((recording, tiles))) if finished(&recording) && !tiles.is_empty() => {
            let headers = [
                (header::CONTENT_TYPE, HeaderValue::from_static("text/vtt; charset=utf-8")),
                (header::CACHE_CONTROL, Freshness::Media.header()),
            ];
            (headers, scrubbing::vtt(&tiles, recording.duration_seconds())).into_response()
        }
        Ok(Ok(_)) | Ok(Err(RecordingError::NotFound { .. })) => not_found(),
        Ok(Err(e)) => failed(e),
        Err(e) => failed(e),
    }
}

/// Reads `start`, `duration` (seconds) and `rendition` from a query.
fn export_request(query: Option<&str>) -> Result<ExportRequest, String> {
    let mut request = ExportRequest::default();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let seconds = |v: &str| v.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0 && *s <= 1e7);
        match &*key {
            "start" => request.start = seconds(&value).ok_or(format!("start={value} is not seconds"))?,
            "duration" => {
                request.duration =
                    Some(seconds(&value).filter(|d| *d > 0.0).ok_or(format!("duration={value} is not seconds"))?)
            }
            "rendition" => request.rendition = Some(value.into_owned()),
            _ => return Err(format!("unknown parameter {key}")),
        }
    }
    Ok(request)
}

/// One MP4 (faststart) of a finished recording, or of a range of it, cut on
/// keyframes; made into a file first, then served from it with ranges.
async fn export_mp4(
    State(recordings): State<Recordings>,
    Path((channel, session)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    let asked = match export_request(query.as_deref()) {
        Ok(asked) => asked,
        Err(reason) => {
            return (StatusCode::BAD_REQUEST, [(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE))], reason)
                .into_response();
        }
    };
    let made = tokio::task::spawn_blocking(move || export(recordings.catalog(), &channel, &session, &asked)).await;
    let files = match made {
        Ok(Ok(files)) => files,
        Ok(Err(ExportError::Recording(RecordingError::NotFound { .. }))) => return not_found(),
        Ok(Err(e @ (ExportError::InProgress | ExportError::Unsupported(_)))) => {
            let headers = [(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE))];
            return (StatusCode::CONFLICT, headers, e.to_string()).into_response();
        }
        Ok(Err(e)) => return failed(e),
        Err(e) => return failed(e),
    };
    tracing::info!(rendition = %files.rendition, start = files.exported.start, duration = files.exported.duration, "MP4 export");
    // The response holds the file open: its folder goes when `files` drops, the bytes when the response ends.
    let mut response = serve_file(files.mp4(), "video/mp4", request).await;
    let start = HeaderValue::try_from(format!("{:.3}", files.exported.start)).unwrap_or(HeaderValue::from_static("0"));
    response.headers_mut().insert(HeaderName::from_static("x-export-start"), start);
    response
        .headers_mut()
        .insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"recording.mp4\""));
    response
}

/// A sprite sheet of a finished recording's thumbnails.
async fn sprite_sheet(
    State(recordings): State<Recordings>,
    Path((channel, session, file)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    if !(is_plain_name(&channel) && is_plain_name(&session) && is_sprite_file(&file)) {
        return not_found();
    }
    let dir = recordings.catalog().layout().session_dir(&channel, &session);
    // Only once finished: the last sheet is rewritten while its tiles come.
    let meta_dir = dir.clone();
    match tokio::task::spawn_blocking(move || crate::recordings::meta::read(&meta_dir)).await {
        Ok(Ok(meta)) if meta.state.is_finished() => {
            serve_file(dir.join(THUMBNAILS_DIR).join(file), "image/jpeg", request).await
        }
        _ => not_found(),
    }
}

/// A file from disk (ranges, conditional requests), cached like media.
async fn serve_file(path: std::path::PathBuf, content_type: &'static str, request: Request) -> Response {
    let mut response = match ServeFile::new(path).oneshot(request).await {
        Ok(response) => response.map(Body::new),
        Err(e) => return failed(e),
    };
    let status = response.status();
    let headers = response.headers_mut();
    if status.is_success() || status == StatusCode::NOT_MODIFIED {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, Freshness::Media.header());
    } else {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
    }
    response
}

fn finished(recording: &Recording) -> bool {
    recording.meta.state.is_finished() && recording.renditions.iter().any(|r| r.segments > 0)
}

fn playlist(text: String) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(PLAYLIST)),
        // A finished recording never changes under its URI (the session is in it).
        (header::CACHE_CONTROL, Freshness::Media.header()),
    ];
    (headers, text).into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE))], "no such recording")
        .into_response()
}

fn failed(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "catchup: cannot read a recording");
    (StatusCode::INTERNAL_SERVER_ERROR, [(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE))], "")
        .into_response()
}
