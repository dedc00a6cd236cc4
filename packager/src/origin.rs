//! The HTTP origin (axum): multivariant and media playlists with blocking
//! reload and delta updates, init segments, segments and parts, with the
//! caching headers a CDN needs, CORS for browser players, HEAD and gzip.
//!
//! URIs: `/hls/{channel}/index.m3u8` (multivariant, follows the newest session),
//! `/hls/{channel}/{session}/{rendition}/{index.m3u8|init{v}.mp4|seg{msn}.m4s|part{msn}.{i}.m4s}`;
//! with a DVR window, `/hls/{channel}/dvr.m3u8` and `.../{rendition}/dvr.m3u8`
//! (the whole window, its old segments in the recording: `crate::dvr`).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;
use tower_http::cors::{Any, CorsLayer};

use crate::cache_control::{Freshness, NO_STORE};
use crate::live_stream::LiveStream;
use crate::origin_store::OriginStore;
use crate::rendition::{ArchivedFile, PlaylistView, Progress, Rendition, SoFar};

const PLAYLIST: &str = "application/vnd.apple.mpegurl";
const SEGMENT: &str = "video/iso.segment";
/// How long a playlist request on a new stream waits for its first complete
/// segment (at least; a rendition with longer segments waits two of them).
const FIRST_SEGMENT_WAIT: Duration = Duration::from_secs(10);

/// How parts and segments still being made reach a client that asks for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PartDelivery {
    /// Answered at once with chunked transfer; each frame's CMAF chunk is
    /// sent as soon as it is packaged (within a frame of ingest).
    #[default]
    Chunks,
    /// A part's bytes leave only once the whole part can (RFC 8216bis
    /// 6.2.6, for clients that measure bandwidth per part); a segment in
    /// progress is sent part by part.
    WholeParts,
}

/// What the routes share.
#[derive(Debug, Clone)]
struct Origin {
    store: Arc<OriginStore>,
    delivery: PartDelivery,
}

/// The origin's routes over `store`, delivering parts while they are made.
pub fn router(store: Arc<OriginStore>) -> Router {
    router_with(store, PartDelivery::default())
}

/// The origin's routes over `store`.
pub fn router_with(store: Arc<OriginStore>, delivery: PartDelivery) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([axum::http::Method::GET, axum::http::Method::HEAD, axum::http::Method::OPTIONS])
        .allow_headers(Any)
        .expose_headers([header::CONTENT_LENGTH, header::AGE, header::DATE])
        // The answer is the same for every origin: no `Vary: Origin`, which
        // would split a CDN's cache (and its request collapsing) per embedding site.
        .vary([] as [header::HeaderName; 0]);
    Router::new()
        .route("/hls/{channel}/index.m3u8", get(multivariant))
        .route("/hls/{channel}/dvr.m3u8", get(dvr_multivariant))
        .route("/hls/{channel}/{session}/{rendition}/{file}", get(media_file))
        .layer(cors)
        .with_state(Origin { store, delivery })
}

/// Query parameters of LL-HLS playlist requests.
#[derive(Debug, Default, Deserialize)]
pub struct PlaylistQuery {
    #[serde(rename = "_HLS_msn")]
    msn: Option<String>,
    #[serde(rename = "_HLS_part")]
    part: Option<String>,
    #[serde(rename = "_HLS_skip")]
    skip: Option<String>,
}

/// A request that could not be served.
#[derive(Debug)]
struct Failure(StatusCode, &'static str);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut response = (self.0, self.1).into_response();
        // Not cached anywhere: what is missing now may exist a moment later.
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
        response
    }
}

async fn multivariant(
    State(Origin { store, .. }): State<Origin>,
    Path(channel): Path<String>,
    headers: HeaderMap,
) -> Response {
    multivariant_of(&store, &channel, PlaylistView::Live, &headers).await
}

/// The multivariant playlist over the renditions' DVR playlists (404 without a DVR window).
async fn dvr_multivariant(
    State(Origin { store, .. }): State<Origin>,
    Path(channel): Path<String>,
    headers: HeaderMap,
) -> Response {
    multivariant_of(&store, &channel, PlaylistView::Dvr, &headers).await
}

