//! The origin's requests and bytes by kind (multivariant, playlist, blocking
//! reload, part, segment, init) and status class, and the blocking reloads
//! held now. A middleware over the origin's routes: a request costs two
//! relaxed atomic adds (the request and its bytes: at once for a body of known
//! length, when it is done for one sent as it is made, which is wrapped to
//! count it) and, for a blocking reload, one more pair for the gauge.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// What an origin request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// A channel's multivariant playlist.
    Multivariant,
    /// A media playlist answered at once.
    Playlist,
    /// A media playlist with `_HLS_msn` (held until the part or segment exists).
    BlockingReload,
    Part,
    Segment,
    Init,
    /// Anything else under `/hls/` (a bad name: answered 404).
    Other,
}

impl RequestKind {
    pub const ALL: [RequestKind; 7] = [
        RequestKind::Multivariant,
        RequestKind::Playlist,
        RequestKind::BlockingReload,
        RequestKind::Part,
        RequestKind::Segment,
        RequestKind::Init,
        RequestKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Multivariant => "multivariant",
            RequestKind::Playlist => "playlist",
            RequestKind::BlockingReload => "blocking_reload",
            RequestKind::Part => "part",
            RequestKind::Segment => "segment",
            RequestKind::Init => "init",
            RequestKind::Other => "other",
        }
    }

    /// The kind of a request for `path` (under `/hls/`) with `query`.
    pub fn of(path: &str, query: Option<&str>) -> RequestKind {
        let segments = path.trim_start_matches('/').split('/').count();
        let file = path.rsplit('/').next().unwrap_or_default();
        match (segments, packager::origin::parse_file(file)) {
            (3, Some(packager::origin::MediaFile::Playlist)) => RequestKind::Multivariant,
            (5, Some(packager::origin::MediaFile::Playlist)) => {
                let blocking = query.is_some_and(|q| q.split('&').any(|p| p.starts_with("_HLS_msn=")));
                if blocking { RequestKind::BlockingReload } else { RequestKind::Playlist }
            }
            (5, Some(packager::origin::MediaFile::Part(..))) => RequestKind::Part,
            (5, Some(packager::origin::MediaFile::Segment(_))) => RequestKind::Segment,
            (5, Some(packager::origin::MediaFile::Init(_))) => RequestKind::Init,
            _ => RequestKind::Other,
        }
    }
}

/// Status classes counted: 1xx..5xx.
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
const KINDS: usize = RequestKind::ALL.len();
const CLASSES: usize = STATUS_CLASSES.len();

/// The origin's counters.
#[derive(Debug)]
pub struct OriginRequests {
    requests: [[AtomicU64; CLASSES]; KINDS],
    bytes: [[AtomicU64; CLASSES]; KINDS],
    held_reloads: AtomicI64,
}

impl Default for OriginRequests {
    fn default() -> Self {
        OriginRequests { requests: Default::default(), bytes: Default::default(), held_reloads: AtomicI64::new(0) }
    }
}

/// One (kind, status class) cell as read at a scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OriginCount {
    pub kind: RequestKind,
    pub class: &'static str,
    pub requests: u64,
    pub bytes: u64,
}

impl OriginRequests {
    fn index(kind: RequestKind) -> usize {
        RequestKind::ALL.iter().position(|k| *k == kind).unwrap_or(KINDS - 1)
    }

    fn class(status: u16) -> usize {
        (status as usize / 100).clamp(1, 5) - 1
    }

    /// Counts a request answered with `status`.
    pub fn answered(&self, kind: RequestKind, status: u16) {
        self.requests[Self::index(kind)][Self::class(status)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `bytes` of body sent for a request answered with `status`.
    pub fn sent(&self, kind: RequestKind, status: u16, bytes: u64) {
        self.bytes[Self::index(kind)][Self::class(status)].fetch_add(bytes, Ordering::Relaxed);
    }

    /// Every cell with at least one request.
    pub fn counts(&self) -> Vec<OriginCount> {
        let mut counts = Vec::new();
        for (k, kind) in RequestKind::ALL.iter().enumerate() {
            for (c, class) in STATUS_CLASSES.iter().enumerate() {
                let requests = self.requests[k][c].load(Ordering::Relaxed);
                if requests > 0 {
                    let bytes = self.bytes[k][c].load(Ordering::Relaxed);
                    counts.push(OriginCount { kind: *kind, class, requests, bytes });
                }
            }
        }
        counts
    }

    /// Blocking playlist reloads waiting now.
    pub fn held_reloads(&self) -> u64 {
        self.held_reloads.load(Ordering::Relaxed).max(0) as u64
    }
}

/// Takes a held reload off the gauge however its request ends (answered, or the client gone).
struct Held<'a>(&'a AtomicI64);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The middleware: counts each origin request and the bytes of its body.
pub async fn count_requests(State(counters): State<Arc<OriginRequests>>, request: Request, next: Next) -> Response {
    let kind = RequestKind::of(request.uri().path(), request.uri().query());
    let response = if kind == RequestKind::BlockingReload {
        counters.held_reloads.fetch_add(1, Ordering::Relaxed);
        let _held = Held(&counters.held_reloads);
        next.run(request).await
    } else {
        next.run(request).await
    };
    let status = response.status().as_u16();
    counters.answered(kind, status);
    // A body of known length (a whole part, segment or playlist) is counted at once;
    // only one sent as it is made is followed, so a whole response costs no allocation here.
    if let Some(length) = http_body::Body::size_hint(response.body()).exact() {
        counters.sent(kind, status, length);
        return response;
    }
    let (parts, body) = response.into_parts();
    let counted = CountedBody { inner: body, counters, kind, status, sent: 0 };
    Response::from_parts(parts, Body::new(counted))
}

/// A response body sent as it is made, which adds the bytes it passed on to the counters
/// when it is dropped (sent in full, or cut short with the connection).
struct CountedBody {
    inner: Body,
    counters: Arc<OriginRequests>,
    kind: RequestKind,
    status: u16,
    sent: u64,
}

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.sent += data.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for CountedBody {
    fn drop(&mut self) {
        self.counters.sent(self.kind, self.status, self.sent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_kinds_follow_the_origin_uris() {
        let cases = [
            ("/hls/cam/index.m3u8", None, RequestKind::Multivariant),
            ("/hls/cam/s1/720p/index.m3u8", None, RequestKind::Playlist),
            ("/hls/cam/s1/720p/index.m3u8", Some("_HLS_skip=YES"), RequestKind::Playlist),
            ("/hls/cam/s1/720p/index.m3u8", Some("_HLS_msn=4&_HLS_part=1"), RequestKind::BlockingReload),
            ("/hls/cam/s1/720p/part4.1.m4s", None, RequestKind::Part),
            ("/hls/cam/s1/720p/seg4.m4s", None, RequestKind::Segment),
            ("/hls/cam/s1/720p/init0.mp4", None, RequestKind::Init),
            ("/hls/cam/s1/720p/../../x", None, RequestKind::Other),
            ("/hls/cam/part4.1.m4s", None, RequestKind::Other),
        ];
        for (path, query, want) in cases {
            assert_eq!(RequestKind::of(path, query), want, "{path} {query:?}");
        }
    }

    #[test]
    fn counts_requests_and_bytes_per_kind_and_class() {
        let counters = OriginRequests::default();
        counters.answered(RequestKind::Part, 200);
        counters.sent(RequestKind::Part, 200, 1000);
        counters.answered(RequestKind::Part, 200);
        counters.sent(RequestKind::Part, 200, 500);
        counters.answered(RequestKind::Other, 404);
        counters.answered(RequestKind::BlockingReload, 999);
        let counts = counters.counts();
        assert_eq!(
            counts,
            vec![
                OriginCount { kind: RequestKind::BlockingReload, class: "5xx", requests: 1, bytes: 0 },
                OriginCount { kind: RequestKind::Part, class: "2xx", requests: 2, bytes: 1500 },
                OriginCount { kind: RequestKind::Other, class: "4xx", requests: 1, bytes: 0 },
            ]
        );
    }
}