async fn multivariant_of(store: &OriginStore, channel: &str, view: PlaylistView, headers: &HeaderMap) -> Response {
    let Some(stream) = store.current(channel) else {
        return Failure(StatusCode::NOT_FOUND, "no stream on this channel\n").into_response();
    };
    let ready = stream.is_described() && has_first_segments(&stream);
    if !ready && !wait_first_segments(&stream).await {
        return Failure(StatusCode::SERVICE_UNAVAILABLE, "stream has no media yet\n").into_response();
    }
    if view == PlaylistView::Dvr && !stream.renditions.iter().any(|r| r.has_dvr() && !r.is_hidden()) {
        return Failure(StatusCode::NOT_FOUND, "this channel has no DVR window\n").into_response();
    }
    let text = Bytes::from(stream.multivariant_of(view));
    // It changes when a new publish starts a new session: as fresh as a live playlist.
    let target_duration = stream.renditions.iter().map(|r| r.target_duration()).min().unwrap_or(1);
    playlist_response(text, None, Freshness::LivePlaylist { target_duration }, headers)
}

/// Whether every rendition has a complete segment (or ended).
fn has_first_segments(stream: &LiveStream) -> bool {
    stream.renditions.iter().all(|r| first_segment_done(&r.progress()))
}

fn first_segment_done(p: &Progress) -> bool {
    p.last_complete.is_some() || p.ended
}

/// Waits until every rendition of a fresh stream has a complete segment.
/// Players start right after the first playlist they get, and some cannot
/// start from a playlist of parts alone: Shaka Player 5.2 asks for the
/// unfinished segment's URI, which a playlist of parts does not have, and
/// throws. Holding the first request costs at most one segment, once per session.
async fn wait_first_segments(stream: &Arc<LiveStream>) -> bool {
    for rendition in &stream.renditions {
        if !wait_first_segment(rendition).await {
            return false;
        }
    }
    stream.is_described()
}

async fn wait_first_segment(rendition: &Rendition) -> bool {
    let wait = FIRST_SEGMENT_WAIT.max(Duration::from_secs(2 * rendition.target_duration()));
    let mut rx = rendition.subscribe();
    matches!(tokio::time::timeout(wait, rx.wait_for(first_segment_done)).await, Ok(Ok(_)))
}

async fn media_file(
    State(Origin { store, delivery }): State<Origin>,
    Path((channel, session, rendition, file)): Path<(String, String, String, String)>,
    Query(query): Query<PlaylistQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(stream) = store.stream(&channel, &session) else {
        return Failure(StatusCode::NOT_FOUND, "unknown stream\n").into_response();
    };
    let Some(rendition) = stream.rendition(&rendition).cloned() else {
        return Failure(StatusCode::NOT_FOUND, "unknown rendition\n").into_response();
    };
    let result = match parse_file(&file) {
        Some(MediaFile::Playlist) => media_playlist(&stream, &rendition, PlaylistView::Live, query, &headers).await,
        Some(MediaFile::DvrPlaylist) => media_playlist(&stream, &rendition, PlaylistView::Dvr, query, &headers).await,
        Some(MediaFile::Init(version)) => match rendition.init(version) {
            Some(data) => Ok(media_response(data, "video/mp4")),
            None => archived(&rendition, ArchivedFile::Init(version)),
        },
        Some(MediaFile::Segment(msn)) => {
            segment(&rendition, msn, delivery).or_else(|_| archived(&rendition, ArchivedFile::Segment(msn)))
        }
        Some(MediaFile::Part(msn, index)) => part(&rendition, msn, index, delivery).await,
        None => Err(NOT_FOUND),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

const NOT_FOUND: Failure = Failure(StatusCode::NOT_FOUND, "not found\n");

#[derive(Debug, PartialEq, Eq)]
pub enum MediaFile {
    Playlist,
    /// `dvr.m3u8`: the DVR window's media playlist.
    DvrPlaylist,
    Init(u32),
    Segment(u64),
    Part(u64, u32),
}

/// The file part of a media URI (public for the `origin_request` fuzz target).
pub fn parse_file(file: &str) -> Option<MediaFile> {
    if file == "index.m3u8" {
        return Some(MediaFile::Playlist);
    }
    if file == "dvr.m3u8" {
        return Some(MediaFile::DvrPlaylist);
    }
    if let Some(v) = file.strip_prefix("init").and_then(|f| f.strip_suffix(".mp4")) {
        return digits(v).map(MediaFile::Init);
    }
    if let Some(n) = file.strip_prefix("seg").and_then(|f| f.strip_suffix(".m4s")) {
        return digits(n).map(MediaFile::Segment);
    }
    let (msn, index) = file.strip_prefix("part")?.strip_suffix(".m4s")?.split_once('.')?;
    Some(MediaFile::Part(digits(msn)?, digits(index)?))
}

/// Strict decimal: no sign, no leading `+`, no whitespace.
fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

async fn media_playlist(
    stream: &LiveStream,
    rendition: &Arc<Rendition>,
    view: PlaylistView,
    query: PlaylistQuery,
    headers: &HeaderMap,
) -> Result<Response, Failure> {
    let msn = match query.msn.as_deref() {
        Some(v) => {
            Some(digits::<u64>(v).ok_or(Failure(StatusCode::BAD_REQUEST, "_HLS_msn must be a decimal integer\n"))?)
        }
        None => None,
    };
    let part = match query.part.as_deref() {
        Some(v) => {
            Some(digits::<u32>(v).ok_or(Failure(StatusCode::BAD_REQUEST, "_HLS_part must be a decimal integer\n"))?)
        }
        None => None,
    };
    let skip = match query.skip.as_deref() {
        None => false,
        Some("YES" | "v2") => true,
        Some(_) => return Err(Failure(StatusCode::BAD_REQUEST, "_HLS_skip must be YES or v2\n")),
    };
    if part.is_some() && msn.is_none() {
        return Err(Failure(StatusCode::BAD_REQUEST, "_HLS_part requires _HLS_msn\n"));
    }
    // A finished playlist ignores the directives (RFC 8216bis 6.2.5.1, 6.2.5.2).
    let progress = rendition.progress();
    let msn = msn.filter(|_| !progress.ended);
    let skip = skip && !progress.ended;
    let blocking = msn.is_some();
    if !blocking && !first_segment_done(&progress) && !wait_first_segment(rendition).await {
        return Err(Failure(StatusCode::SERVICE_UNAVAILABLE, "stream has no media yet\n"));
    }
    if let Some(msn) = msn {
        check_directives(rendition, &progress, msn, part)?;
        let wait = Duration::from_secs(3 * rendition.target_duration());
        let ready = move |p: &Progress| match part {
            Some(part) => p.has_part(msn, part),
            None => p.has_segment(msn),
        };
        let mut rx = rendition.subscribe();
        match tokio::time::timeout(wait, rx.wait_for(ready)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return Err(NOT_FOUND),
            Err(_) => {
                return Err(Failure(StatusCode::SERVICE_UNAVAILABLE, "the requested part did not appear in time\n"));
            }
        }
    }
    let reports = stream.reports_of(&rendition.name, view);
    let rendered = rendition.playlist_of(view, skip, reports).ok_or(NOT_FOUND)?;
    let target_duration = rendition.target_duration();
    let freshness = if rendition.progress().ended {
        Freshness::FinalPlaylist { target_duration }
    } else if blocking {
        Freshness::BlockingPlaylist { target_duration }
    } else {
        Freshness::LivePlaylist { target_duration }
    };
    Ok(playlist_response(rendered.text.clone(), Some(rendered.gzip.clone()), freshness, headers))
}

/// Refuses at once what could only be answered after a long hold (RFC
/// 8216bis 6.2.5.2): `_HLS_msn` more than two past the last complete segment,
/// or `_HLS_part` further past the last part than the Advance Part Limit.
fn check_directives(rendition: &Rendition, progress: &Progress, msn: u64, part: Option<u32>) -> Result<(), Failure> {
    if msn > progress.last_complete.map_or(1, |last| last + 2) {
        return Err(Failure(StatusCode::BAD_REQUEST, "_HLS_msn is more than two segments past the last one\n"));
    }
    let (Some(part), Some(part_target)) = (part, rendition.part_target()) else { return Ok(()) };
    let target = rendition.target_duration() as f64;
    let parts_per_segment = (target / part_target).ceil().max(1.0) as u64;
    let ahead = parts_ahead(progress, msn, part, parts_per_segment);
    if ahead as f64 > advance_part_limit(part_target) {
        return Err(Failure(StatusCode::BAD_REQUEST, "_HLS_part is beyond the Advance Part Limit\n"));
    }
    Ok(())
}

/// The Advance Part Limit: three seconds of parts, at least three parts.
fn advance_part_limit(part_target: f64) -> f64 {
    if part_target < 1.0 { 3.0 / part_target } else { 3.0 }
}

/// How many parts `(msn, part)` lies past the last published one; segments
/// not made yet are counted as `parts_per_segment` parts.
fn parts_ahead(progress: &Progress, msn: u64, part: u32, parts_per_segment: u64) -> u64 {
    let Some((last_msn, last_part)) = progress.last_part else {
        return msn * parts_per_segment + part as u64 + 1;
    };
    if (msn, part) <= (last_msn, last_part) {
        return 0;
    }
    if msn == last_msn {
        return (part - last_part) as u64;
    }
    let rest_of_last = if progress.last_complete >= Some(last_msn) {
        0
    } else {
        parts_per_segment.saturating_sub(last_part as u64 + 1)
    };
    rest_of_last + (msn - last_msn - 1) * parts_per_segment + part as u64 + 1
}

/// Serves a part. The hinted part, or one being made, is answered at once
/// and sent as it is made (`Chunks`), or held until it is whole
/// (`WholeParts`: 503 if the live stream stalls that long, 404 if it ends first).
async fn part(rendition: &Arc<Rendition>, msn: u64, index: u32, delivery: PartDelivery) -> Result<Response, Failure> {
    let chunks = delivery == PartDelivery::Chunks;
    let deadline = tokio::time::Instant::now() + made_within(rendition);
    // Subscribed before looking, so a part published in between still wakes us.
    let mut rx = rendition.subscribe_made();
    loop {
        match rendition.part_so_far(msn, index, chunks) {
            SoFar::Made { mut pieces, complete: true } => {
                return Ok(media_response(pieces.pop().unwrap_or_default(), SEGMENT));
            }
            SoFar::Gone => return Err(NOT_FOUND),
            _ if chunks => return Ok(progressive_response(rendition.clone(), Piece::Part(msn, index), chunks)),
            _ => {}
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(NOT_FOUND),
            Err(_) => return Err(Failure(StatusCode::SERVICE_UNAVAILABLE, "the hinted part did not appear in time\n")),
        }
    }
}

/// A file of the DVR window that left memory: a permanent redirect to where
/// it lies (the recording), so its URI in the playlist never changes.
fn archived(rendition: &Rendition, file: ArchivedFile) -> Result<Response, Failure> {
    let location = rendition.archived_location(file).ok_or(NOT_FOUND)?;
    let location = HeaderValue::from_str(&location).map_err(|_| NOT_FOUND)?;
    let mut response = StatusCode::MOVED_PERMANENTLY.into_response();
    let h = response.headers_mut();
    h.insert(header::LOCATION, location);
    h.insert(header::CACHE_CONTROL, Freshness::Media.header());
    Ok(response)
}

/// Serves a segment; the one being made (or the next) is answered at once
/// and sent as it is made: chunk by chunk, or part by part with `WholeParts`.
fn segment(rendition: &Arc<Rendition>, msn: u64, delivery: PartDelivery) -> Result<Response, Failure> {
    let chunks = delivery == PartDelivery::Chunks;
    match rendition.segment_so_far(msn, chunks) {
        SoFar::Made { mut pieces, complete: true } => Ok(media_response(pieces.pop().unwrap_or_default(), SEGMENT)),
        SoFar::Gone => Err(NOT_FOUND),
        _ => Ok(progressive_response(rendition.clone(), Piece::Segment(msn), chunks)),
    }
}

/// How long a live stream may go without making what a request waits for.
fn made_within(rendition: &Rendition) -> Duration {
    Duration::from_secs(3 * rendition.target_duration())
}

/// A part or a segment, for a response that follows it while it is made.
#[derive(Debug, Clone, Copy)]
enum Piece {
    Part(u64, u32),
    Segment(u64),
}

/// A 200 with chunked transfer whose body is the resource as it is made.
/// The body ends when the resource is whole; it is cut short (so no cache
/// keeps it) if the stream ends without it or stalls for three target durations.
fn progressive_response(rendition: Arc<Rendition>, piece: Piece, chunks: bool) -> Response {
    let made = rendition.subscribe_made();
    let follow = Follow { rendition, piece, chunks, made, sent: 0, done: false };
    let body = futures_util::stream::unfold(follow, |mut follow| async move {
        let next = follow.next().await?;
        Some((next, follow))
    });
    let mut response = Response::new(Body::from_stream(body));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(SEGMENT));
    h.insert(header::CACHE_CONTROL, Freshness::Media.header());
    response
}

/// Follows one part or segment as it is made, yielding the bytes not sent yet.
struct Follow {
    rendition: Arc<Rendition>,
    piece: Piece,
    chunks: bool,
    made: tokio::sync::watch::Receiver<u64>,
    sent: usize,
    done: bool,
}

impl Follow {
    async fn next(&mut self) -> Option<std::io::Result<Bytes>> {
        if self.done {
            return None;
        }
        loop {
            let so_far = match self.piece {
                Piece::Part(msn, index) => self.rendition.part_so_far(msn, index, self.chunks),
                Piece::Segment(msn) => self.rendition.segment_so_far(msn, self.chunks),
            };
            match so_far {
                SoFar::Made { pieces, complete } => {
                    let fresh = unsent(&pieces, self.sent);
                    self.sent += fresh.len();
                    self.done = complete;
                    if !fresh.is_empty() {
                        return Some(Ok(fresh));
                    }
                    if complete {
                        return None;
                    }
                }
                SoFar::Coming => {}
                SoFar::Gone => return self.cut("the stream ended before it was made"),
            }
            match tokio::time::timeout(made_within(&self.rendition), self.made.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return self.cut("the stream ended before it was made"),
                Err(_) => return self.cut("the stream stalled while it was made"),
            }
        }
    }

    fn cut(&mut self, why: &'static str) -> Option<std::io::Result<Bytes>> {
        self.done = true;
        Some(Err(std::io::Error::other(why)))
    }
}

/// The bytes of `pieces` (in order) past the first `sent`, as one buffer.
fn unsent(pieces: &[Bytes], sent: usize) -> Bytes {
    let mut start = 0;
    let mut fresh: Vec<Bytes> = Vec::new();
    for piece in pieces {
        let end = start + piece.len();
        if end > sent {
            fresh.push(piece.slice(sent.saturating_sub(start).min(piece.len())..));
        }
        start = end;
    }
    match fresh.len() {
        0 => Bytes::new(),
        1 => fresh.pop().unwrap_or_default(),
        _ => {
            let mut joined = bytes::BytesMut::with_capacity(fresh.iter().map(Bytes::len).sum());
            fresh.iter().for_each(|b| joined.extend_from_slice(b));
            joined.freeze()
        }
    }
}

fn media_response(data: Bytes, content_type: &'static str) -> Response {
    let mut response = Response::new(Body::from(data));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, Freshness::Media.header());
    response
}

fn playlist_response(text: Bytes, gzip: Option<Bytes>, freshness: Freshness, request: &HeaderMap) -> Response {
    let accepts_gzip =
        request.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
            |coding| {
                let mut fields = coding.trim().split(';');
                fields.next().is_some_and(|c| c.trim().eq_ignore_ascii_case("gzip"))
                    && !fields.any(|q| q.trim().replace(' ', "") == "q=0")
            },
        );
    let gzip = gzip.or_else(|| accepts_gzip.then(|| gzip_bytes(&text)));
    let (body, encoded) = match gzip {
        Some(gz) if accepts_gzip => (gz, true),
        _ => (text, false),
    };
    let mut response = Response::new(Body::from(body));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PLAYLIST));
    h.insert(header::CACHE_CONTROL, freshness.header());
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if encoded {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

fn gzip_bytes(data: &[u8]) -> Bytes {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = encoder.write_all(data);
    Bytes::from(encoder.finish().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_media_file_names() {
        let cases = [
            ("index.m3u8", Some(MediaFile::Playlist)),
            ("dvr.m3u8", Some(MediaFile::DvrPlaylist)),
            ("init0.mp4", Some(MediaFile::Init(0))),
            ("seg12.m4s", Some(MediaFile::Segment(12))),
            ("part12.3.m4s", Some(MediaFile::Part(12, 3))),
            ("part12.m4s", None),
            ("seg-1.m4s", None),
            ("seg+1.m4s", None),
            ("seg1.mp4", None),
            ("../etc/passwd", None),
            ("init99999999999999999999.mp4", None),
        ];
        for (name, want) in cases {
            assert_eq!(parse_file(name), want, "{name}");
        }
    }
}
